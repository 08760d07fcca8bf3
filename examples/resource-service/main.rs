//! A small API protected by Tessera: every route behind `tessera_verify::VerifyLayer`, the
//! verified caller as an extractor, one route requiring a scope.
//!
//! ```text
//! tessera serve --dev                       # prints an API key; issuer http://127.0.0.1:8080/identity
//! cargo run --example resource-service -- http://127.0.0.1:8080/identity 127.0.0.1:3000
//! TOKEN=$(curl -s -d grant_type=urn:ibm:params:oauth:grant-type:apikey -d apikey=$KEY \
//!     http://127.0.0.1:8080/identity/token | jq -r .access_token)
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/whoami      # 200, the caller
//! curl -i http://127.0.0.1:3000/whoami                                     # 401 invalid_token
//! curl -i -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/reports  # 403 insufficient_scope
//! ```
//!
//! The issuer's keys come from its discovery document and are cached and refreshed by
//! `RemoteKeys`; loopback is allow-listed here only because the dev server runs on it.

use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use tessera_verify::{
    HttpOptions, InsufficientScope, KeySource, RemoteKeys, TrustedIssuer, VerifiedCaller, Verifier,
    VerifyLayer,
};

async fn whoami(caller: VerifiedCaller) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "iam_id": caller.iam_id,
        "sub_type": caller.sub_type,
        "account": caller.account,
        "scopes": caller.scopes,
        "expires_at": caller.expires_at,
    }))
}

async fn reports(caller: VerifiedCaller) -> Result<&'static str, InsufficientScope> {
    caller.require_scope("reports.read")?;
    Ok("the reports")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let issuer = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080/identity".to_owned());
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let keys = RemoteKeys::builder(KeySource::Issuer(issuer.clone()))
        .http(HttpOptions {
            allow_private: vec!["127.0.0.0/8".parse()?],
            ..HttpOptions::default()
        })
        .build()
        .await?;
    let verifier = Verifier::builder()
        .trust(TrustedIssuer::new(issuer, keys).any_audience())
        .build()?;
    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/reports", get(reports))
        .layer(VerifyLayer::new(Arc::new(verifier)));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("resource service on http://{listen}");
    axum::serve(listener, app).await?;
    Ok(())
}
