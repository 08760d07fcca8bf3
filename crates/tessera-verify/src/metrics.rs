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

/// The key of `tessera_verify_verifications_total` for each reason, built at compile time:
/// the token path allocates nothing for its metric (the `counter!` macro builds a label
/// vector on every call).
fn verification_key(reason: &str) -> Option<&'static ::metrics::Key> {
    use ::metrics::{Key, Label};
    macro_rules! keys {
        ($($result:literal $reason:literal),* $(,)?) => {
            match reason {
                $($reason => {
                    static LABELS: [Label; 2] = [
                        Label::from_static_parts("result", $result),
                        Label::from_static_parts("reason", $reason),
                    ];
                    static KEY: Key = Key::from_static_parts(VERIFICATIONS, &LABELS);
                    Some(&KEY)
                })*
                _ => None,
            }
        };
    }
    keys!(
        "ok" "ok",
        "rejected" "malformed", "rejected" "unknown_key", "rejected" "algorithm_mismatch",
        "rejected" "bad_signature", "rejected" "bad_key_set", "rejected" "untrusted_issuer",
        "rejected" "algorithm_not_allowed", "rejected" "inactive", "rejected" "unavailable",
        "rejected" "missing_claim", "rejected" "wrong_type", "rejected" "expired",
        "rejected" "not_yet_valid", "rejected" "issued_in_future", "rejected" "wrong_issuer",
        "rejected" "wrong_audience", "rejected" "exp_not_after_iat",
        "rejected" "lifetime_too_long",
    )
}

/// One verification: `reason` is `ok` or the rejection's reason.
pub(crate) fn verification(reason: &'static str) {
    static METADATA: ::metrics::Metadata<'static> =
        ::metrics::Metadata::new(module_path!(), ::metrics::Level::INFO, Some(module_path!()));
    match verification_key(reason) {
        Some(key) => {
            ::metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA))
                .increment(1);
        }
        // A reason added without a key above: counted all the same.
        None => {
            let result = if reason == "ok" { "ok" } else { "rejected" };
            ::metrics::counter!(VERIFICATIONS, "result" => result, "reason" => reason).increment(1);
        }
    }
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

/// Every metric of the table above, read back through a recorder installed for the test's
/// thread (a current-thread runtime, so the background refresh and the fake issuer's tasks
/// record there too).
#[cfg(test)]
#[cfg(feature = "introspection")]
mod tests {
    use super::*;
    use crate::testkit::FakeIssuer;
    use crate::{
        clock, HttpOptions, IntrospectionConfig, Introspector, KeySource, RemoteKeys,
        TrustedIssuer, Verifier,
    };
    use ::metrics::{Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata};
    use ::metrics::{Recorder, SharedString, Unit};
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    /// Values by `name{label=value,...}` (labels in the order given).
    #[derive(Default)]
    struct Captured(Arc<Mutex<BTreeMap<String, f64>>>);

    struct Cell {
        name: String,
        values: Arc<Mutex<BTreeMap<String, f64>>>,
    }

    impl Cell {
        fn update(&self, f: impl FnOnce(&mut f64)) {
            if let Ok(mut values) = self.values.lock() {
                f(values.entry(self.name.clone()).or_default());
            }
        }
    }

    impl CounterFn for Cell {
        fn increment(&self, value: u64) {
            self.update(|v| *v += value as f64);
        }
        fn absolute(&self, value: u64) {
            self.update(|v| *v = value as f64);
        }
    }

    impl GaugeFn for Cell {
        fn increment(&self, value: f64) {
            self.update(|v| *v += value);
        }
        fn decrement(&self, value: f64) {
            self.update(|v| *v -= value);
        }
        fn set(&self, value: f64) {
            self.update(|v| *v = value);
        }
    }

    impl Captured {
        fn cell(&self, key: &Key) -> Arc<Cell> {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            Arc::new(Cell {
                name: format!("{}{{{}}}", key.name(), labels.join(",")),
                values: self.0.clone(),
            })
        }

        fn value(&self, name: &str) -> Option<f64> {
            self.0.lock().unwrap().get(name).copied()
        }
    }

    impl Recorder for Captured {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.cell(key))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.cell(key))
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    fn loopback() -> HttpOptions {
        HttpOptions {
            allow_private: vec!["127.0.0.1/32".parse().unwrap()],
            ..HttpOptions::default()
        }
    }

    #[test]
    fn every_reason_has_a_key_built_at_compile_time() {
        use crate::{ValidationError, VerifyError};
        let claims = ValidationError::one_of_each_kind();
        let errors = [
            VerifyError::Malformed("x"),
            VerifyError::UnknownKey,
            VerifyError::AlgorithmMismatch,
            VerifyError::BadSignature,
            VerifyError::BadKeySet(String::new()),
            VerifyError::UntrustedIssuer,
            VerifyError::AlgorithmNotAllowed,
            VerifyError::Inactive,
            VerifyError::Unavailable(String::new()),
        ];
        let reasons = claims
            .into_iter()
            .map(VerifyError::Claims)
            .chain(errors)
            .map(|e| e.reason())
            .chain(["ok"]);
        for reason in reasons {
            let key = verification_key(reason).unwrap_or_else(|| panic!("{reason}"));
            let labels: Vec<_> = key.labels().map(|l| (l.key(), l.value())).collect();
            let result = if reason == "ok" { "ok" } else { "rejected" };
            assert_eq!(labels, [("result", result), ("reason", reason)]);
        }
    }

    #[test]
    fn every_metric_is_recorded_with_its_labels() {
        let captured = Captured::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        ::metrics::with_local_recorder(&captured, || {
            runtime.block_on(async {
                let issuer = FakeIssuer::start().await.unwrap();
                let url = issuer.url();
                let keys = RemoteKeys::builder(KeySource::Issuer(url.clone()))
                    .http(loopback())
                    .build()
                    .await
                    .unwrap();
                let fetches = |result: &str| {
                    captured.value(&format!("{KEY_FETCHES}{{issuer={url},result={result}}}"))
                };
                let age = || captured.value(&format!("{KEY_CACHE_AGE}{{issuer={url}}}"));
                assert_eq!(fetches("ok"), Some(1.0));
                assert_eq!(age(), Some(0.0), "a fetch resets the age");

                // The issuer goes down: the failed fetch is counted and the gauge shows how
                // old the kept set is.
                tokio::time::sleep(std::time::Duration::from_millis(60)).await;
                issuer.set_down(true);
                assert!(keys.refresh().await.is_err());
                assert_eq!(fetches("error"), Some(1.0));
                let stale = age().unwrap();
                assert!((0.06..60.0).contains(&stale), "{stale}");
                issuer.set_down(false);
                assert!(keys.refresh().await.is_ok());
                assert_eq!(fetches("ok"), Some(2.0));
                assert_eq!(age(), Some(0.0));

                let introspector = Introspector::new(IntrospectionConfig {
                    http: loopback(),
                    ..IntrospectionConfig::new(issuer.introspection_endpoint(), "svc", "secret")
                })
                .unwrap();
                let verifier = Verifier::builder()
                    .trust(TrustedIssuer::new(url.clone(), keys.clone()).audiences(["svc"]))
                    .introspection(introspector)
                    .build()
                    .unwrap();
                let verifications = |result: &str, reason: &str| {
                    captured.value(&format!(
                        "{VERIFICATIONS}{{result={result},reason={reason}}}"
                    ))
                };
                let good = issuer.sign(serde_json::json!({"sub": "alice", "aud": "svc"}));
                let other_audience = issuer.sign(serde_json::json!({"sub": "bob", "aud": "x"}));
                let expired = issuer.sign(serde_json::json!({"sub": "carol", "aud": "svc",
                    "exp": clock::unix_now_ms() / 1000 - 3600}));
                for _ in 0..3 {
                    assert!(verifier.verify(&good).await.is_ok());
                }
                assert!(verifier.verify(&other_audience).await.is_err());
                assert!(verifier.verify(&expired).await.is_err());
                assert_eq!(verifications("ok", "ok"), Some(3.0));
                assert_eq!(verifications("rejected", "wrong_audience"), Some(1.0));
                assert_eq!(verifications("rejected", "expired"), Some(1.0));

                // Opaque tokens: one call per token and answer, then cache hits.
                let opaque = issuer.issue_opaque(serde_json::json!({"sub": "dave"}));
                let calls = |result: &str| {
                    captured.value(&format!("{INTROSPECTION_CALLS}{{result={result}}}"))
                };
                let hits = |result: &str| {
                    captured.value(&format!("{INTROSPECTION_CACHE_HITS}{{result={result}}}"))
                };
                for _ in 0..3 {
                    assert_eq!(verifier.verify(&opaque).await.unwrap().iam_id, "dave");
                    assert!(verifier.verify("junk-token").await.is_err());
                }
                assert_eq!(calls("active"), Some(1.0));
                assert_eq!(calls("inactive"), Some(1.0));
                assert_eq!(hits("active"), Some(2.0));
                assert_eq!(hits("inactive"), Some(2.0));
                assert_eq!(verifications("rejected", "inactive"), Some(3.0));
                assert_eq!(verifications("ok", "ok"), Some(6.0));
                issuer.set_down(true);
                assert!(verifier.verify("another-junk-token").await.is_err());
                assert_eq!(calls("error"), Some(1.0));
                assert_eq!(verifications("rejected", "unavailable"), Some(1.0));
                assert_eq!(issuer.introspections(), 3);
            });
        });
    }
}
