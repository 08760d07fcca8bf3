//! The server's one clock. Every wall-clock read of the server goes through the [`Clock`] in
//! [`crate::state::AppState`] (or the one handed to [`crate::server::Server::prepare_with_clock`]
//! before the state exists); the core never reads time, it takes `now`.
//!
//! [`Clock::system`] is the wall clock. [`Clock::test`] is the wall clock plus an offset a test
//! moves forward ([`Clock::advance`]), so a test can let a token expire without sleeping;
//! [`Clock::fixed`] stands still at a given instant (unit tests of expiry boundaries). Clones
//! share their offset: the handle a test keeps moves the server's time.
//!
//! `clippy.toml` bans `SystemTime::now` and `OffsetDateTime::now_utc` outside this module.
//! [`Clock::instant`] moves with the offset too, for the per-node windows kept as [`Instant`]s
//! (throttling); plain timeouts keep using [`Instant::now`].

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A cheap handle to the server's time (one `Option<Arc>`).
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<TestTime>>);

/// A test's time: the wall clock shifted by `offset_ms`, or frozen at `frozen_ms`.
struct TestTime {
    offset_ms: AtomicI64,
    /// `i64::MIN` while the clock runs.
    frozen_ms: AtomicI64,
    /// A pair of readings taken together, to map this clock's time onto [`Instant`]s.
    origin: Instant,
    origin_ms: i64,
}

const RUNNING: i64 = i64::MIN;

/// The wall clock in milliseconds since the Unix epoch (0 before it).
#[allow(clippy::disallowed_methods)] // The one wall-clock read of the server.
fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// The wall clock plus an offset that starts at zero and [`Clock::advance`] moves.
    pub fn test() -> Clock {
        Clock::starting(system_ms(), RUNNING)
    }

    /// A clock standing still at `unix_seconds` until [`Clock::advance`]d.
    pub fn fixed(unix_seconds: i64) -> Clock {
        let at = unix_seconds.saturating_mul(1000);
        Clock::starting(at, at)
    }

    /// A test clock whose time is `origin_ms` now (`frozen_ms` = `RUNNING` or the same value).
    fn starting(origin_ms: i64, frozen_ms: i64) -> Clock {
        let offset_ms = if frozen_ms == RUNNING {
            origin_ms.saturating_sub(system_ms())
        } else {
            0
        };
        Clock(Some(Arc::new(TestTime {
            offset_ms: AtomicI64::new(offset_ms),
            frozen_ms: AtomicI64::new(frozen_ms),
            origin: Instant::now(),
            origin_ms,
        })))
    }

    /// Moves a test clock forward by `by`. The system clock cannot be moved: a no-op there.
    pub fn advance(&self, by: Duration) {
        let Some(t) = &self.0 else { return };
        let by = millis(by);
        if t.frozen_ms.load(Ordering::Relaxed) == RUNNING {
            t.offset_ms.fetch_add(by, Ordering::Relaxed);
        } else {
            t.frozen_ms.fetch_add(by, Ordering::Relaxed);
        }
    }

    fn now_ms(&self) -> i64 {
        match &self.0 {
            None => system_ms(),
            Some(t) => match t.frozen_ms.load(Ordering::Relaxed) {
                RUNNING => system_ms().saturating_add(t.offset_ms.load(Ordering::Relaxed)),
                frozen => frozen,
            },
        }
    }

    /// Unix seconds: what tokens, records and the core rules use as `now`.
    pub fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// The same instant as a date-time in UTC (error bodies, log timestamps).
    pub fn now_utc(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.now_ms()) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }

    /// A monotonic instant that moves with a test clock's offset: for windows that must expire
    /// when a test advances the clock. Timeouts use [`Instant::now`] directly.
    pub fn instant(&self) -> Instant {
        let Some(t) = &self.0 else {
            return Instant::now();
        };
        let ahead = self.now_ms().saturating_sub(t.origin_ms);
        let moved = if ahead >= 0 {
            t.origin
                .checked_add(Duration::from_millis(ahead.unsigned_abs()))
        } else {
            t.origin
                .checked_sub(Duration::from_millis(ahead.unsigned_abs()))
        };
        moved.unwrap_or(t.origin)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Clock::system"),
            Some(t) => f
                .debug_struct("Clock::test")
                .field("offset_ms", &t.offset_ms.load(Ordering::Relaxed))
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_stands_still_and_moves_only_when_advanced() {
        let clock = Clock::fixed(1_700_000_000);
        assert_eq!(clock.now(), 1_700_000_000);
        let before = clock.instant();
        let shared = clock.clone();
        shared.advance(Duration::from_secs(61));
        assert_eq!(clock.now(), 1_700_000_061);
        assert_eq!(clock.instant() - before, Duration::from_secs(61));
        assert_eq!(clock.now_utc().unix_timestamp(), 1_700_000_061);
    }

    #[test]
    fn a_test_clock_runs_with_the_wall_clock_plus_its_offset() {
        let system = Clock::system();
        let clock = Clock::test();
        let start = clock.now();
        assert!((start - system.now()).abs() <= 1);
        clock.clone().advance(Duration::from_secs(3600));
        assert!((clock.now() - system.now() - 3600).abs() <= 1);
        assert!(clock.instant() >= Instant::now() + Duration::from_secs(3599));
        // The system clock ignores advancing.
        system.advance(Duration::from_secs(3600));
        assert!((Clock::system().now() - system.now()).abs() <= 1);
    }
}
