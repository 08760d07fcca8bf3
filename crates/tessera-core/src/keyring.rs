//! The signing keys in force: one active signer per token family, and every published key.

use crate::error::{Error, Result};
use crate::jose::SigningKey;
use crate::model::{KeyState, KeyUse, SigningKeyRecord};
use crate::seal::MasterKey;
use std::collections::HashMap;
use std::sync::Arc;
use tessera_verify::{Jwk, Jwks};

/// Associated data for private keys sealed under the master key.
pub const SEALED_KEY_PURPOSE: &[u8] = b"tessera signing key v1";

/// Signers and verifiers built from the stored key records.
#[derive(Debug, Default)]
pub struct KeyRing {
    signers: HashMap<KeyUse, Arc<SigningKey>>,
    jwks: Jwks,
    published: Vec<Jwk>,
}

impl KeyRing {
    /// Unseals and loads every key record. Retired keys are published but never sign; of several
    /// active keys for one use, the newest signs.
    pub fn load(records: &[SigningKeyRecord], master: &MasterKey) -> Result<KeyRing> {
        let mut ring = KeyRing::default();
        let mut newest: HashMap<KeyUse, i64> = HashMap::new();
        for record in records {
            let der = master
                .open(SEALED_KEY_PURPOSE, &record.sealed_private_key)
                .map_err(|_| {
                    Error::internal(format!(
                        "signing key {} cannot be unsealed: is this the right master key?",
                        record.kid
                    ))
                })?;
            let key = SigningKey::from_pkcs8(&record.kid, record.algorithm, &der)?;
            ring.jwks.insert(key.verifying_key()?);
            ring.published.push(key.public_jwk());
            if record.state == KeyState::Active
                && newest
                    .get(&record.key_use)
                    .is_none_or(|at| record.created_at >= *at)
            {
                newest.insert(record.key_use, record.created_at);
                ring.signers.insert(record.key_use, Arc::new(key));
            }
        }
        Ok(ring)
    }

    /// The key that signs tokens of `key_use` now.
    pub fn signer(&self, key_use: KeyUse) -> Result<&Arc<SigningKey>> {
        self.signers
            .get(&key_use)
            .ok_or_else(|| Error::internal(format!("no active {} signing key", key_use.as_str())))
    }

    /// Every published key, for the JWKS document.
    pub fn published(&self) -> &[Jwk] {
        &self.published
    }

    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }
}
