//! Brute-force throttling: in memory, per node, bounded.
//!
//! Failures are counted per key: a credential (a user name for passwords, a user id for TOTP
//! codes, the keyed hash of a presented API key, a client id for client secrets) and the source
//! address (the TCP peer; `X-Forwarded-For` is never trusted, since any client can send it).
//! After `delay_after` consecutive failures within `window` every further attempt on that key
//! waits (an async sleep, so no thread blocks and other callers are not slowed), doubling from
//! [`BASE_DELAY`] up to [`MAX_DELAY`]; after `lock_after` failures the key is refused with 429
//! for `lock_for`, even with the right secret. A success clears the credential's counter.
//!
//! Each node counts on its own: behind a load balancer spreading requests over `n` nodes an
//! attacker gets up to `n` times the attempts. The table holds at most [`MAX_ENTRIES`] keys;
//! expired entries are evicted first, then ones below the delay threshold; if it is still full
//! new keys are not tracked (logged), so memory stays bounded whatever the attacker sends.
//!
//! The same module remembers which TOTP step each user last used, so a code cannot be replayed
//! on this node ([`Throttle::use_totp_step`]).

use crate::metrics_names as names;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys tracked at once (failure counters and TOTP steps each).
pub const MAX_ENTRIES: usize = 100_000;
/// The first delay after `delay_after` failures; it doubles with each further failure.
pub const BASE_DELAY: Duration = Duration::from_millis(250);
/// The longest delay (well below the 30 s request timeout).
pub const MAX_DELAY: Duration = Duration::from_secs(2);

/// Thresholds for one class of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failures after which each attempt is delayed.
    pub delay_after: u32,
    /// Failures after which the key is locked.
    pub lock_after: u32,
}

/// The throttling configuration (see `tessera serve --help`, `--throttle-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    pub credential: Limits,
    pub address: Limits,
    /// Failures older than this (seconds since the first of a run) are forgotten.
    pub window: u64,
    /// How long a locked key stays locked, in seconds.
    pub lock_for: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            credential: Limits {
                delay_after: 5,
                lock_after: 10,
            },
            address: Limits {
                delay_after: 50,
                lock_after: 200,
            },
            window: 900,
            lock_for: 900,
        }
    }
}

/// What failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A credential, as `<kind>:<value>` (`user:ada@example.com`, `totp:IBMid-…`,
    /// `apikey:<hash hex>`, `client:<id>`). Never a secret itself.
    Credential(String),
    Address(IpAddr),
}

impl Key {
    pub fn credential(kind: &str, value: &str) -> Key {
        Key::Credential(format!("{kind}:{value}"))
    }

    fn label(&self) -> &'static str {
        match self {
            Key::Credential(c) => match c.split_once(':').map(|(k, _)| k) {
                Some("user") => "password",
                Some("totp") => "totp",
                Some("apikey") => "apikey",
                Some("client") => "client",
                _ => "other",
            },
            Key::Address(_) => "address",
        }
    }
}

/// A refused attempt: the key is locked for `retry_after` more seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub retry_after: u64,
}

struct Entry {
    failures: u32,
    first_failure: Instant,
    locked_until: Option<Instant>,
}

/// The per-node throttle. Cheap to consult: one short mutex section per request.
pub struct Throttle {
    config: ThrottleConfig,
    entries: Mutex<HashMap<Key, Entry>>,
    /// How many keys `entries` holds, readable without the lock: 0 means nothing failed lately
    /// and the token path may skip the throttle altogether.
    tracked: AtomicUsize,
    /// Last TOTP step accepted per user id.
    totp_steps: Mutex<HashMap<String, (u64, Instant)>>,
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Throttle {
        Throttle {
            config,
            entries: Mutex::new(HashMap::new()),
            tracked: AtomicUsize::new(0),
            totp_steps: Mutex::new(HashMap::new()),
        }
    }

    /// Whether no key has a failure on record (then no request can be delayed or refused).
    pub fn is_idle(&self) -> bool {
        self.tracked.load(Ordering::Relaxed) == 0
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    fn limits(&self, key: &Key) -> Limits {
        match key {
            Key::Credential(_) => self.config.credential,
            Key::Address(_) => self.config.address,
        }
    }

    /// Decides about an attempt on `keys` at `now`: refused while any key is locked, else
    /// the delay to wait first (the longest of the keys').
    pub fn check_at(&self, keys: &[Key], now: Instant) -> Result<Duration, Locked> {
        let window = Duration::from_secs(self.config.window);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut delay = Duration::ZERO;
        let mut locked: Option<u64> = None;
        for key in keys {
            let Some(entry) = entries.get(key) else {
                continue;
            };
            if let Some(until) = entry.locked_until {
                if until > now {
                    let seconds = until.duration_since(now).as_secs_f64().ceil() as u64;
                    locked = Some(locked.unwrap_or(0).max(seconds.max(1)));
                    metrics::counter!(names::THROTTLED, "key" => key.label(), "action" => "refused")
                        .increment(1);
                    continue;
                }
                continue;
            }
            if now.duration_since(entry.first_failure) > window {
                continue;
            }
            let limits = self.limits(key);
            if entry.failures >= limits.delay_after {
                let extra = (entry.failures - limits.delay_after).min(16);
                let this = BASE_DELAY.saturating_mul(1 << extra).min(MAX_DELAY);
                delay = delay.max(this);
            }
        }
        match locked {
            Some(retry_after) => Err(Locked { retry_after }),
            None => {
                if !delay.is_zero() {
                    metrics::counter!(names::THROTTLED, "key" => "any", "action" => "delayed")
                        .increment(1);
                }
                Ok(delay)
            }
        }
    }

    /// [`Throttle::check_at`] now, and the delay slept (asynchronously) before returning.
    pub async fn gate(&self, keys: &[Key]) -> Result<(), Locked> {
        let delay = self.check_at(keys, Instant::now())?;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }

    /// Counts a failure against each key; a key reaching its lock threshold is locked.
    pub fn failure_at(&self, keys: &[Key], now: Instant) {
        let window = Duration::from_secs(self.config.window);
        let lock_for = Duration::from_secs(self.config.lock_for);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            let limits = self.limits(key);
            if !entries.contains_key(key) && !make_room(&mut entries, now, window, self) {
                tracing::warn!(
                    "throttle table full ({MAX_ENTRIES} keys); a new key is not tracked"
                );
                continue;
            }
            let entry = entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                first_failure: now,
                locked_until: None,
            });
            let expired_lock = entry.locked_until.is_some_and(|until| until <= now);
            if expired_lock || now.duration_since(entry.first_failure) > window {
                *entry = Entry {
                    failures: 0,
                    first_failure: now,
                    locked_until: None,
                };
            }
            entry.failures = entry.failures.saturating_add(1);
            if entry.failures >= limits.lock_after && entry.locked_until.is_none() {
                entry.locked_until = Some(now + lock_for);
                tracing::warn!(
                    key = key.label(),
                    failures = entry.failures,
                    "too many failures; locked for {} s",
                    self.config.lock_for
                );
            }
        }
        self.tracked.store(entries.len(), Ordering::Relaxed);
    }

    pub fn failure(&self, keys: &[Key]) {
        self.failure_at(keys, Instant::now());
    }

    /// Clears the counter of `key` (after a successful authentication).
    pub fn success(&self, key: &Key) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // A locked key stays locked until its time is up: success cannot occur while locked
        // (the attempt is refused first), but be explicit.
        if entries
            .get(key)
            .is_some_and(|e| e.locked_until.is_none_or(|until| until <= Instant::now()))
        {
            entries.remove(key);
        }
        self.tracked.store(entries.len(), Ordering::Relaxed);
    }

    /// Records that `user_id` used TOTP step `step`. `false` if that step (or a later one) was
    /// already used: the code is a replay.
    pub fn use_totp_step(&self, user_id: &str, step: u64) -> bool {
        let now = Instant::now();
        let mut steps = self.totp_steps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((last, _)) = steps.get(user_id) {
            if *last >= step {
                return false;
            }
        }
        if steps.len() >= MAX_ENTRIES && !steps.contains_key(user_id) {
            // A step is only replayable for about 90 s; older records are useless.
            steps.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(120));
            if steps.len() >= MAX_ENTRIES {
                tracing::warn!("TOTP replay table full; refusing the code");
                return false;
            }
        }
        steps.insert(user_id.to_owned(), (step, now));
        true
    }
}

/// What the throttle holds at one instant, for monitoring.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleStats {
    /// Credentials with failures within the window (or locked).
    pub credentials: usize,
    /// Source addresses with failures within the window (or locked).
    pub addresses: usize,
    pub locked_credentials: usize,
    pub locked_addresses: usize,
}

impl Throttle {
    /// Counts the live entries at `now` (expired ones wait in the table for eviction).
    pub fn stats_at(&self, now: Instant) -> ThrottleStats {
        let mut stats = ThrottleStats::default();
        if self.is_idle() {
            return stats;
        }
        let window = Duration::from_secs(self.config.window);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for (key, entry) in entries.iter() {
            let locked = entry.locked_until.is_some_and(|until| until > now);
            let live = locked
                || (entry.locked_until.is_none()
                    && now.duration_since(entry.first_failure) <= window);
            let (tracked, locked_count) = match key {
                Key::Credential(_) => (&mut stats.credentials, &mut stats.locked_credentials),
                Key::Address(_) => (&mut stats.addresses, &mut stats.locked_addresses),
            };
            if live {
                *tracked += 1;
            }
            if locked {
                *locked_count += 1;
            }
        }
        stats
    }
}

/// Makes room for one more entry; `false` if the table is still full.
fn make_room(
    entries: &mut HashMap<Key, Entry>,
    now: Instant,
    window: Duration,
    throttle: &Throttle,
) -> bool {
    if entries.len() < MAX_ENTRIES {
        return true;
    }
    entries.retain(|_, e| match e.locked_until {
        Some(until) => until > now,
        None => now.duration_since(e.first_failure) <= window,
    });
    if entries.len() < MAX_ENTRIES {
        return true;
    }
    entries.retain(|key, e| {
        e.locked_until.is_some() || e.failures >= throttle.limits(key).delay_after
    });
    entries.len() < MAX_ENTRIES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(ThrottleConfig {
            credential: Limits {
                delay_after: 2,
                lock_after: 4,
            },
            address: Limits {
                delay_after: 3,
                lock_after: 6,
            },
            window: 60,
            lock_for: 30,
        })
    }

    #[test]
    fn stats_count_live_and_locked_keys() {
        let t = throttle();
        let start = Instant::now();
        assert_eq!(t.stats_at(start), ThrottleStats::default());
        let user = Key::credential("user", "ada@example.com");
        let address = Key::Address("192.0.2.7".parse().unwrap());
        for _ in 0..4 {
            t.failure_at(&[user.clone(), address.clone()], start);
        }
        let stats = t.stats_at(start);
        assert_eq!(
            stats,
            ThrottleStats {
                credentials: 1,
                addresses: 1,
                locked_credentials: 1,
                locked_addresses: 0,
            }
        );
        // After the lock (30 s) and the window (60 s) nothing is live any more.
        let later = start + Duration::from_secs(61);
        assert_eq!(t.stats_at(later), ThrottleStats::default());
    }

    #[test]
    fn delays_then_locks_then_expires() {
        let t = throttle();
        let user = Key::credential("user", "ada@example.com");
        let start = Instant::now();
        assert_eq!(
            t.check_at(std::slice::from_ref(&user), start),
            Ok(Duration::ZERO)
        );
        t.failure_at(std::slice::from_ref(&user), start);
        t.failure_at(std::slice::from_ref(&user), start);
        assert_eq!(
            t.check_at(std::slice::from_ref(&user), start),
            Ok(BASE_DELAY)
        );
        t.failure_at(std::slice::from_ref(&user), start);
        assert_eq!(
            t.check_at(std::slice::from_ref(&user), start),
            Ok(BASE_DELAY * 2)
        );
        t.failure_at(std::slice::from_ref(&user), start);
        assert_eq!(
            t.check_at(std::slice::from_ref(&user), start),
            Err(Locked { retry_after: 30 })
        );
        // Success does not lift a lock.
        t.success(&user);
        assert!(t.check_at(std::slice::from_ref(&user), start).is_err());
        let later = start + Duration::from_secs(31);
        assert_eq!(
            t.check_at(std::slice::from_ref(&user), later),
            Ok(Duration::ZERO)
        );
        // After the lock the count starts again.
        t.failure_at(std::slice::from_ref(&user), later);
        assert_eq!(
            t.check_at(std::slice::from_ref(&user), later),
            Ok(Duration::ZERO)
        );
    }

    #[test]
    fn keys_are_independent_and_success_resets() {
        let t = throttle();
        let ada = Key::credential("user", "ada");
        let bob = Key::credential("user", "bob");
        let now = Instant::now();
        for _ in 0..4 {
            t.failure_at(std::slice::from_ref(&ada), now);
        }
        assert!(t.check_at(std::slice::from_ref(&ada), now).is_err());
        assert_eq!(
            t.check_at(std::slice::from_ref(&bob), now),
            Ok(Duration::ZERO)
        );
        t.failure_at(std::slice::from_ref(&bob), now);
        t.failure_at(std::slice::from_ref(&bob), now);
        t.success(&bob);
        assert_eq!(
            t.check_at(std::slice::from_ref(&bob), now),
            Ok(Duration::ZERO)
        );
    }

    #[test]
    fn idle_until_a_failure_and_again_once_cleared() {
        let t = throttle();
        assert!(t.is_idle());
        let ada = Key::credential("user", "ada");
        t.failure_at(std::slice::from_ref(&ada), Instant::now());
        assert!(!t.is_idle());
        t.success(&ada);
        assert!(t.is_idle());
    }

    #[test]
    fn address_has_its_own_limits_and_window() {
        let t = throttle();
        let addr = Key::Address("192.0.2.1".parse().unwrap());
        let now = Instant::now();
        for _ in 0..5 {
            t.failure_at(std::slice::from_ref(&addr), now);
        }
        assert!(t.check_at(std::slice::from_ref(&addr), now).is_ok());
        // Failures outside the window start a new run.
        let later = now + Duration::from_secs(61);
        t.failure_at(std::slice::from_ref(&addr), later);
        assert_eq!(
            t.check_at(std::slice::from_ref(&addr), later),
            Ok(Duration::ZERO)
        );
        for _ in 0..5 {
            t.failure_at(std::slice::from_ref(&addr), later);
        }
        assert!(t.check_at(std::slice::from_ref(&addr), later).is_err());
    }

    #[test]
    fn delay_is_capped() {
        let t = Throttle::new(ThrottleConfig {
            credential: Limits {
                delay_after: 1,
                lock_after: 1000,
            },
            ..ThrottleConfig::default()
        });
        let key = Key::credential("user", "x");
        let now = Instant::now();
        for _ in 0..100 {
            t.failure_at(std::slice::from_ref(&key), now);
        }
        assert_eq!(t.check_at(std::slice::from_ref(&key), now), Ok(MAX_DELAY));
    }

    #[test]
    fn totp_steps_cannot_be_replayed() {
        let t = throttle();
        assert!(t.use_totp_step("IBMid-1", 100));
        assert!(!t.use_totp_step("IBMid-1", 100));
        assert!(!t.use_totp_step("IBMid-1", 99));
        assert!(t.use_totp_step("IBMid-1", 101));
        assert!(t.use_totp_step("IBMid-2", 100));
    }
}
