//! Trusted-issuer documents (the core's checks of `issuer_url`, `cr_type`, `audiences`,
//! `claim_mapping`, the stored JWKS source) and how an issuer's token claims become a compute
//! resource (`ComputeResource::from_token`, `check_token_claims`). The input is one JSON object
//! with the issuer's fields and, under `claims`, a token's claims.
//!
//! Properties: each check is idempotent (a value it accepted is accepted unchanged); the stored
//! JWKS source reads back equal; a mapped claim is exactly what the path names in the token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::collections::BTreeMap;
use tessera_core::compute_resource::{self, ComputeResource};
use tessera_core::model::{JwksSource, TrustedIssuer};
use tessera_core::trusted_issuer;

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let text = |name: &str| input.get(name).and_then(Value::as_str);
    if let Some(url) = text("issuer_url") {
        if let Ok(checked) = trusted_issuer::issuer_url(url) {
            assert_eq!(trusted_issuer::issuer_url(&checked).ok(), Some(checked));
        }
    }
    let cr_type = trusted_issuer::cr_type(text("cr_type"));
    let audiences: Option<Vec<String>> = input
        .get("audiences")
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let audiences = trusted_issuer::audiences(audiences);
    if let Ok(list) = &audiences {
        assert_eq!(
            trusted_issuer::audiences(Some(list.clone())).as_ref().ok(),
            Some(list)
        );
    }
    let mapping: Option<BTreeMap<String, String>> = input
        .get("claim_mapping")
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let mapping = trusted_issuer::claim_mapping(mapping);
    if let Ok(map) = &mapping {
        assert_eq!(
            trusted_issuer::claim_mapping(Some(map.clone()))
                .as_ref()
                .ok(),
            Some(map)
        );
    }
    if let Some(source) = input
        .get("jwks")
        .and_then(|v| serde_json::from_value::<JwksSource>(v.clone()).ok())
    {
        let stored = serde_json::to_string(&source).unwrap_or_default();
        assert_eq!(
            serde_json::from_str::<JwksSource>(&stored).ok(),
            Some(source.clone())
        );
        if let JwksSource::Inline(document) = &source {
            let _ = tessera_verify::Jwks::from_json(&document.to_string());
        }
    }
    let (Ok(cr_type), Ok(audiences), Ok(claim_mapping)) = (cr_type, audiences, mapping) else {
        return;
    };
    let Some(Value::Object(claims)) = input.get("claims") else {
        return;
    };
    let _ = compute_resource::check_token_claims(claims, &audiences, tessera_fuzz::now());
    let issuer = TrustedIssuer {
        id: "Issuer-fuzz".into(),
        account_id: "0123456789abcdef0123456789abcdef".into(),
        name: "fuzz".into(),
        issuer_url: "https://issuer.fuzz.test".into(),
        jwks: JwksSource::Inline(serde_json::json!({"keys": []})),
        audiences,
        crn: trusted_issuer::default_crn("0123456789abcdef0123456789abcdef", "Issuer-fuzz"),
        cr_type,
        claim_mapping,
        created_at: 0,
    };
    let cr = ComputeResource::from_token(&issuer, claims);
    for (claim, path) in &issuer.claim_mapping {
        assert_eq!(
            cr.claims.get(claim),
            compute_resource::lookup_path(claims, path),
            "mapped claim {claim} is not what {path} names"
        );
    }
    let _ = cr.display_name();
});
