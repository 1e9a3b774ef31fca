//! The HTTP check of verified promotion: one bounded `GET` over hyper with rustls on ring —
//! the stack the SDK clients of every binary already link (see [`super::https_client`]), so no
//! second HTTP client is linked. Bounded: the whole request (connect, TLS, headers, body) ends
//! after the timeout, at most `max_body` bytes of the body are read, no redirects are followed
//! (a check answers what its URL answers).

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::domain::verify::ProbeAnswer;
use crate::ports::{HealthProbe, ServiceError};

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// `GET` of check URLs (http and https). Its client is built on the first check, once per cold
/// start (`super::lazy`): it loads the system's CA certificates (a checked service is not signed
/// by the Amazon roots the SDK clients trust), which was the largest part of deploy-events' and
/// the sweeper's own init work while it was built at init (bench/README.md).
pub struct HttpProbe {
    client: super::lazy::Lazy<Client<Https, Empty<Bytes>>>,
}

impl HttpProbe {
    /// The probe; a missing trust store is the first check's `Rejected` error.
    pub fn new() -> HttpProbe {
        HttpProbe {
            client: super::lazy::Lazy::new(|| {
                let tls = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_native_roots()
                    .map_err(|e| ServiceError::Rejected(format!("no TLS root certificates: {e}")))?
                    .https_or_http()
                    .enable_http1()
                    .build();
                Ok(Client::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(1)
                    .build(tls))
            }),
        }
    }
}

impl Default for HttpProbe {
    fn default() -> Self {
        HttpProbe::new()
    }
}

#[async_trait::async_trait]
impl HealthProbe for HttpProbe {
    async fn get(
        &self,
        url: &str,
        timeout: Duration,
        max_body: usize,
    ) -> Result<ProbeAnswer, ServiceError> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| ServiceError::Rejected(format!("not a URL: {e}")))?;
        let request = hyper::Request::get(uri)
            .header("user-agent", "shipgate-verify")
            .header("accept", "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| ServiceError::Rejected(format!("request: {e}")))?;
        let client = self.client.get()?;
        let work = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| ServiceError::Unavailable(format!("GET failed: {e}")))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .take(100)
                .filter_map(|(k, v)| {
                    v.to_str()
                        .ok()
                        .map(|v| (k.as_str().to_ascii_lowercase(), v.to_string()))
                })
                .collect();
            let mut body = response.into_body();
            let mut bytes = Vec::new();
            while bytes.len() < max_body {
                match body.frame().await {
                    None => break,
                    Some(Err(e)) => {
                        return Err(ServiceError::Unavailable(format!("reading the body: {e}")))
                    }
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            let room = max_body - bytes.len();
                            bytes.extend_from_slice(&data[..data.len().min(room)]);
                        }
                    }
                }
            }
            Ok(ProbeAnswer {
                status,
                headers,
                body: bytes,
            })
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(answer) => answer,
            Err(_) => Err(ServiceError::Unavailable(format!(
                "no complete answer within {} s",
                timeout.as_secs()
            ))),
        }
    }
}
