//! Trusted profiles: the admin API (create, list, replace, validation of each field) and the
//! `assume` grant (selectors, every kind of presented credential, trust, MFA level, tenant pin,
//! the claims of profile tokens and their use as credentials).

use crate::harness::*;
use serde_json::{json, Value};
use tessera_client::api::admin::{
    AccountUpdate, ClaimCondition, ClaimRule, ComputeResourceLink, ListQuery, OAuthTokenCreate,
    TrustedIdentity, TrustedProfileCreate, TrustedProfileReplace, TrustedProfileView, UserCreate,
};
use tessera_client::api::token::IbmTokenRequest;
use tessera_client::resource::{OAuthTokens, TrustedProfiles};
use tessera_client::Client;

const ASSUME: &str = "urn:ibm:params:oauth:grant-type:assume";
const CLUSTER_CRN: &str =
    "crn:v1:bluemix:public:containers-kubernetes:us-south:a/0123456789abcdef0123456789abcdef:c1::";

/// The `assume` grant's form, without credential and selector (set them with `..`).
fn assume_grant() -> IbmTokenRequest {
    IbmTokenRequest {
        grant_type: ASSUME.into(),
        ..IbmTokenRequest::default()
    }
}

/// The `assume` form presenting `access_token` for the profile with id `profile_id`.
fn assume_by_id(access_token: &str, profile_id: &str) -> IbmTokenRequest {
    IbmTokenRequest {
        access_token: Some(access_token.to_owned()),
        profile_id: Some(profile_id.to_owned()),
        ..assume_grant()
    }
}

/// Raw: for refusals (their IBM error shape) and parameters the typed form does not have.
async fn assume(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let mut full = vec![("grant_type", ASSUME)];
    full.extend_from_slice(form);
    let response = server.token_response(&full).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Asserts an IBM-shape 400 whose message contains `needle`, and that nothing was issued.
fn assert_refused(status: u16, body: &Value, needle: &str) {
    assert_eq!(status, 400, "{body}");
    assert!(body.get("access_token").is_none(), "{body}");
    let message = body["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "expected {needle:?} in {message:?}"
    );
    assert!(body["errorCode"].as_str().unwrap().starts_with("BXNIM"));
}

/// A trusted identity of `kind` (`user`, `serviceid`, `crn`), trusted from its own account.
pub(crate) fn identity(kind: &str, identifier: &str) -> TrustedIdentity {
    TrustedIdentity {
        kind: kind.to_owned(),
        identifier: identifier.to_owned(),
        accounts: Vec::new(),
    }
}

/// A profile named `name` in the caller's account, trusting `identities`, without links
/// or rules.
pub(crate) fn named(name: &str, identities: Vec<TrustedIdentity>) -> TrustedProfileCreate {
    TrustedProfileCreate {
        account_id: None,
        name: name.to_owned(),
        description: None,
        identities,
        links: Vec::new(),
        rules: Vec::new(),
    }
}

async fn profile(admin: &Client, body: &TrustedProfileCreate) -> TrustedProfileView {
    admin
        .create::<TrustedProfiles>(body)
        .await
        .unwrap_or_else(|e| panic!("create trusted profile: {e}"))
}

#[tokio::test]
async fn admin_api_creates_lists_replaces_and_validates_profiles() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let typed = server.client().with_token(&admin);
    let account = account_of(&typed).await;
    let created = profile(
        &typed,
        &TrustedProfileCreate {
            description: Some("CI".into()),
            links: vec![ComputeResourceLink {
                id: None,
                cr_type: "IKS_SA".into(),
                crn: CLUSTER_CRN.into(),
                namespace: Some("ci".into()),
                name: Some("runner".into()),
                component_type: None,
                component_name: None,
            }],
            rules: vec![ClaimRule {
                id: None,
                name: None,
                rule_type: "Profile-CR".into(),
                cr_type: "IKS_SA".into(),
                conditions: vec![ClaimCondition {
                    claim: "namespace".into(),
                    operator: "IN".into(),
                    value: "[\"ci\",\"prod\"]".into(),
                }],
            }],
            ..named(
                "builders",
                vec![identity("serviceid", "ServiceId-0000-1111")],
            )
        },
    )
    .await;
    let id = created.id.clone();
    assert!(id.starts_with("Profile-"), "{created:?}");
    assert_eq!(created.iam_id, format!("iam-{id}"));
    assert_eq!(created.account_id, account);
    assert!(created.crn.ends_with(&format!(":profile:{id}")));
    assert_eq!(
        created.identities[0].identifier, "iam-ServiceId-0000-1111",
        "service IDs are normalised to their iam_id"
    );
    assert!(created.links[0].id.as_deref().unwrap().starts_with("Link-"));
    assert!(created.rules[0]
        .id
        .as_deref()
        .unwrap()
        .starts_with("ClaimRule-"));

    let list = typed
        .list::<TrustedProfiles>(&ListQuery {
            account_id: Some(account.clone()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(list[0].id, id);

    // Replace: rename, drop the link, keep the rule id given back.
    let rule_id = created.rules[0].id.clone();
    let replaced = typed
        .replace_trusted_profile(
            &id,
            &TrustedProfileReplace {
                name: "builders-2".into(),
                description: None,
                identities: Vec::new(),
                links: Vec::new(),
                rules: vec![ClaimRule {
                    id: rule_id.clone(),
                    name: None,
                    rule_type: "Profile-CR".into(),
                    cr_type: "CE".into(),
                    conditions: vec![ClaimCondition {
                        claim: "x".into(),
                        operator: "EQUALS".into(),
                        value: "true".into(),
                    }],
                }],
            },
        )
        .await
        .unwrap();
    assert_eq!(replaced.name, "builders-2");
    assert_eq!(replaced.id, id);
    assert_eq!(replaced.created_at, created.created_at);
    assert!(replaced.links.is_empty(), "{replaced:?}");
    assert_eq!(replaced.rules[0].id, rule_id);
    let got = typed.get::<TrustedProfiles>(&id).await.unwrap();
    assert_eq!(
        serde_json::to_value(&got).unwrap(),
        serde_json::to_value(&replaced).unwrap()
    );

    // Names are unique per account, on create and on rename.
    let other = profile(&typed, &named("other", Vec::new())).await;
    let (status, body) = server
        .admin_post(
            "/v1/trusted_profiles",
            &admin,
            json!({"name": "builders-2"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = server
        .admin_put(
            &format!("/v1/trusted_profiles/{}", other.id),
            &admin,
            json!({"name": "builders-2"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already has"));

    // Each bad field is refused with a message naming it; nothing is created.
    let bad = [
        (json!({"name": ""}), "name must not be empty"),
        (json!({"name": "p", "colour": "red"}), "unknown field"),
        (
            json!({"name": "p", "account_id": "nope"}),
            "account_id must be 32",
        ),
        (
            json!({"name": "p", "identities": [{"type": "group", "identifier": "x"}]}),
            "identities[0].type must be one of user, serviceid, crn",
        ),
        (
            json!({"name": "p", "identities": [{"type": "user", "identifier": "ServiceId-1"}]}),
            "identities[0].identifier must look like IBMid-",
        ),
        (
            json!({"name": "p", "identities": [{"type": "crn", "identifier": "crn:v1"}]}),
            "identities[0].identifier is not a CRN",
        ),
        (
            json!({"name": "p", "identities": [{"type": "serviceid", "identifier": "ServiceId-1", "accounts": [account]}]}),
            "accounts is only for identities of type user",
        ),
        (
            json!({"name": "p", "links": [{"cr_type": "K8S", "crn": CLUSTER_CRN}]}),
            "links[0].cr_type must be one of",
        ),
        (
            json!({"name": "p", "links": [{"cr_type": "IKS_SA", "crn": CLUSTER_CRN}]}),
            "needs namespace and name",
        ),
        (
            json!({"name": "p", "links": [{"cr_type": "CE", "crn": CLUSTER_CRN, "component_name": "x"}]}),
            "needs component_type and component_name",
        ),
        (
            json!({"name": "p", "rules": [{"type": "Profile-SAML", "cr_type": "CE", "conditions": []}]}),
            "Tessera has no SAML federation",
        ),
        (
            json!({"name": "p", "rules": [{"type": "Profile-CR", "cr_type": "CE", "conditions": []}]}),
            "at least one condition",
        ),
        (
            json!({"name": "p", "rules": [{"type": "Profile-CR", "cr_type": "CE", "conditions": [
                {"claim": "a", "operator": "LIKE", "value": "1"}]}]}),
            "rules[0].conditions[0].operator must be one of",
        ),
        (
            json!({"name": "p", "rules": [{"type": "Profile-CR", "cr_type": "CE", "conditions": [
                {"claim": "a", "operator": "EQUALS", "value": "prod"}]}]}),
            "must be JSON-encoded",
        ),
        (
            json!({"name": "p", "rules": [{"type": "Profile-CR", "cr_type": "CE", "conditions": [
                {"claim": "a", "operator": "IN", "value": "\"prod\""}]}]}),
            "non-empty JSON array",
        ),
    ];
    for (body, needle) in bad {
        let (status, answer) = server
            .admin_post("/v1/trusted_profiles", &admin, body.clone())
            .await;
        assert_eq!(status, 400, "{body} -> {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{body}: {message:?} lacks {needle:?}"
        );
    }
    let (status, _) = server
        .admin_put(
            "/v1/trusted_profiles/Profile-missing",
            &admin,
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(status, 404);
    let list = typed
        .list::<TrustedProfiles>(&ListQuery::default())
        .await
        .unwrap();
    assert_eq!(list.len(), 2, "{list:?}");

    // A caller without a role on the account can neither read nor write.
    let (_, outsider_key) = server.service_account_with_key().await;
    let outsider = server.token(&outsider_key).await;
    let (status, _) = server
        .admin_post("/v1/trusted_profiles", &outsider, json!({"name": "mine"}))
        .await;
    assert_eq!(status, 403);
    let (status, _) = server
        .admin_get(&format!("/v1/trusted_profiles/{id}"), &outsider)
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn assume_with_a_service_id_token_by_id_crn_and_name() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let typed = server.client().with_token(&admin);
    let account = account_of(&typed).await;
    let (sa, apikey) = server.service_account_with_key().await;
    let p = profile(
        &typed,
        &named("deployer", vec![identity("serviceid", &sa.iam_id)]),
    )
    .await;
    let id = p.id.as_str();
    let sa_token = server.token(&apikey).await;
    let with_sa_token = IbmTokenRequest {
        access_token: Some(sa_token.clone()),
        ..assume_grant()
    };

    for form in [
        IbmTokenRequest {
            profile_id: Some(p.id.clone()),
            ..with_sa_token.clone()
        },
        IbmTokenRequest {
            profile_crn: Some(p.crn.clone()),
            ..with_sa_token.clone()
        },
        IbmTokenRequest {
            profile_name: Some("deployer".into()),
            account: Some(account.clone()),
            ..with_sa_token.clone()
        },
    ] {
        let selector = (&form.profile_id, &form.profile_crn, &form.profile_name);
        let body = server
            .client()
            .token(&form)
            .await
            .unwrap_or_else(|e| panic!("{selector:?}: {e}"));
        assert!(body.refresh_token.is_none(), "{body:?}");
        assert_eq!(body.token_type, "Bearer");
        let claims = jwt_payload(body.access_token.as_deref().unwrap());
        assert_eq!(claims["sub_type"], "Profile");
        assert_eq!(claims["iam_id"], format!("iam-{id}"));
        assert_eq!(claims["sub"], id);
        assert_eq!(claims["realmid"], "iam");
        assert_eq!(claims["name"], "deployer");
        assert_eq!(claims["account"]["bss"], account.as_str());
        assert_eq!(claims["grant_type"], ASSUME);
        assert_eq!(claims["client_id"], "default");
        assert_eq!(claims["authn"]["iam_id"], sa.iam_id);
        assert_eq!(claims["authn"]["sub"], sa.id);
        assert_eq!(claims["authn"]["sub_type"], "ServiceId");
        assert_eq!(claims["authn"]["name"], sa.name);
        let sa_claims = jwt_payload(&sa_token);
        assert_eq!(claims["acr"], sa_claims["acr"]);
        assert_eq!(claims["amr"], sa_claims["amr"]);
    }

    // The profile token is a credential like any other: whoami and introspection.
    let profile_token = granted(&server.client(), &assume_by_id(&sa_token, id)).await;
    let me = server
        .client()
        .with_token(&profile_token)
        .whoami()
        .await
        .unwrap();
    assert_eq!(me.sub_type, "Profile");
    assert_eq!(me.iam_id, format!("iam-{id}"));
    assert_eq!(me.name, "deployer");
    let introspection = server.introspect(&admin, &profile_token).await;
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["sub_type"], "Profile");

    // Basic client authentication names the client in the token.
    let client = client_in(&typed, "deploy-bot", None).await;
    let body = server
        .client()
        .token_as_client(
            "deploy-bot",
            client.secret.as_deref().unwrap(),
            &assume_by_id(&sa_token, id),
        )
        .await
        .unwrap();
    assert_eq!(
        jwt_payload(body.access_token.as_deref().unwrap())["client_id"],
        "deploy-bot"
    );

    // Deleting the profile ends its tokens.
    typed.delete::<TrustedProfiles>(id).await.unwrap();
    let (status, _) = server.admin_get("/v1/whoami", &profile_token).await;
    assert_eq!(status, 401);
    let (status, body) = assume(
        &server,
        &[("access_token", sa_token.as_str()), ("profile_id", id)],
    )
    .await;
    assert_refused(status, &body, "not found");
}

/// User Ann in `account` (default: the admin's) with an API key; returns (user, apikey).
async fn user_with_key(
    server: &TestServer,
    admin: &Client,
    account: Option<&str>,
) -> (tessera_client::api::admin::UserView, String) {
    let body = UserCreate {
        account_id: account.map(str::to_owned),
        ..user("Ann", "ann@example.com")
    };
    // The user creates its own key: administrators cannot.
    server.user_with_key(admin, body).await
}

#[tokio::test]
async fn assume_with_user_token_refresh_token_cookie_and_t1_token() {
    let server = TestServer::in_process().await;
    let admin = server.admin_client().await;
    let (user, apikey) = user_with_key(&server, &admin, None).await;
    let p = profile(&admin, &named("ops", vec![identity("user", &user.id)])).await;
    let id = p.id.as_str();
    let tokens = server.client().token_from_apikey(&apikey).await.unwrap();
    let access = tokens.access_token.as_deref().unwrap();
    let refresh = tokens.refresh_token.as_deref().unwrap();

    // Raw: `cookie` is a parameter the typed form does not have.
    for field in ["access_token", "cookie"] {
        let (status, body) = assume(&server, &[(field, access), ("profile_id", id)]).await;
        assert_eq!(status, 200, "{field}: {body}");
        let claims = jwt_payload(body["access_token"].as_str().unwrap());
        assert_eq!(claims["authn"]["iam_id"], user.id);
        assert_eq!(claims["authn"]["sub_type"], "user");
        assert_eq!(claims["authn"]["name"], "Ann");
        assert_eq!(claims["acr"], 1);
    }
    // A refresh token of the public default client is redeemable nowhere, assume included
    // (issue 12): no client authenticated to redeem it.
    let (status, body) = assume(&server, &[("refresh_token", refresh), ("profile_id", id)]).await;
    assert_refused(status, &body, "Basic");
    // One issued to a confidential client is redeemed by that client, with Basic.
    let (client_id, secret) = server.login_client().await;
    let apikey_grant = apikey_form(&apikey);
    let issued = server
        .client()
        .token_as_client(&client_id, &secret, &apikey_grant)
        .await
        .unwrap();
    let confidential = issued.refresh_token.unwrap();
    let redeem = IbmTokenRequest {
        refresh_token: Some(confidential),
        profile_id: Some(id.to_owned()),
        ..assume_grant()
    };
    let body = server
        .client()
        .token_as_client(&client_id, &secret, &redeem)
        .await
        .unwrap();
    assert_eq!(
        jwt_payload(body.access_token.as_deref().unwrap())["authn"]["iam_id"],
        user.id
    );

    // A `t1.` IAM token of the same user (Yandex surface, from a long-lived OAuth token the
    // user creates for itself).
    let oauth = server
        .client()
        .with_token(access)
        .create::<OAuthTokens>(&OAuthTokenCreate {
            user_id: user.id.clone(),
            description: None,
        })
        .await
        .unwrap();
    let iam = server
        .client()
        .yandex_token_from_oauth_token(oauth.token.as_deref().unwrap())
        .await
        .unwrap();
    let t1 = iam.iam_token.as_str();
    assert!(t1.starts_with("t1."), "{}", iam.expires_at);
    let body = granted(&server.client(), &assume_by_id(t1, id)).await;
    assert_eq!(jwt_payload(&body)["sub_type"], "Profile");
}

#[tokio::test]
async fn assume_failures_name_the_problem() {
    let server = TestServer::start().await;
    let admin = server.admin_client().await;
    let account = account_of(&admin).await;
    let (sa, apikey) = server.service_account_with_key().await;
    let (_, stranger_key) = server.service_account_with_key().await;
    let (user, user_key) = user_with_key(&server, &admin, None).await;
    let other_account = account_named(&admin, "elsewhere").await;
    let p = profile(
        &admin,
        &named(
            "p",
            vec![
                identity("serviceid", &sa.iam_id),
                TrustedIdentity {
                    accounts: vec![other_account.id.clone()],
                    ..identity("user", &user.id)
                },
            ],
        ),
    )
    .await;
    let id = p.id.as_str();
    let token = server.token(&apikey).await;
    let t = token.as_str();

    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("profile_id", id)],
            "needs one of access_token, refresh_token or cookie",
        ),
        (
            vec![("access_token", t), ("cookie", t), ("profile_id", id)],
            "access_token and cookie",
        ),
        (
            vec![("access_token", t)],
            "needs one of profile_id, profile_crn, or profile_name",
        ),
        (
            vec![
                ("access_token", t),
                ("profile_id", id),
                ("profile_name", "p"),
            ],
            "exactly one of profile_id, profile_crn or profile_name",
        ),
        (
            vec![("access_token", t), ("profile_name", "p")],
            "profile_name needs account",
        ),
        (
            vec![
                ("access_token", t),
                ("profile_id", id),
                ("account", &account),
            ],
            "account is only used with profile_name",
        ),
        (
            vec![("access_token", t), ("profile_id", "Profile-nope")],
            "Trusted profile Profile-nope not found",
        ),
        (
            vec![
                ("access_token", t),
                ("profile_name", "nope"),
                ("account", &account),
            ],
            "has no trusted profile named \"nope\"",
        ),
        (
            vec![("access_token", t), ("profile_crn", "crn:v1:x")],
            "profile_crn is not a CRN",
        ),
        (
            vec![("access_token", "garbage.token.here"), ("profile_id", id)],
            "The access_token is not valid",
        ),
        (
            vec![("refresh_token", "not-a-refresh-token"), ("profile_id", id)],
            "The refresh_token is not valid",
        ),
    ];
    for (form, needle) in cases {
        let (status, body) = assume(&server, &form).await;
        assert_refused(status, &body, needle);
    }

    // An identity the profile does not trust.
    let stranger = server.token(&stranger_key).await;
    let (status, body) = assume(&server, &[("access_token", &stranger), ("profile_id", id)]).await;
    assert_refused(
        status,
        &body,
        "is not a trusted identity of trusted profile",
    );
    assert_eq!(body["errorCode"], "BXNIM0407E");

    // A user trusted only for another account than its token's.
    let user_token = server.token(&user_key).await;
    let (status, body) = assume(
        &server,
        &[("access_token", &user_token), ("profile_id", id)],
    )
    .await;
    assert_refused(
        status,
        &body,
        &format!("only for accounts [{}]", other_account.id),
    );

    // Tenant pin on the profile's account.
    let pinned = |pin: String| {
        server
            .http
            .post(format!("{}/identity/token", server.url))
            .header("IBM-Cloud-Tenant", pin)
            .form(&[
                ("grant_type", ASSUME),
                ("access_token", t),
                ("profile_id", id),
            ])
            .send()
    };
    let response = pinned(other_account.id.clone()).await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_refused(status, &body, "IBM-Cloud-Tenant");
    assert_eq!(body["errorCode"], "BXNIM0513E");
    let response = pinned(account.clone()).await.unwrap();
    assert_eq!(response.status(), 200);
}

/// Sets an account's MFA requirement directly in the store (there is no admin endpoint for it
/// on this branch); the server's snapshot picks the change up from the change feed.
async fn require_totp(server: &TestServer, account: &str) {
    use tessera_core::directory::{Entity, EntityKind};
    let store = server.open_store().await;
    let Some(Entity::Account(mut record)) = store.find(EntityKind::Account, account).await.unwrap()
    else {
        panic!("account {account} missing");
    };
    record.mfa = tessera_core::model::MfaRequirement::Totp;
    store
        .put(
            &Entity::Account(record),
            &tessera_store::AuditEvent {
                at: 0,
                actor: "e2e".into(),
                action: "account.update".into(),
                request_id: "e2e".into(),
                detail: "mfa".into(),
                account_id: None,
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn assume_in_an_mfa_account_refuses_single_factor_user_tokens() {
    let server = TestServer::in_process().await;
    let admin = server.admin_client().await;
    let team = account_named(&admin, "secure").await;
    let team_id = team.id.as_str();
    let sa = service_account_in(&admin, Some(team_id), "svc").await;
    let sa_key = api_key_of(&admin, &sa.iam_id, "k").await;
    let (user, user_key) = user_with_key(&server, &admin, Some(team_id)).await;
    let p = profile(
        &admin,
        &TrustedProfileCreate {
            account_id: Some(team_id.to_owned()),
            ..named(
                "guarded",
                vec![
                    identity("user", &user.id),
                    identity("serviceid", &sa.iam_id),
                ],
            )
        },
    )
    .await;
    let id = p.id.as_str();
    let user_token = server.token(&user_key).await;
    server
        .client()
        .token(&assume_by_id(&user_token, id))
        .await
        .unwrap_or_else(|e| panic!("no MFA required yet: {e}"));

    require_totp(&server, team_id).await;
    // The snapshot follows the store's change feed by polling: wait (bounded) for the change.
    let mut answer = (0, Value::Null);
    for _ in 0..100 {
        answer = assume(
            &server,
            &[("access_token", &user_token), ("profile_id", id)],
        )
        .await;
        if answer.0 != 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, body) = answer;
    assert_refused(status, &body, "MFA level too low");
    assert_refused(
        status,
        &body,
        "requires TOTP (acr 2) and the presented token has acr 1",
    );
    // Service IDs have no second factor: MFA does not apply to them.
    let sa_token = server.token(&sa_key).await;
    granted(&server.client(), &assume_by_id(&sa_token, id)).await;
}

/// A user who logged in with a password and a TOTP code (acr 2) may assume a profile of an
/// MFA-requiring account, with the access token and with the refresh token of that login (the
/// refresh token keeps the login's level).
#[tokio::test]
async fn assume_in_an_mfa_account_accepts_totp_level_user_tokens() {
    use tessera_core::totp;
    const PASSWORD: &str = "Correct-Horse-Battery-9";
    let server = TestServer::start().await;
    let admin = server.admin_client().await;
    let team = account_named(&admin, "secure").await;
    let team_id = team.id.as_str();
    let updated = admin
        .update_account(
            team_id,
            &AccountUpdate {
                mfa: Some("TOTP".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.mfa, tessera_client::api::admin::Mfa::Totp);
    let user = user_in(&admin, Some(team_id), "Eve", "eve@example.com", PASSWORD).await;
    let user_id = user.id.as_str();
    let client = client_in(&admin, "console", Some(team_id)).await;
    let secret = client.secret.as_deref().unwrap();
    let enrolled = admin.enroll_totp(user_id, false, None).await.unwrap();
    let totp_secret = totp::TotpSecret::from_bytes(totp::base32_decode(&enrolled.secret).unwrap());
    let now = crate::harness::unix_now();
    admin
        .confirm_totp(user_id, &totp::code_at(&totp_secret, now))
        .await
        .unwrap();
    let p = profile(
        &admin,
        &TrustedProfileCreate {
            account_id: Some(team_id.to_owned()),
            ..named("guarded", vec![identity("user", user_id)])
        },
    )
    .await;
    let id = p.id.as_str();
    // The next step's code: the confirmation used this step's, and codes are single-use.
    let otp = totp::code_at(&totp_secret, now + totp::STEP);
    let console = |form: IbmTokenRequest| {
        let client = server.client();
        async move { client.token_as_client("console", secret, &form).await }
    };
    let login = console(IbmTokenRequest {
        grant_type: "password".into(),
        username: Some("eve@example.com".into()),
        password: Some(PASSWORD.into()),
        otp: Some(otp),
        ..IbmTokenRequest::default()
    })
    .await
    .unwrap();
    let access = login.access_token.unwrap();
    let refresh = login.refresh_token.unwrap();
    for (field, form) in [
        ("access_token", assume_by_id(&access, id)),
        (
            "refresh_token",
            IbmTokenRequest {
                refresh_token: Some(refresh),
                profile_id: Some(id.to_owned()),
                ..assume_grant()
            },
        ),
    ] {
        let body = console(form)
            .await
            .unwrap_or_else(|e| panic!("{field}: {e}"));
        let claims = jwt_payload(body.access_token.as_deref().unwrap());
        assert_eq!(claims["sub_type"], "Profile", "{field}");
        assert_eq!(claims["acr"], 2, "{field}: {claims}");
        assert_eq!(claims["amr"], json!(["pwd", "otp"]), "{field}: {claims}");
        assert_eq!(claims["authn"]["iam_id"], user_id, "{field}");
    }
}

fn cli(config_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    tessera(config_dir, args, &[])
}

fn cli_ok(config_dir: &std::path::Path, args: &[&str]) -> String {
    ok(cli(config_dir, args))
}

/// The CLI's `--format json` output: the server's view of the profile.
fn cli_json(config_dir: &std::path::Path, args: &[&str]) -> TrustedProfileView {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let text = cli_ok(config_dir, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not a trusted profile ({e}): {text}"))
}

/// The arguments of `tessera iam profile VERB ID MORE...`.
fn profile_command<'a>(verb: &'a str, id: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    [&["iam", "profile", verb, id][..], more].concat()
}

#[tokio::test]
async fn cli_manages_profiles_and_their_parts() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let config = home.path();
    cli_ok(
        config,
        &["login", "--endpoint", &server.url, "--apikey", ADMIN_KEY],
    );
    let (sa, apikey) = server.service_account_with_key().await;
    let sa_iam_id = sa.iam_id.as_str();

    let created = cli_json(
        config,
        &[
            "iam",
            "profile",
            "create",
            "--name",
            "cli-profile",
            "--description",
            "from the CLI",
        ],
    );
    let id = created.id.clone();
    assert!(id.starts_with("Profile-"), "{created:?}");

    let p = cli_json(
        config,
        &profile_command(
            "add-identity",
            &id,
            &["--type", "serviceid", "--identifier", sa_iam_id],
        ),
    );
    assert_eq!(p.identities[0].identifier, sa_iam_id);
    // The CLI's change is real: the service ID can now assume the profile.
    let sa_token = server.token(&apikey).await;
    granted(&server.client(), &assume_by_id(&sa_token, &id)).await;

    let p = cli_json(
        config,
        &profile_command(
            "add-link",
            &id,
            &[
                "--cr-type",
                "IKS_SA",
                "--crn",
                CLUSTER_CRN,
                "--namespace",
                "ci",
                "--name",
                "runner",
            ],
        ),
    );
    let link_id = p.links[0].id.clone().unwrap();
    let p = cli_json(
        config,
        &profile_command(
            "add-rule",
            &id,
            &[
                "--cr-type",
                "IKS_SA",
                "--condition",
                "namespace EQUALS ci",
                "--condition",
                "pod IN a, b",
                "--condition",
                "replicas EQUALS 3",
            ],
        ),
    );
    let conditions = &p.rules[0].conditions;
    assert_eq!(conditions[0].value, "\"ci\"");
    assert_eq!(conditions[1].value, "[\"a\",\"b\"]");
    assert_eq!(conditions[2].value, "3");
    let rule_id = p.rules[0].id.clone().unwrap();

    // A bad condition: the server's message, nothing changed.
    let bad = cli(
        config,
        &profile_command(
            "add-rule",
            &id,
            &["--cr-type", "IKS_SA", "--condition", "a LIKE b"],
        ),
    );
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("operator must be one of"), "{stderr}");

    let table = cli_ok(config, &["iam", "profile", "list"]);
    assert!(
        table.contains(&id) && table.contains("cli-profile"),
        "{table}"
    );
    assert!(
        table.contains(&rule_id) && table.contains(&link_id),
        "{table}"
    );

    let p = cli_json(
        config,
        &["iam", "profile", "update", &id, "--name", "renamed"],
    );
    assert_eq!(p.name, "renamed");
    assert_eq!(p.description, "from the CLI");
    let p = cli_json(config, &["iam", "profile", "remove-rule", &id, &rule_id]);
    assert!(p.rules.is_empty(), "{p:?}");
    let p = cli_json(config, &["iam", "profile", "remove-link", &id, &link_id]);
    assert!(p.links.is_empty(), "{p:?}");
    let p = cli_json(
        config,
        &profile_command("remove-identity", &id, &["--identifier", sa_iam_id]),
    );
    assert!(p.identities.is_empty(), "{p:?}");
    let missing = cli(config, &["iam", "profile", "remove-link", &id, "Link-nope"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("has no link Link-nope"));

    let got = cli_json(config, &["iam", "profile", "get", &id]);
    assert_eq!(got.name, "renamed");
    cli_ok(config, &["iam", "profile", "delete", &id]);
    let (status, _) = server
        .admin_get(
            &format!("/v1/trusted_profiles/{id}"),
            &server.admin_token().await,
        )
        .await;
    assert_eq!(status, 404);
}
