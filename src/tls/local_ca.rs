//! `--tls auto`: a certificate authority made once for this server, and the server
//! certificates it signs for the machine's names and addresses.
//!
//! Browsers are told to trust the CA, not the server certificate, so the server certificate
//! can be replaced whenever the machine's addresses change without anyone trusting anew.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use super::{CurrentCert, NAMES_POLL, TlsError, certified_key};

/// The CA certificate people install: served at `/trust/ca.pem`.
pub const CA_FILE: &str = "ca.pem";
/// The CA's private key; whoever holds it can impersonate any site to those who trust the CA.
const CA_KEY_FILE: &str = "ca-key.pem";
/// The current server certificate and key, written for the operator's curiosity (the server
/// issues a new one at each start).
const SERVER_FILE: &str = "server.pem";
const SERVER_KEY_FILE: &str = "server-key.pem";

const DAY: Duration = Duration::from_secs(24 * 3600);
/// Ten years: installing the CA on every phone is the chore to do once.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Under Apple's 398-day limit for server certificates.
const SERVER_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// A server certificate this close to expiry is replaced.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

pub struct LocalCa {
    issuer: Issuer<'static, KeyPair>,
    dir: PathBuf,
    public: CaCertificate,
}

/// What people need to trust the CA: the certificate, and how to recognise it.
#[derive(Debug, Clone)]
pub struct CaCertificate {
    pub pem: String,
    /// The name trust stores list it under.
    pub name: String,
    /// SHA-256 of the certificate, `AB:CD:…`.
    pub fingerprint: String,
}

/// A server certificate and what it was issued for.
pub struct Issued {
    pub key: Arc<CertifiedKey>,
    names: Vec<String>,
    not_after: SystemTime,
}

impl LocalCa {
    /// Loads the CA from `dir`, or creates it there on first run.
    pub fn open_or_create(dir: &Path) -> Result<LocalCa, TlsError> {
        crate::create_private_dir(dir).map_err(|source| write_error(dir, source))?;
        let key_path = dir.join(CA_KEY_FILE);
        let key = match std::fs::read_to_string(&key_path) {
            Ok(pem) => KeyPair::from_pem(&pem).map_err(|e| TlsError::BadPem {
                path: key_path.display().to_string(),
                what: "private key",
                detail: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = KeyPair::generate()?;
                write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
                tracing::info!("created a local certificate authority in {}", dir.display());
                key
            }
            Err(source) => return Err(read_error(&key_path, source)),
        };
        let (params, name) = ca_params(&key);
        let ca_path = dir.join(CA_FILE);
        if !ca_path.exists() {
            // Same key and name: a re-made CA file is trusted wherever the first one is.
            let cert = params.self_signed(&key)?;
            write_file(&ca_path, cert.pem().as_bytes(), 0o644)?;
        }
        let pem = std::fs::read_to_string(&ca_path).map_err(|e| read_error(&ca_path, e))?;
        let fingerprint = fingerprint(pem.as_bytes()).ok_or_else(|| TlsError::BadPem {
            path: ca_path.display().to_string(),
            what: "certificate",
            detail: "no CERTIFICATE section".into(),
        })?;
        Ok(LocalCa {
            issuer: Issuer::new(params, key),
            dir: dir.to_path_buf(),
            public: CaCertificate {
                pem,
                name,
                fingerprint,
            },
        })
    }

    pub fn certificate(&self) -> &CaCertificate {
        &self.public
    }

    /// A new server certificate for `names` (DNS names and IP addresses), also written to
    /// the CA's directory.
    pub fn issue(&self, names: &[String], provider: &CryptoProvider) -> Result<Issued, TlsError> {
        let mut params = CertificateParams::new(names.to_vec())?;
        let now = SystemTime::now();
        let not_after = now + SERVER_VALIDITY;
        params.not_before = (now - DAY).into();
        params.not_after = not_after.into();
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().map_or("confab", |n| n));
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        write_file(&self.dir.join(SERVER_FILE), cert.pem().as_bytes(), 0o644)?;
        write_file(
            &self.dir.join(SERVER_KEY_FILE),
            key.serialize_pem().as_bytes(),
            0o600,
        )?;
        let der = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| TlsError::BadPem {
            path: SERVER_KEY_FILE.into(),
            what: "private key",
            detail: e.to_string(),
        })?;
        let chain = vec![cert.der().clone()];
        Ok(Issued {
            key: Arc::new(certified_key(chain, der, provider)?),
            names: names.to_vec(),
            not_after,
        })
    }
}

impl Issued {
    fn needs_renewal(&self, names: &[String]) -> bool {
        names != self.names || SystemTime::now() + RENEW_BEFORE >= self.not_after
    }
}

/// Replaces the server certificate when the machine's names or addresses change (a new DHCP
/// lease, a renamed machine) or it nears expiry.
pub(super) async fn keep_current(
    ca: LocalCa,
    mut issued: Issued,
    mdns_name: Option<String>,
    current: Arc<CurrentCert>,
    provider: Arc<CryptoProvider>,
) {
    let mut tick = tokio::time::interval(NAMES_POLL);
    tick.tick().await;
    loop {
        tick.tick().await;
        let names = crate::lan::names::certificate_names(mdns_name.as_deref());
        if !issued.needs_renewal(&names) {
            continue;
        }
        match ca.issue(&names, &provider) {
            Ok(next) => {
                current.replace(next.key.clone());
                tracing::info!(names = %names.join(", "), "issued a new server certificate");
                issued = next;
            }
            Err(e) => tracing::warn!(error = %e, "could not renew the server certificate"),
        }
    }
}

/// The CA's name carries a few bytes of its key, so two confab servers in one office show up
/// as two entries in a trust store; derived from the key, so reloading rebuilds the same name.
fn ca_params(key: &KeyPair) -> (CertificateParams, String) {
    let id: String = Sha256::digest(key.public_key_raw())[..4]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let name = format!("confab local CA {id}");
    params
        .distinguished_name
        .push(DnType::CommonName, name.clone());
    params
        .distinguished_name
        .push(DnType::OrganizationName, "confab");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = SystemTime::now();
    params.not_before = (now - DAY).into();
    params.not_after = (now + CA_VALIDITY).into();
    (params, name)
}

/// `AB:CD:…`, the SHA-256 of a PEM certificate as trust stores show it, so a careful person
/// can compare what they installed with what the server printed.
pub fn fingerprint(pem: &[u8]) -> Option<String> {
    let der = CertificateDer::from_pem_slice(pem).ok()?;
    let hex: Vec<String> = Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    Some(hex.join(":"))
}

/// Writes through a temporary file and a rename, so a reader never sees half a key.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let temporary = path.with_extension("tmp");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    written.map_err(|source| write_error(path, source))
}

fn read_error(path: &Path, source: std::io::Error) -> TlsError {
    TlsError::Read {
        path: path.display().to_string(),
        source,
    }
}

fn write_error(path: &Path, source: std::io::Error) -> TlsError {
    TlsError::Write {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reloaded_ca_signs_certificates_that_chain_to_the_saved_ca_file() {
        let dir = tempfile_dir();
        let provider = rustls::crypto::ring::default_provider();
        drop(LocalCa::open_or_create(&dir).expect("create"));
        let ca_pem = std::fs::read(dir.join(CA_FILE)).expect("ca.pem");
        let reopened = LocalCa::open_or_create(&dir).expect("reopen");
        assert_eq!(std::fs::read(dir.join(CA_FILE)).expect("ca.pem"), ca_pem);
        let issued = reopened
            .issue(&["localhost".into(), "127.0.0.1".into()], &provider)
            .expect("issue");

        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(&ca_pem).expect("parse ca"))
            .expect("add root");
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(provider),
        )
        .build()
        .expect("verifier");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let now = rustls_pki_types::UnixTime::now();
        rustls::client::danger::ServerCertVerifier::verify_server_cert(
            verifier.as_ref(),
            &issued.key.cert[0],
            &[],
            &name,
            &[],
            now,
        )
        .expect("the server certificate chains to the saved CA");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_certificate_is_renewed_when_names_change_but_not_otherwise() {
        let dir = tempfile_dir();
        let provider = rustls::crypto::ring::default_provider();
        let ca = LocalCa::open_or_create(&dir).expect("create");
        let names = vec!["localhost".to_owned()];
        let issued = ca.issue(&names, &provider).expect("issue");
        assert!(!issued.needs_renewal(&names));
        assert!(issued.needs_renewal(&["localhost".into(), "10.1.2.3".into()]));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        std::env::temp_dir().join(format!(
            "confab-ca-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }
}
