//! The admin API: every resource's create/list/get/delete, authorization by role, error shapes,
//! and deletion taking effect at once.

use crate::harness::*;
use reqwest::Method;
use serde::Serialize;
use serde_json::json;
use tessera_client::api::admin::{
    AccessBindingCreate, AccountCreate, ApiKeyCreate, ListQuery, ServiceAccountCreate, UserView,
};
use tessera_client::resource::{
    AccessBindings, Accounts, ApiKeys, Clients, Enterprises, ServiceAccounts, Users,
};
use tessera_client::{Client, Error, Resource};

/// The status and code of an admin API refusal (`None` if `err` is not one).
fn refusal(err: &Error) -> Option<(u16, &str)> {
    err.api().map(|e| (e.status, e.code.as_str()))
}

/// Object `id` of `R` can be read, and is in the list `query` selects; neither shows a
/// one-time secret.
async fn readable<R>(admin: &Client, id: &str, query: ListQuery)
where
    R: Resource,
    R::Item: Serialize,
{
    let kind = R::KIND;
    let got = admin.get::<R>(id).await.unwrap();
    assert_eq!(R::id(&got), id);
    let shown = serde_json::to_value(&got).unwrap();
    assert!(
        shown.get("apikey").is_none() && shown.get("secret").is_none(),
        "secrets are shown once only: {shown}"
    );
    let list = admin.list::<R>(&query).await.unwrap();
    assert!(list.iter().any(|o| R::id(o) == id), "{kind} list");
}

/// Deleting object `id` of `R` succeeds, and then it is not found.
async fn deleted<R: Resource>(admin: &Client, id: &str) {
    let kind = R::KIND;
    admin
        .delete::<R>(id)
        .await
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
    let err = admin.get::<R>(id).await.unwrap_err();
    assert_eq!(refusal(&err), Some((404, "not_found")), "{kind}: {err}");
}

fn service_account(account_id: &str, name: &str) -> ServiceAccountCreate {
    ServiceAccountCreate {
        account_id: Some(account_id.to_owned()),
        name: name.to_owned(),
        description: None,
    }
}

fn api_key(owner_iam_id: &str, name: &str) -> ApiKeyCreate {
    ApiKeyCreate {
        owner_iam_id: owner_iam_id.to_owned(),
        name: name.to_owned(),
        description: None,
    }
}

#[tokio::test]
async fn crud_of_every_resource() {
    let server = TestServer::in_process().await;
    let admin_token = server.admin_token().await;
    let admin = server.client().with_token(&admin_token);
    let (enterprise, account) = enterprise_with_account(&admin).await;
    let account_id = account.id.as_str();
    assert_eq!(account_id.len(), 32);
    // Raw: the answer must not hold the password in any field the view does not know.
    let user = server.create(&admin_token, "users", json!({"account_id": account_id, "name": "Ada", "email": "ada@example.com", "password": "correct horse battery"})).await;
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let user: UserView = serde_json::from_value(user).unwrap();
    assert!(user.has_password);
    let sa = admin
        .create::<ServiceAccounts>(&ServiceAccountCreate {
            description: Some("builds".into()),
            ..service_account(account_id, "ci")
        })
        .await
        .unwrap();
    let key = admin
        .create::<ApiKeys>(&api_key(&sa.iam_id, "k1"))
        .await
        .unwrap();
    assert!(key.apikey.as_deref().unwrap().starts_with("tsk_"));
    assert_eq!(key.account_id, account_id);
    let client = client_in(&admin, "portal", Some(account_id)).await;
    assert!(client.secret.as_deref().unwrap().starts_with("tcs_"));
    let binding = admin
        .create::<AccessBindings>(&AccessBindingCreate {
            subject_iam_id: user.iam_id.clone(),
            role: "viewer".into(),
            resource: format!("account/{account_id}"),
        })
        .await
        .unwrap();

    let in_account = ListQuery {
        account_id: Some(account_id.into()),
        ..ListQuery::default()
    };
    readable::<Enterprises>(&admin, &enterprise.id, ListQuery::default()).await;
    readable::<Accounts>(&admin, account_id, ListQuery::default()).await;
    readable::<Users>(&admin, &user.id, in_account.clone()).await;
    readable::<ServiceAccounts>(&admin, &sa.id, in_account.clone()).await;
    let owned_by_sa = ListQuery {
        owner_iam_id: Some(sa.iam_id.clone()),
        ..ListQuery::default()
    };
    readable::<ApiKeys>(&admin, &key.id, owned_by_sa).await;
    readable::<Clients>(&admin, &client.id, in_account).await;
    let of_user = ListQuery {
        subject_iam_id: Some(user.iam_id.clone()),
        ..ListQuery::default()
    };
    readable::<AccessBindings>(&admin, &binding.id, of_user).await;

    // Deletion: dependants first, then the account and enterprise.
    let err = admin.delete::<Accounts>(account_id).await.unwrap_err();
    assert_eq!(refusal(&err), Some((409, "failed_precondition")), "{err}");
    deleted::<AccessBindings>(&admin, &binding.id).await;
    deleted::<Clients>(&admin, &client.id).await;
    deleted::<ServiceAccounts>(&admin, &sa.id).await;
    deleted::<Users>(&admin, &user.id).await;
    deleted::<Accounts>(&admin, account_id).await;
    deleted::<Enterprises>(&admin, &enterprise.id).await;
    // The service account's key went with it.
    let err = admin.get::<ApiKeys>(&key.id).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn deleting_a_key_or_identity_takes_effect_at_once() {
    let server = TestServer::in_process().await;
    let admin = server.admin_client().await;
    let (sa, apikey) = server.service_account_with_key().await;
    let sa_iam_id = sa.iam_id.as_str();
    let sa_id = sa.id.as_str();
    let second = admin
        .create::<ApiKeys>(&api_key(sa_iam_id, "second"))
        .await
        .unwrap();
    let second_key = second.apikey.clone().unwrap();
    let anonymous = server.client();
    let token = server.token(&apikey).await;
    let caller = anonymous.with_token(&token);
    caller.whoami().await.unwrap();

    // Delete one key: it fails on the very next request; the other key still works.
    admin.delete::<ApiKeys>(&second.id).await.unwrap();
    let err = anonymous.token_from_apikey(&second_key).await.unwrap_err();
    assert_eq!(
        err.token().map(|e| (e.status, e.code.as_str())),
        Some((400, "BXNIM0415E"))
    );
    server.token(&apikey).await;

    // Delete the service account: its key and its issued token stop working at once.
    admin.delete::<ServiceAccounts>(sa_id).await.unwrap();
    let err = anonymous.token_from_apikey(&apikey).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    let err = caller.whoami().await.unwrap_err();
    assert_eq!(refusal(&err), Some((401, "unauthenticated")));
}

#[tokio::test]
async fn roles_govern_what_callers_may_do() {
    let server = TestServer::in_process().await;
    let admin = server.admin_client().await;
    let account = |name: &str| AccountCreate {
        name: name.into(),
        enterprise_id: None,
    };
    let account_a = admin.create::<Accounts>(&account("a")).await.unwrap().id;
    let account_b = admin.create::<Accounts>(&account("b")).await.unwrap().id;
    // An account admin of A, a viewer of A, and an identity with no role.
    let mk = |account: String, name: &'static str| {
        let server = &server;
        let admin = admin.clone();
        async move {
            let sa = admin
                .create::<ServiceAccounts>(&service_account(&account, name))
                .await
                .unwrap();
            let key = admin
                .create::<ApiKeys>(&api_key(&sa.iam_id, name))
                .await
                .unwrap();
            (sa, server.token(key.apikey.as_deref().unwrap()).await)
        }
    };
    let (a_admin, a_admin_token) = mk(account_a.clone(), "a-admin").await;
    let (a_viewer, a_viewer_token) = mk(account_a.clone(), "a-viewer").await;
    let (_, nobody_token) = mk(account_a.clone(), "nobody").await;
    let as_a_admin = server.client().with_token(a_admin_token);
    let as_a_viewer = server.client().with_token(a_viewer_token);
    let as_nobody = server.client().with_token(&nobody_token);
    for (subject, role) in [(&a_admin, "admin"), (&a_viewer, "viewer")] {
        admin
            .create::<AccessBindings>(&AccessBindingCreate {
                subject_iam_id: subject.iam_id.clone(),
                role: role.into(),
                resource: format!("account/{account_a}"),
            })
            .await
            .unwrap();
    }

    // The account admin manages A but not B, and cannot create accounts.
    as_a_admin
        .create::<ServiceAccounts>(&service_account(&account_a, "x"))
        .await
        .unwrap();
    let err = as_a_admin
        .create::<ServiceAccounts>(&service_account(&account_b, "x"))
        .await
        .unwrap_err();
    assert_eq!(refusal(&err), Some((403, "permission_denied")));
    let err = as_a_admin
        .create::<Accounts>(&account("c"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    let err = as_a_admin
        .create::<AccessBindings>(&AccessBindingCreate {
            subject_iam_id: a_viewer.iam_id.clone(),
            role: "admin".into(),
            resource: "*".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.status(),
        Some(403),
        "an account admin cannot grant global admin"
    );

    // The viewer reads A, writes nothing.
    let in_account = |account: &str| ListQuery {
        account_id: Some(account.to_owned()),
        ..ListQuery::default()
    };
    let list = as_a_viewer
        .list::<ServiceAccounts>(&in_account(&account_a))
        .await
        .unwrap();
    assert!(list.len() >= 3);
    let list = as_a_viewer
        .list::<ServiceAccounts>(&ListQuery::default())
        .await
        .expect("without a filter: the readable accounts");
    assert!(list.iter().all(|s| s.account_id == account_a));
    let err = as_a_viewer
        .create::<ServiceAccounts>(&service_account(&account_a, "x"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    let err = as_a_viewer
        .list::<ServiceAccounts>(&in_account(&account_b))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));

    // No role: nothing but whoami.
    as_nobody.whoami().await.unwrap();
    let err = as_nobody
        .list::<Users>(&in_account(&account_a))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    // The client has no audit call: the log is read raw.
    assert_eq!(server.admin_get("/v1/audit", &nobody_token).await.0, 403);
}

#[tokio::test]
async fn bad_input_gets_the_admin_error_shape() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let cases = [
        (
            "/v1/service_accounts",
            json!({"name": ""}),
            400,
            "invalid_argument",
            "name",
        ),
        (
            "/v1/service_accounts",
            json!({"name": "x", "account_id": "nope"}),
            400,
            "invalid_argument",
            "account_id",
        ),
        (
            "/v1/service_accounts",
            json!({"name": "x", "bogus": 1}),
            400,
            "invalid_argument",
            "bogus",
        ),
        (
            "/v1/service_accounts",
            json!({"name": "x".repeat(200)}),
            400,
            "invalid_argument",
            "name",
        ),
        (
            "/v1/service_accounts",
            json!({"name": "x", "account_id": "0".repeat(32)}),
            404,
            "not_found",
            "account",
        ),
        (
            "/v1/users",
            json!({"name": "x", "email": "not-an-email"}),
            400,
            "invalid_argument",
            "email",
        ),
        (
            "/v1/users",
            json!({"name": "x", "email": "a@b.example", "password": "short"}),
            400,
            "invalid_argument",
            "password",
        ),
        (
            "/v1/users",
            json!({"name": "x", "email": "a@b.example", "password": "long enough", "federated": true}),
            400,
            "invalid_argument",
            "federated",
        ),
        (
            "/v1/api_keys",
            json!({"name": "k", "owner_iam_id": "someone"}),
            400,
            "invalid_argument",
            "owner_iam_id",
        ),
        (
            "/v1/api_keys",
            json!({"name": "k", "owner_iam_id": "iam-ServiceId-missing"}),
            404,
            "not_found",
            "identity",
        ),
        (
            "/v1/clients",
            json!({"id": "has space"}),
            400,
            "invalid_argument",
            "id",
        ),
        (
            "/v1/clients",
            json!({"id": "default"}),
            400,
            "invalid_argument",
            "reserved",
        ),
        (
            "/v1/access_bindings",
            json!({"subject_iam_id": "IBMid-X", "role": "owner", "resource": "*"}),
            400,
            "invalid_argument",
            "role",
        ),
        (
            "/v1/access_bindings",
            json!({"subject_iam_id": "IBMid-X", "role": "admin", "resource": "planet/x"}),
            400,
            "invalid_argument",
            "resource",
        ),
    ];
    for (path, body, status, code, fragment) in cases {
        let (got, response) = server.admin_post(path, &admin, body.clone()).await;
        assert_eq!(got, status, "{path} {body}: {response}");
        assert_eq!(response["error"]["code"], code, "{response}");
        assert!(
            response["error"]["message"]
                .as_str()
                .unwrap()
                .contains(fragment),
            "{fragment}: {response}"
        );
        assert!(response["error"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()));
    }
    // Duplicates are conflicts.
    server.create(&admin, "clients", json!({"id": "dup"})).await;
    let (status, body) = server
        .admin_post("/v1/clients", &admin, json!({"id": "dup"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("already_exists"))
    );
    // Not JSON, wrong content type, too large, bad limit.
    for (content_type, body, status) in [
        (Some("application/json"), b"{".to_vec(), 400),
        (None, b"name=x".to_vec(), 400),
        (Some("application/json"), vec![b' '; 70_000], 413),
    ] {
        let mut request = server
            .http
            .post(format!("{}/v1/service_accounts", server.url))
            .bearer_auth(&admin)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{content_type:?}");
    }
    assert_eq!(server.admin_get("/v1/users?limit=0", &admin).await.0, 400);
    assert_eq!(
        server.admin_get("/v1/users?limit=5000", &admin).await.0,
        400
    );
    // No token, a garbage token.
    let response = server.get("/v1/whoami").await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(server.admin_get("/v1/whoami", "garbage").await.0, 401);
}

#[tokio::test]
async fn openapi_and_audit() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let doc = server.get_json("/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/api_keys"]["post"].is_object());
    // Generated, not hand-written: no OpenAPI 3.0 `nullable`, whoami's `id` documented, a
    // bearer scheme, and the token surfaces a resource service calls.
    assert!(!doc.to_string().contains("\"nullable\""));
    assert_eq!(
        doc["components"]["schemas"]["WhoAmI"]["properties"]["id"]["type"],
        "string"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for path in [
        "/identity/token",
        "/identity/introspect",
        "/identity/revoke",
        "/identity/keys",
        "/.well-known/openid-configuration",
        "/iam/v1/tokens",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
    // Every documented operation is served: the router neither says "no such endpoint" nor
    // 405 to any of them (the unit test `api_doc::every_route_the_server_serves_is_documented`
    // checks the other direction).
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "does-not-exist");
        for (method, operation) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let form = operation["requestBody"]["content"]
                .get("application/x-www-form-urlencoded")
                .is_some();
            let mut request = server
                .http
                .request(method.clone(), format!("{}{concrete}", server.url))
                .bearer_auth(&admin);
            if operation.get("requestBody").is_some() {
                request = if form {
                    request
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body("")
                } else {
                    request.json(&json!({}))
                };
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path} is documented but not served");
            assert!(
                !text.contains("no such endpoint"),
                "{method} {path} is documented but not served: {status} {text}"
            );
            assert!(
                status < 500 || path == "/readyz",
                "{method} {path}: {status} {text}"
            );
            operations += 1;
        }
    }
    assert!(operations > 60, "only {operations} operations documented");
    let sa = server
        .create(&admin, "service_accounts", json!({"name": "audited"}))
        .await;
    let (status, audit) = server.admin_get("/v1/audit?limit=5", &admin).await;
    assert_eq!(status, 200);
    let newest = &audit["events"][0];
    assert_eq!(newest["action"], "service_account.create");
    assert_eq!(newest["target_id"], sa["id"]);
    assert_eq!(newest["actor"], jwt_payload(&admin)["iam_id"]);
}
