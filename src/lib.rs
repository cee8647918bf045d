//! confab: team chat for a small office, in one executable.
//!
//! `main.rs` parses flags and calls [`run`]; tests call it the same way through the binary.

pub mod app;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod config;
pub mod control;
pub mod http;
pub mod hub;
pub mod json;
pub mod search;
pub mod store;
pub mod text;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use app::App;
use auth::Auth;
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
    Store::open(&path).map_err(|e| match e {
        store::StoreError::InUse => StartError::InUse(config.data_dir.display().to_string()),
        open @ store::StoreError::Open { .. } => StartError::Open(open),
        source => StartError::Store {
            path: path.display().to_string(),
            source,
        },
    })
}

/// The data directory holds the database and the signing key: owner-only.
fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
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
    let auth = Auth::new(store.clone())?;
    let search = Search::start(config.search_dir(), store.clone());
    let hub = Hub::start(
        store.clone(),
        search.feed(),
        config.max_connections,
        config.frame_rate,
    );
    let app = Arc::new(App {
        config,
        store,
        auth,
        hub,
        search,
    });
    announce(&listener, &app);

    let control = control::listen(app.clone()).map_err(StartError::Control)?;
    let nightly = app.config.backup_dir.clone().map(|dir| {
        backup::start_nightly(
            app.store.clone(),
            app.config.data_dir.clone(),
            dir,
            app.config.backup_keep,
        )
    });
    let routes = http::routes(app.clone());
    http::serve(listener, routes, &app.config, shutdown).await;

    tracing::info!("shutting down");
    control.abort();
    if let Some(nightly) = nightly {
        nightly.abort();
    }
    let _ = std::fs::remove_file(app.config.control_socket_path());
    app.hub.shutdown().await;
    // After the writer: its last updates are committed to the index too.
    let closing = app.clone();
    let _ = tokio::task::spawn_blocking(move || closing.search.shutdown()).await;
    Ok(())
}

/// One readable line with the address to open, and the setup link on first run.
fn announce(listener: &TcpListener, app: &App) {
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    // Listening on every interface: the machine's name is what colleagues can type.
    let url = if addr.ip().is_unspecified() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        format!("http://{host}:{}/", addr.port())
    } else {
        format!("http://{addr}/")
    };
    tracing::info!("confab {} listening on {addr}: open {url}", config::VERSION);
    if let Some(token) = app.auth.setup_token() {
        tracing::info!("first run: create the administrator account at {url}setup#token={token}");
    }
}
