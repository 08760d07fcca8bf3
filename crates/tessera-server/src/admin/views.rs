//! What the admin API shows of each record. Secrets never appear, except the one-time
//! `apikey`/`secret`/`token`/`key_file` fields of create responses.

use serde::Serialize;
use tessera_core::model::*;

pub fn rfc3339(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[derive(Serialize)]
pub struct EnterpriseView {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

impl From<&Enterprise> for EnterpriseView {
    fn from(e: &Enterprise) -> Self {
        EnterpriseView {
            id: e.id.clone(),
            name: e.name.clone(),
            created_at: rfc3339(e.created_at),
        }
    }
}

#[derive(Serialize)]
pub struct AccountView {
    pub id: String,
    pub name: String,
    pub enterprise_id: Option<String>,
    /// `NONE` or `TOTP`.
    pub mfa: &'static str,
    pub created_at: String,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        AccountView {
            id: a.id.clone(),
            name: a.name.clone(),
            enterprise_id: a.enterprise_id.clone(),
            mfa: a.mfa.as_str(),
            created_at: rfc3339(a.created_at),
        }
    }
}

#[derive(Serialize)]
pub struct UserView {
    pub id: String,
    pub iam_id: String,
    pub account_id: String,
    pub name: String,
    pub email: String,
    pub federated: bool,
    pub has_password: bool,
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.clone(),
            iam_id: u.id.clone(),
            account_id: u.account_id.clone(),
            name: u.name.clone(),
            email: u.email.clone(),
            federated: u.federated,
            has_password: u.password_hash.is_some(),
            created_at: rfc3339(u.created_at),
        }
    }
}

#[derive(Serialize)]
pub struct ServiceAccountView {
    pub id: String,
    pub iam_id: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    pub created_at: String,
}

impl From<&ServiceAccount> for ServiceAccountView {
    fn from(s: &ServiceAccount) -> Self {
        ServiceAccountView {
            id: s.id.clone(),
            iam_id: s.iam_id(),
            account_id: s.account_id.clone(),
            name: s.name.clone(),
            description: s.description.clone(),
            created_at: rfc3339(s.created_at),
        }
    }
}

#[derive(Serialize)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owner_iam_id: String,
    pub account_id: String,
    pub created_at: String,
    /// Only in the create response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apikey: Option<String>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        ApiKeyView {
            id: k.id.clone(),
            name: k.name.clone(),
            description: k.description.clone(),
            owner_iam_id: k.owner_iam_id.clone(),
            account_id: k.account_id.clone(),
            created_at: rfc3339(k.created_at),
            apikey: None,
        }
    }
}

#[derive(Serialize)]
pub struct ClientView {
    pub id: String,
    pub name: String,
    pub account_id: Option<String>,
    pub created_at: String,
    /// Only in the create response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<&OAuthClient> for ClientView {
    fn from(c: &OAuthClient) -> Self {
        ClientView {
            id: c.id.clone(),
            name: c.name.clone(),
            account_id: c.account_id.clone(),
            created_at: rfc3339(c.created_at),
            secret: None,
        }
    }
}

#[derive(Serialize)]
pub struct AuthorizedKeyView {
    pub id: String,
    pub service_account_id: String,
    pub account_id: String,
    pub description: String,
    pub key_algorithm: &'static str,
    /// PEM (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo).
    pub public_key: String,
    pub created_at: String,
    /// Only in the create response: the `yc iam key create` key file, private key included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<KeyFileView>,
}

impl From<&AuthorizedKey> for AuthorizedKeyView {
    fn from(k: &AuthorizedKey) -> Self {
        AuthorizedKeyView {
            id: k.id.clone(),
            service_account_id: k.service_account_id.clone(),
            account_id: k.account_id.clone(),
            description: k.description.clone(),
            key_algorithm: k.algorithm.as_str(),
            public_key: tessera_core::service_account_jwt::pem("PUBLIC KEY", &k.public_key_der),
            created_at: rfc3339(k.created_at),
            key_file: None,
        }
    }
}

/// The authorized key file in the shape `yc iam key create` writes and the Yandex SDKs read.
/// No `Debug`: it holds the private key.
#[derive(Serialize)]
pub struct KeyFileView {
    pub id: String,
    pub service_account_id: String,
    pub created_at: String,
    pub key_algorithm: &'static str,
    pub public_key: String,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_key: String,
}

#[derive(Serialize)]
pub struct OAuthTokenView {
    pub id: String,
    pub user_id: String,
    pub account_id: String,
    pub description: String,
    pub created_at: String,
    /// Only in the create response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl From<&OAuthToken> for OAuthTokenView {
    fn from(t: &OAuthToken) -> Self {
        OAuthTokenView {
            id: t.id.clone(),
            user_id: t.user_id.clone(),
            account_id: t.account_id.clone(),
            description: t.description.clone(),
            created_at: rfc3339(t.created_at),
            token: None,
        }
    }
}

#[derive(Serialize)]
pub struct AccessBindingView {
    pub id: String,
    pub subject_iam_id: String,
    pub role: &'static str,
    pub resource: String,
    pub created_at: String,
}

impl From<&AccessBinding> for AccessBindingView {
    fn from(b: &AccessBinding) -> Self {
        AccessBindingView {
            id: b.id.clone(),
            subject_iam_id: b.subject_iam_id.clone(),
            role: b.role.as_str(),
            resource: b.resource.to_text(),
            created_at: rfc3339(b.created_at),
        }
    }
}

#[derive(Serialize)]
pub struct TrustedProfileView {
    pub id: String,
    pub iam_id: String,
    pub crn: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    pub identities: Vec<TrustedIdentity>,
    pub links: Vec<ComputeResourceLink>,
    pub rules: Vec<ClaimRule>,
    pub created_at: String,
}

impl From<&TrustedProfile> for TrustedProfileView {
    fn from(p: &TrustedProfile) -> Self {
        TrustedProfileView {
            id: p.id.clone(),
            iam_id: p.iam_id(),
            crn: p.crn(),
            account_id: p.account_id.clone(),
            name: p.name.clone(),
            description: p.description.clone(),
            identities: p.identities.clone(),
            links: p.links.clone(),
            rules: p.rules.clone(),
            created_at: rfc3339(p.created_at),
        }
    }
}

#[derive(Serialize)]
pub struct TrustedIssuerView {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub issuer_url: String,
    /// `{"inline": {"keys": [...]}}` or `{"file": "/path"}`.
    pub jwks: JwksSource,
    pub audiences: Vec<String>,
    pub cr_type: String,
    pub crn: String,
    pub claim_mapping: std::collections::BTreeMap<String, String>,
    pub created_at: String,
}

impl From<&TrustedIssuer> for TrustedIssuerView {
    fn from(i: &TrustedIssuer) -> Self {
        TrustedIssuerView {
            id: i.id.clone(),
            account_id: i.account_id.clone(),
            name: i.name.clone(),
            issuer_url: i.issuer_url.clone(),
            jwks: i.jwks.clone(),
            audiences: i.audiences.clone(),
            cr_type: i.cr_type.clone(),
            crn: i.crn.clone(),
            claim_mapping: i.claim_mapping.clone(),
            created_at: rfc3339(i.created_at),
        }
    }
}

#[derive(Serialize)]
pub struct AuthorizationPolicyView {
    pub id: String,
    pub account_id: String,
    pub source_iam_id: String,
    pub target_crn: String,
    pub description: String,
    pub created_at: String,
}

impl From<&AuthorizationPolicy> for AuthorizationPolicyView {
    fn from(p: &AuthorizationPolicy) -> Self {
        AuthorizationPolicyView {
            id: p.id.clone(),
            account_id: p.account_id.clone(),
            source_iam_id: p.source_iam_id.clone(),
            target_crn: p.target_crn.clone(),
            description: p.description.clone(),
            created_at: rfc3339(p.created_at),
        }
    }
}
