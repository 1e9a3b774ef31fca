//! `shipgate approvers list|add|remove`: the approvers' e-mail subscriptions of a pipeline's
//! approval topic and their filter policies (issue 15, personal approval links).
//!
//! Every message shipgate publishes carries the message attribute `shipgate_audience`
//! (`shared::domain::audience`): `all` for notices, the approver's e-mail for their personal
//! link. An approver's subscription must have the filter policy
//! `{"shipgate_audience": ["all", "<their e-mail>"]}`, or it receives every approver's link.
//! These commands call SNS directly with the operator's credentials (as `shipgate logs` reads
//! CloudWatch Logs); the topic and the approver list come from the pipeline through control.
//! The join of approvers and subscriptions is pure ([`report::report`]).

pub mod report;
pub mod sns;

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;
use shared::domain::{approval_policy, audience};
use shared::protocol::{Answer, ControlRequest, ControlResponse, ShowPipeline};

use crate::client::ControlClient;
use crate::{output, Remote};
use report::{FilterState, Subscription, SubscriptionState};
use sns::SnsError;

/// Which topic: the pipeline's, or one named.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct TopicArgs {
    /// The pipeline: its approval topic (`approval.topic_arn`) and its approver list.
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
    /// An SNS topic instead of a pipeline's (no approver list to compare with).
    #[arg(long, value_name = "ARN")]
    pub topic_arn: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ApproversCommand {
    /// The pipeline's approvers joined with the topic's subscriptions: per approver whether they
    /// are listed, subscribed (confirmed / pending confirmation / missing) and filtered to their
    /// own link; a WARNING for every mailbox without its filter policy.
    #[command(
        after_help = "Examples:\n  shipgate approvers list --pipeline hello\n  shipgate approvers list --topic-arn arn:aws:sns:eu-west-1:123456789012:shipgate-approvals --output json"
    )]
    List {
        #[command(flatten)]
        topic: TopicArgs,
    },
    /// Subscribe an approver's e-mail with their filter policy (idempotent: an existing
    /// subscription gets its filter policy set right). They must then confirm it, authenticated.
    #[command(
        after_help = "Examples:\n  shipgate approvers add alice@example.com --pipeline hello\n\nThen have the approver send you the address of the confirmation mail's link (not click it) and:\n  aws sns confirm-subscription --topic-arn ARN --authenticate-on-unsubscribe true --token TOKEN\n(see docs/approvals.md, \"Managing approvers\")."
    )]
    Add {
        /// The approver's e-mail address (as in the pipeline's approval.approvers).
        email: String,
        #[command(flatten)]
        topic: TopicArgs,
    },
    /// Unsubscribe an approver's e-mail subscription(s) from the topic.
    #[command(
        after_help = "Example:\n  shipgate approvers remove alice@example.com --pipeline hello"
    )]
    Remove {
        email: String,
        #[command(flatten)]
        topic: TopicArgs,
    },
}

/// The topic and (with `--pipeline`) the approver list.
struct Target {
    pipeline: Option<String>,
    topic_arn: String,
    approvers: Option<Vec<String>>,
}

impl Target {
    fn args(&self) -> String {
        report::target_args(self.pipeline.as_deref(), &self.topic_arn)
    }

    fn listed(&self, email: &str) -> Option<bool> {
        self.approvers
            .as_ref()
            .map(|list| list.iter().any(|a| audience::approver(a) == email))
    }
}

/// An SNS topic ARN (`arn:PARTITION:sns:REGION:ACCOUNT:NAME`), bounded.
fn valid_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    arn.len() <= 1024
        && parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "sns"
        && parts.iter().all(|p| !p.is_empty())
        && arn.bytes().all(|b| b.is_ascii_graphic())
}

/// The e-mail argument, checked as the pipeline checks `approval.approvers[].email`.
fn email_arg(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    if approval_policy::valid_email(trimmed) {
        Ok(audience::approver(trimmed))
    } else {
        Err(format!(
            "{:?} is not an e-mail address (name@domain, as in approval.approvers); nothing was changed",
            shared::domain::limits::excerpt(raw, 80)
        ))
    }
}

async fn target(client: &ControlClient, topic: &TopicArgs) -> Result<Target, ExitCode> {
    if let Some(arn) = &topic.topic_arn {
        if !valid_topic_arn(arn) {
            eprintln!(
                "error: --topic-arn {:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME); nothing was changed",
                shared::domain::limits::excerpt(arn, 80)
            );
            return Err(ExitCode::from(1));
        }
        return Ok(Target {
            pipeline: None,
            topic_arn: arn.clone(),
            approvers: None,
        });
    }
    let name = topic.pipeline.clone().unwrap_or_default();
    let request = ControlRequest::ShowPipeline(ShowPipeline {
        pipeline: name.clone(),
        history: false,
    });
    let raw = client.invoke(&request).await.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(3)
    })?;
    match Answer::decode(&request, raw) {
        Ok(Answer::Done(done)) => match *done {
            ControlResponse::PipelineShown(shown) => {
                let d = shown.pipeline.definition;
                Ok(Target {
                    pipeline: Some(d.name.clone()),
                    topic_arn: d.approval.topic_arn.clone(),
                    approvers: Some(
                        d.approval
                            .approvers
                            .iter()
                            .map(|a| a.email.clone())
                            .collect(),
                    ),
                })
            }
            _ => {
                eprintln!("error: control answered something other than a pipeline");
                Err(ExitCode::from(3))
            }
        },
        Ok(Answer::Refused(err)) => {
            output::print_error(&err);
            if err.code == "not_found" {
                eprintln!("  (`shipgate pipeline list` shows the pipelines); nothing was changed");
            }
            Err(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("error: {}", client.bad_answer(&e));
            Err(ExitCode::from(3))
        }
    }
}

/// An SNS failure as a message and exit code (1 refused, 3 unreachable).
fn sns_failed(call: &str, topic_arn: &str, e: &SnsError) -> ExitCode {
    match e {
        SnsError::NoTopic => {
            eprintln!("error: topic {topic_arn} does not exist (set approval.topic_arn to the stack's ApprovalTopicArn output)");
            ExitCode::from(1)
        }
        SnsError::Refused { code, .. } => {
            let hint = if code.contains("Authorization") || code.contains("AccessDenied") {
                " (the stack's OperatorPolicyArn allows managing the approval topic's subscriptions)"
            } else {
                ""
            };
            eprintln!("error: {call} on {topic_arn} was refused: {e}{hint}");
            ExitCode::from(1)
        }
        SnsError::Unreachable(_) => {
            eprintln!("error: could not reach SNS for {call}: {e}\n  (check AWS credentials and region; for the local sandbox: set -a; . .shipgate/dev.env)");
            ExitCode::from(3)
        }
    }
}

pub async fn run(command: ApproversCommand, remote: Remote) -> ExitCode {
    remote.aws.init_logging();
    // the e-mail first: a bad one changes nothing and calls nothing
    let (email, topic) = match &command {
        ApproversCommand::List { topic } => (None, topic),
        ApproversCommand::Add { email, topic } | ApproversCommand::Remove { email, topic } => {
            match email_arg(email) {
                Ok(e) => (Some(e), topic),
                Err(message) => {
                    eprintln!("error: {message}");
                    return ExitCode::from(1);
                }
            }
        }
    };
    let client = ControlClient::new(&remote.function, &remote.aws).await;
    let target = match target(&client, topic).await {
        Ok(t) => t,
        Err(code) => return code,
    };
    let sns = sns::client(client.sdk());
    let (subscriptions, truncated) = match sns::subscriptions(&sns, &target.topic_arn).await {
        Ok(s) => s,
        Err(e) => return sns_failed("sns:ListSubscriptionsByTopic", &target.topic_arn, &e),
    };
    let json = remote.json();
    match (command, email) {
        (ApproversCommand::List { .. }, _) => {
            let r = report::report(
                target.pipeline.as_deref(),
                &target.topic_arn,
                target.approvers.as_deref(),
                &subscriptions,
                truncated,
            );
            if json {
                output::say(&serde_json::to_string_pretty(&r).unwrap_or_default());
            } else {
                output::say(output::inert(&report::render(&r)).trim_end());
            }
            ExitCode::SUCCESS
        }
        (ApproversCommand::Add { .. }, Some(email)) => {
            add(&sns, &target, &email, &subscriptions, json).await
        }
        (ApproversCommand::Remove { .. }, Some(email)) => {
            remove(&sns, &target, &email, &subscriptions, json).await
        }
        _ => ExitCode::from(1),
    }
}

/// How the approver confirms, authenticated (printed after `add` while pending).
fn confirm_how(email: &str, topic_arn: &str) -> String {
    format!(
        "next: {email} receives \"AWS Notification - Subscription Confirmation\" from SNS. They must NOT click
  its \"Confirm subscription\" link: every SNS mail has an unsubscribe link, mail scanners follow
  every link, and a subscription confirmed by clicking can be removed by that unsubscribe link.
  Have them copy the link's address (right-click, copy link) and send it to you; its Token=
  parameter is the token (SNS accepts it for 3 days). Then confirm it with
  AuthenticateOnUnsubscribe=true (unsubscribing then needs a signed call by the topic owner):
    aws sns confirm-subscription --topic-arn {topic_arn} --authenticate-on-unsubscribe true --token TOKEN"
    )
}

async fn add(
    sns: &aws_sdk_sns::Client,
    target: &Target,
    email: &str,
    subscriptions: &[Subscription],
    json: bool,
) -> ExitCode {
    let topic = &target.topic_arn;
    let policy = audience::filter_policy(email);
    let mine: Vec<&Subscription> = subscriptions.iter().filter(|s| s.is_of(email)).collect();
    let confirmed: Vec<&&Subscription> = mine.iter().filter(|s| s.arn.is_some()).collect();
    let mut said: Vec<String> = Vec::new();
    let mut arns: Vec<String> = Vec::new();
    let action;
    let mut state = SubscriptionState::Confirmed;
    let mut unauthenticated = false;
    if !confirmed.is_empty() {
        let mut fixed = false;
        for s in confirmed {
            let arn = s.arn.clone().unwrap_or_default();
            unauthenticated |= matches!(
                s.attributes,
                report::Attributes::Read {
                    confirmation_authenticated: Some(false),
                    ..
                }
            );
            match s.filter(email) {
                FilterState::Ok => said.push(format!(
                    "{email}: already subscribed ({}, confirmed) with its filter policy; nothing changed",
                    s.protocol
                )),
                was => {
                    if let Err(e) = sns::set_filter_policy(sns, &arn, &policy).await {
                        return sns_failed("sns:SetSubscriptionAttributes", topic, &e);
                    }
                    fixed = true;
                    let was = match was {
                        FilterState::Missing => "it had none: it received every approver's link",
                        FilterState::Wrong => "it had another one",
                        _ => "it could not be read",
                    };
                    said.push(format!(
                        "{email}: already subscribed ({}, confirmed); filter policy set to {policy} ({was})",
                        s.protocol
                    ));
                }
            }
            arns.push(arn);
        }
        action = if fixed {
            "filter_policy_set"
        } else {
            "unchanged"
        };
    } else {
        // none, or one pending confirmation (subscribing again sends the confirmation again)
        let resend = !mine.is_empty();
        match sns::subscribe(sns, topic, email, &policy).await {
            Ok(arn) => {
                let pending = match &arn {
                    Some(a) => sns::pending(sns, a).await.unwrap_or(true),
                    None => true,
                };
                state = if pending {
                    SubscriptionState::Pending
                } else {
                    SubscriptionState::Confirmed
                };
                said.push(format!(
                    "{email}: {} {topic} with filter policy {policy} ({})",
                    if resend {
                        "subscription pending confirmation: confirmation mail sent again for"
                    } else {
                        "subscribed to"
                    },
                    state.label()
                ));
                arns.extend(arn);
                action = if resend {
                    "confirmation_resent"
                } else {
                    "subscribed"
                };
            }
            Err(SnsError::Refused { code, message }) if resend && code == "InvalidParameter" => {
                eprintln!(
                    "error: {email} has a subscription pending confirmation with other attributes (SNS: {message}).\n  SNS can neither change nor delete a pending subscription: confirm it (see below), then run\n  `shipgate approvers add {email} {}` again to set its filter policy; or wait until SNS drops it (3 days).\n  nothing was changed",
                    target.args()
                );
                eprintln!("{}", confirm_how(email, topic));
                return ExitCode::from(1);
            }
            Err(e) => return sns_failed("sns:Subscribe", topic, &e),
        }
    }

    let mut warnings = Vec::new();
    if target.approvers.as_ref().is_some_and(Vec::is_empty) {
        warnings.push(format!(
            "pipeline {} lists no approvers: {email} receives notices and the shared approval link (recorded as `email link (unverified name)`; docs/approvals.md)",
            target.pipeline.as_deref().unwrap_or_default()
        ));
    } else if target.listed(email) == Some(false) {
        warnings.push(format!(
            "{email} is not an approver of pipeline {}: they receive notices but no personal approval link.\n  add {{ email = \"{email}\", arn = \"arn:aws:iam::ACCOUNT:user/NAME\" }} to its approval.approvers and `shipgate pipeline apply FILE`",
            target.pipeline.as_deref().unwrap_or_default()
        ));
    }
    if unauthenticated {
        warnings.push(format!(
            "{email} was confirmed without AuthenticateOnUnsubscribe: the unsubscribe link in every mail removes them.\n  `shipgate approvers remove {email} {args}`, `shipgate approvers add {email} {args}`, and confirm as below",
            args = target.args()
        ));
    }
    if json {
        let doc = json!({
            "email": email,
            "topic_arn": topic,
            "pipeline": target.pipeline,
            "action": action,
            "state": state,
            "subscription_arns": arns,
            "filter_policy": policy,
            "listed": target.listed(email),
            "warnings": warnings,
        });
        output::say(&serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        for line in &said {
            output::say(line);
        }
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        if state == SubscriptionState::Pending || unauthenticated {
            output::say(&confirm_how(email, topic));
        }
    }
    ExitCode::SUCCESS
}

async fn remove(
    sns: &aws_sdk_sns::Client,
    target: &Target,
    email: &str,
    subscriptions: &[Subscription],
    json: bool,
) -> ExitCode {
    let topic = &target.topic_arn;
    let mine: Vec<&Subscription> = subscriptions.iter().filter(|s| s.is_of(email)).collect();
    let mut removed = Vec::new();
    let mut pending = 0;
    for s in &mine {
        match &s.arn {
            Some(arn) => {
                if let Err(e) = sns::unsubscribe(sns, arn).await {
                    return sns_failed("sns:Unsubscribe", topic, &e);
                }
                removed.push(arn.clone());
            }
            None => pending += 1,
        }
    }
    let mut lines = Vec::new();
    if mine.is_empty() {
        lines.push(format!(
            "{email}: no subscription on {topic}; nothing to remove"
        ));
    }
    for arn in &removed {
        lines.push(format!("{email}: unsubscribed {arn}"));
    }
    let mut warnings = Vec::new();
    if pending > 0 {
        warnings.push(format!(
            "{email} has a subscription pending confirmation: SNS cannot unsubscribe a pending subscription (it lists no ARN for it).\n  SNS deletes it after 3 days unless it is confirmed: ask {email} not to confirm it, then run this again if they did"
        ));
    }
    if target.listed(email) == Some(true) {
        warnings.push(format!(
            "{email} is still an approver of pipeline {}: they may still approve with `shipgate approve`.\n  remove them from its approval.approvers and `shipgate pipeline apply FILE`",
            target.pipeline.as_deref().unwrap_or_default()
        ));
    }
    if json {
        let doc = json!({
            "email": email,
            "topic_arn": topic,
            "pipeline": target.pipeline,
            "unsubscribed": removed,
            "pending_left": pending,
            "warnings": warnings,
        });
        output::say(&serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        for line in &lines {
            output::say(line);
        }
        for w in &warnings {
            eprintln!("warning: {w}");
        }
    }
    if pending > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_checked_before_any_call() {
        assert_eq!(
            email_arg(" Alice@Example.com ").as_deref(),
            Ok("alice@example.com")
        );
        for bad in [
            "alice",
            "a@b",
            "<a@b.org>",
            "a b@c.org",
            "",
            &format!("{}@x.org", "a".repeat(260)),
        ] {
            let e = email_arg(bad).unwrap_err();
            assert!(e.contains("nothing was changed"), "{bad}: {e}");
        }
        assert!(valid_topic_arn(
            "arn:aws:sns:us-east-1:123456789012:shipgate-approvals"
        ));
        for bad in [
            "shipgate-approvals",
            "arn:aws:sqs:us-east-1:1:q",
            "arn:aws:sns:us-east-1:1",
            "arn:aws:sns::1:t",
            "arn:aws:sns:us-east-1:1:t x",
        ] {
            assert!(!valid_topic_arn(bad), "{bad}");
        }
    }
}
