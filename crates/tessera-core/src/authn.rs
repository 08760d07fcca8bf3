//! Authentication: a credential and the directory in, a [`Principal`] (or an error) out.
//!
//! This module is the only builder of principals (`SECURITY.md` rule 2). Each function here
//! either checks a credential itself (an API key, an OAuth token, a service-account JWT's
//! verification result, a password and a TOTP code, a refresh token, a presented access token,
//! a verified compute-resource token) or derives a principal from one that was checked, after
//! the authorization model ([`crate::authz`]) allowed the step (`assume`, CreateForServiceAccount,
//! `iam-authz`). Every principal carries its lineage ([`crate::lineage`]): what it was derived
//! through, so deleting any link kills it and everything minted from it.
//!
//! Everything is cheap (one HMAC and a few map look-ups for machine credentials) except
//! [`check_password`], which runs Argon2id and belongs on a blocking thread.

use crate::directory::{Directory, Subject};
use crate::error::{Error, ErrorKind, Result};
use crate::lineage::{Lineage, Link};
use crate::model::{KeyHash, MfaRequirement, DEFAULT_CLIENT_ID};
use crate::model::{OAuthClient, SubjectKind, TotpEnrollment, TrustedProfile, User};
use crate::presented::PresentedToken;
use crate::principal::{Actor, AuthnMethod, PresentedTokenRef, Principal, PrincipalParts};
use crate::refresh::RefreshGrant;
use crate::seal::SealingKey;
use crate::secret::{Pepper, SecretPurpose};
use crate::{authz, ids, limits, totp, UnixTime};
use std::sync::Arc;

/// The principal of a user or service account that has just proved itself with `method`.
fn subject_principal(
    dir: &Directory,
    iam_id: &str,
    method: AuthnMethod,
    lineage: Lineage,
) -> Result<Principal> {
    let subject = dir.subject(iam_id).ok_or_else(|| {
        Error::credential("the identity this credential belongs to no longer exists")
    })?;
    if dir.account(subject.account_id()).is_none() {
        return Err(Error::credential(
            "the account of this identity no longer exists",
        ));
    }
    let (kind, id, name, email, account_id) = match subject {
        Subject::User(user) => (
            SubjectKind::User,
            user.id.clone(),
            user.name.clone(),
            Some(user.email.clone()),
            user.account_id.clone(),
        ),
        Subject::ServiceAccount(sa) => (
            SubjectKind::ServiceId,
            sa.id.clone(),
            sa.name.clone(),
            None,
            sa.account_id.clone(),
        ),
        Subject::Profile(_) | Subject::Crn(_) => {
            // Profiles and resource identities are never logged into directly: they are
            // obtained by `assume`, `cr-token` or `iam-authz`, which build their principals.
            return Err(Error::credential(
                "this credential names a profile or resource identity, which cannot be used this way",
            ));
        }
    };
    Ok(Principal::from_parts(PrincipalParts {
        iam_id: iam_id.to_owned(),
        kind,
        id,
        name,
        email,
        account_id,
        amr: method.amr(),
        method,
        acr: 1,
        actor: None,
        lineage,
        token: None,
    }))
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
    let found = dir.api_key_by_hash(&hash).map(|key| HashedSecret {
        stored_hash: &key.key_hash,
        owner_iam_id: &key.owner_iam_id,
        link: Link::ApiKey(key.id.to_string()),
    });
    hashed_secret_principal(dir, &hash, found, AuthnMethod::ApiKey, unknown)
}

/// A long-lived secret the directory found by its hash: the hash it stores, whose secret it is,
/// and the link a token derived from it carries.
struct HashedSecret<'a> {
    stored_hash: &'a KeyHash,
    owner_iam_id: &'a str,
    link: Link,
}

/// The principal of the owner of a secret the directory `found` by `hash`; any failure (no such
/// secret, the owner gone) is `unknown()`, so the answer does not tell them apart.
fn hashed_secret_principal(
    dir: &Directory,
    hash: &KeyHash,
    found: Option<HashedSecret<'_>>,
    method: AuthnMethod,
    unknown: impl Fn() -> Error,
) -> Result<Principal> {
    let found = found.ok_or_else(&unknown)?;
    // The index found the secret by this hash; the stored hash is compared again (in constant
    // time) rather than trusted, but the secret is not hashed a second time.
    if !crate::secret::same_hash(hash, found.stored_hash) {
        return Err(unknown());
    }
    subject_principal(dir, found.owner_iam_id, method, Lineage::of(found.link))
        .map_err(|_| unknown())
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
    let found = dir.oauth_token_by_hash(&hash).map(|record| HashedSecret {
        stored_hash: &record.token_hash,
        owner_iam_id: &record.user_id,
        link: Link::OAuthToken(record.id.clone()),
    });
    hashed_secret_principal(dir, &hash, found, AuthnMethod::OAuthToken, unknown)
}

/// Authenticates a service-account JWT (Yandex `Create` with `jwt`): verified by
/// [`crate::service_account_jwt::verify`], attributed to the authorized key that signed it.
pub fn authenticate_service_account_jwt(
    dir: &Directory,
    jwt: &str,
    audiences: &[String],
    now: UnixTime,
) -> Result<Principal, crate::service_account_jwt::JwtRefusal> {
    let signed = crate::service_account_jwt::verify(jwt, dir, audiences, now)?;
    subject_principal(
        dir,
        &ids::service_iam_id(&signed.service_account_id),
        AuthnMethod::ServiceAccountKey,
        Lineage::of(Link::AuthorizedKey(signed.key_id)),
    )
    .map_err(|error| crate::service_account_jwt::JwtRefusal {
        error,
        guess: false,
    })
}

/// Authenticates an OAuth client by id and secret (HTTP Basic). Client ids are unique per
/// account, so several clients may share an id; the secret (256 random bits, compared in
/// constant time) says which one it is.
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
    let mut found = None;
    // One keyed hash of the secret (every candidate is under the same pepper and purpose), then
    // a check of every candidate, so the time taken does not say which account's client matched.
    let candidate = pepper.hash(SecretPurpose::ClientSecret, secret);
    for client in dir.clients_with_id(client_id) {
        if let Some(hash) = &client.secret_hash {
            if crate::secret::same_hash(&candidate, hash) && found.is_none() {
                found = Some(client.clone());
            }
        }
    }
    // The public default client has no secret and cannot authenticate with one.
    found.ok_or_else(invalid)
}

/// The effective client of a request: the authenticated client, or the public default.
pub fn client_id_or_default(client: Option<&OAuthClient>) -> &str {
    client.map(|c| c.id.as_str()).unwrap_or(DEFAULT_CLIENT_ID)
}

/// The store key of the effective client (`default` for public requests).
pub fn client_key_or_default(client: Option<&OAuthClient>) -> &str {
    client.map(|c| c.key.as_str()).unwrap_or(DEFAULT_CLIENT_ID)
}

// ---------------------------------------------------------------------------------------------
// Passwords and second factors.

/// The one answer for an unknown user, a wrong password, and a user who cannot sign in with a
/// password (federated, or without one): telling them apart would say who exists and how they
/// sign in.
pub const BAD_PASSWORD_CREDENTIALS: &str =
    "The credentials you entered for the user are incorrect: unknown user or wrong password.";

/// A password sign-in attempt before the password is checked: the user the name resolves to,
/// if any. Made by [`password_attempt`], consumed by [`check_password`].
pub struct PasswordAttempt {
    user: Option<Arc<User>>,
    /// The throttle subject: the user's id when the name resolves, else the lower-cased name,
    /// so that every spelling of one user (e-mail in any case, id) counts against one counter.
    subject: String,
}

impl PasswordAttempt {
    pub fn throttle_subject(&self) -> &str {
        &self.subject
    }

    /// The Argon2id hash to check against: the user's, or `dummy` (same parameters), so an
    /// unknown user or one without a password costs what a real check costs.
    fn stored_hash<'a>(&'a self, dummy: &'a str) -> &'a str {
        self.user
            .as_ref()
            .and_then(|u| u.password_hash.as_deref())
            .unwrap_or(dummy)
    }
}

/// Resolves `username` (a user id `IBMid-…`, or an e-mail address) within `account` if given.
/// An e-mail without an account names the user that has had the address longest (see
/// [`Directory::users_with_email`]), so a user created later in another account with the same
/// address neither takes the sign-in over nor learns that the address exists.
pub fn password_attempt(dir: &Directory, username: &str, account: Option<&str>) -> PasswordAttempt {
    let in_account = |u: &&Arc<User>| account.is_none_or(|a| u.account_id == a);
    let user = if username.starts_with(ids::USER_ID_PREFIX) {
        dir.user(username).filter(in_account).cloned()
    } else {
        dir.users_with_email(username)
            .into_iter()
            .find(in_account)
            .cloned()
    };
    let subject = match &user {
        Some(user) => user.id.clone(),
        None => username.to_lowercase(),
    };
    PasswordAttempt { user, subject }
}

/// Proof that a user's password was checked. Only [`check_password`] makes one.
pub struct PasswordChecked {
    user: Arc<User>,
}

impl PasswordChecked {
    pub fn user(&self) -> &User {
        &self.user
    }
}

/// Checks the password of an attempt with Argon2id (slow by design: call it on a blocking
/// thread). `None` for an unknown user, a wrong password, and a user who cannot sign in with a
/// password, alike; the same work is done in each case.
pub fn check_password(
    attempt: PasswordAttempt,
    password: &str,
    dummy_hash: &str,
) -> Option<PasswordChecked> {
    let verified = crate::secret::verify_password(attempt.stored_hash(dummy_hash), password);
    let user = attempt.user?;
    if verified && user.password_hash.is_some() && !user.federated {
        Some(PasswordChecked { user })
    } else {
        None
    }
}

/// What a user's sign-in needs beyond the password.
pub enum SecondFactor {
    /// No confirmed factor and the account does not require one.
    NotRequired,
    /// The account requires a factor and the user has none confirmed.
    NotEnrolled,
    /// A code of this confirmed factor is required.
    Required(Arc<TotpEnrollment>),
}

/// The second factor `checked`'s user must present now.
pub fn second_factor(dir: &Directory, checked: &PasswordChecked) -> SecondFactor {
    let required = dir
        .account(&checked.user.account_id)
        .is_some_and(|a| a.mfa == MfaRequirement::Totp);
    match dir.totp(&checked.user.id).filter(|t| t.confirmed) {
        Some(enrollment) => SecondFactor::Required(enrollment.clone()),
        None if required => SecondFactor::NotEnrolled,
        None => SecondFactor::NotRequired,
    }
}

/// Which secret of a TOTP enrolment a code was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorSecret {
    /// The confirmed factor (sign-in, step-up).
    Confirmed,
    /// A first factor not confirmed yet.
    Unconfirmed,
    /// A replacement awaiting confirmation while the old factor stays in force.
    Replacement,
}

/// Proof that a valid TOTP code of `user_id`'s factor was presented now. Only [`check_totp`]
/// makes one. The step is for the caller's replay memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpChecked {
    user_id: String,
    step: u64,
    secret: FactorSecret,
}

impl TotpChecked {
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    pub fn step(&self) -> u64 {
        self.step
    }

    pub fn secret(&self) -> FactorSecret {
        self.secret
    }
}

/// Checks `code` against one secret of `enrollment` (unsealed with `key`) at `now`. `Ok(None)`
/// for a wrong or expired code; an error when the secret asked for does not exist or cannot be
/// unsealed.
pub fn check_totp(
    key: &SealingKey,
    enrollment: &TotpEnrollment,
    which: FactorSecret,
    code: &str,
    now: UnixTime,
) -> Result<Option<TotpChecked>> {
    totp::parse_code(code)?;
    let sealed = match (which, enrollment.confirmed) {
        (FactorSecret::Confirmed, true) | (FactorSecret::Unconfirmed, false) => {
            &enrollment.sealed_secret
        }
        (FactorSecret::Replacement, true) => {
            enrollment.pending_secret.as_ref().ok_or_else(|| {
                Error::not_found("the user has no replacement TOTP factor awaiting confirmation")
            })?
        }
        _ => {
            return Err(Error::not_found(
                "the user has no TOTP factor in the state this code is for",
            ))
        }
    };
    let secret = key
        .open(totp::SEAL_PURPOSE, sealed)
        .map_err(|_| Error::internal("a stored TOTP secret cannot be unsealed"))?;
    let secret = totp::TotpSecret::from_bytes(secret);
    Ok(totp::verify(&secret, code, now).map(|step| TotpChecked {
        user_id: enrollment.user_id.clone(),
        step,
        secret: which,
    }))
}

/// The principal of a user who signed in with a checked password and, where
/// [`second_factor`] requires one, a checked code of the confirmed factor (`acr` 2, `amr`
/// `["pwd", "otp"]`; else `acr` 1, `amr` `["pwd"]`).
pub fn password_principal(
    dir: &Directory,
    checked: &PasswordChecked,
    code: Option<&TotpChecked>,
) -> Result<Principal> {
    let user_id = &checked.user.id;
    let code = code.filter(|c| c.user_id == *user_id && c.secret == FactorSecret::Confirmed);
    match (second_factor(dir, checked), code) {
        (SecondFactor::NotEnrolled, _) => Err(Error::credential(
            "This account requires a second factor and the user has no confirmed TOTP factor; enrol one first (tessera iam user totp enroll).",
        )),
        (SecondFactor::Required(_), None) => Err(Error::credential(
            "A one-time code is required for this user: pass the current TOTP code in `otp`.",
        )),
        (SecondFactor::Required(_), Some(_)) => {
            let principal = subject_principal(
                dir,
                user_id,
                AuthnMethod::PasswordAndTotp,
                Lineage::empty(),
            )?;
            Ok(with_level(principal, 2, None))
        }
        (SecondFactor::NotRequired, _) => {
            subject_principal(dir, user_id, AuthnMethod::Password, Lineage::empty())
        }
    }
}

/// `principal` at authentication level `acr` (and `amr`, when given).
fn with_level(principal: Principal, acr: u8, amr: Option<Vec<String>>) -> Principal {
    let mut parts = parts_of(principal);
    parts.acr = acr;
    if let Some(amr) = amr {
        parts.amr = amr;
    }
    Principal::from_parts(parts)
}

fn parts_of(p: Principal) -> PrincipalParts {
    PrincipalParts {
        iam_id: p.iam_id().to_owned(),
        kind: p.kind(),
        id: p.id().to_owned(),
        name: p.name().to_owned(),
        email: p.email().map(str::to_owned),
        account_id: p.account_id().to_owned(),
        method: p.method(),
        acr: p.acr(),
        amr: p.amr().to_vec(),
        actor: p.actor().cloned(),
        lineage: p.lineage().clone(),
        token: p.token().cloned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Refresh tokens.

/// Opens refresh token `presented` with `key`, checks that the client with store key
/// `client_key` may redeem it, that neither it, its family nor its subject was revoked or cut
/// off and that every link of its lineage stands, and returns the principal it stands for at the
/// authentication level of the login it came from.
pub fn authenticate_refresh_token(
    dir: &Directory,
    key: &SealingKey,
    presented: &str,
    client_key: &str,
    now: UnixTime,
) -> Result<(Principal, RefreshGrant)> {
    let grant = crate::refresh::open(presented, key, now)?;
    if !grant.redeemable_by(client_key) {
        return Err(Error::credential(if grant.is_delegated() {
            format!(
                "The delegated refresh token was not issued to client {}; only its receiver clients may redeem it.",
                client_key.rsplit('/').next().unwrap_or(client_key)
            )
        } else if grant.client_key == DEFAULT_CLIENT_ID {
            "The refresh token was issued to another client: the public default client, \
             whose refresh tokens cannot be redeemed. Request tokens with client \
             authentication (Basic) to get refresh tokens that can be."
                .to_owned()
        } else {
            "The refresh token was issued to another client.".to_owned()
        }));
    }
    // A receiver is not a lineage link (deleting one does not end the token for the others),
    // but a client created under a receiver's id after the token was issued is not that
    // receiver: client ids are chosen names.
    if grant.is_delegated()
        && dir
            .client(client_key)
            .is_none_or(|client| client.created_at > grant.iat)
    {
        return Err(Error::credential(
            "The delegated refresh token names an earlier client of this id, which was deleted; \
             request a new one for this client.",
        ));
    }
    if dir.is_revoked(&grant.jti, &grant.iam_id, grant.iat) {
        return Err(Error::credential("The refresh token has been revoked."));
    }
    if let Some(link) = dir.dead_link(&grant.lineage, grant.iat) {
        return Err(Error::credential(format!(
            "The refresh token has been revoked: it was obtained with {}, which was deleted, revoked or cut off.",
            link.describe()
        )));
    }
    let principal = subject_principal(
        dir,
        &grant.iam_id,
        AuthnMethod::RefreshToken,
        grant.lineage.clone(),
    )?;
    let amr = (!grant.amr.is_empty()).then(|| grant.amr.clone());
    Ok((with_level(principal, grant.acr, amr), grant))
}

// ---------------------------------------------------------------------------------------------
// Presented tokens.

/// Verifies a token presented as a credential (admin API, introspection, token exchange, the
/// Yandex surface): an IBM-surface JWT or a `t1.` IAM token, its signature, lifetime, issuer,
/// revocation, subject and lineage. Returns the principal it proves and the token's claims.
pub fn authenticate_token(
    presented: &str,
    jwks: &tessera_verify::Jwks,
    dir: &Directory,
    issuer: &str,
    now: UnixTime,
) -> Result<(Principal, PresentedToken)> {
    let token = crate::presented::verify(presented, jwks, dir, issuer, now)?;
    let iam_id = token.iam_id().to_owned();
    let kind = SubjectKind::of_iam_id(&iam_id)
        .ok_or_else(|| Error::credential("the token names an identity of unknown kind"))?;
    let name = match &token {
        PresentedToken::Jwt(claims) => claims.name.clone(),
        PresentedToken::Iam(_) => dir
            .subject_name(&iam_id)
            .map_or_else(|| token.subject_id().to_owned(), str::to_owned),
    };
    let (email, actor) = match &token {
        PresentedToken::Jwt(claims) => (
            claims.email.clone(),
            (claims.authn.iam_id != claims.iam_id).then(|| Actor {
                sub: claims.authn.sub.clone(),
                iam_id: claims.authn.iam_id.clone(),
                sub_type: claims.authn.sub_type.clone(),
                name: claims.authn.name.clone(),
            }),
        ),
        PresentedToken::Iam(_) => (None, None),
    };
    let principal = Principal::from_parts(PrincipalParts {
        iam_id,
        kind,
        id: token.subject_id().to_owned(),
        name,
        email,
        account_id: token.account_id().to_owned(),
        method: AuthnMethod::AccessToken,
        acr: token.acr(),
        amr: token.amr().to_vec(),
        actor,
        lineage: token.lineage().clone(),
        token: Some(PresentedTokenRef {
            jti: token.jti().to_owned(),
            iat: token.iat(),
            exp: token.exp(),
            client_id: token.client_id().to_owned(),
            grant_type: match &token {
                PresentedToken::Jwt(claims) => claims.grant_type.clone(),
                PresentedToken::Iam(_) => String::new(),
            },
        }),
    });
    Ok((principal, token))
}

// ---------------------------------------------------------------------------------------------
// Derived principals: one identity becoming another, after the authorization model said yes.

/// The lineage of a principal derived from `parent`: the parent's links, the token it
/// presented (if any), and the parent itself as `link`.
fn derived_lineage(parent: &Principal, link: Link, extra: Option<Link>) -> Result<Lineage> {
    let token = parent.token().map(|t| Link::Token(t.jti.clone()));
    parent
        .lineage()
        .extended(token.into_iter().chain([link]).chain(extra))
}

/// The `authn` claim of a token derived from `parent`.
fn actor_of(dir: &Directory, parent: &Principal) -> Actor {
    let (sub_type, _) = crate::token::sub_type(parent.kind());
    // A CRN has no name: its CRN stands in.
    let name = dir.subject_name(parent.iam_id()).map_or_else(
        || {
            parent
                .iam_id()
                .strip_prefix(ids::CRN_IAM_ID_PREFIX)
                .unwrap_or(parent.iam_id())
                .to_owned()
        },
        str::to_owned,
    );
    Actor {
        sub: parent.id().to_owned(),
        iam_id: parent.iam_id().to_owned(),
        sub_type: sub_type.to_owned(),
        name,
    }
}

/// `assume`: `assumer` becomes trusted profile `profile`, if the profile trusts it
/// ([`crate::trusted_profile::check_trust`]: trusted identity, user accounts, MFA level, CRN
/// tenancy). The profile token keeps the assumer's `acr`/`amr` and dies with the assumer, its
/// token, its credential, or the trust.
pub fn assume_profile(
    dir: &Directory,
    assumer: &Principal,
    profile: &TrustedProfile,
) -> Result<Principal> {
    crate::trusted_profile::check_trust(
        profile,
        &crate::trusted_profile::PresentedIdentity {
            iam_id: assumer.iam_id(),
            kind: assumer.kind(),
            account_id: assumer.account_id(),
            acr: assumer.acr(),
        },
        dir,
    )?;
    let lineage = derived_lineage(
        assumer,
        Link::assumer(&profile.iam_id(), assumer.iam_id()),
        None,
    )?;
    Ok(Principal::from_parts(PrincipalParts {
        iam_id: profile.iam_id(),
        kind: SubjectKind::Profile,
        id: profile.id.clone(),
        name: profile.name.clone(),
        email: None,
        account_id: profile.account_id.clone(),
        method: AuthnMethod::Assumed,
        acr: assumer.acr(),
        amr: assumer.amr().to_vec(),
        actor: Some(actor_of(dir, assumer)),
        lineage,
        token: None,
    }))
}

/// `cr-token`: the verified compute resource becomes `profile` if a link or claim rule admits
/// it and the profile is in the resource's account. The token dies with the trusted issuer.
pub fn compute_resource_profile(
    resource: &crate::compute_resource::VerifiedComputeResource,
    profile: &TrustedProfile,
) -> Result<Principal> {
    let cr = resource.resource();
    if profile.account_id != cr.account_id {
        return Err(Error::credential(format!(
            "Trusted profile {} is not in account {} of the compute resource.",
            profile.id, cr.account_id
        )));
    }
    crate::compute_resource::profile_admits(profile, cr)
        .map_err(|reason| Error::credential(format!("{reason}.")))?;
    Ok(Principal::from_parts(PrincipalParts {
        iam_id: profile.iam_id(),
        kind: SubjectKind::Profile,
        id: profile.id.clone(),
        name: profile.name.clone(),
        email: None,
        account_id: profile.account_id.clone(),
        method: AuthnMethod::ComputeResource,
        acr: 1,
        amr: Vec::new(),
        actor: Some(Actor {
            sub: cr.subject.clone(),
            iam_id: ids::crn_iam_id(&cr.crn),
            sub_type: "CR".to_owned(),
            name: cr.display_name(),
        }),
        lineage: Lineage::of(Link::Issuer(resource.issuer_id().to_owned())),
        token: None,
    }))
}

/// CreateForServiceAccount: `caller` obtains a token of service account `service_account_id`,
/// if [`authz::Action::MintToken`] allows it. The token dies with the caller, its token and its
/// credential.
pub fn service_account_token(
    dir: &Directory,
    caller: &Principal,
    service_account_id: &str,
) -> Result<Principal> {
    let service_account = dir.service_account(service_account_id).cloned();
    authz::authorize(
        dir,
        caller,
        &authz::Action::MintToken {
            service_account_id,
            service_account: service_account.as_deref(),
        },
    )?;
    let Some(service_account) = service_account else {
        return Err(Error::not_found(format!(
            "service account {service_account_id} not found"
        )));
    };
    let lineage = derived_lineage(caller, Link::Actor(caller.iam_id().to_owned()), None)?;
    subject_principal(
        dir,
        &service_account.iam_id(),
        AuthnMethod::MintedFor,
        lineage,
    )
}

/// `iam-authz`: `caller` obtains resource identity `crn` under an authorization policy whose
/// source it is and which covers the CRN within the policy's own account
/// ([`crate::model::AuthorizationPolicy::covers`]). The token dies with the policy, the caller,
/// its token and its credential.
pub fn resource_identity(dir: &Directory, caller: &Principal, crn: &str) -> Result<Principal> {
    let policy = dir
        .policies_from(caller.iam_id())
        .filter(|p| p.covers(crn))
        .min_by(|a, b| a.id.cmp(&b.id))
        .ok_or_else(|| {
            let why = match ids::crn_account(crn) {
                None => " (a resource identity must be scoped to an account: a/<account>)",
                Some(_) => "",
            };
            Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "No authorization policy lets {} obtain a token for {crn}{why}.",
                    caller.iam_id()
                ),
            )
        })?;
    if dir.account(&policy.account_id).is_none() {
        return Err(Error::credential(format!(
            "the account {} of the resource identity no longer exists",
            policy.account_id
        )));
    }
    let lineage = derived_lineage(
        caller,
        Link::Actor(caller.iam_id().to_owned()),
        Some(Link::Policy(policy.id.clone())),
    )?;
    let iam_id = ids::crn_iam_id(crn);
    Ok(Principal::from_parts(PrincipalParts {
        id: iam_id.clone(),
        iam_id,
        kind: SubjectKind::Crn,
        name: crn.to_owned(),
        email: None,
        account_id: policy.account_id.clone(),
        method: AuthnMethod::AuthorizationPolicy,
        acr: 0,
        amr: Vec::new(),
        actor: Some(actor_of(dir, caller)),
        lineage,
        token: None,
    }))
}

/// Enforces an `IBM-Cloud-Tenant` pin: a comma-separated list of account and enterprise ids,
/// one of which must be the identity's account or that account's enterprise.
pub fn check_tenant(dir: &Directory, account_id: &str, header: Option<&str>) -> Result<()> {
    let Some(header) = header else { return Ok(()) };
    limits::bounded("IBM-Cloud-Tenant", header, limits::MAX_TENANT_HEADER)?;
    let mut pinned = Vec::new();
    for id in header.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        pinned.push(ids::account_id("IBM-Cloud-Tenant entry", id)?);
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

/// A principal for unit tests of other core modules, which cannot build one otherwise.
#[cfg(test)]
pub(crate) fn test_principal(
    iam_id: &str,
    kind: SubjectKind,
    account_id: &str,
    method: AuthnMethod,
) -> Principal {
    Principal::from_parts(PrincipalParts {
        iam_id: iam_id.to_owned(),
        kind,
        id: iam_id.strip_prefix("iam-").unwrap_or(iam_id).to_owned(),
        name: "ci".to_owned(),
        email: None,
        account_id: account_id.to_owned(),
        amr: method.amr(),
        method,
        acr: 1,
        actor: None,
        lineage: Lineage::empty(),
        token: None,
    })
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
        for (account, secret) in [(None, "s3cret"), (Some(ACCOUNT), "other-secret")] {
            dir.apply(Change::Upsert(Entity::Client(OAuthClient {
                key: OAuthClient::key_for(account, "bx"),
                id: "bx".into(),
                account_id: account.map(str::to_owned),
                name: "bx".into(),
                secret_hash: Some(pepper.hash(SecretPurpose::ClientSecret, secret)),
                created_at: 0,
            })));
        }
        dir
    }

    #[test]
    fn api_key_authentication() {
        let pepper = Pepper::from_bytes(&[1; 32]);
        let mut dir = fixture(&pepper);
        let principal = authenticate_api_key(&dir, &pepper, "tsk_secret").unwrap();
        assert_eq!(principal.iam_id(), "iam-ServiceId-1");
        assert_eq!(principal.kind(), SubjectKind::ServiceId);
        assert_eq!(principal.account_id(), ACCOUNT);
        assert_eq!(
            principal.lineage().links(),
            &[Link::ApiKey("ApiKey-1".into())]
        );
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
    fn client_authentication_tells_same_ids_apart_by_secret() {
        let pepper = Pepper::from_bytes(&[1; 32]);
        let dir = fixture(&pepper);
        let global = authenticate_client(&dir, &pepper, "bx", "s3cret").unwrap();
        assert_eq!(global.key, "bx");
        let scoped = authenticate_client(&dir, &pepper, "bx", "other-secret").unwrap();
        assert_eq!(scoped.key, format!("{ACCOUNT}/bx"));
        for (id, secret) in [("bx", "nope"), ("zz", "s3cret")] {
            assert_eq!(
                authenticate_client(&dir, &pepper, id, secret)
                    .unwrap_err()
                    .kind(),
                ErrorKind::InvalidClient
            );
        }
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

    #[test]
    fn password_attempts_resolve_every_spelling_to_one_subject() {
        let pepper = Pepper::from_bytes(&[1; 32]);
        let mut dir = fixture(&pepper);
        let other = "11111111111111111111111111111111";
        for (id, account, at) in [("IBMid-old", ACCOUNT, 1), ("IBMid-new", other, 2)] {
            dir.apply(Change::Upsert(Entity::User(User {
                id: id.into(),
                account_id: account.into(),
                name: "ada".into(),
                email: "Ada@Example.com".into(),
                password_hash: None,
                federated: false,
                created_at: at,
            })));
        }
        assert_eq!(
            password_attempt(&dir, "ada@example.com", None).throttle_subject(),
            "IBMid-old"
        );
        assert_eq!(
            password_attempt(&dir, "ADA@EXAMPLE.COM", None).throttle_subject(),
            "IBMid-old"
        );
        assert_eq!(
            password_attempt(&dir, "IBMid-old", None).throttle_subject(),
            "IBMid-old"
        );
        // The later user of another account with the same address does not take it over, but
        // is reachable with its account.
        assert_eq!(
            password_attempt(&dir, "ada@example.com", Some(other)).throttle_subject(),
            "IBMid-new"
        );
        assert_eq!(
            password_attempt(&dir, "Nobody@Example.com", None).throttle_subject(),
            "nobody@example.com"
        );
    }
}
