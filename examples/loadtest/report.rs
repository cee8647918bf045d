//! What a scenario hands back: one JSON line for scripts, a human table for people, and the
//! headline figures `scripts/bench` puts in docs/BENCHMARKS.md.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::Fallible;
use crate::server::{Server, cpu_time};

/// Latencies in microseconds, 1 µs to 1 hour, three significant digits.
#[derive(Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Latency {
        Latency(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"))
    }
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        self.0.saturating_record(d.as_micros().max(1) as u64);
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn summary(&self) -> Summary {
        let ms = |us: u64| us as f64 / 1000.0;
        let q = |q: f64| ms(self.0.value_at_quantile(q));
        Summary {
            n: self.0.len(),
            p50_ms: q(0.5),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: ms(self.0.max()),
            mean_ms: self.0.mean() / 1000.0,
        }
    }
}

#[derive(Clone, Copy, Serialize)]
pub struct Summary {
    pub n: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Summary {
    pub fn line(&self) -> String {
        format!(
            "p50 {:.2} / p95 {:.2} / p99 {:.2} / p99.9 {:.2} / max {:.2} ms (n = {})",
            self.p50_ms, self.p95_ms, self.p99_ms, self.p999_ms, self.max_ms, self.n
        )
    }
}

/// CPU used by the server and by this load generator over a stretch of wall time.
#[derive(Clone, Copy, Serialize)]
pub struct CpuUse {
    pub wall_s: f64,
    pub server_s: f64,
    pub generator_s: f64,
}

pub struct CpuMeter {
    pid: String,
    server: Duration,
    generator: Duration,
    started: Instant,
}

impl CpuMeter {
    pub fn start(server: &Server) -> CpuMeter {
        CpuMeter {
            pid: server.pid(),
            server: server.cpu(),
            generator: cpu_time("self"),
            started: Instant::now(),
        }
    }

    pub fn read(&self) -> CpuUse {
        CpuUse {
            wall_s: self.started.elapsed().as_secs_f64(),
            server_s: cpu_time(&self.pid)
                .saturating_sub(self.server)
                .as_secs_f64(),
            generator_s: cpu_time("self")
                .saturating_sub(self.generator)
                .as_secs_f64(),
        }
    }
}

/// A headline figure: what the docs table shows and a before/after compares.
#[derive(Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: String,
    /// The target for it, in words, and whether this run met it.
    pub target: Option<String>,
    pub pass: Option<bool>,
}

pub fn figure(name: &str, value: f64, unit: &str) -> Figure {
    Figure {
        name: name.to_owned(),
        value,
        unit: unit.to_owned(),
        target: None,
        pass: None,
    }
}

impl Figure {
    /// "12.5 ms", or the bare number for a count.
    pub fn value_text(&self) -> String {
        if self.unit.is_empty() {
            number(self.value)
        } else {
            format!("{} {}", number(self.value), self.unit)
        }
    }

    pub fn target(mut self, text: &str, pass: bool) -> Figure {
        self.target = Some(text.to_owned());
        self.pass = Some(pass);
        self
    }
}

#[derive(Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    /// The server binary's version and git revision (from `/healthz`).
    pub server: String,
    pub bin: String,
    /// The harness's own revision.
    pub harness: String,
    pub load: String,
    /// Operations the CPU figures are counted per (messages, sockets, pages…).
    pub ops: u64,
    pub latency_of: String,
    pub latency: Option<Summary>,
    pub throughput_per_s: Option<f64>,
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
    pub cpu: Option<CpuUse>,
    pub server_cpu_s_per_1000: Option<f64>,
    pub generator_cpu_s_per_1000: Option<f64>,
    pub figures: Vec<Figure>,
    /// Scenario-specific lines (name, value) for the table and the JSON.
    pub details: Vec<(String, String)>,
    /// Broken expectations: missing acks, failed connects, closed sockets.
    pub problems: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str, server: &Server, version: &str, load: String) -> Report {
        let (rss, peak) = server.memory().unwrap_or((0, 0));
        Report {
            scenario: scenario.to_owned(),
            server: version.to_owned(),
            bin: String::new(),
            harness: harness_revision(),
            load,
            ops: 0,
            latency_of: String::new(),
            latency: None,
            throughput_per_s: None,
            rss_kib: rss,
            peak_rss_kib: peak,
            cpu: None,
            server_cpu_s_per_1000: None,
            generator_cpu_s_per_1000: None,
            figures: Vec::new(),
            details: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Reads the server's memory now.
    pub fn memory(&mut self, server: &Server) {
        if let Ok((rss, peak)) = server.memory() {
            self.rss_kib = rss;
            self.peak_rss_kib = peak;
        }
    }

    pub fn cpu(&mut self, cpu: CpuUse, ops: u64) {
        self.ops = ops;
        self.cpu = Some(cpu);
        let per = |s: f64| s * 1000.0 / ops.max(1) as f64;
        self.server_cpu_s_per_1000 = Some(per(cpu.server_s));
        self.generator_cpu_s_per_1000 = Some(per(cpu.generator_s));
    }

    pub fn detail(&mut self, name: &str, value: impl Into<String>) {
        self.details.push((name.to_owned(), value.into()));
    }

    /// The JSON line, then the table.
    pub fn print(&self) {
        let json = serde_json::to_string(self).unwrap_or_default();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{json}");
        let _ = writeln!(out, "{}", self.table());
        let _ = out.flush();
    }

    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = vec![
            ("server".into(), format!("{} ({})", self.server, self.bin)),
            ("harness".into(), self.harness.clone()),
            ("load".into(), self.load.clone()),
        ];
        if let Some(l) = &self.latency {
            rows.push((format!("latency: {}", self.latency_of), l.line()));
        }
        if let Some(t) = self.throughput_per_s {
            rows.push(("throughput".into(), format!("{} /s", thousands(t))));
        }
        rows.push((
            "server RSS".into(),
            format!(
                "{:.1} MB (peak {:.1} MB)",
                mb(self.rss_kib),
                mb(self.peak_rss_kib)
            ),
        ));
        if let (Some(cpu), Some(s), Some(g)) = (
            self.cpu,
            self.server_cpu_s_per_1000,
            self.generator_cpu_s_per_1000,
        ) {
            rows.push((
                "CPU per 1,000 ops".into(),
                format!(
                    "server {s:.3} s, load generator {g:.3} s (of {} ops)",
                    thousands(self.ops as f64)
                ),
            ));
            rows.push((
                "CPU in all".into(),
                format!(
                    "server {:.2} s ({:.0} % of a core), load generator {:.2} s ({:.0} %), \
                     over {:.1} s",
                    cpu.server_s,
                    100.0 * cpu.server_s / cpu.wall_s.max(1e-9),
                    cpu.generator_s,
                    100.0 * cpu.generator_s / cpu.wall_s.max(1e-9),
                    cpu.wall_s
                ),
            ));
        }
        for (name, value) in &self.details {
            rows.push((name.clone(), value.clone()));
        }
        for f in &self.figures {
            let verdict = match (&f.target, f.pass) {
                (Some(t), Some(pass)) => {
                    format!("   target {t}: {}", if pass { "PASS" } else { "FAIL" })
                }
                _ => String::new(),
            };
            rows.push((
                format!("» {}", f.name),
                format!("{}{verdict}", f.value_text()),
            ));
        }
        for p in &self.problems {
            rows.push(("PROBLEM".into(), p.clone()));
        }
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut text = format!("── {} ──\n", self.scenario);
        for (k, v) in rows {
            text.push_str(&format!("  {k:<width$}  {v}\n"));
        }
        text
    }
}

pub fn mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

/// 12345.6 → "12,346"; small numbers keep their decimals.
pub fn thousands(v: f64) -> String {
    let rounded = v.round() as i64;
    let digits = rounded.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0 { format!("-{out}") } else { out }
}

/// A figure with as many decimals as it deserves.
pub fn number(v: f64) -> String {
    if v == v.round() && v.abs() < 1e15 {
        return thousands(v);
    }
    match v.abs() {
        a if a >= 1000.0 => thousands(v),
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

/// `git describe` of the tree the harness runs from: short revision, `-dirty` if changed.
pub fn harness_revision() -> String {
    static REV: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    REV.get_or_init(|| {
        let run = |args: &[&str]| {
            std::process::Command::new("git")
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        let rev = run(&["rev-parse", "--short=10", "HEAD"]).unwrap_or_else(|| "unknown".into());
        let dirty =
            run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        if dirty { format!("{rev}-dirty") } else { rev }
    })
    .clone()
}

/// This disk's fsync latency: the floor under every durable write.
#[derive(Clone, Copy, Serialize)]
pub struct Fsync {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The same disk flushing what one small redb commit writes (`COMMIT_PAGES` pages at
    /// scattered offsets, then `fdatasync`): what a durable send really waits for, since a
    /// virtual disk's flush costs about as much per scattered page as for a whole 4 KiB fsync.
    pub commit: Flush,
}

/// p50 and p99 of one kind of flush, in ms.
#[derive(Clone, Copy, Serialize)]
pub struct Flush {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Pages the smallest redb commit of a DM send writes, as `strace` of the writer shows
/// (docs/BENCHMARKS.md): the header, a leaf and a root for each table the send changes, and
/// redb's own records of the pages the commit allocated and freed; none of them adjacent.
const COMMIT_PAGES: u64 = 14;

/// Flushes timed by each probe.
const PROBE_FLUSHES: usize = 300;

/// Writes 4 KiB and fsyncs it, 300 times, in a file in `dir` (the data directories' disk);
/// then times 300 commit-shaped flushes in a 4 MiB file there.
pub fn fsync_probe(dir: &Path) -> Fallible<Fsync> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let failed = |e: std::io::Error| format!("fsync probe: {e}");
    let file = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    let mut latency = Latency::default();
    let block = [0x5a_u8; 4096];
    let mut f = file.as_file();
    for _ in 0..PROBE_FLUSHES {
        let started = Instant::now();
        f.write_all(&block).map_err(failed)?;
        f.sync_all().map_err(failed)?;
        latency.record(started.elapsed());
    }
    let s = latency.summary();
    let commit = commit_probe(dir).map_err(failed)?;
    let probe = Fsync {
        p50_ms: s.p50_ms,
        p99_ms: s.p99_ms,
        max_ms: s.max_ms,
        commit,
    };
    println!(
        "{}",
        serde_json::json!({"scenario": "fsync-probe", "dir": dir.display().to_string(),
                           "fsyncs": PROBE_FLUSHES, "p50_ms": probe.p50_ms, "p99_ms": probe.p99_ms,
                           "max_ms": probe.max_ms, "commit_pages": COMMIT_PAGES,
                           "commit_p50_ms": commit.p50_ms, "commit_p99_ms": commit.p99_ms})
    );
    println!(
        "── fsync probe ──\n  {PROBE_FLUSHES} × (write 4 KiB + fsync) in {}: p50 {:.2} ms, p99 {:.2} ms, \
         max {:.2} ms\n  {PROBE_FLUSHES} × ({COMMIT_PAGES} scattered 4 KiB pages + fdatasync), a small redb \
         commit's flush: p50 {:.2} ms, p99 {:.2} ms\n",
        dir.display(),
        probe.p50_ms,
        probe.p99_ms,
        probe.max_ms,
        commit.p50_ms,
        commit.p99_ms
    );
    Ok(probe)
}

/// Overwrites `COMMIT_PAGES` pages spread over a 4 MiB file (the size of a small chat
/// database's hot pages), then `fdatasync`s, `PROBE_FLUSHES` times.
fn commit_probe(dir: &Path) -> std::io::Result<Flush> {
    use std::os::unix::fs::FileExt;
    const FILE_PAGES: u64 = 1024;
    let file = tempfile::NamedTempFile::new_in(dir)?;
    let f = file.as_file();
    f.write_all_at(&vec![0xa5_u8; (FILE_PAGES * 4096) as usize], 0)?;
    f.sync_all()?;
    let block = [0x5a_u8; 4096];
    let mut latency = Latency::default();
    // A fixed stride through the file: deterministic, and no two pages of a flush adjacent.
    let mut page = 0;
    for _ in 0..PROBE_FLUSHES {
        let started = Instant::now();
        for _ in 0..COMMIT_PAGES {
            page = (page + 389) % FILE_PAGES;
            f.write_all_at(&block, page * 4096)?;
        }
        f.sync_data()?;
        latency.record(started.elapsed());
    }
    let s = latency.summary();
    Ok(Flush {
        p50_ms: s.p50_ms,
        p99_ms: s.p99_ms,
    })
}
