//! Every fake of [`crate::fakes`] wired into the use cases' [`Services`]: the world the use-case
//! and handler tests run in. Behind the `test-util` feature, like the fakes.
//!
//! It lives beside the fakes rather than in them: the fakes implement the ports and know nothing
//! of the use cases; this module composes fakes and use cases, as a Lambda `main` composes the
//! AWS adapters and the use cases.

use std::sync::Arc;

use crate::app::{Services, Settings};
use crate::domain::PipelineDefinition;
use crate::fakes::{
    FakeAlarms, FakeBuilds, FakeDeployer, FakeGitHub, FakeNotifier, FakeProbe, FakeRegistry,
    FakeSecrets, InMemoryStore, ManualClock, SAMPLE_PIPELINE, SIGNING_KEY, SIGNING_KEY_ID,
    WEBHOOK_SECRET, WEBHOOK_SECRET_ID,
};
use crate::ports::{Clock, ExecutionStore};

/// Every fake, plus [`Services`] wired to them.
pub struct FakeWorld {
    pub store: Arc<InMemoryStore>,
    pub builds: Arc<FakeBuilds>,
    pub deployer: Arc<FakeDeployer>,
    pub registry: Arc<FakeRegistry>,
    pub notifier: Arc<FakeNotifier>,
    pub secrets: Arc<FakeSecrets>,
    pub clock: Arc<ManualClock>,
    /// GitHub (pipelines with `[github]` report to it).
    pub github: Arc<FakeGitHub>,
    /// Verified promotion's HTTP checks and alarm states.
    pub probe: Arc<FakeProbe>,
    pub alarms: Arc<FakeAlarms>,
    pub services: Services,
}

/// The GitHub token secret of [`FakeWorld::github_pipeline`].
pub const GITHUB_TOKEN_ID: &str = "shipgate/github/hello";
pub const GITHUB_TOKEN: &str = "ghp_fake_token_never_logged";

impl Default for FakeWorld {
    fn default() -> Self {
        FakeWorld::new()
    }
}

impl FakeWorld {
    pub fn new() -> FakeWorld {
        let store = Arc::new(InMemoryStore::new());
        let builds = Arc::new(FakeBuilds::default());
        let deployer = Arc::new(FakeDeployer::default());
        let registry = Arc::new(FakeRegistry::default());
        let notifier = Arc::new(FakeNotifier::default());
        let secrets = Arc::new(FakeSecrets::with(&[
            (WEBHOOK_SECRET_ID, WEBHOOK_SECRET),
            (SIGNING_KEY_ID, SIGNING_KEY),
            (GITHUB_TOKEN_ID, GITHUB_TOKEN),
        ]));
        let github = Arc::new(FakeGitHub::default());
        let clock = Arc::new(ManualClock::default());
        let probe = Arc::new(FakeProbe::default());
        let alarms = Arc::new(FakeAlarms::default());
        let services = Services::new(
            store.clone(),
            builds.clone(),
            deployer.clone(),
            registry.clone(),
            notifier.clone(),
            secrets.clone(),
            clock.clone(),
            Settings {
                public_url: "https://shipgate.example.com".into(),
                webhook_secret_id: WEBHOOK_SECRET_ID.into(),
                signing_key_id: SIGNING_KEY_ID.into(),
            },
        )
        .with_feedback(github.clone())
        .with_verification(probe.clone(), alarms.clone());
        FakeWorld {
            store,
            builds,
            deployer,
            registry,
            notifier,
            secrets,
            clock,
            github,
            probe,
            alarms,
            services,
        }
    }

    /// The services of a new cold start over the same fakes (secrets are read again).
    pub fn cold_start(&self) -> Services {
        Services::new(
            self.store.clone(),
            self.builds.clone(),
            self.deployer.clone(),
            self.registry.clone(),
            self.notifier.clone(),
            self.secrets.clone(),
            self.clock.clone(),
            self.services.settings.as_ref().clone(),
        )
        .with_feedback(self.github.clone())
        .with_verification(self.probe.clone(), self.alarms.clone())
    }

    /// The standard test pipeline with GitHub feedback on.
    pub fn github_pipeline() -> PipelineDefinition {
        let mut p = FakeWorld::pipeline();
        p.github = Some(crate::domain::feedback::GitHubFeedbackSpec {
            token_secret: GITHUB_TOKEN_ID.into(),
            api_url: crate::domain::feedback::DEFAULT_GITHUB_API_URL.into(),
            test_url: Some("https://test.hello.example.com".into()),
            prod_url: None,
        });
        p.validate().expect("valid");
        p
    }

    /// The standard test pipeline (`hello`, GitHub `shipgate-demo/hello`, branch `main`).
    pub fn pipeline() -> PipelineDefinition {
        PipelineDefinition::parse(SAMPLE_PIPELINE, crate::domain::Format::Toml)
            .expect("sample pipeline is valid")
    }

    /// A world with the sample pipeline stored and its services running an old image.
    pub async fn with_pipeline() -> FakeWorld {
        let w = FakeWorld::new();
        let p = FakeWorld::pipeline();
        w.store
            .put_pipeline(&p, w.clock.now())
            .await
            .expect("store pipeline");
        w.deployer.add_service(
            &p.test,
            &format!("{}@sha256:{}", p.image.repository, "0".repeat(64)),
        );
        w.deployer.add_service(
            &p.prod,
            &format!("{}@sha256:{}", p.image.repository, "0".repeat(64)),
        );
        w
    }
}
