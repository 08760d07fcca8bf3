//! Identifier formats. Every id Tessera mints has a recognisable shape, so a user who pastes the
//! wrong kind of id gets a message saying so instead of a bare "not found".

use crate::error::{Error, Result};
use crate::seal::SealingNonce;
use aws_lc_rs::aead::NONCE_LEN;
use aws_lc_rs::rand::SecureRandom;

pub const SERVICE_ID_PREFIX: &str = "ServiceId-";
pub const SERVICE_IAM_ID_PREFIX: &str = "iam-ServiceId-";
pub const USER_ID_PREFIX: &str = "IBMid-";
pub const API_KEY_ID_PREFIX: &str = "ApiKey-";
pub const BINDING_ID_PREFIX: &str = "AccessBinding-";
pub const AUTHORIZED_KEY_ID_PREFIX: &str = "aje";
pub const OAUTH_TOKEN_ID_PREFIX: &str = "OAuthToken-";
pub const PROFILE_ID_PREFIX: &str = "Profile-";
pub const PROFILE_IAM_ID_PREFIX: &str = "iam-Profile-";
pub const CRN_IAM_ID_PREFIX: &str = "crn-";
pub const ISSUER_ID_PREFIX: &str = "Issuer-";
pub const POLICY_ID_PREFIX: &str = "Policy-";

/// Random bytes in a token id (`jti`, refresh family): 128 bits.
const TOKEN_ID_BYTES: usize = 16;

fn random_bytes<const N: usize>(rng: &dyn SecureRandom) -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    rng.fill(&mut bytes)
        .map_err(|_| Error::internal("random generator failed"))?;
    Ok(bytes)
}

/// Lowercase hex of `bytes`. On the token path (every `jti`), so one allocation and a table
/// look-up per nibble: `format!("{b:02x}")` per byte cost ~5,000 instructions per id.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn uuid_v4(rng: &dyn SecureRandom) -> Result<String> {
    let bytes = random_bytes::<16>(rng)?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string())
}

/// A new account or enterprise id: 32 lowercase hex characters, as IBM account ids are.
pub fn new_account_id(rng: &dyn SecureRandom) -> Result<String> {
    Ok(hex(&random_bytes::<16>(rng)?))
}

/// A new user id (which is also the user's `iam_id`), e.g. `IBMid-6A1F09C2D4E5B7A8`.
pub fn new_user_id(rng: &dyn SecureRandom) -> Result<String> {
    Ok(format!(
        "{USER_ID_PREFIX}{}",
        hex(&random_bytes::<8>(rng)?).to_uppercase()
    ))
}

/// A new service account id: `ServiceId-<uuid>` (46 characters, within Yandex's 50).
pub fn new_service_account_id(rng: &dyn SecureRandom) -> Result<String> {
    Ok(format!("{SERVICE_ID_PREFIX}{}", uuid_v4(rng)?))
}

pub fn new_api_key_id(rng: &dyn SecureRandom) -> Result<String> {
    Ok(format!("{API_KEY_ID_PREFIX}{}", uuid_v4(rng)?))
}

pub fn new_profile_id(rng: &dyn SecureRandom) -> Result<String> {
    Ok(format!("{PROFILE_ID_PREFIX}{}", uuid_v4(rng)?))
}

pub fn new_issuer_id(rng: &dyn SecureRandom) -> Result<String> {
    Ok(format!("{ISSUER_ID_PREFIX}{}", uuid_v4(rng)?))
}

pub fn new_policy_id(rng: &dyn SecureRandom) -> Result<String> {
    Ok(format!("{POLICY_ID_PREFIX}{}", uuid_v4(rng)?))
}

/// A short id for an entry inside a record (a profile's link or claim rule).
pub fn new_entry_id(prefix: &str, rng: &dyn SecureRandom) -> Result<String> {
    Ok(format!("{prefix}-{}", uuid_v4(rng)?))
}

/// The CRN of trusted profile `profile_id` in `account_id`.
pub fn profile_crn(account_id: &str, profile_id: &str) -> String {
    format!("crn:v1:tessera:public:iam-identity::a/{account_id}::profile:{profile_id}")
}

/// The `iam_id` of a resource identity: `crn-` + its CRN.
pub fn crn_iam_id(crn: &str) -> String {
    format!("{CRN_IAM_ID_PREFIX}{crn}")
}

/// Checks the shape of a CRN: `crn:v1:` and ten colon-separated segments in all, with
/// segments 1-4 (version, cname, ctype, service name) non-empty. Returns the account of its
/// scope segment (`a/<account>`), if it has one.
/// Longest CRN (or CRN prefix) accepted.
pub const MAX_CRN: usize = 512;

/// The account of a CRN's `a/<account>` scope segment, for a well-formed CRN; `None` when the
/// value is not a 10-segment CRN or is not scoped to an account. Used wherever a CRN identity's
/// tenant matters (policies, profiles, cut-offs): an unscoped CRN belongs to no account.
pub fn crn_account(crn: &str) -> Option<&str> {
    let mut segments = crn.split(':');
    let scope = segments.nth(6)?;
    if crn.split(':').count() != 10 || !crn.starts_with("crn:v1:") {
        return None;
    }
    scope.strip_prefix("a/").filter(|a| !a.is_empty())
}

pub fn parse_crn(field: &str, value: &str) -> Result<Option<String>> {
    let invalid = |why: &str| {
        Error::invalid(format!(
            "{field} is not a CRN ({why}); expected crn:v1:<cname>:<ctype>:<service>:<location>:<scope>:<instance>:<type>:<resource>"
        ))
    };
    if value.len() > MAX_CRN {
        return Err(invalid("longer than 512 characters"));
    }
    let segments: Vec<&str> = value.split(':').collect();
    if segments.len() != 10 {
        return Err(invalid("it needs exactly 10 colon-separated segments"));
    }
    if segments[0] != "crn" || segments[1] != "v1" {
        return Err(invalid("it must start with crn:v1:"));
    }
    if segments[2..5].iter().any(|s| s.is_empty()) {
        return Err(invalid("cname, ctype and service name must not be empty"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("it contains whitespace"));
    }
    Ok(segments[6].strip_prefix("a/").map(str::to_owned))
}

pub fn new_binding_id(rng: &dyn SecureRandom) -> Result<String> {
    Ok(format!("{BINDING_ID_PREFIX}{}", uuid_v4(rng)?))
}

/// A new authorized key id in Yandex's shape: `aje` and 17 characters of [a-z0-9] (20 in all).
pub fn new_authorized_key_id(rng: &dyn SecureRandom) -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let bytes = random_bytes::<17>(rng)?;
    let suffix: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    Ok(format!("{AUTHORIZED_KEY_ID_PREFIX}{suffix}"))
}

pub fn new_oauth_token_id(rng: &dyn SecureRandom) -> Result<String> {
    Ok(format!("{OAUTH_TOKEN_ID_PREFIX}{}", uuid_v4(rng)?))
}

/// A token id (`jti`): 128 random bits, hex.
pub fn new_token_id(rng: &dyn SecureRandom) -> Result<String> {
    Ok(hex(&random_bytes::<TOKEN_ID_BYTES>(rng)?))
}

/// The random values of one token issuance, read from the generator at once: every read costs
/// ~2,300 instructions whatever its length (a third of it re-keying aws-lc's DRBG), and a grant
/// with a refresh token needed three.
pub struct IssuanceIds {
    /// The access token's `jti`.
    pub jti: String,
    pub refresh: Option<RefreshIds>,
}

/// A new refresh family, its first refresh token's `jti` and the nonce that token is sealed with.
pub struct RefreshIds {
    pub family: String,
    pub jti: String,
    pub nonce: SealingNonce,
}

impl IssuanceIds {
    pub fn draw(rng: &dyn SecureRandom, with_refresh: bool) -> Result<IssuanceIds> {
        if !with_refresh {
            return Ok(IssuanceIds {
                jti: new_token_id(rng)?,
                refresh: None,
            });
        }
        let bytes = random_bytes::<{ 3 * TOKEN_ID_BYTES + NONCE_LEN }>(rng)?;
        let (ids, nonce) = bytes.split_at(3 * TOKEN_ID_BYTES);
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| Error::internal("random generator failed"))?;
        let (jti, refresh) = ids.split_at(TOKEN_ID_BYTES);
        let (family, refresh_jti) = refresh.split_at(TOKEN_ID_BYTES);
        Ok(IssuanceIds {
            jti: hex(jti),
            refresh: Some(RefreshIds {
                family: hex(family),
                jti: hex(refresh_jti),
                nonce: SealingNonce::from_random(nonce),
            }),
        })
    }
}

/// A signing key id: a UTC timestamp (like IBM's) plus a random suffix, e.g. `20261122101500-3fa9c2`.
pub fn new_key_id(now: crate::UnixTime, rng: &dyn SecureRandom) -> Result<String> {
    let at = time::OffsetDateTime::from_unix_timestamp(now)
        .map_err(|_| Error::internal("clock out of range"))?;
    Ok(format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}-{}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        hex(&random_bytes::<3>(rng)?)
    ))
}

/// Validates an account or enterprise id: exactly 32 lowercase hex characters.
pub fn account_id(field: &str, value: &str) -> Result<String> {
    if value.len() != 32
        || !value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(Error::invalid(format!(
            "{field} must be 32 lowercase hexadecimal characters"
        )));
    }
    Ok(value.to_owned())
}

/// The `iam_id` of a service account id.
pub fn service_iam_id(service_account_id: &str) -> String {
    format!("iam-{service_account_id}")
}

/// A service account named by its id (`ServiceId-…`) or its iam_id (`iam-ServiceId-…`), as
/// its id: people copy either from the tables. Anything else is returned as it is.
pub fn service_account_id_of(text: &str) -> &str {
    text.strip_prefix("iam-")
        .filter(|id| id.starts_with(SERVICE_ID_PREFIX))
        .unwrap_or(text)
}

/// A user named by its id (`IBMid-…`, which is also its iam_id) or as `iam-IBMid-…`, as its
/// id. Anything else is returned as it is.
pub fn user_id_of(text: &str) -> &str {
    text.strip_prefix("iam-")
        .filter(|id| id.starts_with(USER_ID_PREFIX))
        .unwrap_or(text)
}

/// An identity's `iam_id` from any accepted spelling: a service account's id gets its `iam-`,
/// a user's `iam-IBMid-…` loses it; other iam ids (profiles, CRNs) are returned as they are.
pub fn iam_id_of(text: &str) -> String {
    if text.starts_with(SERVICE_ID_PREFIX) {
        return service_iam_id(text);
    }
    user_id_of(text).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;

    #[test]
    fn ids_in_either_spelling() {
        assert_eq!(service_account_id_of("iam-ServiceId-1"), "ServiceId-1");
        assert_eq!(service_account_id_of("ServiceId-1"), "ServiceId-1");
        assert_eq!(service_account_id_of("iam-Profile-1"), "iam-Profile-1");
        assert_eq!(user_id_of("iam-IBMid-A"), "IBMid-A");
        assert_eq!(user_id_of("IBMid-A"), "IBMid-A");
        assert_eq!(iam_id_of("ServiceId-1"), "iam-ServiceId-1");
        assert_eq!(iam_id_of("iam-ServiceId-1"), "iam-ServiceId-1");
        assert_eq!(iam_id_of("iam-IBMid-A"), "IBMid-A");
        assert_eq!(iam_id_of("IBMid-A"), "IBMid-A");
        assert_eq!(iam_id_of("iam-Profile-1"), "iam-Profile-1");
    }

    #[test]
    fn shapes() {
        let rng = SystemRandom::new();
        let account = new_account_id(&rng).unwrap();
        assert!(account_id("account_id", &account).is_ok());
        assert!(account_id("account_id", "ABC").is_err());
        let sa = new_service_account_id(&rng).unwrap();
        assert!(sa.starts_with("ServiceId-") && sa.len() == 46);
        assert_eq!(service_iam_id(&sa), format!("iam-{sa}"));
        assert!(new_user_id(&rng).unwrap().starts_with("IBMid-"));
        let kid = new_key_id(1_795_000_000, &rng).unwrap();
        assert!(kid.starts_with("2026"), "{kid}");
    }

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        let every: Vec<u8> = (0..=255).collect();
        let expected: String = every.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&every), expected);
    }

    #[test]
    fn token_ids_are_32_hex_digits_and_those_of_one_issuance_differ() {
        let rng = SystemRandom::new();
        let id = new_token_id(&rng).unwrap();
        assert_eq!(id.len(), 32);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        let hex_id = |id: &str| {
            id.len() == 32
                && id
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        };
        let ids = IssuanceIds::draw(&rng, true).unwrap();
        let refresh = ids.refresh.unwrap();
        assert!(hex_id(&ids.jti) && hex_id(&refresh.family) && hex_id(&refresh.jti));
        assert_ne!(ids.jti, refresh.family);
        assert_ne!(refresh.family, refresh.jti);
        assert_ne!(ids.jti, refresh.jti);
        let alone = IssuanceIds::draw(&rng, false).unwrap();
        assert!(hex_id(&alone.jti) && alone.refresh.is_none());
    }
}
