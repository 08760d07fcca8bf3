//! Key rotation as a pure plan: given the stored keys of one use and `now`, which steps are due.
//!
//! A key's life: created as `next` (published in JWKS, not signing) → after `publish_lead`
//! promoted to `active` (signing; the previous active key is retired at that instant) → retired
//! (still published, so tokens it signed keep verifying) → deleted once every token it can have
//! signed has expired and every JWKS cache has refreshed (`retire_after`).
//!
//! The server executes the plan while holding a store lease, so with many nodes exactly one node
//! performs each step.

use crate::model::{Algorithm, KeyState, KeyUse, SigningKeyRecord};
use crate::UnixTime;

/// How keys of one use rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// How long a key signs before its successor takes over.
    pub period: i64,
    /// How long a successor is published before it signs: at least the JWKS cache time, so
    /// every verifier has it before the first token it signed arrives.
    pub publish_lead: i64,
    /// How long a retired key stays published: the longest token lifetime plus the JWKS cache
    /// time plus clock skew.
    pub retire_after: i64,
}

/// One step of a rotation plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStep {
    /// Create a key; `active` only when there is no key at all (first start), else `next`.
    Create {
        key_use: KeyUse,
        algorithm: Algorithm,
        state: KeyState,
    },
    /// Make `next_kid` the signer and retire the current signers of that use.
    Promote {
        next_kid: String,
        retire: Vec<String>,
    },
    /// Stop publishing a retired key.
    Delete { kid: String },
}

/// The steps due now for keys of `key_use` that should use `algorithm`.
///
/// A changed algorithm is handled like a rotation: a `next` key of the new algorithm is created
/// and promoted after the lead, so verifiers learn it first.
pub fn plan(
    keys: &[SigningKeyRecord],
    key_use: KeyUse,
    algorithm: Algorithm,
    policy: &RotationPolicy,
    now: UnixTime,
) -> Vec<KeyStep> {
    let of_use: Vec<&SigningKeyRecord> = keys.iter().filter(|k| k.key_use == key_use).collect();
    let mut steps = Vec::new();
    for key in &of_use {
        if key.state == KeyState::Retired
            && key.retired_at.unwrap_or(key.created_at) + policy.retire_after <= now
        {
            steps.push(KeyStep::Delete {
                kid: key.kid.clone(),
            });
        }
    }
    let newest = |state: KeyState| {
        of_use
            .iter()
            .filter(|k| k.state == state)
            .max_by_key(|k| (k.created_at, k.kid.clone()))
            .copied()
    };
    let actives: Vec<String> = of_use
        .iter()
        .filter(|k| k.state == KeyState::Active)
        .map(|k| k.kid.clone())
        .collect();
    let active = newest(KeyState::Active);
    let next = newest(KeyState::Next);
    match (active, next) {
        (None, None) => steps.push(KeyStep::Create {
            key_use,
            algorithm,
            state: KeyState::Active,
        }),
        // No signer (e.g. it was deleted by hand): promote at once rather than stop signing.
        (None, Some(next)) => steps.push(KeyStep::Promote {
            next_kid: next.kid.clone(),
            retire: Vec::new(),
        }),
        (Some(active), None) => {
            let due = active.created_at + policy.period - policy.publish_lead <= now;
            if due || active.algorithm != algorithm {
                steps.push(KeyStep::Create {
                    key_use,
                    algorithm,
                    state: KeyState::Next,
                });
            }
        }
        (Some(_), Some(next)) => {
            if next.created_at + policy.publish_lead <= now {
                steps.push(KeyStep::Promote {
                    next_kid: next.kid.clone(),
                    retire: actives,
                });
            }
        }
    }
    steps
}

/// When [`plan`] will next publish a successor (`Create`) or promote one (`Promote`) for keys
/// of `key_use`, if nothing changes meanwhile: `now` when such a step is due already. Monitoring
/// compares it with the clock: a time well in the past means rotation is not happening.
/// Deleting retired keys is cleanup, not rotation, and does not count.
pub fn next_rotation_at(
    keys: &[SigningKeyRecord],
    key_use: KeyUse,
    algorithm: Algorithm,
    policy: &RotationPolicy,
    now: UnixTime,
) -> UnixTime {
    let newest = |state: KeyState| {
        keys.iter()
            .filter(|k| k.key_use == key_use && k.state == state)
            .max_by_key(|k| (k.created_at, k.kid.clone()))
    };
    match (newest(KeyState::Active), newest(KeyState::Next)) {
        (None, _) => now,
        (Some(active), None) if active.algorithm != algorithm => now,
        (Some(active), None) => active
            .created_at
            .saturating_add(policy.period)
            .saturating_sub(policy.publish_lead),
        (Some(_), Some(next)) => next.created_at.saturating_add(policy.publish_lead),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `plan` at `now` would create or promote a key.
    fn rotates(keys: &[SigningKeyRecord], now: i64) -> bool {
        run(keys, now)
            .iter()
            .any(|s| !matches!(s, KeyStep::Delete { .. }))
    }

    #[test]
    fn next_rotation_is_when_the_plan_rotates() {
        let next_at = |keys: &[SigningKeyRecord], now| {
            next_rotation_at(keys, KeyUse::Jwt, Algorithm::Rs256, &POLICY, now)
        };
        let active = key("a", KeyState::Active, 0, None);
        let next = key("n", KeyState::Next, 900, None);
        let retired = key("old", KeyState::Retired, 0, Some(100));
        for keys in [
            vec![active.clone()],
            vec![active.clone(), next.clone()],
            vec![active.clone(), retired.clone()],
        ] {
            let at = next_at(&keys, 10);
            assert!(at > 10, "{keys:?}");
            assert!(!rotates(&keys, at - 1), "{keys:?} at {}", at - 1);
            assert!(rotates(&keys, at), "{keys:?} at {at}");
        }
        assert_eq!(next_at(std::slice::from_ref(&active), 10), 900);
        assert_eq!(next_at(&[active.clone(), next], 10), 1000);
        // Overdue: the instant stays in the past, so monitoring sees how late it is.
        assert_eq!(next_at(std::slice::from_ref(&active), 5000), 900);
        // Nothing signs, or the algorithm changed: due now.
        assert_eq!(next_at(&[], 7), 7);
        assert_eq!(next_at(&[retired], 7), 7);
        let changed = next_rotation_at(&[active], KeyUse::Jwt, Algorithm::Es256, &POLICY, 7);
        assert_eq!(changed, 7);
    }

    const POLICY: RotationPolicy = RotationPolicy {
        period: 1000,
        publish_lead: 100,
        retire_after: 500,
    };

    fn key(
        kid: &str,
        state: KeyState,
        created_at: i64,
        retired_at: Option<i64>,
    ) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: kid.into(),
            algorithm: Algorithm::Rs256,
            key_use: KeyUse::Jwt,
            state,
            sealed_private_key: vec![],
            created_at,
            retired_at,
        }
    }

    fn run(keys: &[SigningKeyRecord], now: i64) -> Vec<KeyStep> {
        plan(keys, KeyUse::Jwt, Algorithm::Rs256, &POLICY, now)
    }

    #[test]
    fn first_start_creates_an_active_key() {
        assert_eq!(
            run(&[], 0),
            vec![KeyStep::Create {
                key_use: KeyUse::Jwt,
                algorithm: Algorithm::Rs256,
                state: KeyState::Active
            }]
        );
    }

    #[test]
    fn successor_is_published_before_it_signs() {
        let active = key("a", KeyState::Active, 0, None);
        assert!(run(std::slice::from_ref(&active), 899).is_empty());
        assert_eq!(
            run(std::slice::from_ref(&active), 900),
            vec![KeyStep::Create {
                key_use: KeyUse::Jwt,
                algorithm: Algorithm::Rs256,
                state: KeyState::Next
            }]
        );
        let next = key("n", KeyState::Next, 900, None);
        // Published for less than the lead: not yet.
        assert!(run(&[active.clone(), next.clone()], 999).is_empty());
        assert_eq!(
            run(&[active, next], 1000),
            vec![KeyStep::Promote {
                next_kid: "n".into(),
                retire: vec!["a".into()]
            }]
        );
    }

    #[test]
    fn retired_keys_stay_published_until_their_tokens_expire() {
        let keys = [
            key("old", KeyState::Retired, 0, Some(1000)),
            key("a", KeyState::Active, 900, None),
        ];
        assert!(run(&keys, 1499).is_empty());
        assert_eq!(
            run(&keys, 1500),
            vec![KeyStep::Delete { kid: "old".into() }]
        );
    }

    #[test]
    fn algorithm_change_rotates_through_next() {
        let keys = [key("a", KeyState::Active, 0, None)];
        let steps = plan(&keys, KeyUse::Jwt, Algorithm::Es256, &POLICY, 10);
        assert_eq!(
            steps,
            vec![KeyStep::Create {
                key_use: KeyUse::Jwt,
                algorithm: Algorithm::Es256,
                state: KeyState::Next
            }]
        );
    }

    #[test]
    fn other_uses_are_ignored_and_orphan_next_is_promoted() {
        let mut yandex = key("y", KeyState::Active, 0, None);
        yandex.key_use = KeyUse::YandexIam;
        let next = key("n", KeyState::Next, 5, None);
        assert_eq!(
            run(&[yandex, next], 6),
            vec![KeyStep::Promote {
                next_kid: "n".into(),
                retire: vec![]
            }]
        );
    }

    #[test]
    fn a_plan_applied_converges() {
        // Simulate a year of hourly checks: at every instant exactly one key signs, and every
        // key that signed stays published for retire_after after it stopped.
        let mut keys: Vec<SigningKeyRecord> = Vec::new();
        let mut counter = 0;
        for now in (0..20_000).step_by(7) {
            for step in run(&keys, now) {
                match step {
                    KeyStep::Create { state, .. } => {
                        counter += 1;
                        keys.push(key(&format!("k{counter}"), state, now, None));
                    }
                    KeyStep::Promote { next_kid, retire } => {
                        for k in keys.iter_mut() {
                            if retire.contains(&k.kid) {
                                k.state = KeyState::Retired;
                                k.retired_at = Some(now);
                            }
                            if k.kid == next_kid {
                                k.state = KeyState::Active;
                            }
                        }
                    }
                    KeyStep::Delete { kid } => keys.retain(|k| k.kid != kid),
                }
            }
            assert_eq!(
                keys.iter().filter(|k| k.state == KeyState::Active).count(),
                1,
                "at {now}"
            );
            for k in &keys {
                if let Some(at) = k.retired_at {
                    assert!(
                        now < at + POLICY.retire_after + 7,
                        "{} kept too long",
                        k.kid
                    );
                }
            }
        }
        assert!(counter >= 19, "rotated {counter} times");
    }
}
