//! The crate's one clock. Every check takes `now` as a parameter; only the convenience entry
//! points (`Verifier::verify`, the key cache's background task, the integrations) read it here.

/// Milliseconds since the Unix epoch (0 if the system clock is before it).
#[allow(clippy::disallowed_methods)] // The one clock of this crate.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
