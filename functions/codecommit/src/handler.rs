//! CodeCommit "Repository State Change" (EventBridge).

use serde_json::{json, Value};
use shared::app::sources::{handle_codecommit_change, CodeCommitOutcome};
use shared::app::Services;
use shared::domain::aws_events::decode_reference_change;
use shared::runtime::EventError;

pub async fn handle(svc: &Services, event: Value) -> Result<Value, EventError> {
    // one invocation: each pipeline definition is read at most once
    let svc = &svc.for_invocation();
    let change = decode_reference_change(&event)?;
    Ok(match handle_codecommit_change(svc, &change).await? {
        CodeCommitOutcome::Ignored(reason) => json!({ "status": "ignored", "reason": reason }),
        CodeCommitOutcome::NoPipeline => json!({ "status": "no pipeline" }),
        CodeCommitOutcome::Started(started) => json!({
            "status": "started",
            "execution_id": started[0].execution_id,
            "executions": started,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::Source;
    use shared::fake_world::FakeWorld;
    use shared::ports::{Clock, ExecutionStore};

    #[tokio::test]
    async fn samples_through_the_handler() {
        let w = FakeWorld::new();
        let mut p = FakeWorld::pipeline();
        p.source = Source::Codecommit("hello".into());
        w.store.put_pipeline(&p, w.clock.now()).await.unwrap();
        let updated: Value =
            serde_json::from_str(include_str!("../../../events/codecommit/updated.json")).unwrap();
        let out = handle(&w.services, updated.clone()).await.unwrap();
        assert_eq!(out["status"], "started");
        let again = handle(&w.services, updated).await.unwrap();
        assert_eq!(again["execution_id"], out["execution_id"]);
        assert_eq!(again["executions"][0]["duplicate"], true);
        let deleted: Value =
            serde_json::from_str(include_str!("../../../events/codecommit/deleted.json")).unwrap();
        assert_eq!(
            handle(&w.services, deleted).await.unwrap()["status"],
            "ignored"
        );
        assert_eq!(w.builds.started().len(), 1);
        assert!(matches!(
            handle(&w.services, json!([])).await,
            Err(EventError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn tag_pushes_start_pipelines_that_list_the_tag() {
        let w = FakeWorld::new();
        let tag: Value =
            serde_json::from_str(include_str!("../../../events/codecommit/tag-created.json"))
                .unwrap();
        let mut p = FakeWorld::pipeline();
        p.source = Source::Codecommit("hello".into());
        w.store.put_pipeline(&p, w.clock.now()).await.unwrap();
        // no pipeline opts in to tags: ignored, nothing built
        assert_eq!(
            handle(&w.services, tag.clone()).await.unwrap()["status"],
            "ignored"
        );
        p.tags = vec!["v*".into()];
        w.store.put_pipeline(&p, w.clock.now()).await.unwrap();
        let out = handle(&w.services, tag.clone()).await.unwrap();
        assert_eq!(out["status"], "started", "{out}");
        let builds = w.builds.started();
        assert_eq!(builds.len(), 1);
        assert_eq!(
            builds[0].source_version,
            "4c1d3e5f7a9b0c2d4e6f8a0b1c3d5e7f9a1b3c5d"
        );
        let id: shared::domain::ExecutionId =
            out["execution_id"].as_str().unwrap().parse().unwrap();
        let e = w.services.execution(&id).await.unwrap();
        assert_eq!(e.commit.reference, "v1.2.0");
        // a tag the globs do not list
        let mut other = tag;
        other["id"] = "cccccccc-1111-2222-3333-000000000005".into();
        other["detail"]["referenceName"] = "nightly".into();
        other["detail"]["referenceFullName"] = "refs/tags/nightly".into();
        assert_eq!(
            handle(&w.services, other).await.unwrap()["status"],
            "ignored"
        );
        assert_eq!(w.builds.started().len(), 1);
    }
}
