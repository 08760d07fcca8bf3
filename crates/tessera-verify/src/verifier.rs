//! The `Verifier`: a trust map issuer → (keys, audiences, algorithms, leeway) that turns a
//! presented token into a [`VerifiedCaller`].
//!
//! A JWT or `t1.` token names its issuer (`iss`) and key (`kid`); both are read before any
//! trust decision only to pick the entry and the key. The key is looked up by (issuer, `kid`)
//! and the algorithm comes from the key (it must be one the entry allows and the one the
//! header names), never from the token alone. Claims are then checked by the one
//! [`Validation`] (issuer, audiences, times). A token whose `kid` the issuer's cached set
//! lacks triggers at most one refetch per interval ([`crate::refresh`]). Opaque tokens and
//! tokens of issuers outside the map go to introspection when it is configured.

use crate::caller::{TokenKind, VerifiedCaller};
use crate::claims::{ClaimSet, Typed};
use crate::iam_token::split_iam_token;
use crate::jws::{read_header, split_jws};
use crate::{clock, is_iam_token, metrics};
use crate::{Jwks, KeyAlgorithm, Validation, VerifyError, VerifyingKey};
use std::collections::HashMap;
use std::sync::Arc;

/// Where an issuer's keys come from.
#[derive(Debug, Clone)]
pub enum Keys {
    /// A fixed key set (read from a file, or handed in by the application).
    Static(Arc<Jwks>),
    /// A cached, refreshed key set fetched over HTTP.
    #[cfg(feature = "http")]
    Remote(Arc<crate::RemoteKeys>),
}

impl From<Jwks> for Keys {
    fn from(jwks: Jwks) -> Self {
        Keys::Static(Arc::new(jwks))
    }
}

#[cfg(feature = "http")]
impl From<Arc<crate::RemoteKeys>> for Keys {
    fn from(keys: Arc<crate::RemoteKeys>) -> Self {
        Keys::Remote(keys)
    }
}

impl Keys {
    fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        match self {
            Keys::Static(jwks) => jwks.get(kid).cloned(),
            #[cfg(feature = "http")]
            Keys::Remote(remote) => remote.current().get(kid).cloned(),
        }
    }
}

/// Every algorithm the crate verifies (all asymmetric; `none` and HMAC do not exist here).
pub const ALL_ALGORITHMS: [KeyAlgorithm; 7] = [
    KeyAlgorithm::Rs256,
    KeyAlgorithm::Rs384,
    KeyAlgorithm::Rs512,
    KeyAlgorithm::Ps256,
    KeyAlgorithm::Es256,
    KeyAlgorithm::Es384,
    KeyAlgorithm::EdDsa,
];

/// Why a trusted issuer could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("issuer {0}: say which audiences to accept, or call any_audience()")]
    NoAudience(String),
    #[error("issuer {0}: leeway must be between 0 and 60 seconds")]
    Leeway(String),
    #[error("issuer {0}: no algorithm allowed")]
    NoAlgorithm(String),
}

/// Which `aud` an issuer's tokens must carry: one of a list (an empty list refuses every
/// token, as [`Validation::with_audiences`] does), or any and none.
#[derive(Debug, Clone)]
enum Audiences {
    Listed(Vec<String>),
    Any,
}

/// One entry of the trust map. Built with [`TrustedIssuer::new`].
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    issuer: String,
    keys: Keys,
    audiences: Option<Audiences>,
    algorithms: Vec<KeyAlgorithm>,
    leeway: Option<i64>,
}

impl TrustedIssuer {
    /// Tokens whose `iss` is exactly `issuer`, signed by `keys`. Audiences must still be
    /// chosen ([`TrustedIssuer::audiences`] or [`TrustedIssuer::any_audience`]).
    pub fn new(issuer: impl Into<String>, keys: impl Into<Keys>) -> Self {
        TrustedIssuer {
            issuer: issuer.into(),
            keys: keys.into(),
            audiences: None,
            algorithms: ALL_ALGORITHMS.to_vec(),
            leeway: None,
        }
    }

    /// Accept tokens whose `aud` is (or contains) one of these; a token without `aud` fails.
    pub fn audiences<I: IntoIterator<Item = S>, S: Into<String>>(mut self, audiences: I) -> Self {
        self.audiences = Some(Audiences::Listed(
            audiences.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Accept tokens of any or no audience (Tessera's own IBM and `t1.` tokens carry none).
    pub fn any_audience(mut self) -> Self {
        self.audiences = Some(Audiences::Any);
        self
    }

    /// Only keys of these algorithms verify (default: every one the crate knows).
    pub fn algorithms<I: IntoIterator<Item = KeyAlgorithm>>(mut self, algorithms: I) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat` (0..=60 s; default [`crate::LEEWAY`]).
    pub fn leeway(mut self, seconds: i64) -> Self {
        self.leeway = Some(seconds);
        self
    }
}

/// A configured entry: the validation is built once.
#[derive(Debug)]
struct Entry {
    keys: Keys,
    algorithms: Vec<KeyAlgorithm>,
    validation: Validation,
}

/// Builds a [`Verifier`].
#[derive(Debug, Default)]
pub struct VerifierBuilder {
    issuers: Vec<TrustedIssuer>,
    #[cfg(feature = "introspection")]
    introspector: Option<crate::Introspector>,
}

impl VerifierBuilder {
    pub fn trust(mut self, issuer: TrustedIssuer) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// Opaque tokens and tokens of issuers outside the trust map are checked here.
    #[cfg(feature = "introspection")]
    pub fn introspection(mut self, introspector: crate::Introspector) -> Self {
        self.introspector = Some(introspector);
        self
    }

    pub fn build(self) -> Result<Verifier, ConfigError> {
        let mut issuers = HashMap::new();
        for trusted in self.issuers {
            let name = trusted.issuer.clone();
            let audiences = trusted
                .audiences
                .ok_or_else(|| ConfigError::NoAudience(name.clone()))?;
            if trusted.algorithms.is_empty() {
                return Err(ConfigError::NoAlgorithm(name));
            }
            let mut validation = Validation::new().with_issuer(name.clone());
            if let Audiences::Listed(audiences) = audiences {
                validation = validation.with_audiences(audiences);
            }
            if let Some(leeway) = trusted.leeway {
                validation = validation
                    .with_leeway(leeway)
                    .map_err(|_| ConfigError::Leeway(name.clone()))?;
            }
            issuers.insert(
                name,
                Entry {
                    keys: trusted.keys,
                    algorithms: trusted.algorithms,
                    validation,
                },
            );
        }
        Ok(Verifier {
            names_needed: issuers
                .values()
                .any(|entry: &Entry| entry.validation.has_required_claims()),
            issuers,
            #[cfg(feature = "introspection")]
            introspector: self.introspector,
        })
    }
}

/// Verifies presented tokens against a trust map. Cheap to share (`Arc<Verifier>`).
#[derive(Debug)]
pub struct Verifier {
    issuers: HashMap<String, Entry>,
    /// Whether any entry's validation requires claims by name.
    names_needed: bool,
    #[cfg(feature = "introspection")]
    introspector: Option<crate::Introspector>,
}

/// A token read but not verified yet.
struct Presented<'t> {
    kind: TokenKind,
    /// The claim set, JSON text (UTF-8 checked), read once into a [`ClaimSet`].
    json: String,
    /// The decoded JOSE header of a JWT, read in [`Verifier::offline`] (strings borrowed from
    /// it); `None` for a `t1.` token, which names its key in its claims and has no header.
    header: Option<Vec<u8>>,
    signed: &'t [u8],
    signature: Vec<u8>,
}

/// What the offline check concluded.
enum Offline<'v> {
    Verified(VerifiedCaller),
    Rejected(VerifyError),
    /// The issuer is trusted but its cached set lacks the token's `kid`.
    UnknownKid(&'v Entry),
    /// Not a token of a trusted issuer (opaque, or another issuer): introspection's case.
    Foreign(VerifyError),
}

fn read(token: &str) -> Result<Presented<'_>, VerifyError> {
    let text = |payload: Vec<u8>| {
        String::from_utf8(payload).map_err(|_| VerifyError::Malformed("payload"))
    };
    if is_iam_token(token) {
        let raw = split_iam_token(token)?;
        return Ok(Presented {
            kind: TokenKind::IamToken,
            json: text(raw.payload)?,
            header: None,
            signed: raw.signed,
            signature: raw.signature,
        });
    }
    let raw = split_jws(token)?;
    Ok(Presented {
        kind: TokenKind::Jwt,
        json: text(raw.payload)?,
        header: Some(raw.header),
        signed: raw.signing_input,
        signature: raw.signature,
    })
}

impl Verifier {
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// Verifies `token` now: offline against the cached keys, refetching an issuer's keys once
    /// per interval for an unknown `kid`, and by introspection for opaque or foreign tokens.
    /// Counts the result in `tessera_verify_verifications_total`.
    pub async fn verify(&self, token: &str) -> Result<VerifiedCaller, VerifyError> {
        self.verify_at(token, clock::unix_now_ms()).await
    }

    /// [`Verifier::verify`] at a given time (unix milliseconds).
    pub async fn verify_at(&self, token: &str, now_ms: i64) -> Result<VerifiedCaller, VerifyError> {
        let result = self.verify_inner(token, now_ms).await;
        metrics::verification(result.as_ref().map_or_else(VerifyError::reason, |_| "ok"));
        result
    }

    async fn verify_inner(&self, token: &str, now_ms: i64) -> Result<VerifiedCaller, VerifyError> {
        let now = now_ms.div_euclid(1000);
        match self.offline(token, now) {
            Offline::Verified(caller) => Ok(caller),
            Offline::Rejected(error) => Err(error),
            Offline::UnknownKid(entry) => {
                #[cfg(feature = "http")]
                if let Keys::Remote(remote) = &entry.keys {
                    remote.refresh_for_unknown_kid(now_ms).await;
                    return match self.offline(token, now) {
                        Offline::Verified(caller) => Ok(caller),
                        Offline::Rejected(error) | Offline::Foreign(error) => Err(error),
                        Offline::UnknownKid(_) => Err(VerifyError::UnknownKey),
                    };
                }
                let _ = entry;
                Err(VerifyError::UnknownKey)
            }
            Offline::Foreign(error) => {
                #[cfg(feature = "introspection")]
                if let Some(introspector) = &self.introspector {
                    return introspector.introspect(token, now_ms).await;
                }
                Err(error)
            }
        }
    }

    /// Verifies `token` against the cached keys only (no fetch, no introspection, no waiting):
    /// for synchronous callers such as the tonic interceptor. An unknown `kid` of a remote set
    /// starts a refetch in the background (within the interval rule) and fails this call.
    pub fn verify_cached(&self, token: &str, now_ms: i64) -> Result<VerifiedCaller, VerifyError> {
        let result = match self.offline(token, now_ms.div_euclid(1000)) {
            Offline::Verified(caller) => Ok(caller),
            Offline::Rejected(error) | Offline::Foreign(error) => Err(error),
            Offline::UnknownKid(entry) => {
                #[cfg(feature = "http")]
                if let Keys::Remote(remote) = &entry.keys {
                    remote.spawn_refresh_for_unknown_kid(now_ms);
                }
                let _ = entry;
                Err(VerifyError::UnknownKey)
            }
        };
        metrics::verification(result.as_ref().map_or_else(VerifyError::reason, |_| "ok"));
        result
    }

    fn offline(&self, token: &str, now: i64) -> Offline<'_> {
        let presented = match read(token) {
            Ok(presented) => presented,
            Err(error) => return Offline::Foreign(error),
        };
        let header = match presented.header.as_deref().map(read_header).transpose() {
            Ok(header) => header,
            Err(error) => return Offline::Foreign(error),
        };
        // One pass over the payload: no map of claims is built on the token path.
        // The names are kept only when some issuer requires claims by name (before the issuer
        // is known, which needs the payload read).
        let Ok(set) = ClaimSet::from_json(&presented.json, self.names_needed) else {
            return Offline::Foreign(VerifyError::Malformed("payload"));
        };
        let Typed::Is(issuer) = &set.iss else {
            return Offline::Foreign(VerifyError::UntrustedIssuer);
        };
        let Some(entry) = self.issuers.get(issuer.as_ref()) else {
            return Offline::Foreign(VerifyError::UntrustedIssuer);
        };
        let kid = match &header {
            Some(header) => header.kid.as_deref(),
            None => set.kid.as_deref(),
        };
        let Some(kid) = kid else {
            return Offline::Rejected(VerifyError::UnknownKey);
        };
        let Some(key) = entry.keys.key(kid) else {
            return Offline::UnknownKid(entry);
        };
        let alg = header.as_ref().map(|header| header.alg.as_ref());
        match check(entry, &key, alg, &presented, &set, now) {
            Ok(()) => Offline::Verified(VerifiedCaller::from_claims(
                presented.kind,
                &set,
                Arc::from(presented.json.as_str()),
            )),
            Err(error) => Offline::Rejected(error),
        }
    }
}

/// The checks after the key look-up: the algorithm, the signature, then the claims.
fn check(
    entry: &Entry,
    key: &VerifyingKey,
    alg: Option<&str>,
    presented: &Presented<'_>,
    set: &ClaimSet<'_>,
    now: i64,
) -> Result<(), VerifyError> {
    if !entry.algorithms.contains(&key.algorithm()) {
        return Err(VerifyError::AlgorithmNotAllowed);
    }
    match alg {
        // A JWT's header must name the key's own algorithm.
        Some(alg) if alg != key.algorithm().as_str() => return Err(VerifyError::AlgorithmMismatch),
        // `t1.` tokens are Ed25519 by definition.
        None if key.algorithm() != KeyAlgorithm::EdDsa => {
            return Err(VerifyError::AlgorithmMismatch)
        }
        _ => {}
    }
    key.verify_signature(presented.signed, &presented.signature)?;
    entry.validation.validate_set(set, now)?;
    Ok(())
}
