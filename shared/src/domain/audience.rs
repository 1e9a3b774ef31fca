//! Who an SNS message is for (issue 15, personal approval links).
//!
//! Every message shipgate publishes carries the message attribute [`ATTRIBUTE`]
//! (`shipgate_audience`, a `String`): [`EVERYONE`] (`"all"`) for notices and for the shared
//! approval link of a pipeline without approvers, or the approver's lower-case e-mail address
//! for the message that holds their personal approval link. An approver's e-mail subscription
//! has the filter policy [`filter_policy`] (`shipgate approvers add`), so it receives every
//! notice and only its own personal link. A subscription without a filter policy receives
//! everything, other approvers' links included (`shipgate approvers list` flags it).

/// The SNS message attribute naming a message's audience.
pub const ATTRIBUTE: &str = "shipgate_audience";

/// The audience of a message for every subscriber.
pub const EVERYONE: &str = "all";

/// The audience value of one approver's personal message: the address, trimmed, lower case.
pub fn approver(email: &str) -> String {
    email.trim().to_ascii_lowercase()
}

/// The SNS subscription filter policy (`FilterPolicy`, scope `MessageAttributes`) of an
/// approver's subscription: notices for everyone and their own personal messages.
pub fn filter_policy(email: &str) -> String {
    serde_json::json!({ ATTRIBUTE: [EVERYONE, approver(email)] }).to_string()
}

/// The approver a subscription's filter policy was made for by [`filter_policy`], if it is one.
pub fn approver_of_filter_policy(policy: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(policy).ok()?;
    let list = v.as_object()?.get(ATTRIBUTE)?.as_array()?;
    let mut names = list
        .iter()
        .filter_map(serde_json::Value::as_str)
        .filter(|s| *s != EVERYONE);
    let one = names.next()?;
    names.next().is_none().then(|| one.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approvers_policy_lets_through_notices_and_their_own_link() {
        assert_eq!(approver(" Alice@Example.COM "), "alice@example.com");
        let p = filter_policy("Alice@Example.com");
        assert_eq!(p, r#"{"shipgate_audience":["all","alice@example.com"]}"#);
        assert_eq!(
            approver_of_filter_policy(&p).as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(approver_of_filter_policy(r#"{"other":["x"]}"#), None);
        assert_eq!(approver_of_filter_policy("not json"), None);
        assert_eq!(
            approver_of_filter_policy(r#"{"shipgate_audience":["all"]}"#),
            None
        );
    }
}
