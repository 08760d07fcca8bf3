//! AEAD sealing (AES-256-GCM) for data at rest and for self-contained tokens.
//!
//! Sealed blobs are versioned: `version (1 byte) || nonce (12) || ciphertext || tag (16)`.
//! The associated data names the purpose, so a blob sealed as one thing cannot be opened as
//! another (a sealed private key is never a valid refresh token).

use crate::error::{Error, Result};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::SecureRandom;
use std::fmt;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
pub const KEY_LEN: usize = 32;

/// A 256-bit AEAD key. The master key (from a 0600 file or the environment) is one; the
/// refresh-token key, itself sealed under the master key, is another.
pub struct SealingKey(LessSafeKey);

/// The master key that seals private keys and server secrets at rest.
pub type MasterKey = SealingKey;

/// The nonce of one sealing, random. It is neither `Clone` nor `Copy` and is consumed by the
/// sealing, so two sealings under one key never share a nonce (which would undo AES-GCM).
pub struct SealingNonce([u8; NONCE_LEN]);

impl SealingNonce {
    pub fn draw(rng: &dyn SecureRandom) -> Result<SealingNonce> {
        let mut bytes = [0u8; NONCE_LEN];
        rng.fill(&mut bytes)
            .map_err(|_| Error::internal("random generator failed"))?;
        Ok(SealingNonce(bytes))
    }

    /// Bytes read from the generator for this nonce alone, in one read with other values
    /// ([`crate::ids::IssuanceIds`]).
    pub(crate) fn from_random(bytes: [u8; NONCE_LEN]) -> SealingNonce {
        SealingNonce(bytes)
    }
}

impl SealingKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != KEY_LEN {
            return Err(Error::invalid(format!(
                "a sealing key must be {KEY_LEN} bytes"
            )));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| Error::internal("cannot load sealing key"))?;
        Ok(SealingKey(LessSafeKey::new(key)))
    }

    pub fn generate_bytes(rng: &dyn SecureRandom) -> Result<[u8; KEY_LEN]> {
        let mut bytes = [0u8; KEY_LEN];
        rng.fill(&mut bytes)
            .map_err(|_| Error::internal("random generator failed"))?;
        Ok(bytes)
    }

    pub fn seal(
        &self,
        purpose: &[u8],
        plaintext: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>> {
        self.seal_with(purpose, plaintext, SealingNonce::draw(rng)?)
    }

    /// Seals with a nonce already drawn for this one sealing.
    pub fn seal_with(
        &self,
        purpose: &[u8],
        plaintext: &[u8],
        nonce: SealingNonce,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&nonce.0);
        out.extend_from_slice(plaintext);
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce.0),
                Aad::from(purpose),
                &mut out[1 + NONCE_LEN..],
            )
            .map_err(|_| Error::internal("sealing failed"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens a sealed blob. Any tampering, wrong key or wrong purpose gives the same error.
    pub fn open(&self, purpose: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        let fail = || Error::credential("sealed data is invalid");
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != VERSION {
            return Err(fail());
        }
        let mut nonce_bytes = [0u8; NONCE_LEN];
        nonce_bytes.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
        let mut body = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self
            .0
            .open_in_place(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(purpose),
                &mut body,
            )
            .map_err(|_| fail())?;
        Ok(plain.to_vec())
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;

    #[test]
    fn seal_open_and_tamper() {
        let rng = SystemRandom::new();
        let key = SealingKey::from_bytes(&SealingKey::generate_bytes(&rng).unwrap()).unwrap();
        let sealed = key.seal(b"purpose", b"hello", &rng).unwrap();
        assert_eq!(key.open(b"purpose", &sealed).unwrap(), b"hello");
        assert!(key.open(b"other purpose", &sealed).is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(key.open(b"purpose", &tampered).is_err());
        assert!(key.open(b"purpose", &sealed[..5]).is_err());
        let other = SealingKey::from_bytes(&[1u8; 32]).unwrap();
        assert!(other.open(b"purpose", &sealed).is_err());
        assert!(SealingKey::from_bytes(&[0u8; 5]).is_err());
    }
}
