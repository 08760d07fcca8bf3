//! The in-memory directory: the snapshot of identities, credentials and rules that the token
//! path reads. It is plain data with indexes; the server holds it behind a lock and applies the
//! store's change feed to it, so the token path never waits on the store.

mod table;

use crate::model::*;
use crate::UnixTime;
use std::collections::HashMap;
use std::sync::Arc;
use table::{HashTable, Index, Interner, Table};
pub use table::{Hashed, Keyed};

/// A stored object of any kind, as the change feed delivers it.
#[derive(Debug, Clone)]
pub enum Entity {
    Enterprise(Enterprise),
    Account(Account),
    User(User),
    ServiceAccount(ServiceAccount),
    ApiKey(ApiKey),
    Client(OAuthClient),
    Binding(AccessBinding),
    Revocation(Revocation),
    Cutoff(SubjectCutoff),
    SigningKey(SigningKeyRecord),
    AuthorizedKey(AuthorizedKey),
    OAuthToken(OAuthToken),
    Totp(TotpEnrollment),
    Profile(TrustedProfile),
    Issuer(TrustedIssuer),
    Policy(AuthorizationPolicy),
}

/// The kind of a stored object, without its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    Enterprise,
    Account,
    User,
    ServiceAccount,
    ApiKey,
    Client,
    Binding,
    Revocation,
    Cutoff,
    SigningKey,
    AuthorizedKey,
    OAuthToken,
    Totp,
    Profile,
    Issuer,
    Policy,
}

impl EntityKind {
    pub const ALL: [EntityKind; 16] = [
        EntityKind::Enterprise,
        EntityKind::Account,
        EntityKind::User,
        EntityKind::ServiceAccount,
        EntityKind::ApiKey,
        EntityKind::Client,
        EntityKind::Binding,
        EntityKind::Revocation,
        EntityKind::Cutoff,
        EntityKind::SigningKey,
        EntityKind::AuthorizedKey,
        EntityKind::OAuthToken,
        EntityKind::Totp,
        EntityKind::Profile,
        EntityKind::Issuer,
        EntityKind::Policy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Enterprise => "enterprise",
            EntityKind::Account => "account",
            EntityKind::User => "user",
            EntityKind::ServiceAccount => "service_account",
            EntityKind::ApiKey => "api_key",
            EntityKind::Client => "client",
            EntityKind::Binding => "access_binding",
            EntityKind::Revocation => "revocation",
            EntityKind::Cutoff => "subject_cutoff",
            EntityKind::SigningKey => "signing_key",
            EntityKind::AuthorizedKey => "authorized_key",
            EntityKind::OAuthToken => "oauth_token",
            EntityKind::Totp => "totp_enrollment",
            EntityKind::Profile => "trusted_profile",
            EntityKind::Issuer => "trusted_issuer",
            EntityKind::Policy => "authorization_policy",
        }
    }

    pub fn parse(value: &str) -> Option<EntityKind> {
        EntityKind::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

impl Entity {
    pub fn kind(&self) -> EntityKind {
        match self {
            Entity::Enterprise(_) => EntityKind::Enterprise,
            Entity::Account(_) => EntityKind::Account,
            Entity::User(_) => EntityKind::User,
            Entity::ServiceAccount(_) => EntityKind::ServiceAccount,
            Entity::ApiKey(_) => EntityKind::ApiKey,
            Entity::Client(_) => EntityKind::Client,
            Entity::Binding(_) => EntityKind::Binding,
            Entity::Revocation(_) => EntityKind::Revocation,
            Entity::Cutoff(_) => EntityKind::Cutoff,
            Entity::SigningKey(_) => EntityKind::SigningKey,
            Entity::AuthorizedKey(_) => EntityKind::AuthorizedKey,
            Entity::OAuthToken(_) => EntityKind::OAuthToken,
            Entity::Totp(_) => EntityKind::Totp,
            Entity::Profile(_) => EntityKind::Profile,
            Entity::Issuer(_) => EntityKind::Issuer,
            Entity::Policy(_) => EntityKind::Policy,
        }
    }

    /// The key the entity is addressed by in the change feed (each kind's [`Keyed::key`]).
    pub fn key(&self) -> &str {
        match self {
            Entity::Enterprise(e) => e.key(),
            Entity::Account(a) => a.key(),
            Entity::User(u) => u.key(),
            Entity::ServiceAccount(s) => s.key(),
            Entity::ApiKey(k) => k.key(),
            Entity::Client(c) => c.key(),
            Entity::Binding(b) => b.key(),
            Entity::Revocation(r) => r.key(),
            Entity::Cutoff(c) => c.key(),
            Entity::SigningKey(k) => k.key(),
            Entity::AuthorizedKey(k) => k.key(),
            Entity::OAuthToken(t) => t.key(),
            Entity::Totp(t) => t.key(),
            Entity::Profile(p) => p.key(),
            Entity::Issuer(i) => i.key(),
            Entity::Policy(p) => p.key(),
        }
    }
}

/// One step of the change feed: the current state of an object, or its absence.
// Changes live only between the store and the snapshot, one batch at a time; boxing the large
// entities (issuers, profiles) would cost an allocation per change for no memory saved.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Change {
    Upsert(Entity),
    Delete(EntityKind, String),
}

/// A subject found by `iam_id`.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    User(&'a User),
    ServiceAccount(&'a ServiceAccount),
    Profile(&'a TrustedProfile),
    /// A resource identity; it exists while a policy (this one) lets someone obtain it.
    Crn(&'a AuthorizationPolicy),
}

impl Subject<'_> {
    pub fn account_id(&self) -> &str {
        match self {
            Subject::User(u) => &u.account_id,
            Subject::ServiceAccount(s) => &s.account_id,
            Subject::Profile(p) => &p.account_id,
            Subject::Crn(p) => &p.account_id,
        }
    }
}

#[derive(Debug, Default)]
pub struct Directory {
    enterprises: Table<Enterprise>,
    accounts: Table<Account>,
    users: Table<User>,
    /// Lower-cased e-mail -> users, for the password grant.
    users_by_email: Index<User>,
    service_accounts: Table<ServiceAccount>,
    service_accounts_by_account: Index<ServiceAccount>,
    api_keys: Table<ApiKeyEntry>,
    api_keys_by_hash: HashTable<ApiKeyEntry>,
    /// The owners of API keys, one copy each.
    key_owners: Interner,
    /// By store key (`<account>/<id>` or `<id>`).
    clients: Table<OAuthClient>,
    /// Public client id -> clients (one per account that has a client of that id).
    clients_by_id: Index<OAuthClient>,
    bindings: Table<AccessBinding>,
    bindings_by_subject: Index<AccessBinding>,
    revoked: HashMap<String, UnixTime>,
    cutoffs: HashMap<String, UnixTime>,
    signing_keys: HashMap<String, SigningKeyRecord>,
    authorized_keys: Table<LoadedAuthorizedKey>,
    oauth_tokens: Table<OAuthToken>,
    oauth_tokens_by_hash: HashTable<OAuthToken>,
    totp: Table<TotpEnrollment>,
    profiles: Table<TrustedProfile>,
    profiles_by_account: Index<TrustedProfile>,
    /// Trusted identity (`IBMid-…`, `iam-ServiceId-…`, a CRN) -> the profiles that trust it.
    profiles_by_trusted: Index<TrustedProfile>,
    issuers: Table<TrustedIssuer>,
    /// Issuer URL -> the issuers (of any account) with that URL.
    issuers_by_url: Index<TrustedIssuer>,
    policies: Table<AuthorizationPolicy>,
    policies_by_source: Index<AuthorizationPolicy>,
}

/// What the token path needs of an API key: its id (a token's lineage names it), its owner and
/// the keyed hash of its secret. Its name, description and account stay in the store, where
/// the admin API reads them: a million keys fit in about 150 MB this way.
#[derive(Debug)]
pub struct ApiKeyEntry {
    pub id: Box<str>,
    /// `iam_id` of the user or service account that owns the key (shared between its keys).
    pub owner_iam_id: Arc<str>,
    pub key_hash: KeyHash,
}

/// An authorized key with its public key parsed once, so verifying a JWT does no DER work.
#[derive(Debug)]
pub struct LoadedAuthorizedKey {
    pub record: AuthorizedKey,
    /// `None` if the stored key does not parse as an RSA key for PS256; JWTs then fail.
    pub verifier: Option<crate::service_account_jwt::PublicKey>,
}

macro_rules! keyed_by {
    ($($type:ty => |$item:ident| $key:expr;)*) => {
        $(impl Keyed for $type {
            fn key(&self) -> &str {
                let $item = self;
                $key
            }
        })*
    };
}

keyed_by! {
    Enterprise => |e| &e.id;
    Account => |a| &a.id;
    User => |u| &u.id;
    ServiceAccount => |s| &s.id;
    ApiKey => |k| &k.id;
    ApiKeyEntry => |k| &k.id;
    OAuthClient => |c| &c.key;
    AccessBinding => |b| &b.id;
    Revocation => |r| &r.jti;
    SubjectCutoff => |c| &c.iam_id;
    SigningKeyRecord => |k| &k.kid;
    AuthorizedKey => |k| &k.id;
    LoadedAuthorizedKey => |k| k.record.key();
    OAuthToken => |t| &t.id;
    TotpEnrollment => |t| &t.user_id;
    TrustedProfile => |p| &p.id;
    TrustedIssuer => |i| &i.id;
    AuthorizationPolicy => |p| &p.id;
}

impl Hashed for ApiKeyEntry {
    fn secret_hash(&self) -> &KeyHash {
        &self.key_hash
    }
}

impl Hashed for OAuthToken {
    fn secret_hash(&self) -> &KeyHash {
        &self.token_hash
    }
}

impl Directory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one change. Applying the same change twice is harmless.
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Upsert(entity) => self.upsert(entity),
            Change::Delete(kind, key) => self.delete(kind, &key),
        }
    }

    fn upsert(&mut self, entity: Entity) {
        // An upsert replaces the old version, so first drop its index entries.
        self.delete(entity.kind(), entity.key());
        match entity {
            Entity::Enterprise(e) => self.enterprises.insert(Arc::new(e)),
            Entity::Account(a) => self.accounts.insert(Arc::new(a)),
            Entity::User(u) => {
                let user = Arc::new(u);
                self.users_by_email.add(&user.email.to_lowercase(), &user);
                self.users.insert(user);
            }
            Entity::ServiceAccount(s) => {
                let account = Arc::new(s);
                self.service_accounts_by_account
                    .add(&account.account_id, &account);
                self.service_accounts.insert(account);
            }
            Entity::ApiKey(k) => {
                let entry = Arc::new(ApiKeyEntry {
                    id: k.id.into_boxed_str(),
                    owner_iam_id: self.key_owners.intern(&k.owner_iam_id),
                    key_hash: k.key_hash,
                });
                self.api_keys_by_hash.insert(Arc::clone(&entry));
                self.api_keys.insert(entry);
            }
            Entity::Client(c) => {
                let client = Arc::new(c);
                self.clients_by_id.add(&client.id, &client);
                self.clients.insert(client);
            }
            Entity::Binding(b) => {
                let binding = Arc::new(b);
                self.bindings_by_subject
                    .add(&binding.subject_iam_id, &binding);
                self.bindings.insert(binding);
            }
            Entity::Revocation(r) => {
                self.revoked.insert(r.jti, r.expires_at);
            }
            Entity::Cutoff(c) => {
                self.cutoffs.insert(c.iam_id, c.not_before);
            }
            Entity::SigningKey(k) => {
                self.signing_keys.insert(k.kid.clone(), k);
            }
            Entity::AuthorizedKey(k) => {
                let verifier = crate::service_account_jwt::PublicKey::from_spki(&k.public_key_der);
                self.authorized_keys.insert(Arc::new(LoadedAuthorizedKey {
                    record: k,
                    verifier,
                }));
            }
            Entity::OAuthToken(t) => {
                let token = Arc::new(t);
                self.oauth_tokens_by_hash.insert(Arc::clone(&token));
                self.oauth_tokens.insert(token);
            }
            Entity::Totp(t) => self.totp.insert(Arc::new(t)),
            Entity::Profile(p) => {
                let profile = Arc::new(p);
                self.profiles_by_account.add(&profile.account_id, &profile);
                for identity in &profile.identities {
                    self.profiles_by_trusted.add(&identity.identifier, &profile);
                }
                self.profiles.insert(profile);
            }
            Entity::Issuer(i) => {
                let issuer = Arc::new(i);
                self.issuers_by_url.add(&issuer.issuer_url, &issuer);
                self.issuers.insert(issuer);
            }
            Entity::Policy(p) => {
                let policy = Arc::new(p);
                self.policies_by_source.add(&policy.source_iam_id, &policy);
                self.policies.insert(policy);
            }
        }
    }

    fn delete(&mut self, kind: EntityKind, key: &str) {
        match kind {
            EntityKind::Enterprise => {
                self.enterprises.remove(key);
            }
            EntityKind::Account => {
                self.accounts.remove(key);
            }
            EntityKind::User => {
                if let Some(old) = self.users.remove(key) {
                    self.users_by_email.remove(&old.email.to_lowercase(), key);
                }
            }
            EntityKind::ServiceAccount => {
                if let Some(old) = self.service_accounts.remove(key) {
                    self.service_accounts_by_account
                        .remove(&old.account_id, key);
                }
            }
            EntityKind::ApiKey => {
                if let Some(old) = self.api_keys.remove(key) {
                    self.api_keys_by_hash.remove(&old);
                    let owner = Arc::clone(&old.owner_iam_id);
                    drop(old);
                    self.key_owners.release(owner);
                }
            }
            EntityKind::Client => {
                if let Some(old) = self.clients.remove(key) {
                    self.clients_by_id.remove(&old.id, key);
                }
            }
            EntityKind::Binding => {
                if let Some(old) = self.bindings.remove(key) {
                    self.bindings_by_subject.remove(&old.subject_iam_id, key);
                }
            }
            EntityKind::Revocation => {
                self.revoked.remove(key);
            }
            EntityKind::Cutoff => {
                self.cutoffs.remove(key);
            }
            EntityKind::SigningKey => {
                self.signing_keys.remove(key);
            }
            EntityKind::AuthorizedKey => {
                self.authorized_keys.remove(key);
            }
            EntityKind::OAuthToken => {
                if let Some(old) = self.oauth_tokens.remove(key) {
                    self.oauth_tokens_by_hash.remove(&old);
                }
            }
            EntityKind::Totp => {
                self.totp.remove(key);
            }
            EntityKind::Profile => {
                if let Some(old) = self.profiles.remove(key) {
                    self.profiles_by_account.remove(&old.account_id, key);
                    for identity in &old.identities {
                        self.profiles_by_trusted.remove(&identity.identifier, key);
                    }
                }
            }
            EntityKind::Issuer => {
                if let Some(old) = self.issuers.remove(key) {
                    self.issuers_by_url.remove(&old.issuer_url, key);
                }
            }
            EntityKind::Policy => {
                if let Some(old) = self.policies.remove(key) {
                    self.policies_by_source.remove(&old.source_iam_id, key);
                }
            }
        }
    }

    pub fn api_key_by_hash(&self, hash: &KeyHash) -> Option<&Arc<ApiKeyEntry>> {
        self.api_keys_by_hash.get(hash)
    }

    pub fn authorized_key(&self, id: &str) -> Option<&Arc<LoadedAuthorizedKey>> {
        self.authorized_keys.get(id)
    }

    pub fn oauth_token_by_hash(&self, hash: &KeyHash) -> Option<&Arc<OAuthToken>> {
        self.oauth_tokens_by_hash.get(hash)
    }

    pub fn subject(&self, iam_id: &str) -> Option<Subject<'_>> {
        match SubjectKind::of_iam_id(iam_id)? {
            SubjectKind::User => self.users.get(iam_id).map(|u| Subject::User(u)),
            SubjectKind::ServiceId => {
                let id = iam_id.strip_prefix("iam-")?;
                self.service_accounts
                    .get(id)
                    .map(|s| Subject::ServiceAccount(s))
            }
            SubjectKind::Profile => {
                let id = iam_id.strip_prefix("iam-")?;
                self.profiles.get(id).map(|p| Subject::Profile(p))
            }
            SubjectKind::Crn => {
                let crn = iam_id.strip_prefix(crate::ids::CRN_IAM_ID_PREFIX)?;
                // A resource identity exists while a policy of its own account (the CRN's
                // `a/<account>`) covers it; `covers` enforces the account. Policies are few and
                // CRN identities are looked up rarely; a scan is fine.
                let mut covering: Vec<&Arc<AuthorizationPolicy>> =
                    self.policies.values().filter(|p| p.covers(crn)).collect();
                covering.sort_by(|a, b| a.id.cmp(&b.id));
                covering.first().map(|p| Subject::Crn(p))
            }
        }
    }

    /// The display name of a user, service account or profile; `None` for resource identities
    /// (CRNs), which have none, and for unknown ids.
    pub fn subject_name(&self, iam_id: &str) -> Option<&str> {
        match self.subject(iam_id)? {
            Subject::User(u) => Some(&u.name),
            Subject::ServiceAccount(s) => Some(&s.name),
            Subject::Profile(p) => Some(&p.name),
            Subject::Crn(_) => None,
        }
    }

    /// The confirmed or pending TOTP factor of a user.
    pub fn totp(&self, user_id: &str) -> Option<&Arc<TotpEnrollment>> {
        self.totp.get(user_id)
    }

    pub fn profile(&self, id: &str) -> Option<&Arc<TrustedProfile>> {
        self.profiles.get(id)
    }

    /// The profiles of an account, in no particular order.
    pub fn profiles_in<'a>(
        &'a self,
        account_id: &str,
    ) -> impl Iterator<Item = &'a Arc<TrustedProfile>> + 'a {
        self.profiles_by_account.get(account_id)
    }

    pub fn profile_by_name(&self, account_id: &str, name: &str) -> Option<&Arc<TrustedProfile>> {
        self.profiles_in(account_id).find(|p| p.name == name)
    }

    /// A profile by its CRN (`profile_crn`).
    pub fn profile_by_crn(&self, crn: &str) -> Option<&Arc<TrustedProfile>> {
        let id = crn.rsplit_once(":profile:")?.1;
        self.profiles.get(id).filter(|p| p.crn() == crn)
    }

    pub fn issuer(&self, id: &str) -> Option<&Arc<TrustedIssuer>> {
        self.issuers.get(id)
    }

    /// The trusted issuers (of any account) whose tokens carry `iss` = `issuer_url`, in id
    /// order.
    pub fn issuers_by_url<'a>(
        &'a self,
        issuer_url: &str,
    ) -> impl Iterator<Item = &'a Arc<TrustedIssuer>> + 'a {
        let mut issuers: Vec<&'a Arc<TrustedIssuer>> =
            self.issuers_by_url.get(issuer_url).collect();
        issuers.sort_by(|a, b| a.id.cmp(&b.id));
        issuers.into_iter()
    }

    /// The profiles that list `identifier` (a user id, a service ID's `iam_id` or a CRN) as a
    /// trusted identity.
    pub fn profiles_trusting<'a>(
        &'a self,
        identifier: &str,
    ) -> impl Iterator<Item = &'a Arc<TrustedProfile>> + 'a {
        self.profiles_by_trusted.get(identifier)
    }

    /// The service accounts of an account.
    pub fn service_accounts_in<'a>(
        &'a self,
        account_id: &str,
    ) -> impl Iterator<Item = &'a Arc<ServiceAccount>> + 'a {
        self.service_accounts_by_account.get(account_id)
    }

    /// The resource identities (`crn-…`) that matter for privileges: those holding a binding,
    /// those a profile trusts, and those that are the source of a policy (a chain of policies).
    /// Sorted, without duplicates.
    pub fn crn_identities(&self) -> Vec<String> {
        let bound = self
            .bindings_by_subject
            .groups()
            .chain(self.policies_by_source.groups())
            .filter(|s| s.starts_with(crate::ids::CRN_IAM_ID_PREFIX))
            .map(str::to_owned);
        let trusted = self
            .profiles_by_trusted
            .groups()
            .filter(|i| i.starts_with("crn:"))
            .map(crate::ids::crn_iam_id);
        let mut all: Vec<String> = bound.chain(trusted).collect();
        all.sort();
        all.dedup();
        all
    }

    /// Every service account.
    pub fn service_accounts(&self) -> impl Iterator<Item = &Arc<ServiceAccount>> {
        self.service_accounts.values()
    }

    /// Every binding.
    pub fn bindings(&self) -> impl Iterator<Item = &Arc<AccessBinding>> {
        self.bindings.values()
    }

    /// Every trusted profile.
    pub fn profiles(&self) -> impl Iterator<Item = &Arc<TrustedProfile>> {
        self.profiles.values()
    }

    /// Every authorization policy.
    pub fn policies(&self) -> impl Iterator<Item = &Arc<AuthorizationPolicy>> {
        self.policies.values()
    }

    pub fn policy(&self, id: &str) -> Option<&Arc<AuthorizationPolicy>> {
        self.policies.get(id)
    }

    /// The authorization policies whose source is `iam_id`.
    pub fn policies_from<'a>(
        &'a self,
        iam_id: &str,
    ) -> impl Iterator<Item = &'a Arc<AuthorizationPolicy>> + 'a {
        self.policies_by_source.get(iam_id)
    }

    pub fn account(&self, id: &str) -> Option<&Arc<Account>> {
        self.accounts.get(id)
    }

    pub fn enterprise(&self, id: &str) -> Option<&Arc<Enterprise>> {
        self.enterprises.get(id)
    }

    pub fn user(&self, id: &str) -> Option<&Arc<User>> {
        self.users.get(id)
    }

    /// The users with this e-mail address (compared case-insensitively), in any account, oldest
    /// first (ties by id): the first one owns e-mail-only sign-in, so a user created later in
    /// another account with the same address cannot take it over or break it.
    pub fn users_with_email(&self, email: &str) -> Vec<&Arc<User>> {
        let mut users: Vec<&Arc<User>> = self.users_by_email.get(&email.to_lowercase()).collect();
        users.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        users
    }

    pub fn service_account(&self, id: &str) -> Option<&Arc<ServiceAccount>> {
        self.service_accounts.get(id)
    }

    /// A client by its store key (`<account>/<id>`, or `<id>` for a global client).
    pub fn client(&self, key: &str) -> Option<&Arc<OAuthClient>> {
        self.clients.get(key)
    }

    /// The clients (of any account, and global) whose public id is `id`.
    pub fn clients_with_id<'a>(
        &'a self,
        id: &str,
    ) -> impl Iterator<Item = &'a Arc<OAuthClient>> + 'a {
        self.clients_by_id.get(id)
    }

    /// The client `id` as seen from `account_id`: the account's own client of that id, else a
    /// global one. This is how receivers of a delegated refresh token are named.
    pub fn client_visible_from(&self, account_id: &str, id: &str) -> Option<&Arc<OAuthClient>> {
        self.clients
            .get(&OAuthClient::key_for(Some(account_id), id))
            .or_else(|| self.clients.get(id).filter(|c| c.account_id.is_none()))
    }

    pub fn bindings_of<'a>(&'a self, iam_id: &str) -> impl Iterator<Item = &'a AccessBinding> + 'a {
        self.bindings_by_subject.get(iam_id).map(|b| b.as_ref())
    }

    /// Whether the token `jti` of `iam_id`, issued at `iat`, has been revoked.
    pub fn is_revoked(&self, jti: &str, iam_id: &str, iat: UnixTime) -> bool {
        self.revoked.contains_key(jti) || self.is_cut_off(iam_id, iat)
    }

    /// Whether everything of `iam_id` issued at `iat` was cut off ("revoke everything").
    pub fn is_cut_off(&self, iam_id: &str, iat: UnixTime) -> bool {
        self.cutoffs.get(iam_id).is_some_and(|nb| iat < *nb)
    }

    /// The first link of `lineage` that is gone, for a token of `subject_iam_id` issued at
    /// `iat`; `None` when every link still stands. Hash look-ups only: this runs on the token
    /// path.
    pub fn dead_link<'a>(
        &self,
        lineage: &'a crate::lineage::Lineage,
        iat: UnixTime,
    ) -> Option<&'a crate::lineage::Link> {
        use crate::lineage::Link;
        lineage.links().iter().find(|link| match link {
            Link::ApiKey(id) => !self.api_keys.contains_key(id),
            Link::AuthorizedKey(id) => !self.authorized_keys.contains_key(id),
            Link::OAuthToken(id) => !self.oauth_tokens.contains_key(id),
            Link::RefreshFamily(id) | Link::Token(id) => self.revoked.contains_key(id),
            Link::Actor(iam_id) => self.subject(iam_id).is_none() || self.is_cut_off(iam_id, iat),
            Link::Assumer(_) => match link.assumer_parts() {
                Some((profile, assumer)) => {
                    self.subject(assumer).is_none()
                        || self.is_cut_off(assumer, iat)
                        || !self.profile_trusts(profile, assumer)
                }
                None => true,
            },
            Link::Policy(id) => !self.policies.contains_key(id),
            Link::Issuer(id) => !self.issuers.contains_key(id),
            // Client ids are chosen names: a client deleted and created again under the same
            // id is another client, and must not bring its predecessor's tokens back. Tokens of
            // the creation second itself stand (timestamps are whole seconds).
            Link::Client(key) => self.clients.get(key).is_none_or(|c| c.created_at > iat),
        })
    }

    /// Whether profile `profile_iam_id` still lists `identity` (an `iam_id`) as trusted.
    fn profile_trusts(&self, profile_iam_id: &str, identity: &str) -> bool {
        let Some(profile) = profile_iam_id
            .strip_prefix("iam-")
            .and_then(|id| self.profiles.get(id))
        else {
            return false;
        };
        let identifier = identity
            .strip_prefix(crate::ids::CRN_IAM_ID_PREFIX)
            .unwrap_or(identity);
        profile
            .identities
            .iter()
            .any(|i| i.identifier == identifier)
    }

    pub fn signing_keys(&self) -> impl Iterator<Item = &SigningKeyRecord> {
        self.signing_keys.values()
    }

    pub fn counts(&self) -> DirectoryCounts {
        DirectoryCounts {
            accounts: self.accounts.len(),
            users: self.users.len(),
            service_accounts: self.service_accounts.len(),
            api_keys: self.api_keys.len(),
            revocations: self.revoked.len(),
        }
    }
}

/// Sizes of the snapshot, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectoryCounts {
    pub accounts: usize,
    pub users: usize,
    pub service_accounts: usize,
    pub api_keys: usize,
    pub revocations: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, hash: u8, owner: &str) -> ApiKey {
        ApiKey {
            id: id.into(),
            name: "k".into(),
            description: String::new(),
            owner_iam_id: owner.into(),
            account_id: "a".into(),
            key_hash: KeyHash([hash; 32]),
            created_at: 0,
        }
    }

    #[test]
    fn api_key_index_follows_changes() {
        let mut dir = Directory::new();
        dir.apply(Change::Upsert(Entity::ApiKey(key(
            "k1",
            1,
            "iam-ServiceId-x",
        ))));
        assert!(dir.api_key_by_hash(&KeyHash([1; 32])).is_some());
        // Re-upsert with another hash drops the old index entry.
        dir.apply(Change::Upsert(Entity::ApiKey(key(
            "k1",
            2,
            "iam-ServiceId-x",
        ))));
        assert!(dir.api_key_by_hash(&KeyHash([1; 32])).is_none());
        assert!(dir.api_key_by_hash(&KeyHash([2; 32])).is_some());
        dir.apply(Change::Delete(EntityKind::ApiKey, "k1".into()));
        assert!(dir.api_key_by_hash(&KeyHash([2; 32])).is_none());
        assert_eq!(dir.counts().api_keys, 0);
    }

    #[test]
    fn bindings_index_follows_changes() {
        let mut dir = Directory::new();
        let binding = AccessBinding {
            id: "b1".into(),
            subject_iam_id: "IBMid-1".into(),
            role: Role::Admin,
            resource: Resource::Global,
            created_at: 0,
        };
        dir.apply(Change::Upsert(Entity::Binding(binding.clone())));
        dir.apply(Change::Upsert(Entity::Binding(binding)));
        assert_eq!(dir.bindings_of("IBMid-1").count(), 1);
        dir.apply(Change::Delete(EntityKind::Binding, "b1".into()));
        assert_eq!(dir.bindings_of("IBMid-1").count(), 0);
    }

    #[test]
    fn an_upsert_that_changes_a_grouping_field_moves_the_object_to_its_new_group() {
        let mut dir = Directory::new();
        let user = |email: &str| User {
            id: "IBMid-1".into(),
            account_id: "a".into(),
            name: "u".into(),
            email: email.into(),
            password_hash: None,
            federated: false,
            created_at: 0,
        };
        dir.apply(Change::Upsert(Entity::User(user("Old@example.com"))));
        dir.apply(Change::Upsert(Entity::User(user("new@example.com"))));
        assert!(dir.users_with_email("old@example.com").is_empty());
        assert_eq!(dir.users_with_email("NEW@example.com").len(), 1);

        let binding = |subject: &str| AccessBinding {
            id: "b1".into(),
            subject_iam_id: subject.into(),
            role: Role::Viewer,
            resource: Resource::Global,
            created_at: 0,
        };
        dir.apply(Change::Upsert(Entity::Binding(binding("IBMid-1"))));
        dir.apply(Change::Upsert(Entity::Binding(binding("IBMid-2"))));
        assert_eq!(dir.bindings_of("IBMid-1").count(), 0);
        assert_eq!(dir.bindings_of("IBMid-2").count(), 1);

        // A key moved to another owner authenticates as the new owner only.
        dir.apply(Change::Upsert(Entity::ApiKey(key("k1", 1, "IBMid-1"))));
        dir.apply(Change::Upsert(Entity::ApiKey(key("k1", 1, "IBMid-2"))));
        let found = dir
            .api_key_by_hash(&KeyHash([1; 32]))
            .map(|k| &*k.owner_iam_id);
        assert_eq!(found, Some("IBMid-2"));
    }

    #[test]
    fn owners_are_shared_between_keys_and_forgotten_with_the_last_one() {
        let mut dir = Directory::new();
        dir.apply(Change::Upsert(Entity::ApiKey(key("k1", 1, "IBMid-1"))));
        dir.apply(Change::Upsert(Entity::ApiKey(key("k2", 2, "IBMid-1"))));
        dir.apply(Change::Upsert(Entity::ApiKey(key("k3", 3, "IBMid-3"))));
        let owner = |hash: u8| {
            dir.api_key_by_hash(&KeyHash([hash; 32]))
                .map(|k| k.owner_iam_id.clone())
        };
        let (one, two) = (owner(1), owner(2));
        assert!(one.zip(two).is_some_and(|(a, b)| Arc::ptr_eq(&a, &b)));
        assert_eq!(dir.key_owners.len(), 2);
        dir.apply(Change::Delete(EntityKind::ApiKey, "k1".into()));
        assert_eq!(dir.key_owners.len(), 2, "k2 still has IBMid-1");
        dir.apply(Change::Delete(EntityKind::ApiKey, "k2".into()));
        dir.apply(Change::Delete(EntityKind::ApiKey, "k3".into()));
        assert_eq!(dir.key_owners.len(), 0);
        // Deleting what is gone changes nothing.
        dir.apply(Change::Delete(EntityKind::ApiKey, "k3".into()));
        assert_eq!(dir.counts().api_keys, 0);
    }

    #[test]
    fn revocation_and_cutoff() {
        let mut dir = Directory::new();
        dir.apply(Change::Upsert(Entity::Revocation(Revocation {
            jti: "j".into(),
            expires_at: 10,
        })));
        dir.apply(Change::Upsert(Entity::Cutoff(SubjectCutoff {
            iam_id: "IBMid-1".into(),
            not_before: 100,
        })));
        assert!(dir.is_revoked("j", "IBMid-2", 200));
        assert!(dir.is_revoked("other", "IBMid-1", 99));
        assert!(!dir.is_revoked("other", "IBMid-1", 100));
    }

    #[test]
    fn subjects_resolve_by_iam_id() {
        let mut dir = Directory::new();
        dir.apply(Change::Upsert(Entity::ServiceAccount(ServiceAccount {
            id: "ServiceId-1".into(),
            account_id: "a".into(),
            name: "svc".into(),
            description: String::new(),
            created_at: 0,
        })));
        assert!(matches!(
            dir.subject("iam-ServiceId-1"),
            Some(Subject::ServiceAccount(_))
        ));
        assert!(dir.subject("ServiceId-1").is_none());
        assert!(dir.subject("IBMid-nope").is_none());
    }
}
