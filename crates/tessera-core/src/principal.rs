//! The authenticated principal: where every credential flow ends and every token begins.

use crate::model::SubjectKind;

/// How the principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl AuthnMethod {
    /// The `amr` values of RFC 8176 closest to the method.
    pub fn amr(&self) -> Vec<String> {
        match self {
            AuthnMethod::Password => vec!["pwd".to_owned()],
            AuthnMethod::ApiKey
            | AuthnMethod::RefreshToken
            | AuthnMethod::AccessToken
            | AuthnMethod::OAuthToken => vec!["pwd".to_owned()],
            // RFC 8176 "hwk" is for hardware keys; "swk" is proof of a software-held key.
            AuthnMethod::ServiceAccountKey => vec!["swk".to_owned()],
            AuthnMethod::PasswordAndTotp => vec!["pwd".to_owned(), "otp".to_owned()],
            // The builders of these principals set `amr` from what was presented.
            AuthnMethod::Assumed | AuthnMethod::ComputeResource => vec![],
            AuthnMethod::AuthorizationPolicy => vec![],
        }
    }
}

/// An identity that has been authenticated. Only the `authn` module builds one, so holding a
/// `Principal` means a credential was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Principal {
    pub iam_id: String,
    pub kind: SubjectKind,
    /// The user id or service account id (the `id` and `sub` claims).
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub account_id: String,
    pub method: AuthnMethod,
    /// Authentication context class: 1 for a single factor, 2 with TOTP; 0 for resource
    /// identities.
    pub acr: u8,
    /// RFC 8176 authentication method references (`pwd`, `otp`, `swk`).
    pub amr: Vec<String>,
    /// Who actually authenticated, when the principal is a profile someone became (the
    /// `authn` claim); `None` when the principal authenticated as itself.
    pub actor: Option<Actor>,
}

/// The identity behind a principal that is a profile: who assumed it, or which compute
/// resource presented a token for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub sub: String,
    pub iam_id: String,
    /// `ServiceId`, `user`, `Profile`, `CRN`, or `CR` (a compute resource).
    pub sub_type: String,
    pub name: String,
}
