//! A token presented as a credential: either format Tessera issues (an IBM-surface JWT or a
//! `t1.` IAM token) is accepted wherever a caller authenticates, and this is the one place that
//! tells them apart.

use crate::directory::Directory;
use crate::error::Result;
use crate::iam_token::{self, IamTokenClaims};
use crate::json::ObjectWriter;
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

    /// The RFC 7662 answer for this active token: `active`, `token_type`, and every claim
    /// (for a JWT also `username`; for a `t1.` token also `iam_id`). Serialised straight from
    /// the claims: it is on the introspection path, where going through a `serde_json::Value`
    /// copied and sorted every claim once more.
    pub fn introspection(&self) -> Introspection<'_> {
        match self {
            PresentedToken::Jwt(c) => Introspection {
                active: true,
                token_type: "Bearer",
                username: Some(&c.name),
                iam_id: None,
                claims: IntrospectedClaims::Jwt(c),
            },
            PresentedToken::Iam(c) => Introspection {
                active: true,
                token_type: "iam_token",
                username: None,
                iam_id: Some(&c.sub),
                claims: IntrospectedClaims::Iam(c),
            },
        }
    }
}

/// An introspection answer ([`PresentedToken::introspection`]).
#[derive(Debug, serde::Serialize)]
pub struct Introspection<'a> {
    pub active: bool,
    pub token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iam_id: Option<&'a str>,
    #[serde(flatten)]
    pub claims: IntrospectedClaims<'a>,
}

impl Introspection<'_> {
    /// The answer's JSON: the bytes serde_json writes for it (a property test holds them
    /// equal), without serde's flattening, which buffers the claims as a map of values first
    /// (more than the rest of an introspection beyond its two signature checks).
    pub fn to_json(&self) -> String {
        let object = ObjectWriter::with_capacity(768)
            .boolean("active", self.active)
            .string("token_type", self.token_type)
            .optional_string("username", self.username)
            .optional_string("iam_id", self.iam_id);
        match self.claims {
            IntrospectedClaims::Jwt(claims) => claims.json_members(object),
            IntrospectedClaims::Iam(claims) => claims.json_members(object),
        }
        .finish()
    }
}

/// The claims an introspection answer carries, of either token format.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum IntrospectedClaims<'a> {
    Jwt(&'a IbmClaims),
    Iam(&'a IamTokenClaims),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::strategies::{iam_claims, ibm_claims};
    use crate::lineage::Lineage;

    proptest::proptest! {
        /// An introspection answer is the bytes serde_json writes for it, for either format.
        #[test]
        fn answers_are_written_as_serde_json_writes_them(
            jwt in ibm_claims(),
            iam in iam_claims(),
        ) {
            for presented in [PresentedToken::Jwt(Box::new(jwt)), PresentedToken::Iam(iam)] {
                let answer = presented.introspection();
                proptest::prop_assert_eq!(
                    answer.to_json(),
                    serde_json::to_string(&answer).unwrap_or_default()
                );
            }
        }
    }

    #[test]
    fn a_t1_token_is_introspected_as_its_claims_with_iam_id_and_type() {
        let claims = IamTokenClaims {
            kid: "k1".into(),
            jti: "j1".into(),
            iss: "https://iam.test/identity".into(),
            sub: "iam-ServiceId-1".into(),
            subject_id: "ServiceId-1".into(),
            subject_type: "service_account".into(),
            account_id: "0123456789abcdef0123456789abcdef".into(),
            iat: 100,
            exp: 200,
            lineage: Lineage::empty(),
        };
        let expected = {
            let mut map = serde_json::to_value(&claims).unwrap();
            let object = map.as_object_mut().unwrap();
            object.insert("active".into(), true.into());
            object.insert("token_type".into(), "iam_token".into());
            object.insert("iam_id".into(), "iam-ServiceId-1".into());
            map
        };
        let presented = PresentedToken::Iam(claims);
        let answered = serde_json::to_value(presented.introspection()).unwrap();
        assert_eq!(answered, expected);
    }
}
