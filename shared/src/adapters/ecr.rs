//! `ImageRegistry` on ECR.

use async_trait::async_trait;
use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::types::{ImageDetail as EcrImage, ImageIdentifier};
use aws_sdk_ecr::Client;
use chrono::DateTime;

use super::classify;
use crate::ports::{ImageDetail, ImageRegistry, ServiceError};

pub struct EcrRegistry {
    /// Built on first use (`super::lazy`).
    client: super::lazy::Lazy<Client>,
}

impl EcrRegistry {
    /// Around a client already built.
    pub fn new(client: Client) -> EcrRegistry {
        EcrRegistry {
            client: super::lazy::Lazy::ready(client),
        }
    }

    /// Its client is built from `sdk` on the first call (once per cold start).
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> EcrRegistry {
        EcrRegistry {
            client: super::lazy::Lazy::sdk_client(sdk, Client::new),
        }
    }
}

fn detail(i: &EcrImage) -> Option<ImageDetail> {
    Some(ImageDetail {
        digest: i.image_digest()?.to_string(),
        tags: i.image_tags().to_vec(),
        pushed_at: i
            .image_pushed_at()
            .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
        size_bytes: i.image_size_in_bytes(),
    })
}

#[async_trait]
impl ImageRegistry for EcrRegistry {
    async fn find_image(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<ImageDetail>, ServiceError> {
        let result = self
            .client
            .get()?
            .describe_images()
            .repository_name(repository)
            .image_ids(ImageIdentifier::builder().image_tag(tag).build())
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.image_details().iter().find_map(detail)),
            Err(e) if e.code() == Some("ImageNotFoundException") => Ok(None),
            Err(e) => Err(classify(&e)),
        }
    }

    async fn find_digest(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<ImageDetail>, ServiceError> {
        let result = self
            .client
            .get()?
            .describe_images()
            .repository_name(repository)
            .image_ids(ImageIdentifier::builder().image_digest(digest).build())
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .image_details()
                .iter()
                .filter_map(detail)
                .find(|i| i.digest == digest)),
            // a malformed digest is "not there" too: the caller says what was asked for
            Err(e)
                if matches!(
                    e.code(),
                    Some("ImageNotFoundException") | Some("InvalidParameterException")
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(&e)),
        }
    }

    async fn list_images(&self, repository: &str) -> Result<Vec<ImageDetail>, ServiceError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .client
                .get()?
                .describe_images()
                .repository_name(repository)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| classify(&e))?;
            out.extend(page.image_details().iter().filter_map(detail));
            match page.next_token() {
                Some(t) => next = Some(t.to_string()),
                None => break,
            }
        }
        Ok(out)
    }

    async fn delete_images(
        &self,
        repository: &str,
        digests: &[String],
    ) -> Result<Vec<String>, ServiceError> {
        if digests.is_empty() {
            return Ok(Vec::new());
        }
        let ids = digests
            .iter()
            .map(|d| ImageIdentifier::builder().image_digest(d).build())
            .collect();
        let out = self
            .client
            .get()?
            .batch_delete_image()
            .repository_name(repository)
            .set_image_ids(Some(ids))
            .send()
            .await
            .map_err(|e| classify(&e))?;
        Ok(out
            .image_ids()
            .iter()
            .filter_map(|i| i.image_digest().map(str::to_string))
            .collect())
    }
}
