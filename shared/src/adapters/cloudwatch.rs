//! CloudWatch alarm states for the production bake: one `DescribeAlarms` call by name (the
//! watched alarms are at most `MAX_ALARMS`, one page).

use aws_sdk_cloudwatch::Client;

use crate::domain::verify::AlarmState;
use crate::ports::{AlarmReader, ServiceError};

pub struct CloudWatchAlarms {
    /// Built on first use (`super::lazy`).
    client: super::lazy::Lazy<Client>,
}

impl CloudWatchAlarms {
    /// Around a client already built.
    pub fn new(client: Client) -> CloudWatchAlarms {
        CloudWatchAlarms {
            client: super::lazy::Lazy::ready(client),
        }
    }

    /// Its client is built from `sdk` on the first call (once per cold start).
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> CloudWatchAlarms {
        CloudWatchAlarms {
            client: super::lazy::Lazy::sdk_client(sdk, Client::new),
        }
    }
}

#[async_trait::async_trait]
impl AlarmReader for CloudWatchAlarms {
    async fn alarm_states(
        &self,
        names: &[String],
    ) -> Result<Vec<(String, AlarmState)>, ServiceError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .get()?
            .describe_alarms()
            .set_alarm_names(Some(names.to_vec()))
            .max_records(100)
            .send()
            .await
            .map_err(|e| {
                let text = aws_sdk_cloudwatch::error::DisplayErrorContext(&e).to_string();
                if text.contains("AccessDenied") {
                    ServiceError::Rejected(text)
                } else {
                    ServiceError::Unavailable(text)
                }
            })?;
        Ok(out
            .metric_alarms()
            .iter()
            .filter_map(|a| {
                let name = a.alarm_name()?.to_string();
                let state = AlarmState::parse(a.state_value()?.as_str())?;
                Some((name, state))
            })
            .chain(out.composite_alarms().iter().filter_map(|a| {
                let name = a.alarm_name()?.to_string();
                let state = AlarmState::parse(a.state_value()?.as_str())?;
                Some((name, state))
            }))
            .collect())
    }
}
