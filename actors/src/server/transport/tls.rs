//! TLS for https upstreams (Streamable HTTP, legacy SSE, REST, OpenAPI documents).
//!
//! One rustls client configuration per process: Mozilla's root certificates (webpki-roots)
//! plus the PEM certificates of `tls.ca_file` (a private CA, or a self-signed upstream).
//! Startup calls [`configure`]; every upstream connector is built with [`client_config`].
//! (Process-wide rather than per hub: one hub runs per process in production, and several
//! hubs in one test process only ever add trusted roots, never remove them.)

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::{Arc, RwLock};

static CONFIG: RwLock<Option<Arc<ClientConfig>>> = RwLock::new(None);
static EXTRA_ROOTS: RwLock<Vec<CertificateDer<'static>>> = RwLock::new(Vec::new());

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[error("tls_ca_file {path}: {reason}")]
pub struct TlsError {
    /// The file named in the config.
    pub path: String,
    /// What went wrong, and how to fix it.
    pub reason: String,
}

fn build(extra: &[CertificateDer<'static>]) -> Arc<ClientConfig> {
    // awc's `Connector::new()` builds a default rustls config of its own before ours
    // replaces it; that needs a process-wide provider (a second install is a no-op).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // Each was checked by `configure`.
    let _ = roots.add_parsable_certificates(extra.iter().cloned());
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Trusts the PEM certificates in `ca_file` besides the public roots. Call at startup,
/// before upstreams connect; fails with a message naming the file and the fix.
pub fn configure(ca_file: Option<&Path>) -> Result<(), TlsError> {
    // Every awc client builds a rustls config, even for http:// (see `build`).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(path) = ca_file else {
        return Ok(());
    };
    let fail = |reason: String| TlsError {
        path: path.display().to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(format!("{e} (give a readable PEM file)")))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(fail(
            "no CERTIFICATE block found (give the CA certificate in PEM)".into(),
        ));
    }
    let mut probe = RootCertStore::empty();
    for cert in &certs {
        probe
            .add(cert.clone())
            .map_err(|e| fail(format!("unusable certificate: {e}")))?;
    }
    let mut extra = EXTRA_ROOTS.write().unwrap_or_else(|e| e.into_inner());
    extra.extend(certs);
    *CONFIG.write().unwrap_or_else(|e| e.into_inner()) = Some(build(&extra));
    Ok(())
}

/// The process's TLS client configuration, for `awc::Connector::rustls_0_23`.
pub fn client_config() -> Arc<ClientConfig> {
    if let Some(c) = CONFIG.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return c.clone();
    }
    let mut slot = CONFIG.write().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| build(&[])).clone()
}
