//! The pump's decisions, as pure functions: which builds finish now, what a failed deployment
//! rolls back to, which commit message fails which stage.

use std::collections::{HashMap, HashSet};

use shared::domain::{Environment, Execution, Status};

/// An older execution not yet building holds back newer builds of its pipeline this long at most.
const RECEIVED_HOLD: chrono::Duration = chrono::Duration::seconds(30);

/// One deployment of a service as DescribeServices shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentNow {
    pub id: String,
    pub primary: bool,
    pub rollout: String,
    pub task_definition: String,
}

pub fn fails(exec: Option<&Execution>, marker: &str) -> bool {
    exec.and_then(|e| e.commit.message.as_deref())
        .is_some_and(|m| m.contains(marker))
}

/// The marker that fails a deployment to `env`.
pub fn fail_marker(env: Environment) -> &'static str {
    match env {
        Environment::Test => "[fail-deploy]",
        Environment::Prod => "[fail-prod]",
    }
}

pub fn short_td(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// What the ECS circuit breaker rolls a service back to when `failed` fails: the task definition
/// of its newest completed deployment, else of its oldest one (the service's first).
pub fn rollback_target<'a>(deployments: &'a [DeploymentNow], failed: &str) -> Option<&'a str> {
    let mut others = deployments.iter().filter(|d| d.id != failed);
    others
        .clone()
        .find(|d| d.rollout == "COMPLETED")
        .or_else(|| others.next_back())
        .map(|d| d.task_definition.as_str())
}

/// Of the builds that are due, the ones to deliver now, in push order: a build waits while an
/// older execution of its pipeline is still building (or about to), so that builds of one
/// pipeline finish — and deploy to test — in the order they were pushed.
pub fn deliverable(
    due: Vec<(String, Option<Execution>)>,
    recent: &HashMap<String, Vec<Execution>>,
    delivered: &HashSet<String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, Option<Execution>)> {
    let due_ids: HashSet<String> = due.iter().map(|(b, _)| b.clone()).collect();
    let blocked = |e: &Execution| -> bool {
        recent.get(&e.pipeline).is_some_and(|list| {
            list.iter().any(|o| {
                o.id < e.id
                    && match o.status {
                        Status::Building => o
                            .build_id
                            .as_deref()
                            .is_some_and(|b| !delivered.contains(b) && !due_ids.contains(b)),
                        Status::Received => now - o.updated_at < RECEIVED_HOLD,
                        _ => false,
                    }
            })
        })
    };
    let mut out: Vec<(String, Option<Execution>)> = due
        .into_iter()
        .filter(|(_, e)| e.as_ref().is_none_or(|e| !blocked(e)))
        .collect();
    out.sort_by(|(a, ea), (b, eb)| {
        let ka = ea.as_ref().map(|e| e.id.clone());
        let kb = eb.as_ref().map(|e| e.id.clone());
        ka.cmp(&kb).then_with(|| a.cmp(b))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::ExecutionId;
    use std::time::Duration;

    fn dep(id: &str, primary: bool, rollout: &str, td: &str) -> DeploymentNow {
        DeploymentNow {
            id: id.into(),
            primary,
            rollout: rollout.into(),
            task_definition: td.into(),
        }
    }

    #[test]
    fn rollback_goes_to_the_last_completed_deployment() {
        // newest first: the failed one, one it replaced mid-rollout, the last completed one
        let deployments = vec![
            dep("c", true, "IN_PROGRESS", "td:3"),
            dep("b", false, "IN_PROGRESS", "td:2"),
            dep("a", false, "COMPLETED", "td:1"),
        ];
        assert_eq!(rollback_target(&deployments, "c"), Some("td:1"));
        // a service that never completed a deployment goes back to its first one
        let fresh = vec![
            dep("c", true, "IN_PROGRESS", "td:3"),
            dep("first", false, "IN_PROGRESS", "td:0"),
        ];
        assert_eq!(rollback_target(&fresh, "c"), Some("td:0"));
        assert_eq!(rollback_target(&fresh[..1], "c"), None);
    }

    fn exec(pipeline: &str, status: Status, build: Option<&str>) -> Execution {
        let commit = shared::domain::Commit {
            sha: "0123456789abcdef0123456789abcdef01234567".into(),
            reference: "main".into(),
            author: None,
            message: None,
            url: None,
        };
        let trigger = shared::domain::Trigger::Release { actor: "t".into() };
        let now = chrono::Utc::now();
        let mut e = Execution::received(
            ExecutionId::generate(now),
            pipeline,
            commit,
            trigger,
            now,
            "t",
        );
        e.status = status;
        e.build_id = build.map(str::to_string);
        e
    }

    #[test]
    fn builds_of_a_pipeline_finish_in_push_order() {
        let older = exec("p", Status::Building, Some("proj:1"));
        std::thread::sleep(Duration::from_millis(2));
        let newer = exec("p", Status::Building, Some("proj:2"));
        let other = exec("q", Status::Building, Some("other:1"));
        let recent = HashMap::from([
            ("p".to_string(), vec![newer.clone(), older.clone()]),
            ("q".to_string(), vec![other.clone()]),
        ]);
        let now = chrono::Utc::now();
        // the newer build is due first: it waits for the older one; other pipelines do not
        let ready = deliverable(
            vec![
                ("proj:2".into(), Some(newer.clone())),
                ("other:1".into(), Some(other.clone())),
            ],
            &recent,
            &HashSet::new(),
            now,
        );
        let ids: Vec<&str> = ready.iter().map(|(b, _)| b.as_str()).collect();
        assert_eq!(ids, vec!["other:1"]);
        // both due: the older one first
        let ready = deliverable(
            vec![
                ("proj:2".into(), Some(newer.clone())),
                ("proj:1".into(), Some(older.clone())),
            ],
            &recent,
            &HashSet::new(),
            now,
        );
        let ids: Vec<&str> = ready.iter().map(|(b, _)| b.as_str()).collect();
        assert_eq!(ids, vec!["proj:1", "proj:2"]);
        // the older one delivered already: the newer one goes
        let ready = deliverable(
            vec![("proj:2".into(), Some(newer))],
            &recent,
            &HashSet::from(["proj:1".to_string()]),
            now,
        );
        assert_eq!(ready.len(), 1);
    }
}
