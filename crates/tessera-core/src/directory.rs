//! The in-memory directory: the snapshot of identities, credentials and rules that the token
//! path reads. It is plain data with indexes; the server holds it behind a lock and applies the
//! store's change feed to it, so the token path never waits on the store.

use crate::model::*;
use crate::UnixTime;
use std::collections::HashMap;
use std::sync::Arc;

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

    /// The key the entity is addressed by in the change feed.
    pub fn key(&self) -> &str {
        match self {
            Entity::Enterprise(e) => &e.id,
            Entity::Account(a) => &a.id,
            Entity::User(u) => &u.id,
            Entity::ServiceAccount(s) => &s.id,
            Entity::ApiKey(k) => &k.id,
            Entity::Client(c) => &c.id,
            Entity::Binding(b) => &b.id,
            Entity::Revocation(r) => &r.jti,
            Entity::Cutoff(c) => &c.iam_id,
            Entity::SigningKey(k) => &k.kid,
            Entity::AuthorizedKey(k) => &k.id,
            Entity::OAuthToken(t) => &t.id,
            Entity::Totp(t) => &t.user_id,
            Entity::Profile(p) => &p.id,
            Entity::Issuer(i) => &i.id,
            Entity::Policy(p) => &p.id,
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
    enterprises: HashMap<String, Arc<Enterprise>>,
    accounts: HashMap<String, Arc<Account>>,
    users: HashMap<String, Arc<User>>,
    service_accounts: HashMap<String, Arc<ServiceAccount>>,
    api_keys: HashMap<String, Arc<ApiKey>>,
    api_key_ids_by_hash: HashMap<KeyHash, String>,
    clients: HashMap<String, Arc<OAuthClient>>,
    bindings: HashMap<String, Arc<AccessBinding>>,
    binding_ids_by_subject: HashMap<String, Vec<String>>,
    revoked: HashMap<String, UnixTime>,
    cutoffs: HashMap<String, UnixTime>,
    signing_keys: HashMap<String, SigningKeyRecord>,
    authorized_keys: HashMap<String, Arc<LoadedAuthorizedKey>>,
    oauth_tokens: HashMap<String, Arc<OAuthToken>>,
    oauth_token_ids_by_hash: HashMap<KeyHash, String>,
    totp: HashMap<String, Arc<TotpEnrollment>>,
    profiles: HashMap<String, Arc<TrustedProfile>>,
    profile_ids_by_account: HashMap<String, Vec<String>>,
    issuers: HashMap<String, Arc<TrustedIssuer>>,
    issuer_ids_by_url: HashMap<String, String>,
    policies: HashMap<String, Arc<AuthorizationPolicy>>,
    policy_ids_by_source: HashMap<String, Vec<String>>,
}

fn index_add(index: &mut HashMap<String, Vec<String>>, key: &str, id: &str) {
    index.entry(key.to_owned()).or_default().push(id.to_owned());
}

fn index_remove(index: &mut HashMap<String, Vec<String>>, key: &str, id: &str) {
    if let Some(ids) = index.get_mut(key) {
        ids.retain(|i| i != id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}

/// An authorized key with its public key parsed once, so verifying a JWT does no DER work.
#[derive(Debug)]
pub struct LoadedAuthorizedKey {
    pub record: AuthorizedKey,
    /// `None` if the stored key does not parse as an RSA key for PS256; JWTs then fail.
    pub verifier: Option<crate::service_account_jwt::PublicKey>,
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
            Entity::Enterprise(e) => {
                self.enterprises.insert(e.id.clone(), Arc::new(e));
            }
            Entity::Account(a) => {
                self.accounts.insert(a.id.clone(), Arc::new(a));
            }
            Entity::User(u) => {
                self.users.insert(u.id.clone(), Arc::new(u));
            }
            Entity::ServiceAccount(s) => {
                self.service_accounts.insert(s.id.clone(), Arc::new(s));
            }
            Entity::ApiKey(k) => {
                self.api_key_ids_by_hash.insert(k.key_hash, k.id.clone());
                self.api_keys.insert(k.id.clone(), Arc::new(k));
            }
            Entity::Client(c) => {
                self.clients.insert(c.id.clone(), Arc::new(c));
            }
            Entity::Binding(b) => {
                self.binding_ids_by_subject
                    .entry(b.subject_iam_id.clone())
                    .or_default()
                    .push(b.id.clone());
                self.bindings.insert(b.id.clone(), Arc::new(b));
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
                self.authorized_keys.insert(
                    k.id.clone(),
                    Arc::new(LoadedAuthorizedKey {
                        record: k,
                        verifier,
                    }),
                );
            }
            Entity::OAuthToken(t) => {
                self.oauth_token_ids_by_hash
                    .insert(t.token_hash, t.id.clone());
                self.oauth_tokens.insert(t.id.clone(), Arc::new(t));
            }
            Entity::Totp(t) => {
                self.totp.insert(t.user_id.clone(), Arc::new(t));
            }
            Entity::Profile(p) => {
                index_add(&mut self.profile_ids_by_account, &p.account_id, &p.id);
                self.profiles.insert(p.id.clone(), Arc::new(p));
            }
            Entity::Issuer(i) => {
                self.issuer_ids_by_url
                    .insert(i.issuer_url.clone(), i.id.clone());
                self.issuers.insert(i.id.clone(), Arc::new(i));
            }
            Entity::Policy(p) => {
                index_add(&mut self.policy_ids_by_source, &p.source_iam_id, &p.id);
                self.policies.insert(p.id.clone(), Arc::new(p));
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
                self.users.remove(key);
            }
            EntityKind::ServiceAccount => {
                self.service_accounts.remove(key);
            }
            EntityKind::ApiKey => {
                if let Some(old) = self.api_keys.remove(key) {
                    self.api_key_ids_by_hash.remove(&old.key_hash);
                }
            }
            EntityKind::Client => {
                self.clients.remove(key);
            }
            EntityKind::Binding => {
                if let Some(old) = self.bindings.remove(key) {
                    if let Some(ids) = self.binding_ids_by_subject.get_mut(&old.subject_iam_id) {
                        ids.retain(|id| id != key);
                        if ids.is_empty() {
                            self.binding_ids_by_subject.remove(&old.subject_iam_id);
                        }
                    }
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
                    self.oauth_token_ids_by_hash.remove(&old.token_hash);
                }
            }
            EntityKind::Totp => {
                self.totp.remove(key);
            }
            EntityKind::Profile => {
                if let Some(old) = self.profiles.remove(key) {
                    index_remove(&mut self.profile_ids_by_account, &old.account_id, key);
                }
            }
            EntityKind::Issuer => {
                if let Some(old) = self.issuers.remove(key) {
                    self.issuer_ids_by_url.remove(&old.issuer_url);
                }
            }
            EntityKind::Policy => {
                if let Some(old) = self.policies.remove(key) {
                    index_remove(&mut self.policy_ids_by_source, &old.source_iam_id, key);
                }
            }
        }
    }

    pub fn api_key_by_hash(&self, hash: &KeyHash) -> Option<&Arc<ApiKey>> {
        self.api_key_ids_by_hash
            .get(hash)
            .and_then(|id| self.api_keys.get(id))
    }

    pub fn authorized_key(&self, id: &str) -> Option<&Arc<LoadedAuthorizedKey>> {
        self.authorized_keys.get(id)
    }

    pub fn oauth_token_by_hash(&self, hash: &KeyHash) -> Option<&Arc<OAuthToken>> {
        self.oauth_token_ids_by_hash
            .get(hash)
            .and_then(|id| self.oauth_tokens.get(id))
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
                // Policies are few and CRN tokens are verified rarely; a scan is fine.
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
        self.profile_ids_by_account
            .get(account_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.profiles.get(id))
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

    /// The trusted issuer whose tokens carry `iss` = `issuer_url`.
    pub fn issuer_by_url(&self, issuer_url: &str) -> Option<&Arc<TrustedIssuer>> {
        self.issuer_ids_by_url
            .get(issuer_url)
            .and_then(|id| self.issuers.get(id))
    }

    /// The authorization policies whose source is `iam_id`.
    pub fn policies_from<'a>(
        &'a self,
        iam_id: &str,
    ) -> impl Iterator<Item = &'a Arc<AuthorizationPolicy>> + 'a {
        self.policy_ids_by_source
            .get(iam_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.policies.get(id))
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

    /// The users with this e-mail address (compared case-insensitively), in any account. A scan:
    /// only the password grant uses it, and that runs Argon2id afterwards anyway.
    pub fn users_with_email<'a>(
        &'a self,
        email: &'a str,
    ) -> impl Iterator<Item = &'a Arc<User>> + 'a {
        self.users
            .values()
            .filter(move |u| u.email.eq_ignore_ascii_case(email))
    }

    pub fn service_account(&self, id: &str) -> Option<&Arc<ServiceAccount>> {
        self.service_accounts.get(id)
    }

    pub fn client(&self, id: &str) -> Option<&Arc<OAuthClient>> {
        self.clients.get(id)
    }

    pub fn bindings_of<'a>(&'a self, iam_id: &str) -> impl Iterator<Item = &'a AccessBinding> + 'a {
        self.binding_ids_by_subject
            .get(iam_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.bindings.get(id).map(|b| b.as_ref()))
    }

    /// Whether the token `jti` of `iam_id`, issued at `iat`, has been revoked.
    pub fn is_revoked(&self, jti: &str, iam_id: &str, iat: UnixTime) -> bool {
        self.revoked.contains_key(jti) || self.cutoffs.get(iam_id).is_some_and(|nb| iat < *nb)
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
