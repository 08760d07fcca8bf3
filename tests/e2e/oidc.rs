//! JWKS, discovery, RFC 7662 introspection and RFC 7009 revocation, as a resource service uses
//! them.

use crate::harness::*;
use serde_json::{json, Value};
use tessera_client::api::token::Discovery;

fn now() -> i64 {
    crate::harness::unix_now()
}

async fn introspect(
    server: &TestServer,
    token: &str,
    bearer: Option<&str>,
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut request = server
        .http
        .post(format!("{}/identity/introspect", server.url))
        .form(&[("token", token)]);
    if let Some(b) = bearer {
        request = request.bearer_auth(b);
    }
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

/// `POST /identity/revoke` of `form`, by the confidential client `client` when given.
async fn revoke(
    server: &TestServer,
    client: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    server.post_form("/identity/revoke", client, form).await
}

/// Mints a token with the server's own active key but `iat`/`exp` in the past: what a client
/// holds an hour after it was issued.
pub(crate) async fn expired_token(server: &TestServer, iam_id: &str) -> String {
    use tessera_core::directory::{Entity, EntityKind};
    let master_text = std::fs::read_to_string(server.data_dir().join("master.key")).unwrap();
    let master_bytes = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(master_text.trim())
            .unwrap()
    };
    let master = tessera_core::seal::SealingKey::from_bytes(&master_bytes).unwrap();
    let store = server.open_store().await;
    let records: Vec<_> = store
        .list(EntityKind::SigningKey, &Default::default())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| {
            if let Entity::SigningKey(k) = e {
                Some(k)
            } else {
                None
            }
        })
        .collect();
    let ring = tessera_core::keyring::KeyRing::load(&records, &master).unwrap();
    let signer = ring.signer(tessera_core::model::KeyUse::Jwt).unwrap();
    let issued = now() - 7200;
    let claims = json!({"iam_id": iam_id, "id": iam_id, "realmid": "IBMid", "jti": "0123456789abcdef0123456789abcdef",
        "identifier": iam_id, "name": "admin", "sub": iam_id, "sub_type": "user",
        "authn": {"sub": iam_id, "iam_id": iam_id, "sub_type": "user", "name": "admin"},
        "account": {"valid": true, "bss": "x"}, "iat": issued, "exp": issued + 3600,
        "iss": format!("{}/identity", server.url), "grant_type": APIKEY_GRANT, "scope": "ibm openid",
        "client_id": "default", "acr": 1, "amr": ["pwd"]});
    signer
        .sign_jws(
            claims.to_string().as_bytes(),
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .unwrap()
}

#[tokio::test]
async fn jwks_and_discovery() {
    let server = TestServer::in_process().await;
    for path in ["/identity/keys", "/.well-known/jwks.json"] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 200);
        // The advertised cache time is the configured one: rotation publishes keys 2x ahead.
        assert_eq!(response.headers()["cache-control"], "public, max-age=300");
        let jwks: Value = response.json().await.unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        let rsa = keys.iter().find(|k| k["kty"] == "RSA").expect("an RSA key");
        for field in ["kid", "alg", "n", "e", "use"] {
            assert!(rsa.get(field).is_some(), "{field}");
        }
        assert!(
            keys.iter()
                .any(|k| k["kty"] == "OKP" && k["crv"] == "Ed25519"),
            "the t1. token key is published"
        );
        assert!(
            keys.iter().all(|k| k.get("d").is_none()),
            "no private material"
        );
    }
    for path in [
        "/.well-known/openid-configuration",
        "/identity/.well-known/openid-configuration",
    ] {
        let doc = server.get_json(path).await;
        assert_eq!(doc["issuer"], format!("{}/identity", server.url));
        assert_eq!(doc["jwks_uri"], format!("{}/identity/keys", server.url));
        assert_eq!(
            doc["token_endpoint"],
            format!("{}/identity/token", server.url)
        );
        assert_eq!(
            doc["introspection_endpoint"],
            format!("{}/identity/introspect", server.url)
        );
        assert_eq!(
            doc["revocation_endpoint"],
            format!("{}/identity/revoke", server.url)
        );
        // Every grant the document lists is one the token endpoint takes (a request without
        // its parameters is refused for them, never as an unsupported grant), and the apikey,
        // password, refresh, assume, cr-token, iam-authz and delegated grants are all listed.
        let discovery: Discovery = serde_json::from_value(doc.clone()).unwrap();
        let grants: Vec<&str> = discovery
            .grant_types_supported
            .iter()
            .map(String::as_str)
            .collect();
        for needed in [
            "urn:ibm:params:oauth:grant-type:apikey",
            "refresh_token",
            "password",
            "urn:ibm:params:oauth:grant-type:assume",
            "urn:ibm:params:oauth:grant-type:cr-token",
            "urn:ibm:params:oauth:grant-type:iam-authz",
            "urn:ibm:params:oauth:grant-type:delegated-refresh-token",
        ] {
            assert!(grants.contains(&needed), "{needed} missing from {grants:?}");
        }
        for grant in &grants {
            let response = server.token_response(&[("grant_type", grant)]).await;
            let body = response.text().await.unwrap();
            assert!(!body.contains("is not supported"), "{grant}: {body}");
        }
        let unknown = server
            .token_response(&[("grant_type", "client_credentials")])
            .await
            .text()
            .await
            .unwrap();
        assert!(unknown.contains("is not supported"), "{unknown}");
        assert_eq!(
            doc["response_types_supported"],
            serde_json::json!([
                "cloud_iam",
                "delegated_refresh_token",
                "cloud_iam delegated_refresh_token"
            ])
        );
    }
}

#[tokio::test]
async fn introspection_active_and_inactive() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let (sa, apikey) = server.service_account_with_key().await;
    let token = server.token(&apikey).await;

    let (status, body) = introspect(&server, &token, Some(&admin), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true);
    assert_eq!(body["iam_id"], sa.iam_id);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["exp"].is_i64() && body["iat"].is_i64());
    // The answer is every claim of the token (lineage included) plus active, token_type and
    // username: nothing dropped, nothing added.
    let claims = jwt_payload(&token);
    assert_eq!(body["username"], claims["name"]);
    let mut expected: Vec<String> = claims.as_object().unwrap().keys().cloned().collect();
    expected.extend(["active", "token_type", "username"].map(String::from));
    expected.sort();
    let mut answered: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
    answered.sort();
    assert_eq!(answered, expected);
    for (claim, value) in claims.as_object().unwrap() {
        assert_eq!(&body[claim], value, "claim {claim}");
    }

    // Malformed, forged and expired tokens are inactive, not errors.
    assert_eq!(
        introspect(&server, "not-a-token", Some(&admin), None)
            .await
            .1,
        json!({"active": false})
    );
    let mut forged = token.clone();
    let sig_start = forged.rfind('.').unwrap() + 5;
    forged.replace_range(
        sig_start..sig_start + 1,
        if &token[sig_start..sig_start + 1] == "A" {
            "B"
        } else {
            "A"
        },
    );
    assert_eq!(
        introspect(&server, &forged, Some(&admin), None).await.1["active"],
        false
    );
    let admin_iam_id = server
        .client()
        .with_token(admin.clone())
        .whoami()
        .await
        .unwrap()
        .iam_id;
    let expired = expired_token(&server, &admin_iam_id).await;
    assert_eq!(
        introspect(&server, &expired, Some(&admin), None).await.1["active"],
        false
    );
    // The expired token is also refused as a credential.
    let (status, body) = server.admin_get("/v1/whoami", &expired).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );

    // The caller must authenticate.
    let (status, body) = introspect(&server, &token, None, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    let (status, _) = introspect(&server, &token, None, Some(("nobody", "x"))).await;
    assert_eq!(status, 401);

    // Deleting the identity makes its tokens inactive at once.
    let (status, _) = server
        .admin_delete(&format!("/v1/service_accounts/{}", sa.id.as_str()), &admin)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        introspect(&server, &token, Some(&admin), None).await.1["active"],
        false
    );
}

#[tokio::test]
async fn revocation_of_refresh_and_access_tokens() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let caller = server.client().with_token(admin.clone());
    let secret = client_secret(&caller, "app").await;
    let other = client_secret(&caller, "other").await;
    let (_, apikey) = server.service_account_with_key().await;
    let app = server.client();
    let issued = app
        .token_as_client("app", &secret, &apikey_form(&apikey))
        .await
        .unwrap();
    let (refresh, access) = (refresh_of(&issued), access_of(&issued));
    let (refresh, access) = (refresh.as_str(), access.as_str());

    // The issuing client sees its refresh token as active; another client does not.
    let (_, body) = introspect(&server, refresh, None, Some(("app", &secret))).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(
        introspect(&server, refresh, None, Some(("other", &other)))
            .await
            .1["active"],
        false
    );

    // Another client cannot revoke it (RFC 7009: silently ignored).
    let response = revoke(&server, Some(("other", &other)), &[("token", refresh)]).await;
    assert_eq!(response.status(), 200);
    let still = server
        .refresh_response(Some(("app", &secret)), refresh)
        .await;
    assert_eq!(still.status(), 200);

    // The issuing client revokes it; refresh fails at once.
    let response = revoke(
        &server,
        Some(("app", &secret)),
        &[("token", refresh), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(response.status(), 200);
    let refused = refused_grant(
        app.token_as_client("app", &secret, &refresh_form(refresh))
            .await,
    );
    assert_eq!(refused.status, 400);
    assert!(refused.message.contains("revoked"), "{refused}");

    // Revoking a refresh token revokes its whole grant (RFC 7009 §2.1): the access token issued
    // with it is inactive too.
    assert_eq!(
        introspect(&server, access, Some(&admin), None).await.1["active"],
        false
    );

    // Access tokens can be revoked on their own; the refresh token of the grant lives on.
    let issued = app
        .token_as_client("app", &secret, &apikey_form(&apikey))
        .await
        .unwrap();
    let (access, refresh) = (access_of(&issued), refresh_of(&issued));
    let (access, refresh) = (access.as_str(), refresh.as_str());
    assert_eq!(
        introspect(&server, access, Some(&admin), None).await.1["active"],
        true
    );
    // Anonymous and other clients cannot revoke a confidential client's access token.
    for other_client in [None, Some(("other", other.as_str()))] {
        let response = revoke(&server, other_client, &[("token", access)]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            introspect(&server, access, Some(&admin), None).await.1["active"],
            true,
            "revoked by {other_client:?}"
        );
    }
    revoke(&server, Some(("app", &secret)), &[("token", access)]).await;
    assert_eq!(
        introspect(&server, access, Some(&admin), None).await.1["active"],
        false
    );
    let refreshed = server
        .refresh_response(Some(("app", &secret)), refresh)
        .await;
    assert_eq!(refreshed.status(), 200);

    // Garbage is accepted (200) and bad requests get the OAuth error shape.
    assert_eq!(
        revoke(&server, None, &[("token", "garbage")])
            .await
            .status(),
        200
    );
    let missing = revoke(&server, None, &[("nothing", "x")]).await;
    assert_eq!(missing.status(), 400);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let bad_client = revoke(&server, Some(("app", "wrong")), &[("token", refresh)]).await;
    assert_eq!(bad_client.status(), 401);
}

#[tokio::test]
async fn revocation_survives_restart() {
    // A fixed issuer, so tokens from before the restart (on another port) stay valid.
    let server = TestServer::start_with(&["--issuer", "http://tessera.test/identity"], &[]).await;
    let admin = server.admin_token().await;
    let token = server.admin_token().await;
    server.revoke(&token).await;
    let server = server.restart().await;
    assert_eq!(
        introspect(&server, &token, Some(&admin), None).await.1["active"],
        false
    );
    assert_eq!(
        introspect(&server, &admin, Some(&admin), None).await.1["active"],
        true
    );
}
