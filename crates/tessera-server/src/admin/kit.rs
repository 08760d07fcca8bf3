//! What every admin resource module shares: the JSON body extractors, list filters and paging,
//! the generic list/get/delete handlers of a [`Collection`], find-or-404, creation with its audit
//! event, settling the snapshot after a write, and the response shapes. A leaf of `admin`: it
//! imports no resource module.

use super::auth::Caller;
use super::errors::AdminError;
use super::views::ToApi;
use crate::http::{declares, read_body, BodyError, RequestContext};
use crate::security_log;
use crate::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
pub use tessera_api::admin::{ListQuery, ObjectQuery};
use tessera_api::limits::{DEFAULT_LIMIT, MAX_FILTER, MAX_LIMIT};
use tessera_core::authz::{Action, ReadScope};
use tessera_core::directory::{Entity, EntityKind};
use tessera_core::{ids, limits};
use tessera_store::{AuditEvent, ListFilter};

/// Largest admin request body.
const MAX_ADMIN_BODY: usize = 64 * 1024;

/// A JSON body extractor whose failures use the admin error shape and name the problem.
pub struct AdminJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AdminJson<T> {
    type Rejection = AdminError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !declares(request.headers(), "application/json") {
            return Err(AdminError::invalid("Content-Type must be application/json"));
        }
        let bytes = read_body(request.into_body(), MAX_ADMIN_BODY)
            .await
            .map_err(body_error)?;
        serde_json::from_slice(&bytes)
            .map(AdminJson)
            .map_err(|e| AdminError::invalid(format!("invalid request body: {e}")))
    }
}

fn body_error(e: BodyError) -> AdminError {
    match e {
        BodyError::TooLarge(_) => AdminError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            e.to_string(),
        ),
        BodyError::Unreadable => AdminError::invalid(e.to_string()),
    }
}

/// [`AdminJson`] for endpoints whose body is optional: `None` for an empty body.
pub struct OptionalAdminJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalAdminJson<T> {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared_empty = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0");
        let untyped = request.headers().get(header::CONTENT_TYPE).is_none();
        if declared_empty || untyped {
            // No body to speak of; a stray one without a type is still read (bounded) and
            // must be empty.
            let bytes = read_body(request.into_body(), MAX_ADMIN_BODY)
                .await
                .map_err(body_error)?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalAdminJson(None));
            }
            return Err(AdminError::invalid("Content-Type must be application/json"));
        }
        AdminJson::from_request(request, state)
            .await
            .map(|AdminJson(body)| OptionalAdminJson(Some(body)))
    }
}

/// What a handler that changes something works from: the state, the request's context (the
/// audit event and the security log name the request) and the authenticated caller.
pub struct Write {
    pub state: AppState,
    pub ctx: RequestContext,
    pub caller: Caller,
}

impl FromRequestParts<AppState> for Write {
    type Rejection = AdminError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let ctx = parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .ok_or_else(|| AdminError::internal("the request has no context"))?;
        Ok(Write {
            state: state.clone(),
            ctx,
            caller,
        })
    }
}

/// An admin collection the shared handlers serve (`GET` the list, `GET` and `DELETE` one): the
/// kind of object it holds, the key of its list body, its paths, and how an `{id}` in its path
/// names an object. Each resource module declares its own and routes it with [`routes`].
pub trait Collection {
    const KIND: EntityKind;
    /// The collection's path (`/v1/<plural>`) and an object's (`/v1/<plural>/{id}`), from
    /// [`tessera_api::paths`].
    const PATH: &'static str;
    const ITEM_PATH: &'static str;
    /// The key of the list body, `{"<plural>": [...]}`: the last segment of the path.
    const PLURAL: &'static str = plural_of(Self::PATH);

    /// The store key of the object `id` names for this caller. Objects are named by their id;
    /// `?account_id=` addresses OAuth clients only.
    fn key(
        _state: &AppState,
        _caller: &Caller,
        id: &str,
        query: &ObjectQuery,
    ) -> Result<String, AdminError> {
        if query.account_id.is_some() {
            return Err(AdminError::invalid(
                "account_id is only used to address OAuth clients",
            ));
        }
        Ok(id.to_owned())
    }
}

/// `/v1/<plural>` → `<plural>` (a path of another shape would be its own key; a test holds
/// every collection's path to this shape).
const fn plural_of(path: &'static str) -> &'static str {
    match path.as_bytes() {
        [b'/', b'v', b'1', b'/', plural @ ..] => match std::str::from_utf8(plural) {
            Ok(plural) => plural,
            Err(_) => path,
        },
        _ => path,
    }
}

/// Declares a resource module's [`Collection`] with the default addressing (`{id}` is the id):
/// `collection! { Accounts, Account, ACCOUNTS, ACCOUNT }` is the unit type `Accounts` serving
/// `EntityKind::Account` at `paths::ACCOUNTS` and `paths::ACCOUNT`. With a fifth argument, the
/// module's create handler, it also declares the module's `router()`: the collection's
/// [`routes`] with that handler, for a module that serves nothing else.
macro_rules! collection {
    ($name:ident, $kind:ident, $path:ident, $item_path:ident) => {
        #[doc = concat!("The collection at `tessera_api::paths::", stringify!($path), "`.")]
        pub struct $name;

        impl $crate::admin::kit::Collection for $name {
            const KIND: tessera_core::directory::EntityKind =
                tessera_core::directory::EntityKind::$kind;
            const PATH: &'static str = tessera_api::paths::$path;
            const ITEM_PATH: &'static str = tessera_api::paths::$item_path;
        }
    };
    ($name:ident, $kind:ident, $path:ident, $item_path:ident, $create:ident) => {
        $crate::admin::kit::collection!($name, $kind, $path, $item_path);

        pub fn router() -> axum::Router<$crate::state::AppState> {
            $crate::admin::kit::routes::<$name, _, _>($create)
        }
    };
}
pub(super) use collection;

/// The routes every collection has: the shared list and its own `create` at its path, the
/// shared get and delete at an object's. A module with an update adds it on `C::ITEM_PATH`
/// (axum merges the methods of one path).
pub fn routes<C, H, T>(create: H) -> Router<AppState>
where
    C: Collection + 'static,
    H: Handler<T, AppState>,
    T: 'static,
{
    Router::new()
        .route(C::PATH, routing::get(list::<C>).post(create))
        .route(C::ITEM_PATH, routing::get(get::<C>).delete(delete::<C>))
}

pub async fn list<C: Collection>(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, AdminError> {
    let Query(query) = query.map_err(|e| AdminError::invalid(e.body_text()))?;
    let entities = list_visible(&state, &caller, C::KIND, &query).await?;
    Ok(list_body(
        C::PLURAL,
        entities.iter().map(|e| view_in(&state, e)).collect(),
    ))
}

pub async fn get<C: Collection>(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<ObjectQuery>, QueryRejection>,
) -> Result<Response, AdminError> {
    let Query(query) = query.map_err(|e| AdminError::invalid(e.body_text()))?;
    let key = C::key(&state, &caller, &id, &query)?;
    let entity = find_or_404(&state, C::KIND, &key).await?;
    caller.authorize(&state, &Action::Read(&entity))?;
    Ok(Json(view_in(&state, &entity)).into_response())
}

pub async fn delete<C: Collection>(
    Write { state, ctx, caller }: Write,
    Path(id): Path<String>,
    query: Result<Query<ObjectQuery>, QueryRejection>,
) -> Result<Response, AdminError> {
    let Query(query) = query.map_err(|e| AdminError::invalid(e.body_text()))?;
    let kind = C::KIND;
    let key = C::key(&state, &caller, &id, &query)?;
    let entity = find_or_404(&state, kind, &key).await?;
    caller.authorize(&state, &Action::Delete(&entity))?;
    let action = format!("{}.delete", kind.as_str());
    let event = audit(
        &state,
        &ctx,
        caller.iam_id(),
        &action,
        format!("{} {id}", singular(kind)),
        &entity,
    );
    let seq = state.store.delete(kind, &key, &event).await?;
    settle(&state, seq).await;
    security_log::change(&ctx, &event);
    Ok(deleted())
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

/// The store filter of a list request; its rules are the ones `ListQuery`'s schema states.
pub fn list_filter(query: &ListQuery) -> Result<ListFilter, AdminError> {
    let this = query;
    {
        let limit = this.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(AdminError::invalid(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        for (field, value) in [
            ("account_id", &this.account_id),
            ("owner_iam_id", &this.owner_iam_id),
            ("service_account_id", &this.service_account_id),
            ("user_id", &this.user_id),
            ("subject_iam_id", &this.subject_iam_id),
            ("source_iam_id", &this.source_iam_id),
            ("resource", &this.resource),
            ("after", &this.after),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > MAX_FILTER)
            {
                return Err(AdminError::invalid(format!(
                    "{field} is longer than {MAX_FILTER} characters"
                )));
            }
        }
        let owners = [
            this.owner_iam_id.clone(),
            // Either spelling: `ServiceId-…` or its iam_id `iam-ServiceId-…`.
            this.service_account_id.as_deref().map(|id| {
                tessera_core::ids::service_iam_id(tessera_core::ids::service_account_id_of(id))
            }),
            this.user_id.clone(),
        ];
        let mut owners = owners.into_iter().flatten();
        let owner_iam_id = owners.next();
        if owners.next().is_some() {
            return Err(AdminError::invalid(
                "give at most one of owner_iam_id, service_account_id and user_id",
            ));
        }
        if this.subject_iam_id.is_some() && this.source_iam_id.is_some() {
            return Err(AdminError::invalid(
                "give at most one of subject_iam_id and source_iam_id",
            ));
        }
        let subject_iam_id = this.subject_iam_id.clone().or_else(|| {
            this.source_iam_id.as_deref().map(|id| {
                if id.starts_with(tessera_core::ids::SERVICE_ID_PREFIX) {
                    tessera_core::ids::service_iam_id(id)
                } else {
                    id.to_owned()
                }
            })
        });
        Ok(ListFilter {
            account_id: this.account_id.clone(),
            owner_iam_id,
            subject_iam_id,
            resource: this.resource.clone(),
            after: this.after.clone(),
            limit: Some(limit),
        })
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

/// Authorizes the creation of `entity` with the core's model, then stores it.
pub async fn create_entity(
    state: &AppState,
    ctx: &RequestContext,
    caller: &Caller,
    entity: &Entity,
) -> Result<(), AdminError> {
    caller.authorize(state, &Action::Create(entity))?;
    store_new(state, ctx, caller, entity).await
}

/// [`create_entity`] of `object` as `entity` (`Entity::User`, …): the view a create answers
/// with (to which a module adds a secret shown once).
pub async fn create_object<T: ToApi>(
    state: &AppState,
    ctx: &RequestContext,
    caller: &Caller,
    object: T,
    entity: fn(T) -> Entity,
) -> Result<T::Api, AdminError> {
    let view = object.to_api();
    create_entity(state, ctx, caller, &entity(object)).await?;
    Ok(view)
}

/// Stores an object whose creation was authorized already.
pub async fn store_new(
    state: &AppState,
    ctx: &RequestContext,
    caller: &Caller,
    entity: &Entity,
) -> Result<(), AdminError> {
    let action = format!("{}.create", entity.kind().as_str());
    let detail = format!("{} {}", singular(entity.kind()), entity.key());
    let event = audit(state, ctx, caller.iam_id(), &action, detail, entity);
    let seq = state.store.create(entity, &event).await?;
    settle(state, seq).await;
    security_log::change(ctx, &event);
    Ok(())
}

/// Writes `entity` over the object of its key (or the one thing of its kind, a cut-off) with
/// its audit event, `action` and `detail`, and waits for the snapshot: [`store_new`] for a
/// change instead of a creation.
pub async fn store_put(
    state: &AppState,
    ctx: &RequestContext,
    caller: &Caller,
    action: &str,
    detail: String,
    entity: &Entity,
) -> Result<(), AdminError> {
    let event = audit(state, ctx, caller.iam_id(), action, detail, entity);
    let seq = state.store.put(entity, &event).await?;
    settle(state, seq).await;
    security_log::change(ctx, &event);
    Ok(())
}

/// Resolves the account a new object goes into: the given one (validated) or the caller's own.
pub fn target_account(caller: &Caller, given: Option<&str>) -> Result<String, AdminError> {
    match given {
        Some(id) => Ok(ids::account_id("account_id", id)?),
        None => Ok(caller.principal.account_id().to_owned()),
    }
}

/// Refuses with 404 an account that does not exist: what a new object in it is refused with.
pub fn existing_account(state: &AppState, account_id: &str) -> Result<(), AdminError> {
    match state.snapshot.directory().account(account_id) {
        Some(_) => Ok(()),
        None => Err(AdminError::not_found(format!(
            "account {account_id} not found"
        ))),
    }
}

pub fn internal(e: tessera_core::Error) -> AdminError {
    AdminError::from(e)
}

/// The audit event of a change to `about`, in the account whose administrators may read it.
pub fn audit(
    state: &AppState,
    ctx: &RequestContext,
    actor: &str,
    action: &str,
    detail: String,
    about: &Entity,
) -> AuditEvent {
    let account_id = tessera_core::authz::audit_account(&state.snapshot.directory(), about);
    AuditEvent {
        // When the request started, on the server's clock.
        at: ctx.started_at.unix_timestamp(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        request_id: ctx.id.clone(),
        detail,
        account_id,
    }
}

/// Waits until this node's snapshot reflects the write at `seq`, so a deleted credential fails
/// on the very next request.
pub async fn settle(state: &AppState, seq: i64) {
    if !state.snapshot.sync_to(seq).await {
        tracing::warn!(seq, "snapshot did not catch up with a write within 5 s");
    }
}

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
        object.insert("totp".into(), totp_status(state, &user.id).into());
    }
    value
}

/// `totp` of the user view: `none`, `pending` (enrolled, not confirmed) or `confirmed`.
pub fn totp_status(state: &AppState, user_id: &str) -> &'static str {
    match state.snapshot.directory().totp(user_id) {
        None => "none",
        Some(t) if t.confirmed => "confirmed",
        Some(_) => "pending",
    }
}

pub fn created<T: Serialize>(value: T) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

pub fn deleted() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Keeps list body shapes uniform: `{"<plural>": [...]}`.
pub fn list_body<T: Serialize>(plural: &str, items: Vec<T>) -> Response {
    let mut map = serde_json::Map::new();
    map.insert(
        plural.to_owned(),
        serde_json::to_value(items).unwrap_or_default(),
    );
    Json(serde_json::Value::Object(map)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collections_list_key_is_the_last_segment_of_its_path() {
        assert_eq!(plural_of("/v1/service_accounts"), "service_accounts");
        for (name, path, item_path) in crate::admin::collection_paths() {
            let plural = plural_of(path);
            assert_eq!(format!("/v1/{plural}"), path, "{name}");
            assert_eq!(item_path, format!("{path}/{{id}}"), "{name}");
        }
    }
}
