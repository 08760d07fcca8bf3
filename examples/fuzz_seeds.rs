//! Writes the fuzz targets' fixtures and seed corpus (`fuzz/fixtures/`, `fuzz/corpus/`): real
//! tokens signed by fresh keys (whose public halves the targets trust), sealed refresh tokens,
//! a service account's key file and JWT, and documents in the shapes the surfaces accept.
//!
//! ```sh
//! cargo run --example fuzz_seeds -- fuzz
//! ```
//!
//! Run it again only to renew the fixtures: the targets' properties ("only what the fixtures
//! signed verifies") are checked against the files it writes, and the committed corpus was
//! grown from these seeds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lc_rs::rand::SystemRandom;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::json;
use std::path::{Path, PathBuf};
use tessera_core::jose::{generate_pkcs8, SigningKey};
use tessera_core::model::{Algorithm, AuthorizedKeyAlgorithm};
use tessera_core::refresh::{self, RefreshGrant};
use tessera_core::seal::SealingKey;
use tessera_core::service_account_jwt::{self, CANONICAL_AUDIENCE};

/// Fixed fixture facts, mirrored by `fuzz/src/lib.rs`.
const ISSUER: &str = "https://iam.fuzz.test/identity";
const REFRESH_KEY: [u8; 32] = [0x5a; 32];
const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const SERVICE_ACCOUNT: &str = "ServiceId-2f0c8f5e-0b1d-4c3e-9a57-6f1f2d3e4a5b";
const AUTHORIZED_KEY: &str = "ajefuzzkey0000000001";

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz".into()));
    let rng = SystemRandom::new();
    let now = tessera_server::clock::Clock::system().now();
    let fixtures = root.join("fixtures");
    std::fs::create_dir_all(&fixtures).unwrap();
    std::fs::write(fixtures.join("now.txt"), format!("{now}\n")).unwrap();

    // Signing keys of every algorithm, and the JWKS that publishes them.
    let keys: Vec<SigningKey> = [
        ("fuzz-rs256", Algorithm::Rs256),
        ("fuzz-ps256", Algorithm::Ps256),
        ("fuzz-es256", Algorithm::Es256),
        ("fuzz-eddsa", Algorithm::EdDsa),
    ]
    .into_iter()
    .map(|(kid, alg)| {
        SigningKey::from_pkcs8(kid, alg, &generate_pkcs8(alg, &rng).unwrap()).unwrap()
    })
    .collect();
    let jwks = json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()});
    write(
        &fixtures.join("jwks.json"),
        &serde_json::to_string_pretty(&jwks).unwrap(),
    );

    // IBM-surface JWTs (the claim set the server mints), one per JWT key.
    let mut jwts = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let claims = json!({
            "iam_id": format!("iam-{SERVICE_ACCOUNT}"), "id": format!("iam-{SERVICE_ACCOUNT}"),
            "realmid": "iam", "jti": format!("jti-{i}"), "identifier": SERVICE_ACCOUNT,
            "name": "ci", "sub": SERVICE_ACCOUNT, "sub_type": "ServiceId",
            "authn": {"sub": SERVICE_ACCOUNT, "iam_id": format!("iam-{SERVICE_ACCOUNT}"), "name": "ci"},
            "account": {"bss": ACCOUNT, "valid": true},
            "iat": now, "exp": now + 3600, "iss": ISSUER,
            "grant_type": "urn:ibm:params:oauth:grant-type:apikey", "scope": "ibm openid",
            "client_id": "default", "acr": 1, "amr": ["pwd"],
        });
        jwts.push(key.sign_jws(claims.to_string().as_bytes(), &rng).unwrap());
    }
    write(&fixtures.join("jwts.txt"), &lines(&jwts));

    // `t1.` IAM tokens signed by the Ed25519 key, as iam_token::mint lays them out.
    let eddsa = &keys[3];
    let mut iam_tokens = Vec::new();
    for (i, subject_type) in ["service_account", "user"].iter().enumerate() {
        let claims = json!({
            "kid": eddsa.kid(), "jti": format!("iam-jti-{i}"), "iss": ISSUER,
            "sub": format!("iam-{SERVICE_ACCOUNT}"), "subject_id": SERVICE_ACCOUNT,
            "subject_type": subject_type, "account_id": ACCOUNT, "iat": now, "exp": now + 43200,
        });
        let mut token = String::from("t1.");
        URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut token);
        let signature = eddsa.sign(token.as_bytes(), &rng).unwrap();
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        iam_tokens.push(token);
    }
    write(&fixtures.join("iam_tokens.txt"), &lines(&iam_tokens));

    // Sealed refresh tokens: an ordinary one and a delegated one.
    let refresh_key = SealingKey::from_bytes(&REFRESH_KEY).unwrap();
    let mut sealed = Vec::new();
    for receivers in [vec![], vec!["bx".to_owned(), "receiver".to_owned()]] {
        let grant = RefreshGrant {
            jti: format!("refresh-{}", sealed.len()),
            iam_id: format!("iam-{SERVICE_ACCOUNT}"),
            client_id: "bx".into(),
            client_key: "bx".into(),
            scope: "ibm openid".into(),
            iat: now,
            exp: now + 86_400,
            receivers,
            acr: 1,
            amr: vec!["pwd".into()],
            lineage: tessera_core::lineage::Lineage::of(tessera_core::lineage::Link::ApiKey(
                "ApiKey-fuzz".into(),
            ))
            .extended([tessera_core::lineage::Link::RefreshFamily(format!(
                "family-{}",
                sealed.len()
            ))])
            .unwrap(),
        };
        sealed.push(refresh::seal(&grant, &refresh_key, &rng).unwrap());
    }
    write(&fixtures.join("refresh_tokens.txt"), &lines(&sealed));

    // A service account's authorized key: its key file and a PS256 JWT it signed.
    let pair = service_account_jwt::generate_key_pair(AuthorizedKeyAlgorithm::Rsa2048).unwrap();
    let public_pem = service_account_jwt::pem("PUBLIC KEY", &pair.public_spki_der);
    write(
        &fixtures.join("authorized_key.json"),
        &serde_json::to_string_pretty(&json!({
            "service_account_id": SERVICE_ACCOUNT,
            "account_id": ACCOUNT,
            "key_id": AUTHORIZED_KEY,
            "public_key_der": STANDARD.encode(&pair.public_spki_der),
        }))
        .unwrap(),
    );
    let sa_key =
        SigningKey::from_pkcs8(AUTHORIZED_KEY, Algorithm::Ps256, &pair.private_pkcs8_der).unwrap();
    let sa_jwt = sa_key
        .sign_jws(
            json!({"iss": SERVICE_ACCOUNT, "aud": CANONICAL_AUDIENCE, "iat": now, "exp": now + 3600})
                .to_string()
                .as_bytes(),
            &rng,
        )
        .unwrap();
    write(
        &fixtures.join("sa_jwts.txt"),
        &lines(std::slice::from_ref(&sa_jwt)),
    );
    // The key file seed holds a key of its own: the fixture key's private half is not kept
    // anywhere, so nothing in the corpus could sign for it.
    let other = service_account_jwt::generate_key_pair(AuthorizedKeyAlgorithm::Rsa2048).unwrap();
    let key_file = json!({
        "id": "ajefuzzkeyfile000001", "service_account_id": SERVICE_ACCOUNT,
        "created_at": "2026-01-01T00:00:00Z", "key_algorithm": "RSA_2048",
        "public_key": service_account_jwt::pem("PUBLIC KEY", &other.public_spki_der),
        "private_key": service_account_jwt::pem("PRIVATE KEY", &other.private_pkcs8_der),
    });

    // The seed corpus.
    let corpus = root.join("corpus");
    seeds(&corpus, "compact_jws", jwts.iter().map(String::as_bytes));
    seeds(
        &corpus,
        "jwks",
        [jwks.to_string().as_bytes(), br#"{"keys":[]}"#],
    );
    seeds(
        &corpus,
        "iam_token",
        iam_tokens.iter().map(String::as_bytes),
    );
    seeds(
        &corpus,
        "refresh_token",
        sealed.iter().map(String::as_bytes),
    );
    seeds(
        &corpus,
        "token_form",
        [
            &b"grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey=tsk_abc&response_type=cloud_iam"[..],
            b"grant_type=refresh_token&refresh_token=abc&scope=ibm+openid",
            b"grant_type=password&username=a%40b.c&password=secret&otp=123456&account=0123",
            b"\nBasic Yng6Yng=",
            b"\nBasic Ymx1ZW1peDpzJTNBY3JldA==",
        ],
    );
    seeds(
        &corpus,
        "service_account_jwt",
        [
            sa_jwt.as_bytes(),
            key_file.to_string().as_bytes(),
            br#"{"apikey":"tsk_0123"}"#,
        ],
    );
    seeds(
        &corpus,
        "pem",
        [
            key_file["private_key"]
                .as_str()
                .unwrap_or_default()
                .as_bytes(),
            public_pem.as_bytes(),
            b"-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
        ],
    );
    let profile = json!({
        "name": "k8s-prod", "description": "pods of the prod namespace",
        "identities": [
            {"type": "serviceid", "identifier": format!("iam-{SERVICE_ACCOUNT}")},
            {"type": "crn", "identifier": format!("crn:v1:bluemix:public:iam::a/{ACCOUNT}::serviceid:{SERVICE_ACCOUNT}")},
        ],
        "links": [{"cr_type": "IKS_SA", "crn": "crn:v1:bluemix:public:containers-kubernetes:us-south:a/0123:cluster1::", "namespace": "prod", "name": "app"}],
        "rules": [{"type": "Profile-CR", "cr_type": "IKS_SA", "conditions": [
            {"claim": "namespace", "operator": "EQUALS", "value": "\"prod\""},
            {"claim": "name", "operator": "IN", "value": "[\"app\",\"worker\"]"},
            {"claim": "name", "operator": "NOT_EQUALS_IGNORE_CASE", "value": "\"Root\""},
        ]}],
    });
    seeds(
        &corpus,
        "trusted_profile",
        [profile.to_string().as_bytes(), br#"{"name":"empty"}"#],
    );
    let issuer = json!({
        "issuer_url": "https://kubernetes.default.svc.cluster.local",
        "cr_type": "IKS_SA", "audiences": ["iam", "sts"],
        "claim_mapping": {"namespace": "kubernetes.io.namespace", "name": "kubernetes.io.serviceaccount.name"},
        "jwks": {"inline": jwks},
        "claims": {"iss": "https://kubernetes.default.svc.cluster.local", "aud": ["iam"], "sub": "system:serviceaccount:prod:app",
                   "exp": now + 600, "iat": now,
                   "kubernetes.io": {"namespace": "prod", "serviceaccount": {"name": "app", "uid": "7f"}}},
    });
    seeds(&corpus, "trusted_issuer", [issuer.to_string().as_bytes()]);
    seeds(
        &corpus,
        "agent_request",
        [
            &b"instance/service-accounts/default/token?scopes=a,b"[..],
            b"instance/service-accounts/default/identity?audience=https://x&format=full",
            b"project/attributes/?recursive=true&alt=json&wait_for_change=true&timeout_sec=5&last_etag=abc",
            b"instance//zone",
        ],
    );
    seeds(
        &corpus,
        "agent_config",
        [&br#"server = "https://iam.example.com"
listen = "127.0.0.1:8081"
credentials = "key.json"
universe_domain = "example.com"

[instance]
id = "4242"
name = "vm-1"
zone = "projects/1/zones/ru-central1-a"
attributes = { ssh-keys = "none" }

[project]
id = "proj"
numeric_id = "1234"

[[workloads]]
source = "10.0.0.0/24"
service_account_id = "ServiceId-1"
scopes = ["https://www.googleapis.com/auth/cloud-platform"]

[refresh]
expiry_margin_seconds = 300
max_backoff_seconds = 60
"#[..]],
    );
    seeds(
        &corpus,
        "server_config",
        [&br#"version = 1
listen = "127.0.0.1:8080"
data_dir = "/var/lib/tessera"
public_url = "https://iam.example.com"
jwt_algorithm = "ES256"
token_lifetime = 600
database_url = "postgres://tessera:hunter2@db:5432/iam"
database_schema = "tessera"
tls_self_signed = true
tls_names = ["iam.local"]
header_read_timeout = 10
idle_timeout = 120
max_connections = 1000
throttle_delay_after = 3
throttle_lock_after = 6
"#[..]],
    );
    seeds(
        &corpus,
        "grpc_messages",
        grpc_seeds(&sa_jwt, &iam_tokens[0])
            .iter()
            .map(Vec::as_slice),
    );
    println!("fixtures and seeds written under {}", root.display());
}

/// Encoded request messages, each behind the selector byte the target reads first.
fn grpc_seeds(jwt: &str, iam_token: &str) -> Vec<Vec<u8>> {
    use prost::Message;
    use tessera_server::yandex::proto::iam::{
        create_iam_token_request::Identity, CreateIamTokenForServiceAccountRequest,
        CreateIamTokenRequest, GetServiceAccountRequest, RevokeIamTokenRequest,
    };
    let tagged = |tag: u8, bytes: Vec<u8>| [vec![tag], bytes].concat();
    vec![
        tagged(
            0,
            CreateIamTokenRequest {
                identity: Some(Identity::Jwt(jwt.to_owned())),
            }
            .encode_to_vec(),
        ),
        tagged(
            0,
            CreateIamTokenRequest {
                identity: Some(Identity::YandexPassportOauthToken("y0_abc".into())),
            }
            .encode_to_vec(),
        ),
        tagged(
            1,
            CreateIamTokenForServiceAccountRequest {
                service_account_id: SERVICE_ACCOUNT.into(),
            }
            .encode_to_vec(),
        ),
        tagged(
            2,
            RevokeIamTokenRequest {
                iam_token: iam_token.to_owned(),
            }
            .encode_to_vec(),
        ),
        tagged(
            3,
            GetServiceAccountRequest {
                service_account_id: SERVICE_ACCOUNT.into(),
            }
            .encode_to_vec(),
        ),
    ]
}

fn lines(items: &[String]) -> String {
    let mut text = items.join("\n");
    text.push('\n');
    text
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn seeds<'a>(corpus: &Path, target: &str, items: impl IntoIterator<Item = &'a [u8]>) {
    let dir = corpus.join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, item) in items.into_iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), item).unwrap();
    }
}
