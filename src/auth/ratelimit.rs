//! Login limits: failure counters per (username, address), per address and per username in
//! fixed windows, kept in a table of fixed size. The policy is in docs/PROTOCOL.md.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::limits;

/// The numbers the limiter enforces; [`Policy::LOGIN`] in the server, smaller ones in tests.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub per_pair: u32,
    pub per_addr: u32,
    pub slow_after: u32,
    pub slow_step: Duration,
    pub slow_max: Duration,
    pub window: Duration,
    pub max_keys: usize,
}

impl Policy {
    pub const LOGIN: Policy = Policy {
        per_pair: limits::LOGIN_FAILURES_PER_PAIR,
        per_addr: limits::LOGIN_FAILURES_PER_ADDR,
        slow_after: limits::LOGIN_SLOWDOWN_AFTER,
        slow_step: limits::LOGIN_SLOWDOWN_STEP,
        slow_max: limits::LOGIN_SLOWDOWN_MAX,
        window: limits::LOGIN_WINDOW,
        max_keys: limits::LOGIN_TRACKED_KEYS,
    };
}

/// Counts login attempts. An attempt is counted as a failure when it starts, so one whose
/// client hangs up still counts; a correct password takes its count back.
pub struct Limiter {
    policy: Policy,
    /// Every counter behind one std `Mutex`, so an attempt is checked against all limits and
    /// counted in one step (concurrent attempts cannot overshoot). Held for a few map
    /// operations, never across `.await`.
    table: Mutex<Table>,
    /// Keys are stored as keyed 64-bit hashes: fixed-size whatever the client sent, and with a
    /// per-process key a client cannot pick names that collide.
    keys: RandomState,
}

/// The counters of one started attempt, to settle it when its outcome is known.
#[derive(Debug)]
pub struct Attempt {
    pair: u64,
    addr: u64,
    user: u64,
    /// `Some(retry_after)` if the address is over its limit and this is the username's one
    /// try from it: only a correct password may get through.
    pub address_limited: Option<Duration>,
    /// How long to wait before answering a failure, because the username is under attack.
    pub slowdown: Duration,
}

/// The three kinds of counter, hashed with their kind so they cannot collide with each other.
#[derive(Hash)]
enum Key<'a> {
    Pair(&'a str, IpAddr),
    Addr(IpAddr),
    User(&'a str),
}

struct Window {
    start: Instant,
    count: u32,
}

/// A map of windows plus their keys in the order they were created. Windows are all the same
/// length, so that order is also expiry order: expired windows are popped from the front (each
/// key is pushed once and popped once: amortized O(1)), and when the table is full the oldest
/// window makes room. Every entry has exactly one record in `order`, because `now` is read
/// under the lock (so records are pushed in time order) and expired entries are removed before
/// any entry is touched.
#[derive(Default)]
struct Table {
    windows: HashMap<u64, Window>,
    order: VecDeque<(u64, Instant)>,
}

impl Limiter {
    pub fn new(policy: Policy) -> Limiter {
        Limiter {
            policy,
            table: Mutex::new(Table::default()),
            keys: RandomState::new(),
        }
    }

    /// Checks an attempt for `username` (already normalized) from `addr` against the limits
    /// and counts it as a failure; `Err(retry_after)` if it is refused.
    pub fn begin(&self, username: &str, addr: IpAddr) -> Result<Attempt, Duration> {
        let addr = network(addr);
        let (pair, addr, user) = (
            self.keys.hash_one(Key::Pair(username, addr)),
            self.keys.hash_one(Key::Addr(addr)),
            self.keys.hash_one(Key::User(username)),
        );
        let p = &self.policy;
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        table.expire(now, p.window);
        let (pair_failures, pair_retry) = table.count(pair, now, p.window);
        let (addr_failures, addr_retry) = table.count(addr, now, p.window);
        let (user_failures, _) = table.count(user, now, p.window);
        if pair_failures >= p.per_pair {
            return Err(pair_retry);
        }
        let address_limited = if addr_failures < p.per_addr {
            None
        } else if pair_failures == 0 {
            Some(addr_retry)
        } else {
            return Err(addr_retry);
        };
        for key in [pair, addr, user] {
            table.bump(key, now, p.max_keys);
        }
        let beyond = (user_failures + 1).saturating_sub(p.slow_after);
        let slowdown = p.slow_step.saturating_mul(beyond).min(p.slow_max);
        Ok(Attempt {
            pair,
            addr,
            user,
            address_limited,
            slowdown,
        })
    }

    /// The password was right: the pair's failures are forgiven, and this attempt no longer
    /// counts against the address or the username.
    pub fn succeeded(&self, attempt: &Attempt) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(window) = table.windows.get_mut(&attempt.pair) {
            window.count = 0;
        }
        table.take_back(&[attempt.addr, attempt.user]);
    }

    /// The attempt was never decided (the server was busy or failed): it does not count.
    pub fn release(&self, attempt: &Attempt) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.take_back(&[attempt.pair, attempt.addr, attempt.user]);
    }

    /// How many counters are kept (never more than the policy's `max_keys`).
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .windows
            .len()
    }
}

impl Table {
    fn expire(&mut self, now: Instant, window: Duration) {
        while let Some(&(key, start)) = self.order.front() {
            if now.duration_since(start) < window {
                break;
            }
            self.pop_front(key, start);
        }
    }

    /// Failures in the key's live window, and when that window ends.
    fn count(&self, key: u64, now: Instant, window: Duration) -> (u32, Duration) {
        match self.windows.get(&key) {
            Some(w) => {
                let left = window.saturating_sub(now.duration_since(w.start));
                (w.count, left.max(Duration::from_secs(1)))
            }
            None => (0, Duration::ZERO),
        }
    }

    fn bump(&mut self, key: u64, now: Instant, max_keys: usize) {
        if let Some(window) = self.windows.get_mut(&key) {
            window.count = window.count.saturating_add(1);
            return;
        }
        while self.windows.len() >= max_keys.max(1) {
            let Some((old, start)) = self.order.front().copied() else {
                break;
            };
            self.pop_front(old, start);
        }
        self.windows.insert(
            key,
            Window {
                start: now,
                count: 1,
            },
        );
        self.order.push_back((key, now));
    }

    fn pop_front(&mut self, key: u64, start: Instant) {
        self.order.pop_front();
        if self.windows.get(&key).is_some_and(|w| w.start == start) {
            self.windows.remove(&key);
        }
    }

    fn take_back(&mut self, keys: &[u64]) {
        for key in keys {
            if let Some(window) = self.windows.get_mut(key) {
                window.count = window.count.saturating_sub(1);
            }
        }
    }
}

/// The unit one client controls: an IPv4 address, or the /64 an IPv6 address is in (a single
/// host is usually given a whole /64).
fn network(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !u128::from(u64::MAX);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    fn policy() -> Policy {
        Policy {
            per_pair: 3,
            per_addr: 5,
            slow_after: 4,
            slow_step: Duration::from_millis(100),
            slow_max: Duration::from_millis(250),
            window: Duration::from_secs(60),
            max_keys: 1000,
        }
    }

    #[test]
    fn a_pair_is_limited_after_its_failures_and_nobody_else_is() {
        let limiter = Limiter::new(policy());
        for _ in 0..3 {
            limiter.begin("carol", A).expect("allowed");
        }
        let retry = limiter.begin("carol", A).expect_err("limited");
        assert!((Duration::from_secs(1)..=Duration::from_secs(60)).contains(&retry));
        // Carol from elsewhere, and someone else from the same address, are not.
        let elsewhere = limiter.begin("carol", B).expect("carol from B");
        assert_eq!(elsewhere.address_limited, None);
        limiter.begin("dave", A).expect("dave from A");
    }

    #[test]
    fn a_success_forgives_the_pair() {
        let limiter = Limiter::new(policy());
        for _ in 0..2 {
            limiter.begin("carol", A).expect("allowed");
        }
        let right = limiter.begin("carol", A).expect("allowed");
        limiter.succeeded(&right);
        for _ in 0..3 {
            limiter.begin("carol", A).expect("allowed again");
        }
        assert!(limiter.begin("carol", A).is_err());
    }

    #[test]
    fn an_undecided_attempt_is_given_back() {
        let limiter = Limiter::new(policy());
        for _ in 0..10 {
            let attempt = limiter.begin("carol", A).expect("allowed");
            limiter.release(&attempt);
        }
        limiter.begin("carol", A).expect("still allowed");
    }

    #[test]
    fn a_noisy_address_keeps_one_try_per_username() {
        let limiter = Limiter::new(policy());
        for n in 0..5 {
            let attempt = limiter.begin(&format!("guess{n}"), A).expect("allowed");
            assert_eq!(attempt.address_limited, None);
        }
        // Over the address limit: a username that has not failed from here gets one try that
        // only a right password can pass; a second try is refused.
        let one_try = limiter.begin("dave", A).expect("dave's one try");
        assert!(one_try.address_limited.is_some());
        assert!(limiter.begin("dave", A).is_err());
        assert!(limiter.begin("guess0", A).is_err());
        // Another address is not affected.
        let other = limiter.begin("erin", B).expect("erin from B");
        assert_eq!(other.address_limited, None);
    }

    #[test]
    fn a_username_failing_everywhere_is_slowed_not_refused() {
        let limiter = Limiter::new(policy());
        let slowdowns: Vec<Duration> = (0..8)
            .map(|n| {
                let from = IpAddr::V4(Ipv4Addr::new(198, 51, 100, n));
                limiter
                    .begin("carol", from)
                    .expect("never refused")
                    .slowdown
            })
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(slowdowns, [0, 0, 0, 0, 100, 200, 250, 250].map(ms));
    }

    #[test]
    fn windows_expire() {
        let limiter = Limiter::new(Policy {
            window: Duration::from_millis(100),
            ..policy()
        });
        for _ in 0..3 {
            limiter.begin("carol", A).expect("allowed");
        }
        assert!(limiter.begin("carol", A).is_err());
        std::thread::sleep(Duration::from_millis(150));
        limiter.begin("carol", A).expect("a new window");
        assert_eq!(limiter.tracked(), 3, "expired counters are dropped");
    }

    #[test]
    fn the_table_never_grows_past_its_bound() {
        let limiter = Limiter::new(Policy {
            max_keys: 50,
            ..policy()
        });
        for n in 0..=255u8 {
            let from = IpAddr::V4(Ipv4Addr::new(203, 0, 113, n));
            limiter.begin(&format!("user{n}"), from).expect("allowed");
            assert!(limiter.tracked() <= 50);
        }
        let table = limiter.table.lock().expect("lock");
        assert_eq!(table.order.len(), table.windows.len());
    }

    #[test]
    fn ipv6_hosts_in_one_64_share_a_count_and_mapped_ipv4_is_ipv4() {
        let limiter = Limiter::new(policy());
        for host in 1..=3u16 {
            let from = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 7, 0, 0, 0, host));
            limiter.begin("carol", from).expect("allowed");
        }
        let next = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 7, 0xffff, 1, 2, 3));
        assert!(limiter.begin("carol", next).is_err());

        for _ in 0..3 {
            limiter.begin("dave", A).expect("allowed");
        }
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert!(limiter.begin("dave", mapped).is_err());
    }

    #[test]
    fn racing_attempts_cannot_overshoot_a_limit() {
        let limiter = Arc::new(Limiter::new(Policy {
            per_pair: 30,
            per_addr: 1000,
            ..policy()
        }));
        let start = Arc::new(std::sync::Barrier::new(64));
        let racers: Vec<_> = (0..64)
            .map(|_| {
                let (limiter, start) = (limiter.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    limiter.begin("carol", A).is_ok()
                })
            })
            .collect();
        let allowed = racers
            .into_iter()
            .filter_map(|racer| racer.join().ok())
            .filter(|allowed| *allowed)
            .count();
        assert_eq!(allowed, 30);
    }
}
