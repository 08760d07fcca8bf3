//! Trusted-profile documents (`trusted_profile::validate`: identities, links, claim rules) and
//! the claim rules' evaluation against compute resources (`compute_resource::profile_admits`).
//!
//! Properties: validation is idempotent (a valid profile, written back as a document, validates
//! to itself, which is what re-reading it from the API or the store does); the stored JSON of
//! its parts reads back equal; admission is deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use tessera_core::compute_resource::{self, operator_name, ComputeResource};
use tessera_core::model::{
    ClaimRule, ComputeResourceLink, JwksSource, TrustedIdentity, TrustedIssuer, TrustedProfile,
};
use tessera_core::trusted_profile::{
    self, ConditionInput, IdentityInput, LinkInput, ProfileDocument, RuleInput, ValidProfile,
};

fn back_to_document(valid: &ValidProfile) -> ProfileDocument {
    ProfileDocument {
        name: valid.name.clone(),
        description: Some(valid.description.clone()),
        identities: valid
            .identities
            .iter()
            .map(|i| IdentityInput {
                kind: serde_json::to_value(i.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                identifier: i.identifier.clone(),
                accounts: i.accounts.clone(),
            })
            .collect(),
        links: valid
            .links
            .iter()
            .map(|l| LinkInput {
                id: Some(l.id.clone()),
                cr_type: l.cr_type.clone(),
                crn: l.crn.clone(),
                namespace: l.namespace.clone(),
                name: l.name.clone(),
                component_type: l.component_type.clone(),
                component_name: l.component_name.clone(),
            })
            .collect(),
        rules: valid
            .rules
            .iter()
            .map(|r| RuleInput {
                id: Some(r.id.clone()),
                name: (!r.name.is_empty()).then(|| r.name.clone()),
                rule_type: r.rule_type.clone(),
                cr_type: r.cr_type.clone(),
                conditions: r
                    .conditions
                    .iter()
                    .map(|c| ConditionInput {
                        claim: c.claim.clone(),
                        operator: operator_name(c.operator).to_owned(),
                        value: c.value.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn round_trips<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
    parts: &T,
) {
    let stored = serde_json::to_string(parts).unwrap_or_default();
    let read: Result<T, _> = serde_json::from_str(&stored);
    assert_eq!(
        read.as_ref().ok(),
        Some(parts),
        "stored JSON does not read back"
    );
}

fn resources() -> Vec<ComputeResource> {
    let issuer = TrustedIssuer {
        id: "Issuer-fuzz".into(),
        account_id: "0123456789abcdef0123456789abcdef".into(),
        name: "cluster".into(),
        issuer_url: "https://kubernetes.default.svc".into(),
        jwks: JwksSource::Inline(json!({"keys": []})),
        audiences: vec!["iam".into()],
        cr_type: "IKS_SA".into(),
        crn: "crn:v1:bluemix:public:containers-kubernetes:us-south:a/0123:cluster1::".into(),
        claim_mapping: Default::default(),
        created_at: 0,
    };
    let claims = |sub: &str, namespace: &str, name: &str| -> Map<String, Value> {
        json!({"sub": sub, "aud": "iam", "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name}},
               "groups": ["a", "b"], "n": 7, "flag": true})
            .as_object()
            .cloned()
            .unwrap_or_default()
    };
    vec![
        ComputeResource::from_token(
            &issuer,
            &claims("system:serviceaccount:prod:app", "prod", "app"),
        ),
        ComputeResource::from_token(
            &issuer,
            &claims("system:serviceaccount:dev:Root", "dev", "Root"),
        ),
    ]
}

/// The account of the fuzzed profiles (CRN identities must be of it).
const PROFILE_ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    let Ok(document) = serde_json::from_slice::<ProfileDocument>(data) else {
        return;
    };
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let Ok(valid) = trusted_profile::validate(&document, PROFILE_ACCOUNT, &rng) else {
        return;
    };
    let again = trusted_profile::validate(&back_to_document(&valid), PROFILE_ACCOUNT, &rng);
    assert_eq!(
        again.as_ref().ok(),
        Some(&valid),
        "validation is not idempotent: {again:?}"
    );
    round_trips::<Vec<TrustedIdentity>>(&valid.identities);
    round_trips::<Vec<ComputeResourceLink>>(&valid.links);
    round_trips::<Vec<ClaimRule>>(&valid.rules);
    let profile = TrustedProfile {
        id: "Profile-fuzz".into(),
        account_id: "0123456789abcdef0123456789abcdef".into(),
        name: valid.name.clone(),
        description: valid.description.clone(),
        identities: valid.identities.clone(),
        links: valid.links.clone(),
        rules: valid.rules.clone(),
        created_at: 0,
    };
    for cr in resources() {
        let first = compute_resource::profile_admits(&profile, &cr).map_err(|e| e.to_string());
        let second = compute_resource::profile_admits(&profile, &cr).map_err(|e| e.to_string());
        assert_eq!(format!("{first:?}"), format!("{second:?}"));
    }
});
