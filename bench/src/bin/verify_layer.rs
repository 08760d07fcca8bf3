//! Verifications per second through `tessera_verify::VerifyLayer` (a tower service in front of
//! a handler that only reads the `VerifiedCaller`), next to raw signature verification of the
//! same token with the same key, in the same run, on one thread: RS256, ES256, EdDSA and `t1.`.
//! Raw and layer batches of 16 alternate, so both see the same load.
//!
//! ```text
//! cargo run --release -p tessera-bench --bin verify_layer -- [seconds per measurement, default 3]
//! ```
//!
//! The layer's work beyond the signature: reading the `Authorization` header, decoding the
//! token, parsing its claims, the trust-map and key lookups, the claim validation, building the
//! `VerifiedCaller`, the metrics call (no recorder installed) and the tower plumbing.

use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_core::jose::{generate_pkcs8, SigningKey};
use tessera_core::model::Algorithm;
use tessera_verify::{Jwks, TrustedIssuer, VerifiedCaller, Verifier, VerifyLayer};
use tower::{Layer, Service, ServiceExt};

const ISSUER: &str = "http://127.0.0.1:8080/identity";

/// An IBM-shaped claim set for a service ID (the `t1.` one has `kid` and Yandex's names).
fn claims(iam_token_kid: Option<&str>) -> Vec<u8> {
    let iam_id = "iam-ServiceId-0f7b3c2e-5d41-4b8a-9c61-2a7e9d3f4b10";
    let claims = match iam_token_kid {
        None => serde_json::json!({
            "iam_id": iam_id, "id": iam_id, "realmid": "iam",
            "jti": "7c1e4f0a-9b2d-4e63-8a5f-1d3c7b9e2f48",
            "identifier": "ServiceId-0f7b3c2e-5d41-4b8a-9c61-2a7e9d3f4b10", "name": "bench-load",
            "sub": "ServiceId-0f7b3c2e-5d41-4b8a-9c61-2a7e9d3f4b10", "sub_type": "ServiceId",
            "authn": {"sub": "ServiceId-0f7b3c2e-5d41-4b8a-9c61-2a7e9d3f4b10", "iam_id": iam_id,
                "sub_type": "ServiceId", "name": "bench-load"},
            "account": {"valid": true, "bss": "b6e2c0a4d8f14e7a9c3b5d1f2e8a7c60"},
            "iat": 1_700_000_000i64, "exp": 4_000_000_000i64, "iss": ISSUER,
            "grant_type": "urn:ibm:params:oauth:grant-type:apikey", "scope": "ibm openid",
            "client_id": "default", "acr": 1, "amr": ["pwd"]
        }),
        Some(kid) => serde_json::json!({
            "kid": kid, "jti": "7c1e4f0a9b2d4e638a5f1d3c7b9e2f48", "iss": ISSUER, "sub": iam_id,
            "subject_id": "ServiceId-0f7b3c2e-5d41-4b8a-9c61-2a7e9d3f4b10",
            "subject_type": "service_account", "account_id": "b6e2c0a4d8f14e7a9c3b5d1f2e8a7c60",
            "iat": 1_700_000_000i64, "exp": 4_000_000_000i64
        }),
    };
    claims.to_string().into_bytes()
}

struct Row {
    name: &'static str,
    raw: f64,
    layer: f64,
}

async fn measure(
    name: &'static str,
    algorithm: Algorithm,
    iam_token: bool,
    seconds: Duration,
) -> anyhow::Result<Row> {
    let rng = SystemRandom::new();
    let der = generate_pkcs8(algorithm, &rng).context("generating a key")?;
    let key = SigningKey::from_pkcs8("bench-key", algorithm, &der).context("loading the key")?;
    let token = if iam_token {
        let mut token = tessera_verify::IAM_TOKEN_PREFIX.to_owned();
        URL_SAFE_NO_PAD.encode_string(claims(Some(key.kid())), &mut token);
        let signature = key.sign(token.as_bytes(), &rng).context("signing")?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        token
    } else {
        key.sign_jws(&claims(None), &rng).context("signing")?
    };
    let verifying = key.verifying_key().context("the public key")?;
    let (signed, signature) = token.rsplit_once('.').context("a signature")?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .context("signature encoding")?;

    // Raw and layer batches alternate (one batch each per round, `seconds` of each in all),
    // so both see the same share of a shared machine's load: on 2 busy cores, measuring one
    // after the other moved their ratio by more than the layer's own cost.
    let mut jwks = Jwks::default();
    jwks.insert(verifying.clone());
    let verifier = Verifier::builder()
        .trust(TrustedIssuer::new(ISSUER, jwks).any_audience())
        .build()?;
    let handler = tower::service_fn(|request: http::Request<()>| async move {
        let status = if request.extensions().get::<VerifiedCaller>().is_some() {
            http::StatusCode::OK
        } else {
            http::StatusCode::INTERNAL_SERVER_ERROR
        };
        let mut response = http::Response::new(());
        *response.status_mut() = status;
        Ok::<_, Infallible>(response)
    });
    let mut service = VerifyLayer::new(Arc::new(verifier)).layer(handler);
    let bearer = format!("Bearer {token}");
    const BATCH: u64 = 16;
    let (mut raw_time, mut layer_time) = (Duration::ZERO, Duration::ZERO);
    let (mut raw_n, mut layer_n) = (0u64, 0u64);
    while raw_time + layer_time < 2 * seconds {
        let started = Instant::now();
        for _ in 0..BATCH {
            verifying
                .verify_signature(signed.as_bytes(), &signature)
                .context("raw verification")?;
        }
        raw_time += started.elapsed();
        raw_n += BATCH;
        let started = Instant::now();
        for _ in 0..BATCH {
            let request = http::Request::builder()
                .header(http::header::AUTHORIZATION, &bearer)
                .body(())?;
            let response = service.ready().await?.call(request).await?;
            anyhow::ensure!(response.status() == 200, "the layer refused the token");
        }
        layer_time += started.elapsed();
        layer_n += BATCH;
    }
    let raw = raw_n as f64 / raw_time.as_secs_f64();
    let layer = layer_n as f64 / layer_time.as_secs_f64();
    Ok(Row { name, raw, layer })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let seconds = std::env::args()
        .nth(1)
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(3)
        .clamp(1, 60);
    let seconds = Duration::from_secs(seconds);
    println!("| token | raw verify/s | through the layer/s | layer / raw |");
    println!("|---|---:|---:|---:|");
    for (name, algorithm, iam_token) in [
        ("RS256 JWT", Algorithm::Rs256, false),
        ("ES256 JWT", Algorithm::Es256, false),
        ("EdDSA JWT", Algorithm::EdDsa, false),
        ("t1. IAM token", Algorithm::EdDsa, true),
    ] {
        let row = measure(name, algorithm, iam_token, seconds).await?;
        println!(
            "| {} | {:.0} | {:.0} | {:.1} % |",
            row.name,
            row.raw,
            row.layer,
            100.0 * row.layer / row.raw
        );
    }
    Ok(())
}
