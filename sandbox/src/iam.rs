//! IAM users with access keys in moto: the people of the sandbox (demo approvers, tests).
//!
//! moto answers `sts:GetCallerIdentity` with the IAM user that owns the access key a request is
//! signed with (it does not check the signature itself), so requests signed with these keys
//! prove different identities, as real STS would. No IAM SDK is linked for two calls: the
//! Query API requests are signed with `aws-sigv4`, as the SDK would sign them.

use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

use crate::LocalError;

/// An IAM user of the sandbox and its access key.
#[derive(Debug, Clone)]
pub struct IamUser {
    pub name: String,
    pub arn: String,
    pub credentials: Credentials,
}

/// Create IAM user `name` (if needed) and a new access key for it in moto at `endpoint`.
pub async fn create_iam_user(endpoint: &str, name: &str) -> Result<IamUser, LocalError> {
    let created = iam_call(endpoint, &[("Action", "CreateUser"), ("UserName", name)]).await?;
    let arn = match tag(&created, "Arn") {
        Some(arn) => arn,
        // already there (EntityAlreadyExists): read it
        None => {
            let got = iam_call(endpoint, &[("Action", "GetUser"), ("UserName", name)]).await?;
            tag(&got, "Arn").ok_or_else(|| iam_error("GetUser", &got))?
        }
    };
    let key = iam_call(
        endpoint,
        &[("Action", "CreateAccessKey"), ("UserName", name)],
    )
    .await?;
    let (Some(id), Some(secret)) = (tag(&key, "AccessKeyId"), tag(&key, "SecretAccessKey")) else {
        return Err(iam_error("CreateAccessKey", &key));
    };
    Ok(IamUser {
        name: name.to_string(),
        arn,
        credentials: Credentials::new(id, secret, None, None, "shipgate-sandbox-iam"),
    })
}

fn iam_error(action: &str, body: &str) -> LocalError {
    LocalError::Provision {
        step: "create a sandbox IAM user",
        message: format!("{action}: {}", shared::domain::limits::excerpt(body, 300)),
    }
}

fn tag(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let len = body[start..].find(&format!("</{name}>"))?;
    Some(body[start..start + len].trim().to_string())
}

async fn iam_call(endpoint: &str, params: &[(&str, &str)]) -> Result<String, LocalError> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    let fail = |m: String| LocalError::Provision {
        step: "create a sandbox IAM user",
        message: m,
    };
    let mut form: Vec<(&str, &str)> = params.to_vec();
    form.push(("Version", "2010-05-08"));
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let uri = format!("{}/", endpoint.trim_end_matches('/'));
    let host = uri
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(&uri)
        .trim_end_matches('/')
        .to_string();
    let identity = Credentials::new("testing", "testing", None, None, "sandbox").into();
    let signing = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("iam")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| fail(e.to_string()))?
        .into();
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let headers = [("host", host.as_str()), ("content-type", content_type)];
    let signable = SignableRequest::new(
        "POST",
        &uri,
        headers.into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| fail(e.to_string()))?;
    let (instructions, _) = sign(signable, &signing)
        .map_err(|e| fail(e.to_string()))?
        .into_parts();
    let mut request = aws_smithy_runtime_api::http::Request::new(SdkBody::from(body));
    request
        .set_method("POST")
        .map_err(|e| fail(e.to_string()))?;
    request
        .set_uri(uri.clone())
        .map_err(|e| fail(e.to_string()))?;
    request.headers_mut().insert("host", host.clone());
    request.headers_mut().insert("content-type", content_type);
    let (signed, _) = instructions.into_parts();
    for h in signed {
        request
            .headers_mut()
            .insert(h.name().to_string(), h.value().to_string());
    }
    let connector = aws_smithy_http_client::Connector::builder().build_http();
    let response = connector
        .call(request)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let bytes = ByteStream::new(response.into_body())
        .collect()
        .await
        .map_err(|e| fail(e.to_string()))?
        .into_bytes();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
