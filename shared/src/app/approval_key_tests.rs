//! Rotating the approval signing key does not void pending links.

use super::approvals;
use super::test_support::*;
use crate::fake_world::FakeWorld;
use crate::fakes::{SIGNING_KEY, SIGNING_KEY_ID};
use crate::ports::Clock;

#[tokio::test]
async fn links_signed_before_a_rotation_still_work_and_new_links_use_current() {
    let w = FakeWorld::with_pipeline().await;
    let id = awaiting(&w, 1).await;
    let old_token = approval_token(&w);
    assert!(approvals::view(&w.services, &old_token).await.is_ok());

    // rotate: the old key becomes `previous`; a new cold start reads the JSON form
    w.secrets.set(
        SIGNING_KEY_ID,
        &format!(r#"{{"current": "a-brand-new-signing-key", "previous": "{SIGNING_KEY}"}}"#),
    );
    let rotated = w.cold_start();
    let view = approvals::view(&rotated, &old_token)
        .await
        .expect("old link still valid");
    assert_eq!(view.execution.id, id);

    // a link issued now is signed with `current` only
    let exec = exec(&w, &id).await;
    let link = approvals::approval_link(&rotated, &exec).await.unwrap();
    let new_token = link.rsplit('/').next().unwrap().to_string();
    assert_ne!(new_token, old_token);
    let digest = exec.image.as_ref().unwrap().digest.clone();
    let now = w.clock.now();
    assert!(
        crate::domain::token::verify(b"a-brand-new-signing-key", &new_token, &digest, now).is_ok()
    );
    assert!(
        crate::domain::token::verify(SIGNING_KEY.as_bytes(), &new_token, &digest, now).is_err()
    );
    assert!(approvals::view(&rotated, &new_token).await.is_ok());

    // rotation finished: `previous` removed → the old link no longer verifies (403), the new does
    w.secrets
        .set(SIGNING_KEY_ID, r#"{"current": "a-brand-new-signing-key"}"#);
    let finished = w.cold_start();
    assert_eq!(
        approvals::view(&finished, &old_token)
            .await
            .unwrap_err()
            .http_status(),
        403
    );
    assert!(approvals::view(&finished, &new_token).await.is_ok());
    // and deciding through the old link with the rotated key works
    let e = approvals::decide_by_link(&rotated, &old_token, form(crate::domain::Verdict::Reject))
        .await
        .expect("decided through a link signed with the previous key");
    assert_eq!(e.status, crate::domain::Status::Rejected);
}
