//! Approvals: the signed request, the confirmation page data, and decisions from the email link
//! (token) or the CLI/console (IAM identity).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tracing::{instrument, warn};

use super::{AppError, Applied, Services};
use crate::domain::approval_policy::Approver;
use crate::domain::token::{self, TokenClaims, TokenError};
use crate::domain::{
    Channel, Decision, Environment, Event, Execution, ExecutionId, PipelineDefinition, Status,
    Verdict,
};
use crate::ports::{rotating_secrets, DeployedRevision};

/// Longest name or comment kept from the form.
pub const MAX_FORM_FIELD: usize = 500;

/// The shared approval page link for an execution awaiting approval (a pipeline without
/// approvers).
pub async fn approval_link(svc: &Services, exec: &Execution) -> Result<String, AppError> {
    link_for(svc, exec, None).await
}

/// The personal approval link of the approver with e-mail `approver` (see
/// [`crate::domain::token`]): it acts as that approver only.
pub async fn personal_approval_link(
    svc: &Services,
    exec: &Execution,
    approver: &str,
) -> Result<String, AppError> {
    link_for(svc, exec, Some(approver)).await
}

async fn link_for(
    svc: &Services,
    exec: &Execution,
    approver: Option<&str>,
) -> Result<String, AppError> {
    let (Some(approval), Some(image)) = (&exec.approval, &exec.image) else {
        return Err(AppError::Conflict(format!(
            "execution {} has no approval round",
            exec.id
        )));
    };
    let key = svc.secrets.get(&svc.settings.signing_key_id).await?;
    // a rotating key signs with `current` (the first value)
    let keys = rotating_secrets(key.expose());
    let signing_key = keys.first().map(String::as_bytes).unwrap_or_default();
    let claims = TokenClaims {
        execution_id: exec.id.clone(),
        nonce: approval.nonce.clone(),
        expires_at: approval.expires_at,
    };
    let token = match approver {
        Some(email) => token::sign_personal(signing_key, &claims, &image.digest, email),
        None => token::sign(signing_key, &claims, &image.digest),
    };
    Ok(format!(
        "{}/approvals/{}",
        svc.settings.public_url.trim_end_matches('/'),
        token
    ))
}

/// Why an approval link cannot be used. Each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// 400
    #[error("This approval link is malformed. Copy the whole link from the email.")]
    Malformed,
    /// 404
    #[error("This approval link does not belong to any execution.")]
    Unknown,
    /// 403
    #[error("This approval link is not valid: it was altered, or it belongs to an earlier approval round.")]
    Forged,
    /// 410
    #[error("This approval link expired at {0}. Nothing was changed.")]
    Expired(DateTime<Utc>),
    /// 410
    #[error("A newer execution replaced this one; this link no longer works. {0}")]
    Superseded(String),
    /// 409
    #[error("This approval was already decided: {0}.")]
    AlreadyDecided(String),
    /// 409
    #[error("This execution is {0} and does not wait for an approval.")]
    NotAwaiting(Status),
    /// 403: the pipeline lists its approvers and this caller is none of them (or is unverified).
    #[error("{0} Nothing was changed.")]
    NotAnApprover(String),
    /// 403: the approver pushed or wrote this change.
    #[error("{0} cannot approve their own change (the pipeline does not allow self-approval). Nothing was changed.")]
    OwnChange(String),
    /// 409: approving would move production back to an older release.
    #[error("This release can no longer go to production: {0}. Nothing was changed.")]
    OutOfOrder(String),
    #[error(transparent)]
    App(#[from] AppError),
}

impl LinkError {
    pub fn http_status(&self) -> u16 {
        match self {
            LinkError::Malformed => 400,
            LinkError::Unknown => 404,
            LinkError::Forged | LinkError::NotAnApprover(_) | LinkError::OwnChange(_) => 403,
            LinkError::Expired(_) | LinkError::Superseded(_) => 410,
            LinkError::AlreadyDecided(_) | LinkError::NotAwaiting(_) | LinkError::OutOfOrder(_) => {
                409
            }
            LinkError::App(e) if e.is_retryable() => 503,
            LinkError::App(_) => 500,
        }
    }
}

/// What the confirmation page shows.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalView {
    pub execution: Execution,
    pub pipeline: PipelineDefinition,
    pub expires_at: DateTime<Utc>,
    /// What production runs now (as recorded by shipgate).
    pub production: Option<DeployedRevision>,
    /// A personal link: whose it is.
    pub owner: Option<LinkOwner>,
}

/// The approver a personal link was issued to, as the page shows them.
#[derive(Debug, Clone, Serialize)]
pub struct LinkOwner {
    /// Their e-mail address (as listed in the pipeline).
    pub email: String,
    /// They pushed or wrote this change and the pipeline does not allow self-approval: they
    /// may reject, not approve.
    pub own_change: bool,
    /// Their approval is already counted in this round.
    pub counted: bool,
}

/// The actor recorded for a decision through a personal link.
pub fn personal_link_actor(email: &str) -> String {
    format!("{email} — personal email link")
}

/// A checked link: the execution, its claims and, for a personal link, the approver it binds
/// (still listed in the pipeline).
struct CheckedLink {
    exec: Execution,
    claims: TokenClaims,
    owner: Option<Approver>,
    pipeline: PipelineDefinition,
}

/// Check a token and load what it points at. Never changes anything.
async fn check_link(svc: &Services, raw: &str) -> Result<CheckedLink, LinkError> {
    let (claims, approver_ref) = token::decode_link(raw).map_err(|_| LinkError::Malformed)?;
    let exec = svc
        .store
        .get_execution(&claims.execution_id)
        .await
        .map_err(AppError::from)?
        .ok_or(LinkError::Unknown)?;
    let Some(digest) = exec.image.as_ref().map(|i| i.digest.clone()) else {
        return Err(LinkError::Forged);
    };
    let key = svc
        .secrets
        .get(&svc.settings.signing_key_id)
        .await
        .map_err(AppError::from)?;
    // a personal link names its approver by a ref: they must still be listed (the MAC then
    // proves the link was issued to that address)
    let pipeline = svc.pipeline(&exec.pipeline).await?;
    let owner = match &approver_ref {
        None => None,
        Some(r) => {
            let found = pipeline
                .approval
                .approvers
                .iter()
                .find(|a| token::approver_ref(&a.email) == *r);
            match found {
                Some(a) => Some(a.clone()),
                None => {
                    warn!(execution_id = %exec.id, "personal approval link of an approver not listed");
                    return Err(LinkError::NotAnApprover(format!(
                        "This personal approval link belongs to someone who is no longer an approver of pipeline {} (or the link was altered).",
                        pipeline.name
                    )));
                }
            }
        }
    };
    // during a rotation links signed with `current` or `previous` are accepted
    let keys = rotating_secrets(key.expose());
    let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
    let email = owner.as_ref().map(|a| a.email.as_str());
    let claims = match token::verify_any_as(&keys, raw, &digest, email, svc.now()) {
        Ok(c) => c,
        Err(TokenError::Malformed) => return Err(LinkError::Malformed),
        Err(TokenError::BadSignature) => {
            warn!(execution_id = %exec.id, "approval token with a bad signature");
            return Err(LinkError::Forged);
        }
        Err(TokenError::Expired(at)) => return Err(LinkError::Expired(at)),
    };
    match &exec.approval {
        Some(a) if a.nonce == claims.nonce => {}
        _ => return Err(LinkError::Forged),
    }
    status_gate(&exec)?;
    Ok(CheckedLink {
        exec,
        claims,
        owner,
        pipeline,
    })
}

/// Whether `owner` may not approve `exec` (they pushed or wrote it, and self-approval is off).
fn owns_change(pipeline: &PipelineDefinition, owner: &Approver, exec: &Execution) -> bool {
    !pipeline.approval.allow_self_approval
        && crate::domain::approval_policy::is_own_change(owner, exec)
}

/// A valid link for an execution that no longer waits: say why.
fn status_gate(exec: &Execution) -> Result<(), LinkError> {
    match exec.status {
        Status::AwaitingApproval => Ok(()),
        Status::Superseded => Err(LinkError::Superseded(
            exec.history
                .last()
                .map(|h| h.cause.clone())
                .unwrap_or_default(),
        )),
        Status::Expired => Err(LinkError::Expired(
            exec.approval
                .as_ref()
                .map(|a| a.expires_at)
                .unwrap_or(exec.updated_at),
        )),
        other => match exec.approval.as_ref().and_then(|a| a.decision.as_ref()) {
            Some(d) => Err(LinkError::AlreadyDecided(format!(
                "{} by {} via {} at {}",
                match d.verdict {
                    Verdict::Approve => "approved",
                    Verdict::Reject => "rejected",
                },
                d.actor,
                crate::domain::channel_name(d.channel),
                d.at.format("%Y-%m-%d %H:%M UTC")
            ))),
            None => Err(LinkError::NotAwaiting(other)),
        },
    }
}

/// GET/HEAD: the page data. Never changes state.
#[instrument(skip_all)]
pub async fn view(svc: &Services, raw_token: &str) -> Result<ApprovalView, LinkError> {
    let CheckedLink {
        exec,
        claims,
        owner,
        pipeline,
    } = check_link(svc, raw_token).await?;
    let owner = owner.map(|a| LinkOwner {
        own_change: owns_change(&pipeline, &a, &exec),
        counted: exec.approval.as_ref().is_some_and(|r| {
            r.approvals
                .iter()
                .any(|d| d.approver.as_deref() == Some(a.email.as_str()))
        }),
        email: a.email,
    });
    let production = svc
        .store
        .get_revisions(&exec.pipeline, Environment::Prod)
        .await
        .map_err(AppError::from)?
        .and_then(|r| r.value.current().cloned());
    Ok(ApprovalView {
        execution: exec,
        pipeline,
        expires_at: claims.expires_at,
        production,
        owner,
    })
}

/// A decision submitted through the approval page.
#[derive(Debug, Clone)]
pub struct FormDecision {
    pub verdict: Verdict,
    pub name: Option<String>,
    pub comment: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

fn clean_field(v: Option<String>) -> Option<String> {
    v.map(|s| {
        s.chars()
            .filter(|c| !c.is_control() || *c == '\n')
            .take(MAX_FORM_FIELD)
            .collect::<String>()
            .trim()
            .to_string()
    })
    .filter(|s| !s.is_empty())
}

/// POST: decide through the link. Exactly one of any number of concurrent POSTs wins (for a
/// pipeline needing N approvals: each approver is counted once).
///
/// A personal link records its owner: the approver it was issued to (a forwarded link acts as
/// its owner — it is their bearer credential, which is why each approver's message is delivered
/// only to them). The shared link of a pipeline without approvers records the typed name as
/// unverified; for a pipeline with approvers it is refused.
#[instrument(skip_all)]
pub async fn decide_by_link(
    svc: &Services,
    raw_token: &str,
    form: FormDecision,
) -> Result<Execution, LinkError> {
    let CheckedLink {
        exec,
        owner,
        pipeline,
        ..
    } = check_link(svc, raw_token).await?;
    let (approver, actor) = match owner {
        Some(owner) => {
            if form.verdict == Verdict::Approve && owns_change(&pipeline, &owner, &exec) {
                return Err(LinkError::OwnChange(owner.email));
            }
            let actor = personal_link_actor(&owner.email);
            (Some(owner.email), actor)
        }
        None if !pipeline.approval.approvers.is_empty() => {
            // a shared link proves no one
            return Err(LinkError::NotAnApprover(format!(
                "Pipeline {} names its approvers, and this shared link cannot tell who you are: use the personal link from your approval e-mail, or `shipgate approve {}` (your verified AWS identity is matched to the approver list).",
                pipeline.name, exec.id
            )));
        }
        None => (
            None,
            crate::domain::identity::email_link_actor(clean_field(form.name).as_deref()),
        ),
    };
    let decision = Decision {
        approver,
        verdict: form.verdict,
        actor,
        channel: Channel::EmailLink,
        comment: clean_field(form.comment),
        at: svc.now(),
        source_ip: form.source_ip,
        user_agent: clean_field(form.user_agent),
    };
    record_decision(svc, exec, decision).await
}

/// Approve or reject from the CLI or console (`channel` cli/console, actor = IAM identity).
#[instrument(skip(svc, comment))]
pub async fn decide(
    svc: &Services,
    id: &ExecutionId,
    verdict: Verdict,
    actor: &str,
    channel: Channel,
    comment: Option<String>,
) -> Result<Execution, LinkError> {
    decide_as(svc, id, verdict, None, actor, channel, comment).await
}

/// [`decide`] by a caller STS verified (`None`: unverified). When the pipeline lists approvers,
/// the verified ARN must match one's pattern (an unverified caller is refused), and that
/// approver may not have pushed or written the change unless the pipeline allows it.
#[instrument(skip(svc, comment, caller))]
pub async fn decide_as(
    svc: &Services,
    id: &ExecutionId,
    verdict: Verdict,
    caller: Option<&crate::domain::identity::VerifiedCaller>,
    actor: &str,
    channel: Channel,
    comment: Option<String>,
) -> Result<Execution, LinkError> {
    let exec = svc.execution(id).await?;
    let mut approver = None;
    let pipeline = svc.pipeline(&exec.pipeline).await?;
    let policy = &pipeline.approval;
    if !policy.approvers.is_empty() {
        use crate::domain::approval_policy::{approver_for_caller, is_own_change};
        let Some(caller) = caller else {
            return Err(LinkError::NotAnApprover(format!(
                "Pipeline {} names its approvers: a decision needs an identity AWS verified (use the shipgate CLI; this request carried no identity proof).",
                pipeline.name
            )));
        };
        let Some(found) = approver_for_caller(&policy.approvers, caller) else {
            return Err(LinkError::NotAnApprover(format!(
                "{} is not an approver of pipeline {} (no approver's `arn` pattern matches it).",
                caller.arn, pipeline.name
            )));
        };
        if verdict == Verdict::Approve && !policy.allow_self_approval && is_own_change(found, &exec)
        {
            return Err(LinkError::OwnChange(found.email.clone()));
        }
        approver = Some(found.email.clone());
    }
    status_gate(&exec)?;
    if let Some(a) = &exec.approval {
        if svc.now() >= a.expires_at {
            // the sweeper would do the same; do it now so the answer is truthful
            let expired_at = a.expires_at;
            svc.apply_to(exec, super::SYSTEM_ACTOR, Event::ApprovalExpired)
                .await?;
            return Err(LinkError::Expired(expired_at));
        }
    }
    let decision = Decision {
        approver,
        verdict,
        actor: actor.to_string(),
        channel,
        comment: clean_field(comment),
        at: svc.now(),
        source_ip: None,
        user_agent: None,
    };
    record_decision(svc, exec, decision).await
}

async fn record_decision(
    svc: &Services,
    exec: Execution,
    decision: Decision,
) -> Result<Execution, LinkError> {
    if decision.verdict == Verdict::Approve {
        match super::releases::check_push_order(svc, &exec).await {
            Err(AppError::Conflict(why)) => return Err(LinkError::OutOfOrder(why)),
            other => other?,
        }
    }
    let actor = decision.actor.clone();
    let policy = &svc.pipeline(&exec.pipeline).await?.approval;
    let event = if policy.required > 1 || !policy.approvers.is_empty() {
        Event::Counted {
            decision,
            required: policy.required,
            listed: policy.approvers.iter().map(|a| a.email.clone()).collect(),
        }
    } else {
        Event::Decided { decision }
    };
    let required = policy.required;
    // checked just now: the deployment this approval starts does not check again
    match svc
        .push_order_checked()
        .apply_to(exec, &actor, event)
        .await?
    {
        Applied::Done(exec) => Ok(exec),
        Applied::Ignored { current, .. } => {
            // lost the race: say who won
            status_gate(&current)?;
            if let Some(a) = current
                .approval
                .as_ref()
                .filter(|a| !a.approvals.is_empty())
            {
                // this approver was counted already: once is enough
                return Err(LinkError::AlreadyDecided(format!(
                    "your approval was already counted ({})",
                    crate::domain::approval_policy::progress(a, required)
                )));
            }
            Err(LinkError::NotAwaiting(current.status))
        }
    }
}

/// Default expiry for an approval round opened now.
pub fn expiry(now: DateTime<Utc>, pipeline: &PipelineDefinition) -> DateTime<Utc> {
    now + Duration::hours(i64::from(pipeline.approval.timeout_hours))
}
