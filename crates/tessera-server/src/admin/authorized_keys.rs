//! Authorized keys of service accounts (`/v1/authorized_keys`), the Yandex surface's key
//! pairs: the private half is returned once, as a `yc` key file, and never stored.
//!
//! The secret is not logged or put in an audit event: the audit detail names the object only.

use super::kit::{self, AdminJson};
use super::views::ToApi;
use super::views::{key_algorithm, rfc3339};
use super::AdminError;
use axum::response::Response;
use tessera_api::admin as api;
use tessera_core::authz::Action;
use tessera_core::directory::Entity;
use tessera_core::ids;
use tessera_core::limits;
use tessera_core::model::{AuthorizedKey, AuthorizedKeyAlgorithm};
use tessera_core::service_account_jwt::{self, GeneratedKeyPair};

kit::collection! { AuthorizedKeys, AuthorizedKey, AUTHORIZED_KEYS, AUTHORIZED_KEY, create }

/// The algorithms `key_algorithm` accepts, for the error message.
const ALGORITHMS: &str = "RSA_2048, RSA_4096";

/// `POST /v1/authorized_keys`: a new key pair for a service account. Answers the key's view with
/// `key_file`, the `yc` key file (private key included), which is never shown again.
async fn create(
    kit::Write { state, ctx, caller }: kit::Write,
    AdminJson(body): AdminJson<api::AuthorizedKeyCreate>,
) -> Result<Response, AdminError> {
    let algorithm = match body.key_algorithm.as_deref() {
        None => AuthorizedKeyAlgorithm::Rsa2048,
        Some(text) => AuthorizedKeyAlgorithm::parse(text).ok_or_else(|| {
            AdminError::invalid(format!(
                "key_algorithm must be one of {ALGORITHMS}, not {:?}",
                limits::bounded("key_algorithm", text, limits::MAX_ID).unwrap_or("…")
            ))
        })?,
    };
    let description = limits::description(body.description.as_deref())?;
    let service_account_id = limits::bounded(
        "service_account_id",
        &body.service_account_id,
        limits::MAX_ID,
    )?
    .to_owned();
    let account_id = state
        .snapshot
        .directory()
        .service_account(&service_account_id)
        .map(|s| s.account_id.clone())
        .ok_or_else(|| {
            AdminError::not_found(format!("service account {service_account_id} not found"))
        })?;
    let mut key = AuthorizedKey {
        id: ids::new_authorized_key_id(&state.rng).map_err(kit::internal)?,
        service_account_id,
        account_id,
        description,
        algorithm,
        public_key_der: Vec::new(),
        created_at: state.clock.now(),
    };
    // Authorized before the (slow) key generation, so refused callers cost nothing.
    caller.authorize(&state, &Action::Create(&Entity::AuthorizedKey(key.clone())))?;

    // RSA key generation takes up to a second or more for 4096 bits: off the async workers.
    let pair: GeneratedKeyPair =
        tokio::task::spawn_blocking(move || service_account_jwt::generate_key_pair(algorithm))
            .await
            .map_err(|e| AdminError::internal(format!("key generation task failed: {e}")))?
            .map_err(kit::internal)?;
    key.public_key_der = pair.public_spki_der;
    kit::store_new(&state, &ctx, &caller, &Entity::AuthorizedKey(key.clone())).await?;
    let mut view = key.to_api();
    view.key_file = Some(api::KeyFile {
        id: key.id.clone(),
        service_account_id: key.service_account_id.clone(),
        created_at: rfc3339(key.created_at),
        key_algorithm: key_algorithm(key.algorithm),
        public_key: view.public_key.clone(),
        private_key: api::OneTime::new(service_account_jwt::pem(
            "PRIVATE KEY",
            &pair.private_pkcs8_der,
        )),
    });
    Ok(kit::created(view))
}
