//! How the admin API shows each record: conversions from the core's models to the wire types of
//! `tessera_api::admin`. A local trait ([`ToApi`]) rather than `From`, because both sides are
//! foreign to this crate (the orphan rule). Secrets never appear, except the one-time
//! `apikey`/`secret`/`token`/`key_file` fields that create handlers fill in.

use tessera_api::admin as api;
use tessera_core::model::*;

pub use crate::rfc3339::from_unix as rfc3339;

/// A core model's admin-API view.
pub trait ToApi {
    type Api;
    fn to_api(&self) -> Self::Api;
}

impl ToApi for Enterprise {
    type Api = api::EnterpriseView;
    fn to_api(&self) -> Self::Api {
        api::EnterpriseView {
            id: self.id.clone(),
            name: self.name.clone(),
            created_at: rfc3339(self.created_at),
        }
    }
}

pub fn mfa(m: MfaRequirement) -> api::Mfa {
    match m {
        MfaRequirement::None => api::Mfa::None,
        MfaRequirement::Totp => api::Mfa::Totp,
    }
}

impl ToApi for Account {
    type Api = api::AccountView;
    fn to_api(&self) -> Self::Api {
        api::AccountView {
            id: self.id.clone(),
            name: self.name.clone(),
            enterprise_id: self.enterprise_id.clone(),
            mfa: mfa(self.mfa),
            created_at: rfc3339(self.created_at),
        }
    }
}

impl ToApi for User {
    type Api = api::UserView;
    fn to_api(&self) -> Self::Api {
        api::UserView {
            id: self.id.clone(),
            iam_id: self.id.clone(),
            account_id: self.account_id.clone(),
            name: self.name.clone(),
            email: self.email.clone(),
            federated: self.federated,
            has_password: self.password_hash.is_some(),
            totp: None,
            created_at: rfc3339(self.created_at),
        }
    }
}

impl ToApi for ServiceAccount {
    type Api = api::ServiceAccountView;
    fn to_api(&self) -> Self::Api {
        api::ServiceAccountView {
            id: self.id.clone(),
            iam_id: self.iam_id(),
            account_id: self.account_id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            created_at: rfc3339(self.created_at),
        }
    }
}

impl ToApi for ApiKey {
    type Api = api::ApiKeyView;
    fn to_api(&self) -> Self::Api {
        api::ApiKeyView {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            owner_iam_id: self.owner_iam_id.clone(),
            account_id: self.account_id.clone(),
            created_at: rfc3339(self.created_at),
            apikey: None,
        }
    }
}

impl ToApi for OAuthClient {
    type Api = api::ClientView;
    fn to_api(&self) -> Self::Api {
        api::ClientView {
            id: self.id.clone(),
            name: self.name.clone(),
            account_id: self.account_id.clone(),
            created_at: rfc3339(self.created_at),
            secret: None,
        }
    }
}

pub fn key_algorithm(
    a: tessera_core::model::AuthorizedKeyAlgorithm,
) -> api::AuthorizedKeyAlgorithm {
    match a {
        tessera_core::model::AuthorizedKeyAlgorithm::Rsa2048 => {
            api::AuthorizedKeyAlgorithm::Rsa2048
        }
        tessera_core::model::AuthorizedKeyAlgorithm::Rsa4096 => {
            api::AuthorizedKeyAlgorithm::Rsa4096
        }
    }
}

impl ToApi for AuthorizedKey {
    type Api = api::AuthorizedKeyView;
    fn to_api(&self) -> Self::Api {
        api::AuthorizedKeyView {
            id: self.id.clone(),
            service_account_id: self.service_account_id.clone(),
            account_id: self.account_id.clone(),
            description: self.description.clone(),
            key_algorithm: key_algorithm(self.algorithm),
            public_key: tessera_core::service_account_jwt::pem("PUBLIC KEY", &self.public_key_der),
            created_at: rfc3339(self.created_at),
            key_file: None,
        }
    }
}

impl ToApi for OAuthToken {
    type Api = api::OAuthTokenView;
    fn to_api(&self) -> Self::Api {
        api::OAuthTokenView {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            account_id: self.account_id.clone(),
            description: self.description.clone(),
            created_at: rfc3339(self.created_at),
            token: None,
        }
    }
}

impl ToApi for AccessBinding {
    type Api = api::AccessBindingView;
    fn to_api(&self) -> Self::Api {
        api::AccessBindingView {
            id: self.id.clone(),
            subject_iam_id: self.subject_iam_id.clone(),
            role: self.role.as_str().to_owned(),
            resource: self.resource.to_text(),
            created_at: rfc3339(self.created_at),
        }
    }
}

/// The serde text of a core enum (`user`, `EQUALS`, ...): the wire form.
fn text<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn identity(i: &TrustedIdentity) -> api::TrustedIdentity {
    api::TrustedIdentity {
        kind: text(&i.kind),
        identifier: i.identifier.clone(),
        accounts: i.accounts.clone(),
    }
}

fn link(l: &ComputeResourceLink) -> api::ComputeResourceLink {
    api::ComputeResourceLink {
        id: Some(l.id.clone()),
        cr_type: l.cr_type.clone(),
        crn: l.crn.clone(),
        namespace: l.namespace.clone(),
        name: l.name.clone(),
        component_type: l.component_type.clone(),
        component_name: l.component_name.clone(),
    }
}

fn rule(r: &ClaimRule) -> api::ClaimRule {
    api::ClaimRule {
        id: Some(r.id.clone()),
        name: (!r.name.is_empty()).then(|| r.name.clone()),
        rule_type: r.rule_type.clone(),
        cr_type: r.cr_type.clone(),
        conditions: r
            .conditions
            .iter()
            .map(|c| api::ClaimCondition {
                claim: c.claim.clone(),
                operator: text(&c.operator),
                value: c.value.clone(),
            })
            .collect(),
    }
}

impl ToApi for TrustedProfile {
    type Api = api::TrustedProfileView;
    fn to_api(&self) -> Self::Api {
        api::TrustedProfileView {
            id: self.id.clone(),
            iam_id: self.iam_id(),
            crn: self.crn(),
            account_id: self.account_id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            identities: self.identities.iter().map(identity).collect(),
            links: self.links.iter().map(link).collect(),
            rules: self.rules.iter().map(rule).collect(),
            created_at: rfc3339(self.created_at),
        }
    }
}

/// The core's profile document of a create or replace request.
pub fn profile_document(
    name: String,
    description: Option<String>,
    identities: Vec<api::TrustedIdentity>,
    links: Vec<api::ComputeResourceLink>,
    rules: Vec<api::ClaimRule>,
) -> tessera_core::trusted_profile::ProfileDocument {
    use tessera_core::trusted_profile::{ConditionInput, IdentityInput, LinkInput, RuleInput};
    tessera_core::trusted_profile::ProfileDocument {
        name,
        description,
        identities: identities
            .into_iter()
            .map(|i| IdentityInput {
                kind: i.kind,
                identifier: i.identifier,
                accounts: i.accounts,
            })
            .collect(),
        links: links
            .into_iter()
            .map(|l| LinkInput {
                id: l.id,
                cr_type: l.cr_type,
                crn: l.crn,
                namespace: l.namespace,
                name: l.name,
                component_type: l.component_type,
                component_name: l.component_name,
            })
            .collect(),
        rules: rules
            .into_iter()
            .map(|r| RuleInput {
                id: r.id,
                name: r.name,
                rule_type: r.rule_type,
                cr_type: r.cr_type,
                conditions: r
                    .conditions
                    .into_iter()
                    .map(|c| ConditionInput {
                        claim: c.claim,
                        operator: c.operator,
                        value: c.value,
                    })
                    .collect(),
            })
            .collect(),
    }
}

impl ToApi for TrustedIssuer {
    type Api = api::TrustedIssuerView;
    fn to_api(&self) -> Self::Api {
        api::TrustedIssuerView {
            id: self.id.clone(),
            account_id: self.account_id.clone(),
            name: self.name.clone(),
            issuer_url: self.issuer_url.clone(),
            jwks: match &self.jwks {
                JwksSource::Inline(set) => api::JwksSource::Inline(set.clone()),
                JwksSource::File(path) => api::JwksSource::File(path.clone()),
            },
            audiences: self.audiences.clone(),
            cr_type: self.cr_type.clone(),
            crn: self.crn.clone(),
            claim_mapping: self.claim_mapping.clone(),
            created_at: rfc3339(self.created_at),
        }
    }
}

impl ToApi for AuthorizationPolicy {
    type Api = api::AuthorizationPolicyView;
    fn to_api(&self) -> Self::Api {
        api::AuthorizationPolicyView {
            id: self.id.clone(),
            account_id: self.account_id.clone(),
            source_iam_id: self.source_iam_id.clone(),
            target_crn: self.target_crn.clone(),
            description: self.description.clone(),
            created_at: rfc3339(self.created_at),
        }
    }
}
