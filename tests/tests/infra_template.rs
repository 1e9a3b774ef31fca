//! Checks on `infra/template.yaml` (the SAM template of the control plane) for the things the
//! Rust code, the CLI and the docs rely on: one function per crate under `functions/` with the
//! stable `shipgate-<name>` name, the HTTP routes, the `SHIPGATE_*` environment, no mutating IAM
//! action on `Resource: "*"`, and the DynamoDB key schema the adapters use.
//!
//! CloudFormation short tags (`!Ref`, `!Sub`, `!GetAtt`, `!If`, ...) parse as
//! `serde_yaml::Value::Tagged`; the helpers below look through them where it matters.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

/// The functions of the ARCHITECTURE.md interface table (`functions/<name>`, `shipgate-<name>`).
const ARCHITECTURE_FUNCTIONS: [&str; 7] = [
    "webhook",
    "codecommit",
    "build-events",
    "deploy-events",
    "approvals",
    "control",
    "sweeper",
];

/// Environment every function reads at cold start.
const SHIPGATE_ENVIRONMENT: [&str; 4] = [
    "SHIPGATE_TABLE",
    "SHIPGATE_WEBHOOK_SECRET_ID",
    "SHIPGATE_SIGNING_KEY_ID",
    "SHIPGATE_PUBLIC_URL",
];

/// Mutating actions for which AWS offers no resource-level permissions (the IAM Service
/// Authorization Reference lists no resource type), so `"*"` is the only valid `Resource`.
/// The SNS two: `shipgate approvers` sets approvers' filter policies and unsubscribes them.
const NO_RESOURCE_LEVEL_PERMISSIONS: [&str; 3] = [
    "ecs:RegisterTaskDefinition",
    "sns:SetSubscriptionAttributes",
    "sns:Unsubscribe",
];

/// Action name prefixes (after `service:`) that only read.
const READ_ONLY_PREFIXES: [&str; 4] = ["Describe", "List", "Get", "BatchGet"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> Value {
    let path = repo_root().join("infra/template.yaml");
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_yaml::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not valid YAML: {error}", path.display()))
}

/// `(logical id, resource)` of every resource of the given CloudFormation/SAM type.
fn resources_of_type<'a>(template: &'a Value, resource_type: &str) -> Vec<(&'a str, &'a Value)> {
    template["Resources"]
        .as_mapping()
        .expect("infra/template.yaml has no Resources mapping")
        .iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some(resource_type))
        .map(|(id, resource)| (id.as_str().unwrap_or("<non-string id>"), resource))
        .collect()
}

/// The name of a short-form tag without the `!` (`!Ref` -> `Ref`).
fn tag_name(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) => Some(tagged.tag.to_string().trim_start_matches('!').to_owned()),
        _ => None,
    }
}

/// The value under a tag (`!Sub "..."` -> `"..."`), or the value itself when untagged.
fn untagged(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => &tagged.value,
        other => other,
    }
}

/// Every `AWS::Serverless::Function` keyed by the `<name>` of its
/// `FunctionName: !Sub "${AWS::StackName}-<name>"` (named after the stack, so a second copy of the
/// control plane fits in one account; the stack `shipgate` gives `shipgate-<name>`).
fn functions_by_name(template: &Value) -> BTreeMap<String, (&str, &Value)> {
    let mut functions = BTreeMap::new();
    for (id, function) in resources_of_type(template, "AWS::Serverless::Function") {
        let field = &function["Properties"]["FunctionName"];
        let function_name = untagged(field)
            .as_str()
            .unwrap_or_else(|| panic!("function {id} has no FunctionName"));
        let name = function_name
            .strip_prefix("${AWS::StackName}-")
            .filter(|_| tag_name(field).as_deref() == Some("Sub"))
            .unwrap_or_else(|| {
                panic!(
                    "function {id} is named {function_name:?}; every function must be \
                     !Sub \"${{AWS::StackName}}-<name>\""
                )
            });
        if let Some((previous, _)) = functions.insert(name.to_owned(), (id, function)) {
            panic!("functions {previous} and {id} are both named {function_name:?}");
        }
    }
    functions
}

/// Names of the directories under `functions/` (one crate each).
fn function_crate_directories() -> Vec<String> {
    let dir = repo_root().join("functions");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
        .map(|entry| entry.unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display())))
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        !names.is_empty(),
        "no function crates found under {}",
        dir.display()
    );
    names
}

fn assert_function_builds_its_crate(name: &str, id: &str, function: &Value) {
    let metadata = &function["Metadata"];
    assert_eq!(
        metadata["BuildMethod"].as_str(),
        Some("rust-cargolambda"),
        "function {id} (shipgate-{name}): Metadata.BuildMethod must be rust-cargolambda"
    );
    assert_eq!(
        metadata["BuildProperties"]["Binary"].as_str(),
        Some(name),
        "function {id} (shipgate-{name}): Metadata.BuildProperties.Binary must be the crate's binary {name:?}"
    );
    assert_eq!(
        function["Properties"]["CodeUri"].as_str(),
        Some(".."),
        "function {id} (shipgate-{name}): CodeUri must be the Cargo workspace root \"..\" \
         (SAM's cargo-lambda build looks for target/lambda/<Binary>/bootstrap under CodeUri)"
    );
}

#[test]
fn every_function_crate_has_a_function_named_after_it() {
    let template = template();
    let functions = functions_by_name(&template);
    for dir in function_crate_directories() {
        let (id, function) = functions.get(&dir).unwrap_or_else(|| {
            panic!(
                "functions/{dir} has no AWS::Serverless::Function with FunctionName \
                 \"shipgate-{dir}\" in infra/template.yaml (functions there: {:?})",
                functions.keys().collect::<Vec<_>>()
            )
        });
        assert_function_builds_its_crate(&dir, id, function);
    }
}

#[test]
fn template_declares_every_function_of_the_architecture() {
    let template = template();
    let functions = functions_by_name(&template);
    let declared: BTreeSet<&str> = functions.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = ARCHITECTURE_FUNCTIONS.into_iter().collect();
    assert_eq!(
        declared, expected,
        "infra/template.yaml must declare exactly the functions of ARCHITECTURE.md"
    );
    for (name, (id, function)) in &functions {
        assert_function_builds_its_crate(name, id, function);
    }
    let globals = &template["Globals"]["Function"];
    for (key, expected) in [("Runtime", "provided.al2023"), ("Handler", "bootstrap")] {
        assert_eq!(
            globals[key].as_str(),
            Some(expected),
            "Globals.Function.{key} must be {expected:?}"
        );
    }
    assert_eq!(
        globals["Architectures"],
        serde_yaml::from_str::<Value>("[arm64]").unwrap(),
        "Globals.Function.Architectures must be [arm64] (scripts/build-lambdas.sh builds arm64)"
    );
}

#[test]
fn http_api_routes_are_wired_to_their_functions() {
    let template = template();
    let expected_routes = [
        ("POST", "/webhooks/github", "webhook"),
        ("GET", "/approvals/{token}", "approvals"),
        ("POST", "/approvals/{token}", "approvals"),
        ("GET", "/status/{token}", "approvals"),
    ];

    // Routes declared as HttpApi events: (METHOD, path) -> function name.
    let mut routes: BTreeMap<(String, String), String> = BTreeMap::new();
    for (name, (id, function)) in functions_by_name(&template) {
        let Some(events) = function["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (event_id, event) in events {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let event_id = event_id.as_str().unwrap_or("<non-string id>");
            let properties = &event["Properties"];
            let api = &properties["ApiId"];
            assert_eq!(
                (tag_name(api).as_deref(), untagged(api).as_str()),
                (Some("Ref"), Some("HttpApi")),
                "event {id}.{event_id} must attach to the HttpApi resource (ApiId: !Ref HttpApi)"
            );
            let method = properties["Method"]
                .as_str()
                .unwrap_or_else(|| panic!("event {id}.{event_id} has no Method"))
                .to_uppercase();
            let path = properties["Path"]
                .as_str()
                .unwrap_or_else(|| panic!("event {id}.{event_id} has no Path"))
                .to_owned();
            if let Some(other) = routes.insert((method.clone(), path.clone()), name.clone()) {
                panic!("route {method} {path} is declared by both shipgate-{other} and shipgate-{name}");
            }
        }
    }
    for (method, path, function) in expected_routes {
        let key = (method.to_owned(), path.to_owned());
        assert_eq!(
            routes.get(&key).map(String::as_str),
            Some(function),
            "route {method} {path} must be an HttpApi event of shipgate-{function} \
             (HttpApi routes found: {routes:?})"
        );
    }

    // The API's DefinitionBody addresses the functions by name (to avoid a circular dependency
    // with SHIPGATE_PUBLIC_URL); it must name the same function as the event.
    let apis = resources_of_type(&template, "AWS::Serverless::HttpApi");
    assert_eq!(
        apis.len(),
        1,
        "expected exactly one AWS::Serverless::HttpApi"
    );
    let paths = &apis[0].1["Properties"]["DefinitionBody"]["paths"];
    for (method, path, function) in expected_routes {
        let uri =
            &paths[path][method.to_lowercase().as_str()]["x-amazon-apigateway-integration"]["uri"];
        let uri_text = untagged(uri).as_str().unwrap_or_else(|| {
            panic!("HttpApi DefinitionBody has no integration uri for {method} {path}")
        });
        let expected_suffix = format!(":function:${{AWS::StackName}}-{function}/invocations");
        assert!(
            uri_text.ends_with(&expected_suffix),
            "HttpApi DefinitionBody integration of {method} {path} must invoke shipgate-{function}, \
             its uri is {uri_text:?}"
        );
    }
}

#[test]
fn every_function_gets_the_shipgate_environment() {
    let template = template();
    let variable_names = |environment: &Value| -> BTreeSet<String> {
        environment["Variables"]
            .as_mapping()
            .map(|variables| {
                variables
                    .keys()
                    .filter_map(|key| key.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let global_environment = &template["Globals"]["Function"]["Environment"];
    let from_globals = variable_names(global_environment);
    for (name, (id, function)) in functions_by_name(&template) {
        let own = variable_names(&function["Properties"]["Environment"]);
        let missing: Vec<&str> = SHIPGATE_ENVIRONMENT
            .into_iter()
            .filter(|variable| !own.contains(*variable) && !from_globals.contains(*variable))
            .collect();
        assert!(
            missing.is_empty(),
            "function {id} (shipgate-{name}) gets none of {missing:?}, neither in its own \
             Environment.Variables nor in Globals.Function.Environment.Variables"
        );
    }

    // The table variable names the table of this template, the secret ids are secret ARNs.
    let table_ids: Vec<&str> = resources_of_type(&template, "AWS::DynamoDB::Table")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let table = &global_environment["Variables"]["SHIPGATE_TABLE"];
    assert!(
        tag_name(table).as_deref() == Some("Ref")
            && untagged(table)
                .as_str()
                .is_some_and(|id| table_ids.contains(&id)),
        "SHIPGATE_TABLE must be !Ref of the template's table {table_ids:?}, is {table:?}"
    );
    for variable in ["SHIPGATE_WEBHOOK_SECRET_ID", "SHIPGATE_SIGNING_KEY_ID"] {
        let value = &global_environment["Variables"][variable];
        let target = untagged(value).as_str().unwrap_or_default();
        assert!(
            tag_name(value).as_deref() == Some("Ref")
                && template["Resources"][target]["Type"].as_str()
                    == Some("AWS::SecretsManager::Secret"),
            "{variable} must be !Ref of an AWS::SecretsManager::Secret (its ARN, never the \
             secret value), is {value:?}"
        );
    }
}

/// One IAM policy statement found in the template, with where it was found.
struct Statement<'a> {
    location: String,
    body: &'a serde_yaml::Mapping,
}

/// Every mapping with `Effect` and `Action`/`NotAction` anywhere in the template: statements of
/// roles, managed policies and resource policies, including both branches of `!If`.
fn collect_statements<'a>(value: &'a Value, location: &str, found: &mut Vec<Statement<'a>>) {
    match value {
        Value::Mapping(mapping) => {
            let has = |key: &str| mapping.contains_key(key);
            if has("Effect") && (has("Action") || has("NotAction")) {
                let location = match mapping.get("Sid").and_then(Value::as_str) {
                    Some(sid) => format!("{location} (Sid {sid})"),
                    None => location.to_owned(),
                };
                found.push(Statement {
                    location,
                    body: mapping,
                });
            }
            for (key, child) in mapping {
                let key = key.as_str().unwrap_or("?");
                collect_statements(child, &format!("{location}.{key}"), found);
            }
        }
        Value::Sequence(items) => {
            for (index, child) in items.iter().enumerate() {
                collect_statements(child, &format!("{location}[{index}]"), found);
            }
        }
        Value::Tagged(tagged) => collect_statements(&tagged.value, location, found),
        _ => {}
    }
}

/// String entries of an `Action`/`Resource` value (a string or a list of strings).
fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(text) => vec![text.as_str()],
        Value::Sequence(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn is_mutating(action: &str) -> bool {
    let operation = action
        .split_once(':')
        .map_or(action, |(_, operation)| operation);
    !READ_ONLY_PREFIXES
        .iter()
        .any(|prefix| operation.starts_with(prefix))
}

#[test]
fn no_mutating_iam_action_is_granted_on_every_resource() {
    let template = template();
    let mut statements = Vec::new();
    collect_statements(&template["Resources"], "Resources", &mut statements);
    assert!(
        statements.len() >= 20,
        "found only {} IAM statements in infra/template.yaml; the walker is broken",
        statements.len()
    );

    let mut violations = Vec::new();
    for statement in &statements {
        let body = statement.body;
        if body.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        let Some(resource) = body.get("Resource") else {
            continue; // trust policies name a Principal, not a Resource
        };
        if !strings(resource).contains(&"*") {
            continue;
        }
        if let Some(not_action) = body.get("NotAction") {
            violations.push(format!(
                "{}: NotAction {:?} with Resource \"*\" grants every other action on everything",
                statement.location,
                strings(not_action)
            ));
        }
        let actions = body.get("Action").map(strings).unwrap_or_default();
        for action in actions {
            if is_mutating(action) && !NO_RESOURCE_LEVEL_PERMISSIONS.contains(&action) {
                violations.push(format!(
                    "{}: mutating action {action} is granted on Resource \"*\"",
                    statement.location
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "IAM statements grant mutating actions on every resource (scope them to ARNs, or add the \
         action to NO_RESOURCE_LEVEL_PERMISSIONS only if AWS supports no resource-level \
         permission for it):\n  {}",
        violations.join("\n  ")
    );
}

/// Pipelines may build CodeCommit tags (`tags` globs): the rule must pass tag pushes, created
/// or moved, to the codecommit function (the function ignores tags no pipeline lists).
#[test]
fn codecommit_rule_passes_branch_and_tag_pushes() {
    let template = template();
    let rules = resources_of_type(&template, "AWS::Events::Rule");
    let (_, rule) = rules
        .iter()
        .find(|(_, r)| {
            strings(&r["Properties"]["EventPattern"]["source"]) == vec!["aws.codecommit"]
        })
        .expect("a rule for aws.codecommit events");
    let detail = &rule["Properties"]["EventPattern"]["detail"];
    let types = strings(&detail["referenceType"]);
    assert!(
        types.contains(&"branch") && types.contains(&"tag"),
        "referenceType {types:?}"
    );
    let events = strings(&detail["event"]);
    assert!(events.contains(&"referenceCreated") && events.contains(&"referenceUpdated"));
    assert!(!events.contains(&"referenceDeleted"));
}

/// The logical ids of the functions a rule targets (`Arn: !GetAtt X.Arn`), each with a
/// permission that lets EventBridge invoke it for that rule.
fn rule_targets(template: &Value, rule_id: &str) -> Vec<String> {
    let rule = &template["Resources"][rule_id];
    let targets: Vec<String> = rule["Properties"]["Targets"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{rule_id} has no Targets"))
        .iter()
        .map(|t| {
            untagged(&t["Arn"])
                .as_str()
                .and_then(|a| a.strip_suffix(".Arn"))
                .unwrap_or_else(|| panic!("{rule_id}: a target's Arn is not !GetAtt X.Arn"))
                .to_string()
        })
        .collect();
    for function in &targets {
        let allowed = resources_of_type(template, "AWS::Lambda::Permission")
            .into_iter()
            .any(|(_, p)| {
                untagged(&p["Properties"]["FunctionName"]).as_str() == Some(function.as_str())
                    && untagged(&p["Properties"]["SourceArn"]).as_str()
                        == Some(format!("{rule_id}.Arn").as_str())
            });
        assert!(
            allowed,
            "{rule_id} targets {function} without a permission to invoke it"
        );
    }
    targets
}

/// Verified promotion: the smoke test projects' build events go to deploy-events (it starts
/// smoke builds and may roll production back), never to build-events; the sweeper's schedule
/// also runs deploy-events (it resumes production verifications the sweeper may not decide).
#[test]
fn smoke_results_and_production_resumes_reach_deploy_events() {
    let template = template();
    assert_eq!(
        rule_targets(&template, "SmokeBuildEventsRule"),
        vec!["DeployEventsFunction"]
    );
    assert_eq!(
        rule_targets(&template, "SweeperScheduleRule"),
        vec!["SweeperFunction", "DeployEventsFunction"]
    );
    assert_eq!(
        rule_targets(&template, "BuildEventsRule"),
        vec!["BuildEventsFunction"]
    );
}

/// Only approvals and control may update a production service: every other role that may call
/// ecs:UpdateService allows it on TestServiceArns only and explicitly denies it on
/// ProdServiceArns (an explicit deny wins even if the two parameters overlap).
#[test]
fn only_approvals_and_control_can_update_production() {
    let template = template();
    let refs = |value: &Value| -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                Value::Tagged(t) if t.tag == "Ref" => {
                    out.extend(t.value.as_str().map(str::to_owned))
                }
                Value::Tagged(t) => stack.push(&t.value),
                Value::Sequence(items) => stack.extend(items.iter()),
                Value::Mapping(m) => stack.extend(m.values()),
                _ => {}
            }
        }
        out
    };
    let mut checked = 0;
    for (id, role) in resources_of_type(&template, "AWS::IAM::Role") {
        let mut statements = Vec::new();
        collect_statements(&role["Properties"], id, &mut statements);
        let updates = |effect: &str| {
            statements
                .iter()
                .filter(|s| s.body.get("Effect").and_then(Value::as_str) == Some(effect))
                .filter(|s| {
                    s.body
                        .get("Action")
                        .map(strings)
                        .unwrap_or_default()
                        .contains(&"ecs:UpdateService")
                })
                .flat_map(|s| refs(s.body.get("Resource").unwrap_or(&Value::Null)))
                .collect::<Vec<_>>()
        };
        let allowed = updates("Allow");
        if allowed.is_empty() {
            continue;
        }
        checked += 1;
        if id == "DeployEventsRole" {
            // the automatic rollback after a failed production verification: UpdateService
            // on prod only, never a new revision (no RegisterTaskDefinition, no PassRole)
            assert_eq!(allowed, ["ProdServiceArns"], "{id}: {allowed:?}");
            let actions: Vec<&str> = statements
                .iter()
                .flat_map(|s| s.body.get("Action").map(strings).unwrap_or_default())
                .collect();
            assert!(!actions.contains(&"ecs:RegisterTaskDefinition"), "{id}");
            assert!(!actions.contains(&"iam:PassRole"), "{id}");
            continue;
        }
        if id == "ApprovalsRole" || id == "ControlRole" {
            assert!(
                allowed.contains(&"ProdServiceArns".to_owned()),
                "{id}: {allowed:?}"
            );
            continue;
        }
        assert_eq!(
            allowed,
            ["TestServiceArns"],
            "{id} may update only test services"
        );
        assert!(
            updates("Deny").contains(&"ProdServiceArns".to_owned()),
            "{id} allows ecs:UpdateService but does not explicitly deny it on ProdServiceArns"
        );
    }
    assert_eq!(
        checked, 5,
        "build-events, deploy-events (automatic rollback), approvals, control, sweeper"
    );
}

#[test]
fn table_key_schema_matches_the_code() {
    let template = template();
    let tables = resources_of_type(&template, "AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 1, "expected exactly one AWS::DynamoDB::Table");
    let (id, table) = tables[0];
    let properties = &table["Properties"];

    for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
        assert_eq!(
            table[policy].as_str(),
            Some("Retain"),
            "table {id}: {policy} must be Retain (executions survive a stack deletion)"
        );
    }
    assert_eq!(
        properties["BillingMode"].as_str(),
        Some("PAY_PER_REQUEST"),
        "table {id}: BillingMode must be PAY_PER_REQUEST (on-demand, no cost while idle)"
    );

    let attributes: BTreeMap<&str, &str> = properties["AttributeDefinitions"]
        .as_sequence()
        .unwrap_or_else(|| panic!("table {id}: AttributeDefinitions must be a list"))
        .iter()
        .map(|attribute| {
            (
                attribute["AttributeName"].as_str().unwrap_or("?"),
                attribute["AttributeType"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    let expected_attributes: BTreeMap<&str, &str> = [
        ("pk", "S"),
        ("sk", "S"),
        ("gsi1pk", "S"),
        ("gsi1sk", "S"),
        ("gsi2pk", "S"),
        ("gsi2sk", "S"),
        ("gsi3pk", "S"),
        ("gsi3sk", "S"),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        attributes, expected_attributes,
        "table {id}: AttributeDefinitions must be exactly the string keys the adapters use"
    );

    let key_schema = |schema: &Value, owner: &str| -> Vec<(String, String)> {
        schema
            .as_sequence()
            .unwrap_or_else(|| panic!("table {id}: {owner} KeySchema must be a list"))
            .iter()
            .map(|key| {
                (
                    key["AttributeName"].as_str().unwrap_or("?").to_owned(),
                    key["KeyType"].as_str().unwrap_or("?").to_owned(),
                )
            })
            .collect()
    };
    let pair = |name: &str, kind: &str| (name.to_owned(), kind.to_owned());
    assert_eq!(
        key_schema(&properties["KeySchema"], "table"),
        vec![pair("pk", "HASH"), pair("sk", "RANGE")],
        "table {id}: KeySchema must be pk (HASH) + sk (RANGE)"
    );

    let indexes: BTreeMap<&str, &Value> = properties["GlobalSecondaryIndexes"]
        .as_sequence()
        .unwrap_or_else(|| panic!("table {id}: GlobalSecondaryIndexes must be a list"))
        .iter()
        .map(|index| (index["IndexName"].as_str().unwrap_or("?"), index))
        .collect();
    assert_eq!(
        indexes.keys().copied().collect::<Vec<_>>(),
        vec!["gsi1", "gsi2", "gsi3"],
        "table {id}: the global secondary indexes must be exactly gsi1, gsi2 and gsi3"
    );
    for (name, index) in &indexes {
        assert_eq!(
            key_schema(&index["KeySchema"], name),
            vec![
                pair(&format!("{name}pk"), "HASH"),
                pair(&format!("{name}sk"), "RANGE")
            ],
            "table {id}: index {name} must be keyed {name}pk (HASH) + {name}sk (RANGE)"
        );
        // gsi3 only answers which execution waits on a build or deployment: keys suffice
        let projection = if *name == "gsi3" { "KEYS_ONLY" } else { "ALL" };
        assert_eq!(
            index["Projection"]["ProjectionType"].as_str(),
            Some(projection),
            "table {id}: index {name} must project {projection}"
        );
    }

    let ttl = &properties["TimeToLiveSpecification"];
    assert_eq!(
        (ttl["AttributeName"].as_str(), ttl["Enabled"].as_bool()),
        (Some("ttl"), Some(true)),
        "table {id}: TTL must be enabled on the attribute `ttl`"
    );
    assert_eq!(
        properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true),
        "table {id}: point-in-time recovery must be enabled"
    );
    assert_eq!(
        properties["SSESpecification"]["SSEEnabled"].as_bool(),
        Some(true),
        "table {id}: server-side encryption must be enabled"
    );
}

/// The example environment's `PipelineFile` output, with its `${...}` placeholders filled with
/// sample values, is a pipeline definition shipgate accepts (so template and validation cannot
/// drift apart).
#[test]
fn generated_pipeline_file_is_valid() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/example-environment.yaml"
    );
    let text = std::fs::read_to_string(path).expect("read example-environment.yaml");
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&text).expect("parse example-environment.yaml");
    let value = &doc["Outputs"]["PipelineFile"]["Value"];
    let template = match value {
        serde_yaml::Value::Tagged(t) => match &t.value {
            serde_yaml::Value::Sequence(parts) => parts[0].as_str().map(str::to_string),
            serde_yaml::Value::String(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
    .expect("PipelineFile is a !Sub");
    let samples = [
        ("ServiceName", "hello"),
        ("SourceKey", "github"),
        ("SourceRepository", "acme/hello"),
        ("SourceBranch", "main"),
        ("ServiceDirectory", "examples/hello-service"),
        ("BuildProject", "hello-build"),
        (
            "Repository.RepositoryUri",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello",
        ),
        ("Cluster", "apps"),
        ("TestService.Name", "hello-test"),
        ("ProdService.Name", "hello-prod"),
        ("AWS::Partition", "aws"),
        ("AWS::Region", "eu-west-1"),
        ("AWS::AccountId", "123456789012"),
        ("AWS::StackName", "hello-env"),
        ("ImagesToKeep", "30"),
        (
            "LoadBalancer.DNSName",
            "hello-123.eu-west-1.elb.amazonaws.com",
        ),
    ];
    // rolling (no test listener line) and blue/green (the line the !If adds)
    let blue_green = "test_listener_url = \"http://hello-123.eu-west-1.elb.amazonaws.com:9090/health\" # the green revision, checked by the lifecycle hook";
    for check in ["", blue_green] {
        let mut filled = template.replace("${BlueGreenCheck}", check);
        for (name, value) in samples {
            filled = filled.replace(&format!("${{{name}}}"), value);
        }
        let p = shared::domain::PipelineDefinition::parse(&filled, shared::domain::Format::Toml)
            .unwrap_or_else(|e| panic!("{e}\n{filled}"));
        let prod = p
            .verify_of(shared::domain::Environment::Prod)
            .expect("verify.prod");
        assert_eq!(
            prod.url.as_deref(),
            Some("http://hello-123.eu-west-1.elb.amazonaws.com/health")
        );
        assert_eq!(prod.test_listener_url.is_some(), !check.is_empty());
        assert_eq!(
            p.verify_of(shared::domain::Environment::Test)
                .and_then(|t| t.url.as_deref()),
            Some("http://hello-123.eu-west-1.elb.amazonaws.com:8080/health")
        );
    }
    let mut filled = template.replace("${BlueGreenCheck}", "");
    for (name, value) in samples {
        filled = filled.replace(&format!("${{{name}}}"), value);
    }
    assert!(
        !filled.contains("${"),
        "placeholder without a sample value in:\n{filled}"
    );
    let p = shared::domain::PipelineDefinition::parse(&filled, shared::domain::Format::Toml)
        .unwrap_or_else(|e| panic!("{e}\n{filled}"));
    assert_eq!(
        p.image.repository,
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello"
    );
    assert_eq!(
        p.keep_images, 30,
        "the sweeper prunes with the stack's ImagesToKeep"
    );
}

/// No ECR lifecycle rule in the example environment: a rule cannot see what runs in ECS, so it
/// could expire a running image or a rollback target; the sweeper prunes instead.
#[test]
fn example_repository_has_no_lifecycle_rule() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/example-environment.yaml"
    );
    let text = std::fs::read_to_string(path).expect("read example-environment.yaml");
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&text).expect("parse example-environment.yaml");
    let repository = &doc["Resources"]["Repository"];
    assert_eq!(repository["Type"].as_str(), Some("AWS::ECR::Repository"));
    assert!(
        repository["Properties"]["LifecyclePolicy"].is_null(),
        "the example repository must not expire images by itself"
    );
}

/// Each function's profile in the composition root (shared::wiring) — the ports it is wired
/// with and the capabilities it has — matches the IAM role the template gives it: a port is
/// wired exactly when the role may call that service, and each capability has the actions it
/// needs (and production deployment only where the profile allows it).
#[test]
fn every_function_profile_matches_its_iam_role() {
    use shared::wiring::profiles;
    let template = template();
    let roles: BTreeMap<&str, &Value> = resources_of_type(&template, "AWS::IAM::Role")
        .into_iter()
        .collect();
    for p in profiles::ALL {
        let role_id = format!(
            "{}Role",
            p.function
                .split('-')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<String>()
        );
        let role = roles
            .get(role_id.as_str())
            .unwrap_or_else(|| panic!("no {role_id} for function {}", p.function));
        let mut statements = Vec::new();
        collect_statements(&role["Properties"], &role_id, &mut statements);
        let allowed: Vec<&str> = statements
            .iter()
            .filter(|s| s.body.get("Effect").and_then(Value::as_str) == Some("Allow"))
            .flat_map(|s| s.body.get("Action").map(strings).unwrap_or_default())
            .collect();
        let any = |prefix: &str| allowed.iter().any(|a| a.starts_with(prefix));
        let has = |action: &str| allowed.contains(&action);
        let who = p.function;
        assert_eq!(
            p.ports.codebuild,
            any("codebuild:"),
            "{who}: CodeBuild port vs role"
        );
        assert_eq!(p.ports.ecs, any("ecs:"), "{who}: ECS port vs role");
        assert_eq!(p.ports.ecr, any("ecr:"), "{who}: ECR port vs role");
        assert_eq!(p.ports.sns, has("sns:Publish"), "{who}: SNS port vs role");
        assert_eq!(
            p.ports.secrets,
            has("secretsmanager:GetSecretValue"),
            "{who}: Secrets Manager port vs role"
        );
        let github_token = statements.iter().any(|s| {
            s.body.get("Sid").and_then(Value::as_str) == Some("GitHubFeedbackToken")
                && s.body.get("Effect").and_then(Value::as_str) == Some("Allow")
                && format!("{:?}", s.body.get("Resource")).contains("secret:shipgate/github/*")
        });
        assert_eq!(
            p.ports.github, github_token,
            "{who}: GitHub port vs the role's GitHubFeedbackToken statement"
        );
        assert!(
            !p.can.feedback || github_token,
            "{who}: reports to GitHub but may not read its token"
        );
        assert_eq!(
            p.can.start_build || p.can.start_smoke,
            has("codebuild:StartBuild"),
            "{who}: start_build / start_smoke"
        );
        // StartBuild: the image build projects only with start_build, the smoke test projects
        // (by name prefix) only with start_smoke
        let start_build_on = |needle: &str| {
            statements.iter().any(|s| {
                s.body.get("Effect").and_then(Value::as_str) == Some("Allow")
                    && s.body
                        .get("Action")
                        .map(strings)
                        .unwrap_or_default()
                        .contains(&"codebuild:StartBuild")
                    && format!("{:?}", s.body.get("Resource")).contains(needle)
            })
        };
        assert_eq!(
            p.can.start_build,
            start_build_on("CodeBuildProjectArns"),
            "{who}: start_build vs StartBuild on the build projects"
        );
        assert_eq!(
            p.can.start_smoke,
            start_build_on("SmokeProjectNamePrefix"),
            "{who}: start_smoke vs StartBuild on the smoke projects"
        );
        if p.can.deploy_test || p.can.deploy_prod {
            for action in [
                "ecs:DescribeServices",
                "ecs:DescribeTaskDefinition",
                "ecs:RegisterTaskDefinition",
                "ecs:UpdateService",
                "iam:PassRole",
            ] {
                assert!(has(action), "{who} deploys but may not {action}");
            }
        }
        if p.can.notify || p.can.request_approval {
            assert!(
                has("sns:Publish"),
                "{who} sends messages but may not publish"
            );
        }
        // production: only where the profile allows it (the Deny side is checked above)
        let prod_update = statements.iter().any(|s| {
            s.body.get("Effect").and_then(Value::as_str) == Some("Allow")
                && s.body
                    .get("Action")
                    .map(strings)
                    .unwrap_or_default()
                    .contains(&"ecs:UpdateService")
                && format!("{:?}", s.body.get("Resource")).contains("ProdServiceArns")
        });
        assert_eq!(
            p.can.deploy_prod || p.can.roll_back_prod,
            prod_update,
            "{who}: deploy_prod / roll_back_prod vs role"
        );
        assert_eq!(
            p.ports.cloudwatch,
            has("cloudwatch:DescribeAlarms"),
            "{who}: CloudWatch port vs role"
        );
        // alarms only by the configured name prefix, never "*"
        for s in &statements {
            if s.body
                .get("Action")
                .map(strings)
                .unwrap_or_default()
                .iter()
                .any(|a| a.starts_with("cloudwatch:"))
            {
                let resource = format!("{:?}", s.body.get("Resource"));
                assert!(
                    resource.contains("VerifyAlarmNamePrefix"),
                    "{who}: alarms by prefix only: {resource}"
                );
            }
        }
    }
}

/// The delivery dashboard charts the metrics the functions emit (embedded metric format,
/// `shared::domain::metrics::emf_line`) and every function's Lambda errors.
#[test]
fn the_delivery_dashboard_charts_the_emitted_metrics() {
    let template = template();
    let dashboards = resources_of_type(&template, "AWS::CloudWatch::Dashboard");
    assert_eq!(dashboards.len(), 1);
    let body = format!("{:?}", dashboards[0].1["Properties"]["DashboardBody"]);
    assert!(body.contains(&format!(
        "{{{},Pipeline}}",
        shared::domain::metrics::NAMESPACE
    )));
    for metric in ["Executions", "Failures", "LeadTime", "ApprovalWait"] {
        assert!(body.contains(metric), "{metric}");
    }
    for f in shared::wiring::profiles::ALL {
        let id = f
            .function
            .split('-')
            .map(|w| w[..1].to_ascii_uppercase() + &w[1..])
            .collect::<String>();
        assert!(
            body.contains(&format!("${{{id}Function}}")),
            "Lambda errors of {}",
            f.function
        );
    }
    // an execution's EMF line names exactly metrics with values
    let e = shared::domain::Execution::received(
        shared::domain::ExecutionId::generate(chrono_now()),
        "hello",
        Default::default(),
        shared::domain::Trigger::Release {
            actor: "ops".into(),
        },
        chrono_now(),
        "ops",
    );
    let line: Value = serde_json::from_str(&shared::domain::metrics::emf_line(&e)).unwrap();
    assert_eq!(
        line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
        "Pipeline"
    );
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[test]
fn names_are_scoped_to_the_stack() {
    // a second copy of the control plane (another stack name) must fit in the same account
    let template = template();
    for (resource_type, property) in [
        ("AWS::Serverless::Function", "FunctionName"),
        ("AWS::Logs::LogGroup", "LogGroupName"),
        ("AWS::SNS::Topic", "TopicName"),
    ] {
        let found = resources_of_type(&template, resource_type);
        assert!(!found.is_empty(), "no {resource_type}");
        for (id, resource) in found {
            let value = &resource["Properties"][property];
            let text = untagged(value).as_str().unwrap_or_default();
            assert!(
                tag_name(value).as_deref() == Some("Sub") && text.contains("${AWS::StackName}"),
                "{id}.{property} is {text:?}; it must contain ${{AWS::StackName}} (!Sub)"
            );
        }
    }
}

/// Operators and approvers: the approver policy may only invoke control (control decides on the
/// verified identity what they may run there), and control gets the stack's operator patterns.
#[test]
fn approver_policy_only_invokes_control_and_control_gets_the_operator_patterns() {
    let template = template();
    let policy = &template["Resources"]["ApproverPolicy"];
    assert_eq!(policy["Type"], "AWS::IAM::ManagedPolicy");
    let statements = policy["Properties"]["PolicyDocument"]["Statement"]
        .as_sequence()
        .expect("ApproverPolicy has statements");
    assert_eq!(statements.len(), 1, "{statements:?}");
    let only = &statements[0];
    assert_eq!(only["Effect"], "Allow");
    assert_eq!(only["Action"], "lambda:InvokeFunction");
    let resource = &only["Resource"];
    assert_eq!(
        tag_name(resource).as_deref(),
        Some("GetAtt"),
        "{resource:?}"
    );
    assert_eq!(untagged(resource).as_str(), Some("ControlFunction.Arn"));
    assert!(template["Outputs"]["ApproverPolicyArn"].is_mapping());

    let parameter = &template["Parameters"]["OperatorArnPatterns"];
    assert_eq!(parameter["Type"], "String");
    assert_eq!(
        parameter["Default"], "",
        "empty: no restriction (documented)"
    );
    let variable = &template["Resources"]["ControlFunction"]["Properties"]["Environment"]
        ["Variables"]["SHIPGATE_OPERATOR_ARN_PATTERNS"];
    assert_eq!(tag_name(variable).as_deref(), Some("Ref"), "{variable:?}");
    assert_eq!(untagged(variable).as_str(), Some("OperatorArnPatterns"));
    assert_eq!(
        shared::domain::operators::OPERATORS_ENV,
        "SHIPGATE_OPERATOR_ARN_PATTERNS"
    );
}

/// The operator policy lets `shipgate approvers add|remove|list` manage the approval topic's
/// subscriptions (cli/src/approvers/sns.rs calls exactly these actions) and the authenticated
/// confirmation: Subscribe / ConfirmSubscription / ListSubscriptionsByTopic on the approval topic
/// only; the three without resource-level permissions on `"*"` and nothing else; no other SNS
/// action (no Publish, no topic changes). The approver policy has none of them.
#[test]
fn operator_policy_manages_the_approval_topics_subscriptions_and_approvers_cannot() {
    const ON_THE_TOPIC: [&str; 3] = [
        "sns:Subscribe",
        "sns:ConfirmSubscription",
        "sns:ListSubscriptionsByTopic",
    ];
    const WITHOUT_RESOURCE_TYPE: [&str; 3] = [
        "sns:GetSubscriptionAttributes",
        "sns:SetSubscriptionAttributes",
        "sns:Unsubscribe",
    ];
    let template = template();
    let mut statements = Vec::new();
    collect_statements(
        &template["Resources"]["OperatorPolicy"],
        "OperatorPolicy",
        &mut statements,
    );
    let mut granted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for st in &statements {
        assert_eq!(st.body.get("Effect").and_then(Value::as_str), Some("Allow"));
        let resource = st.body.get("Resource").expect("a Resource");
        let resources: Vec<String> = match untagged(resource) {
            Value::Sequence(items) => items.iter().map(describe_resource).collect(),
            _ => vec![describe_resource(resource)],
        };
        for action in st.body.get("Action").map(strings).unwrap_or_default() {
            if action.starts_with("sns:") {
                granted
                    .entry(action.to_string())
                    .or_default()
                    .extend(resources.clone());
            }
        }
    }
    for action in ON_THE_TOPIC {
        let on = granted
            .get(action)
            .unwrap_or_else(|| panic!("{action} not granted"));
        let want: &[&str] = if action == "sns:ListSubscriptionsByTopic" {
            // doctor also reads the failure topic's subscribers
            &["Ref ApprovalTopic", "Ref FailureTopic"]
        } else {
            &["Ref ApprovalTopic"]
        };
        let mut on: Vec<&str> = on.iter().map(String::as_str).collect();
        on.sort_unstable();
        on.dedup();
        assert_eq!(on, want, "{action}");
    }
    for action in WITHOUT_RESOURCE_TYPE {
        assert_eq!(
            granted.get(action).map(Vec::as_slice),
            Some(&["*".to_string()][..]),
            "{action}"
        );
    }
    let known: BTreeSet<&str> = ON_THE_TOPIC
        .into_iter()
        .chain(WITHOUT_RESOURCE_TYPE)
        .collect();
    let extra: Vec<&String> = granted
        .keys()
        .filter(|a| !known.contains(a.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "OperatorPolicy grants other SNS actions: {extra:?}"
    );

    let mut approver = Vec::new();
    collect_statements(
        &template["Resources"]["ApproverPolicy"],
        "ApproverPolicy",
        &mut approver,
    );
    for st in &approver {
        let actions = st.body.get("Action").map(strings).unwrap_or_default();
        assert!(
            actions.iter().all(|a| !a.starts_with("sns:")),
            "approvers manage no subscriptions: {actions:?}"
        );
    }
}

/// `!Ref X` as "Ref X", a plain string as itself.
fn describe_resource(value: &Value) -> String {
    match (tag_name(value), untagged(value).as_str()) {
        (Some(tag), Some(text)) => format!("{tag} {text}"),
        (None, Some(text)) => text.to_string(),
        _ => format!("{value:?}"),
    }
}
