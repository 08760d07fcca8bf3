//! Detail pages: one object (every field of its admin view, links to the objects related to
//! it) with the MFA controls the admin API has (an account's requirement, a user's TOTP
//! factor), and one audit event. Reads and writes are admin API calls with the session's token,
//! as everywhere in the console; the model is asked only whether to draw a control.

use super::backend::with_query;
use super::handlers::{delete_href, may, may_delete, object_path, param, store_key, Console, Page};
use super::pages::{self, csrf, text};
use super::resources::{self, Resource};
use super::session::{Form, Session};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::Extension;
use maud::{html, Markup};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use std::collections::HashMap;
use tessera_api::paths;
use tessera_core::authz::Action;
use tessera_core::directory::{Entity, EntityKind};
use tessera_core::model::MfaRequirement;

type Params = Query<HashMap<String, String>>;

/// What an id keeps unencoded in a console path: the unreserved characters (RFC 3986), so
/// `ServiceId-…` reads as itself.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The console path of one object of `slug` (`?account_id=` for an OAuth client).
pub fn object_href(slug: &str, id: &str, account: Option<&str>) -> String {
    let base = format!("/console/r/{slug}/{}", utf8_percent_encode(id, SEGMENT));
    match account {
        Some(account) if slug == "clients" => with_query(&base, &[("account_id", account)]),
        _ => base,
    }
}

/// The detail page of the listed object `row` of `resource`.
pub fn row_href(resource: &Resource, row: &Value) -> String {
    object_href(resource.slug, &text(&row["id"]), row["account_id"].as_str())
}

fn list_href(slug: &str, filter: &str, value: &str) -> String {
    with_query(&format!("/console/r/{slug}"), &[(filter, value)])
}

/// The console page of an identity named by its IAM id (a user, service account or profile).
fn identity_href(iam_id: &str) -> Option<String> {
    if iam_id.starts_with("IBMid-") {
        Some(object_href("users", iam_id, None))
    } else if let Some(id) = iam_id
        .strip_prefix("iam-")
        .filter(|id| id.starts_with("ServiceId-"))
    {
        Some(object_href("service_accounts", id, None))
    } else {
        iam_id
            .strip_prefix("iam-")
            .filter(|id| id.starts_with("Profile-"))
            .map(|id| object_href("trusted_profiles", id, None))
    }
}

/// The objects related to `object` (of `kind`): (label, console path).
fn related(kind: EntityKind, object: &Value) -> Vec<(String, String)> {
    let field = |name: &str| object[name].as_str().unwrap_or("").to_owned();
    let (id, iam_id, account) = (field("id"), field("iam_id"), field("account_id"));
    let mut links: Vec<(String, String)> = Vec::new();
    let mut add = |label: &str, href: Option<String>| {
        if let Some(href) = href {
            links.push((label.to_owned(), href));
        }
    };
    if kind != EntityKind::Account && !account.is_empty() {
        add("Its account", Some(object_href("accounts", &account, None)));
    }
    match kind {
        EntityKind::Account => {
            if let Some(enterprise) = object["enterprise_id"].as_str() {
                add(
                    "Its enterprise",
                    Some(object_href("enterprises", enterprise, None)),
                );
            }
            for r in resources::RESOURCES.iter().filter(|r| {
                !matches!(
                    r.kind,
                    EntityKind::Account | EntityKind::Enterprise | EntityKind::Binding
                )
            }) {
                add(r.title, Some(list_href(r.slug, "account_id", &id)));
            }
            add(
                "Access bindings on the account",
                Some(list_href(
                    "access_bindings",
                    "resource",
                    &format!("account/{id}"),
                )),
            );
            add(
                "Its audit events",
                Some(with_query("/console/audit", &[("account_id", &id)])),
            );
        }
        EntityKind::User | EntityKind::ServiceAccount | EntityKind::Profile => {
            if kind != EntityKind::Profile {
                add(
                    "Its API keys",
                    Some(list_href("api_keys", "owner_iam_id", &iam_id)),
                );
            }
            if kind == EntityKind::ServiceAccount {
                add(
                    "Its authorized keys",
                    Some(list_href("authorized_keys", "service_account_id", &id)),
                );
                add(
                    "Access bindings on it",
                    Some(list_href(
                        "access_bindings",
                        "resource",
                        &format!("service-account/{id}"),
                    )),
                );
            }
            add(
                "Its access bindings",
                Some(list_href("access_bindings", "subject_iam_id", &iam_id)),
            );
            add(
                "Authorization policies it is the source of",
                Some(list_href(
                    "authorization_policies",
                    "source_iam_id",
                    &iam_id,
                )),
            );
            if kind != EntityKind::Profile {
                add(
                    "Audit events by it",
                    Some(with_query("/console/audit", &[("actor", &iam_id)])),
                );
            }
        }
        EntityKind::ApiKey => add("Its owner", identity_href(&field("owner_iam_id"))),
        EntityKind::AuthorizedKey => add(
            "Its service account",
            Some(object_href(
                "service_accounts",
                &field("service_account_id"),
                None,
            )),
        ),
        EntityKind::Binding => {
            add("Its subject", identity_href(&field("subject_iam_id")));
            let resource = field("resource");
            if let Some(account) = resource.strip_prefix("account/") {
                add(
                    "The account it is on",
                    Some(object_href("accounts", account, None)),
                );
            } else if let Some(sa) = resource.strip_prefix("service-account/") {
                add(
                    "The service account it is on",
                    Some(object_href("service_accounts", sa, None)),
                );
            }
        }
        EntityKind::Policy => add("Its source", identity_href(&field("source_iam_id"))),
        _ => {}
    }
    links
}

/// Every field of an admin view: strings and numbers as text, lists and objects as JSON.
fn facts(object: &Value) -> Markup {
    html! {
        dl.facts {
            @if let Some(fields) = object.as_object() {
                @for (name, value) in fields {
                    dt { (name) }
                    dd {
                        @match value {
                            Value::Array(_) | Value::Object(_) => pre { (serde_json::to_string_pretty(value).unwrap_or_default()) },
                            other => (text(other)),
                        }
                    }
                }
            }
        }
    }
}

pub async fn object(
    State(state): State<AppState>,
    console: Console,
    Path((slug, id)): Path<(String, String)>,
    Query(params): Params,
) -> Page {
    let session = &console.session;
    let resource = console.resource(&slug, None)?;
    let path = object_path(resource, &id, param(&params, "account_id"));
    let object = console.call(Method::GET, &path, None).await?;
    let key = store_key(resource.kind, &object);
    let can_delete = may_delete(&state, session, resource.kind, &key).await;
    let controls = match resource.kind {
        EntityKind::Account => account_controls(&state, session, &object, &key).await,
        EntityKind::User => user_controls(&state, session, &object, &key).await,
        _ => html! {},
    };
    let links = related(resource.kind, &object);
    let body = html! {
        (facts(&object))
        @if !links.is_empty() {
            section aria-labelledby="related" {
                h2 id="related" { "Related" }
                ul { @for (label, href) in &links { li { a href=(href) { (label) } } } }
            }
        }
        (controls)
        p {
            @if can_delete {
                a.danger href=(delete_href(resource, &object)) { "Delete " (resource.noun) }
                " · "
            }
            a href={ "/console/r/" (resource.slug) } { "Back to " (resource.title) }
        }
    };
    // "Service account ServiceId-…": the noun capitalised.
    let mut noun = resource.noun.chars();
    let noun: String = noun
        .next()
        .map(|first| first.to_uppercase().chain(noun).collect())
        .unwrap_or_default();
    let title = format!("{noun} {}", text(&object["id"]));
    Ok(console.show(StatusCode::OK, &title, body))
}

/// An account's sign-in requirement, with its form when the model lets the session change it.
async fn account_controls(state: &AppState, session: &Session, object: &Value, id: &str) -> Markup {
    let current = object["mfa"].as_str().unwrap_or("NONE");
    let may_change = match state.store.find(EntityKind::Account, id).await {
        Ok(Some(Entity::Account(account))) => {
            let mut changed = account.clone();
            changed.mfa = match account.mfa {
                MfaRequirement::Totp => MfaRequirement::None,
                _ => MfaRequirement::Totp,
            };
            let old = Entity::Account(account);
            let new = Entity::Account(changed);
            may(
                state,
                session,
                &Action::Update {
                    old: &old,
                    new: &new,
                },
            )
        }
        _ => false,
    };
    html! {
        section aria-labelledby="mfa" {
            h2 id="mfa" { "Sign-in requirement" }
            p { "Users of this account sign in with: " strong { @if current == "TOTP" { "a password and a TOTP code" } @else { "a password alone (TOTP where the user has a factor)" } } }
            @if may_change {
                form method="post" action={ "/console/r/accounts/" (utf8_percent_encode(id, SEGMENT)) "/mfa" } {
                    (csrf(session))
                    div.field {
                        label for="mfa-setting" { "Require" }
                        select id="mfa-setting" name="mfa" {
                            option value="NONE" selected[current != "TOTP"] { "NONE — a TOTP code only where the user has a factor" }
                            option value="TOTP" selected[current == "TOTP"] { "TOTP — every user signs in with a TOTP code" }
                        }
                    }
                    button type="submit" { "Save the requirement" }
                }
            }
        }
    }
}

/// A user's TOTP factor, with the forms of the admin API's enrol, confirm and remove when the
/// model lets the session try them.
async fn user_controls(state: &AppState, session: &Session, object: &Value, id: &str) -> Markup {
    let status = object["totp"].as_str().unwrap_or("none");
    let user = match state.store.find(EntityKind::User, id).await {
        Ok(Some(Entity::User(user))) => user,
        _ => return html! {},
    };
    let factor = match state.store.find(EntityKind::Totp, id).await {
        Ok(Some(Entity::Totp(factor))) => Some(factor),
        _ => None,
    };
    let now = state.clock.now();
    let may_enrol = status != "confirmed"
        && !user.federated
        && may(
            state,
            session,
            &Action::EnrollFactor {
                user: &user,
                existing: None,
                proof: None,
                now,
            },
        );
    let may_confirm = status == "pending"
        && may(
            state,
            session,
            &Action::ConfirmFactor {
                user: &user,
                replacement: false,
            },
        );
    let may_remove = factor.as_ref().is_some_and(|existing| {
        may(
            state,
            session,
            &Action::RemoveFactor {
                user: &user,
                existing,
                proof: None,
                now,
            },
        )
    });
    let action = format!("/console/r/users/{}/totp", utf8_percent_encode(id, SEGMENT));
    html! {
        section aria-labelledby="totp" {
            h2 id="totp" { "Second factor (TOTP)" }
            p { "State: " strong { (status) }
                @match status {
                    "confirmed" => " — the user signs in with a code of the authenticator app.",
                    "pending" => " — enrolled, counts once confirmed with a first code.",
                    _ => " — no factor.",
                }
            }
            @if may_enrol {
                form method="post" action=(action) {
                    (csrf(session))
                    input type="hidden" name="step" value="enroll";
                    button type="submit" { @if status == "pending" { "Enrol again (a new secret)" } @else { "Enrol a TOTP factor" } }
                }
            }
            @if may_confirm { (code_form(session, &action, "confirm", "Confirm the factor")) }
            @if may_remove { (code_form(session, &action, "remove", "Remove the factor")) }
        }
    }
}

fn code_form(session: &Session, action: &str, step: &str, label: &str) -> Markup {
    let id = format!("code-{step}");
    html! {
        form method="post" action=(action) {
            (csrf(session))
            input type="hidden" name="step" value=(step);
            div.field {
                label for=(id) { "Current code of the authenticator app" }
                input id=(id) name="code" type="text" inputmode="numeric" autocomplete="one-time-code";
            }
            button type="submit" { (label) }
        }
    }
}

/// `POST /console/r/accounts/{id}/mfa`: `PATCH /v1/accounts/{id}` with the chosen requirement.
pub async fn account_mfa(
    console: Console,
    Extension(form): Extension<Form>,
    Path((slug, id)): Path<(String, String)>,
) -> Page {
    let resource = console.resource(&slug, Some(EntityKind::Account))?;
    let path = object_path(resource, &id, "");
    let body = json!({ "mfa": form.get("mfa").unwrap_or("") });
    console.call(Method::PATCH, &path, Some(&body)).await?;
    Ok(Redirect::to(&object_href(resource.slug, &id, None)).into_response())
}

/// `POST /console/r/users/{id}/totp`: the admin API's enrol, confirm or remove of the user's
/// TOTP factor (`step`). An enrolment's secret is shown once, on the page that answers it.
pub async fn user_totp(
    console: Console,
    Extension(form): Extension<Form>,
    Path((slug, id)): Path<(String, String)>,
) -> Page {
    let resource = console.resource(&slug, Some(EntityKind::User))?;
    let user = object_path(resource, &id, "");
    let code = form.get("code").map(|code| json!({ "code": code }));
    let (method, path, body) = match form.get("step") {
        Some("enroll") => (Method::POST, format!("{user}/totp"), None),
        Some("confirm") => (
            Method::POST,
            format!("{user}/totp/confirm"),
            Some(code.unwrap_or_else(|| json!({}))),
        ),
        Some("remove") => (Method::DELETE, format!("{user}/totp"), code),
        _ => {
            return Err(console.error(StatusCode::BAD_REQUEST, "Choose enroll, confirm or remove."))
        }
    };
    let answer = console.call(method, &path, body.as_ref()).await?;
    let back = object_href(resource.slug, &id, None);
    let Some(secret) = answer["secret"].as_str() else {
        return Ok(Redirect::to(&back).into_response());
    };
    let action = format!("{back}/totp");
    let body = html! {
        p role="status" { "Enrolled a TOTP factor for " strong { (id) } ". Add it to an authenticator app, then confirm it with a first code: it counts only once confirmed." }
        (pages::secret_once("TOTP secret", secret))
        @if let Some(uri) = answer["otpauth_uri"].as_str() {
            p { "Or, for apps that take a link: " code { (uri) } }
        }
        (code_form(&console.session, &action, "confirm", "Confirm the factor"))
        p { a href=(back) { "Back to the user" } }
    };
    Ok(console.show(StatusCode::CREATED, "TOTP factor enrolled", body))
}

/// `GET /console/audit/{id}`: one event, every field (`?account_id=` as the list was read, so
/// an account administrator reads its own account's events).
pub async fn audit_event(console: Console, Path(id): Path<String>, Query(params): Params) -> Page {
    let no_such = || console.error(StatusCode::NOT_FOUND, "There is no such audit event.");
    let Some(before) = id
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .and_then(|id| id.checked_add(1))
    else {
        return Err(no_such());
    };
    let before = before.to_string();
    let path = with_query(
        paths::AUDIT,
        &[
            ("account_id", param(&params, "account_id")),
            ("before", &before),
            ("limit", "1"),
        ],
    );
    let listed = console.call(Method::GET, &path, None).await?;
    let Some(event) = listed["events"]
        .as_array()
        .and_then(|events| events.first())
        .filter(|event| text(&event["id"]) == id)
    else {
        return Err(no_such());
    };
    let actor = text(&event["actor"]);
    let target_kind = event["target_kind"].as_str().unwrap_or("");
    let target = resources::RESOURCES
        .iter()
        .find(|r| r.kind.as_str() == target_kind)
        .map(|r| {
            object_href(
                r.slug,
                &text(&event["target_id"]),
                event["account_id"].as_str(),
            )
        });
    let body = html! {
        (facts(event))
        section aria-labelledby="related" {
            h2 id="related" { "Related" }
            ul {
                @if let Some(href) = identity_href(&actor) { li { a href=(href) { "The actor" } } }
                li { a href=(with_query("/console/audit", &[("actor", &actor), ("account_id", param(&params, "account_id"))])) { "Other events of the actor" } }
                @if let Some(href) = target { li { a href=(href) { "The target (if it still exists)" } } }
            }
        }
        p { a href=(with_query("/console/audit", &[("account_id", param(&params, "account_id"))])) { "Back to the audit log" } }
    };
    Ok(console.show(StatusCode::OK, &format!("Audit event {id}"), body))
}
