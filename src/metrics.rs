//! What the server counts about itself, and its Prometheus exposition (`GET /metrics`).
//!
//! Sits at the ground floor beside `config`: the hub and auth count into it, and it imports
//! nothing of theirs. Counting is atomics only, so the writer's hot path never takes a lock;
//! values owned elsewhere (open sockets, queue depth, disk) are read when scraped and passed in
//! as a [`Live`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

/// The media type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric name starts with this.
const PREFIX: &str = "confab";

/// Upper bounds of the commit batch size buckets: powers of two up to the writer's batch.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
/// Upper bounds of the commit time buckets, in seconds: an fsync on an SSD is ~1 ms, on a
/// busy disk or SD card tens to hundreds.
const COMMIT_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Counters and histograms, fed as things happen. Shared behind an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    /// Messages (sends, and accepted chat requests' first messages) durably committed.
    pub messages_committed: Counter,
    /// Writes in each committed writer transaction.
    pub commit_batch: AtomicHistogram,
    /// Time to apply and commit one writer transaction, fsync included.
    pub commit_seconds: AtomicHistogram,
    /// WebSocket frames refused by the per-connection rate limit.
    pub frames_rate_limited: Counter,
    /// Connections closed with 1008 because they did not read their frames fast enough.
    pub slow_consumers: Counter,
    /// Logins refused for a wrong username or password.
    pub logins_failed: Counter,
    /// Logins refused by the login rate limits (429).
    pub logins_rate_limited: Counter,
    /// The fixed metrics above, registered once.
    registry: Registry,
}

/// Values owned by other parts of the server, read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Live {
    pub open_websockets: u64,
    pub online_users: u64,
    pub writer_queue: u64,
    pub database_bytes: Option<u64>,
    pub disk_free_bytes: Option<u64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let metrics = Metrics {
            started: Instant::now(),
            messages_committed: Counter::default(),
            commit_batch: AtomicHistogram::new(&BATCH_BUCKETS, 1.0),
            // Observed in microseconds, so the sum stays an integer.
            commit_seconds: AtomicHistogram::new(&COMMIT_BUCKETS, 1e-6),
            frames_rate_limited: Counter::default(),
            slow_consumers: Counter::default(),
            logins_failed: Counter::default(),
            logins_rate_limited: Counter::default(),
            registry: Registry::with_prefix(PREFIX),
        };
        metrics.register_fixed()
    }

    fn register_fixed(mut self) -> Metrics {
        let counters = [
            (
                "messages_committed",
                "Messages durably committed",
                &self.messages_committed,
            ),
            (
                "frames_rate_limited",
                "WebSocket frames refused by the per-connection rate limit",
                &self.frames_rate_limited,
            ),
            (
                "slow_consumers_closed",
                "WebSockets closed (1008) for not reading their frames fast enough",
                &self.slow_consumers,
            ),
            (
                "logins_failed",
                "Logins refused for a wrong username or password",
                &self.logins_failed,
            ),
            (
                "logins_rate_limited",
                "Logins refused by the login rate limits",
                &self.logins_rate_limited,
            ),
        ];
        for (name, help, counter) in counters {
            self.registry.register(name, help, counter.clone());
        }
        self.registry.register(
            "commit_batch_size",
            "Writes per committed writer transaction",
            self.commit_batch.clone(),
        );
        self.registry.register_with_unit(
            "commit",
            "Time to apply and commit one writer transaction, fsync included",
            Unit::Seconds,
            self.commit_seconds.clone(),
        );
        self
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records one writer commit of `writes` operations that took `took`.
    pub fn observe_commit(&self, writes: usize, took: Duration) {
        self.commit_batch.observe(writes as u64);
        self.commit_seconds
            .observe(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }

    /// The whole exposition: the fixed metrics, then `live`'s gauges.
    pub fn render(&self, live: &Live) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail, and the encoder fails only on a failed write.
        let _ = encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &self.live_registry(live)))
            .and_then(|()| encode_eof(&mut out));
        out
    }

    /// A registry of constant gauges, built per scrape from values read just now.
    fn live_registry(&self, live: &Live) -> Registry {
        let mut r = Registry::with_prefix(PREFIX);
        let gauge = |v: u64| ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
        r.register(
            "websockets_open",
            "WebSocket connections open now",
            gauge(live.open_websockets),
        );
        r.register(
            "users_online",
            "People with at least one open connection",
            gauge(live.online_users),
        );
        r.register(
            "writer_queue_depth",
            "Writes waiting for the single writer",
            gauge(live.writer_queue),
        );
        r.register_with_unit(
            "uptime",
            "Time since the server started",
            Unit::Seconds,
            gauge(self.uptime().as_secs()),
        );
        if let Some(bytes) = live.database_bytes {
            r.register_with_unit(
                "database_size",
                "Size of the database file",
                Unit::Bytes,
                gauge(bytes),
            );
        }
        if let Some(bytes) = live.disk_free_bytes {
            r.register_with_unit(
                "disk_free",
                "Free space for the server on the data directory's filesystem",
                Unit::Bytes,
                gauge(bytes),
            );
        }
        r
    }
}

/// A histogram with fixed buckets whose `observe` is three relaxed atomic adds, for the
/// writer thread; prometheus-client's own histogram takes a mutex. Values are integers in
/// some unit; `scale` turns them into the exposed unit (e.g. microseconds into seconds).
#[derive(Debug, Clone)]
pub struct AtomicHistogram {
    inner: Arc<HistogramInner>,
}

#[derive(Debug)]
struct HistogramInner {
    /// Upper bounds in exposed units, ascending; the implicit last bucket is +Inf.
    bounds: &'static [f64],
    scale: f64,
    /// One count per bound plus +Inf; not cumulative.
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl AtomicHistogram {
    fn new(bounds: &'static [f64], scale: f64) -> AtomicHistogram {
        let buckets = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        AtomicHistogram {
            inner: Arc::new(HistogramInner {
                bounds,
                scale,
                buckets,
                sum: AtomicU64::new(0),
            }),
        }
    }

    pub fn observe(&self, value: u64) {
        let inner = &*self.inner;
        let scaled = value as f64 * inner.scale;
        let index = inner
            .bounds
            .iter()
            .position(|&bound| scaled <= bound)
            .unwrap_or(inner.bounds.len());
        inner.buckets[index].fetch_add(1, Ordering::Relaxed);
        inner.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// The count is the buckets' total, so it always agrees with the `+Inf` bucket even while
    /// the writer observes concurrently.
    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let inner = &*self.inner;
        let upper = inner.bounds.iter().copied().chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = upper
            .zip(inner.buckets.iter())
            .map(|(bound, count)| (bound, count.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|&(_, n)| n).sum();
        let sum = inner.sum.load(Ordering::Relaxed) as f64 * inner.scale;
        (sum, count, buckets)
    }
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_by_upper_bound_and_sums_in_exposed_units() {
        let metrics = Metrics::new();
        metrics.observe_commit(1, Duration::from_micros(400));
        metrics.observe_commit(3, Duration::from_millis(3));
        metrics.observe_commit(300, Duration::from_secs(5));
        let (sum, count, buckets) = metrics.commit_seconds.snapshot();
        assert_eq!(count, 3);
        assert!((sum - 5.0034).abs() < 1e-9, "{sum}");
        assert_eq!(buckets[0], (0.0005, 1));
        assert_eq!(buckets[3], (0.005, 1));
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 1)));
        let (_, _, sizes) = metrics.commit_batch.snapshot();
        assert_eq!(sizes[0].1 + sizes[2].1 + sizes[9].1, 3);
    }

    #[test]
    fn renders_every_metric_once_and_ends_with_eof() {
        let metrics = Metrics::new();
        metrics.messages_committed.inc_by(7);
        let live = Live {
            open_websockets: 2,
            database_bytes: Some(4096),
            ..Live::default()
        };
        let text = metrics.render(&live);
        assert!(
            text.contains("confab_messages_committed_total 7\n"),
            "{text}"
        );
        assert!(text.contains("confab_websockets_open 2\n"), "{text}");
        assert!(text.contains("confab_database_size_bytes 4096\n"), "{text}");
        assert!(
            text.contains("confab_commit_seconds_bucket{le=\"+Inf\"} 0\n"),
            "{text}"
        );
        assert!(!text.contains("disk_free"), "unknown values are left out");
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# EOF").count(), 1);
    }
}
