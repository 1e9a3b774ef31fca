use serde_json::Value;

use super::*;

pub(crate) const EXAMPLE: &str = r#"
name = "hello"
source = { github = "acme/hello" }
branches = ["main", "release/*"]
paths = ["src/**", "Dockerfile"]
build = { project = "hello-build" }
image = { repository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello" }
test = { cluster = "apps", service = "hello-test", container = "app" }
prod = { cluster = "apps", service = "hello-prod", container = "app" }
approval = { topic_arn = "arn:aws:sns:eu-west-1:123456789012:approvals", timeout_hours = 48 }
mode = "queued"
"#;

fn example() -> PipelineDefinition {
    PipelineDefinition::parse(EXAMPLE, Format::Toml).expect("valid example")
}

#[test]
fn parses_toml_with_defaults() {
    let p = example();
    assert_eq!(p.name, "hello");
    assert_eq!(p.source, Source::Github("acme/hello".into()));
    assert_eq!(p.approval.timeout_hours, 48);
    assert_eq!(p.mode, ExecutionMode::Queued);
    assert_eq!(p.keep_images, DEFAULT_KEEP_IMAGES);
    assert!(p.tags.is_empty());
    assert_eq!(p.image.repository_name(), "hello");
    assert_eq!(p.notification_topic(), p.approval.topic_arn);
    p.validate().expect("round trip validates");
}

#[test]
fn parses_yaml_and_json_the_same() {
    let yaml = r#"
name: hello
source: { github: acme/hello }
branches: [main, "release/*"]
paths: ["src/**", Dockerfile]
build: { project: hello-build }
image: { repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello }
test: { cluster: apps, service: hello-test, container: app }
prod: { cluster: apps, service: hello-prod, container: app }
approval: { topic_arn: "arn:aws:sns:eu-west-1:123456789012:approvals", timeout_hours: 48 }
mode: queued
"#;
    let from_yaml = PipelineDefinition::parse(yaml, Format::Yaml).expect("yaml");
    assert_eq!(from_yaml, example());
    let json = serde_json::to_string(&example()).unwrap();
    assert_eq!(
        PipelineDefinition::parse(&json, Format::Json).unwrap(),
        example()
    );
}

#[test]
fn default_branch_is_main_and_approval_timeout_is_72h() {
    let text = EXAMPLE
        .replace("branches = [\"main\", \"release/*\"]\n", "")
        .replace(", timeout_hours = 48", "");
    let p = PipelineDefinition::parse(&text, Format::Toml).unwrap();
    assert_eq!(p.branches, vec!["main"]);
    assert_eq!(p.approval.timeout_hours, 72);
}

#[test]
fn reports_every_problem_with_its_path() {
    let text = r#"
name = "bad name!"
source = { github = "no-slash" }
branches = ["main", "[unclosed", 3]
build = { }
image = { repository = "hello" }
test = { cluster = "apps", service = "svc", container = "" }
prod = { cluster = "apps", service = "svc", container = "app", colour = "blue" }
approval = { topic_arn = "not-an-arn", timeout_hours = 0 }
mode = "sometimes"
keep_images = 0
extra = true
"#;
    let errors = PipelineDefinition::parse(text, Format::Toml).unwrap_err().0;
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    for expected in [
        "name",
        "source.github",
        "branches[1]",
        "branches[2]",
        "build.project",
        "image.repository",
        "test.container",
        "prod.colour",
        "approval.topic_arn",
        "approval.timeout_hours",
        "mode",
        "keep_images",
        "extra",
    ] {
        assert!(paths.contains(&expected), "missing {expected} in {paths:?}");
    }
    assert_eq!(errors.len(), 13, "{errors:?}");
}

#[test]
fn missing_sections_are_required() {
    let errors = PipelineDefinition::parse("name = \"x\"", Format::Toml)
        .unwrap_err()
        .0;
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["source", "build", "image", "test", "prod", "approval"]
    );
    assert!(errors.iter().all(|e| e.message == "is required"));
}

#[test]
fn same_test_and_prod_service_is_rejected() {
    let text = EXAMPLE.replace("hello-prod", "hello-test");
    let errors = PipelineDefinition::parse(&text, Format::Toml).unwrap_err();
    assert_eq!(errors.0[0].path, "prod.service");
}

#[test]
fn test_and_prod_are_compared_by_canonical_identity() {
    let with = |test: &str, prod: &str| {
        let text = EXAMPLE
            .replace(
                r#"test = { cluster = "apps", service = "hello-test", container = "app" }"#,
                &format!("test = {test}"),
            )
            .replace(
                r#"prod = { cluster = "apps", service = "hello-prod", container = "app" }"#,
                &format!("prod = {prod}"),
            );
        PipelineDefinition::parse(&text, Format::Toml)
    };
    let arn = "arn:aws:ecs:eu-west-1:123456789012";
    let same = [
        // the reported case: test as a cluster ARN, prod as a name
        (
            format!(
                r#"{{ cluster = "{arn}:cluster/apps", service = "hello-prod", container = "app" }}"#
            ),
            r#"{ cluster = "apps", service = "hello-prod", container = "app" }"#.to_string(),
        ),
        (
            r#"{ cluster = "apps", service = "hello-prod", container = "app" }"#.to_string(),
            format!(
                r#"{{ cluster = "apps", service = "{arn}:service/apps/hello-prod", container = "app" }}"#
            ),
        ),
        (
            format!(
                r#"{{ cluster = "apps", service = "{arn}:service/hello-prod", container = "app" }}"#
            ),
            format!(
                r#"{{ cluster = "{arn}:cluster/apps", service = "{arn}:service/apps/hello-prod", container = "x" }}"#
            ),
        ),
        (
            r#"{ cluster = "Apps", service = "Hello-Prod", container = "app" }"#.to_string(),
            r#"{ cluster = "apps", service = "hello-prod", container = "app" }"#.to_string(),
        ),
    ];
    for (t, p) in &same {
        let errors = with(t, p).unwrap_err();
        assert_eq!(errors.0[0].path, "prod.service", "{t} / {p}: {errors}");
        assert!(errors.0[0].message.contains("same ECS service"), "{errors}");
    }
    // stated differences tell services apart
    let other = "arn:aws:ecs:eu-west-1:210987654321";
    with(
        &format!(r#"{{ cluster = "{arn}:cluster/apps", service = "hello", container = "app" }}"#),
        &format!(r#"{{ cluster = "{other}:cluster/apps", service = "hello", container = "app" }}"#),
    )
    .expect("another account");
    // malformed or contradicting ARNs are refused with their path
    let errors = with(
        r#"{ cluster = "arn:aws:ecs:eu-west-1:1:cluster/apps", service = "s", container = "app" }"#,
        r#"{ cluster = "apps", service = "p", container = "app" }"#,
    )
    .unwrap_err();
    assert_eq!(errors.0[0].path, "test.cluster", "{errors}");
    let errors = with(
        &format!(
            r#"{{ cluster = "apps", service = "{arn}:service/other/hello", container = "app" }}"#
        ),
        r#"{ cluster = "apps", service = "p", container = "app" }"#,
    )
    .unwrap_err();
    assert_eq!(errors.0[0].path, "test.service", "{errors}");
    let errors = with(
        &format!(r#"{{ cluster = "{arn}:cluster/apps", service = "{other}:service/apps/x", container = "app" }}"#),
        r#"{ cluster = "apps", service = "p", container = "app" }"#,
    )
    .unwrap_err();
    assert!(errors.0[0].message.contains("account"), "{errors}");
    // the deploy-time check uses the same function
    let mut p = example();
    p.test.cluster = format!("{arn}:cluster/{}", p.prod.cluster);
    p.test.service = p.prod.service.clone();
    assert!(p.check_distinct_targets().is_err());
    assert!(example().check_distinct_targets().is_ok());
}

#[test]
fn hostile_definitions_are_refused_with_their_path() {
    let with_branches = |list: &str| {
        let text = EXAMPLE.replace(
            r#"branches = ["main", "release/*"]"#,
            &format!("branches = {list}"),
        );
        assert_ne!(text, EXAMPLE);
        PipelineDefinition::parse(&text, Format::Toml)
    };
    // 100,000 nested groups (used to overflow the stack of the webhook on every push)
    let deep = "{".repeat(50_000) + &"}".repeat(50_000);
    let errors = with_branches(&format!("[\"{deep}\"]")).unwrap_err();
    assert_eq!(errors.0[0].path, "(document)", "{errors}");
    assert!(
        errors.0[0].message.contains("bytes; at most 65536"),
        "{errors}"
    );
    let deep = "{".repeat(10_000) + &"}".repeat(10_000);
    let errors = with_branches(&format!("[\"{deep}\"]")).unwrap_err();
    assert_eq!(errors.0[0].path, "branches[0]");
    assert!(errors.0[0].message.contains("at most 256"), "{errors}");
    let errors = with_branches(&format!("[{}]", vec!["\"a\""; 33].join(","))).unwrap_err();
    assert_eq!(errors.0[0].path, "branches");
    assert!(errors.0[0].message.contains("at most 32"), "{errors}");
    let heavy = "\"{a,b,c,d,e,f,g,h}{a,b,c,d,e,f,g,h}[abcdefghij]\"";
    let errors = with_branches(&format!("[{}]", vec![heavy; 32].join(","))).unwrap_err();
    assert_eq!(errors.0[0].path, "branches", "{errors}");
    assert!(errors.0[0].message.contains("at most 8192"), "{errors}");
    // deep YAML is refused by the pre-scan, in linear time
    let yaml = "name: ".to_string() + &"[".repeat(40_000) + &"]".repeat(40_000);
    let errors = PipelineDefinition::parse(&yaml, Format::Yaml).unwrap_err();
    assert!(errors.0[0].message.contains("at most 65536"), "{errors}");
    let yaml = "name: ".to_string() + &"[".repeat(30_000) + &"]".repeat(30_000);
    let errors = PipelineDefinition::parse(&yaml, Format::Yaml).unwrap_err();
    assert!(
        errors.0[0].message.contains("nested more than 16"),
        "{errors}"
    );
    let long = "x".repeat(MAX_FIELD_LEN + 1);
    let errors =
        PipelineDefinition::parse(&EXAMPLE.replace("hello-test", &long), Format::Toml).unwrap_err();
    assert_eq!(errors.0[0].path, "test.service", "{errors}");
}

#[test]
fn a_flood_of_problems_is_listed_up_to_a_bound() {
    let mut doc = serde_json::Map::new();
    for i in 0..100_000 {
        doc.insert(format!("k{i}"), Value::Null);
    }
    let errors = PipelineDefinition::from_value(&Value::Object(doc)).unwrap_err();
    assert_eq!(errors.0.len(), MAX_REPORTED_PROBLEMS + 1);
    let last = errors.0.last().unwrap();
    assert!(
        last.message.contains("more problems not listed"),
        "{last:?}"
    );
}

#[test]
fn yaml_alias_bombs_are_refused() {
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        yaml.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let started = std::time::Instant::now();
    let errors = PipelineDefinition::parse(&yaml, Format::Yaml).unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{errors}"
    );
    assert_eq!(errors.0[0].path, "(document)", "{errors}");
    assert!(errors.0[0].message.contains("repetition limit"), "{errors}");
}

#[test]
fn serde_json_keeps_its_recursion_limit() {
    let deep = "[".repeat(129) + &"]".repeat(129);
    let e = serde_json::from_str::<Value>(&deep).unwrap_err();
    assert!(e.to_string().contains("recursion limit"), "{e}");
    assert!(serde_json::from_str::<Value>(&("[".repeat(127) + &"]".repeat(127))).is_ok());
}

#[test]
fn matching_work_per_push_is_bounded() {
    let mut p = example();
    p.paths = vec!["src/**".into()];
    let refs = |n: usize| "a".repeat(n);
    assert!(!p.matches(
        &p.source.clone(),
        RefKind::Branch,
        &refs(MAX_REF_LEN + 1),
        None
    ));
    let many: Vec<String> = (0..MAX_CHANGED_FILES + 1)
        .map(|i| format!("docs/{i}"))
        .collect();
    assert!(
        p.matches(&p.source.clone(), RefKind::Branch, "main", Some(&many)),
        "too many files to check: not excluded"
    );
    assert!(!p.matches(
        &p.source.clone(),
        RefKind::Branch,
        "main",
        Some(&many[..10])
    ));
}

#[test]
fn both_sources_is_rejected() {
    let text = EXAMPLE.replace(
        "{ github = \"acme/hello\" }",
        "{ github = \"acme/hello\", codecommit = \"hello\" }",
    );
    let errors = PipelineDefinition::parse(&text, Format::Toml).unwrap_err();
    assert_eq!(errors.0[0].path, "source");
}

#[test]
fn syntax_errors_are_reported_not_panicked() {
    for (text, format) in [
        ("name = ", Format::Toml),
        ("name: [", Format::Yaml),
        ("{", Format::Json),
        ("[1, 2]", Format::Json),
        ("", Format::Json),
    ] {
        let errors = PipelineDefinition::parse(text, format).unwrap_err();
        assert!(!errors.0.is_empty());
        assert!(errors.to_string().contains("invalid pipeline definition"));
    }
}

#[test]
fn format_from_path() {
    assert_eq!(Format::from_path("a/p.TOML"), Some(Format::Toml));
    assert_eq!(Format::from_path("p.yml"), Some(Format::Yaml));
    assert_eq!(Format::from_path("p.yaml"), Some(Format::Yaml));
    assert_eq!(Format::from_path("p.json"), Some(Format::Json));
    assert_eq!(Format::from_path("p.txt"), None);
}

#[test]
fn branch_and_path_matching() {
    let p = example();
    let gh = Source::Github("acme/hello".into());
    let files = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(p.matches(&gh, RefKind::Branch, "main", None));
    assert!(p.matches(
        &Source::Github("ACME/Hello".into()),
        RefKind::Branch,
        "main",
        None
    ));
    assert!(p.matches(&gh, RefKind::Branch, "release/1.2", None));
    assert!(
        !p.matches(&gh, RefKind::Branch, "release/1/2", None),
        "* stays in one segment"
    );
    assert!(!p.matches(&gh, RefKind::Branch, "feature/x", None));
    assert!(
        !p.matches(&gh, RefKind::Tag, "v1.0.0", None),
        "tags need opting in"
    );
    assert!(!p.matches(
        &Source::Github("acme/other".into()),
        RefKind::Branch,
        "main",
        None
    ));
    assert!(!p.matches(
        &Source::Codecommit("hello".into()),
        RefKind::Branch,
        "main",
        None
    ));
    assert!(p.matches(&gh, RefKind::Branch, "main", Some(&files(&["src/a/b.rs"]))));
    assert!(p.matches(
        &gh,
        RefKind::Branch,
        "main",
        Some(&files(&["README.md", "Dockerfile"]))
    ));
    assert!(!p.matches(&gh, RefKind::Branch, "main", Some(&files(&["README.md"]))));
    assert!(!p.matches(&gh, RefKind::Branch, "main", Some(&[])));
}

#[test]
fn tag_pushes_match_when_opted_in() {
    let mut p = example();
    p.tags = vec!["v*".into()];
    p.paths.clear();
    let gh = Source::Github("acme/hello".into());
    assert!(p.matches(&gh, RefKind::Tag, "v1.0.0", None));
    assert!(!p.matches(&gh, RefKind::Tag, "nightly", None));
}

#[test]
fn example_pipeline_file_is_valid() {
    let text = include_str!("../../../../examples/pipeline.toml");
    let p = PipelineDefinition::parse(text, Format::Toml).expect("examples/pipeline.toml");
    assert_eq!(p.name, "hello");
    assert_eq!(
        p.notification_topic(),
        "arn:aws:sns:eu-west-1:123456789012:shipgate-failures"
    );
}

#[test]
fn ecr_uri_validation() {
    assert!(valid_ecr_uri(
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello"
    ));
    assert!(valid_ecr_uri(
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team/hello-svc"
    ));
    assert!(!valid_ecr_uri("hello"));
    assert!(!valid_ecr_uri(
        "12345.dkr.ecr.eu-west-1.amazonaws.com/hello"
    ));
    assert!(!valid_ecr_uri(
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/Hello"
    ));
    assert!(!valid_ecr_uri("docker.io/library/nginx"));
}

#[test]
fn index_key_is_equal_exactly_when_sources_match() {
    let gh = |r: &str| Source::Github(r.into());
    let cc = |r: &str| Source::Codecommit(r.into());
    assert_eq!(gh("Acme/Hello").index_key(), "github:acme/hello");
    assert_eq!(cc("Hello").index_key(), "codecommit:Hello");
    let sources = [
        gh("acme/hello"),
        gh("ACME/Hello"),
        gh("acme/other"),
        cc("hello"),
        cc("Hello"),
        cc("acme/hello"),
    ];
    for a in &sources {
        let mut p = example();
        p.source = a.clone();
        for b in &sources {
            assert_eq!(
                a.index_key() == b.index_key(),
                p.matches(b, RefKind::Branch, "main", None),
                "{a:?} vs {b:?}"
            );
        }
    }
}

#[test]
fn a_codecommit_source_without_self_approval_needs_every_approvers_arn() {
    let text = |source: &str, extra: &str| {
        EXAMPLE
            .replace("source = { github = \"acme/hello\" }", source)
            .replace(
                "timeout_hours = 48 }",
                &format!(
                    "timeout_hours = 48, {extra}approvers = [{{ email = \"alice@example.com\" }}, {{ email = \"bob@example.com\", arn = \"arn:aws:iam::123456789012:user/bob\" }}] }}"
                ),
            )
    };
    let cc = "source = { codecommit = \"hello\" }";
    let err = PipelineDefinition::parse(&text(cc, ""), Format::Toml).unwrap_err();
    let paths: Vec<&str> = err.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["approval.approvers[0].arn"], "{err:?}");
    // allowed when self-approval is, and on GitHub (the pusher's e-mail and login are known)
    PipelineDefinition::parse(&text(cc, "allow_self_approval = true, "), Format::Toml)
        .expect("self-approval allowed");
    PipelineDefinition::parse(
        &text("source = { github = \"acme/hello\" }", ""),
        Format::Toml,
    )
    .expect("github source");
}
