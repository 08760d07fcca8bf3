//! The backend-agnostic test suite of [`Store`]: every function takes a freshly migrated, empty
//! store, so each backend (SQLite and PostgreSQL) proves the same contract by calling these from
//! its own `#[tokio::test]`s. The concurrency checks take an `Arc<dyn Store>` so that they can
//! spread the work over tasks.

// Test code: a failed expectation should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::{AuditEvent, ListFilter, Store, StoreError};

/// The `#[tokio::test]`s of the suite for one backend: one for each function, each run by
/// `$with_store(test_name, body)`, which hands `body` a fresh, migrated store of its own and
/// cleans up afterwards.
macro_rules! backend_tests {
    ($with_store:ident) => {
        $crate::suite::backend_tests!(@each $with_store:
            crud_every_kind,
            duplicates_are_rejected,
            missing_references_are_not_found,
            cascade_delete_of_service_account,
            account_delete_conflicts_while_not_empty,
            changes_since_dedupes_and_reports_deletes,
            load_all_skips_expired_revocations,
            load_each_reads_every_page_in_key_order,
            server_secret_first_writer_wins,
            audit_rows_written,
            audit_filters_and_pages,
            list_paginates_and_filters,
            prune_removes_expired_and_old_changes,
            migrate_twice_is_a_no_op,
            ping_answers,
            create_all_is_all_or_nothing,
            leases_are_exclusive_until_expiry,
            server_secrets_are_listed,
            schema_version_is_current,
            yandex_credentials,
            profiles_issuers_policies,
        );
        $crate::suite::backend_tests!(@concurrent $with_store:
            concurrent_creates_are_seen_in_order,
            concurrent_leases_have_one_winner,
        );
    };
    (@each $with_store:ident: $($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            $with_store(stringify!($name), |store| async move {
                $crate::suite::$name(&store).await;
            })
            .await;
        }
    )*};
    // The concurrency checks spread their work over the tasks of a multi-threaded runtime.
    (@concurrent $with_store:ident: $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            $with_store(stringify!($name), |store| async move {
                $crate::suite::$name(std::sync::Arc::new(store)).await;
            })
            .await;
        }
    )*};
}
pub(crate) use backend_tests;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tessera_core::directory::{Change, Entity, EntityKind};
use tessera_core::model::{
    AccessBinding, Account, Algorithm, ApiKey, AuthorizationPolicy, AuthorizedKey,
    AuthorizedKeyAlgorithm, ClaimCondition, ClaimOperator, ClaimRule, ComputeResourceLink,
    Enterprise, JwksSource, KeyHash, KeyState, KeyUse, MfaRequirement, OAuthClient, OAuthToken,
    Resource, Revocation, Role, ServiceAccount, SigningKeyRecord, SubjectCutoff, TotpEnrollment,
    TrustedIdentity, TrustedIdentityType, TrustedIssuer, TrustedProfile, User,
};

pub const NOW: i64 = 1_800_000_000;
pub const ENTERPRISE: &str = "e0000000000000000000000000000001";
pub const ACCOUNT_A: &str = "a0000000000000000000000000000001";
pub const ACCOUNT_B: &str = "b0000000000000000000000000000002";

pub fn audit(action: &str) -> AuditEvent {
    AuditEvent {
        at: NOW,
        actor: "system".into(),
        action: action.into(),
        request_id: "req-test".into(),
        detail: String::new(),
        account_id: None,
    }
}

pub fn enterprise(id: &str) -> Entity {
    Entity::Enterprise(Enterprise {
        id: id.into(),
        name: format!("enterprise {id}"),
        created_at: NOW,
    })
}

pub fn account(id: &str, enterprise_id: Option<&str>) -> Entity {
    Entity::Account(Account {
        id: id.into(),
        name: format!("account {id}"),
        enterprise_id: enterprise_id.map(Into::into),
        mfa: Default::default(),
        created_at: NOW,
    })
}

pub fn user(id: &str, account_id: &str, email: &str) -> Entity {
    Entity::User(User {
        id: id.into(),
        account_id: account_id.into(),
        name: format!("user {id}"),
        email: email.into(),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        federated: false,
        created_at: NOW,
    })
}

pub fn service_account(id: &str, account_id: &str) -> Entity {
    Entity::ServiceAccount(ServiceAccount {
        id: id.into(),
        account_id: account_id.into(),
        name: format!("service account {id}"),
        description: "for tests".into(),
        created_at: NOW,
    })
}

pub fn api_key(id: &str, owner_iam_id: &str, account_id: &str, hash: u8) -> Entity {
    Entity::ApiKey(ApiKey {
        id: id.into(),
        name: format!("key {id}"),
        description: String::new(),
        owner_iam_id: owner_iam_id.into(),
        account_id: account_id.into(),
        key_hash: KeyHash([hash; 32]),
        created_at: NOW,
    })
}

/// An authorized key; the "public key" is a few marker bytes (the store does not parse it).
pub fn authorized_key(id: &str, service_account_id: &str, account_id: &str) -> Entity {
    Entity::AuthorizedKey(AuthorizedKey {
        id: id.into(),
        service_account_id: service_account_id.into(),
        account_id: account_id.into(),
        description: format!("authorized key {id}"),
        algorithm: AuthorizedKeyAlgorithm::Rsa2048,
        public_key_der: vec![0x30, 0x82, 0x01, 0x22, 0x00, 0xff],
        created_at: NOW,
    })
}

pub fn oauth_token(id: &str, user_id: &str, account_id: &str, hash: u8) -> Entity {
    Entity::OAuthToken(OAuthToken {
        id: id.into(),
        user_id: user_id.into(),
        account_id: account_id.into(),
        description: String::new(),
        token_hash: KeyHash([hash; 32]),
        created_at: NOW,
    })
}

pub fn client(id: &str, account_id: Option<&str>, secret: Option<u8>) -> Entity {
    Entity::Client(OAuthClient {
        key: OAuthClient::key_for(account_id, id),
        id: id.into(),
        account_id: account_id.map(Into::into),
        name: format!("client {id}"),
        secret_hash: secret.map(|b| KeyHash([b; 32])),
        created_at: NOW,
    })
}

pub fn totp(user_id: &str, account_id: &str, confirmed: bool) -> Entity {
    Entity::Totp(TotpEnrollment {
        user_id: user_id.into(),
        account_id: account_id.into(),
        sealed_secret: vec![1, 2, 3, 4],
        confirmed,
        pending_secret: confirmed.then(|| vec![5, 6]),
        created_at: NOW,
    })
}

/// A profile trusting service ID `ServiceId-s1`, with one Kubernetes link and one claim rule.
pub fn profile(id: &str, account_id: &str, name: &str) -> Entity {
    Entity::Profile(TrustedProfile {
        id: id.into(),
        account_id: account_id.into(),
        name: name.into(),
        description: "for tests".into(),
        identities: vec![TrustedIdentity {
            kind: TrustedIdentityType::Serviceid,
            identifier: "iam-ServiceId-s1".into(),
            accounts: vec![],
        }],
        links: vec![ComputeResourceLink {
            id: "Link-1".into(),
            cr_type: "IKS_SA".into(),
            crn: "crn:v1:bluemix:public:containers-kubernetes:us-south:a/x::cluster:c1".into(),
            namespace: Some("prod".into()),
            name: Some("app".into()),
            component_type: None,
            component_name: None,
        }],
        rules: vec![ClaimRule {
            id: "ClaimRule-1".into(),
            name: "prod pods".into(),
            rule_type: "Profile-CR".into(),
            cr_type: "IKS_SA".into(),
            conditions: vec![ClaimCondition {
                claim: "namespace".into(),
                operator: ClaimOperator::In,
                value: "[\"prod\",\"stage\"]".into(),
            }],
        }],
        created_at: NOW,
    })
}

pub fn issuer(id: &str, account_id: &str, url: &str) -> Entity {
    Entity::Issuer(TrustedIssuer {
        id: id.into(),
        account_id: account_id.into(),
        name: format!("issuer {id}"),
        issuer_url: url.into(),
        jwks: JwksSource::Inline(serde_json::json!({"keys": []})),
        audiences: vec!["iam".into()],
        cr_type: "IKS_SA".into(),
        crn: format!("crn:v1:tessera:public:containers-kubernetes::a/{account_id}::cluster:{id}"),
        claim_mapping: [("pod".to_owned(), "kubernetes.io.pod.name".to_owned())].into(),
        created_at: NOW,
    })
}

pub fn policy(id: &str, account_id: &str, source: &str, target: &str) -> Entity {
    Entity::Policy(AuthorizationPolicy {
        id: id.into(),
        account_id: account_id.into(),
        source_iam_id: source.into(),
        target_crn: target.into(),
        description: String::new(),
        created_at: NOW,
    })
}

pub fn binding(id: &str, subject_iam_id: &str, role: Role, resource: Resource) -> Entity {
    Entity::Binding(AccessBinding {
        id: id.into(),
        subject_iam_id: subject_iam_id.into(),
        role,
        resource,
        created_at: NOW,
    })
}

pub fn revocation(jti: &str, expires_at: i64) -> Entity {
    Entity::Revocation(Revocation {
        jti: jti.into(),
        expires_at,
    })
}

pub fn cutoff(iam_id: &str, not_before: i64) -> Entity {
    Entity::Cutoff(SubjectCutoff {
        iam_id: iam_id.into(),
        not_before,
    })
}

pub fn signing_key(kid: &str, state: KeyState, retired_at: Option<i64>) -> Entity {
    Entity::SigningKey(SigningKeyRecord {
        kid: kid.into(),
        algorithm: Algorithm::EdDsa,
        key_use: KeyUse::YandexIam,
        state,
        sealed_private_key: vec![1, 2, 3, 4, 5],
        created_at: NOW,
        retired_at,
    })
}

/// Field-by-field equality; `Entity` has no `PartialEq` of its own.
pub fn same(a: &Entity, b: &Entity) -> bool {
    match (a, b) {
        (Entity::Enterprise(x), Entity::Enterprise(y)) => x == y,
        (Entity::Account(x), Entity::Account(y)) => x == y,
        (Entity::User(x), Entity::User(y)) => x == y,
        (Entity::ServiceAccount(x), Entity::ServiceAccount(y)) => x == y,
        (Entity::ApiKey(x), Entity::ApiKey(y)) => x == y,
        (Entity::Client(x), Entity::Client(y)) => x == y,
        (Entity::Binding(x), Entity::Binding(y)) => x == y,
        (Entity::Revocation(x), Entity::Revocation(y)) => x == y,
        (Entity::Cutoff(x), Entity::Cutoff(y)) => x == y,
        (Entity::SigningKey(x), Entity::SigningKey(y)) => x == y,
        (Entity::AuthorizedKey(x), Entity::AuthorizedKey(y)) => x == y,
        (Entity::OAuthToken(x), Entity::OAuthToken(y)) => x == y,
        (Entity::Totp(x), Entity::Totp(y)) => x == y,
        (Entity::Profile(x), Entity::Profile(y)) => x == y,
        (Entity::Issuer(x), Entity::Issuer(y)) => x == y,
        (Entity::Policy(x), Entity::Policy(y)) => x == y,
        _ => false,
    }
}

async fn assert_stored(store: &dyn Store, expected: &Entity) {
    let found = store.find(expected.kind(), expected.key()).await.unwrap();
    match found {
        Some(found) => assert!(
            same(&found, expected),
            "stored {found:?}, expected {expected:?}"
        ),
        None => panic!("{:?} {} not found", expected.kind(), expected.key()),
    }
}

async fn assert_absent(store: &dyn Store, kind: EntityKind, key: &str) {
    let found = store.find(kind, key).await.unwrap();
    assert!(
        found.is_none(),
        "{kind:?} {key} should be gone, found {found:?}"
    );
}

fn keys(entities: &[Entity]) -> Vec<&str> {
    entities.iter().map(Entity::key).collect()
}

async fn create_all(store: &dyn Store, entities: &[Entity]) -> i64 {
    let mut seq = 0;
    for entity in entities {
        seq = store
            .create(entity, &audit("test.create"))
            .await
            .unwrap_or_else(|e| panic!("creating {entity:?}: {e}"));
    }
    seq
}

/// The newest `limit` audit records.
async fn newest_audit(store: &dyn Store, limit: u32) -> Vec<crate::AuditRecord> {
    store
        .list_audit(&crate::AuditFilter::newest(limit))
        .await
        .unwrap()
}

/// The changes of `batch`, every one of which must be a delete, in feed order.
fn deletes(batch: crate::ChangeBatch) -> Vec<(EntityKind, String)> {
    batch
        .changes
        .into_iter()
        .map(|change| match change {
            Change::Delete(kind, key) => (kind, key),
            Change::Upsert(entity) => panic!("unexpected upsert {entity:?}"),
        })
        .collect()
}

async fn current_seq(store: &dyn Store) -> i64 {
    store.load_all(NOW).await.unwrap().1
}

fn list_filter() -> ListFilter {
    ListFilter::default()
}

/// Create, find, list, put and delete one object of every kind.
pub async fn crud_every_kind(store: &dyn Store) {
    let sa_iam = "iam-ServiceId-s1";
    let fixtures = vec![
        enterprise(ENTERPRISE),
        account(ACCOUNT_A, Some(ENTERPRISE)),
        account(ACCOUNT_B, None),
        user("IBMid-U1", ACCOUNT_A, "u1@example.com"),
        service_account("ServiceId-s1", ACCOUNT_A),
        api_key("ApiKey-1", sa_iam, ACCOUNT_A, 1),
        api_key("ApiKey-2", "IBMid-U1", ACCOUNT_A, 2),
        authorized_key("aje00000000000000001", "ServiceId-s1", ACCOUNT_A),
        oauth_token("OAuthToken-1", "IBMid-U1", ACCOUNT_A, 3),
        client("bx", Some(ACCOUNT_A), Some(9)),
        client("default", None, None),
        binding(
            "AccessBinding-1",
            "IBMid-U1",
            Role::Admin,
            Resource::Account(ACCOUNT_A.into()),
        ),
        binding(
            "AccessBinding-2",
            "IBMid-U1",
            Role::TokenCreator,
            Resource::ServiceAccount("ServiceId-s1".into()),
        ),
        binding("AccessBinding-3", sa_iam, Role::Viewer, Resource::Global),
        revocation("jti-1", NOW + 3600),
        cutoff("IBMid-U1", NOW - 10),
        signing_key("20270115080000-abcdef", KeyState::Active, None),
    ];
    let mut last = 0;
    for entity in &fixtures {
        let seq = store.create(entity, &audit("test.create")).await.unwrap();
        assert!(seq > last, "seq must grow: {seq} after {last}");
        last = seq;
        assert_stored(store, entity).await;
    }

    for kind in EntityKind::ALL {
        let listed = store.list(kind, &list_filter()).await.unwrap();
        let mut expected: Vec<&str> = fixtures
            .iter()
            .filter(|e| e.kind() == kind)
            .map(Entity::key)
            .collect();
        expected.sort_unstable();
        assert_eq!(keys(&listed), expected, "list of {kind:?}");
    }

    // `put` rewrites in place: a renamed user who lost their password, a retired key, a moved
    // cut-off, and an upsert of a key that did not exist yet.
    let Entity::User(mut renamed) = fixtures[3].clone() else {
        unreachable!()
    };
    renamed.name = "renamed".into();
    renamed.password_hash = None;
    renamed.federated = true;
    let renamed = Entity::User(renamed);
    let seq = store.put(&renamed, &audit("user.update")).await.unwrap();
    assert!(seq > last);
    assert_stored(store, &renamed).await;
    let retired = signing_key("20270115080000-abcdef", KeyState::Retired, Some(NOW + 60));
    store
        .put(&retired, &audit("signing_key.retire"))
        .await
        .unwrap();
    assert_stored(store, &retired).await;
    let moved = cutoff("IBMid-U1", NOW + 5);
    store.put(&moved, &audit("token.revoke_all")).await.unwrap();
    assert_stored(store, &moved).await;
    let fresh = cutoff("iam-ServiceId-s1", NOW);
    store.put(&fresh, &audit("token.revoke_all")).await.unwrap();
    assert_stored(store, &fresh).await;
    store
        .delete(EntityKind::Cutoff, fresh.key(), &audit("test.delete"))
        .await
        .unwrap();

    for entity in fixtures.iter().rev() {
        let (kind, key) = (entity.kind(), entity.key());
        store
            .delete(kind, key, &audit("test.delete"))
            .await
            .unwrap();
        assert_absent(store, kind, key).await;
        let again = store.delete(kind, key, &audit("test.delete")).await;
        assert!(
            matches!(again, Err(StoreError::NotFound(_))),
            "second delete: {again:?}"
        );
    }
    for kind in EntityKind::ALL {
        assert!(
            store.list(kind, &list_filter()).await.unwrap().is_empty(),
            "{kind:?} left"
        );
    }
}

/// Keys and unique fields are unique; a rejected write leaves no trace in the feed.
pub async fn duplicates_are_rejected(store: &dyn Store) {
    let originals = vec![
        account(ACCOUNT_A, None),
        account(ACCOUNT_B, None),
        user("IBMid-U1", ACCOUNT_A, "same@example.com"),
        service_account("ServiceId-s1", ACCOUNT_A),
        api_key("ApiKey-1", "iam-ServiceId-s1", ACCOUNT_A, 1),
        client("bx", Some(ACCOUNT_A), Some(7)),
        // Client ids are unique per account: the same id globally or in another account is
        // another client.
        client("bx", None, None),
        client("bx", Some(ACCOUNT_B), Some(8)),
        binding(
            "AccessBinding-1",
            "IBMid-U1",
            Role::Viewer,
            Resource::Global,
        ),
        revocation("jti-1", NOW + 10),
        signing_key("kid-1", KeyState::Next, None),
    ];
    let before = create_all(store, &originals).await;
    let audits_before = newest_audit(store, 1000).await.len();

    for entity in &originals {
        let again = store.create(entity, &audit("test.create")).await;
        match again {
            Err(StoreError::AlreadyExists(what)) => assert!(what.contains(entity.key()), "{what}"),
            other => panic!("duplicate {entity:?}: {other:?}"),
        }
    }
    let client_again = store
        .create(
            &client("bx", Some(ACCOUNT_A), Some(9)),
            &audit("client.create"),
        )
        .await;
    assert_eq!(
        client_again.unwrap_err().to_string(),
        format!("client {ACCOUNT_A}/bx already exists")
    );

    let same_email = store
        .create(
            &user("IBMid-U2", ACCOUNT_A, "same@example.com"),
            &audit("user.create"),
        )
        .await;
    assert_eq!(
        same_email.unwrap_err().to_string(),
        format!("user with e-mail same@example.com in account {ACCOUNT_A} already exists")
    );
    // The e-mail is unique per account only.
    store
        .create(
            &user("IBMid-U3", ACCOUNT_B, "same@example.com"),
            &audit("user.create"),
        )
        .await
        .unwrap();

    let same_hash = store
        .create(
            &api_key("ApiKey-2", "IBMid-U1", ACCOUNT_A, 1),
            &audit("api_key.create"),
        )
        .await;
    match same_hash {
        Err(StoreError::AlreadyExists(what)) => assert!(!what.contains("0101"), "{what}"),
        other => panic!("same key hash: {other:?}"),
    }

    let same_binding = store
        .create(
            &binding(
                "AccessBinding-2",
                "IBMid-U1",
                Role::Viewer,
                Resource::Global,
            ),
            &audit("access_binding.create"),
        )
        .await;
    assert!(
        matches!(same_binding, Err(StoreError::AlreadyExists(_))),
        "{same_binding:?}"
    );

    // Only the one successful create above reached the feed and the audit log.
    let batch = store.changes_since(before, 100).await.unwrap();
    assert_eq!(batch.changes.len(), 1);
    assert_eq!(batch.seq, before + 1);
    assert_eq!(newest_audit(store, 1000).await.len(), audits_before + 1);
}

/// References are checked and the error names what is missing.
pub async fn missing_references_are_not_found(store: &dyn Store) {
    create_all(
        store,
        &[
            account(ACCOUNT_A, None),
            account(ACCOUNT_B, None),
            user("IBMid-U1", ACCOUNT_A, "u1@example.com"),
            service_account("ServiceId-s1", ACCOUNT_B),
        ],
    )
    .await;
    let missing = "c0000000000000000000000000000003";
    let not_found = |result: crate::Result<i64>, expected: &str| match result {
        Err(StoreError::NotFound(what)) => assert_eq!(what, expected),
        other => panic!("expected NotFound({expected}), got {other:?}"),
    };

    let a = audit("test.create");
    not_found(
        store
            .create(&user("IBMid-U2", missing, "x@example.com"), &a)
            .await,
        &format!("account {missing}"),
    );
    not_found(
        store
            .create(&service_account("ServiceId-s2", missing), &a)
            .await,
        &format!("account {missing}"),
    );
    not_found(
        store.create(&account(missing, Some(ENTERPRISE)), &a).await,
        &format!("enterprise {ENTERPRISE}"),
    );
    not_found(
        store.create(&client("bx", Some(missing), None), &a).await,
        &format!("account {missing}"),
    );
    not_found(
        store
            .create(&api_key("ApiKey-1", "iam-ServiceId-nope", ACCOUNT_A, 1), &a)
            .await,
        "owner iam-ServiceId-nope",
    );
    not_found(
        store
            .create(&api_key("ApiKey-1", "IBMid-nope", ACCOUNT_A, 1), &a)
            .await,
        "owner IBMid-nope",
    );
    not_found(
        store
            .create(&api_key("ApiKey-1", "IBMid-U1", missing, 1), &a)
            .await,
        &format!("account {missing}"),
    );
    // An owner in another account than the key claims.
    let wrong_account = store
        .create(&api_key("ApiKey-1", "iam-ServiceId-s1", ACCOUNT_A, 1), &a)
        .await;
    assert!(
        matches!(wrong_account, Err(StoreError::Conflict(_))),
        "{wrong_account:?}"
    );

    not_found(
        store
            .create(
                &binding(
                    "AccessBinding-1",
                    "IBMid-nope",
                    Role::Admin,
                    Resource::Global,
                ),
                &a,
            )
            .await,
        "subject IBMid-nope",
    );
    not_found(
        store
            .create(
                &binding(
                    "AccessBinding-1",
                    "IBMid-U1",
                    Role::Admin,
                    Resource::Account(missing.into()),
                ),
                &a,
            )
            .await,
        &format!("account {missing}"),
    );
    not_found(
        store
            .create(
                &binding(
                    "AccessBinding-1",
                    "IBMid-U1",
                    Role::ServiceAccountUser,
                    Resource::ServiceAccount("ServiceId-nope".into()),
                ),
                &a,
            )
            .await,
        "service account ServiceId-nope",
    );
    // Subject and resource in different accounts is the store's business no more than
    // authorization is; the global resource needs no referent.
    store
        .create(
            &binding(
                "AccessBinding-1",
                "IBMid-U1",
                Role::TokenCreator,
                Resource::ServiceAccount("ServiceId-s1".into()),
            ),
            &a,
        )
        .await
        .unwrap();
    store
        .create(
            &binding(
                "AccessBinding-2",
                "iam-ServiceId-s1",
                Role::Viewer,
                Resource::Global,
            ),
            &a,
        )
        .await
        .unwrap();

    let gone = store
        .delete(EntityKind::ServiceAccount, "ServiceId-nope", &audit("x"))
        .await;
    assert_eq!(
        gone.unwrap_err().to_string(),
        "service account ServiceId-nope not found"
    );
}

/// Deleting a service account takes its keys and bindings along, each with a Delete change.
pub async fn cascade_delete_of_service_account(store: &dyn Store) {
    create_all(
        store,
        &[
            account(ACCOUNT_A, None),
            user("IBMid-U1", ACCOUNT_A, "u1@example.com"),
            service_account("ServiceId-s1", ACCOUNT_A),
            service_account("ServiceId-s2", ACCOUNT_A),
            api_key("ApiKey-1", "iam-ServiceId-s1", ACCOUNT_A, 1),
            api_key("ApiKey-2", "iam-ServiceId-s1", ACCOUNT_A, 2),
            api_key("ApiKey-3", "iam-ServiceId-s2", ACCOUNT_A, 3),
            api_key("ApiKey-4", "IBMid-U1", ACCOUNT_A, 4),
            binding(
                "AccessBinding-1",
                "iam-ServiceId-s1",
                Role::Viewer,
                Resource::Global,
            ),
            binding(
                "AccessBinding-2",
                "IBMid-U1",
                Role::TokenCreator,
                Resource::ServiceAccount("ServiceId-s1".into()),
            ),
            binding(
                "AccessBinding-3",
                "IBMid-U1",
                Role::TokenCreator,
                Resource::ServiceAccount("ServiceId-s2".into()),
            ),
        ],
    )
    .await;
    let before = current_seq(store).await;

    let seq = store
        .delete(
            EntityKind::ServiceAccount,
            "ServiceId-s1",
            &audit("service_account.delete"),
        )
        .await
        .unwrap();
    assert_eq!(seq, before + 5, "one change per deleted row");
    for (kind, key) in [
        (EntityKind::ServiceAccount, "ServiceId-s1"),
        (EntityKind::ApiKey, "ApiKey-1"),
        (EntityKind::ApiKey, "ApiKey-2"),
        (EntityKind::Binding, "AccessBinding-1"),
        (EntityKind::Binding, "AccessBinding-2"),
    ] {
        assert_absent(store, kind, key).await;
    }
    for (kind, key) in [
        (EntityKind::ServiceAccount, "ServiceId-s2"),
        (EntityKind::ApiKey, "ApiKey-3"),
        (EntityKind::ApiKey, "ApiKey-4"),
        (EntityKind::Binding, "AccessBinding-3"),
    ] {
        assert!(
            store.find(kind, key).await.unwrap().is_some(),
            "{kind:?} {key} kept"
        );
    }

    let batch = store.changes_since(before, 100).await.unwrap();
    assert_eq!(batch.seq, seq);
    let mut deleted = deletes(batch);
    // The main object comes last, after what depended on it.
    assert_eq!(
        deleted.pop(),
        Some((EntityKind::ServiceAccount, "ServiceId-s1".to_owned()))
    );
    deleted.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        deleted,
        vec![
            (EntityKind::Binding, "AccessBinding-1".to_owned()),
            (EntityKind::Binding, "AccessBinding-2".to_owned()),
            (EntityKind::ApiKey, "ApiKey-1".to_owned()),
            (EntityKind::ApiKey, "ApiKey-2".to_owned()),
        ]
    );

    // A user takes its own keys and its bindings as subject along too.
    store
        .delete(EntityKind::User, "IBMid-U1", &audit("user.delete"))
        .await
        .unwrap();
    assert_absent(store, EntityKind::ApiKey, "ApiKey-4").await;
    assert_absent(store, EntityKind::Binding, "AccessBinding-3").await;
    assert!(store
        .find(EntityKind::ApiKey, "ApiKey-3")
        .await
        .unwrap()
        .is_some());
}

/// Accounts and enterprises with members cannot be deleted; empty ones take their bindings.
pub async fn account_delete_conflicts_while_not_empty(store: &dyn Store) {
    create_all(
        store,
        &[
            enterprise(ENTERPRISE),
            account(ACCOUNT_A, Some(ENTERPRISE)),
            account(ACCOUNT_B, None),
            user("IBMid-U1", ACCOUNT_A, "u1@example.com"),
            user("IBMid-V1", ACCOUNT_B, "v1@example.com"),
            client("bx", Some(ACCOUNT_A), Some(1)),
            binding(
                "AccessBinding-1",
                "IBMid-V1",
                Role::Viewer,
                Resource::Account(ACCOUNT_A.into()),
            ),
        ],
    )
    .await;
    let a = audit("account.delete");
    let conflict = store.delete(EntityKind::Account, ACCOUNT_A, &a).await;
    assert_eq!(
        conflict.unwrap_err().to_string(),
        format!(
            "account {ACCOUNT_A} still has users, service accounts, clients, trusted profiles, \
             trusted issuers or authorization policies; delete them first"
        )
    );
    let conflict = store.delete(EntityKind::Enterprise, ENTERPRISE, &a).await;
    assert!(
        matches!(conflict, Err(StoreError::Conflict(_))),
        "{conflict:?}"
    );

    store
        .delete(EntityKind::User, "IBMid-U1", &a)
        .await
        .unwrap();
    // The client alone still holds the account.
    let conflict = store.delete(EntityKind::Account, ACCOUNT_A, &a).await;
    assert!(
        matches!(conflict, Err(StoreError::Conflict(_))),
        "{conflict:?}"
    );
    store
        .delete(EntityKind::Client, &format!("{ACCOUNT_A}/bx"), &a)
        .await
        .unwrap();

    let before = current_seq(store).await;
    let seq = store
        .delete(EntityKind::Account, ACCOUNT_A, &a)
        .await
        .unwrap();
    assert_eq!(seq, before + 2);
    assert_absent(store, EntityKind::Account, ACCOUNT_A).await;
    assert_absent(store, EntityKind::Binding, "AccessBinding-1").await;
    let batch = store.changes_since(before, 100).await.unwrap();
    assert!(matches!(
        &batch.changes[..],
        [Change::Delete(EntityKind::Binding, b), Change::Delete(EntityKind::Account, acc)]
            if b == "AccessBinding-1" && acc == ACCOUNT_A
    ));
    store
        .delete(EntityKind::Enterprise, ENTERPRISE, &a)
        .await
        .unwrap();
}

/// The feed gives each changed key once, in its current state, and reports deletions.
pub async fn changes_since_dedupes_and_reports_deletes(store: &dyn Store) {
    let start = current_seq(store).await;
    let a = audit("test");
    let s1 = store.create(&account(ACCOUNT_A, None), &a).await.unwrap();
    let s2 = store.put(&cutoff("IBMid-X", 1), &a).await.unwrap();
    let s3 = store.put(&cutoff("IBMid-X", 2), &a).await.unwrap();
    let s4 = store
        .create(&revocation("jti-1", NOW + 60), &a)
        .await
        .unwrap();
    let s5 = store
        .delete(EntityKind::Revocation, "jti-1", &a)
        .await
        .unwrap();
    assert_eq!(
        [s1, s2, s3, s4, s5],
        [start + 1, start + 2, start + 3, start + 4, start + 5]
    );

    let batch = store.changes_since(start, 100).await.unwrap();
    assert_eq!(batch.seq, s5);
    match &batch.changes[..] {
        [Change::Upsert(acc), Change::Upsert(cut), Change::Delete(EntityKind::Revocation, jti)] => {
            assert!(same(acc, &account(ACCOUNT_A, None)));
            assert!(same(cut, &cutoff("IBMid-X", 2)), "latest state: {cut:?}");
            assert_eq!(jti, "jti-1");
        }
        other => panic!("unexpected batch {other:?}"),
    }

    let empty = store.changes_since(s5, 100).await.unwrap();
    assert!(empty.changes.is_empty());
    assert_eq!(empty.seq, s5);

    // A limited batch stops at the limit and reports how far it read.
    let partial = store.changes_since(start, 2).await.unwrap();
    assert_eq!(partial.seq, s2);
    assert_eq!(partial.changes.len(), 2);
    let rest = store.changes_since(partial.seq, 2).await.unwrap();
    assert_eq!(rest.seq, s4);
}

/// `load_all` returns everything current, with the feed position it reflects.
pub async fn load_all_skips_expired_revocations(store: &dyn Store) {
    let seq = create_all(
        store,
        &[
            account(ACCOUNT_A, None),
            service_account("ServiceId-s1", ACCOUNT_A),
            revocation("expired", NOW - 1),
            revocation("expiring-now", NOW),
            revocation("later", NOW + 100),
        ],
    )
    .await;
    let (entities, at) = store.load_all(NOW).await.unwrap();
    assert_eq!(at, seq);
    let mut revoked: Vec<&str> = entities
        .iter()
        .filter(|e| e.kind() == EntityKind::Revocation)
        .map(Entity::key)
        .collect();
    revoked.sort_unstable();
    assert_eq!(revoked, ["expiring-now", "later"]);
    assert!(entities.iter().any(|e| same(e, &account(ACCOUNT_A, None))));
    assert!(entities
        .iter()
        .any(|e| same(e, &service_account("ServiceId-s1", ACCOUNT_A))));
    assert_eq!(entities.len(), 4);
}

/// `load_each` hands over every object once, kind by kind in key order, across as many pages
/// as it takes (the unit tests of this crate read three rows a page), with the expired
/// revocations left out even where a page ends exactly at the last row.
pub async fn load_each_reads_every_page_in_key_order(store: &dyn Store) {
    let mut entities = vec![account(ACCOUNT_A, None)];
    let mut service_accounts: Vec<String> = (0..7)
        .map(|i| format!("ServiceId-page-{}", 7 - i))
        .collect();
    entities.extend(
        service_accounts
            .iter()
            .map(|id| service_account(id, ACCOUNT_A)),
    );
    entities.extend([
        revocation("r1", NOW + 1),
        revocation("r2", NOW - 1),
        revocation("r3", NOW + 1),
        revocation("r4", NOW - 5),
        revocation("r5", NOW + 1),
        // Expired ones after the last live one: the filter holds on every page, not the first.
        revocation("r6", NOW - 1),
        revocation("r7", NOW - 2),
    ]);
    let seq = create_all(store, &entities).await;
    let mut seen = Vec::new();
    let at = store
        .load_each(NOW, &mut |entity| {
            seen.push((entity.kind(), entity.key().to_owned()))
        })
        .await
        .unwrap();
    assert_eq!(at, seq);
    let of = |kind: EntityKind| -> Vec<String> {
        seen.iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, key)| key.clone())
            .collect()
    };
    service_accounts.sort();
    assert_eq!(of(EntityKind::ServiceAccount), service_accounts);
    assert_eq!(of(EntityKind::Revocation), ["r1", "r3", "r5"]);
    assert_eq!(of(EntityKind::Account), [ACCOUNT_A]);
    assert_eq!(seen.len(), 1 + 7 + 3);
}

/// Concurrent first starts agree on one server secret.
pub async fn server_secret_first_writer_wins(store: &dyn Store) {
    assert_eq!(
        store.server_secret("pepper", b"first").await.unwrap(),
        b"first"
    );
    assert_eq!(
        store.server_secret("pepper", b"second").await.unwrap(),
        b"first"
    );
    assert_eq!(
        store.server_secret("other", b"third").await.unwrap(),
        b"third"
    );
}

/// Every mutation leaves an audit row naming its target; cascades are summarized in one.
pub async fn audit_rows_written(store: &dyn Store) {
    let event = AuditEvent {
        at: NOW + 1,
        actor: "IBMid-admin".into(),
        action: "account.create".into(),
        request_id: "req-42".into(),
        detail: "first account".into(),
        account_id: Some(ACCOUNT_A.into()),
    };
    store
        .create(&account(ACCOUNT_A, None), &event)
        .await
        .unwrap();
    let newest = newest_audit(store, 10).await;
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].event, event);
    assert_eq!(newest[0].target_kind, "account");
    assert_eq!(newest[0].target_key, ACCOUNT_A);

    create_all(
        store,
        &[
            service_account("ServiceId-s1", ACCOUNT_A),
            api_key("ApiKey-1", "iam-ServiceId-s1", ACCOUNT_A, 1),
            api_key("ApiKey-2", "iam-ServiceId-s1", ACCOUNT_A, 2),
        ],
    )
    .await;
    let mut delete = audit("service_account.delete");
    delete.detail = "cleanup".into();
    store
        .delete(EntityKind::ServiceAccount, "ServiceId-s1", &delete)
        .await
        .unwrap();

    let all = newest_audit(store, 100).await;
    assert_eq!(all.len(), 5, "one row per call, not per cascaded row");
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(all[0].event.action, "service_account.delete");
    assert_eq!(all[0].target_kind, "service_account");
    assert_eq!(all[0].target_key, "ServiceId-s1");
    assert!(
        all[0].event.detail.starts_with("cleanup"),
        "{}",
        all[0].event.detail
    );
    assert!(
        all[0].event.detail.contains("2 API key"),
        "{}",
        all[0].event.detail
    );
    assert_eq!(all.last().map(|r| r.event.clone()), Some(event));
    assert_eq!(newest_audit(store, 2).await.len(), 2);
}

/// `list_audit` filters by account, actor, action (exact or prefix), time and id, and pages.
pub async fn audit_filters_and_pages(store: &dyn Store) {
    create_all(store, &[account(ACCOUNT_A, None), account(ACCOUNT_B, None)]).await;
    let event = |at: i64, actor: &str, action: &str, account: Option<&str>| AuditEvent {
        at,
        actor: actor.into(),
        action: action.into(),
        request_id: "req".into(),
        detail: String::new(),
        account_id: account.map(str::to_owned),
    };
    let writes = [
        (
            NOW + 10,
            "iam-a",
            "service_account.create",
            Some(ACCOUNT_A),
            "ServiceId-a1",
        ),
        (
            NOW + 20,
            "iam-b",
            "service_account.create",
            Some(ACCOUNT_B),
            "ServiceId-b1",
        ),
        (
            NOW + 30,
            "iam-a",
            "service_account_x.create",
            Some(ACCOUNT_A),
            "ServiceId-a2",
        ),
        (
            NOW + 40,
            "system",
            "service_account.create",
            None,
            "ServiceId-a3",
        ),
    ];
    for (at, actor, action, account, id) in writes {
        let owner = if account == Some(ACCOUNT_B) {
            ACCOUNT_B
        } else {
            ACCOUNT_A
        };
        store
            .create(
                &service_account(id, owner),
                &event(at, actor, action, account),
            )
            .await
            .unwrap();
    }
    let ids = |filter: crate::AuditFilter| async move {
        store
            .list_audit(&crate::AuditFilter {
                limit: 100,
                ..filter
            })
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.target_key)
            .collect::<Vec<_>>()
    };
    let by = crate::AuditFilter::default;
    assert_eq!(
        ids(crate::AuditFilter {
            account_id: Some(ACCOUNT_A.into()),
            ..by()
        })
        .await,
        ["ServiceId-a2", "ServiceId-a1"]
    );
    assert_eq!(
        ids(crate::AuditFilter {
            actor: Some("iam-b".into()),
            ..by()
        })
        .await,
        ["ServiceId-b1"]
    );
    // Exact action; a prefix ends with a dot, and `_` is not a wildcard.
    assert_eq!(
        ids(crate::AuditFilter {
            action: Some("service_account.create".into()),
            ..by()
        })
        .await,
        ["ServiceId-a3", "ServiceId-b1", "ServiceId-a1"]
    );
    assert_eq!(
        ids(crate::AuditFilter {
            action: Some("service_account.".into()),
            ..by()
        })
        .await,
        ["ServiceId-a3", "ServiceId-b1", "ServiceId-a1"]
    );
    assert_eq!(
        ids(crate::AuditFilter {
            action: Some("service_account_x.".into()),
            ..by()
        })
        .await,
        ["ServiceId-a2"]
    );
    assert_eq!(
        ids(crate::AuditFilter {
            since: Some(NOW + 20),
            until: Some(NOW + 40),
            ..by()
        })
        .await,
        ["ServiceId-a2", "ServiceId-b1"]
    );
    // Installation-wide events come back without an account.
    let all = newest_audit(store, 100).await;
    let system = all.iter().find(|r| r.target_key == "ServiceId-a3").unwrap();
    assert_eq!(system.event.account_id, None);
    assert_eq!(
        all.iter()
            .find(|r| r.target_key == "ServiceId-b1")
            .unwrap()
            .event
            .account_id
            .as_deref(),
        Some(ACCOUNT_B)
    );
    // Pages of two, by the last id of the previous page, cover everything once.
    let mut seen = Vec::new();
    let mut before_id = None;
    loop {
        let page = store
            .list_audit(&crate::AuditFilter {
                limit: 2,
                before_id,
                ..by()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        before_id = page.last().map(|r| r.id);
        seen.extend(page.into_iter().map(|r| r.id));
    }
    assert_eq!(seen, all.iter().map(|r| r.id).collect::<Vec<_>>());
}

/// `list` filters by the fields that apply to the kind, orders by key and pages by key.
pub async fn list_paginates_and_filters(store: &dyn Store) {
    let mut entities = vec![account(ACCOUNT_A, None), account(ACCOUNT_B, None)];
    for i in 1..=5 {
        entities.push(service_account(&format!("ServiceId-a{i}"), ACCOUNT_A));
    }
    for i in 1..=2 {
        entities.push(service_account(&format!("ServiceId-b{i}"), ACCOUNT_B));
    }
    entities.extend([
        user("IBMid-UA", ACCOUNT_A, "ua@example.com"),
        user("IBMid-UB", ACCOUNT_B, "ub@example.com"),
        api_key("ApiKey-1", "iam-ServiceId-a1", ACCOUNT_A, 1),
        api_key("ApiKey-2", "iam-ServiceId-a1", ACCOUNT_A, 2),
        api_key("ApiKey-3", "IBMid-UA", ACCOUNT_A, 3),
        api_key("ApiKey-4", "IBMid-UB", ACCOUNT_B, 4),
        client("ca", Some(ACCOUNT_A), Some(5)),
        client("default", None, None),
        binding(
            "AccessBinding-1",
            "IBMid-UA",
            Role::Admin,
            Resource::Account(ACCOUNT_A.into()),
        ),
        binding(
            "AccessBinding-2",
            "IBMid-UB",
            Role::Viewer,
            Resource::Account(ACCOUNT_A.into()),
        ),
        binding(
            "AccessBinding-3",
            "IBMid-UA",
            Role::Viewer,
            Resource::Global,
        ),
    ]);
    create_all(store, &entities).await;

    let in_a = |after: Option<&str>, limit: u32| ListFilter {
        account_id: Some(ACCOUNT_A.into()),
        after: after.map(Into::into),
        limit: Some(limit),
        ..ListFilter::default()
    };
    let page = store
        .list(EntityKind::ServiceAccount, &in_a(None, 2))
        .await
        .unwrap();
    assert_eq!(keys(&page), ["ServiceId-a1", "ServiceId-a2"]);
    let page = store
        .list(EntityKind::ServiceAccount, &in_a(Some("ServiceId-a2"), 2))
        .await
        .unwrap();
    assert_eq!(keys(&page), ["ServiceId-a3", "ServiceId-a4"]);
    let page = store
        .list(EntityKind::ServiceAccount, &in_a(Some("ServiceId-a4"), 2))
        .await
        .unwrap();
    assert_eq!(keys(&page), ["ServiceId-a5"]);
    let page = store
        .list(EntityKind::ServiceAccount, &in_a(Some("ServiceId-a5"), 2))
        .await
        .unwrap();
    assert!(page.is_empty());
    let huge = ListFilter {
        limit: Some(1_000_000),
        ..ListFilter::default()
    };
    assert_eq!(
        store
            .list(EntityKind::ServiceAccount, &huge)
            .await
            .unwrap()
            .len(),
        7
    );
    let all = store
        .list(EntityKind::ServiceAccount, &list_filter())
        .await
        .unwrap();
    assert_eq!(all.len(), 7);

    let users = store.list(EntityKind::User, &in_a(None, 10)).await.unwrap();
    assert_eq!(keys(&users), ["IBMid-UA"]);
    let clients = store
        .list(EntityKind::Client, &in_a(None, 10))
        .await
        .unwrap();
    assert_eq!(keys(&clients), [format!("{ACCOUNT_A}/ca")]);
    let keys_in_a = store
        .list(EntityKind::ApiKey, &in_a(None, 10))
        .await
        .unwrap();
    assert_eq!(keys(&keys_in_a), ["ApiKey-1", "ApiKey-2", "ApiKey-3"]);
    let by_owner = ListFilter {
        owner_iam_id: Some("iam-ServiceId-a1".into()),
        ..list_filter()
    };
    let owned = store.list(EntityKind::ApiKey, &by_owner).await.unwrap();
    assert_eq!(keys(&owned), ["ApiKey-1", "ApiKey-2"]);

    let by_subject = ListFilter {
        subject_iam_id: Some("IBMid-UA".into()),
        ..list_filter()
    };
    let bound = store.list(EntityKind::Binding, &by_subject).await.unwrap();
    assert_eq!(keys(&bound), ["AccessBinding-1", "AccessBinding-3"]);
    let on_a = ListFilter {
        resource: Some(format!("account/{ACCOUNT_A}")),
        ..list_filter()
    };
    let bound = store.list(EntityKind::Binding, &on_a).await.unwrap();
    assert_eq!(keys(&bound), ["AccessBinding-1", "AccessBinding-2"]);
    let both = ListFilter {
        subject_iam_id: Some("IBMid-UA".into()),
        ..on_a
    };
    assert_eq!(
        keys(&store.list(EntityKind::Binding, &both).await.unwrap()),
        ["AccessBinding-1"]
    );

    // Filters that do not apply to a kind are ignored rather than matching nothing.
    let accounts = store
        .list(EntityKind::Account, &in_a(None, 10))
        .await
        .unwrap();
    assert_eq!(keys(&accounts), [ACCOUNT_A, ACCOUNT_B]);
    let bindings = store
        .list(EntityKind::Binding, &in_a(None, 10))
        .await
        .unwrap();
    assert_eq!(bindings.len(), 3);
}

/// `prune` drops expired revocations (telling followers) and change rows before a position.
pub async fn prune_removes_expired_and_old_changes(store: &dyn Store) {
    let a = audit("test");
    store
        .create(&revocation("old", NOW - 10), &a)
        .await
        .unwrap();
    store
        .create(&revocation("new", NOW + 10), &a)
        .await
        .unwrap();
    let keep_from = store.create(&account(ACCOUNT_A, None), &a).await.unwrap();
    store.prune(NOW, keep_from).await.unwrap();

    assert_absent(store, EntityKind::Revocation, "old").await;
    assert!(store
        .find(EntityKind::Revocation, "new")
        .await
        .unwrap()
        .is_some());
    let batch = store.changes_since(0, 100).await.unwrap();
    match &batch.changes[..] {
        [Change::Upsert(Entity::Account(acc)), Change::Delete(EntityKind::Revocation, jti)] => {
            assert_eq!(acc.id, ACCOUNT_A);
            assert_eq!(jti, "old");
        }
        other => panic!("unexpected feed after prune: {other:?}"),
    }
    // Numbering carries on after pruning; it never restarts.
    let next = store.create(&account(ACCOUNT_B, None), &a).await.unwrap();
    assert_eq!(next, batch.seq + 1);
}

/// Migrating an up-to-date database changes nothing.
pub async fn migrate_twice_is_a_no_op(store: &dyn Store) {
    let seq = store
        .create(&account(ACCOUNT_A, None), &audit("test"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(current_seq(store).await, seq);
    assert!(store
        .find(EntityKind::Account, ACCOUNT_A)
        .await
        .unwrap()
        .is_some());
}

/// `create_all` writes every object or none: a batch whose last object is refused leaves no
/// trace of the others, not even a change row.
pub async fn create_all_is_all_or_nothing(store: &dyn Store) {
    let before = current_seq(store).await;
    let refused = store
        .create_all(
            &[
                account(ACCOUNT_A, None),
                service_account("ServiceId-batch-1", ACCOUNT_A),
                // Its account does not exist: the whole batch fails.
                service_account("ServiceId-batch-2", ACCOUNT_B),
            ],
            &audit("test.batch"),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
    assert_absent(store, EntityKind::Account, ACCOUNT_A).await;
    assert_absent(store, EntityKind::ServiceAccount, "ServiceId-batch-1").await;
    assert_eq!(
        current_seq(store).await,
        before,
        "no change row of a failed batch"
    );

    let batch = [
        account(ACCOUNT_A, None),
        service_account("ServiceId-batch-1", ACCOUNT_A),
    ];
    let seq = store
        .create_all(&batch, &audit("test.batch"))
        .await
        .unwrap();
    for entity in &batch {
        assert_stored(store, entity).await;
    }
    let changes = store.changes_since(before, 100).await.unwrap();
    assert_eq!((changes.changes.len(), changes.seq), (2, seq));
    let audit_rows = newest_audit(store, 10).await;
    assert_eq!(
        audit_rows
            .iter()
            .filter(|r| r.event.action == "test.batch")
            .count(),
        2
    );
}

pub async fn ping_answers(store: &dyn Store) {
    store.ping().await.unwrap();
}

/// First half of the persistence check: writes what [`persistence_check`] expects after the
/// backend has been closed and reopened.
pub async fn persistence_write(store: &dyn Store) -> i64 {
    let seq = create_all(
        store,
        &[
            account(ACCOUNT_A, None),
            user("IBMid-U1", ACCOUNT_A, "u1@example.com"),
            signing_key("kid-1", KeyState::Active, None),
        ],
    )
    .await;
    store.server_secret("pepper", b"persisted").await.unwrap();
    seq
}

/// Second half of the persistence check, on the reopened store.
pub async fn persistence_check(store: &dyn Store, seq: i64) {
    assert_stored(store, &user("IBMid-U1", ACCOUNT_A, "u1@example.com")).await;
    assert_stored(store, &signing_key("kid-1", KeyState::Active, None)).await;
    assert_eq!(
        store.server_secret("pepper", b"other").await.unwrap(),
        b"persisted"
    );
    assert_eq!(current_seq(store).await, seq);
    let next = store
        .create(&account(ACCOUNT_B, None), &audit("test"))
        .await
        .unwrap();
    assert_eq!(next, seq + 1);
    assert_eq!(newest_audit(store, 100).await.len(), 4);
}

/// Leases: one holder at a time; the holder renews; an expired lease (until < now) is taken over;
/// release by a non-holder does nothing; leases touch neither the feed nor the audit log.
pub async fn leases_are_exclusive_until_expiry(store: &dyn Store) {
    // Asks at `NOW + at` for the lease until 30 s later.
    let take = |holder: &'static str, at: i64| async move {
        store
            .try_lease("rotation", holder, NOW + at, NOW + at + 30)
            .await
            .unwrap()
    };
    assert!(take("node-a", 0).await, "a free lease is taken");
    assert!(!take("node-b", 1).await, "a held lease is not");
    assert!(
        store
            .try_lease("janitor", "node-b", NOW + 1, NOW + 31)
            .await
            .unwrap(),
        "leases are independent by name"
    );
    assert!(take("node-a", 20).await, "the holder renews");
    assert!(!take("node-b", 40).await, "the renewal extended it");
    assert!(!take("node-b", 50).await, "until == now is not expired yet");
    assert!(take("node-b", 51).await, "an expired lease is taken over");
    assert!(!take("node-a", 52).await, "the old holder lost it");

    store.release_lease("rotation", "node-a").await.unwrap();
    assert!(!take("node-a", 53).await, "a non-holder cannot release it");
    store.release_lease("rotation", "node-b").await.unwrap();
    assert!(take("node-a", 54).await, "a released lease is free");
    store.release_lease("never-taken", "node-a").await.unwrap();

    assert_eq!(current_seq(store).await, 0);
    assert!(newest_audit(store, 10).await.is_empty());
}

/// Server secrets are listed by name, with the first writer's value.
pub async fn server_secrets_are_listed(store: &dyn Store) {
    assert!(store.list_server_secrets().await.unwrap().is_empty());
    store.server_secret("pepper", b"p1").await.unwrap();
    store.server_secret("jwt-master", b"m1").await.unwrap();
    store.server_secret("pepper", b"p2").await.unwrap();
    assert_eq!(
        store.list_server_secrets().await.unwrap(),
        vec![
            ("jwt-master".to_owned(), b"m1".to_vec()),
            ("pepper".to_owned(), b"p1".to_vec()),
        ]
    );
}

/// After `migrate`, the database is at the newest version the binary knows.
pub async fn schema_version_is_current(store: &dyn Store) {
    let known = store.known_schema_version();
    assert!(known >= 2, "leases came with migration 2; known is {known}");
    assert_eq!(store.schema_version().await.unwrap(), Some(known));
    store.migrate().await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), Some(known));
}

/// A store not migrated yet has no schema version; migrating brings it to the newest.
pub async fn schema_version_is_none_before_migrating(store: &dyn Store) {
    assert_eq!(store.schema_version().await.unwrap(), None);
    assert_eq!(store.known_schema_version(), 7);
    store.migrate().await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), Some(7));
}

/// `migrate` refuses a database on which the backend's test wrote migration 9999, naming the
/// versions.
pub async fn newer_schema_is_refused(store: &dyn Store) {
    let known = store.known_schema_version();
    match store.migrate().await {
        Err(StoreError::Conflict(message)) => assert_eq!(
            message,
            format!(
                "database schema version 9999 is newer than this Tessera knows ({known}); \
                 upgrade Tessera"
            )
        ),
        other => panic!("expected the newer-schema conflict, got {other:?}"),
    }
}

/// The row `key` of `kind`, written by hand with a value the store cannot decode, reads as
/// corrupt.
pub async fn assert_corrupt(store: &dyn Store, kind: EntityKind, key: &str) {
    let found = store.find(kind, key).await;
    assert!(matches!(found, Err(StoreError::Corrupt(_))), "{found:?}");
}

/// 16 creates from separate tasks all land, with seqs 1..=16; a follower polling the feed while
/// they run sees every one of them exactly once and in strictly increasing seq order (a change
/// that became visible after a higher seq would be skipped by its `seq > cursor` reads).
pub async fn concurrent_creates_are_seen_in_order(store: Arc<dyn Store>) {
    const WRITERS: usize = 16;
    let writes_done = Arc::new(AtomicBool::new(false));
    let follower = {
        let store = Arc::clone(&store);
        let writes_done = Arc::clone(&writes_done);
        tokio::spawn(async move {
            let mut cursor = 0;
            let mut seen = Vec::new();
            loop {
                // Read the flag first: the poll after it was set sees every write.
                let last_round = writes_done.load(Ordering::SeqCst);
                let batch = store.changes_since(cursor, 1000).await.unwrap();
                assert!(batch.seq >= cursor, "the feed went back");
                for change in batch.changes {
                    match change {
                        Change::Upsert(entity) => seen.push(entity.key().to_owned()),
                        other => panic!("unexpected change {other:?}"),
                    }
                }
                cursor = batch.seq;
                if last_round {
                    return (seen, cursor);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let jti = format!("jti-concurrent-{i:02}");
                let seq = store
                    .create(&revocation(&jti, NOW + 60), &audit("token.revoke"))
                    .await
                    .unwrap();
                (jti, seq)
            })
        })
        .collect();
    let mut seq_of = HashMap::new();
    for writer in writers {
        let (jti, seq) = writer.await.unwrap();
        seq_of.insert(jti, seq);
    }
    writes_done.store(true, Ordering::SeqCst);
    let (seen, cursor) = follower.await.unwrap();

    let mut seqs: Vec<i64> = seq_of.values().copied().collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=WRITERS as i64).collect::<Vec<_>>(), "no gaps");
    assert_eq!(cursor, WRITERS as i64);
    assert_eq!(
        seen.len(),
        WRITERS,
        "the follower saw each change once: {seen:?}"
    );
    let seen_seqs: Vec<i64> = seen.iter().map(|jti| seq_of[jti]).collect();
    assert!(
        seen_seqs.windows(2).all(|w| w[0] < w[1]),
        "the follower saw changes out of seq order: {seen_seqs:?}"
    );

    let batch = store.changes_since(0, 1000).await.unwrap();
    assert_eq!(batch.changes.len(), WRITERS);
    assert_eq!(batch.seq, WRITERS as i64);
    let fed: Vec<i64> = batch
        .changes
        .iter()
        .map(|c| match c {
            Change::Upsert(entity) => seq_of[entity.key()],
            other => panic!("unexpected change {other:?}"),
        })
        .collect();
    assert_eq!(fed, (1..=WRITERS as i64).collect::<Vec<_>>());
}

/// 8 nodes ask for the same free lease at once: exactly one gets it.
pub async fn concurrent_leases_have_one_winner(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .try_lease("rotation", &format!("node-{i}"), NOW, NOW + 30)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if task.await.unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

/// Authorized keys and OAuth tokens: create, find, list with filters, reference checks, the
/// uniqueness of token hashes, cascades from their owners, the change feed and `load_all`.
pub async fn yandex_credentials(store: &dyn Store) {
    let start = create_all(
        store,
        &[
            account(ACCOUNT_A, None),
            account(ACCOUNT_B, None),
            user("IBMid-UA", ACCOUNT_A, "ua@example.com"),
            user("IBMid-UB", ACCOUNT_B, "ub@example.com"),
            service_account("ServiceId-a1", ACCOUNT_A),
            service_account("ServiceId-a2", ACCOUNT_A),
            service_account("ServiceId-b1", ACCOUNT_B),
        ],
    )
    .await;
    let credentials = vec![
        authorized_key("aje000000000000000a1", "ServiceId-a1", ACCOUNT_A),
        authorized_key("aje000000000000000a2", "ServiceId-a1", ACCOUNT_A),
        authorized_key("aje000000000000000a3", "ServiceId-a2", ACCOUNT_A),
        authorized_key("aje000000000000000b1", "ServiceId-b1", ACCOUNT_B),
        oauth_token("OAuthToken-a1", "IBMid-UA", ACCOUNT_A, 1),
        oauth_token("OAuthToken-a2", "IBMid-UA", ACCOUNT_A, 2),
        oauth_token("OAuthToken-b1", "IBMid-UB", ACCOUNT_B, 3),
    ];
    let created = create_all(store, &credentials).await;
    assert_eq!(created, start + 7);
    for entity in &credentials {
        assert_stored(store, entity).await;
    }

    // The feed delivers them as upserts; `load_all` includes them.
    let batch = store.changes_since(start, 100).await.unwrap();
    assert_eq!(batch.changes.len(), 7);
    for (change, expected) in batch.changes.iter().zip(&credentials) {
        match change {
            Change::Upsert(entity) => assert!(same(entity, expected), "{entity:?}"),
            Change::Delete(kind, key) => panic!("unexpected delete {kind:?} {key}"),
        }
    }
    let (all, at) = store.load_all(NOW).await.unwrap();
    assert_eq!(at, created);
    for expected in &credentials {
        assert!(
            all.iter().any(|e| same(e, expected)),
            "load_all lacks {expected:?}"
        );
    }

    // Filters: account, and owner (`iam-<service account id>` for keys, the user id for tokens).
    let list = |kind: EntityKind, account_id: Option<&str>, owner: Option<&str>| {
        let filter = ListFilter {
            account_id: account_id.map(Into::into),
            owner_iam_id: owner.map(Into::into),
            ..ListFilter::default()
        };
        async move {
            let listed = store.list(kind, &filter).await.unwrap();
            listed
                .iter()
                .map(|e| e.key().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let ak = EntityKind::AuthorizedKey;
    let ot = EntityKind::OAuthToken;
    assert_eq!(
        list(ak, None, None).await,
        [
            "aje000000000000000a1",
            "aje000000000000000a2",
            "aje000000000000000a3",
            "aje000000000000000b1"
        ]
    );
    assert_eq!(
        list(ak, Some(ACCOUNT_B), None).await,
        ["aje000000000000000b1"]
    );
    assert_eq!(
        list(ak, None, Some("iam-ServiceId-a1")).await,
        ["aje000000000000000a1", "aje000000000000000a2"]
    );
    assert_eq!(
        list(ak, Some(ACCOUNT_B), Some("iam-ServiceId-a1")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(ot, Some(ACCOUNT_A), None).await,
        ["OAuthToken-a1", "OAuthToken-a2"]
    );
    assert_eq!(list(ot, None, Some("IBMid-UB")).await, ["OAuthToken-b1"]);
    let page = store
        .list(
            ak,
            &ListFilter {
                limit: Some(2),
                after: Some("aje000000000000000a2".into()),
                ..ListFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        keys(&page),
        ["aje000000000000000a3", "aje000000000000000b1"]
    );

    // References: the owner must exist and live in the credential's account; a token's hash is
    // unique. A refused write leaves no trace in the feed.
    let before = current_seq(store).await;
    let a = audit("test.create");
    let missing = "c0000000000000000000000000000003";
    for (entity, expected) in [
        (
            authorized_key("aje000000000000000x1", "ServiceId-nope", ACCOUNT_A),
            StoreError::NotFound("owner iam-ServiceId-nope".into()),
        ),
        (
            authorized_key("aje000000000000000x2", "ServiceId-a1", missing),
            StoreError::NotFound(format!("account {missing}")),
        ),
        (
            oauth_token("OAuthToken-x1", "IBMid-NOPE", ACCOUNT_A, 9),
            StoreError::NotFound("owner IBMid-NOPE".into()),
        ),
        (
            oauth_token("OAuthToken-x2", "IBMid-UA", missing, 9),
            StoreError::NotFound(format!("account {missing}")),
        ),
    ] {
        let result = store.create(&entity, &a).await;
        match (&result, &expected) {
            (Err(StoreError::NotFound(got)), StoreError::NotFound(want)) => {
                assert_eq!(got, want);
            }
            _ => panic!("{entity:?}: expected {expected:?}, got {result:?}"),
        }
    }
    for (entity, expected) in [
        (
            authorized_key("aje000000000000000x3", "ServiceId-b1", ACCOUNT_A),
            format!(
                "owner iam-ServiceId-b1 of authorized key aje000000000000000x3 is in account \
                 {ACCOUNT_B}, not {ACCOUNT_A}"
            ),
        ),
        (
            oauth_token("OAuthToken-x3", "IBMid-UB", ACCOUNT_A, 9),
            format!(
                "owner IBMid-UB of oauth token OAuthToken-x3 is in account {ACCOUNT_B}, not \
                 {ACCOUNT_A}"
            ),
        ),
    ] {
        match store.create(&entity, &a).await {
            Err(StoreError::Conflict(message)) => assert_eq!(message, expected),
            other => panic!("{entity:?}: {other:?}"),
        }
    }
    let clash = store
        .create(&oauth_token("OAuthToken-x4", "IBMid-UA", ACCOUNT_A, 1), &a)
        .await;
    match clash {
        Err(StoreError::AlreadyExists(what)) => {
            assert_eq!(what, "oauth token with the same secret");
        }
        other => panic!("{other:?}"),
    }
    let twice = store.create(&credentials[0], &a).await;
    assert!(
        matches!(twice, Err(StoreError::AlreadyExists(_))),
        "{twice:?}"
    );
    assert_eq!(current_seq(store).await, before);

    // An account that still holds credentials cannot go (its owners hold it too, but the
    // credentials count on their own).
    let conflict = store
        .delete(EntityKind::Account, ACCOUNT_B, &audit("account.delete"))
        .await;
    assert!(
        matches!(conflict, Err(StoreError::Conflict(_))),
        "{conflict:?}"
    );

    // Deleting a service account takes its authorized keys, each with a Delete change, before
    // the account itself; other service accounts' keys stay.
    let seq = store
        .delete(
            EntityKind::ServiceAccount,
            "ServiceId-a1",
            &audit("service_account.delete"),
        )
        .await
        .unwrap();
    assert_eq!(seq, before + 3);
    assert_absent(store, ak, "aje000000000000000a1").await;
    assert_absent(store, ak, "aje000000000000000a2").await;
    let batch = store.changes_since(before, 100).await.unwrap();
    let deleted = deletes(batch);
    assert_eq!(
        deleted,
        [
            (ak, "aje000000000000000a1".to_owned()),
            (ak, "aje000000000000000a2".to_owned()),
            (EntityKind::ServiceAccount, "ServiceId-a1".to_owned()),
        ]
    );
    assert_eq!(
        list(ak, Some(ACCOUNT_A), None).await,
        ["aje000000000000000a3"]
    );
    let audits = newest_audit(store, 100).await;
    let cascade = audits
        .iter()
        .find(|a| a.event.action == "service_account.delete")
        .unwrap();
    assert!(
        cascade.event.detail.contains("2 authorized key(s)"),
        "{:?}",
        cascade.event.detail
    );

    // Deleting a user takes its OAuth tokens.
    let before = current_seq(store).await;
    let seq = store
        .delete(EntityKind::User, "IBMid-UA", &audit("user.delete"))
        .await
        .unwrap();
    assert_eq!(seq, before + 3);
    assert_absent(store, ot, "OAuthToken-a1").await;
    assert_absent(store, ot, "OAuthToken-a2").await;
    assert_eq!(list(ot, None, None).await, ["OAuthToken-b1"]);

    // A credential deletes on its own, once.
    let before = current_seq(store).await;
    store
        .delete(ot, "OAuthToken-b1", &audit("oauth_token.delete"))
        .await
        .unwrap();
    store
        .delete(ak, "aje000000000000000b1", &audit("authorized_key.delete"))
        .await
        .unwrap();
    let again = store
        .delete(ak, "aje000000000000000b1", &audit("authorized_key.delete"))
        .await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
    let batch = store.changes_since(before, 100).await.unwrap();
    assert!(matches!(
        &batch.changes[..],
        [Change::Delete(EntityKind::OAuthToken, t), Change::Delete(EntityKind::AuthorizedKey, k)]
            if t == "OAuthToken-b1" && k == "aje000000000000000b1"
    ));
}

/// Writes one or more objects of every kind (and two server secrets) for export tests; returns
/// what is current at [`NOW`] (the revocation that expired before it is left out).
pub async fn populate(store: &dyn Store) -> Vec<Entity> {
    let mut disabled = user("IBMid-U2", ACCOUNT_B, "u2@example.com");
    if let Entity::User(u) = &mut disabled {
        u.password_hash = None;
        u.federated = true;
    }
    let mut strict = account(ACCOUNT_A, Some(ENTERPRISE));
    if let Entity::Account(a) = &mut strict {
        a.mfa = MfaRequirement::Totp;
    }
    let current = vec![
        enterprise(ENTERPRISE),
        strict,
        account(ACCOUNT_B, None),
        user("IBMid-U1", ACCOUNT_A, "u1@example.com"),
        disabled,
        service_account("ServiceId-s1", ACCOUNT_A),
        service_account("ServiceId-s2", ACCOUNT_B),
        api_key("ApiKey-1", "iam-ServiceId-s1", ACCOUNT_A, 1),
        api_key("ApiKey-2", "IBMid-U1", ACCOUNT_A, 2),
        authorized_key("aje00000000000000001", "ServiceId-s1", ACCOUNT_A),
        authorized_key("aje00000000000000002", "ServiceId-s2", ACCOUNT_B),
        oauth_token("OAuthToken-1", "IBMid-U1", ACCOUNT_A, 11),
        client("bx", Some(ACCOUNT_A), Some(9)),
        client("default", None, None),
        binding(
            "AccessBinding-1",
            "IBMid-U1",
            Role::Admin,
            Resource::Account(ACCOUNT_A.into()),
        ),
        binding(
            "AccessBinding-2",
            "IBMid-U1",
            Role::TokenCreator,
            Resource::ServiceAccount("ServiceId-s1".into()),
        ),
        binding(
            "AccessBinding-3",
            "iam-ServiceId-s2",
            Role::Viewer,
            Resource::Global,
        ),
        revocation("jti-live", NOW + 3600),
        cutoff("IBMid-U1", NOW - 10),
        signing_key("kid-active", KeyState::Active, None),
        signing_key("kid-retired", KeyState::Retired, Some(NOW - 100)),
        totp("IBMid-U1", ACCOUNT_A, true),
        profile("Profile-p1", ACCOUNT_A, "deployer"),
        issuer("Issuer-i1", ACCOUNT_A, "https://k8s.example.com"),
        binding(
            "AccessBinding-4",
            "iam-Profile-p1",
            Role::Viewer,
            Resource::Account(ACCOUNT_A.into()),
        ),
        policy(
            "Policy-1",
            ACCOUNT_A,
            "iam-Profile-p1",
            "crn:v1:tessera:public:cos:global:a/a0000000000000000000000000000001:bucket1::",
        ),
    ];
    create_all(store, &current).await;
    store
        .create(&revocation("jti-expired", NOW - 1), &audit("token.revoke"))
        .await
        .unwrap();
    store.server_secret("pepper", &[7; 40]).await.unwrap();
    store
        .server_secret("jwt-master", &[0, 255, 1])
        .await
        .unwrap();
    current
}

/// Issue 5 kinds: TOTP factors, trusted profiles, trusted issuers and authorization policies.
pub async fn profiles_issuers_policies(store: &dyn Store) {
    create_all(
        store,
        &[
            account(ACCOUNT_A, None),
            account(ACCOUNT_B, None),
            user("IBMid-UA", ACCOUNT_A, "ua@example.com"),
            service_account("ServiceId-s1", ACCOUNT_A),
            service_account("ServiceId-b1", ACCOUNT_B),
        ],
    )
    .await;
    let records = vec![
        totp("IBMid-UA", ACCOUNT_A, false),
        profile("Profile-a1", ACCOUNT_A, "deployer"),
        profile("Profile-b1", ACCOUNT_B, "deployer"),
        issuer("Issuer-a1", ACCOUNT_A, "https://k8s-a.example.com"),
        policy(
            "Policy-1",
            ACCOUNT_A,
            "iam-ServiceId-s1",
            "crn:v1:x:public:cos::a/a::bucket:b1",
        ),
        policy(
            "Policy-2",
            ACCOUNT_A,
            "IBMid-UA",
            "crn:v1:x:public:cos::a/a::*",
        ),
        policy(
            "Policy-3",
            ACCOUNT_A,
            "iam-Profile-a1",
            "crn:v1:x:public:kms::a/a::key:k1",
        ),
        policy(
            "Policy-4",
            ACCOUNT_A,
            "crn-crn:v1:x:public:svc::a/a::i:1",
            "crn:v1:x:public:kms::a/a::*",
        ),
        binding(
            "AccessBinding-p",
            "iam-Profile-a1",
            Role::Viewer,
            Resource::Account(ACCOUNT_A.into()),
        ),
    ];
    create_all(store, &records).await;
    for record in &records {
        assert_stored(store, record).await;
    }

    // Updates round-trip (a confirmed factor; a profile's rules replaced).
    let confirmed = totp("IBMid-UA", ACCOUNT_A, true);
    store.put(&confirmed, &audit("totp.confirm")).await.unwrap();
    assert_stored(store, &confirmed).await;

    // Uniqueness: profile name per account, issuer URL per account (another account may use
    // the same URL), policy (source, target).
    let same_url_elsewhere = issuer("Issuer-b1", ACCOUNT_B, "https://k8s-a.example.com");
    store
        .create(&same_url_elsewhere, &audit("create"))
        .await
        .unwrap();
    assert_stored(store, &same_url_elsewhere).await;
    for (clash, what) in [
        (profile("Profile-a2", ACCOUNT_A, "deployer"), "deployer"),
        (
            issuer("Issuer-a2", ACCOUNT_A, "https://k8s-a.example.com"),
            "https://k8s-a.example.com",
        ),
        (
            policy(
                "Policy-9",
                ACCOUNT_A,
                "iam-ServiceId-s1",
                "crn:v1:x:public:cos::a/a::bucket:b1",
            ),
            "iam-ServiceId-s1",
        ),
    ] {
        match store.create(&clash, &audit("create")).await {
            Err(StoreError::AlreadyExists(message)) => assert!(message.contains(what), "{message}"),
            other => panic!("expected AlreadyExists for {what}, got {other:?}"),
        }
    }

    // References: unknown account, unknown policy source, TOTP of a user in another account.
    for (dangling, what) in [
        (
            profile("Profile-x", "c0000000000000000000000000000003", "x"),
            "account",
        ),
        (
            issuer("Issuer-x", "c0000000000000000000000000000003", "https://x"),
            "account",
        ),
        (
            policy(
                "Policy-x",
                ACCOUNT_A,
                "iam-ServiceId-nope",
                "crn:v1:x:public:cos::a/a::b:1",
            ),
            "iam-ServiceId-nope",
        ),
        (totp("IBMid-nope", ACCOUNT_A, false), "IBMid-nope"),
    ] {
        match store.create(&dangling, &audit("create")).await {
            Err(StoreError::NotFound(message)) => assert!(message.contains(what), "{message}"),
            other => panic!("expected NotFound for {what}, got {other:?}"),
        }
    }
    assert!(matches!(
        store
            .create(&totp("IBMid-UA", ACCOUNT_B, false), &audit("create"))
            .await,
        Err(StoreError::AlreadyExists(_)) | Err(StoreError::Conflict(_))
    ));

    // Lists filter by account, and policies by source.
    let in_a = ListFilter {
        account_id: Some(ACCOUNT_A.into()),
        ..ListFilter::default()
    };
    assert_eq!(
        store.list(EntityKind::Profile, &in_a).await.unwrap().len(),
        1
    );
    assert_eq!(
        store.list(EntityKind::Issuer, &in_a).await.unwrap().len(),
        1
    );
    assert_eq!(
        store.list(EntityKind::Policy, &in_a).await.unwrap().len(),
        4
    );
    let from_user = ListFilter {
        subject_iam_id: Some("IBMid-UA".into()),
        ..ListFilter::default()
    };
    let policies = store.list(EntityKind::Policy, &from_user).await.unwrap();
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].key(), "Policy-2");

    // The account cannot go while profiles, issuers or policies remain.
    match store
        .delete(EntityKind::Account, ACCOUNT_B, &audit("account.delete"))
        .await
    {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains("trusted profiles"), "{message}")
        }
        other => panic!("expected Conflict, got {other:?}"),
    }

    // Cascades: a user takes its factor and its policies; a profile its bindings and policies.
    store
        .delete(EntityKind::User, "IBMid-UA", &audit("user.delete"))
        .await
        .unwrap();
    assert_absent(store, EntityKind::Totp, "IBMid-UA").await;
    assert_absent(store, EntityKind::Policy, "Policy-2").await;
    store
        .delete(EntityKind::Profile, "Profile-a1", &audit("profile.delete"))
        .await
        .unwrap();
    assert_absent(store, EntityKind::Binding, "AccessBinding-p").await;
    assert_absent(store, EntityKind::Policy, "Policy-3").await;
    assert_stored(store, &records[4]).await;
    assert_stored(store, &records[7]).await;
    let audit_rows = newest_audit(store, 1).await;
    assert!(
        audit_rows[0].event.detail.contains("1 access binding(s)"),
        "{:?}",
        audit_rows[0]
    );
    assert!(
        audit_rows[0]
            .event
            .detail
            .contains("1 authorization policy(s)"),
        "{:?}",
        audit_rows[0]
    );
}
