//! Export and import of a whole installation as one portable, versioned JSON document: how an
//! installation moves between SQLite and PostgreSQL, or between machines.
//!
//! A [`Dump`] holds the server secrets (still sealed) and every object current at export time
//! (revocations that had already expired are left out). It does not hold history: the change
//! feed, the audit log and leases stay behind, and the target numbers its own feed from the
//! import on. Sealed values stay sealed, so the target must run with the same master key; the
//! dump still contains password and API-key hashes, so guard it like a database backup.
//!
//! The format, version 1:
//!
//! ```json
//! {
//!   "format": "tessera-export",
//!   "version": 1,
//!   "exported_at": 1800000000,
//!   "server_secrets": [{"name": "pepper", "sealed": "<base64>"}],
//!   "entities": {
//!     "enterprises": [...], "accounts": [...], "users": [...], "service_accounts": [...],
//!     "api_keys": [...], "authorized_keys": [...], "oauth_tokens": [...], "clients": [...],
//!     "access_bindings": [...], "revocations": [...], "subject_cutoffs": [...],
//!     "signing_keys": [...], "totp_enrollments": [...], "trusted_profiles": [...],
//!     "trusted_issuers": [...], "authorization_policies": [...]
//!   }
//! }
//! ```
//!
//! Objects are plain field-for-field copies of the domain records; hashes and sealed blobs are
//! standard base64, roles, resources, algorithms, key uses and key states are their text forms,
//! timestamps are unix seconds. A missing entity list reads as empty (so a dump written before
//! authorized keys and OAuth tokens existed still imports). An authorized key's `public_key` is
//! the base64 of its SubjectPublicKeyInfo DER and its `algorithm` is `RSA_2048` or `RSA_4096`;
//! an OAuth token's `token_hash` is the base64 of its 32-byte keyed hash, like an API key's.
//!
//! [`import`] wants an empty target and checks the whole dump before it writes anything; see
//! there for what can still leave a partial import behind.

use crate::engine::describe;
use crate::{AuditEvent, ListFilter, Result, Store, StoreError};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use tessera_core::directory::{Entity, EntityKind};
use tessera_core::model::{
    AccessBinding, Account, Algorithm, ApiKey, AuthorizationPolicy, AuthorizedKey,
    AuthorizedKeyAlgorithm, ClaimRule, ComputeResourceLink, Enterprise, JwksSource, KeyHash,
    KeyState, KeyUse, MfaRequirement, OAuthClient, OAuthToken, Resource, Revocation, Role,
    ServiceAccount, SigningKeyRecord, SubjectCutoff, TotpEnrollment, TrustedIdentity,
    TrustedIssuer, TrustedProfile, User,
};

/// The `format` of every dump.
pub const FORMAT: &str = "tessera-export";
/// The dump version this build writes and reads.
pub const VERSION: u32 = 1;

/// A whole installation, ready to be written as JSON ([`Dump::to_json`]) or imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dump {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] when written by this build.
    pub version: u32,
    /// Unix seconds; revocations that expired before this were left out.
    pub exported_at: i64,
    pub server_secrets: Vec<ServerSecretDto>,
    pub entities: Entities,
}

impl Dump {
    /// Parses a dump, checking `format` and `version` before the rest, so that a file of another
    /// kind or from a newer Tessera is named as such rather than reported as a parse error.
    pub fn from_json(json: &str) -> Result<Dump> {
        #[derive(Deserialize)]
        struct Header {
            format: String,
            version: u32,
        }
        let header: Header = serde_json::from_str(json)
            .map_err(|e| invalid(format!("not a Tessera export ({e})")))?;
        check_header(&header.format, header.version)?;
        serde_json::from_str(json).map_err(|e| invalid(e.to_string()))
    }

    /// The dump as indented JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| StoreError::Corrupt(format!("serializing the export: {e}")))
    }

    /// How many objects the dump holds, server secrets not counted.
    pub fn entity_count(&self) -> usize {
        let e = &self.entities;
        e.enterprises.len()
            + e.accounts.len()
            + e.users.len()
            + e.service_accounts.len()
            + e.api_keys.len()
            + e.authorized_keys.len()
            + e.oauth_tokens.len()
            + e.clients.len()
            + e.access_bindings.len()
            + e.revocations.len()
            + e.subject_cutoffs.len()
            + e.signing_keys.len()
            + e.totp_enrollments.len()
            + e.trusted_profiles.len()
            + e.trusted_issuers.len()
            + e.authorization_policies.len()
    }
}

/// What [`import`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub server_secrets: usize,
    /// Objects created, by the dump's section name (`accounts`, `api_keys`, ...).
    pub entities: BTreeMap<String, usize>,
    pub total_entities: usize,
    /// The target's change-feed position after the import (0 if nothing was created).
    pub seq: i64,
}

/// Reads the whole installation: every current object and every server secret.
pub async fn export(store: &dyn Store, now: i64) -> Result<Dump> {
    let (entities, _seq) = store.load_all(now).await?;
    let secrets = store.list_server_secrets().await?;
    let mut out = Entities::default();
    for entity in &entities {
        out.push(entity);
    }
    out.sort();
    Ok(Dump {
        format: FORMAT.to_owned(),
        version: VERSION,
        exported_at: now,
        server_secrets: secrets
            .into_iter()
            .map(|(name, sealed)| ServerSecretDto {
                name,
                sealed: BASE64.encode(sealed),
            })
            .collect(),
        entities: out,
    })
}

/// Writes `dump` into `store`, which must be empty (no objects of any kind; server secrets are
/// allowed if they equal the dump's), each object with `audit` as its audit event.
///
/// Order: the whole dump is decoded and checked first (format, version, base64, enum texts,
/// duplicate keys), then the target's emptiness and server secrets, all before the first write;
/// a dump or target that fails these changes nothing. Then the server secrets, then the objects
/// in dependency order (enterprises, accounts, users, TOTP factors, service accounts, trusted
/// profiles, trusted issuers, API keys, authorized keys, OAuth tokens, clients, bindings,
/// authorization policies, revocations, cut-offs, signing keys), one transaction each. A failure from there on
/// (a database error, or a dump whose objects reference missing ones) leaves what was already
/// written; the target was empty, so start again from a fresh one.
pub async fn import(store: &dyn Store, dump: &Dump, audit: &AuditEvent) -> Result<ImportReport> {
    check_header(&dump.format, dump.version)?;
    let secrets = decode_secrets(&dump.server_secrets)?;
    let sections = dump.entities.decode()?;

    ensure_empty(store).await?;
    let existing: HashMap<String, Vec<u8>> =
        store.list_server_secrets().await?.into_iter().collect();
    for (name, sealed) in &secrets {
        if existing.get(name).is_some_and(|stored| stored != sealed) {
            return Err(different_secrets(name));
        }
    }

    for (name, sealed) in &secrets {
        // First writer wins: if another process created it meanwhile, say so.
        let stored = store.server_secret(name, sealed).await?;
        if stored != *sealed {
            return Err(different_secrets(name));
        }
    }
    let mut report = ImportReport {
        server_secrets: secrets.len(),
        entities: BTreeMap::new(),
        total_entities: 0,
        seq: 0,
    };
    for (section, entities) in &sections {
        for entity in entities {
            report.seq = store.create(entity, audit).await.inspect_err(|e| {
                tracing::error!(
                    created = report.total_entities,
                    of = dump.entity_count(),
                    error = %e,
                    "import stopped part-way; the target holds what was created so far"
                );
            })?;
            report.total_entities += 1;
        }
        report
            .entities
            .insert((*section).to_owned(), entities.len());
    }
    Ok(report)
}

fn invalid(message: String) -> StoreError {
    StoreError::Conflict(format!("invalid export: {message}"))
}

fn check_header(format: &str, version: u32) -> Result<()> {
    if format != FORMAT {
        return Err(StoreError::Conflict(format!(
            "not a Tessera export: format is {format:?}, expected {FORMAT:?}"
        )));
    }
    if version != VERSION {
        return Err(StoreError::Conflict(format!(
            "export version {version} is not supported; this Tessera reads version {VERSION}"
        )));
    }
    Ok(())
}

fn different_secrets(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "target already has different server secrets ({name}); import into a fresh database"
    ))
}

async fn ensure_empty(store: &dyn Store) -> Result<()> {
    let one = ListFilter {
        limit: Some(1),
        ..ListFilter::default()
    };
    for kind in EntityKind::ALL {
        if !store.list(kind, &one).await?.is_empty() {
            return Err(StoreError::Conflict("the target store is not empty".into()));
        }
    }
    Ok(())
}

fn decode_secrets(secrets: &[ServerSecretDto]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut names = HashSet::new();
    secrets
        .iter()
        .map(|s| {
            if !names.insert(s.name.as_str()) {
                return Err(invalid(format!("server secret {} appears twice", s.name)));
            }
            let sealed = bytes(&s.sealed, || format!("server secret {}", s.name))?;
            Ok((s.name.clone(), sealed))
        })
        .collect()
}

fn bytes(text: &str, what: impl Fn() -> String) -> Result<Vec<u8>> {
    BASE64
        .decode(text)
        .map_err(|e| invalid(format!("{} is not base64: {e}", what())))
}

fn hash(text: &str, what: impl Fn() -> String) -> Result<KeyHash> {
    let raw = bytes(text, &what)?;
    <[u8; 32]>::try_from(raw.as_slice())
        .map(KeyHash)
        .map_err(|_| invalid(format!("{} is {} bytes, not 32", what(), raw.len())))
}

fn parsed<T>(value: &str, parse: fn(&str) -> Option<T>, what: impl Fn() -> String) -> Result<T> {
    parse(value).ok_or_else(|| invalid(format!("{} is unknown: {value:?}", what())))
}

/// Every object, by kind, in the order [`import`] creates them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Entities {
    pub enterprises: Vec<EnterpriseDto>,
    pub accounts: Vec<AccountDto>,
    pub users: Vec<UserDto>,
    pub service_accounts: Vec<ServiceAccountDto>,
    pub api_keys: Vec<ApiKeyDto>,
    pub authorized_keys: Vec<AuthorizedKeyDto>,
    pub oauth_tokens: Vec<OAuthTokenDto>,
    pub clients: Vec<ClientDto>,
    pub access_bindings: Vec<AccessBindingDto>,
    pub revocations: Vec<RevocationDto>,
    pub subject_cutoffs: Vec<SubjectCutoffDto>,
    pub signing_keys: Vec<SigningKeyDto>,
    pub totp_enrollments: Vec<TotpEnrollmentDto>,
    pub trusted_profiles: Vec<TrustedProfileDto>,
    pub trusted_issuers: Vec<TrustedIssuerDto>,
    pub authorization_policies: Vec<AuthorizationPolicyDto>,
}

impl Entities {
    fn push(&mut self, entity: &Entity) {
        match entity {
            Entity::Enterprise(e) => self.enterprises.push(EnterpriseDto {
                id: e.id.clone(),
                name: e.name.clone(),
                created_at: e.created_at,
            }),
            Entity::Account(a) => self.accounts.push(AccountDto {
                id: a.id.clone(),
                name: a.name.clone(),
                enterprise_id: a.enterprise_id.clone(),
                mfa: a.mfa.as_str().to_owned(),
                created_at: a.created_at,
            }),
            Entity::User(u) => self.users.push(UserDto {
                id: u.id.clone(),
                account_id: u.account_id.clone(),
                name: u.name.clone(),
                email: u.email.clone(),
                password_hash: u.password_hash.clone(),
                federated: u.federated,
                created_at: u.created_at,
            }),
            Entity::ServiceAccount(s) => self.service_accounts.push(ServiceAccountDto {
                id: s.id.clone(),
                account_id: s.account_id.clone(),
                name: s.name.clone(),
                description: s.description.clone(),
                created_at: s.created_at,
            }),
            Entity::ApiKey(k) => self.api_keys.push(ApiKeyDto {
                id: k.id.clone(),
                name: k.name.clone(),
                description: k.description.clone(),
                owner_iam_id: k.owner_iam_id.clone(),
                account_id: k.account_id.clone(),
                key_hash: BASE64.encode(k.key_hash.0),
                created_at: k.created_at,
            }),
            Entity::Client(c) => self.clients.push(ClientDto {
                id: c.id.clone(),
                account_id: c.account_id.clone(),
                name: c.name.clone(),
                secret_hash: c.secret_hash.map(|h| BASE64.encode(h.0)),
                created_at: c.created_at,
            }),
            Entity::Binding(b) => self.access_bindings.push(AccessBindingDto {
                id: b.id.clone(),
                subject_iam_id: b.subject_iam_id.clone(),
                role: b.role.as_str().to_owned(),
                resource: b.resource.to_text(),
                created_at: b.created_at,
            }),
            Entity::AuthorizedKey(k) => self.authorized_keys.push(AuthorizedKeyDto {
                id: k.id.clone(),
                service_account_id: k.service_account_id.clone(),
                account_id: k.account_id.clone(),
                description: k.description.clone(),
                algorithm: k.algorithm.as_str().to_owned(),
                public_key: BASE64.encode(&k.public_key_der),
                created_at: k.created_at,
            }),
            Entity::OAuthToken(t) => self.oauth_tokens.push(OAuthTokenDto {
                id: t.id.clone(),
                user_id: t.user_id.clone(),
                account_id: t.account_id.clone(),
                description: t.description.clone(),
                token_hash: BASE64.encode(t.token_hash.0),
                created_at: t.created_at,
            }),
            Entity::Revocation(r) => self.revocations.push(RevocationDto {
                jti: r.jti.clone(),
                expires_at: r.expires_at,
            }),
            Entity::Cutoff(c) => self.subject_cutoffs.push(SubjectCutoffDto {
                iam_id: c.iam_id.clone(),
                not_before: c.not_before,
            }),
            Entity::SigningKey(k) => self.signing_keys.push(SigningKeyDto {
                kid: k.kid.clone(),
                algorithm: k.algorithm.as_str().to_owned(),
                key_use: k.key_use.as_str().to_owned(),
                state: k.state.as_str().to_owned(),
                sealed_private_key: BASE64.encode(&k.sealed_private_key),
                created_at: k.created_at,
                retired_at: k.retired_at,
            }),
            Entity::Totp(t) => self.totp_enrollments.push(TotpEnrollmentDto {
                user_id: t.user_id.clone(),
                account_id: t.account_id.clone(),
                sealed_secret: BASE64.encode(&t.sealed_secret),
                confirmed: t.confirmed,
                pending_secret: t.pending_secret.as_ref().map(|p| BASE64.encode(p)),
                created_at: t.created_at,
            }),
            Entity::Profile(p) => self.trusted_profiles.push(TrustedProfileDto {
                id: p.id.clone(),
                account_id: p.account_id.clone(),
                name: p.name.clone(),
                description: p.description.clone(),
                identities: p.identities.clone(),
                links: p.links.clone(),
                rules: p.rules.clone(),
                created_at: p.created_at,
            }),
            Entity::Issuer(i) => self.trusted_issuers.push(TrustedIssuerDto {
                id: i.id.clone(),
                account_id: i.account_id.clone(),
                name: i.name.clone(),
                issuer_url: i.issuer_url.clone(),
                jwks: i.jwks.clone(),
                audiences: i.audiences.clone(),
                cr_type: i.cr_type.clone(),
                crn: i.crn.clone(),
                claim_mapping: i.claim_mapping.clone(),
                created_at: i.created_at,
            }),
            Entity::Policy(p) => self.authorization_policies.push(AuthorizationPolicyDto {
                id: p.id.clone(),
                account_id: p.account_id.clone(),
                source_iam_id: p.source_iam_id.clone(),
                target_crn: p.target_crn.clone(),
                description: p.description.clone(),
                created_at: p.created_at,
            }),
        }
    }

    /// Byte order of keys within each kind, whichever backend the objects came from.
    fn sort(&mut self) {
        self.enterprises.sort_by(|a, b| a.id.cmp(&b.id));
        self.accounts.sort_by(|a, b| a.id.cmp(&b.id));
        self.users.sort_by(|a, b| a.id.cmp(&b.id));
        self.service_accounts.sort_by(|a, b| a.id.cmp(&b.id));
        self.api_keys.sort_by(|a, b| a.id.cmp(&b.id));
        self.authorized_keys.sort_by(|a, b| a.id.cmp(&b.id));
        self.oauth_tokens.sort_by(|a, b| a.id.cmp(&b.id));
        self.clients
            .sort_by(|a, b| (&a.id, &a.account_id).cmp(&(&b.id, &b.account_id)));
        self.access_bindings.sort_by(|a, b| a.id.cmp(&b.id));
        self.revocations.sort_by(|a, b| a.jti.cmp(&b.jti));
        self.subject_cutoffs.sort_by(|a, b| a.iam_id.cmp(&b.iam_id));
        self.signing_keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        self.totp_enrollments
            .sort_by(|a, b| a.user_id.cmp(&b.user_id));
        self.trusted_profiles.sort_by(|a, b| a.id.cmp(&b.id));
        self.trusted_issuers.sort_by(|a, b| a.id.cmp(&b.id));
        self.authorization_policies.sort_by(|a, b| a.id.cmp(&b.id));
    }

    /// Every object as a domain record, by section in dependency order; refuses undecodable
    /// values and keys that appear twice.
    fn decode(&self) -> Result<Vec<(&'static str, Vec<Entity>)>> {
        let sections = vec![
            (
                "enterprises",
                self.enterprises
                    .iter()
                    .map(|e| e.decode())
                    .collect::<Result<Vec<_>>>()?,
            ),
            (
                "accounts",
                self.accounts
                    .iter()
                    .map(|a| a.decode())
                    .collect::<Result<_>>()?,
            ),
            (
                "users",
                self.users
                    .iter()
                    .map(|u| u.decode())
                    .collect::<Result<_>>()?,
            ),
            (
                "totp_enrollments",
                self.totp_enrollments
                    .iter()
                    .map(|t| t.decode())
                    .collect::<Result<_>>()?,
            ),
            (
                "service_accounts",
                self.service_accounts
                    .iter()
                    .map(|s| s.decode())
                    .collect::<Result<_>>()?,
            ),
            (
                "trusted_profiles",
                self.trusted_profiles
                    .iter()
                    .map(|p| p.decode())
                    .collect::<Result<_>>()?,
            ),
            (
                "trusted_issuers",
                self.trusted_issuers
                    .iter()
                    .map(|i| i.decode())
                    .collect::<Result<_>>()?,
            ),
            (
                "api_keys",
                self.api_keys
                    .iter()
                    .map(|k| k.decode())
                    .collect::<Result<_>>()?,
            ),
            (
                "authorized_keys",
                self.authorized_keys
                    .iter()
                    .map(|k| k.decode())
                    .collect::<Result<_>>()?,
            ),
            (
                "oauth_tokens",
                self.oauth_tokens
                    .iter()
                    .map(|t| t.decode())
                    .collect::<Result<_>>()?,
            ),
            (
                "clients",
                self.clients
                    .iter()
                    .map(|c| c.decode())
                    .collect::<Result<_>>()?,
            ),
            (
                "access_bindings",
                self.access_bindings
                    .iter()
                    .map(|b| b.decode())
                    .collect::<Result<_>>()?,
            ),
            (
                "authorization_policies",
                self.authorization_policies
                    .iter()
                    .map(|p| p.decode())
                    .collect::<Result<_>>()?,
            ),
            (
                "revocations",
                self.revocations
                    .iter()
                    .map(|r| r.decode())
                    .collect::<Result<_>>()?,
            ),
            (
                "subject_cutoffs",
                self.subject_cutoffs
                    .iter()
                    .map(|c| c.decode())
                    .collect::<Result<_>>()?,
            ),
            (
                "signing_keys",
                self.signing_keys
                    .iter()
                    .map(|k| k.decode())
                    .collect::<Result<_>>()?,
            ),
        ];
        for (_, entities) in &sections {
            let mut keys = HashSet::new();
            for entity in entities {
                if !keys.insert(entity.key()) {
                    return Err(invalid(format!(
                        "{} appears twice",
                        describe(entity.kind(), entity.key())
                    )));
                }
            }
        }
        Ok(sections)
    }
}

/// A user's TOTP factor; `sealed_secret` is base64 and stays sealed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpEnrollmentDto {
    pub user_id: String,
    pub account_id: String,
    pub sealed_secret: String,
    pub confirmed: bool,
    /// A replacement factor awaiting confirmation (base64, sealed); absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_secret: Option<String>,
    pub created_at: i64,
}

impl fmt::Debug for TotpEnrollmentDto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpEnrollmentDto")
            .field("user_id", &self.user_id)
            .field("confirmed", &self.confirmed)
            .finish_non_exhaustive()
    }
}

impl TotpEnrollmentDto {
    fn decode(&self) -> Result<Entity> {
        Ok(Entity::Totp(TotpEnrollment {
            user_id: self.user_id.clone(),
            account_id: self.account_id.clone(),
            sealed_secret: bytes(&self.sealed_secret, || {
                format!("the TOTP secret of user {}", self.user_id)
            })?,
            confirmed: self.confirmed,
            pending_secret: match &self.pending_secret {
                Some(text) => Some(bytes(text, || {
                    format!("the replacement TOTP secret of user {}", self.user_id)
                })?),
                None => None,
            },
            created_at: self.created_at,
        }))
    }
}

/// A trusted profile; identities, links and claim rules in their admin-API shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedProfileDto {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    pub identities: Vec<TrustedIdentity>,
    pub links: Vec<ComputeResourceLink>,
    pub rules: Vec<ClaimRule>,
    pub created_at: i64,
}

impl TrustedProfileDto {
    fn decode(&self) -> Result<Entity> {
        Ok(Entity::Profile(TrustedProfile {
            id: self.id.clone(),
            account_id: self.account_id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            identities: self.identities.clone(),
            links: self.links.clone(),
            rules: self.rules.clone(),
            created_at: self.created_at,
        }))
    }
}

/// A trusted issuer of compute-resource tokens; `jwks` is `{"inline": {...}}` or `{"file": path}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedIssuerDto {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub issuer_url: String,
    pub jwks: JwksSource,
    pub audiences: Vec<String>,
    pub cr_type: String,
    pub crn: String,
    pub claim_mapping: BTreeMap<String, String>,
    pub created_at: i64,
}

impl TrustedIssuerDto {
    fn decode(&self) -> Result<Entity> {
        Ok(Entity::Issuer(TrustedIssuer {
            id: self.id.clone(),
            account_id: self.account_id.clone(),
            name: self.name.clone(),
            issuer_url: self.issuer_url.clone(),
            jwks: self.jwks.clone(),
            audiences: self.audiences.clone(),
            cr_type: self.cr_type.clone(),
            crn: self.crn.clone(),
            claim_mapping: self.claim_mapping.clone(),
            created_at: self.created_at,
        }))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationPolicyDto {
    pub id: String,
    pub account_id: String,
    pub source_iam_id: String,
    pub target_crn: String,
    pub description: String,
    pub created_at: i64,
}

impl AuthorizationPolicyDto {
    fn decode(&self) -> Result<Entity> {
        Ok(Entity::Policy(AuthorizationPolicy {
            id: self.id.clone(),
            account_id: self.account_id.clone(),
            source_iam_id: self.source_iam_id.clone(),
            target_crn: self.target_crn.clone(),
            description: self.description.clone(),
            created_at: self.created_at,
        }))
    }
}

/// A sealed server secret; `sealed` is base64.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSecretDto {
    pub name: String,
    pub sealed: String,
}

impl fmt::Debug for ServerSecretDto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSecretDto")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterpriseDto {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

impl EnterpriseDto {
    fn decode(&self) -> Result<Entity> {
        Ok(Entity::Enterprise(Enterprise {
            id: self.id.clone(),
            name: self.name.clone(),
            created_at: self.created_at,
        }))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDto {
    pub id: String,
    pub name: String,
    pub enterprise_id: Option<String>,
    /// `NONE` or `TOTP`; absent in dumps written before accounts had an MFA setting.
    #[serde(default = "no_mfa")]
    pub mfa: String,
    pub created_at: i64,
}

fn no_mfa() -> String {
    MfaRequirement::None.as_str().to_owned()
}

impl AccountDto {
    fn decode(&self) -> Result<Entity> {
        Ok(Entity::Account(Account {
            id: self.id.clone(),
            name: self.name.clone(),
            enterprise_id: self.enterprise_id.clone(),
            mfa: MfaRequirement::parse(&self.mfa).ok_or_else(|| {
                invalid(format!(
                    "account {} has unknown mfa setting {:?} (NONE or TOTP)",
                    self.id, self.mfa
                ))
            })?,
            created_at: self.created_at,
        }))
    }
}

/// A user; `password_hash` is the Argon2id PHC string, or null.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDto {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub email: String,
    pub password_hash: Option<String>,
    pub federated: bool,
    pub created_at: i64,
}

impl fmt::Debug for UserDto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserDto")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("name", &self.name)
            .field("has_password", &self.password_hash.is_some())
            .field("federated", &self.federated)
            .finish_non_exhaustive()
    }
}

impl UserDto {
    fn decode(&self) -> Result<Entity> {
        Ok(Entity::User(User {
            id: self.id.clone(),
            account_id: self.account_id.clone(),
            name: self.name.clone(),
            email: self.email.clone(),
            password_hash: self.password_hash.clone(),
            federated: self.federated,
            created_at: self.created_at,
        }))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountDto {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
}

impl ServiceAccountDto {
    fn decode(&self) -> Result<Entity> {
        Ok(Entity::ServiceAccount(ServiceAccount {
            id: self.id.clone(),
            account_id: self.account_id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            created_at: self.created_at,
        }))
    }
}

/// An API key; `key_hash` is the base64 of its 32-byte keyed hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyDto {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owner_iam_id: String,
    pub account_id: String,
    pub key_hash: String,
    pub created_at: i64,
}

impl fmt::Debug for ApiKeyDto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyDto")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("owner_iam_id", &self.owner_iam_id)
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

impl ApiKeyDto {
    fn decode(&self) -> Result<Entity> {
        Ok(Entity::ApiKey(ApiKey {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            owner_iam_id: self.owner_iam_id.clone(),
            account_id: self.account_id.clone(),
            key_hash: hash(&self.key_hash, || {
                format!("the hash of api key {}", self.id)
            })?,
            created_at: self.created_at,
        }))
    }
}

/// An authorized key of a service account: `algorithm` (`RSA_2048`, `RSA_4096`) and
/// `public_key`, the base64 of the SubjectPublicKeyInfo DER. The private half is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizedKeyDto {
    pub id: String,
    pub service_account_id: String,
    pub account_id: String,
    pub description: String,
    pub algorithm: String,
    pub public_key: String,
    pub created_at: i64,
}

impl AuthorizedKeyDto {
    fn decode(&self) -> Result<Entity> {
        let what = |field: &str| format!("the {field} of authorized key {}", self.id);
        let public_key_der = bytes(&self.public_key, || what("public key"))?;
        if public_key_der.is_empty() {
            return Err(invalid(format!("{} is empty", what("public key"))));
        }
        Ok(Entity::AuthorizedKey(AuthorizedKey {
            id: self.id.clone(),
            service_account_id: self.service_account_id.clone(),
            account_id: self.account_id.clone(),
            description: self.description.clone(),
            algorithm: parsed(&self.algorithm, AuthorizedKeyAlgorithm::parse, || {
                what("algorithm")
            })?,
            public_key_der,
            created_at: self.created_at,
        }))
    }
}

/// A user's OAuth token; `token_hash` is the base64 of its 32-byte keyed hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthTokenDto {
    pub id: String,
    pub user_id: String,
    pub account_id: String,
    pub description: String,
    pub token_hash: String,
    pub created_at: i64,
}

impl fmt::Debug for OAuthTokenDto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthTokenDto")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

impl OAuthTokenDto {
    fn decode(&self) -> Result<Entity> {
        Ok(Entity::OAuthToken(OAuthToken {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            account_id: self.account_id.clone(),
            description: self.description.clone(),
            token_hash: hash(&self.token_hash, || {
                format!("the hash of oauth token {}", self.id)
            })?,
            created_at: self.created_at,
        }))
    }
}

/// An OAuth client; `secret_hash` is base64, or null for a public client.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientDto {
    pub id: String,
    pub account_id: Option<String>,
    pub name: String,
    pub secret_hash: Option<String>,
    pub created_at: i64,
}

impl fmt::Debug for ClientDto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientDto")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("name", &self.name)
            .field("has_secret", &self.secret_hash.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientDto {
    fn decode(&self) -> Result<Entity> {
        let secret_hash = match &self.secret_hash {
            Some(text) => Some(hash(text, || {
                format!("the secret hash of client {}", self.id)
            })?),
            None => None,
        };
        Ok(Entity::Client(OAuthClient {
            key: OAuthClient::key_for(self.account_id.as_deref(), &self.id),
            id: self.id.clone(),
            account_id: self.account_id.clone(),
            name: self.name.clone(),
            secret_hash,
            created_at: self.created_at,
        }))
    }
}

/// An access binding; `role` and `resource` in their text forms (`admin`, `account/<id>`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessBindingDto {
    pub id: String,
    pub subject_iam_id: String,
    pub role: String,
    pub resource: String,
    pub created_at: i64,
}

impl AccessBindingDto {
    fn decode(&self) -> Result<Entity> {
        Ok(Entity::Binding(AccessBinding {
            id: self.id.clone(),
            subject_iam_id: self.subject_iam_id.clone(),
            role: parsed(&self.role, Role::parse, || {
                format!("the role of access binding {}", self.id)
            })?,
            resource: parsed(&self.resource, Resource::parse, || {
                format!("the resource of access binding {}", self.id)
            })?,
            created_at: self.created_at,
        }))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationDto {
    pub jti: String,
    pub expires_at: i64,
}

impl RevocationDto {
    fn decode(&self) -> Result<Entity> {
        Ok(Entity::Revocation(Revocation {
            jti: self.jti.clone(),
            expires_at: self.expires_at,
        }))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectCutoffDto {
    pub iam_id: String,
    pub not_before: i64,
}

impl SubjectCutoffDto {
    fn decode(&self) -> Result<Entity> {
        Ok(Entity::Cutoff(SubjectCutoff {
            iam_id: self.iam_id.clone(),
            not_before: self.not_before,
        }))
    }
}

/// A signing key: `algorithm` (`RS256`, `ES256`, `EdDSA`, ...), `key_use` (`jwt`,
/// `yandex-iam`), `state` (`next`, `active`, `retired`), and the sealed PKCS#8 private key in
/// base64.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyDto {
    pub kid: String,
    pub algorithm: String,
    pub key_use: String,
    pub state: String,
    pub sealed_private_key: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl fmt::Debug for SigningKeyDto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyDto")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("key_use", &self.key_use)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl SigningKeyDto {
    fn decode(&self) -> Result<Entity> {
        let what = |field: &str| format!("the {field} of signing key {}", self.kid);
        Ok(Entity::SigningKey(SigningKeyRecord {
            kid: self.kid.clone(),
            algorithm: parsed(&self.algorithm, Algorithm::parse, || what("algorithm"))?,
            key_use: parsed(&self.key_use, KeyUse::parse, || what("key use"))?,
            state: parsed(&self.state, KeyState::parse, || what("state"))?,
            sealed_private_key: bytes(&self.sealed_private_key, || what("sealed private key"))?,
            created_at: self.created_at,
            retired_at: self.retired_at,
        }))
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failed expectation should stop the test loudly.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::postgres::testing;
    use crate::sqlite::testing::fresh as fresh_sqlite;
    use crate::suite::{self, NOW};

    fn import_event() -> AuditEvent {
        AuditEvent {
            detail: "from a dump".into(),
            ..suite::audit("store.import")
        }
    }

    /// Same objects, in any order.
    fn assert_same_sets(left: &[Entity], right: &[Entity]) {
        let sorted = |entities: &[Entity]| {
            let mut sorted = entities.to_vec();
            sorted.sort_by(|a, b| (a.kind().as_str(), a.key()).cmp(&(b.kind().as_str(), b.key())));
            sorted
        };
        let (left, right) = (sorted(left), sorted(right));
        assert_eq!(left.len(), right.len(), "{left:?}\nvs\n{right:?}");
        for (l, r) in left.iter().zip(&right) {
            assert!(suite::same(l, r), "{l:?} differs from {r:?}");
        }
    }

    /// What a store holds, for before/after comparisons: objects, feed position, server
    /// secrets, number of audit rows.
    type State = (Vec<Entity>, i64, Vec<(String, Vec<u8>)>, usize);

    async fn state(store: &dyn Store) -> State {
        let (entities, seq) = store.load_all(NOW).await.unwrap();
        let secrets = store.list_server_secrets().await.unwrap();
        let audits = store
            .list_audit(&crate::AuditFilter::newest(10_000))
            .await
            .unwrap()
            .len();
        (entities, seq, secrets, audits)
    }

    async fn assert_unchanged(store: &dyn Store, before: &State) {
        let after = state(store).await;
        assert_same_sets(&after.0, &before.0);
        assert_eq!(after.1, before.1, "seq");
        assert_eq!(after.2, before.2, "server secrets");
        assert_eq!(after.3, before.3, "audit rows");
    }

    /// Imports `dump` into `target` (empty) and checks it then holds what `source` holds.
    async fn import_and_compare(source: &dyn Store, target: &dyn Store, dump: &Dump) {
        let report = import(target, dump, &import_event()).await.unwrap();
        let (expected, _) = source.load_all(NOW).await.unwrap();
        let (imported, seq) = target.load_all(NOW).await.unwrap();
        assert_same_sets(&imported, &expected);
        assert_eq!(
            target.list_server_secrets().await.unwrap(),
            source.list_server_secrets().await.unwrap()
        );
        assert_eq!(report.total_entities, expected.len());
        assert_eq!(report.server_secrets, 2);
        assert_eq!(report.seq, seq);
        assert_eq!(report.entities["accounts"], 2);
        assert_eq!(report.entities["revocations"], 1);
        assert_eq!(report.entities["authorized_keys"], 2);
        assert_eq!(report.entities["oauth_tokens"], 1);
        let audits = target
            .list_audit(&crate::AuditFilter::newest(1000))
            .await
            .unwrap();
        assert_eq!(audits.len(), expected.len(), "one audit event per object");
        assert!(audits.iter().all(|a| a.event == import_event()));
    }

    #[tokio::test]
    async fn sqlite_to_sqlite_round_trip() {
        let (_a, source) = fresh_sqlite().await;
        let current = suite::populate(&source).await;
        let dump = export(&source, NOW).await.unwrap();
        assert_eq!(
            dump.entity_count(),
            current.len(),
            "the expired revocation is left out"
        );
        let json = dump.to_json().unwrap();
        let parsed = Dump::from_json(&json).unwrap();
        assert_eq!(parsed, dump);

        let (_b, target) = fresh_sqlite().await;
        import_and_compare(&source, &target, &parsed).await;
        let (imported, _) = target.load_all(NOW).await.unwrap();
        assert_same_sets(&imported, &current);
        // Exporting the copy gives the same document.
        assert_eq!(export(&target, NOW).await.unwrap(), dump);
    }

    /// SQLite to PostgreSQL and back.
    #[tokio::test]
    async fn sqlite_to_postgres_and_back() {
        testing::with_store("sqlite_to_postgres_and_back", |pg| async move {
            let (_a, source) = fresh_sqlite().await;
            suite::populate(&source).await;
            let dump =
                Dump::from_json(&export(&source, NOW).await.unwrap().to_json().unwrap()).unwrap();
            import_and_compare(&source, &pg, &dump).await;

            let back = export(&pg, NOW).await.unwrap();
            assert_eq!(back, dump, "PostgreSQL exports the same document");
            let (_b, again) = fresh_sqlite().await;
            import_and_compare(&pg, &again, &back).await;
        })
        .await;
    }

    #[tokio::test]
    async fn the_document_has_the_documented_shape() {
        let (_dir, store) = fresh_sqlite().await;
        suite::populate(&store).await;
        let dump = export(&store, NOW).await.unwrap();
        let json: serde_json::Value = serde_json::from_str(&dump.to_json().unwrap()).unwrap();
        assert_eq!(json["format"], "tessera-export");
        assert_eq!(json["version"], 1);
        assert_eq!(json["exported_at"], NOW);
        assert_eq!(
            json["server_secrets"][0],
            serde_json::json!({"name": "jwt-master", "sealed": "AP8B"})
        );
        let entities = &json["entities"];
        assert_eq!(
            entities["api_keys"][0],
            serde_json::json!({
                "id": "ApiKey-1",
                "name": "key ApiKey-1",
                "description": "",
                "owner_iam_id": "iam-ServiceId-s1",
                "account_id": suite::ACCOUNT_A,
                "key_hash": BASE64.encode([1u8; 32]),
                "created_at": NOW,
            })
        );
        assert_eq!(
            entities["access_bindings"][1]["role"],
            "iam.serviceAccounts.tokenCreator"
        );
        assert_eq!(
            entities["access_bindings"][1]["resource"],
            "service-account/ServiceId-s1"
        );
        assert_eq!(
            entities["clients"][1]["secret_hash"],
            serde_json::Value::Null
        );
        assert_eq!(
            entities["users"][1]["password_hash"],
            serde_json::Value::Null
        );
        assert_eq!(
            entities["signing_keys"][1],
            serde_json::json!({
                "kid": "kid-retired",
                "algorithm": "EdDSA",
                "key_use": "yandex-iam",
                "state": "retired",
                "sealed_private_key": "AQIDBAU=",
                "created_at": NOW,
                "retired_at": NOW - 100,
            })
        );
        assert_eq!(
            entities["authorized_keys"][1],
            serde_json::json!({
                "id": "aje00000000000000002",
                "service_account_id": "ServiceId-s2",
                "account_id": suite::ACCOUNT_B,
                "description": "authorized key aje00000000000000002",
                "algorithm": "RSA_2048",
                "public_key": BASE64.encode([0x30, 0x82, 0x01, 0x22, 0x00, 0xff]),
                "created_at": NOW,
            })
        );
        assert_eq!(
            entities["oauth_tokens"][0],
            serde_json::json!({
                "id": "OAuthToken-1",
                "user_id": "IBMid-U1",
                "account_id": suite::ACCOUNT_A,
                "description": "",
                "token_hash": BASE64.encode([11u8; 32]),
                "created_at": NOW,
            })
        );
        let sections: Vec<&String> = entities.as_object().unwrap().keys().collect();
        assert_eq!(sections.len(), 16, "{sections:?}");
    }

    #[tokio::test]
    async fn import_into_a_non_empty_store_fails_and_changes_nothing() {
        let (_a, source) = fresh_sqlite().await;
        suite::populate(&source).await;
        let dump = export(&source, NOW).await.unwrap();

        // An account, a signing key, or anything else makes the target non-empty.
        for existing in [
            suite::account(suite::ACCOUNT_A, None),
            suite::signing_key("kid-other", KeyState::Next, None),
            suite::client("default", None, None),
        ] {
            let (_b, target) = fresh_sqlite().await;
            target
                .create(&existing, &suite::audit("test.create"))
                .await
                .unwrap();
            let before = state(&target).await;
            let result = import(&target, &dump, &import_event()).await;
            match result {
                Err(StoreError::Conflict(message)) => {
                    assert_eq!(message, "the target store is not empty");
                }
                other => panic!("import over {existing:?}: {other:?}"),
            }
            assert_unchanged(&target, &before).await;
        }

        // A fresh target that already generated its own secrets.
        let (_c, target) = fresh_sqlite().await;
        target.server_secret("pepper", b"its own").await.unwrap();
        let before = state(&target).await;
        let result = import(&target, &dump, &import_event()).await;
        match result {
            Err(StoreError::Conflict(message)) => assert!(
                message.starts_with("target already has different server secrets"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        assert_unchanged(&target, &before).await;

        // Equal secrets are fine (a target that was given the source's secrets already).
        let (_d, target) = fresh_sqlite().await;
        target.server_secret("pepper", &[7; 40]).await.unwrap();
        import(&target, &dump, &import_event()).await.unwrap();
    }

    #[tokio::test]
    async fn other_formats_and_versions_are_refused() {
        let message = |result: Result<Dump>| match result {
            Err(StoreError::Conflict(message)) => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            message(Dump::from_json(
                r#"{"format": "something-else", "version": 1}"#
            )),
            "not a Tessera export: format is \"something-else\", expected \"tessera-export\""
        );
        assert_eq!(
            message(Dump::from_json(
                r#"{"format": "tessera-export", "version": 2, "whatever": []}"#
            )),
            "export version 2 is not supported; this Tessera reads version 1"
        );
        assert!(message(Dump::from_json("[1, 2]")).starts_with("invalid export: not a Tessera"));
        assert!(message(Dump::from_json(
            r#"{"format": "tessera-export", "version": 1}"#
        ))
        .starts_with("invalid export: missing field"));
        let minimal = Dump::from_json(
            r#"{"format": "tessera-export", "version": 1, "exported_at": 5,
                "server_secrets": [], "entities": {"accounts": []}}"#,
        )
        .unwrap();
        assert_eq!(minimal.entity_count(), 0);

        let (_dir, target) = fresh_sqlite().await;
        let newer = Dump {
            version: 2,
            ..minimal.clone()
        };
        let result = import(&target, &newer, &import_event()).await;
        assert!(
            matches!(&result, Err(StoreError::Conflict(m)) if m.starts_with("export version 2")),
            "{result:?}"
        );
        let report = import(&target, &minimal, &import_event()).await.unwrap();
        assert_eq!(report.total_entities, 0);
    }

    /// A dump that cannot be decoded in full is refused before anything is written.
    #[tokio::test]
    async fn an_invalid_dump_changes_nothing() {
        let (_a, source) = fresh_sqlite().await;
        suite::populate(&source).await;
        let good = export(&source, NOW).await.unwrap();

        let mut bad_role = good.clone();
        bad_role.entities.access_bindings[0].role = "overlord".into();
        let mut bad_hash = good.clone();
        bad_hash.entities.api_keys[1].key_hash = BASE64.encode([1u8; 31]);
        let mut bad_base64 = good.clone();
        bad_base64.server_secrets[0].sealed = "not base64!".into();
        let mut twice = good.clone();
        let first = twice.entities.accounts[0].clone();
        twice.entities.accounts.push(first);
        let mut bad_token_hash = good.clone();
        bad_token_hash.entities.oauth_tokens[0].token_hash = BASE64.encode([1u8; 33]);
        let mut bad_algorithm = good.clone();
        bad_algorithm.entities.authorized_keys[0].algorithm = "RSA_1024".into();
        let mut bad_public_key = good.clone();
        bad_public_key.entities.authorized_keys[1].public_key = "%%%".into();
        let mut key_twice = good.clone();
        let key = key_twice.entities.authorized_keys[0].clone();
        key_twice.entities.authorized_keys.push(key);

        for (dump, expected) in [
            (
                bad_role,
                "invalid export: the role of access binding AccessBinding-1 is unknown: \
                 \"overlord\"",
            ),
            (
                bad_hash,
                "invalid export: the hash of api key ApiKey-2 is 31 bytes, not 32",
            ),
            (
                bad_base64,
                "invalid export: server secret jwt-master is not base64",
            ),
            (
                twice,
                "invalid export: account a0000000000000000000000000000001 appears twice",
            ),
            (
                bad_token_hash,
                "invalid export: the hash of oauth token OAuthToken-1 is 33 bytes, not 32",
            ),
            (
                bad_algorithm,
                "invalid export: the algorithm of authorized key aje00000000000000001 is \
                 unknown: \"RSA_1024\"",
            ),
            (
                bad_public_key,
                "invalid export: the public key of authorized key aje00000000000000002 is not \
                 base64",
            ),
            (
                key_twice,
                "invalid export: authorized key aje00000000000000001 appears twice",
            ),
        ] {
            let (_b, target) = fresh_sqlite().await;
            let before = state(&target).await;
            match import(&target, &dump, &import_event()).await {
                Err(StoreError::Conflict(message)) => {
                    assert!(message.starts_with(expected), "{message}");
                }
                other => panic!("{other:?}"),
            }
            assert_unchanged(&target, &before).await;
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let user = UserDto {
            id: "IBMid-1".into(),
            account_id: "a".into(),
            name: "n".into(),
            email: "e@example.com".into(),
            password_hash: Some("$argon2id$secret".into()),
            federated: false,
            created_at: 0,
        };
        let secret = ServerSecretDto {
            name: "pepper".into(),
            sealed: "c2VhbGVk".into(),
        };
        let token = OAuthTokenDto {
            id: "OAuthToken-1".into(),
            user_id: "IBMid-1".into(),
            account_id: "a".into(),
            description: String::new(),
            token_hash: "dG9rZW5oYXNo".into(),
            created_at: 0,
        };
        let printed = format!("{user:?} {secret:?} {token:?}");
        assert!(!printed.contains("dG9rZW5oYXNo"), "{printed}");
        assert!(!printed.contains("argon2id"), "{printed}");
        assert!(!printed.contains("c2VhbGVk"), "{printed}");
    }
}
