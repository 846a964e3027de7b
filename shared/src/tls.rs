//! The process's one TLS client configuration: rustls with ring, certificate and host
//! name verification on, trusting the Mozilla root certificates compiled into the binary
//! (webpki-roots). The AWS SDK's HTTP client and every provider API client share it, so no
//! process reads the system's certificate store, and a cold start parses no certificate.

use std::sync::{Arc, OnceLock};

/// The shared client configuration (built on first use, then shared): TLS 1.2 and 1.3
/// with ring's algorithms, HTTP/1.1 offered by ALPN.
pub fn client_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| Arc::new(build())).clone()
}

fn build() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // The clients speak HTTP/1.1 only (reqwest is built without HTTP/2).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
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
}
