//! Brute-force throttling: in memory, per node, bounded. It slows the attacker, never locks the
//! owner out (`SECURITY.md` rule 7).
//!
//! Every secret check is an [`Attempt`]: a credential (a user, whatever spelling named it; a
//! user's TOTP factor; the keyed hash of a presented API key or OAuth token; a client id; an
//! authorized key) from a source address (the TCP peer; `X-Forwarded-For` is never trusted).
//! Failures are counted three ways, each within `window`:
//!
//! - **per (credential, source)**: after `credential.delay_after` failures each further attempt
//!   from that source on that credential waits (an async sleep doubling from [`BASE_DELAY`] to
//!   [`MAX_DELAY`]); after `credential.lock_after` that pair is refused with 429 for `lock_for`.
//!   Nobody else is affected: the owner signing in from another address gets straight in.
//!   Client ids are never locked, only delayed: a well-known id (`bx`) must not be deniable.
//! - **per credential, over all sources**: after `credential.lock_after` failures (a distributed
//!   guess), attempts from sources that have failed lately are delayed; a source with no recent
//!   failures is not.
//! - **per source**: after `address.delay_after` failures its attempts are delayed; after
//!   `address.lock_after` it is refused for `lock_for`, except on credentials it signed in with
//!   successfully within the window — so the owner behind a shared proxy that an attacker also
//!   uses keeps signing in.
//!
//! A success clears the pair's counter and remembers the pair as good; it does not lift a lock.
//! Each node counts on its own: behind a load balancer spreading requests over `n` nodes an
//! attacker gets up to `n` times the attempts. The tables hold at most [`MAX_ENTRIES`] keys;
//! expired entries are evicted first, then ones below their delay threshold; if still full new
//! keys are not tracked (logged), so memory stays bounded whatever the attacker sends.
//!
//! The same module remembers which TOTP step each user last used, so a code cannot be replayed
//! on this node ([`Throttle::use_totp_step`]).

use crate::clock::Clock;
use crate::metrics_names as names;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys tracked at once (failure counters, good pairs and TOTP steps each).
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

/// What kind of secret an attempt checks: the metric label, and whether it may be locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A user's password (the credential is the user id, or the name when it resolves to none).
    Password,
    /// A user's TOTP code (the user id).
    Totp,
    /// An API key (its keyed hash).
    ApiKey,
    /// A Yandex OAuth token (its keyed hash).
    OAuthToken,
    /// A service-account JWT (the authorized key id it names).
    Jwt,
    /// An OAuth client secret (the client id). Delayed, never locked.
    Client,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Password => "password",
            Kind::Totp => "totp",
            Kind::ApiKey => "apikey",
            Kind::OAuthToken => "oauth_token",
            Kind::Jwt => "jwt",
            Kind::Client => "client",
        }
    }
}

/// One secret check: which credential, from where. The credential text is never a secret
/// itself (an id, or a keyed hash).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attempt {
    kind: Kind,
    credential: String,
    source: Option<IpAddr>,
}

impl Attempt {
    pub fn new(kind: Kind, credential: impl Into<String>, source: Option<IpAddr>) -> Attempt {
        Attempt {
            kind,
            credential: credential.into(),
            source,
        }
    }
}

/// What failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Pair(Kind, String, Option<IpAddr>),
    Credential(Kind, String),
    Address(IpAddr),
}

/// A refused attempt: locked for `retry_after` more seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub retry_after: u64,
}

struct Entry {
    failures: u32,
    first_failure: Instant,
    locked_until: Option<Instant>,
}

impl Entry {
    /// Failures that still count: none once the window has passed or a lock has run out (a
    /// lock ends the run, as in [`Throttle::failure_at`]).
    fn live_failures(&self, now: Instant, window: Duration) -> u32 {
        let lock_over = self.locked_until.is_some_and(|until| until <= now);
        if lock_over || now.duration_since(self.first_failure) > window {
            0
        } else {
            self.failures
        }
    }
}

/// The per-node throttle. Cheap to consult: one short mutex section per request.
pub struct Throttle {
    config: ThrottleConfig,
    /// The server's clock: windows and locks run out when a test clock is advanced.
    clock: Clock,
    entries: Mutex<HashMap<Key, Entry>>,
    /// Pairs that signed in successfully, and when (they pass a locked source).
    good: Mutex<HashMap<(Kind, String, IpAddr), Instant>>,
    /// How many keys `entries` holds, readable without the lock: 0 means nothing failed lately
    /// and the token path may skip the throttle altogether.
    tracked: AtomicUsize,
    /// Last TOTP step accepted per user id.
    totp_steps: Mutex<HashMap<String, (u64, Instant)>>,
}

fn delay_for(failures: u32, limits: Limits) -> Duration {
    if failures < limits.delay_after {
        return Duration::ZERO;
    }
    let extra = (failures - limits.delay_after).min(16);
    BASE_DELAY.saturating_mul(1 << extra).min(MAX_DELAY)
}

fn seconds_until(until: Instant, now: Instant) -> u64 {
    (until.duration_since(now).as_secs_f64().ceil() as u64).max(1)
}

impl Throttle {
    pub fn new(config: ThrottleConfig, clock: Clock) -> Throttle {
        Throttle {
            config,
            clock,
            entries: Mutex::new(HashMap::new()),
            good: Mutex::new(HashMap::new()),
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

    fn window(&self) -> Duration {
        Duration::from_secs(self.config.window)
    }

    fn is_good(&self, attempt: &Attempt, now: Instant) -> bool {
        let Some(source) = attempt.source else {
            return false;
        };
        let good = self.good.lock().unwrap_or_else(|e| e.into_inner());
        good.get(&(attempt.kind, attempt.credential.clone(), source))
            .is_some_and(|at| now.duration_since(*at) <= self.window())
    }

    /// Decides about `attempts` at `now`: refused while any is locked, else the delay to wait
    /// first (the longest of theirs).
    pub fn check_at(&self, attempts: &[Attempt], now: Instant) -> Result<Duration, Locked> {
        let window = self.window();
        let mut delay = Duration::ZERO;
        let mut locked: Option<u64> = None;
        let mut lock = |seconds: u64, kind: Kind| {
            locked = Some(locked.unwrap_or(0).max(seconds));
            metrics::counter!(names::THROTTLED, "key" => kind.label(), "action" => "refused")
                .increment(1);
        };
        for attempt in attempts {
            let good = self.is_good(attempt, now);
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            let pair = entries.get(&Key::Pair(
                attempt.kind,
                attempt.credential.clone(),
                attempt.source,
            ));
            let address = attempt.source.and_then(|ip| entries.get(&Key::Address(ip)));
            let credential =
                entries.get(&Key::Credential(attempt.kind, attempt.credential.clone()));
            if let Some(until) = pair.and_then(|e| e.locked_until).filter(|u| *u > now) {
                lock(seconds_until(until, now), attempt.kind);
                continue;
            }
            if let Some(until) = address.and_then(|e| e.locked_until).filter(|u| *u > now) {
                if !good {
                    lock(seconds_until(until, now), attempt.kind);
                    continue;
                }
            }
            let pair_failures = pair.map_or(0, |e| e.live_failures(now, window));
            let address_failures = address.map_or(0, |e| e.live_failures(now, window));
            delay = delay.max(delay_for(pair_failures, self.config.credential));
            if !good {
                delay = delay.max(delay_for(address_failures, self.config.address));
            }
            // A distributed guess slows only the sources that take part in it.
            let dirty = pair_failures > 0 || address_failures > 0;
            let credential_failures = credential.map_or(0, |e| e.live_failures(now, window));
            if dirty && credential_failures >= self.config.credential.lock_after {
                let over = credential_failures - self.config.credential.lock_after;
                let limits = Limits {
                    delay_after: 0,
                    lock_after: u32::MAX,
                };
                delay = delay.max(delay_for(over, limits));
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
    pub async fn gate(&self, attempts: &[Attempt]) -> Result<(), Locked> {
        let delay = self.check_at(attempts, self.clock.instant())?;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }

    /// Counts a failure of each attempt: against the pair, the credential and the source.
    pub fn failure_at(&self, attempts: &[Attempt], now: Instant) {
        let window = self.window();
        let lock_for = Duration::from_secs(self.config.lock_for);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for attempt in attempts {
            let pair = Key::Pair(attempt.kind, attempt.credential.clone(), attempt.source);
            let credential = Key::Credential(attempt.kind, attempt.credential.clone());
            let mut keys = vec![
                (pair, self.config.credential, attempt.kind != Kind::Client),
                (credential, self.config.credential, false),
            ];
            if let Some(ip) = attempt.source {
                keys.push((Key::Address(ip), self.config.address, true));
            }
            for (key, limits, lockable) in keys {
                if !entries.contains_key(&key) && !make_room(&mut entries, now, window, self) {
                    tracing::warn!(
                        "throttle table full ({MAX_ENTRIES} keys); a new key is not tracked"
                    );
                    continue;
                }
                let scope = match key {
                    Key::Address(_) => "address",
                    _ => "credential",
                };
                let entry = entries.entry(key).or_insert(Entry {
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
                if lockable && entry.failures >= limits.lock_after && entry.locked_until.is_none() {
                    entry.locked_until = Some(now + lock_for);
                    crate::security_log::locked_out(
                        attempt.kind.label(),
                        scope,
                        attempt.source,
                        entry.failures,
                        self.config.lock_for,
                    );
                }
            }
        }
        self.tracked.store(entries.len(), Ordering::Relaxed);
    }

    pub fn failure(&self, attempts: &[Attempt]) {
        self.failure_at(attempts, self.clock.instant());
    }

    /// Records successful checks: clears each pair's counter (unless it is locked: success
    /// cannot happen while locked, but be explicit) and remembers the pair as good.
    pub fn success_at(&self, attempts: &[Attempt], now: Instant) {
        if !self.is_idle() {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            for attempt in attempts {
                let pair = Key::Pair(attempt.kind, attempt.credential.clone(), attempt.source);
                if entries
                    .get(&pair)
                    .is_some_and(|e| e.locked_until.is_none_or(|until| until <= now))
                {
                    entries.remove(&pair);
                }
            }
            self.tracked.store(entries.len(), Ordering::Relaxed);
        }
        let mut good = self.good.lock().unwrap_or_else(|e| e.into_inner());
        for attempt in attempts {
            let Some(source) = attempt.source else {
                continue;
            };
            if good.len() >= MAX_ENTRIES {
                let window = self.window();
                good.retain(|_, at| now.duration_since(*at) <= window);
                if good.len() >= MAX_ENTRIES {
                    continue;
                }
            }
            good.insert((attempt.kind, attempt.credential.clone(), source), now);
        }
    }

    pub fn success(&self, attempts: &[Attempt]) {
        self.success_at(attempts, self.clock.instant());
    }

    /// Records that `user_id` used TOTP step `step`. `false` if that step (or a later one) was
    /// already used: the code is a replay.
    pub fn use_totp_step(&self, user_id: &str, step: u64) -> bool {
        let now = self.clock.instant();
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
            // A credential is tracked by its own count; locks fall on (credential, source)
            // pairs, so those are what `locked_credentials` counts.
            match key {
                Key::Credential(..) if live => stats.credentials += 1,
                Key::Pair(..) if locked => stats.locked_credentials += 1,
                Key::Address(_) => {
                    stats.addresses += usize::from(live);
                    stats.locked_addresses += usize::from(locked);
                }
                _ => {}
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
        let limits = match key {
            Key::Address(_) => throttle.config.address,
            _ => throttle.config.credential,
        };
        e.locked_until.is_some() || e.failures >= limits.delay_after
    });
    entries.len() < MAX_ENTRIES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(
            ThrottleConfig {
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
            },
            Clock::system(),
        )
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    fn attempt(kind: Kind, who: &str, from: u8) -> Attempt {
        Attempt::new(kind, who, ip(from))
    }

    #[test]
    fn stats_count_live_and_locked_keys() {
        let t = throttle();
        let start = Instant::now();
        assert_eq!(t.stats_at(start), ThrottleStats::default());
        let ada = [attempt(Kind::Password, "IBMid-ada", 7)];
        for _ in 0..4 {
            t.failure_at(&ada, start);
        }
        let stats = t.stats_at(start);
        // The credential's own count, its locked pair, the address below its lock.
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
    fn delays_then_locks_the_pair_then_expires() {
        let t = throttle();
        let ada = [attempt(Kind::Password, "IBMid-ada", 1)];
        let start = Instant::now();
        assert_eq!(t.check_at(&ada, start), Ok(Duration::ZERO));
        t.failure_at(&ada, start);
        t.failure_at(&ada, start);
        assert_eq!(t.check_at(&ada, start), Ok(BASE_DELAY));
        t.failure_at(&ada, start);
        assert_eq!(t.check_at(&ada, start), Ok(BASE_DELAY * 2));
        t.failure_at(&ada, start);
        assert_eq!(t.check_at(&ada, start), Err(Locked { retry_after: 30 }));
        // Success does not lift a lock.
        t.success_at(&ada, start);
        assert!(t.check_at(&ada, start).is_err());
        let later = start + Duration::from_secs(31);
        // The pair starts again; the credential's own count (4 failures, all from this source)
        // still slows this source a little, as a source that took part in guessing.
        assert_eq!(t.check_at(&ada, later), Ok(BASE_DELAY));
        assert_eq!(
            t.check_at(&[attempt(Kind::Password, "IBMid-ada", 2)], later),
            Ok(Duration::ZERO)
        );
    }

    /// The targeted lockout of issue 12: ten wrong passwords from an attacker's address do not
    /// keep the owner, at another address, out.
    #[test]
    fn the_owner_elsewhere_is_never_locked_out() {
        let t = throttle();
        let attacker = [attempt(Kind::Password, "IBMid-ada", 66)];
        let owner = [attempt(Kind::Password, "IBMid-ada", 1)];
        let now = Instant::now();
        for _ in 0..20 {
            t.failure_at(&attacker, now);
        }
        assert!(t.check_at(&attacker, now).is_err());
        assert_eq!(t.check_at(&owner, now), Ok(Duration::ZERO));
        // A distributed guess (many sources) slows the sources taking part, not a clean one.
        for from in 100..120 {
            t.failure_at(&[attempt(Kind::Password, "IBMid-ada", from)], now);
        }
        assert!(
            t.check_at(&[attempt(Kind::Password, "IBMid-ada", 100)], now)
                .unwrap()
                > Duration::ZERO
        );
        assert_eq!(t.check_at(&owner, now), Ok(Duration::ZERO));
    }

    #[test]
    fn client_ids_are_delayed_never_locked() {
        let t = throttle();
        let bx = [attempt(Kind::Client, "bx", 66)];
        let now = Instant::now();
        for _ in 0..50 {
            t.failure_at(&bx, now);
        }
        // The address itself got locked by 50 failures; from a clean address the pair only
        // delays.
        let t = throttle();
        for _ in 0..5 {
            t.failure_at(&bx, now);
        }
        assert_eq!(t.check_at(&bx, now), Ok(MAX_DELAY.min(BASE_DELAY * 8)));
    }

    #[test]
    fn a_locked_source_still_lets_known_good_pairs_in() {
        let t = throttle();
        let now = Instant::now();
        let owner = [attempt(Kind::Password, "IBMid-ada", 7)];
        t.success_at(&owner, now);
        // An attacker behind the same address guesses many users.
        for i in 0..6 {
            t.failure_at(&[attempt(Kind::Password, &format!("IBMid-{i}"), 7)], now);
        }
        assert!(t
            .check_at(&[attempt(Kind::Password, "IBMid-new", 7)], now)
            .is_err());
        assert_eq!(t.check_at(&owner, now), Ok(Duration::ZERO));
        // Other addresses are unaffected.
        assert_eq!(
            t.check_at(&[attempt(Kind::Password, "IBMid-new", 8)], now),
            Ok(Duration::ZERO)
        );
    }

    #[test]
    fn idle_until_a_failure_and_again_once_cleared() {
        let t = throttle();
        assert!(t.is_idle());
        let ada = [Attempt::new(Kind::Password, "ada", None)];
        t.failure_at(&ada, Instant::now());
        assert!(!t.is_idle());
    }

    #[test]
    fn failures_outside_the_window_start_a_new_run() {
        let t = throttle();
        let now = Instant::now();
        let a = [attempt(Kind::ApiKey, "h1", 1)];
        for _ in 0..3 {
            t.failure_at(&a, now);
        }
        let later = now + Duration::from_secs(61);
        assert_eq!(t.check_at(&a, later), Ok(Duration::ZERO));
    }

    #[test]
    fn delay_is_capped() {
        let t = Throttle::new(
            ThrottleConfig {
                credential: Limits {
                    delay_after: 1,
                    lock_after: 1000,
                },
                ..ThrottleConfig::default()
            },
            Clock::system(),
        );
        let key = [Attempt::new(Kind::Password, "x", None)];
        let now = Instant::now();
        for _ in 0..100 {
            t.failure_at(&key, now);
        }
        assert_eq!(t.check_at(&key, now), Ok(MAX_DELAY));
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
