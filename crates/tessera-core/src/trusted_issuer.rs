//! Validation of trusted-issuer documents (admin API): the issuer URL, compute-resource type,
//! audiences and claim mapping. Key sets are checked by the server, which can read files.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// Compute-resource types a trusted issuer may stand for.
pub const CR_TYPES: [&str; 6] = ["IKS_SA", "ROKS_SA", "CE", "VSI", "BMS", "PVS"];
pub const DEFAULT_CR_TYPE: &str = "IKS_SA";
pub const DEFAULT_AUDIENCE: &str = "iam";
const MAX_URL: usize = 512;
const MAX_AUDIENCES: usize = 16;
const MAX_MAPPINGS: usize = 32;

/// The default CRN of an issuer's compute resource: a cluster named by the issuer's id.
pub fn default_crn(account_id: &str, issuer_id: &str) -> String {
    format!("crn:v1:tessera:public:containers-kubernetes::a/{account_id}::cluster:{issuer_id}")
}

/// An `https` URL, or `http` on a loopback host; no query, fragment or whitespace. The exact
/// text is what tokens' `iss` must equal.
pub fn issuer_url(value: &str) -> Result<String> {
    if value.is_empty() || value.len() > MAX_URL {
        return Err(Error::invalid(format!(
            "issuer_url must be 1 to {MAX_URL} characters"
        )));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid("issuer_url must not contain whitespace"));
    }
    if value.contains('?') || value.contains('#') {
        return Err(Error::invalid(
            "issuer_url must not have a query or a fragment",
        ));
    }
    let (scheme, rest) = value
        .split_once("://")
        .ok_or_else(|| Error::invalid("issuer_url must be an https URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if authority.contains('@') {
        return Err(Error::invalid("issuer_url must not contain credentials"));
    }
    let host = if host.starts_with('[') {
        host.split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default().to_owned()
    };
    if host.is_empty() {
        return Err(Error::invalid("issuer_url has no host"));
    }
    match scheme {
        "https" => Ok(value.to_owned()),
        "http" if matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]") => {
            Ok(value.to_owned())
        }
        "http" => Err(Error::invalid(
            "issuer_url must use https (http is allowed on loopback hosts only)",
        )),
        _ => Err(Error::invalid("issuer_url must be an https URL")),
    }
}

pub fn cr_type(value: Option<&str>) -> Result<String> {
    match value {
        None => Ok(DEFAULT_CR_TYPE.to_owned()),
        Some(v) if CR_TYPES.contains(&v) => Ok(v.to_owned()),
        Some(_) => Err(Error::invalid(format!(
            "cr_type must be one of {}",
            CR_TYPES.join(", ")
        ))),
    }
}

/// 1 to 16 non-empty audiences of at most 256 characters (as JSON Schema counts them);
/// `None` is `["iam"]`.
pub fn audiences(value: Option<Vec<String>>) -> Result<Vec<String>> {
    let list = value.unwrap_or_else(|| vec![DEFAULT_AUDIENCE.to_owned()]);
    if list.is_empty() || list.len() > MAX_AUDIENCES {
        return Err(Error::invalid(format!(
            "audiences must have 1 to {MAX_AUDIENCES} entries"
        )));
    }
    for a in &list {
        if a.trim().is_empty() || a.chars().count() > 256 || a.chars().any(char::is_control) {
            return Err(Error::invalid(
                "each audience must be 1 to 256 characters without control characters",
            ));
        }
    }
    Ok(list)
}

/// Compute-resource claim names (`[A-Za-z0-9_-]`, 1..=64) to dotted token paths (1..=256, no
/// empty segment), at most 32 entries.
pub fn claim_mapping(value: Option<BTreeMap<String, String>>) -> Result<BTreeMap<String, String>> {
    let map = value.unwrap_or_default();
    if map.len() > MAX_MAPPINGS {
        return Err(Error::invalid(format!(
            "claim_mapping has more than {MAX_MAPPINGS} entries"
        )));
    }
    for (claim, path) in &map {
        let claim_ok = !claim.is_empty()
            && claim.len() <= 64
            && claim
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !claim_ok {
            return Err(Error::invalid(format!(
                "claim_mapping key {:?} must be 1 to 64 letters, digits, '_' or '-'",
                claim.chars().take(64).collect::<String>()
            )));
        }
        if path.is_empty()
            || path.chars().count() > 256
            || path.split('.').any(str::is_empty)
            || path.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::invalid(format!(
                "claim_mapping.{claim} must be a dotted claim path like kubernetes.io.namespace"
            )));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `trusted_issuer` fuzz target: a number in an inline JWKS read back as a
    /// different number (serde_json's default float parsing is not exact), so the stored
    /// document changed on every round trip through the store.
    #[test]
    fn an_inline_jwks_document_reads_back_exactly_as_stored() {
        let source: crate::model::JwksSource = serde_json::from_str(
            r#"{"inline":{"keys":[{"kid":"k","exp":17963333333333333333333333333333,"x":0.1}]}}"#,
        )
        .unwrap();
        let stored = serde_json::to_string(&source).unwrap();
        let read: crate::model::JwksSource = serde_json::from_str(&stored).unwrap();
        assert_eq!(read, source);
    }

    #[test]
    fn issuer_urls() {
        for accepted in [
            "https://kubernetes.default.svc",
            "https://oidc.example.com/id/ABC",
            "http://127.0.0.1:8443/k8s",
            "http://localhost",
            "http://[::1]:80",
        ] {
            assert!(issuer_url(accepted).is_ok(), "{accepted}");
        }
        for refused in [
            "http://k8s.example",
            "https://x.example/?a=b",
            "https://x.example/#f",
            "ftp://x.example",
            "x.example",
            "https://",
            "https://u:p@x.example",
            "https://x.example/ a",
        ] {
            assert!(issuer_url(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn cr_types_audiences_mappings() {
        assert_eq!(cr_type(None).unwrap(), "IKS_SA");
        assert!(cr_type(Some("CE")).is_ok());
        assert!(cr_type(Some("iks_sa")).is_err());
        assert_eq!(audiences(None).unwrap(), vec!["iam".to_owned()]);
        assert!(audiences(Some(vec![])).is_err());
        assert!(audiences(Some(vec![" ".into()])).is_err());
        let ok = BTreeMap::from([("namespace".to_owned(), "kubernetes.io.namespace".to_owned())]);
        assert!(claim_mapping(Some(ok)).is_ok());
        let bad = BTreeMap::from([("ns".to_owned(), "a..b".to_owned())]);
        assert!(claim_mapping(Some(bad)).is_err());
        let bad_key = BTreeMap::from([("a b".to_owned(), "x".to_owned())]);
        assert!(claim_mapping(Some(bad_key)).is_err());
    }
}
