//! The verified caller a resource service acts on, read from a token's claims (an IBM-style
//! JWT, a `t1.` IAM token, or an introspection answer), and handler-level requirements.

use crate::claims::{ClaimSet, Typed};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::Arc;

/// Which kind of token proved the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A JWT verified against the issuer's keys.
    Jwt,
    /// A `t1.` IAM token verified against the issuer's keys.
    IamToken,
    /// An opaque or foreign token the issuer's introspection endpoint called active.
    Introspected,
}

/// Who called, as the token says. Only a successful verification builds one (the claim set
/// is private).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCaller {
    /// `iam_id` (IBM claims), else `sub`.
    pub iam_id: String,
    /// `sub_type` (IBM: `ServiceId`, `user`, `Profile`, `CRN`, ...) or `subject_type` (`t1.`).
    pub sub_type: String,
    /// `account.bss` (IBM) or `account_id` (`t1.`), when the token names one.
    pub account: Option<String>,
    /// The space-separated `scope` claim.
    pub scopes: Vec<String>,
    /// The `roles` claim (an array of strings), when present.
    pub roles: Vec<String>,
    /// The authentication context class (`acr`), when present.
    pub acr: Option<i64>,
    /// `exp`, unix seconds.
    pub expires_at: i64,
    /// The issuer the token was verified against (`iss`).
    pub issuer: String,
    pub kind: TokenKind,
    /// Every claim, as verified: the JSON object the token carried (or introspection answered).
    /// Kept as text and parsed only when asked for ([`VerifiedCaller::claims`]), so the token
    /// path builds no map of claims.
    claims: Arc<str>,
}

/// A handler-level requirement the caller does not meet: `403 insufficient_scope` (axum, tower)
/// or `PERMISSION_DENIED` (tonic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token lacks {what} {needed}")]
pub struct InsufficientScope {
    /// `scope`, `role` or `account`.
    pub what: &'static str,
    pub needed: String,
}

/// `Ok` if the caller `holds` what a `require_*` call needs; else what it lacks.
fn require(holds: bool, what: &'static str, needed: &str) -> Result<(), InsufficientScope> {
    if holds {
        return Ok(());
    }
    Err(InsufficientScope {
        what,
        needed: needed.to_owned(),
    })
}

fn owned(claim: &Option<Cow<'_, str>>) -> Option<String> {
    claim.as_deref().map(str::to_owned)
}

impl VerifiedCaller {
    /// Reads the caller from a claim set that already passed signature and claim validation;
    /// `json` is the text `set` was read from.
    pub(crate) fn from_claims(kind: TokenKind, set: &ClaimSet<'_>, json: Arc<str>) -> Self {
        let sub = match &set.sub {
            Typed::Is(sub) => Some(sub.as_ref()),
            Typed::Absent | Typed::Wrong => None,
        };
        let iss = match &set.iss {
            Typed::Is(iss) => iss.as_ref(),
            Typed::Absent | Typed::Wrong => "",
        };
        VerifiedCaller {
            iam_id: set.iam_id.as_deref().or(sub).unwrap_or_default().to_owned(),
            sub_type: owned(&set.sub_type)
                .or_else(|| owned(&set.subject_type))
                .unwrap_or_default(),
            account: owned(&set.account_bss).or_else(|| owned(&set.account_id)),
            scopes: set
                .scope
                .as_deref()
                .map(|s| s.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            roles: set.roles.iter().map(|r| r.as_ref().to_owned()).collect(),
            acr: set.acr,
            expires_at: match set.exp {
                Typed::Is(exp) => exp,
                Typed::Absent | Typed::Wrong => 0,
            },
            issuer: iss.to_owned(),
            kind,
            claims: json,
        }
    }

    /// The verified claim set as JSON text, exactly as the token carried it.
    pub fn claims_json(&self) -> &str {
        &self.claims
    }

    /// Every claim, parsed from [`VerifiedCaller::claims_json`] on each call. The text is one
    /// JSON object (checked when the token was verified); this fails only when it nests
    /// deeper than `serde_json`'s recursion limit, which only a trusted issuer could sign.
    pub fn claims(&self) -> Result<Map<String, Value>, serde_json::Error> {
        serde_json::from_str(&self.claims)
    }

    /// One claim by name (parses the claim set: for a few reads, not a loop).
    pub fn claim(&self, name: &str) -> Option<Value> {
        self.claims().ok()?.remove(name)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// `Ok` if the token carries `scope`; else the 403 / `PERMISSION_DENIED` answer.
    pub fn require_scope(&self, scope: &str) -> Result<(), InsufficientScope> {
        require(self.has_scope(scope), "scope", scope)
    }

    /// `Ok` if the token carries `role` in its `roles` claim.
    pub fn require_role(&self, role: &str) -> Result<(), InsufficientScope> {
        require(self.has_role(role), "role", role)
    }

    /// `Ok` if the token belongs to `account`.
    pub fn require_account(&self, account: &str) -> Result<(), InsufficientScope> {
        require(self.account.as_deref() == Some(account), "account", account)
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(kind: TokenKind, claims: serde_json::Value) -> VerifiedCaller {
        let json: Arc<str> = claims.to_string().into();
        VerifiedCaller::from_claims(
            kind,
            &ClaimSet::from_json(&json, false).unwrap(),
            json.clone(),
        )
    }

    #[test]
    fn reads_ibm_and_iam_token_claims() {
        let ibm = json!({"iam_id": "iam-ServiceId-1", "sub": "ServiceId-1", "sub_type": "ServiceId",
            "account": {"bss": "acc", "valid": true}, "scope": "ibm openid", "acr": 1,
            "exp": 100, "iss": "https://issuer", "jti": "j1"});
        let caller = read(TokenKind::Jwt, ibm.clone());
        assert_eq!(caller.iam_id, "iam-ServiceId-1");
        assert_eq!(caller.sub_type, "ServiceId");
        assert_eq!(caller.account.as_deref(), Some("acc"));
        assert_eq!(caller.scopes, ["ibm", "openid"]);
        assert_eq!(caller.acr, Some(1));
        assert_eq!(caller.expires_at, 100);
        assert_eq!(caller.issuer, "https://issuer");
        assert_eq!(caller.claims().unwrap(), *ibm.as_object().unwrap());
        assert_eq!(caller.claim("jti"), Some(json!("j1")));
        assert_eq!(caller.claim("nope"), None);
        assert!(caller.require_scope("openid").is_ok());
        assert_eq!(
            caller.require_scope("admin").unwrap_err().to_string(),
            "the token lacks scope admin"
        );
        assert!(caller.require_role("reader").is_err());
        assert!(caller.require_account("acc").is_ok());
        assert!(caller.require_account("other").is_err());

        let t1 = json!({"sub": "iam-ServiceId-2", "subject_type": "service_account",
            "account_id": "acc2", "exp": 200, "iss": "https://issuer", "roles": ["reader", 5, ["x"]]});
        let caller = read(TokenKind::IamToken, t1);
        assert_eq!(caller.iam_id, "iam-ServiceId-2");
        assert_eq!(caller.sub_type, "service_account");
        assert_eq!(caller.account.as_deref(), Some("acc2"));
        assert!(caller.scopes.is_empty());
        assert_eq!(caller.roles, ["reader"]);
        assert!(caller.require_role("reader").is_ok());
    }

    #[test]
    fn caller_claims_of_another_type_count_as_absent() {
        let odd = json!({"iam_id": 5, "sub": "s", "sub_type": ["x"], "subject_type": "t",
            "account": "flat", "account_id": "a2", "scope": {"a": 1}, "roles": "admin",
            "acr": "1", "exp": 9});
        let caller = read(TokenKind::Jwt, odd);
        assert_eq!(caller.iam_id, "s");
        assert_eq!(caller.sub_type, "t");
        assert_eq!(caller.account.as_deref(), Some("a2"));
        assert!(caller.scopes.is_empty());
        assert!(caller.roles.is_empty());
        assert_eq!(caller.acr, None);
        let nested = json!({"sub": "s", "exp": 9, "account": {"bss": 7}, "roles": []});
        assert_eq!(read(TokenKind::Jwt, nested).account, None);
    }

    #[test]
    fn bearer_values() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
