//! Authentication rules: a credential and the directory in, a [`Principal`] (or an error) out.
//!
//! Every function here is cheap: one HMAC and a few map look-ups for machine credentials.

use crate::directory::{Directory, Subject};
use crate::error::{Error, ErrorKind, Result};
use crate::limits;
use crate::model::{OAuthClient, SubjectKind, DEFAULT_CLIENT_ID};
use crate::principal::{AuthnMethod, Principal};
use crate::secret::{Pepper, SecretPurpose};
use std::sync::Arc;

/// Builds the principal for a subject that has just proved itself with `method`.
pub fn principal_for(dir: &Directory, iam_id: &str, method: AuthnMethod) -> Result<Principal> {
    let subject = dir.subject(iam_id).ok_or_else(|| {
        Error::credential("the identity this credential belongs to no longer exists")
    })?;
    if dir.account(subject.account_id()).is_none() {
        return Err(Error::credential(
            "the account of this identity no longer exists",
        ));
    }
    Ok(match subject {
        Subject::User(user) => Principal {
            iam_id: user.id.clone(),
            kind: SubjectKind::User,
            id: user.id.clone(),
            name: user.name.clone(),
            email: Some(user.email.clone()),
            account_id: user.account_id.clone(),
            amr: method.amr(),
            method,
            acr: 1,
            actor: None,
        },
        Subject::ServiceAccount(sa) => Principal {
            iam_id: sa.iam_id(),
            kind: SubjectKind::ServiceId,
            id: sa.id.clone(),
            name: sa.name.clone(),
            email: None,
            account_id: sa.account_id.clone(),
            amr: method.amr(),
            method,
            acr: 1,
            actor: None,
        },
        Subject::Profile(_) | Subject::Crn(_) => {
            // Profiles and resource identities are never logged into directly: they are
            // obtained by `assume`, `cr-token` or `iam-authz`, which build their principals.
            return Err(Error::credential(
                "this credential names a profile or resource identity, which cannot be used this way",
            ));
        }
    })
}

/// The principal of a user who logged in with a password, and with a valid TOTP code when
/// `second_factor` is true (`acr` 2, `amr` `["pwd", "otp"]`; else `acr` 1, `amr` `["pwd"]`).
pub fn password_principal(
    dir: &Directory,
    user_id: &str,
    second_factor: bool,
) -> Result<Principal> {
    if second_factor {
        let mut principal = principal_for(dir, user_id, AuthnMethod::PasswordAndTotp)?;
        principal.acr = 2;
        Ok(principal)
    } else {
        principal_for(dir, user_id, AuthnMethod::Password)
    }
}

/// The principal behind a refresh token: the subject as it is now, at the authentication level
/// of the login the token came from (a TOTP login stays `acr` 2 across refreshes).
pub fn refreshed_principal(
    dir: &Directory,
    iam_id: &str,
    acr: u8,
    amr: &[String],
) -> Result<Principal> {
    let mut principal = principal_for(dir, iam_id, AuthnMethod::RefreshToken)?;
    principal.acr = acr;
    if !amr.is_empty() {
        principal.amr = amr.to_vec();
    }
    Ok(principal)
}

/// The principal of trusted profile `profile`, which `actor` became. `acr` and `amr` are the
/// actor's: becoming a profile does not raise (or lower) the authentication level.
pub fn profile_principal(
    profile: &crate::model::TrustedProfile,
    actor: crate::principal::Actor,
    method: AuthnMethod,
    acr: u8,
    amr: Vec<String>,
) -> Principal {
    Principal {
        iam_id: profile.iam_id(),
        kind: SubjectKind::Profile,
        id: profile.id.clone(),
        name: profile.name.clone(),
        email: None,
        account_id: profile.account_id.clone(),
        method,
        acr,
        amr,
        actor: Some(actor),
    }
}

/// The principal of resource identity `crn` in `account_id`, obtained by `actor` through an
/// authorization policy. Resource identities carry `acr` 0 and no `amr`, as IBM's do.
pub fn crn_principal(crn: &str, account_id: &str, actor: crate::principal::Actor) -> Principal {
    let iam_id = crate::ids::crn_iam_id(crn);
    Principal {
        id: iam_id.clone(),
        iam_id,
        kind: SubjectKind::Crn,
        name: crn.to_owned(),
        email: None,
        account_id: account_id.to_owned(),
        method: AuthnMethod::AuthorizationPolicy,
        acr: 0,
        amr: Vec::new(),
        actor: Some(actor),
    }
}

/// Authenticates an API key. Unknown keys and keys whose owner is gone both fail with
/// [`ErrorKind::UnknownApiKey`], as IBM answers `BXNIM0415E` for both.
pub fn authenticate_api_key(dir: &Directory, pepper: &Pepper, apikey: &str) -> Result<Principal> {
    let apikey = limits::bounded("apikey", apikey.trim(), limits::MAX_API_KEY)?;
    let unknown = || {
        Error::new(
            ErrorKind::UnknownApiKey,
            "Provided API key could not be found.",
        )
    };
    let hash = pepper.hash(SecretPurpose::ApiKey, apikey);
    let key = dir.api_key_by_hash(&hash).ok_or_else(unknown)?;
    if !pepper.verify(SecretPurpose::ApiKey, apikey, &key.key_hash) {
        return Err(unknown());
    }
    principal_for(dir, &key.owner_iam_id, AuthnMethod::ApiKey).map_err(|_| unknown())
}

/// Longest OAuth token accepted (the Yandex limit).
pub const MAX_OAUTH_TOKEN: usize = 4000;

/// Authenticates a user's long-lived OAuth token (Yandex `Create` with
/// `yandex_passport_oauth_token`).
pub fn authenticate_oauth_token(
    dir: &Directory,
    pepper: &Pepper,
    token: &str,
) -> Result<Principal> {
    let token = limits::bounded("yandex_passport_oauth_token", token, MAX_OAUTH_TOKEN)?;
    let unknown = || Error::credential("the OAuth token is unknown or has been revoked");
    let hash = pepper.hash(SecretPurpose::OAuthToken, token);
    let record = dir.oauth_token_by_hash(&hash).ok_or_else(unknown)?;
    if !pepper.verify(SecretPurpose::OAuthToken, token, &record.token_hash) {
        return Err(unknown());
    }
    principal_for(dir, &record.user_id, AuthnMethod::OAuthToken).map_err(|_| unknown())
}

/// Authenticates an OAuth client by id and secret (HTTP Basic).
pub fn authenticate_client(
    dir: &Directory,
    pepper: &Pepper,
    client_id: &str,
    secret: &str,
) -> Result<Arc<OAuthClient>> {
    let invalid = || {
        Error::new(
            ErrorKind::InvalidClient,
            "Client authentication failed: unknown client id or wrong secret.",
        )
    };
    if client_id.len() > limits::MAX_CLIENT_ID || secret.len() > limits::MAX_CLIENT_SECRET {
        return Err(invalid());
    }
    let client = dir.client(client_id).ok_or_else(invalid)?;
    match &client.secret_hash {
        Some(hash) if pepper.verify(SecretPurpose::ClientSecret, secret, hash) => {
            Ok(client.clone())
        }
        // The public default client has no secret and cannot authenticate with one.
        _ => Err(invalid()),
    }
}

/// The effective client of a request: the authenticated client, or the public default.
pub fn client_id_or_default(client: Option<&OAuthClient>) -> &str {
    client.map(|c| c.id.as_str()).unwrap_or(DEFAULT_CLIENT_ID)
}

/// Enforces an `IBM-Cloud-Tenant` pin: a comma-separated list of account and enterprise ids,
/// one of which must be the identity's account or that account's enterprise.
pub fn check_tenant(dir: &Directory, account_id: &str, header: Option<&str>) -> Result<()> {
    let Some(header) = header else { return Ok(()) };
    limits::bounded("IBM-Cloud-Tenant", header, limits::MAX_TENANT_HEADER)?;
    let mut pinned = Vec::new();
    for id in header.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        pinned.push(crate::ids::account_id("IBM-Cloud-Tenant entry", id)?);
    }
    if pinned.is_empty() {
        return Err(Error::invalid("IBM-Cloud-Tenant header is empty"));
    }
    let enterprise = dir
        .account(account_id)
        .and_then(|a| a.enterprise_id.clone());
    let allowed = pinned
        .iter()
        .any(|id| id == account_id || enterprise.as_deref() == Some(id.as_str()));
    if !allowed {
        return Err(Error::new(
            ErrorKind::TenantMismatch,
            "The identity does not belong to any account or enterprise listed in the IBM-Cloud-Tenant header.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{Change, Entity};
    use crate::model::*;

    const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
    const ENTERPRISE: &str = "fedcba9876543210fedcba9876543210";

    fn fixture(pepper: &Pepper) -> Directory {
        let mut dir = Directory::new();
        dir.apply(Change::Upsert(Entity::Account(Account {
            id: ACCOUNT.into(),
            name: "acme".into(),
            enterprise_id: Some(ENTERPRISE.into()),
            mfa: Default::default(),
            created_at: 0,
        })));
        dir.apply(Change::Upsert(Entity::ServiceAccount(ServiceAccount {
            id: "ServiceId-1".into(),
            account_id: ACCOUNT.into(),
            name: "ci".into(),
            description: String::new(),
            created_at: 0,
        })));
        dir.apply(Change::Upsert(Entity::ApiKey(ApiKey {
            id: "ApiKey-1".into(),
            name: "k".into(),
            description: String::new(),
            owner_iam_id: "iam-ServiceId-1".into(),
            account_id: ACCOUNT.into(),
            key_hash: pepper.hash(SecretPurpose::ApiKey, "tsk_secret"),
            created_at: 0,
        })));
        dir.apply(Change::Upsert(Entity::Client(OAuthClient {
            id: "bx".into(),
            account_id: None,
            name: "bx".into(),
            secret_hash: Some(pepper.hash(SecretPurpose::ClientSecret, "s3cret")),
            created_at: 0,
        })));
        dir
    }

    #[test]
    fn api_key_authentication() {
        let pepper = Pepper::from_bytes(&[1; 32]);
        let mut dir = fixture(&pepper);
        let principal = authenticate_api_key(&dir, &pepper, "tsk_secret").unwrap();
        assert_eq!(principal.iam_id, "iam-ServiceId-1");
        assert_eq!(principal.kind, SubjectKind::ServiceId);
        assert_eq!(principal.account_id, ACCOUNT);
        let err = authenticate_api_key(&dir, &pepper, "tsk_wrong").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownApiKey);
        // Deleting the owner makes the key fail at once.
        dir.apply(Change::Delete(
            crate::directory::EntityKind::ServiceAccount,
            "ServiceId-1".into(),
        ));
        assert_eq!(
            authenticate_api_key(&dir, &pepper, "tsk_secret")
                .unwrap_err()
                .kind(),
            ErrorKind::UnknownApiKey
        );
    }

    #[test]
    fn client_authentication() {
        let pepper = Pepper::from_bytes(&[1; 32]);
        let dir = fixture(&pepper);
        assert!(authenticate_client(&dir, &pepper, "bx", "s3cret").is_ok());
        assert_eq!(
            authenticate_client(&dir, &pepper, "bx", "nope")
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidClient
        );
        assert_eq!(
            authenticate_client(&dir, &pepper, "zz", "s3cret")
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidClient
        );
    }

    #[test]
    fn tenant_pins() {
        let pepper = Pepper::from_bytes(&[1; 32]);
        let dir = fixture(&pepper);
        assert!(check_tenant(&dir, ACCOUNT, None).is_ok());
        assert!(check_tenant(&dir, ACCOUNT, Some(ACCOUNT)).is_ok());
        assert!(check_tenant(&dir, ACCOUNT, Some(ENTERPRISE)).is_ok());
        let other = "11111111111111111111111111111111";
        assert!(check_tenant(&dir, ACCOUNT, Some(&format!("{other}, {ACCOUNT}"))).is_ok());
        assert_eq!(
            check_tenant(&dir, ACCOUNT, Some(other)).unwrap_err().kind(),
            ErrorKind::TenantMismatch
        );
        assert_eq!(
            check_tenant(&dir, ACCOUNT, Some("nothex"))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            check_tenant(&dir, ACCOUNT, Some(" , ")).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
}
