//! The composition root: what each function is made of.
//!
//! One [`Profile`] per function names the ports it is wired with and the capabilities it has
//! (what its IAM role allows). The Lambda `main.rs` files, the local sandbox and the tests build
//! a function's [`Services`] from the same profile, and `tests/tests/infra_template.rs` checks
//! every profile against the IAM role the template gives that function. A port a profile does
//! not wire is [`Unused`], so its SDK client is not linked into that binary (the profile is a
//! constant of a type parameter: the branches for other ports are removed at compile time).
//! A port it wires gets its client on first use, once per cold start (`adapters::lazy`), except
//! DynamoDB's, which the cold start's warm-up call uses.

use std::sync::Arc;

use crate::adapters::http_probe::HttpProbe;
use crate::adapters::{
    cloudwatch, codebuild, dynamodb, ecr, ecs, github, secrets, sns, sts, Unused,
};
use crate::app::{Capabilities, Services, Settings};
use crate::ports::{
    AlarmReader, BuildRunner, Deployer, HealthProbe, ImageRegistry, Notifier, SecretSource,
    SystemClock,
};

/// The AWS ports a function is wired with (DynamoDB always is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// CodeBuild (start builds, read builds).
    pub codebuild: bool,
    /// ECS (task definitions, services, deployments).
    pub ecs: bool,
    /// ECR (image digests, pruning).
    pub ecr: bool,
    /// SNS (approval requests, notices).
    pub sns: bool,
    /// Secrets Manager (webhook secret, approval signing key).
    pub secrets: bool,
    /// GitHub's REST API (commit statuses, deployments), with its token from Secrets Manager.
    pub github: bool,
    /// CloudWatch (alarm states during a production bake).
    pub cloudwatch: bool,
    /// Outbound HTTP (verified promotion's checks of deployed services; no AWS role needed).
    pub http: bool,
}

/// What one function is: its name, its ports, its capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// The crate under `functions/` (deployed as `shipgate-<name>`).
    pub function: &'static str,
    pub ports: Ports,
    pub can: Capabilities,
}

/// A function's profile as a type, so wiring it is resolved at compile time.
pub trait FunctionProfile {
    const PROFILE: Profile;
}

/// Every function's profile.
pub mod profiles {
    use super::{Capabilities, FunctionProfile, Ports, Profile};

    const NONE: Capabilities = Capabilities {
        start_build: false,
        deploy_test: false,
        deploy_prod: false,
        request_approval: false,
        notify: false,
        feedback: false,
        verify: false,
        roll_back_prod: false,
        start_smoke: false,
    };

    macro_rules! profile {
        ($(#[$doc:meta])* $ty:ident, $konst:ident, $name:literal, $ports:expr, $can:expr) => {
            $(#[$doc])*
            pub const $konst: Profile = Profile {
                function: $name,
                ports: $ports,
                can: $can,
            };
            $(#[$doc])*
            pub struct $ty;
            impl FunctionProfile for $ty {
                const PROFILE: Profile = $konst;
            }
        };
    }

    profile!(
        /// GitHub pushes: verify (webhook secret), record, start builds.
        Webhook, WEBHOOK, "webhook",
        Ports { codebuild: true, ecs: false, ecr: false, sns: false, secrets: true, github: true, cloudwatch: false, http: false },
        Capabilities { start_build: true, feedback: true, ..NONE }
    );
    profile!(
        /// CodeCommit pushes: record, start builds.
        Codecommit, CODECOMMIT, "codecommit",
        Ports { codebuild: true, ecs: false, ecr: false, sns: false, secrets: false, github: false, cloudwatch: false, http: false },
        Capabilities { start_build: true, ..NONE }
    );
    profile!(
        /// Build results: the image's digest, deploy to test, notices, GitHub feedback (CodeBuild
        /// only to read the commit a branch-head release resolved; Secrets Manager only for the
        /// GitHub token and the signing key of the status page link in notices); a smoke test
        /// build's result decides the test verification, so a passed one requests approval.
        BuildEvents, BUILD_EVENTS, "build-events",
        Ports { codebuild: true, ecs: true, ecr: true, sns: true, secrets: true, github: true, cloudwatch: false, http: false },
        Capabilities { deploy_test: true, request_approval: true, notify: true, feedback: true, ..NONE }
    );
    profile!(
        /// Deployment results: approval requests (signed links), notices; verified promotion
        /// (HTTP checks, the smoke test build (CodeBuild: smoke projects only), alarms of the
        /// bake, the automatic rollback of production after a failed verification).
        DeployEvents, DEPLOY_EVENTS, "deploy-events",
        Ports { codebuild: true, ecs: true, ecr: false, sns: true, secrets: true, github: true, cloudwatch: true, http: true },
        Capabilities { request_approval: true, notify: true, feedback: true, verify: true, roll_back_prod: true, start_smoke: true, ..NONE }
    );
    profile!(
        /// Approval links: deploy to production, notices.
        Approvals, APPROVALS, "approvals",
        Ports { codebuild: false, ecs: true, ecr: false, sns: true, secrets: true, github: true, cloudwatch: false, http: false },
        Capabilities { deploy_prod: true, notify: true, feedback: true, ..NONE }
    );
    profile!(
        /// Operator commands: everything.
        Control, CONTROL, "control",
        // no CloudWatch and no outbound HTTP checks: verification runs where deployments
        // complete (deploy-events) and is resumed by the sweeper, never by an operator command
        // (a Verify effect here is left to them); keeps the largest binary under 8 MB
        Ports { codebuild: true, ecs: true, ecr: true, sns: true, secrets: true, github: true, cloudwatch: false, http: false },
        Capabilities { verify: false, roll_back_prod: false, start_smoke: false, ..Capabilities::ALL }
    );
    profile!(
        /// The schedule: everything but production (a never-started prod deployment is failed
        /// instead, for `shipgate retry` through control; production verifications, which roll
        /// production back when they fail, are resumed by deploy-events on the same schedule —
        /// so no CloudWatch: alarms are read only during production bakes).
        Sweeper, SWEEPER, "sweeper",
        Ports { codebuild: true, ecs: true, ecr: true, sns: true, secrets: true, github: true, cloudwatch: false, http: true },
        Capabilities { deploy_prod: false, roll_back_prod: false, ..Capabilities::ALL }
    );

    /// Every function, in the order of the README's table.
    pub const ALL: [Profile; 7] = [
        WEBHOOK,
        CODECOMMIT,
        BUILD_EVENTS,
        DEPLOY_EVENTS,
        APPROVALS,
        CONTROL,
        SWEEPER,
    ];

    /// The profile of a function by its name (`webhook` or `shipgate-webhook`).
    pub fn by_name(name: &str) -> Option<&'static Profile> {
        let name = name.strip_prefix("shipgate-").unwrap_or(name);
        ALL.iter().find(|p| p.function == name)
    }
}

/// Typed configuration of every function, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table: String,
    pub settings: Settings,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("missing or empty environment variable(s): {}", .0.join(", "))]
pub struct ConfigError(pub Vec<&'static str>);

impl Config {
    /// Read `SHIPGATE_TABLE`, `SHIPGATE_WEBHOOK_SECRET_ID`, `SHIPGATE_SIGNING_KEY_ID`,
    /// `SHIPGATE_PUBLIC_URL`; every missing one is named.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut missing = Vec::new();
        let mut read = |k: &'static str| match get(k).filter(|v| !v.trim().is_empty()) {
            Some(v) => v,
            None => {
                missing.push(k);
                String::new()
            }
        };
        let table = read("SHIPGATE_TABLE");
        let webhook_secret_id = read("SHIPGATE_WEBHOOK_SECRET_ID");
        let signing_key_id = read("SHIPGATE_SIGNING_KEY_ID");
        let public_url = read("SHIPGATE_PUBLIC_URL");
        if !missing.is_empty() {
            return Err(ConfigError(missing));
        }
        Ok(Config {
            table,
            settings: Settings {
                public_url,
                webhook_secret_id,
                signing_key_id,
            },
        })
    }
}

/// Builds a function's adapters from one SDK configuration.
pub struct Wiring {
    pub sdk: aws_config::SdkConfig,
    pub config: Config,
}

impl Wiring {
    pub fn dynamodb(&self) -> Arc<dynamodb::DynamoStore> {
        Arc::new(dynamodb::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            &self.config.table,
        ))
    }

    /// The services of the function `P` describes: its ports (the others [`Unused`]) and its
    /// capabilities.
    pub fn services<P: FunctionProfile>(&self) -> Services {
        self.services_with::<P>(self.dynamodb())
    }

    /// [`Wiring::services`] around a store already built (the cold start's warmed-up one).
    pub fn services_with<P: FunctionProfile>(&self, store: Arc<dynamodb::DynamoStore>) -> Services {
        let ports = P::PROFILE.ports;
        let builds: Arc<dyn BuildRunner> = if ports.codebuild {
            Arc::new(codebuild::CodeBuildRunner::from_sdk(&self.sdk))
        } else {
            Arc::new(Unused)
        };
        let deployer: Arc<dyn Deployer> = if ports.ecs {
            Arc::new(ecs::EcsDeployer::from_sdk(&self.sdk))
        } else {
            Arc::new(Unused)
        };
        let registry: Arc<dyn ImageRegistry> = if ports.ecr {
            Arc::new(ecr::EcrRegistry::from_sdk(&self.sdk))
        } else {
            Arc::new(Unused)
        };
        let notifier: Arc<dyn Notifier> = if ports.sns {
            Arc::new(sns::SnsNotifier::from_sdk(&self.sdk))
        } else {
            Arc::new(Unused)
        };
        let secret_source: Arc<dyn SecretSource> = if ports.secrets {
            Arc::new(secrets::SecretsManagerSource::from_sdk(&self.sdk))
        } else {
            Arc::new(Unused)
        };
        let probe: Arc<dyn HealthProbe> = if ports.http {
            Arc::new(HttpProbe::new())
        } else {
            Arc::new(Unused)
        };
        let alarms: Arc<dyn AlarmReader> = if ports.cloudwatch {
            Arc::new(cloudwatch::CloudWatchAlarms::from_sdk(&self.sdk))
        } else {
            Arc::new(Unused)
        };
        let services = Services::new(
            store,
            builds,
            deployer,
            registry,
            notifier,
            secret_source,
            Arc::new(SystemClock),
            self.config.settings.clone(),
        );
        let services = if P::PROFILE.function == profiles::CONTROL.function {
            // control records verified callers: it executes their signed STS requests
            services.with_caller_verifier(Arc::new(sts::StsVerifier::new(
                sts::StsEndpoint::from_sdk(&self.sdk),
                Arc::new(SystemClock),
            )))
        } else {
            services
        };
        let services = services
            .with_capabilities(P::PROFILE.can)
            .with_verification(probe, alarms);
        if !ports.github {
            return services;
        }
        // its TLS client is built on first use: a cold start pays nothing for it
        services.with_feedback(Arc::new(github::GitHubApi::new()))
    }
}

/// Every port and every capability: what [`aws_services`] wires (not a deployed function; it
/// records verified callers as control does).
struct Everything;

impl FunctionProfile for Everything {
    const PROFILE: Profile = Profile {
        function: profiles::CONTROL.function,
        ports: Ports {
            codebuild: true,
            ecs: true,
            ecr: true,
            sns: true,
            secrets: true,
            github: true,
            cloudwatch: true,
            http: true,
        },
        can: Capabilities::ALL,
    };
}

/// Every port backed by AWS with every capability (the local sandbox narrows it per function
/// with [`Profile::can`]; tests).
pub fn aws_services(sdk: &aws_config::SdkConfig, config: &Config) -> Services {
    Wiring {
        sdk: sdk.clone(),
        config: config.clone(),
    }
    .services::<Everything>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_every_missing_variable() {
        let err =
            Config::from_lookup(|k| (k == "SHIPGATE_TABLE").then(|| "t".to_string())).unwrap_err();
        assert_eq!(
            err.0,
            vec![
                "SHIPGATE_WEBHOOK_SECRET_ID",
                "SHIPGATE_SIGNING_KEY_ID",
                "SHIPGATE_PUBLIC_URL"
            ]
        );
        assert!(err.to_string().contains("SHIPGATE_PUBLIC_URL"));
        let ok = Config::from_lookup(|k| Some(format!("v-{k}"))).unwrap();
        assert_eq!(ok.table, "v-SHIPGATE_TABLE");
        assert_eq!(ok.settings.public_url, "v-SHIPGATE_PUBLIC_URL");
    }

    #[test]
    fn a_capability_needs_its_ports() {
        for p in profiles::ALL {
            let (can, ports) = (p.can, p.ports);
            assert!(!can.start_build || ports.codebuild, "{}", p.function);
            // smoke tests start in a verification step
            assert!(
                !can.start_smoke || (ports.codebuild && can.verify),
                "{}: smoke tests",
                p.function
            );
            assert!(
                !(can.deploy_test || can.deploy_prod) || ports.ecs,
                "{}",
                p.function
            );
            assert!(
                !(can.request_approval || can.notify) || ports.sns,
                "{}",
                p.function
            );
            assert!(
                !can.request_approval || ports.secrets,
                "{}: signs links",
                p.function
            );
            assert!(
                !can.feedback || (ports.github && ports.secrets),
                "{}: GitHub feedback needs its API and the token",
                p.function
            );
            assert_eq!(
                profiles::by_name(&format!("shipgate-{}", p.function)),
                Some(&p)
            );
        }
        assert!(profiles::by_name("nope").is_none());
        // only approvals and control may deploy to production
        let prod: Vec<&str> = profiles::ALL
            .iter()
            .filter(|p| p.can.deploy_prod)
            .map(|p| p.function)
            .collect();
        assert_eq!(prod, ["approvals", "control"]);
        // verification needs its ports; the automatic rollback of production only where
        // verification runs (it points prod back at a registered revision), and production is
        // verified (bakes read alarms) only there
        for p in profiles::ALL {
            assert!(!p.can.verify || p.ports.http, "{}", p.function);
            assert!(
                !p.can.roll_back_prod || (p.can.verify && p.ports.ecs && p.ports.cloudwatch),
                "{}",
                p.function
            );
        }
        let prod_verifiers: Vec<&str> = profiles::ALL
            .iter()
            .filter(|p| p.can.verify && p.can.roll_back_prod)
            .map(|p| p.function)
            .collect();
        assert_eq!(prod_verifiers, ["deploy-events"]);
    }
}
