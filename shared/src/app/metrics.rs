//! Delivery metrics emitted when an execution ends: one CloudWatch embedded-metric-format line
//! on stdout (Lambda ships it to CloudWatch Logs, which extracts the metrics: no extra
//! infrastructure, no extra call). The numbers are computed by [`crate::domain::metrics`].

use std::io::Write;

use crate::domain::{metrics, Execution, Status};

/// Called by the engine for every transition it stored: an execution that just ended
/// (active → not active) emits its metrics once (only the write that won gets here).
pub fn on_stored(from: Status, exec: &Execution) {
    if from.is_active() && !exec.status.is_active() {
        let line = metrics::emf_line(exec);
        // the test harness captures println! only
        #[cfg(test)]
        println!("{line}");
        #[cfg(not(test))]
        emit(&mut std::io::stdout().lock(), &line);
    }
}

/// Write one line, best effort: the engine calls this between the stored write and the
/// transition's effects, so a closed stdout (`shipgate dev | head`, a detached terminal) must
/// not panic as `println!` would, and lose the effects.
fn emit(out: &mut impl Write, line: &str) {
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn a_closed_stdout_never_panics() {
        emit(&mut Closed, "{\"_aws\":{}}");
        let mut buf = Vec::new();
        emit(&mut buf, "{}");
        assert_eq!(buf, b"{}\n");
    }
}
