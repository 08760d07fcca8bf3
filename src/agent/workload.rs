//! The workloads an agent serves and their cached tokens. Each workload's token is refreshed
//! by a background task halfway through the time it may be served, with exponential backoff
//! while the server cannot be reached; requests only read the cache (one lock-free-ish read
//! of an `Arc`), so serving a token costs no I/O.

use super::upstream::{unix_now, Credential, FetchedToken, Upstream, UpstreamError};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Mutex as AsyncMutex;

/// Most ID tokens cached per workload (one per audience and format).
const MAX_ID_TOKENS: usize = 256;

/// How long tokens are served and when they are refreshed.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    pub expiry_margin: i64,
    pub max_backoff: Duration,
}

impl RefreshPolicy {
    /// The margin for a token of this lifetime: the configured one, at most half the lifetime.
    fn margin(&self, lifetime: i64) -> i64 {
        self.expiry_margin.min(lifetime / 2).max(0)
    }
}

/// A token as served: until `serve_until`, refreshed from `refresh_at`.
#[derive(Debug)]
pub struct CachedToken {
    pub access_token: String,
    pub expires_at: i64,
    pub serve_until: i64,
    pub refresh_at: i64,
}

impl CachedToken {
    fn new(fetched: FetchedToken, now: i64, policy: &RefreshPolicy) -> CachedToken {
        let lifetime = (fetched.expires_at - now).max(0);
        let serve_until = fetched.expires_at - policy.margin(lifetime);
        CachedToken {
            refresh_at: now + (serve_until - now).max(0) / 2,
            access_token: fetched.access_token,
            expires_at: fetched.expires_at,
            serve_until,
        }
    }
}

/// How a workload's token is obtained.
pub enum TokenSource {
    /// With the agent's own credential (single-workload mode).
    Own,
    /// `CreateForServiceAccount` for this account, with the agent's own token (host mode).
    Delegated(String),
}

/// Who the workload is, once known (from the config or the server's `whoami`).
#[derive(Debug, Clone)]
pub struct WorkloadInfo {
    pub service_account_id: String,
    pub email: String,
}

pub struct Workload {
    pub source: TokenSource,
    pub scopes: Vec<String>,
    configured_email: Option<String>,
    info: RwLock<Option<Arc<WorkloadInfo>>>,
    token: RwLock<Option<Arc<CachedToken>>>,
    id_tokens: Mutex<HashMap<(String, bool), FetchedToken>>,
    /// Last refresh failure, for the 503 message.
    last_error: RwLock<Option<String>>,
}

impl Workload {
    pub fn new(source: TokenSource, email: Option<String>, scopes: Vec<String>) -> Workload {
        Workload {
            source,
            scopes,
            configured_email: email,
            info: RwLock::new(None),
            token: RwLock::new(None),
            id_tokens: Mutex::new(HashMap::new()),
            last_error: RwLock::new(None),
        }
    }

    /// The cached token if it may still be served at `now`.
    pub fn token(&self, now: i64) -> Option<Arc<CachedToken>> {
        let guard = self.token.read().ok()?;
        guard.as_ref().filter(|t| now < t.serve_until).cloned()
    }

    pub fn info(&self) -> Option<Arc<WorkloadInfo>> {
        self.info.read().ok()?.clone()
    }

    /// Why there is no token to serve.
    pub fn unavailable_reason(&self) -> String {
        let last = self.last_error.read().ok().and_then(|e| e.clone());
        match last {
            Some(e) => format!("no valid token is cached and the last refresh failed: {e}"),
            None => "the agent has not obtained a token yet".to_owned(),
        }
    }

    /// An ID token for this workload and `audience`, cached until the margin before it expires.
    pub async fn id_token(
        &self,
        shared: &Shared,
        audience: &str,
        full: bool,
        compute_engine: &Map<String, Value>,
    ) -> Result<String, IdTokenError> {
        let now = unix_now();
        let key = (audience.to_owned(), full);
        if let Ok(cache) = self.id_tokens.lock() {
            if let Some(cached) = cache.get(&key) {
                if cached.expires_at - shared.policy.margin(3600) > now {
                    return Ok(cached.access_token.clone());
                }
            }
        }
        let bearer = self.token(now).ok_or(IdTokenError::NoToken)?;
        let fetched = shared
            .upstream
            .id_token(&bearer.access_token, audience, full, compute_engine)
            .await
            .map_err(IdTokenError::Upstream)?;
        let token = fetched.access_token.clone();
        if let Ok(mut cache) = self.id_tokens.lock() {
            if cache.len() >= MAX_ID_TOKENS {
                cache.clear();
            }
            cache.insert(key, fetched);
        }
        Ok(token)
    }

    fn store(&self, fetched: FetchedToken, policy: &RefreshPolicy) -> Arc<CachedToken> {
        let cached = Arc::new(CachedToken::new(fetched, unix_now(), policy));
        if let Ok(mut slot) = self.token.write() {
            *slot = Some(cached.clone());
        }
        if let Ok(mut last) = self.last_error.write() {
            *last = None;
        }
        cached
    }

    fn set_error(&self, error: &UpstreamError) {
        if let Ok(mut last) = self.last_error.write() {
            *last = Some(error.to_string());
        }
    }
}

pub enum IdTokenError {
    NoToken,
    Upstream(UpstreamError),
}

/// What every workload's refresh shares: the server, the agent's credential and its own token.
pub struct Shared {
    pub upstream: Upstream,
    pub credential: Credential,
    pub policy: RefreshPolicy,
    /// The agent's own token in host mode (workloads' tokens are made with it).
    own: AsyncMutex<Option<Arc<CachedToken>>>,
}

impl Shared {
    pub fn new(upstream: Upstream, credential: Credential, policy: RefreshPolicy) -> Shared {
        Shared {
            upstream,
            credential,
            policy,
            own: AsyncMutex::new(None),
        }
    }

    /// The agent's own token, fetched again once it may no longer be served (or when `stale`
    /// is set: the server refused it).
    async fn own_token(&self, stale: bool) -> Result<Arc<CachedToken>, UpstreamError> {
        let mut own = self.own.lock().await;
        let now = unix_now();
        if let Some(token) = own.as_ref().filter(|t| !stale && now < t.refresh_at) {
            return Ok(token.clone());
        }
        let fetched = self.upstream.authenticate(&self.credential).await?;
        let cached = Arc::new(CachedToken::new(fetched, now, &self.policy));
        *own = Some(cached.clone());
        Ok(cached)
    }

    /// A fresh token for `workload`.
    async fn fetch(&self, workload: &Workload) -> Result<FetchedToken, UpstreamError> {
        match &workload.source {
            TokenSource::Own => self.upstream.authenticate(&self.credential).await,
            TokenSource::Delegated(id) => {
                let own = self.own_token(false).await?;
                match self
                    .upstream
                    .create_for_service_account(&own.access_token, id)
                    .await
                {
                    // Our own token may have been revoked: try once with a new one.
                    Err(UpstreamError::Refused { status: 401, .. }) => {
                        let own = self.own_token(true).await?;
                        self.upstream
                            .create_for_service_account(&own.access_token, id)
                            .await
                    }
                    other => other,
                }
            }
        }
    }

    /// Learns the workload's service account id and e-mail from the server, once.
    async fn learn_info(&self, workload: &Workload, bearer: &str) -> Result<(), UpstreamError> {
        if workload.info().is_some() {
            return Ok(());
        }
        let (id, email) = self.upstream.whoami(bearer).await?;
        let email = workload
            .configured_email
            .clone()
            .or(email)
            .unwrap_or_else(|| format!("{id}@iam.tessera"));
        if let Ok(mut info) = workload.info.write() {
            *info = Some(Arc::new(WorkloadInfo {
                service_account_id: id,
                email,
            }));
        }
        Ok(())
    }

    /// One refresh of `workload`: returns when its next refresh is due (unix seconds). Who
    /// the workload is is learnt before its first token is cached, so a client that got a
    /// token also gets its e-mail, and readiness means both.
    pub async fn refresh(&self, workload: &Workload) -> Result<i64, UpstreamError> {
        let fetched = self.fetch(workload).await?;
        self.learn_info(workload, &fetched.access_token).await?;
        let cached = workload.store(fetched, &self.policy);
        Ok(cached.refresh_at)
    }
}

/// Keeps `workload`'s token fresh for as long as the agent runs.
pub async fn refresh_forever(shared: Arc<Shared>, workload: Arc<Workload>, label: String) {
    let first_backoff = Duration::from_millis(500);
    let mut backoff = first_backoff;
    loop {
        match shared.refresh(&workload).await {
            Ok(next) => {
                backoff = first_backoff;
                metrics::counter!(tessera_server::metrics_names::AGENT_TOKEN_REFRESHES, "outcome" => "ok")
                    .increment(1);
                tracing::info!(workload = %label, next_refresh_in_s = next - unix_now(), "token refreshed");
                let wait = (next - unix_now()).max(1) as u64;
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            Err(error) => {
                metrics::counter!(tessera_server::metrics_names::AGENT_TOKEN_REFRESHES, "outcome" => error.label())
                    .increment(1);
                workload.set_error(&error);
                let valid = workload.token(unix_now()).is_some();
                tracing::warn!(workload = %label, %error, serving_cached = valid, retry_in_ms = backoff.as_millis() as u64, "token refresh failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(shared.policy.max_backoff);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(margin: i64) -> RefreshPolicy {
        RefreshPolicy {
            expiry_margin: margin,
            max_backoff: Duration::from_secs(1),
        }
    }

    #[test]
    fn tokens_are_served_until_the_margin_and_refreshed_halfway() {
        let fetched = FetchedToken {
            access_token: "t".into(),
            expires_at: 1000 + 3600,
        };
        let cached = CachedToken::new(fetched, 1000, &policy(300));
        assert_eq!(cached.serve_until, 1000 + 3300);
        assert_eq!(cached.refresh_at, 1000 + 1650);
    }

    #[test]
    fn short_tokens_keep_half_their_life() {
        let fetched = FetchedToken {
            access_token: "t".into(),
            expires_at: 1000 + 60,
        };
        let cached = CachedToken::new(fetched, 1000, &policy(300));
        assert_eq!(cached.serve_until, 1030);
        assert_eq!(cached.refresh_at, 1015);
    }

    #[test]
    fn an_expired_token_is_not_served() {
        let workload = Workload::new(TokenSource::Own, None, vec![]);
        let fetched = FetchedToken {
            access_token: "t".into(),
            expires_at: unix_now() + 60,
        };
        workload.store(fetched, &policy(0));
        assert!(workload.token(unix_now()).is_some());
        assert!(workload.token(unix_now() + 61).is_none());
    }
}
