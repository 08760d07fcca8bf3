//! The OpenAPI 3.1 document of the admin API, built from one table of resources so that it
//! cannot drift from the routes' shapes by omission.

use axum::Json;
use serde_json::{json, Map, Value};

struct ResourceDoc {
    plural: &'static str,
    title: &'static str,
    create: Value,
    object: Value,
    filters: &'static [&'static str],
}

fn string() -> Value {
    json!({"type": "string"})
}

fn object(required: &[&str], props: &[(&str, Value)]) -> Value {
    let mut properties = Map::new();
    for (name, schema) in props {
        properties.insert((*name).to_owned(), schema.clone());
    }
    json!({"type": "object", "required": required, "properties": properties, "additionalProperties": false})
}

fn resources() -> Vec<ResourceDoc> {
    let ts = || json!({"type": "string", "format": "date-time"});
    vec![
        ResourceDoc {
            plural: "enterprises",
            title: "Enterprise",
            create: object(&["name"], &[("name", string())]),
            object: object(
                &["id", "name", "created_at"],
                &[("id", string()), ("name", string()), ("created_at", ts())],
            ),
            filters: &[],
        },
        ResourceDoc {
            plural: "accounts",
            title: "Account",
            create: object(
                &["name"],
                &[("name", string()), ("enterprise_id", string())],
            ),
            object: object(
                &["id", "name", "created_at"],
                &[
                    ("id", string()),
                    ("name", string()),
                    ("enterprise_id", json!({"type": ["string", "null"]})),
                    ("mfa", json!({"enum": ["NONE", "TOTP"]})),
                    ("created_at", ts()),
                ],
            ),
            filters: &[],
        },
        ResourceDoc {
            plural: "users",
            title: "User",
            create: object(
                &["name", "email"],
                &[
                    ("account_id", string()),
                    ("name", string()),
                    ("email", string()),
                    (
                        "password",
                        json!({"type": "string", "minLength": 8, "writeOnly": true}),
                    ),
                    ("federated", json!({"type": "boolean"})),
                ],
            ),
            object: object(
                &[
                    "id",
                    "iam_id",
                    "account_id",
                    "name",
                    "email",
                    "federated",
                    "has_password",
                    "created_at",
                ],
                &[
                    ("id", string()),
                    ("iam_id", string()),
                    ("account_id", string()),
                    ("name", string()),
                    ("email", string()),
                    ("federated", json!({"type": "boolean"})),
                    ("has_password", json!({"type": "boolean"})),
                    (
                        "totp",
                        json!({"enum": ["none", "pending", "confirmed"], "description": "The user's TOTP factor."}),
                    ),
                    ("created_at", ts()),
                ],
            ),
            filters: &["account_id"],
        },
        ResourceDoc {
            plural: "service_accounts",
            title: "ServiceAccount",
            create: object(
                &["name"],
                &[
                    ("account_id", string()),
                    ("name", string()),
                    ("description", string()),
                ],
            ),
            object: object(
                &[
                    "id",
                    "iam_id",
                    "account_id",
                    "name",
                    "description",
                    "created_at",
                ],
                &[
                    ("id", string()),
                    ("iam_id", string()),
                    ("account_id", string()),
                    ("name", string()),
                    ("description", string()),
                    ("created_at", ts()),
                ],
            ),
            filters: &["account_id"],
        },
        ResourceDoc {
            plural: "api_keys",
            title: "ApiKey",
            create: object(
                &["owner_iam_id", "name"],
                &[
                    ("owner_iam_id", string()),
                    ("name", string()),
                    ("description", string()),
                ],
            ),
            object: object(
                &[
                    "id",
                    "name",
                    "description",
                    "owner_iam_id",
                    "account_id",
                    "created_at",
                ],
                &[
                    ("id", string()),
                    ("name", string()),
                    ("description", string()),
                    ("owner_iam_id", string()),
                    ("account_id", string()),
                    ("created_at", ts()),
                    (
                        "apikey",
                        json!({"type": "string", "description": "Only in the create response; shown once."}),
                    ),
                ],
            ),
            filters: &["account_id", "owner_iam_id"],
        },
        ResourceDoc {
            plural: "clients",
            title: "Client",
            create: object(
                &["id"],
                &[
                    (
                        "id",
                        json!({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}),
                    ),
                    ("name", string()),
                    ("account_id", string()),
                ],
            ),
            object: object(
                &["id", "name", "created_at"],
                &[
                    ("id", string()),
                    ("name", string()),
                    ("account_id", json!({"type": ["string", "null"]})),
                    ("created_at", ts()),
                    (
                        "secret",
                        json!({"type": "string", "description": "Only in the create response; shown once."}),
                    ),
                ],
            ),
            filters: &["account_id"],
        },
        ResourceDoc {
            plural: "authorized_keys",
            title: "AuthorizedKey",
            create: object(
                &["service_account_id"],
                &[
                    ("service_account_id", string()),
                    (
                        "key_algorithm",
                        json!({"enum": ["RSA_2048", "RSA_4096"], "default": "RSA_2048"}),
                    ),
                    ("description", string()),
                ],
            ),
            object: object(
                &[
                    "id",
                    "service_account_id",
                    "account_id",
                    "description",
                    "key_algorithm",
                    "public_key",
                    "created_at",
                ],
                &[
                    ("id", string()),
                    ("service_account_id", string()),
                    ("account_id", string()),
                    ("description", string()),
                    ("key_algorithm", json!({"enum": ["RSA_2048", "RSA_4096"]})),
                    (
                        "public_key",
                        json!({"type": "string", "description": "PEM, SubjectPublicKeyInfo (BEGIN PUBLIC KEY)."}),
                    ),
                    ("created_at", ts()),
                    (
                        "key_file",
                        json!({
                            "description": "Only in the create response; shown once. The authorized key file as `yc iam key create` writes it; the private key is not stored.",
                            "type": "object",
                            "required": ["id", "service_account_id", "created_at", "key_algorithm", "public_key", "private_key"],
                            "additionalProperties": false,
                            "properties": {
                                "id": string(),
                                "service_account_id": string(),
                                "created_at": ts(),
                                "key_algorithm": {"enum": ["RSA_2048", "RSA_4096"]},
                                "public_key": string(),
                                "private_key": {"type": "string", "description": "PKCS#8 PEM (BEGIN PRIVATE KEY)."},
                            },
                        }),
                    ),
                ],
            ),
            filters: &["account_id", "service_account_id"],
        },
        ResourceDoc {
            plural: "oauth_tokens",
            title: "OAuthToken",
            create: object(
                &["user_id"],
                &[("user_id", string()), ("description", string())],
            ),
            object: object(
                &["id", "user_id", "account_id", "description", "created_at"],
                &[
                    ("id", string()),
                    ("user_id", string()),
                    ("account_id", string()),
                    ("description", string()),
                    ("created_at", ts()),
                    (
                        "token",
                        json!({"type": "string", "description": "Only in the create response; shown once (y0_…)."}),
                    ),
                ],
            ),
            filters: &["account_id", "user_id"],
        },
        ResourceDoc {
            plural: "access_bindings",
            title: "AccessBinding",
            create: object(
                &["subject_iam_id", "role", "resource"],
                &[
                    ("subject_iam_id", string()),
                    (
                        "role",
                        json!({"enum": ["admin", "viewer", "iam.serviceAccounts.tokenCreator", "iam.serviceAccounts.user"]}),
                    ),
                    (
                        "resource",
                        json!({"type": "string", "description": "'*', 'account/<id>' or 'service-account/<id>'"}),
                    ),
                ],
            ),
            object: object(
                &["id", "subject_iam_id", "role", "resource", "created_at"],
                &[
                    ("id", string()),
                    ("subject_iam_id", string()),
                    ("role", string()),
                    ("resource", string()),
                    ("created_at", ts()),
                ],
            ),
            filters: &["subject_iam_id", "resource"],
        },
        ResourceDoc {
            plural: "trusted_issuers",
            title: "TrustedIssuer",
            create: object(
                &["name", "issuer_url"],
                &[
                    ("account_id", string()),
                    ("name", string()),
                    (
                        "issuer_url",
                        json!({"type": "string", "description": "The exact iss of its tokens: https, or http on a loopback host; no query or fragment."}),
                    ),
                    (
                        "jwks",
                        json!({"type": "object", "description": "Inline JWKS ({\"keys\": [...]}); give this or jwks_file."}),
                    ),
                    (
                        "jwks_file",
                        json!({"type": "string", "description": "Absolute path of a JWKS file on the server, re-read when it changes (global administrator only)."}),
                    ),
                    (
                        "audiences",
                        json!({"type": "array", "items": {"type": "string"}, "default": ["iam"]}),
                    ),
                    (
                        "cr_type",
                        json!({"enum": ["IKS_SA", "ROKS_SA", "CE", "VSI", "BMS", "PVS"], "default": "IKS_SA"}),
                    ),
                    (
                        "crn",
                        json!({"type": "string", "description": "The compute resource's CRN; default crn:v1:tessera:public:containers-kubernetes::a/<account>::cluster:<issuer id>."}),
                    ),
                    (
                        "claim_mapping",
                        json!({"type": "object", "additionalProperties": {"type": "string"}, "description": "Compute-resource claim -> dotted path in the token."}),
                    ),
                ],
            ),
            object: object(
                &[
                    "id",
                    "account_id",
                    "name",
                    "issuer_url",
                    "jwks",
                    "audiences",
                    "cr_type",
                    "crn",
                    "claim_mapping",
                    "created_at",
                ],
                &[
                    ("id", string()),
                    ("account_id", string()),
                    ("name", string()),
                    ("issuer_url", string()),
                    (
                        "jwks",
                        json!({"type": "object", "description": "{\"inline\": {JWKS}} or {\"file\": \"/path\"}"}),
                    ),
                    (
                        "audiences",
                        json!({"type": "array", "items": {"type": "string"}}),
                    ),
                    ("cr_type", string()),
                    ("crn", string()),
                    (
                        "claim_mapping",
                        json!({"type": "object", "additionalProperties": {"type": "string"}}),
                    ),
                    ("created_at", ts()),
                ],
            ),
            filters: &["account_id"],
        },
        ResourceDoc {
            plural: "trusted_profiles",
            title: "TrustedProfile",
            create: {
                let mut create = profile_document();
                create["properties"]["account_id"] =
                    json!({"type": "string", "description": "Default: the caller's account."});
                create
            },
            object: object(
                &[
                    "id",
                    "iam_id",
                    "crn",
                    "account_id",
                    "name",
                    "description",
                    "identities",
                    "links",
                    "rules",
                    "created_at",
                ],
                &[
                    ("id", string()),
                    ("iam_id", string()),
                    ("crn", string()),
                    ("account_id", string()),
                    ("name", string()),
                    ("description", string()),
                    (
                        "identities",
                        json!({"type": "array", "items": trusted_identity()}),
                    ),
                    ("links", json!({"type": "array", "items": profile_link()})),
                    ("rules", json!({"type": "array", "items": claim_rule()})),
                    ("created_at", ts()),
                ],
            ),
            filters: &["account_id"],
        },
        ResourceDoc {
            plural: "authorization_policies",
            title: "AuthorizationPolicy",
            create: object(
                &["source_iam_id", "target_crn"],
                &[
                    (
                        "account_id",
                        json!({"type": "string", "description": "The target's account; default: the target CRN's a/<account> scope, else the caller's account. Must equal that scope when both are given."}),
                    ),
                    (
                        "source_iam_id",
                        json!({"type": "string", "description": "IBMid-…, iam-ServiceId-… (or ServiceId-…), iam-Profile-…, or crn-<CRN>"}),
                    ),
                    (
                        "target_crn",
                        json!({"type": "string", "description": "A CRN, or a CRN prefix ending in '*' (starting with crn:v1:)"}),
                    ),
                    ("description", string()),
                ],
            ),
            object: object(
                &[
                    "id",
                    "account_id",
                    "source_iam_id",
                    "target_crn",
                    "description",
                    "created_at",
                ],
                &[
                    ("id", string()),
                    ("account_id", string()),
                    ("source_iam_id", string()),
                    ("target_crn", string()),
                    ("description", string()),
                    ("created_at", ts()),
                ],
            ),
            filters: &["account_id", "source_iam_id"],
        },
    ]
}

fn trusted_identity() -> Value {
    object(
        &["type", "identifier"],
        &[
            ("type", json!({"enum": ["user", "serviceid", "crn"]})),
            (
                "identifier",
                json!({"type": "string", "description": "IBMid-… (user), iam-ServiceId-… or ServiceId-… (serviceid), crn:v1:… (crn)"}),
            ),
            (
                "accounts",
                json!({"type": "array", "items": {"type": "string"}, "description": "Users only: accounts whose tokens of the user are trusted (default: the user's own)."}),
            ),
        ],
    )
}

fn profile_link() -> Value {
    object(
        &["cr_type", "crn"],
        &[
            (
                "id",
                json!({"type": "string", "description": "Link-…; generated when absent"}),
            ),
            (
                "cr_type",
                json!({"enum": ["IKS_SA", "ROKS_SA", "CE", "VSI", "BMS", "PVS"]}),
            ),
            ("crn", string()),
            (
                "namespace",
                json!({"type": "string", "description": "IKS_SA, ROKS_SA"}),
            ),
            (
                "name",
                json!({"type": "string", "description": "IKS_SA, ROKS_SA (service account)"}),
            ),
            (
                "component_type",
                json!({"type": "string", "description": "CE"}),
            ),
            (
                "component_name",
                json!({"type": "string", "description": "CE"}),
            ),
        ],
    )
}

fn claim_rule() -> Value {
    let condition = object(
        &["claim", "operator", "value"],
        &[
            ("claim", string()),
            (
                "operator",
                json!({"enum": ["EQUALS", "NOT_EQUALS", "EQUALS_IGNORE_CASE", "NOT_EQUALS_IGNORE_CASE", "CONTAINS", "IN"]}),
            ),
            (
                "value",
                json!({"type": "string", "description": "JSON-encoded: a string, number or boolean; a JSON array for IN"}),
            ),
        ],
    );
    object(
        &["type", "cr_type", "conditions"],
        &[
            (
                "id",
                json!({"type": "string", "description": "ClaimRule-…; generated when absent"}),
            ),
            ("name", string()),
            ("type", json!({"enum": ["Profile-CR"]})),
            (
                "cr_type",
                json!({"enum": ["IKS_SA", "ROKS_SA", "CE", "VSI", "BMS", "PVS"]}),
            ),
            (
                "conditions",
                json!({"type": "array", "minItems": 1, "maxItems": 20, "items": condition}),
            ),
        ],
    )
}

/// The body of a profile's create (plus `account_id`) and replace.
fn profile_document() -> Value {
    object(
        &["name"],
        &[
            ("name", string()),
            ("description", string()),
            (
                "identities",
                json!({"type": "array", "maxItems": 100, "items": trusted_identity()}),
            ),
            (
                "links",
                json!({"type": "array", "maxItems": 100, "items": profile_link()}),
            ),
            (
                "rules",
                json!({"type": "array", "maxItems": 100, "items": claim_rule()}),
            ),
        ],
    )
}

fn error_responses(mut responses: Map<String, Value>) -> Value {
    for (status, what) in [
        ("400", "invalid_argument"),
        ("401", "unauthenticated"),
        ("403", "permission_denied"),
        ("404", "not_found"),
        ("409", "already_exists or failed_precondition"),
    ] {
        responses.insert(status.into(), json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}));
    }
    Value::Object(responses)
}

pub fn document() -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "properties": {"error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "request_id": {"type": "string"}}}}}),
    );
    for r in resources() {
        let create_name = format!("{}Create", r.title);
        schemas.insert(r.title.into(), r.object.clone());
        schemas.insert(create_name.clone(), r.create.clone());
        let obj_ref = json!({"$ref": format!("#/components/schemas/{}", r.title)});
        let mut params: Vec<Value> = r
            .filters
            .iter()
            .map(|f| json!({"name": f, "in": "query", "schema": {"type": "string"}}))
            .collect();
        params.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}));
        params.push(json!({"name": "after", "in": "query", "schema": {"type": "string"}}));
        let mut list_ok = Map::new();
        list_ok.insert("200".into(), json!({"description": "the list", "content": {"application/json": {"schema": {"type": "object", "properties": {r.plural: {"type": "array", "items": obj_ref}}}}}}));
        let mut create_ok = Map::new();
        create_ok.insert(
            "201".into(),
            json!({"description": "created", "content": {"application/json": {"schema": obj_ref}}}),
        );
        paths.insert(
            format!("/v1/{}", r.plural),
            json!({
                "get": {"summary": format!("List {}", r.plural), "parameters": params, "responses": error_responses(list_ok)},
                "post": {"summary": format!("Create a {}", r.title), "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{create_name}")}}}}, "responses": error_responses(create_ok)},
            }),
        );
        let mut get_ok = Map::new();
        get_ok.insert("200".into(), json!({"description": "the object", "content": {"application/json": {"schema": obj_ref}}}));
        let mut delete_ok = Map::new();
        delete_ok.insert("204".into(), json!({"description": "deleted"}));
        paths.insert(
            format!("/v1/{}/{{id}}", r.plural),
            json!({
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": {"summary": format!("Get a {}", r.title), "responses": error_responses(get_ok)},
                "delete": {"summary": format!("Delete a {}", r.title), "responses": error_responses(delete_ok)},
            }),
        );
    }
    schemas.insert("TrustedProfileReplace".into(), profile_document());
    let mut replace_ok = Map::new();
    replace_ok.insert("200".into(), json!({"description": "the replaced profile", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TrustedProfile"}}}}));
    if let Some(Value::Object(item)) = paths.get_mut("/v1/trusted_profiles/{id}") {
        item.insert("put".into(), json!({"summary": "Replace a TrustedProfile's name, description, identities, links and rules", "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TrustedProfileReplace"}}}}, "responses": error_responses(replace_ok)}));
    }
    let mut whoami_ok = Map::new();
    whoami_ok.insert("200".into(), json!({"description": "the caller", "content": {"application/json": {"schema": {"type": "object", "properties": {"iam_id": {"type": "string"}, "name": {"type": "string"}, "account_id": {"type": "string"}, "sub_type": {"type": "string"}, "email": {"type": "string", "nullable": true, "description": "the address GCE-format answers use (service accounts: <name>@<account>.iam.tessera)"}, "global_admin": {"type": "boolean"}}}}}}));
    let mut id_token_ok = Map::new();
    id_token_ok.insert("200".into(), json!({"description": "a signed ID token for the caller", "content": {"application/json": {"schema": {"type": "object", "properties": {"id_token": {"type": "string"}, "expires_in": {"type": "integer"}}}}}}));
    paths.insert("/v1/id_tokens".into(), json!({"post": {"summary": "An OpenID Connect ID token for the caller, addressed to an audience (what the metadata agent serves at service-accounts/.../identity); verify it with /identity/keys", "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["audience"], "properties": {"audience": {"type": "string", "maxLength": 1024}, "format": {"type": "string", "enum": ["standard", "full"]}, "compute_engine": {"type": "object", "description": "full format: instance attributes placed under google.compute_engine"}}}}}}, "responses": error_responses(id_token_ok)}}));
    paths.insert("/v1/whoami".into(), json!({"get": {"summary": "The authenticated caller", "responses": error_responses(whoami_ok)}}));
    let mut audit_ok = Map::new();
    audit_ok.insert(
        "200".into(),
        json!({"description": "recent audit events, newest first"}),
    );
    paths.insert("/v1/audit".into(), json!({"get": {"summary": "Audit log (global administrator)", "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}], "responses": error_responses(audit_ok)}}));
    signing_key_paths(&mut paths, &mut schemas);
    trusted_issuer_update(&mut paths, &mut schemas);
    mfa_paths(&mut paths, &mut schemas);
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Tessera admin API", "version": "v1", "description": "Manage identities, credentials and access bindings. Authenticate with an IAM access token: Authorization: Bearer <token>."},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    })
}

/// `/v1/signing_keys` and `/v1/signing_keys/rotate` (global administrator).
fn signing_key_paths(paths: &mut Map<String, Value>, schemas: &mut Map<String, Value>) {
    let ts = json!({"type": "string", "format": "date-time"});
    schemas.insert(
        "SigningKey".into(),
        object(
            &[
                "kid",
                "algorithm",
                "use",
                "state",
                "created_at",
                "retired_at",
                "published",
            ],
            &[
                ("kid", string()),
                (
                    "algorithm",
                    json!({"enum": ["RS256", "PS256", "ES256", "EdDSA"]}),
                ),
                ("use", json!({"enum": ["jwt", "yandex-iam"]})),
                ("state", json!({"enum": ["next", "active", "retired"]})),
                ("created_at", ts.clone()),
                (
                    "retired_at",
                    json!({"type": ["string", "null"], "format": "date-time"}),
                ),
                (
                    "published",
                    json!({"type": "boolean", "description": "The key is in this node's JWKS."}),
                ),
            ],
        ),
    );
    schemas.insert(
        "SigningKeyRotate".into(),
        object(
            &["use"],
            &[
                ("use", json!({"enum": ["jwt", "yandex-iam"]})),
                (
                    "immediate",
                    json!({"type": "boolean", "default": false, "description": "Replace the signer at once instead of publishing a successor that signs after the publication lead."}),
                ),
            ],
        ),
    );
    let key_list = json!({"type": "object", "properties": {"signing_keys": {"type": "array", "items": {"$ref": "#/components/schemas/SigningKey"}}}});
    let mut list_ok = Map::new();
    list_ok.insert(
        "200".into(),
        json!({"description": "every stored signing key, by kid", "content": {"application/json": {"schema": key_list}}}),
    );
    paths.insert(
        "/v1/signing_keys".into(),
        json!({"get": {"summary": "List signing keys (global administrator)", "responses": error_responses(list_ok.clone())}}),
    );
    schemas.insert(
        "TokenCutoff".into(),
        object(
            &["iam_id"],
            &[(
                "iam_id",
                json!({"type": "string", "description": "The identity whose tokens issued up to now stop working."}),
            )],
        ),
    );
    let mut cutoff_ok = Map::new();
    cutoff_ok.insert(
        "201".into(),
        json!({"description": "every access, refresh and delegated refresh token of the identity issued before not_before is revoked", "content": {"application/json": {"schema": {"type": "object", "properties": {"iam_id": {"type": "string"}, "not_before": {"type": "string", "format": "date-time"}}}}}}),
    );
    paths.insert(
        "/v1/token_cutoffs".into(),
        json!({"post": {"summary": "Revoke every token of an identity (admin of its account)", "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenCutoff"}}}}, "responses": error_responses(cutoff_ok)}}),
    );
    let mut rotate_ok = list_ok;
    rotate_ok.insert(
        "503".into(),
        json!({"description": "unavailable: another node is rotating keys right now", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
    );
    paths.insert(
        "/v1/signing_keys/rotate".into(),
        json!({"post": {"summary": "Rotate signing keys now (global administrator); answers the key list", "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SigningKeyRotate"}}}}, "responses": error_responses(rotate_ok)}}),
    );
}

/// `PUT /v1/trusted_issuers/{id}`: key rotation and audience or mapping changes.
fn trusted_issuer_update(paths: &mut Map<String, Value>, schemas: &mut Map<String, Value>) {
    schemas.insert(
        "TrustedIssuerUpdate".into(),
        object(
            &[],
            &[
                ("jwks", json!({"type": "object"})),
                ("jwks_file", string()),
                (
                    "audiences",
                    json!({"type": "array", "items": {"type": "string"}}),
                ),
                (
                    "claim_mapping",
                    json!({"type": "object", "additionalProperties": {"type": "string"}}),
                ),
            ],
        ),
    );
    let mut ok = Map::new();
    ok.insert("200".into(), json!({"description": "the updated issuer", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TrustedIssuer"}}}}));
    if let Some(Value::Object(item)) = paths.get_mut("/v1/trusted_issuers/{id}") {
        item.insert(
            "put".into(),
            json!({"summary": "Replace a trusted issuer's keys, audiences or claim mapping (fields given replace; at least one)", "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TrustedIssuerUpdate"}}}}, "responses": error_responses(ok)}),
        );
    }
}

/// `PATCH /v1/accounts/{id}` and the TOTP factor routes of `/v1/users/{id}/totp`.
fn mfa_paths(paths: &mut Map<String, Value>, schemas: &mut Map<String, Value>) {
    let ts = json!({"type": "string", "format": "date-time"});
    schemas.insert(
        "AccountUpdate".into(),
        object(
            &[],
            &[(
                "mfa",
                json!({"enum": ["TOTP", "NONE"], "description": "TOTP: users of the account need a confirmed TOTP factor and a code to log in with a password."}),
            )],
        ),
    );
    schemas.insert(
        "TotpEnrollment".into(),
        object(
            &["user_id", "secret", "otpauth_uri", "confirmed", "created_at"],
            &[
                ("user_id", string()),
                (
                    "secret",
                    json!({"type": "string", "description": "Base32 secret; shown only in this response."}),
                ),
                ("otpauth_uri", string()),
                ("confirmed", json!({"type": "boolean"})),
                ("created_at", ts.clone()),
            ],
        ),
    );
    schemas.insert(
        "TotpStatus".into(),
        object(
            &["user_id", "confirmed", "created_at"],
            &[
                ("user_id", string()),
                ("confirmed", json!({"type": "boolean"})),
                ("created_at", ts),
            ],
        ),
    );
    schemas.insert(
        "TotpConfirm".into(),
        object(
            &["code"],
            &[("code", json!({"type": "string", "pattern": "^[0-9]{6}$"}))],
        ),
    );
    let body = |schema: &str| json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    let ok = |status: &str, schema: &str| {
        let mut map = Map::new();
        map.insert(status.into(), json!({"description": "ok", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}));
        error_responses(map)
    };
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
    if let Some(Value::Object(account)) = paths.get_mut("/v1/accounts/{id}") {
        account.insert(
            "patch".into(),
            json!({"summary": "Update an account's MFA requirement (account administrator)", "requestBody": body("AccountUpdate"), "responses": ok("200", "Account")}),
        );
    }
    let mut deleted = Map::new();
    deleted.insert("204".into(), json!({"description": "deleted"}));
    paths.insert(
        "/v1/users/{id}/totp".into(),
        json!({
            "parameters": id,
            "post": {"summary": "Enrol a TOTP factor (the user or an account administrator); the secret is shown once", "parameters": [{"name": "replace", "in": "query", "schema": {"type": "boolean", "default": false}}], "responses": ok("201", "TotpEnrollment")},
            "delete": {"summary": "Delete the user's TOTP factor", "responses": error_responses(deleted)},
        }),
    );
    paths.insert(
        "/v1/users/{id}/totp/confirm".into(),
        json!({"parameters": id, "post": {"summary": "Confirm the TOTP factor with a first code", "requestBody": body("TotpConfirm"), "responses": ok("200", "TotpStatus")}}),
    );
}

pub async fn openapi_get() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    #[test]
    fn document_lists_every_resource() {
        let doc = super::document();
        for plural in [
            "enterprises",
            "accounts",
            "users",
            "service_accounts",
            "api_keys",
            "clients",
            "authorized_keys",
            "oauth_tokens",
            "access_bindings",
            "authorization_policies",
            "trusted_issuers",
        ] {
            assert!(
                doc["paths"][format!("/v1/{plural}")]["post"].is_object(),
                "{plural}"
            );
            assert!(
                doc["paths"][format!("/v1/{plural}/{{id}}")]["delete"].is_object(),
                "{plural}"
            );
        }
        assert!(doc["paths"]["/v1/trusted_issuers/{id}"]["put"].is_object());
        assert!(doc["paths"]["/v1/signing_keys"]["get"].is_object());
        assert!(doc["paths"]["/v1/token_cutoffs"]["post"].is_object());
        assert!(doc["paths"]["/v1/signing_keys/rotate"]["post"].is_object());
        assert!(doc["paths"]["/v1/accounts/{id}"]["patch"].is_object());
        assert!(doc["paths"]["/v1/users/{id}/totp"]["post"].is_object());
        assert!(doc["paths"]["/v1/users/{id}/totp/confirm"]["post"].is_object());
        assert_eq!(
            doc["components"]["schemas"]["AuthorizedKey"]["properties"]["key_file"]["required"],
            serde_json::json!([
                "id",
                "service_account_id",
                "created_at",
                "key_algorithm",
                "public_key",
                "private_key"
            ])
        );
        assert_eq!(
            doc["components"]["schemas"]["SigningKeyRotate"]["required"],
            serde_json::json!(["use"])
        );
    }
}
