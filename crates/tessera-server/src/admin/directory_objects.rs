//! Handlers for enterprises, accounts, users, service accounts, API keys and OAuth clients, plus
//! `whoami` and the audit log; also the list, get and delete of authorized keys and OAuth tokens
//! (their creation is in `yandex_credentials`). They share one shape: build the object, ask the
//! core's authorization model about it ([`Caller::authorize`]), one store call, settle the
//! snapshot, render a view. No handler decides a permission itself.

use super::auth::Caller;
use super::views::*;
use super::yandex_credentials::{authorized_key_create, oauth_token_create};
use super::{
    audit, created, deleted, list_body, list_filter, settle, AdminError, AdminJson, ListQuery,
};
use crate::http::RequestContext;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use tessera_api::admin as api;
pub(super) use tessera_api::admin::ObjectQuery;
use tessera_core::authz::{Action, ReadScope};
use tessera_core::directory::{Entity, EntityKind, Subject};
use tessera_core::ids;
use tessera_core::limits;
use tessera_core::model::*;
use tessera_core::secret::{self, SecretPurpose};
use tessera_store::ListFilter;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/whoami", get(whoami_get))
        .route("/v1/audit", get(audit_get))
        .route(
            "/v1/enterprises",
            get(list_handler::<0>).post(enterprise_create),
        )
        .route(
            "/v1/enterprises/{id}",
            get(get_handler::<0>).delete(delete_handler::<0>),
        )
        .route("/v1/accounts", get(list_handler::<1>).post(account_create))
        .route(
            "/v1/accounts/{id}",
            get(get_handler::<1>).delete(delete_handler::<1>),
        )
        .route("/v1/users", get(list_handler::<2>).post(user_create))
        .route(
            "/v1/users/{id}",
            get(get_handler::<2>).delete(delete_handler::<2>),
        )
        .route(
            "/v1/service_accounts",
            get(list_handler::<3>).post(service_account_create),
        )
        .route(
            "/v1/service_accounts/{id}",
            get(get_handler::<3>).delete(delete_handler::<3>),
        )
        .route("/v1/api_keys", get(list_handler::<4>).post(api_key_create))
        .route(
            "/v1/api_keys/{id}",
            get(get_handler::<4>).delete(delete_handler::<4>),
        )
        .route("/v1/clients", get(list_handler::<5>).post(client_create))
        .route(
            "/v1/clients/{id}",
            get(get_handler::<5>).delete(delete_handler::<5>),
        )
        .route(
            "/v1/authorized_keys",
            get(list_handler::<6>).post(authorized_key_create),
        )
        .route(
            "/v1/authorized_keys/{id}",
            get(get_handler::<6>).delete(delete_handler::<6>),
        )
        .route(
            "/v1/oauth_tokens",
            get(list_handler::<7>).post(oauth_token_create),
        )
        .route(
            "/v1/oauth_tokens/{id}",
            get(get_handler::<7>).delete(delete_handler::<7>),
        )
        // Creation and updates of profiles, issuers and policies are in their own modules.
        .route(
            "/v1/trusted_profiles/{id}",
            get(get_handler::<8>).delete(delete_handler::<8>),
        )
        .route(
            "/v1/trusted_issuers/{id}",
            get(get_handler::<9>).delete(delete_handler::<9>),
        )
        .route(
            "/v1/authorization_policies/{id}",
            get(get_handler::<10>).delete(delete_handler::<10>),
        )
}

/// The kinds served by the generic handlers, indexed by the const parameter above.
pub(super) const KINDS: [(EntityKind, &str); 11] = [
    (EntityKind::Enterprise, "enterprises"),
    (EntityKind::Account, "accounts"),
    (EntityKind::User, "users"),
    (EntityKind::ServiceAccount, "service_accounts"),
    (EntityKind::ApiKey, "api_keys"),
    (EntityKind::Client, "clients"),
    (EntityKind::AuthorizedKey, "authorized_keys"),
    (EntityKind::OAuthToken, "oauth_tokens"),
    (EntityKind::Profile, "trusted_profiles"),
    (EntityKind::Issuer, "trusted_issuers"),
    (EntityKind::Policy, "authorization_policies"),
];

/// The JSON view of any record.
pub fn view(entity: &Entity) -> serde_json::Value {
    let value = match entity {
        Entity::Enterprise(e) => serde_json::to_value(e.to_api()),
        Entity::Account(a) => serde_json::to_value(a.to_api()),
        Entity::User(u) => serde_json::to_value(u.to_api()),
        Entity::ServiceAccount(s) => serde_json::to_value(s.to_api()),
        Entity::ApiKey(k) => serde_json::to_value(k.to_api()),
        Entity::Client(c) => serde_json::to_value(c.to_api()),
        Entity::Binding(b) => serde_json::to_value(b.to_api()),
        Entity::AuthorizedKey(k) => serde_json::to_value(k.to_api()),
        Entity::OAuthToken(t) => serde_json::to_value(t.to_api()),
        Entity::Profile(p) => serde_json::to_value(p.to_api()),
        Entity::Issuer(i) => serde_json::to_value(i.to_api()),
        Entity::Policy(p) => serde_json::to_value(p.to_api()),
        _ => Ok(serde_json::json!({})),
    };
    value.unwrap_or_default()
}

/// [`view`], plus what only the snapshot knows (a user's TOTP status).
pub fn view_in(state: &AppState, entity: &Entity) -> serde_json::Value {
    let mut value = view(entity);
    if let (Entity::User(user), Some(object)) = (entity, value.as_object_mut()) {
        object.insert(
            "totp".into(),
            super::mfa::totp_status(state, &user.id).into(),
        );
    }
    value
}

fn singular(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::ServiceAccount => "service account",
        EntityKind::ApiKey => "API key",
        EntityKind::Binding => "access binding",
        EntityKind::AuthorizedKey => "authorized key",
        EntityKind::OAuthToken => "OAuth token",
        EntityKind::Totp => "TOTP factor of user",
        EntityKind::Profile => "trusted profile",
        EntityKind::Issuer => "trusted issuer",
        EntityKind::Policy => "authorization policy",
        other => other.as_str(),
    }
}

pub async fn find_or_404(
    state: &AppState,
    kind: EntityKind,
    id: &str,
) -> Result<Entity, AdminError> {
    // A client's store key is `<account>/<id>` (`object_key`), longer than the id itself, which
    // `object_key` has bounded.
    let max = if kind == EntityKind::Client {
        limits::MAX_ID + 33
    } else {
        limits::MAX_ID
    };
    limits::bounded("id", id, max)?;
    state
        .store
        .find(kind, id)
        .await?
        .ok_or_else(|| AdminError::not_found(format!("{} {id} not found", singular(kind))))
}

pub(super) async fn list_handler<const K: usize>(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AdminError> {
    let Query(query) = query.map_err(|e| AdminError::invalid(e.body_text()))?;
    let (kind, plural) = KINDS[K];
    let entities = list_visible(&state, &caller, kind, &query).await?;
    Ok(list_body(
        plural,
        entities.iter().map(|e| view_in(&state, e)).collect(),
    ))
}

/// Lists objects the caller may read: in the requested account (if readable), in every
/// account for a global viewer, else in each account it may read, plus its own credentials
/// when it asks for them by owner. Every object is also checked one by one.
pub async fn list_visible(
    state: &AppState,
    caller: &Caller,
    kind: EntityKind,
    query: &ListQuery,
) -> Result<Vec<Entity>, AdminError> {
    let mut filter = list_filter(query)?;
    let readable = |entities: Vec<Entity>| -> Vec<Entity> {
        entities
            .into_iter()
            .filter(|e| caller.may(state, &Action::Read(e)))
            .collect()
    };
    if let Some(account) = &filter.account_id {
        caller.authorize(
            state,
            &Action::List {
                kind,
                account_id: Some(account),
            },
        )?;
        return Ok(readable(state.store.list(kind, &filter).await?));
    }
    let accounts = match caller.read_scope(state) {
        ReadScope::Everything => return Ok(readable(state.store.list(kind, &filter).await?)),
        ReadScope::Accounts(accounts) => accounts,
    };
    if filter.owner_iam_id.as_deref() == Some(caller.iam_id()) {
        // One's own credentials are readable without a role on their account.
        return Ok(readable(state.store.list(kind, &filter).await?));
    }
    if matches!(kind, EntityKind::Enterprise) {
        caller.authorize(
            state,
            &Action::List {
                kind,
                account_id: None,
            },
        )?;
    }
    let limit = filter.limit.unwrap_or(100) as usize;
    let mut all = Vec::new();
    for account in accounts {
        if kind == EntityKind::Account {
            if filter
                .after
                .as_deref()
                .is_none_or(|after| account.as_str() > after)
            {
                if let Some(entity) = state.store.find(kind, &account).await? {
                    all.push(entity);
                }
            }
            continue;
        }
        filter.account_id = Some(account);
        all.extend(state.store.list(kind, &filter).await?);
    }
    // One's own credentials are listed too, whatever roles one holds.
    if matches!(
        kind,
        EntityKind::ApiKey | EntityKind::OAuthToken | EntityKind::AuthorizedKey
    ) && filter.owner_iam_id.is_none()
    {
        let own = ListFilter {
            account_id: None,
            owner_iam_id: Some(caller.iam_id().to_owned()),
            ..filter.clone()
        };
        for entity in state.store.list(kind, &own).await? {
            if !all.iter().any(|e| e.key() == entity.key()) {
                all.push(entity);
            }
        }
    }
    all.sort_by(|a, b| a.key().cmp(b.key()));
    all.truncate(limit);
    Ok(readable(all))
}

/// How a client is addressed: `/v1/clients/{id}` names the client of that id in `account_id`,
/// else the caller's own account's, else the global one (`{id}` may also be the client's store
/// key `<account>/<id>`). Client ids are unique per account, not installation-wide.
/// The store key of the object `id` of `kind` names for this caller.
fn object_key(
    state: &AppState,
    caller: &Caller,
    kind: EntityKind,
    id: &str,
    query: &ObjectQuery,
) -> Result<String, AdminError> {
    if kind != EntityKind::Client {
        if query.account_id.is_some() {
            return Err(AdminError::invalid(
                "account_id is only used to address OAuth clients",
            ));
        }
        return Ok(id.to_owned());
    }
    if id.contains('/') {
        return Ok(id.to_owned());
    }
    limits::bounded("id", id, limits::MAX_ID)?;
    if let Some(account) = &query.account_id {
        let account = ids::account_id("account_id", account)?;
        return Ok(OAuthClient::key_for(Some(&account), id));
    }
    let own = OAuthClient::key_for(Some(caller.principal.account_id()), id);
    let candidates: Vec<Entity> = {
        let dir = state.snapshot.directory();
        if dir.client(&own).is_some() {
            return Ok(own);
        }
        if dir.client(id).is_some() {
            return Ok(id.to_owned());
        }
        dir.clients_with_id(id)
            .map(|c| Entity::Client(c.as_ref().clone()))
            .collect()
    };
    // Otherwise the one client of that id the caller may read, if there is exactly one; the
    // others are not mentioned (their existence is not the caller's business).
    let readable: Vec<&Entity> = candidates
        .iter()
        .filter(|e| caller.may(state, &Action::Read(e)))
        .collect();
    match readable.as_slice() {
        [one] => Ok(one.key().to_owned()),
        [] => Ok(id.to_owned()),
        _ => Err(AdminError::invalid(format!(
            "client id {id} exists in several accounts; pass ?account_id= to say which"
        ))),
    }
}

pub(super) async fn get_handler<const K: usize>(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<ObjectQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AdminError> {
    let Query(query) = query.map_err(|e| AdminError::invalid(e.body_text()))?;
    let (kind, _) = KINDS[K];
    let key = object_key(&state, &caller, kind, &id, &query)?;
    let entity = find_or_404(&state, kind, &key).await?;
    caller.authorize(&state, &Action::Read(&entity))?;
    Ok(Json(view_in(&state, &entity)).into_response())
}

pub(super) async fn delete_handler<const K: usize>(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<ObjectQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AdminError> {
    let Query(query) = query.map_err(|e| AdminError::invalid(e.body_text()))?;
    let (kind, _) = KINDS[K];
    let key = object_key(&state, &caller, kind, &id, &query)?;
    let entity = find_or_404(&state, kind, &key).await?;
    caller.authorize(&state, &Action::Delete(&entity))?;
    let action = format!("{}.delete", kind.as_str());
    let seq = state
        .store
        .delete(
            kind,
            &key,
            &audit(
                &ctx,
                caller.iam_id(),
                &action,
                format!("{} {id}", singular(kind)),
            ),
        )
        .await?;
    settle(&state, seq).await;
    tracing::info!(request_id = %ctx.id, actor = caller.iam_id(), %action, id, "deleted");
    Ok(deleted())
}

/// Authorizes the creation of `entity` with the core's model, then stores it.
pub(super) async fn create_entity(
    state: &AppState,
    ctx: &RequestContext,
    caller: &Caller,
    entity: &Entity,
) -> Result<(), AdminError> {
    caller.authorize(state, &Action::Create(entity))?;
    store_new(state, ctx, caller, entity).await
}

/// Stores an object whose creation was authorized already.
pub(super) async fn store_new(
    state: &AppState,
    ctx: &RequestContext,
    caller: &Caller,
    entity: &Entity,
) -> Result<(), AdminError> {
    let action = format!("{}.create", entity.kind().as_str());
    let detail = format!("{} {}", singular(entity.kind()), entity.key());
    let seq = state
        .store
        .create(entity, &audit(ctx, caller.iam_id(), &action, detail))
        .await?;
    settle(state, seq).await;
    tracing::info!(request_id = %ctx.id, actor = caller.iam_id(), %action, id = entity.key(), "created");
    Ok(())
}

pub(super) fn internal(e: tessera_core::Error) -> AdminError {
    AdminError::from(e)
}

async fn whoami_get(State(state): State<AppState>, caller: Caller) -> Json<api::WhoAmI> {
    // Shown, not decided on: whoami tells the caller what it is.
    let global_admin = caller.whoami_global_admin(&state);
    let c = &caller.token;
    let dir = state.snapshot.directory();
    let subject = dir.subject(c.iam_id());
    let email = subject
        .as_ref()
        .and_then(tessera_core::id_token::subject_email);
    let (name, sub_type) = match subject {
        Some(Subject::User(u)) => (u.name.clone(), "user"),
        Some(Subject::ServiceAccount(s)) => (s.name.clone(), "ServiceId"),
        Some(Subject::Profile(p)) => (p.name.clone(), "Profile"),
        Some(Subject::Crn(_)) => (c.subject_id().to_owned(), "CRN"),
        None => (String::new(), ""),
    };
    Json(api::WhoAmI {
        iam_id: c.iam_id().to_owned(),
        id: c.subject_id().to_owned(),
        name,
        account_id: c.account_id().to_owned(),
        sub_type: sub_type.to_owned(),
        email,
        global_admin,
    })
}

async fn audit_get(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<api::AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AdminError> {
    let Query(query) = query.map_err(|e| AdminError::invalid(e.body_text()))?;
    caller.authorize(&state, &Action::ReadAudit)?;
    let limit = query.limit.unwrap_or(tessera_api::limits::DEFAULT_LIMIT);
    if limit == 0 || limit > tessera_api::limits::MAX_LIMIT {
        return Err(AdminError::invalid(format!(
            "limit must be between 1 and {}",
            tessera_api::limits::MAX_LIMIT
        )));
    }
    let events = state.store.list_audit(limit).await?;
    let items: Vec<api::AuditEvent> = events
        .iter()
        .map(|r| api::AuditEvent {
            id: r.id,
            at: rfc3339(r.event.at),
            actor: r.event.actor.clone(),
            action: r.event.action.clone(),
            target_kind: r.target_kind.clone(),
            target_id: r.target_key.clone(),
            request_id: r.event.request_id.clone(),
            detail: r.event.detail.clone(),
        })
        .collect();
    Ok(list_body("events", items))
}

async fn enterprise_create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    caller: Caller,
    AdminJson(body): AdminJson<api::EnterpriseCreate>,
) -> Result<Response, AdminError> {
    let enterprise = Enterprise {
        id: ids::new_account_id(&state.rng).map_err(internal)?,
        name: limits::name("name", &body.name)?,
        created_at: state.clock.now(),
    };
    create_entity(
        &state,
        &ctx,
        &caller,
        &Entity::Enterprise(enterprise.clone()),
    )
    .await?;
    Ok(created(enterprise.to_api()))
}

async fn account_create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    caller: Caller,
    AdminJson(body): AdminJson<api::AccountCreate>,
) -> Result<Response, AdminError> {
    let enterprise_id = match body.enterprise_id.as_deref() {
        Some(id) => Some(ids::account_id("enterprise_id", id)?),
        None => None,
    };
    let account = Account {
        id: ids::new_account_id(&state.rng).map_err(internal)?,
        name: limits::name("name", &body.name)?,
        enterprise_id,
        mfa: Default::default(),
        created_at: state.clock.now(),
    };
    create_entity(&state, &ctx, &caller, &Entity::Account(account.clone())).await?;
    Ok(created(account.to_api()))
}

/// Resolves the account a new object goes into: the given one (validated) or the caller's own.
fn target_account(caller: &Caller, given: Option<&str>) -> Result<String, AdminError> {
    match given {
        Some(id) => Ok(ids::account_id("account_id", id)?),
        None => Ok(caller.principal.account_id().to_owned()),
    }
}

async fn user_create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    caller: Caller,
    AdminJson(body): AdminJson<api::UserCreate>,
) -> Result<Response, AdminError> {
    let account_id = target_account(&caller, body.account_id.as_deref())?;
    let name = limits::name("name", &body.name)?;
    let email = limits::email(&body.email)?;
    if body.federated && body.password.is_some() {
        return Err(AdminError::invalid(
            "federated users sign in through their identity provider and cannot have a password",
        ));
    }
    let mut user = User {
        id: ids::new_user_id(&state.rng).map_err(internal)?,
        account_id,
        name,
        email,
        password_hash: None,
        federated: body.federated,
        created_at: state.clock.now(),
    };
    // Authorized before the (slow) password hash, so refused callers cost no Argon2id.
    caller.authorize(&state, &Action::Create(&Entity::User(user.clone())))?;
    user.password_hash = match body.password {
        Some(password) => {
            // Argon2id is slow by design: keep it off the async workers.
            let state_for_hash = state.clone();
            let hashed = tokio::task::spawn_blocking(move || {
                secret::hash_password(&password, &state_for_hash.rng)
            })
            .await
            .map_err(|e| AdminError::internal(format!("password hashing task failed: {e}")))??;
            Some(hashed)
        }
        None => None,
    };
    store_new(&state, &ctx, &caller, &Entity::User(user.clone())).await?;
    Ok(created(view_in(&state, &Entity::User(user))))
}

async fn service_account_create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    caller: Caller,
    AdminJson(body): AdminJson<api::ServiceAccountCreate>,
) -> Result<Response, AdminError> {
    let account_id = target_account(&caller, body.account_id.as_deref())?;
    let service_account = ServiceAccount {
        id: ids::new_service_account_id(&state.rng).map_err(internal)?,
        account_id,
        name: limits::name("name", &body.name)?,
        description: limits::description(body.description.as_deref())?,
        created_at: state.clock.now(),
    };
    create_entity(
        &state,
        &ctx,
        &caller,
        &Entity::ServiceAccount(service_account.clone()),
    )
    .await?;
    Ok(created(service_account.to_api()))
}

async fn api_key_create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    caller: Caller,
    AdminJson(body): AdminJson<api::ApiKeyCreate>,
) -> Result<Response, AdminError> {
    let owner = limits::bounded("owner_iam_id", &body.owner_iam_id, limits::MAX_ID)?.to_owned();
    if SubjectKind::of_iam_id(&owner).is_none() {
        return Err(AdminError::invalid(
            "owner_iam_id must be a user id (IBMid-…) or a service account iam id (iam-ServiceId-…)",
        ));
    }
    let account_id = {
        let dir = state.snapshot.directory();
        dir.subject(&owner)
            .map(|s| s.account_id().to_owned())
            .ok_or_else(|| AdminError::not_found(format!("identity {owner} not found")))?
    };
    let apikey = secret::generate_api_key(&state.rng).map_err(internal)?;
    let key = ApiKey {
        id: ids::new_api_key_id(&state.rng).map_err(internal)?,
        name: limits::name("name", &body.name)?,
        description: limits::description(body.description.as_deref())?,
        owner_iam_id: owner,
        account_id,
        key_hash: state.pepper.hash(SecretPurpose::ApiKey, apikey.expose()),
        created_at: state.clock.now(),
    };
    create_entity(&state, &ctx, &caller, &Entity::ApiKey(key.clone())).await?;
    let mut view = key.to_api();
    view.apikey = Some(apikey.expose().to_owned());
    Ok(created(view))
}

async fn client_create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    caller: Caller,
    AdminJson(body): AdminJson<api::ClientCreate>,
) -> Result<Response, AdminError> {
    let id = limits::identifier("id", &body.id, limits::MAX_CLIENT_ID)?;
    if id == DEFAULT_CLIENT_ID {
        return Err(AdminError::invalid(
            "client id \"default\" is reserved for the built-in public client",
        ));
    }
    let account_id = match body.account_id.as_deref() {
        Some(account) => Some(ids::account_id("account_id", account)?),
        None => None,
    };
    let secret = secret::generate_client_secret(&state.rng).map_err(internal)?;
    let name = match body.name.as_deref() {
        Some(name) => limits::name("name", name)?,
        None => id.clone(),
    };
    let client = OAuthClient {
        key: OAuthClient::key_for(account_id.as_deref(), &id),
        id,
        account_id,
        name,
        secret_hash: Some(
            state
                .pepper
                .hash(SecretPurpose::ClientSecret, secret.expose()),
        ),
        created_at: state.clock.now(),
    };
    create_entity(&state, &ctx, &caller, &Entity::Client(client.clone())).await?;
    let mut view = client.to_api();
    view.secret = Some(secret.expose().to_owned());
    Ok(created(view))
}
