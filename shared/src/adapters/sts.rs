//! `CallerVerifier` on STS: executes a caller's signed `sts:GetCallerIdentity` request (see
//! [`crate::domain::identity`]) against the STS endpoint of this function's own configuration.
//!
//! From the proof only the signature headers are taken; the URL, method, body and the two
//! binding headers are control's own, so a proof cannot send control anywhere else, ask STS for
//! anything else, or be reused for another command. The answer is bounded in size and time.
//! No SDK client and no IAM permission is needed: the caller's signature authorises the call.

use std::time::Duration;

use async_trait::async_trait;
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

use crate::domain::identity::{
    parse_sts_answer, IdentityError, IdentityProof, VerifiedCaller, FORM_CONTENT_TYPE,
    GET_CALLER_IDENTITY_BODY, REQUEST_HEADER, SERVER_ID_HEADER,
};
use crate::ports::{CallerVerifier, Clock};

/// Longest STS answer read (a GetCallerIdentity answer is about 500 bytes).
pub const MAX_STS_ANSWER_BYTES: usize = 16 * 1024;
/// How long one verification may take.
pub const STS_TIMEOUT: Duration = Duration::from_secs(5);

/// Where control sends proofs, and the server id they must be signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsEndpoint {
    /// `https://sts.eu-west-1.amazonaws.com` (or `AWS_ENDPOINT_URL[_STS]`).
    pub url: String,
    /// The region proofs must be signed for (the endpoint's).
    pub region: String,
    /// The control function's name (`AWS_LAMBDA_FUNCTION_NAME`).
    pub server_id: String,
}

impl StsEndpoint {
    /// From the function's environment: `AWS_ENDPOINT_URL_STS`, then `AWS_ENDPOINT_URL`, then
    /// the regional endpoint of `AWS_REGION`; the server id is `SHIPGATE_SERVER_ID`, then
    /// `AWS_LAMBDA_FUNCTION_NAME`, then `shipgate-control`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> StsEndpoint {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let url = var("AWS_ENDPOINT_URL_STS")
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
        let server_id = var("SHIPGATE_SERVER_ID")
            .or_else(|| var("AWS_LAMBDA_FUNCTION_NAME"))
            .unwrap_or_else(|| "shipgate-control".into());
        StsEndpoint {
            url: url.trim_end_matches('/').to_string(),
            region,
            server_id,
        }
    }

    /// From a function's SDK configuration (its `AWS_ENDPOINT_URL[_STS]` and region, as every
    /// SDK client of the function reads them), the server id from `SHIPGATE_SERVER_ID` or
    /// `AWS_LAMBDA_FUNCTION_NAME` (default `shipgate-control`).
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> StsEndpoint {
        let region = sdk
            .region()
            .map(|r| r.as_ref().to_string())
            .unwrap_or_else(|| "us-east-1".into());
        let configured = aws_types::service_config::ServiceConfigKey::builder()
            .service_id("STS")
            .env("AWS_ENDPOINT_URL")
            .profile("endpoint_url")
            .build()
            .ok()
            .and_then(|key| sdk.service_config().and_then(|c| c.load_config(key)));
        let url = configured
            .or_else(|| sdk.endpoint_url().map(str::to_string))
            .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let server_id = var("SHIPGATE_SERVER_ID")
            .or_else(|| var("AWS_LAMBDA_FUNCTION_NAME"))
            .unwrap_or_else(|| "shipgate-control".into());
        StsEndpoint {
            url: url.trim_end_matches('/').to_string(),
            region,
            server_id,
        }
    }

    /// The `host` header value of the endpoint (authority of the URL).
    pub fn host(&self) -> &str {
        let rest = self
            .url
            .split_once("://")
            .map(|(_, r)| r)
            .unwrap_or(&self.url);
        rest.split('/').next().unwrap_or(rest)
    }
}

pub struct StsVerifier {
    endpoint: StsEndpoint,
    clock: std::sync::Arc<dyn Clock>,
    /// Built on the first verification (`super::lazy`): most control commands carry no proof.
    connector: super::lazy::Lazy<aws_smithy_http_client::Connector>,
}

impl StsVerifier {
    pub fn new(endpoint: StsEndpoint, clock: std::sync::Arc<dyn Clock>) -> StsVerifier {
        let connector = super::lazy::Lazy::new(|| {
            // the roots every SDK client of the function trusts (tls.rs)
            let roots = super::tls::roots_from(|k| std::env::var(k).ok(), |p| std::fs::read(p));
            Ok(super::tls::connector_trusting(&roots))
        });
        StsVerifier {
            endpoint,
            clock,
            connector,
        }
    }

    pub fn endpoint(&self) -> &StsEndpoint {
        &self.endpoint
    }

    fn request(
        &self,
        proof: &IdentityProof,
        binding: &str,
    ) -> Result<aws_smithy_runtime_api::http::Request, IdentityError> {
        let bad = |e: &dyn std::fmt::Display| IdentityError::Malformed(e.to_string());
        let mut request =
            aws_smithy_runtime_api::http::Request::new(SdkBody::from(GET_CALLER_IDENTITY_BODY));
        request.set_method("POST").map_err(|e| bad(&e))?;
        request
            .set_uri(format!("{}/", self.endpoint.url))
            .map_err(|e| IdentityError::Unavailable(format!("STS endpoint: {e}")))?;
        let h = request.headers_mut();
        h.insert("host", self.endpoint.host().to_string());
        h.insert("content-type", FORM_CONTENT_TYPE);
        h.insert(REQUEST_HEADER, binding.to_string());
        h.insert(SERVER_ID_HEADER, self.endpoint.server_id.clone());
        h.insert("x-amz-date", proof.amz_date.clone());
        h.insert("authorization", proof.authorization.clone());
        if let Some(token) = &proof.security_token {
            h.insert("x-amz-security-token", token.clone());
        }
        Ok(request)
    }
}

#[async_trait]
impl CallerVerifier for StsVerifier {
    async fn verify(
        &self,
        proof: &IdentityProof,
        binding: &str,
    ) -> Result<VerifiedCaller, IdentityError> {
        let scope = proof.check(self.clock.now())?;
        if scope.region != self.endpoint.region {
            return Err(IdentityError::Refused(format!(
                "the proof is signed for region {}; this control function checks proofs with STS in {} (set AWS_REGION to it)",
                crate::domain::limits::excerpt(&scope.region, 40),
                self.endpoint.region
            )));
        }
        let request = self.request(proof, binding)?;
        let call = async {
            let response = self
                .connector
                .get()
                .map_err(|e| IdentityError::Unavailable(format!("STS: {e}")))?
                .call(request)
                .await
                .map_err(|e| IdentityError::Unavailable(format!("STS: {e}")))?;
            let status = response.status().as_u16();
            let mut body = ByteStream::new(response.into_body());
            let mut read = Vec::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| IdentityError::Unavailable(format!("STS: {e}")))?;
                if read.len() + chunk.len() > MAX_STS_ANSWER_BYTES {
                    return Err(IdentityError::Unavailable(format!(
                        "STS answered more than {MAX_STS_ANSWER_BYTES} bytes"
                    )));
                }
                read.extend_from_slice(&chunk);
            }
            Ok((status, String::from_utf8_lossy(&read).into_owned()))
        };
        let (status, body) = tokio::time::timeout(STS_TIMEOUT, call)
            .await
            .map_err(|_| {
                IdentityError::Unavailable(format!("STS did not answer within {STS_TIMEOUT:?}"))
            })??;
        let caller = parse_sts_answer(status, &body);
        match &caller {
            Ok(c) => tracing::info!(caller = %c.arn, "caller verified by STS"),
            Err(e) => tracing::info!(error = %e, "identity proof refused"),
        }
        caller
    }
}

/// Why a proof could not be made.
#[derive(Debug, thiserror::Error)]
#[error("could not sign the identity proof: {0}")]
pub struct SignError(String);

/// Sign the identity proof for the command whose [binding](crate::protocol::ControlRequest::binding)
/// is `binding`, with `credentials`, for the STS endpoint `url` in `region` and the control
/// function `server_id` (the CLI; tests with moto's IAM users' keys). SigV4 by `aws-sigv4`.
pub fn sign_proof(
    credentials: &aws_credential_types::Credentials,
    region: &str,
    url: &str,
    server_id: &str,
    binding: &str,
    at: std::time::SystemTime,
) -> Result<IdentityProof, SignError> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SignError(e.to_string()))?
        .into();
    let endpoint = StsEndpoint {
        url: url.trim_end_matches('/').to_string(),
        region: region.to_string(),
        server_id: server_id.to_string(),
    };
    let uri = format!("{}/", endpoint.url);
    let headers = [
        ("host", endpoint.host()),
        ("content-type", FORM_CONTENT_TYPE),
        (REQUEST_HEADER, binding),
        (SERVER_ID_HEADER, server_id),
    ];
    let signable = SignableRequest::new(
        "POST",
        &uri,
        headers.into_iter(),
        SignableBody::Bytes(GET_CALLER_IDENTITY_BODY.as_bytes()),
    )
    .map_err(|e| SignError(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| SignError(e.to_string()))?
        .into_parts();
    let (headers, _query) = instructions.into_parts();
    let get = |name: &str| {
        headers
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
            .map(|h| h.value().to_string())
    };
    Ok(IdentityProof {
        authorization: get("authorization").ok_or_else(|| SignError("no signature".into()))?,
        amz_date: get("x-amz-date").ok_or_else(|| SignError("no date".into()))?,
        security_token: get("x-amz-security-token"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_comes_from_the_function_configuration() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let e = StsEndpoint::from_lookup(env(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_LAMBDA_FUNCTION_NAME", "shipgate-control"),
        ]));
        assert_eq!(e.url, "https://sts.eu-west-1.amazonaws.com");
        assert_eq!(e.host(), "sts.eu-west-1.amazonaws.com");
        assert_eq!(e.server_id, "shipgate-control");
        let e = StsEndpoint::from_lookup(env(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/"),
            ("SHIPGATE_SERVER_ID", "acme-control"),
        ]));
        assert_eq!(e.url, "http://127.0.0.1:5000");
        assert_eq!(e.host(), "127.0.0.1:5000");
        assert_eq!(e.server_id, "acme-control");
    }

    #[test]
    fn a_signed_proof_passes_the_shape_check_and_covers_the_binding() {
        let creds = aws_credential_types::Credentials::new(
            "AKIDALICE",
            "secret",
            Some("tok".into()),
            None,
            "t",
        );
        let at = std::time::SystemTime::now();
        let proof = sign_proof(
            &creds,
            "eu-west-1",
            "http://127.0.0.1:5000",
            "shipgate-control",
            "ab",
            at,
        )
        .unwrap();
        let scope = proof.check(chrono::Utc::now()).unwrap();
        assert_eq!(scope.access_key_id, "AKIDALICE");
        assert_eq!(scope.region, "eu-west-1");
        assert!(scope
            .signed_headers
            .iter()
            .any(|h| h == "x-amz-security-token"));
        assert_eq!(proof.security_token.as_deref(), Some("tok"));
        // another command, another signature
        let other = sign_proof(
            &creds,
            "eu-west-1",
            "http://127.0.0.1:5000",
            "shipgate-control",
            "cd",
            at,
        )
        .unwrap();
        assert_ne!(proof.authorization, other.authorization);
    }
}
