//! `Notifier` on SNS.

use async_trait::async_trait;
use aws_sdk_sns::Client;

use super::classify;
use aws_sdk_sns::types::MessageAttributeValue;

use crate::domain::audience;
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

/// The attribute value: `all` when empty; an address is at most 254 bytes (validated), so the
/// attribute stays far below SNS's 256 KB message limit (attributes count towards it).
fn audience_value(audience: &str) -> String {
    let a = audience.trim();
    if a.is_empty() {
        audience::EVERYONE.to_string()
    } else {
        excerpt(a, 256)
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
            .subject(ascii_line(&notice.subject, MAX_SUBJECT_CHARS))
            // who it is for: subscriptions' filter policies (`audience::filter_policy`) match it
            .message_attributes(
                audience::ATTRIBUTE,
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(audience_value(&notice.audience))
                    .build()
                    .map_err(|e| ServiceError::Rejected(e.to_string()))?,
            );
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
