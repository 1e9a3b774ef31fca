//! API Gateway HTTP API (payload 2.0) helpers shared by the HTTP functions.

use std::collections::HashMap;

pub use aws_lambda_events::apigw::{
    ApiGatewayV2httpRequest as HttpRequest, ApiGatewayV2httpResponse as HttpResponse,
};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

/// A header value (names are case-insensitive).
pub fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The HTTP method, upper case.
pub fn method(req: &HttpRequest) -> String {
    req.request_context
        .http
        .method
        .as_str()
        .to_ascii_uppercase()
}

pub fn source_ip(req: &HttpRequest) -> Option<String> {
    req.request_context.http.source_ip.clone()
}

pub fn user_agent(req: &HttpRequest) -> Option<String> {
    req.request_context
        .http
        .user_agent
        .clone()
        .or_else(|| header(req, "user-agent").map(str::to_string))
}

/// The raw body bytes (base64-decoded when API Gateway encoded it).
pub fn body_bytes(req: &HttpRequest) -> Result<Vec<u8>, base64::DecodeError> {
    match &req.body {
        None => Ok(Vec::new()),
        Some(b) if req.is_base64_encoded => STANDARD.decode(b),
        Some(b) => Ok(b.clone().into_bytes()),
    }
}

/// Length of the body as it will be once decoded (cheap upper bound, before decoding).
pub fn body_len_hint(req: &HttpRequest) -> usize {
    match &req.body {
        None => 0,
        Some(b) if req.is_base64_encoded => b.len() / 4 * 3,
        Some(b) => b.len(),
    }
}

/// A path parameter, or the last path segment after `prefix`.
pub fn path_param(req: &HttpRequest, name: &str, prefix: &str) -> Option<String> {
    req.path_parameters.get(name).cloned().or_else(|| {
        req.raw_path
            .as_deref()
            .and_then(|p| p.strip_prefix(prefix))
            .map(|t| t.trim_end_matches('/').to_string())
    })
}

/// Decode an `application/x-www-form-urlencoded` body.
pub fn form(body: &[u8]) -> HashMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .map(|pairs| pairs.into_iter().collect())
        .unwrap_or_default()
}

fn response(status: u16, content_type: &str, body: String, extra: &[(&str, &str)]) -> HttpResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_str(content_type).expect("valid header"),
    );
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    for (k, v) in extra {
        if let (Ok(name), Ok(value)) = (
            aws_lambda_events::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.insert(name, value);
        }
    }
    let mut r = HttpResponse::default();
    r.status_code = i64::from(status);
    r.headers = headers;
    r.body = Some(Body::Text(body));
    r
}

/// A JSON answer.
pub fn json(status: u16, value: &Value) -> HttpResponse {
    response(status, "application/json", value.to_string(), &[])
}

/// A JSON error `{"error": message}` plus extra fields.
pub fn json_error(status: u16, message: &str, extra: Value) -> HttpResponse {
    let mut v = serde_json::json!({ "error": message });
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    json(status, &v)
}

/// An HTML page; pages are self-contained (no external assets) and must not be framed.
pub fn html(status: u16, page: String) -> HttpResponse {
    response(
        status,
        "text/html; charset=utf-8",
        page,
        &[
            ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("x-content-type-options", "nosniff"),
        ],
    )
}

/// The body of a response as text (for tests and the local server).
pub fn body_text(r: &HttpResponse) -> String {
    match &r.body {
        Some(Body::Text(t)) => t.clone(),
        Some(Body::Binary(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

/// Escape text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn base64_bodies() {
        let mut r = HttpRequest::default();
        r.body = Some("aGk=".into());
        r.is_base64_encoded = true;
        assert_eq!(body_bytes(&r).unwrap(), b"hi");
        r.body = Some("!!".into());
        assert!(body_bytes(&r).is_err());
    }
}
