//! The approval e-mails, captured by an SQS subscription to the approval topic.

use serde::Serialize;

use crate::{aws_step, LocalError};

/// A message captured from the approval topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxMessage {
    pub subject: String,
    pub message: String,
    pub links: Vec<String>,
    /// Who it is for: its `shipgate_audience` message attribute (`all`, or one approver's
    /// address for their personal approval link).
    pub audience: String,
}

/// Every `http(s)://` link in a text.
pub fn links_in(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(|w| w.trim_end_matches(['.', ',', ')', '>']).to_string())
        .collect()
}

/// Take the messages waiting in the capture queue (each is returned once).
pub async fn drain_outbox(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<Vec<OutboxMessage>, LocalError> {
    let mut out = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .map_err(aws_step("sqs receive"))?;
        let messages = received.messages();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let body = m.body().unwrap_or_default();
            // SNS wraps the notice in a JSON envelope with Subject, Message and MessageAttributes
            let (subject, message, audience) = match serde_json::from_str::<serde_json::Value>(body)
            {
                Ok(v) => (
                    v["Subject"].as_str().unwrap_or_default().to_string(),
                    v["Message"].as_str().unwrap_or(body).to_string(),
                    v["MessageAttributes"][shared::domain::audience::ATTRIBUTE]["Value"]
                        .as_str()
                        .unwrap_or(shared::domain::audience::EVERYONE)
                        .to_string(),
                ),
                Err(_) => (
                    String::new(),
                    body.to_string(),
                    shared::domain::audience::EVERYONE.to_string(),
                ),
            };
            out.push(OutboxMessage {
                links: links_in(&message),
                subject,
                message,
                audience,
            });
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(aws_step("sqs delete"))?;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_links() {
        assert_eq!(
            links_in("open http://127.0.0.1:9000/approvals/abc.def\nor https://x.example/y)."),
            vec![
                "http://127.0.0.1:9000/approvals/abc.def",
                "https://x.example/y"
            ]
        );
    }
}
