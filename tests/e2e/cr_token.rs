//! The `cr-token` grant and trusted issuers: a test issuer (RSA and EC keys made here) signs
//! Kubernetes-style compute-resource tokens; trusted issuers are registered through the admin
//! API (inline JWKS and a JWKS file, with rotation); profiles with links and claim rules through
//! `/v1/trusted_profiles`.

use crate::harness::*;
use aws_lc_rs::rand::SystemRandom;
use serde_json::{json, Value};
use tessera_client::api::admin::{self as api, JwksSource, TrustedIssuerCreate, TrustedIssuerView};
use tessera_client::api::token::{IbmTokenRequest, IbmTokenResponse};
use tessera_client::resource::{TrustedIssuers, TrustedProfiles};
use tessera_client::TokenError;
use tessera_core::jose::{generate_pkcs8, SigningKey};
use tessera_core::model::{
    Algorithm, ClaimCondition, ClaimOperator, ClaimRule, ComputeResourceLink,
};

const CR_GRANT: &str = "urn:ibm:params:oauth:grant-type:cr-token";
pub(crate) const ISSUER_URL: &str = "https://k8s.e2e.example/cluster-1";

/// A test issuer's key.
pub(crate) struct TestKey {
    key: SigningKey,
    rng: SystemRandom,
}

impl TestKey {
    pub(crate) fn new(kid: &str, algorithm: Algorithm) -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = generate_pkcs8(algorithm, &rng).unwrap();
        TestKey {
            key: SigningKey::from_pkcs8(kid, algorithm, &pkcs8).unwrap(),
            rng,
        }
    }

    pub(crate) fn jwks(&self) -> Value {
        json!({"keys": [self.key.public_jwk()]})
    }

    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.key
            .sign_jws(claims.to_string().as_bytes(), &self.rng)
            .unwrap()
    }
}

fn now() -> i64 {
    crate::harness::unix_now()
}

/// [`k8s_claims`] of `prod/billing` from [`ISSUER_URL`] with `claim` set to `value`.
fn billing_claims_with(claim: &str, value: Value) -> Value {
    let mut claims = k8s_claims(ISSUER_URL, "prod", "billing");
    claims[claim] = value;
    claims
}

/// A projected service-account token of `namespace/name` (nested `kubernetes.io` claims).
pub(crate) fn k8s_claims(iss: &str, namespace: &str, name: &str) -> Value {
    let now = now();
    json!({
        "iss": iss,
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
        "aud": ["iam"],
        "iat": now, "nbf": now, "exp": now + 3600,
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": "0b5c"},
            "pod": {"name": format!("{name}-7d9f"), "uid": "77aa"}
        },
        "team": "Payments-EU",
        "groups": ["dev", "ops"],
        "replicas": 3,
        "canary": true
    })
}

struct Setup {
    server: TestServer,
    admin: String,
    account_id: String,
    issuer: TrustedIssuerView,
}

/// The fields of a trusted issuer of [`ISSUER_URL`], keys and defaults left to the caller.
pub(crate) fn issuer_at(name: &str) -> TrustedIssuerCreate {
    TrustedIssuerCreate {
        account_id: None,
        name: name.into(),
        issuer_url: ISSUER_URL.into(),
        jwks: None,
        jwks_file: None,
        audiences: None,
        cr_type: None,
        crn: None,
        claim_mapping: None,
    }
}

async fn setup_with(jwks: Value) -> Setup {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let caller = server.client().with_token(admin.clone());
    let account_id = account_of(&caller).await;
    let issuer = caller
        .create::<TrustedIssuers>(&TrustedIssuerCreate {
            jwks: Some(jwks),
            ..issuer_at("cluster-1")
        })
        .await
        .unwrap();
    Setup {
        server,
        admin,
        account_id,
        issuer,
    }
}

fn condition(claim: &str, operator: ClaimOperator, value: Value) -> ClaimCondition {
    ClaimCondition {
        claim: claim.into(),
        operator,
        value: value.to_string(),
    }
}

/// A case of the claim-rule table: a profile's name, its rule's conditions, and whether the
/// test token meets them.
type RuleCase = (&'static str, Vec<ClaimCondition>, bool);

/// A one-condition case the test token meets.
fn holds(name: &'static str, claim: &str, operator: ClaimOperator, value: Value) -> RuleCase {
    (name, vec![condition(claim, operator, value)], true)
}

/// A one-condition case the test token does not meet.
fn fails(name: &'static str, claim: &str, operator: ClaimOperator, value: Value) -> RuleCase {
    (name, vec![condition(claim, operator, value)], false)
}

fn rule(conditions: Vec<ClaimCondition>) -> ClaimRule {
    ClaimRule {
        id: "ClaimRule-1".into(),
        name: "rule".into(),
        rule_type: "Profile-CR".into(),
        cr_type: "IKS_SA".into(),
        conditions,
    }
}

pub(crate) fn link(crn: &str, namespace: &str, name: &str) -> ComputeResourceLink {
    ComputeResourceLink {
        id: "Link-1".into(),
        cr_type: "IKS_SA".into(),
        crn: crn.into(),
        namespace: Some(namespace.into()),
        name: Some(name.into()),
        component_type: None,
        component_name: None,
    }
}

/// A profile in `account_id` linked to `prod/billing` of the cluster `crn`.
pub(crate) async fn billing_profile(
    server: &TestServer,
    account_id: &str,
    name: &str,
    crn: &str,
) -> String {
    let links = vec![link(crn, "prod", "billing")];
    put_profile(server, account_id, name, links, vec![]).await
}

/// Creates a profile through the admin API (ids of links and rules are generated there).
pub(crate) async fn put_profile(
    server: &TestServer,
    account_id: &str,
    name: &str,
    links: Vec<ComputeResourceLink>,
    rules: Vec<ClaimRule>,
) -> String {
    let links = links.iter().map(api_form_without_id).collect();
    let rules = rules.iter().map(api_form_without_id).collect();
    server
        .admin_client()
        .await
        .create::<TrustedProfiles>(&api::TrustedProfileCreate {
            account_id: Some(account_id.to_owned()),
            name: name.to_owned(),
            description: None,
            identities: Vec::new(),
            links,
            rules,
        })
        .await
        .unwrap_or_else(|e| panic!("create profile {name}: {e}"))
        .id
}

/// The admin API's form of a core value of the same JSON shape (a link, a rule), its `id` left
/// for the server to generate.
fn api_form_without_id<T: serde::de::DeserializeOwned>(core: &impl serde::Serialize) -> T {
    let mut value = serde_json::to_value(core).unwrap();
    value["id"] = Value::Null;
    serde_json::from_value(value).unwrap()
}

pub(crate) async fn cr_exchange(
    server: &TestServer,
    token: &str,
    extra: &[(&str, &str)],
) -> Result<IbmTokenResponse, TokenError> {
    let mut form = IbmTokenRequest {
        grant_type: CR_GRANT.into(),
        cr_token: Some(token.to_owned()),
        ..IbmTokenRequest::default()
    };
    for &(field, value) in extra {
        let slot = match field {
            "profile_id" => &mut form.profile_id,
            "profile_crn" => &mut form.profile_crn,
            "profile_name" => &mut form.profile_name,
            other => panic!("no cr-token field {other}"),
        };
        *slot = Some(value.to_owned());
    }
    match server.client().token(&form).await {
        Ok(token) => Ok(token),
        refused => Err(refused_grant(refused)),
    }
}

async fn issued_cr_tokens(server: &TestServer) -> u64 {
    let text = server.metrics().await;
    text.lines()
        .find(|l| l.starts_with("tessera_tokens_issued_total{grant=\"cr-token\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn assert_profile_token(body: &IbmTokenResponse, profile_id: &str, subject: &str) {
    assert!(body.refresh_token.is_none(), "{body:?}");
    let claims = jwt_payload(body.access_token.as_deref().expect("access_token"));
    assert_eq!(claims["sub_type"], "Profile", "{claims}");
    assert_eq!(claims["iam_id"], format!("iam-{profile_id}"));
    assert_eq!(claims["authn"]["sub_type"], "CR", "{claims}");
    assert_eq!(claims["authn"]["sub"], subject, "{claims}");
    assert_eq!(claims["grant_type"], CR_GRANT);
}

#[tokio::test]
async fn cr_token_via_link_and_every_claim_rule_operator() {
    let key = TestKey::new("k8s-rsa-1", Algorithm::Rs256);
    let s = setup_with(key.jwks()).await;
    let crn = s.issuer.crn.clone();
    assert!(crn.contains(&format!("a/{}", s.account_id)), "{crn}");
    let token = key.sign(&k8s_claims(ISSUER_URL, "prod", "billing"));
    let subject = "system:serviceaccount:prod:billing";

    let linked = billing_profile(&s.server, &s.account_id, "billing", &crn).await;
    // One profile admits it: selected without naming it; the SDK's trailing newline is fine.
    let body = cr_exchange(&s.server, &format!("{token}\n"), &[])
        .await
        .expect("granted");
    assert_profile_token(&body, &linked, subject);
    // By name, in the resource's account.
    let body = cr_exchange(&s.server, &token, &[("profile_name", "billing")])
        .await
        .expect("granted");
    assert_profile_token(&body, &linked, subject);
    // A link for another namespace does not admit it.
    let other_ns = put_profile(
        &s.server,
        &s.account_id,
        "other-ns",
        vec![link(&crn, "dev", "billing")],
        vec![],
    )
    .await;
    let body = cr_exchange(&s.server, &token, &[("profile_id", &other_ns)])
        .await
        .unwrap_err();
    assert_eq!(body.status, 400, "{body}");
    let message = &body.message;
    assert!(message.contains("namespace claim differs"), "{message}");
    assert!(!message.contains("prod"), "no claim values: {message}");

    // Each rule in a profile of its own: a rule that holds for the token admits it, a rule that
    // fails refuses the exchange.
    use ClaimOperator::*;
    let rules: Vec<RuleCase> = vec![
        holds("equals", "namespace", Equals, json!("prod")),
        holds("not-equals", "namespace", NotEquals, json!("dev")),
        holds("eq-ic", "team", EqualsIgnoreCase, json!("payments-eu")),
        holds("ne-ic", "team", NotEqualsIgnoreCase, json!("other")),
        holds("contains-array", "groups", Contains, json!("ops")),
        holds("contains-string", "team", Contains, json!("ments")),
        holds("in", "namespace", In, json!(["dev", "prod"])),
        holds("number", "replicas", Equals, json!("3")),
        holds("boolean", "canary", Equals, json!(true)),
        holds("pod", "pod", Equals, json!("billing-7d9f")),
        (
            "and",
            vec![
                condition("namespace", Equals, json!("prod")),
                condition("name", Equals, json!("billing")),
            ],
            true,
        ),
        fails("x-equals", "namespace", Equals, json!("Prod")),
        fails("x-not-equals", "namespace", NotEquals, json!("prod")),
        fails("x-eq-ic", "team", EqualsIgnoreCase, json!("payments")),
        fails("x-ne-ic", "team", NotEqualsIgnoreCase, json!("PAYMENTS-EU")),
        fails("x-contains", "groups", Contains, json!("admins")),
        fails("x-in", "namespace", In, json!(["dev", "test"])),
        fails("x-number", "replicas", Equals, json!(4)),
        fails("x-missing", "zone", NotEquals, json!("x")),
        (
            "x-and",
            vec![
                condition("namespace", Equals, json!("prod")),
                condition("groups", Contains, json!("admins")),
            ],
            false,
        ),
    ];
    for (name, conditions, met) in rules {
        let id = put_profile(
            &s.server,
            &s.account_id,
            name,
            vec![],
            vec![rule(conditions)],
        )
        .await;
        let answer = cr_exchange(&s.server, &token, &[("profile_id", &id)]).await;
        if met {
            let body = answer.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_profile_token(&body, &id, subject);
        } else {
            let body = answer.unwrap_err();
            assert_eq!(body.status, 400, "{name}: {body}");
            assert_eq!(body.code, "BXNIM0407E", "{name}: {body}");
        }
    }
    // Now several profiles admit it: the caller must choose.
    let body = cr_exchange(&s.server, &token, &[]).await.unwrap_err();
    assert_eq!(body.status, 400, "{body}");
    assert!(body.message.contains("choose one"));
    // Flat claims (no kubernetes.io object) work too.
    let flat = key.sign(&json!({
        "iss": ISSUER_URL, "sub": "ci-job", "aud": "iam", "exp": now() + 600,
        "namespace": "prod", "name": "billing"
    }));
    let body = cr_exchange(&s.server, &flat, &[("profile_id", &linked)])
        .await
        .expect("granted");
    assert_profile_token(&body, &linked, "ci-job");
}

#[tokio::test]
async fn cr_token_refusals_issue_nothing() {
    let key = TestKey::new("k8s-rsa-1", Algorithm::Rs256);
    let s = setup_with(key.jwks()).await;
    let crn = s.issuer.crn.clone();
    let profile = billing_profile(&s.server, &s.account_id, "billing", &crn).await;
    let good = key.sign(&k8s_claims(ISSUER_URL, "prod", "billing"));
    cr_exchange(&s.server, &good, &[("profile_id", &profile)])
        .await
        .expect("granted");
    // Expired 10 s ago: inside the one leeway (tessera_verify::LEEWAY, 30 s), still accepted.
    let lately = billing_claims_with("exp", json!(now() - 10));
    cr_exchange(&s.server, &key.sign(&lately), &[("profile_id", &profile)])
        .await
        .expect("granted inside the leeway");
    let issued = issued_cr_tokens(&s.server).await;
    assert_eq!(issued, 2);

    let refuse = |status: u16, code: &'static str, needle: &'static str| (status, code, needle);
    let expired = billing_claims_with("exp", json!(now() - 120));
    let audience = billing_claims_with("aud", json!(["vault"]));
    // Past the leeway: expired.
    let past_leeway = billing_claims_with("exp", json!(now() - 45));
    let future = billing_claims_with("iat", json!(now() + 120));
    let nbf_text = billing_claims_with("nbf", json!("0"));
    let exp_text = billing_claims_with("exp", json!((now() + 600).to_string()));
    let other_key = TestKey::new("k8s-rsa-1", Algorithm::Rs256);
    let unknown_kid = TestKey::new("k8s-rsa-2", Algorithm::Rs256);
    // Flip a character in the middle of the signature (still valid base64url).
    let mut tampered = good.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let cases: Vec<(String, (u16, &str, &str))> = vec![
        (
            key.sign(&expired),
            refuse(400, "BXNIM0407E", "the compute resource token has expired"),
        ),
        (
            key.sign(&audience),
            refuse(400, "BXNIM0407E", "aud does not name an audience"),
        ),
        (
            key.sign(&past_leeway),
            refuse(400, "BXNIM0407E", "the compute resource token has expired"),
        ),
        (
            key.sign(&future),
            refuse(400, "BXNIM0407E", "issued in the future"),
        ),
        // Claims of the wrong JSON type are refused, not ignored.
        (
            key.sign(&nbf_text),
            refuse(400, "BXNIM0407E", "nbf claim has the wrong JSON type"),
        ),
        (
            key.sign(&exp_text),
            refuse(400, "BXNIM0407E", "no numeric exp claim"),
        ),
        (
            other_key.sign(&k8s_claims(ISSUER_URL, "prod", "billing")),
            refuse(400, "BXNIM0407E", "signature does not verify"),
        ),
        (
            unknown_kid.sign(&k8s_claims(ISSUER_URL, "prod", "billing")),
            refuse(400, "BXNIM0407E", "does not publish"),
        ),
        (tampered, refuse(400, "BXNIM0407E", "signature")),
        (
            key.sign(&k8s_claims("https://evil.example", "prod", "billing")),
            refuse(400, "BXNIM0407E", "not a trusted issuer"),
        ),
        (
            "not-a-jwt".to_owned(),
            refuse(400, "BXNIM0109E", "not a JWT"),
        ),
        (
            key.sign(&k8s_claims(ISSUER_URL, "dev", "billing")),
            refuse(400, "BXNIM0407E", "does not trust this compute resource"),
        ),
    ];
    for (token, (status, code, needle)) in cases {
        let body = cr_exchange(&s.server, &token, &[("profile_id", &profile)])
            .await
            .unwrap_err();
        assert_eq!(body.status, status, "{needle}: {body}");
        assert_eq!(body.code, code, "{needle}: {body}");
        let message = body.message.to_lowercase();
        assert!(
            message.contains(&needle.to_lowercase()),
            "{needle}: {message}"
        );
    }
    // Missing and oversized tokens.
    let body = cr_exchange(&s.server, "  ", &[]).await.unwrap_err();
    assert_eq!(body.status, 400, "{body}");
    let refused = cr_exchange(&s.server, &"a".repeat(17 * 1024), &[])
        .await
        .unwrap_err();
    assert_eq!(refused.status, 400);
    // No profile admits a resource of another namespace, and none is named.
    let body = cr_exchange(
        &s.server,
        &key.sign(&k8s_claims(ISSUER_URL, "dev", "x")),
        &[],
    )
    .await
    .unwrap_err();
    assert_eq!(body.status, 400, "{body}");
    assert!(body.message.contains("No trusted profile"));

    // A profile of another account cannot be named, even with a matching link.
    let other = account_named(&s.server.admin_client().await, "other").await;
    let other_id = other.id.as_str();
    let foreign = billing_profile(&s.server, other_id, "foreign", &crn).await;
    let body = cr_exchange(&s.server, &good, &[("profile_id", &foreign)])
        .await
        .unwrap_err();
    assert_eq!(body.status, 400, "{body}");
    let body = cr_exchange(&s.server, &good, &[("profile_name", "foreign")])
        .await
        .unwrap_err();
    assert_eq!(body.status, 400, "{body}");
    // Tenant pin on another account.
    let response = s
        .server
        .pinned_token_response(
            other_id,
            &[
                ("grant_type", CR_GRANT),
                ("cr_token", good.as_str()),
                ("profile_id", profile.as_str()),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errorCode"], "BXNIM0513E", "{body}");

    assert_eq!(issued_cr_tokens(&s.server).await, issued, "nothing issued");
    assert!(!s.server.logs().contains(&good), "the token is not logged");
}

#[tokio::test]
async fn jwks_file_rotation_and_inline_update_with_ec_keys() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let caller = server.client().with_token(admin.clone());
    let account_id = account_of(&caller).await;
    let first = TestKey::new("ec-1", Algorithm::Es256);
    let second = TestKey::new("ec-2", Algorithm::Es256);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, first.jwks().to_string()).unwrap();
    let issuer = caller
        .create::<TrustedIssuers>(&TrustedIssuerCreate {
            jwks_file: Some(file.to_str().unwrap().to_owned()),
            cr_type: Some("ROKS_SA".into()),
            claim_mapping: Some(
                [("namespace".to_owned(), "kubernetes.io.namespace".to_owned())].into(),
            ),
            ..issuer_at("ec")
        })
        .await
        .unwrap();
    assert!(
        matches!(&issuer.jwks, JwksSource::File(path) if path == file.to_str().unwrap()),
        "{issuer:?}"
    );
    let mut roks_link = link(&issuer.crn, "prod", "billing");
    roks_link.cr_type = "ROKS_SA".into();
    let profile = put_profile(&server, &account_id, "roks", vec![roks_link], vec![]).await;
    let claims = k8s_claims(ISSUER_URL, "prod", "billing");
    let body = cr_exchange(&server, &first.sign(&claims), &[])
        .await
        .expect("granted");
    assert_profile_token(&body, &profile, "system:serviceaccount:prod:billing");

    // Rotation: rewrite the file; within about a second the new key works, the old does not.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    std::fs::write(&file, second.jwks().to_string()).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    cr_exchange(&server, &second.sign(&claims), &[])
        .await
        .expect("granted");
    let body = cr_exchange(&server, &first.sign(&claims), &[])
        .await
        .unwrap_err();
    assert_eq!(body.status, 400, "{body}");

    // PUT replaces the key set with an inline one (back to the first key) and the audiences.
    let id = &issuer.id;
    let (status, body) = server
        .admin_put(
            &format!("/v1/trusted_issuers/{id}"),
            &admin,
            json!({"jwks": first.jwks(), "audiences": ["iam", "vault"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["audiences"], json!(["iam", "vault"]));
    let mut vault = claims.clone();
    vault["aud"] = json!("vault");
    cr_exchange(&server, &first.sign(&vault), &[])
        .await
        .expect("granted");
    let refused = cr_exchange(&server, &second.sign(&claims), &[])
        .await
        .unwrap_err();
    assert_eq!(refused.status, 400);
}

#[tokio::test]
async fn trusted_issuer_admin_validation() {
    let key = TestKey::new("k1", Algorithm::Rs256);
    let s = setup_with(key.jwks()).await;
    let post = |body: Value| {
        let server = &s.server;
        let admin = s.admin.clone();
        async move { server.admin_post("/v1/trusted_issuers", &admin, body).await }
    };
    let jwks = key.jwks();
    let cases = [
        (
            json!({"name": "x", "issuer_url": "http://k8s.example", "jwks": jwks}),
            400,
            "https",
        ),
        (
            json!({"name": "x", "issuer_url": "https://a.example/?q=1", "jwks": jwks}),
            400,
            "query",
        ),
        (
            json!({"name": "x", "issuer_url": "https://a.example"}),
            400,
            "jwks",
        ),
        (
            json!({"name": "x", "issuer_url": "https://a.example", "jwks": {"keys": []}}),
            400,
            "no usable public key",
        ),
        (
            json!({"name": "x", "issuer_url": "https://a.example", "jwks": jwks, "jwks_file": "/etc/hostname"}),
            400,
            "not both",
        ),
        (
            json!({"name": "x", "issuer_url": "https://a.example", "jwks_file": "/nonexistent/jwks.json"}),
            400,
            "cannot be read",
        ),
        (
            json!({"name": "x", "issuer_url": "https://a.example", "jwks": jwks, "cr_type": "FOO"}),
            400,
            "cr_type",
        ),
        (
            json!({"name": "x", "issuer_url": "https://a.example", "jwks": jwks, "audiences": []}),
            400,
            "audiences",
        ),
        (
            json!({"name": "x", "issuer_url": "https://a.example", "jwks": jwks, "crn": "crn:v1:bad"}),
            400,
            "CRN",
        ),
        (
            json!({"name": "x", "issuer_url": "https://a.example", "jwks": jwks, "claim_mapping": {"ns": "a..b"}}),
            400,
            "claim_mapping",
        ),
        (
            json!({"name": "dup", "issuer_url": ISSUER_URL, "jwks": jwks}),
            409,
            "already exists",
        ),
    ];
    for (body, status, needle) in cases {
        let (got, value) = post(body.clone()).await;
        assert_eq!(got, status, "{body}: {value}");
        let message = value["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{needle}: {message}");
    }
    let (status, list) = s.server.admin_get("/v1/trusted_issuers", &s.admin).await;
    assert_eq!(status, 200);
    assert_eq!(list["trusted_issuers"].as_array().unwrap().len(), 1);
    assert_eq!(list["trusted_issuers"][0]["audiences"], json!(["iam"]));
    assert_eq!(list["trusted_issuers"][0]["cr_type"], "IKS_SA");
    let id = &s.issuer.id;
    let (status, body) = s
        .server
        .admin_put(&format!("/v1/trusted_issuers/{id}"), &s.admin, json!({}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = s
        .server
        .admin_delete(&format!("/v1/trusted_issuers/{id}"), &s.admin)
        .await;
    assert_eq!(status, 204);
    let token = key.sign(&k8s_claims(ISSUER_URL, "prod", "billing"));
    let body = cr_exchange(&s.server, &token, &[]).await.unwrap_err();
    assert_eq!(body.status, 400, "{body}");
    assert!(body.message.contains("not a trusted issuer"));
}

/// Runs the `tessera` CLI against `server` as the administrator (environment credentials).
/// The CLI's `--format json` output: a trusted issuer.
fn cli_json(server: &TestServer, config: &std::path::Path, args: &[&str]) -> TrustedIssuerView {
    json_of(admin_cli(server, config, args))
}

/// The inline key set of an issuer (`jwks.inline`).
fn inline_jwks(issuer: &TrustedIssuerView) -> Value {
    match &issuer.jwks {
        JwksSource::Inline(jwks) => jwks.clone(),
        JwksSource::File(path) => panic!("keys from the file {path}, not inline"),
    }
}

#[tokio::test]
async fn issuer_cli_create_list_update_delete() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().unwrap();
    let config = home.path();
    let first = TestKey::new("cli-1", Algorithm::Rs256);
    let second = TestKey::new("cli-2", Algorithm::Es256);
    let local = home.path().join("cluster-jwks.json");
    std::fs::write(&local, first.jwks().to_string()).unwrap();
    let created = cli_json(
        &server,
        config,
        &[
            "iam",
            "issuer",
            "create",
            "--name",
            "cli-cluster",
            "--issuer-url",
            ISSUER_URL,
            "--jwks-file",
            local.to_str().unwrap(),
            "--audience",
            "iam",
            "--audience",
            "vault",
            "--cr-type",
            "ROKS_SA",
            "--map",
            "namespace=kubernetes.io.namespace",
            "--format",
            "json",
        ],
    );
    let id = created.id.clone();
    assert!(id.starts_with("Issuer-"), "{created:?}");
    assert_eq!(created.audiences, ["iam", "vault"]);
    assert_eq!(created.cr_type, "ROKS_SA");
    assert_eq!(
        created.claim_mapping.get("namespace").map(String::as_str),
        Some("kubernetes.io.namespace")
    );
    assert_eq!(inline_jwks(&created), first.jwks());

    let table = admin_cli(&server, config, &["iam", "issuer", "list"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains(&id) && table.contains(ISSUER_URL), "{table}");

    // Rotation from a new local file; the audiences are replaced.
    std::fs::write(&local, second.jwks().to_string()).unwrap();
    let updated = cli_json(
        &server,
        config,
        &[
            "iam",
            "issuer",
            "update",
            &id,
            "--jwks-file",
            local.to_str().unwrap(),
            "--audience",
            "iam",
            "--format",
            "json",
        ],
    );
    assert_eq!(inline_jwks(&updated), second.jwks());
    assert_eq!(updated.audiences, ["iam"]);
    let got = cli_json(
        &server,
        config,
        &["iam", "issuer", "get", &id, "--format", "json"],
    );
    assert_eq!(inline_jwks(&got), second.jwks());

    // Bad input: the server's message.
    let bad = admin_cli(
        &server,
        config,
        &[
            "iam",
            "issuer",
            "create",
            "--name",
            "x",
            "--issuer-url",
            "http://k8s.example",
            "--jwks-file",
            local.to_str().unwrap(),
        ],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("https"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let bad_map = admin_cli(
        &server,
        config,
        &["iam", "issuer", "update", &id, "--map", "nonsense"],
    );
    assert!(!bad_map.status.success());
    assert!(String::from_utf8_lossy(&bad_map.stderr).contains("CLAIM=PATH"));

    let deleted = admin_cli(&server, config, &["iam", "issuer", "delete", &id]);
    assert!(deleted.status.success());
    let (status, _) = server
        .admin_get(
            &format!("/v1/trusted_issuers/{id}"),
            &server.admin_token().await,
        )
        .await;
    assert_eq!(status, 404);
}
