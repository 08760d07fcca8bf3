//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): HMAC-SHA1, 6 digits, 30 s steps.
//!
//! The shared secret is 20 random bytes, shown to the user once as base32 (RFC 4648, no padding)
//! inside an `otpauth://` URI that authenticator apps read. The store keeps it sealed under the
//! server's refresh key with [`SEAL_PURPOSE`] as associated data, so a sealed TOTP secret can never
//! be opened as a refresh token or the other way round.
//!
//! [`verify`] accepts the previous, current and next step (clock skew of up to 30 s either way)
//! and returns the step that matched, so the caller can refuse a code used twice.

use crate::error::{Error, Result};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SecureRandom;

/// Associated data of a sealed TOTP secret. Never the purpose of anything else.
pub const SEAL_PURPOSE: &[u8] = b"tessera totp secret v1";
/// Length of a generated secret in bytes (160 bits, as RFC 4226 recommends).
pub const SECRET_LEN: usize = 20;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Length of a time step in seconds.
pub const STEP: i64 = 30;
/// Issuer shown by authenticator apps.
pub const ISSUER: &str = "Tessera";

/// A TOTP shared secret. No `Debug`: it is a credential.
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    /// A new random secret.
    pub fn generate(rng: &dyn SecureRandom) -> Result<TotpSecret> {
        let mut bytes = vec![0u8; SECRET_LEN];
        rng.fill(&mut bytes)
            .map_err(|_| Error::internal("random generator failed"))?;
        Ok(TotpSecret(bytes))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> TotpSecret {
        TotpSecret(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret as authenticator apps take it: base32 without padding.
    pub fn to_base32(&self) -> String {
        base32_encode(&self.0)
    }

    /// The `otpauth://totp/...` URI of this secret for the account `email`.
    pub fn otpauth_uri(&self, email: &str) -> String {
        format!(
            "otpauth://totp/{ISSUER}:{}?secret={}&issuer={ISSUER}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
            percent_encode(email),
            self.to_base32()
        )
    }
}

/// The RFC 4226 HOTP value of `counter` with `digits` digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let binary = (u32::from(mac[offset] & 0x7f) << 24)
        | (u32::from(mac[offset + 1]) << 16)
        | (u32::from(mac[offset + 2]) << 8)
        | u32::from(mac[offset + 3]);
    binary % 10u32.pow(digits)
}

/// The time step of `now` (unix seconds).
pub fn step_of(now: i64) -> u64 {
    (now.max(0) / STEP) as u64
}

/// The 6-digit code at `now`, zero-padded.
pub fn code_at(secret: &TotpSecret, now: i64) -> String {
    format!(
        "{:0width$}",
        hotp(secret.as_bytes(), step_of(now), DIGITS),
        width = DIGITS as usize
    )
}

/// Checks the form of a presented code: exactly six ASCII digits (surrounding spaces ignored).
pub fn parse_code(code: &str) -> Result<&str> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid("the one-time code must be 6 digits"));
    }
    Ok(code)
}

/// Verifies `code` at `now`, accepting one step of clock skew either way. Returns the matched
/// step, which the caller records to refuse a replay of the same code.
pub fn verify(secret: &TotpSecret, code: &str, now: i64) -> Option<u64> {
    let code = parse_code(code).ok()?;
    let current = step_of(now);
    let mut matched = None;
    // Check all three steps without an early exit, so timing does not say which one matched.
    for step in [current.saturating_sub(1), current, current + 1] {
        let expected = format!(
            "{:0width$}",
            hotp(secret.as_bytes(), step, DIGITS),
            width = DIGITS as usize
        );
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u64 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u64::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32_ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// RFC 4648 base32, case-insensitive, padding and spaces ignored. `None` if not base32.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u64 = 0;
    let mut bits = 0u32;
    for c in text.bytes().filter(|b| *b != b'=' && *b != b' ') {
        let value = BASE32_ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())? as u64;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// Percent-encodes everything but unreserved characters and `@` (an e-mail stays readable).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA1 (seed "12345678901234567890"): time and the 8-digit value.
    const VECTORS: [(i64, &str); 6] = [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ];

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn rfc6238_sha1_vectors() {
        let secret = rfc_secret();
        for (time, expected) in VECTORS {
            let eight = format!("{:08}", hotp(secret.as_bytes(), step_of(time), 8));
            assert_eq!(eight, expected, "8 digits at {time}");
            assert_eq!(code_at(&secret, time), expected[2..], "6 digits at {time}");
        }
    }

    #[test]
    fn verify_accepts_one_step_of_skew() {
        let secret = rfc_secret();
        let now = 1111111111;
        let code = code_at(&secret, now);
        assert_eq!(verify(&secret, &code, now), Some(step_of(now)));
        assert_eq!(verify(&secret, &code, now + STEP), Some(step_of(now)));
        assert_eq!(verify(&secret, &code, now - STEP), Some(step_of(now)));
        assert_eq!(verify(&secret, &code, now + 2 * STEP), None);
        assert_eq!(verify(&secret, &code, now - 2 * STEP), None);
        assert_eq!(
            verify(&secret, &format!(" {code} "), now),
            Some(step_of(now))
        );
    }

    #[test]
    fn verify_refuses_malformed_codes() {
        let secret = rfc_secret();
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(verify(&secret, bad, 59), None, "{bad:?}");
            assert!(parse_code(bad).is_err());
        }
    }

    #[test]
    fn base32_round_trip() {
        assert_eq!(base32_encode(b""), "");
        assert_eq!(base32_encode(b"f"), "MY");
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(
            base32_encode(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        assert_eq!(base32_decode("mzxw6ytboi======").unwrap(), b"foobar");
        assert!(base32_decode("M1").is_none());
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let secret = TotpSecret::generate(&rng).unwrap();
        assert_eq!(secret.as_bytes().len(), SECRET_LEN);
        assert_eq!(
            base32_decode(&secret.to_base32()).unwrap(),
            secret.as_bytes()
        );
    }

    #[test]
    fn otpauth_uri_shape() {
        let uri = rfc_secret().otpauth_uri("ada lovelace@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/Tessera:ada%20lovelace@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Tessera&algorithm=SHA1&digits=6&period=30"
        );
    }
}
