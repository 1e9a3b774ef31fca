//! `shipgate dev`: the whole control plane on one machine. moto stands in for AWS; the same
//! handlers as the Lambda binaries serve the API routes and the Lambda Invoke API; an event pump
//! stands in for EventBridge; approval emails are captured through SQS.

mod pump;
mod push;
mod server;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, Subcommand};
use shared::adapters::{aws_services, Config};
use shared::app::Settings;
use shared::local::{
    sdk_config, MotoServer, OutboxMessage, Provisioned, Sandbox, DEV_WEBHOOK_SECRET,
};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DevArgs {
    #[command(subcommand)]
    command: Option<DevCommand>,
    /// Port of the local API (webhooks, approvals, Lambda Invoke API).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// Port of the local AWS (moto); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    aws_port: u16,
    /// Seconds until a started build is "built".
    #[arg(long, default_value_t = 3)]
    build_seconds: u64,
    /// Seconds until a service update is "deployed".
    #[arg(long, default_value_t = 3)]
    deploy_seconds: u64,
    /// Seconds between sweeper runs (the EventBridge schedule in AWS).
    #[arg(long, default_value_t = 60)]
    sweep_seconds: u64,
    /// Where dev.env is written.
    #[arg(long, default_value = ".shipgate")]
    state_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
enum DevCommand {
    /// Send a correctly signed GitHub push for the demo repository to a running sandbox.
    Push(push::PushArgs),
}

/// Shared state of the local server and the pump.
#[derive(Clone)]
pub struct DevState {
    pub services: shared::app::Services,
    pub provisioned: Arc<Provisioned>,
    pub sdk: aws_config::SdkConfig,
    pub outbox: Arc<Mutex<Vec<OutboxMessage>>>,
}

pub async fn run(args: DevArgs) -> ExitCode {
    if let Some(DevCommand::Push(p)) = args.command {
        return push::run(p).await;
    }
    shared::telemetry::init();
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

async fn serve(args: DevArgs) -> Result<(), String> {
    // the port first: a second sandbox fails fast and starts nothing
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| {
            format!(
                "cannot listen on 127.0.0.1:{}: {e} (is another `shipgate dev` running? choose another with --port)",
                args.port
            )
        })?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let base = format!("http://127.0.0.1:{port}");

    println!("starting the local AWS (moto)...");
    let moto = MotoServer::start(args.aws_port).map_err(|e| e.to_string())?;
    let sdk = sdk_config(&moto.endpoint()).await;
    let sandbox = Sandbox::default();
    let provisioned = sandbox.provision(&sdk).await.map_err(|e| e.to_string())?;
    let services = aws_services(
        &sdk,
        &Config {
            table: sandbox.table.clone(),
            settings: Settings {
                public_url: base.clone(),
                webhook_secret_id: sandbox.webhook_secret_id.clone(),
                signing_key_id: sandbox.signing_key_id.clone(),
            },
        },
    );
    let env_file = write_env(&args.state_dir, &base, &moto.endpoint(), &sandbox)?;
    let state = DevState {
        services,
        provisioned: Arc::new(provisioned),
        sdk,
        outbox: Arc::new(Mutex::new(Vec::new())),
    };

    print_banner(&base, &moto.endpoint(), &env_file, &state.provisioned);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let pump = tokio::spawn(pump::run(
        state.clone(),
        Duration::from_secs(args.build_seconds),
        Duration::from_secs(args.deploy_seconds),
        Duration::from_secs(args.sweep_seconds.max(1)),
        stop_rx.clone(),
    ));
    let app = server::router(state);
    let mut shutdown_rx = stop_rx;
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = shutdown_rx.wait_for(|stop| *stop).await;
    });
    let server = tokio::spawn(async move { server.await });

    wait_for_signal().await;
    println!("\nstopping: server, event pump and local AWS...");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), pump).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    drop(moto);
    let _ = std::fs::remove_file(&env_file);
    println!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// `.shipgate/dev.env`: what CLI commands, `cargo lambda watch` or a function binary need to
/// run against the sandbox (`set -a; . .shipgate/dev.env`).
fn write_env(dir: &Path, base: &str, aws: &str, sandbox: &Sandbox) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("dev.env");
    let text = format!(
        "# written by `shipgate dev`; removed when it stops. Use: set -a; . {path}\n\
SHIPGATE_TABLE={table}\n\
SHIPGATE_WEBHOOK_SECRET_ID={wid}\n\
SHIPGATE_SIGNING_KEY_ID={kid}\n\
SHIPGATE_PUBLIC_URL={base}\n\
SHIPGATE_DEV_URL={base}\n\
SHIPGATE_DEV_WEBHOOK_SECRET={secret}\n\
SHIPGATE_CONTROL_FUNCTION=shipgate-control\n\
AWS_ENDPOINT_URL={aws}\n\
AWS_ENDPOINT_URL_LAMBDA={base}\n\
AWS_REGION={region}\n\
AWS_DEFAULT_REGION={region}\n\
AWS_ACCESS_KEY_ID=testing\n\
AWS_SECRET_ACCESS_KEY=testing\n",
        path = path.display(),
        table = sandbox.table,
        wid = sandbox.webhook_secret_id,
        kid = sandbox.signing_key_id,
        secret = DEV_WEBHOOK_SECRET,
        region = shared::local::REGION,
    );
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

fn print_banner(base: &str, aws: &str, env_file: &Path, p: &Provisioned) {
    let sb = &p.sandbox;
    println!();
    println!("shipgate dev is running");
    println!(
        "  API            {base}   (POST /webhooks/github, GET|HEAD|POST /approvals/{{token}})"
    );
    println!("  Lambda Invoke  {base}/2015-03-31/functions/{{name}}/invocations");
    println!("  outbox         {base}/_dev/outbox");
    println!("  local AWS      {aws}");
    println!(
        "  pipeline       {} (GitHub {}, branch main) → test {}/{} → prod {}/{}",
        p.pipeline.name,
        sb.github_repo,
        sb.test_cluster,
        sb.test_service,
        sb.prod_cluster,
        sb.prod_service
    );
    println!("  environment    {}", env_file.display());
    println!();
    println!("In another terminal:");
    println!("  shipgate dev push                 # a signed push; prints the execution id");
    println!("  set -a; . {}; set +a", env_file.display());
    println!("  shipgate status demo");
    println!("Approval messages are printed here with their links. Ctrl-C stops everything.");
    println!();
}
