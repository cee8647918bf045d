//! The suite: issue 11's scenarios at sizes that fit in about 10 minutes, each run with the
//! baseline binary (if any) and then with `--bin`, one after the other on the same machine, and
//! the generated block of docs/BENCHMARKS.md.

use std::path::Path;
use std::time::Instant;

use crate::report::{Figure, Fsync, Report, harness_revision, thousands};
use crate::{Cli, Ctx, Fallible, Scenario, run_one};

/// In the order the docs table lists them.
const PLAN: [Scenario; 10] = [
    Scenario::IdleStart,
    Scenario::IdleSockets,
    Scenario::DmCpu,
    Scenario::DmThroughput,
    Scenario::Sustained,
    Scenario::Latency,
    Scenario::ConnectStorm,
    Scenario::History,
    Scenario::ColdStart,
    Scenario::Soak,
];

pub const BEGIN: &str = "<!-- bench:begin -->";
pub const END: &str = "<!-- bench:end -->";

/// One scenario's outcome with one binary.
type Outcome = Result<Report, String>;

pub async fn run(cli: &Cli, work_dir: &Path, fsync: Fsync) -> Fallible<bool> {
    let started = Instant::now();
    let mut rows: Vec<(Scenario, Option<Outcome>, Outcome)> = Vec::new();
    let mut ok = true;
    let ctx_for = |bin: &Path| Ctx {
        cli: cli.clone(),
        bin: bin.to_owned(),
        work_dir: work_dir.to_owned(),
        cache_dir: cli.cache_dir.clone(),
        fsync,
        suite: true,
    };
    let announce = |scenario: Scenario, bin: &Path| {
        // What the previous scenario left dirty (a sustained run writes hundreds of MB) is
        // written back now, not during this one.
        let _ = std::process::Command::new("sync").status();
        std::thread::sleep(std::time::Duration::from_secs(1));
        println!(
            "suite: {} with {} ({:.0} s into the run)",
            scenario.name(),
            bin.display(),
            started.elapsed().as_secs_f64()
        );
    };
    for scenario in PLAN {
        let (before, after) = match (&cli.baseline, scenario) {
            (Some(baseline), Scenario::IdleStart) => {
                announce(scenario, baseline);
                announce(scenario, &cli.bin);
                let (a, b) =
                    crate::sockets::idle_start_pair(&ctx_for(baseline), &ctx_for(&cli.bin)).await;
                (Some(a), b)
            }
            (baseline, _) => {
                let mut before = None;
                if let Some(bin) = baseline {
                    announce(scenario, bin);
                    before = Some(run_one(&ctx_for(bin), scenario).await);
                    show(scenario, before.as_ref());
                }
                announce(scenario, &cli.bin);
                (before, run_one(&ctx_for(&cli.bin), scenario).await)
            }
        };
        if scenario == Scenario::IdleStart {
            show(scenario, before.as_ref());
        }
        show(scenario, Some(&after));
        ok &= after.as_ref().is_ok_and(|r| r.problems.is_empty());
        rows.push((scenario, before, after));
    }
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let block = markdown(cli, fsync, &rows, minutes);
    println!("\n{block}");
    if let Some(doc) = &cli.write_doc {
        write_block(doc, &block)?;
        println!("suite: wrote the results into {}", doc.display());
    }
    println!("suite: {minutes:.1} minutes");
    Ok(ok)
}

fn show(scenario: Scenario, outcome: Option<&Outcome>) {
    match outcome {
        Some(Ok(report)) => report.print(),
        Some(Err(e)) => println!("── {} ──\n  FAILED: {e}\n", scenario.name()),
        None => {}
    }
}

fn value(f: &Figure) -> String {
    f.value_text()
}

fn verdict(f: &Figure) -> &'static str {
    match f.pass {
        Some(true) => "PASS",
        Some(false) => "**FAIL**",
        None => "",
    }
}

fn markdown(
    cli: &Cli,
    fsync: Fsync,
    rows: &[(Scenario, Option<Outcome>, Outcome)],
    minutes: f64,
) -> String {
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let server_of = |o: &Outcome| o.as_ref().ok().map(|r| r.server.clone());
    let version = rows
        .iter()
        .find_map(|(_, _, after)| server_of(after))
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = String::new();
    out.push_str(BEGIN);
    out.push_str("\n<!-- Written by scripts/bench; everything up to bench:end is replaced on the next run. -->\n\n");
    out.push_str(&format!(
        "Suite run {date} (UTC), harness `{}`, server `{version}` (`{}`)",
        harness_revision(),
        cli.bin.display()
    ));
    if let Some(baseline) = &cli.baseline {
        let base = rows
            .iter()
            .find_map(|(_, before, _)| before.as_ref().and_then(server_of))
            .unwrap_or_else(|| "?".into());
        out.push_str(&format!(", baseline `{base}` (`{}`)", baseline.display()));
    }
    out.push_str(&format!(
        "; {cores} cores shared by server and load generator; fsync probe p50 {:.2} ms, p99 \
         {:.2} ms (a small commit's flush: p50 {:.2} ms, p99 {:.2} ms); {minutes:.1} minutes in \
         all.\n\n",
        fsync.p50_ms, fsync.p99_ms, fsync.commit.p50_ms, fsync.commit.p99_ms
    ));
    let baseline = cli.baseline.is_some();
    if baseline {
        out.push_str(
            "| scenario | figure | baseline | this | this / baseline | target | result |\n",
        );
        out.push_str("|---|---|---|---|---|---|---|\n");
    } else {
        out.push_str("| scenario | figure | measured | target | result |\n");
        out.push_str("|---|---|---|---|---|\n");
    }
    for (scenario, before, after) in rows {
        let name = scenario.name();
        let report = match after {
            Ok(r) => r,
            Err(e) => {
                let e = e.replace('|', "/");
                out.push_str(&if baseline {
                    format!("| {name} | failed: {e} | | | | | |\n")
                } else {
                    format!("| {name} | failed: {e} | | | |\n")
                });
                continue;
            }
        };
        for (i, f) in report.figures.iter().enumerate() {
            let target = f.target.clone().unwrap_or_default();
            if baseline {
                let old = before
                    .as_ref()
                    .and_then(|b| b.as_ref().ok())
                    .and_then(|b| b.figures.get(i))
                    .filter(|b| b.name == f.name);
                let (old_value, ratio) = match old {
                    Some(o) if o.value != 0.0 => (value(o), format!("{:.2}×", f.value / o.value)),
                    Some(o) => (value(o), String::new()),
                    None => ("—".into(), String::new()),
                };
                out.push_str(&format!(
                    "| {name} | {} | {old_value} | {} | {ratio} | {target} | {} |\n",
                    f.name,
                    value(f),
                    verdict(f)
                ));
            } else {
                out.push_str(&format!(
                    "| {name} | {} | {} | {target} | {} |\n",
                    f.name,
                    value(f),
                    verdict(f)
                ));
            }
        }
        if !report.problems.is_empty() {
            let problems = report.problems.join("; ").replace('|', "/");
            out.push_str(&if baseline {
                format!("| {name} | problems | | {problems} | | | |\n")
            } else {
                format!("| {name} | problems | {problems} | | |\n")
            });
        }
    }
    out.push_str("\nPer scenario (with --bin): the load, latency, throughput, the server's RSS at the end, and CPU seconds per 1,000 operations on each side:\n\n");
    out.push_str("| scenario | load | latency p50 / p99 / p99.9 / max | throughput | RSS | CPU s / 1,000 ops: server, load generator |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for (scenario, _, after) in rows {
        let Ok(r) = after else { continue };
        let latency = r.latency.map_or_else(String::new, |l| {
            format!(
                "{}: {:.2} / {:.2} / {:.2} / {:.2} ms",
                r.latency_of, l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms
            )
        });
        let cpu = match (r.server_cpu_s_per_1000, r.generator_cpu_s_per_1000) {
            (Some(s), Some(g)) => format!("{s:.3}, {g:.3}"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "| {} | {} | {latency} | {} | {:.1} MB | {cpu} |\n",
            scenario.name(),
            r.load.replace('|', "/"),
            r.throughput_per_s
                .map_or_else(String::new, |t| format!("{} /s", thousands(t))),
            crate::report::mb(r.rss_kib)
        ));
    }
    out.push('\n');
    out.push_str(END);
    out
}

/// Replaces the text between the markers (inclusive), or appends the block if there are none.
fn write_block(doc: &Path, block: &str) -> Fallible<()> {
    let text = std::fs::read_to_string(doc).map_err(|e| format!("{}: {e}", doc.display()))?;
    let new = match (text.find(BEGIN), text.find(END)) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{block}{}", &text[..a], &text[b + END.len()..])
        }
        _ => format!("{}\n\n{block}\n", text.trim_end()),
    };
    std::fs::write(doc, new).map_err(|e| format!("{}: {e}", doc.display()))
}
