//! `shipgate approvers list|add|remove` through the built binary against `shipgate dev`'s local
//! AWS (moto SNS): subscriptions and filter policies are checked with the SDK after every
//! command, and `shipgate doctor` flags an unfiltered mailbox.
//!
//! moto confirms an e-mail subscription at once (no mail, `PendingConfirmation` false,
//! `ConfirmationWasAuthenticated` true), so "pending confirmation" is covered by the unit tests
//! of `cli/src/approvers/report.rs` only.

mod common;

use assert_cmd::Command;
use common::DevSandbox;
use serde_json::Value;
use shared::domain::audience;

const ADA: &str = "ada@example.com";
const GRACE: &str = "grace@example.com";
const MALLORY: &str = "mallory@example.com";

fn shipgate(sb: &DevSandbox) -> Command {
    let mut cmd = Command::cargo_bin("shipgate").unwrap();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .envs(&sb.env);
    cmd
}

/// (exit code, stdout, stderr)
fn run(sb: &DevSandbox, args: &[&str]) -> (i32, String, String) {
    let out = shipgate(sb).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The sandbox's approval topic, from its demo pipeline.
async fn topic_arn(sb: &DevSandbox) -> String {
    let shown = sb
        .control(serde_json::json!({"command": "show_pipeline", "pipeline": "demo"}))
        .await;
    shown["pipeline"]["definition"]["approval"]["topic_arn"]
        .as_str()
        .expect("demo's approval topic")
        .to_string()
}

/// The demo's resources, with two approvers.
fn gate_pipeline(dir: &std::path::Path, topic: &str) -> std::path::PathBuf {
    let path = dir.join("gate.toml");
    std::fs::write(
        &path,
        format!(
            r#"
name = "gate"
source = {{ github = "shipgate-demo/gate" }}
build = {{ project = "hello-build" }}
image = {{ repository = "123456789012.dkr.ecr.us-east-1.amazonaws.com/hello" }}
test = {{ cluster = "demo-test", service = "hello-test", container = "app" }}
prod = {{ cluster = "demo-prod", service = "hello-prod", container = "app" }}

[approval]
topic_arn = "{topic}"
approvers = [
  {{ email = "Ada@Example.com", arn = "arn:aws:iam::123456789012:user/ada" }},
  {{ email = "{GRACE}", arn = "arn:aws:iam::123456789012:user/grace" }},
]
"#
        ),
    )
    .unwrap();
    path
}

/// (subscription ARN, endpoint, FilterPolicy) of every e-mail subscription of the topic.
async fn mailboxes(
    sns: &aws_sdk_sns::Client,
    topic: &str,
) -> Vec<(String, String, Option<String>)> {
    let out = sns
        .list_subscriptions_by_topic()
        .topic_arn(topic)
        .send()
        .await
        .unwrap();
    let mut found = Vec::new();
    for s in out.subscriptions() {
        if s.protocol() != Some("email") {
            continue;
        }
        let arn = s.subscription_arn().unwrap().to_string();
        let attrs = sns
            .get_subscription_attributes()
            .subscription_arn(&arn)
            .send()
            .await
            .unwrap();
        let policy = attrs
            .attributes()
            .and_then(|a| a.get("FilterPolicy"))
            .filter(|p| !p.is_empty())
            .cloned();
        found.push((arn, s.endpoint().unwrap().to_string(), policy));
    }
    found
}

fn of<'a>(
    all: &'a [(String, String, Option<String>)],
    email: &str,
) -> Vec<&'a (String, String, Option<String>)> {
    all.iter()
        .filter(|(_, e, _)| e.eq_ignore_ascii_case(email))
        .collect()
}

fn row<'a>(list: &'a Value, email: &str) -> &'a Value {
    list["approvers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["email"] == email)
        .unwrap_or_else(|| panic!("no row for {email}: {list:#}"))
}

#[tokio::test]
async fn approvers_are_subscribed_filtered_fixed_and_removed() {
    let Some(sb) = DevSandbox::start("approvers") else {
        return;
    };
    let topic = topic_arn(&sb).await;
    let sdk = shipgate_sandbox::sdk_config(&sb.aws_endpoint()).await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let file = gate_pipeline(&sb.state_dir, &topic);
    let (code, _, err) = run(&sb, &["pipeline", "apply", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");

    // nobody subscribed yet: both approvers missing, exit 0
    let (code, out, err) = run(
        &sb,
        &[
            "approvers",
            "list",
            "--pipeline",
            "gate",
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["topic_arn"], topic.as_str());
    for who in [ADA, GRACE] {
        assert_eq!(row(&list, who)["subscription"], "missing", "{list:#}");
        assert_eq!(row(&list, who)["listed"], true);
    }

    // add: subscribed with the approver's filter policy (moto confirms at once)
    let (code, out, err) = run(
        &sb,
        &["approvers", "add", "Ada@Example.com", "--pipeline", "gate"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("{ADA}: subscribed to {topic}")),
        "{out}"
    );
    assert!(out.contains("(confirmed)"), "{out}");
    assert!(!err.contains("not an approver"), "{err}");
    let all = mailboxes(&sns, &topic).await;
    let ada = of(&all, ADA);
    assert_eq!(ada.len(), 1, "{all:?}");
    assert_eq!(ada[0].1, ADA, "subscribed in lower case");
    assert_eq!(
        ada[0].2.as_deref(),
        Some(audience::filter_policy(ADA).as_str())
    );

    // twice: idempotent, one subscription, nothing changed
    let (code, out, err) = run(&sb, &["approvers", "add", ADA, "--pipeline", "gate"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "already subscribed (email, confirmed) with its filter policy; nothing changed"
        ),
        "{out}"
    );
    let again = mailboxes(&sns, &topic).await;
    assert_eq!(of(&again, ADA), ada, "unchanged");

    // a wrong filter policy (grace's): list warns, add sets it right
    sns.set_subscription_attributes()
        .subscription_arn(&ada[0].0)
        .attribute_name("FilterPolicy")
        .attribute_value(audience::filter_policy(GRACE))
        .send()
        .await
        .unwrap();
    let (code, out, _) = run(&sb, &["approvers", "list", "--pipeline", "gate"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!(
            "WARNING: {ADA} (email): its filter policy is {GRACE}'s"
        )),
        "{out}"
    );
    let (code, out, err) = run(&sb, &["approvers", "add", ADA, "--pipeline", "gate"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("filter policy set to"), "{out}");
    let fixed = mailboxes(&sns, &topic).await;
    assert_eq!(
        of(&fixed, ADA)[0].2.as_deref(),
        Some(audience::filter_policy(ADA).as_str())
    );

    // an e-mail subscription made by hand, without a filter policy: WARNING, doctor ✗
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("email")
        .endpoint(MALLORY)
        .send()
        .await
        .unwrap();
    let (code, out, _) = run(&sb, &["approvers", "list", "--pipeline", "gate"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("WARNING: {MALLORY} (email) has no filter policy: it receives every approver's personal approval link")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "fix: shipgate approvers add {MALLORY} --pipeline gate"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{MALLORY} is subscribed but not an approver of pipeline gate"
        )),
        "{out}"
    );
    let (code, out, _) = run(&sb, &["doctor", "--pipeline", "gate"]);
    assert_eq!(code, 1, "{out}");
    let failures: Vec<&str> = out.lines().filter(|l| l.contains('✗')).collect();
    assert_eq!(failures.len(), 1, "{out}");
    assert!(
        failures[0].contains(
            "✗ approvers' filter policies: 1 e-mail subscription(s) without a filter policy"
        ),
        "{out}"
    );
    assert!(failures[0].contains(MALLORY), "{out}");

    // fixed by add (with the warning that it is no approver): doctor passes
    let (code, out, err) = run(&sb, &["approvers", "add", MALLORY, "--pipeline", "gate"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("filter policy set to"), "{out}");
    assert!(err.contains(&format!("warning: {MALLORY} is not an approver of pipeline gate: they receive notices but no personal approval link")), "{err}");
    let (code, out, _) = run(&sb, &["doctor", "--pipeline", "gate"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("✓ approvers' filter policies: every e-mail subscription has a filter policy"),
        "{out}"
    );

    let (_, out, _) = run(
        &sb,
        &[
            "approvers",
            "list",
            "--pipeline",
            "gate",
            "--output",
            "json",
        ],
    );
    let list: Value = serde_json::from_str(&out).unwrap();
    let ada_row = row(&list, ADA);
    assert_eq!(
        (
            &ada_row["listed"],
            &ada_row["subscription"],
            &ada_row["filter_policy"],
            &ada_row["authenticated_unsubscribe"]
        ),
        (
            &Value::Bool(true),
            &Value::from("confirmed"),
            &Value::from("ok"),
            &Value::Bool(true)
        )
    );
    assert_eq!(row(&list, GRACE)["subscription"], "missing");
    assert_eq!(row(&list, MALLORY)["listed"], false);
    assert_eq!(row(&list, MALLORY)["filter_policy"], "ok");
    // the sandbox's outbox queue: not a mailbox
    assert!(
        list["other_subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["protocol"] == "sqs"),
        "{list:#}"
    );

    // bad input: exit 1, nothing changed, no call made
    let before = mailboxes(&sns, &topic).await;
    for bad in ["not-an-email", "a@b", "<ada@example.com>"] {
        let (code, _, err) = run(&sb, &["approvers", "add", bad, "--pipeline", "gate"]);
        assert_eq!(code, 1, "{bad}: {err}");
        assert!(err.contains("is not an e-mail address"), "{err}");
        assert!(err.contains("nothing was changed"), "{err}");
        let (code, _, _) = run(&sb, &["approvers", "remove", bad, "--pipeline", "gate"]);
        assert_eq!(code, 1);
    }
    let (code, _, err) = run(&sb, &["approvers", "list"]);
    assert_eq!(code, 2, "clap: --pipeline or --topic-arn required: {err}");
    let (code, _, err) = run(
        &sb,
        &["approvers", "list", "--topic-arn", "shipgate-approvals"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not an SNS topic ARN"), "{err}");
    let (code, _, err) = run(&sb, &["approvers", "add", GRACE, "--pipeline", "nope"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not_found"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    let (code, _, err) = run(
        &sb,
        &[
            "approvers",
            "add",
            GRACE,
            "--topic-arn",
            "arn:aws:sns:us-east-1:123456789012:no-such-topic",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(mailboxes(&sns, &topic).await, before, "nothing changed");

    // --topic-arn: no approver list to compare with
    let (code, out, _) = run(&sb, &["approvers", "list", "--topic-arn", &topic]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("e-mail subscriptions of topic {topic}")),
        "{out}"
    );
    assert!(!out.contains("not an approver"), "{out}");

    // remove: unsubscribed, with the reminder that ada is still listed; again: nothing to do
    let (code, out, err) = run(&sb, &["approvers", "remove", ADA, "--pipeline", "gate"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("{ADA}: unsubscribed {}", ada[0].0)),
        "{out}"
    );
    assert!(
        err.contains(&format!("{ADA} is still an approver of pipeline gate")),
        "{err}"
    );
    let after = mailboxes(&sns, &topic).await;
    assert!(of(&after, ADA).is_empty(), "{after:?}");
    assert_eq!(of(&after, MALLORY).len(), 1, "the others stay");
    let (code, out, _) = run(
        &sb,
        &[
            "approvers",
            "remove",
            ADA,
            "--pipeline",
            "gate",
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["unsubscribed"], serde_json::json!([]));
    let (_, out, _) = run(
        &sb,
        &[
            "approvers",
            "list",
            "--pipeline",
            "gate",
            "--output",
            "json",
        ],
    );
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(row(&list, ADA)["subscription"], "missing");
}
