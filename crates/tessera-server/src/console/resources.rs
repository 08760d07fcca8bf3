//! The admin collections the console shows: for each, its admin API path and list key (from
//! `tessera_api`), the columns of its table, the fields of its create form (sent as the admin
//! API's JSON body) and what deleting one takes with it (the store's cascades).

use tessera_api::paths;
use tessera_core::directory::EntityKind;
use tessera_core::model::Role;

/// A field of a create form, sent as a JSON string member of the admin request.
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub input: Input,
    pub required: bool,
    pub hint: &'static str,
}

pub enum Input {
    Text,
    Password,
    /// A JSON value (a textarea); text that is not JSON is sent as a string, for the admin API
    /// to refuse with its own message.
    Json,
    /// A list of strings, one a line (a textarea).
    Lines,
    /// A choice among values, each with its meaning.
    Choice(fn() -> Vec<(&'static str, &'static str)>),
}

pub struct Resource {
    /// The console path segment: `/console/r/<slug>`.
    pub slug: &'static str,
    pub title: &'static str,
    /// The singular, for confirmations ("Delete service account …").
    pub noun: &'static str,
    pub kind: EntityKind,
    /// The admin API collection path.
    pub api: &'static str,
    /// The key of the admin list body.
    pub list_key: &'static str,
    /// Columns: (heading, field of the view).
    pub columns: &'static [(&'static str, &'static str)],
    /// The create form; empty when the console does not create these.
    pub create: &'static [Field],
    /// Whether the create form has the trusted-profile editor (identities, links and claim
    /// rules as rows: [`super::forms::TrustRows`]).
    pub trust_editor: bool,
    /// What a delete takes with it.
    pub cascade: &'static str,
}

const ACCOUNT_FIELD: Field = Field {
    name: "account_id",
    label: "Account id",
    input: Input::Text,
    required: false,
    hint: "32 hex digits; empty for your own account",
};

fn roles() -> Vec<(&'static str, &'static str)> {
    Role::ALL
        .into_iter()
        .map(|role| (role.as_str(), role.meaning()))
        .collect()
}

pub const RESOURCES: &[Resource] = &[
    Resource {
        slug: "accounts",
        title: "Accounts",
        noun: "account",
        kind: EntityKind::Account,
        api: paths::ACCOUNTS,
        list_key: "accounts",
        columns: &[("Id", "id"), ("Name", "name"), ("Enterprise", "enterprise_id"), ("MFA", "mfa"), ("Created", "created_at")],
        create: &[Field { name: "name", label: "Name", input: Input::Text, required: true, hint: "" }],
        trust_editor: false,
        cascade: "Nothing else: an account is deleted only once it is empty.",
    },
    Resource {
        slug: "enterprises",
        title: "Enterprises",
        noun: "enterprise",
        kind: EntityKind::Enterprise,
        api: paths::ENTERPRISES,
        list_key: "enterprises",
        columns: &[("Id", "id"), ("Name", "name"), ("Created", "created_at")],
        create: &[Field { name: "name", label: "Name", input: Input::Text, required: true, hint: "" }],
        trust_editor: false,
        cascade: "Nothing else: an enterprise is deleted only once no account belongs to it.",
    },
    Resource {
        slug: "users",
        title: "Users",
        noun: "user",
        kind: EntityKind::User,
        api: paths::USERS,
        list_key: "users",
        columns: &[("Id", "id"), ("Name", "name"), ("E-mail", "email"), ("Account", "account_id"), ("TOTP", "totp"), ("Password", "has_password")],
        create: &[
            Field { name: "name", label: "Name", input: Input::Text, required: true, hint: "" },
            Field { name: "email", label: "E-mail", input: Input::Text, required: true, hint: "" },
            Field { name: "password", label: "Password", input: Input::Password, required: false, hint: "for the password sign-in" },
            ACCOUNT_FIELD,
        ],
        trust_editor: false,
        cascade: "The user's API keys, OAuth tokens, TOTP factor, access bindings and the authorization policies it is the source of.",
    },
    Resource {
        slug: "service_accounts",
        title: "Service accounts",
        noun: "service account",
        kind: EntityKind::ServiceAccount,
        api: paths::SERVICE_ACCOUNTS,
        list_key: "service_accounts",
        columns: &[("Id", "id"), ("Name", "name"), ("IAM id", "iam_id"), ("Account", "account_id"), ("Created", "created_at")],
        create: &[
            Field { name: "name", label: "Name", input: Input::Text, required: true, hint: "" },
            Field { name: "description", label: "Description", input: Input::Text, required: false, hint: "" },
            ACCOUNT_FIELD,
        ],
        trust_editor: false,
        cascade: "Its API keys, authorized keys, access bindings and the authorization policies it is the source of; tokens issued from them stop working.",
    },
    Resource {
        slug: "api_keys",
        title: "API keys",
        noun: "API key",
        kind: EntityKind::ApiKey,
        api: paths::API_KEYS,
        list_key: "api_keys",
        columns: &[("Id", "id"), ("Name", "name"), ("Owner", "owner_iam_id"), ("Account", "account_id"), ("Created", "created_at")],
        create: &[
            Field { name: "owner_iam_id", label: "Owner", input: Input::Text, required: true, hint: "a user id (IBMid-…) or a service account's iam id (iam-ServiceId-…)" },
            Field { name: "name", label: "Name", input: Input::Text, required: true, hint: "" },
            Field { name: "description", label: "Description", input: Input::Text, required: false, hint: "" },
        ],
        trust_editor: false,
        cascade: "Every token issued from the key stops working.",
    },
    Resource {
        slug: "authorized_keys",
        title: "Authorized keys",
        noun: "authorized key",
        kind: EntityKind::AuthorizedKey,
        api: paths::AUTHORIZED_KEYS,
        list_key: "authorized_keys",
        columns: &[("Id", "id"), ("Service account", "service_account_id"), ("Algorithm", "key_algorithm"), ("Account", "account_id"), ("Created", "created_at")],
        create: &[
            Field { name: "service_account_id", label: "Service account id", input: Input::Text, required: true, hint: "ServiceId-…" },
            Field { name: "description", label: "Description", input: Input::Text, required: false, hint: "" },
        ],
        trust_editor: false,
        cascade: "Every token obtained with a JWT signed by the key stops working.",
    },
    Resource {
        slug: "clients",
        title: "OAuth clients",
        noun: "OAuth client",
        kind: EntityKind::Client,
        api: paths::CLIENTS,
        list_key: "clients",
        columns: &[("Id", "id"), ("Name", "name"), ("Account", "account_id"), ("Created", "created_at")],
        create: &[
            Field { name: "id", label: "Client id", input: Input::Text, required: true, hint: "" },
            Field { name: "name", label: "Name", input: Input::Text, required: false, hint: "" },
            ACCOUNT_FIELD,
        ],
        trust_editor: false,
        cascade: "Every token and refresh token issued to the client stops working.",
    },
    Resource {
        slug: "access_bindings",
        title: "Access bindings",
        noun: "access binding",
        kind: EntityKind::Binding,
        api: paths::ACCESS_BINDINGS,
        list_key: "access_bindings",
        columns: &[("Id", "id"), ("Subject", "subject_iam_id"), ("Role", "role"), ("Resource", "resource"), ("Created", "created_at")],
        create: &[
            Field { name: "subject_iam_id", label: "Subject", input: Input::Text, required: true, hint: "IBMid-… or iam-ServiceId-…" },
            Field { name: "role", label: "Role", input: Input::Choice(roles), required: true, hint: "" },
            Field { name: "resource", label: "Resource", input: Input::Text, required: true, hint: "account/<id>, service-account/<id> or * (everything)" },
        ],
        trust_editor: false,
        cascade: "The subject loses what the role gave it on the resource.",
    },
    Resource {
        slug: "trusted_profiles",
        title: "Trusted profiles",
        noun: "trusted profile",
        kind: EntityKind::Profile,
        api: paths::TRUSTED_PROFILES,
        list_key: "trusted_profiles",
        columns: &[("Id", "id"), ("Name", "name"), ("CRN", "crn"), ("Account", "account_id"), ("Created", "created_at")],
        create: &[
            Field { name: "name", label: "Name", input: Input::Text, required: true, hint: "" },
            Field { name: "description", label: "Description", input: Input::Text, required: false, hint: "" },
            ACCOUNT_FIELD,
        ],
        trust_editor: true,
        cascade: "Its access bindings and the authorization policies it is the source of; tokens of the profile stop working.",
    },
    Resource {
        slug: "trusted_issuers",
        title: "Trusted issuers",
        noun: "trusted issuer",
        kind: EntityKind::Issuer,
        api: paths::TRUSTED_ISSUERS,
        list_key: "trusted_issuers",
        columns: &[("Id", "id"), ("Name", "name"), ("Issuer URL", "issuer_url"), ("Account", "account_id")],
        create: &[
            Field { name: "name", label: "Name", input: Input::Text, required: true, hint: "" },
            Field { name: "issuer_url", label: "Issuer URL", input: Input::Text, required: true, hint: "the exact iss of its tokens: https://…" },
            Field { name: "jwks", label: "Key set (JWKS)", input: Input::Json, required: false, hint: "{\"keys\": [...]}; or a key file below" },
            Field { name: "jwks_file", label: "Key set file on the server", input: Input::Text, required: false, hint: "an absolute path (global administrators only)" },
            Field { name: "audiences", label: "Audiences", input: Input::Lines, required: false, hint: "one a line" },
            Field { name: "cr_type", label: "Compute-resource type", input: Input::Text, required: false, hint: "IKS_SA, ROKS_SA, CE, VSI, BMS or PVS" },
            Field { name: "crn", label: "CRN", input: Input::Text, required: false, hint: "default: one made for the issuer" },
            Field { name: "claim_mapping", label: "Claim mapping", input: Input::Json, required: false, hint: "JSON: {\"claim of the profile rules\": \"claim of the token\"}" },
            ACCOUNT_FIELD,
        ],
        trust_editor: false,
        cascade: "Its compute-resource tokens are no longer accepted.",
    },
    Resource {
        slug: "authorization_policies",
        title: "Authorization policies",
        noun: "authorization policy",
        kind: EntityKind::Policy,
        api: paths::AUTHORIZATION_POLICIES,
        list_key: "authorization_policies",
        columns: &[("Id", "id"), ("Source", "source_iam_id"), ("Target", "target_crn"), ("Account", "account_id")],
        create: &[
            Field { name: "source_iam_id", label: "Source", input: Input::Text, required: true, hint: "IBMid-…, iam-ServiceId-…, iam-Profile-… or crn-crn:v1:…" },
            Field { name: "target_crn", label: "Target CRN", input: Input::Text, required: true, hint: "crn:v1:…:a/<account id>:… (a prefix may end in *)" },
            Field { name: "description", label: "Description", input: Input::Text, required: false, hint: "" },
            ACCOUNT_FIELD,
        ],
        trust_editor: false,
        cascade: "The source can no longer obtain tokens for the target.",
    },
];

pub fn find(slug: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.slug == slug)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_is_an_admin_collection_with_a_unique_slug() {
        for (i, r) in RESOURCES.iter().enumerate() {
            assert!(r.api.starts_with("/v1/"), "{}", r.slug);
            assert!(
                RESOURCES[..i].iter().all(|o| o.slug != r.slug),
                "{}",
                r.slug
            );
            assert_eq!(find(r.slug).map(|f| f.kind), Some(r.kind));
        }
        assert!(find("nothing").is_none());
    }
}
