//! `BuildRunner` on CodeBuild.

use async_trait::async_trait;
use aws_sdk_codebuild::types::{EnvironmentVariable, EnvironmentVariableType, StatusType};
use aws_sdk_codebuild::Client;

use super::classify;
use crate::ports::{BuildObservation, BuildRequest, BuildRunner, ServiceError};

pub struct CodeBuildRunner {
    /// Built on first use (`super::lazy`).
    client: super::lazy::Lazy<Client>,
}

impl CodeBuildRunner {
    /// Around a client already built.
    pub fn new(client: Client) -> CodeBuildRunner {
        CodeBuildRunner {
            client: super::lazy::Lazy::ready(client),
        }
    }

    /// Its client is built from `sdk` on the first call (once per cold start).
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> CodeBuildRunner {
        CodeBuildRunner {
            client: super::lazy::Lazy::sdk_client(sdk, Client::new),
        }
    }
}

fn status_name(s: &StatusType) -> String {
    s.as_str().to_string()
}

#[async_trait]
impl BuildRunner for CodeBuildRunner {
    async fn start_build(&self, request: &BuildRequest) -> Result<String, ServiceError> {
        let env = request
            .environment
            .iter()
            .map(|(k, v)| {
                EnvironmentVariable::builder()
                    .name(k)
                    .value(v)
                    .r#type(EnvironmentVariableType::Plaintext)
                    .build()
                    .map_err(|e| ServiceError::Rejected(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .get()?
            .start_build()
            .project_name(&request.project)
            // empty: the project's own source version (smoke test projects)
            .set_source_version(Some(request.source_version.clone()).filter(|v| !v.is_empty()))
            .set_environment_variables_override(Some(env))
            .idempotency_token(&request.idempotency_token)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        out.build_value()
            .and_then(|b| b.id())
            .map(str::to_string)
            .ok_or_else(|| ServiceError::Unavailable("StartBuild answered no build id".into()))
    }

    async fn stop_build(&self, build_id: &str) -> Result<(), ServiceError> {
        self.client
            .get()?
            .stop_build()
            .id(build_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e))
    }

    async fn get_build(&self, build_id: &str) -> Result<BuildObservation, ServiceError> {
        let out = self
            .client
            .get()?
            .batch_get_builds()
            .ids(build_id)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let build = out
            .builds()
            .first()
            .ok_or_else(|| ServiceError::NotFound(format!("build {build_id}")))?;
        let failing = build.phases().iter().find(|p| {
            p.phase_status()
                .is_some_and(|s| !matches!(s, StatusType::Succeeded | StatusType::InProgress))
        });
        let reason = failing.and_then(|p| {
            let msgs: Vec<String> = p
                .contexts()
                .iter()
                .filter_map(|c| match (c.status_code(), c.message()) {
                    (Some(code), Some(m)) if !m.is_empty() => Some(format!("{code}: {m}")),
                    (_, Some(m)) if !m.is_empty() => Some(m.to_string()),
                    _ => None,
                })
                .collect();
            (!msgs.is_empty()).then(|| msgs.join("; "))
        });
        Ok(BuildObservation {
            build_id: build_id.to_string(),
            status: build
                .build_status()
                .map(status_name)
                .unwrap_or_else(|| "IN_PROGRESS".into()),
            phase: failing
                .and_then(|p| p.phase_type())
                .map(|t| t.as_str().to_string())
                .or_else(|| build.current_phase().map(str::to_string)),
            reason,
            logs_link: build.logs().and_then(|l| l.deep_link()).map(str::to_string),
            resolved_source_version: build
                .resolved_source_version()
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            exported_variables: build
                .exported_environment_variables()
                .iter()
                .filter_map(|v| Some((v.name()?.to_string(), v.value()?.to_string())))
                .collect(),
        })
    }
}
