//! Trusted profiles: the admin API (create, list, replace, validation of each field) and the
//! `assume` grant (selectors, every kind of presented credential, trust, MFA level, tenant pin,
//! the claims of profile tokens and their use as credentials).

use crate::harness::*;
use reqwest::Method;
use serde_json::{json, Value};

const ASSUME: &str = "urn:ibm:params:oauth:grant-type:assume";
const CLUSTER_CRN: &str =
    "crn:v1:bluemix:public:containers-kubernetes:us-south:a/0123456789abcdef0123456789abcdef:c1::";

/// The admin's own account id.
async fn admin_account(server: &TestServer, admin: &str) -> String {
    let (_, me) = server.admin(Method::GET, "/v1/whoami", admin, None).await;
    me["account_id"].as_str().unwrap().to_owned()
}

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

async fn profile(server: &TestServer, admin: &str, body: Value) -> Value {
    server.create(admin, "trusted_profiles", body).await
}

#[tokio::test]
async fn admin_api_creates_lists_replaces_and_validates_profiles() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let account = admin_account(&server, &admin).await;
    let created = profile(
        &server,
        &admin,
        json!({
            "name": "builders",
            "description": "CI",
            "identities": [{"type": "serviceid", "identifier": "ServiceId-0000-1111"}],
            "links": [{"cr_type": "IKS_SA", "crn": CLUSTER_CRN, "namespace": "ci", "name": "runner"}],
            "rules": [{"type": "Profile-CR", "cr_type": "IKS_SA", "conditions": [
                {"claim": "namespace", "operator": "IN", "value": "[\"ci\",\"prod\"]"}]}]
        }),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("Profile-"), "{created}");
    assert_eq!(created["iam_id"], format!("iam-{id}"));
    assert_eq!(created["account_id"], account.as_str());
    assert!(created["crn"]
        .as_str()
        .unwrap()
        .ends_with(&format!(":profile:{id}")));
    assert_eq!(
        created["identities"][0]["identifier"], "iam-ServiceId-0000-1111",
        "service IDs are normalised to their iam_id"
    );
    assert!(created["links"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("Link-"));
    assert!(created["rules"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("ClaimRule-"));

    let (status, list) = server
        .admin(
            Method::GET,
            &format!("/v1/trusted_profiles?account_id={account}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["trusted_profiles"][0]["id"], id.as_str());

    // Replace: rename, drop the link, keep the rule id given back.
    let rule_id = created["rules"][0]["id"].clone();
    let (status, replaced) = server
        .admin(
            Method::PUT,
            &format!("/v1/trusted_profiles/{id}"),
            &admin,
            Some(json!({"name": "builders-2", "identities": [],
                "rules": [{"id": rule_id, "type": "Profile-CR", "cr_type": "CE",
                    "conditions": [{"claim": "x", "operator": "EQUALS", "value": "true"}]}]})),
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["name"], "builders-2");
    assert_eq!(replaced["id"], id.as_str());
    assert_eq!(replaced["created_at"], created["created_at"]);
    assert_eq!(replaced["links"], json!([]));
    assert_eq!(replaced["rules"][0]["id"], rule_id);
    let (_, got) = server
        .admin(
            Method::GET,
            &format!("/v1/trusted_profiles/{id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(got, replaced);

    // Names are unique per account, on create and on rename.
    let other = profile(&server, &admin, json!({"name": "other"})).await;
    let (status, body) = server
        .admin(
            Method::POST,
            "/v1/trusted_profiles",
            &admin,
            Some(json!({"name": "builders-2"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = server
        .admin(
            Method::PUT,
            &format!("/v1/trusted_profiles/{}", other["id"].as_str().unwrap()),
            &admin,
            Some(json!({"name": "builders-2"})),
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
            .admin(
                Method::POST,
                "/v1/trusted_profiles",
                &admin,
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 400, "{body} -> {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{body}: {message:?} lacks {needle:?}"
        );
    }
    let (status, _) = server
        .admin(
            Method::PUT,
            "/v1/trusted_profiles/Profile-missing",
            &admin,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, 404);
    let (_, list) = server
        .admin(Method::GET, "/v1/trusted_profiles", &admin, None)
        .await;
    assert_eq!(
        list["trusted_profiles"].as_array().unwrap().len(),
        2,
        "{list}"
    );

    // A caller without a role on the account can neither read nor write.
    let (_, outsider_key) = server.service_account_with_key().await;
    let outsider = server.token(&outsider_key).await;
    let (status, _) = server
        .admin(
            Method::POST,
            "/v1/trusted_profiles",
            &outsider,
            Some(json!({"name": "mine"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = server
        .admin(
            Method::GET,
            &format!("/v1/trusted_profiles/{id}"),
            &outsider,
            None,
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn assume_with_a_service_id_token_by_id_crn_and_name() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let account = admin_account(&server, &admin).await;
    let (sa, apikey) = server.service_account_with_key().await;
    let p = profile(
        &server,
        &admin,
        json!({"name": "deployer", "identities": [{"type": "serviceid", "identifier": sa["iam_id"]}]}),
    )
    .await;
    let id = p["id"].as_str().unwrap();
    let crn = p["crn"].as_str().unwrap();
    let sa_token = server.token(&apikey).await;

    for selector in [
        vec![("profile_id", id)],
        vec![("profile_crn", crn)],
        vec![("profile_name", "deployer"), ("account", account.as_str())],
    ] {
        let mut form = vec![("access_token", sa_token.as_str())];
        form.extend(selector.iter().copied());
        let (status, body) = assume(&server, &form).await;
        assert_eq!(status, 200, "{selector:?}: {body}");
        assert!(body.get("refresh_token").is_none(), "{body}");
        assert_eq!(body["token_type"], "Bearer");
        let claims = jwt_payload(body["access_token"].as_str().unwrap());
        assert_eq!(claims["sub_type"], "Profile");
        assert_eq!(claims["iam_id"], format!("iam-{id}"));
        assert_eq!(claims["sub"], id);
        assert_eq!(claims["realmid"], "iam");
        assert_eq!(claims["name"], "deployer");
        assert_eq!(claims["account"]["bss"], account.as_str());
        assert_eq!(claims["grant_type"], ASSUME);
        assert_eq!(claims["client_id"], "default");
        assert_eq!(claims["authn"]["iam_id"], sa["iam_id"]);
        assert_eq!(claims["authn"]["sub"], sa["id"]);
        assert_eq!(claims["authn"]["sub_type"], "ServiceId");
        assert_eq!(claims["authn"]["name"], sa["name"]);
        let sa_claims = jwt_payload(&sa_token);
        assert_eq!(claims["acr"], sa_claims["acr"]);
        assert_eq!(claims["amr"], sa_claims["amr"]);
    }

    // The profile token is a credential like any other: whoami and introspection.
    let (_, body) = assume(
        &server,
        &[("access_token", sa_token.as_str()), ("profile_id", id)],
    )
    .await;
    let profile_token = body["access_token"].as_str().unwrap().to_owned();
    let (status, me) = server
        .admin(Method::GET, "/v1/whoami", &profile_token, None)
        .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["sub_type"], "Profile");
    assert_eq!(me["iam_id"], format!("iam-{id}"));
    assert_eq!(me["name"], "deployer");
    let introspection: Value = server
        .http
        .post(format!("{}/identity/introspect", server.url))
        .bearer_auth(&admin)
        .form(&[("token", profile_token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["sub_type"], "Profile");

    // Basic client authentication names the client in the token.
    let (_, client) = server
        .admin(
            Method::POST,
            "/v1/clients",
            &admin,
            Some(json!({"id": "deploy-bot"})),
        )
        .await;
    let response = server
        .http
        .post(format!("{}/identity/token", server.url))
        .basic_auth("deploy-bot", client["secret"].as_str())
        .form(&[
            ("grant_type", ASSUME),
            ("access_token", sa_token.as_str()),
            ("profile_id", id),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        jwt_payload(body["access_token"].as_str().unwrap())["client_id"],
        "deploy-bot"
    );

    // Deleting the profile ends its tokens.
    let (status, _) = server
        .admin(
            Method::DELETE,
            &format!("/v1/trusted_profiles/{id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = server
        .admin(Method::GET, "/v1/whoami", &profile_token, None)
        .await;
    assert_eq!(status, 401);
    let (status, body) = assume(
        &server,
        &[("access_token", sa_token.as_str()), ("profile_id", id)],
    )
    .await;
    assert_refused(status, &body, "not found");
}

/// A user in the admin's account with an API key; returns (user, apikey).
async fn user_with_key(server: &TestServer, admin: &str, account: Option<&str>) -> (Value, String) {
    let mut body = json!({"name": "Ann", "email": "ann@example.com"});
    if let Some(account) = account {
        body["account_id"] = json!(account);
    }
    // The user creates its own key: administrators cannot.
    server.user_with_key(admin, body).await
}

#[tokio::test]
async fn assume_with_user_token_refresh_token_cookie_and_t1_token() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let (user, apikey) = user_with_key(&server, &admin, None).await;
    let p = profile(
        &server,
        &admin,
        json!({"name": "ops", "identities": [{"type": "user", "identifier": user["id"]}]}),
    )
    .await;
    let id = p["id"].as_str().unwrap();
    let response = server
        .token_response(&[("grant_type", APIKEY_GRANT), ("apikey", apikey.as_str())])
        .await;
    let tokens: Value = response.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    for field in ["access_token", "cookie"] {
        let (status, body) = assume(&server, &[(field, access), ("profile_id", id)]).await;
        assert_eq!(status, 200, "{field}: {body}");
        let claims = jwt_payload(body["access_token"].as_str().unwrap());
        assert_eq!(claims["authn"]["iam_id"], user["id"]);
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
    let issued: Value = server
        .http
        .post(format!("{}/identity/token", server.url))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", APIKEY_GRANT), ("apikey", apikey.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let confidential = issued["refresh_token"].as_str().unwrap();
    let answer: reqwest::Response = server
        .http
        .post(format!("{}/identity/token", server.url))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", ASSUME),
            ("refresh_token", confidential),
            ("profile_id", id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        jwt_payload(body["access_token"].as_str().unwrap())["authn"]["iam_id"],
        user["id"]
    );

    // A `t1.` IAM token of the same user (Yandex surface, from a long-lived OAuth token the
    // user creates for itself).
    let oauth = server
        .create(access, "oauth_tokens", json!({"user_id": user["id"]}))
        .await;
    let iam: Value = server
        .http
        .post(format!("{}/iam/v1/tokens", server.url))
        .json(&json!({"yandexPassportOauthToken": oauth["token"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t1 = iam["iamToken"].as_str().unwrap();
    assert!(t1.starts_with("t1."), "{iam}");
    let (status, body) = assume(&server, &[("access_token", t1), ("profile_id", id)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_payload(body["access_token"].as_str().unwrap())["sub_type"],
        "Profile"
    );
}

#[tokio::test]
async fn assume_failures_name_the_problem() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let account = admin_account(&server, &admin).await;
    let (sa, apikey) = server.service_account_with_key().await;
    let (_, stranger_key) = server.service_account_with_key().await;
    let (user, user_key) = user_with_key(&server, &admin, None).await;
    let other_account = server
        .create(&admin, "accounts", json!({"name": "elsewhere"}))
        .await;
    let p = profile(
        &server,
        &admin,
        json!({"name": "p", "identities": [
            {"type": "serviceid", "identifier": sa["iam_id"]},
            {"type": "user", "identifier": user["id"], "accounts": [other_account["id"]]}
        ]}),
    )
    .await;
    let id = p["id"].as_str().unwrap();
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
        &format!(
            "only for accounts [{}]",
            other_account["id"].as_str().unwrap()
        ),
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
    let response = pinned(other_account["id"].as_str().unwrap().to_owned())
        .await
        .unwrap();
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
    let admin = server.admin_token().await;
    let team = server
        .create(&admin, "accounts", json!({"name": "secure"}))
        .await;
    let team_id = team["id"].as_str().unwrap();
    let sa = server
        .create(
            &admin,
            "service_accounts",
            json!({"name": "svc", "account_id": team_id}),
        )
        .await;
    let sa_key = server
        .create(
            &admin,
            "api_keys",
            json!({"owner_iam_id": sa["iam_id"], "name": "k"}),
        )
        .await;
    let (user, user_key) = user_with_key(&server, &admin, Some(team_id)).await;
    let p = profile(
        &server,
        &admin,
        json!({"account_id": team_id, "name": "guarded", "identities": [
            {"type": "user", "identifier": user["id"]},
            {"type": "serviceid", "identifier": sa["iam_id"]}
        ]}),
    )
    .await;
    let id = p["id"].as_str().unwrap();
    let user_token = server.token(&user_key).await;
    let (status, _) = assume(
        &server,
        &[("access_token", &user_token), ("profile_id", id)],
    )
    .await;
    assert_eq!(status, 200, "no MFA required yet");

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
    let sa_token = server.token(sa_key["apikey"].as_str().unwrap()).await;
    let (status, body) = assume(&server, &[("access_token", &sa_token), ("profile_id", id)]).await;
    assert_eq!(status, 200, "{body}");
}

/// A user who logged in with a password and a TOTP code (acr 2) may assume a profile of an
/// MFA-requiring account, with the access token and with the refresh token of that login (the
/// refresh token keeps the login's level).
#[tokio::test]
async fn assume_in_an_mfa_account_accepts_totp_level_user_tokens() {
    use tessera_core::totp;
    const PASSWORD: &str = "Correct-Horse-Battery-9";
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let team = server
        .create(&admin, "accounts", json!({"name": "secure"}))
        .await;
    let team_id = team["id"].as_str().unwrap();
    let (status, body) = server
        .admin(
            Method::PATCH,
            &format!("/v1/accounts/{team_id}"),
            &admin,
            Some(json!({"mfa": "TOTP"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let user = server
        .create(
            &admin,
            "users",
            json!({"name": "Eve", "email": "eve@example.com", "password": PASSWORD, "account_id": team_id}),
        )
        .await;
    let user_id = user["id"].as_str().unwrap();
    let client = server
        .create(
            &admin,
            "clients",
            json!({"id": "console", "account_id": team_id}),
        )
        .await;
    let secret = client["secret"].as_str().unwrap();
    let (status, enrolled) = server
        .admin(
            Method::POST,
            &format!("/v1/users/{user_id}/totp"),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 201, "{enrolled}");
    let totp_secret = totp::TotpSecret::from_bytes(
        totp::base32_decode(enrolled["secret"].as_str().unwrap()).unwrap(),
    );
    let now = crate::harness::unix_now();
    let (status, body) = server
        .admin(
            Method::POST,
            &format!("/v1/users/{user_id}/totp/confirm"),
            &admin,
            Some(json!({"code": totp::code_at(&totp_secret, now)})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let p = profile(
        &server,
        &admin,
        json!({"account_id": team_id, "name": "guarded", "identities": [
            {"type": "user", "identifier": user_id}
        ]}),
    )
    .await;
    let id = p["id"].as_str().unwrap();
    // The next step's code: the confirmation used this step's, and codes are single-use.
    let otp = totp::code_at(&totp_secret, now + totp::STEP);
    let post = |form: Vec<(&'static str, String)>| {
        server
            .http
            .post(format!("{}/identity/token", server.url))
            .basic_auth("console", Some(secret))
            .form(&form)
            .send()
    };
    let login = post(vec![
        ("grant_type", "password".into()),
        ("username", "eve@example.com".into()),
        ("password", PASSWORD.into()),
        ("otp", otp),
    ])
    .await
    .unwrap();
    assert_eq!(login.status(), 200);
    let login: Value = login.json().await.unwrap();
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    for (field, credential) in [("access_token", access), ("refresh_token", refresh)] {
        let answer = post(vec![
            ("grant_type", ASSUME.into()),
            (field, credential),
            ("profile_id", id.to_owned()),
        ])
        .await
        .unwrap();
        assert_eq!(answer.status(), 200, "{field}");
        let body: Value = answer.json().await.unwrap();
        let claims = jwt_payload(body["access_token"].as_str().unwrap());
        assert_eq!(claims["sub_type"], "Profile", "{field}");
        assert_eq!(claims["acr"], 2, "{field}: {claims}");
        assert_eq!(claims["amr"], json!(["pwd", "otp"]), "{field}: {claims}");
        assert_eq!(claims["authn"]["iam_id"], user_id, "{field}");
    }
}

fn cli(config_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(binary())
        .args(args)
        .env("TESSERA_CONFIG_DIR", config_dir)
        .env_remove("TESSERA_ENDPOINT")
        .env_remove("TESSERA_APIKEY")
        .env_remove("TESSERA_PROFILE")
        .output()
        .expect("run tessera")
}

fn cli_ok(config_dir: &std::path::Path, args: &[&str]) -> String {
    let output = cli(config_dir, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn cli_json(config_dir: &std::path::Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let text = cli_ok(config_dir, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
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
    let sa_iam_id = sa["iam_id"].as_str().unwrap();

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
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("Profile-"), "{created}");

    let p = cli_json(
        config,
        &[
            "iam",
            "profile",
            "add-identity",
            &id,
            "--type",
            "serviceid",
            "--identifier",
            sa_iam_id,
        ],
    );
    assert_eq!(p["identities"][0]["identifier"], sa_iam_id);
    // The CLI's change is real: the service ID can now assume the profile.
    let sa_token = server.token(&apikey).await;
    let (status, body) = assume(
        &server,
        &[
            ("access_token", sa_token.as_str()),
            ("profile_id", id.as_str()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let p = cli_json(
        config,
        &[
            "iam",
            "profile",
            "add-link",
            &id,
            "--cr-type",
            "IKS_SA",
            "--crn",
            CLUSTER_CRN,
            "--namespace",
            "ci",
            "--name",
            "runner",
        ],
    );
    let link_id = p["links"][0]["id"].as_str().unwrap().to_owned();
    let p = cli_json(
        config,
        &[
            "iam",
            "profile",
            "add-rule",
            &id,
            "--cr-type",
            "IKS_SA",
            "--condition",
            "namespace EQUALS ci",
            "--condition",
            "pod IN a, b",
            "--condition",
            "replicas EQUALS 3",
        ],
    );
    let conditions = &p["rules"][0]["conditions"];
    assert_eq!(conditions[0]["value"], "\"ci\"");
    assert_eq!(conditions[1]["value"], "[\"a\",\"b\"]");
    assert_eq!(conditions[2]["value"], "3");
    let rule_id = p["rules"][0]["id"].as_str().unwrap().to_owned();

    // A bad condition: the server's message, nothing changed.
    let bad = cli(
        config,
        &[
            "iam",
            "profile",
            "add-rule",
            &id,
            "--cr-type",
            "IKS_SA",
            "--condition",
            "a LIKE b",
        ],
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
    assert_eq!(p["name"], "renamed");
    assert_eq!(p["description"], "from the CLI");
    let p = cli_json(config, &["iam", "profile", "remove-rule", &id, &rule_id]);
    assert_eq!(p["rules"], serde_json::json!([]));
    let p = cli_json(config, &["iam", "profile", "remove-link", &id, &link_id]);
    assert_eq!(p["links"], serde_json::json!([]));
    let p = cli_json(
        config,
        &[
            "iam",
            "profile",
            "remove-identity",
            &id,
            "--identifier",
            sa_iam_id,
        ],
    );
    assert_eq!(p["identities"], serde_json::json!([]));
    let missing = cli(config, &["iam", "profile", "remove-link", &id, "Link-nope"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("has no link Link-nope"));

    let got = cli_json(config, &["iam", "profile", "get", &id]);
    assert_eq!(got["name"], "renamed");
    cli_ok(config, &["iam", "profile", "delete", &id]);
    let (status, _) = server
        .admin(
            Method::GET,
            &format!("/v1/trusted_profiles/{id}"),
            &server.admin_token().await,
            None,
        )
        .await;
    assert_eq!(status, 404);
}
