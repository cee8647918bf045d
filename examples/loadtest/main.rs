//! confab's benchmark suite (docs/BENCHMARKS.md, issue 11): starts a release `confab` on a
//! temporary data directory and an ephemeral loopback port, drives it from outside with real
//! WebSockets and HTTP, and reads its memory and CPU from /proc.
//!
//! ```text
//! cargo build --release --bin confab --example loadtest
//! target/release/examples/loadtest --scenario latency            # one scenario
//! target/release/examples/loadtest --scenario suite --baseline /tmp/confab-before
//! scripts/bench                                                  # the suite, into the docs
//! ```
//!
//! Every run starts with an fsync probe of the data directories' disk. Each scenario prints
//! one JSON line and a table. Modules: `server` (the process under test), `client` (HTTP,
//! sockets, frames), `fixture` (cached data directories written through the store), `report`
//! (histograms, CPU, output), the scenarios (`dm`, `sockets`, `history`, and `legacy`: the
//! first harness's `dm` and room scenarios), and `suite` (both binaries, the docs table).
//! All traffic stays on 127.0.0.1, every loop is bounded, every server is stopped.

mod client;
mod dm;
mod fixture;
mod history;
mod legacy;
mod rawhttp;
mod report;
mod server;
mod sockets;
mod suite;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use crate::client::User;
use crate::report::{Fsync, Report};
use crate::server::{Launch, Server, temp_dir};

type Fallible<T> = Result<T, String>;

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum Scenario {
    /// The first harness's load: N users send M DMs at once; throughput, ack latency, memory.
    Dm,
    RoomFanout,
    RoomThroughput,
    CommitCost,
    /// The three room scenarios in one run, sharing the sign-ups.
    Rooms,
    IdleStart,
    IdleSockets,
    DmCpu,
    DmThroughput,
    Sustained,
    Latency,
    ConnectStorm,
    History,
    ColdStart,
    Soak,
    /// Every scenario of issue 11's table at the suite's sizes (docs/BENCHMARKS.md).
    Suite,
}

impl Scenario {
    fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
}

/// Flags. Sizes left unset take each scenario's own default (docs/BENCHMARKS.md lists them).
#[derive(Parser, Clone, Debug)]
#[command(
    name = "loadtest",
    about = "confab's benchmark suite (docs/BENCHMARKS.md)"
)]
pub struct Cli {
    /// Scenarios to run, comma-separated, each on a fresh server.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "dm")]
    pub scenario: Vec<Scenario>,
    /// The server binary.
    #[arg(long, default_value = "target/release/confab")]
    pub bin: PathBuf,
    /// A second binary (the "before"): every scenario runs with it first, then with --bin, and
    /// the suite's table shows both and their ratio.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Rewrite the generated block of this file (docs/BENCHMARKS.md) with the results.
    #[arg(long)]
    pub write_doc: Option<PathBuf>,
    /// Where temporary data directories go (and the fsync probe runs) [default: the system's
    /// temporary directory].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Cached fixtures: users with tokens, long histories (reused between runs).
    #[arg(long, default_value = "target/bench-cache")]
    pub cache_dir: PathBuf,

    /// Users (dm: 100; dm-cpu, dm-throughput, sustained, idle-sockets, connect-storm: 1000;
    /// latency: 200).
    #[arg(long)]
    pub users: Option<usize>,
    /// Messages in all (dm: 20000; dm-throughput: 150000).
    #[arg(long)]
    pub messages: Option<usize>,
    /// Offered rate in all, per second (dm-cpu: 5000 msg/s; latency: 1000 msg/s; history:
    /// 1000 pages/s; soak: 50 DMs/s).
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long the timed part runs (dm-cpu 10, latency 20, history 10 per phase, sustained
    /// 600 (suite 120), soak 1800 (suite 120)).
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Soak: seconds of warm-up before the RSS baseline [default: a quarter of --seconds].
    #[arg(long)]
    pub warmup: Option<u64>,
    /// WebSockets (idle-sockets, connect-storm: 10000; soak: 1000, one user each).
    #[arg(long)]
    pub sockets: Option<usize>,
    /// Connects in flight (idle-sockets: 64; connect-storm: 1000); history: closed-loop
    /// clients (8).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// idle-start: seconds to wait after the last password hash (65; 0 skips the wait).
    #[arg(long)]
    pub idle_wait: Option<u64>,
    /// soak: disconnects per second (2), each user back 5 s later.
    #[arg(long)]
    pub churn: Option<f64>,
    /// soak: typing frames per second (10).
    #[arg(long)]
    pub typing: Option<f64>,
    /// history: messages in the conversation (100000).
    #[arg(long)]
    pub history_messages: Option<u64>,
    /// cold-start: messages in the database (1000000; cached under --cache-dir).
    #[arg(long)]
    pub cold_messages: Option<u64>,
    /// cold-start: timed starts of each kind (3).
    #[arg(long)]
    pub runs: Option<usize>,
    /// The server's --frame-rate, with the senders paced just under it (dm-throughput and
    /// sustained: 200; others: the server's default, 20).
    #[arg(long)]
    pub frame_rate: Option<u32>,
    /// Most unacknowledged sends per connection (dm: 8; dm-throughput, sustained: 16).
    #[arg(long)]
    pub window: Option<usize>,
    /// Message body size in bytes (100).
    #[arg(long)]
    pub body_bytes: Option<usize>,

    /// dm: extra authenticated WebSockets opened after the load, for memory per connection.
    #[arg(long = "idle-connections", default_value_t = 500)]
    pub idle_connections: usize,
    /// Room scenarios: users signed up, all in the fan-out room.
    #[arg(long, default_value_t = 1000)]
    pub room_members: usize,
    #[arg(long, default_value_t = 4)]
    pub fanout_senders: usize,
    /// room-fanout: messages per second from all senders together.
    #[arg(long, default_value_t = 10)]
    pub fanout_rate: usize,
    #[arg(long, default_value_t = 300)]
    pub fanout_messages: usize,
    #[arg(long, default_value_t = 100)]
    pub throughput_senders: usize,
    #[arg(long, default_value_t = 20000)]
    pub throughput_messages: usize,
    /// commit-cost: DMs, and as many room sends.
    #[arg(long, default_value_t = 500)]
    pub commit_messages: usize,
}

/// What a scenario runs with.
pub struct Ctx {
    pub cli: Cli,
    pub bin: PathBuf,
    pub work_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub fsync: Fsync,
    /// Run as part of the suite (its sizes apply where no flag says otherwise).
    pub suite: bool,
}

impl Ctx {
    pub fn launch(&self, max_connections: usize, frame_rate: Option<u32>) -> Launch {
        Launch {
            bin: self.bin.clone(),
            max_connections,
            frame_rate,
        }
    }

    /// A long scenario's duration: `full` alone, 120 s in the suite, 60 s in a suite run that
    /// also runs the baseline (so both fit in about 10 minutes).
    pub fn long(&self, full: u64) -> u64 {
        match (self.suite, self.cli.baseline.is_some()) {
            (false, _) => full,
            (true, false) => 120,
            (true, true) => 60,
        }
    }

    /// A server on a fresh copy of a cached fixture directory, and the fixture's users.
    pub fn start_prepared(
        &self,
        spec: &fixture::Spec,
        launch: &Launch,
    ) -> Fallible<(Server, Vec<User>)> {
        let (dir, users) = fixture::cached(&self.cache_dir, spec, launch)?;
        let temp = temp_dir(&self.work_dir, "confab-bench-")?;
        fixture::copy(&dir, temp.path())?;
        let mut server = Server::start(launch, temp.path(), false)?;
        server.keep(temp);
        Ok((server, users))
    }
}

pub async fn run_one(ctx: &Ctx, scenario: Scenario) -> Fallible<Report> {
    let mut report = match scenario {
        Scenario::IdleStart => sockets::idle_start(ctx).await,
        Scenario::IdleSockets => sockets::idle_sockets(ctx).await,
        Scenario::DmCpu => dm::dm_cpu(ctx).await,
        Scenario::DmThroughput => dm::dm_throughput(ctx).await,
        Scenario::Sustained => dm::sustained(ctx).await,
        Scenario::Latency => dm::latency(ctx).await,
        Scenario::ConnectStorm => sockets::connect_storm(ctx).await,
        Scenario::History => history::history(ctx).await,
        Scenario::ColdStart => history::cold_start(ctx).await,
        Scenario::Soak => sockets::soak(ctx).await,
        other => Err(format!("{} is not a suite scenario", other.name())),
    }?;
    report.bin = ctx.bin.display().to_string();
    Ok(report)
}

async fn run(cli: Cli) -> Fallible<bool> {
    let work_dir = cli.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let fsync = report::fsync_probe(&work_dir)?;
    let mut ok = true;
    for &scenario in &cli.scenario {
        match scenario {
            Scenario::Dm => legacy::run_dm(legacy::Args::from(&cli, scenario)).await?,
            Scenario::RoomFanout
            | Scenario::RoomThroughput
            | Scenario::CommitCost
            | Scenario::Rooms => legacy::run_rooms(legacy::Args::from(&cli, scenario)).await?,
            Scenario::Suite => ok &= suite::run(&cli, &work_dir, fsync).await?,
            _ => {
                let bins: Vec<PathBuf> = cli.baseline.iter().chain([&cli.bin]).cloned().collect();
                for bin in bins {
                    let ctx = Ctx {
                        cli: cli.clone(),
                        bin,
                        work_dir: work_dir.clone(),
                        cache_dir: cli.cache_dir.clone(),
                        fsync,
                        suite: false,
                    };
                    let report = run_one(&ctx, scenario).await?;
                    report.print();
                    ok &= report.problems.is_empty();
                }
            }
        }
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("loadtest: some scenarios reported problems (see PROBLEM lines)");
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("loadtest failed: {message}");
            ExitCode::FAILURE
        }
    }
}
