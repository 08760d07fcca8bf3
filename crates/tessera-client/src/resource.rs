//! The admin API's collections as types: each says where it lives, what one object is and
//! what creating one takes, so that [`Client::list`](crate::Client::list), `get`, `delete` and
//! `create` are written once for all of them.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tessera_api::{admin, paths};

/// One collection of the admin API (`/v1/<plural>`, `/v1/<plural>/{id}`).
pub trait Resource {
    /// The collection's path (a `tessera_api::paths` constant); its last segment is also the
    /// key of the list body (`{"service_accounts": [...]}`).
    const PATH: &'static str;
    /// What a person calls one object, for messages ("service account").
    const KIND: &'static str;
    /// Whether the create answer holds a secret shown once (a key, a client secret, a token):
    /// then a decoding error of that answer does not quote the body.
    const CREATE_ANSWER_HOLDS_SECRET: bool = false;
    /// One object, as the server renders it (its `Debug` redacts a one-time secret).
    type Item: DeserializeOwned + std::fmt::Debug;
    /// The body of `POST` to the collection.
    type Create: Serialize;
    /// The object's id, as its path and paging (`after`) take it.
    fn id(item: &Self::Item) -> &str;
}

/// Declares a unit type for a collection and its `Resource` impl.
macro_rules! resource {
    ($(#[$doc:meta])* $name:ident, $path:expr, $kind:literal, $item:ty, $create:ty
     $(, secret = $secret:literal)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl Resource for $name {
            const PATH: &'static str = $path;
            const KIND: &'static str = $kind;
            $(const CREATE_ANSWER_HOLDS_SECRET: bool = $secret;)?
            type Item = $item;
            type Create = $create;
            fn id(item: &$item) -> &str {
                &item.id
            }
        }
    };
}

resource!(
    /// `/v1/enterprises`.
    Enterprises, paths::ENTERPRISES, "enterprise", admin::EnterpriseView, admin::EnterpriseCreate
);
resource!(
    /// `/v1/accounts`.
    Accounts, paths::ACCOUNTS, "account", admin::AccountView, admin::AccountCreate
);
resource!(
    /// `/v1/users`.
    Users, paths::USERS, "user", admin::UserView, admin::UserCreate
);
resource!(
    /// `/v1/service_accounts`.
    ServiceAccounts,
    paths::SERVICE_ACCOUNTS,
    "service account",
    admin::ServiceAccountView,
    admin::ServiceAccountCreate
);
resource!(
    /// `/v1/api_keys`: the create answer holds the key (`apikey`).
    ApiKeys,
    paths::API_KEYS,
    "API key",
    admin::ApiKeyView,
    admin::ApiKeyCreate,
    secret = true
);
resource!(
    /// `/v1/clients`: the create answer holds the client secret.
    Clients, paths::CLIENTS, "client", admin::ClientView, admin::ClientCreate, secret = true
);
resource!(
    /// `/v1/authorized_keys`: the create answer holds the key file with the private key.
    AuthorizedKeys,
    paths::AUTHORIZED_KEYS,
    "authorized key",
    admin::AuthorizedKeyView,
    admin::AuthorizedKeyCreate,
    secret = true
);
resource!(
    /// `/v1/oauth_tokens`: the create answer holds the token.
    OAuthTokens,
    paths::OAUTH_TOKENS,
    "OAuth token",
    admin::OAuthTokenView,
    admin::OAuthTokenCreate,
    secret = true
);
resource!(
    /// `/v1/access_bindings`.
    AccessBindings,
    paths::ACCESS_BINDINGS,
    "access binding",
    admin::AccessBindingView,
    admin::AccessBindingCreate
);
resource!(
    /// `/v1/trusted_profiles`.
    TrustedProfiles,
    paths::TRUSTED_PROFILES,
    "trusted profile",
    admin::TrustedProfileView,
    admin::TrustedProfileCreate
);
resource!(
    /// `/v1/trusted_issuers`.
    TrustedIssuers,
    paths::TRUSTED_ISSUERS,
    "trusted issuer",
    admin::TrustedIssuerView,
    admin::TrustedIssuerCreate
);
resource!(
    /// `/v1/authorization_policies`.
    AuthorizationPolicies,
    paths::AUTHORIZATION_POLICIES,
    "authorization policy",
    admin::AuthorizationPolicyView,
    admin::AuthorizationPolicyCreate
);

/// The key of a collection's list body: the last segment of its path.
pub(crate) fn list_key<R: Resource>() -> &'static str {
    R::PATH.rsplit('/').next().unwrap_or(R::PATH)
}
