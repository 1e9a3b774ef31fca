//! `shipgate dev`: the whole control plane on one machine. moto stands in for AWS; the same
//! handlers as the Lambda binaries serve the API routes and the Lambda Invoke API; an event pump
//! stands in for EventBridge; approval emails are captured through SQS.

mod local_services;
mod pump;
mod push;
mod resources;
mod server;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, Subcommand};
use shared::app::Settings;
use shared::wiring::{aws_services, Config};
use shipgate_sandbox::github::FakeGitHubServer;
use shipgate_sandbox::{
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
    /// Seconds the demo pipeline's production bakes after its check passed (watching the demo
    /// alarm); 0: no bake.
    #[arg(long, default_value_t = 3)]
    bake_seconds: u32,
    /// Provision the demo pipeline without verification (no local hello-service processes).
    #[arg(long)]
    no_verify: bool,
    /// Provision the demo pipeline's test and production verifications without their smoke
    /// test builds.
    #[arg(long)]
    no_smoke: bool,
    /// Seconds between sweeper runs (the EventBridge schedule in AWS).
    #[arg(long, default_value_t = 60)]
    sweep_seconds: u64,
    /// Where dev.env is written.
    #[arg(long, default_value = ".shipgate")]
    state_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
enum DevCommand {
    /// Send a push (a signed GitHub webhook, or a CodeCommit event) to a running sandbox.
    Push(push::PushArgs),
}

/// Shared state of the local server and the pump.
#[derive(Clone)]
pub struct DevState {
    /// Every port and capability; each function gets its own profile's ([`DevState::services_of`]).
    pub services: shared::app::Services,
    pub provisioned: Arc<Provisioned>,
    pub sdk: aws_config::SdkConfig,
    pub outbox: Arc<Mutex<Vec<OutboxMessage>>>,
    /// What each demo approver's mailbox (an SQS queue with their filter policy) received.
    pub mailboxes: Arc<Mutex<std::collections::HashMap<String, Vec<OutboxMessage>>>>,
    /// The local AWS (moto) endpoint.
    pub aws_endpoint: String,
    /// The fake GitHub API the demo pipeline reports to.
    pub github: Option<FakeGitHubServer>,
    /// The chat (Amazon Q Developer) JSON of every notice published, newest last: SNS delivers
    /// it only to chat subscriptions, which the sandbox has none of, so it is kept here.
    pub chat: Arc<Mutex<Vec<serde_json::Value>>>,
    /// The demo pipeline's test and prod services as local processes (verified promotion).
    pub local: local_services::LocalServices,
}

/// Publishes through SNS as the functions do, and keeps each notice's chat JSON for
/// `GET /_dev/chat`.
struct ChatRecorder {
    inner: Arc<dyn shared::ports::Notifier>,
    chat: Arc<Mutex<Vec<serde_json::Value>>>,
}

#[async_trait::async_trait]
impl shared::ports::Notifier for ChatRecorder {
    async fn publish(
        &self,
        topic_arn: &str,
        notice: &shared::ports::Notice,
    ) -> Result<String, shared::ports::ServiceError> {
        let id = self.inner.publish(topic_arn, notice).await?;
        if let Some(chat) = notice.chat.as_deref() {
            if let (Ok(v), Ok(mut all)) = (serde_json::from_str(chat), self.chat.lock()) {
                all.push(v);
            }
        }
        Ok(id)
    }
}

impl DevState {
    /// The services a function runs with in AWS: its profile's capabilities (shared::wiring),
    /// so the sandbox resumes, deploys and notifies exactly what that function may.
    pub fn services_of(&self, profile: &shared::wiring::Profile) -> shared::app::Services {
        self.services.clone().with_capabilities(profile.can)
    }
}

/// Print what was created in the local AWS for a pipeline (nothing when nothing was missing).
pub fn print_created(pipeline: &str, created: &[String]) {
    if !created.is_empty() {
        println!(
            "[sandbox] pipeline {pipeline}: created in the local AWS: {}",
            created.join(", ")
        );
    }
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
    let mut signals = Signals::install()?;
    check_stale_env(&args.state_dir)?;

    println!("starting the local AWS (moto)...");
    let mut moto = MotoServer::start(args.aws_port).map_err(|e| e.to_string())?;
    let sdk = sdk_config(&moto.endpoint()).await;
    // a fake GitHub API the demo pipeline reports its commit statuses and deployments to
    std::fs::create_dir_all(&args.state_dir)
        .map_err(|e| format!("cannot create {}: {e}", args.state_dir.display()))?;
    let github_record = args.state_dir.join("github-calls.jsonl");
    let github = FakeGitHubServer::start(0, Some(github_record.clone()))
        .await
        .map_err(|e| format!("cannot start the fake GitHub API: {e}"))?;
    let mut sandbox = Sandbox {
        github_api_url: Some(github.base_url.clone()),
        // alice (the sandbox's CLI identity) and bob: each gets a personal approval link
        demo_approvers: shipgate_sandbox::DemoApprover::defaults(),
        ..Sandbox::default()
    };
    let local = local_services::LocalServices::default();
    if !args.no_verify {
        let (test_port, prod_port) = (local_services::free_port()?, local_services::free_port()?);
        local
            .add(
                &sandbox.test_cluster,
                &sandbox.test_service,
                "test",
                test_port,
            )
            .await?;
        local
            .add(
                &sandbox.prod_cluster,
                &sandbox.prod_service,
                "prod",
                prod_port,
            )
            .await?;
        sandbox.demo_verify = Some(shipgate_sandbox::DemoVerify {
            test_url: format!("http://127.0.0.1:{test_port}/health"),
            prod_url: format!("http://127.0.0.1:{prod_port}/health"),
            bake_seconds: args.bake_seconds.min(600),
            alarm: shipgate_sandbox::DEMO_ALARM.to_string(),
            smoke_project: (!args.no_smoke)
                .then(|| shipgate_sandbox::DEMO_SMOKE_PROJECT.to_string()),
        });
    }
    let provisioned = sandbox.provision(&sdk).await.map_err(|e| e.to_string())?;
    // what `shipgate doctor` reads of the deployed stack (sandbox/src/stack.rs)
    shipgate_sandbox::create_stand_in_stack(&sdk, &provisioned, &base)
        .await
        .map_err(|e| e.to_string())?;
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
    // what the demo pipeline names that provisioning leaves to `resources::ensure` (its smoke
    // test project) exists before dev.env tells anyone the sandbox is ready (`shipgate doctor`
    // right after start checks that it exists); the pump would create it only on its first pass
    // (not printed: the banner names the smoke project)
    resources::ensure(&sdk, &provisioned.pipeline, &provisioned.outbox_queue_url)
        .await
        .map_err(|e| format!("demo pipeline resources: {e}"))?;
    // removed when this function returns (every path) and when the process panics
    let env_file = EnvFile::write(
        &args.state_dir,
        &base,
        &moto.endpoint(),
        &sandbox,
        moto.pid(),
    )?;
    let chat = Arc::new(Mutex::new(Vec::new()));
    let mut services = services;
    services.notifier = Arc::new(ChatRecorder {
        inner: services.notifier.clone(),
        chat: chat.clone(),
    });
    let state = DevState {
        services,
        chat,
        provisioned: Arc::new(provisioned),
        sdk,
        outbox: Arc::new(Mutex::new(Vec::new())),
        mailboxes: Arc::new(Mutex::new(Default::default())),
        aws_endpoint: moto.endpoint(),
        github: Some(github.clone()),
        local: local.clone(),
    };

    print_banner(&base, &moto.endpoint(), env_file.path(), &state.provisioned);
    println!(
        "  fake GitHub    {}   (calls: {base}/_dev/github, {}; chat notices: {base}/_dev/chat)",
        github.base_url,
        github_record.display()
    );
    println!();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut pump = tokio::spawn(pump::run(
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
    let mut server = tokio::spawn(async move { server.await });

    let moto_pid = moto.pid();
    let mut pump_done = false;
    let mut server_done = false;
    let outcome = tokio::select! {
        // a signal first: stopping on Ctrl-C is not "moto died", even if moto got it too
        biased;
        _ = signals.recv() => {
            println!("\nstopping: server, event pump and local AWS...");
            Ok(())
        }
        status = moto_exited(&mut moto) => Err(format!(
            "the local AWS (moto, pid {moto_pid}) exited unexpectedly ({status}); every AWS call \
    would fail from now on, so shipgate dev stopped. Start it again with `make dev`."
        )),
        ended = &mut pump => {
            pump_done = true;
            Err(format!("the event pump stopped unexpectedly ({}); shipgate dev stopped", task_end(ended)))
        }
        ended = &mut server => {
            server_done = true;
            let why = match ended {
                Ok(Err(e)) => e.to_string(),
                other => task_end(other.map(|_| ())),
            };
            Err(format!("the local server stopped unexpectedly ({why}); shipgate dev stopped"))
        }
    };
    let _ = stop_tx.send(true);
    if !pump_done {
        let _ = tokio::time::timeout(Duration::from_secs(5), pump).await;
    }
    if !server_done {
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    }
    local.stop_all().await;
    drop(moto);
    drop(env_file);
    if outcome.is_ok() {
        println!("stopped");
    }
    outcome
}

/// How a task that should have run until told to stop ended.
fn task_end(ended: Result<(), tokio::task::JoinError>) -> String {
    match ended {
        Ok(()) => "it returned".into(),
        Err(e) if e.is_panic() => "it panicked".into(),
        Err(e) => e.to_string(),
    }
}

/// Resolves when the moto process has exited, with how it ended.
async fn moto_exited(moto: &mut MotoServer) -> String {
    loop {
        if let Some(status) = moto.exit_status() {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Ctrl-C, SIGTERM and SIGHUP, caught from the moment the sandbox starts (a signal that comes
/// while it starts up is acted on once it runs, with the same cleanup).
struct Signals {
    #[cfg(unix)]
    streams: Vec<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Result<Signals, String> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut streams = Vec::new();
            for kind in [
                SignalKind::interrupt(),
                SignalKind::terminate(),
                SignalKind::hangup(),
            ] {
                streams.push(signal(kind).map_err(|e| format!("cannot catch signals: {e}"))?);
            }
            Ok(Signals { streams })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// Resolves at the first signal.
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            let waits = self.streams.iter_mut().map(|s| Box::pin(s.recv()));
            let _ = futures_select_all(waits).await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The first of several futures to finish.
#[cfg(unix)]
async fn futures_select_all<F: std::future::Future + Unpin>(futures: impl Iterator<Item = F>) {
    let mut futures: Vec<F> = futures.collect();
    std::future::poll_fn(move |cx| {
        for f in futures.iter_mut() {
            if std::pin::Pin::new(f).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// `.shipgate/dev.env`: what CLI commands, `cargo lambda watch` or a function binary need to
/// run against the sandbox (`set -a; . .shipgate/dev.env`). Removed when dropped, and by the
/// panic hook; a file left by a process that was killed is replaced at the next start.
struct EnvFile {
    path: PathBuf,
}

impl EnvFile {
    fn write(
        dir: &Path,
        base: &str,
        aws: &str,
        sandbox: &Sandbox,
        moto_pid: u32,
    ) -> Result<EnvFile, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join("dev.env");
        let text = env_text(&path, base, aws, sandbox, std::process::id(), moto_pid);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let file = EnvFile { path };
        let hook_path = file.path.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = std::fs::remove_file(&hook_path);
            previous(info);
        }));
        Ok(file)
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for EnvFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn env_text(
    path: &Path,
    base: &str,
    aws: &str,
    sandbox: &Sandbox,
    pid: u32,
    moto_pid: u32,
) -> String {
    format!(
        "# written by `shipgate dev` (pid {pid}); removed when it stops. Use: set -a; . {path}\n\
SHIPGATE_TABLE={table}\n\
SHIPGATE_WEBHOOK_SECRET_ID={wid}\n\
SHIPGATE_SIGNING_KEY_ID={kid}\n\
SHIPGATE_PUBLIC_URL={base}\n\
SHIPGATE_DEV_URL={base}\n\
SHIPGATE_DEV_WEBHOOK_SECRET={secret}\n\
SHIPGATE_DEV_PID={pid}\n\
SHIPGATE_DEV_MOTO_PID={moto_pid}\n\
SHIPGATE_CONTROL_FUNCTION=shipgate-control\n\
SHIPGATE_STACK={stack}\n\
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
        region = shipgate_sandbox::REGION,
        stack = shipgate_sandbox::STACK_NAME,
    )
}

/// A value of a `KEY=value` line.
fn env_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
}

fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// Whether something answers TCP on the `http://host:port` of `url`.
fn listening(url: &str) -> bool {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    match addr.parse::<std::net::SocketAddr>() {
        Ok(a) => std::net::TcpStream::connect_timeout(&a, Duration::from_millis(300)).is_ok(),
        Err(_) => false,
    }
}

/// A `dev.env` already in the state directory: refuse when the sandbox that wrote it still runs
/// (its process lives and its API answers); otherwise it is stale (that process was killed) and
/// is replaced.
fn check_stale_env(dir: &Path) -> Result<(), String> {
    let path = dir.join("dev.env");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let pid = env_value(&text, "SHIPGATE_DEV_PID").and_then(|p| p.parse::<u32>().ok());
    let url = env_value(&text, "SHIPGATE_DEV_URL").unwrap_or_default();
    if let Some(pid) = pid {
        if pid != std::process::id() && process_alive(pid) && listening(url) {
            return Err(format!(
                "another shipgate dev (pid {pid}, {url}) uses {}; stop it or choose another --state-dir",
                path.display()
            ));
        }
    }
    println!(
        "replacing a stale {} (the shipgate dev that wrote it is gone)",
        path.display()
    );
    let _ = std::fs::remove_file(&path);
    Ok(())
}

fn print_banner(base: &str, aws: &str, env_file: &Path, p: &Provisioned) {
    let sb = &p.sandbox;
    println!();
    println!("shipgate dev is running");
    println!(
        "  API            {base}   (POST /webhooks/github, GET|HEAD|POST /approvals/{{token}}, GET /status/{{token}})"
    );
    println!("  Lambda Invoke  {base}/2015-03-31/functions/{{name}}/invocations");
    println!("  outbox         {base}/_dev/outbox");
    for m in &p.mailboxes {
        println!(
            "  approver       {}   (personal links; mailbox {base}/_dev/outbox?for={})",
            m.approver, m.approver
        );
    }
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
    if let Some(v) = &sb.demo_verify {
        let smoke = |url: &str, marker: &str| match &v.smoke_project {
            Some(project) => {
                format!(" + smoke test {project} (CodeBuild, TARGET_URL {url}; {marker} fails it)")
            }
            None => String::new(),
        };
        println!(
            "  verify test    GET {}{}",
            v.test_url,
            smoke(&v.test_url, "[smoke-fail]")
        );
        println!(
            "  verify prod    GET {}{}{}",
            v.prod_url,
            smoke(&v.prod_url, "[prod-smoke-fail]"),
            if v.bake_seconds > 0 {
                format!("; bake {} s watching {} ([alarm])", v.bake_seconds, v.alarm)
            } else {
                String::new()
            }
        );
    }
    println!("  environment    {}", env_file.display());
    println!();
    println!("In another terminal:");
    println!("  shipgate dev push                 # a signed push; prints the execution id");
    println!("  set -a; . {}; set +a", env_file.display());
    println!("  shipgate status demo");
    println!(
        "  shipgate doctor                   # is everything wired? (checks the stand-in stack)"
    );
    println!(
        "  shipgate pipeline apply FILE      # another pipeline; what it names is created here"
    );
    println!("  shipgate dev push --pipeline NAME # a push to that pipeline's repository");
    println!("Approval messages are printed here with their links. Ctrl-C stops everything.");
    println!();
}
