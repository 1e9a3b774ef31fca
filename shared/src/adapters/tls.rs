//! Which certificate authorities the Lambda functions' SDK clients trust.
//!
//! The functions' SDK clients only ever talk to AWS service endpoints, whose certificates are
//! issued by Amazon Trust Services (AWS's own CA: Amazon Root CA 1–4, cross-signed by Starfield
//! Services Root CA – G2). So those clients trust exactly these five roots, built into the binary
//! (`aws-roots.pem`), instead of loading the system store. (Other outbound HTTPS a function makes,
//! to a non-AWS host, uses its own client and the system store.)
//!
//! Why (measured, bench/README.md "Init against the physical limit"): the system store is read
//! and parsed during every cold start — on this VM a 146-file directory plus a bundle, on Lambda
//! a bundle of about 140 certificates — and was the largest single part of a function's own init
//! work (control: the SDK step took 3.1 ms with the system store, see the commit that added this
//! module for the numbers after).
//!
//! Escape hatches, read once per cold start:
//! - `AWS_CA_BUNDLE=<file>`: trust the PEM bundle in that file instead (the AWS CLI's and SDKs'
//!   variable), e.g. for a TLS-inspecting proxy. A file that cannot be read or holds no valid
//!   certificate is an error in the log, and the system store is used.
//! - `SHIPGATE_TLS_ROOTS=system`: the system store, as the SDK does by default.
//!
//! The CLI and the sandbox keep the system store ([`super::https_client`]): an operator's machine
//! may sit behind such a proxy.

use aws_smithy_http_client::tls;

/// The roots AWS endpoints chain to (PEM, with comments naming each and its SHA-256).
pub const AWS_ROOTS_PEM: &str = include_str!("aws-roots.pem");

/// What the functions' clients trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// The built-in Amazon Trust Services roots.
    Aws,
    /// A PEM bundle (from `AWS_CA_BUNDLE`), validated.
    Bundle(Vec<u8>),
    /// The operating system's store.
    System,
}

/// Choose from the environment (`lookup` reads one variable; `read` reads a file).
pub fn roots_from(
    lookup: impl Fn(&str) -> Option<String>,
    read: impl Fn(&str) -> std::io::Result<Vec<u8>>,
) -> Roots {
    if let Some(path) = lookup("AWS_CA_BUNDLE").filter(|p| !p.trim().is_empty()) {
        return match read(path.trim()) {
            Ok(pem) if certificate_count(&pem) > 0 => Roots::Bundle(pem),
            Ok(_) => {
                tracing::error!(
                    path = %path,
                    "AWS_CA_BUNDLE holds no valid PEM certificate; using the system store"
                );
                Roots::System
            }
            Err(e) => {
                tracing::error!(
                    path = %path,
                    error = %e,
                    "AWS_CA_BUNDLE cannot be read; using the system store"
                );
                Roots::System
            }
        };
    }
    match lookup("SHIPGATE_TLS_ROOTS").as_deref().map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("system") => Roots::System,
        _ => Roots::Aws,
    }
}

/// How many trust anchors a PEM text holds, or 0 when any of its certificate blocks is not a
/// certificate rustls accepts as a root (the HTTP client would panic on it at its first
/// connection: this is the same check, made at init instead).
pub fn certificate_count(pem: &[u8]) -> usize {
    use rustls::pki_types::pem::PemObject;
    let mut store = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
        match cert.map(|c| store.add(c)) {
            Ok(Ok(())) => {}
            _ => return 0,
        }
    }
    store.len()
}

/// The HTTPS client of the functions' SDK configuration, trusting `roots`.
pub fn https_client_trusting(roots: &Roots) -> aws_sdk_dynamodb::config::SharedHttpClient {
    let store = match roots {
        Roots::System => return super::https_client(),
        Roots::Aws => tls::TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(AWS_ROOTS_PEM.as_bytes()),
        Roots::Bundle(pem) => tls::TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(pem.clone()),
    };
    let context = match tls::TlsContext::builder().with_trust_store(store).build() {
        Ok(context) => context,
        Err(e) => {
            tracing::error!(error = %e, "TLS trust store rejected; using the system store");
            return super::https_client();
        }
    };
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .tls_context(context)
        .build_https()
}

/// A bare HTTPS connector trusting `roots` (the STS verifier's, `super::sts`: it sends one
/// request it builds itself, not an SDK call), with the same trust store as the SDK clients.
pub fn connector_trusting(roots: &Roots) -> aws_smithy_http_client::Connector {
    let builder = aws_smithy_http_client::Connector::builder().tls_provider(tls::Provider::Rustls(
        tls::rustls_provider::CryptoMode::Ring,
    ));
    let store = match roots {
        Roots::System => return builder.build(),
        Roots::Aws => tls::TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(AWS_ROOTS_PEM.as_bytes()),
        Roots::Bundle(pem) => tls::TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(pem.clone()),
    };
    match tls::TlsContext::builder().with_trust_store(store).build() {
        Ok(context) => builder.tls_context(context).build(),
        Err(e) => {
            tracing::error!(error = %e, "TLS trust store rejected; using the system store");
            builder.build()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn no_file(_: &str) -> std::io::Result<Vec<u8>> {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    #[test]
    fn the_built_in_roots_are_the_five_aws_roots_and_valid() {
        assert_eq!(certificate_count(AWS_ROOTS_PEM.as_bytes()), 5);
        for name in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(AWS_ROOTS_PEM.contains(name), "{name}");
        }
        let _ = https_client_trusting(&Roots::Aws);
    }

    #[test]
    fn functions_trust_aws_roots_unless_told_otherwise() {
        assert_eq!(roots_from(env(&[]), no_file), Roots::Aws);
        assert_eq!(
            roots_from(env(&[("SHIPGATE_TLS_ROOTS", "System")]), no_file),
            Roots::System
        );
        assert_eq!(
            roots_from(env(&[("SHIPGATE_TLS_ROOTS", "aws")]), no_file),
            Roots::Aws
        );
    }

    #[test]
    fn a_ca_bundle_replaces_the_roots_and_a_bad_one_falls_back_to_the_system_store() {
        let bundle = |_: &str| Ok(AWS_ROOTS_PEM.as_bytes()[..].to_vec());
        assert_eq!(
            roots_from(env(&[("AWS_CA_BUNDLE", "/etc/proxy-ca.pem")]), bundle),
            Roots::Bundle(AWS_ROOTS_PEM.as_bytes().to_vec())
        );
        assert_eq!(
            roots_from(env(&[("AWS_CA_BUNDLE", "/missing.pem")]), no_file),
            Roots::System
        );
        let garbage = |_: &str| {
            Ok(b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".to_vec())
        };
        assert_eq!(
            roots_from(env(&[("AWS_CA_BUNDLE", "/bad.pem")]), garbage),
            Roots::System
        );
        let empty = |_: &str| Ok(b"no certificates here".to_vec());
        // valid base64, not a certificate
        let not_x509 = |_: &str| {
            Ok(
                b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n"
                    .to_vec(),
            )
        };
        assert_eq!(
            roots_from(env(&[("AWS_CA_BUNDLE", "/x.pem")]), not_x509),
            Roots::System
        );
        assert_eq!(
            roots_from(env(&[("AWS_CA_BUNDLE", "/empty.pem")]), empty),
            Roots::System
        );
        let _ = https_client_trusting(&Roots::Bundle(AWS_ROOTS_PEM.as_bytes().to_vec()));
    }
}
