//! Console commands an administrator runs next to the server.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backup::{self, BackupError, Source, Verified};
use crate::blobs::Blobs;
use crate::config::Config;
use crate::control::{self, Request, Response};
use crate::store::{self, StoreError};
use crate::{StartError, auth::Auth, auth::AuthError, open_store};

/// `confab --reset-user NAME`: through the running server if there is one, else directly on
/// the database.
pub async fn reset_user(config: &Config, username: &str) -> ExitCode {
    let request = Request::ResetUser {
        username: username.to_owned(),
    };
    let response = match control::request(&config.control_socket_path(), &request) {
        Ok(Some(response)) => response,
        Ok(None) => reset_offline(config, username).await,
        Err(e) => Response::Failed(format!(
            "cannot reach the running server at {}: {e}",
            config.control_socket_path().display()
        )),
    };
    let (password, disabled) = match response {
        Response::TemporaryPassword(password) => (password, false),
        Response::DisabledAccountPassword(password) => (password, true),
        Response::NoSuchUser => {
            eprintln!("confab: there is no user named '{username}'");
            return ExitCode::FAILURE;
        }
        Response::Failed(message) => {
            eprintln!("confab: could not reset the password: {message}");
            return ExitCode::FAILURE;
        }
        other => return unexpected(&other),
    };
    println!("Temporary password for {username}: {password}");
    println!(
        "{username} has been signed out everywhere and must choose a new password at next sign-in."
    );
    // The reset stands (an admin may enable the account later), but it alone lets nobody in.
    if disabled {
        eprintln!(
            "confab: warning: {username}'s account is disabled: they cannot sign in until it is re-enabled on the admin page (People, Enable)"
        );
    }
    ExitCode::SUCCESS
}

fn unexpected(response: &Response) -> ExitCode {
    eprintln!("confab: the server gave an unexpected answer: {response:?}");
    ExitCode::FAILURE
}

/// Ctrl-C (SIGINT), SIGTERM and SIGHUP (the terminal closed), watched while a command works
/// with temporary files: instead of dying midway and leaving them, the command stops its work,
/// which removes them, and exits as a shell reports a process the signal ended (128 + its
/// number).
struct Interrupts {
    watched: Vec<(Signal, &'static str, u8)>,
    /// The signal that stopped the last work, if one did.
    last: Option<Interrupted>,
}

/// A signal that stopped a command: its name and the exit status to give.
struct Interrupted(&'static str, u8);

impl Interrupts {
    fn watch() -> Result<Interrupts, ExitCode> {
        let kinds = [
            (SignalKind::interrupt(), "SIGINT", 130),
            (SignalKind::terminate(), "SIGTERM", 143),
            (SignalKind::hangup(), "SIGHUP", 129),
        ];
        let mut watched = Vec::new();
        for (kind, name, status) in kinds {
            match signal(kind) {
                Ok(signal) => watched.push((signal, name, status)),
                Err(e) => return Err(fail(format!("cannot watch for {name}: {e}"))),
            }
        }
        Ok(Interrupts {
            watched,
            last: None,
        })
    }

    async fn next(&mut self) -> Interrupted {
        let waits = self.watched.iter_mut().map(|(signal, name, status)| {
            Box::pin(async move {
                signal.recv().await;
                Interrupted(name, *status)
            })
        });
        futures_util::future::select_all(waits).await.0
    }

    /// Waits for `work` to end; a signal meanwhile cancels `stop` and waits for `work` to
    /// stop and clean up (the signal is kept in `last`).
    async fn until_done<T>(
        &mut self,
        stop: &CancellationToken,
        mut work: JoinHandle<T>,
    ) -> Result<T, String> {
        let interrupted = tokio::select! {
            done = &mut work => return done.map_err(|e| e.to_string()),
            interrupted = self.next() => interrupted,
        };
        eprintln!(
            "confab: {}: stopping and removing the temporary files…",
            interrupted.0
        );
        self.last = Some(interrupted);
        stop.cancel();
        work.await.map_err(|e| e.to_string())
    }
}

impl Interrupted {
    /// Says what the stopped command left, and exits with 128 + the signal's number.
    fn exit(&self, left: &str) -> ExitCode {
        eprintln!("confab: interrupted by {}: {left}", self.0);
        ExitCode::from(self.1)
    }
}

/// `confab backup FILE`: through the running server if there is one, else directly from the
/// stopped server's database (which is only read).
pub async fn backup(config: &Config, file: &Path) -> ExitCode {
    let target = match std::path::absolute(file) {
        Ok(path) => path,
        Err(e) => return fail(format!("cannot use {}: {e}", file.display())),
    };
    // Refused before any work, as this admin sees the filesystem; the server checks again.
    if std::fs::symlink_metadata(&target).is_ok() {
        let exists = BackupError::Exists(file.display().to_string());
        return fail(format!("the backup failed: {exists}"));
    }
    let mut interrupts = match Interrupts::watch() {
        Ok(interrupts) => interrupts,
        Err(status) => return status,
    };
    let request = Request::Backup {
        path: target.clone(),
    };
    let stop = CancellationToken::new();
    let (response, by_server) = match control::send(&config.control_socket_path(), &request) {
        Ok(Some(call)) => (through_server(call, &stop, &mut interrupts).await, true),
        Ok(None) => (
            backup_offline(config, target, &stop, &mut interrupts).await,
            false,
        ),
        Err(e) => (
            Response::Failed(format!(
                "cannot reach the running server at {}: {e}",
                config.control_socket_path().display()
            )),
            false,
        ),
    };
    // Stopped by a signal unless it was already written (then it is reported as usual).
    if let (Response::Failed(_), Some(signal)) = (&response, &interrupts.last) {
        return signal.exit(if by_server {
            "the running server stopped the backup and removed its temporary files; nothing was written"
        } else {
            "the backup was stopped and its temporary files removed; nothing was written"
        });
    }
    match response {
        Response::BackedUp(written) => {
            if by_server && let Err(message) = written_here(&written) {
                return fail(format!("the backup failed: {message}"));
            }
            println!(
                "backup written to {} ({}, {} attached files) in {:.1} s",
                written.path.display(),
                megabytes(written.bytes),
                written.files,
                written.seconds
            );
            println!(
                "check it with: confab backup --verify {}",
                written.path.display()
            );
            ExitCode::SUCCESS
        }
        Response::Failed(message) => fail(format!("the backup failed: {message}")),
        other => unexpected(&other),
    }
}

/// Whether the backup a running server reports is there, whole, as this command sees the
/// filesystem. Under systemd (PrivateTmp, ProtectSystem) the server's /tmp is its own, so a
/// backup it wrote there is nowhere the admin can find it.
fn written_here(written: &backup::Written) -> Result<(), String> {
    let path = written.path.display();
    let found = match std::fs::metadata(&written.path) {
        Ok(meta) if meta.len() == written.bytes => return Ok(()),
        Ok(meta) => format!("{path} here has {} bytes", meta.len()),
        // Not this user's to look at: the server's word stands.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Ok(()),
        Err(_) => format!("there is no {path} here"),
    };
    Err(format!(
        "the running server reports {path} written ({} bytes), but {found}: it wrote it {}",
        written.bytes,
        control::SERVER_VIEW
    ))
}

/// The running server writes the backup; a signal here hangs up on it, which it takes as
/// "stop", and its answer comes once it has cleaned up.
async fn through_server(
    call: control::Call,
    stop: &CancellationToken,
    interrupts: &mut Interrupts,
) -> Response {
    if let Ok(hang_up) = call.hang_up_handle() {
        let stop = stop.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            hang_up.hang_up();
        });
    }
    let answer = tokio::task::spawn_blocking(move || call.answer());
    match interrupts.until_done(stop, answer).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => Response::Failed(format!("the running server did not answer: {e}")),
        Err(e) => Response::Failed(e),
    }
}

async fn backup_offline(
    config: &Config,
    target: PathBuf,
    stop: &CancellationToken,
    interrupts: &mut Interrupts,
) -> Response {
    if let Err(message) = existing_database(config) {
        return Response::Failed(message);
    }
    let (database, data_dir) = (config.database_path(), config.data_dir.clone());
    let work_stop = stop.clone();
    let work = tokio::task::spawn_blocking(move || {
        backup::write_backup(Source::Stopped(&database), &data_dir, &target, &work_stop)
    });
    match interrupts.until_done(stop, work).await {
        Ok(Ok(written)) => Response::BackedUp(written),
        Ok(Err(BackupError::Store(StoreError::InUse))) => Response::Failed(
            "the database is in use, but the server's control socket did not answer".into(),
        ),
        Ok(Err(e)) => Response::Failed(e.to_string()),
        Err(e) => Response::Failed(e),
    }
}

/// `confab backup --verify FILE`: unpacks it into a temporary folder and checks everything.
pub async fn verify_backup(file: &Path) -> ExitCode {
    let mut interrupts = match Interrupts::watch() {
        Ok(interrupts) => interrupts,
        Err(status) => return status,
    };
    let (file, stop) = (file.to_owned(), CancellationToken::new());
    let work_stop = stop.clone();
    let work = tokio::task::spawn_blocking(move || {
        let work = backup::verify_work_dir()?;
        let started = std::time::Instant::now();
        backup::verify(&file, work.path(), false, &work_stop).map(|v| (v, started.elapsed()))
    });
    let done = interrupts.until_done(&stop, work).await;
    let (verified, took) = match (done, &interrupts.last) {
        (Ok(Ok(done)), _) => done,
        (Ok(Err(_)), Some(signal)) => {
            return signal.exit("the check was stopped and its temporary folder removed");
        }
        (Ok(Err(e)), None) => return fail(e.to_string()),
        (Err(e), _) => return fail(e),
    };
    print_backup(&verified);
    println!("verified in {:.1} s", took.as_secs_f64());
    report_problems(
        &verified.problems,
        "the backup is good: checksum, every record and every attached file check out",
    )
}

fn print_backup(backup: &Verified) {
    println!(
        "backup made by confab {} at {} UTC ({} ago), database format {}, {}",
        backup.manifest.confab,
        backup::utc_stamp(backup.manifest.created_at / 1000),
        human_age(backup.age()),
        backup.manifest.schema,
        megabytes(backup.bytes),
    );
    println!(
        "{} users, {} conversations, {} messages, {} files",
        backup.users, backup.conversations, backup.messages, backup.files
    );
}

fn report_problems(problems: &[String], all_good: &str) -> ExitCode {
    for problem in problems {
        println!("  problem: {problem}");
    }
    if problems.is_empty() {
        println!("{all_good}");
        ExitCode::SUCCESS
    } else {
        println!(
            "{} problems found: do not rely on this backup",
            problems.len()
        );
        ExitCode::FAILURE
    }
}

/// `confab restore FILE`: only with the server stopped.
pub async fn restore(config: &Config, file: &Path) -> ExitCode {
    let running = format!(
        "the server is running on {}; stop it first (e.g. systemctl stop confab), then restore",
        config.data_dir.display()
    );
    if let Ok(Some(_)) = control::request(&config.control_socket_path(), &Request::Ping) {
        return fail(running);
    }
    if let Err(e) = crate::create_data_dir(config) {
        return fail(e.to_string());
    }
    let mut interrupts = match Interrupts::watch() {
        Ok(interrupts) => interrupts,
        Err(status) => return status,
    };
    let (config_copy, file, stop) = (config.clone(), file.to_owned(), CancellationToken::new());
    let work_stop = stop.clone();
    let work =
        tokio::task::spawn_blocking(move || backup::restore(&config_copy, &file, &work_stop));
    let done = interrupts.until_done(&stop, work).await;
    // Past the point of no return a restore finishes; it is then reported as usual.
    let restored = match (done, &interrupts.last) {
        (Ok(Ok(restored)), _) => restored,
        (Ok(Err(_)), Some(signal)) => {
            return signal.exit("nothing was changed, and the unpacked backup was removed");
        }
        (Ok(Err(BackupError::Store(StoreError::InUse))), None) => return fail(running),
        (Ok(Err(e)), None) => return fail(format!("nothing was changed: {e}")),
        (Err(e), _) => return fail(e),
    };
    print_backup(&restored.verified);
    println!("restored into {}", config.data_dir.display());
    match (&restored.previous, &restored.damaged) {
        (Some(previous), Some(problem)) => {
            println!("the database that was there is damaged: {problem}");
            println!("it is kept as {}", previous.display());
        }
        (Some(previous), None) => println!(
            "the database that was there is kept as {}",
            previous.display()
        ),
        (None, _) => {}
    }
    println!("the search index is rebuilt when the server starts");
    ExitCode::SUCCESS
}

fn fail(message: String) -> ExitCode {
    eprintln!("confab: {message}");
    ExitCode::FAILURE
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn human_age(age: std::time::Duration) -> String {
    let minutes = age.as_secs() / 60;
    match minutes {
        0 => "less than a minute".into(),
        1..=119 => format!("{minutes} minutes"),
        120..=2879 => format!("{} hours", minutes / 60),
        _ => format!("{} days", minutes / 1440),
    }
}

/// Every blob the database names must be on disk; a missing one is a problem only a backup
/// can fix. Returns how many blobs on disk nothing names.
fn check_blobs(config: &Config, report: &mut store::CheckReport) -> usize {
    let on_disk = match Blobs::open(&config.blobs_dir()).and_then(|blobs| blobs.list()) {
        Ok(list) => list,
        Err(e) => {
            report
                .problems
                .push(format!("cannot read {}: {e}", config.blobs_dir().display()));
            return 0;
        }
    };
    let present: HashSet<&str> = on_disk.iter().map(|(id, _)| id.as_str()).collect();
    let named: HashSet<&str> = report.blobs.iter().map(String::as_str).collect();
    let missing: Vec<String> = report
        .blobs
        .iter()
        .filter(|b| !present.contains(b.as_str()))
        .cloned()
        .collect();
    let orphans = present.difference(&named).count();
    for blob in missing {
        report.problems.push(format!(
            "file {blob} is named by the database but missing from {}; restore it from a backup",
            config.blobs_dir().display()
        ));
    }
    orphans
}

/// `confab check [--repair]`: offline, on the database file itself.
pub async fn check(config: &Config, repair: bool) -> ExitCode {
    if let Err(message) = existing_database(config) {
        eprintln!("confab: {message}");
        return ExitCode::FAILURE;
    }
    let path = config.database_path();
    let started = std::time::Instant::now();
    let checked = {
        let path = path.clone();
        store::blocking(move || store::check(&path, repair)).await
    };
    let mut report = match checked {
        Ok(report) => report,
        Err(StoreError::InUse) => {
            eprintln!(
                "confab: the server is running on {}; stop it first (e.g. systemctl stop confab), then run the check",
                config.data_dir.display()
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("confab: {e}");
            return ExitCode::FAILURE;
        }
    };
    let orphans = check_blobs(config, &mut report);
    println!(
        "checked {} in {:.2} s (page checksums {:.2} s): {} users, {} conversations, {} messages, {} files ({} unreferenced, removed by the running server's sweep)",
        path.display(),
        started.elapsed().as_secs_f64(),
        report.integrity_time.as_secs_f64(),
        report.users,
        report.conversations,
        report.messages,
        report.blobs.len(),
        orphans,
    );
    for problem in &report.problems {
        println!("  problem: {problem}");
    }
    let unresolved = report.unresolved();
    if report.problems.is_empty() {
        println!("no problems found");
    } else if repair {
        println!(
            "repaired {} of {} problems",
            report.repaired,
            report.problems.len()
        );
    } else {
        println!(
            "{} problems found; run `confab check --repair` to fix what history can rebuild",
            report.problems.len()
        );
    }
    if unresolved == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `confab man-page DIR`: the man pages, rendered from the same clap definition as `--help`,
/// so they cannot fall behind the flags.
pub fn man_pages(dir: &std::path::Path) -> ExitCode {
    use clap::CommandFactory;
    match clap_mangen::generate_to(crate::config::Cli::command(), dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "confab: cannot write the man pages to {}: {e}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// Console commands never create a database: a mistyped --data-dir is reported, not "fixed".
fn existing_database(config: &Config) -> Result<(), String> {
    if config.database_path().exists() {
        Ok(())
    } else {
        Err(format!(
            "there is no confab database in {}; pass the server's --data-dir (or CONFAB_DATA_DIR)",
            config.data_dir.display()
        ))
    }
}

async fn reset_offline(config: &Config, username: &str) -> Response {
    if let Err(message) = existing_database(config) {
        return Response::Failed(message);
    }
    let store = match open_store(config) {
        Ok(store) => store,
        Err(StartError::InUse(_)) => {
            return Response::Failed(
                "the database is in use, but the server's control socket did not answer".into(),
            );
        }
        Err(e) => return Response::Failed(e.to_string()),
    };
    let result = async {
        let auth = Auth::new(store, std::sync::Arc::default())?;
        let user = auth.user_by_name(username).await?;
        let (password, _revoked) = auth.reset_password(user.id).await?;
        Ok::<_, AuthError>((password, user.disabled))
    }
    .await;
    match result {
        Ok((password, disabled)) => control::reset_response(password, disabled),
        Err(AuthError::NoSuchUser) => Response::NoSuchUser,
        Err(e) => Response::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_the_server_wrote_must_be_there_whole_for_the_admin() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("office.backup");
        std::fs::write(&path, [7u8; 100]).expect("write");
        let written = |path: &std::path::Path, bytes| backup::Written {
            path: path.to_owned(),
            bytes,
            files: 0,
            seconds: 0.1,
        };
        assert_eq!(written_here(&written(&path, 100)), Ok(()));
        let short = written_here(&written(&path, 200)).expect_err("another size");
        assert!(short.contains("here has 100 bytes"), "{short}");
        let elsewhere = dir.path().join("in-the-server-s-tmp.backup");
        let missing = written_here(&written(&elsewhere, 100)).expect_err("not there");
        assert!(
            missing.contains(&format!("there is no {} here", elsewhere.display()))
                && missing.contains("its own view of the filesystem")
                && missing.contains("PrivateTmp")
                && missing.contains("packaging/INSTALL.md")
                && missing.contains("stop the server and run the backup directly"),
            "{missing}"
        );
    }
}
