//! Model-based property tests of the authorization model ([`crate::authz`]) and revocation
//! lineage ([`crate::lineage`]).
//!
//! `random_worlds_keep_tenancy_and_containment` builds random worlds (accounts, users, service
//! accounts, bindings, trusted profiles, resource identities, authorization policies), lets
//! random callers — authenticated for real, by API key — attempt random actions through
//! [`authorize`], applies what is allowed, and checks after every step, against a reference
//! model written independently here (a naive fixpoint, no shared code with `authz`):
//!
//! 1. **tenancy**: nothing changes in an account unless the caller is `admin` there (or on `*`),
//!    except a user's own credentials;
//! 2. **containment**: no identity gains a privilege the caller did not hold, and no caller
//!    obtains a credential or token of an identity holding a privilege the caller lacked;
//! 3. the installation always keeps a global administrator.
//!
//! `removing_any_link_kills_every_descendant` derives a chain of real, signed tokens (API key →
//! token → assumed profile → token minted for a service account → resource identity), removes a
//! random link, and checks that exactly the descendants of that link stop verifying.
//!
//! These fail when a hole of issue 12 is put back; each was tried by editing the code back and
//! running the tests (and the mutation reverted):
//! - `create_credential` letting an account `admin` create a user's API key (the delegated
//!   administrator who became the bootstrap administrator) → the world test fails (2a);
//! - policy creation as before issue 12: `AuthorizationPolicy::covers` without its account
//!   check and `authz` without the target confinement and containment of covered resource
//!   identities (a `crn:v1:*` policy of account B reaching A's CRN, which A's profile trusts)
//!   → the world test fails (2b);
//! - `mint_token` letting `admin` mint tokens of any service account of its account → fails (2a);
//! - `Directory::dead_link` ignoring `Link::ApiKey` or `Link::Actor` (tokens surviving the
//!   deletion of their API key, or of the identity that derived them) → the lineage test fails.
//!
//! Removing only one of two layers (e.g. only `covers`' account check, with containment still
//! in place) is caught by the other layer, not by this test: defence in depth.

use crate::authn;
use crate::authz::{authorize, Action};
use crate::directory::{Change, Directory, Entity, EntityKind};
use crate::jose::{generate_pkcs8, SigningKey};
use crate::lineage::Link;
use crate::model::*;
use crate::principal::Principal;
use crate::secret::{Pepper, SecretPurpose};
use crate::token::{self, MintParams};
use aws_lc_rs::rand::SystemRandom;
use proptest::prelude::*;
use std::collections::HashSet;
use tessera_verify::Jwks;

const ACCOUNTS: [&str; 2] = [
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
];
const ISSUER: &str = "http://tessera.test/identity";

fn pepper() -> Pepper {
    Pepper::from_bytes(&[7; 32])
}

fn user_id(i: usize) -> String {
    format!("IBMid-u{i}")
}

fn sa_id(i: usize) -> String {
    format!("ServiceId-s{i}")
}

fn crn(account: usize, instance: usize) -> String {
    format!(
        "crn:v1:tessera:public:svc:global:a/{}:inst{instance}::",
        ACCOUNTS[account]
    )
}

fn apikey_of(iam_id: &str) -> String {
    format!("tsk_{iam_id}")
}

/// A generated world, before it is loaded into a directory.
#[derive(Debug, Clone)]
struct World {
    user_accounts: Vec<usize>,
    sa_accounts: Vec<usize>,
    /// (subject index into identities(), role, resource choice)
    bindings: Vec<(usize, usize, usize)>,
    /// (account, trusted identity indexes)
    profiles: Vec<(usize, Vec<usize>)>,
    /// (account, source identity index, instance or wildcard)
    policies: Vec<(usize, usize, Option<usize>)>,
    /// (account, instance, role, resource choice) bindings held by resource identities.
    crn_bindings: Vec<(usize, usize, usize, usize)>,
}

impl World {
    fn identities(&self) -> Vec<String> {
        let mut ids: Vec<String> = (0..self.user_accounts.len()).map(user_id).collect();
        ids.extend((0..self.sa_accounts.len()).map(|i| crate::ids::service_iam_id(&sa_id(i))));
        ids
    }
}

fn roles() -> [Role; 4] {
    Role::ALL
}

fn resource_choice(world: &World, choice: usize) -> Resource {
    let n_sa = world.sa_accounts.len();
    match choice % (3 + n_sa) {
        0 => Resource::Global,
        1 => Resource::Account(ACCOUNTS[0].into()),
        2 => Resource::Account(ACCOUNTS[1].into()),
        k => Resource::ServiceAccount(sa_id(k - 3)),
    }
}

fn world_strategy() -> impl Strategy<Value = World> {
    (3usize..5, 1usize..5).prop_flat_map(|(n_users, n_sas)| {
        let n_ids = n_users + n_sas;
        (
            prop::collection::vec(0usize..2, n_users),
            prop::collection::vec(0usize..2, n_sas),
            prop::collection::vec((0..n_ids, 0usize..4, 0usize..16), 0..8),
            prop::collection::vec((0usize..2, prop::collection::vec(0..n_ids + 2, 0..3)), 0..3),
            prop::collection::vec((0usize..2, 0..n_ids, prop::option::of(0usize..2)), 0..3),
            prop::collection::vec((0usize..2, 0usize..2, 0usize..4, 0usize..16), 0..3),
        )
            .prop_map(
                |(user_accounts, sa_accounts, bindings, profiles, policies, crn_bindings)| World {
                    user_accounts,
                    sa_accounts,
                    bindings,
                    profiles,
                    policies,
                    crn_bindings,
                },
            )
    })
}

fn load(world: &World) -> Directory {
    let pepper = pepper();
    let mut dir = Directory::new();
    let put = |dir: &mut Directory, e: Entity| dir.apply(Change::Upsert(e));
    for id in ACCOUNTS {
        put(
            &mut dir,
            Entity::Account(Account {
                id: id.into(),
                name: id.into(),
                enterprise_id: None,
                mfa: Default::default(),
                created_at: 0,
            }),
        );
    }
    for (i, account) in world.user_accounts.iter().enumerate() {
        put(
            &mut dir,
            Entity::User(User {
                id: user_id(i),
                account_id: ACCOUNTS[*account].into(),
                name: user_id(i),
                email: format!("u{i}@example.com"),
                password_hash: None,
                federated: false,
                created_at: 0,
            }),
        );
    }
    for (i, account) in world.sa_accounts.iter().enumerate() {
        put(
            &mut dir,
            Entity::ServiceAccount(ServiceAccount {
                id: sa_id(i),
                account_id: ACCOUNTS[*account].into(),
                name: sa_id(i),
                description: String::new(),
                created_at: 0,
            }),
        );
    }
    for (n, iam_id) in world.identities().iter().enumerate() {
        let account = dir.subject(iam_id).map(|s| s.account_id().to_owned());
        put(
            &mut dir,
            Entity::ApiKey(ApiKey {
                id: format!("ApiKey-{n}"),
                name: "k".into(),
                description: String::new(),
                owner_iam_id: iam_id.clone(),
                account_id: account.unwrap_or_default(),
                key_hash: pepper.hash(SecretPurpose::ApiKey, &apikey_of(iam_id)),
                created_at: 0,
            }),
        );
    }
    // The bootstrap administrator.
    let bind = |dir: &mut Directory, id: String, subject: String, role, resource| {
        dir.apply(Change::Upsert(Entity::Binding(AccessBinding {
            id,
            subject_iam_id: subject,
            role,
            resource,
            created_at: 0,
        })))
    };
    bind(
        &mut dir,
        "b-root".into(),
        user_id(0),
        Role::Admin,
        Resource::Global,
    );
    // An administrator of each account: the delegated administrators the attacks of issue 12
    // start from.
    for (n, account) in ACCOUNTS.iter().enumerate() {
        bind(
            &mut dir,
            format!("b-admin{n}"),
            user_id(n + 1),
            Role::Admin,
            Resource::Account((*account).into()),
        );
    }
    let identities = world.identities();
    for (n, (subject, role, resource)) in world.bindings.iter().enumerate() {
        bind(
            &mut dir,
            format!("b{n}"),
            identities[*subject].clone(),
            roles()[*role],
            resource_choice(world, *resource),
        );
    }
    for (n, (account, instance, role, resource)) in world.crn_bindings.iter().enumerate() {
        bind(
            &mut dir,
            format!("bc{n}"),
            crate::ids::crn_iam_id(&crn(*account, *instance)),
            roles()[*role],
            resource_choice(world, *resource),
        );
    }
    for (n, (account, trusted)) in world.profiles.iter().enumerate() {
        // Indexes past the identities name a resource identity of the profile's own account.
        let identities = trusted
            .iter()
            .map(|i| match identities.get(*i) {
                Some(id) => TrustedIdentity {
                    kind: if id.starts_with("IBMid-") {
                        TrustedIdentityType::User
                    } else {
                        TrustedIdentityType::Serviceid
                    },
                    identifier: id.clone(),
                    accounts: Vec::new(),
                },
                None => TrustedIdentity {
                    kind: TrustedIdentityType::Crn,
                    identifier: crn(*account, i - identities.len()),
                    accounts: Vec::new(),
                },
            })
            .collect();
        put(
            &mut dir,
            Entity::Profile(TrustedProfile {
                id: format!("Profile-p{n}"),
                account_id: ACCOUNTS[*account].into(),
                name: format!("p{n}"),
                description: String::new(),
                identities,
                links: Vec::new(),
                rules: Vec::new(),
                created_at: 0,
            }),
        );
    }
    for (n, (account, source, instance)) in world.policies.iter().enumerate() {
        let target = match instance {
            Some(i) => crn(*account, *i),
            None => format!(
                "crn:v1:tessera:public:svc:global:a/{}:*",
                ACCOUNTS[*account]
            ),
        };
        put(
            &mut dir,
            Entity::Policy(AuthorizationPolicy {
                id: format!("Policy-{n}"),
                account_id: ACCOUNTS[*account].into(),
                source_iam_id: identities[*source].clone(),
                target_crn: target,
                description: String::new(),
                created_at: 0,
            }),
        );
    }
    dir
}

// ---------------------------------------------------------------------------------------------
// The reference model: deliberately naive, sharing nothing with `authz`.

type Privileges = HashSet<(Role, Resource)>;

fn ref_covers_resource(dir: &Directory, held: &Resource, wanted: &Resource) -> bool {
    match (held, wanted) {
        (Resource::Global, _) => true,
        (Resource::Account(a), Resource::Account(b)) => a == b,
        (Resource::Account(a), Resource::ServiceAccount(s)) => {
            dir.service_account(s).map(|s| &s.account_id) == Some(a)
        }
        (Resource::ServiceAccount(a), Resource::ServiceAccount(b)) => a == b,
        _ => false,
    }
}

fn ref_covered(dir: &Directory, held: &Privileges, wanted: &(Role, Resource)) -> bool {
    held.iter().any(|(role, resource)| {
        (*role == wanted.0 || *role == Role::Admin) && ref_covers_resource(dir, resource, &wanted.1)
    })
}

/// Everything each identity can exercise: its bindings, plus those of every identity it can
/// become without creating a credential (a profile trusting it, a service account an explicit
/// token-creator binding covers, a resource identity of its policies' account that a policy
/// covers), to a fixpoint.
fn ref_privileges(dir: &Directory, iam_id: &str) -> Privileges {
    let mut reachable: HashSet<String> = HashSet::from([iam_id.to_owned()]);
    loop {
        let before = reachable.len();
        let current: Vec<String> = reachable.iter().cloned().collect();
        for identity in current {
            for binding in dir.bindings() {
                if binding.subject_iam_id == identity && binding.role == Role::TokenCreator {
                    for sa in dir.service_accounts() {
                        if ref_covers_resource(
                            dir,
                            &binding.resource,
                            &Resource::ServiceAccount(sa.id.clone()),
                        ) {
                            reachable.insert(sa.iam_id());
                        }
                    }
                }
            }
            let identifier = identity.strip_prefix("crn-").unwrap_or(&identity);
            for profile in dir.profiles() {
                if profile
                    .identities
                    .iter()
                    .any(|i| i.identifier == identifier)
                {
                    reachable.insert(profile.iam_id());
                }
            }
            for policy in dir.policies() {
                if policy.source_iam_id != identity {
                    continue;
                }
                // Resource identities that matter: bound ones and ones profiles trust.
                let bound = dir
                    .bindings()
                    .filter_map(|b| b.subject_iam_id.strip_prefix("crn-").map(str::to_owned));
                let trusted = dir.profiles().flat_map(|p| {
                    p.identities
                        .iter()
                        .filter(|i| i.kind == TrustedIdentityType::Crn)
                        .map(|i| i.identifier.clone())
                        .collect::<Vec<_>>()
                });
                for target in bound.chain(trusted).collect::<Vec<_>>() {
                    // What the policy says, taken at its word: a policy reaching past its
                    // account would show here as the privileges it hands out.
                    let matched = match policy.target_crn.strip_suffix('*') {
                        Some(prefix) => target.starts_with(prefix),
                        None => policy.target_crn == target,
                    };
                    if matched {
                        reachable.insert(format!("crn-{target}"));
                    }
                }
            }
        }
        if reachable.len() == before {
            break;
        }
    }
    dir.bindings()
        .filter(|b| reachable.contains(&b.subject_iam_id))
        .map(|b| (b.role, b.resource.clone()))
        .collect()
}

fn ref_admin_on(dir: &Directory, iam_id: &str, account: Option<&str>) -> bool {
    dir.bindings().any(|b| {
        b.subject_iam_id == iam_id
            && b.role == Role::Admin
            && match (&b.resource, account) {
                (Resource::Global, _) => true,
                (Resource::Account(a), Some(account)) => a == account,
                _ => false,
            }
    })
}

fn has_global_admin(dir: &Directory) -> bool {
    dir.bindings().any(|b| {
        b.role == Role::Admin
            && b.resource == Resource::Global
            && dir.subject(&b.subject_iam_id).is_some()
    })
}

// ---------------------------------------------------------------------------------------------
// Actions.

#[derive(Debug, Clone)]
enum Step {
    /// An API key for identity `owner`.
    CreateKey { owner: usize },
    /// A binding of `role` on `resource` for identity `subject`.
    Grant {
        subject: usize,
        role: usize,
        resource: usize,
    },
    /// Delete identity `target`.
    DeleteIdentity { target: usize },
    /// CreateForServiceAccount for service account `sa`.
    Mint { sa: usize },
    /// Add the caller to the trusted identities of profile `profile`.
    TrustSelf { profile: usize },
    /// A policy of `account` from the caller: `target` 0 and 1 name one resource identity of
    /// that account, 2 all of them (`a/<account>:*`); 3 is `crn:v1:*` and 4 another account's
    /// resource identity (never allowed: tenancy).
    Policy { account: usize, target: usize },
    /// Remove binding number `binding` (of the world's).
    Unbind { binding: usize },
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0usize..8).prop_map(|owner| Step::CreateKey { owner }),
        (0usize..8, 0usize..4, 0usize..16).prop_map(|(subject, role, resource)| Step::Grant {
            subject,
            role,
            resource
        }),
        (0usize..8).prop_map(|target| Step::DeleteIdentity { target }),
        (0usize..6).prop_map(|sa| Step::Mint { sa }),
        (0usize..3).prop_map(|profile| Step::TrustSelf { profile }),
        (0usize..2, 0usize..5).prop_map(|(account, target)| Step::Policy { account, target }),
        (0usize..10).prop_map(|binding| Step::Unbind { binding }),
    ]
}

fn account_of(dir: &Directory, iam_id: &str) -> Option<String> {
    dir.subject(iam_id).map(|s| s.account_id().to_owned())
}

/// What a step would do: the action to authorize, the change to apply, the account it affects
/// (`None` for `*`), and the identity whose credential or token the caller would obtain.
struct Plan {
    entity: Option<Entity>,
    old: Option<Entity>,
    delete: Option<Entity>,
    mint_for: Option<ServiceAccount>,
    affected_account: Option<Option<String>>,
    self_service: bool,
    obtains: Option<String>,
}

fn plan(dir: &Directory, world: &World, caller: &Principal, step: &Step) -> Option<Plan> {
    let identities = world.identities();
    let pick = |i: usize| identities.get(i % identities.len()).cloned();
    let empty = Plan {
        entity: None,
        old: None,
        delete: None,
        mint_for: None,
        affected_account: None,
        self_service: false,
        obtains: None,
    };
    Some(match step {
        Step::CreateKey { owner } => {
            let owner = pick(*owner)?;
            let account = account_of(dir, &owner)?;
            Plan {
                entity: Some(Entity::ApiKey(ApiKey {
                    id: format!("ApiKey-new-{owner}"),
                    name: "new".into(),
                    description: String::new(),
                    owner_iam_id: owner.clone(),
                    account_id: account.clone(),
                    key_hash: KeyHash([9; 32]),
                    created_at: 1,
                })),
                affected_account: Some(Some(account)),
                self_service: owner == caller.iam_id(),
                obtains: Some(owner),
                ..empty
            }
        }
        Step::Grant {
            subject,
            role,
            resource,
        } => {
            let subject = pick(*subject)?;
            dir.subject(&subject)?;
            let resource = resource_choice(world, *resource);
            let account = match &resource {
                Resource::Global => None,
                Resource::Account(a) => Some(a.clone()),
                Resource::ServiceAccount(s) => Some(dir.service_account(s)?.account_id.clone()),
            };
            Plan {
                entity: Some(Entity::Binding(AccessBinding {
                    id: format!("b-new-{subject}-{}", resource.to_text()),
                    subject_iam_id: subject,
                    role: roles()[*role],
                    resource,
                    created_at: 1,
                })),
                affected_account: Some(account),
                ..empty
            }
        }
        Step::DeleteIdentity { target } => {
            let target = pick(*target)?;
            let entity = match dir.subject(&target)? {
                crate::directory::Subject::User(u) => Entity::User(u.clone()),
                crate::directory::Subject::ServiceAccount(s) => Entity::ServiceAccount(s.clone()),
                _ => return None,
            };
            Plan {
                affected_account: Some(account_of(dir, &target)),
                delete: Some(entity),
                ..empty
            }
        }
        Step::Mint { sa } => {
            let sa = dir.service_account(&sa_id(*sa))?.as_ref().clone();
            Plan {
                obtains: Some(sa.iam_id()),
                mint_for: Some(sa),
                ..empty
            }
        }
        Step::TrustSelf { profile } => {
            let old = dir
                .profile(&format!("Profile-p{profile}"))?
                .as_ref()
                .clone();
            let mut new = old.clone();
            new.identities.push(TrustedIdentity {
                kind: if caller.iam_id().starts_with("IBMid-") {
                    TrustedIdentityType::User
                } else {
                    TrustedIdentityType::Serviceid
                },
                identifier: caller.iam_id().to_owned(),
                accounts: Vec::new(),
            });
            Plan {
                affected_account: Some(Some(old.account_id.clone())),
                obtains: Some(old.iam_id()),
                entity: Some(Entity::Profile(new)),
                old: Some(Entity::Profile(old)),
                ..empty
            }
        }
        Step::Policy { account, target } => {
            let target = match target {
                0 | 1 => crn(*account, *target),
                2 => format!(
                    "crn:v1:tessera:public:svc:global:a/{}:*",
                    ACCOUNTS[*account]
                ),
                3 => "crn:v1:*".to_owned(),
                _ => crn(1 - *account, 0),
            };
            Plan {
                entity: Some(Entity::Policy(AuthorizationPolicy {
                    id: format!("Policy-new-{}", caller.iam_id()),
                    account_id: ACCOUNTS[*account].into(),
                    source_iam_id: caller.iam_id().to_owned(),
                    target_crn: target,
                    description: String::new(),
                    created_at: 1,
                })),
                affected_account: Some(Some(ACCOUNTS[*account].into())),
                ..empty
            }
        }
        Step::Unbind { binding } => {
            let binding = dir.bindings().nth(*binding)?.as_ref().clone();
            let account = match &binding.resource {
                Resource::Global => None,
                Resource::Account(a) => Some(a.clone()),
                Resource::ServiceAccount(s) => Some(dir.service_account(s)?.account_id.clone()),
            };
            Plan {
                affected_account: Some(account),
                delete: Some(Entity::Binding(binding)),
                ..empty
            }
        }
    })
}

fn decide(dir: &Directory, caller: &Principal, plan: &Plan) -> bool {
    let action = if let Some(sa) = &plan.mint_for {
        Action::MintToken {
            service_account_id: &sa.id,
            service_account: Some(sa),
        }
    } else if let Some(entity) = &plan.delete {
        Action::Delete(entity)
    } else if let (Some(old), Some(new)) = (&plan.old, &plan.entity) {
        Action::Update { old, new }
    } else if let Some(entity) = &plan.entity {
        Action::Create(entity)
    } else {
        return false;
    };
    authorize(dir, caller, &action).is_ok()
}

/// Applies an allowed plan, with the store's cascades for deletions.
fn apply(dir: &mut Directory, plan: &Plan) {
    if let Some(entity) = &plan.delete {
        let iam_id = match entity {
            Entity::User(u) => Some(u.id.clone()),
            Entity::ServiceAccount(s) => Some(s.iam_id()),
            _ => None,
        };
        if let Some(iam_id) = iam_id {
            let bindings: Vec<String> = dir.bindings_of(&iam_id).map(|b| b.id.clone()).collect();
            for id in bindings {
                dir.apply(Change::Delete(EntityKind::Binding, id));
            }
        }
        dir.apply(Change::Delete(entity.kind(), entity.key().to_owned()));
    } else if let Some(entity) = &plan.entity {
        dir.apply(Change::Upsert(entity.clone()));
    }
}

fn every_identity(dir: &Directory, world: &World) -> Vec<String> {
    let mut all = world.identities();
    all.extend(dir.profiles().map(|p| p.iam_id()));
    all.extend(dir.crn_identities());
    all.retain(|i| dir.subject(i).is_some() || i.starts_with("crn-"));
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, .. ProptestConfig::default() })]

    #[test]
    fn random_worlds_keep_tenancy_and_containment(
        world in world_strategy(),
        steps in prop::collection::vec(
            (prop_oneof![2 => Just(1usize), 2 => Just(2usize), 3 => 0usize..8], step_strategy()),
            1..12,
        ),
    ) {
        let pepper = pepper();
        let mut dir = load(&world);
        for (caller_index, step) in steps {
            let identities = world.identities();
            let caller_id = &identities[caller_index % identities.len()];
            let Ok(caller) = authn::authenticate_api_key(&dir, &pepper, &apikey_of(caller_id)) else {
                continue; // deleted meanwhile
            };
            let Some(plan) = plan(&dir, &world, &caller, &step) else { continue };
            if !decide(&dir, &caller, &plan) {
                continue;
            }
            let caller_before = ref_privileges(&dir, caller.iam_id());
            let before: Vec<(String, Privileges)> = every_identity(&dir, &world)
                .into_iter()
                .map(|i| { let p = ref_privileges(&dir, &i); (i, p) })
                .collect();
            // 1. Tenancy.
            if let Some(account) = &plan.affected_account {
                prop_assert!(
                    plan.self_service || plan.mint_for.is_some()
                        || ref_admin_on(&dir, caller.iam_id(), account.as_deref()),
                    "{step:?} by {} affected account {account:?} without admin there", caller.iam_id()
                );
            }
            // 2a. What the caller obtains is contained in what it held.
            if let Some(target) = &plan.obtains {
                for privilege in ref_privileges(&dir, target) {
                    prop_assert!(
                        ref_covered(&dir, &caller_before, &privilege),
                        "{step:?}: {} obtained {target}, which holds {privilege:?} it lacked",
                        caller.iam_id()
                    );
                }
            }
            apply(&mut dir, &plan);
            // 2b. Nobody gained a privilege the caller did not hold.
            for (identity, old) in &before {
                for privilege in ref_privileges(&dir, identity) {
                    if !old.contains(&privilege) {
                        prop_assert!(
                            ref_covered(&dir, &caller_before, &privilege),
                            "{step:?} by {} gave {identity} {privilege:?}, which the caller lacked",
                            caller.iam_id()
                        );
                    }
                }
            }
            // 3. Somebody can still manage the installation.
            prop_assert!(has_global_admin(&dir), "{step:?} removed the last global administrator");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lineage.

/// The links a test chain can remove, and how.
#[derive(Debug, Clone, Copy)]
enum Removal {
    DeleteApiKey,
    RevokeRootToken,
    CutOffRoot,
    DeleteRoot,
    UntrustRoot,
    DeleteProfile,
    RevokeProfileToken,
    CutOffProfile,
    DeleteMintedServiceAccount,
    RevokeMintedToken,
    DeletePolicy,
}

const REMOVALS: [Removal; 11] = [
    Removal::DeleteApiKey,
    Removal::RevokeRootToken,
    Removal::CutOffRoot,
    Removal::DeleteRoot,
    Removal::UntrustRoot,
    Removal::DeleteProfile,
    Removal::RevokeProfileToken,
    Removal::CutOffProfile,
    Removal::DeleteMintedServiceAccount,
    Removal::RevokeMintedToken,
    Removal::DeletePolicy,
];

/// Derives tokens level by level: [0] the root service account's token from its API key, [1]
/// the profile it assumed, [2] a token the profile minted for another service account, [3] the
/// resource identity that service account obtained by policy. Each level descends from all
/// before it, so removing the link at level `n` must kill levels `n..`.
fn chain(dir: &Directory, signer: &SigningKey, jwks: &Jwks) -> Vec<(Principal, String)> {
    let rng = SystemRandom::new();
    let mint = |principal: &Principal| -> String {
        let params = MintParams {
            issuer: ISSUER,
            now: 1000,
            lifetime: 3600,
            client_id: DEFAULT_CLIENT_ID,
            scope: "ibm openid",
            grant_type: "test",
        };
        token::mint(
            principal,
            &params,
            crate::ids::new_token_id(&rng).unwrap(),
            principal.lineage().clone(),
            signer,
            &rng,
        )
        .unwrap()
        .token
    };
    let present = |token: &str| {
        authn::authenticate_token(token, jwks, dir, ISSUER, 1000)
            .unwrap()
            .0
    };
    let root =
        authn::authenticate_api_key(dir, &pepper(), &apikey_of("iam-ServiceId-root")).unwrap();
    let root_token = mint(&root);
    let profile = dir.profile("Profile-chain").unwrap().clone();
    let assumed = authn::assume_profile(dir, &present(&root_token), &profile).unwrap();
    let assumed_token = mint(&assumed);
    let minted =
        authn::service_account_token(dir, &present(&assumed_token), "ServiceId-minted").unwrap();
    let minted_token = mint(&minted);
    let resource = authn::resource_identity(dir, &present(&minted_token), &crn(0, 0)).unwrap();
    let resource_token = mint(&resource);
    vec![
        (root, root_token),
        (assumed, assumed_token),
        (minted, minted_token),
        (resource, resource_token),
    ]
}

fn chain_world() -> Directory {
    let account = ACCOUNTS[0];
    let mut dir = Directory::new();
    let mut put = |e: Entity| dir.apply(Change::Upsert(e));
    put(Entity::Account(Account {
        id: account.into(),
        name: "a".into(),
        enterprise_id: None,
        mfa: Default::default(),
        created_at: 0,
    }));
    for id in ["ServiceId-root", "ServiceId-minted"] {
        put(Entity::ServiceAccount(ServiceAccount {
            id: id.into(),
            account_id: account.into(),
            name: id.into(),
            description: String::new(),
            created_at: 0,
        }));
    }
    put(Entity::ApiKey(ApiKey {
        id: "ApiKey-root".into(),
        name: "k".into(),
        description: String::new(),
        owner_iam_id: "iam-ServiceId-root".into(),
        account_id: account.into(),
        key_hash: pepper().hash(SecretPurpose::ApiKey, &apikey_of("iam-ServiceId-root")),
        created_at: 0,
    }));
    put(Entity::Profile(TrustedProfile {
        id: "Profile-chain".into(),
        account_id: account.into(),
        name: "chain".into(),
        description: String::new(),
        identities: vec![TrustedIdentity {
            kind: TrustedIdentityType::Serviceid,
            identifier: "iam-ServiceId-root".into(),
            accounts: Vec::new(),
        }],
        links: Vec::new(),
        rules: Vec::new(),
        created_at: 0,
    }));
    put(Entity::Binding(AccessBinding {
        id: "b-creator".into(),
        subject_iam_id: "iam-Profile-chain".into(),
        role: Role::TokenCreator,
        resource: Resource::ServiceAccount("ServiceId-minted".into()),
        created_at: 0,
    }));
    put(Entity::Policy(AuthorizationPolicy {
        id: "Policy-chain".into(),
        account_id: account.into(),
        source_iam_id: "iam-ServiceId-minted".into(),
        target_crn: crn(0, 0),
        description: String::new(),
        created_at: 0,
    }));
    dir
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn removing_any_link_kills_every_descendant(which in 0usize..REMOVALS.len()) {
        let rng = SystemRandom::new();
        let der = generate_pkcs8(Algorithm::Es256, &rng).unwrap();
        let signer = SigningKey::from_pkcs8("k1", Algorithm::Es256, &der).unwrap();
        let mut jwks = Jwks::default();
        jwks.insert(signer.verifying_key().unwrap());
        let mut dir = chain_world();
        let tokens = chain(&dir, &signer, &jwks);
        let jti = |level: usize| {
            authn::authenticate_token(&tokens[level].1, &jwks, &dir, ISSUER, 1000)
                .unwrap()
                .0
                .token()
                .unwrap()
                .jti
                .clone()
        };
        let removal = REMOVALS[which];
        let cut_off = |iam_id: &str| Entity::Cutoff(SubjectCutoff { iam_id: iam_id.into(), not_before: 1001 });
        let revoke = |jti: String| Entity::Revocation(Revocation { jti, expires_at: 10_000 });
        // The first level that must die.
        let first_dead = match removal {
            Removal::DeleteApiKey => { dir.apply(Change::Delete(EntityKind::ApiKey, "ApiKey-root".into())); 0 }
            Removal::RevokeRootToken => { let j = jti(0); dir.apply(Change::Upsert(revoke(j))); 0 }
            Removal::CutOffRoot => { dir.apply(Change::Upsert(cut_off("iam-ServiceId-root"))); 0 }
            Removal::DeleteRoot => { dir.apply(Change::Delete(EntityKind::ServiceAccount, "ServiceId-root".into())); 0 }
            Removal::UntrustRoot => {
                let mut profile = dir.profile("Profile-chain").unwrap().as_ref().clone();
                profile.identities.clear();
                dir.apply(Change::Upsert(Entity::Profile(profile)));
                1
            }
            Removal::DeleteProfile => { dir.apply(Change::Delete(EntityKind::Profile, "Profile-chain".into())); 1 }
            Removal::RevokeProfileToken => { let j = jti(1); dir.apply(Change::Upsert(revoke(j))); 1 }
            Removal::CutOffProfile => { dir.apply(Change::Upsert(cut_off("iam-Profile-chain"))); 1 }
            Removal::DeleteMintedServiceAccount => { dir.apply(Change::Delete(EntityKind::ServiceAccount, "ServiceId-minted".into())); 2 }
            Removal::RevokeMintedToken => { let j = jti(2); dir.apply(Change::Upsert(revoke(j))); 2 }
            Removal::DeletePolicy => { dir.apply(Change::Delete(EntityKind::Policy, "Policy-chain".into())); 3 }
        };
        for (level, (principal, token)) in tokens.iter().enumerate() {
            let alive = authn::authenticate_token(token, &jwks, &dir, ISSUER, 1000).is_ok();
            prop_assert_eq!(
                alive,
                level < first_dead,
                "{:?}: token of level {} ({}) alive={}, lineage {:?}",
                removal, level, principal.iam_id(), alive, principal.lineage()
            );
        }
        // Lineage links are what the levels say they are.
        prop_assert!(tokens[3].0.lineage().links().contains(&Link::ApiKey("ApiKey-root".into())));
        prop_assert!(tokens[3].0.lineage().links().contains(&Link::Policy("Policy-chain".into())));
    }
}
