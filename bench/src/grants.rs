//! Setup for the IBM grants that need more than an API key: `assume` (a trusted profile that
//! trusts the benchmark's service account), `iam-authz` (an authorization policy from it to a
//! CRN), `cr-token` (a trusted issuer whose ES256 key the benchmark holds, a profile with a claim
//! rule, and a Kubernetes-style compute-resource token signed with that key) and `password` (a
//! user with a password and an OAuth client for Basic authentication). Each ends in the one form
//! body (and Basic header) that every connection then sends, checked once before the load.

use crate::server::{admin_post, send_json, str_field, token_for, unix_now, Credentials};
use crate::Grant;
use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

/// The issuer URL of the benchmark's compute-resource tokens.
const CR_ISSUER: &str = "https://bench-cluster.tessera.localhost";
/// Lifetime of the compute-resource token: longer than any run the flags allow.
const CR_TOKEN_LIFETIME_SECS: i64 = 3600;
/// The benchmark user's password (a throw-away user on a throw-away server).
const BENCH_PASSWORD: &str = "bench-password-Correct-Horse-7";

/// The request a grant sends over and over.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub body: String,
    /// `Authorization` header value (Basic client authentication), if the grant needs one.
    pub authorization: Option<String>,
}

/// Creates what `grant` needs through the admin API of `base` and returns its request; `None`
/// for the grants that need nothing beyond the provisioned API key.
pub async fn prepare(
    http: &reqwest::Client,
    base: &str,
    creds: &Credentials,
    grant: Grant,
) -> anyhow::Result<Option<Prepared>> {
    let admin = Admin { http, base, creds };
    Ok(Some(match grant {
        Grant::Assume => assume(&admin).await?,
        Grant::IamAuthz => iam_authz(&admin).await?,
        Grant::CrToken => cr_token(&admin).await?,
        Grant::Password => password(&admin).await?,
        Grant::Apikey
        | Grant::Introspect
        | Grant::YandexJwtRest
        | Grant::YandexJwtGrpc
        | Grant::Agent => return Ok(None),
    }))
}

/// The admin API of the server under test, called as the benchmark's administrator.
struct Admin<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    creds: &'a Credentials,
}

impl Admin<'_> {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        admin_post(self.http, self.base, &self.creds.admin_token, path, body).await
    }

    /// Creates the trusted profile `body` describes and returns its id.
    async fn create_profile(&self, body: Value) -> anyhow::Result<String> {
        let profile = self.post("/v1/trusted_profiles", body).await?;
        str_field(&profile, "id", "POST /v1/trusted_profiles").map(str::to_owned)
    }

    /// An access token of the benchmark's service account.
    async fn access_token(&self) -> anyhow::Result<String> {
        token_for(self.http, self.base, &self.creds.apikey).await
    }
}

fn form(pairs: &[(&str, &str)]) -> anyhow::Result<String> {
    serde_urlencoded::to_string(pairs).context("encoding the token request")
}

/// A token request of `pairs` without client authentication.
fn without_client(pairs: &[(&str, &str)]) -> anyhow::Result<Prepared> {
    Ok(Prepared {
        body: form(pairs)?,
        authorization: None,
    })
}

async fn assume(admin: &Admin<'_>) -> anyhow::Result<Prepared> {
    let profile_id = admin
        .create_profile(json!({
            "account_id": admin.creds.account_id,
            "name": "bench-assume",
            "identities": [{"type": "serviceid", "identifier": admin.creds.iam_id}],
        }))
        .await?;
    // One access token for the whole run: the server verifies it in full on every request.
    let access_token = admin.access_token().await?;
    without_client(&[
        ("grant_type", "urn:ibm:params:oauth:grant-type:assume"),
        ("access_token", &access_token),
        ("profile_id", &profile_id),
    ])
}

async fn iam_authz(admin: &Admin<'_>) -> anyhow::Result<Prepared> {
    let crn = format!(
        "crn:v1:tessera:public:bench-service:global:a/{}:bench-instance::",
        admin.creds.account_id
    );
    admin
        .post(
            "/v1/authorization_policies",
            json!({
                "account_id": admin.creds.account_id,
                "source_iam_id": admin.creds.iam_id,
                "target_crn": crn,
            }),
        )
        .await?;
    let access_token = admin.access_token().await?;
    without_client(&[
        ("grant_type", "urn:ibm:params:oauth:grant-type:iam-authz"),
        ("access_token", &access_token),
        ("desired_iam_id", &format!("crn-{crn}")),
    ])
}

async fn cr_token(admin: &Admin<'_>) -> anyhow::Result<Prepared> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|e| anyhow::anyhow!("generating the issuer key: {e}"))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|e| anyhow::anyhow!("loading the issuer key: {e}"))?;
    // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
    let point = key.public_key().as_ref();
    if point.len() != 65 || point[0] != 4 {
        anyhow::bail!("the issuer's public key is not an uncompressed P-256 point");
    }
    let kid = "bench-cluster-key";
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    admin
        .post(
            "/v1/trusted_issuers",
            json!({
                "account_id": admin.creds.account_id,
                "name": "bench-cluster",
                "issuer_url": CR_ISSUER,
                "jwks": {"keys": [jwk]},
                "audiences": ["iam"],
                "cr_type": "IKS_SA",
            }),
        )
        .await?;
    let profile_id = admin
        .create_profile(json!({
            "account_id": admin.creds.account_id,
            "name": "bench-workload",
            "rules": [{
                "type": "Profile-CR",
                "cr_type": "IKS_SA",
                "conditions": [
                    {"claim": "namespace", "operator": "EQUALS", "value": "\"bench\""},
                    {"claim": "name", "operator": "IN", "value": "[\"app\",\"worker\"]"},
                ],
            }],
        }))
        .await?;
    let now = unix_now()?;
    let header = json!({"alg": "ES256", "kid": kid, "typ": "JWT"});
    let claims = json!({
        "iss": CR_ISSUER,
        "aud": ["iam"],
        "sub": "system:serviceaccount:bench:app",
        "iat": now,
        "nbf": now,
        "exp": now + CR_TOKEN_LIFETIME_SECS,
        "kubernetes.io": {
            "namespace": "bench",
            "serviceaccount": {"name": "app", "uid": "6f0c0a52-0d3a-4a43-9d4b-6a1f1c0e2b11"},
            "pod": {"name": "app-7d9f8c-x2k4q", "uid": "b2d1f0a4-3c5e-4f6a-8b7c-9d0e1f2a3b4c"},
        },
    });
    let mut jwt = URL_SAFE_NO_PAD.encode(header.to_string());
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut jwt);
    let signature = key
        .sign(&rng, jwt.as_bytes())
        .map_err(|e| anyhow::anyhow!("signing the compute-resource token: {e}"))?;
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jwt);
    without_client(&[
        ("grant_type", "urn:ibm:params:oauth:grant-type:cr-token"),
        ("cr_token", &jwt),
        ("profile_id", &profile_id),
    ])
}

async fn password(admin: &Admin<'_>) -> anyhow::Result<Prepared> {
    let email = "bench-user@tessera.localhost";
    admin
        .post(
            "/v1/users",
            json!({
                "account_id": admin.creds.account_id,
                "name": "bench user",
                "email": email,
                "password": BENCH_PASSWORD,
            }),
        )
        .await?;
    let client = admin
        .post(
            "/v1/clients",
            json!({"id": "bench-client", "account_id": admin.creds.account_id}),
        )
        .await?;
    let secret = str_field(&client, "secret", "POST /v1/clients")?;
    Ok(Prepared {
        body: form(&[
            ("grant_type", "password"),
            ("username", email),
            ("password", BENCH_PASSWORD),
        ])?,
        authorization: Some(format!(
            "Basic {}",
            STANDARD.encode(format!("bench-client:{secret}"))
        )),
    })
}

/// One request of the prepared grant, checked: 200 and an access token.
pub async fn check(
    http: &reqwest::Client,
    base: &str,
    grant: Grant,
    prepared: &Prepared,
) -> anyhow::Result<()> {
    let mut request = http
        .post(format!("{base}/identity/token"))
        .header("Accept", "application/json")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(prepared.body.clone());
    if let Some(authorization) = &prepared.authorization {
        request = request.header("Authorization", authorization);
    }
    let what = format!("the {} grant", grant.name());
    let body = send_json(request, &what).await?;
    if body["access_token"].as_str().is_none() {
        anyhow::bail!("{what} answered without access_token: {body}");
    }
    Ok(())
}
