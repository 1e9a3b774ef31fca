//! Delivery metrics emitted when an execution ends: one CloudWatch embedded-metric-format line
//! on stdout (Lambda ships it to CloudWatch Logs, which extracts the metrics: no extra
//! infrastructure, no extra call). The numbers are computed by [`crate::domain::metrics`].

use crate::domain::{metrics, Execution, Status};

/// Called by the engine for every transition it stored: an execution that just ended
/// (active → not active) emits its metrics once (only the write that won gets here).
pub fn on_stored(from: Status, exec: &Execution) {
    if from.is_active() && !exec.status.is_active() {
        println!("{}", metrics::emf_line(exec));
    }
}
