//! Authorization: every "may this caller do this to that", decided in one place.
//!
//! [`authorize`] takes the snapshot, the caller's [`Principal`] and an [`Action`] and answers
//! `Ok(())` or an error naming the rule that refused (`PermissionDenied`, or `NotFound` where
//! saying "denied" would confirm that something exists). Surfaces parse their input into an
//! `Action`, call it, and render the answer; they never compare roles, accounts or ids
//! themselves (`SECURITY.md` rule 1, kept by a tidy test in `tessera-server`).
//!
//! # Roles
//! A binding grants a role on `*` (everything), an account (and the service accounts in it), or
//! one service account. `admin` implies every other role on its resource ([`has_role`]).
//!
//! # Containment
//! No caller may obtain, create or remove a credential or factor of a principal, delete it, cut
//! off its tokens, rewrite the trust of a profile, confer a delegation, or open a new way to
//! become someone, unless every privilege the target holds is held by the caller too
//! ([`check_contains`]). A principal's privileges are the closure of its bindings over the
//! identities it can become without creating anything ([`effective_privileges`]): the profiles
//! that trust it, the service accounts an *explicit* `iam.serviceAccounts.tokenCreator` binding
//! lets it mint tokens for, and the resource identities its authorization policies cover. The
//! implicit token-creator right of `admin` is deliberately not in the closure: it is exactly
//! what containment gates (an account administrator may mint tokens of, or create keys for, the
//! account's service accounts only while they hold nothing beyond the administrator's own
//! privileges).
//!
//! Credentials of a user are the user's own business: only the user, signed in as itself,
//! creates them or changes its second factor; administrators manage service accounts.
//!
//! # Tenancy
//! Objects belong to their account: creating, changing or deleting one needs `admin` there.
//! Resource identities (CRNs) belong to the account of their `a/<account>` scope (see
//! [`crate::model::AuthorizationPolicy::covers`] and [`crate::trusted_profile::check_trust`]).

use crate::authn::{FactorSecret, TotpChecked};
use crate::directory::{Directory, Entity, EntityKind};
use crate::error::{Error, ErrorKind, Result};
use crate::ids;
use crate::lineage::{Lineage, Link};
use crate::model::{
    AccessBinding, JwksSource, Resource, Role, ServiceAccount, SubjectKind, TotpEnrollment, User,
};
use crate::principal::Principal;
use std::collections::HashSet;

/// Most identities a privilege closure visits before the decision is refused as too complex
/// (fail closed).
pub const MAX_CLOSURE: usize = 50_000;

/// How old (seconds) a sign-in with a second factor may be to count as the step-up proof for
/// changing that factor.
pub const STEP_UP_SECONDS: i64 = 300;

/// Whether `iam_id` holds `role` on `resource`, directly or through a broader binding.
///
/// Rules: a binding on `*` covers everything; a binding on an account covers the account and
/// the service accounts in it; `admin` implies every other role (as Yandex's primitive `admin`
/// includes `iam.serviceAccounts.tokenCreator`).
pub fn has_role(dir: &Directory, iam_id: &str, role: Role, resource: &Resource) -> bool {
    dir.bindings_of(iam_id).any(|binding| {
        (binding.role == role || binding.role == Role::Admin)
            && resource_covers(dir, &binding.resource, resource)
    })
}

/// Whether `iam_id` is a global administrator.
pub fn is_global_admin(dir: &Directory, iam_id: &str) -> bool {
    has_role(dir, iam_id, Role::Admin, &Resource::Global)
}

/// Whether a binding on `held` applies to `wanted`.
fn resource_covers(dir: &Directory, held: &Resource, wanted: &Resource) -> bool {
    match (held, wanted) {
        (Resource::Global, _) => true,
        (Resource::Account(a), Resource::Account(b)) => a == b,
        (Resource::Account(a), Resource::ServiceAccount(s)) => {
            dir.service_account(s).is_some_and(|sa| sa.account_id == *a)
        }
        (Resource::ServiceAccount(a), Resource::ServiceAccount(b)) => a == b,
        _ => false,
    }
}

/// One privilege: a role on a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Privilege {
    pub role: Role,
    pub resource: Resource,
}

impl Privilege {
    fn describe(&self) -> String {
        format!("{} on {}", self.role.as_str(), self.resource.to_text())
    }
}

/// Every privilege `iam_id` holds or can exercise without creating a credential: its bindings
/// and, transitively, those of the profiles that trust it, the service accounts its explicit
/// token-creator bindings cover, and the resource identities its policies cover.
pub fn effective_privileges(dir: &Directory, iam_id: &str) -> Result<Vec<Privilege>> {
    let crn_identities = std::cell::OnceCell::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue: Vec<String> = vec![iam_id.to_owned()];
    let mut privileges: HashSet<Privilege> = HashSet::new();
    while let Some(identity) = queue.pop() {
        if !seen.insert(identity.clone()) {
            continue;
        }
        if seen.len() > MAX_CLOSURE {
            return Err(Error::denied(format!(
                "cannot decide: the identities reachable from {iam_id} exceed {MAX_CLOSURE}"
            )));
        }
        for binding in dir.bindings_of(&identity) {
            privileges.insert(Privilege {
                role: binding.role,
                resource: binding.resource.clone(),
            });
            if binding.role == Role::TokenCreator {
                queue.extend(service_accounts_covered(dir, &binding.resource).map(|s| s.iam_id()));
            }
        }
        let identifier = identity
            .strip_prefix(ids::CRN_IAM_ID_PREFIX)
            .unwrap_or(&identity);
        queue.extend(dir.profiles_trusting(identifier).map(|p| p.iam_id()));
        let mut policies = dir.policies_from(&identity).peekable();
        if policies.peek().is_some() {
            let crns: &Vec<String> = crn_identities.get_or_init(|| dir.crn_identities());
            for policy in policies {
                queue.extend(
                    crns.iter()
                        .filter(|crn| {
                            crn.strip_prefix(ids::CRN_IAM_ID_PREFIX)
                                .is_some_and(|c| policy.covers(c))
                        })
                        .cloned(),
                );
            }
        }
    }
    let mut privileges: Vec<Privilege> = privileges.into_iter().collect();
    privileges.sort_by_key(|p| (p.role.as_str(), p.resource.to_text()));
    Ok(privileges)
}

fn service_accounts_covered<'a>(
    dir: &'a Directory,
    resource: &Resource,
) -> Box<dyn Iterator<Item = &'a std::sync::Arc<ServiceAccount>> + 'a> {
    match resource {
        Resource::Global => Box::new(dir.service_accounts()),
        Resource::Account(account) => Box::new(dir.service_accounts_in(account)),
        Resource::ServiceAccount(id) => Box::new(dir.service_account(id).into_iter()),
    }
}

/// Whether a privilege among `held` covers `wanted`.
fn covered(dir: &Directory, held: &[Privilege], wanted: &Privilege) -> bool {
    held.iter().any(|p| {
        (p.role == wanted.role || p.role == Role::Admin)
            && resource_covers(dir, &p.resource, &wanted.resource)
    })
}

/// Refuses unless every privilege in `wanted` is covered by the caller's own.
fn check_covers(
    dir: &Directory,
    caller: &Principal,
    wanted: &[Privilege],
    whose: &str,
) -> Result<()> {
    if wanted.is_empty() || is_global_admin(dir, caller.iam_id()) {
        return Ok(());
    }
    let held = effective_privileges(dir, caller.iam_id())?;
    match wanted.iter().find(|p| !covered(dir, &held, p)) {
        None => Ok(()),
        Some(missing) => Err(Error::denied(format!(
            "{whose} holds {}, which {} does not hold: a caller may only act on principals whose \
             privileges it holds itself",
            missing.describe(),
            caller.iam_id()
        ))),
    }
}

/// Refuses unless the caller holds every privilege of `target` (containment).
pub fn check_contains(dir: &Directory, caller: &Principal, target: &str) -> Result<()> {
    if target == caller.iam_id() {
        return Ok(());
    }
    let wanted = effective_privileges(dir, target)?;
    check_covers(dir, caller, &wanted, target)
}

/// What a caller asks to do.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Read one object.
    Read(&'a Entity),
    /// List objects of a kind, in one account or (`None`) everywhere.
    List {
        kind: EntityKind,
        account_id: Option<&'a str>,
    },
    /// Create this object.
    Create(&'a Entity),
    /// Replace `old` by `new` (same kind and key).
    Update { old: &'a Entity, new: &'a Entity },
    /// Delete this object (and what the store cascades with it).
    Delete(&'a Entity),
    /// Read the audit log: one account's events, or (`None`) every event.
    ReadAudit { account_id: Option<&'a str> },
    /// List signing keys.
    ReadSigningKeys,
    /// Force a signing-key rotation.
    RotateSigningKeys,
    /// Cut off every token of `iam_id` issued so far.
    CutOff { iam_id: &'a str },
    /// Enrol a TOTP factor for `user` (a first one, or a replacement of `existing`), at `now`.
    EnrollFactor {
        user: &'a User,
        existing: Option<&'a TotpEnrollment>,
        proof: Option<&'a TotpChecked>,
        now: crate::UnixTime,
    },
    /// Confirm `user`'s unconfirmed factor, or (`replacement`) the replacement pending beside
    /// a confirmed one.
    ConfirmFactor { user: &'a User, replacement: bool },
    /// Remove `user`'s factor, at `now`.
    RemoveFactor {
        user: &'a User,
        existing: &'a TotpEnrollment,
        proof: Option<&'a TotpChecked>,
        now: crate::UnixTime,
    },
    /// Obtain a token of a service account (CreateForServiceAccount).
    MintToken {
        service_account_id: &'a str,
        service_account: Option<&'a ServiceAccount>,
    },
    /// Read a service account (Yandex `ServiceAccountService/Get`).
    ReadServiceAccount {
        service_account_id: &'a str,
        service_account: Option<&'a ServiceAccount>,
    },
    /// Revoke a token of `subject_iam_id` descending from `lineage`.
    RevokeToken {
        subject_iam_id: &'a str,
        lineage: &'a Lineage,
    },
    /// Obtain an ID token for oneself.
    MintIdToken,
}

impl Action<'_> {
    /// What the action is, for a log line: its verb and the object's kind and key (ids only,
    /// never a credential's value or hash).
    pub fn describe(&self) -> String {
        let object = |e: &Entity| format!("{} {}", e.kind().as_str(), e.key());
        match self {
            Action::Read(e) => format!("read {}", object(e)),
            Action::List { kind, account_id } => format!(
                "list {} in {}",
                kind.as_str(),
                account_id.unwrap_or("every account")
            ),
            Action::Create(e) => format!("create {}", object(e)),
            Action::Update { new, .. } => format!("update {}", object(new)),
            Action::Delete(e) => format!("delete {}", object(e)),
            Action::ReadAudit { account_id } => {
                format!(
                    "read the audit log of {}",
                    account_id.unwrap_or("every account")
                )
            }
            Action::ReadSigningKeys => "list signing keys".to_owned(),
            Action::RotateSigningKeys => "rotate signing keys".to_owned(),
            Action::CutOff { iam_id } => format!("revoke every token of {iam_id}"),
            Action::EnrollFactor { user, .. } => format!("enrol a TOTP factor of user {}", user.id),
            Action::ConfirmFactor { user, .. } => {
                format!("confirm the TOTP factor of user {}", user.id)
            }
            Action::RemoveFactor { user, .. } => {
                format!("remove the TOTP factor of user {}", user.id)
            }
            Action::MintToken {
                service_account_id, ..
            } => format!("mint a token of service account {service_account_id}"),
            Action::ReadServiceAccount {
                service_account_id, ..
            } => format!("read service account {service_account_id}"),
            Action::RevokeToken { subject_iam_id, .. } => {
                format!("revoke a token of {subject_iam_id}")
            }
            Action::MintIdToken => "mint an ID token".to_owned(),
        }
    }
}

/// Decides `action` for `caller` over `dir`.
pub fn authorize(dir: &Directory, caller: &Principal, action: &Action<'_>) -> Result<()> {
    match *action {
        Action::Read(entity) => read(dir, caller, entity),
        Action::List {
            kind,
            account_id: Some(account),
        } => {
            if kind == EntityKind::Enterprise {
                return require(dir, caller, Role::Viewer, &Resource::Global);
            }
            require(
                dir,
                caller,
                Role::Viewer,
                &Resource::Account(account.to_owned()),
            )
        }
        Action::List {
            account_id: None, ..
        } => require(dir, caller, Role::Viewer, &Resource::Global),
        Action::Create(entity) => create(dir, caller, entity),
        Action::Update { old, new } => update(dir, caller, old, new),
        Action::Delete(entity) => delete(dir, caller, entity),
        Action::ReadAudit {
            account_id: Some(account),
        } => require(
            dir,
            caller,
            Role::Admin,
            &Resource::Account(account.to_owned()),
        ),
        Action::ReadAudit { account_id: None }
        | Action::ReadSigningKeys
        | Action::RotateSigningKeys => require(dir, caller, Role::Admin, &Resource::Global),
        Action::CutOff { iam_id } => act_on_identity(dir, caller, iam_id, "cut off the tokens of"),
        Action::EnrollFactor {
            user,
            existing,
            proof,
            now,
        } => match existing {
            Some(existing) if existing.confirmed => {
                require_self_user(caller, user, "replace its second factor")?;
                step_up(caller, user, proof, now)
            }
            _ => first_factor(dir, caller, user, "enrol a second factor"),
        },
        Action::ConfirmFactor { user, replacement } => {
            if replacement {
                require_self_user(caller, user, "confirm a replacement of its second factor")
            } else {
                first_factor(dir, caller, user, "confirm a second factor")
            }
        }
        Action::RemoveFactor {
            user,
            existing,
            proof,
            now,
        } => {
            if existing.confirmed {
                require_self_user(caller, user, "remove its second factor")?;
                step_up(caller, user, proof, now)
            } else {
                first_factor(dir, caller, user, "remove an unconfirmed second factor")
            }
        }
        Action::MintToken {
            service_account_id,
            service_account,
        } => mint_token(dir, caller, service_account_id, service_account),
        Action::ReadServiceAccount {
            service_account_id,
            service_account,
        } => {
            let resource = Resource::ServiceAccount(service_account_id.to_owned());
            match service_account {
                Some(sa) if sa.iam_id() == caller.iam_id() => Ok(()),
                Some(_) if has_role(dir, caller.iam_id(), Role::Viewer, &resource) => Ok(()),
                None => hidden_not_found(dir, caller, service_account_id, Role::Viewer),
                Some(_) => require(dir, caller, Role::Viewer, &resource),
            }
        }
        Action::RevokeToken {
            subject_iam_id,
            lineage,
        } => {
            if subject_iam_id == caller.iam_id() || derived_by(lineage, caller.iam_id()) {
                return Ok(());
            }
            act_on_identity(dir, caller, subject_iam_id, "revoke a token of")
        }
        Action::MintIdToken => {
            if caller.kind() == SubjectKind::Crn {
                return Err(Error::denied(
                    "ID tokens are issued to users, service accounts and profiles, not to CRN identities",
                ));
            }
            Ok(())
        }
    }
}

/// Whether `iam_id` derived a token with this lineage (assumed its profile, minted it).
fn derived_by(lineage: &Lineage, iam_id: &str) -> bool {
    lineage.links().iter().any(|link| match link {
        Link::Actor(actor) => actor == iam_id,
        Link::Assumer(_) => link.assumer_parts().is_some_and(|(_, a)| a == iam_id),
        _ => false,
    })
}

/// Refuses unless the caller holds `role` on `resource`.
fn require(dir: &Directory, caller: &Principal, role: Role, resource: &Resource) -> Result<()> {
    if has_role(dir, caller.iam_id(), role, resource) {
        return Ok(());
    }
    Err(Error::denied(format!(
        "{} does not hold role {} on {}",
        caller.iam_id(),
        role.as_str(),
        resource.to_text()
    )))
}

/// A refusal for an object that does not exist: `NotFound` for a caller who may see every
/// account, else the same refusal as for an existing object, so that refusals do not tell
/// outsiders what exists.
fn hidden_not_found(dir: &Directory, caller: &Principal, id: &str, role: Role) -> Result<()> {
    if has_role(dir, caller.iam_id(), Role::Viewer, &Resource::Global) {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("service account {id} not found"),
        ));
    }
    Err(Error::denied(format!(
        "{} does not hold {} on service account {id}",
        caller.iam_id(),
        role.as_str()
    )))
}

/// The resource whose roles govern an object: its account, or `*` for installation-wide ones.
pub fn governing_resource(dir: &Directory, entity: &Entity) -> Resource {
    let account = |id: &str| Resource::Account(id.to_owned());
    match entity {
        Entity::Account(a) => account(&a.id),
        Entity::User(u) => account(&u.account_id),
        Entity::ServiceAccount(s) => account(&s.account_id),
        Entity::ApiKey(k) => account(&k.account_id),
        Entity::AuthorizedKey(k) => account(&k.account_id),
        Entity::OAuthToken(t) => account(&t.account_id),
        Entity::Totp(t) => account(&t.account_id),
        Entity::Profile(p) => account(&p.account_id),
        Entity::Issuer(i) => account(&i.account_id),
        Entity::Policy(p) => account(&p.account_id),
        Entity::Client(c) => c.account_id.as_deref().map_or(Resource::Global, account),
        Entity::Binding(b) => binding_governor(dir, &b.resource),
        Entity::Enterprise(_)
        | Entity::Revocation(_)
        | Entity::Cutoff(_)
        | Entity::SigningKey(_) => Resource::Global,
    }
}

/// The account an audit event about `entity` belongs to, whose administrators may read it: the
/// account governing the entity, or for a token cut-off the cut-off identity's account; `None`
/// for installation-wide objects (enterprises, global clients and bindings, signing keys).
pub fn audit_account(dir: &Directory, entity: &Entity) -> Option<String> {
    match entity {
        Entity::Cutoff(c) => dir.subject(&c.iam_id).map(|s| s.account_id().to_owned()),
        _ => match governing_resource(dir, entity) {
            Resource::Account(account) => Some(account),
            _ => None,
        },
    }
}

/// The resource whose `admin` governs bindings on `resource`: the service account's account
/// for a service account (one that does not exist governs nothing below `*`).
fn binding_governor(dir: &Directory, resource: &Resource) -> Resource {
    match resource {
        Resource::ServiceAccount(id) => dir
            .service_account(id)
            .map(|s| Resource::Account(s.account_id.clone()))
            .unwrap_or(Resource::Global),
        other => other.clone(),
    }
}

/// The identity that owns a credential or factor, if the entity is one.
fn credential_owner(entity: &Entity) -> Option<String> {
    match entity {
        Entity::ApiKey(k) => Some(k.owner_iam_id.clone()),
        Entity::OAuthToken(t) => Some(t.user_id.clone()),
        Entity::AuthorizedKey(k) => Some(ids::service_iam_id(&k.service_account_id)),
        Entity::Totp(t) => Some(t.user_id.clone()),
        _ => None,
    }
}

fn read(dir: &Directory, caller: &Principal, entity: &Entity) -> Result<()> {
    let own = match entity {
        Entity::User(u) => u.id == caller.iam_id(),
        Entity::ServiceAccount(s) => s.iam_id() == caller.iam_id(),
        Entity::Binding(b) => b.subject_iam_id == caller.iam_id(),
        other => credential_owner(other).is_some_and(|owner| owner == caller.iam_id()),
    };
    if own {
        return Ok(());
    }
    require(dir, caller, Role::Viewer, &governing_resource(dir, entity))
}

fn create(dir: &Directory, caller: &Principal, entity: &Entity) -> Result<()> {
    match entity {
        Entity::Enterprise(_) | Entity::Account(_) | Entity::SigningKey(_) => {
            require(dir, caller, Role::Admin, &Resource::Global)
        }
        Entity::User(_) | Entity::ServiceAccount(_) | Entity::Client(_) | Entity::Profile(_) => {
            require(dir, caller, Role::Admin, &governing_resource(dir, entity))
        }
        Entity::ApiKey(_) | Entity::OAuthToken(_) | Entity::AuthorizedKey(_) => {
            create_credential(dir, caller, entity)
        }
        Entity::Totp(t) => Err(Error::denied(format!(
            "a second factor of {} is enrolled through its own endpoint",
            t.user_id
        ))),
        Entity::Binding(binding) => create_binding(dir, caller, binding),
        Entity::Issuer(issuer) => {
            require(dir, caller, Role::Admin, &governing_resource(dir, entity))?;
            issuer_rules(dir, caller, &issuer.jwks, &issuer.account_id)
        }
        Entity::Policy(policy) => {
            require(dir, caller, Role::Admin, &governing_resource(dir, entity))?;
            // The target must stay inside the policy's account (`parse_target` refuses others;
            // a hand-made entity is checked here too).
            let scope = policy.target_crn.trim_end_matches('*');
            let scoped = scope.split(':').nth(6).and_then(|s| s.strip_prefix("a/"));
            if scoped != Some(policy.account_id.as_str()) || scope.split(':').count() < 8 {
                return Err(Error::denied(format!(
                    "authorization policy target {} is not confined to account {}",
                    policy.target_crn, policy.account_id
                )));
            }
            for crn in dir.crn_identities() {
                if crn
                    .strip_prefix(ids::CRN_IAM_ID_PREFIX)
                    .is_some_and(|c| policy.covers(c))
                {
                    check_contains(dir, caller, &crn)?;
                }
            }
            Ok(())
        }
        Entity::Cutoff(c) => act_on_identity(dir, caller, &c.iam_id, "cut off the tokens of"),
        Entity::Revocation(_) => Err(Error::denied(
            "tokens are revoked through the revocation endpoints",
        )),
    }
}

/// Who may create a credential (API key, OAuth token, authorized key) of `owner`: a user's only
/// by the user, signed in as itself; a service account's by an administrator of its account
/// whose privileges contain the service account's.
fn create_credential(dir: &Directory, caller: &Principal, entity: &Entity) -> Result<()> {
    let owner = credential_owner(entity).unwrap_or_default();
    match SubjectKind::of_iam_id(&owner) {
        Some(SubjectKind::User) => {
            if owner == caller.iam_id()
                && caller.kind() == SubjectKind::User
                && caller.is_self_authenticated()
            {
                return Ok(());
            }
            Err(Error::denied(format!(
                "only user {owner} may create credentials for itself; administrators manage \
                 service accounts, not the credentials of users"
            )))
        }
        Some(SubjectKind::ServiceId) => {
            require(dir, caller, Role::Admin, &governing_resource(dir, entity))?;
            check_contains(dir, caller, &owner)
        }
        _ => Err(Error::invalid(format!(
            "credentials belong to users and service accounts, not to {owner}"
        ))),
    }
}

/// The privileges a binding confers: its role on its resource, and for an explicit
/// token-creator binding, everything the covered service accounts hold.
fn conferred_by(dir: &Directory, binding: &AccessBinding) -> Result<Vec<Privilege>> {
    let mut conferred = vec![Privilege {
        role: binding.role,
        resource: binding.resource.clone(),
    }];
    if binding.role == Role::TokenCreator {
        for sa in service_accounts_covered(dir, &binding.resource) {
            conferred.extend(effective_privileges(dir, &sa.iam_id())?);
        }
    }
    Ok(conferred)
}

/// A binding is created or deleted by an administrator of what governs its resource.
fn require_binding_admin(
    dir: &Directory,
    caller: &Principal,
    binding: &AccessBinding,
) -> Result<()> {
    require(
        dir,
        caller,
        Role::Admin,
        &binding_governor(dir, &binding.resource),
    )
}

fn create_binding(dir: &Directory, caller: &Principal, binding: &AccessBinding) -> Result<()> {
    require_binding_admin(dir, caller, binding)?;
    let conferred = conferred_by(dir, binding)?;
    check_covers(
        dir,
        caller,
        &conferred,
        &format!("the binding of {}", binding.role.as_str()),
    )
}

/// Rules of a trusted issuer in `account`: a key file names a path on the server, so only the
/// global administrator may set one; and since the issuer's tokens may become any profile of
/// the account that admits compute resources, the caller must hold what those profiles hold.
fn issuer_rules(
    dir: &Directory,
    caller: &Principal,
    jwks: &JwksSource,
    account: &str,
) -> Result<()> {
    if matches!(jwks, JwksSource::File(_)) && !is_global_admin(dir, caller.iam_id()) {
        return Err(Error::denied(
            "only the global administrator may set jwks_file (a path on the server); send the \
             key set inline as jwks",
        ));
    }
    for profile in dir.profiles_in(account) {
        if !profile.links.is_empty() || !profile.rules.is_empty() {
            check_contains(dir, caller, &profile.iam_id())?;
        }
    }
    Ok(())
}

fn update(dir: &Directory, caller: &Principal, old: &Entity, new: &Entity) -> Result<()> {
    if old.kind() != new.kind() || old.key() != new.key() {
        return Err(Error::invalid(
            "an update must keep the object's kind and key",
        ));
    }
    let governing = governing_resource(dir, old);
    if governing_resource(dir, new) != governing {
        return Err(Error::denied(
            "an object cannot be moved to another account",
        ));
    }
    match (old, new) {
        (Entity::Account(_), Entity::Account(_)) => require(dir, caller, Role::Admin, &governing),
        (Entity::Profile(profile), Entity::Profile(_)) => {
            // Whoever may rewrite a profile's trust may become it: containment.
            require(dir, caller, Role::Admin, &governing)?;
            check_contains(dir, caller, &profile.iam_id())
        }
        (Entity::Issuer(_), Entity::Issuer(issuer)) => {
            require(dir, caller, Role::Admin, &governing)?;
            issuer_rules(dir, caller, &issuer.jwks, &issuer.account_id)
        }
        (Entity::Totp(_), Entity::Totp(_)) => Err(Error::denied(
            "second factors change through their own endpoints",
        )),
        _ => Err(Error::denied(format!(
            "{} objects cannot be updated",
            old.kind().as_str()
        ))),
    }
}

fn delete(dir: &Directory, caller: &Principal, entity: &Entity) -> Result<()> {
    match entity {
        Entity::Enterprise(_) | Entity::Account(_) | Entity::SigningKey(_) => {
            require(dir, caller, Role::Admin, &Resource::Global)
        }
        Entity::User(u) => delete_identity(dir, caller, &u.id, entity),
        Entity::ServiceAccount(s) => delete_identity(dir, caller, &s.iam_id(), entity),
        Entity::ApiKey(_) | Entity::OAuthToken(_) | Entity::AuthorizedKey(_) => {
            let owner = credential_owner(entity).unwrap_or_default();
            if owner == caller.iam_id() && caller.is_self_authenticated() {
                return Ok(());
            }
            require(dir, caller, Role::Admin, &governing_resource(dir, entity))?;
            check_contains(dir, caller, &owner)
        }
        Entity::Totp(t) => Err(Error::denied(format!(
            "the second factor of {} is removed through its own endpoint",
            t.user_id
        ))),
        Entity::Binding(binding) => {
            require_binding_admin(dir, caller, binding)?;
            check_not_last_global_admin(dir, None, Some(&binding.id))
        }
        Entity::Profile(p) => {
            require(dir, caller, Role::Admin, &governing_resource(dir, entity))?;
            check_not_last_global_admin(dir, Some(&p.iam_id()), None)
        }
        Entity::Client(_) | Entity::Issuer(_) | Entity::Policy(_) => {
            require(dir, caller, Role::Admin, &governing_resource(dir, entity))
        }
        Entity::Cutoff(_) | Entity::Revocation(_) => Err(Error::denied(
            "revocations and cut-offs expire by themselves and cannot be deleted",
        )),
    }
}

/// Deleting a user or service account: `admin` on its account, containment, and never the
/// last global administrator.
fn delete_identity(
    dir: &Directory,
    caller: &Principal,
    iam_id: &str,
    entity: &Entity,
) -> Result<()> {
    require(dir, caller, Role::Admin, &governing_resource(dir, entity))?;
    check_contains(dir, caller, iam_id)?;
    check_not_last_global_admin(dir, Some(iam_id), None)
}

/// Refuses when removing `subject` (with all its bindings) or the binding `binding_id` would
/// leave the installation without a global administrator: nobody could manage it any more.
fn check_not_last_global_admin(
    dir: &Directory,
    subject: Option<&str>,
    binding_id: Option<&str>,
) -> Result<()> {
    let global_admin_bindings: Vec<&AccessBinding> = dir
        .bindings()
        .map(|b| b.as_ref())
        .filter(|b| b.role == Role::Admin && b.resource == Resource::Global)
        .filter(|b| dir.subject(&b.subject_iam_id).is_some())
        .collect();
    if global_admin_bindings.is_empty() {
        return Ok(());
    }
    let remaining = global_admin_bindings
        .iter()
        .filter(|b| Some(b.subject_iam_id.as_str()) != subject)
        .filter(|b| Some(b.id.as_str()) != binding_id)
        .count();
    if remaining == 0 {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            "this would remove the last global administrator (admin on *); grant admin on * to \
             another identity first, or the installation would have nobody left to manage it",
        ));
    }
    Ok(())
}

/// Acting on another identity's tokens (cut-off, revocation): oneself always; another identity
/// with `admin` on its account and containment. A resource identity's account is its CRN's.
fn act_on_identity(dir: &Directory, caller: &Principal, iam_id: &str, what: &str) -> Result<()> {
    if iam_id == caller.iam_id() {
        return Ok(());
    }
    let account = match SubjectKind::of_iam_id(iam_id) {
        Some(SubjectKind::Crn) => iam_id
            .strip_prefix(ids::CRN_IAM_ID_PREFIX)
            .and_then(ids::crn_account)
            .filter(|account| dir.account(account).is_some())
            .map(str::to_owned),
        _ => dir.subject(iam_id).map(|s| s.account_id().to_owned()),
    };
    let Some(account) = account else {
        return Err(Error::not_found(format!("identity {iam_id} not found")));
    };
    require(dir, caller, Role::Admin, &Resource::Account(account))
        .map_err(|e| Error::denied(format!("may not {what} {iam_id}: {}", e.message())))?;
    check_contains(dir, caller, iam_id)
}

/// The caller must be `user`, signed in as itself.
fn require_self_user(caller: &Principal, user: &User, what: &str) -> Result<()> {
    if caller.iam_id() == user.id
        && caller.kind() == SubjectKind::User
        && caller.is_self_authenticated()
    {
        return Ok(());
    }
    Err(Error::denied(format!(
        "only user {} may {what} for itself",
        user.id
    )))
}

/// A first factor (none confirmed yet) is set up like an initial password: by the user, or by
/// an administrator of the user's account whose privileges contain the user's, who hands the
/// secret over. (A user in an account that requires MFA cannot sign in before enrolling.)
fn first_factor(dir: &Directory, caller: &Principal, user: &User, what: &str) -> Result<()> {
    if require_self_user(caller, user, what).is_ok() {
        return Ok(());
    }
    require(
        dir,
        caller,
        Role::Admin,
        &Resource::Account(user.account_id.clone()),
    )
    .map_err(|_| {
        Error::denied(format!(
            "only user {} (or an administrator of its account) may {what}",
            user.id
        ))
    })?;
    check_contains(dir, caller, &user.id)
}

/// Changing a confirmed factor needs that factor, presented now (`SECURITY.md` rule 6): a
/// valid code of it in the request, or a token from a password-and-code sign-in of the last
/// [`STEP_UP_SECONDS`] (not one refreshed from an older sign-in).
fn step_up(
    caller: &Principal,
    user: &User,
    proof: Option<&TotpChecked>,
    now: crate::UnixTime,
) -> Result<()> {
    let code =
        proof.is_some_and(|p| p.user_id() == user.id && p.secret() == FactorSecret::Confirmed);
    let fresh_sign_in = caller.acr() >= 2
        && caller.token().is_some_and(|t| {
            t.grant_type == "password" && now.saturating_sub(t.iat) <= STEP_UP_SECONDS
        });
    if code || fresh_sign_in {
        return Ok(());
    }
    Err(Error::denied(format!(
        "{} has a confirmed TOTP factor: replacing or removing it needs that factor now: send a \
         current code as `code`, or use a token from a sign-in with a code in the last {} \
         minutes",
        caller.iam_id(),
        STEP_UP_SECONDS / 60
    )))
}

/// CreateForServiceAccount: an explicit `iam.serviceAccounts.tokenCreator` binding covering the
/// service account is a delegation and allows it; `admin` (which implies the role) allows it
/// only under containment.
fn mint_token(
    dir: &Directory,
    caller: &Principal,
    service_account_id: &str,
    service_account: Option<&ServiceAccount>,
) -> Result<()> {
    let Some(service_account) = service_account else {
        return hidden_not_found(dir, caller, service_account_id, Role::TokenCreator);
    };
    let resource = Resource::ServiceAccount(service_account.id.clone());
    let delegated = dir
        .bindings_of(caller.iam_id())
        .any(|b| b.role == Role::TokenCreator && resource_covers(dir, &b.resource, &resource));
    if delegated {
        return Ok(());
    }
    if has_role(dir, caller.iam_id(), Role::Admin, &resource) {
        return check_contains(dir, caller, &service_account.iam_id());
    }
    Err(Error::denied(format!(
        "{} does not hold {} on service account {service_account_id}",
        caller.iam_id(),
        Role::TokenCreator.as_str()
    )))
}

/// Which accounts a caller may list objects of, when it names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadScope {
    /// Every account (a global viewer or administrator).
    Everything,
    /// These accounts (where it holds `viewer` or `admin`), sorted.
    Accounts(Vec<String>),
}

pub fn read_scope(dir: &Directory, caller: &Principal) -> ReadScope {
    if has_role(dir, caller.iam_id(), Role::Viewer, &Resource::Global) {
        return ReadScope::Everything;
    }
    let mut accounts: Vec<String> = dir
        .bindings_of(caller.iam_id())
        .filter(|b| matches!(b.role, Role::Admin | Role::Viewer))
        .filter_map(|b| match &b.resource {
            Resource::Account(id) => Some(id.clone()),
            _ => None,
        })
        .collect();
    accounts.sort();
    accounts.dedup();
    ReadScope::Accounts(accounts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Change;
    use crate::model::*;
    use crate::principal::AuthnMethod;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn binding(id: &str, subject: &str, role: Role, resource: Resource) -> Entity {
        Entity::Binding(AccessBinding {
            id: id.into(),
            subject_iam_id: subject.into(),
            role,
            resource,
            created_at: 0,
        })
    }

    fn bind(dir: &mut Directory, id: &str, subject: &str, role: Role, resource: Resource) {
        dir.apply(Change::Upsert(binding(id, subject, role, resource)));
    }

    fn user(dir: &mut Directory, id: &str, account: &str) -> User {
        let user = User {
            id: id.into(),
            account_id: account.into(),
            name: id.into(),
            email: format!("{id}@example.com"),
            password_hash: None,
            federated: false,
            created_at: 0,
        };
        dir.apply(Change::Upsert(Entity::User(user.clone())));
        user
    }

    fn sa(dir: &mut Directory, id: &str, account: &str) -> ServiceAccount {
        let sa = ServiceAccount {
            id: id.into(),
            account_id: account.into(),
            name: id.into(),
            description: String::new(),
            created_at: 0,
        };
        dir.apply(Change::Upsert(Entity::ServiceAccount(sa.clone())));
        sa
    }

    fn world() -> Directory {
        let mut dir = Directory::new();
        for id in [A, B] {
            dir.apply(Change::Upsert(Entity::Account(Account {
                id: id.into(),
                name: id.into(),
                enterprise_id: None,
                mfa: Default::default(),
                created_at: 0,
            })));
        }
        for id in ["IBMid-root", "IBMid-a", "IBMid-v"] {
            user(&mut dir, id, A);
        }
        for id in ["ServiceId-1", "ServiceId-2"] {
            sa(&mut dir, id, A);
        }
        let bindings = [
            ("b0", "IBMid-root", Role::Admin, Resource::Global),
            ("b1", "IBMid-a", Role::Admin, Resource::Account(A.into())),
            ("b2", "IBMid-v", Role::Viewer, Resource::Account(A.into())),
            (
                "b3",
                "IBMid-t",
                Role::TokenCreator,
                Resource::ServiceAccount("ServiceId-1".into()),
            ),
        ];
        for (id, subject, role, resource) in bindings {
            bind(&mut dir, id, subject, role, resource);
        }
        dir
    }

    fn caller(iam_id: &str, account: &str) -> Principal {
        let kind = SubjectKind::of_iam_id(iam_id).unwrap();
        crate::authn::test_principal(iam_id, kind, account, AuthnMethod::ApiKey)
    }

    fn api_key(owner: &str, account: &str) -> Entity {
        Entity::ApiKey(ApiKey {
            id: "ApiKey-x".into(),
            name: "k".into(),
            description: String::new(),
            owner_iam_id: owner.into(),
            account_id: account.into(),
            key_hash: KeyHash([0; 32]),
            created_at: 0,
        })
    }

    #[test]
    fn role_coverage() {
        let dir = world();
        let acct = Resource::Account(A.into());
        let other = Resource::Account(B.into());
        let sa = Resource::ServiceAccount("ServiceId-1".into());
        assert!(is_global_admin(&dir, "IBMid-root"));
        assert!(!is_global_admin(&dir, "IBMid-a"));
        assert!(has_role(&dir, "IBMid-root", Role::Admin, &other));
        assert!(has_role(&dir, "IBMid-a", Role::Viewer, &acct));
        assert!(has_role(&dir, "IBMid-a", Role::Admin, &sa));
        assert!(!has_role(&dir, "IBMid-a", Role::Admin, &other));
        assert!(!has_role(&dir, "IBMid-v", Role::Admin, &acct));
        assert!(has_role(&dir, "IBMid-t", Role::TokenCreator, &sa));
        assert!(!has_role(&dir, "IBMid-t", Role::TokenCreator, &acct));
        assert!(has_role(&dir, "IBMid-a", Role::TokenCreator, &sa));
        assert!(!has_role(&dir, "IBMid-v", Role::TokenCreator, &sa));
        assert!(!has_role(&dir, "IBMid-nobody", Role::Viewer, &acct));
    }

    #[test]
    fn only_the_user_creates_its_credentials() {
        let dir = world();
        let key = api_key("IBMid-root", A);
        // The account administrator cannot mint a key for the global administrator...
        let err = authorize(&dir, &caller("IBMid-a", A), &Action::Create(&key)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert!(
            err.message().contains("only user IBMid-root"),
            "{}",
            err.message()
        );
        // ...nor can the global administrator mint one for another user.
        let mine = api_key("IBMid-a", A);
        assert!(authorize(&dir, &caller("IBMid-root", A), &Action::Create(&mine)).is_err());
        // The user itself can.
        assert!(authorize(&dir, &caller("IBMid-a", A), &Action::Create(&mine)).is_ok());
    }

    #[test]
    fn service_account_credentials_need_containment() {
        let mut dir = world();
        let key = api_key("iam-ServiceId-1", A);
        assert!(authorize(&dir, &caller("IBMid-a", A), &Action::Create(&key)).is_ok());
        assert!(authorize(&dir, &caller("IBMid-v", A), &Action::Create(&key)).is_err());
        // Once the service account holds something on B, A's administrator may no longer
        // create its keys, mint its tokens, or delete it.
        bind(
            &mut dir,
            "b9",
            "iam-ServiceId-1",
            Role::Admin,
            Resource::Account(B.into()),
        );
        let err = authorize(&dir, &caller("IBMid-a", A), &Action::Create(&key)).unwrap_err();
        assert!(
            err.message().contains("admin on account/"),
            "{}",
            err.message()
        );
        let sa = dir.service_account("ServiceId-1").cloned().unwrap();
        let mint = Action::MintToken {
            service_account_id: "ServiceId-1",
            service_account: Some(&sa),
        };
        assert!(authorize(&dir, &caller("IBMid-a", A), &mint).is_err());
        assert!(authorize(&dir, &caller("IBMid-root", A), &mint).is_ok());
        // An explicit token-creator delegation still works.
        assert!(authorize(&dir, &caller("IBMid-t", A), &mint).is_ok());
        let entity = Entity::ServiceAccount(sa.as_ref().clone());
        assert!(authorize(&dir, &caller("IBMid-a", A), &Action::Delete(&entity)).is_err());
    }

    #[test]
    fn the_last_global_administrator_stays() {
        let dir = world();
        let root = Entity::User(dir.user("IBMid-root").unwrap().as_ref().clone());
        let err = authorize(&dir, &caller("IBMid-root", A), &Action::Delete(&root)).unwrap_err();
        assert!(err.message().contains("last global administrator"));
        let root_binding = binding("b0", "IBMid-root", Role::Admin, Resource::Global);
        assert!(authorize(
            &dir,
            &caller("IBMid-root", A),
            &Action::Delete(&root_binding)
        )
        .is_err());
        let mut dir = dir;
        bind(&mut dir, "b8", "IBMid-a", Role::Admin, Resource::Global);
        assert!(authorize(
            &dir,
            &caller("IBMid-root", A),
            &Action::Delete(&root_binding)
        )
        .is_ok());
    }

    #[test]
    fn delegations_are_granted_only_under_containment() {
        let mut dir = world();
        bind(
            &mut dir,
            "b9",
            "iam-ServiceId-2",
            Role::Admin,
            Resource::Account(B.into()),
        );
        let grant = |role, resource| binding("new", "IBMid-v", role, resource);
        let a_admin = caller("IBMid-a", A);
        // Token creator on a service account that holds admin on B would hand B over.
        let on_sa2 = grant(
            Role::TokenCreator,
            Resource::ServiceAccount("ServiceId-2".into()),
        );
        assert!(authorize(&dir, &a_admin, &Action::Create(&on_sa2)).is_err());
        let on_sa1 = grant(
            Role::TokenCreator,
            Resource::ServiceAccount("ServiceId-1".into()),
        );
        assert!(authorize(&dir, &a_admin, &Action::Create(&on_sa1)).is_ok());
        // Bindings on another account need admin there.
        let on_b = grant(Role::Viewer, Resource::Account(B.into()));
        assert!(authorize(&dir, &a_admin, &Action::Create(&on_b)).is_err());
        assert!(authorize(&dir, &caller("IBMid-root", A), &Action::Create(&on_b)).is_ok());
    }

    #[test]
    fn effective_privileges_follow_trust_delegation_and_policies() {
        let mut dir = world();
        bind(
            &mut dir,
            "b9",
            "iam-ServiceId-1",
            Role::Viewer,
            Resource::Account(B.into()),
        );
        let privileges = effective_privileges(&dir, "IBMid-t").unwrap();
        assert!(privileges.contains(&Privilege {
            role: Role::Viewer,
            resource: Resource::Account(B.into())
        }));
        // Admin's implicit token-creator right is not in the closure.
        let privileges = effective_privileges(&dir, "IBMid-a").unwrap();
        assert!(!privileges
            .iter()
            .any(|p| p.resource == Resource::Account(B.into())));
    }
}
