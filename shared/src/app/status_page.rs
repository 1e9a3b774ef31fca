//! The read-only status page of a pipeline: its signed link and the data it shows.
//!
//! A link is `${public_url}/status/{token}` with a [`status_token`] signed by the approval
//! signing key under its own context: it can only ever show a page, never approve.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tracing::{instrument, warn};

use super::{AppError, Services};
use crate::domain::links::{execution_links, ExecutionLinks};
use crate::domain::status_token::{self, StatusClaims, StatusTokenError, MAX_LINK_VALIDITY};
use crate::domain::strip::{strip, StripCell};
use crate::domain::{Environment, EnvironmentRevisions, Execution, PipelineDefinition};
use crate::ports::rotating_secrets;

/// How many recent executions the page shows.
pub const RECENT_EXECUTIONS: usize = 15;

/// A signed status page link of `pipeline`, valid for `validity` (at most 90 days).
pub async fn status_page_link(
    svc: &Services,
    pipeline: &str,
    validity: Duration,
) -> Result<(String, DateTime<Utc>), AppError> {
    // the token carries whole seconds
    let at = svc.now() + validity.min(MAX_LINK_VALIDITY);
    let expires_at = DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at);
    let key = svc.secrets.get(&svc.settings.signing_key_id).await?;
    let keys = rotating_secrets(key.expose());
    let signing_key = keys.first().map(String::as_bytes).unwrap_or_default();
    let token = status_token::sign(
        signing_key,
        &StatusClaims {
            pipeline: pipeline.to_string(),
            expires_at,
        },
    );
    Ok((
        super::notices::status_page_url(&svc.settings.public_url, &token),
        expires_at,
    ))
}

/// Why a status link shows no page. Each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum StatusLinkError {
    /// 400
    #[error("This status link is malformed. Copy the whole link, or get a new one with `shipgate status PIPELINE --link`.")]
    Malformed,
    /// 403
    #[error("This status link is not valid: it was altered, or the signing key was rotated since it was issued. Get a new one with `shipgate status PIPELINE --link`.")]
    Forged,
    /// 410
    #[error("This status link expired at {}. Get a new one with `shipgate status PIPELINE --link`.", .0.format("%Y-%m-%d %H:%M UTC"))]
    Expired(DateTime<Utc>),
    /// 404
    #[error("The pipeline of this status link no longer exists.")]
    Unknown,
    #[error(transparent)]
    App(#[from] AppError),
}

impl StatusLinkError {
    pub fn http_status(&self) -> u16 {
        match self {
            StatusLinkError::Malformed => 400,
            StatusLinkError::Forged => 403,
            StatusLinkError::Unknown => 404,
            StatusLinkError::Expired(_) => 410,
            StatusLinkError::App(e) if e.is_retryable() => 503,
            StatusLinkError::App(_) => 500,
        }
    }
}

/// One execution on the page: the execution, its strip and its links.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionRow {
    pub execution: Execution,
    pub strip: Vec<StripCell>,
    pub links: ExecutionLinks,
}

/// What the status page shows.
#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    pub pipeline: PipelineDefinition,
    pub test: Option<EnvironmentRevisions>,
    pub prod: Option<EnvironmentRevisions>,
    /// Newest first.
    pub recent: Vec<ExecutionRow>,
    pub expires_at: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
}

impl StatusView {
    pub fn environment(&self, env: Environment) -> Option<&EnvironmentRevisions> {
        match env {
            Environment::Test => self.test.as_ref(),
            Environment::Prod => self.prod.as_ref(),
        }
    }
}

/// Check a status token and read the page's data. Never changes anything.
#[instrument(skip_all)]
pub async fn view(svc: &Services, raw_token: &str) -> Result<StatusView, StatusLinkError> {
    let key = svc
        .secrets
        .get(&svc.settings.signing_key_id)
        .await
        .map_err(AppError::from)?;
    let keys = rotating_secrets(key.expose());
    let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
    let claims = match status_token::verify_any(&keys, raw_token, svc.now()) {
        Ok(c) => c,
        Err(StatusTokenError::Malformed) => return Err(StatusLinkError::Malformed),
        Err(StatusTokenError::BadSignature) => {
            warn!("status token with a bad signature");
            return Err(StatusLinkError::Forged);
        }
        Err(StatusTokenError::Expired(at)) => return Err(StatusLinkError::Expired(at)),
    };
    let pipeline = match svc.pipeline(&claims.pipeline).await {
        Ok(p) => p,
        Err(AppError::NotFound(_)) => return Err(StatusLinkError::Unknown),
        Err(e) => return Err(e.into()),
    };
    let test = super::releases::shown(svc, &pipeline.name, Environment::Test).await?;
    let prod = super::releases::shown(svc, &pipeline.name, Environment::Prod).await?;
    let prod_sha = prod
        .as_ref()
        .and_then(EnvironmentRevisions::current)
        .map(|r| r.commit.sha.clone());
    let recent = svc
        .store
        .list_executions(&pipeline.name, RECENT_EXECUTIONS)
        .await
        .map_err(AppError::from)?
        .into_iter()
        .map(|execution| ExecutionRow {
            strip: strip(&execution),
            links: execution_links(&pipeline, &execution, prod_sha.as_deref()),
            execution,
        })
        .collect();
    Ok(StatusView {
        pipeline,
        test,
        prod,
        recent,
        expires_at: claims.expires_at,
        generated_at: svc.now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_world::FakeWorld;

    fn token_of(url: &str) -> &str {
        url.rsplit('/').next().unwrap()
    }

    #[tokio::test]
    async fn a_link_shows_its_pipeline_until_it_expires() {
        let w = FakeWorld::with_pipeline().await;
        let (url, expires) = status_page_link(&w.services, "hello", Duration::days(1))
            .await
            .unwrap();
        assert!(
            url.starts_with("https://shipgate.example.com/status/"),
            "{url}"
        );
        let v = view(&w.services, token_of(&url)).await.unwrap();
        assert_eq!(v.pipeline.name, "hello");
        assert_eq!(v.expires_at, expires);
        w.clock.advance(Duration::days(2));
        assert!(matches!(
            view(&w.services, token_of(&url)).await,
            Err(StatusLinkError::Expired(_))
        ));
        // validity is capped
        let (_, far) = status_page_link(&w.services, "hello", Duration::days(1000))
            .await
            .unwrap();
        assert_eq!(
            far.timestamp(),
            (w.services.now() + MAX_LINK_VALIDITY).timestamp()
        );
    }

    #[tokio::test]
    async fn bad_links_are_refused() {
        let w = FakeWorld::with_pipeline().await;
        for (raw, code) in [("x", 400), ("", 400)] {
            assert_eq!(
                view(&w.services, raw).await.unwrap_err().http_status(),
                code
            );
        }
        let (url, _) = status_page_link(&w.services, "nope", Duration::days(1))
            .await
            .unwrap();
        assert_eq!(
            view(&w.services, token_of(&url))
                .await
                .unwrap_err()
                .http_status(),
            404
        );
        let forged = status_token::sign(
            b"another key",
            &StatusClaims {
                pipeline: "hello".into(),
                expires_at: w.services.now() + Duration::days(1),
            },
        );
        assert_eq!(
            view(&w.services, &forged).await.unwrap_err().http_status(),
            403
        );
    }
}
