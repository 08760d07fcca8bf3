//! The form of `POST /identity/token`: every grant's parameters, parsed strictly (each at most
//! once). A leaf module with one function, so the fuzz targets can reach the parser without the
//! rest of the surface.

use serde::de::value::{Error as ValueError, MapDeserializer};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::borrow::Cow;

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
    parse_form(body)
}

/// Parses an `application/x-www-form-urlencoded` body into `T` (a struct of optional strings),
/// as `serde_urlencoded` does (pairs split by `&`, empty ones skipped, the name up to the first
/// `=`, `+` as a space, percent-decoding, invalid UTF-8 replaced). A name or value with nothing
/// to decode (no `%`, no `+`, valid UTF-8: every token and key a client sends) is borrowed from
/// the body as it is: `serde_urlencoded` scanned every value byte by byte for escapes and again
/// for UTF-8, several scans of a kilobyte-long token per request. Only the parts that need it
/// (the percent-encoded colons of a `grant_type`) are decoded into a new string.
pub fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, FormError> {
    // `memchr` finds the separators: a byte-by-byte split walked every kilobyte-long token.
    let mut rest = Some(body);
    let pieces = std::iter::from_fn(move || {
        let left = rest?;
        Some(match memchr::memchr(b'&', left) {
            Some(at) => {
                rest = Some(&left[at + 1..]);
                &left[..at]
            }
            None => {
                rest = None;
                left
            }
        })
    });
    let pairs = pieces.filter(|pair| !pair.is_empty()).map(|pair| {
        let (name, value) = match memchr::memchr(b'=', pair) {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        (FormValue(decode(name)), FormValue(decode(value)))
    });
    T::deserialize(MapDeserializer::<_, ValueError>::new(pairs)).map_err(|_| FormError)
}

/// One name or value, decoded as `form_urlencoded` decodes it ([`crate::http::form_decoded`]),
/// invalid UTF-8 replaced; borrowed when nothing changes.
fn decode(part: &[u8]) -> Cow<'_, str> {
    match crate::http::form_decoded(part) {
        // `from_utf8` first: its check of valid text is vectorized, the lossy decoder's is not.
        Cow::Borrowed(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(bytes),
        },
        Cow::Owned(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Cow::Owned(text),
            Err(invalid) => Cow::Owned(String::from_utf8_lossy(invalid.as_bytes()).into_owned()),
        },
    }
}

/// A form name or value as serde_urlencoded presents one: a string, and `Some` of it for an
/// `Option`.
struct FormValue<'a>(Cow<'a, str>);

impl<'de> serde::de::IntoDeserializer<'de, ValueError> for FormValue<'de> {
    type Deserializer = FormValue<'de>;

    fn into_deserializer(self) -> Self::Deserializer {
        self
    }
}

impl<'de> serde::Deserializer<'de> for FormValue<'de> {
    type Error = ValueError;

    fn deserialize_any<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            Cow::Borrowed(text) => visitor.visit_borrowed_str(text),
            Cow::Owned(text) => visitor.visit_string(text),
        }
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_some(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parameters_are_decoded_once_each() {
        let form = parse(b"grant_type=urn%3Aibm&apikey=a+b&other=x").unwrap();
        assert_eq!(form.grant_type.as_deref(), Some("urn:ibm"));
        assert_eq!(form.apikey.as_deref(), Some("a b"));
        assert_eq!(parse(b"apikey=a&apikey=b").err(), Some(FormError));
        assert_eq!(parse(b"apikey=a&apikey=a%20").err(), Some(FormError));
        let plain = parse(b"&grant_type=x&&apikey&scope=a=b&").unwrap();
        assert_eq!(plain.grant_type.as_deref(), Some("x"));
        assert_eq!(plain.apikey.as_deref(), Some(""));
        assert_eq!(plain.scope.as_deref(), Some("a=b"));
    }

    /// What the fast path reads, as comparable values (`TokenForm` has no `Debug`: secrets).
    fn fields(form: &TokenForm) -> [Option<&str>; 4] {
        [
            form.grant_type.as_deref(),
            form.apikey.as_deref(),
            form.scope.as_deref(),
            form.refresh_token.as_deref(),
        ]
    }

    proptest! {
        /// Whatever the body, the result is serde_urlencoded's: the same fields, the same
        /// refusals (a repeated parameter, invalid UTF-8 after decoding).
        #[test]
        fn every_body_parses_as_serde_urlencoded_parses_it(
            parts in prop::collection::vec(
                prop_oneof![
                    Just(b"grant_type".to_vec()),
                    Just(b"apikey".to_vec()),
                    Just(b"scope".to_vec()),
                    Just(b"refresh_token".to_vec()),
                    prop::collection::vec(
                        prop::sample::select(b"=&%+aZ09.-_\xff\xc3\xa9F3A".to_vec()),
                        0..6,
                    ),
                ],
                0..8,
            )
        ) {
            let body = parts.concat();
            let ours = parse(&body);
            let theirs: Result<TokenForm, _> = serde_urlencoded::from_bytes(&body);
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => prop_assert_eq!(fields(a), fields(b)),
                (Err(_), Err(_)) => {}
                _ => prop_assert!(
                    false,
                    "fast path ok: {}, serde_urlencoded ok: {}",
                    ours.is_ok(),
                    theirs.is_ok()
                ),
            }
        }
    }
}
