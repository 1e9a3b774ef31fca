//! The demo pipeline's services as real local processes: `examples/hello-service` (Python,
//! standard library only) for test and prod, each on its own loopback port, restarted by the
//! pump whenever ECS "completes" a deployment there, with the deployed commit as its version —
//! so verified promotion checks a real `/health`. `[bad-health]` in a commit message makes the
//! test service answer a wrong version.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};
use tokio::sync::Mutex;

/// `[bad-health]`: the test service answers another version than the commit it runs.
pub const BAD_HEALTH: &str = "[bad-health]";
/// `[alarm]`: the demo alarm goes to ALARM during the production bake.
pub const ALARM: &str = "[alarm]";

/// One local service per (cluster, service).
#[derive(Clone, Default)]
pub struct LocalServices {
    inner: Arc<Mutex<HashMap<(String, String), Running>>>,
}

struct Running {
    port: u16,
    environment: &'static str,
    child: Option<Child>,
}

/// A free loopback port (bound and released; the service binds it right after).
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

fn app_path() -> PathBuf {
    let local = PathBuf::from("examples/hello-service/app.py");
    if local.exists() {
        return local;
    }
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/hello-service/app.py"
    ))
}

impl LocalServices {
    /// Register a service on `port` and start it with version `bootstrap`.
    pub async fn add(
        &self,
        cluster: &str,
        service: &str,
        environment: &'static str,
        port: u16,
    ) -> Result<(), String> {
        self.inner.lock().await.insert(
            (cluster.to_string(), service.to_string()),
            Running {
                port,
                environment,
                child: None,
            },
        );
        self.restart(cluster, service, "bootstrap").await
    }

    /// Is this one of the local services?
    pub async fn knows(&self, cluster: &str, service: &str) -> bool {
        self.inner
            .lock()
            .await
            .contains_key(&(cluster.to_string(), service.to_string()))
    }

    /// Stop the service's process and start it again answering `version`; waits (at most
    /// 5 s) until `/health` answers.
    pub async fn restart(&self, cluster: &str, service: &str, version: &str) -> Result<(), String> {
        let mut all = self.inner.lock().await;
        let Some(r) = all.get_mut(&(cluster.to_string(), service.to_string())) else {
            return Ok(());
        };
        if let Some(mut old) = r.child.take() {
            let _ = old.kill().await;
        }
        let child = Command::new("python3")
            .arg(app_path())
            .env("PORT", r.port.to_string())
            .env("HOST", "127.0.0.1")
            .env("APP_VERSION", version)
            .env("DEPLOY_ENVIRONMENT", r.environment)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start examples/hello-service (python3): {e}"))?;
        r.child = Some(child);
        let port = r.port;
        drop(all);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "{service} did not start listening on 127.0.0.1:{port}"
        ))
    }

    /// Stop every process.
    pub async fn stop_all(&self) {
        for r in self.inner.lock().await.values_mut() {
            if let Some(mut c) = r.child.take() {
                let _ = c.kill().await;
            }
        }
    }
}
