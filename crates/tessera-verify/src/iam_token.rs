//! `t1.` IAM tokens of the Yandex surface: `t1.<base64url(JSON claims)>.<base64url(signature)>`.
//!
//! The signature is Ed25519 (64 bytes, 86 base64url characters) over the ASCII bytes
//! `t1.<base64url(JSON claims)>`; the claims name the signing key in `kid`, which is published
//! in the same JWKS as the JWT keys. See `docs/yandex.md` for the claim set.

use crate::claims::ClaimSet;
use crate::{base64url, Jwks, KeyAlgorithm, Validation, VerifyError};

/// The prefix every IAM token starts with.
pub const IAM_TOKEN_PREFIX: &str = "t1.";
/// Longest IAM token accepted (the Yandex limit).
pub const MAX_IAM_TOKEN: usize = 4096;

/// Whether `token` looks like an IAM token (rather than a JWT). Says nothing about validity.
pub fn is_iam_token(token: &str) -> bool {
    token.starts_with(IAM_TOKEN_PREFIX)
}

/// A `t1.` token split into its parts. Nothing in it is trusted yet.
#[derive(Debug)]
pub struct IamTokenParts<'a> {
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// `t1.<base64url(claims)>`: the bytes the signature covers.
    pub signed: &'a [u8],
    pub signature: Vec<u8>,
}

/// A `t1.` token split and base64-decoded, its claims still JSON bytes.
pub(crate) struct RawIamToken<'a> {
    pub payload: Vec<u8>,
    pub signed: &'a [u8],
    pub signature: Vec<u8>,
}

/// Splits a `t1.` token and decodes its two parts, without reading the claims.
pub(crate) fn split_iam_token(token: &str) -> Result<RawIamToken<'_>, VerifyError> {
    if token.len() > MAX_IAM_TOKEN {
        return Err(VerifyError::Malformed("too long"));
    }
    let body = token
        .strip_prefix(IAM_TOKEN_PREFIX)
        .ok_or(VerifyError::Malformed("IAM tokens start with t1."))?;
    let (payload_b64, signature_b64) = body
        .split_once('.')
        .ok_or(VerifyError::Malformed("expected t1.<payload>.<signature>"))?;
    let payload =
        base64url::decode(payload_b64).map_err(|_| VerifyError::Malformed("payload encoding"))?;
    let signature = base64url::decode(signature_b64)
        .map_err(|_| VerifyError::Malformed("signature encoding"))?;
    Ok(RawIamToken {
        payload,
        signed: &token.as_bytes()[..IAM_TOKEN_PREFIX.len() + payload_b64.len()],
        signature,
    })
}

/// Splits and decodes a `t1.` token without verifying it.
pub fn decode_iam_token_unverified(token: &str) -> Result<IamTokenParts<'_>, VerifyError> {
    let raw = split_iam_token(token)?;
    let claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&raw.payload).map_err(|_| VerifyError::Malformed("payload"))?;
    Ok(IamTokenParts {
        claims,
        signed: raw.signed,
        signature: raw.signature,
    })
}

impl Jwks {
    /// Verifies a `t1.` IAM token and its claims with [`Validation::new`] and `issuer`;
    /// returns its claims.
    pub fn verify_iam_token(
        &self,
        token: &str,
        issuer: &str,
        now: i64,
    ) -> Result<serde_json::Map<String, serde_json::Value>, VerifyError> {
        self.verify_iam_token_with(token, &Validation::new().with_issuer(issuer), now)
    }

    /// Verifies a `t1.` IAM token: the Ed25519 signature with the key named by its `kid`
    /// claim, then the claims with `validation` at `now`; returns its claims.
    pub fn verify_iam_token_with(
        &self,
        token: &str,
        validation: &Validation,
        now: i64,
    ) -> Result<serde_json::Map<String, serde_json::Value>, VerifyError> {
        let payload = self.verify_iam_token_payload_with(token, validation, now)?;
        serde_json::from_str(&payload).map_err(|_| VerifyError::Malformed("payload"))
    }

    /// [`Jwks::verify_iam_token_with`], returning the claims as JSON text for the caller to
    /// read into its own type: the claims are read once, in one pass, and no map is built.
    pub fn verify_iam_token_payload_with(
        &self,
        token: &str,
        validation: &Validation,
        now: i64,
    ) -> Result<String, VerifyError> {
        let raw = split_iam_token(token)?;
        let payload =
            String::from_utf8(raw.payload).map_err(|_| VerifyError::Malformed("payload"))?;
        let set = ClaimSet::from_json(&payload, validation.has_required_claims())
            .map_err(|_| VerifyError::Malformed("payload"))?;
        let kid = set.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        let key = self.get(kid).ok_or(VerifyError::UnknownKey)?;
        if key.algorithm() != KeyAlgorithm::EdDsa {
            return Err(VerifyError::AlgorithmMismatch);
        }
        key.verify_signature(raw.signed, &raw.signature)?;
        validation.validate_set(&set, now)?;
        drop(set);
        Ok(payload)
    }
}
