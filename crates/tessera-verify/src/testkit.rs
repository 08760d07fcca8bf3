//! A fake rotating issuer for tests of services that use this crate (feature `testkit`), and for
//! the crate's own tests: an OIDC discovery document and a JWKS on a loopback socket, Ed25519
//! keys it adds on [`FakeIssuer::rotate`], EdDSA JWTs it signs with its newest key, opaque
//! tokens its RFC 7662 endpoint (`<url>/introspect`) calls active, fetch and introspection
//! counters and an outage switch.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use tessera_verify::testkit::FakeIssuer;
//! use tessera_verify::{HttpOptions, KeySource, RemoteKeys, TrustedIssuer, Verifier};
//! let issuer = FakeIssuer::start().await.unwrap();
//! let keys = RemoteKeys::builder(KeySource::Issuer(issuer.url()))
//!     .http(HttpOptions { allow_private: vec!["127.0.0.1/32".parse().unwrap()], ..Default::default() })
//!     .build()
//!     .await
//!     .unwrap();
//! let verifier = Verifier::builder()
//!     .trust(TrustedIssuer::new(issuer.url(), keys).audiences(["svc"]))
//!     .build()
//!     .unwrap();
//! issuer.rotate().unwrap(); // a key the cache has not seen: the first token refetches once
//! let token = issuer.sign(serde_json::json!({"sub": "alice", "aud": "svc"}));
//! assert_eq!(verifier.verify(&token).await.unwrap().iam_id, "alice");
//! assert_eq!(issuer.jwks_fetches(), 2);
//! # }
//! ```

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct State {
    keys: Vec<(String, Ed25519KeyPair)>,
    max_age: u64,
    generated: usize,
    /// Opaque tokens the introspection endpoint calls active, with their claims.
    opaque: std::collections::HashMap<String, serde_json::Value>,
}

/// The fake issuer; it serves until dropped with its runtime.
#[derive(Clone)]
pub struct FakeIssuer {
    url: String,
    state: Arc<Mutex<State>>,
    jwks_fetches: Arc<AtomicUsize>,
    introspections: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl std::fmt::Debug for FakeIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeIssuer")
            .field("url", &self.url)
            .finish()
    }
}

fn new_key(n: usize) -> std::io::Result<(String, Ed25519KeyPair)> {
    let failed = || std::io::Error::other("Ed25519 key generation failed");
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| failed())?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| failed())?;
    Ok((format!("fake-{n}"), pair))
}

impl FakeIssuer {
    /// Listens on `127.0.0.1:0` with one key.
    pub async fn start() -> std::io::Result<FakeIssuer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let issuer = FakeIssuer {
            url,
            state: Arc::new(Mutex::new(State {
                keys: vec![new_key(0)?],
                max_age: 300,
                generated: 1,
                opaque: std::collections::HashMap::new(),
            })),
            jwks_fetches: Arc::new(AtomicUsize::new(0)),
            introspections: Arc::new(AtomicUsize::new(0)),
            down: Arc::new(AtomicBool::new(false)),
        };
        let serving = issuer.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let serving = serving.clone();
                tokio::spawn(async move { serving.answer(stream).await });
            }
        });
        Ok(issuer)
    }

    /// The issuer URL (also the `iss` of its tokens).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Adds a new newest key (kept with the old ones); answers its `kid`.
    pub fn rotate(&self) -> std::io::Result<String> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        let key = new_key(state.generated)?;
        state.generated += 1;
        let kid = key.0.clone();
        state.keys.push(key);
        Ok(kid)
    }

    /// Drops every key but the newest.
    pub fn retire_old_keys(&self) {
        if let Ok(mut state) = self.state.lock() {
            let keep = state.keys.len().saturating_sub(1);
            state.keys.drain(..keep);
        }
    }

    /// The `Cache-Control: max-age` the JWKS answers carry.
    pub fn set_max_age(&self, seconds: u64) {
        if let Ok(mut state) = self.state.lock() {
            state.max_age = seconds;
        }
    }

    /// While down, every request is answered 503.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// JWKS requests served or refused so far.
    pub fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Introspection requests served or refused so far.
    pub fn introspections(&self) -> usize {
        self.introspections.load(Ordering::SeqCst)
    }

    /// The introspection endpoint (RFC 7662; it wants HTTP Basic client authentication, of
    /// any client).
    pub fn introspection_endpoint(&self) -> String {
        format!("{}/introspect", self.url)
    }

    /// A new opaque token the introspection endpoint calls active with `claims` (`iss`
    /// defaults to this issuer and `exp` to ten minutes from now).
    pub fn issue_opaque(&self, claims: serde_json::Value) -> String {
        let claims = self.with_defaults(claims);
        let mut random = [0u8; 16];
        if aws_lc_rs::rand::fill(&mut random).is_err() {
            return String::new();
        }
        let token = format!("opaque-{}", URL_SAFE_NO_PAD.encode(random));
        if let Ok(mut state) = self.state.lock() {
            state.opaque.insert(token.clone(), claims);
        }
        token
    }

    fn with_defaults(&self, mut claims: serde_json::Value) -> serde_json::Value {
        if let Some(map) = claims.as_object_mut() {
            map.entry("iss")
                .or_insert_with(|| serde_json::Value::String(self.url.clone()));
            map.entry("exp")
                .or_insert_with(|| (crate::clock::unix_now_ms() / 1000 + 600).into());
        }
        claims
    }

    /// An EdDSA JWT of `claims` with the newest key; `iss` defaults to this issuer and `exp`
    /// to ten minutes from now.
    pub fn sign(&self, claims: serde_json::Value) -> String {
        let claims = self.with_defaults(claims);
        let Ok(state) = self.state.lock() else {
            return String::new();
        };
        let Some((kid, pair)) = state.keys.last() else {
            return String::new();
        };
        let header = serde_json::json!({"alg": "EdDSA", "kid": kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = pair.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    fn jwks(&self) -> (String, u64) {
        let Ok(state) = self.state.lock() else {
            return (String::new(), 0);
        };
        let keys: Vec<serde_json::Value> = state
            .keys
            .iter()
            .map(|(kid, pair)| {
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": kid, "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())})
            })
            .collect();
        (
            serde_json::json!({ "keys": keys }).to_string(),
            state.max_age,
        )
    }

    /// The RFC 7662 answer for the form body `form`.
    fn introspect(&self, form: &[u8]) -> String {
        let token = url::form_urlencoded::parse(form)
            .find(|(name, _)| name == "token")
            .map(|(_, value)| value.into_owned());
        let claims = token.and_then(|token| {
            let state = self.state.lock().ok()?;
            state.opaque.get(&token).cloned()
        });
        match claims {
            Some(serde_json::Value::Object(mut claims)) => {
                claims.insert("active".into(), true.into());
                serde_json::Value::Object(claims).to_string()
            }
            _ => serde_json::json!({"active": false}).to_string(),
        }
    }

    async fn answer(&self, mut stream: tokio::net::TcpStream) {
        let mut request = Vec::new();
        let mut buffer = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
        let head_end = request
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(request.len(), |at| at + 4);
        let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse::<usize>().ok())
            .unwrap_or(0)
            .min(16 * 1024);
        while request.len() < head_end + length {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
        let text = String::from_utf8_lossy(&request[..head_end]);
        let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let (status, body, cache) = if path == "/introspect" {
            self.introspections.fetch_add(1, Ordering::SeqCst);
            let form = request.get(head_end..head_end + length).unwrap_or_default();
            if self.down.load(Ordering::SeqCst) {
                ("503 Service Unavailable", String::new(), None)
            } else if !head
                .lines()
                .any(|line| line.starts_with("authorization: basic "))
            {
                ("401 Unauthorized", String::new(), None)
            } else {
                ("200 OK", self.introspect(form), None)
            }
        } else if path == "/jwks" {
            self.jwks_fetches.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                ("503 Service Unavailable", String::new(), None)
            } else {
                let (body, max_age) = self.jwks();
                ("200 OK", body, Some(max_age))
            }
        } else if path == "/.well-known/openid-configuration" && !self.down.load(Ordering::SeqCst) {
            let doc =
                serde_json::json!({"issuer": self.url, "jwks_uri": format!("{}/jwks", self.url)});
            ("200 OK", doc.to_string(), None)
        } else {
            ("404 Not Found", String::new(), None)
        };
        let cache = cache.map_or_else(String::new, |s| format!("cache-control: max-age={s}\r\n"));
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{cache}content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(body.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
}
