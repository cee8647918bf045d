//! The `confab` executable: flags, logging, then the server (or a console command).

use std::process::ExitCode;

use clap::Parser;
use tokio::net::{TcpListener, TcpSocket};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing_subscriber::EnvFilter;

use confab::config::{Cli, Command, Config, limits};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::ManPage { dir }) = &cli.command {
        return confab::cli::man_pages(dir);
    }
    init_logging();
    let config = match Config::from_cli(&cli) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("confab: {message}");
            return ExitCode::FAILURE;
        }
    };
    match &cli.command {
        Some(Command::Check { repair }) => return confab::cli::check(&config, *repair).await,
        Some(Command::Backup { file, verify: true }) => {
            return confab::cli::verify_backup(file).await;
        }
        Some(Command::Backup {
            file,
            verify: false,
        }) => {
            return confab::cli::backup(&config, file).await;
        }
        Some(Command::Restore { file }) => return confab::cli::restore(&config, file).await,
        Some(Command::ManPage { .. }) | None => {}
    }
    if let Some(username) = &cli.reset_user {
        return confab::cli::reset_user(&config, username).await;
    }
    match serve(cli, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("confab: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli, config: Config) -> Result<(), String> {
    // Installed before anything else, so a SIGTERM right after start is still graceful.
    let terminate = signal(SignalKind::terminate())
        .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)))
        .map_err(|e| format!("cannot watch for SIGTERM: {e}"))?;
    let store = confab::open_store(&config).map_err(|e| e.to_string())?;
    let listener = bind(cli.listen).map_err(|e| {
        format!(
            "cannot listen on {}: {e} (is another program using it? try --listen)",
            cli.listen
        )
    })?;
    confab::run(listener, config, store, shutdown_signal(terminate))
        .await
        .map_err(|e| e.to_string())
}

/// Listens with a backlog of [`limits::LISTEN_BACKLOG`] (tokio's `bind` asks for 1,024).
fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restart may bind while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(limits::LISTEN_BACKLOG)
}

/// Quiet by default (info for confab, warnings for libraries); `RUST_LOG` overrides.
fn init_logging() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,confab=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// SIGTERM (systemd stop) or Ctrl-C.
async fn shutdown_signal((mut terminate, mut interrupt): (Signal, Signal)) {
    tokio::select! {
        _ = terminate.recv() => {},
        _ = interrupt.recv() => {},
    }
}
