//! `lambda_sdk_config` without static keys falls back to the container credentials endpoint
//! (Lambda SnapStart, container runtimes): the SDK's provider asks it, with the authorization
//! token, and the answer signs requests. Its own test binary: it sets process environment
//! variables, which the SDK's provider reads.

use aws_sdk_dynamodb::config::ProvideCredentials;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn container_credentials_endpoint_is_used_when_no_keys_are_set() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let expires = (chrono::Utc::now() + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 4096];
        let n = socket.read(&mut request).await.unwrap();
        let request = String::from_utf8_lossy(&request[..n]).to_string();
        let body = format!(
            r#"{{"AccessKeyId":"ASIACONTAINER","SecretAccessKey":"secret","Token":"session","Expiration":"{expires}"}}"#
        );
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(answer.as_bytes()).await.unwrap();
        request
    });

    // edition 2021: set_var is safe; this binary runs this one test only
    std::env::remove_var("AWS_ACCESS_KEY_ID");
    std::env::remove_var("AWS_SECRET_ACCESS_KEY");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        format!("http://127.0.0.1:{port}/credentials"),
    );
    std::env::set_var("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-token");

    let sdk = shared::adapters::lambda_sdk_config();
    let credentials = sdk
        .credentials_provider()
        .expect("a provider")
        .provide_credentials()
        .await
        .expect("the endpoint's credentials");
    assert_eq!(credentials.access_key_id(), "ASIACONTAINER");
    assert_eq!(credentials.session_token(), Some("session"));

    let request = server.await.unwrap();
    assert!(
        request.starts_with("GET /credentials "),
        "asked the configured path: {request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: container-token"),
        "sent the authorization token: {request}"
    );
}
