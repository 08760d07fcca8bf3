//! [`Validation`]: the one implementation of claim validation in the project (times with a
//! leeway, issuer, audiences, required claims, lifetime, JSON types of the registered claims).
//!
//! Every token check — this crate's [`crate::Jwks::verify`], the server's own tokens, the
//! service-account JWTs of the Yandex surface, compute-resource and instance identity tokens,
//! the metadata agent — builds a `Validation` and calls [`Validation::validate`]. No clock here:
//! the caller passes `now` (unix seconds).
//!
//! Rules, in the order they are checked:
//! 1. types: `exp`, `nbf`, `iat` are integers (NumericDate without fraction); `iss`, `sub`,
//!    `jti` strings; `aud` a string or an array of strings. A claim of another JSON type is
//!    [`ValidationError::WrongType`], never ignored.
//! 2. presence: `exp` is always required; so are the claims named by [`Validation::require_claims`]
//!    (and `iat` when a maximum lifetime is set).
//! 3. `iss` is one of the configured issuers (when issuers were set; an empty set refuses all).
//! 4. `aud` (a string, or an array of which any one element) is one of the configured
//!    audiences (when audiences were set; an empty set refuses all).
//! 5. with a maximum lifetime: `exp > iat` and `exp - iat <= max` (an overflowing difference is
//!    too long).
//! 6. `exp + leeway > now`; `nbf - leeway <= now`; `iat - leeway <= now` (all saturating: token
//!    values near `i64::MAX`/`MIN` never wrap).

use crate::claims::{Audience, ClaimSet, Typed};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The default leeway on `exp`, `nbf` and `iat`, in seconds (clock skew between issuer and
/// verifier).
pub const LEEWAY: i64 = 30;
/// The largest leeway a [`Validation`] accepts, in seconds.
pub const MAX_LEEWAY: i64 = 60;

/// Why claims were refused. `Display` is safe to show: it never quotes a claim's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// A required claim is absent.
    #[error("token has no {0} claim")]
    MissingClaim(String),
    /// A registered claim has the wrong JSON type (e.g. `exp` as a string, `aud` a number).
    #[error("token claim {0} has the wrong type")]
    WrongType(&'static str),
    #[error("token has expired")]
    Expired,
    #[error("token is not yet valid")]
    NotYetValid,
    #[error("token is issued in the future")]
    IssuedInFuture,
    #[error("token was issued by another issuer")]
    WrongIssuer,
    #[error("token is not meant for this audience")]
    WrongAudience,
    /// `exp <= iat` (checked only with a maximum lifetime).
    #[error("token exp is not after its iat")]
    ExpNotAfterIat,
    /// `exp - iat` exceeds the maximum lifetime; `lifetime` is `None` when it overflows.
    #[error("token lifetime exceeds {max} s")]
    LifetimeTooLong { lifetime: Option<i64>, max: i64 },
}

impl ValidationError {
    /// A short stable name of the reason, usable as a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            ValidationError::MissingClaim(_) => "missing_claim",
            ValidationError::WrongType(_) => "wrong_type",
            ValidationError::Expired => "expired",
            ValidationError::NotYetValid => "not_yet_valid",
            ValidationError::IssuedInFuture => "issued_in_future",
            ValidationError::WrongIssuer => "wrong_issuer",
            ValidationError::WrongAudience => "wrong_audience",
            ValidationError::ExpNotAfterIat => "exp_not_after_iat",
            ValidationError::LifetimeTooLong { .. } => "lifetime_too_long",
        }
    }

    /// One error of each kind, for the tests that must cover every [`ValidationError::reason`].
    #[cfg(test)]
    pub(crate) fn one_of_each_kind() -> [ValidationError; 9] {
        [
            ValidationError::MissingClaim("exp".into()),
            ValidationError::WrongType("exp"),
            ValidationError::Expired,
            ValidationError::NotYetValid,
            ValidationError::IssuedInFuture,
            ValidationError::WrongIssuer,
            ValidationError::WrongAudience,
            ValidationError::ExpNotAfterIat,
            ValidationError::LifetimeTooLong {
                lifetime: None,
                max: 1,
            },
        ]
    }
}

/// Adds `items` to an any-of constraint, setting it if it was not (an empty one refuses every
/// token).
fn extend_any_of<I, S>(constraint: &mut Option<Vec<String>>, items: I)
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    constraint
        .get_or_insert_with(Vec::new)
        .extend(items.into_iter().map(Into::into));
}

/// A leeway above [`MAX_LEEWAY`] (or negative) was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("leeway must be between 0 and {MAX_LEEWAY} s, not {0}")]
pub struct LeewayOutOfRange(pub i64);

/// The time claims of a token whose claims are typed already (e.g. a sealed refresh grant).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeClaims {
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    pub iat: Option<i64>,
}

/// What claims must say to be accepted. Build once, use for every token; cheap to clone.
///
/// ```
/// use tessera_verify::Validation;
/// let validation = Validation::new()
///     .with_issuer("https://iam.example/identity")
///     .with_audiences(["my-api"])
///     .require_claims(["sub"]);
/// let claims = serde_json::json!({
///     "iss": "https://iam.example/identity", "aud": ["other", "my-api"],
///     "sub": "iam-ServiceId-1", "iat": 1000, "exp": 2000,
/// });
/// assert!(validation.validate(claims.as_object().unwrap(), 1500).is_ok());
/// assert_eq!(
///     validation.validate(claims.as_object().unwrap(), 2030).unwrap_err().reason(),
///     "expired"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    leeway: i64,
    /// `None`: not checked; `Some(empty)`: nothing matches.
    issuers: Option<Vec<String>>,
    /// `None`: not checked; `Some(empty)`: nothing matches.
    audiences: Option<Vec<String>>,
    required: Vec<String>,
    max_lifetime: Option<i64>,
}

impl Default for Validation {
    fn default() -> Self {
        Validation::new()
    }
}

impl Validation {
    /// `exp` required, `nbf` and `iat` checked when present, [`LEEWAY`]; no issuer and no
    /// audience constraint until [`with_issuer`](Self::with_issuer) /
    /// [`with_audiences`](Self::with_audiences) set them.
    pub fn new() -> Self {
        Validation {
            leeway: LEEWAY,
            issuers: None,
            audiences: None,
            required: Vec::new(),
            max_lifetime: None,
        }
    }

    /// Sets the leeway (0 to [`MAX_LEEWAY`] seconds).
    pub fn with_leeway(mut self, seconds: i64) -> Result<Self, LeewayOutOfRange> {
        if !(0..=MAX_LEEWAY).contains(&seconds) {
            return Err(LeewayOutOfRange(seconds));
        }
        self.leeway = seconds;
        Ok(self)
    }

    /// `iss` must equal `issuer` (adds to any issuers set before: any one of them matches).
    pub fn with_issuer(self, issuer: impl Into<String>) -> Self {
        self.with_issuers([issuer.into()])
    }

    /// `iss` must be one of `issuers` (added to any set before; an empty list refuses every
    /// token).
    pub fn with_issuers<I, S>(mut self, issuers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        extend_any_of(&mut self.issuers, issuers);
        self
    }

    /// `aud` must name one of `audiences` (added to any set before; an empty list refuses
    /// every token).
    pub fn with_audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        extend_any_of(&mut self.audiences, audiences);
        self
    }

    /// These claims must be present (`exp` always is).
    pub fn require_claims<I, S>(mut self, claims: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required.extend(claims.into_iter().map(Into::into));
        self
    }

    /// `iat` required, `exp > iat` and `exp - iat <= seconds` (checked before the times).
    pub fn with_max_lifetime(mut self, seconds: i64) -> Self {
        self.max_lifetime = Some(seconds);
        self
    }

    /// No leeway at all: for tokens the verifier issued itself and keeps (a sealed refresh
    /// grant), where no other clock is involved.
    pub fn without_leeway(mut self) -> Self {
        self.leeway = 0;
        self
    }

    /// Whether claims are required by name (a one-pass reading must then keep the names).
    pub(crate) fn has_required_claims(&self) -> bool {
        !self.required.is_empty()
    }

    pub fn leeway(&self) -> i64 {
        self.leeway
    }

    /// The accepted issuers; `None` when `iss` is not checked.
    pub fn issuers(&self) -> Option<&[String]> {
        self.issuers.as_deref()
    }

    /// The accepted audiences; `None` when `aud` is not checked.
    pub fn audiences(&self) -> Option<&[String]> {
        self.audiences.as_deref()
    }

    /// Checks `claims` at `now` (unix seconds) against every rule, in the module's order.
    pub fn validate(&self, claims: &Map<String, Value>, now: i64) -> Result<(), ValidationError> {
        // Reading a parsed map cannot fail (every JSON value is accepted); fail closed anyway.
        let set = ClaimSet::from_map(claims).map_err(|_| ValidationError::WrongType("claims"))?;
        self.validate_set(&set, now)
    }

    /// The rules on a claim set read in one pass (the token path reads it straight from the
    /// payload: [`ClaimSet::from_json`]).
    pub(crate) fn validate_set(&self, set: &ClaimSet<'_>, now: i64) -> Result<(), ValidationError> {
        let times = TimeClaims {
            exp: typed(&set.exp, "exp")?.copied(),
            nbf: typed(&set.nbf, "nbf")?.copied(),
            iat: typed(&set.iat, "iat")?.copied(),
        };
        let iss = typed(&set.iss, "iss")?;
        typed(&set.sub, "sub")?;
        typed(&set.jti, "jti")?;
        let aud = typed(&set.aud, "aud")?;
        for name in &self.required {
            // Names not kept (a caller that forgot `has_required_claims`): missing, fail closed.
            if set.has(name) != Some(true) {
                return Err(ValidationError::MissingClaim(name.clone()));
            }
        }
        if times.exp.is_none() {
            return Err(ValidationError::MissingClaim("exp".into()));
        }
        if self.max_lifetime.is_some() && times.iat.is_none() {
            return Err(ValidationError::MissingClaim("iat".into()));
        }
        if let Some(issuers) = &self.issuers {
            if !iss.is_some_and(|iss| issuers.iter().any(|i| i == iss)) {
                return Err(ValidationError::WrongIssuer);
            }
        }
        if let Some(audiences) = &self.audiences {
            let named = |a: &Cow<'_, str>| audiences.iter().any(|x| x == a);
            let ok = match aud {
                Some(Audience::One(one)) => named(one),
                Some(Audience::Many(list)) => list.iter().any(named),
                None => false,
            };
            if !ok {
                return Err(ValidationError::WrongAudience);
            }
        }
        self.validate_times(times, now)
    }

    /// The time rules alone, for claims that are typed already. `exp` is required.
    pub fn validate_times(&self, times: TimeClaims, now: i64) -> Result<(), ValidationError> {
        let exp = times
            .exp
            .ok_or_else(|| ValidationError::MissingClaim("exp".into()))?;
        if let Some(max) = self.max_lifetime {
            let iat = times
                .iat
                .ok_or_else(|| ValidationError::MissingClaim("iat".into()))?;
            if exp <= iat {
                return Err(ValidationError::ExpNotAfterIat);
            }
            // `exp - iat` of attacker-chosen values can overflow (iat = i64::MIN): an overflow
            // is a lifetime beyond any limit.
            let lifetime = exp.checked_sub(iat);
            if lifetime.is_none_or(|lifetime| lifetime > max) {
                return Err(ValidationError::LifetimeTooLong { lifetime, max });
            }
        }
        if exp.saturating_add(self.leeway) <= now {
            return Err(ValidationError::Expired);
        }
        if times
            .nbf
            .is_some_and(|nbf| nbf.saturating_sub(self.leeway) > now)
        {
            return Err(ValidationError::NotYetValid);
        }
        if times
            .iat
            .is_some_and(|iat| iat.saturating_sub(self.leeway) > now)
        {
            return Err(ValidationError::IssuedInFuture);
        }
        Ok(())
    }
}

/// A registered claim's value if present; of the wrong JSON type, refused.
fn typed<'v, T>(claim: &'v Typed<T>, name: &'static str) -> Result<Option<&'v T>, ValidationError> {
    match claim {
        Typed::Absent => Ok(None),
        Typed::Is(value) => Ok(Some(value)),
        Typed::Wrong => Err(ValidationError::WrongType(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const NOW: i64 = 1_000_000;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("fixtures are objects"),
        }
    }

    /// Both readings of a claim set (a parsed map, and the payload text in one pass) must
    /// give the same answer: every test below checks both.
    fn check(v: &Validation, claims: Value, now: i64) -> Result<(), ValidationError> {
        let text = claims.to_string();
        let by_map = v.validate(&map(claims), now);
        assert_eq!(by_map, by_text(v, &text, now), "{text}");
        by_map
    }

    fn by_text(v: &Validation, text: &str, now: i64) -> Result<(), ValidationError> {
        v.validate_set(
            &ClaimSet::from_json(text, v.has_required_claims()).unwrap(),
            now,
        )
    }

    #[test]
    fn repeated_and_escaped_names_read_as_a_parsed_map_does() {
        let v = Validation::new().with_issuer("a");
        for text in [
            r#"{"exp": 2000000, "exp": "soon", "iss": "a"}"#,
            r#"{"exp": "soon", "exp": 2000000, "iss": "a"}"#,
            r#"{"\u0065xp": 2000000, "iss": "\u0061"}"#,
            r#"{"exp": 2000000, "iss": "b", "iss": "a"}"#,
            r#"{"exp": 2000000, "iss": "a", "aud": ["x", {"y": 1}]}"#,
            r#"{"exp": -0, "iss": "a"}"#,
            r#"{"exp": 1e9, "iss": "a"}"#,
            r#"{"exp": 9223372036854775808, "iss": "a"}"#,
        ] {
            let parsed: Map<String, Value> = serde_json::from_str(text).unwrap();
            assert_eq!(v.validate(&parsed, NOW), by_text(&v, text, NOW), "{text}");
        }
        assert!(ClaimSet::from_json("[1]", false).is_err());
        assert!(ClaimSet::from_json(r#"{"exp": 1} x"#, false).is_err());
        assert!(ClaimSet::from_json(r#"{"exp": 1"#, false).is_err());
        // A required claim cannot pass on a reading that kept no names.
        let required = Validation::new().require_claims(["sub"]);
        let text = r#"{"exp": 2000000, "sub": "s"}"#;
        assert_eq!(by_text(&required, text, NOW), Ok(()));
        assert_eq!(
            required.validate_set(&ClaimSet::from_json(text, false).unwrap(), NOW),
            Err(ValidationError::MissingClaim("sub".into()))
        );
    }

    #[test]
    fn exp_is_required_and_checked_with_the_leeway() {
        let v = Validation::new();
        assert_eq!(
            check(&v, json!({}), NOW),
            Err(ValidationError::MissingClaim("exp".into()))
        );
        let claims = json!({"exp": NOW});
        assert_eq!(check(&v, claims.clone(), NOW + LEEWAY - 1), Ok(()));
        assert_eq!(
            check(&v, claims, NOW + LEEWAY),
            Err(ValidationError::Expired)
        );
    }

    #[test]
    fn nbf_and_iat_are_checked_with_the_leeway_when_present() {
        let v = Validation::new();
        let nbf = json!({"exp": NOW + 100, "nbf": NOW + LEEWAY});
        assert_eq!(check(&v, nbf.clone(), NOW), Ok(()));
        assert_eq!(check(&v, nbf, NOW - 1), Err(ValidationError::NotYetValid));
        let iat = json!({"exp": NOW + 100, "iat": NOW + LEEWAY});
        assert_eq!(check(&v, iat.clone(), NOW), Ok(()));
        assert_eq!(
            check(&v, iat, NOW - 1),
            Err(ValidationError::IssuedInFuture)
        );
    }

    #[test]
    fn the_leeway_is_configurable_up_to_sixty_seconds() {
        let v = Validation::new().with_leeway(0).unwrap();
        assert_eq!(v.leeway(), 0);
        assert_eq!(
            check(&v, json!({"exp": NOW}), NOW),
            Err(ValidationError::Expired)
        );
        assert_eq!(check(&v, json!({"exp": NOW + 1}), NOW), Ok(()));
        let v = Validation::new().with_leeway(MAX_LEEWAY).unwrap();
        assert_eq!(check(&v, json!({"exp": NOW - 59}), NOW), Ok(()));
        assert_eq!(Validation::new().with_leeway(61), Err(LeewayOutOfRange(61)));
        assert_eq!(Validation::new().with_leeway(-1), Err(LeewayOutOfRange(-1)));
    }

    #[test]
    fn claims_of_the_wrong_type_are_refused() {
        let v = Validation::new();
        for (claims, name) in [
            (json!({"exp": "2000000000"}), "exp"),
            (json!({"exp": 2_000_000_000.5}), "exp"),
            (json!({"exp": NOW + 9, "nbf": "0"}), "nbf"),
            (json!({"exp": NOW + 9, "iat": null}), "iat"),
            (json!({"exp": NOW + 9, "iat": u64::MAX}), "iat"),
            (json!({"exp": NOW + 9, "iss": 7}), "iss"),
            (json!({"exp": NOW + 9, "sub": ["a"]}), "sub"),
            (json!({"exp": NOW + 9, "jti": {}}), "jti"),
            (json!({"exp": NOW + 9, "aud": 42}), "aud"),
            (json!({"exp": NOW + 9, "aud": ["ok", 42]}), "aud"),
        ] {
            assert_eq!(
                check(&v, claims.clone(), NOW),
                Err(ValidationError::WrongType(name)),
                "{claims}"
            );
        }
    }

    #[test]
    fn the_issuer_must_be_one_of_those_configured() {
        let v = Validation::new().with_issuer("a").with_issuers(["b"]);
        assert_eq!(check(&v, json!({"exp": NOW + 9, "iss": "a"}), NOW), Ok(()));
        assert_eq!(check(&v, json!({"exp": NOW + 9, "iss": "b"}), NOW), Ok(()));
        for claims in [json!({"exp": NOW + 9, "iss": "c"}), json!({"exp": NOW + 9})] {
            assert_eq!(check(&v, claims, NOW), Err(ValidationError::WrongIssuer));
        }
        // No issuer configured: any (string) issuer passes.
        assert_eq!(
            check(&Validation::new(), json!({"exp": NOW + 9, "iss": "c"}), NOW),
            Ok(())
        );
    }

    #[test]
    fn any_one_audience_matches() {
        let v = Validation::new().with_audiences(["api", "other"]);
        for aud in [json!("api"), json!(["x", "other"]), json!(["api"])] {
            assert_eq!(check(&v, json!({"exp": NOW + 9, "aud": aud}), NOW), Ok(()));
        }
        for claims in [
            json!({"exp": NOW + 9, "aud": "x"}),
            json!({"exp": NOW + 9, "aud": []}),
            json!({"exp": NOW + 9, "aud": ["x", "y"]}),
            json!({"exp": NOW + 9}),
        ] {
            assert_eq!(check(&v, claims, NOW), Err(ValidationError::WrongAudience));
        }
    }

    #[test]
    fn an_empty_set_of_issuers_or_audiences_refuses_every_token() {
        let none: [&str; 0] = [];
        let v = Validation::new().with_audiences(none);
        assert_eq!(v.audiences(), Some(&[][..]));
        assert_eq!(
            check(&v, json!({"exp": NOW + 9, "aud": "api"}), NOW),
            Err(ValidationError::WrongAudience)
        );
        let v = Validation::new().with_issuers(none);
        assert_eq!(
            check(&v, json!({"exp": NOW + 9, "iss": "a"}), NOW),
            Err(ValidationError::WrongIssuer)
        );
        assert_eq!(Validation::new().audiences(), None);
        assert_eq!(Validation::new().issuers(), None);
    }

    #[test]
    fn required_claims_must_be_present() {
        let v = Validation::new().require_claims(["sub", "acr"]);
        assert_eq!(
            check(&v, json!({"exp": NOW + 9, "sub": "s"}), NOW),
            Err(ValidationError::MissingClaim("acr".into()))
        );
        assert_eq!(
            check(&v, json!({"exp": NOW + 9, "sub": "s", "acr": 1}), NOW),
            Ok(())
        );
    }

    #[test]
    fn a_maximum_lifetime_needs_iat_before_exp_within_it() {
        let v = Validation::new().with_max_lifetime(3600);
        assert_eq!(
            check(&v, json!({"exp": NOW + 9}), NOW),
            Err(ValidationError::MissingClaim("iat".into()))
        );
        assert_eq!(
            check(&v, json!({"iat": NOW, "exp": NOW + 3600}), NOW),
            Ok(())
        );
        assert_eq!(
            check(&v, json!({"iat": NOW, "exp": NOW + 3601}), NOW),
            Err(ValidationError::LifetimeTooLong {
                lifetime: Some(3601),
                max: 3600
            })
        );
        assert_eq!(
            check(&v, json!({"iat": NOW, "exp": NOW}), NOW),
            Err(ValidationError::ExpNotAfterIat)
        );
        assert_eq!(
            check(&v, json!({"iat": i64::MIN, "exp": NOW + 9}), NOW),
            Err(ValidationError::LifetimeTooLong {
                lifetime: None,
                max: 3600
            })
        );
    }

    #[test]
    fn extreme_values_do_not_wrap() {
        let v = Validation::new();
        assert_eq!(check(&v, json!({"exp": i64::MAX}), NOW), Ok(()));
        assert_eq!(
            check(&v, json!({"exp": i64::MIN}), NOW),
            Err(ValidationError::Expired)
        );
        assert_eq!(
            check(
                &v,
                json!({"exp": i64::MAX, "nbf": i64::MIN, "iat": i64::MIN}),
                NOW
            ),
            Ok(())
        );
        assert_eq!(
            check(&v, json!({"exp": i64::MAX, "nbf": i64::MAX}), NOW),
            Err(ValidationError::NotYetValid)
        );
    }

    #[test]
    fn reasons_are_distinct_metric_labels() {
        let all = ValidationError::one_of_each_kind();
        let reasons: std::collections::BTreeSet<&str> = all.iter().map(|e| e.reason()).collect();
        assert_eq!(reasons.len(), all.len());
        assert!(reasons
            .iter()
            .all(|r| r.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
    }

    proptest! {
        /// The time rules agree with their definition for every `exp`/`nbf`/`iat`/`now` and
        /// leeway, including values near the ends of `i64`.
        #[test]
        fn times_match_their_definition(
            exp in any::<i64>(),
            nbf in proptest::option::of(any::<i64>()),
            iat in proptest::option::of(any::<i64>()),
            now in any::<i64>(),
            leeway in 0..=MAX_LEEWAY,
        ) {
            let v = Validation::new().with_leeway(leeway).unwrap();
            let mut claims = json!({"exp": exp});
            if let Some(nbf) = nbf { claims["nbf"] = nbf.into(); }
            if let Some(iat) = iat { claims["iat"] = iat.into(); }
            let got = check(&v, claims, now);
            let (exp, now, leeway) = (i128::from(exp), i128::from(now), i128::from(leeway));
            let expected = if exp + leeway <= now {
                Err(ValidationError::Expired)
            } else if nbf.is_some_and(|nbf| i128::from(nbf) - leeway > now) {
                Err(ValidationError::NotYetValid)
            } else if iat.is_some_and(|iat| i128::from(iat) - leeway > now) {
                Err(ValidationError::IssuedInFuture)
            } else {
                Ok(())
            };
            prop_assert_eq!(got, expected);
        }

        /// A token is accepted only while `now` lies in its validity window widened by the
        /// leeway, and a wider leeway never refuses what a narrower one accepted.
        #[test]
        fn a_wider_leeway_accepts_a_superset(
            exp in -10_000i64..10_000,
            nbf in -10_000i64..10_000,
            now in -10_000i64..10_000,
            narrow in 0..=MAX_LEEWAY,
            extra in 0..=MAX_LEEWAY,
        ) {
            let wide = (narrow + extra).min(MAX_LEEWAY);
            let claims = map(json!({"exp": exp, "nbf": nbf}));
            let narrow_ok = Validation::new().with_leeway(narrow).unwrap().validate(&claims, now).is_ok();
            let wide_ok = Validation::new().with_leeway(wide).unwrap().validate(&claims, now).is_ok();
            prop_assert!(!narrow_ok || wide_ok);
            prop_assert_eq!(narrow_ok, nbf - narrow <= now && now < exp + narrow);
        }

        /// Whatever JSON value stands in a time claim, the result is a typed refusal or an
        /// acceptance, and a non-integer is always refused as `WrongType`.
        #[test]
        fn any_json_in_exp_is_typed_or_refused(value in json_value()) {
            let v = Validation::new();
            let got = check(&v, json!({"exp": value.clone()}), 0);
            if value.as_i64().is_none() {
                prop_assert_eq!(got, Err(ValidationError::WrongType("exp")));
            }
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
            proptest::collection::vec(any::<i64>(), 0..3).prop_map(Value::from),
        ]
    }
}
