//! OAuth clients (`/v1/clients`): global ones (usable from every account) and per-account ones;
//! the secret is returned once and stored as a keyed hash.

use super::auth::Caller;
use super::kit::{self, AdminJson, Collection, ObjectQuery};
use super::AdminError;
use crate::state::AppState;
use axum::response::Response;
use axum::Router;
use tessera_api::admin as api;
use tessera_api::paths;
use tessera_core::authz::Action;
use tessera_core::directory::{Entity, EntityKind};
use tessera_core::ids;
use tessera_core::limits;
use tessera_core::model::{OAuthClient, DEFAULT_CLIENT_ID};
use tessera_core::secret::{self, SecretPurpose};

/// `/v1/clients` and `/v1/clients/{id}`.
pub struct Clients;

impl Collection for Clients {
    const KIND: EntityKind = EntityKind::Client;
    const PATH: &'static str = paths::CLIENTS;
    const ITEM_PATH: &'static str = paths::CLIENT;

    /// How a client is addressed: `/v1/clients/{id}` names the client of that id in `account_id`,
    /// else the caller's own account's, else the global one (`{id}` may also be the client's store
    /// key `<account>/<id>`). Client ids are unique per account, not installation-wide.
    fn key(
        state: &AppState,
        caller: &Caller,
        id: &str,
        query: &ObjectQuery,
    ) -> Result<String, AdminError> {
        if let Some((account, _)) = id.split_once('/') {
            may_look_in(state, caller, account)?;
            return Ok(id.to_owned());
        }
        limits::bounded("id", id, limits::MAX_ID)?;
        if let Some(account) = &query.account_id {
            let account = ids::account_id("account_id", account)?;
            may_look_in(state, caller, &account)?;
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
}

/// A client named in a given account is looked up only for a caller who may list that
/// account's clients: to anyone else an existing and a missing id answer alike, so client ids
/// (chosen names) do not leak across accounts.
fn may_look_in(state: &AppState, caller: &Caller, account: &str) -> Result<(), AdminError> {
    caller.authorize(
        state,
        &Action::List {
            kind: EntityKind::Client,
            account_id: Some(account),
        },
    )
}

pub fn router() -> Router<AppState> {
    kit::routes::<Clients, _, _>(client_create)
}

async fn client_create(
    kit::Write { state, ctx, caller }: kit::Write,
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
    let secret = secret::generate_client_secret(&state.rng).map_err(kit::internal)?;
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
    let mut view = kit::create_object(&state, &ctx, &caller, client, Entity::Client).await?;
    view.secret = Some(api::OneTime::new(secret.expose()));
    Ok(kit::created(view))
}
