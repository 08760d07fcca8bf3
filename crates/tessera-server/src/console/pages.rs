//! The console's HTML: the page layout and the pieces every page is made of (tables of admin
//! views, forms with the session's CSRF token, confirmations, errors). maud escapes every
//! interpolated value; nothing here is inline script or style (the CSP forbids both).

use super::forms::TrustRows;
use super::resources::{Field, Input, Resource, RESOURCES};
use super::session::{Form, Session};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

/// A whole page: header with navigation and "Sign out" when signed in, then `body`.
pub fn page(session: Option<&Session>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tessera console" }
                link rel="stylesheet" href="/console/static/console.css";
                script src="/console/static/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    a.brand href="/console/" { "Tessera" }
                    @if let Some(session) = session {
                        nav aria-label="Console" {
                            ul {
                                @for r in RESOURCES {
                                    li { a href={ "/console/r/" (r.slug) } { (r.title) } }
                                }
                                li { a href="/console/audit" { "Audit log" } }
                                li { a href="/console/signing-keys" { "Signing keys" } }
                                li { a href="/console/inspect" { "Token inspector" } }
                            }
                        }
                        form.signout method="post" action="/console/sign-out" {
                            (csrf(session))
                            span.who { (session.iam_id()) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field of a form of `session`.
pub fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

pub fn render(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// An error page (the admin API's refusal, a bad form, an unknown page).
pub fn error_page(session: Option<&Session>, status: StatusCode, message: &str) -> Response {
    let title = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::UNAUTHORIZED => "Not signed in",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        s if s.is_client_error() => "Cannot do that",
        _ => "Something went wrong",
    };
    render(
        status,
        page(
            session,
            title,
            html! {
                p.error role="alert" { (message) }
                p { a href="/console/" { "Back to the console" } }
            },
        ),
    )
}

/// A view's field as text: strings as they are, other values as JSON, absent as "—".
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A table of admin views with the given columns; `actions` renders each row's last cell.
pub fn table(
    caption: &str,
    columns: &[(&str, &str)],
    rows: &[Value],
    actions: impl Fn(&Value) -> Markup,
) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { "Nothing to show." }
        } @else {
            div.scroll {
                table {
                    caption { (caption) }
                    thead { tr {
                        @for (heading, _) in columns { th scope="col" { (heading) } }
                        th scope="col" { span.visually-hidden { "Actions" } }
                    } }
                    tbody {
                        @for row in rows {
                            tr {
                                @for (heading, field) in columns {
                                    td data-label=(heading) { (text(&row[*field])) }
                                }
                                td { (actions(row)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The create form of `resource`; `kept` holds the values of a refused attempt (shown again,
/// passwords excepted) and `error` the admin API's message, next to the form. `spare` empty
/// rows of each kind are added to the trusted-profile editor.
pub fn create_form(
    session: &Session,
    resource: &Resource,
    kept: Option<&Form>,
    error: Option<&str>,
    spare: usize,
) -> Markup {
    let empty = Form::default();
    let kept = kept.unwrap_or(&empty);
    html! {
        section aria-labelledby="create" {
            h2 id="create" { "Create " (resource.noun) }
            @if let Some(error) = error {
                p.error role="alert" id="create-error" { (error) }
            }
            form method="post" action={ "/console/r/" (resource.slug) } {
                (csrf(session))
                @for field in resource.create { (input(field, kept.get(field.name).unwrap_or(""))) }
                @if resource.trust_editor { (TrustRows::from_form(kept).editor(spare)) }
                button type="submit" { "Create " (resource.noun) }
            }
        }
    }
}

fn input(field: &Field, current: &str) -> Markup {
    let id = format!("f-{}", field.name);
    html! {
        div.field {
            label for=(id) { (field.label) @if field.required { " (required)" } }
            @match field.input {
                Input::Text => input id=(id) name=(field.name) type="text" required[field.required] value=(current) autocomplete="off";
                // A password is never rendered back.
                Input::Password => input id=(id) name=(field.name) type="password" required[field.required] autocomplete="new-password";
                Input::Json | Input::Lines => textarea id=(id) name=(field.name) rows="4" required[field.required] spellcheck="false" { (current) }
                Input::Choice(options) => {
                    select id=(id) name=(field.name) required[field.required] {
                        @for (value, meaning) in options() {
                            option value=(value) selected[value == current] { (value) " — " (meaning) }
                        }
                    }
                }
            }
            @if !field.hint.is_empty() { small { (field.hint) } }
        }
    }
}

/// A secret shown once, with a copy button (the script enhances it; without script the text
/// is selectable) and the warning that it will not be shown again.
pub fn secret_once(label: &str, secret: &str) -> Markup {
    html! {
        div.secret role="status" {
            p { strong { (label) } " — shown once: copy it now, it cannot be shown again." }
            div.copyrow {
                input id="secret" type="text" readonly value=(secret) aria-label=(label);
                button type="button" class="copy" data-copy="secret" { "Copy" }
            }
        }
    }
}

/// A download offered once (an authorized key's key file), as a `data:` link; the CSP's
/// `default-src 'none'` does not apply to navigations.
pub fn download_once(label: &str, filename: &str, content: &str) -> Markup {
    let href = format!(
        "data:application/json;charset=utf-8,{}",
        percent_encoding::utf8_percent_encode(content, percent_encoding::NON_ALPHANUMERIC)
    );
    html! {
        div.secret role="status" {
            p { strong { (label) } " — offered once: download it now, it cannot be downloaded again." }
            a.button href=(href) download=(filename) { "Download " (filename) }
        }
    }
}
