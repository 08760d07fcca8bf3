//! When a cached key set is fetched again: the pure rules, on times passed in (unix
//! milliseconds), so they are tested without a clock and shared by every key source.
//!
//! - A background refresh waits the issuer's `Cache-Control: max-age`, clamped between the
//!   policy's floor and ceiling (the default wait when the header is absent or unreadable).
//! - A token naming an unknown `kid` may trigger one refetch per issuer per
//!   [`RefreshPolicy::unknown_kid_interval`]: the first such token after a rotation brings the
//!   new key in, and a flood of made-up kids costs at most one fetch per interval.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// How often a key set is fetched. Build with [`RefreshPolicy::default`] and adjust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// The shortest wait between background refreshes, whatever `max-age` says.
    pub floor: Duration,
    /// The longest wait between background refreshes, whatever `max-age` says.
    pub ceiling: Duration,
    /// The wait when the issuer sends no usable `max-age`.
    pub default_max_age: Duration,
    /// The wait before retrying after a failed fetch (the last good set stays in use).
    pub retry_after_error: Duration,
    /// At most one refetch per this interval is caused by tokens with an unknown `kid`.
    pub unknown_kid_interval: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            floor: Duration::from_secs(60),
            ceiling: Duration::from_secs(3600),
            default_max_age: Duration::from_secs(300),
            retry_after_error: Duration::from_secs(10),
            unknown_kid_interval: Duration::from_secs(30),
        }
    }
}

impl RefreshPolicy {
    /// The wait before the next background refresh after a successful fetch that answered
    /// `max_age` (seconds, from `Cache-Control`).
    pub fn next_refresh(&self, max_age: Option<u64>) -> Duration {
        let wanted = max_age.map_or(self.default_max_age, Duration::from_secs);
        let ceiling = self.ceiling.max(self.floor);
        wanted.clamp(self.floor, ceiling)
    }
}

/// The `max-age` of a `Cache-Control` header value, if it has one that parses. `no-cache` and
/// `no-store` count as zero (so the floor applies).
pub fn max_age(cache_control: &str) -> Option<u64> {
    let mut found = None;
    for directive in cache_control.split(',') {
        let directive = directive.trim();
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            found = value.trim().trim_matches('"').parse::<u64>().ok();
        }
    }
    found
}

/// Lets one unknown-`kid` refetch through per interval, across threads, without a lock.
#[derive(Debug)]
pub struct UnknownKidGate {
    interval_ms: i64,
    /// When the last refetch was let through (unix ms); `i64::MIN` before the first.
    last_ms: AtomicI64,
}

impl UnknownKidGate {
    pub fn new(interval: Duration) -> Self {
        UnknownKidGate {
            interval_ms: i64::try_from(interval.as_millis()).unwrap_or(i64::MAX),
            last_ms: AtomicI64::new(i64::MIN),
        }
    }

    /// Whether a refetch may start at `now_ms`; at most one caller per interval gets `true`.
    pub fn try_claim(&self, now_ms: i64) -> bool {
        let last = self.last_ms.load(Ordering::Acquire);
        if last != i64::MIN && now_ms.saturating_sub(last) < self.interval_ms {
            return false;
        }
        self.last_ms
            .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=600"), Some(600));
        assert_eq!(max_age("MAX-AGE = 60"), Some(60));
        assert_eq!(max_age("max-age=\"120\", must-revalidate"), Some(120));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("public, no-cache, max-age=600"), Some(0));
        assert_eq!(max_age("max-age=-5"), None);
        assert_eq!(max_age("max-age=lots"), None);
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age(""), None);
    }

    #[test]
    fn refresh_wait_is_clamped_between_floor_and_ceiling() {
        let policy = RefreshPolicy::default();
        assert_eq!(policy.next_refresh(Some(600)), Duration::from_secs(600));
        assert_eq!(policy.next_refresh(Some(1)), Duration::from_secs(60));
        assert_eq!(policy.next_refresh(Some(0)), Duration::from_secs(60));
        assert_eq!(policy.next_refresh(Some(86_400)), Duration::from_secs(3600));
        assert_eq!(policy.next_refresh(None), Duration::from_secs(300));
        assert_eq!(
            policy.next_refresh(Some(u64::MAX)),
            Duration::from_secs(3600)
        );
        // A ceiling below the floor is read as the floor.
        let odd = RefreshPolicy {
            ceiling: Duration::from_secs(1),
            ..policy
        };
        assert_eq!(odd.next_refresh(Some(600)), Duration::from_secs(60));
    }

    #[test]
    fn one_unknown_kid_refetch_per_interval() {
        let gate = UnknownKidGate::new(Duration::from_secs(30));
        let t0 = 1_700_000_000_000;
        assert!(gate.try_claim(t0));
        assert!(!gate.try_claim(t0));
        assert!(!gate.try_claim(t0 + 29_999));
        assert!(gate.try_claim(t0 + 30_000));
        assert!(!gate.try_claim(t0 + 30_001));
        // A clock that steps back does not open the gate.
        assert!(!gate.try_claim(t0));
        assert!(gate.try_claim(t0 + 90_000));
    }

    #[test]
    fn the_gate_lets_one_of_many_threads_through() {
        let gate = std::sync::Arc::new(UnknownKidGate::new(Duration::from_secs(30)));
        let now = 5_000;
        let winners: usize = (0..8)
            .map(|_| {
                let gate = gate.clone();
                std::thread::spawn(move || (0..1000).filter(|_| gate.try_claim(now)).count())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap_or(0))
            .sum();
        assert_eq!(winners, 1);
    }
}
