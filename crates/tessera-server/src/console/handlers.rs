//! The console's pages. Reads and writes are admin API calls ([`AdminApi::call`]) with the
//! session's token; a refusal is rendered with the admin API's status and message. The model
//! (`authz::authorize`) is asked only whether to draw a write control.

use super::backend::{with_query, AdminApi, Refusal};
use super::pages::{self, csrf, page, render, table, text};
use super::resources::{self, Resource};
use super::session::{self, Form, Session};
use super::{details, forms};
use crate::http::{PeerAddr, RequestContext};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::rejection::ExtensionRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use base64::Engine;
use maud::{html, Markup};
use serde_json::{json, Value};
use std::collections::HashMap;
use tessera_api::paths;
use tessera_core::authz::{self, Action};
use tessera_core::directory::{Entity, EntityKind};
use tessera_core::model::{Account, MfaRequirement, ServiceAccount};

type Params = Query<HashMap<String, String>>;

/// How many objects a list page shows.
const PAGE: usize = 50;
/// The admin API's list filters a list page passes on (besides `account_id`).
const LIST_FILTERS: [&str; 5] = [
    "owner_iam_id",
    "service_account_id",
    "subject_iam_id",
    "source_iam_id",
    "resource",
];

pub(super) fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> &'a str {
    params.get(name).map(|v| v.trim()).unwrap_or("")
}

pub(super) fn refused(session: &Session, refusal: Refusal) -> Response {
    pages::error_page(Some(session), refusal.status, &refusal.message)
}

/// What a console handler answers: its page, or the page of why not (a refusal, no such
/// list). The error is boxed, since a response is large and the error path the rare one.
pub(super) type Page = Result<Response, ErrorPage>;

/// The error page a handler answers instead of the one asked for.
pub(super) struct ErrorPage(Box<Response>);

impl From<Response> for ErrorPage {
    fn from(response: Response) -> Self {
        ErrorPage(Box::new(response))
    }
}

impl IntoResponse for ErrorPage {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// What every signed-in page works with: the in-process admin API, the request and its
/// session (the extensions the console's router and `require_session` put on the request).
pub(super) struct Console {
    api: AdminApi,
    ctx: RequestContext,
    pub(super) session: Session,
}

impl<S: Send + Sync> FromRequestParts<S> for Console {
    type Rejection = ExtensionRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Extension(api) = Extension::from_request_parts(parts, state).await?;
        let Extension(ctx) = Extension::from_request_parts(parts, state).await?;
        let Extension(session) = Extension::from_request_parts(parts, state).await?;
        Ok(Console { api, ctx, session })
    }
}

impl Console {
    /// One admin API call with the session's token: its answer, or the page of its refusal.
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ErrorPage> {
        self.api
            .call(&self.ctx, &self.session.token, method, path, body)
            .await
            .map_err(|refusal| refused(&self.session, refusal).into())
    }

    /// The resource a `/console/r/{slug}` path names (of `kind`, on a page for one kind only),
    /// or the page saying there is no such list.
    pub(super) fn resource(
        &self,
        slug: &str,
        kind: Option<EntityKind>,
    ) -> Result<&'static Resource, ErrorPage> {
        resources::find(slug)
            .filter(|r| kind.is_none_or(|kind| r.kind == kind))
            .ok_or_else(|| unknown(&self.session).into())
    }

    /// A page of the signed-in console.
    pub(super) fn show(&self, status: StatusCode, title: &str, body: Markup) -> Response {
        render(status, page(Some(&self.session), title, body))
    }

    /// An error page of the signed-in console.
    pub(super) fn error(&self, status: StatusCode, message: &str) -> ErrorPage {
        pages::error_page(Some(&self.session), status, message).into()
    }
}

pub(super) fn may(state: &AppState, session: &Session, action: &Action<'_>) -> bool {
    authz::authorize(&state.snapshot.directory(), &session.principal, action).is_ok()
}

/// Whether to draw the create form of `resource`: the model's answer for creating an object
/// in `account` (an account or enterprise for installation-wide resources; a service account
/// standing for the account's administration otherwise). The admin API decides the real
/// request.
fn may_create(state: &AppState, session: &Session, resource: &Resource, account: &str) -> bool {
    let probe = match resource.kind {
        EntityKind::Account | EntityKind::Enterprise => Entity::Account(Account {
            id: "0".repeat(32),
            name: "probe".into(),
            enterprise_id: None,
            mfa: MfaRequirement::default(),
            created_at: 0,
        }),
        _ => Entity::ServiceAccount(ServiceAccount {
            id: "ServiceId-probe".into(),
            account_id: account.to_owned(),
            name: "probe".into(),
            description: String::new(),
            created_at: 0,
        }),
    };
    let own_key = resource.kind == EntityKind::ApiKey
        && session.principal.kind() == tessera_core::model::SubjectKind::User;
    own_key || may(state, session, &Action::Create(&probe))
}

/// The store key of a listed object (OAuth clients are keyed `<account>/<id>`).
pub(super) fn store_key(kind: EntityKind, row: &Value) -> String {
    let id = text(&row["id"]);
    match (kind, row["account_id"].as_str()) {
        (EntityKind::Client, Some(account)) => format!("{account}/{id}"),
        _ => id,
    }
}

/// Whether the model lets the session delete the object with `key`.
pub(super) async fn may_delete(
    state: &AppState,
    session: &Session,
    kind: EntityKind,
    key: &str,
) -> bool {
    match state.store.find(kind, key).await {
        Ok(Some(entity)) => may(state, session, &Action::Delete(&entity)),
        _ => false,
    }
}

// ---- sign-in and out ----

pub async fn sign_in_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if session::resume(&state, &headers, state.clock.now()).is_ok() {
        return Redirect::to("/console/").into_response();
    }
    sign_in_answer(&state, StatusCode::OK, None)
}

/// The sign-in page with `error`, and a fresh sign-in challenge (cookie and form token).
fn sign_in_answer(state: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let (value, token) = match session::sign_in_challenge(state, state.clock.now()) {
        Ok(challenge) => challenge,
        Err(e) => {
            return pages::error_page(None, StatusCode::SERVICE_UNAVAILABLE, e.message());
        }
    };
    let mut response = render(status, sign_in_page(&token, error));
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::set_sign_in_cookie(state, Some(&value)),
    );
    response
}

fn sign_in_page(csrf: &str, error: Option<&str>) -> Markup {
    let with_key = html! {
        div.field {
            label for="apikey" { "API key" }
            input id="apikey" name="apikey" type="password" required autocomplete="off";
        }
    };
    let with_password = html! {
        div.field {
            label for="username" { "E-mail or user id" }
            input id="username" name="username" type="text" required autocomplete="username";
        }
        div.field {
            label for="password" { "Password" }
            input id="password" name="password" type="password" required autocomplete="current-password";
        }
        div.field {
            label for="otp" { "One-time code (where required)" }
            input id="otp" name="otp" type="text" inputmode="numeric" autocomplete="one-time-code";
        }
        div.field {
            label for="account" { "Account id (if the e-mail is in several)" }
            input id="account" name="account" type="text" autocomplete="off";
        }
    };
    page(
        None,
        "Sign in",
        html! {
            @if let Some(error) = error { p.error role="alert" { (error) } }
            div.columns {
                (sign_in_way(csrf, "with-key", "With an API key", "apikey", with_key, "Sign in with the API key"))
                (sign_in_way(csrf, "with-password", "With a password", "password", with_password, "Sign in with the password"))
            }
        },
    )
}

/// One way of signing in: its section and heading `id`, and its form, which posts `method`
/// with `fields`.
fn sign_in_way(
    csrf: &str,
    id: &str,
    heading: &str,
    method: &str,
    fields: Markup,
    button: &str,
) -> Markup {
    html! {
        section aria-labelledby=(id) {
            h2 id=(id) { (heading) }
            form method="post" action="/console/sign-in" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="method" value=(method);
                (fields)
                button type="submit" { (button) }
            }
        }
    }
}

/// Signs in through the token endpoint's own checks and throttle.
pub async fn sign_in(
    State(state): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let failed = |status: StatusCode, message: &str| sign_in_answer(&state, status, Some(message));
    if let Err(e) = session::same_site(&headers) {
        return failed(StatusCode::FORBIDDEN, &e.to_string());
    }
    let form = match session::read_form(body).await {
        Ok(form) => form,
        Err(e) => return failed(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let now = state.clock.now();
    // Before any credential is looked at: a sign-in forged from elsewhere (login CSRF) has
    // neither the sign-in cookie nor its token.
    if let Err(e) = session::check_sign_in(&state, &headers, form.get("csrf"), now) {
        return failed(StatusCode::FORBIDDEN, &e.to_string());
    }
    let peer = peer.map(|Extension(PeerAddr(addr))| addr.ip());
    let result = match form.get("method") {
        Some("apikey") => {
            let apikey = form.get("apikey").unwrap_or("");
            crate::ibm::apikey_sign_in(&state, apikey, peer)
                .await
                .map_err(|e| match e.status {
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => e,
                    // Whatever was wrong with the key, the answer is the same.
                    _ => crate::ibm::IbmError::new(
                        StatusCode::UNAUTHORIZED,
                        "",
                        "The sign-in failed: the API key is not valid.",
                    ),
                })
        }
        Some("password") => {
            let credentials = crate::ibm::PasswordCredentials {
                username: form.get("username"),
                password: form.get("password"),
                account: form.get("account"),
                otp: form.get("otp"),
            };
            // The grant's own answers: they say nothing of whether a user exists until the
            // password was right.
            crate::ibm::password_sign_in(&state, &credentials, None, peer, now).await
        }
        _ => return failed(StatusCode::BAD_REQUEST, "Choose how to sign in."),
    };
    let principal = match result {
        Ok(principal) => principal,
        Err(e) => {
            let status = match e.status {
                StatusCode::TOO_MANY_REQUESTS => StatusCode::TOO_MANY_REQUESTS,
                s if s.is_server_error() => s,
                _ => StatusCode::UNAUTHORIZED,
            };
            let message = match e.status {
                StatusCode::TOO_MANY_REQUESTS => {
                    "Too many failed attempts from here; wait a minute and try again.".to_owned()
                }
                _ => e.message,
            };
            return failed(status, &message);
        }
    };
    match session::start(&state, &principal, now) {
        Ok(value) => {
            let mut response = Redirect::to("/console/").into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::SET_COOKIE,
                session::set_cookie(&state, Some(&value)),
            );
            // The challenge is spent.
            headers.append(
                header::SET_COOKIE,
                session::set_sign_in_cookie(&state, None),
            );
            response
        }
        Err(e) => failed(StatusCode::SERVICE_UNAVAILABLE, e.message()),
    }
}

pub async fn sign_out(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Extension(session): Extension<Session>,
) -> Response {
    session::end(&state, &session, state.clock.now(), &ctx).await;
    let mut response = Redirect::to("/console/sign-in").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::set_cookie(&state, None));
    response
}

// ---- home ----

pub async fn home(console: Console) -> Page {
    let me = console.call(Method::GET, paths::WHOAMI, None).await?;
    let body = html! {
        dl.facts {
            dt { "Signed in as" } dd { (text(&me["name"])) " (" (text(&me["iam_id"])) ")" }
            dt { "Account" } dd { (text(&me["account_id"])) }
            dt { "Kind" } dd { (text(&me["sub_type"])) }
            dt { "Global administrator" } dd { @if me["global_admin"] == json!(true) { "yes" } @else { "no" } }
        }
        p { "Choose what to manage:" }
        ul.tiles {
            @for r in resources::RESOURCES {
                li { a href={ "/console/r/" (r.slug) } { (r.title) } }
            }
            li { a href="/console/audit" { "Audit log" } }
            li { a href="/console/signing-keys" { "Signing keys" } }
            li { a href="/console/inspect" { "Token inspector" } }
        }
    };
    Ok(console.show(StatusCode::OK, "Console", body))
}

// ---- collections ----

pub(super) fn unknown(session: &Session) -> Response {
    pages::error_page(
        Some(session),
        StatusCode::NOT_FOUND,
        "There is no such list.",
    )
}

pub async fn list(
    State(state): State<AppState>,
    console: Console,
    Path(slug): Path<String>,
    Query(params): Params,
) -> Page {
    let session = &console.session;
    let resource = console.resource(&slug, None)?;
    let search = param(&params, "q").to_lowercase();
    let account = param(&params, "account_id");
    let after = param(&params, "after");
    // A search reads further than one page.
    let limit = if search.is_empty() { PAGE + 1 } else { 1000 };
    let limit = limit.to_string();
    // The admin API's own list filters (a detail page links to its related objects with them).
    let filters: Vec<(&str, &str)> = LIST_FILTERS
        .iter()
        .map(|name| (*name, param(&params, name)))
        .filter(|(_, value)| !value.is_empty())
        .collect();
    let mut query = vec![("account_id", account), ("after", after), ("limit", &limit)];
    query.extend(filters.iter().copied());
    let path = with_query(resource.api, &query);
    let listed = console.call(Method::GET, &path, None).await?;
    let mut rows: Vec<Value> = listed[resource.list_key]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !search.is_empty() {
        rows.retain(|row| {
            [
                "id",
                "name",
                "iam_id",
                "email",
                "subject_iam_id",
                "owner_iam_id",
            ]
            .iter()
            .any(|field| {
                row[*field]
                    .as_str()
                    .is_some_and(|v| v.to_lowercase().contains(&search))
            })
        });
    }
    let more = rows.len() > PAGE;
    rows.truncate(PAGE);
    let mut deletable = Vec::with_capacity(rows.len());
    for row in &rows {
        let key = store_key(resource.kind, row);
        deletable.push((
            key.clone(),
            may_delete(&state, session, resource.kind, &key).await,
        ));
    }
    let scope = if account.is_empty() {
        session.principal.account_id()
    } else {
        account
    };
    let can_create = !resource.create.is_empty() && may_create(&state, session, resource, scope);
    let next_href = rows.last().map(|row| {
        let after = store_key(resource.kind, row);
        let mut query = vec![("account_id", account), ("after", after.as_str())];
        query.extend(filters.iter().copied());
        with_query(&format!("/console/r/{}", resource.slug), &query)
    });
    let body = html! {
        form.filters method="get" action={ "/console/r/" (resource.slug) } role="search" {
            div.field {
                label for="q" { "Search by name or id" }
                input id="q" name="q" type="search" value=(param(&params, "q"));
            }
            div.field {
                label for="account_id" { "Account id" }
                input id="account_id" name="account_id" type="text" value=(account);
            }
            @for (name, value) in &filters {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" { "Search" }
        }
        @if !filters.is_empty() {
            p role="status" {
                "Only those with "
                @for (i, (name, value)) in filters.iter().enumerate() {
                    @if i > 0 { ", " }
                    code { (name) " = " (value) }
                }
                ". " a href={ "/console/r/" (resource.slug) } { "Show all" }
            }
        }
        (table(resource.title, resource.columns, &rows, |row| {
            let key = store_key(resource.kind, row);
            let allowed = deletable.iter().any(|(k, ok)| *k == key && *ok);
            html! {
                a href=(details::row_href(resource, row)) { "Details" span.visually-hidden { " " (text(&row["id"])) } }
                @if allowed {
                    " "
                    a.danger href=(delete_href(resource, row)) { "Delete" span.visually-hidden { " " (text(&row["id"])) } }
                }
            }
        }))
        @if more {
            @if let Some(next) = &next_href {
                p { a rel="next" href=(next) { "Next page" } }
            }
        }
        @if can_create { (pages::create_form(session, resource, None, None, 1)) }
    };
    Ok(console.show(StatusCode::OK, resource.title, body))
}

pub(super) fn delete_href(resource: &Resource, row: &Value) -> String {
    let id = text(&row["id"]);
    let id = percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC);
    let base = format!("/console/r/{}/{id}/delete", resource.slug);
    match (resource.kind, row["account_id"].as_str()) {
        (EntityKind::Client, Some(account)) => with_query(&base, &[("account_id", account)]),
        _ => base,
    }
}

/// The admin API path of one object (`?account_id=` addresses an OAuth client).
pub(super) fn object_path(resource: &Resource, id: &str, account: &str) -> String {
    let id = percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC);
    let base = format!("{}/{id}", resource.api);
    match resource.kind {
        EntityKind::Client => with_query(&base, &[("account_id", account)]),
        _ => base,
    }
}

pub async fn create(
    console: Console,
    Extension(form): Extension<Form>,
    Path(slug): Path<String>,
) -> Page {
    let session = &console.session;
    let resource = console.resource(&slug, None)?;
    if resource.create.is_empty() {
        return Err(console.error(
            StatusCode::BAD_REQUEST,
            "The console does not create these; use the admin API or the CLI.",
        ));
    }
    let form_title = format!("Create {}", resource.noun);
    // "More rows" of the trusted-profile editor: the form again, nothing sent.
    if resource.trust_editor && form.get("more").is_some() {
        let again = pages::create_form(session, resource, Some(&form), None, 3);
        return Ok(console.show(StatusCode::OK, &form_title, again));
    }
    let body = forms::request_body(resource, &form);
    // The admin API itself, not `Console::call`: a refusal of bad input is shown with the form.
    let created = match console
        .api
        .call(
            &console.ctx,
            &session.token,
            Method::POST,
            resource.api,
            Some(&body),
        )
        .await
    {
        Ok(created) => created,
        // Bad input: the admin API's message next to the form, the values kept.
        Err(refusal) if refusal.status == StatusCode::BAD_REQUEST => {
            let again =
                pages::create_form(session, resource, Some(&form), Some(&refusal.message), 1);
            return Ok(console.show(StatusCode::BAD_REQUEST, &form_title, again));
        }
        Err(refusal) => return Err(refused(session, refusal).into()),
    };
    let secret = html! {
        @if let Some(key) = created["apikey"].as_str() { (pages::secret_once("API key", key)) }
        @if let Some(secret) = created["secret"].as_str() { (pages::secret_once("Client secret", secret)) }
        @if created["key_file"].is_object() {
            (pages::download_once("Key file", "authorized_key.json", &serde_json::to_string_pretty(&created["key_file"]).unwrap_or_default()))
        }
    };
    let body = html! {
        p role="status" { "Created " (resource.noun) " " strong { (text(&created["id"])) } "." }
        (secret)
        p { a href={ "/console/r/" (resource.slug) } { "Back to " (resource.title) } }
    };
    Ok(console.show(
        StatusCode::CREATED,
        &format!("{} created", resource.noun),
        body,
    ))
}

pub async fn confirm_delete(
    console: Console,
    Path((slug, id)): Path<(String, String)>,
    Query(params): Params,
) -> Page {
    let resource = console.resource(&slug, None)?;
    let path = object_path(resource, &id, param(&params, "account_id"));
    let object = console.call(Method::GET, &path, None).await?;
    let name = object["name"].as_str().unwrap_or("");
    let body = html! {
        p.warning role="alert" {
            "Delete " (resource.noun) " " strong { (name) } " (" code { (id) } ")? "
            "This cannot be undone."
        }
        p { strong { "It takes with it: " } (resource.cascade) }
        form method="post" action=(delete_href(resource, &object)) {
            (csrf(&console.session))
            input type="hidden" name="confirm" value="yes";
            button.danger type="submit" { "Delete " (resource.noun) " " (id) }
            " "
            a href={ "/console/r/" (resource.slug) } { "Cancel" }
        }
    };
    Ok(console.show(StatusCode::OK, &format!("Delete {}", resource.noun), body))
}

pub async fn delete(
    console: Console,
    Extension(form): Extension<Form>,
    Path((slug, id)): Path<(String, String)>,
    Query(params): Params,
) -> Page {
    let resource = console.resource(&slug, None)?;
    if form.get("confirm") != Some("yes") {
        return Err(console.error(
            StatusCode::BAD_REQUEST,
            "A delete must be confirmed on its confirmation page.",
        ));
    }
    let path = object_path(resource, &id, param(&params, "account_id"));
    console.call(Method::DELETE, &path, None).await?;
    Ok(Redirect::to(&format!("/console/r/{}", resource.slug)).into_response())
}

// ---- audit log ----

const AUDIT_FILTERS: [(&str, &str); 5] = [
    ("account_id", "Account id"),
    ("actor", "Actor (iam id or system)"),
    ("action", "Kind (e.g. api_key.delete, or api_key. for all)"),
    ("since", "Since (RFC 3339)"),
    ("until", "Until (RFC 3339)"),
];

pub async fn audit(console: Console, Query(params): Params) -> Page {
    let mut query: Vec<(&str, &str)> = AUDIT_FILTERS
        .iter()
        .map(|(name, _)| (*name, param(&params, name)))
        .collect();
    query.push(("before", param(&params, "before")));
    query.push(("limit", "50"));
    let listed = console
        .call(Method::GET, &with_query(paths::AUDIT, &query), None)
        .await?;
    let events = listed["events"].as_array().cloned().unwrap_or_default();
    let columns = [
        ("Id", "id"),
        ("At", "at"),
        ("Actor", "actor"),
        ("Kind", "action"),
        ("Target", "target_id"),
        ("Account", "account_id"),
        ("Details", "detail"),
        ("Request", "request_id"),
    ];
    // The next page: the same filters, before the last event shown.
    let older = events.last().filter(|_| events.len() == 50).map(|e| {
        let before = text(&e["id"]);
        let mut query: Vec<(&str, &str)> = AUDIT_FILTERS
            .iter()
            .map(|(name, _)| (*name, param(&params, name)))
            .collect();
        query.push(("before", &before));
        with_query("/console/audit", &query)
    });
    let body = html! {
        form.filters method="get" action="/console/audit" role="search" {
            @for (name, label) in AUDIT_FILTERS {
                div.field {
                    label for=(name) { (label) }
                    input id=(name) name=(name) type="text" value=(param(&params, name));
                }
            }
            button type="submit" { "Filter" }
        }
        (table("Audit events, newest first", &columns, &events, |event| {
            let href = with_query(
                &format!("/console/audit/{}", text(&event["id"])),
                &[("account_id", param(&params, "account_id"))],
            );
            html! { a href=(href) { "Details" span.visually-hidden { " of event " (text(&event["id"])) } } }
        }))
        @if let Some(older) = &older {
            p { a rel="next" href=(older) { "Older events" } }
        }
    };
    Ok(console.show(StatusCode::OK, "Audit log", body))
}

// ---- signing keys ----

pub async fn signing_keys(State(state): State<AppState>, console: Console) -> Page {
    let session = &console.session;
    let listed = console.call(Method::GET, paths::SIGNING_KEYS, None).await?;
    let keys = listed["signing_keys"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let columns = [
        ("Key id", "kid"),
        ("Use", "use"),
        ("Algorithm", "algorithm"),
        ("State", "state"),
        ("Created", "created_at"),
        ("Retired", "retired_at"),
        ("Published", "published"),
    ];
    let body = html! {
        p { "Each key is published in the JWKS before it signs (state next), signs while active, and stays published after it is retired until every token it signed has expired; then it is removed." }
        (table("Signing keys, oldest first", &columns, &keys, |_| html! {}))
        @if may(&state, session, &Action::RotateSigningKeys) {
            section aria-labelledby="rotate" {
                h2 id="rotate" { "Rotate now" }
                form method="post" action="/console/signing-keys/rotate" {
                    (csrf(session))
                    div.field {
                        label for="use" { "Keys" }
                        select id="use" name="use" {
                            option value="jwt" { "jwt — IBM-surface JWTs" }
                            option value="yandex-iam" { "yandex-iam — t1. IAM tokens" }
                        }
                    }
                    div.field.check {
                        input id="immediate" name="immediate" type="checkbox" value="true";
                        label for="immediate" { "Replace the signer at once (otherwise a successor is published now and signs after the JWKS cache time)" }
                    }
                    button type="submit" { "Rotate now" }
                }
            }
        }
    };
    Ok(console.show(StatusCode::OK, "Signing keys", body))
}

pub async fn rotate(console: Console, Extension(form): Extension<Form>) -> Page {
    let body = json!({
        "use": form.get("use").unwrap_or("jwt"),
        "immediate": form.get("immediate") == Some("true"),
    });
    console
        .call(Method::POST, paths::SIGNING_KEYS_ROTATE, Some(&body))
        .await?;
    Ok(Redirect::to("/console/signing-keys").into_response())
}

// ---- token inspector ----

pub async fn inspect_form(Extension(session): Extension<Session>) -> Response {
    render(
        StatusCode::OK,
        page(Some(&session), "Token inspector", inspector(&session, None)),
    )
}

fn inspector(session: &Session, result: Option<Markup>) -> Markup {
    html! {
        p { "Paste an access token (a JWT or a t1. IAM token). It is sent in the form body only, checked as a presented token would be, and never logged or stored." }
        form method="post" action="/console/inspect" {
            (csrf(session))
            div.field {
                label for="token" { "Token" }
                textarea id="token" name="token" rows="6" required autocomplete="off" spellcheck="false" {}
            }
            button type="submit" { "Inspect" }
        }
        @if let Some(result) = result { (result) }
    }
}

pub async fn inspect(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(form): Extension<Form>,
) -> Response {
    let token = form.get("token").unwrap_or("");
    let now = state.clock.now();
    let verdict = state.authenticate_token(token, now);
    let parts = decode_parts(token);
    let result = html! {
        section aria-labelledby="verdict" {
            h2 id="verdict" { "Result" }
            @match &verdict {
                Ok((_, presented)) => {
                    p.ok role="status" { "Signature valid, token active." }
                    dl.facts {
                        dt { "Subject" } dd { (presented.iam_id()) }
                        dt { "Token id" } dd { (presented.jti()) }
                        dt { "Issued" } dd { (crate::rfc3339::from_unix(presented.iat())) }
                        dt { "Expires" } dd { (crate::rfc3339::from_unix(presented.exp())) " (in " (presented.exp().saturating_sub(now)) " s)" }
                    }
                }
                Err(e) => p.error role="alert" { "Not active: " (e.message()) }
            }
            @for (label, value) in &parts {
                h3 { (label) }
                pre { (serde_json::to_string_pretty(value).unwrap_or_default()) }
            }
        }
    };
    render(
        StatusCode::OK,
        page(
            Some(&session),
            "Token inspector",
            inspector(&session, Some(result)),
        ),
    )
}

/// The JSON parts of a compact token, decoded without verification: a JWT's header and
/// claims, a `t1.` token's claims.
fn decode_parts(token: &str) -> Vec<(&'static str, Value)> {
    let decode = |segment: &str| -> Option<Value> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segment.trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let segments: Vec<&str> = token.split('.').collect();
    match segments.as_slice() {
        ["t1", claims, ..] => decode(claims)
            .map(|c| vec![("Claims (unverified)", c)])
            .unwrap_or_default(),
        [header, claims, _] => {
            let mut out = Vec::new();
            if let Some(h) = decode(header) {
                out.push(("Header (unverified)", h));
            }
            if let Some(c) = decode(claims) {
                out.push(("Claims (unverified)", c));
            }
            out
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_parts_decode_without_trusting_them() {
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let jwt = format!(
            "{}.{}.sig",
            b64(&json!({"alg": "RS256"})),
            b64(&json!({"sub": "x"}))
        );
        let parts = decode_parts(&jwt);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].1["sub"], "x");
        assert!(decode_parts("garbage").is_empty());
        assert!(decode_parts("a.b.c").is_empty());
    }
}
