//! `GET /openapi.json`: the OpenAPI 3.1 document of the admin API and of the token surfaces a
//! resource service or script calls, generated from the wire types of `tessera_api` (their
//! `ToSchema` derives state every validation rule) and from the route paths of
//! `tessera_api::paths`.
//!
//! The admin resources share their list/get/delete handlers (one generic handler per verb), so
//! their operations are declared here from one table ([`RESOURCES`]) rather than by
//! `#[utoipa::path]` on each handler; the table's unit test and the e2e test check that every
//! route the router serves is in the document. Each create operation links to the get, update
//! and delete of what it created (OpenAPI links), which schema-driven fuzzers follow.

use axum::Json;
use std::sync::OnceLock;
use tessera_api::admin::*;
use tessera_api::error::ErrorBody;
use tessera_api::paths;
use tessera_api::token::*;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder};
use utoipa::{IntoParams, OpenApi};

/// The component schemas (and, through them, every schema they refer to).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "Self-hosted cloud IAM token service: the admin API (`/v1`, bearer IAM \
                       token of an administrator) and the token surfaces (IBM `/identity/*`, \
                       OIDC discovery and keys, Yandex `/iam/v1/*`). Contract: docs/admin-api.md."
    ),
    components(schemas(
        ErrorBody,
        WhoAmI,
        AuditList,
        EnterpriseCreate,
        EnterpriseView,
        EnterpriseList,
        AccountCreate,
        AccountUpdate,
        AccountView,
        AccountList,
        UserCreate,
        UserView,
        UserList,
        ServiceAccountCreate,
        ServiceAccountView,
        ServiceAccountList,
        ApiKeyCreate,
        ApiKeyView,
        ApiKeyList,
        ClientCreate,
        ClientView,
        ClientList,
        AuthorizedKeyCreate,
        AuthorizedKeyView,
        AuthorizedKeyList,
        OAuthTokenCreate,
        OAuthTokenView,
        OAuthTokenList,
        AccessBindingCreate,
        AccessBindingView,
        AccessBindingList,
        TrustedProfileCreate,
        TrustedProfileReplace,
        TrustedProfileView,
        TrustedProfileList,
        TrustedIssuerCreate,
        TrustedIssuerUpdate,
        TrustedIssuerView,
        TrustedIssuerList,
        AuthorizationPolicyCreate,
        AuthorizationPolicyView,
        AuthorizationPolicyList,
        SigningKeyRotate,
        SigningKeyList,
        TokenCutoffCreate,
        TokenCutoffView,
        IdTokenCreate,
        IdTokenView,
        CodeBody,
        ConfirmCodeBody,
        TotpEnrollView,
        TotpStatusView,
        IbmTokenRequest,
        IbmTokenResponse,
        IbmErrorBody,
        TokenForm,
        OAuthErrorBody,
        Introspection,
        Jwks,
        Discovery,
        YandexTokenCreate,
        YandexTokenForServiceAccount,
        YandexIamToken,
        YandexRevoked,
        YandexErrorBody,
    ))
)]
struct Components;

/// How an admin resource is served: which verbs, which bodies.
struct Resource {
    /// The collection path and the item path (`…/{id}`).
    collection: &'static str,
    item: &'static str,
    /// Operation id stem, singular (`Account`).
    name: &'static str,
    create: Option<&'static str>,
    view: &'static str,
    list: &'static str,
    /// The body of `PATCH` (partial) or `PUT` (replace) on the item, if it has one.
    update: Option<(HttpMethod, &'static str)>,
    /// Whether get/delete take `?account_id=` (OAuth clients).
    addressed_by_account: bool,
    /// The list filters this resource honours (besides `limit` and `after`). At most one of
    /// the owner spellings and one of the subject spellings each: the server refuses two.
    filters: &'static [&'static str],
}

const RESOURCES: &[Resource] = &[
    Resource {
        collection: paths::ENTERPRISES,
        item: paths::ENTERPRISE,
        name: "Enterprise",
        create: Some("EnterpriseCreate"),
        view: "EnterpriseView",
        list: "EnterpriseList",
        update: None,
        addressed_by_account: false,
        filters: &[],
    },
    Resource {
        collection: paths::ACCOUNTS,
        item: paths::ACCOUNT,
        name: "Account",
        create: Some("AccountCreate"),
        view: "AccountView",
        list: "AccountList",
        update: Some((HttpMethod::Patch, "AccountUpdate")),
        addressed_by_account: false,
        filters: &[],
    },
    Resource {
        collection: paths::USERS,
        item: paths::USER,
        name: "User",
        create: Some("UserCreate"),
        view: "UserView",
        list: "UserList",
        update: None,
        addressed_by_account: false,
        filters: &["account_id"],
    },
    Resource {
        collection: paths::SERVICE_ACCOUNTS,
        item: paths::SERVICE_ACCOUNT,
        name: "ServiceAccount",
        create: Some("ServiceAccountCreate"),
        view: "ServiceAccountView",
        list: "ServiceAccountList",
        update: None,
        addressed_by_account: false,
        filters: &["account_id"],
    },
    Resource {
        collection: paths::API_KEYS,
        item: paths::API_KEY,
        name: "ApiKey",
        create: Some("ApiKeyCreate"),
        view: "ApiKeyView",
        list: "ApiKeyList",
        update: None,
        addressed_by_account: false,
        filters: &["account_id", "owner_iam_id"],
    },
    Resource {
        collection: paths::CLIENTS,
        item: paths::CLIENT,
        name: "Client",
        create: Some("ClientCreate"),
        view: "ClientView",
        list: "ClientList",
        update: None,
        addressed_by_account: true,
        filters: &["account_id"],
    },
    Resource {
        collection: paths::AUTHORIZED_KEYS,
        item: paths::AUTHORIZED_KEY,
        name: "AuthorizedKey",
        create: Some("AuthorizedKeyCreate"),
        view: "AuthorizedKeyView",
        list: "AuthorizedKeyList",
        update: None,
        addressed_by_account: false,
        filters: &["account_id", "service_account_id"],
    },
    Resource {
        collection: paths::OAUTH_TOKENS,
        item: paths::OAUTH_TOKEN,
        name: "OAuthToken",
        create: Some("OAuthTokenCreate"),
        view: "OAuthTokenView",
        list: "OAuthTokenList",
        update: None,
        addressed_by_account: false,
        filters: &["account_id", "user_id"],
    },
    Resource {
        collection: paths::ACCESS_BINDINGS,
        item: paths::ACCESS_BINDING,
        name: "AccessBinding",
        create: Some("AccessBindingCreate"),
        view: "AccessBindingView",
        list: "AccessBindingList",
        update: None,
        addressed_by_account: false,
        filters: &["subject_iam_id", "resource"],
    },
    Resource {
        collection: paths::TRUSTED_PROFILES,
        item: paths::TRUSTED_PROFILE,
        name: "TrustedProfile",
        create: Some("TrustedProfileCreate"),
        view: "TrustedProfileView",
        list: "TrustedProfileList",
        update: Some((HttpMethod::Put, "TrustedProfileReplace")),
        addressed_by_account: false,
        filters: &["account_id"],
    },
    Resource {
        collection: paths::TRUSTED_ISSUERS,
        item: paths::TRUSTED_ISSUER,
        name: "TrustedIssuer",
        create: Some("TrustedIssuerCreate"),
        view: "TrustedIssuerView",
        list: "TrustedIssuerList",
        update: Some((HttpMethod::Put, "TrustedIssuerUpdate")),
        addressed_by_account: false,
        filters: &["account_id"],
    },
    Resource {
        collection: paths::AUTHORIZATION_POLICIES,
        item: paths::AUTHORIZATION_POLICY,
        name: "AuthorizationPolicy",
        create: Some("AuthorizationPolicyCreate"),
        view: "AuthorizationPolicyView",
        list: "AuthorizationPolicyList",
        update: None,
        addressed_by_account: false,
        filters: &["account_id", "source_iam_id"],
    },
];

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

fn json_response(description: &str, schema: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(schema)))
            .build(),
    )
}

fn json_body(schema: &str, required: bool) -> Option<utoipa::openapi::request_body::RequestBody> {
    Some(
        RequestBodyBuilder::new()
            .required(Some(if required {
                Required::True
            } else {
                Required::False
            }))
            .content(
                JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
            )
            .build(),
    )
}

fn form_body(schema: &str) -> Option<utoipa::openapi::request_body::RequestBody> {
    Some(
        RequestBodyBuilder::new()
            .required(Some(Required::True))
            .content(
                FORM,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
            )
            .build(),
    )
}

fn error(description: &str) -> ResponseBuilder {
    json_response(description, "ErrorBody")
}

fn id_parameter() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::String)
                .min_length(Some(1))
                .max_length(Some(tessera_core::limits::MAX_ID))
                // ASCII (so characters are bytes, as the server counts) and every id's alphabet;
                // `(?!\n)` because Python's `$` also matches before a final newline.
                .pattern(Some(r"^[A-Za-z0-9._-]{1,64}(?!\n)$")),
        ))
        .build()
}

/// An admin operation: bearer-authenticated, with the admin error responses.
fn admin_operation(id: &str, summary: &str) -> OperationBuilder {
    OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary))
        .tag("admin")
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .response(
            "400",
            error("Invalid request: the message says what is wrong"),
        )
        .response("401", error("No or an invalid bearer token"))
        .response("403", error("The caller may not do this"))
        .response("413", error("The body is larger than 64 KiB"))
        .response("429", error("Too many attempts"))
        .response("503", error("The store is unavailable"))
}

fn token_operation(id: &str, summary: &str, tag: &str) -> OperationBuilder {
    OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary))
        .tag(tag)
}

fn link(operation_id: &str) -> utoipa::openapi::link::Link {
    LinkBuilder::new()
        .operation_id(operation_id)
        .parameter("id", "$response.body#/id")
        .build()
}

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Components::openapi();
    let mut paths_ = utoipa::openapi::Paths::new();
    let list_params = |filters: &[&str]| {
        ListQuery::into_params(|| Some(ParameterIn::Query))
            .into_iter()
            .filter(|p| {
                matches!(p.name.as_str(), "limit" | "after") || filters.contains(&p.name.as_str())
            })
            .collect::<Vec<_>>()
    };
    let object_params = || ObjectQuery::into_params(|| Some(ParameterIn::Query));

    for r in RESOURCES {
        let name = r.name;
        paths_.add_path_operation(
            r.collection,
            vec![HttpMethod::Get],
            admin_operation(
                &format!("list{name}"),
                &format!("List {name} objects the caller may read"),
            )
            .parameters(Some(list_params(r.filters)))
            .response("200", json_response("The objects", r.list)),
        );
        if let Some(create) = r.create {
            let mut created = json_response("Created", r.view)
                .link(format!("Get{name}"), link(&format!("get{name}")))
                .link(format!("Delete{name}"), link(&format!("delete{name}")));
            if r.update.is_some() {
                created = created.link(format!("Update{name}"), link(&format!("update{name}")));
            }
            paths_.add_path_operation(
                r.collection,
                vec![HttpMethod::Post],
                admin_operation(&format!("create{name}"), &format!("Create a {name}"))
                    .request_body(json_body(create, true))
                    .response("201", created)
                    .response("404", error("A referenced object does not exist"))
                    .response("409", error("An object of that name or id exists already")),
            );
        }
        let item = |op: OperationBuilder| {
            let op = op.parameter(id_parameter());
            if r.addressed_by_account {
                op.parameters(Some(object_params()))
            } else {
                op
            }
        };
        paths_.add_path_operation(
            r.item,
            vec![HttpMethod::Get],
            item(admin_operation(
                &format!("get{name}"),
                &format!("Get a {name}"),
            ))
            .response("200", json_response("The object", r.view))
            .response("404", error("No such object")),
        );
        paths_.add_path_operation(
            r.item,
            vec![HttpMethod::Delete],
            item(admin_operation(
                &format!("delete{name}"),
                &format!("Delete a {name}"),
            ))
            .response("204", ResponseBuilder::new().description("Deleted"))
            .response("404", error("No such object")),
        );
        if let Some((method, body)) = &r.update {
            paths_.add_path_operation(
                r.item,
                vec![method.clone()],
                item(admin_operation(
                    &format!("update{name}"),
                    &format!("Update a {name}"),
                ))
                .request_body(json_body(body, true))
                .response("200", json_response("The updated object", r.view))
                .response("404", error("No such object"))
                .response("409", error("The new name is taken")),
            );
        }
    }

    paths_.add_path_operation(
        paths::WHOAMI,
        vec![HttpMethod::Get],
        admin_operation("whoami", "Who the bearer token stands for")
            .response("200", json_response("The caller", "WhoAmI")),
    );
    paths_.add_path_operation(
        paths::AUDIT,
        vec![HttpMethod::Get],
        admin_operation("listAudit", "The audit log, newest first")
            .parameters(Some(AuditQuery::into_params(|| Some(ParameterIn::Query))))
            .response("200", json_response("Events", "AuditList")),
    );
    paths_.add_path_operation(
        paths::USER_TOTP,
        vec![HttpMethod::Post],
        admin_operation(
            "enrollTotp",
            "Enrol a TOTP factor for a user (the secret is shown once)",
        )
        .parameter(id_parameter())
        .parameters(Some(EnrollQuery::into_params(|| Some(ParameterIn::Query))))
        .request_body(json_body("CodeBody", false))
        .response(
            "201",
            json_response("Enrolled, not yet confirmed", "TotpEnrollView"),
        )
        .response("404", error("No such user"))
        .response(
            "409",
            error("A confirmed factor exists; replace it with ?replace=true"),
        ),
    );
    paths_.add_path_operation(
        paths::USER_TOTP,
        vec![HttpMethod::Delete],
        admin_operation("deleteTotp", "Remove a user's TOTP factor")
            .parameter(id_parameter())
            .request_body(json_body("CodeBody", false))
            .response("204", ResponseBuilder::new().description("Removed"))
            .response("404", error("No such user or factor")),
    );
    paths_.add_path_operation(
        paths::USER_TOTP_CONFIRM,
        vec![HttpMethod::Post],
        admin_operation("confirmTotp", "Confirm an enrolled TOTP factor with a code")
            .parameter(id_parameter())
            .request_body(json_body("ConfirmCodeBody", true))
            .response("200", json_response("Confirmed", "TotpStatusView"))
            .response("404", error("No such user or factor")),
    );
    paths_.add_path_operation(
        paths::SIGNING_KEYS,
        vec![HttpMethod::Get],
        admin_operation("listSigningKeys", "Every signing key, by kid")
            .response("200", json_response("The keys", "SigningKeyList")),
    );
    paths_.add_path_operation(
        paths::SIGNING_KEYS_ROTATE,
        vec![HttpMethod::Post],
        admin_operation(
            "rotateSigningKeys",
            "Rotate the signing keys of one use now",
        )
        .request_body(json_body("SigningKeyRotate", true))
        .response(
            "200",
            json_response("The keys after the rotation", "SigningKeyList"),
        ),
    );
    paths_.add_path_operation(
        paths::TOKEN_CUTOFFS,
        vec![HttpMethod::Post],
        admin_operation(
            "createTokenCutoff",
            "Revoke every token of an identity issued until now",
        )
        .request_body(json_body("TokenCutoffCreate", true))
        .response("201", json_response("The cut-off", "TokenCutoffView"))
        .response("404", error("No such identity")),
    );
    paths_.add_path_operation(
        paths::ID_TOKENS,
        vec![HttpMethod::Post],
        admin_operation("createIdToken", "Mint an OIDC ID token for the caller")
            .request_body(json_body("IdTokenCreate", true))
            .response("200", json_response("The token", "IdTokenView")),
    );
    paths_.add_path_operation(
        paths::OPENAPI,
        vec![HttpMethod::Get],
        token_operation("openapi", "This document", "meta").response(
            "200",
            ResponseBuilder::new()
                .description("OpenAPI 3.1")
                .content(JSON, ContentBuilder::new().build()),
        ),
    );

    // The token surfaces.
    let ibm_error = || json_response("IBM error body", "IbmErrorBody");
    paths_.add_path_operation(
        paths::IBM_TOKEN,
        vec![HttpMethod::Post],
        token_operation(
            "ibmToken",
            "IBM Cloud IAM token endpoint (every grant)",
            "ibm",
        )
        .request_body(form_body("IbmTokenRequest"))
        .response("200", json_response("Tokens", "IbmTokenResponse"))
        .response("400", ibm_error())
        .response("401", ibm_error())
        .response("403", ibm_error())
        .response("429", ibm_error()),
    );
    for (path, id) in [(paths::IBM_KEYS, "ibmKeys"), (paths::JWKS, "jwks")] {
        paths_.add_path_operation(
            path,
            vec![HttpMethod::Get],
            token_operation(id, "The published signing keys (JWKS)", "oidc")
                .response("200", json_response("The key set", "Jwks")),
        );
    }
    for (path, id) in [
        (paths::DISCOVERY, "discovery"),
        (paths::IBM_DISCOVERY, "ibmDiscovery"),
    ] {
        paths_.add_path_operation(
            path,
            vec![HttpMethod::Get],
            token_operation(id, "OpenID Connect discovery", "oidc")
                .response("200", json_response("The configuration", "Discovery")),
        );
    }
    let oauth_error = || json_response("OAuth error", "OAuthErrorBody");
    paths_.add_path_operation(
        paths::INTROSPECT,
        vec![HttpMethod::Post],
        token_operation("introspect", "Token introspection (RFC 7662)", "oidc")
            .request_body(form_body("TokenForm"))
            .response(
                "200",
                json_response(
                    "Whether the token is active, and its claims",
                    "Introspection",
                ),
            )
            .response("400", oauth_error())
            .response("401", oauth_error()),
    );
    paths_.add_path_operation(
        paths::REVOKE,
        vec![HttpMethod::Post],
        token_operation("revoke", "Token revocation (RFC 7009)", "oidc")
            .request_body(form_body("TokenForm"))
            .response(
                "200",
                ResponseBuilder::new().description("Revoked (or unknown)"),
            )
            .response("400", oauth_error())
            .response("401", oauth_error()),
    );
    let yandex_error = || json_response("Yandex error body", "YandexErrorBody");
    paths_.add_path_operation(
        paths::YANDEX_TOKENS,
        vec![HttpMethod::Post],
        token_operation(
            "yandexCreateToken",
            "Yandex Cloud IAM token from an OAuth token or a JWT",
            "yandex",
        )
        .request_body(json_body("YandexTokenCreate", true))
        .response("200", json_response("The IAM token", "YandexIamToken"))
        .response("400", yandex_error())
        .response("401", yandex_error()),
    );
    paths_.add_path_operation(
        paths::YANDEX_TOKENS_FOR_SERVICE_ACCOUNT,
        vec![HttpMethod::Post],
        token_operation(
            "yandexCreateForServiceAccount",
            "An IAM token of a service account, for a caller with the token creator role",
            "yandex",
        )
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .request_body(json_body("YandexTokenForServiceAccount", true))
        .response("200", json_response("The IAM token", "YandexIamToken"))
        .response("400", yandex_error())
        .response("401", yandex_error())
        .response("403", yandex_error()),
    );
    paths_.add_path_operation(
        paths::YANDEX_TOKENS_REVOKE,
        vec![HttpMethod::Post],
        token_operation("yandexRevokeToken", "Revoke an IAM token", "yandex")
            .response("200", json_response("Whose token it was", "YandexRevoked"))
            .response("400", yandex_error()),
    );
    paths_.add_path_operation(
        paths::YANDEX_SERVICE_ACCOUNT,
        vec![HttpMethod::Get],
        token_operation(
            "yandexGetServiceAccount",
            "A service account, Yandex shape",
            "yandex",
        )
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .parameter(id_parameter())
        .response(
            "200",
            ResponseBuilder::new()
                .description("The service account")
                .content(JSON, ContentBuilder::new().build()),
        )
        .response("401", yandex_error())
        .response("404", yandex_error()),
    );
    for (path, id, summary) in [
        (paths::HEALTHZ, "healthz", "Liveness"),
        (
            paths::READYZ,
            "readyz",
            "Readiness (the store answers, the snapshot is loaded)",
        ),
        (paths::METRICS, "metrics", "Prometheus metrics"),
    ] {
        paths_.add_path_operation(
            path,
            vec![HttpMethod::Get],
            token_operation(id, summary, "ops")
                .response("200", ResponseBuilder::new().description("OK"))
                .response("503", ResponseBuilder::new().description("Not ready")),
        );
    }

    doc.paths = paths_;
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "An IAM access token (`POST /identity/token`) of an identity with the \
                     needed access bindings",
                ))
                .build(),
        ),
    );
    doc
}

/// The document, rendered once.
fn rendered() -> &'static serde_json::Value {
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(document()).unwrap_or_default();
        fix_links(&mut doc);
        add_schema_rules(&mut doc);
        doc
    })
}

/// Merges the cross-field rules of `tessera_api::schema_rules` into their component schemas.
fn add_schema_rules(doc: &mut serde_json::Value) {
    for (name, rule) in tessera_api::schema_rules::admin_schema_rules() {
        if let Some(schema) = doc.pointer_mut(&format!("/components/schemas/{name}")) {
            merge(schema, &rule);
        }
    }
}

/// Objects merge key by key (recursively); any other value replaces what was there.
fn merge(target: &mut serde_json::Value, fragment: &serde_json::Value) {
    match (target, fragment) {
        (serde_json::Value::Object(target), serde_json::Value::Object(fragment)) => {
            for (key, value) in fragment {
                match target.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value);
                    }
                    _ => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (target, fragment) => *target = fragment.clone(),
    }
}

/// utoipa 5.5 serializes a link's `operationId` as `operation_id` (and `operationRef` as
/// `operation_ref`); OpenAPI spells them in camel case.
fn fix_links(doc: &mut serde_json::Value) {
    let operations = doc
        .get_mut("paths")
        .and_then(|paths| paths.as_object_mut())
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut());
    for operation in operations {
        let links = operation
            .get_mut("responses")
            .and_then(|responses| responses.as_object_mut())
            .into_iter()
            .flat_map(|responses| responses.values_mut())
            .filter_map(|response| response.get_mut("links"))
            .filter_map(|links| links.as_object_mut())
            .flat_map(|links| links.values_mut())
            .filter_map(|link| link.as_object_mut());
        for link in links {
            for (snake, camel) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
            ] {
                if let Some(value) = link.remove(snake) {
                    link.insert(camel.to_owned(), value);
                }
            }
        }
    }
}

pub async fn openapi_get() -> Json<serde_json::Value> {
    Json(rendered().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn doc() -> Value {
        rendered().clone()
    }

    /// Every `.route(PATH, …)` of this crate's source, as written (a literal or a constant).
    fn routes_in_source() -> Vec<(String, String)> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut routes = Vec::new();
        for file in files {
            // The console's HTML pages are no API: docs/console.md documents them.
            if file.ends_with("api_doc.rs") || file.components().any(|c| c.as_os_str() == "console")
            {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            // A module's own tests (`mod tests`, at its end) may route test handlers.
            let text = text
                .split("#[cfg(test)]\nmod tests {")
                .next()
                .unwrap_or_default();
            for (at, _) in text.match_indices(".route(") {
                let rest = &text[at + ".route(".len()..];
                let arg = rest.split(',').next().unwrap_or("").trim().to_owned();
                // `kit::routes` itself, generic over the collection: resolved at its callers.
                if arg.starts_with("C::") && file.ends_with("kit.rs") {
                    continue;
                }
                routes.push((file.display().to_string(), arg));
            }
            // A collection's list and object routes, declared by `kit::routes::<Name, …>`, or
            // by `kit::collection! { Name, … }` with a create handler (its fifth argument).
            let routed = text.match_indices("kit::routes::<").filter_map(|(at, _)| {
                let rest = &text[at + "kit::routes::<".len()..];
                let name = rest.split(',').next().unwrap_or("").trim();
                // The macro's own call, generic over the collection: resolved at its callers.
                (!name.starts_with('$')).then_some(name)
            });
            let declared = text
                .match_indices("kit::collection! {")
                .filter_map(|(at, _)| {
                    let rest = &text[at + "kit::collection! {".len()..];
                    let args: Vec<&str> = rest.split('}').next().unwrap_or("").split(',').collect();
                    (args.len() == 5).then(|| args[0].trim())
                });
            for name in routed.chain(declared) {
                for path in ["PATH", "ITEM_PATH"] {
                    routes.push((file.display().to_string(), format!("{name}::{path}")));
                }
            }
        }
        routes
    }

    fn resolve(arg: &str) -> Option<String> {
        if let Some(literal) = arg.strip_prefix('"').and_then(|a| a.strip_suffix('"')) {
            return Some(literal.to_owned());
        }
        let known = [
            ("KEYS_PATH", crate::oidc::KEYS_PATH),
            ("JWKS_PATH", crate::oidc::JWKS_PATH),
            ("INTROSPECT_PATH", crate::oidc::INTROSPECT_PATH),
            ("REVOKE_PATH", crate::oidc::REVOKE_PATH),
            ("TOKEN_PATH", crate::ibm::TOKEN_PATH),
            ("tessera_api::paths::OPENAPI", paths::OPENAPI),
        ];
        if let Some((name, path)) = arg.split_once("::") {
            let collection = crate::admin::collection_paths()
                .into_iter()
                .find(|(known, _, _)| *known == name);
            match (collection, path) {
                (Some((_, list, _)), "PATH") => return Some(list.to_owned()),
                (Some((_, _, item)), "ITEM_PATH") => return Some(item.to_owned()),
                _ => {}
            }
        }
        known
            .iter()
            .find(|(name, _)| *name == arg)
            .map(|(_, value)| (*value).to_owned())
    }

    #[test]
    fn every_route_the_server_serves_is_documented() {
        let doc = doc();
        let routes = routes_in_source();
        assert!(routes.len() > 40, "found only {} routes", routes.len());
        for (file, arg) in routes {
            let path = resolve(&arg).unwrap_or_else(|| {
                panic!("{file}: route {arg} is neither a literal nor a known path constant")
            });
            assert!(
                doc["paths"][&path].is_object(),
                "{file}: route {path} is not in /openapi.json"
            );
        }
    }

    #[test]
    fn openapi_3_1_without_3_0_nullable() {
        let doc = doc();
        if let Ok(path) = std::env::var("TESSERA_DUMP_OPENAPI") {
            let _ = std::fs::write(path, doc.to_string());
        }
        assert_eq!(doc["openapi"], "3.1.0");
        let text = doc.to_string();
        assert!(
            !text.contains("\"nullable\""),
            "3.0 `nullable` in a 3.1 document"
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }

    #[test]
    fn whoami_documents_id() {
        let doc = doc();
        let whoami = &doc["components"]["schemas"]["WhoAmI"];
        assert_eq!(whoami["properties"]["id"]["type"], "string");
        assert!(whoami["required"]
            .as_array()
            .is_some_and(|r| r.contains(&Value::from("id"))));
    }

    #[test]
    fn requests_refuse_unknown_fields_and_state_the_core_limits() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        for (name, schema) in schemas.as_object().into_iter().flatten() {
            if name.ends_with("Create") && !name.starts_with("Yandex") {
                assert_eq!(
                    schema["additionalProperties"], false,
                    "{name} must say additionalProperties: false"
                );
            }
        }
        let name = &schemas["ServiceAccountCreate"]["properties"]["name"];
        assert_eq!(name["maxLength"], tessera_core::limits::MAX_NAME);
        assert_eq!(name["minLength"], 1);
        let description = &schemas["ServiceAccountCreate"]["properties"]["description"];
        assert_eq!(
            description["maxLength"],
            tessera_core::limits::MAX_DESCRIPTION
        );
        let email = &schemas["UserCreate"]["properties"]["email"];
        assert_eq!(email["maxLength"], tessera_core::limits::MAX_EMAIL);
        let password = &schemas["UserCreate"]["properties"]["password"];
        assert_eq!(password["minLength"], tessera_core::limits::MIN_PASSWORD);
        assert_eq!(password["maxLength"], tessera_core::limits::MAX_PASSWORD);
        let client_id = &schemas["ClientCreate"]["properties"]["id"];
        assert_eq!(client_id["maxLength"], tessera_core::limits::MAX_CLIENT_ID);
        let audience = &schemas["IdTokenCreate"]["properties"]["audience"];
        assert_eq!(audience["maxLength"], tessera_core::id_token::MAX_AUDIENCE);
    }

    #[test]
    fn creates_link_to_get_update_and_delete() {
        let doc = doc();
        let links = &doc["paths"][paths::ACCOUNTS]["post"]["responses"]["201"]["links"];
        assert_eq!(links["GetAccount"]["operationId"], "getAccount");
        assert_eq!(links["UpdateAccount"]["operationId"], "updateAccount");
        assert_eq!(
            links["DeleteAccount"]["parameters"]["id"],
            "$response.body#/id"
        );
    }

    #[test]
    fn every_schema_rule_refines_a_component() {
        let doc = doc();
        for (name, _) in tessera_api::schema_rules::admin_schema_rules() {
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "schema rule for {name}, which is not a component"
            );
        }
        let schemas = &doc["components"]["schemas"];
        // Cross-field rules the server applies, stated in the document.
        assert!(schemas["UserCreate"]["anyOf"].is_array());
        assert_eq!(
            schemas["TrustedIssuerCreate"]["oneOf"][0]["required"][0],
            "jwks"
        );
        assert_eq!(
            schemas["TrustedIdentity"]["oneOf"][0]["properties"]["type"]["const"],
            "user"
        );
        // The field attributes stay: the merge adds to them.
        assert_eq!(
            schemas["TrustedIssuerCreate"]["properties"]["issuer_url"]["maxLength"],
            512
        );
    }

    #[test]
    fn the_core_cr_types_are_the_schema_enums() {
        use tessera_api::schema_rules::CR_TYPES;
        assert_eq!(CR_TYPES, tessera_core::trusted_profile::CR_TYPES);
        assert_eq!(CR_TYPES, tessera_core::trusted_issuer::CR_TYPES);
        let doc = doc();
        assert_eq!(
            doc["components"]["schemas"]["ComputeResourceLink"]["properties"]["cr_type"]["enum"],
            serde_json::json!(CR_TYPES)
        );
    }

    #[test]
    fn the_core_enums_are_the_schema_enums() {
        let doc = doc();
        let roles = &doc["components"]["schemas"]["RoleName"]["enum"];
        for role in tessera_core::model::Role::ALL {
            assert!(
                roles
                    .as_array()
                    .is_some_and(|r| r.contains(&Value::from(role.as_str()))),
                "role {} missing from the schema",
                role.as_str()
            );
        }
    }
}
