//! RFC 7662 introspection for tokens the verifier cannot check offline (opaque tokens, or
//! tokens of an installation whose keys it does not hold), with client authentication (HTTP
//! Basic, RFC 6749 §2.3.1) and a short cache of answers: positive answers for at most
//! [`IntrospectionConfig::positive_ttl`] (and never past the token's `exp`), negative ones for
//! [`IntrospectionConfig::negative_ttl`]. The cache is keyed by the token's SHA-256, so it
//! holds no token.

use crate::caller::{TokenKind, VerifiedCaller};
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
    /// Most answers kept; when full, expired ones are dropped, then all.
    pub max_entries: usize,
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
            audiences: Vec::new(),
            http: HttpOptions::default(),
        }
    }
}

struct Cached {
    caller: Option<VerifiedCaller>,
    until_ms: i64,
}

/// The introspection client and its cache.
pub struct Introspector {
    config: IntrospectionConfig,
    fetcher: Fetcher,
    validation: Validation,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
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
            config,
            fetcher,
            validation,
            cache: Mutex::new(HashMap::new()),
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
        let entry = cache.get(key)?;
        (entry.until_ms > now_ms).then(|| entry.caller.clone())
    }

    fn store(&self, key: [u8; 32], caller: Option<VerifiedCaller>, until_ms: i64, now_ms: i64) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= self.config.max_entries {
            cache.retain(|_, entry| entry.until_ms > now_ms);
            if cache.len() >= self.config.max_entries {
                cache.clear();
            }
        }
        cache.insert(key, Cached { caller, until_ms });
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
        // An active answer is still held to exp (required) and the configured audiences.
        self.validation
            .validate(&answer, now_ms.div_euclid(1000))
            .map_err(VerifyError::Claims)?;
        Ok(Some(VerifiedCaller::from_claims(
            TokenKind::Introspected,
            answer,
        )))
    }
}
