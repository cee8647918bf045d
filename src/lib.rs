//! confab: team chat for a small office, in one executable.
//!
//! `main.rs` parses flags and calls [`run`]; tests call it the same way through the binary.

pub mod app;
pub mod auth;
pub mod background;
pub mod backup;
pub mod blobs;
pub mod cli;
pub mod config;
pub mod control;
pub mod disk;
pub mod http;
pub mod hub;
pub mod json;
pub mod lan;
pub mod media;
pub mod metrics;
pub mod search;
pub mod status;
pub mod store;
pub mod text;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use app::App;
use auth::Auth;
use blobs::Blobs;
use config::Config;
use hub::Hub;
use search::Search;
use store::Store;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "another confab is already using {0}; stop it first, or use --reset-user while it runs"
    )]
    InUse(String),
    /// Says which file and what to do.
    #[error("{0}")]
    Open(store::StoreError),
    #[error("cannot use the database {path}: {source}")]
    Store {
        path: String,
        source: store::StoreError,
    },
    #[error("cannot start: {0}")]
    Auth(#[from] auth::AuthError),
    #[error("cannot open the control socket: {0}")]
    Control(std::io::Error),
    #[error("cannot use the file store {path}: {source}")]
    Blobs {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start HTTPS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("cannot find the listening address: {0}")]
    Listener(std::io::Error),
}

/// Creates the data directory (owner-only) if there is none.
pub fn create_data_dir(config: &Config) -> Result<(), StartError> {
    create_private_dir(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })
}

/// Opens the data directory and database, creating them if needed.
pub fn open_store(config: &Config) -> Result<Store, StartError> {
    create_data_dir(config)?;
    let path = config.database_path();
    Store::open_with_cache(&path, config.db_cache_bytes).map_err(|e| match e {
        store::StoreError::InUse => StartError::InUse(config.data_dir.display().to_string()),
        open @ store::StoreError::Open { .. } => StartError::Open(open),
        source => StartError::Store {
            path: path.display().to_string(),
            source,
        },
    })
}

/// The data directory holds the database and the signing key: owner-only.
pub(crate) fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Serves confab on `listener` until `shutdown` resolves, then closes every connection and
/// the database cleanly.
pub async fn run(
    listener: TcpListener,
    config: Config,
    store: Store,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StartError> {
    let blobs = Blobs::open(&config.blobs_dir()).map_err(|source| StartError::Blobs {
        path: config.blobs_dir().display().to_string(),
        source,
    })?;
    let tls = tls::Tls::start(&config)?;
    let addresses = lan::join::Addresses {
        listen: listener.local_addr().map_err(StartError::Listener)?,
        tls: tls.is_some(),
    };
    let metrics = Arc::new(metrics::Metrics::new());
    let auth = Auth::new(store.clone(), metrics.clone())?;
    let search = Search::start(config.search_dir(), store.clone());
    let hub = Hub::start(
        store.clone(),
        search.feed(),
        config.max_connections,
        config.frame_rate,
        metrics.clone(),
    );
    let app = Arc::new(App {
        config,
        store,
        auth,
        hub,
        search,
        blobs,
        media: media::Media::default(),
        metrics,
        addresses,
        trust: tls.as_ref().and_then(|t| t.ca().cloned()),
        backups: backup::Running::default(),
    });
    // Before "listening": a script that runs `confab backup` once it reads that line must find
    // the socket, or it would try the database itself and find it in use.
    let control = control::listen(app.clone()).map_err(StartError::Control)?;
    announce(&app);
    let sweeper = tokio::spawn(sweep_blobs(app.clone()));
    let _mdns = app.config.mdns_name.as_deref().and_then(|name| {
        lan::mdns::announce(name, app.addresses.listen.port(), app.config.is_tls())
    });

    let nightly = app.config.backup_dir.clone().map(|dir| {
        backup::start_nightly(
            app.backups.clone(),
            app.store.clone(),
            app.blobs.clone(),
            app.config.data_dir.clone(),
            dir,
            app.config.backup_keep,
        )
    });
    let surface = http::Surface {
        routes: http::routes(app.clone()),
        tls: tls.map(|tls| (tls, http::plain_routes(app.clone()))),
    };
    http::serve(listener, surface, &app.config, shutdown).await;

    tracing::info!("shutting down");
    control.abort();
    sweeper.abort();
    if let Some(nightly) = nightly {
        nightly.abort();
    }
    // A backup thread outlives its aborted task: it must stop and clean up before we exit.
    app.backups.stop_all().await;
    let _ = std::fs::remove_file(app.config.control_socket_path());
    app.hub.shutdown().await;
    // After the writer: its last updates are committed to the index too.
    let closing = app.clone();
    let _ = tokio::task::spawn_blocking(move || closing.search.shutdown()).await;
    Ok(())
}

/// At start and then every few minutes: forgets uploads no message took within a day, then
/// removes blobs nothing names any more (and what a killed `confab restore` left, once stale).
async fn sweep_blobs(app: Arc<App>) {
    let mut every = tokio::time::interval(app.config.sweep.every);
    loop {
        every.tick().await;
        let (store, blobs) = (app.store.clone(), app.blobs.clone());
        let min_age = app.config.sweep.min_age;
        let data_dir = app.config.data_dir.clone();
        let swept = tokio::task::spawn_blocking(move || {
            // A restore killed outright left its work here; the server may run for months.
            backup::remove_restore_work(&data_dir);
            let before = store::now_millis()
                .saturating_sub(config::limits::PENDING_UPLOAD_TTL.as_millis() as u64);
            let expired = store.expire_uploads(before)?;
            let swept = blobs
                .sweep(min_age, || {
                    store.referenced_blobs().map_err(std::io::Error::other)
                })
                .map_err(|e| store::StoreError::Task(e.to_string()))?;
            Ok::<_, store::StoreError>((expired, swept))
        })
        .await;
        match swept {
            Ok(Ok((expired, swept))) if expired + swept.removed > 0 => tracing::info!(
                expired_uploads = expired,
                removed_files = swept.removed,
                "swept unused files"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "could not sweep unused files"),
            Err(error) => tracing::warn!(%error, "the file sweep stopped"),
        }
    }
}

/// One readable line with the address to open, and the setup link on first run; on a
/// terminal a QR code for phones; on a desktop start, the browser.
fn announce(app: &App) {
    let addresses = &app.addresses;
    let url = addresses.open_url();
    tracing::info!(
        "confab {} listening on {}: open {url}",
        config::VERSION,
        addresses.listen
    );
    if let Some(ca) = &app.trust {
        let trust = url.replacen("https://", "http://", 1);
        tracing::info!(
            "HTTPS with a local certificate authority: install it on each device from {trust}trust (fingerprint {})",
            ca.fingerprint
        );
    }
    let setup = app
        .auth
        .setup_token()
        .map(|token| format!("setup#token={token}"));
    if let Some(path) = &setup {
        tracing::info!("first run: create the administrator account at {url}{path}");
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        let join = addresses.join_url();
        if let Some(code) = lan::join::qr_terminal(&join) {
            println!("Scan to open {join} on a phone:\n{code}");
        }
    }
    if lan::desktop::should_open_browser(lan::desktop::Surroundings::detect()) {
        let local = addresses.local_url();
        lan::desktop::open_browser(format!("{local}{}", setup.unwrap_or_default()));
    }
}
