//! A token presented as a credential: either format Tessera issues (an IBM-surface JWT or a
//! `t1.` IAM token) is accepted wherever a caller authenticates, and this is the one place that
//! tells them apart.

use crate::directory::Directory;
use crate::error::Result;
use crate::iam_token::{self, IamTokenClaims};
use crate::model::DEFAULT_CLIENT_ID;
use crate::token::{self, IbmClaims};
use crate::UnixTime;
use tessera_verify::{is_iam_token, Jwks};

/// A verified, unrevoked token whose subject exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresentedToken {
    Jwt(Box<IbmClaims>),
    Iam(IamTokenClaims),
}

impl PresentedToken {
    pub fn iam_id(&self) -> &str {
        match self {
            PresentedToken::Jwt(c) => &c.iam_id,
            PresentedToken::Iam(c) => &c.sub,
        }
    }

    /// The user id or service account id.
    pub fn subject_id(&self) -> &str {
        match self {
            PresentedToken::Jwt(c) => &c.sub,
            PresentedToken::Iam(c) => &c.subject_id,
        }
    }

    pub fn account_id(&self) -> &str {
        match self {
            PresentedToken::Jwt(c) => &c.account.bss,
            PresentedToken::Iam(c) => &c.account_id,
        }
    }

    pub fn jti(&self) -> &str {
        match self {
            PresentedToken::Jwt(c) => &c.jti,
            PresentedToken::Iam(c) => &c.jti,
        }
    }

    pub fn iat(&self) -> UnixTime {
        match self {
            PresentedToken::Jwt(c) => c.iat,
            PresentedToken::Iam(c) => c.iat,
        }
    }

    pub fn exp(&self) -> UnixTime {
        match self {
            PresentedToken::Jwt(c) => c.exp,
            PresentedToken::Iam(c) => c.exp,
        }
    }

    /// The authentication level behind the token: the JWT's `acr`; IAM tokens come from a
    /// key, an OAuth token or a JWT, a single factor each.
    pub fn acr(&self) -> u8 {
        match self {
            PresentedToken::Jwt(c) => c.acr,
            PresentedToken::Iam(_) => 1,
        }
    }

    /// The token's `amr` (IAM tokens: none recorded).
    pub fn amr(&self) -> &[String] {
        match self {
            PresentedToken::Jwt(c) => &c.amr,
            PresentedToken::Iam(_) => &[],
        }
    }

    /// The links the token descends from.
    pub fn lineage(&self) -> &crate::lineage::Lineage {
        match self {
            PresentedToken::Jwt(c) => &c.lineage,
            PresentedToken::Iam(c) => &c.lineage,
        }
    }

    /// The OAuth client the token was issued to; IAM tokens belong to no client.
    pub fn client_id(&self) -> &str {
        match self {
            PresentedToken::Jwt(c) => &c.client_id,
            PresentedToken::Iam(_) => DEFAULT_CLIENT_ID,
        }
    }

    /// The RFC 7662 introspection body of an active token: its claims, `active`, `token_type`.
    pub fn introspection(&self) -> serde_json::Value {
        let (body, token_type, username) = match self {
            PresentedToken::Jwt(c) => (
                serde_json::to_value(c.as_ref()),
                "Bearer",
                Some(c.name.clone()),
            ),
            PresentedToken::Iam(c) => (serde_json::to_value(c), "iam_token", None),
        };
        let mut body = body.unwrap_or_else(|_| serde_json::Value::Object(Default::default()));
        if let Some(map) = body.as_object_mut() {
            map.insert("active".into(), true.into());
            map.insert("token_type".into(), token_type.into());
            if let Some(username) = username {
                map.insert("username".into(), username.into());
            }
            if let PresentedToken::Iam(c) = self {
                map.insert("iam_id".into(), c.sub.clone().into());
            }
        }
        body
    }
}

/// Verifies a token of either format: signature, lifetime, issuer, revocation and subject.
pub fn verify(
    presented: &str,
    jwks: &Jwks,
    dir: &Directory,
    issuer: &str,
    now: UnixTime,
) -> Result<PresentedToken> {
    if is_iam_token(presented) {
        iam_token::verify(presented, jwks, dir, issuer, now).map(PresentedToken::Iam)
    } else {
        token::verify(presented, jwks, dir, issuer, now).map(|c| PresentedToken::Jwt(Box::new(c)))
    }
}
