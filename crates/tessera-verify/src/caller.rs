//! The verified caller a resource service acts on, read from a token's claims (an IBM-style
//! JWT, a `t1.` IAM token, or an introspection answer), and handler-level requirements.

use serde_json::{Map, Value};

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

/// Who called, as the token says. Only a successful verification builds one.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCaller {
    /// `iam_id` (IBM claims), else `sub`.
    pub iam_id: String,
    /// `sub_type` (IBM: `ServiceId`, `user`, `Profile`, ...) or `subject_type` (`t1.`).
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
    /// Every claim, as verified.
    pub claims: Map<String, Value>,
}

/// A handler-level requirement the caller does not meet: `403 insufficient_scope` (axum, tower)
/// or `PERMISSION_DENIED` (tonic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token lacks {what} {needed}")]
pub struct InsufficientScope {
    /// `scope` or `role`.
    pub what: &'static str,
    pub needed: String,
}

fn string(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).map(str::to_owned)
}

impl VerifiedCaller {
    /// Reads the caller from claims that already passed signature and claim validation.
    pub(crate) fn from_claims(kind: TokenKind, claims: Map<String, Value>) -> Self {
        let iam_id = string(&claims, "iam_id")
            .or_else(|| string(&claims, "sub"))
            .unwrap_or_default();
        let sub_type = string(&claims, "sub_type")
            .or_else(|| string(&claims, "subject_type"))
            .unwrap_or_default();
        let account = claims
            .get("account")
            .and_then(|a| a.get("bss"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| string(&claims, "account_id"));
        let scopes = claims
            .get("scope")
            .and_then(Value::as_str)
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let roles = claims
            .get("roles")
            .and_then(Value::as_array)
            .map(|roles| {
                roles
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        VerifiedCaller {
            iam_id,
            sub_type,
            account,
            scopes,
            roles,
            acr: claims.get("acr").and_then(Value::as_i64),
            expires_at: claims.get("exp").and_then(Value::as_i64).unwrap_or(0),
            issuer: string(&claims, "iss").unwrap_or_default(),
            kind,
            claims,
        }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// `Ok` if the token carries `scope`; else the 403 / `PERMISSION_DENIED` answer.
    pub fn require_scope(&self, scope: &str) -> Result<(), InsufficientScope> {
        if self.has_scope(scope) {
            return Ok(());
        }
        Err(InsufficientScope {
            what: "scope",
            needed: scope.to_owned(),
        })
    }

    /// `Ok` if the token carries `role` in its `roles` claim.
    pub fn require_role(&self, role: &str) -> Result<(), InsufficientScope> {
        if self.has_role(role) {
            return Ok(());
        }
        Err(InsufficientScope {
            what: "role",
            needed: role.to_owned(),
        })
    }

    /// `Ok` if the token belongs to `account`.
    pub fn require_account(&self, account: &str) -> Result<(), InsufficientScope> {
        if self.account.as_deref() == Some(account) {
            return Ok(());
        }
        Err(InsufficientScope {
            what: "account",
            needed: account.to_owned(),
        })
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

    #[test]
    fn reads_ibm_and_iam_token_claims() {
        let ibm = json!({"iam_id": "iam-ServiceId-1", "sub": "ServiceId-1", "sub_type": "ServiceId",
            "account": {"bss": "acc", "valid": true}, "scope": "ibm openid", "acr": 1,
            "exp": 100, "iss": "https://issuer"});
        let caller = VerifiedCaller::from_claims(TokenKind::Jwt, ibm.as_object().unwrap().clone());
        assert_eq!(caller.iam_id, "iam-ServiceId-1");
        assert_eq!(caller.sub_type, "ServiceId");
        assert_eq!(caller.account.as_deref(), Some("acc"));
        assert_eq!(caller.scopes, ["ibm", "openid"]);
        assert_eq!(caller.acr, Some(1));
        assert_eq!(caller.expires_at, 100);
        assert!(caller.require_scope("openid").is_ok());
        assert_eq!(
            caller.require_scope("admin").unwrap_err().to_string(),
            "the token lacks scope admin"
        );
        assert!(caller.require_role("reader").is_err());
        assert!(caller.require_account("acc").is_ok());
        assert!(caller.require_account("other").is_err());

        let t1 = json!({"sub": "iam-ServiceId-2", "subject_type": "service_account",
            "account_id": "acc2", "exp": 200, "iss": "https://issuer", "roles": ["reader", 5]});
        let caller =
            VerifiedCaller::from_claims(TokenKind::IamToken, t1.as_object().unwrap().clone());
        assert_eq!(caller.iam_id, "iam-ServiceId-2");
        assert_eq!(caller.sub_type, "service_account");
        assert_eq!(caller.account.as_deref(), Some("acc2"));
        assert!(caller.scopes.is_empty());
        assert_eq!(caller.roles, ["reader"]);
        assert!(caller.require_role("reader").is_ok());
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
