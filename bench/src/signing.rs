//! Raw signing speed: the ceiling a token server can approach on this machine.
//!
//! Each thread signs the same realistic claim set (~750 bytes of JSON, shaped like an IBM access
//! token for a service ID) as a compact JWS with `tessera_core::jose::SigningKey`, exactly the
//! work the server does per token minus everything around it. For introspection the reference is
//! the opposite operation: verifying that token ([`measure_verify`]).

use crate::machine::{cpu_seconds, system_busy_seconds};
use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use std::time::{Duration, Instant};
use tessera_core::jose::{generate_pkcs8, SigningKey};
use tessera_core::model::Algorithm;
use tessera_verify::Jwks;

/// Signatures between two looks at the clock.
const BATCH: u64 = 16;

/// A claim set of the size and shape the server signs for a service ID.
pub fn realistic_payload() -> Vec<u8> {
    let iam_id = "iam-ServiceId-0f7b3c2e-5d41-4b8a-9c61-2a7e9d3f4b10";
    let account = "b6e2c0a4d8f14e7a9c3b5d1f2e8a7c60";
    serde_json::json!({
        "iam_id": iam_id,
        "id": iam_id,
        "realmid": "iam",
        "jti": "7c1e4f0a-9b2d-4e63-8a5f-1d3c7b9e2f48",
        "identifier": "ServiceId-0f7b3c2e-5d41-4b8a-9c61-2a7e9d3f4b10",
        "name": "bench-load",
        "sub": "ServiceId-0f7b3c2e-5d41-4b8a-9c61-2a7e9d3f4b10",
        "sub_type": "ServiceId",
        "authn": {
            "sub": "ServiceId-0f7b3c2e-5d41-4b8a-9c61-2a7e9d3f4b10",
            "iam_id": iam_id,
            "sub_type": "ServiceId",
            "name": "bench-load"
        },
        "account": {"valid": true, "bss": account},
        "iat": 1_790_000_000i64,
        "exp": 1_790_003_600i64,
        "iss": "http://127.0.0.1:8080/identity",
        "grant_type": "urn:ibm:params:oauth:grant-type:apikey",
        "scope": "ibm openid",
        "client_id": "default",
        "acr": 1,
        "amr": ["pwd"]
    })
    .to_string()
    .into_bytes()
}

/// What one raw-signing (or raw-verification) measurement found.
#[derive(Debug, Clone, Copy)]
pub struct SignRate {
    /// Signatures (or verifications) per second.
    pub per_s: f64,
    /// Cores other processes kept busy meanwhile (the measurement is low when this is high).
    pub other_cores: Option<f64>,
}

/// The issuer and a verification instant that fit [`realistic_payload`].
const PAYLOAD_ISSUER: &str = "http://127.0.0.1:8080/identity";
const PAYLOAD_NOW: i64 = 1_790_000_100;

/// Signatures per second for `algorithm` over `threads` threads during about `duration`.
pub fn measure(
    algorithm: Algorithm,
    threads: usize,
    duration: Duration,
) -> anyhow::Result<SignRate> {
    let rng = SystemRandom::new();
    let der = generate_pkcs8(algorithm, &rng).context("generating a key")?;
    let key = SigningKey::from_pkcs8("bench", algorithm, &der).context("loading the key")?;
    let payload = realistic_payload();
    let (key, payload) = (&key, payload.as_slice());
    repeat(threads, duration, || {
        let rng = SystemRandom::new();
        move || key.sign_jws(payload, &rng).map(drop).context("signing")
    })
}

/// Verifications per second of a realistic token signed with `algorithm`: signature, then the
/// claims parsed and `exp`/`iss` checked (`tessera_verify::Jwks::verify`), as the server does for
/// each token it introspects, over `threads` threads during about `duration`.
pub fn measure_verify(
    algorithm: Algorithm,
    threads: usize,
    duration: Duration,
) -> anyhow::Result<SignRate> {
    let rng = SystemRandom::new();
    let der = generate_pkcs8(algorithm, &rng).context("generating a key")?;
    let key = SigningKey::from_pkcs8("bench", algorithm, &der).context("loading the key")?;
    let token = key
        .sign_jws(&realistic_payload(), &rng)
        .context("signing the token to verify")?;
    let mut jwks = Jwks::default();
    jwks.insert(key.verifying_key().context("the public key")?);
    jwks.verify(&token, PAYLOAD_ISSUER, PAYLOAD_NOW)
        .context("the benchmark's own token does not verify")?;
    let (jwks, token) = (&jwks, token.as_str());
    repeat(threads, duration, || {
        move || {
            jwks.verify(token, PAYLOAD_ISSUER, PAYLOAD_NOW)
                .map(drop)
                .context("verifying")
        }
    })
}

/// Runs the operation made by `make` (one instance per thread) on `threads` threads for about
/// `duration`; returns operations per second and the cores other processes kept busy.
fn repeat<Make, Op>(threads: usize, duration: Duration, make: Make) -> anyhow::Result<SignRate>
where
    Make: Fn() -> Op + Sync,
    Op: FnMut() -> anyhow::Result<()>,
{
    let own_before = cpu_seconds("self");
    let system_before = system_busy_seconds();
    let started = Instant::now();
    let counts: Vec<anyhow::Result<u64>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<u64> {
                    let mut op = make();
                    let mut done = 0u64;
                    while started.elapsed() < duration {
                        for _ in 0..BATCH {
                            op()?;
                        }
                        done += BATCH;
                    }
                    Ok(done)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a measuring thread panicked")))
            })
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let other_cores = match (
        own_before,
        cpu_seconds("self"),
        system_before,
        system_busy_seconds(),
    ) {
        (Some(own0), Some(own1), Some(all0), Some(all1)) if elapsed > 0.0 => {
            Some((((all1 - all0) - (own1 - own0)) / elapsed).max(0.0))
        }
        _ => None,
    };
    let mut total = 0u64;
    for count in counts {
        total += count?;
    }
    Ok(SignRate {
        per_s: total as f64 / elapsed,
        other_cores,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_realistic_json() {
        let payload = realistic_payload();
        assert!(
            (550..=850).contains(&payload.len()),
            "payload is {} bytes",
            payload.len()
        );
        let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(claims["sub_type"], "ServiceId");
    }

    #[test]
    fn measuring_signs_something() {
        let rate = measure(Algorithm::Es256, 1, Duration::from_millis(50)).unwrap();
        assert!(rate.per_s > 0.0);
    }

    #[test]
    fn measuring_verifies_something() {
        for algorithm in [Algorithm::Rs256, Algorithm::EdDsa] {
            let rate = measure_verify(algorithm, 1, Duration::from_millis(50)).unwrap();
            assert!(rate.per_s > 0.0);
        }
    }
}
