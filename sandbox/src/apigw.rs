//! API Gateway HTTP API (payload 2.0) requests as API Gateway would send them: for the local
//! server of `shipgate dev`, the tests and the `events/` fixtures. The Lambda functions only
//! decode requests (`shared::http`); they never build one.

use serde_json::Value;
use shared::http::HttpRequest;

/// Build a request (tests, the local server, `events/` fixtures): the same JSON API Gateway sends.
pub fn request(
    method: &str,
    path: &str,
    route: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    source_ip: &str,
) -> HttpRequest {
    let hdrs: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.to_string())))
        .collect();
    let ua = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    let mut params = serde_json::Map::new();
    if let Some(token) = path
        .strip_prefix("/approvals/")
        .or_else(|| path.strip_prefix("/status/"))
    {
        params.insert("token".into(), Value::String(token.to_string()));
    }
    let v = serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{method} {route}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": hdrs,
        "pathParameters": params,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "local",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip, "userAgent": ua },
            "requestId": "local",
            "routeKey": format!("{method} {route}"),
            "stage": "$default",
            "time": "21/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795255200000i64
        },
        "body": body,
        "isBase64Encoded": false
    });
    serde_json::from_value(v).expect("a well-formed API Gateway v2 request")
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::http::{body_bytes, form, header, method, path_param, source_ip, user_agent};

    #[test]
    fn request_round_trip() {
        let r = request(
            "POST",
            "/approvals/abc",
            "/approvals/{token}",
            &[("User-Agent", "ua"), ("X-A", "1")],
            Some("a=1&b=two+words"),
            "203.0.113.1",
        );
        assert_eq!(method(&r), "POST");
        assert_eq!(header(&r, "x-a"), Some("1"));
        assert_eq!(user_agent(&r).as_deref(), Some("ua"));
        assert_eq!(source_ip(&r).as_deref(), Some("203.0.113.1"));
        assert_eq!(
            path_param(&r, "token", "/approvals/").as_deref(),
            Some("abc")
        );
        let f = form(&body_bytes(&r).unwrap());
        assert_eq!(f["b"], "two words");
        let fixture: HttpRequest =
            serde_json::from_str(include_str!("../../events/apigw/github-push.json")).unwrap();
        assert_eq!(method(&fixture), "POST");
    }
}
