//! The rules of the admin request schemas that a field attribute cannot state: one field's
//! shape depending on a sibling's value (a trusted identity's `identifier` on its `type`, a
//! link's fields on its `cr_type`, a condition's `value` on its `operator`), fields that
//! exclude or require each other (`jwks`/`jwks_file`, `federated`/`password`), and patterns
//! too long to repeat on each field (CRNs, JSON-encoded values). Each entry is a JSON Schema
//! fragment that the server's OpenAPI generator merges into the component schema of that name
//! (objects merged key by key, anything else replaced), so the document states every rule the
//! server applies.
//!
//! What no JSON Schema can say is listed in [`UNSTATED`], with the reason; the schema fuzzer
//! (tests/schema/hooks.py) shapes its requests to those rules instead.

use serde_json::{json, Value};

/// A character Rust's `str::trim` removes (`char::is_whitespace`). Not `\s`: Python's `\s`
/// (the fuzzer's regex engine) also matches U+001C..U+001F, which `trim` keeps.
macro_rules! ws {
    () => {
        r"[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    };
}

/// A character that is neither whitespace nor a control character.
macro_rules! visible {
    () => {
        r"[^\s\u0000-\u001f\u007f-\u009f]"
    };
}

/// A character of a CRN segment: printable ASCII except `:`.
macro_rules! crn_char {
    () => {
        r"[!-9;-~]"
    };
}

/// The start of every CRN pattern: leading whitespace, `crn:v1:` and the first three segments
/// (none empty).
macro_rules! crn_start {
    () => {
        concat!(
            "^",
            ws!(),
            "*crn:v1:",
            crn_char!(),
            "+:",
            crn_char!(),
            "+:",
            crn_char!(),
            "+"
        )
    };
}

/// The end of a CRN pattern: `$n` more segments (each may be empty), trailing whitespace.
macro_rules! crn_segments_to_end {
    ($n:literal) => {
        concat!("(:", crn_char!(), "*){", $n, "}", ws!(), r"*(?!\n)$")
    };
}

/// A JSON scalar as `serde_json` parses it into a string, number or boolean: a string literal
/// (escapes complete, surrogates paired), a number that fits an `f64`, `true` or `false`.
macro_rules! json_scalar {
    () => {
        concat!(
            r#"("([^"\\\u0000-\u001f]|\\(["\\/bfnrt]|u([0-9a-cA-Ce-fE-F][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}|[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})))*""#,
            r"|-?(0|[1-9][0-9]{0,199})(\.[0-9]{1,200})?([eE][+-]?[0-9]{1,2})?|true|false)"
        )
    };
}

/// JSON's own whitespace (around a JSON-encoded value).
macro_rules! json_ws {
    () => {
        r"[ \t\n\r]*"
    };
}

/// The compute-resource types of links, claim rules and trusted issuers
/// (`tessera_core::trusted_profile::CR_TYPES`; a server test holds the two equal).
pub const CR_TYPES: [&str; 6] = ["IKS_SA", "ROKS_SA", "CE", "VSI", "BMS", "PVS"];

/// A CRN (trimmed; `tessera_core::ids::parse_crn`): `crn:v1:` and eight more segments, the
/// first three non-empty. ASCII only, so that `maxLength` counts the bytes the server counts.
pub const CRN: &str = concat!(crn_start!(), crn_segments_to_end!(5));

/// A CRN whose scope segment is `a/<account id>` (a CRN identity of a trusted profile).
pub const ACCOUNT_CRN: &str = concat!(
    crn_start!(),
    ":",
    crn_char!(),
    "*:a/[0-9a-f]{32}",
    crn_segments_to_end!(3)
);

/// A CRN whose scope segment, if it starts with `a/`, is `a/<account id>` (a trusted issuer's
/// `crn`: an account scope must be the issuer's own account).
pub const ISSUER_CRN: &str = concat!(
    crn_start!(),
    ":",
    crn_char!(),
    "*:(a/[0-9a-f]{32}|[!-9;-`b-~]",
    crn_char!(),
    "*|a[!-.0-9;-~]",
    crn_char!(),
    "*|a|)",
    crn_segments_to_end!(3)
);

/// An optional free-text link field (`namespace`, `name`, `component_type`,
/// `component_name`): 1..=253 characters after trimming, no control characters.
const LINK_FIELD: &str = concat!(
    "^",
    ws!(),
    "*",
    visible!(),
    r"([^\u0000-\u001f\u007f-\u009f]{0,251}",
    visible!(),
    ")?",
    ws!(),
    r"*(?!\n)$"
);

/// A claim rule's optional name: blank (no name), or 1..=128 characters after trimming
/// without control characters.
const RULE_NAME: &str = concat!(
    "^(",
    ws!(),
    "*|",
    ws!(),
    "*",
    visible!(),
    r"([^\u0000-\u001f\u007f-\u009f]{0,126}",
    visible!(),
    ")?",
    ws!(),
    r"*)(?!\n)$"
);

/// A claim name: 1..=128 characters after trimming, none of them whitespace or control.
const CLAIM: &str = concat!("^", ws!(), "*", visible!(), "{1,128}", ws!(), r"*(?!\n)$");

/// The JSON-encoded value of every operator but `IN`: a string, number or boolean.
const SCALAR_VALUE: &str = concat!("^", json_ws!(), json_scalar!(), json_ws!(), r"(?!\n)$");

/// The JSON-encoded value of `IN`: a non-empty array of strings, numbers or booleans.
const LIST_VALUE: &str = concat!(
    "^",
    json_ws!(),
    r"\[",
    json_ws!(),
    json_scalar!(),
    "(",
    json_ws!(),
    ",",
    json_ws!(),
    json_scalar!(),
    ")*",
    json_ws!(),
    r"\]",
    json_ws!(),
    r"(?!\n)$"
);

/// One line of text, non-blank, without control characters (an audience).
const AUDIENCE: &str = concat!(
    r"^[^\u0000-\u001f\u007f-\u009f]*",
    visible!(),
    r"[^\u0000-\u001f\u007f-\u009f]*(?!\n)$"
);

/// A dotted token claim path (`kubernetes.io.namespace`): no empty segment, no whitespace.
const CLAIM_PATH: &str =
    r"^[^.\s\u0000-\u001f\u007f-\u009f]+(\.[^.\s\u0000-\u001f\u007f-\u009f]+)*(?!\n)$";

/// An absolute path on the server (after trimming).
const JWKS_FILE: &str = concat!("^", ws!(), r"*/[\s\S]*(?!\n)$");

/// Rules the server applies that JSON Schema cannot state, and why. The schema fuzzer's hooks
/// (tests/schema/hooks.py) shape its requests to each of them.
pub const UNSTATED: &[&str] = &[
    "AuthorizationPolicyCreate: with account_id, target_crn's a/<account> scope equals it \
     (equality of two fields' values)",
    "TrustedProfileCreate/Replace: a crn identity's a/<account> scope is the profile's account \
     (account_id, else the caller's; on replace the stored profile's)",
    "TrustedIssuerCreate: an a/<account> scope of crn is the issuer's account (account_id, \
     else the caller's)",
    "JwksDocument: at least one key is a usable public key (RSA or EC key material)",
    "TrustedProfileCreate/Replace: no two identities name the same identity after \
     normalisation, no two links or rules share an id",
];

fn nullable(schema: Value) -> Value {
    json!({ "oneOf": [{ "type": "null" }, schema] })
}

/// The fragments, by component schema name.
pub fn admin_schema_rules() -> Vec<(&'static str, Value)> {
    // A property that must be absent or null.
    let absent = json!({ "type": "null" });
    let string = json!({ "type": "string" });
    let account = json!({ "type": "string", "pattern": r"^[0-9a-f]{32}(?!\n)$" });
    vec![
        (
            // A federated user has no password.
            "UserCreate",
            json!({
                "anyOf": [
                    { "properties": { "federated": { "const": false } } },
                    { "properties": { "password": absent } },
                ],
            }),
        ),
        (
            "TrustedIdentity",
            json!({
                "properties": {
                    "identifier": { "type": "string" },
                    "accounts": { "items": account }
                },
                "oneOf": [
                    {
                        "properties": {
                            "type": { "const": "user" },
                            "identifier": {
                                "pattern": concat!("^", ws!(), "*IBMid-[A-Za-z0-9._-]{1,58}", ws!(), r"*(?!\n)$")
                            }
                        }
                    },
                    {
                        // Either spelling: `iam-ServiceId-…` or the id `ServiceId-…`; the
                        // iam id is at most 64 characters.
                        "properties": {
                            "type": { "const": "serviceid" },
                            "identifier": {
                                "pattern": concat!("^", ws!(), "*(iam-)?ServiceId-[A-Za-z0-9._-]{1,50}", ws!(), r"*(?!\n)$")
                            },
                            "accounts": { "maxItems": 0 }
                        }
                    },
                    {
                        "properties": {
                            "type": { "const": "crn" },
                            "identifier": { "pattern": ACCOUNT_CRN, "maxLength": 512 },
                            "accounts": { "maxItems": 0 }
                        }
                    }
                ]
            }),
        ),
        (
            "ComputeResourceLink",
            json!({
                "properties": {
                    "id": { "pattern": r"^Link-[A-Za-z0-9._-]{1,59}(?!\n)$" },
                    "cr_type": { "enum": CR_TYPES },
                    "crn": { "pattern": CRN, "maxLength": 512 },
                    "namespace": { "pattern": LINK_FIELD },
                    "name": { "pattern": LINK_FIELD },
                    "component_type": { "pattern": LINK_FIELD },
                    "component_name": { "pattern": LINK_FIELD }
                },
                "oneOf": [
                    {
                        // A Kubernetes service account.
                        "properties": {
                            "cr_type": { "enum": ["IKS_SA", "ROKS_SA"] },
                            "namespace": string, "name": string,
                            "component_type": absent, "component_name": absent
                        },
                        "required": ["namespace", "name"]
                    },
                    {
                        // A Code Engine component.
                        "properties": {
                            "cr_type": { "const": "CE" },
                            "namespace": absent, "name": absent,
                            "component_type": string, "component_name": string
                        },
                        "required": ["component_type", "component_name"]
                    },
                    {
                        // A VM or server: the CRN alone.
                        "properties": {
                            "cr_type": { "enum": ["VSI", "BMS", "PVS"] },
                            "namespace": absent, "name": absent,
                            "component_type": absent, "component_name": absent
                        }
                    }
                ]
            }),
        ),
        (
            "ClaimRule",
            json!({
                "properties": {
                    "id": { "pattern": r"^ClaimRule-[A-Za-z0-9._-]{1,54}(?!\n)$" },
                    "name": { "pattern": RULE_NAME },
                    "type": { "enum": ["Profile-CR"] },
                    "cr_type": { "enum": CR_TYPES }
                }
            }),
        ),
        (
            "ClaimCondition",
            json!({
                "properties": {
                    "claim": { "pattern": CLAIM },
                    "value": { "maxLength": 1024 }
                },
                "oneOf": [
                    {
                        "properties": {
                            "operator": { "const": "IN" },
                            "value": { "pattern": LIST_VALUE }
                        }
                    },
                    {
                        "properties": {
                            "operator": { "not": { "const": "IN" } },
                            "value": { "pattern": SCALAR_VALUE }
                        }
                    }
                ]
            }),
        ),
        ("TrustedProfileCreate", profile_lists()),
        ("TrustedProfileReplace", profile_lists()),
        (
            "JwksDocument",
            json!({
                "description": "A JSON Web Key Set: `{\"keys\": [...]}`, with at least one usable \
                                RSA or EC public key (keys of other types are ignored).",
                "properties": { "keys": { "minItems": 1 } }
            }),
        ),
        (
            "TrustedIssuerCreate",
            json!({
                "properties": issuer_fields(true),
                // Exactly one key source.
                "oneOf": [
                    {
                        "properties": { "jwks": { "$ref": "#/components/schemas/JwksDocument" }, "jwks_file": absent },
                        "required": ["jwks"]
                    },
                    {
                        "properties": { "jwks": absent, "jwks_file": string },
                        "required": ["jwks_file"]
                    }
                ]
            }),
        ),
        (
            "TrustedIssuerUpdate",
            json!({
                "properties": issuer_fields(false),
                // At least one field, and not both key sources.
                "anyOf": [
                    { "properties": { "jwks": { "$ref": "#/components/schemas/JwksDocument" } }, "required": ["jwks"] },
                    { "properties": { "jwks_file": string }, "required": ["jwks_file"] },
                    { "properties": { "audiences": { "type": "array" } }, "required": ["audiences"] },
                    { "properties": { "claim_mapping": { "type": "object" } }, "required": ["claim_mapping"] }
                ],
                "not": {
                    "properties": { "jwks": { "type": "object" }, "jwks_file": string },
                    "required": ["jwks", "jwks_file"]
                }
            }),
        ),
    ]
}
/// The list sizes of a profile document; an identity listed twice is refused.
fn profile_lists() -> Value {
    json!({
        "properties": {
            "identities": { "maxItems": 100, "uniqueItems": true },
            "links": { "maxItems": 100 },
            "rules": { "maxItems": 100 }
        }
    })
}

/// The fields of a trusted issuer's create request; the update request has those but `cr_type`
/// and `crn`.
fn issuer_fields(create: bool) -> Value {
    let mut fields = json!({
        "jwks_file": { "pattern": JWKS_FILE, "maxLength": 1024 },
        "audiences": { "minItems": 1, "maxItems": 16, "items": { "pattern": AUDIENCE, "maxLength": 256 } },
        "claim_mapping": {
            "maxProperties": 32,
            "propertyNames": { "pattern": r"^[A-Za-z0-9_-]{1,64}(?!\n)$" },
            "additionalProperties": { "pattern": CLAIM_PATH, "maxLength": 256 }
        },
    });
    if create {
        fields["cr_type"] = nullable(json!({ "enum": CR_TYPES }));
        fields["crn"] = json!({ "pattern": ISSUER_CRN, "maxLength": 512 });
    }
    fields
}
