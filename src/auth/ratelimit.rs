//! Fixed-window counters for failed logins, per username and per client address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts failures per key in a fixed window. A std `Mutex`: held only for a map lookup,
/// never across `.await`.
pub struct Limiter {
    max: u32,
    window: Duration,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Keys beyond this many trigger a sweep of expired windows, so the map stays bounded.
const SWEEP_AT: usize = 10_000;

impl Limiter {
    pub fn new(max: u32, window: Duration) -> Limiter {
        Limiter {
            max,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` if `key` has used up its failures for this window.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        match windows.get(key) {
            Some(&(start, count)) if count >= self.max && start.elapsed() < self.window => {
                Err(self
                    .window
                    .saturating_sub(start.elapsed())
                    .max(Duration::from_secs(1)))
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, key: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= SWEEP_AT {
            let window = self.window;
            windows.retain(|_, (start, _)| start.elapsed() < window);
        }
        let entry = windows.entry(key.to_owned()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }

    pub fn reset(&self, key: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_after_max_failures() {
        let limiter = Limiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.check("alice").is_ok());
            limiter.record_failure("alice");
        }
        let retry = limiter.check("alice").expect_err("limited");
        assert!(retry <= Duration::from_secs(60));
        assert!(limiter.check("bob").is_ok());
        limiter.reset("alice");
        assert!(limiter.check("alice").is_ok());
    }
}
