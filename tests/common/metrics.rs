//! Reading `/metrics` as Prometheus would: fetched over HTTP, parsed by a Prometheus text
//! parser, every line accounted for.

// Each test binary uses only some of these helpers.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use prometheus_parse::{HistogramCount, LineInfo, Value};
use reqwest::StatusCode;

use super::{TestServer, http};

/// A `--metrics-token` for test servers.
pub const TOKEN: &str = "metrics-token-for-the-tests-0123";

/// A fresh server whose `/metrics` answers to [`TOKEN`], with extra flags.
pub fn server_with_token(args: &[&str]) -> TestServer {
    let mut all = vec!["--metrics-token", TOKEN];
    all.extend_from_slice(args);
    TestServer::start_with(&all, None)
}

/// Scrapes until `name` has the value `want` (gauges follow closes asynchronously).
pub async fn wait_for_value(server: &TestServer, name: &str, want: f64) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let scrape = scrape(server, Some(TOKEN)).await;
        if scrape.value(name) == want || Instant::now() > deadline {
            assert_eq!(scrape.value(name), want, "{name}\n{}", scrape.text);
            return scrape;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One scrape, parsed.
pub struct Scrape {
    pub text: String,
    samples: Vec<prometheus_parse::Sample>,
}

/// `GET /metrics` with `Authorization: Bearer token` (none if `None`); asserts 200 and
/// parses the body.
pub async fn scrape(server: &TestServer, token: Option<&str>) -> Scrape {
    scrape_with(&http(), server, token).await
}

pub async fn scrape_with(
    client: &reqwest::Client,
    server: &TestServer,
    token: Option<&str>,
) -> Scrape {
    let mut request = client.get(server.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("GET /metrics");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("read /metrics");
    assert_eq!(status, StatusCode::OK, "GET /metrics: {text}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    Scrape::parse(text)
}

impl Scrape {
    /// Parses `text`, failing if any line is not a sample, a descriptor or the EOF marker.
    pub fn parse(text: String) -> Scrape {
        for line in text.lines() {
            let known = match LineInfo::parse(line) {
                LineInfo::Doc { .. } | LineInfo::Type { .. } | LineInfo::Sample { .. } => true,
                LineInfo::Empty | LineInfo::Ignored => {
                    line.starts_with("# UNIT ") || line == "# EOF"
                }
            };
            assert!(known, "not a Prometheus exposition line: {line:?}\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "no EOF marker:\n{text}");
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let samples = prometheus_parse::Scrape::parse(lines)
            .expect("a Prometheus text exposition")
            .samples;
        Scrape { text, samples }
    }

    /// The value of the unlabelled sample `name` (e.g. `confab_messages_committed_total`).
    #[track_caller]
    pub fn value(&self, name: &str) -> f64 {
        let sample = self
            .samples
            .iter()
            .find(|s| s.metric == name)
            .unwrap_or_else(|| panic!("no sample {name} in\n{}", self.text));
        match sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            ref other => panic!("{name} is not a single value: {other:?}"),
        }
    }

    /// The cumulative buckets of histogram `name`.
    #[track_caller]
    pub fn histogram(&self, name: &str) -> Vec<HistogramCount> {
        let sample = self
            .samples
            .iter()
            .find(|s| s.metric == name && matches!(s.value, Value::Histogram(_)))
            .unwrap_or_else(|| panic!("no histogram {name} in\n{}", self.text));
        match &sample.value {
            Value::Histogram(buckets) => buckets.clone(),
            _ => unreachable!(),
        }
    }
}
