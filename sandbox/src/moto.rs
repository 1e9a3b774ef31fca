//! The moto server process: started on a loopback port, stopped with its owner.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::Credentials;

use crate::{LocalError, REGION};

/// The watchdog script (also at `scripts/moto_server.py`), embedded so the binary does not
/// depend on the working directory.
const MOTO_SCRIPT: &str = include_str!("../../scripts/moto_server.py");

/// The Python interpreter of the project's virtualenv: `$SHIPGATE_PYTHON`, else `./.venv`, else
/// the `.venv` of the checkout this binary was built from.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SHIPGATE_PYTHON") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from(".venv/bin/python");
    if local.exists() {
        return local;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python"))
}

/// A moto server process on 127.0.0.1. Stopped when dropped; also stops by itself when this
/// process dies (it watches its standard input).
pub struct MotoServer {
    child: Child,
    port: u16,
}

impl MotoServer {
    /// Start moto on `port` (0: any free port) and wait until it answers.
    pub fn start(port: u16) -> Result<MotoServer, LocalError> {
        let python = python();
        let mut child = Command::new(&python)
            .arg("-c")
            .arg(MOTO_SCRIPT)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    LocalError::MotoMissing {
                        python: python.display().to_string(),
                    }
                } else {
                    LocalError::MotoStart(e.to_string())
                }
            })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let line = line.trim().to_string();
        match (read, line.strip_prefix("PORT ")) {
            (Ok(_), Some(p)) => {
                let port = p
                    .parse()
                    .map_err(|_| LocalError::MotoStart(format!("unexpected output {line:?}")))?;
                Ok(MotoServer { child, port })
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                if line.contains("moto is not installed") || line.is_empty() {
                    Err(LocalError::MotoMissing {
                        python: python.display().to_string(),
                    })
                } else if line.contains("cannot listen") {
                    Err(LocalError::PortBusy(port, line))
                } else {
                    Err(LocalError::MotoStart(line))
                }
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stop the server now (also done on drop).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How the process ended, once it has (`None` while it runs).
    pub fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(status.to_string()),
            Err(e) => Some(format!("cannot wait for it: {e}")),
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SDK configuration for a local endpoint with dummy credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(shared::adapters::https_client())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "shipgate-local",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}
