//! The crate's metrics, through the `metrics` facade (the application installs a recorder,
//! e.g. `metrics-exporter-prometheus`; without one they cost next to nothing). Labels are
//! fixed words and issuer URLs, never a token or a secret.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `tessera_verify_verifications_total` | counter | `result` (`ok`, `rejected`), `reason` |
//! | `tessera_verify_key_fetches_total` | counter | `issuer`, `result` (`ok`, `error`) |
//! | `tessera_verify_key_cache_age_seconds` | gauge | `issuer` |
//! | `tessera_verify_introspection_calls_total` | counter | `result` (`active`, `inactive`, `error`) |
//! | `tessera_verify_introspection_cache_hits_total` | counter | `result` (`active`, `inactive`) |

pub const VERIFICATIONS: &str = "tessera_verify_verifications_total";
pub const KEY_FETCHES: &str = "tessera_verify_key_fetches_total";
pub const KEY_CACHE_AGE: &str = "tessera_verify_key_cache_age_seconds";
pub const INTROSPECTION_CALLS: &str = "tessera_verify_introspection_calls_total";
pub const INTROSPECTION_CACHE_HITS: &str = "tessera_verify_introspection_cache_hits_total";

/// One verification: `reason` is `ok` or the rejection's reason.
pub(crate) fn verification(reason: &'static str) {
    let result = if reason == "ok" { "ok" } else { "rejected" };
    ::metrics::counter!(VERIFICATIONS, "result" => result, "reason" => reason).increment(1);
}

#[cfg(feature = "http")]
pub(crate) fn key_fetch(issuer: &str, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    ::metrics::counter!(KEY_FETCHES, "issuer" => issuer.to_owned(), "result" => result)
        .increment(1);
}

#[cfg(feature = "http")]
pub(crate) fn key_cache_age(issuer: &str, seconds: f64) {
    ::metrics::gauge!(KEY_CACHE_AGE, "issuer" => issuer.to_owned()).set(seconds);
}

#[cfg(feature = "introspection")]
pub(crate) fn introspection_call(result: &'static str) {
    ::metrics::counter!(INTROSPECTION_CALLS, "result" => result).increment(1);
}

#[cfg(feature = "introspection")]
pub(crate) fn introspection_cache_hit(active: bool) {
    let result = if active { "active" } else { "inactive" };
    ::metrics::counter!(INTROSPECTION_CACHE_HITS, "result" => result).increment(1);
}
