//! The form of `POST /identity/token`: every grant's parameters, parsed strictly (each at most
//! once). A leaf module with one function, so the fuzz targets can reach the parser without the
//! rest of the surface.

use serde::Deserialize;

/// The form parameters of every grant. No `Debug`: several fields are secrets.
#[derive(Deserialize, Default)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub apikey: Option<String>,
    pub response_type: Option<String>,
    pub scope: Option<String>,
    pub refresh_token: Option<String>,
    pub receiver_client_ids: Option<String>,
    pub delegated_refresh_token_expiry: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub account: Option<String>,
    /// The TOTP code of the password grant.
    pub otp: Option<String>,
    pub access_token: Option<String>,
    pub cookie: Option<String>,
    pub profile_id: Option<String>,
    pub profile_crn: Option<String>,
    pub profile_name: Option<String>,
    pub cr_token: Option<String>,
    pub desired_iam_id: Option<String>,
    /// The delegated-refresh-token grant also takes its token under this name.
    pub delegated_refresh_token: Option<String>,
}

/// Why a body is not a token form. Never quotes the body (it holds credentials).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("The request body is not a valid form; each parameter may appear at most once.")]
pub struct FormError;

/// Parses an `application/x-www-form-urlencoded` body. Unknown parameters are ignored, as the
/// IBM endpoint does; a parameter given twice is an error.
pub fn parse(body: &[u8]) -> Result<TokenForm, FormError> {
    serde_urlencoded::from_bytes(body).map_err(|_| FormError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_decoded_once_each() {
        let form = parse(b"grant_type=urn%3Aibm&apikey=a+b&other=x").unwrap();
        assert_eq!(form.grant_type.as_deref(), Some("urn:ibm"));
        assert_eq!(form.apikey.as_deref(), Some("a b"));
        assert_eq!(parse(b"apikey=a&apikey=b").err(), Some(FormError));
    }
}
