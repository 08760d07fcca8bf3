//! Raw signing speed: the ceiling a token server can approach on this machine.
//!
//! Each thread signs the same realistic claim set (~750 bytes of JSON, shaped like an IBM access
//! token for a service ID) as a compact JWS with `tessera_core::jose::SigningKey`, exactly the
//! work the server does per token minus everything around it. For introspection the reference is
//! the opposite operation: verifying that token ([`measure_verify`]).
//!
//! For the Yandex JWT grant ([`measure_yandex`]) the server does two pieces of cryptography per
//! token: it verifies the caller's PS256 service-account JWT (RSA-2048) and signs an Ed25519 `t1.`
//! IAM token. Both are measured apart, each on all cores; the grant's ceiling is the rate at which
//! the cores could do both, `1 / (1/verify + 1/sign)`.

use crate::machine::{cpu_seconds, system_busy_seconds};
use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::time::{Duration, Instant};
use tessera_core::iam_token::IamTokenClaims;
use tessera_core::jose::{generate_pkcs8, SigningKey};
use tessera_core::model::{Algorithm, AuthorizedKeyAlgorithm};
use tessera_core::service_account_jwt::{self, PublicKey};
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

/// A freshly generated `algorithm` key.
fn new_key(algorithm: Algorithm, rng: &SystemRandom) -> anyhow::Result<SigningKey> {
    let der = generate_pkcs8(algorithm, rng).context("generating a key")?;
    SigningKey::from_pkcs8("bench", algorithm, &der).context("loading the key")
}

/// Signatures per second for `algorithm` over `threads` threads during about `duration`.
pub fn measure(
    algorithm: Algorithm,
    threads: usize,
    duration: Duration,
) -> anyhow::Result<SignRate> {
    let key = new_key(algorithm, &SystemRandom::new())?;
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
    let key = new_key(algorithm, &rng)?;
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

/// The raw speeds behind the Yandex JWT grant, measured apart.
#[derive(Debug, Clone, Copy)]
pub struct YandexRaw {
    /// PS256 (RSA-2048) verifications of a service-account JWT per second.
    pub verify: SignRate,
    /// Ed25519 signatures of a `t1.` IAM token per second.
    pub sign: SignRate,
}

impl YandexRaw {
    /// Tokens per second if the cores did nothing but both: `1 / (1/verify + 1/sign)`; the other
    /// load is the larger of the two measurements'.
    pub fn combined(&self) -> SignRate {
        combine(self.verify, self.sign)
    }
}

/// Operations per second if the cores did nothing but `first` then `second` for each:
/// `1 / (1/first + 1/second)`; the other load is the larger of the two measurements'.
pub fn combine(first: SignRate, second: SignRate) -> SignRate {
    let inverse =
        1.0 / first.per_s.max(f64::MIN_POSITIVE) + 1.0 / second.per_s.max(f64::MIN_POSITIVE);
    let other_cores = match (first.other_cores, second.other_cores) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    SignRate {
        per_s: 1.0 / inverse,
        other_cores,
    }
}

/// Argon2id verifications per second of a password hashed the way the server hashes them
/// (`tessera_core::secret::hash_password`), over `threads` threads during about `duration`.
pub fn measure_argon2(threads: usize, duration: Duration) -> anyhow::Result<SignRate> {
    let rng = SystemRandom::new();
    let password = "bench-password-Correct-Horse-7";
    let stored = tessera_core::secret::hash_password(password, &rng).context("hashing")?;
    if !tessera_core::secret::verify_password(&stored, password) {
        anyhow::bail!("the benchmark's own password hash does not verify");
    }
    let stored = stored.as_str();
    repeat(threads, duration, || {
        move || {
            if tessera_core::secret::verify_password(stored, password) {
                Ok(())
            } else {
                Err(anyhow::anyhow!("verification failed"))
            }
        }
    })
}

/// A service-account JWT as the Yandex SDKs sign it, for an RSA-2048 key `kid`.
fn realistic_service_account_jwt(
    signer: &aws_lc_rs::signature::RsaKeyPair,
    rng: &SystemRandom,
) -> anyhow::Result<String> {
    let header = serde_json::json!({"alg": "PS256", "typ": "JWT", "kid": "ajeq0e3fkpr1p6v3k3m9"});
    let claims = serde_json::json!({
        "iss": "ServiceId-0f7b3c2e-5d41-4b8a-9c61-2a7e9d3f4b10",
        "aud": service_account_jwt::CANONICAL_AUDIENCE,
        "iat": PAYLOAD_NOW,
        "exp": PAYLOAD_NOW + 3600,
    });
    crate::server::ps256_jwt(signer, rng, &header, &claims)
}

/// The claims of a `t1.` IAM token for a service account, as the server mints them.
fn realistic_iam_claims(jti: String) -> IamTokenClaims {
    IamTokenClaims {
        kid: "20261122134500-3fa9c2".to_owned(),
        jti,
        iss: PAYLOAD_ISSUER.to_owned(),
        sub: "iam-ServiceId-0f7b3c2e-5d41-4b8a-9c61-2a7e9d3f4b10".to_owned(),
        subject_id: "ServiceId-0f7b3c2e-5d41-4b8a-9c61-2a7e9d3f4b10".to_owned(),
        subject_type: "service_account".to_owned(),
        account_id: "b6e2c0a4d8f14e7a9c3b5d1f2e8a7c60".to_owned(),
        iat: PAYLOAD_NOW,
        exp: PAYLOAD_NOW + 43_200,
        // A JWT-grant token descends from the authorized key that signed the JWT.
        lineage: tessera_core::lineage::Lineage::of(tessera_core::lineage::Link::AuthorizedKey(
            "ajeu6c2tr4f9j1nb0ka8".to_owned(),
        )),
    }
}

/// The Yandex JWT grant's two raw speeds, each over `threads` threads for about `duration`:
/// - verifying a service-account JWT as the server does before anything else: split and decode
///   it (`tessera_verify::decode_unverified`), check the PS256 signature over the signing input
///   with the key parsed once (`service_account_jwt::PublicKey`, aws-lc-rs
///   `RSA_PSS_2048_8192_SHA256`) and parse the claims;
/// - minting a `t1.` token: a fresh `jti`, the claims serialized, base64url, and an Ed25519
///   signature over `t1.<payload>` with `tessera_core::jose::SigningKey`.
pub fn measure_yandex(threads: usize, duration: Duration) -> anyhow::Result<YandexRaw> {
    let rng = SystemRandom::new();
    let pair = service_account_jwt::generate_key_pair(AuthorizedKeyAlgorithm::Rsa2048)
        .context("generating an RSA-2048 authorized key")?;
    let signer = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&pair.private_pkcs8_der)
        .map_err(|e| anyhow::anyhow!("loading the authorized key: {e}"))?;
    let public = PublicKey::from_spki(&pair.public_spki_der).context("the public key")?;
    let jwt = realistic_service_account_jwt(&signer, &rng)?;
    let verify_one = |jwt: &str| -> anyhow::Result<()> {
        let parts = tessera_verify::decode_unverified(jwt).context("decoding the JWT")?;
        if !public.verify(parts.signing_input, &parts.signature) {
            anyhow::bail!("the benchmark's own JWT does not verify");
        }
        let claims: serde_json::Value =
            serde_json::from_slice(&parts.payload).context("the JWT claims")?;
        if claims["iss"].as_str().is_none() {
            anyhow::bail!("the JWT has no iss");
        }
        Ok(())
    };
    verify_one(&jwt)?;
    let (verify_one, jwt) = (&verify_one, jwt.as_str());
    let verify = repeat(threads, duration, || move || verify_one(jwt))?;

    let der = generate_pkcs8(Algorithm::EdDsa, &rng).context("generating an Ed25519 key")?;
    let key = SigningKey::from_pkcs8("20261122134500-3fa9c2", Algorithm::EdDsa, &der)
        .context("loading the Ed25519 key")?;
    let key = &key;
    let sign = repeat(threads, duration, || {
        let rng = SystemRandom::new();
        move || {
            let jti = tessera_core::ids::new_token_id(&rng).context("a token id")?;
            let payload = serde_json::to_vec(&realistic_iam_claims(jti)).context("the claims")?;
            let mut token = String::with_capacity(3 + payload.len() * 4 / 3 + 100);
            token.push_str(tessera_verify::IAM_TOKEN_PREFIX);
            URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
            let signature = key.sign(token.as_bytes(), &rng).context("signing")?;
            token.push('.');
            URL_SAFE_NO_PAD.encode_string(signature, &mut token);
            Ok(())
        }
    })?;
    Ok(YandexRaw { verify, sign })
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
                    // At least one batch: on a loaded machine a thread may start after
                    // `duration` has passed, and a rate of 0/s would measure nothing.
                    loop {
                        for _ in 0..BATCH {
                            op()?;
                        }
                        done += BATCH;
                        if started.elapsed() >= duration {
                            break;
                        }
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
    fn the_yandex_raw_speeds_combine_like_two_stages_on_the_same_cores() {
        let raw = measure_yandex(1, Duration::from_millis(50)).unwrap();
        assert!(raw.verify.per_s > 0.0 && raw.sign.per_s > 0.0);
        let rate = |per_s| SignRate {
            per_s,
            other_cores: Some(0.0),
        };
        let combined = YandexRaw {
            verify: rate(3000.0),
            sign: rate(6000.0),
        }
        .combined();
        assert!((combined.per_s - 2000.0).abs() < 1e-6);
    }

    #[test]
    fn measuring_verifies_something() {
        for algorithm in [Algorithm::Rs256, Algorithm::EdDsa] {
            let rate = measure_verify(algorithm, 1, Duration::from_millis(50)).unwrap();
            assert!(rate.per_s > 0.0);
        }
    }
}
