//! Compute resources: what a verified compute-resource token (`cr-token` grant) says about the
//! workload that presented it, and whether a trusted profile admits that workload through a
//! link or a claim rule.
//!
//! The claims of a [`ComputeResource`] come from the token of a [`TrustedIssuer`]: every top-level
//! claim under its own name, then the issuer's `claim_mapping` (compute-resource claim -> dotted
//! path in the token, e.g. `kubernetes.io.namespace`), and for Kubernetes types (`IKS_SA`,
//! `ROKS_SA`) the default mappings `namespace`, `name` and `pod` when neither mapped nor present
//! at the top level.
//!
//! Claim-rule conditions compare a claim with a JSON-encoded value. Strings compare as strings;
//! numbers and booleans on either side compare as their text (`3` equals `"3"`, `true` equals
//! `"true"`). **A claim the resource does not have makes its condition false for every operator,
//! `NOT_EQUALS` included**: an absent claim never widens who may become a profile.
//! Refusal reasons name the profile's link or rule and the claim, never a claim's value.

use crate::model::{ClaimCondition, ClaimOperator, ClaimRule, ComputeResourceLink};
use crate::model::{TrustedIssuer, TrustedProfile};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use tessera_verify::{Validation, ValidationError};

/// The only claim-rule type evaluated for compute resources.
pub const RULE_TYPE_CR: &str = "Profile-CR";

/// Compute-resource types whose tokens are Kubernetes service-account tokens.
pub const KUBERNETES_TYPES: [&str; 2] = ["IKS_SA", "ROKS_SA"];

/// Default Kubernetes mappings: compute-resource claim <- dotted path in a projected
/// service-account token.
const KUBERNETES_DEFAULTS: [(&str, &str); 3] = [
    ("namespace", "kubernetes.io.namespace"),
    ("name", "kubernetes.io.serviceaccount.name"),
    ("pod", "kubernetes.io.pod.name"),
];

/// A workload, as its verified token describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputeResource {
    pub cr_type: String,
    /// The CRN of the resource the issuer stands for (a cluster), which links name.
    pub crn: String,
    /// The issuer's account: the only account whose profiles it may become.
    pub account_id: String,
    /// The token's `sub` (`system:serviceaccount:<ns>:<name>` for Kubernetes).
    pub subject: String,
    pub claims: BTreeMap<String, Value>,
}

impl ComputeResource {
    /// The compute resource of `issuer` that a token with (verified) `token_claims` stands for.
    pub fn from_token(issuer: &TrustedIssuer, token_claims: &Map<String, Value>) -> Self {
        let mut claims: BTreeMap<String, Value> = token_claims
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if KUBERNETES_TYPES.contains(&issuer.cr_type.as_str()) {
            for (claim, path) in KUBERNETES_DEFAULTS {
                if issuer.claim_mapping.contains_key(claim) || claims.contains_key(claim) {
                    continue;
                }
                if let Some(value) = lookup_path(token_claims, path) {
                    claims.insert(claim.to_owned(), value.clone());
                }
            }
        }
        for (claim, path) in &issuer.claim_mapping {
            match lookup_path(token_claims, path) {
                Some(value) => {
                    claims.insert(claim.clone(), value.clone());
                }
                // A mapped claim the token lacks is absent, even if a flat claim has its name.
                None => {
                    claims.remove(claim);
                }
            }
        }
        ComputeResource {
            cr_type: issuer.cr_type.clone(),
            crn: issuer.crn.clone(),
            account_id: issuer.account_id.clone(),
            subject: token_claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            claims,
        }
    }

    /// A claim as comparable text: strings, numbers and booleans; `None` for anything else.
    pub fn claim_text(&self, claim: &str) -> Option<String> {
        self.claims.get(claim).and_then(scalar_text)
    }

    /// A display name for the `authn` claim: the `name` claim (the service account), else `sub`.
    pub fn display_name(&self) -> String {
        self.claim_text("name")
            .unwrap_or_else(|| self.subject.clone())
    }
}

/// Reads a dotted path (`kubernetes.io.serviceaccount.name`) from a claim map. Keys may contain
/// dots themselves (`kubernetes.io`): at each level the longest key that matches wins.
pub fn lookup_path<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let segments: Vec<&str> = path.split('.').collect();
    lookup_segments(claims, &segments)
}

fn lookup_segments<'a>(object: &'a Map<String, Value>, segments: &[&str]) -> Option<&'a Value> {
    for take in (1..=segments.len()).rev() {
        let key = segments[..take].join(".");
        let Some(value) = object.get(&key) else {
            continue;
        };
        if take == segments.len() {
            return Some(value);
        }
        if let Some(inner) = value.as_object() {
            if let Some(found) = lookup_segments(inner, &segments[take..]) {
                return Some(found);
            }
        }
    }
    None
}

/// Strings as they are; numbers and booleans as their JSON text.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The refusal message of a compute-resource token's claims (never quoting a claim's value).
pub fn claims_refusal(error: &ValidationError) -> String {
    match error {
        ValidationError::MissingClaim(name) if name == "exp" => {
            "the compute resource token has no numeric exp claim".into()
        }
        ValidationError::WrongType("exp") => {
            "the compute resource token has no numeric exp claim".into()
        }
        ValidationError::Expired => "the compute resource token has expired".into(),
        ValidationError::NotYetValid => "the compute resource token is not valid yet (nbf)".into(),
        ValidationError::IssuedInFuture => {
            "the compute resource token is issued in the future (iat)".into()
        }
        ValidationError::WrongAudience => {
            "the compute resource token's aud does not name an audience of its trusted issuer"
                .into()
        }
        ValidationError::WrongType(name) => {
            format!("the compute resource token's {name} claim has the wrong JSON type")
        }
        other => format!("the compute resource token's claims are refused: {other}"),
    }
}

/// Checks the claims with [`Validation`]: `exp` (required), `nbf` and `iat` (when present)
/// with the default leeway, the JSON types of the registered claims, and that `aud` (a string
/// or an array) names one of `audiences`.
pub fn check_token_claims(
    claims: &Map<String, Value>,
    audiences: &[String],
    now: crate::UnixTime,
) -> Result<(), ValidationError> {
    // An issuer without audiences accepts no token (an empty set matches nothing).
    Validation::new()
        .with_audiences(audiences.iter().map(String::as_str))
        .validate(claims, now)
}

/// A compute resource whose token was verified with its trusted issuer's keys: only
/// [`verify_token`] makes one, so holding one means the signature, times and audience were
/// checked. [`crate::authn::compute_resource_profile`] turns it into a profile principal.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedComputeResource {
    resource: ComputeResource,
    issuer_id: String,
}

impl VerifiedComputeResource {
    pub fn resource(&self) -> &ComputeResource {
        &self.resource
    }

    /// The trusted issuer whose keys verified the token (a lineage link of the profile token).
    pub fn issuer_id(&self) -> &str {
        &self.issuer_id
    }
}

/// Verifies a compute-resource token (already split into `parts`, its payload parsed into
/// `claims`) with the keys of `issuer`: the key named by `kid` (or the only one), the
/// signature, then `exp`/`nbf`/`iat` and `aud` ([`check_token_claims`]). Refusals are
/// [`crate::ErrorKind::InvalidCredential`] and never quote the token or its claim values.
pub fn verify_token(
    issuer: &TrustedIssuer,
    keys: &tessera_verify::Jwks,
    parts: &tessera_verify::JwsParts<'_>,
    claims: &Map<String, Value>,
    now: crate::UnixTime,
) -> crate::error::Result<VerifiedComputeResource> {
    use crate::error::Error;
    let key = match parts.kid.as_deref() {
        Some(kid) => keys.get(kid),
        None => keys.only(),
    }
    .ok_or_else(|| {
        Error::credential(format!(
            "The compute resource token is signed with a key that trusted issuer {} does not publish.",
            issuer.id
        ))
    })?;
    key.verify_parts(parts).map_err(|e| {
        Error::credential(format!(
            "The compute resource token's signature does not verify with the keys of trusted issuer {} ({e}).",
            issuer.id
        ))
    })?;
    check_token_claims(claims, &issuer.audiences, now).map_err(|e| {
        let message = claims_refusal(&e);
        let mut chars = message.chars();
        let capitalized: String = match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => String::new(),
        };
        Error::credential(format!("{capitalized}."))
    })?;
    Ok(VerifiedComputeResource {
        resource: ComputeResource::from_token(issuer, claims),
        issuer_id: issuer.id.clone(),
    })
}

/// What admitted a compute resource into a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchedBy {
    /// The id of the link.
    Link(String),
    /// The id of the claim rule.
    Rule(String),
}

/// Why a profile does not admit a compute resource. The message names links, rules and
/// claims, never claim values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoMatchReason(pub String);

impl std::fmt::Display for NoMatchReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `profile` admits `cr`: a link naming it, or a `Profile-CR` claim rule of its type
/// whose conditions all hold. Links are tried first, then rules, in order.
pub fn profile_admits(
    profile: &TrustedProfile,
    cr: &ComputeResource,
) -> Result<MatchedBy, NoMatchReason> {
    let mut first_reason: Option<String> = None;
    for link in &profile.links {
        match link_mismatch(link, cr) {
            None => return Ok(MatchedBy::Link(link.id.clone())),
            Some(why) => {
                if link.cr_type == cr.cr_type {
                    first_reason.get_or_insert_with(|| format!("link {}: {why}", link.id));
                }
            }
        }
    }
    for rule in &profile.rules {
        if rule.rule_type != RULE_TYPE_CR || rule.cr_type != cr.cr_type {
            continue;
        }
        match rule_mismatch(rule, cr) {
            None => return Ok(MatchedBy::Rule(rule.id.clone())),
            Some(why) => {
                first_reason
                    .get_or_insert_with(|| format!("claim rule {}: {why}", rule_label(rule)));
            }
        }
    }
    Err(NoMatchReason(match first_reason {
        Some(reason) => format!(
            "trusted profile {} does not trust this compute resource ({reason})",
            profile.id
        ),
        None => format!(
            "trusted profile {} has no link or claim rule for compute resources of type {}",
            profile.id, cr.cr_type
        ),
    }))
}

fn rule_label(rule: &ClaimRule) -> String {
    if rule.name.is_empty() {
        rule.id.clone()
    } else {
        format!("{} ({})", rule.id, rule.name)
    }
}

/// `None` when the link names this resource, else what differs.
fn link_mismatch(link: &ComputeResourceLink, cr: &ComputeResource) -> Option<String> {
    if link.cr_type != cr.cr_type {
        return Some(format!("it is for cr_type {}", link.cr_type));
    }
    if link.crn != cr.crn {
        return Some("it names another resource crn".to_owned());
    }
    for (claim, wanted) in [
        ("namespace", &link.namespace),
        ("name", &link.name),
        ("component_type", &link.component_type),
        ("component_name", &link.component_name),
    ] {
        let Some(wanted) = wanted else { continue };
        match cr.claim_text(claim) {
            None => return Some(format!("the token has no {claim} claim")),
            Some(actual) if &actual != wanted => {
                return Some(format!("the {claim} claim differs"));
            }
            Some(_) => {}
        }
    }
    None
}

/// `None` when every condition holds, else the first one that does not.
fn rule_mismatch(rule: &ClaimRule, cr: &ComputeResource) -> Option<String> {
    if rule.conditions.is_empty() {
        // A rule without conditions would admit everything of the type: never.
        return Some("it has no conditions".to_owned());
    }
    for condition in &rule.conditions {
        if !condition_holds(condition, cr) {
            let present = cr.claims.contains_key(&condition.claim);
            return Some(if present {
                format!(
                    "condition {} {} does not hold",
                    condition.claim,
                    operator_name(condition.operator)
                )
            } else {
                format!("the token has no {} claim", condition.claim)
            });
        }
    }
    None
}

pub fn operator_name(operator: ClaimOperator) -> &'static str {
    match operator {
        ClaimOperator::Equals => "EQUALS",
        ClaimOperator::NotEquals => "NOT_EQUALS",
        ClaimOperator::EqualsIgnoreCase => "EQUALS_IGNORE_CASE",
        ClaimOperator::NotEqualsIgnoreCase => "NOT_EQUALS_IGNORE_CASE",
        ClaimOperator::Contains => "CONTAINS",
        ClaimOperator::In => "IN",
    }
}

/// The condition's value, JSON-decoded; text that is not JSON is taken as a plain string.
fn decoded_value(condition: &ClaimCondition) -> Value {
    serde_json::from_str(&condition.value)
        .unwrap_or_else(|_| Value::String(condition.value.clone()))
}

/// Evaluates one condition against the resource's claims.
pub fn condition_holds(condition: &ClaimCondition, cr: &ComputeResource) -> bool {
    let Some(claim) = cr.claims.get(&condition.claim) else {
        return false;
    };
    let value = decoded_value(condition);
    let claim_text = scalar_text(claim);
    let value_text = scalar_text(&value);
    let lower = |s: &Option<String>| s.as_ref().map(|s| s.to_lowercase());
    match condition.operator {
        ClaimOperator::Equals => both(&claim_text, &value_text, |a, b| a == b),
        ClaimOperator::NotEquals => both(&claim_text, &value_text, |a, b| a != b),
        ClaimOperator::EqualsIgnoreCase => {
            both(&lower(&claim_text), &lower(&value_text), |a, b| a == b)
        }
        ClaimOperator::NotEqualsIgnoreCase => {
            both(&lower(&claim_text), &lower(&value_text), |a, b| a != b)
        }
        ClaimOperator::Contains => {
            let Some(wanted) = value_text else {
                return false;
            };
            match claim {
                Value::Array(items) => items
                    .iter()
                    .any(|item| scalar_text(item).as_deref() == Some(wanted.as_str())),
                Value::String(s) => s.contains(wanted.as_str()),
                _ => false,
            }
        }
        ClaimOperator::In => {
            let Some(actual) = claim_text else {
                return false;
            };
            match &value {
                Value::Array(items) => items
                    .iter()
                    .any(|item| scalar_text(item).as_deref() == Some(actual.as_str())),
                // A single value is a one-element list.
                other => scalar_text(other).as_deref() == Some(actual.as_str()),
            }
        }
    }
}

/// Compares two scalar texts; false when either side is not a scalar.
fn both(a: &Option<String>, b: &Option<String>, compare: impl Fn(&str, &str) -> bool) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => compare(a, b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn issuer(cr_type: &str, mapping: &[(&str, &str)]) -> TrustedIssuer {
        TrustedIssuer {
            id: "Issuer-1".into(),
            account_id: "a".repeat(32),
            name: "cluster".into(),
            issuer_url: "https://k8s.example".into(),
            jwks: crate::model::JwksSource::File("/x".into()),
            audiences: vec!["iam".into()],
            cr_type: cr_type.into(),
            crn: "crn:v1:tessera:public:containers-kubernetes::a/x::cluster:c1".into(),
            claim_mapping: mapping
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            created_at: 0,
        }
    }

    fn k8s_claims() -> Map<String, Value> {
        let v = json!({
            "iss": "https://k8s.example",
            "sub": "system:serviceaccount:prod:billing",
            "aud": ["iam"],
            "exp": 2000, "iat": 1000,
            "kubernetes.io": {
                "namespace": "prod",
                "serviceaccount": {"name": "billing", "uid": "u1"},
                "pod": {"name": "billing-7d9", "uid": "p1"}
            },
            "replicas": 3,
            "canary": true,
            "groups": ["dev", "ops"],
            "team": "Payments-EU"
        });
        v.as_object().cloned().unwrap_or_default()
    }

    fn k8s_resource() -> ComputeResource {
        ComputeResource::from_token(&issuer("IKS_SA", &[]), &k8s_claims())
    }

    fn cond(claim: &str, operator: ClaimOperator, value: Value) -> ClaimCondition {
        ClaimCondition {
            claim: claim.into(),
            operator,
            value: value.to_string(),
        }
    }

    fn holds(claim: &str, operator: ClaimOperator, value: Value) -> bool {
        condition_holds(&cond(claim, operator, value), &k8s_resource())
    }

    fn profile(links: Vec<ComputeResourceLink>, rules: Vec<ClaimRule>) -> TrustedProfile {
        TrustedProfile {
            id: "Profile-1".into(),
            account_id: "a".repeat(32),
            name: "p".into(),
            description: String::new(),
            identities: vec![],
            links,
            rules,
            created_at: 0,
        }
    }

    fn link(namespace: Option<&str>, name: Option<&str>) -> ComputeResourceLink {
        ComputeResourceLink {
            id: "Link-1".into(),
            cr_type: "IKS_SA".into(),
            crn: k8s_resource().crn,
            namespace: namespace.map(Into::into),
            name: name.map(Into::into),
            component_type: None,
            component_name: None,
        }
    }

    fn rule(conditions: Vec<ClaimCondition>) -> ClaimRule {
        ClaimRule {
            id: "ClaimRule-1".into(),
            name: "r".into(),
            rule_type: RULE_TYPE_CR.into(),
            cr_type: "IKS_SA".into(),
            conditions,
        }
    }

    #[test]
    fn dotted_paths_handle_keys_with_dots() {
        let claims = k8s_claims();
        assert_eq!(
            lookup_path(&claims, "kubernetes.io.serviceaccount.name"),
            Some(&json!("billing"))
        );
        assert_eq!(lookup_path(&claims, "kubernetes.io.nope"), None);
        assert_eq!(lookup_path(&claims, "team"), Some(&json!("Payments-EU")));
    }

    #[test]
    fn kubernetes_defaults_fill_namespace_name_pod() {
        let cr = k8s_resource();
        assert_eq!(cr.claim_text("namespace").as_deref(), Some("prod"));
        assert_eq!(cr.claim_text("name").as_deref(), Some("billing"));
        assert_eq!(cr.claim_text("pod").as_deref(), Some("billing-7d9"));
        assert_eq!(cr.subject, "system:serviceaccount:prod:billing");
        assert_eq!(cr.display_name(), "billing");
        // Not a Kubernetes type: no defaults.
        let ce = ComputeResource::from_token(&issuer("CE", &[]), &k8s_claims());
        assert_eq!(ce.claim_text("namespace"), None);
    }

    #[test]
    fn flat_claims_win_over_defaults_and_mappings_win_over_flat() {
        let mut claims = k8s_claims();
        claims.insert("namespace".into(), json!("flat-ns"));
        let cr = ComputeResource::from_token(&issuer("IKS_SA", &[]), &claims);
        assert_eq!(cr.claim_text("namespace").as_deref(), Some("flat-ns"));
        let mapped = ComputeResource::from_token(
            &issuer("IKS_SA", &[("namespace", "kubernetes.io.namespace")]),
            &claims,
        );
        assert_eq!(mapped.claim_text("namespace").as_deref(), Some("prod"));
        let missing =
            ComputeResource::from_token(&issuer("IKS_SA", &[("namespace", "no.such")]), &claims);
        assert_eq!(missing.claim_text("namespace"), None);
    }

    /// Each case: the claim, the operator, the condition's value, and whether the condition
    /// holds for [`k8s_resource`].
    fn assert_holds(cases: &[(&str, ClaimOperator, Value, bool)]) {
        for (claim, operator, value, expected) in cases {
            assert_eq!(
                holds(claim, *operator, value.clone()),
                *expected,
                "{claim} {operator:?} {value}"
            );
        }
    }

    #[test]
    fn equals_and_not_equals() {
        assert_holds(&[
            ("namespace", ClaimOperator::Equals, json!("prod"), true),
            ("namespace", ClaimOperator::Equals, json!("Prod"), false),
            ("namespace", ClaimOperator::NotEquals, json!("dev"), true),
            ("namespace", ClaimOperator::NotEquals, json!("prod"), false),
        ]);
    }

    #[test]
    fn ignore_case_operators() {
        use ClaimOperator::{EqualsIgnoreCase, NotEqualsIgnoreCase};
        assert_holds(&[
            ("team", EqualsIgnoreCase, json!("payments-eu"), true),
            ("team", EqualsIgnoreCase, json!("payments"), false),
            ("team", NotEqualsIgnoreCase, json!("payments"), true),
            ("team", NotEqualsIgnoreCase, json!("PAYMENTS-EU"), false),
        ]);
    }

    #[test]
    fn contains_on_arrays_and_strings() {
        assert_holds(&[
            ("groups", ClaimOperator::Contains, json!("ops"), true),
            ("groups", ClaimOperator::Contains, json!("op"), false),
            ("team", ClaimOperator::Contains, json!("ments"), true),
            ("team", ClaimOperator::Contains, json!("us"), false),
            ("replicas", ClaimOperator::Contains, json!("3"), false),
        ]);
    }

    #[test]
    fn in_takes_a_list() {
        assert_holds(&[
            ("namespace", ClaimOperator::In, json!(["dev", "prod"]), true),
            (
                "namespace",
                ClaimOperator::In,
                json!(["dev", "test"]),
                false,
            ),
            ("namespace", ClaimOperator::In, json!("prod"), true),
            ("groups", ClaimOperator::In, json!(["dev"]), false),
        ]);
    }

    #[test]
    fn numbers_and_booleans_compare_as_text() {
        assert_holds(&[
            ("replicas", ClaimOperator::Equals, json!("3"), true),
            ("replicas", ClaimOperator::Equals, json!(3), true),
            ("canary", ClaimOperator::Equals, json!("true"), true),
            ("canary", ClaimOperator::Equals, json!(true), true),
            ("canary", ClaimOperator::NotEquals, json!(false), true),
            ("replicas", ClaimOperator::In, json!([1, 3]), true),
            ("namespace", ClaimOperator::NotEquals, json!(3), true),
        ]);
    }

    #[test]
    fn non_json_value_is_a_plain_string() {
        let c = ClaimCondition {
            claim: "namespace".into(),
            operator: ClaimOperator::Equals,
            value: "prod".into(),
        };
        assert!(condition_holds(&c, &k8s_resource()));
    }

    #[test]
    fn missing_claim_fails_every_operator() {
        for op in [
            ClaimOperator::Equals,
            ClaimOperator::NotEquals,
            ClaimOperator::EqualsIgnoreCase,
            ClaimOperator::NotEqualsIgnoreCase,
            ClaimOperator::Contains,
            ClaimOperator::In,
        ] {
            assert!(!holds("absent", op, json!("x")), "{op:?}");
        }
    }

    #[test]
    fn links_match_on_type_crn_and_named_fields() {
        let cr = k8s_resource();
        let ok = profile(vec![link(Some("prod"), Some("billing"))], vec![]);
        assert_eq!(
            profile_admits(&ok, &cr),
            Ok(MatchedBy::Link("Link-1".into()))
        );
        let whole_cluster = profile(vec![link(None, None)], vec![]);
        assert!(profile_admits(&whole_cluster, &cr).is_ok());
        let other_ns = profile(vec![link(Some("dev"), Some("billing"))], vec![]);
        let reason = profile_admits(&other_ns, &cr).unwrap_err().0;
        assert!(reason.contains("namespace claim differs"), "{reason}");
        assert!(
            !reason.contains("prod") && !reason.contains("dev"),
            "{reason}"
        );
        let mut other_crn = link(Some("prod"), None);
        other_crn.crn = "crn:v1:other".into();
        assert!(profile_admits(&profile(vec![other_crn], vec![]), &cr).is_err());
        let mut other_type = link(Some("prod"), None);
        other_type.cr_type = "ROKS_SA".into();
        let reason = profile_admits(&profile(vec![other_type], vec![]), &cr)
            .unwrap_err()
            .0;
        assert!(reason.contains("no link or claim rule"), "{reason}");
    }

    #[test]
    fn rules_need_all_conditions() {
        let cr = k8s_resource();
        let both = rule(vec![
            cond("namespace", ClaimOperator::Equals, json!("prod")),
            cond("groups", ClaimOperator::Contains, json!("ops")),
        ]);
        assert_eq!(
            profile_admits(&profile(vec![], vec![both]), &cr),
            Ok(MatchedBy::Rule("ClaimRule-1".into()))
        );
        let one_fails = rule(vec![
            cond("namespace", ClaimOperator::Equals, json!("prod")),
            cond("groups", ClaimOperator::Contains, json!("admins")),
        ]);
        let reason = profile_admits(&profile(vec![], vec![one_fails]), &cr)
            .unwrap_err()
            .0;
        assert!(
            reason.contains("condition groups CONTAINS does not hold"),
            "{reason}"
        );
        assert!(!reason.contains("admins"), "{reason}");
        let missing = rule(vec![cond("zone", ClaimOperator::NotEquals, json!("x"))]);
        let reason = profile_admits(&profile(vec![], vec![missing]), &cr)
            .unwrap_err()
            .0;
        assert!(reason.contains("no zone claim"), "{reason}");
        let empty = rule(vec![]);
        assert!(profile_admits(&profile(vec![], vec![empty]), &cr).is_err());
        let mut saml = rule(vec![cond(
            "namespace",
            ClaimOperator::Equals,
            json!("prod"),
        )]);
        saml.rule_type = "Profile-SAML".into();
        assert!(profile_admits(&profile(vec![], vec![saml]), &cr).is_err());
    }

    #[test]
    fn token_claims_time_and_audience() {
        let claims = k8s_claims();
        let iam = vec!["iam".to_owned()];
        assert_eq!(check_token_claims(&claims, &iam, 1500), Ok(()));
        assert_eq!(check_token_claims(&claims, &iam, 2029), Ok(()));
        assert_eq!(
            check_token_claims(&claims, &iam, 2030),
            Err(ValidationError::Expired)
        );
        assert_eq!(
            check_token_claims(&claims, &iam, 900),
            Err(ValidationError::IssuedInFuture)
        );
        assert_eq!(
            check_token_claims(&claims, &["other".to_owned()], 1500),
            Err(ValidationError::WrongAudience)
        );
        let mut single = claims.clone();
        single.insert("aud".into(), json!("iam"));
        assert_eq!(check_token_claims(&single, &iam, 1500), Ok(()));
        single.remove("aud");
        assert_eq!(
            check_token_claims(&single, &iam, 1500),
            Err(ValidationError::WrongAudience)
        );
        let mut nbf = claims.clone();
        nbf.insert("nbf".into(), json!(1700));
        assert_eq!(
            check_token_claims(&nbf, &iam, 1500),
            Err(ValidationError::NotYetValid)
        );
        let mut no_exp = claims;
        no_exp.remove("exp");
        assert_eq!(
            check_token_claims(&no_exp, &iam, 1500),
            Err(ValidationError::MissingClaim("exp".into()))
        );
    }
}
