//! `Notifier` on SNS.

use async_trait::async_trait;
use aws_sdk_sns::Client;

use super::classify;
use crate::ports::{Notice, Notifier, ServiceError};

pub struct SnsNotifier {
    client: Client,
}

impl SnsNotifier {
    pub fn new(client: Client) -> SnsNotifier {
        SnsNotifier { client }
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn publish(&self, topic_arn: &str, notice: &Notice) -> Result<String, ServiceError> {
        let out = self
            .client
            .publish()
            .topic_arn(topic_arn)
            .subject(&notice.subject)
            .message(&notice.body)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}
