//! The pure part of `shipgate approvers`: which subscription of the approval topic belongs to
//! which approver, whether its filter policy lets through exactly the notices and that
//! approver's own personal link ([`audience::filter_policy`]), and what to tell the operator.
//! No SDK types: [`Subscription`] is what `sns.rs` read.

use serde::Serialize;
use shared::domain::audience;

/// The SNS protocols that deliver to a mailbox (a person): they need an approver's filter policy.
pub const EMAIL_PROTOCOLS: [&str; 2] = ["email", "email-json"];

/// One subscription of the topic as read from SNS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscription {
    /// `None`: pending confirmation (ListSubscriptionsByTopic answers `PendingConfirmation`
    /// instead of an ARN, and no attribute of it can be read).
    pub arn: Option<String>,
    pub protocol: String,
    pub endpoint: String,
    /// What GetSubscriptionAttributes said (confirmed subscriptions only).
    pub attributes: Attributes,
}

/// The attributes of a subscription that matter here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "read", rename_all = "snake_case")]
pub enum Attributes {
    /// Pending: not readable.
    Unread,
    /// GetSubscriptionAttributes failed (the message).
    Failed { error: String },
    Read {
        /// `FilterPolicy` (absent or empty: none).
        #[serde(skip_serializing_if = "Option::is_none")]
        filter_policy: Option<String>,
        /// `FilterPolicyScope` (absent: `MessageAttributes`, SNS's default).
        #[serde(skip_serializing_if = "Option::is_none")]
        filter_policy_scope: Option<String>,
        /// `ConfirmationWasAuthenticated`: confirmed with `AuthenticateOnUnsubscribe=true`.
        #[serde(skip_serializing_if = "Option::is_none")]
        confirmation_authenticated: Option<bool>,
    },
}

impl Subscription {
    pub fn is_email(&self) -> bool {
        EMAIL_PROTOCOLS.contains(&self.protocol.as_str())
    }

    /// An e-mail subscription of `email` (compared as the audience value: trimmed, lower case).
    pub fn is_of(&self, email: &str) -> bool {
        self.is_email() && audience::approver(&self.endpoint) == audience::approver(email)
    }

    pub fn state(&self) -> SubscriptionState {
        if self.arn.is_some() {
            SubscriptionState::Confirmed
        } else {
            SubscriptionState::Pending
        }
    }

    /// Whether its filter policy is the one [`audience::filter_policy`] makes for `email`.
    pub fn filter(&self, email: &str) -> FilterState {
        match &self.attributes {
            Attributes::Unread | Attributes::Failed { .. } => FilterState::Unknown,
            Attributes::Read {
                filter_policy,
                filter_policy_scope,
                ..
            } => match filter_policy.as_deref().map(str::trim) {
                None | Some("") | Some("{}") => FilterState::Missing,
                Some(policy) => {
                    let scope_ok = filter_policy_scope
                        .as_deref()
                        .is_none_or(|s| s == "MessageAttributes");
                    if scope_ok && policy_is_for(policy, email) {
                        FilterState::Ok
                    } else {
                        FilterState::Wrong
                    }
                }
            },
        }
    }

    fn filter_policy(&self) -> Option<&str> {
        match &self.attributes {
            Attributes::Read { filter_policy, .. } => filter_policy.as_deref(),
            _ => None,
        }
    }

    fn authenticated(&self) -> Option<bool> {
        match &self.attributes {
            Attributes::Read {
                confirmation_authenticated,
                ..
            } => *confirmation_authenticated,
            _ => None,
        }
    }
}

/// Whether `policy` lets through exactly the notices ([`audience::EVERYONE`]) and `email`'s own
/// messages, on the [`audience::ATTRIBUTE`] alone (keys and values in any order).
pub fn policy_is_for(policy: &str, email: &str) -> bool {
    let Ok(serde_json::Value::Object(o)) = serde_json::from_str::<serde_json::Value>(policy) else {
        return false;
    };
    let Some(serde_json::Value::Array(values)) = o.get(audience::ATTRIBUTE) else {
        return false;
    };
    let mut got: Vec<&str> = values.iter().filter_map(|v| v.as_str()).collect();
    got.sort_unstable();
    got.dedup();
    let who = audience::approver(email);
    let mut want = vec![audience::EVERYONE, who.as_str()];
    want.sort_unstable();
    o.len() == 1 && values.len() == got.len() && got == want
}

/// The filter policy of a subscription that is not a mailbox and should get notices only.
pub fn notices_only_policy() -> String {
    serde_json::json!({ audience::ATTRIBUTE: [audience::EVERYONE] }).to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionState {
    Confirmed,
    Pending,
    Missing,
}

impl SubscriptionState {
    pub fn label(self) -> &'static str {
        match self {
            SubscriptionState::Confirmed => "confirmed",
            SubscriptionState::Pending => "pending confirmation",
            SubscriptionState::Missing => "missing",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterState {
    /// Notices and this approver's own link.
    Ok,
    /// None: every message, every approver's personal link included.
    Missing,
    /// Another approver's, or not shipgate's.
    Wrong,
    /// Not readable (pending, or the read failed).
    Unknown,
}

impl FilterState {
    pub fn label(self) -> &'static str {
        match self {
            FilterState::Ok => "ok",
            FilterState::Missing => "missing",
            FilterState::Wrong => "wrong",
            FilterState::Unknown => "-",
        }
    }
}

/// One line of `shipgate approvers list`: an approver (listed or subscribed) and one of their
/// e-mail subscriptions (or none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub email: String,
    /// In the pipeline's `approval.approvers` (`None`: no pipeline given, `--topic-arn`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listed: Option<bool>,
    pub subscription: SubscriptionState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_arn: Option<String>,
    pub filter_policy: FilterState,
    /// Confirmed with AuthenticateOnUnsubscribe=true (`None`: not known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authenticated_unsubscribe: Option<bool>,
}

/// A subscription that is not a mailbox (sqs, https chat, lambda…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Other {
    pub protocol: String,
    pub endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_arn: Option<String>,
    /// `notices only` (filtered to audience `all`), `every message (no filter policy)`, or
    /// `filtered (…)`.
    pub receives: String,
}

/// A problem (`warning`) or a hint (`note`), with the command that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Warning,
    Note,
}

/// What `shipgate approvers list` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    pub topic_arn: String,
    pub approvers: Vec<Row>,
    pub other_subscriptions: Vec<Other>,
    pub findings: Vec<Finding>,
    /// More subscriptions than were read (the page limit).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl Report {
    pub fn warnings(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.level == Level::Warning)
            .count()
    }
}

/// How a command names the topic in a fix (`--pipeline demo` or `--topic-arn ARN`).
pub fn target_args(pipeline: Option<&str>, topic_arn: &str) -> String {
    match pipeline {
        Some(p) => format!("--pipeline {p}"),
        None => format!("--topic-arn {topic_arn}"),
    }
}

/// Join the pipeline's approvers (`None`: no pipeline named) with the topic's subscriptions.
pub fn report(
    pipeline: Option<&str>,
    topic_arn: &str,
    approvers: Option<&[String]>,
    subscriptions: &[Subscription],
    truncated: bool,
) -> Report {
    let target = target_args(pipeline, topic_arn);
    let mut rows = Vec::new();
    let mut findings = Vec::new();
    let mut other = Vec::new();
    let listed = |email: &str| {
        approvers.map(|list| {
            list.iter()
                .any(|a| audience::approver(a) == audience::approver(email))
        })
    };

    // every listed approver first (in the pipeline's order), then who else has a mailbox on it
    let mut emails: Vec<String> = approvers
        .unwrap_or_default()
        .iter()
        .map(|a| audience::approver(a))
        .collect();
    for s in subscriptions.iter().filter(|s| s.is_email()) {
        let e = audience::approver(&s.endpoint);
        if !emails.contains(&e) {
            emails.push(e);
        }
    }

    for email in &emails {
        let subs: Vec<&Subscription> = subscriptions.iter().filter(|s| s.is_of(email)).collect();
        let is_listed = listed(email);
        if subs.is_empty() {
            rows.push(Row {
                email: email.clone(),
                listed: is_listed,
                subscription: SubscriptionState::Missing,
                protocol: None,
                subscription_arn: None,
                filter_policy: FilterState::Unknown,
                authenticated_unsubscribe: None,
            });
            findings.push(Finding {
                level: Level::Note,
                message: format!(
                    "{email} is an approver without a subscription: no approval e-mail reaches them (they can still `shipgate approve`)"
                ),
                fix: Some(format!("shipgate approvers add {email} {target}")),
            });
            continue;
        }
        for s in subs {
            let filter = s.filter(email);
            let authenticated = s.authenticated();
            rows.push(Row {
                email: email.clone(),
                listed: is_listed,
                subscription: s.state(),
                protocol: Some(s.protocol.clone()),
                subscription_arn: s.arn.clone(),
                filter_policy: filter,
                authenticated_unsubscribe: authenticated,
            });
            match filter {
                FilterState::Missing => findings.push(Finding {
                    level: Level::Warning,
                    message: format!(
                        "{email} ({}) has no filter policy: it receives every approver's personal approval link",
                        s.protocol
                    ),
                    fix: Some(format!("shipgate approvers add {email} {target}   # sets its filter policy")),
                }),
                FilterState::Wrong => {
                    let whose = s
                        .filter_policy()
                        .and_then(audience::approver_of_filter_policy)
                        .map_or("is not the one shipgate sets".to_string(), |o| {
                            format!("is {o}'s")
                        });
                    findings.push(Finding {
                        level: Level::Warning,
                        message: format!(
                            "{email} ({}): its filter policy {whose}: it gets another approver's links or misses its own",
                            s.protocol
                        ),
                        fix: Some(format!("shipgate approvers add {email} {target}   # sets its filter policy")),
                    })
                }
                FilterState::Ok | FilterState::Unknown => {}
            }
            if let Attributes::Failed { error } = &s.attributes {
                findings.push(Finding {
                    level: Level::Warning,
                    message: format!("{email}: its attributes could not be read: {error}"),
                    fix: Some("allow your identity sns:GetSubscriptionAttributes on the topic (the stack's OperatorPolicyArn has it)".into()),
                });
            }
            if s.state() == SubscriptionState::Pending {
                findings.push(Finding {
                    level: Level::Note,
                    message: format!(
                        "{email} has not confirmed yet (SNS deletes an unconfirmed subscription after 3 days); confirm with the token of the mail's link, authenticated"
                    ),
                    fix: Some(format!("aws sns confirm-subscription --topic-arn {topic_arn} --authenticate-on-unsubscribe true --token TOKEN   # docs/approvals.md")),
                });
            }
            if authenticated == Some(false) {
                findings.push(Finding {
                    level: Level::Warning,
                    message: format!(
                        "{email} was confirmed without AuthenticateOnUnsubscribe: the unsubscribe link in every mail removes them (mail scanners follow it)"
                    ),
                    fix: Some(format!("shipgate approvers remove {email} {target}; shipgate approvers add {email} {target}; confirm with --authenticate-on-unsubscribe true (docs/approvals.md)")),
                });
            }
            // (a pipeline without approvers sends its shared link to every subscriber)
            if is_listed == Some(false) && approvers.is_some_and(|a| !a.is_empty()) {
                findings.push(Finding {
                    level: Level::Note,
                    message: format!(
                        "{email} is subscribed but not an approver of pipeline {}: it receives notices, no personal approval link",
                        pipeline.unwrap_or_default()
                    ),
                    fix: Some(format!(
                        "add {{ email = \"{email}\", arn = \"arn:aws:iam::ACCOUNT:user/NAME\" }} to approval.approvers and `shipgate pipeline apply FILE`, or `shipgate approvers remove {email} {target}`"
                    )),
                });
            }
        }
    }

    for s in subscriptions.iter().filter(|s| !s.is_email()) {
        let receives = match (&s.attributes, s.filter_policy().map(str::trim)) {
            (Attributes::Unread, _) => "not known (pending confirmation)".to_string(),
            (Attributes::Failed { error }, _) => format!("not known ({error})"),
            (_, None | Some("") | Some("{}")) => "every message (no filter policy)".to_string(),
            (_, Some(p)) if p == notices_only_policy() || policy_is_notices_only(p) => {
                "notices only".to_string()
            }
            (_, Some(p)) => format!("filtered ({})", shared::domain::limits::excerpt(p, 80)),
        };
        if receives.starts_with("every message") {
            findings.push(Finding {
                level: Level::Note,
                message: format!(
                    "{} {} has no filter policy: it receives every message, every approver's personal link included (a chat channel shows them to all its members)",
                    s.protocol, s.endpoint
                ),
                fix: s.arn.as_ref().map(|arn| format!(
                    "aws sns set-subscription-attributes --subscription-arn {arn} --attribute-name FilterPolicy --attribute-value '{}'   # notices only",
                    notices_only_policy()
                )),
            });
        }
        other.push(Other {
            protocol: s.protocol.clone(),
            endpoint: s.endpoint.clone(),
            subscription_arn: s.arn.clone(),
            receives,
        });
    }

    if approvers.is_some_and(<[String]>::is_empty) {
        findings.push(Finding {
            level: Level::Note,
            message: format!(
                "pipeline {} lists no approvers: every subscriber receives the shared approval link (docs/approvals.md)",
                pipeline.unwrap_or_default()
            ),
            fix: None,
        });
    }
    if truncated {
        findings.push(Finding {
            level: Level::Warning,
            message: "the topic has more subscriptions than were read; the list is incomplete"
                .into(),
            fix: None,
        });
    }

    Report {
        pipeline: pipeline.map(str::to_string),
        topic_arn: topic_arn.to_string(),
        approvers: rows,
        other_subscriptions: other,
        findings,
        truncated,
    }
}

fn policy_is_notices_only(policy: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(policy).ok()
        == serde_json::from_str(&notices_only_policy()).ok()
}

/// The e-mail subscriptions of a topic without a filter policy (`shipgate doctor`).
pub fn unfiltered_mailboxes(subscriptions: &[Subscription]) -> Vec<String> {
    let mut out: Vec<String> = subscriptions
        .iter()
        .filter(|s| s.is_email() && s.filter(&s.endpoint) == FilterState::Missing)
        .map(|s| audience::approver(&s.endpoint))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The report as a table, then the other subscriptions, then the findings.
pub fn render(r: &Report) -> String {
    let mut out = match &r.pipeline {
        Some(p) => format!("approvers of pipeline {p} (topic {})\n", r.topic_arn),
        None => format!("e-mail subscriptions of topic {}\n", r.topic_arn),
    };
    if r.approvers.is_empty() {
        out.push_str("no approvers and no e-mail subscriptions\n");
    } else {
        let yes_no = |b: Option<bool>, yes: &str, no: &str| match b {
            Some(true) => yes.to_string(),
            Some(false) => no.to_string(),
            None => "-".to_string(),
        };
        let rows: Vec<Vec<String>> = r
            .approvers
            .iter()
            .map(|row| {
                vec![
                    row.email.clone(),
                    yes_no(row.listed, "yes", "no"),
                    row.subscription.label().to_string(),
                    row.filter_policy.label().to_string(),
                    yes_no(row.authenticated_unsubscribe, "authenticated", "link works"),
                ]
            })
            .collect();
        out.push_str(&crate::output::table(
            &[
                "EMAIL",
                "APPROVER",
                "SUBSCRIPTION",
                "FILTER POLICY",
                "UNSUBSCRIBE",
            ],
            &rows,
        ));
        out.push('\n');
    }
    if !r.other_subscriptions.is_empty() {
        out.push_str("\nother subscriptions (not mailboxes):\n");
        for o in &r.other_subscriptions {
            out.push_str(&format!(
                "  {} {}: {}\n",
                o.protocol, o.endpoint, o.receives
            ));
        }
    }
    if !r.findings.is_empty() {
        out.push('\n');
    }
    for f in &r.findings {
        let level = match f.level {
            Level::Warning => "WARNING",
            Level::Note => "note",
        };
        out.push_str(&format!("{level}: {}\n", f.message));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("  fix: {fix}\n"));
        }
    }
    match r.warnings() {
        0 => out.push_str("\nno warnings\n"),
        n => out.push_str(&format!("\n{n} warning(s)\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(endpoint: &str, protocol: &str, policy: Option<&str>) -> Subscription {
        Subscription {
            arn: Some(format!("arn:aws:sns:us-east-1:1:t:{endpoint}")),
            protocol: protocol.into(),
            endpoint: endpoint.into(),
            attributes: Attributes::Read {
                filter_policy: policy.map(str::to_string),
                filter_policy_scope: policy.map(|_| "MessageAttributes".to_string()),
                confirmation_authenticated: Some(true),
            },
        }
    }

    fn pending(endpoint: &str) -> Subscription {
        Subscription {
            arn: None,
            protocol: "email".into(),
            endpoint: endpoint.into(),
            attributes: Attributes::Unread,
        }
    }

    const T: &str = "arn:aws:sns:us-east-1:1:t";

    #[test]
    fn a_policy_is_an_approvers_only_when_it_is_exactly_theirs() {
        let alice = audience::filter_policy("alice@x.org");
        assert!(policy_is_for(&alice, "Alice@X.org"));
        assert!(policy_is_for(
            r#"{"shipgate_audience":["alice@x.org","all"]}"#,
            "alice@x.org"
        ));
        for wrong in [
            r#"{"shipgate_audience":["all","bob@x.org"]}"#,
            r#"{"shipgate_audience":["alice@x.org"]}"#, // no notices
            r#"{"shipgate_audience":["all","alice@x.org","bob@x.org"]}"#,
            r#"{"shipgate_audience":["all","alice@x.org"],"other":["y"]}"#,
            r#"{"shipgate_audience":[{"prefix":""}]}"#,
            r#"{"shipgate_audience":["all","alice@x.org","alice@x.org"]}"#,
            "not json",
        ] {
            assert!(!policy_is_for(wrong, "alice@x.org"), "{wrong}");
        }
        // a MessageBody scope does not look at message attributes
        let mut s = sub("alice@x.org", "email", Some(&alice));
        if let Attributes::Read {
            filter_policy_scope,
            ..
        } = &mut s.attributes
        {
            *filter_policy_scope = Some("MessageBody".into());
        }
        assert_eq!(s.filter("alice@x.org"), FilterState::Wrong);
    }

    #[test]
    fn approvers_are_joined_with_their_subscriptions() {
        let approvers = vec![
            "alice@x.org".to_string(),
            "Bob@X.org".to_string(),
            "carol@x.org".to_string(),
            "dave@x.org".to_string(),
        ];
        let subs = vec![
            sub(
                "Alice@x.org",
                "email",
                Some(&audience::filter_policy("alice@x.org")),
            ),
            pending("bob@x.org"),
            sub("carol@x.org", "email", None),
            sub(
                "eve@x.org",
                "email-json",
                Some(&audience::filter_policy("bob@x.org")),
            ),
            sub("arn:aws:sqs:us-east-1:1:outbox", "sqs", None),
            sub(
                "https://chat.example/hook",
                "https",
                Some(&notices_only_policy()),
            ),
        ];
        let r = report(Some("demo"), T, Some(&approvers), &subs, false);
        let got: Vec<(&str, Option<bool>, SubscriptionState, FilterState)> = r
            .approvers
            .iter()
            .map(|row| {
                (
                    row.email.as_str(),
                    row.listed,
                    row.subscription,
                    row.filter_policy,
                )
            })
            .collect();
        use FilterState as F;
        use SubscriptionState as S;
        assert_eq!(
            got,
            [
                ("alice@x.org", Some(true), S::Confirmed, F::Ok),
                ("bob@x.org", Some(true), S::Pending, F::Unknown),
                ("carol@x.org", Some(true), S::Confirmed, F::Missing),
                ("dave@x.org", Some(true), S::Missing, F::Unknown),
                ("eve@x.org", Some(false), S::Confirmed, F::Wrong),
            ]
        );
        let warnings: Vec<&str> = r
            .findings
            .iter()
            .filter(|f| f.level == Level::Warning)
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(warnings.len(), 2, "{warnings:#?}");
        assert!(warnings[0].starts_with("carol@x.org (email) has no filter policy"));
        assert!(warnings[1].contains("eve@x.org (email-json): its filter policy is bob@x.org's"));
        let fix = r
            .findings
            .iter()
            .find(|f| f.message.starts_with("carol"))
            .unwrap();
        assert_eq!(
            fix.fix.as_deref(),
            Some("shipgate approvers add carol@x.org --pipeline demo   # sets its filter policy")
        );
        let notes: Vec<&str> = r
            .findings
            .iter()
            .filter(|f| f.level == Level::Note)
            .map(|f| f.message.as_str())
            .collect();
        assert!(notes
            .iter()
            .any(|n| n.starts_with("bob@x.org has not confirmed")));
        assert!(notes
            .iter()
            .any(|n| n.starts_with("dave@x.org is an approver without")));
        assert!(notes
            .iter()
            .any(|n| n.starts_with("eve@x.org is subscribed but not an approver")));
        assert!(notes
            .iter()
            .any(|n| n.starts_with("sqs arn:aws:sqs:us-east-1:1:outbox has no filter policy")));
        let others: Vec<(&str, &str)> = r
            .other_subscriptions
            .iter()
            .map(|o| (o.protocol.as_str(), o.receives.as_str()))
            .collect();
        assert_eq!(
            others,
            [
                ("sqs", "every message (no filter policy)"),
                ("https", "notices only")
            ]
        );
        let text = render(&r);
        assert!(text.contains("approvers of pipeline demo"), "{text}");
        assert!(text.contains("WARNING: carol@x.org"), "{text}");
        assert!(text.contains("pending confirmation"), "{text}");
        assert_eq!(r.warnings(), 2);
        assert_eq!(unfiltered_mailboxes(&subs), ["carol@x.org"]);
    }

    #[test]
    fn without_a_pipeline_every_mailbox_is_listed_and_none_is_judged_by_the_list() {
        let subs = vec![
            sub(
                "a@x.org",
                "email",
                Some(&audience::filter_policy("a@x.org")),
            ),
            Subscription {
                attributes: Attributes::Read {
                    filter_policy: None,
                    filter_policy_scope: None,
                    confirmation_authenticated: Some(false),
                },
                ..sub("b@x.org", "email", None)
            },
        ];
        let r = report(None, T, None, &subs, true);
        assert!(r.approvers.iter().all(|row| row.listed.is_none()));
        let text = render(&r);
        assert!(text.contains("e-mail subscriptions of topic"), "{text}");
        assert!(text.contains("link works"), "{text}");
        assert!(text.contains(&format!("--topic-arn {T}")), "{text}");
        assert!(text.contains("more subscriptions than were read"), "{text}");
        assert!(!text.contains("not an approver"), "{text}");
        // no pipeline approvers and nothing subscribed
        let r = report(Some("p"), T, Some(&[]), &[], false);
        assert!(render(&r).contains("no approvers and no e-mail subscriptions"));
        assert!(r.findings[0].message.contains("lists no approvers"));
        // no approvers: every subscriber gets the shared link, none is "not an approver"
        let r = report(Some("p"), T, Some(&[]), &subs[..1], false);
        let text = render(&r);
        assert!(!text.contains("not an approver"), "{text}");
        assert!(text.contains("lists no approvers"), "{text}");
    }
}
