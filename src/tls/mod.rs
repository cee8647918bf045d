//! HTTPS: the certificate the server presents (from the local CA or the operator's files),
//! kept current by a background task, and the acceptor the server loop wraps connections in.

mod cert_files;
mod local_ca;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, TlsMode};

pub use local_ca::{CaCertificate, LocalCa, fingerprint};

/// How often the operator's certificate files are checked for a renewal.
const FILE_POLL: Duration = Duration::from_secs(2);
/// How often the machine's names and addresses are compared with the certificate's.
const NAMES_POLL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} holds no usable {what}: {detail}")]
    BadPem {
        path: String,
        what: &'static str,
        detail: String,
    },
    #[error("the certificate does not belong to the key: {0}")]
    Mismatch(rustls::Error),
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot set up TLS: {0}")]
    Setup(rustls::Error),
}

/// A running HTTPS setup. Dropping it stops the renewal task.
pub struct Tls {
    acceptor: TlsAcceptor,
    renewal: JoinHandle<()>,
    /// The local CA's certificate, with `--tls auto`.
    ca: Option<CaCertificate>,
}

impl Tls {
    /// The certificate for `config.tls`, or `None` for plain HTTP. Must run inside tokio.
    pub fn start(config: &Config) -> Result<Option<Tls>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut ca_certificate = None;
        let (current, renewal) = match &config.tls {
            TlsMode::Off => return Ok(None),
            TlsMode::Auto => {
                let ca = LocalCa::open_or_create(&config.tls_dir())?;
                ca_certificate = Some(ca.certificate().clone());
                let names = crate::lan::names::certificate_names(config.mdns_name.as_deref());
                let issued = ca.issue(&names, &provider)?;
                let current = Arc::new(CurrentCert::new(issued.key.clone()));
                let task = tokio::spawn(local_ca::keep_current(
                    ca,
                    issued,
                    config.mdns_name.clone(),
                    current.clone(),
                    provider.clone(),
                ));
                (current, task)
            }
            TlsMode::Files { cert, key } => {
                let watcher = cert_files::Watcher::new(cert.clone(), key.clone());
                let loaded = cert_files::load(cert, key, &provider)?;
                let current = Arc::new(CurrentCert::new(Arc::new(loaded)));
                let task = tokio::spawn(watcher.run(current.clone(), provider.clone()));
                (current, task)
            }
        };
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?
            .with_no_client_auth()
            .with_cert_resolver(current);
        // The server loop speaks HTTP/1.1 only (WebSockets upgrade from it).
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            renewal,
            ca: ca_certificate,
        }))
    }

    pub fn ca(&self) -> Option<&CaCertificate> {
        self.ca.as_ref()
    }

    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

impl Drop for Tls {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// The certificate presented to every client; swapped whole when it is renewed.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl CurrentCert {
    fn new(key: Arc<CertifiedKey>) -> CurrentCert {
        CurrentCert(RwLock::new(key))
    }

    fn replace(&self, key: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = key;
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// The provider's key loader, for PEM keys of any type it supports.
fn certified_key(
    chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    CertifiedKey::from_der(chain, key, provider).map_err(TlsError::Mismatch)
}
