//! The token service: minting, verifying and revoking, over the snapshot. Surfaces call these
//! with `now` and render the results in their own shapes. Nothing here writes, except
//! [`AppState::revoke`].

use crate::http::RequestContext;
use crate::metrics_names as names;
use crate::state::AppState;
use tessera_core::authn;
use tessera_core::directory::Entity;
use tessera_core::error::{Error, Result};
use tessera_core::iam_token::{self, MintedIamToken};
use tessera_core::ids::IssuanceIds;
use tessera_core::lineage::{Lineage, Link};
use tessera_core::model::{KeyUse, OAuthClient, Revocation, DEFAULT_CLIENT_ID};
use tessera_core::presented::PresentedToken;
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
    /// The client the tokens are issued to: the one that authenticated with Basic, or `None`
    /// for the public default client.
    pub client: Option<&'a OAuthClient>,
    pub scope: &'a str,
    pub grant_type: &'a str,
    pub with_refresh_token: bool,
    pub now: i64,
}

impl IssueRequest<'_> {
    fn client_id(&self) -> &str {
        authn::client_id_or_default(self.client)
    }

    fn client_key(&self) -> &str {
        authn::client_key_or_default(self.client)
    }
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

/// A delegated refresh token to issue: who may redeem it (client store keys) and for how long.
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

    /// The lineage of tokens issued for `principal` to `request`'s client: the principal's own,
    /// a refresh family (its existing one, or `new_family`), and the client when it is a
    /// confidential one, so deleting the client ends its tokens.
    fn lineage_for(
        principal: &Principal,
        request: &IssueRequest<'_>,
        new_family: Option<String>,
    ) -> Result<Lineage> {
        let has_family = principal
            .lineage()
            .links()
            .iter()
            .any(|l| matches!(l, Link::RefreshFamily(_)));
        let family = new_family.filter(|_| !has_family).map(Link::RefreshFamily);
        let client = request.client.map(|c| Link::Client(c.key.clone()));
        principal
            .lineage()
            .extended(family.into_iter().chain(client))
    }

    /// [`AppState::issue_ibm`] with a lifetime override and/or a delegated refresh token.
    pub fn issue_ibm_with(
        &self,
        principal: &Principal,
        request: &IssueRequest<'_>,
        options: &IssueOptions<'_>,
    ) -> Result<IssuedTokens> {
        let _span = grant_span(grant_label(request.grant_type), principal.iam_id());
        self.check_fresh(request.now)?;
        let keyring = self.snapshot.keyring();
        let signer = keyring.signer(KeyUse::Jwt)?;
        let params = MintParams {
            issuer: &self.issuer,
            now: request.now,
            lifetime: options.lifetime.unwrap_or(self.config.token_lifetime),
            client_id: request.client_id(),
            scope: request.scope,
            grant_type: request.grant_type,
        };
        let IssuanceIds { jti, refresh } =
            IssuanceIds::draw(&self.rng, request.with_refresh_token)?;
        let lineage = Self::lineage_for(
            principal,
            request,
            refresh.as_ref().map(|ids| ids.family.clone()),
        )?;
        let refresh_token = match refresh {
            Some(ids) => {
                let grant = RefreshGrant {
                    jti: ids.jti,
                    iam_id: principal.iam_id().to_owned(),
                    client_id: request.client_id().to_owned(),
                    client_key: request.client_key().to_owned(),
                    scope: request.scope.to_owned(),
                    iat: request.now,
                    exp: expiry(request.now, self.config.refresh_token_lifetime)?,
                    receivers: Vec::new(),
                    acr: principal.acr(),
                    amr: principal.amr().to_vec(),
                    lineage: lineage.clone(),
                };
                Some(refresh::seal_with(&grant, &self.refresh_key, ids.nonce)?)
            }
            None => None,
        };
        let delegated_refresh_token = match &options.delegated {
            Some(delegation) => Some(self.seal_delegated(principal, request, delegation)?.0),
            None => None,
        };
        let access = token::mint(principal, &params, jti, lineage, signer, &self.rng)?;
        names::increment(
            names::TOKENS_ISSUED,
            &[("grant", grant_label(request.grant_type))],
        );
        tracing::debug!(iam_id = %principal.iam_id(), grant = request.grant_type, jti = %access.claims.jti, "issued token");
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
        let _span = grant_span(grant_label(request.grant_type), principal.iam_id());
        self.check_fresh(request.now)?;
        let sealed = self.seal_delegated(principal, request, delegation)?;
        names::increment(
            names::TOKENS_ISSUED,
            &[("grant", grant_label(request.grant_type))],
        );
        tracing::debug!(iam_id = %principal.iam_id(), receivers = ?delegation.receivers, "issued delegated refresh token");
        Ok(sealed)
    }

    /// A delegated refresh token is a family of its own: revoking it never touches the
    /// issuer's ordinary refresh tokens, and the other way round.
    fn seal_delegated(
        &self,
        principal: &Principal,
        request: &IssueRequest<'_>,
        delegation: &Delegation<'_>,
    ) -> Result<(String, i64)> {
        if delegation.receivers.is_empty() {
            return Err(Error::internal("a delegated refresh token needs receivers"));
        }
        let jti = tessera_core::ids::new_token_id(&self.rng)?;
        let client = request.client.map(|c| Link::Client(c.key.clone()));
        let lineage = principal
            .lineage()
            .extended([Link::RefreshFamily(jti.clone())].into_iter().chain(client))?;
        let grant = RefreshGrant {
            jti,
            iam_id: principal.iam_id().to_owned(),
            client_id: request.client_id().to_owned(),
            client_key: request.client_key().to_owned(),
            scope: request.scope.to_owned(),
            iat: request.now,
            exp: expiry(request.now, delegation.lifetime)?,
            receivers: delegation.receivers.to_vec(),
            acr: principal.acr(),
            amr: principal.amr().to_vec(),
            lineage,
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
        let _span = grant_span(grant, principal.iam_id());
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
        names::increment(names::TOKENS_ISSUED, &[("grant", grant)]);
        tracing::debug!(iam_id = %principal.iam_id(), grant, jti = %minted.claims.jti, "issued IAM token");
        Ok(minted)
    }

    /// Authenticates a token presented as a credential (admin API, introspection, token
    /// exchange, the Yandex surface): an IBM-surface JWT or a `t1.` IAM token, checked for
    /// signature, lifetime, issuer, revocation, subject and lineage.
    pub fn authenticate_token(
        &self,
        presented: &str,
        now: i64,
    ) -> Result<(Principal, PresentedToken)> {
        self.check_fresh(now)?;
        let keyring = self.snapshot.keyring();
        let dir = self.snapshot.directory();
        authn::authenticate_token(presented, keyring.jwks(), &dir, &self.issuer, now)
    }

    /// [`AppState::authenticate_token`], for callers that need the token's claims only.
    pub fn verify_access_token(&self, presented: &str, now: i64) -> Result<PresentedToken> {
        self.authenticate_token(presented, now)
            .map(|(_, token)| token)
    }

    /// Opens a refresh token, checks that the client with store key `client_key` may redeem
    /// it and that it and its lineage still stand, and returns the principal it stands for.
    pub fn redeem_refresh_token(
        &self,
        presented: &str,
        client_key: &str,
        now: i64,
    ) -> Result<(Principal, RefreshGrant)> {
        let dir = self.snapshot.directory();
        authn::authenticate_refresh_token(&dir, &self.refresh_key, presented, client_key, now)
    }

    /// Revokes a refresh or access token (RFC 7009) for the client with store key `client_key`
    /// (`default` for an unauthenticated caller). A refresh token is revoked, with its whole
    /// family, only by its client (a delegated one also by a receiver); an access token of a
    /// confidential client only by that client; a public client's access token by whoever holds
    /// it. Anything else (unknown, invalid, someone else's) is left alone without an error, as
    /// the RFC asks.
    pub async fn revoke(
        &self,
        presented: &str,
        client_key: &str,
        now: i64,
        ctx: &RequestContext,
    ) -> Result<()> {
        let (jti, expires_at, iam_id) = if let Ok(grant) =
            refresh::open(presented, &self.refresh_key, now)
        {
            if grant.client_key != client_key && !grant.receivers.iter().any(|r| r == client_key) {
                return Ok(());
            }
            // The family outlives every token refreshed from it: at most a refresh
            // lifetime from now (delegated refresh tokens are never refreshed).
            let family_end = now.saturating_add(self.config.refresh_token_lifetime);
            match grant.family() {
                Some(family) => (family.to_owned(), family_end.max(grant.exp), grant.iam_id),
                None => (grant.jti, grant.exp, grant.iam_id),
            }
        } else if let Ok(token) = self.verify_access_token(presented, now) {
            // The client a token was issued to is the last one its lineage names (a token
            // redeemed from a delegated refresh token also names the issuing client).
            let owner = token
                .lineage()
                .links()
                .iter()
                .rev()
                .find_map(|link| match link {
                    Link::Client(key) => Some(key.as_str()),
                    _ => None,
                });
            let allowed = match owner {
                Some(owner) => owner == client_key,
                None => token.client_id() == DEFAULT_CLIENT_ID,
            };
            if !allowed {
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
        self.record_revocation(jti, expires_at, &iam_id, client_key, now, ctx)
            .await
    }

    /// Stores a revocation of token (or refresh family) `jti` (valid until `expires_at`) and
    /// waits until this node's snapshot has it, so the token fails on the very next request
    /// here.
    pub async fn record_revocation(
        &self,
        jti: String,
        expires_at: i64,
        iam_id: &str,
        actor: &str,
        now: i64,
        ctx: &RequestContext,
    ) -> Result<()> {
        let audit = AuditEvent {
            at: now,
            actor: actor.to_owned(),
            action: "token.revoke".into(),
            request_id: ctx.id.clone(),
            detail: format!("token {jti} of {iam_id}"),
            // The revoked token's subject's account: its administrators read the event.
            account_id: self
                .snapshot
                .directory()
                .subject(iam_id)
                .map(|s| s.account_id().to_owned()),
        };
        let seq = self
            .store
            .put(&Entity::Revocation(Revocation { jti, expires_at }), &audit)
            .await
            .map_err(|e| crate::storage::to_core_error(e, &ctx.id))?;
        self.snapshot.sync_to(seq).await;
        crate::security_log::token_revoked(ctx, &audit);
        Ok(())
    }
}

/// `now + lifetime`, refused rather than wrapped if it overflows.
fn expiry(now: i64, lifetime: i64) -> Result<i64> {
    now.checked_add(lifetime)
        .ok_or_else(|| Error::internal("token lifetime out of range"))
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
