//! Delegated refresh tokens: issued by the API-key grant (`response_type=delegated_refresh_token`
//! alone or with `cloud_iam`), redeemed only by listed receiver clients with Basic (both the
//! `delegated-refresh-token` and the `refresh_token` grant), refused to everyone else, killed by
//! RFC 7009 revocation and by "revoke everything for this identity"; plus the refresh grant's
//! guarantees that live next to them.

use crate::harness::*;
use serde_json::{json, Value};
use tessera_client::api::token::{IbmTokenRequest, IbmTokenResponse};

const DRT_GRANT: &str = "urn:ibm:params:oauth:grant-type:delegated-refresh-token";

/// A server with clients `issuer`, `receiver` and `bystander`, and a service account key.
struct Setup {
    server: TestServer,
    secrets: std::collections::HashMap<&'static str, String>,
    sa: tessera_client::api::admin::ServiceAccountView,
    apikey: String,
}

impl Setup {
    async fn new() -> Setup {
        let server = TestServer::in_process().await;
        let admin = server.admin_client().await;
        let mut secrets = std::collections::HashMap::new();
        for id in ["issuer", "receiver", "bystander"] {
            secrets.insert(id, client_secret(&admin, id).await);
        }
        let (sa, apikey) = server.service_account_with_key().await;
        Setup {
            server,
            secrets,
            sa,
            apikey,
        }
    }

    /// A token request that must succeed, with Basic of `client` if given.
    async fn grant(&self, client: Option<&str>, form: &IbmTokenRequest) -> IbmTokenResponse {
        let typed = self.server.client();
        match client {
            Some(id) => typed.token_as_client(id, &self.secrets[id], form).await,
            None => typed.token(form).await,
        }
        .unwrap_or_else(|e| panic!("{} grant refused: {e}", form.grant_type))
    }

    /// The API-key grant of the service account's key with `response_type` and receivers.
    fn apikey_grant(&self, response_type: &str, receivers: &str) -> IbmTokenRequest {
        IbmTokenRequest {
            response_type: Some(response_type.to_owned()),
            receiver_client_ids: Some(receivers.to_owned()),
            ..apikey_form(&self.apikey)
        }
    }

    /// Raw: for refusals (their IBM error shape) and answers checked field by field on the wire.
    /// POSTs a token request, with Basic of `client` if given; returns status and body.
    async fn post(&self, client: Option<&str>, form: &[(&str, &str)]) -> (u16, Value) {
        let client = client.map(|id| (id, self.secrets[id].as_str()));
        let response = self.server.post_form("/identity/token", client, form).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// [`Setup::post`] of the API-key grant of the service account's key, with `extra` fields.
    async fn post_apikey(&self, client: Option<&str>, extra: &[(&str, &str)]) -> (u16, Value) {
        let mut form = vec![
            ("grant_type", APIKEY_GRANT),
            ("apikey", self.apikey.as_str()),
        ];
        form.extend_from_slice(extra);
        self.post(client, &form).await
    }

    /// [`Setup::post`] of the grant `grant_type` (the DRT grant or `refresh_token`) of
    /// `refresh_token`, by `client`.
    async fn redeem(&self, client: &str, grant_type: &str, refresh_token: &str) -> (u16, Value) {
        let form = [("grant_type", grant_type), ("refresh_token", refresh_token)];
        self.post(Some(client), &form).await
    }

    /// RFC 7009 revocation of `token` by `client` (Basic): the answer's status.
    async fn revoke(&self, client: &str, token: &str) -> u16 {
        let client = Some((client, self.secrets[client].as_str()));
        let response = self
            .server
            .post_form("/identity/revoke", client, &[("token", token)])
            .await;
        response.status().as_u16()
    }

    /// A DRT for `receiver`, issued to `issuer`, with the given `scope` and lifetime (`expiry`).
    async fn drt(&self, scope: Option<&str>, expiry: Option<&str>) -> String {
        let form = IbmTokenRequest {
            scope: scope.map(str::to_owned),
            delegated_refresh_token_expiry: expiry.map(str::to_owned),
            ..self.apikey_grant("delegated_refresh_token", "receiver")
        };
        self.grant(Some("issuer"), &form)
            .await
            .delegated_refresh_token
            .expect("delegated_refresh_token")
    }
}

fn message(body: &Value) -> &str {
    body["errorMessage"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn delegated_only_response_carries_the_drt_alone() {
    let setup = Setup::new().await;
    // Raw: the test is about which fields the answer carries on the wire.
    let (status, body) = setup
        .post_apikey(
            Some("issuer"),
            &[
                ("response_type", "delegated_refresh_token"),
                ("receiver_client_ids", "receiver"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["delegated_refresh_token"].as_str().unwrap().len() > 40);
    assert!(body.get("access_token").is_none(), "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    // The DRT's lifetime: the default 518400 s (6 days).
    assert_eq!(body["expires_in"], 518_400);
    let expiration = body["expiration"].as_i64().unwrap();
    let now = crate::harness::unix_now();
    assert!((expiration - now - 518_400).abs() < 10);
    assert_eq!(body["token_type"], "Bearer");
}

#[tokio::test]
async fn cloud_iam_and_delegated_gives_both_in_either_order() {
    let setup = Setup::new().await;
    for response_type in [
        "cloud_iam delegated_refresh_token",
        "delegated_refresh_token cloud_iam",
    ] {
        let form = IbmTokenRequest {
            delegated_refresh_token_expiry: Some("3600".into()),
            ..setup.apikey_grant(response_type, "receiver, bystander")
        };
        let body = setup.grant(None, &form).await;
        let claims = jwt_payload(body.access_token.as_deref().unwrap());
        assert_eq!(claims["client_id"], "default");
        assert_eq!(claims["iam_id"], setup.sa.iam_id);
        assert!(body.refresh_token.is_some());
        // expires_in describes the access token here.
        assert_eq!(body.expires_in, 3600);
        let drt = body.delegated_refresh_token.as_deref().unwrap();
        // Both listed receivers may redeem it.
        for receiver in ["receiver", "bystander"] {
            let redeemed = setup
                .grant(
                    Some(receiver),
                    &IbmTokenRequest {
                        grant_type: DRT_GRANT.into(),
                        refresh_token: Some(drt.to_owned()),
                        ..IbmTokenRequest::default()
                    },
                )
                .await;
            let claims = jwt_payload(redeemed.access_token.as_deref().unwrap());
            assert_eq!(claims["client_id"], receiver);
        }
    }
}

#[tokio::test]
async fn receiver_redeems_with_both_grants() {
    let setup = Setup::new().await;
    let drt = setup.drt(Some("custom"), None).await;
    // The delegated-refresh-token grant, DRT in refresh_token.
    let (status, body) = setup.redeem("receiver", DRT_GRANT, &drt).await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt_payload(body["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], "receiver");
    assert_eq!(claims["iam_id"], setup.sa.iam_id);
    assert_eq!(claims["grant_type"], DRT_GRANT);
    assert_eq!(claims["scope"], "ibm openid custom");
    // No refresh token: the DRT itself stays the receiver's refresh credential.
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body.get("delegated_refresh_token").is_none(), "{body}");
    // The same grant with the DRT in delegated_refresh_token; it can be used again.
    let (status, body) = setup
        .post(
            Some("receiver"),
            &[("grant_type", DRT_GRANT), ("delegated_refresh_token", &drt)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The plain refresh_token grant with the receiver's Basic.
    let (status, body) = setup.redeem("receiver", "refresh_token", &drt).await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt_payload(body["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], "receiver");
    assert!(body.get("refresh_token").is_none(), "{body}");
    // The access token works as a credential (introspection by the receiver).
    let introspected = setup
        .server
        .introspect_as_client(
            "receiver",
            &setup.secrets["receiver"],
            body["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(introspected["active"], true);
    // The receiver sees the DRT itself as active, naming its receivers.
    let introspected = setup
        .server
        .introspect_as_client("receiver", &setup.secrets["receiver"], &drt)
        .await;
    assert_eq!(introspected["token_type"], "delegated_refresh_token");
    assert_eq!(introspected["receiver_client_ids"], json!(["receiver"]));
}

#[tokio::test]
async fn only_listed_receivers_with_basic_may_redeem() {
    let setup = Setup::new().await;
    let drt = setup.drt(None, None).await;
    for grant in [DRT_GRANT, "refresh_token"] {
        // No Basic.
        let (status, body) = setup
            .post(None, &[("grant_type", grant), ("refresh_token", &drt)])
            .await;
        assert_eq!(
            (status, body["errorCode"].as_str()),
            (400, Some("BXNIM0308E"))
        );
        // A client that is not listed, and the issuing client itself.
        for client in ["bystander", "issuer"] {
            let (status, body) = setup
                .post(
                    Some(client),
                    &[("grant_type", grant), ("refresh_token", &drt)],
                )
                .await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(body["errorCode"], "BXNIM0407E");
            assert!(
                message(&body).contains(&format!("not issued to client {client}")),
                "{body}"
            );
        }
        // The right client id with a wrong secret fails client authentication.
        let form = [("grant_type", grant), ("refresh_token", drt.as_str())];
        let response = setup
            .server
            .post_form("/identity/token", Some(("receiver", "wrong")), &form)
            .await;
        assert_eq!(response.status(), 401);
    }
    // An ordinary refresh token is not a DRT.
    let (_, issued) = setup.post_apikey(Some("issuer"), &[]).await;
    let (status, body) = setup
        .post(
            Some("issuer"),
            &[
                ("grant_type", DRT_GRANT),
                ("refresh_token", issued["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        message(&body).contains("not a delegated refresh token"),
        "{body}"
    );
    // The grant needs the token.
    let (status, body) = setup
        .post(Some("receiver"), &[("grant_type", DRT_GRANT)])
        .await;
    assert_eq!(status, 400);
    assert!(message(&body).contains("refresh_token"), "{body}");
}

#[tokio::test]
async fn expired_drt_is_refused() {
    let setup = Setup::new().await;
    let drt = setup.drt(None, Some("60")).await;
    let (status, _) = setup.redeem("receiver", DRT_GRANT, &drt).await;
    assert_eq!(status, 200);
    // 60 s is the shortest lifetime allowed; let it pass on the server's clock.
    setup
        .server
        .advance(std::time::Duration::from_secs(61))
        .await;
    let (status, body) = setup.redeem("receiver", DRT_GRANT, &drt).await;
    assert_eq!(status, 400);
    assert!(message(&body).contains("expired"), "{body}");
}

#[tokio::test]
async fn revoked_drt_is_refused() {
    let setup = Setup::new().await;
    // Revoked by a receiver.
    let drt = setup.drt(None, None).await;
    assert_eq!(setup.revoke("bystander", &drt).await, 200);
    let (status, _) = setup.redeem("receiver", DRT_GRANT, &drt).await;
    assert_eq!(status, 200, "a client that is not listed cannot revoke it");
    assert_eq!(setup.revoke("receiver", &drt).await, 200);
    let (status, body) = setup.redeem("receiver", DRT_GRANT, &drt).await;
    assert_eq!(status, 400);
    assert!(message(&body).contains("revoked"), "{body}");
    // Revoked by the issuing client.
    let drt = setup.drt(None, None).await;
    assert_eq!(setup.revoke("issuer", &drt).await, 200);
    let (status, body) = setup.redeem("receiver", "refresh_token", &drt).await;
    assert_eq!(status, 400);
    assert!(message(&body).contains("revoked"), "{body}");
}

#[tokio::test]
async fn bad_drt_parameters_name_the_problem() {
    let setup = Setup::new().await;
    let base = [
        ("grant_type", APIKEY_GRANT),
        ("apikey", setup.apikey.as_str()),
        ("response_type", "delegated_refresh_token"),
    ];
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "receiver_client_ids is required"),
        (
            vec![("receiver_client_ids", "")],
            "receiver_client_ids is required",
        ),
        (
            vec![("receiver_client_ids", "receiver,nosuch")],
            "client nosuch, which does not exist",
        ),
        (vec![("receiver_client_ids", "default")], "default client"),
        (
            vec![("receiver_client_ids", "issuer")],
            "requesting client issuer",
        ),
        (
            vec![("receiver_client_ids", "receiver,,x")],
            "empty client id",
        ),
        (
            vec![
                ("receiver_client_ids", "receiver"),
                ("delegated_refresh_token_expiry", "soon"),
            ],
            "whole number of seconds",
        ),
        (
            vec![
                ("receiver_client_ids", "receiver"),
                ("delegated_refresh_token_expiry", "59"),
            ],
            "between 60 and 2592000",
        ),
        (
            vec![
                ("receiver_client_ids", "receiver"),
                ("delegated_refresh_token_expiry", "2592001"),
            ],
            "between 60 and 2592000",
        ),
    ];
    for (extra, expected) in cases {
        let mut form = base.to_vec();
        form.extend(extra.iter().copied());
        let (status, body) = setup.post(Some("issuer"), &form).await;
        assert_eq!(status, 400, "{extra:?}: {body}");
        assert_eq!(body["errorCode"], "BXNIM0109E", "{extra:?}: {body}");
        assert!(message(&body).contains(expected), "{extra:?}: {body}");
    }
    let many: Vec<String> = (0..17).map(|i| format!("c{i}")).collect();
    let many = many.join(",");
    let mut form = base.to_vec();
    form.push(("receiver_client_ids", &many));
    let (status, body) = setup.post(Some("issuer"), &form).await;
    assert_eq!(status, 400);
    assert!(message(&body).contains("at most 16"), "{body}");
    // Unknown response types, and DRT parameters without the DRT response type.
    let (status, body) = setup
        .post_apikey(None, &[("response_type", "cloud_iam code")])
        .await;
    assert_eq!(status, 400);
    assert!(message(&body).contains("response_type must be"), "{body}");
    let (status, body) = setup
        .post_apikey(
            None,
            &[
                ("response_type", "cloud_iam"),
                ("receiver_client_ids", "receiver"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert!(message(&body).contains("only used with"), "{body}");
}

#[tokio::test]
async fn tenant_pin_applies_to_drt_issue_and_redeem() {
    let setup = Setup::new().await;
    let account = setup.sa.account_id.clone();
    let other = "0123456789abcdef0123456789abcdef";
    let url = format!("{}/identity/token", setup.server.url);
    let issue = [
        ("grant_type", APIKEY_GRANT),
        ("apikey", setup.apikey.as_str()),
        ("response_type", "delegated_refresh_token"),
        ("receiver_client_ids", "receiver"),
    ];
    let pinned = |tenant| setup.server.pinned_token_response(tenant, &issue);
    assert_eq!(pinned(other).await.status(), 400);
    let body: Value = pinned(&account).await.json().await.unwrap();
    let drt = body["delegated_refresh_token"].as_str().unwrap();
    let redeem = |tenant: &str| {
        setup
            .server
            .http
            .post(&url)
            .header("IBM-Cloud-Tenant", tenant)
            .basic_auth("receiver", Some(&setup.secrets["receiver"]))
            .form(&[("grant_type", DRT_GRANT), ("refresh_token", drt)])
            .send()
    };
    let refused: Value = redeem(other).await.unwrap().json().await.unwrap();
    assert_eq!(refused["errorCode"], "BXNIM0513E", "{refused}");
    assert_eq!(redeem(&account).await.unwrap().status(), 200);
}

#[tokio::test]
async fn revoke_everything_kills_refresh_tokens_and_drts() {
    let setup = Setup::new().await;
    let server = &setup.server;
    let admin = server.admin_token().await;
    let (_, issued) = setup
        .post_apikey(
            Some("issuer"),
            &[
                ("response_type", "cloud_iam delegated_refresh_token"),
                ("receiver_client_ids", "receiver"),
            ],
        )
        .await;
    let refresh = issued["refresh_token"].as_str().unwrap();
    let drt = issued["delegated_refresh_token"].as_str().unwrap();
    let access = issued["access_token"].as_str().unwrap();
    // Both work before.
    let (status, _) = setup.redeem("issuer", "refresh_token", refresh).await;
    assert_eq!(status, 200);
    // Validation errors and permissions of the endpoint.
    let (status, body) = server
        .admin_post(
            "/v1/token_cutoffs",
            &admin,
            json!({"iam_id": "iam-ServiceId-nosuch"}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    // A service account without roles may not cut off anyone else (its own tokens it may:
    // "sign out everywhere" is self-service).
    let sa_token = server.token(&setup.apikey).await;
    let (_, me) = server.admin_get("/v1/whoami", &admin).await;
    let (status, body) = server
        .admin_post(
            "/v1/token_cutoffs",
            &sa_token,
            json!({"iam_id": me["iam_id"]}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    // Revoke everything of the service account.
    let (status, body) = server
        .admin_post(
            "/v1/token_cutoffs",
            &admin,
            json!({"iam_id": setup.sa.iam_id}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["iam_id"], setup.sa.iam_id);
    let (status, body) = setup.redeem("issuer", "refresh_token", refresh).await;
    assert_eq!(status, 400);
    assert!(message(&body).contains("revoked"), "{body}");
    let (status, body) = setup.redeem("receiver", DRT_GRANT, drt).await;
    assert_eq!(status, 400);
    assert!(message(&body).contains("revoked"), "{body}");
    let introspected = server
        .introspect_as_client("issuer", &setup.secrets["issuer"], access)
        .await;
    assert_eq!(introspected["active"], false);
    // The API key still works: new tokens (from the next second on) are good.
    server.advance(std::time::Duration::from_millis(1100)).await;
    let drt = setup.drt(None, None).await;
    let (status, _) = setup.redeem("receiver", DRT_GRANT, &drt).await;
    assert_eq!(status, 200);
}
