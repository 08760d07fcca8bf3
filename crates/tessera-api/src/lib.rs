//! Tessera's v1 wire types, defined once: the admin API's request and response bodies
//! ([`admin`]), its error body ([`error`]), the token responses of the protocol surfaces a
//! resource service or script calls ([`token`]), and the route paths ([`paths`]).
//!
//! Each type derives [`utoipa::ToSchema`]; the server's `/openapi.json` is generated from them.
//! Every validation rule the server applies to a field is stated on the field (lengths,
//! patterns, enums, nullability, required); requests that refuse unknown fields say
//! `additionalProperties: false`. Rules that span fields, or depend on a sibling's value, are
//! JSON Schema fragments in [`schema_rules`], merged into the component schemas. The server converts its core models to these types; this crate
//! knows nothing of the core, the store or HTTP.

pub mod admin;
#[cfg(test)]
mod debug_tests;
pub mod error;
pub mod paths;
pub mod schema_rules;
pub mod token;

/// Paging limits of list requests (the field rules themselves live in `tessera_core::limits`;
/// the schemas state them, and the server's tests check that they agree).
pub mod limits {
    /// Objects per page when `limit` is not given.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// Most objects per page.
    pub const MAX_LIMIT: u32 = 1000;
    /// Longest list filter value.
    pub const MAX_FILTER: usize = 128;
}

/// What the `Debug` of a secret-bearing type shows instead of the secret.
const REDACTED: &str = "<redacted>";

/// A secret an answer carries once (a new API key, client secret, OAuth token, private key,
/// TOTP secret, ID token). On the wire it is the plain string; its `Debug` is `<redacted>`, so
/// that the views holding one can derive `Debug`. Fields of this type state
/// `#[schema(value_type = String)]`: the document shows a string.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct OneTime(String);

impl OneTime {
    pub fn new(secret: impl Into<String>) -> OneTime {
        OneTime(secret.into())
    }

    /// The secret itself, for the one place that shows or uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl std::ops::Deref for OneTime {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for OneTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}
