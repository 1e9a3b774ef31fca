//! `Notifier` on SNS.

use async_trait::async_trait;
use aws_sdk_sns::Client;

use super::classify;
use crate::domain::limits::structured_message;
use crate::domain::limits::{ascii_line, excerpt, MAX_NOTICE_BYTES, MAX_SUBJECT_CHARS};
use crate::ports::{Notice, Notifier, ServiceError};

pub struct SnsNotifier {
    /// Built on first use (`super::lazy`).
    client: super::lazy::Lazy<Client>,
}

impl SnsNotifier {
    /// Around a client already built.
    pub fn new(client: Client) -> SnsNotifier {
        SnsNotifier {
            client: super::lazy::Lazy::ready(client),
        }
    }

    /// Its client is built from `sdk` on the first call (once per cold start).
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> SnsNotifier {
        SnsNotifier {
            client: super::lazy::Lazy::sdk_client(sdk, Client::new),
        }
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn publish(&self, topic_arn: &str, notice: &Notice) -> Result<String, ServiceError> {
        let publish = self
            .client
            .get()?
            .publish()
            .topic_arn(topic_arn)
            // last resort: whatever a notice holds, SNS never refuses it for its size or subject
            .subject(ascii_line(&notice.subject, MAX_SUBJECT_CHARS));
        let publish = match &notice.chat {
            // one message per protocol: e-mail gets the text, chat (https) the Amazon Q JSON
            Some(chat) => publish
                .message_structure("json")
                .message(structured_message(&notice.body, chat)),
            None => publish.message(excerpt(&notice.body, MAX_NOTICE_BYTES)),
        };
        let out = publish.send().await.map_err(|e| classify(&e))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}
