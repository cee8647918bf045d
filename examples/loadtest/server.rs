//! The server under test: a `confab` binary started on 127.0.0.1:0 over a data directory,
//! watched from outside through /proc, and stopped (SIGTERM, or SIGKILL on purpose or on drop).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Fallible;

/// How to start one server.
#[derive(Clone)]
pub struct Launch {
    pub bin: PathBuf,
    pub max_connections: usize,
    /// The server's per-connection frame rate (`--frame-rate`); `None` keeps its default.
    pub frame_rate: Option<u32>,
}

/// A running server; SIGKILLed on drop so a failed run never leaves one behind.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// Printed only while no account exists.
    pub setup_token: Option<String>,
    pub data_dir: PathBuf,
    /// From spawning the process to its `listening on` line.
    pub to_listening: Duration,
    pub spawned: Instant,
    /// Every line the server printed after start-up (it logs little at the default level).
    log: Arc<Mutex<Vec<String>>>,
    _temp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts on a fresh, empty data directory (removed at the end) under `work_dir`, and waits
    /// for the first-run setup token as well.
    pub fn start_fresh(launch: &Launch, work_dir: &Path) -> Fallible<Server> {
        let temp = temp_dir(work_dir, "confab-bench-")?;
        let mut server = Server::start(launch, temp.path(), true)?;
        server._temp = Some(temp);
        Ok(server)
    }

    /// Starts on `data_dir` as it is; `setup` waits for the setup token (an empty database).
    pub fn start(launch: &Launch, data_dir: &Path, setup: bool) -> Fallible<Server> {
        if !launch.bin.exists() {
            return Err(format!(
                "{} not found: run `cargo build --release` first, or pass --bin",
                launch.bin.display()
            ));
        }
        let mut command = Command::new(&launch.bin);
        command
            .args(["--listen", "127.0.0.1:0", "--max-connections"])
            .arg(launch.max_connections.to_string())
            .arg("--data-dir")
            .arg(data_dir);
        if let Some(rate) = launch.frame_rate {
            command.args(["--frame-rate", &rate.to_string()]);
        }
        let spawned = Instant::now();
        let mut child = command
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start {}: {e}", launch.bin.display()))?;
        let (tx, rx) = mpsc::channel();
        let streams = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ];
        for stream in streams.into_iter().flatten() {
            let tx = tx.clone();
            // Keep draining after start-up so a chatty server never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx);
        let deadline = spawned + Duration::from_secs(600);
        let (mut addr, mut token, mut to_listening) = (None, None, Duration::ZERO);
        let mut early = Vec::new();
        while addr.is_none() || (setup && token.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the server did not start (no `listening on` line); it printed: {}",
                    early.join(" | ")
                ));
            };
            if addr.is_none() {
                addr = after(&line, "listening on ").and_then(|w| w.parse().ok());
                to_listening = spawned.elapsed();
            }
            token = token.or_else(|| after(&line, "/setup#token=").map(str::to_owned));
            early.push(line);
        }
        let log = Arc::new(Mutex::new(early));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in rx {
                let mut log = sink.lock().unwrap_or_else(|p| p.into_inner());
                // Bounded: a run that logs a warning per message must not grow the harness.
                if log.len() < 10_000 {
                    log.push(line);
                }
            }
        });
        Ok(Server {
            child,
            addr: addr.ok_or("no address")?,
            setup_token: token,
            data_dir: data_dir.to_owned(),
            to_listening,
            spawned,
            log,
            _temp: None,
        })
    }

    /// Removes `temp` (the data directory) when the server is dropped.
    pub fn keep(&mut self, temp: tempfile::TempDir) {
        self._temp = Some(temp);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// (VmRSS, VmHWM) in KiB, from /proc/<pid>/status.
    pub fn memory(&self) -> Fallible<(u64, u64)> {
        proc_memory(&self.pid())
    }

    pub fn rss_kib(&self) -> u64 {
        self.memory().map_or(0, |(rss, _)| rss)
    }

    /// The resident set by kind, in KiB: anonymous (heap, stacks, caches: what the server
    /// allocated) and file-backed (the mapped program, its libraries and files: pages the
    /// kernel can drop and read again).
    pub fn rss_by_kind_kib(&self) -> (u64, u64) {
        status_kib(&self.pid(), ["RssAnon:", "RssFile:"])
            .map_or((0, 0), |[anon, file]| (anon, file))
    }

    /// CPU time (user + system) the server has used so far.
    pub fn cpu(&self) -> Duration {
        cpu_time(&self.pid())
    }

    /// Open file descriptors (sockets, the database, the index, the control socket…).
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, |d| d.count())
    }

    /// The database file's size in bytes.
    pub fn db_bytes(&self) -> u64 {
        std::fs::metadata(self.data_dir.join("confab.redb")).map_or(0, |m| m.len())
    }

    /// Waits until a log line contains `needle`; false on timeout or if the server exited.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .log
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .any(|l| l.contains(needle))
            {
                return true;
            }
            if Instant::now() >= deadline || matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Log lines at WARN or ERROR, for the report.
    pub fn warnings(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .cloned()
            .collect()
    }

    /// SIGTERM (through kill(1): `unsafe` is forbidden here), then up to 20 s for a clean exit.
    pub fn stop(&mut self) -> String {
        let _ = Command::new("kill").args(["-TERM", &self.pid()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return format!("{status}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        "did not exit within 20 s of SIGTERM; killed".to_owned()
    }

    /// SIGKILL, as a crash or a power cut would end it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The word after `marker` in `line`, without trailing punctuation.
pub fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let word = rest.split_whitespace().next()?;
    Some(word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
}

pub fn temp_dir(work_dir: &Path, prefix: &str) -> Fallible<tempfile::TempDir> {
    std::fs::create_dir_all(work_dir).map_err(|e| format!("{}: {e}", work_dir.display()))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(work_dir)
        .map_err(|e| format!("temp dir in {}: {e}", work_dir.display()))
}

/// (VmRSS, VmHWM) in KiB of a process.
pub fn proc_memory(pid: &str) -> Fallible<(u64, u64)> {
    let [rss, peak] = status_kib(pid, ["VmRSS:", "VmHWM:"])?;
    Ok((rss, peak))
}

/// Fields of /proc/<pid>/status, in KiB.
fn status_kib<const N: usize>(pid: &str, names: [&str; N]) -> Fallible<[u64; N]> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("read /proc/{pid}/status: {e}"))?;
    let mut values = [0; N];
    for (value, name) in values.iter_mut().zip(names) {
        *value = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))?;
    }
    Ok(values)
}

/// CPU time (user + system) a process has used so far, from /proc/<pid>/stat (in USER_HZ
/// ticks, 100 per second on x86 and ARM Linux).
pub fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or_else(Vec::new, |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Makes sure this process (and so the server it starts, which inherits the limit) may open
/// `needed` file descriptors: raises the soft limit up to the hard one with prlimit(1), since
/// `unsafe` (and so setrlimit through libc) is forbidden in this crate.
pub fn ensure_fd_limit(needed: u64) -> Fallible<()> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let (soft, hard) = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| {
            let mut words = l.split_whitespace().skip(3);
            let parse = |w: Option<&str>| match w {
                Some("unlimited") => Some(u64::MAX),
                Some(n) => n.parse().ok(),
                None => None,
            };
            Some((parse(words.next())?, parse(words.next())?))
        })
        .ok_or("cannot read the open-file limit from /proc/self/limits")?;
    if soft >= needed {
        return Ok(());
    }
    if hard < needed {
        return Err(format!(
            "this needs {needed} open files but the hard limit is {hard}: raise it (as root, \
             `ulimit -Hn {needed}` or LimitNOFILE), or open fewer sockets"
        ));
    }
    let pid = std::process::id().to_string();
    let status = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={hard}:{hard}")])
        .status()
        .map_err(|e| format!("prlimit: {e}"))?;
    if !status.success() {
        return Err(format!(
            "prlimit could not raise the open-file limit from {soft} to {hard}; run \
             `ulimit -n {hard}` first"
        ));
    }
    Ok(())
}
