//! `--tls-cert`/`--tls-key`: the operator's certificate, reloaded when a renewal (certbot,
//! an internal CA's script) replaces the files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{CurrentCert, FILE_POLL, TlsError, certified_key};

/// Reads and checks a certificate chain and its key.
pub(super) fn load(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let bad = |path: &Path, what, detail: String| TlsError::BadPem {
        path: path.display().to_string(),
        what,
        detail,
    };
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, "certificate", e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(cert, "certificate", "no CERTIFICATE section".into()));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| bad(key, "private key", e.to_string()))?;
    certified_key(chain, key_der, provider)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// What a file looked like at the last check: modification time and length.
type Stamp = Option<(SystemTime, u64)>;

/// Polls the two files' metadata (a `stat` each, every few seconds) and reloads on change.
pub(super) struct Watcher {
    cert: PathBuf,
    key: PathBuf,
    seen: (Stamp, Stamp),
}

impl Watcher {
    /// Created before the first load, so a change made during it is still noticed.
    pub(super) fn new(cert: PathBuf, key: PathBuf) -> Watcher {
        let seen = (stamp(&cert), stamp(&key));
        Watcher { cert, key, seen }
    }

    pub(super) async fn run(mut self, current: Arc<CurrentCert>, provider: Arc<CryptoProvider>) {
        let mut tick = tokio::time::interval(FILE_POLL);
        loop {
            tick.tick().await;
            let now = (stamp(&self.cert), stamp(&self.key));
            if now == self.seen {
                continue;
            }
            // Remembered even when loading fails: a half-done renewal (new certificate, old
            // key) is retried when the next file lands, not logged every tick.
            self.seen = now;
            match load(&self.cert, &self.key, &provider) {
                Ok(key) => {
                    current.replace(Arc::new(key));
                    tracing::info!("reloaded the TLS certificate from {}", self.cert.display());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "kept the previous TLS certificate");
                }
            }
        }
    }
}

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
