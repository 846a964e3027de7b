//! The process's one TLS client configuration: rustls with ring, certificate and host
//! name verification on, trusting the Mozilla root certificates compiled into the binary
//! (webpki-roots) and, when `SSL_CERT_FILE` is set, the PEM certificates of that file
//! too (e.g. a private CA in front of a provider API). The AWS SDK's HTTP client and every
//! provider API client share it, so a cold start reads no system certificate store and
//! parses no certificate.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The variable naming an extra PEM file of trusted certificates (as OpenSSL reads it).
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";

/// The shared client configuration, built on first use: TLS 1.2 and 1.3 with ring's
/// algorithms, HTTP/1.1 offered by ALPN.
pub fn client_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| Arc::new(build(std::env::var_os(SSL_CERT_FILE).as_deref()))).clone()
}

fn build(extra: Option<&std::ffi::OsStr>) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots(extra))
        .with_no_client_auth();
    // The clients speak HTTP/1.1 only (reqwest is built without HTTP/2).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// The compiled-in roots, and `extra`'s certificates when it names a readable PEM file.
fn roots(extra: Option<&std::ffi::OsStr>) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = extra.filter(|p| !p.is_empty()) {
        match CertificateDer::pem_file_iter(path) {
            Ok(certs) => {
                let (added, ignored) = roots.add_parsable_certificates(certs.filter_map(Result::ok));
                tracing::debug!(added, ignored, "trusting the certificates of {SSL_CERT_FILE} too");
            }
            Err(e) => tracing::warn!(error = %e, "{SSL_CERT_FILE} could not be read; trusting the built-in roots only"),
        }
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_config_per_process_with_the_compiled_in_roots() {
        let a = client_config();
        assert!(Arc::ptr_eq(&a, &client_config()));
        assert!(!webpki_roots::TLS_SERVER_ROOTS.is_empty());
        assert_eq!(a.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn an_unreadable_or_empty_extra_file_leaves_the_built_in_roots() {
        let built_in = webpki_roots::TLS_SERVER_ROOTS.len();
        assert_eq!(roots(None).len(), built_in);
        assert_eq!(roots(Some(std::ffi::OsStr::new("/nonexistent/genhook-ca.pem"))).len(), built_in);
        let empty = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(roots(Some(empty.path().as_os_str())).len(), built_in);
        // A file of garbage is not a certificate either.
        std::fs::write(empty.path(), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        assert_eq!(roots(Some(empty.path().as_os_str())).len(), built_in);
    }
}
