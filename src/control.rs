//! The local control channel: a Unix socket in the data directory (mode 0600) through which
//! `confab --reset-user` and `confab backup` reach a running server, since redb lets only one
//! process open the database. One JSON request line, one JSON response line.

use std::io::{BufRead, BufReader, Write};
use std::net::Shutdown;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::net::unix::OwnedReadHalf;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::auth::AuthError;
use crate::backup::{self, BackupError, Source, Written};

/// What an admin must know when the running server writes a backup: it does so in its own view
/// of the filesystem, which under the packaged unit is not the admin's.
pub const SERVER_VIEW: &str = "in its own view of the filesystem (a systemd service with PrivateTmp/ProtectSystem sees /tmp and read-only paths differently): write it to a folder the service may write to (see packaging/INSTALL.md), or stop the server and run the backup directly";

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    ResetUser {
        username: String,
    },
    /// Write a backup to `path` (absolute: the server's working directory is not the
    /// caller's).
    Backup {
        path: PathBuf,
    },
    /// Is a server running here? `confab restore` must not replace its database.
    Ping,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    TemporaryPassword(String),
    /// The account was reset but is disabled: it cannot sign in until an admin enables it.
    /// (A variant of its own, so an enabled account's answer reads as before.)
    DisabledAccountPassword(String),
    NoSuchUser,
    BackedUp(Written),
    Pong,
    Failed(String),
}

/// Starts answering control requests. The socket is created owner-only: whoever can reach it
/// can reset any password, exactly like whoever can read the database file.
pub fn listen(app: Arc<App>) -> std::io::Result<JoinHandle<()>> {
    let path = app.config.control_socket_path();
    // A socket left by a crashed server would block the bind; nobody is listening on it,
    // because the database lock already proved no other server runs here.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Usually out of file descriptors; back off instead of spinning.
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let app = app.clone();
            tokio::spawn(async move {
                if let Err(e) = answer(app, stream).await {
                    tracing::warn!(error = %e, "control request failed");
                }
            });
        }
    }))
}

async fn answer(app: Arc<App>, stream: tokio::net::UnixStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    // Requests are one short line; never buffer more than this.
    let mut reader = tokio::io::BufReader::new(read.take(4096));
    reader.read_line(&mut line).await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(Request::ResetUser { username }) => reset_user(&app, &username).await,
        Ok(Request::Backup { path }) => {
            let stop = app.backups.stop_token();
            let backup = write_backup(&app, path, stop.clone());
            tokio::pin!(backup);
            tokio::select! {
                response = &mut backup => response,
                () = hung_up(reader.into_inner().into_inner()) => {
                    // The command was interrupted: stop, and clean up before answering.
                    stop.cancel();
                    backup.await
                }
            }
        }
        Ok(Request::Ping) => Response::Pong,
        Err(e) => Response::Failed(format!("bad request: {e}")),
    };
    let mut out = serde_json::to_string(&response).unwrap_or_default();
    out.push('\n');
    write.write_all(out.as_bytes()).await
}

async fn reset_user(app: &App, username: &str) -> Response {
    let result = async {
        let user = app.auth.user_by_name(username).await?;
        let password = app.reset_password(user.id).await?;
        Ok::<_, AuthError>((password, user.disabled))
    }
    .await;
    match result {
        Ok((password, disabled)) => {
            tracing::info!(%username, disabled, "password reset from the console");
            reset_response(password, disabled)
        }
        Err(AuthError::NoSuchUser) => Response::NoSuchUser,
        Err(e) => Response::Failed(e.to_string()),
    }
}

/// The answer to a reset of an account that is `disabled` or not.
pub fn reset_response(password: String, disabled: bool) -> Response {
    if disabled {
        Response::DisabledAccountPassword(password)
    } else {
        Response::TemporaryPassword(password)
    }
}

/// Resolves when the client has closed its side of the connection (or it broke): it sends
/// nothing after its request line, so any end of input means it is gone or wants to stop.
async fn hung_up(mut read: OwnedReadHalf) {
    let mut buf = [0u8; 64];
    while let Ok(n) = read.read(&mut buf).await
        && n > 0
    {}
}

async fn write_backup(app: &App, path: PathBuf, stop: CancellationToken) -> Response {
    let (store, data_dir) = (app.store.clone(), app.config.data_dir.clone());
    let sweep_paused = app.blobs.pause_sweep().await;
    let done = app
        .backups
        .in_background(stop, move |stop| {
            let _sweep_paused = sweep_paused;
            backup::write_backup(Source::Live(&store), &data_dir, &path, stop)
        })
        .await;
    match done {
        Ok(written) => {
            tracing::info!(backup = %written.path.display(), bytes = written.bytes, "backup written from the console");
            Response::BackedUp(written)
        }
        Err(BackupError::Stopped) => {
            let why = if app.backups.is_stopping() {
                "the server is shutting down"
            } else {
                "the command was interrupted"
            };
            tracing::info!("backup for the console stopped: {why}");
            Response::Failed(format!(
                "{why}: the backup was stopped and its temporary files removed"
            ))
        }
        Err(e @ BackupError::Unwritable { .. }) => Response::Failed(format!(
            "{e}; the running server writes the backup {SERVER_VIEW}"
        )),
        Err(e) => Response::Failed(e.to_string()),
    }
}

/// Client side: `Ok(None)` if no server is listening there.
pub fn request(socket: &Path, request: &Request) -> std::io::Result<Option<Response>> {
    match send(socket, request)? {
        Some(call) => call.answer().map(Some),
        None => Ok(None),
    }
}

/// A request sent, its answer not read yet.
pub struct Call {
    stream: UnixStream,
}

/// Closes a [`Call`]'s sending side from another thread: the server takes it as "stop" (see
/// `hung_up`) and still answers, so the caller learns the work was stopped and cleaned up.
pub struct HangUp(UnixStream);

impl HangUp {
    pub fn hang_up(&self) {
        let _ = self.0.shutdown(Shutdown::Write);
    }
}

impl Call {
    pub fn hang_up_handle(&self) -> std::io::Result<HangUp> {
        self.stream.try_clone().map(HangUp)
    }

    /// Waits for the server's answer.
    pub fn answer(self) -> std::io::Result<Response> {
        let mut answer = String::new();
        BufReader::new(self.stream).read_line(&mut answer)?;
        serde_json::from_str(&answer).map_err(std::io::Error::other)
    }
}

/// Sends `request`; `Ok(None)` if no server is listening there.
pub fn send(socket: &Path, request: &Request) -> std::io::Result<Option<Call>> {
    let mut stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    // A backup of a big database takes a while; the server answers when it is written.
    let timeout = match request {
        Request::Backup { .. } => Duration::from_secs(3600),
        Request::ResetUser { .. } | Request::Ping => Duration::from_secs(30),
    };
    stream.set_read_timeout(Some(timeout))?;
    let mut line = serde_json::to_string(request).map_err(std::io::Error::other)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    Ok(Some(Call { stream }))
}
