//! The canonical identity of an ECS service target, so that test and prod cannot be one service
//! written two ways.

use super::ServiceTarget;

/// The canonical identity of an ECS service: what AWS resolves a cluster and service, each
/// written as a name or an ARN, to. `account` and `region` are `None` for a name (the
/// deploying function's own account and region).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceIdentity {
    pub account: Option<String>,
    pub region: Option<String>,
    pub cluster: String,
    pub service: String,
}

/// ECS cluster and service names: 1–255 letters, digits, `-`, `_`.
pub(super) fn valid_ecs_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `arn:<partition>:ecs:<region>:<account>:<resource>` → (region, account, resource).
fn ecs_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("ecs"), Some(region), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let region_ok = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let account_ok = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
    (partition.starts_with("aws") && region_ok && account_ok).then_some((region, account, resource))
}

/// Resolve a target's cluster (name or `arn:…:cluster/NAME`) and service (name,
/// `arn:…:service/NAME` or `arn:…:service/CLUSTER/NAME`) to one identity; an error says which
/// field is malformed or disagrees with the other.
pub fn service_identity(target: &ServiceTarget) -> Result<ServiceIdentity, (&'static str, String)> {
    let mut account: Option<String> = None;
    let mut region: Option<String> = None;
    let mut agree = |field: &'static str, r: &str, a: &str| -> Result<(), (&'static str, String)> {
        for (known, new, what) in [(&mut region, r, "region"), (&mut account, a, "account")] {
            match known {
                Some(k) if k != new => {
                    return Err((
                        field,
                        format!("names {what} {new}, but the cluster is in {k}"),
                    ))
                }
                _ => *known = Some(new.to_string()),
            }
        }
        Ok(())
    };
    let cluster = if target.cluster.starts_with("arn:") {
        let name = ecs_arn(&target.cluster)
            .and_then(|(r, a, res)| Some((r, a, res.strip_prefix("cluster/")?)))
            .filter(|(_, _, name)| valid_ecs_name(name));
        let Some((r, a, name)) = name else {
            return Err(("cluster", "must be an ECS cluster name or ARN (arn:aws:ecs:<region>:<account>:cluster/<name>)".into()));
        };
        agree("cluster", r, a)?;
        name.to_string()
    } else if valid_ecs_name(&target.cluster) {
        target.cluster.clone()
    } else {
        return Err((
            "cluster",
            "must be an ECS cluster name (1-255 letters, digits, '-', '_') or ARN".into(),
        ));
    };
    let service = if target.service.starts_with("arn:") {
        let parsed = ecs_arn(&target.service).and_then(|(r, a, res)| {
            let path = res.strip_prefix("service/")?;
            let (in_cluster, name) = match path.split_once('/') {
                Some((c, n)) => (Some(c), n),
                None => (None, path),
            };
            (valid_ecs_name(name) && in_cluster.is_none_or(valid_ecs_name))
                .then_some((r, a, in_cluster, name))
        });
        let Some((r, a, in_cluster, name)) = parsed else {
            return Err(("service", "must be an ECS service name or ARN (arn:aws:ecs:<region>:<account>:service/<cluster>/<name>)".into()));
        };
        if let Some(c) = in_cluster.filter(|c| !c.eq_ignore_ascii_case(&cluster)) {
            return Err((
                "service",
                format!("is a service of cluster {c}, not {cluster}"),
            ));
        }
        agree("service", r, a)?;
        name.to_string()
    } else if valid_ecs_name(&target.service) {
        target.service.clone()
    } else {
        return Err((
            "service",
            "must be an ECS service name (1-255 letters, digits, '-', '_') or ARN".into(),
        ));
    };
    Ok(ServiceIdentity {
        account,
        region,
        cluster,
        service,
    })
}

/// Could `a` and `b` be the same ECS service? Names compare without regard to ASCII case, and
/// a missing account or region (a plain name) is the deploying function's own, so it could be
/// any: only a difference both sides state tells two services apart.
pub fn same_service(a: &ServiceIdentity, b: &ServiceIdentity) -> bool {
    fn may_equal(x: &Option<String>, y: &Option<String>) -> bool {
        match (x, y) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
    }
    a.cluster.eq_ignore_ascii_case(&b.cluster)
        && a.service.eq_ignore_ascii_case(&b.service)
        && may_equal(&a.account, &b.account)
        && may_equal(&a.region, &b.region)
}

/// Test and prod must be different services by canonical identity (a cluster ARN and its name
/// are the same cluster). A target that does not parse is refused too.
pub fn distinct_targets(test: &ServiceTarget, prod: &ServiceTarget) -> Result<(), String> {
    let t = service_identity(test).map_err(|(f, m)| format!("test.{f} {m}"))?;
    let p = service_identity(prod).map_err(|(f, m)| format!("prod.{f} {m}"))?;
    if same_service(&t, &p) {
        return Err(format!(
            "must not be the same ECS service as test (cluster {}, service {}; a name and an ARN of one service are the same service)",
            p.cluster, p.service
        ));
    }
    Ok(())
}
