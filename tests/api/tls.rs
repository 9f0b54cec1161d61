//! https upstreams: the hub speaks TLS with rustls, trusts `tls_ca_file` besides the
//! public roots, and refuses a certificate it cannot verify.

use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

use crate::helpers::*;

/// A self-signed certificate for `localhost` and its key.
fn self_signed() -> (
    String,
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    (cert.pem(), der, key)
}

/// Terminates TLS on a free loopback port and forwards the bytes to `target`; returns the
/// port.
async fn tls_proxy(
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    target: std::net::SocketAddr,
) -> u16 {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    actix_rt::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            actix_rt::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

#[actix_web::test]
async fn https_upstreams_are_verified_against_the_configured_ca() {
    let demo = DemoHttp::start();
    let target: std::net::SocketAddr = demo.base().trim_start_matches("http://").parse().unwrap();
    let (pem, cert, key) = self_signed();
    let trusted = tls_proxy(cert, key, target).await;
    let (_, other_cert, other_key) = self_signed();
    let untrusted = tls_proxy(other_cert, other_key, target).await;

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let app = spawn_app_with(move |s| {
        s.tls_ca_file = Some(ca);
        s.servers = vec![
            http_def("secure", &format!("https://localhost:{trusted}/mcp")),
            http_def("forged", &format!("https://localhost:{untrusted}/mcp")),
        ];
    })
    .await;
    app.wait_ready("secure", Duration::from_secs(10)).await;
    let mut c = McpClient::connect(app.url("/mcp/secure")).await;
    let r = c.call_tool("echo", json!({ "text": "over tls" })).await;
    assert_eq!(text_of(&r), "over tls");

    // The same upstream behind a certificate nobody vouched for is refused.
    let mut last_error = String::new();
    for _ in 0..100 {
        let rt = app
            .state
            .servers
            .get("forged")
            .unwrap()
            .runtime
            .borrow()
            .clone();
        assert_ne!(
            rt.status,
            mcp_hub_actors::server::Status::Ready,
            "an unverified certificate was accepted"
        );
        if let Some(e) = rt.last_error {
            last_error = e.reason;
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        last_error.to_lowercase().contains("certificate")
            || last_error.to_lowercase().contains("tls"),
        "{last_error}"
    );
}

#[test]
fn a_ca_file_that_is_not_pem_is_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    let err = mcp_hub_actors::server::transport::tls::configure(Some(&ca)).unwrap_err();
    assert!(
        err.to_string().contains("tls_ca_file") || err.to_string().contains("ca.pem"),
        "{err}"
    );
    assert!(err.reason.contains("CERTIFICATE"), "{err}");
}
