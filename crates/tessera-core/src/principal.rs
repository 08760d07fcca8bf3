//! The authenticated principal: where every credential flow ends and every token begins.
//!
//! A [`Principal`] is proof that a credential was checked: its fields are private and it is
//! built only by [`crate::authn`], whose functions verify the credential (an API key, a password
//! and a second factor, a refresh token, a presented token, a service-account JWT, a
//! compute-resource token) or derive the principal from one that was verified (`assume`,
//! CreateForServiceAccount, `iam-authz`) after the authorization model allowed the step. Nothing
//! outside the core can make or edit one; surfaces read it through the getters.

use crate::lineage::Lineage;
use crate::model::SubjectKind;
use crate::UnixTime;

/// How the principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthnMethod {
    ApiKey,
    Password,
    /// Exchanged a refresh token that was itself issued for `method`.
    RefreshToken,
    /// Presented an access token (admin API, token exchange).
    AccessToken,
    /// Signed a JWT with an authorized key (Yandex `Create` with `jwt`).
    ServiceAccountKey,
    /// Presented a long-lived OAuth token (Yandex `Create` with `yandex_passport_oauth_token`).
    OAuthToken,
    /// A password and a TOTP code.
    PasswordAndTotp,
    /// Became a trusted profile (`assume`) with a token of another identity.
    Assumed,
    /// Became a trusted profile with a compute-resource token (`cr-token`).
    ComputeResource,
    /// A resource identity obtained through an authorization policy (`iam-authz`).
    AuthorizationPolicy,
    /// A service account's token minted for another identity (CreateForServiceAccount).
    MintedFor,
}

impl AuthnMethod {
    /// The `amr` values of RFC 8176 closest to the method.
    pub fn amr(&self) -> Vec<String> {
        match self {
            AuthnMethod::Password
            | AuthnMethod::ApiKey
            | AuthnMethod::RefreshToken
            | AuthnMethod::AccessToken
            | AuthnMethod::OAuthToken => vec!["pwd".to_owned()],
            // RFC 8176 "hwk" is for hardware keys; "swk" is proof of a software-held key.
            AuthnMethod::ServiceAccountKey => vec!["swk".to_owned()],
            AuthnMethod::PasswordAndTotp => vec!["pwd".to_owned(), "otp".to_owned()],
            // The builders of these principals set `amr` from what was presented.
            AuthnMethod::Assumed
            | AuthnMethod::ComputeResource
            | AuthnMethod::AuthorizationPolicy
            | AuthnMethod::MintedFor => vec![],
        }
    }
}

/// The identity behind a principal that it did not authenticate as itself: who assumed a
/// profile, which compute resource presented a token for it, who obtained a resource identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub sub: String,
    pub iam_id: String,
    /// `ServiceId`, `user`, `Profile`, `CRN`, or `CR` (a compute resource).
    pub sub_type: String,
    pub name: String,
}

/// The token a principal was authenticated from, when it presented one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedTokenRef {
    pub jti: String,
    pub iat: UnixTime,
    pub exp: UnixTime,
    /// The public OAuth client id the token was issued to (`default` for public tokens).
    pub client_id: String,
    /// The grant that issued it (`password`, `refresh_token`, ...; empty for `t1.` tokens).
    pub grant_type: String,
}

/// An identity that has been authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    iam_id: String,
    kind: SubjectKind,
    id: String,
    name: String,
    email: Option<String>,
    account_id: String,
    method: AuthnMethod,
    acr: u8,
    amr: Vec<String>,
    actor: Option<Actor>,
    lineage: Lineage,
    token: Option<PresentedTokenRef>,
}

/// The parts of a principal, for its one constructor.
pub(crate) struct PrincipalParts {
    pub iam_id: String,
    pub kind: SubjectKind,
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub account_id: String,
    pub method: AuthnMethod,
    pub acr: u8,
    pub amr: Vec<String>,
    pub actor: Option<Actor>,
    pub lineage: Lineage,
    pub token: Option<PresentedTokenRef>,
}

impl Principal {
    /// Only `authn` calls this, after checking the credential (a tidy test keeps it so).
    pub(crate) fn from_parts(parts: PrincipalParts) -> Principal {
        Principal {
            iam_id: parts.iam_id,
            kind: parts.kind,
            id: parts.id,
            name: parts.name,
            email: parts.email,
            account_id: parts.account_id,
            method: parts.method,
            acr: parts.acr,
            amr: parts.amr,
            actor: parts.actor,
            lineage: parts.lineage,
            token: parts.token,
        }
    }

    pub fn iam_id(&self) -> &str {
        &self.iam_id
    }

    pub fn kind(&self) -> SubjectKind {
        self.kind
    }

    /// The user id or service account id (the `id` and `sub` claims).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    pub fn method(&self) -> AuthnMethod {
        self.method
    }

    /// Authentication context class: 1 for a single factor, 2 with TOTP; 0 for resource
    /// identities.
    pub fn acr(&self) -> u8 {
        self.acr
    }

    /// RFC 8176 authentication method references (`pwd`, `otp`, `swk`).
    pub fn amr(&self) -> &[String] {
        &self.amr
    }

    /// Who actually authenticated, when the principal is a profile someone became (the
    /// `authn` claim); `None` when the principal authenticated as itself.
    pub fn actor(&self) -> Option<&Actor> {
        self.actor.as_ref()
    }

    /// The links this principal's credential was derived through.
    pub fn lineage(&self) -> &Lineage {
        &self.lineage
    }

    /// The token the principal presented, if it authenticated with one.
    pub fn token(&self) -> Option<&PresentedTokenRef> {
        self.token.as_ref()
    }

    /// Whether the principal authenticated as itself with a credential of its own (not as a
    /// profile or resource identity someone became, and not with a token minted for it by
    /// another identity).
    pub fn is_self_authenticated(&self) -> bool {
        self.actor.is_none()
            && !self
                .lineage
                .links()
                .iter()
                .any(|l| matches!(l, crate::lineage::Link::Actor(_)))
    }
}
