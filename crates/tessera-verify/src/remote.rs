//! Key sets fetched over HTTP and cached: from an issuer (OIDC discovery, then its
//! `jwks_uri`) or a JWKS URL.
//!
//! Reads are lock-free ([`RemoteKeys::current`] is an `ArcSwap` load). One fetch is in flight at
//! a time: callers that arrive while one runs wait for its result instead of starting another.
//! A background task refreshes on the issuer's `Cache-Control: max-age` within the policy's
//! floor and ceiling; tokens with an unknown `kid` may trigger one refetch per
//! [`RefreshPolicy::unknown_kid_interval`]. A failed fetch keeps the last good set (a metric and
//! a log line say so); with [`RemoteKeysBuilder::persist_to`] the last good set is also written
//! to a file and read at start, so a restart during an issuer outage still verifies.

use crate::fetch::{FetchError, Fetcher, HttpOptions};
use crate::refresh::{RefreshPolicy, UnknownKidGate};
use crate::{clock, metrics, Jwks};
use arc_swap::{ArcSwap, ArcSwapOption};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where a key set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An OIDC issuer: `<issuer>/.well-known/openid-configuration` names the `jwks_uri`, and
    /// the document's `issuer` must be this URL.
    Issuer(String),
    /// A JWKS document's URL.
    JwksUrl(String),
}

/// Counters of one cache, for tests and status pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyCacheStats {
    pub fetches_ok: u64,
    pub fetches_failed: u64,
    /// Fetches started because a token named an unknown `kid`.
    pub unknown_kid_refetches: u64,
}

/// Builds a [`RemoteKeys`].
#[derive(Debug, Clone)]
pub struct RemoteKeysBuilder {
    source: KeySource,
    policy: RefreshPolicy,
    http: HttpOptions,
    persist: Option<PathBuf>,
    background: bool,
}

impl RemoteKeysBuilder {
    pub fn policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn http(mut self, http: HttpOptions) -> Self {
        self.http = http;
        self
    }

    /// Keep the last good key set in `path` (written after each successful fetch, read at
    /// start when the first fetch fails).
    pub fn persist_to(mut self, path: impl Into<PathBuf>) -> Self {
        self.persist = Some(path.into());
        self
    }

    /// Whether a background task refreshes the set (default on; off, only unknown kids and
    /// explicit [`RemoteKeys::refresh`] calls fetch).
    pub fn background_refresh(mut self, on: bool) -> Self {
        self.background = on;
        self
    }

    /// Fetches the first key set (or reads the persisted one if that fails) and starts the
    /// background refresh. Fails only when neither gives a key set.
    pub async fn build(self) -> Result<Arc<RemoteKeys>, FetchError> {
        let fetcher = Fetcher::new(&self.http)?;
        let (label, direct) = match &self.source {
            KeySource::Issuer(url) => (url.trim_end_matches('/').to_owned(), None),
            KeySource::JwksUrl(url) => (url.clone(), Some(Arc::new(url.clone()))),
        };
        fetcher.check_url(&label)?;
        // File I/O through tokio::fs (a blocking-pool thread): `build` may run on a runtime
        // thread that also serves requests.
        let persisted = match &self.persist {
            Some(path) => tokio::fs::read_to_string(path)
                .await
                .ok()
                .and_then(|text| Jwks::from_json(&text).ok()),
            None => None,
        };
        let had_persisted = persisted.is_some();
        let keys = Arc::new(RemoteKeys {
            gate: UnknownKidGate::new(self.policy.unknown_kid_interval),
            label,
            source: self.source,
            fetcher,
            jwks_uri: ArcSwapOption::new(direct),
            keys: ArcSwap::from_pointee(persisted.unwrap_or_default()),
            fetched_at_ms: AtomicI64::new(0),
            attempts: AtomicU64::new(0),
            flight: tokio::sync::Mutex::new(()),
            policy: self.policy,
            persist: self.persist,
            fetches_ok: AtomicU64::new(0),
            fetches_failed: AtomicU64::new(0),
            unknown_kid_refetches: AtomicU64::new(0),
        });
        let first_wait = match keys.refresh().await {
            Ok(max_age) => keys.policy.next_refresh(max_age),
            Err(error) if had_persisted => {
                tracing::warn!(issuer = %keys.label, %error, "verifying with the persisted key set until the issuer answers");
                keys.policy.retry_after_error
            }
            Err(error) => return Err(error),
        };
        if self.background {
            keys.spawn_background(first_wait);
        }
        Ok(keys)
    }
}

/// A cached, refreshed key set of one issuer.
#[derive(Debug)]
pub struct RemoteKeys {
    /// The issuer URL or JWKS URL: the `issuer` label of metrics and logs.
    label: String,
    source: KeySource,
    fetcher: Fetcher,
    /// The JWKS URL (found by discovery for an issuer; forgotten when a fetch fails, so the
    /// next attempt discovers again).
    jwks_uri: ArcSwapOption<String>,
    keys: ArcSwap<Jwks>,
    /// When the current set was fetched (unix ms); 0 before the first success.
    fetched_at_ms: AtomicI64,
    /// Fetch attempts finished, success or not: a waiter that sees it move knows a fetch ran.
    attempts: AtomicU64,
    /// Held while a fetch runs: the single flight.
    flight: tokio::sync::Mutex<()>,
    gate: UnknownKidGate,
    policy: RefreshPolicy,
    persist: Option<PathBuf>,
    fetches_ok: AtomicU64,
    fetches_failed: AtomicU64,
    unknown_kid_refetches: AtomicU64,
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    jwks_uri: String,
}

impl RemoteKeys {
    pub fn builder(source: KeySource) -> RemoteKeysBuilder {
        RemoteKeysBuilder {
            source,
            policy: RefreshPolicy::default(),
            http: HttpOptions::default(),
            persist: None,
            background: true,
        }
    }

    /// The current key set, without a lock.
    pub fn current(&self) -> arc_swap::Guard<Arc<Jwks>> {
        self.keys.load()
    }

    /// The issuer or JWKS URL this cache fetches from.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn stats(&self) -> KeyCacheStats {
        KeyCacheStats {
            fetches_ok: self.fetches_ok.load(Ordering::Relaxed),
            fetches_failed: self.fetches_failed.load(Ordering::Relaxed),
            unknown_kid_refetches: self.unknown_kid_refetches.load(Ordering::Relaxed),
        }
    }

    /// How old the current set is at `now_ms`; `None` when none was fetched in this process
    /// (an empty or persisted set).
    pub fn age(&self, now_ms: i64) -> Option<Duration> {
        let at = self.fetched_at_ms.load(Ordering::Acquire);
        (at > 0).then(|| Duration::from_millis(u64::try_from(now_ms - at).unwrap_or(0)))
    }

    /// Fetches the key set now, or waits for the fetch already in flight and takes its result.
    /// Answers the `max-age` of a fetch this call made (`None` when it joined another).
    pub async fn refresh(&self) -> Result<Option<u64>, FetchError> {
        let seen = self.attempts.load(Ordering::Acquire);
        let _flight = self.flight.lock().await;
        if self.attempts.load(Ordering::Acquire) != seen {
            // A fetch finished while this caller waited: its result stands.
            return Ok(None);
        }
        let result = self.fetch().await;
        self.attempts.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok((jwks, text, max_age)) => {
                self.keys.store(Arc::new(jwks));
                self.fetched_at_ms
                    .store(clock::unix_now_ms(), Ordering::Release);
                self.fetches_ok.fetch_add(1, Ordering::Relaxed);
                metrics::key_fetch(&self.label, true);
                metrics::key_cache_age(&self.label, 0.0);
                if let Some(path) = &self.persist {
                    persist(path, &text).await;
                }
                Ok(max_age)
            }
            Err(error) => {
                self.fetches_failed.fetch_add(1, Ordering::Relaxed);
                metrics::key_fetch(&self.label, false);
                // The set in use is getting older: say so now, not at the next tick.
                if let Some(age) = self.age(clock::unix_now_ms()) {
                    metrics::key_cache_age(&self.label, age.as_secs_f64());
                }
                if matches!(self.source, KeySource::Issuer(_)) {
                    self.jwks_uri.store(None);
                }
                tracing::warn!(
                    issuer = %self.label,
                    %error,
                    keys = self.keys.load().len(),
                    "key set fetch failed; verifying with the last good set"
                );
                Err(error)
            }
        }
    }

    /// Called when a token names a `kid` the set lacks; the caller looks the key up again
    /// afterwards. The first such call per interval refetches; the others fetch nothing but wait
    /// for a fetch in flight (the one another token of the same new key started), so the tokens
    /// of a fresh key that arrive together all verify.
    pub async fn refresh_for_unknown_kid(&self, now_ms: i64) {
        if self.gate.try_claim(now_ms) {
            self.unknown_kid_refetches.fetch_add(1, Ordering::Relaxed);
            // A failure is already counted and logged; the last good set stays.
            let _ = self.refresh().await;
        } else {
            drop(self.flight.lock().await);
        }
    }

    /// The same without waiting (for synchronous callers such as the tonic interceptor): the
    /// refetch runs on the current tokio runtime, if there is one.
    pub fn spawn_refresh_for_unknown_kid(self: &Arc<Self>, now_ms: i64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let keys = self.clone();
        runtime.spawn(async move { keys.refresh_for_unknown_kid(now_ms).await });
    }

    async fn fetch(&self) -> Result<(Jwks, String, Option<u64>), FetchError> {
        let jwks_uri = match self.jwks_uri.load_full() {
            Some(uri) => uri,
            None => {
                let uri = Arc::new(self.discover().await?);
                self.jwks_uri.store(Some(uri.clone()));
                uri
            }
        };
        let fetched = self.fetcher.get(&jwks_uri).await?;
        let document = |reason: String| FetchError::Document {
            url: jwks_uri.to_string(),
            reason,
        };
        let text = String::from_utf8(fetched.body).map_err(|_| document("not UTF-8".into()))?;
        let jwks = Jwks::from_json(&text).map_err(|e| document(e.to_string()))?;
        if jwks.is_empty() {
            return Err(document("no usable key".into()));
        }
        Ok((jwks, text, fetched.max_age))
    }

    async fn discover(&self) -> Result<String, FetchError> {
        let url = format!("{}/.well-known/openid-configuration", self.label);
        let fetched = self.fetcher.get(&url).await?;
        let document = |reason: &str| FetchError::Document {
            url: url.clone(),
            reason: reason.to_owned(),
        };
        let doc: DiscoveryDocument = serde_json::from_slice(&fetched.body)
            .map_err(|_| document("not a discovery document"))?;
        if doc.issuer.trim_end_matches('/') != self.label {
            return Err(document("its issuer is another URL"));
        }
        self.fetcher.check_url(&doc.jwks_uri)?;
        Ok(doc.jwks_uri)
    }

    fn spawn_background(self: &Arc<Self>, first_wait: Duration) {
        // Wake at least this often to keep the cache-age gauge current.
        const TICK: Duration = Duration::from_secs(15);
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut due = tokio::time::Instant::now() + first_wait;
            loop {
                let now = tokio::time::Instant::now();
                tokio::time::sleep(due.saturating_duration_since(now).min(TICK)).await;
                let Some(keys) = weak.upgrade() else {
                    return;
                };
                if tokio::time::Instant::now() >= due {
                    let wait = match keys.refresh().await {
                        Ok(max_age) => keys.policy.next_refresh(max_age),
                        Err(_) => keys.policy.retry_after_error,
                    };
                    due = tokio::time::Instant::now() + wait;
                }
                if let Some(age) = keys.age(clock::unix_now_ms()) {
                    metrics::key_cache_age(&keys.label, age.as_secs_f64());
                }
            }
        });
    }
}

/// Writes the key set beside `path` and renames it into place, so a crash leaves the old file.
/// Through tokio::fs: the blocking calls run on the blocking pool, never on the runtime thread
/// that refreshes (or verifies a token whose unknown `kid` caused the fetch).
async fn persist(path: &std::path::Path, text: &str) {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let written = match tokio::fs::write(&temporary, text).await {
        Ok(()) => tokio::fs::rename(&temporary, path).await,
        Err(error) => Err(error),
    };
    if let Err(error) = written {
        tracing::warn!(path = %path.display(), %error, "could not persist the key set");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::FakeIssuer;
    use crate::{TrustedIssuer, Verifier, VerifyError};

    fn loopback() -> HttpOptions {
        HttpOptions {
            allow_private: vec!["127.0.0.1/32".parse().unwrap()],
            ..HttpOptions::default()
        }
    }

    /// A verifier that trusts `issuer` with `keys`, for any audience.
    fn verifier_of(issuer: &FakeIssuer, keys: Arc<RemoteKeys>) -> Verifier {
        Verifier::builder()
            .trust(TrustedIssuer::new(issuer.url(), keys).any_audience())
            .build()
            .unwrap()
    }

    async fn cache(issuer: &FakeIssuer) -> Arc<RemoteKeys> {
        RemoteKeys::builder(KeySource::Issuer(issuer.url()))
            .http(loopback())
            .background_refresh(false)
            .build()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn concurrent_refreshes_share_one_fetch() {
        let issuer = FakeIssuer::start().await.unwrap();
        let keys = cache(&issuer).await;
        assert_eq!(issuer.jwks_fetches(), 1);
        let waiting: Vec<_> = (0..16)
            .map(|_| {
                let keys = keys.clone();
                tokio::spawn(async move { keys.refresh().await })
            })
            .collect();
        for handle in waiting {
            assert!(handle.await.unwrap().is_ok());
        }
        assert_eq!(issuer.jwks_fetches(), 2);
        assert_eq!(keys.stats().fetches_ok, 2);
    }

    #[tokio::test]
    async fn unknown_kids_refetch_once_per_interval_on_a_controlled_clock() {
        let issuer = FakeIssuer::start().await.unwrap();
        let keys = cache(&issuer).await;
        let verifier = verifier_of(&issuer, keys.clone());
        let t0 = clock::unix_now_ms();
        assert!(verifier
            .verify_at(&issuer.sign(serde_json::json!({"sub": "a"})), t0)
            .await
            .is_ok());
        assert_eq!(issuer.jwks_fetches(), 1);

        // A rotation: the first token of the new key refetches, and verifies.
        issuer.rotate().unwrap();
        let second = issuer.sign(serde_json::json!({"sub": "b"}));
        assert_eq!(verifier.verify_at(&second, t0).await.unwrap().iam_id, "b");
        assert_eq!(issuer.jwks_fetches(), 2);

        // Another rotation within the interval: refused without a fetch, until it has passed.
        issuer.rotate().unwrap();
        let third = issuer.sign(serde_json::json!({"sub": "c"}));
        let almost = t0 + 29_999;
        assert_eq!(
            verifier.verify_at(&third, almost).await.unwrap_err(),
            VerifyError::UnknownKey
        );
        assert_eq!(issuer.jwks_fetches(), 2);
        assert!(verifier.verify_at(&third, t0 + 30_000).await.is_ok());
        assert_eq!(issuer.jwks_fetches(), 3);
        assert_eq!(keys.stats().unknown_kid_refetches, 2);
    }

    #[tokio::test]
    async fn a_failed_fetch_keeps_the_last_good_set_and_rediscovers() {
        let issuer = FakeIssuer::start().await.unwrap();
        let keys = cache(&issuer).await;
        let verifier = verifier_of(&issuer, keys.clone());
        let token = issuer.sign(serde_json::json!({"sub": "a"}));
        issuer.set_down(true);
        let error = keys.refresh().await.unwrap_err();
        assert!(
            matches!(error, FetchError::Status { status: 503, .. }),
            "{error}"
        );
        assert!(verifier.verify(&token).await.is_ok());
        assert_eq!(keys.stats().fetches_failed, 1);
        // The JWKS URL was forgotten: the next attempt discovers again, and succeeds.
        issuer.set_down(false);
        issuer.set_max_age(1234);
        assert_eq!(keys.refresh().await.unwrap(), Some(1234));
        assert!(keys.age(clock::unix_now_ms()).is_some());
    }

    #[tokio::test]
    async fn the_persisted_set_verifies_after_a_restart_during_an_outage() {
        let issuer = FakeIssuer::start().await.unwrap();
        let path = std::env::temp_dir().join(format!(
            "tessera-verify-persist-{}-{}.json",
            std::process::id(),
            issuer.url().rsplit(':').next().unwrap()
        ));
        let build = || {
            RemoteKeys::builder(KeySource::Issuer(issuer.url()))
                .http(loopback())
                .background_refresh(false)
                .persist_to(&path)
                .build()
        };
        let first = build().await.unwrap();
        assert_eq!(first.current().len(), 1);
        let written = tokio::fs::read_to_string(&path).await.unwrap();
        assert_eq!(Jwks::from_json(&written).unwrap().len(), 1);
        let token = issuer.sign(serde_json::json!({"sub": "a"}));

        // A restart while the issuer is down: the persisted set is the set in use.
        issuer.set_down(true);
        let restarted = build().await.unwrap();
        assert_eq!(restarted.stats().fetches_failed, 1);
        assert!(restarted.age(clock::unix_now_ms()).is_none());
        let verifier = verifier_of(&issuer, restarted);
        assert_eq!(verifier.verify(&token).await.unwrap().iam_id, "a");
        // Without the file, nothing to verify with: the build fails.
        tokio::fs::remove_file(&path).await.unwrap();
        assert!(build().await.is_err());
    }

    #[tokio::test]
    async fn a_discovery_document_of_another_issuer_is_refused() {
        let issuer = FakeIssuer::start().await.unwrap();
        let error = RemoteKeys::builder(KeySource::Issuer(format!("{}/other", issuer.url())))
            .http(loopback())
            .build()
            .await
            .unwrap_err();
        assert!(
            matches!(error, FetchError::Status { status: 404, .. }),
            "{error}"
        );
        let error = RemoteKeys::builder(KeySource::JwksUrl(format!(
            "{}/.well-known/openid-configuration",
            issuer.url()
        )))
        .http(loopback())
        .build()
        .await
        .unwrap_err();
        assert!(matches!(error, FetchError::Document { .. }), "{error}");
    }
}
