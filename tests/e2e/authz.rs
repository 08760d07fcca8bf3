//! Authorization policies and the `iam-authz` grant: policy CRUD and validation through the
//! admin API, CRN tokens only when a policy allows them, CRN tokens as credentials, and
//! deletion of the policy taking effect at once.

use crate::harness::*;
use serde_json::{json, Value};
use tessera_client::api::admin::{AuthorizationPolicyCreate, AuthorizationPolicyView, ListQuery};
use tessera_client::api::token::{IbmTokenRequest, IbmTokenResponse};
use tessera_client::resource::AuthorizationPolicies;

pub(crate) const AUTHZ_GRANT: &str = "urn:ibm:params:oauth:grant-type:iam-authz";

pub(crate) fn crn(account: &str, instance: &str) -> String {
    format!("crn:v1:bluemix:public:cloud-object-storage:global:a/{account}:{instance}::")
}

async fn authz(server: &TestServer, access_token: &str, desired: &str) -> (u16, Value) {
    let response = server
        .token_response(&[
            ("grant_type", AUTHZ_GRANT),
            ("access_token", access_token),
            ("desired_iam_id", desired),
        ])
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// An `iam-authz` grant that must succeed.
pub(crate) async fn authz_ok(
    server: &TestServer,
    access_token: &str,
    desired: &str,
) -> IbmTokenResponse {
    server
        .client()
        .token(&IbmTokenRequest {
            grant_type: AUTHZ_GRANT.into(),
            access_token: Some(access_token.to_owned()),
            desired_iam_id: Some(desired.to_owned()),
            ..IbmTokenRequest::default()
        })
        .await
        .unwrap_or_else(|e| panic!("iam-authz for {desired}: {e}"))
}

/// A policy letting `source_iam_id` obtain tokens for `target_crn`, created by `admin`.
pub(crate) async fn policy_for(
    server: &TestServer,
    admin: &str,
    source_iam_id: &str,
    target_crn: &str,
) -> AuthorizationPolicyView {
    server
        .client()
        .with_token(admin)
        .create::<AuthorizationPolicies>(&AuthorizationPolicyCreate {
            account_id: None,
            source_iam_id: source_iam_id.to_owned(),
            target_crn: target_crn.to_owned(),
            description: None,
        })
        .await
        .unwrap_or_else(|e| panic!("create policy: {e}"))
}

fn message(body: &Value) -> String {
    body["errorMessage"]
        .as_str()
        .or(body["error"]["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn policy_crud_and_validation() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let (sa, apikey) = server.service_account_with_key().await;
    let account = sa.account_id.clone();
    let target = crn(&account, "bucket-1");
    // The account comes from the CRN's a/<account> scope; ServiceId-… is accepted too.
    let typed = server.client().with_token(&admin);
    let policy = typed
        .create::<AuthorizationPolicies>(&AuthorizationPolicyCreate {
            account_id: None,
            source_iam_id: sa.id.clone(),
            target_crn: target.clone(),
            description: Some("reader".into()),
        })
        .await
        .unwrap();
    assert!(policy.id.starts_with("Policy-"));
    assert_eq!(policy.account_id, account);
    assert_eq!(policy.source_iam_id, sa.iam_id);
    assert_eq!(policy.target_crn, target);
    assert_eq!(policy.description, "reader");
    let id = policy.id.as_str();
    let got = typed.get::<AuthorizationPolicies>(id).await.unwrap();
    assert_eq!(got.id, policy.id);
    // A CRN identity may be a source. A wildcard must stay inside the policy's account: one
    // without a complete a/<account> scope (here it would reach every tenant) is refused.
    let source = format!("crn-{}", crn(&account, "other"));
    let (status, body) = server
        .admin_post(
            "/v1/authorization_policies",
            &admin,
            json!({"source_iam_id": source, "target_crn": "crn:v1:bluemix:public:kms:*"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        message(&body).contains("scoped to the policy's account"),
        "{body}"
    );
    let (status, body) = server
        .admin_post("/v1/authorization_policies", &admin, json!({"source_iam_id": source, "target_crn": format!("crn:v1:bluemix:public:kms:global:a/{account}:*")}))
        .await;
    assert_eq!(status, 201, "{body}");
    let listed = typed
        .list::<AuthorizationPolicies>(&ListQuery {
            source_iam_id: Some(sa.iam_id.clone()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, policy.id);
    let listed = typed
        .list::<AuthorizationPolicies>(&ListQuery {
            account_id: Some(account.clone()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");

    // Validation errors, each naming the problem.
    let other_account = "0123456789abcdef0123456789abcdef";
    let cases = [
        (
            json!({"source_iam_id": sa.iam_id, "target_crn": "not-a-crn"}),
            400,
            "not a CRN",
        ),
        (
            json!({"source_iam_id": sa.iam_id, "target_crn": "arn:aws:*"}),
            400,
            "start with crn:v1:",
        ),
        (
            json!({"source_iam_id": sa.iam_id, "target_crn": "crn:v1:*:x*"}),
            400,
            "only at its end",
        ),
        (
            json!({"source_iam_id": sa.iam_id, "target_crn": crn(other_account, "b"), "account_id": account}),
            400,
            "may only target resources of its own account",
        ),
        (
            json!({"source_iam_id": "someone", "target_crn": target}),
            400,
            "source_iam_id must be",
        ),
        (
            json!({"source_iam_id": "iam-ServiceId-00000000-0000-0000-0000-000000000000", "target_crn": target}),
            404,
            "not found",
        ),
        (
            json!({"source_iam_id": "crn-crn:v1:x", "target_crn": target}),
            400,
            "not a CRN",
        ),
        (
            json!({"source_iam_id": sa.iam_id, "target_crn": target, "color": "red"}),
            400,
            "unknown field",
        ),
        (json!({"target_crn": target}), 400, "source_iam_id"),
        (
            json!({"source_iam_id": "IBMid-nosuch", "target_crn": target}),
            404,
            "source identity IBMid-nosuch not found",
        ),
        // The global admin holds every role; the account must still exist.
        (
            json!({"source_iam_id": sa.iam_id, "target_crn": crn(other_account, "b")}),
            404,
            "account 0123456789abcdef0123456789abcdef not found",
        ),
    ];
    for (body, expected_status, expected) in cases {
        let (status, answer) = server
            .admin_post("/v1/authorization_policies", &admin, body.clone())
            .await;
        assert_eq!(status, expected_status, "{body}: {answer}");
        assert!(message(&answer).contains(expected), "{body}: {answer}");
    }
    // A service account without roles may neither create nor list policies of the account.
    let sa_token = server.token(&apikey).await;
    let (status, _) = server
        .admin_post(
            "/v1/authorization_policies",
            &sa_token,
            json!({"source_iam_id": sa.iam_id, "target_crn": target}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = server
        .admin_get(
            &format!("/v1/authorization_policies?account_id={account}"),
            &sa_token,
        )
        .await;
    assert_eq!(status, 403);
    // Delete.
    let (status, _) = server
        .admin_delete(&format!("/v1/authorization_policies/{id}"), &admin)
        .await;
    assert_eq!(status, 204);
    let (status, _) = server
        .admin_get(&format!("/v1/authorization_policies/{id}"), &admin)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn iam_authz_issues_crn_tokens_only_under_a_policy() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let (sa, apikey) = server.service_account_with_key().await;
    let (other_sa, other_key) = server.service_account_with_key().await;
    let account = sa.account_id.clone();
    let target = crn(&account, "bucket-1");
    let desired = format!("crn-{target}");
    let access = server.token(&apikey).await;

    // No policy yet.
    let (status, body) = authz(&server, &access, &desired).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        message(&body),
        format!(
            "No authorization policy lets {} obtain a token for {target}.",
            sa.iam_id.as_str()
        )
    );
    let policy = policy_for(&server, &admin, &sa.iam_id, &target).await;

    let body = authz_ok(&server, &access, &desired).await;
    assert!(body.refresh_token.is_none(), "{body:?}");
    assert_eq!(body.expires_in, 1800);
    let token = body.access_token.as_deref().unwrap();
    let claims = jwt_payload(token);
    assert_eq!(claims["sub_type"], "CRN");
    assert_eq!(claims["realmid"], "crn");
    assert_eq!(claims["iam_id"], desired.as_str());
    assert_eq!(claims["acr"], 0);
    assert_eq!(claims["amr"], json!([]));
    assert_eq!(claims["account"]["bss"], account.as_str());
    assert_eq!(claims["grant_type"], AUTHZ_GRANT);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        1800
    );
    assert_eq!(claims["authn"]["iam_id"], sa.iam_id);
    assert_eq!(claims["authn"]["sub_type"], "ServiceId");

    // The CRN token is a credential: introspection says active, with its claims.
    let introspected = server.introspect(&access, token).await;
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["sub_type"], "CRN");
    // ... and it authenticates to the admin API (whoami).
    let whoami = server.client().with_token(token).whoami().await.unwrap();
    assert_eq!(whoami.sub_type, "CRN");

    // The pin applies to the policy's account.
    let pinned = server
        .pinned_token_response(
            "0123456789abcdef0123456789abcdef",
            &[
                ("grant_type", AUTHZ_GRANT),
                ("access_token", access.as_str()),
                ("desired_iam_id", desired.as_str()),
            ],
        )
        .await;
    assert_eq!(pinned.status(), 400);

    // Another source, another CRN: refused.
    let other_access = server.token(&other_key).await;
    let (status, body) = authz(&server, &other_access, &desired).await;
    assert_eq!(status, 400);
    assert!(message(&body).contains(other_sa.iam_id.as_str()), "{body}");
    let (status, body) = authz(
        &server,
        &access,
        &format!("crn-{}", crn(&account, "bucket-2")),
    )
    .await;
    assert_eq!(status, 400);
    assert!(message(&body).contains("No authorization policy"), "{body}");

    // Deleting the policy stops new tokens and kills the issued ones.
    server
        .client()
        .with_token(&admin)
        .delete::<AuthorizationPolicies>(&policy.id)
        .await
        .unwrap();
    let (status, _) = authz(&server, &access, &desired).await;
    assert_eq!(status, 400);
    let introspected = server.introspect(&access, token).await;
    assert_eq!(introspected["active"], false, "{introspected}");
}

#[tokio::test]
async fn wildcard_policy_covers_a_prefix() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let (sa, apikey) = server.service_account_with_key().await;
    let account = sa.account_id.clone();
    let prefix = format!("crn:v1:bluemix:public:cloud-object-storage:global:a/{account}:*");
    let policy = policy_for(&server, &admin, &sa.iam_id, &prefix).await;
    assert_eq!(policy.account_id, account);
    let access = server.token(&apikey).await;
    for instance in ["a", "b"] {
        authz_ok(
            &server,
            &access,
            &format!("crn-{}", crn(&account, instance)),
        )
        .await;
    }
    // Outside the prefix (another service).
    let (status, _) = authz(
        &server,
        &access,
        &format!("crn-crn:v1:bluemix:public:kms:global:a/{account}:k::"),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn iam_authz_bad_requests() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let (sa, apikey) = server.service_account_with_key().await;
    let account = sa.account_id.clone();
    let target = crn(&account, "bucket-1");
    policy_for(&server, &admin, &sa.iam_id, &target).await;
    let access = server.token(&apikey).await;
    let desired = format!("crn-{target}");
    // Missing parameters.
    let response = server
        .token_response(&[("grant_type", AUTHZ_GRANT), ("desired_iam_id", &desired)])
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(message(&body).contains("access_token"), "{body}");
    let response = server
        .token_response(&[("grant_type", AUTHZ_GRANT), ("access_token", &access)])
        .await;
    let body: Value = response.json().await.unwrap();
    assert!(message(&body).contains("desired_iam_id"), "{body}");
    // Bad desired_iam_id.
    for (bad, expected) in [
        (target.as_str(), "crn-<CRN>"),
        ("crn-crn:v1:short", "not a CRN"),
        (sa.iam_id.as_str(), "crn-<CRN>"),
    ] {
        let (status, body) = authz(&server, &access, bad).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["errorCode"], "BXNIM0109E", "{body}");
        assert!(message(&body).contains(expected), "{bad}: {body}");
    }
    // An access token that is garbage, then one that was revoked.
    let (status, body) = authz(&server, "not.a.token", &desired).await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (400, Some("BXNIM0407E"))
    );
    assert!(message(&body).contains("access_token"), "{body}");
    let revoked = server.revoke(&access).await;
    assert_eq!(revoked.status(), 200);
    let (status, body) = authz(&server, &access, &desired).await;
    assert_eq!(status, 400);
    assert!(message(&body).contains("revoked"), "{body}");
}

fn cli(server: &TestServer, args: &[&str]) -> std::process::Output {
    let config = server.data_dir().join("cli-config");
    std::fs::create_dir_all(&config).expect("the CLI's configuration directory");
    admin_cli(server, &config, args)
}

fn cli_json(server: &TestServer, args: &[&str]) -> Value {
    json_of(cli(server, args))
}

#[tokio::test]
async fn cli_policy_create_list_get_delete() {
    let server = TestServer::start().await;
    let (sa, _) = server.service_account_with_key().await;
    let account = sa.account_id.clone();
    let target = crn(&account, "cli");
    let sa_id = sa.id.as_str();
    let created = cli_json(
        &server,
        &[
            "iam",
            "policy",
            "create",
            "--source",
            sa_id,
            "--target",
            &target,
            "--description",
            "from the CLI",
            "--format",
            "json",
        ],
    );
    assert_eq!(created["source_iam_id"], sa.iam_id);
    assert_eq!(created["account_id"], account.as_str());
    let id = created["id"].as_str().unwrap();
    let listed = cli_json(
        &server,
        &[
            "iam",
            "policy",
            "list",
            "--source",
            sa.iam_id.as_str(),
            "--format",
            "json",
        ],
    );
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["id"], id);
    let got = cli_json(&server, &["iam", "policy", "get", id, "--format", "json"]);
    assert_eq!(got["target_crn"], target.as_str());
    let table = cli(&server, &["iam", "policies", "ls"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains(id));
    // A bad CRN: the server's message, non-zero exit.
    let bad = cli(
        &server,
        &[
            "iam", "policy", "create", "--source", sa_id, "--target", "nope",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a CRN"));
    assert!(cli(&server, &["iam", "policy", "delete", id])
        .status
        .success());
    assert!(!cli(&server, &["iam", "policy", "get", id]).status.success());
}
