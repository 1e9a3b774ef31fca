//! A strict stand-in for STS's GetCallerIdentity: it checks the SigV4 signature as STS does
//! (moto does not), so tests can show that a proof signed for another command or another
//! control function is refused. It knows the secret keys of the users it is given, recomputes
//! the signature of the request it received with `aws-sigv4`, and answers the user's ARN.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use shipgate_sandbox::IamUser;

/// A running strict STS on a loopback port (stopped when dropped).
pub struct StrictSts {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StrictSts {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Known {
    users: HashMap<String, IamUser>,
    region: String,
}

impl StrictSts {
    pub async fn start(users: &[IamUser], region: &str) -> StrictSts {
        let known = Arc::new(Known {
            users: users
                .iter()
                .map(|u| (u.credentials.access_key_id().to_string(), u.clone()))
                .collect(),
            region: region.to_string(),
        });
        let app = axum::Router::new()
            .route("/", axum::routing::post(answer))
            .with_state(known);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StrictSts { url, task }
    }
}

fn error(code: &str) -> axum::response::Response {
    (
        StatusCode::FORBIDDEN,
        format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{code}</Message></Error></ErrorResponse>"),
    )
        .into_response()
}

async fn answer(
    State(known): State<Arc<Known>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let auth = header("authorization").to_string();
    let Some(key) = auth
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').next())
    else {
        return error("MissingAuthenticationToken");
    };
    let Some(user) = known.users.get(key) else {
        return error("InvalidClientTokenId");
    };
    let Some(signed_headers) = auth
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
    else {
        return error("IncompleteSignature");
    };
    let Ok(time) = chrono::NaiveDateTime::parse_from_str(header("x-amz-date"), "%Y%m%dT%H%M%SZ")
    else {
        return error("IncompleteSignature");
    };
    let at: std::time::SystemTime = time.and_utc().into();
    // the signed headers as received, except those the signer adds itself
    let signed: Vec<(String, String)> = signed_headers
        .split(';')
        .filter(|h| !["x-amz-date", "x-amz-security-token"].contains(h))
        .map(|h| (h.to_string(), header(h).to_string()))
        .collect();
    let identity = user.credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&known.region)
        .name("sts")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let uri = format!("http://{}/", header("host"));
    let Ok(signable) = SignableRequest::new(
        "POST",
        &uri,
        signed.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&body),
    ) else {
        return error("IncompleteSignature");
    };
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let (expected, _) = instructions.into_parts();
    let expected = expected
        .iter()
        .find(|h| h.name() == "authorization")
        .map(|h| h.value().to_string())
        .unwrap_or_default();
    if expected != auth {
        return error("SignatureDoesNotMatch");
    }
    if &body[..] != b"Action=GetCallerIdentity&Version=2011-06-15" {
        return error("InvalidAction");
    }
    (
        StatusCode::OK,
        format!(
            "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>{}</Arn><UserId>X</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>",
            user.arn
        ),
    )
        .into_response()
}
