//! HTTPS helpers: clients that trust exactly one CA, certificates made for a test, and a
//! WebSocket over TLS.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::{TestServer, Value};

impl TestServer {
    /// `https://127.0.0.1:PORT/path`.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}{}", self.addr(), path)
    }

    /// The CA certificate a `--tls auto` server made in its data directory.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.data_dir().join("tls").join("ca.pem"))
            .expect("the server made tls/ca.pem")
    }
}

/// An HTTPS client that trusts only `ca_pem`: no system roots, no redirects followed.
pub fn https_client(ca_pem: &[u8]) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem).expect("a PEM certificate");
    https_builder()
        .add_root_certificate(ca)
        .build()
        .expect("build HTTPS client")
}

/// An HTTPS client that trusts no certificate at all, as a device that never installed the CA.
pub fn https_client_trusting_nothing() -> reqwest::Client {
    https_builder().build().expect("build HTTPS client")
}

fn https_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
}

/// A certificate as an office's own CA would issue it: the CA and the server's chain and key,
/// all PEM, for `localhost` and `127.0.0.1`.
pub struct IssuedPair {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn issue_test_certificate(ca_name: &str) -> IssuedPair {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("names");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    IssuedPair {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// True once `https://…/healthz` answers through a client that trusts only `ca_pem`.
pub async fn trusted_by(server: &TestServer, ca_pem: &[u8]) -> bool {
    https_client(ca_pem)
        .get(server.https_url("/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

pub type WssStream = WebSocketStream<TlsStream<TcpStream>>;

/// Opens `wss://127.0.0.1:PORT/ws` trusting only `ca_pem`, with the page's https Origin, and
/// returns the socket with its first frame (`hello`).
pub async fn open_wss(server: &TestServer, ca_pem: &[u8], token: &str) -> (WssStream, Value) {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(ca_pem).expect("parse CA"))
        .expect("add CA");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(server.addr()).await.expect("connect");
    let name = rustls_pki_types::ServerName::IpAddress(server.addr().ip().into());
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake trusting the CA");
    let mut request = format!("wss://{}/ws?token={token}", server.addr())
        .into_client_request()
        .expect("request");
    let origin = format!("https://{}", server.addr());
    request
        .headers_mut()
        .insert("origin", HeaderValue::from_str(&origin).expect("origin"));
    let (mut ws, _) = tokio_tungstenite::client_async(request, tls)
        .await
        .expect("WebSocket upgrade over TLS");
    let first = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a frame within 5 s")
        .expect("the socket stays open")
        .expect("a readable frame");
    let hello = serde_json::from_str(first.to_text().expect("a text frame")).expect("JSON frame");
    (ws, hello)
}
