//! The SNS calls of `shipgate approvers` (and doctor's filter-policy check), with the operator's
//! credentials; the SDK types stay in this file. Bounded: at most [`MAX_PAGES`] pages of
//! ListSubscriptionsByTopic (100 subscriptions each), every call within [`OPERATION_TIMEOUT`].

use std::time::Duration;

use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::report::{Attributes, Subscription};

/// Most pages of ListSubscriptionsByTopic read (SNS answers 100 subscriptions a page).
pub const MAX_PAGES: usize = 20;
/// Most confirmed subscriptions whose attributes are read concurrently.
const CONCURRENT_READS: usize = 8;
/// One call, retries included (an attempt: [`ATTEMPT_TIMEOUT`]).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an SNS call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnsError {
    /// The topic does not exist (`NotFound`).
    NoTopic,
    /// SNS refused (its code and message): exit 1.
    Refused { code: String, message: String },
    /// SNS could not be reached or answered garbage: exit 3.
    Unreachable(String),
}

impl std::fmt::Display for SnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnsError::NoTopic => write!(f, "the topic does not exist"),
            SnsError::Refused { code, message } => write!(f, "{code}: {message}"),
            SnsError::Unreachable(e) => write!(f, "{e}"),
        }
    }
}

fn error<E, R>(e: SdkError<E, R>) -> SnsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match (&e, e.code()) {
        (_, Some("NotFound" | "NotFoundException")) => SnsError::NoTopic,
        (SdkError::ServiceError(_), code) => SnsError::Refused {
            code: code.unwrap_or("error").to_string(),
            message: e.message().unwrap_or_default().to_string(),
        },
        _ => SnsError::Unreachable(DisplayErrorContext(e).to_string()),
    }
}

/// The SNS client of `sdk` (endpoint from `AWS_ENDPOINT_URL[_SNS]` as every SDK client), with
/// the timeouts above.
pub fn client(sdk: &aws_config::SdkConfig) -> aws_sdk_sns::Client {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(OPERATION_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .build();
    aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .build(),
    )
}

/// Every subscription of `topic_arn` (at most [`MAX_PAGES`] pages; `true`: there were more),
/// with the attributes of the confirmed ones.
pub async fn subscriptions(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
) -> Result<(Vec<Subscription>, bool), SnsError> {
    let mut listed = Vec::new();
    let mut next: Option<String> = None;
    let mut truncated = false;
    for page in 0..MAX_PAGES {
        let out = sns
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .set_next_token(next.clone())
            .send()
            .await
            .map_err(error)?;
        for s in out.subscriptions() {
            let arn = s
                .subscription_arn()
                .filter(|a| a.starts_with("arn:"))
                .map(str::to_string);
            listed.push(Subscription {
                arn,
                protocol: s.protocol().unwrap_or_default().to_string(),
                endpoint: s.endpoint().unwrap_or_default().to_string(),
                attributes: Attributes::Unread,
            });
        }
        let token = out
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() || token == next {
            break;
        }
        next = token;
        if page + 1 == MAX_PAGES {
            truncated = true;
        }
    }
    // the attributes of the confirmed ones, a few at a time
    let mut read = listed;
    for (n, chunk) in read.chunks_mut(CONCURRENT_READS).enumerate() {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, s) in chunk.iter().enumerate() {
            if let Some(arn) = s.arn.clone() {
                let sns = sns.clone();
                tasks.spawn(async move { (i, attributes(&sns, &arn).await) });
            }
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((i, a)) => chunk[i].attributes = a,
                Err(e) => {
                    return Err(SnsError::Unreachable(format!(
                        "reading subscription attributes (batch {n}): {e}"
                    )))
                }
            }
        }
    }
    Ok((read, truncated))
}

/// GetSubscriptionAttributes of one subscription: its filter policy and how it was confirmed.
pub async fn attributes(sns: &aws_sdk_sns::Client, arn: &str) -> Attributes {
    match sns
        .get_subscription_attributes()
        .subscription_arn(arn)
        .send()
        .await
    {
        Ok(out) => {
            let get = |k: &str| out.attributes().and_then(|a| a.get(k)).cloned();
            Attributes::Read {
                filter_policy: get("FilterPolicy").filter(|p| !p.trim().is_empty()),
                filter_policy_scope: get("FilterPolicyScope"),
                confirmation_authenticated: get("ConfirmationWasAuthenticated")
                    .map(|v| v.eq_ignore_ascii_case("true")),
            }
        }
        Err(e) => Attributes::Failed {
            error: error(e).to_string(),
        },
    }
}

/// Whether the subscription `arn` still waits for confirmation (`PendingConfirmation`).
pub async fn pending(sns: &aws_sdk_sns::Client, arn: &str) -> Result<bool, SnsError> {
    let out = sns
        .get_subscription_attributes()
        .subscription_arn(arn)
        .send()
        .await
        .map_err(error)?;
    Ok(out
        .attributes()
        .and_then(|a| a.get("PendingConfirmation"))
        .is_some_and(|v| v.eq_ignore_ascii_case("true")))
}

/// Subscribe `email` with `filter_policy` (scope MessageAttributes); answers the subscription
/// ARN, or `None` when SNS answers `pending confirmation` instead.
pub async fn subscribe(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    email: &str,
    filter_policy: &str,
) -> Result<Option<String>, SnsError> {
    let out = sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("email")
        .endpoint(email)
        .attributes("FilterPolicyScope", "MessageAttributes")
        .attributes("FilterPolicy", filter_policy)
        .return_subscription_arn(true)
        .send()
        .await
        .map_err(error)?;
    Ok(out
        .subscription_arn()
        .filter(|a| a.starts_with("arn:"))
        .map(str::to_string))
}

/// Set the filter policy of a confirmed subscription (the scope first: SNS checks the policy
/// against it).
pub async fn set_filter_policy(
    sns: &aws_sdk_sns::Client,
    arn: &str,
    filter_policy: &str,
) -> Result<(), SnsError> {
    for (name, value) in [
        ("FilterPolicyScope", "MessageAttributes"),
        ("FilterPolicy", filter_policy),
    ] {
        sns.set_subscription_attributes()
            .subscription_arn(arn)
            .attribute_name(name)
            .attribute_value(value)
            .send()
            .await
            .map_err(error)?;
    }
    Ok(())
}

pub async fn unsubscribe(sns: &aws_sdk_sns::Client, arn: &str) -> Result<(), SnsError> {
    sns.unsubscribe()
        .subscription_arn(arn)
        .send()
        .await
        .map_err(error)?;
    Ok(())
}
