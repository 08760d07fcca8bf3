//! Size limits and syntax checks for every externally supplied field.
//!
//! The numbers are part of the wire contract: the Yandex limits come from its API, the rest are
//! generous bounds that no legitimate client reaches but that keep memory and work bounded.

use crate::error::{Error, Result};

pub const MAX_API_KEY: usize = 256;
pub const MAX_CLIENT_ID: usize = 64;
pub const MAX_CLIENT_SECRET: usize = 256;
pub const MAX_SCOPE: usize = 1024;
pub const MAX_NAME: usize = 128;
pub const MAX_DESCRIPTION: usize = 1024;
pub const MAX_EMAIL: usize = 254;
pub const MAX_PASSWORD: usize = 1024;
pub const MIN_PASSWORD: usize = 8;
pub const MAX_TENANT_HEADER: usize = 1024;
pub const MAX_TOKEN: usize = 8192;
pub const MAX_ID: usize = 64;
/// Yandex limit, also applied to IBM-surface tokens presented as credentials.
pub const MAX_IAM_TOKEN: usize = 4096;
/// Largest form or JSON body any token endpoint accepts.
pub const MAX_BODY: usize = 64 * 1024;

/// Checks that a required field is present, non-empty and at most `max` bytes.
/// At most the first `chars` characters of `value`: how attacker-controlled text is quoted in
/// messages and logs.
pub fn clipped(value: &str, chars: usize) -> &str {
    match value.char_indices().nth(chars) {
        Some((at, _)) => &value[..at],
        None => value,
    }
}

pub fn required<'a>(field: &str, value: Option<&'a str>, max: usize) -> Result<&'a str> {
    match value {
        None => Err(Error::invalid(format!("{field} is required"))),
        Some("") => Err(Error::invalid(format!("{field} must not be empty"))),
        Some(v) => bounded(field, v, max),
    }
}

/// Checks that a field is at most `max` bytes.
pub fn bounded<'a>(field: &str, value: &'a str, max: usize) -> Result<&'a str> {
    if value.len() > max {
        return Err(Error::invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(value)
}

/// Checks that a text field is at most `max` characters (Unicode scalar values, as JSON
/// Schema's `maxLength` counts them).
pub fn bounded_chars<'a>(field: &str, value: &'a str, max: usize) -> Result<&'a str> {
    if value.chars().count() > max {
        return Err(Error::invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(value)
}

/// A display name: 1..=128 characters after trimming, no control characters.
pub fn name(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::invalid(format!("{field} must not be empty")));
    }
    bounded_chars(field, value, MAX_NAME)?;
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value.to_owned())
}

/// An optional free-text description.
pub fn description(value: Option<&str>) -> Result<String> {
    let value = value.unwrap_or("").trim();
    bounded_chars("description", value, MAX_DESCRIPTION)?;
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::invalid(
            "description must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// A plausible e-mail address: one `@`, something on each side, no spaces.
pub fn email(value: &str) -> Result<String> {
    let value = value.trim();
    bounded_chars("email", value, MAX_EMAIL)?;
    let mut parts = value.split('@');
    let ok = matches!((parts.next(), parts.next(), parts.next()),
        (Some(local), Some(domain), None) if !local.is_empty() && domain.contains('.')
            && !domain.starts_with('.') && !domain.ends_with('.'))
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(Error::invalid("email is not a valid e-mail address"));
    }
    Ok(value.to_owned())
}

/// A token identifier made of `[A-Za-z0-9._-]`, 1..=`max` characters.
pub fn identifier(field: &str, value: &str, max: usize) -> Result<String> {
    if value.is_empty() {
        return Err(Error::invalid(format!("{field} must not be empty")));
    }
    bounded(field, value, max)?;
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(Error::invalid(format!(
            "{field} may contain only letters, digits, '.', '_' and '-'"
        )));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_names_the_field() {
        assert_eq!(
            required("apikey", None, 10).unwrap_err().message(),
            "apikey is required"
        );
        assert!(required("apikey", Some(""), 10).is_err());
        let long = "x".repeat(11);
        assert!(required("apikey", Some(&long), 10)
            .unwrap_err()
            .message()
            .contains("apikey"));
        assert_eq!(required("apikey", Some("abc"), 10).unwrap(), "abc");
    }

    #[test]
    fn email_rules() {
        assert!(email("a@b.example").is_ok());
        for bad in ["", "a", "a@b", "@b.c", "a@@b.c", "a b@c.d", "a@.c", "a@c."] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identifiers() {
        assert!(identifier("client_id", "my-client.1_x", 64).is_ok());
        assert!(identifier("client_id", "no spaces", 64).is_err());
        assert!(identifier("client_id", "", 64).is_err());
    }
}
