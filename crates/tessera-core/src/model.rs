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
    /// What second factor the account requires of its users.
    pub mfa: MfaRequirement,
    pub created_at: UnixTime,
}

/// An account's MFA setting. Machine identities (service IDs, profiles, CRNs) are exempt:
/// they have no second factor to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MfaRequirement {
    /// Users log in with a password alone (`acr` 1).
    #[default]
    None,
    /// Users' password logins need a TOTP code (`acr` 2), and `assume` of the account's
    /// profiles needs a user token of that level.
    Totp,
}

impl MfaRequirement {
    pub fn as_str(self) -> &'static str {
        match self {
            MfaRequirement::None => "NONE",
            MfaRequirement::Totp => "TOTP",
        }
    }

    pub fn parse(value: &str) -> Option<MfaRequirement> {
        [MfaRequirement::None, MfaRequirement::Totp]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(value))
    }

    /// The lowest `acr` a user's token must carry in an account with this setting.
    pub fn required_acr(self) -> u8 {
        match self {
            MfaRequirement::None => 1,
            MfaRequirement::Totp => 2,
        }
    }
}

/// A user's TOTP (RFC 6238) second factor. The shared secret is sealed under the server's
/// master-derived key, since verifying a code needs it in the clear.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpEnrollment {
    /// The user this factor belongs to (also the record's key).
    pub user_id: String,
    pub account_id: String,
    pub sealed_secret: Vec<u8>,
    /// `false` until the user proves possession with a first code; unconfirmed factors do not
    /// count for MFA.
    pub confirmed: bool,
    /// A replacement enrolled while `sealed_secret` is confirmed: it takes over only once
    /// confirmed with a code of its own, so replacing a factor never turns MFA off.
    pub pending_secret: Option<Vec<u8>>,
    pub created_at: UnixTime,
}

impl fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpEnrollment")
            .field("user_id", &self.user_id)
            .field("account_id", &self.account_id)
            .field("confirmed", &self.confirmed)
            .field("replacement_pending", &self.pending_secret.is_some())
            .finish_non_exhaustive()
    }
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
    /// A trusted profile, assumed by another identity or a compute resource.
    Profile,
    /// A resource identity (`crn-<CRN>`), obtained through an authorization policy.
    Crn,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::User => "user",
            SubjectKind::ServiceId => "serviceid",
            SubjectKind::Profile => "profile",
            SubjectKind::Crn => "crn",
        }
    }

    /// The kind an `iam_id` names, judged by its prefix.
    pub fn of_iam_id(iam_id: &str) -> Option<SubjectKind> {
        if iam_id.starts_with(crate::ids::SERVICE_IAM_ID_PREFIX) {
            Some(SubjectKind::ServiceId)
        } else if iam_id.starts_with(crate::ids::USER_ID_PREFIX) {
            Some(SubjectKind::User)
        } else if iam_id.starts_with(crate::ids::PROFILE_IAM_ID_PREFIX) {
            Some(SubjectKind::Profile)
        } else if iam_id.starts_with(crate::ids::CRN_IAM_ID_PREFIX) {
            Some(SubjectKind::Crn)
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

/// An OAuth client. Client ids are unique per account: two accounts may both have an `app`
/// client, told apart at Basic authentication by their secrets and everywhere else by `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// The store key: [`OAuthClient::key_for`] of `account_id` and `id`.
    pub key: String,
    /// The public client id (what HTTP Basic and the `client_id` claim carry).
    pub id: String,
    /// The account that manages the client; `None` for built-in and global clients, whose ids
    /// are the global administrator's namespace.
    pub account_id: Option<String>,
    pub name: String,
    /// `None` for a public client (the built-in `default`).
    pub secret_hash: Option<KeyHash>,
    pub created_at: UnixTime,
}

impl OAuthClient {
    /// The store key of client `id` in `account_id`: `<account>/<id>`, or `<id>` for a global
    /// client. Client ids never contain `/`, so the two forms cannot collide.
    pub fn key_for(account_id: Option<&str>, id: &str) -> String {
        match account_id {
            Some(account) => format!("{account}/{id}"),
            None => id.to_owned(),
        }
    }
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

    /// What holding the role on a resource allows, in a sentence (shown beside the role where
    /// roles are granted).
    pub fn meaning(self) -> &'static str {
        match self {
            Role::Admin => {
                "Manage everything in the resource, including its credentials and bindings."
            }
            Role::Viewer => "Read everything in the resource; change nothing.",
            Role::TokenCreator => {
                "Mint tokens for the service accounts in the resource (CreateForServiceAccount)."
            }
            Role::ServiceAccountUser => "Use (attach) the service accounts in the resource.",
        }
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

/// Who may `assume` a trusted profile (IBM "trusted identities").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrustedIdentity {
    #[serde(rename = "type")]
    pub kind: TrustedIdentityType,
    /// A user's `IBMid-…`, a service ID's `iam-ServiceId-…`, or a CRN (`crn:v1:…`).
    pub identifier: String,
    /// Users only: the accounts whose tokens of this user are trusted; empty means the user's
    /// own account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustedIdentityType {
    User,
    Serviceid,
    Crn,
}

/// A compute resource a trusted profile trusts by name (IBM "links"): a Kubernetes service
/// account in a cluster (`crn` + `namespace` + `name`), a Code Engine component
/// (`crn` + `component_type` + `component_name`), or a VM (`crn`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ComputeResourceLink {
    pub id: String,
    pub cr_type: String,
    pub crn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_name: Option<String>,
}

/// The comparison of one claim-rule condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClaimOperator {
    Equals,
    NotEquals,
    EqualsIgnoreCase,
    NotEqualsIgnoreCase,
    Contains,
    In,
}

/// `claim OPERATOR value`; `value` is JSON-encoded (`"\"prod\""`, `"[\"a\",\"b\"]"`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClaimCondition {
    pub claim: String,
    pub operator: ClaimOperator,
    pub value: String,
}

/// A claim rule of a trusted profile: every condition must hold (AND).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClaimRule {
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `Profile-CR` (compute resources). `Profile-SAML` is refused: there is no SAML here.
    #[serde(rename = "type")]
    pub rule_type: String,
    /// The compute-resource type the rule applies to (`IKS_SA`, `ROKS_SA`, `CE`, `VSI`, ...).
    pub cr_type: String,
    pub conditions: Vec<ClaimCondition>,
}

/// An identity others may become (IBM trusted profile): by `assume` if they are a trusted
/// identity, or by presenting a compute-resource token that a link or claim rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProfile {
    /// `Profile-<uuid>`; the `iam_id` is `iam-` + this.
    pub id: String,
    pub account_id: String,
    /// Unique within the account (`profile_name` + `account` select by it).
    pub name: String,
    pub description: String,
    pub identities: Vec<TrustedIdentity>,
    pub links: Vec<ComputeResourceLink>,
    pub rules: Vec<ClaimRule>,
    pub created_at: UnixTime,
}

impl TrustedProfile {
    pub fn iam_id(&self) -> String {
        format!("iam-{}", self.id)
    }

    /// The profile's CRN, as `profile_crn` selects it.
    pub fn crn(&self) -> String {
        crate::ids::profile_crn(&self.account_id, &self.id)
    }
}

/// Where a trusted issuer's public keys come from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JwksSource {
    /// A JWKS document (`{"keys": [...]}`) held in the store.
    Inline(serde_json::Value),
    /// A path on the server's file system, read by the server (e.g. a mounted ConfigMap).
    File(String),
}

/// An external OIDC issuer whose JWTs are compute-resource tokens: a Kubernetes cluster's
/// service-account issuer, a CI system. The issuer stands for one compute resource (`crn`) in
/// one account; its tokens' claims become compute-resource claims through `claim_mapping`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIssuer {
    /// `Issuer-<uuid>`.
    pub id: String,
    pub account_id: String,
    pub name: String,
    /// The exact `iss` of its tokens; unique within the account (accounts may share one, e.g.
    /// `https://kubernetes.default.svc`; a token is matched by the keys that verify it).
    pub issuer_url: String,
    pub jwks: JwksSource,
    /// Accepted `aud` values (at least one).
    pub audiences: Vec<String>,
    /// The compute-resource type its tokens stand for (`IKS_SA`, `ROKS_SA`, `CE`, `VSI`, ...).
    pub cr_type: String,
    /// The compute resource's CRN (e.g. the cluster's), which profile links name.
    pub crn: String,
    /// Compute-resource claim name -> dotted path in the token (`kubernetes.io.namespace`).
    /// Claims not mapped are read from the token's top level under their own name.
    pub claim_mapping: std::collections::BTreeMap<String, String>,
    pub created_at: UnixTime,
}

/// Lets `source_iam_id` obtain tokens for the resource identity `target_crn`
/// (`iam-authz` grant with `desired_iam_id=crn-<CRN>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationPolicy {
    /// `Policy-<uuid>`.
    pub id: String,
    /// The account of the target resource; tokens for the CRN belong to it.
    pub account_id: String,
    /// Any identity: `iam-ServiceId-…`, `IBMid-…`, `iam-Profile-…` or `crn-…`.
    pub source_iam_id: String,
    /// A CRN, or a CRN prefix ending in `*`.
    pub target_crn: String,
    pub description: String,
    pub created_at: UnixTime,
}

impl AuthorizationPolicy {
    /// Whether the policy's target covers `crn`: the CRN matches the target (exactly, or by
    /// the prefix before a final `*`) and is scoped to the policy's own account. The second
    /// condition keeps policies inside their tenant even if a stored target is wider than the
    /// creation rules allow (targets created before those rules existed).
    pub fn covers(&self, crn: &str) -> bool {
        let matches = match self.target_crn.strip_suffix('*') {
            Some(prefix) => crn.starts_with(prefix),
            None => self.target_crn == crn,
        };
        matches && crate::ids::crn_account(crn) == Some(self.account_id.as_str())
    }

    /// Checks a target: a CRN, or a CRN prefix ending in `*`, either way confined to
    /// `account_id`: its scope segment must be complete and read `a/<account_id>`, so a wildcard
    /// extends only within the account. Returns the normalised target.
    pub fn parse_target(value: &str, account_id: &str) -> crate::error::Result<String> {
        use crate::error::Error;
        let value = value.trim();
        let confined = |scoped: Option<&str>| -> crate::error::Result<()> {
            match scoped {
                Some(account) if account == account_id => Ok(()),
                Some(account) => Err(Error::invalid(format!(
                    "target_crn is scoped to account a/{account}, but the policy belongs to \
                     account {account_id}; a policy may only target resources of its own account"
                ))),
                None => Err(Error::invalid(format!(
                    "target_crn must be scoped to the policy's account: its seventh segment must \
                     be a/{account_id}, complete and followed by ':' (a wildcard may only extend \
                     within the account)"
                ))),
            }
        };
        let Some(prefix) = value.strip_suffix('*') else {
            let scoped = crate::ids::parse_crn("target_crn", value)?;
            confined(scoped.as_deref())?;
            return Ok(value.to_owned());
        };
        if value.len() > crate::ids::MAX_CRN {
            return Err(Error::invalid(format!(
                "target_crn is longer than {} characters",
                crate::ids::MAX_CRN
            )));
        }
        if !prefix.starts_with("crn:v1:") {
            return Err(Error::invalid(
                "target_crn must be a CRN or a CRN prefix ending in *, and start with crn:v1:",
            ));
        }
        if prefix.contains('*') {
            return Err(Error::invalid("target_crn may contain * only at its end"));
        }
        if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid("target_crn contains whitespace"));
        }
        let segments: Vec<&str> = prefix.split(':').collect();
        if segments.len() > 10 {
            return Err(Error::invalid(
                "target_crn has more than 10 colon-separated segments",
            ));
        }
        // The scope segment counts only when complete (a colon follows it).
        let scoped = if segments.len() > 7 {
            segments[6].strip_prefix("a/")
        } else {
            None
        };
        confined(scoped)?;
        Ok(value.to_owned())
    }
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
