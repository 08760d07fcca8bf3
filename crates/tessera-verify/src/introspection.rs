//! RFC 7662 introspection for tokens the verifier cannot check offline (opaque tokens, or
//! tokens of an installation whose keys it does not hold), with client authentication (HTTP
//! Basic, RFC 6749 §2.3.1) and a short cache of answers: positive answers for at most
//! [`IntrospectionConfig::positive_ttl`] (and never past the token's `exp`), negative ones for
//! [`IntrospectionConfig::negative_ttl`]. The cache is keyed by the token's SHA-256, so it
//! holds no token.
//!
//! Positive and negative answers are kept apart, each bounded ([`IntrospectionConfig::max_entries`],
//! [`IntrospectionConfig::max_negative_entries`]): when one is full, its expired answers go, then
//! the one that would expire first, one at a time. A flood of junk tokens (each one inactive)
//! thus only cycles the negative side; it never evicts an active caller's answer nor empties the
//! cache.

use crate::caller::{TokenKind, VerifiedCaller};
use crate::claims::ClaimSet;
use crate::fetch::{Fetcher, HttpOptions};
use crate::{metrics, Validation, VerifyError};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Where and how to introspect.
#[derive(Clone)]
pub struct IntrospectionConfig {
    /// The introspection endpoint (Tessera: `<server>/identity/introspect`).
    pub endpoint: String,
    /// The resource service's client id and secret (HTTP Basic).
    pub client_id: String,
    pub client_secret: String,
    pub positive_ttl: Duration,
    pub negative_ttl: Duration,
    /// Most positive (active) answers kept; when full, the expired ones go, then the one
    /// expiring first.
    pub max_entries: usize,
    /// Most negative (inactive) answers kept, apart from the positive ones, evicted the same
    /// way: junk tokens never push out an active caller's answer.
    pub max_negative_entries: usize,
    /// Audiences the introspected token must have (empty: not checked).
    pub audiences: Vec<String>,
    pub http: HttpOptions,
}

impl std::fmt::Debug for IntrospectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionConfig")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("positive_ttl", &self.positive_ttl)
            .field("negative_ttl", &self.negative_ttl)
            .finish_non_exhaustive()
    }
}

impl IntrospectionConfig {
    pub fn new(
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        IntrospectionConfig {
            endpoint: endpoint.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            positive_ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(10),
            max_entries: 10_000,
            max_negative_entries: 1_000,
            audiences: Vec::new(),
            http: HttpOptions::default(),
        }
    }
}

/// One side of the answer cache (positive or negative), bounded, with per-entry eviction.
struct Bounded<T> {
    /// Value, valid until (unix ms), insertion number (the older of two answers expiring
    /// together goes first).
    entries: HashMap<[u8; 32], (T, i64, u64)>,
    capacity: usize,
    inserted: u64,
}

impl<T: Clone> Bounded<T> {
    fn new(capacity: usize) -> Self {
        Bounded {
            entries: HashMap::new(),
            capacity,
            inserted: 0,
        }
    }

    /// The value stored for `key`, if it is still valid at `now_ms`.
    fn get(&self, key: &[u8; 32], now_ms: i64) -> Option<T> {
        let (value, until_ms, _) = self.entries.get(key)?;
        (*until_ms > now_ms).then(|| value.clone())
    }

    /// Stores `value` until `until_ms`. When full: the expired entries go; if none had, the
    /// entry expiring first (one; of those expiring together, the oldest). The scan is linear, which is nothing beside the HTTP call
    /// that produced the answer.
    fn insert(&mut self, key: [u8; 32], value: T, until_ms: i64, now_ms: i64) {
        if self.capacity == 0 {
            return;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.entries.retain(|_, (_, until, _)| *until > now_ms);
            if self.entries.len() >= self.capacity {
                let first = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, until, inserted))| (*until, *inserted))
                    .map(|(key, _)| *key);
                if let Some(first) = first {
                    self.entries.remove(&first);
                }
            }
        }
        self.inserted += 1;
        self.entries.insert(key, (value, until_ms, self.inserted));
    }

    fn remove(&mut self, key: &[u8; 32]) {
        self.entries.remove(key);
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The answers: active callers, and tokens found inactive.
struct Cache {
    active: Bounded<VerifiedCaller>,
    inactive: Bounded<()>,
}

/// The introspection client and its cache.
pub struct Introspector {
    config: IntrospectionConfig,
    fetcher: Fetcher,
    validation: Validation,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Introspector {
    pub fn new(config: IntrospectionConfig) -> Result<Self, crate::FetchError> {
        let fetcher = Fetcher::new(&config.http)?;
        fetcher.check_url(&config.endpoint)?;
        // An empty list means "not checked" here; to `Validation` it would refuse every token.
        let validation = if config.audiences.is_empty() {
            Validation::new()
        } else {
            Validation::new().with_audiences(config.audiences.clone())
        };
        Ok(Introspector {
            fetcher,
            validation,
            cache: Mutex::new(Cache {
                active: Bounded::new(config.max_entries),
                inactive: Bounded::new(config.max_negative_entries),
            }),
            config,
        })
    }

    /// Asks the endpoint about `token` (or answers from the cache).
    pub async fn introspect(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<VerifiedCaller, VerifyError> {
        let key: [u8; 32] = {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
            let mut key = [0u8; 32];
            key.copy_from_slice(digest.as_ref());
            key
        };
        if let Some(answer) = self.cached(&key, now_ms) {
            metrics::introspection_cache_hit(answer.is_some());
            return answer.ok_or(VerifyError::Inactive);
        }
        let result = self.ask(token, now_ms).await;
        metrics::introspection_call(match &result {
            Ok(Some(_)) => "active",
            Ok(None) => "inactive",
            Err(_) => "error",
        });
        let caller = result?;
        let until_ms = match &caller {
            Some(caller) => now_ms
                .saturating_add(millis(self.config.positive_ttl))
                .min(caller.expires_at.saturating_mul(1000)),
            None => now_ms.saturating_add(millis(self.config.negative_ttl)),
        };
        self.store(key, caller.clone(), until_ms, now_ms);
        caller.ok_or(VerifyError::Inactive)
    }

    fn cached(&self, key: &[u8; 32], now_ms: i64) -> Option<Option<VerifiedCaller>> {
        let cache = self.cache.lock().ok()?;
        if let Some(caller) = cache.active.get(key, now_ms) {
            return Some(Some(caller));
        }
        cache.inactive.get(key, now_ms).map(|()| None)
    }

    fn store(&self, key: [u8; 32], caller: Option<VerifiedCaller>, until_ms: i64, now_ms: i64) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        // One answer per token: the newer one replaces the other side's.
        match caller {
            Some(caller) => {
                cache.inactive.remove(&key);
                cache.active.insert(key, caller, until_ms, now_ms);
            }
            None => {
                cache.active.remove(&key);
                cache.inactive.insert(key, (), until_ms, now_ms);
            }
        }
    }

    /// How many answers the cache holds: (active, inactive).
    pub fn cached_answers(&self) -> (usize, usize) {
        self.cache
            .lock()
            .map_or((0, 0), |cache| (cache.active.len(), cache.inactive.len()))
    }

    /// One call: `Some` for an active token whose claims validate, `None` for an inactive one.
    async fn ask(&self, token: &str, now_ms: i64) -> Result<Option<VerifiedCaller>, VerifyError> {
        let endpoint = &self.config.endpoint;
        let unavailable = |e: crate::FetchError| VerifyError::Unavailable(e.to_string());
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let request = self
            .fetcher
            .post(endpoint)
            .map_err(unavailable)?
            .basic_auth(
                encode(&self.config.client_id),
                Some(encode(&self.config.client_secret)),
            )
            .form(&[("token", token)]);
        let fetched = self
            .fetcher
            .send(endpoint, request)
            .await
            .map_err(unavailable)?;
        let answer: Map<String, Value> = serde_json::from_slice(&fetched.body).map_err(|_| {
            VerifyError::Unavailable(format!("{endpoint} answered no introspection document"))
        })?;
        match answer.get("active") {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => return Ok(None),
            _ => {
                return Err(VerifyError::Unavailable(format!(
                    "{endpoint} answered no boolean active member"
                )))
            }
        }
        // An active answer is still held to exp (required) and the configured audiences; the
        // caller is read from it as from a token's claims (the same one-pass reading).
        let json: std::sync::Arc<str> = Value::Object(answer).to_string().into();
        let set =
            ClaimSet::from_json(&json, self.validation.has_required_claims()).map_err(|_| {
                VerifyError::Unavailable(format!("{endpoint} answered no introspection document"))
            })?;
        self.validation
            .validate_set(&set, now_ms.div_euclid(1000))
            .map_err(VerifyError::Claims)?;
        Ok(Some(VerifiedCaller::from_claims(
            TokenKind::Introspected,
            &set,
            json.clone(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::FakeIssuer;

    fn introspector(issuer: &FakeIssuer, active: usize, inactive: usize) -> Introspector {
        Introspector::new(IntrospectionConfig {
            http: HttpOptions {
                allow_private: vec!["127.0.0.1/32".parse().unwrap()],
                ..HttpOptions::default()
            },
            max_entries: active,
            max_negative_entries: inactive,
            ..IntrospectionConfig::new(issuer.introspection_endpoint(), "svc", "secret")
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_flood_of_junk_tokens_never_evicts_active_answers() {
        let issuer = FakeIssuer::start().await.unwrap();
        let introspector = introspector(&issuer, 4, 8);
        let now = crate::clock::unix_now_ms();
        let alice = issuer.issue_opaque(serde_json::json!({"sub": "alice"}));
        let bob = issuer.issue_opaque(serde_json::json!({"sub": "bob"}));
        for token in [&alice, &bob] {
            assert!(introspector.introspect(token, now).await.is_ok());
        }
        assert_eq!(issuer.introspections(), 2);
        for n in 0..100 {
            let junk = format!("junk-{n}");
            assert_eq!(
                introspector.introspect(&junk, now).await.unwrap_err(),
                VerifyError::Inactive
            );
        }
        assert_eq!(issuer.introspections(), 102);
        // The negative side stayed at its bound; the active answers are all still there.
        assert_eq!(introspector.cached_answers(), (2, 8));
        assert_eq!(
            introspector.introspect(&alice, now).await.unwrap().iam_id,
            "alice"
        );
        assert_eq!(
            introspector.introspect(&bob, now).await.unwrap().iam_id,
            "bob"
        );
        // And the latest junk answer is cached too (the flood evicted the oldest ones only).
        assert!(introspector.introspect("junk-99", now).await.is_err());
        assert_eq!(issuer.introspections(), 102);
        assert!(introspector.introspect("junk-0", now).await.is_err());
        assert_eq!(issuer.introspections(), 103);
    }

    #[tokio::test]
    async fn a_full_cache_evicts_the_answer_expiring_first_not_all() {
        let issuer = FakeIssuer::start().await.unwrap();
        let introspector = introspector(&issuer, 2, 2);
        let t0 = crate::clock::unix_now_ms();
        let tokens: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|sub| issuer.issue_opaque(serde_json::json!({ "sub": sub })))
            .collect();
        for (n, token) in (0i64..).zip(&tokens) {
            assert!(introspector.introspect(token, t0 + n).await.is_ok());
        }
        assert_eq!(introspector.cached_answers(), (2, 0));
        // `a` (cached first, so expiring first) went; `b` and `c` answer from the cache.
        for token in &tokens[1..] {
            assert!(introspector.introspect(token, t0 + 3).await.is_ok());
        }
        assert_eq!(issuer.introspections(), 3);
        assert!(introspector.introspect(&tokens[0], t0 + 3).await.is_ok());
        assert_eq!(issuer.introspections(), 4);
        // Past the positive TTL every answer is asked again.
        let later = t0 + 31_000;
        assert!(introspector.introspect(&tokens[1], later).await.is_ok());
        assert_eq!(issuer.introspections(), 5);
    }
}
