//! The domain model: one set of records serving both clouds' vocabularies.
//!
//! Records are plain data. Timestamps are unix seconds. Secrets are held only as keyed hashes
//! ([`KeyHash`]) or Argon2id PHC strings; nothing here holds a secret in the clear.

use crate::UnixTime;
use std::fmt;

/// HMAC-SHA-256 of a machine secret under the server pepper. `Debug` shows a prefix only.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enterprise {
    pub id: String,
    pub name: String,
    pub created_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub enterprise_id: Option<String>,
    pub created_at: UnixTime,
}

#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Also the user's `iam_id` (`IBMid-…`).
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub email: String,
    /// Argon2id PHC string; `None` for users who cannot log in with a password.
    pub password_hash: Option<String>,
    pub federated: bool,
    pub created_at: UnixTime,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("name", &self.name)
            .field("has_password", &self.password_hash.is_some())
            .field("federated", &self.federated)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    /// `ServiceId-<uuid>`; the `iam_id` is `iam-` + this.
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    pub created_at: UnixTime,
}

impl ServiceAccount {
    pub fn iam_id(&self) -> String {
        crate::ids::service_iam_id(&self.id)
    }
}

/// What kind of identity a subject is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectKind {
    User,
    ServiceId,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::User => "user",
            SubjectKind::ServiceId => "serviceid",
        }
    }

    /// The kind an `iam_id` names, judged by its prefix.
    pub fn of_iam_id(iam_id: &str) -> Option<SubjectKind> {
        if iam_id.starts_with(crate::ids::SERVICE_IAM_ID_PREFIX) {
            Some(SubjectKind::ServiceId)
        } else if iam_id.starts_with(crate::ids::USER_ID_PREFIX) {
            Some(SubjectKind::User)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub description: String,
    /// `iam_id` of the user or service account that owns the key.
    pub owner_iam_id: String,
    pub account_id: String,
    pub key_hash: KeyHash,
    pub created_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub id: String,
    /// The account that manages the client; `None` for built-in and global clients.
    pub account_id: Option<String>,
    pub name: String,
    /// `None` for a public client (the built-in `default`).
    pub secret_hash: Option<KeyHash>,
    pub created_at: UnixTime,
}

/// The built-in public client used when a request carries no client authentication.
pub const DEFAULT_CLIENT_ID: &str = "default";

/// Roles an access binding can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Manage everything in the resource.
    Admin,
    /// Read everything in the resource.
    Viewer,
    /// Mint tokens for service accounts in the resource (`CreateForServiceAccount`).
    TokenCreator,
    /// Use (attach) service accounts in the resource.
    ServiceAccountUser,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Admin,
        Role::Viewer,
        Role::TokenCreator,
        Role::ServiceAccountUser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
            Role::TokenCreator => "iam.serviceAccounts.tokenCreator",
            Role::ServiceAccountUser => "iam.serviceAccounts.user",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == value)
    }
}

/// Where an access binding applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The whole installation: the global administrator's scope.
    Global,
    Account(String),
    ServiceAccount(String),
}

impl Resource {
    /// Stable text form: `*`, `account/<id>`, `service-account/<id>`.
    pub fn to_text(&self) -> String {
        match self {
            Resource::Global => "*".to_owned(),
            Resource::Account(id) => format!("account/{id}"),
            Resource::ServiceAccount(id) => format!("service-account/{id}"),
        }
    }

    pub fn parse(text: &str) -> Option<Resource> {
        if text == "*" {
            return Some(Resource::Global);
        }
        let (kind, id) = text.split_once('/')?;
        if id.is_empty() {
            return None;
        }
        match kind {
            "account" => Some(Resource::Account(id.to_owned())),
            "service-account" => Some(Resource::ServiceAccount(id.to_owned())),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessBinding {
    pub id: String,
    pub subject_iam_id: String,
    pub role: Role,
    pub resource: Resource,
    pub created_at: UnixTime,
}

/// A revoked token id, remembered until the token would have expired anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub jti: String,
    pub expires_at: UnixTime,
}

/// Tokens of `iam_id` issued before `not_before` are invalid ("revoke everything").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectCutoff {
    pub iam_id: String,
    pub not_before: UnixTime,
}

/// Key sizes of authorized keys (the `key_algorithm` of a `yc` key file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthorizedKeyAlgorithm {
    Rsa2048,
    Rsa4096,
}

impl AuthorizedKeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizedKeyAlgorithm::Rsa2048 => "RSA_2048",
            AuthorizedKeyAlgorithm::Rsa4096 => "RSA_4096",
        }
    }

    pub fn parse(value: &str) -> Option<AuthorizedKeyAlgorithm> {
        [
            AuthorizedKeyAlgorithm::Rsa2048,
            AuthorizedKeyAlgorithm::Rsa4096,
        ]
        .into_iter()
        .find(|alg| alg.as_str() == value)
    }
}

/// An RSA key pair of a service account whose private half the owner holds: it signs the PS256
/// JWTs that `Create` exchanges for an IAM token. Only the public half is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedKey {
    pub id: String,
    pub service_account_id: String,
    pub account_id: String,
    pub description: String,
    pub algorithm: AuthorizedKeyAlgorithm,
    /// SubjectPublicKeyInfo DER of the RSA public key.
    pub public_key_der: Vec<u8>,
    pub created_at: UnixTime,
}

/// A long-lived OAuth token of a user (the Yandex Passport OAuth token that `Create` accepts).
/// Stored as a keyed hash, like an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthToken {
    pub id: String,
    pub user_id: String,
    pub account_id: String,
    pub description: String,
    pub token_hash: KeyHash,
    pub created_at: UnixTime,
}

/// Signing algorithms Tessera uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Rs256,
    Ps256,
    Es256,
    EdDsa,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Ps256 => "PS256",
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    pub fn parse(value: &str) -> Option<Algorithm> {
        [
            Algorithm::Rs256,
            Algorithm::Ps256,
            Algorithm::Es256,
            Algorithm::EdDsa,
        ]
        .into_iter()
        .find(|alg| alg.as_str().eq_ignore_ascii_case(value))
    }
}

/// Which kind of token a signing key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUse {
    /// JWT access tokens of the IBM surface (and ID tokens).
    Jwt,
    /// `t1.` IAM tokens of the Yandex surface (always Ed25519).
    YandexIam,
}

impl KeyUse {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUse::Jwt => "jwt",
            KeyUse::YandexIam => "yandex-iam",
        }
    }
    pub fn parse(value: &str) -> Option<KeyUse> {
        [KeyUse::Jwt, KeyUse::YandexIam]
            .into_iter()
            .find(|u| u.as_str() == value)
    }
}

/// Life cycle of a signing key: published before it signs, published after it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    Next,
    Active,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }
    pub fn parse(value: &str) -> Option<KeyState> {
        [KeyState::Next, KeyState::Active, KeyState::Retired]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// A signing key as stored: the private half sealed under the master key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub algorithm: Algorithm,
    pub key_use: KeyUse,
    pub state: KeyState,
    /// PKCS#8 private key, sealed with [`crate::seal::MasterKey`].
    pub sealed_private_key: Vec<u8>,
    pub created_at: UnixTime,
    /// When the key stopped signing; it stays published until tokens it signed expire.
    pub retired_at: Option<UnixTime>,
}

impl fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("key_use", &self.key_use)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_round_trip() {
        for r in [
            Resource::Global,
            Resource::Account("abc".into()),
            Resource::ServiceAccount("ServiceId-x".into()),
        ] {
            assert_eq!(Resource::parse(&r.to_text()), Some(r));
        }
        assert_eq!(Resource::parse("account/"), None);
        assert_eq!(Resource::parse("planet/earth"), None);
    }

    #[test]
    fn roles_and_algorithms_parse() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Algorithm::parse("rs256"), Some(Algorithm::Rs256));
        assert_eq!(Algorithm::parse("HS256"), None);
    }

    #[test]
    fn secret_bearing_debug_is_redacted() {
        let hash = KeyHash([0xab; 32]);
        assert_eq!(format!("{hash:?}"), "KeyHash(abab…)");
    }
}
