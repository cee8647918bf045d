//! Command-line flags, their `CONFAB_*` environment variables, and every named limit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// The version shown by `--version` and `/healthz`: the crate version plus the git revision.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("CONFAB_GIT_REV"), ")");

/// confab: team chat for a small office, in one executable.
#[derive(Debug, Parser)]
#[command(name = "confab", version = VERSION, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address and port to listen on.
    #[arg(long, env = "CONFAB_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Where the database lives [default: $STATE_DIRECTORY under systemd, else the user data dir]
    #[arg(long, env = "CONFAB_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Extra origin allowed to use the API with the session cookie and open WebSockets,
    /// e.g. https://chat.example.com when behind a reverse proxy. Repeatable.
    #[arg(long, env = "CONFAB_ALLOWED_ORIGIN", value_delimiter = ',')]
    pub allowed_origin: Vec<String>,

    /// Most connections open at once; more wait in the kernel's backlog.
    #[arg(long, env = "CONFAB_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// WebSocket frames per second one connection may send (bursts of three times as many);
    /// raise it for integrations and load tests.
    #[arg(long, env = "CONFAB_FRAME_RATE", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub frame_rate: u32,

    /// Most memory the database's own page cache may use (bytes or with a suffix). The
    /// operating system caches the rest of the file; raise it for a very busy server.
    #[arg(long, env = "CONFAB_DB_CACHE", default_value = "4MB", value_parser = parse_cache_size)]
    pub db_cache: u64,

    /// Seconds a client may take to send its request headers before it is disconnected.
    #[arg(long, env = "CONFAB_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,

    /// Largest file one upload may be, in bytes or with a suffix (25MB, 1GB, 512KB).
    #[arg(long, env = "CONFAB_MAX_FILE_SIZE", default_value = "25MB", value_parser = parse_size)]
    pub max_file_size: u64,

    /// Uploads are refused while the data directory's disk has less free space than this
    /// (bytes or with a suffix).
    #[arg(long, env = "CONFAB_UPLOAD_MIN_FREE", default_value = "1GB", value_parser = parse_size)]
    pub upload_min_free: u64,

    /// Tests only: sweep unreferenced blobs every N seconds, and consider blobs older than N
    /// seconds (docs/ARCHITECTURE.md).
    #[arg(long, env = "CONFAB_SWEEP_SECONDS", hide = true)]
    pub sweep_seconds: Option<u64>,
    /// Folder for automatic backups: one when the server starts without a recent one, then one
    /// every 24 hours. Off when not set.
    #[arg(long, env = "CONFAB_BACKUP_DIR", value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,

    /// How many automatic backups to keep in --backup-dir; older ones are deleted.
    #[arg(long, env = "CONFAB_BACKUP_KEEP", default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub backup_keep: u64,
    /// HTTPS: `auto` makes a local certificate authority in <data dir>/tls/ on first run and a
    /// certificate for this machine's names and addresses; plain HTTP then redirects to HTTPS.
    #[arg(long, env = "CONFAB_TLS", value_enum, default_value_t = TlsFlag::Off)]
    pub tls: TlsFlag,

    /// Serve HTTPS with this certificate chain (PEM) instead; reloaded when the file changes.
    #[arg(
        long,
        env = "CONFAB_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) for --tls-cert.
    #[arg(
        long,
        env = "CONFAB_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Announce the server on the LAN by mDNS (on by default unless listening on loopback only).
    #[arg(long, env = "CONFAB_MDNS", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new(), hide_possible_values = true)]
    pub mdns: bool,

    /// Do not announce the server by mDNS (same as --mdns false).
    #[arg(long, overrides_with = "mdns")]
    pub no_mdns: bool,

    /// The mDNS name: the server is announced as NAME.local.
    #[arg(
        long,
        env = "CONFAB_MDNS_NAME",
        value_name = "NAME",
        default_value = "confab"
    )]
    pub mdns_name: String,

    /// Give USER a new one-time temporary password, sign them out everywhere, and exit. A
    /// disabled account stays disabled (with a warning): enable it on the admin page.
    #[arg(long, env = "CONFAB_RESET_USER", value_name = "USER")]
    pub reset_user: Option<String>,

    /// Serve Prometheus metrics at /metrics to requests sending `Authorization: Bearer TOKEN`
    /// (16 characters or more). /metrics is off unless this or --metrics-loopback is given.
    #[arg(
        long,
        env = "CONFAB_METRICS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,

    /// Serve /metrics without a token to requests from 127.0.0.1 or ::1 (a Prometheus or
    /// node exporter on the same machine). Others get 404, or 401 without the token if
    /// --metrics-token is also set.
    /// (The variable takes 1/0, true/false, yes/no, on/off.)
    #[arg(
        long,
        env = "CONFAB_METRICS_LOOPBACK",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub metrics_loopback: bool,
}

/// Console commands; with none, confab serves.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify the database (the server must be stopped): every page's checksum, every record,
    /// and every unread count and membership against the message history. Exits 1 if
    /// problems remain.
    Check {
        /// Fix what the message history can rebuild (unread counts, memberships,
        /// conversation records, broken sessions).
        #[arg(long)]
        repair: bool,
    },
    /// Write the man pages (confab.1, one per command) into DIR, rendered from these flags;
    /// the .deb ships them.
    #[command(hide = true)]
    ManPage { dir: PathBuf },
    /// Write a backup of the data (the database and attachments) to FILE: through the running
    /// server without stopping it, or directly when it is stopped. FILE must not exist yet: an
    /// existing file is never replaced. With --verify, check the backup FILE instead and print
    /// what it holds; exits 1 if it is not usable. Ctrl-C (or SIGTERM) stops either and removes
    /// its temporary files (FILE.tmp and FILE.db.tmp, or the verify folder in $TMPDIR); it then
    /// exits 130 (143).
    Backup {
        file: PathBuf,
        /// Check FILE (checksum, every record, every attachment) instead of writing it.
        #[arg(long)]
        verify: bool,
    },
    /// Replace the data with the backup FILE (the server must be stopped). The backup is
    /// verified first; the current database, even a damaged one, is kept as
    /// confab.redb.<time>.before-restore. Ctrl-C (or SIGTERM) before that stops it, changing
    /// nothing, and removes its .restore-* folder from the data directory.
    Restore { file: PathBuf },
}

/// `--tls`: the two modes an operator chooses between (files come with `--tls-cert`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsFlag {
    Off,
    Auto,
}

/// How the server speaks HTTPS, if at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP, as before TLS support existed.
    Off,
    /// A local CA in `<data dir>/tls/` signs a certificate for this machine.
    Auto,
    /// The operator's certificate and key, reloaded when they change.
    Files { cert: PathBuf, key: PathBuf },
}

/// Server settings, resolved from [`Cli`] once at start and passed in, never global.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub allowed_origins: Vec<String>,
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// Frames per second per WebSocket (bursts of [`limits::FRAME_BURST_SECONDS`] × that).
    pub frame_rate: u32,
    /// Largest upload, bytes.
    pub max_file_size: u64,
    /// redb's page cache, bytes.
    pub db_cache_bytes: usize,
    /// Free disk bytes below which uploads are refused.
    pub upload_min_free: u64,
    /// How often the blob sweep runs, and how old an unreferenced blob must be to go.
    pub sweep: Sweep,
    pub metrics: MetricsAccess,
    /// Where automatic backups go; `None`: no automatic backups.
    pub backup_dir: Option<PathBuf>,
    pub backup_keep: usize,
    pub tls: TlsMode,
    /// The mDNS name (without `.local`), or `None` when the server is not announced.
    pub mdns_name: Option<String>,
}

/// When unreferenced blobs are removed (see `blobs`).
#[derive(Debug, Clone, Copy)]
pub struct Sweep {
    pub every: Duration,
    /// Younger blobs may belong to an upload still being recorded.
    pub min_age: Duration,
}

impl Default for Sweep {
    fn default() -> Self {
        Sweep {
            every: Duration::from_secs(5 * 60),
            min_age: Duration::from_secs(10 * 60),
        }
    }
}

impl Sweep {
    fn every_seconds(seconds: u64) -> Sweep {
        Sweep {
            every: Duration::from_secs(seconds.max(1)),
            min_age: Duration::from_secs(seconds),
        }
    }
}

/// Who may read `/metrics`. With neither a token nor loopback, nobody: it answers 404.
#[derive(Clone, Default)]
pub struct MetricsAccess {
    pub token: Option<String>,
    pub loopback: bool,
}

impl MetricsAccess {
    /// Shortest accepted token: guessing it must be hopeless even without rate limits.
    pub const MIN_TOKEN_CHARS: usize = 16;

    fn from_cli(cli: &Cli) -> Result<MetricsAccess, String> {
        let token = cli.metrics_token.as_deref().map(str::trim);
        if let Some(token) = token
            && token.chars().count() < Self::MIN_TOKEN_CHARS
        {
            return Err(format!(
                "--metrics-token (CONFAB_METRICS_TOKEN) must be at least {} characters; \
                 generate one with e.g. `openssl rand -hex 16`",
                Self::MIN_TOKEN_CHARS
            ));
        }
        Ok(MetricsAccess {
            token: token.map(str::to_owned),
            loopback: cli.metrics_loopback,
        })
    }

    pub fn enabled(&self) -> bool {
        self.token.is_some() || self.loopback
    }
}

/// The token is a secret: never in logs.
impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsAccess")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("loopback", &self.loopback)
            .finish()
    }
}

impl Config {
    pub fn from_cli(cli: &Cli) -> Result<Config, String> {
        let data_dir = resolve_data_dir(cli.data_dir.clone())?;
        let allowed_origins = cli
            .allowed_origin
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        let tls = match (cli.tls, &cli.tls_cert, &cli.tls_key) {
            (TlsFlag::Auto, Some(_), _) => {
                return Err("--tls auto and --tls-cert exclude each other: choose one".into());
            }
            (_, Some(cert), Some(key)) => TlsMode::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            (TlsFlag::Auto, _, _) => TlsMode::Auto,
            _ => TlsMode::Off,
        };
        let announce = cli.mdns && !cli.no_mdns && !cli.listen.ip().is_loopback();
        let mdns_name = announce
            .then(|| valid_mdns_name(&cli.mdns_name))
            .transpose()?;
        Ok(Config {
            data_dir,
            tls,
            mdns_name,
            allowed_origins,
            max_connections: cli.max_connections.max(1),
            frame_rate: cli.frame_rate,
            header_timeout: Duration::from_secs(cli.header_timeout.max(1)),
            max_file_size: cli.max_file_size,
            db_cache_bytes: cli.db_cache as usize,
            upload_min_free: cli.upload_min_free,
            sweep: cli
                .sweep_seconds
                .map_or_else(Sweep::default, Sweep::every_seconds),
            metrics: MetricsAccess::from_cli(cli)?,
            backup_dir: cli.backup_dir.clone(),
            backup_keep: cli.backup_keep as usize,
        })
    }

    /// Settings for a server whose data lives in `data_dir`, with every default.
    pub fn with_data_dir(data_dir: PathBuf) -> Config {
        Config {
            data_dir,
            allowed_origins: Vec::new(),
            max_connections: 1024,
            frame_rate: 20,
            header_timeout: Duration::from_secs(10),
            max_file_size: 25_000_000,
            db_cache_bytes: limits::DB_CACHE_BYTES,
            upload_min_free: 1_000_000_000,
            sweep: Sweep::default(),
            metrics: MetricsAccess::default(),
            backup_dir: None,
            backup_keep: 7,
            tls: TlsMode::Off,
            mdns_name: None,
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("confab.redb")
    }

    /// The message search index: derived from the database, rebuilt if removed.
    pub fn search_dir(&self) -> PathBuf {
        self.data_dir.join("search")
    }

    /// Uploaded files, thumbnails and profile pictures: part of the data, back it up too.
    pub fn blobs_dir(&self) -> PathBuf {
        self.data_dir.join("blobs")
    }

    pub fn control_socket_path(&self) -> PathBuf {
        self.data_dir.join("control.sock")
    }

    /// The local certificate authority and the certificates it issued (`--tls auto`).
    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }

    pub fn is_tls(&self) -> bool {
        self.tls != TlsMode::Off
    }
}

/// One DNS label (what `NAME.local` needs): letters, digits and inner dashes, lower-cased.
fn valid_mdns_name(name: &str) -> Result<String, String> {
    let name = name.trim().trim_end_matches(".local").to_ascii_lowercase();
    let label_ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if label_ok {
        Ok(name)
    } else {
        Err(format!(
            "--mdns-name {name:?} is not a valid name: use letters, digits and dashes, e.g. confab"
        ))
    }
}

/// A byte count, plain or with a decimal suffix: `25MB`, `1GB`, `512KB`, `1000B`.
fn parse_size(raw: &str) -> Result<u64, String> {
    let text = raw.trim().to_ascii_uppercase();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let unit: u64 = match suffix.trim() {
        "" | "B" => 1,
        "KB" | "K" => 1_000,
        "MB" | "M" => 1_000_000,
        "GB" | "G" => 1_000_000_000,
        _ => {
            return Err(format!(
                "{raw:?}: use a number of bytes, or one with KB, MB or GB"
            ));
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("{raw:?}: use a number of bytes, or one with KB, MB or GB"))
}

/// `--db-cache`: at least 1 MB. A bare number is bytes, and `--db-cache 4` (meant as 4 MB)
/// would leave redb no cache at all.
fn parse_cache_size(raw: &str) -> Result<u64, String> {
    let bytes = parse_size(raw)?;
    if bytes < 1_000_000 {
        return Err(format!("{raw:?}: the database cache must be at least 1MB"));
    }
    usize::try_from(bytes)
        .map(|_| bytes)
        .map_err(|_| format!("{raw:?}: larger than this machine can address"))
}

/// `--data-dir`, else systemd's `$STATE_DIRECTORY`, else the platform's user data dir.
fn resolve_data_dir(flag: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    if let Some(state) = std::env::var_os("STATE_DIRECTORY") {
        // systemd may pass several colon-separated directories; the first is ours.
        let first = state
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_owned();
        if !first.is_empty() {
            return Ok(PathBuf::from(first));
        }
    }
    dirs::data_dir().map(|d| d.join("confab")).ok_or_else(|| {
        "cannot find a data directory: pass --data-dir or set CONFAB_DATA_DIR".into()
    })
}

/// Every limit in one place, so they are easy to find and to document.
pub mod limits {
    use std::time::Duration;

    /// redb's own page cache, bytes, unless the operator sets `--db-cache` (whose default
    /// says the same). redb's default (1 GiB) keeps every page it writes or reads up to that
    /// size, so the server's memory would grow with the office's history for years; the pages
    /// chat works on (recent messages, members, read positions, sessions) fit in a few MB, and
    /// the kernel's page cache keeps the rest of the file at hand, shared and given back under
    /// memory pressure. Measured against 1 GiB (docs/BENCHMARKS.md): no cost at an office's
    /// rates, about 9 % more CPU per message at saturation on a 900 MB database.
    pub const DB_CACHE_BYTES: usize = 4_000_000;

    /// Largest HTTP request body.
    pub const MAX_BODY_BYTES: u64 = 64 * 1024;
    /// Largest WebSocket frame or message.
    pub const MAX_FRAME_BYTES: usize = 64 * 1024;
    /// Longest message body, in characters.
    pub const MAX_MESSAGE_CHARS: usize = 4000;
    /// Longest client-chosen message id.
    pub const MAX_CLIENT_ID_CHARS: usize = 64;
    /// Frames queued for one connection before it counts as too slow and is closed. Several
    /// times [`WRITER_BATCH`], because one committed batch can fan out that many frames to a
    /// healthy connection at once. Frames are reference-counted buffers shared by all
    /// recipients, so a slot costs a pointer.
    pub const CONNECTION_QUEUE: usize = 4096;
    /// …and the most bytes of frames it may hold: about 500 of the longest messages, tens of
    /// full batches of ordinary ones.
    pub const CONNECTION_QUEUE_BYTES: usize = 8 * 1024 * 1024;
    /// Most queued frames one connection's pump writes before flushing.
    pub const PUMP_BATCH: usize = 64;
    /// Bytes of frames a socket buffers before writing them out (a flush writes the rest).
    pub const SOCKET_WRITE_BUFFER: usize = 8 * 1024;
    /// Sends waiting for the writer; when full, senders wait (backpressure), never grow memory.
    pub const WRITER_QUEUE: usize = 4096;
    /// Most sends the writer commits in one transaction. Batches are only this big when sends
    /// queue up faster than commits; then a bigger batch shares the pages it dirties (each
    /// conversation's last leaf, the branches above it, the rows of the same members) among
    /// more messages.
    pub const WRITER_BATCH: usize = 1024;
    /// Deleted text is erased from the database file's free pages at most this often (a
    /// scrub costs four commits and a write of the file's free space).
    pub const SCRUB_INTERVAL: Duration = Duration::from_secs(1);
    /// How long the server stays quiet about a user going offline, so reloads don't flicker.
    pub const PRESENCE_GRACE: Duration = Duration::from_secs(3);
    pub const PING_INTERVAL: Duration = Duration::from_secs(20);
    /// A connection silent this long (no pong, no frame) is dead.
    pub const PEER_TIMEOUT: Duration = Duration::from_secs(45);
    /// A connection may send this many seconds' worth of frames at once (the rate itself is
    /// `--frame-rate`, 20 by default: bursts of 60).
    pub const FRAME_BURST_SECONDS: f64 = 3.0;
    /// Housekeeping (forgetting old client ids and expired sessions) runs this long after
    /// start, then every [`HOUSEKEEPING_INTERVAL`].
    pub const HOUSEKEEPING_DELAY: Duration = Duration::from_secs(5 * 60);
    pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(3600);
    /// Connections the kernel queues for `accept`. When a restart sends every open tab of
    /// the office back at once, a full queue drops the SYN and that client waits a second
    /// for its retransmit; the kernel still caps this at `net.core.somaxconn` (4,096).
    pub const LISTEN_BACKLOG: u32 = 4096;
    /// How long a client_id is remembered for idempotent retries.
    pub const CLIENT_ID_TTL: Duration = Duration::from_secs(48 * 3600);
    /// Sessions (and their JWTs) last this long.
    pub const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
    /// Password hashes computed at once (and hashing threads); argon2id with OWASP
    /// parameters needs 19 MiB per hash.
    pub const CONCURRENT_HASHES: usize = 2;
    /// argon2's working memory is kept for the next login and given back to the system once
    /// no hash has started for this long: an idle server stays small.
    pub const HASH_MEMORY_IDLE: Duration = Duration::from_secs(60);
    /// Hash jobs handed to the hashing threads at once, running plus queued. A job keeps its
    /// slot until its hash is done, even if the client hung up, so this bounds the work a
    /// flood can leave behind: at most this many hashes (a fraction of a second) ahead of a new
    /// login.
    pub const HASH_QUEUE: usize = 8;
    /// How long a request waits for a slot in [`HASH_QUEUE`] before answering 503 `busy`.
    /// Waiting costs nothing but the open request, and a request that hangs up stops waiting.
    pub const HASH_QUEUE_WAIT: Duration = Duration::from_secs(5);
    /// Failed logins in [`LOGIN_WINDOW`] for one username from one address (an IPv4 address
    /// or an IPv6 /64); past it that pair gets 429.
    pub const LOGIN_FAILURES_PER_PAIR: u32 = 10;
    /// Failed logins in [`LOGIN_WINDOW`] from one address across usernames; past it the
    /// address only gets one try per username that has not failed from it (docs/PROTOCOL.md).
    pub const LOGIN_FAILURES_PER_ADDR: u32 = 30;
    /// Failed logins of one username from all addresses before its failures are answered
    /// slowly: [`LOGIN_SLOWDOWN_STEP`] more per failure, at most [`LOGIN_SLOWDOWN_MAX`].
    pub const LOGIN_SLOWDOWN_AFTER: u32 = 10;
    pub const LOGIN_SLOWDOWN_STEP: Duration = Duration::from_millis(100);
    pub const LOGIN_SLOWDOWN_MAX: Duration = Duration::from_secs(2);
    pub const LOGIN_WINDOW: Duration = Duration::from_secs(5 * 60);
    /// Most counters the login limiter keeps (pairs, addresses and usernames together). Each
    /// is a fixed 57 bytes (a 32-byte map slot with its control byte, 24 bytes in the expiry
    /// ring), whatever the client sent; with the tables' spare capacity (at most 32,768 map
    /// slots and 16,384 ring slots) the limiter stays under 1.5 MiB.
    pub const LOGIN_TRACKED_KEYS: usize = 10_000;
    /// Graceful shutdown: open HTTP requests get this long, then WebSockets get
    /// [`SOCKET_GOODBYE`] to receive their close frame; together well inside systemd's
    /// and the 5 s.
    pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
    pub const SOCKET_GOODBYE: Duration = Duration::from_millis(1500);
    /// Search updates (committed messages, edits, deletes) waiting for the indexer. Past this
    /// the writer drops them and marks the index stale rather than wait: chat never slows down
    /// for search, and a catch-up pass re-reads the database.
    pub const SEARCH_QUEUE: usize = 8192;
    /// Default and largest history page.
    pub const HISTORY_PAGE: u32 = 50;
    pub const HISTORY_PAGE_MAX: u32 = 100;
    /// Files one message may carry.
    pub const MAX_FILES_PER_MESSAGE: usize = 10;
    /// Longest file name, in characters.
    pub const MAX_FILE_NAME_CHARS: usize = 255;
    /// Largest profile picture upload (it is re-encoded small; the original is not kept).
    pub const MAX_AVATAR_BYTES: u64 = 10 * 1000 * 1000;
    /// Pictures wider or taller than this are not decoded (a decompression bomb is refused
    /// from its header).
    pub const MAX_IMAGE_SIDE: u32 = 16_384;
    /// Most memory one decode may allocate; a 24-megapixel photo needs 72 MB.
    pub const MAX_DECODE_BYTES: u64 = 128 * 1024 * 1024;
    /// Pictures decoded at once, so uploads cannot take every blocking thread or much memory.
    pub const CONCURRENT_DECODES: usize = 2;
    /// Longest side of a thumbnail.
    pub const THUMBNAIL_SIDE: u32 = 480;
    /// Side of a profile picture.
    pub const AVATAR_SIDE: u32 = 256;
    /// An upload no message names is removed after this long.
    pub const PENDING_UPLOAD_TTL: Duration = Duration::from_secs(24 * 3600);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_cache_defaults_to_its_limit_and_refuses_tiny_sizes() {
        let cli = Cli::parse_from(["confab"]);
        assert_eq!(cli.db_cache as usize, limits::DB_CACHE_BYTES);
        assert_eq!(parse_cache_size("64MB"), Ok(64_000_000));
        assert!(parse_cache_size("500KB").is_err());
        assert!(parse_cache_size("lots").is_err());
    }

    #[test]
    fn sizes_take_decimal_suffixes() {
        assert_eq!(parse_size("25MB"), Ok(25_000_000));
        assert_eq!(parse_size("1gb"), Ok(1_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("MB").is_err());
    }
}
