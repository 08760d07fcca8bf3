//! The token service: minting, verifying and revoking, over the snapshot. Surfaces call these
//! with `now` and render the results in their own shapes. Nothing here writes, except
//! [`AppState::revoke`].

use crate::metrics_names as names;
use crate::state::AppState;
use tessera_core::authn;
use tessera_core::directory::Entity;
use tessera_core::error::{Error, ErrorKind, Result};
use tessera_core::iam_token::{self, MintedIamToken};
use tessera_core::model::{KeyUse, Revocation, DEFAULT_CLIENT_ID};
use tessera_core::presented::{self, PresentedToken};
use tessera_core::principal::Principal;
use tessera_core::refresh::{self, RefreshGrant};
use tessera_core::token::{self, MintParams, MintedToken};
use tessera_store::AuditEvent;

/// An access token and, where the grant gives one, a refresh token.
pub struct IssuedTokens {
    pub access: MintedToken,
    pub refresh_token: Option<String>,
    /// A refresh token for other clients (`response_type=… delegated_refresh_token`).
    pub delegated_refresh_token: Option<String>,
}

/// What a token request asks for, beyond the principal.
pub struct IssueRequest<'a> {
    pub client_id: &'a str,
    pub scope: &'a str,
    pub grant_type: &'a str,
    pub with_refresh_token: bool,
    pub now: i64,
}

/// Less common choices of a token request, kept apart from [`IssueRequest`] so most grants
/// need not spell them out.
#[derive(Default)]
pub struct IssueOptions<'a> {
    /// The access token's lifetime in seconds instead of the configured one (`iam-authz`: 1800).
    pub lifetime: Option<i64>,
    /// Also issue a delegated refresh token for these clients.
    pub delegated: Option<Delegation<'a>>,
}

/// A delegated refresh token to issue: who may redeem it and for how long.
pub struct Delegation<'a> {
    pub receivers: &'a [String],
    pub lifetime: i64,
}

impl AppState {
    /// Mints an IBM-surface access token (and a sealed refresh token) for `principal`.
    pub fn issue_ibm(
        &self,
        principal: &Principal,
        request: &IssueRequest<'_>,
    ) -> Result<IssuedTokens> {
        self.issue_ibm_with(principal, request, &IssueOptions::default())
    }

    /// [`AppState::issue_ibm`] with a lifetime override and/or a delegated refresh token.
    pub fn issue_ibm_with(
        &self,
        principal: &Principal,
        request: &IssueRequest<'_>,
        options: &IssueOptions<'_>,
    ) -> Result<IssuedTokens> {
        let _span = grant_span(grant_label(request.grant_type), &principal.iam_id);
        self.check_fresh(request.now)?;
        let keyring = self.snapshot.keyring();
        let signer = keyring.signer(KeyUse::Jwt)?;
        let params = MintParams {
            issuer: &self.issuer,
            now: request.now,
            lifetime: options.lifetime.unwrap_or(self.config.token_lifetime),
            client_id: request.client_id,
            scope: request.scope,
            grant_type: request.grant_type,
        };
        let access = token::mint(principal, &params, signer, &self.rng)?;
        let refresh_token = if request.with_refresh_token {
            let grant = RefreshGrant {
                jti: tessera_core::ids::new_token_id(&self.rng)?,
                iam_id: principal.iam_id.clone(),
                client_id: request.client_id.to_owned(),
                scope: request.scope.to_owned(),
                iat: request.now,
                exp: request.now + self.config.refresh_token_lifetime,
                receivers: Vec::new(),
                acr: principal.acr,
                amr: principal.amr.clone(),
            };
            Some(refresh::seal(&grant, &self.refresh_key, &self.rng)?)
        } else {
            None
        };
        let delegated_refresh_token = match &options.delegated {
            Some(delegation) => Some(self.seal_delegated(principal, request, delegation)?.0),
            None => None,
        };
        metrics::counter!(names::TOKENS_ISSUED, "grant" => grant_label(request.grant_type))
            .increment(1);
        tracing::debug!(iam_id = %principal.iam_id, grant = request.grant_type, jti = %access.claims.jti, "issued token");
        Ok(IssuedTokens {
            access,
            refresh_token,
            delegated_refresh_token,
        })
    }

    /// Seals a delegated refresh token alone (`response_type=delegated_refresh_token`): no
    /// access token is minted. Returns the token and its expiry.
    pub fn issue_delegated_refresh_token(
        &self,
        principal: &Principal,
        request: &IssueRequest<'_>,
        delegation: &Delegation<'_>,
    ) -> Result<(String, i64)> {
        let _span = grant_span(grant_label(request.grant_type), &principal.iam_id);
        self.check_fresh(request.now)?;
        let sealed = self.seal_delegated(principal, request, delegation)?;
        metrics::counter!(names::TOKENS_ISSUED, "grant" => grant_label(request.grant_type))
            .increment(1);
        tracing::debug!(iam_id = %principal.iam_id, receivers = ?delegation.receivers, "issued delegated refresh token");
        Ok(sealed)
    }

    fn seal_delegated(
        &self,
        principal: &Principal,
        request: &IssueRequest<'_>,
        delegation: &Delegation<'_>,
    ) -> Result<(String, i64)> {
        if delegation.receivers.is_empty() {
            return Err(Error::internal("a delegated refresh token needs receivers"));
        }
        let grant = RefreshGrant {
            jti: tessera_core::ids::new_token_id(&self.rng)?,
            iam_id: principal.iam_id.clone(),
            client_id: request.client_id.to_owned(),
            scope: request.scope.to_owned(),
            iat: request.now,
            exp: request.now + delegation.lifetime,
            receivers: delegation.receivers.to_vec(),
            acr: principal.acr,
            amr: principal.amr.clone(),
        };
        Ok((
            refresh::seal(&grant, &self.refresh_key, &self.rng)?,
            grant.exp,
        ))
    }

    /// Mints a `t1.` IAM token (Yandex surface) for `principal`. No refresh token: clients
    /// come back with their credential.
    pub fn issue_iam_token(
        &self,
        principal: &Principal,
        grant: &'static str,
        now: i64,
    ) -> Result<MintedIamToken> {
        let _span = grant_span(grant, &principal.iam_id);
        self.check_fresh(now)?;
        let keyring = self.snapshot.keyring();
        let signer = keyring.signer(KeyUse::YandexIam)?;
        let minted = iam_token::mint(
            principal,
            &self.issuer,
            now,
            self.config.iam_token_lifetime,
            signer,
            &self.rng,
        )?;
        metrics::counter!(names::TOKENS_ISSUED, "grant" => grant).increment(1);
        tracing::debug!(iam_id = %principal.iam_id, grant, jti = %minted.claims.jti, "issued IAM token");
        Ok(minted)
    }

    /// Verifies a token presented as a credential (admin API, introspection, the Yandex
    /// surface): an IBM-surface JWT or a `t1.` IAM token.
    pub fn verify_access_token(&self, presented: &str, now: i64) -> Result<PresentedToken> {
        self.check_fresh(now)?;
        let keyring = self.snapshot.keyring();
        let dir = self.snapshot.directory();
        presented::verify(presented, keyring.jwks(), &dir, &self.issuer, now)
    }

    /// Opens a refresh token, checks that it is still good and that `client_id` may redeem it,
    /// and returns the principal it stands for.
    pub fn redeem_refresh_token(
        &self,
        presented: &str,
        client_id: &str,
        now: i64,
    ) -> Result<(Principal, RefreshGrant)> {
        let grant = refresh::open(presented, &self.refresh_key, now)?;
        if !grant.redeemable_by(client_id) {
            return Err(Error::credential(if grant.is_delegated() {
                format!(
                    "The delegated refresh token was not issued to client {client_id}; only its receiver clients may redeem it."
                )
            } else if grant.client_id == DEFAULT_CLIENT_ID {
                "The refresh token was issued to another client: the public default client, \
                 whose refresh tokens cannot be redeemed. Request tokens with client \
                 authentication (Basic) to get refresh tokens that can be."
                    .to_owned()
            } else {
                "The refresh token was issued to another client.".to_owned()
            }));
        }
        let dir = self.snapshot.directory();
        if dir.is_revoked(&grant.jti, &grant.iam_id, grant.iat) {
            return Err(Error::credential("The refresh token has been revoked."));
        }
        let principal = authn::refreshed_principal(&dir, &grant.iam_id, grant.acr, &grant.amr)?;
        Ok((principal, grant))
    }

    /// Revokes a refresh or access token (RFC 7009). `client_id` is the authenticated client
    /// (or `default`); a refresh token of another client is left alone, as the RFC asks.
    /// Unknown or invalid tokens are not an error.
    pub async fn revoke(
        &self,
        presented: &str,
        client_id: &str,
        now: i64,
        request_id: &str,
    ) -> Result<()> {
        let (jti, expires_at, iam_id) =
            if let Ok(grant) = refresh::open(presented, &self.refresh_key, now) {
                // A delegated refresh token may be revoked by its issuer or a receiver.
                if grant.client_id != client_id && !grant.receivers.iter().any(|r| r == client_id) {
                    return Ok(());
                }
                (grant.jti, grant.exp, grant.iam_id)
            } else if let Ok(token) = self.verify_access_token(presented, now) {
                if client_id != DEFAULT_CLIENT_ID && token.client_id() != client_id {
                    return Ok(());
                }
                (
                    token.jti().to_owned(),
                    token.exp(),
                    token.iam_id().to_owned(),
                )
            } else {
                return Ok(());
            };
        self.record_revocation(jti, expires_at, &iam_id, client_id, now, request_id)
            .await
    }

    /// Stores a revocation of token `jti` (valid until `expires_at`) and waits until this
    /// node's snapshot has it, so the token fails on the very next request here.
    pub async fn record_revocation(
        &self,
        jti: String,
        expires_at: i64,
        iam_id: &str,
        actor: &str,
        now: i64,
        request_id: &str,
    ) -> Result<()> {
        let audit = AuditEvent {
            at: now,
            actor: actor.to_owned(),
            action: "token.revoke".into(),
            request_id: request_id.to_owned(),
            detail: format!("token {jti} of {iam_id}"),
        };
        let seq = self
            .store
            .put(&Entity::Revocation(Revocation { jti, expires_at }), &audit)
            .await
            .map_err(|e| {
                Error::new(ErrorKind::Internal, format!("cannot store revocation: {e}"))
            })?;
        self.snapshot.sync_to(seq).await;
        Ok(())
    }
}

/// A bounded label for metrics: the grant type's last segment.
/// The span of issuing a token for an authenticated principal (minting, signing, sealing),
/// inside the request's span; exported as a trace when tracing is on, free otherwise. The
/// subject's IAM id is an identifier, never a secret.
fn grant_span(grant: &'static str, iam_id: &str) -> tracing::span::EnteredSpan {
    tracing::info_span!(
        target: crate::telemetry::TRACE_TARGET,
        "grant",
        otel.name = format!("grant {grant}"),
        tessera.grant = grant,
        tessera.iam_id = iam_id,
    )
    .entered()
}

pub fn grant_label(grant_type: &str) -> &'static str {
    match grant_type {
        "urn:ibm:params:oauth:grant-type:apikey" => "apikey",
        "refresh_token" => "refresh_token",
        "password" => "password",
        "urn:ibm:params:oauth:grant-type:assume" => "assume",
        "urn:ibm:params:oauth:grant-type:cr-token" => "cr-token",
        "urn:ibm:params:oauth:grant-type:iam-authz" => "iam-authz",
        "urn:ibm:params:oauth:grant-type:delegated-refresh-token" => "delegated-refresh-token",
        _ => "other",
    }
}
