//! Trusted profiles: validation of a profile document as the admin API receives it, and the
//! trust check of the `assume` grant.
//!
//! [`validate`] turns the wire document ([`ProfileDocument`]) into the model's identities, links
//! and claim rules, naming the first bad field in its error. [`check_trust`] decides whether a
//! presented identity may become a profile, with a typed [`TrustRefusal`] saying why not.
//! Evaluating links and claim rules against compute-resource tokens is `compute_resource`'s job.

use crate::directory::Directory;
use crate::error::{Error, Result};
use crate::ids;
use crate::limits;
use crate::model::{
    ClaimCondition, ClaimOperator, ClaimRule, ComputeResourceLink, SubjectKind, TrustedIdentity,
    TrustedIdentityType, TrustedProfile,
};
use aws_lc_rs::rand::SecureRandom;
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;

/// The compute-resource types links and claim rules may name.
pub const CR_TYPES: [&str; 6] = ["IKS_SA", "ROKS_SA", "CE", "VSI", "BMS", "PVS"];
/// The claim-rule operators, as spelled on the wire.
pub const OPERATORS: [&str; 6] = [
    "EQUALS",
    "NOT_EQUALS",
    "EQUALS_IGNORE_CASE",
    "NOT_EQUALS_IGNORE_CASE",
    "CONTAINS",
    "IN",
];
pub const RULE_TYPE_CR: &str = "Profile-CR";
pub const RULE_TYPE_SAML: &str = "Profile-SAML";
pub const LINK_ID_PREFIX: &str = "Link";
pub const RULE_ID_PREFIX: &str = "ClaimRule";
pub const MAX_IDENTITIES: usize = 100;
pub const MAX_LINKS: usize = 100;
pub const MAX_RULES: usize = 100;
pub const MAX_CONDITIONS: usize = 20;
pub const MAX_ACCOUNTS: usize = 100;
/// Longest claim name and longest JSON-encoded condition value, in characters (as the
/// schema counts).
pub const MAX_CLAIM: usize = 128;
pub const MAX_VALUE: usize = 1024;
/// Longest namespace, name, component type or component name of a link, in characters.
pub const MAX_LINK_FIELD: usize = 253;

/// A trusted identity as sent: `{"type", "identifier", "accounts"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityInput {
    #[serde(rename = "type")]
    pub kind: String,
    pub identifier: String,
    #[serde(default)]
    pub accounts: Vec<String>,
}

/// A compute-resource link as sent; `id` is generated when absent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkInput {
    pub id: Option<String>,
    pub cr_type: String,
    pub crn: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub component_type: Option<String>,
    pub component_name: Option<String>,
}

/// A claim condition as sent; `value` is JSON-encoded text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionInput {
    pub claim: String,
    pub operator: String,
    pub value: String,
}

/// A claim rule as sent; `id` is generated when absent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    pub id: Option<String>,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub rule_type: String,
    pub cr_type: String,
    pub conditions: Vec<ConditionInput>,
}

/// The parts of a profile the admin API writes (create and full replace).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileDocument {
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub identities: Vec<IdentityInput>,
    #[serde(default)]
    pub links: Vec<LinkInput>,
    #[serde(default)]
    pub rules: Vec<RuleInput>,
}

/// A validated document, ready to become (or replace the contents of) a [`TrustedProfile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidProfile {
    pub name: String,
    pub description: String,
    pub identities: Vec<TrustedIdentity>,
    pub links: Vec<ComputeResourceLink>,
    pub rules: Vec<ClaimRule>,
}

/// Validates a profile document; ids of links and rules that lack one are generated.
/// Validates a profile document for a profile of `account_id`. A CRN identity must be a
/// resource of that account (its `a/<account>` scope): a profile never trusts another tenant's
/// resource identities (`SECURITY.md`, tenancy).
pub fn validate(
    doc: &ProfileDocument,
    account_id: &str,
    rng: &dyn SecureRandom,
) -> Result<ValidProfile> {
    let name = limits::name("name", &doc.name)?;
    let description = limits::description(doc.description.as_deref())?;
    check_count("identities", doc.identities.len(), MAX_IDENTITIES)?;
    check_count("links", doc.links.len(), MAX_LINKS)?;
    check_count("rules", doc.rules.len(), MAX_RULES)?;

    let mut identities = Vec::with_capacity(doc.identities.len());
    let mut seen = HashSet::new();
    for (i, input) in doc.identities.iter().enumerate() {
        let identity = identity(&format!("identities[{i}]"), input)?;
        if identity.kind == TrustedIdentityType::Crn
            && ids::crn_account(&identity.identifier) != Some(account_id)
        {
            return Err(Error::invalid(format!(
                "identities[{i}]: a CRN identity must be a resource of the profile's account, \
                 scoped a/{account_id}"
            )));
        }
        if !seen.insert((identity.kind, identity.identifier.clone())) {
            return Err(Error::invalid(format!(
                "identities[{i}]: {} is listed twice",
                identity.identifier
            )));
        }
        identities.push(identity);
    }

    let links = entries_with_unique_ids(
        "links",
        &doc.links,
        |path, input| link(path, input, rng),
        |link| &link.id,
    )?;
    let rules = entries_with_unique_ids(
        "rules",
        &doc.rules,
        |path, input| rule(path, input, rng),
        |rule| &rule.id,
    )?;

    Ok(ValidProfile {
        name,
        description,
        identities,
        links,
        rules,
    })
}

/// The entries of the list `field`, each checked by `check` (which gets its path,
/// `field[i]`); two entries with the same `id` are refused.
fn entries_with_unique_ids<I, T>(
    field: &str,
    inputs: &[I],
    check: impl Fn(&str, &I) -> Result<T>,
    id: impl Fn(&T) -> &String,
) -> Result<Vec<T>> {
    let mut entries = Vec::with_capacity(inputs.len());
    let mut ids = HashSet::new();
    for (i, input) in inputs.iter().enumerate() {
        let entry = check(&format!("{field}[{i}]"), input)?;
        if !ids.insert(id(&entry).clone()) {
            return Err(Error::invalid(format!(
                "{field}[{i}].id {} is used twice",
                id(&entry)
            )));
        }
        entries.push(entry);
    }
    Ok(entries)
}

fn check_count(field: &str, count: usize, max: usize) -> Result<()> {
    if count > max {
        return Err(Error::invalid(format!(
            "{field} has {count} entries; at most {max} are allowed"
        )));
    }
    Ok(())
}

/// `[A-Za-z0-9._-]` after a fixed prefix, 1..=64 characters in all.
fn prefixed_id(field: &str, value: &str, prefix: &str, example: &str) -> Result<String> {
    let ok = value.len() <= limits::MAX_ID
        && value.strip_prefix(prefix).is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if !ok {
        return Err(Error::invalid(format!(
            "{field} must look like {example} (at most {} characters)",
            limits::MAX_ID
        )));
    }
    Ok(value.to_owned())
}

fn identity(field: &str, input: &IdentityInput) -> Result<TrustedIdentity> {
    let identifier = input.identifier.trim();
    let (kind, identifier) = match input.kind.as_str() {
        "user" => (
            TrustedIdentityType::User,
            prefixed_id(
                &format!("{field}.identifier"),
                identifier,
                ids::USER_ID_PREFIX,
                "IBMid-…, a user id",
            )?,
        ),
        "serviceid" => {
            // Either spelling: the service ID's id `ServiceId-…` or its iam_id.
            let iam_id = if identifier.starts_with(ids::SERVICE_ID_PREFIX) {
                ids::service_iam_id(identifier)
            } else {
                identifier.to_owned()
            };
            (
                TrustedIdentityType::Serviceid,
                prefixed_id(
                    &format!("{field}.identifier"),
                    &iam_id,
                    ids::SERVICE_IAM_ID_PREFIX,
                    "iam-ServiceId-… or ServiceId-…, a service ID",
                )?,
            )
        }
        "crn" => {
            ids::parse_crn(&format!("{field}.identifier"), identifier)?;
            (TrustedIdentityType::Crn, identifier.to_owned())
        }
        other => {
            return Err(Error::invalid(format!(
                "{field}.type must be one of user, serviceid, crn, not {:?}",
                clip(other)
            )))
        }
    };
    if kind != TrustedIdentityType::User && !input.accounts.is_empty() {
        return Err(Error::invalid(format!(
            "{field}.accounts is only for identities of type user"
        )));
    }
    check_count(
        &format!("{field}.accounts"),
        input.accounts.len(),
        MAX_ACCOUNTS,
    )?;
    let mut accounts = Vec::with_capacity(input.accounts.len());
    for (j, account) in input.accounts.iter().enumerate() {
        let account = ids::account_id(&format!("{field}.accounts[{j}]"), account)?;
        if !accounts.contains(&account) {
            accounts.push(account);
        }
    }
    Ok(TrustedIdentity {
        kind,
        identifier,
        accounts,
    })
}

fn cr_type(field: &str, value: &str) -> Result<String> {
    if CR_TYPES.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(Error::invalid(format!(
            "{field} must be one of {}, not {:?}",
            CR_TYPES.join(", "),
            clip(value)
        )))
    }
}

/// An optional free-text link field: trimmed, 1..=253 characters, no control characters.
fn link_field(field: &str, value: Option<&str>) -> Result<Option<String>> {
    let Some(value) = value.map(str::trim) else {
        return Ok(None);
    };
    if value.is_empty() {
        return Err(Error::invalid(format!("{field} must not be empty")));
    }
    limits::bounded_chars(field, value, MAX_LINK_FIELD)?;
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(Some(value.to_owned()))
}

fn link(field: &str, input: &LinkInput, rng: &dyn SecureRandom) -> Result<ComputeResourceLink> {
    let cr_type = cr_type(&format!("{field}.cr_type"), &input.cr_type)?;
    let crn = input.crn.trim();
    ids::parse_crn(&format!("{field}.crn"), crn)?;
    let namespace = link_field(&format!("{field}.namespace"), input.namespace.as_deref())?;
    let name = link_field(&format!("{field}.name"), input.name.as_deref())?;
    let component_type = link_field(
        &format!("{field}.component_type"),
        input.component_type.as_deref(),
    )?;
    let component_name = link_field(
        &format!("{field}.component_name"),
        input.component_name.as_deref(),
    )?;
    let kubernetes = (namespace.is_some(), name.is_some());
    let code_engine = (component_type.is_some(), component_name.is_some());
    match cr_type.as_str() {
        "IKS_SA" | "ROKS_SA" => {
            if kubernetes != (true, true) {
                return Err(Error::invalid(format!(
                    "{field}: a {cr_type} link needs namespace and name (the service account)"
                )));
            }
            if code_engine != (false, false) {
                return Err(Error::invalid(format!(
                    "{field}: component_type and component_name are for CE links only"
                )));
            }
        }
        "CE" => {
            if code_engine != (true, true) {
                return Err(Error::invalid(format!(
                    "{field}: a CE link needs component_type and component_name"
                )));
            }
            if kubernetes != (false, false) {
                return Err(Error::invalid(format!(
                    "{field}: namespace and name are for IKS_SA and ROKS_SA links only"
                )));
            }
        }
        _ => {
            if kubernetes != (false, false) || code_engine != (false, false) {
                return Err(Error::invalid(format!(
                    "{field}: a {cr_type} link is the crn alone; namespace, name, component_type \
                     and component_name do not apply"
                )));
            }
        }
    }
    let id = match input.id.as_deref() {
        Some(id) => prefixed_id(&format!("{field}.id"), id, "Link-", "Link-<uuid>")?,
        None => ids::new_entry_id(LINK_ID_PREFIX, rng)?,
    };
    Ok(ComputeResourceLink {
        id,
        cr_type,
        crn: crn.to_owned(),
        namespace,
        name,
        component_type,
        component_name,
    })
}

/// Parses a wire operator (`EQUALS`, ...).
pub fn parse_operator(value: &str) -> Option<ClaimOperator> {
    use ClaimOperator::*;
    Some(match value {
        "EQUALS" => Equals,
        "NOT_EQUALS" => NotEquals,
        "EQUALS_IGNORE_CASE" => EqualsIgnoreCase,
        "NOT_EQUALS_IGNORE_CASE" => NotEqualsIgnoreCase,
        "CONTAINS" => Contains,
        "IN" => In,
        _ => return None,
    })
}

fn is_scalar(value: &serde_json::Value) -> bool {
    matches!(
        value,
        serde_json::Value::String(_) | serde_json::Value::Number(_) | serde_json::Value::Bool(_)
    )
}

fn condition(field: &str, input: &ConditionInput) -> Result<ClaimCondition> {
    let claim = input.claim.trim();
    if claim.is_empty() {
        return Err(Error::invalid(format!("{field}.claim must not be empty")));
    }
    limits::bounded_chars(&format!("{field}.claim"), claim, MAX_CLAIM)?;
    if claim.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::invalid(format!(
            "{field}.claim must not contain spaces or control characters"
        )));
    }
    let operator = parse_operator(&input.operator).ok_or_else(|| {
        Error::invalid(format!(
            "{field}.operator must be one of {}, not {:?}",
            OPERATORS.join(", "),
            clip(&input.operator)
        ))
    })?;
    limits::bounded_chars(&format!("{field}.value"), &input.value, MAX_VALUE)?;
    let value: serde_json::Value = serde_json::from_str(&input.value).map_err(|_| {
        Error::invalid(format!(
            "{field}.value must be JSON-encoded, e.g. \"\\\"prod\\\"\" for the string prod \
             or \"[\\\"a\\\",\\\"b\\\"]\" for IN"
        ))
    })?;
    match operator {
        ClaimOperator::In => {
            let ok = value
                .as_array()
                .is_some_and(|items| !items.is_empty() && items.iter().all(is_scalar));
            if !ok {
                return Err(Error::invalid(format!(
                    "{field}.value of operator IN must be a non-empty JSON array of strings, \
                     numbers or booleans"
                )));
            }
        }
        _ if !is_scalar(&value) => {
            return Err(Error::invalid(format!(
                "{field}.value of operator {} must be a JSON string, number or boolean",
                input.operator
            )));
        }
        _ => {}
    }
    Ok(ClaimCondition {
        claim: claim.to_owned(),
        operator,
        value: input.value.clone(),
    })
}

fn rule(field: &str, input: &RuleInput, rng: &dyn SecureRandom) -> Result<ClaimRule> {
    match input.rule_type.as_str() {
        RULE_TYPE_CR => {}
        RULE_TYPE_SAML => {
            return Err(Error::invalid(format!(
                "{field}.type Profile-SAML is not supported: Tessera has no SAML federation; \
                 use Profile-CR"
            )))
        }
        other => {
            return Err(Error::invalid(format!(
                "{field}.type must be Profile-CR, not {:?}",
                clip(other)
            )))
        }
    }
    let cr_type = cr_type(&format!("{field}.cr_type"), &input.cr_type)?;
    let name = match input.name.as_deref() {
        None => String::new(),
        Some(name) if name.trim().is_empty() => String::new(),
        Some(name) => limits::name(&format!("{field}.name"), name)?,
    };
    if input.conditions.is_empty() {
        return Err(Error::invalid(format!(
            "{field}.conditions must have at least one condition"
        )));
    }
    check_count(
        &format!("{field}.conditions"),
        input.conditions.len(),
        MAX_CONDITIONS,
    )?;
    let conditions = input
        .conditions
        .iter()
        .enumerate()
        .map(|(j, c)| condition(&format!("{field}.conditions[{j}]"), c))
        .collect::<Result<Vec<_>>>()?;
    let id = match input.id.as_deref() {
        Some(id) => prefixed_id(&format!("{field}.id"), id, "ClaimRule-", "ClaimRule-<uuid>")?,
        None => ids::new_entry_id(RULE_ID_PREFIX, rng)?,
    };
    Ok(ClaimRule {
        id,
        name,
        rule_type: RULE_TYPE_CR.to_owned(),
        cr_type,
        conditions,
    })
}

/// At most 64 characters of a refused value, for an error message.
fn clip(value: &str) -> &str {
    crate::limits::clipped(value, 64)
}

/// The identity that presents a token to `assume`.
#[derive(Debug, Clone, Copy)]
pub struct PresentedIdentity<'a> {
    pub iam_id: &'a str,
    pub kind: SubjectKind,
    /// The account of the presented token (`account.bss`).
    pub account_id: &'a str,
    /// The token's authentication level.
    pub acr: u8,
}

/// Why an identity may not assume a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustRefusal {
    /// The identity is not among the profile's trusted identities.
    NotTrusted { iam_id: String, profile_id: String },
    /// A trusted user presented a token of an account the trust does not cover.
    AccountNotTrusted {
        iam_id: String,
        profile_id: String,
        token_account: String,
        trusted_accounts: Vec<String>,
    },
    /// The profile's account requires MFA and the user's token has a lower level.
    MfaTooLow {
        profile_id: String,
        account_id: String,
        required_acr: u8,
        presented_acr: u8,
    },
}

impl fmt::Display for TrustRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustRefusal::NotTrusted { iam_id, profile_id } => write!(
                f,
                "{iam_id} is not a trusted identity of trusted profile {profile_id}"
            ),
            TrustRefusal::AccountNotTrusted {
                iam_id,
                profile_id,
                token_account,
                trusted_accounts,
            } => write!(
                f,
                "trusted profile {profile_id} trusts user {iam_id} only for accounts [{}]; \
                 the presented token is for account {token_account}",
                trusted_accounts.join(", ")
            ),
            TrustRefusal::MfaTooLow {
                profile_id,
                account_id,
                required_acr,
                presented_acr,
            } => write!(
                f,
                "MFA level too low: account {account_id} of trusted profile {profile_id} \
                 requires TOTP (acr {required_acr}) and the presented token has acr {presented_acr}"
            ),
        }
    }
}

impl From<TrustRefusal> for Error {
    fn from(refusal: TrustRefusal) -> Self {
        Error::credential(refusal.to_string())
    }
}

/// Decides whether `presented` may become `profile`: it must be a trusted identity of the
/// profile (a user only for the accounts its trust names, by default the user's own account),
/// and a user's token must meet the MFA level of the profile's account. Service IDs, profiles and
/// CRNs have no second factor, so MFA does not apply to them.
pub fn check_trust(
    profile: &TrustedProfile,
    presented: &PresentedIdentity<'_>,
    dir: &Directory,
) -> std::result::Result<(), TrustRefusal> {
    let not_trusted = || TrustRefusal::NotTrusted {
        iam_id: presented.iam_id.to_owned(),
        profile_id: profile.id.clone(),
    };
    let wanted = match presented.kind {
        SubjectKind::User => (TrustedIdentityType::User, presented.iam_id),
        SubjectKind::ServiceId => (TrustedIdentityType::Serviceid, presented.iam_id),
        // A CRN identity matches only a token of the CRN's own account, so a resource
        // identity obtained in one account can never stand in for another account's.
        SubjectKind::Crn => match presented.iam_id.strip_prefix(ids::CRN_IAM_ID_PREFIX) {
            // The profile's own account too: profiles stored before CRN identities were
            // confined to it cannot trust another tenant's resources either.
            Some(crn)
                if ids::crn_account(crn) == Some(presented.account_id)
                    && presented.account_id == profile.account_id =>
            {
                (TrustedIdentityType::Crn, crn)
            }
            _ => return Err(not_trusted()),
        },
        // A profile cannot be a trusted identity of another profile.
        SubjectKind::Profile => return Err(not_trusted()),
    };
    let identity = profile
        .identities
        .iter()
        .find(|i| i.kind == wanted.0 && i.identifier == wanted.1)
        .ok_or_else(not_trusted)?;
    if presented.kind == SubjectKind::User {
        let trusted_accounts = if identity.accounts.is_empty() {
            dir.user(presented.iam_id)
                .map(|u| vec![u.account_id.clone()])
                .unwrap_or_default()
        } else {
            identity.accounts.clone()
        };
        if !trusted_accounts.iter().any(|a| a == presented.account_id) {
            return Err(TrustRefusal::AccountNotTrusted {
                iam_id: presented.iam_id.to_owned(),
                profile_id: profile.id.clone(),
                token_account: presented.account_id.to_owned(),
                trusted_accounts,
            });
        }
        let required_acr = dir
            .account(&profile.account_id)
            .map(|a| a.mfa.required_acr())
            .unwrap_or(1);
        if presented.acr < required_acr {
            return Err(TrustRefusal::MfaTooLow {
                profile_id: profile.id.clone(),
                account_id: profile.account_id.clone(),
                required_acr,
                presented_acr: presented.acr,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{Change, Entity};
    use crate::model::{Account, MfaRequirement, User};
    use aws_lc_rs::rand::SystemRandom;

    const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";
    const USER: &str = "IBMid-0011223344556677";
    const SERVICE: &str = "iam-ServiceId-8a1e5d7a-0000-4000-8000-000000000001";
    const CLUSTER_CRN: &str =
        "crn:v1:bluemix:public:containers-kubernetes:us-south:a/0123456789abcdef0123456789abcdef:c1::";

    fn doc(json: serde_json::Value) -> ProfileDocument {
        serde_json::from_value(json).unwrap()
    }

    fn check(json: serde_json::Value) -> Result<ValidProfile> {
        validate(&doc(json), ACCOUNT, &SystemRandom::new())
    }

    fn message(json: serde_json::Value) -> String {
        check(json).unwrap_err().message().to_owned()
    }

    #[test]
    fn full_document_validates_and_generates_ids() {
        let valid = check(serde_json::json!({
            "name": " builders ",
            "description": "CI",
            "identities": [
                {"type": "user", "identifier": USER, "accounts": [OTHER, OTHER]},
                {"type": "serviceid", "identifier": "ServiceId-8a1e5d7a-0000-4000-8000-000000000001"},
                {"type": "crn", "identifier": CLUSTER_CRN}
            ],
            "links": [
                {"cr_type": "IKS_SA", "crn": CLUSTER_CRN, "namespace": "default", "name": "builder"},
                {"cr_type": "CE", "crn": CLUSTER_CRN, "component_type": "application", "component_name": "web"},
                {"id": "Link-fixed", "cr_type": "VSI", "crn": CLUSTER_CRN}
            ],
            "rules": [{"type": "Profile-CR", "cr_type": "IKS_SA", "conditions": [
                {"claim": "namespace", "operator": "EQUALS", "value": "\"prod\""},
                {"claim": "pod", "operator": "IN", "value": "[\"a\", 1, true]"},
                {"claim": "n", "operator": "NOT_EQUALS", "value": "7"}
            ]}]
        }))
        .unwrap();
        assert_eq!(valid.name, "builders");
        assert_eq!(valid.identities[0].accounts, vec![OTHER.to_owned()]);
        assert_eq!(
            valid.identities[1].identifier, SERVICE,
            "normalised to iam_id"
        );
        assert!(valid.links[0].id.starts_with("Link-"));
        assert_eq!(valid.links[2].id, "Link-fixed");
        assert!(valid.rules[0].id.starts_with("ClaimRule-"));
        assert_eq!(valid.rules[0].conditions[1].operator, ClaimOperator::In);
    }

    #[test]
    fn names_are_checked() {
        assert!(message(serde_json::json!({"name": ""})).contains("name must not be empty"));
        assert!(message(serde_json::json!({"name": "a\u{7}b"})).contains("control"));
        assert!(message(serde_json::json!({"name": "x".repeat(129)})).contains("longer than"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_value::<ProfileDocument>(serde_json::json!({
            "name": "p", "identities": [{"type": "user", "identifier": USER, "extra": 1}]
        }))
        .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn identities_are_checked() {
        let one = |identity: serde_json::Value| {
            message(serde_json::json!({"name": "p", "identities": [identity]}))
        };
        assert!(
            one(serde_json::json!({"type": "group", "identifier": USER}))
                .contains("identities[0].type must be one of user, serviceid, crn")
        );
        assert!(
            one(serde_json::json!({"type": "user", "identifier": SERVICE}))
                .contains("identities[0].identifier must look like IBMid-")
        );
        assert!(
            one(serde_json::json!({"type": "serviceid", "identifier": USER}))
                .contains("iam-ServiceId-")
        );
        assert!(
            one(serde_json::json!({"type": "crn", "identifier": "crn:v1:x"}))
                .contains("is not a CRN")
        );
        assert!(one(
            serde_json::json!({"type": "serviceid", "identifier": SERVICE, "accounts": [ACCOUNT]})
        )
        .contains("accounts is only for identities of type user"));
        assert!(
            one(serde_json::json!({"type": "user", "identifier": USER, "accounts": ["abc"]}))
                .contains("identities[0].accounts[0] must be 32 lowercase hexadecimal")
        );
        let twice = message(serde_json::json!({"name": "p", "identities": [
            {"type": "serviceid", "identifier": SERVICE},
            {"type": "serviceid", "identifier": SERVICE}
        ]}));
        assert!(twice.contains("listed twice"), "{twice}");
    }

    #[test]
    fn sizes_are_bounded() {
        let identities: Vec<_> = (0..=MAX_IDENTITIES)
            .map(|i| serde_json::json!({"type": "user", "identifier": format!("IBMid-{i}")}))
            .collect();
        assert!(
            message(serde_json::json!({"name": "p", "identities": identities}))
                .contains("at most 100")
        );
        let conditions: Vec<_> = (0..=MAX_CONDITIONS)
            .map(|_| serde_json::json!({"claim": "a", "operator": "EQUALS", "value": "1"}))
            .collect();
        let rules =
            serde_json::json!([{"type": "Profile-CR", "cr_type": "CE", "conditions": conditions}]);
        assert!(message(serde_json::json!({"name": "p", "rules": rules})).contains("at most 20"));
    }

    #[test]
    fn links_are_checked() {
        let one =
            |link: serde_json::Value| message(serde_json::json!({"name": "p", "links": [link]}));
        assert!(
            one(serde_json::json!({"cr_type": "K8S", "crn": CLUSTER_CRN}))
                .contains("links[0].cr_type must be one of IKS_SA, ROKS_SA, CE, VSI, BMS, PVS")
        );
        assert!(one(serde_json::json!({"cr_type": "VSI", "crn": "nope"})).contains("not a CRN"));
        assert!(one(
            serde_json::json!({"cr_type": "ROKS_SA", "crn": CLUSTER_CRN, "namespace": "x"})
        )
        .contains("needs namespace and name"));
        assert!(one(
            serde_json::json!({"cr_type": "CE", "crn": CLUSTER_CRN, "component_type": "job"})
        )
        .contains("needs component_type and component_name"));
        assert!(
            one(serde_json::json!({"cr_type": "VSI", "crn": CLUSTER_CRN, "name": "x"}))
                .contains("is the crn alone")
        );
        assert!(
            one(serde_json::json!({"id": "Rule-1", "cr_type": "VSI", "crn": CLUSTER_CRN}))
                .contains("links[0].id must look like Link-")
        );
    }

    #[test]
    fn rules_are_checked() {
        let rule = |r: serde_json::Value| message(serde_json::json!({"name": "p", "rules": [r]}));
        let cond = |c: serde_json::Value| {
            rule(serde_json::json!({"type": "Profile-CR", "cr_type": "IKS_SA", "conditions": [c]}))
        };
        assert!(rule(
            serde_json::json!({"type": "Profile-SAML", "cr_type": "IKS_SA", "conditions": []})
        )
        .contains("Tessera has no SAML federation"));
        assert!(
            rule(serde_json::json!({"type": "Other", "cr_type": "IKS_SA", "conditions": []}))
                .contains("rules[0].type must be Profile-CR")
        );
        assert!(
            rule(serde_json::json!({"type": "Profile-CR", "cr_type": "X", "conditions": []}))
                .contains("rules[0].cr_type must be one of")
        );
        assert!(
            rule(serde_json::json!({"type": "Profile-CR", "cr_type": "CE", "conditions": []}))
                .contains("at least one condition")
        );
        assert!(
            cond(serde_json::json!({"claim": " ", "operator": "EQUALS", "value": "1"}))
                .contains("conditions[0].claim must not be empty")
        );
        assert!(
            cond(serde_json::json!({"claim": "a", "operator": "LIKE", "value": "1"})).contains(
                "operator must be one of EQUALS, NOT_EQUALS, EQUALS_IGNORE_CASE, \
                 NOT_EQUALS_IGNORE_CASE, CONTAINS, IN"
            )
        );
        assert!(
            cond(serde_json::json!({"claim": "a", "operator": "EQUALS", "value": "prod"}))
                .contains("must be JSON-encoded")
        );
        assert!(
            cond(serde_json::json!({"claim": "a", "operator": "EQUALS", "value": "[\"a\"]"}))
                .contains("must be a JSON string, number or boolean")
        );
        assert!(
            cond(serde_json::json!({"claim": "a", "operator": "IN", "value": "\"a\""}))
                .contains("non-empty JSON array")
        );
        assert!(
            cond(serde_json::json!({"claim": "a", "operator": "IN", "value": "[]"}))
                .contains("non-empty JSON array")
        );
        for op in OPERATORS {
            let value = if op == "IN" { "[\"x\"]" } else { "\"x\"" };
            let ok = check(
                serde_json::json!({"name": "p", "rules": [{"type": "Profile-CR",
                "cr_type": "CE", "conditions": [{"claim": "a", "operator": op, "value": value}]}]}),
            );
            assert!(ok.is_ok(), "{op}");
        }
    }

    fn directory(mfa: MfaRequirement) -> Directory {
        let mut dir = Directory::default();
        for (id, mfa) in [(ACCOUNT, mfa), (OTHER, MfaRequirement::None)] {
            dir.apply(Change::Upsert(Entity::Account(Account {
                id: id.into(),
                name: "acme".into(),
                enterprise_id: None,
                mfa,
                created_at: 0,
            })));
        }
        dir.apply(Change::Upsert(Entity::User(User {
            id: USER.into(),
            account_id: ACCOUNT.into(),
            name: "Ann".into(),
            email: "ann@example.com".into(),
            password_hash: None,
            federated: false,
            created_at: 0,
        })));
        dir
    }

    fn profile(identities: Vec<TrustedIdentity>) -> TrustedProfile {
        TrustedProfile {
            id: "Profile-1".into(),
            account_id: ACCOUNT.into(),
            name: "p".into(),
            description: String::new(),
            identities,
            links: vec![],
            rules: vec![],
            created_at: 0,
        }
    }

    fn trusted(kind: TrustedIdentityType, identifier: &str, accounts: &[&str]) -> TrustedIdentity {
        TrustedIdentity {
            kind,
            identifier: identifier.into(),
            accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    fn presented<'a>(
        iam_id: &'a str,
        kind: SubjectKind,
        account: &'a str,
        acr: u8,
    ) -> PresentedIdentity<'a> {
        PresentedIdentity {
            iam_id,
            kind,
            account_id: account,
            acr,
        }
    }

    #[test]
    fn trusted_service_id_and_crn_pass_untrusted_fail() {
        let dir = directory(MfaRequirement::Totp);
        let p = profile(vec![
            trusted(TrustedIdentityType::Serviceid, SERVICE, &[]),
            trusted(TrustedIdentityType::Crn, CLUSTER_CRN, &[]),
        ]);
        // Service IDs and CRNs have no second factor: MFA does not apply.
        assert_eq!(
            check_trust(
                &p,
                &presented(SERVICE, SubjectKind::ServiceId, ACCOUNT, 1),
                &dir
            ),
            Ok(())
        );
        let crn_iam_id = ids::crn_iam_id(CLUSTER_CRN);
        assert_eq!(
            check_trust(
                &p,
                &presented(&crn_iam_id, SubjectKind::Crn, ACCOUNT, 0),
                &dir
            ),
            Ok(())
        );
        let refusal =
            check_trust(&p, &presented(USER, SubjectKind::User, ACCOUNT, 2), &dir).unwrap_err();
        assert!(matches!(refusal, TrustRefusal::NotTrusted { .. }));
        assert!(refusal
            .to_string()
            .contains("is not a trusted identity of trusted profile Profile-1"));
        let profile_token = "iam-Profile-2";
        assert!(matches!(
            check_trust(
                &p,
                &presented(profile_token, SubjectKind::Profile, ACCOUNT, 1),
                &dir
            ),
            Err(TrustRefusal::NotTrusted { .. })
        ));
    }

    #[test]
    fn user_trust_is_per_account() {
        let dir = directory(MfaRequirement::None);
        let own = profile(vec![trusted(TrustedIdentityType::User, USER, &[])]);
        assert_eq!(
            check_trust(&own, &presented(USER, SubjectKind::User, ACCOUNT, 1), &dir),
            Ok(())
        );
        let other_only = profile(vec![trusted(TrustedIdentityType::User, USER, &[OTHER])]);
        let refusal = check_trust(
            &other_only,
            &presented(USER, SubjectKind::User, ACCOUNT, 1),
            &dir,
        )
        .unwrap_err();
        assert!(refusal
            .to_string()
            .contains(&format!("only for accounts [{OTHER}]")));
        assert_eq!(
            check_trust(
                &other_only,
                &presented(USER, SubjectKind::User, OTHER, 1),
                &dir
            ),
            Ok(())
        );
    }

    #[test]
    fn mfa_applies_to_users() {
        let dir = directory(MfaRequirement::Totp);
        let p = profile(vec![trusted(TrustedIdentityType::User, USER, &[])]);
        let refusal =
            check_trust(&p, &presented(USER, SubjectKind::User, ACCOUNT, 1), &dir).unwrap_err();
        assert_eq!(
            refusal,
            TrustRefusal::MfaTooLow {
                profile_id: "Profile-1".into(),
                account_id: ACCOUNT.into(),
                required_acr: 2,
                presented_acr: 1
            }
        );
        assert!(refusal.to_string().contains("requires TOTP (acr 2)"));
        assert_eq!(
            Error::from(refusal).kind(),
            crate::error::ErrorKind::InvalidCredential
        );
        assert_eq!(
            check_trust(&p, &presented(USER, SubjectKind::User, ACCOUNT, 2), &dir),
            Ok(())
        );
    }
}
