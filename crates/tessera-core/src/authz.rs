//! Authorization: which roles a subject holds where. Pure look-ups over the directory.

use crate::directory::Directory;
use crate::model::{Resource, Role};

/// Whether `iam_id` holds `role` on `resource`, directly or through a broader binding.
///
/// Rules: a binding on `*` covers everything; a binding on an account covers the account and
/// the service accounts in it; `admin` implies every other role (as Yandex's primitive `admin`
/// includes `iam.serviceAccounts.tokenCreator`).
pub fn has_role(dir: &Directory, iam_id: &str, role: Role, resource: &Resource) -> bool {
    let account_of_resource = match resource {
        Resource::Global => None,
        Resource::Account(id) => Some(id.clone()),
        Resource::ServiceAccount(id) => dir.service_account(id).map(|s| s.account_id.clone()),
    };
    dir.bindings_of(iam_id).any(|binding| {
        let role_matches = binding.role == role || binding.role == Role::Admin;
        let covers = match &binding.resource {
            Resource::Global => true,
            Resource::Account(id) => account_of_resource.as_deref() == Some(id.as_str()),
            held @ Resource::ServiceAccount(_) => held == resource,
        };
        role_matches && covers
    })
}

/// Whether `iam_id` is a global administrator.
pub fn is_global_admin(dir: &Directory, iam_id: &str) -> bool {
    has_role(dir, iam_id, Role::Admin, &Resource::Global)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{Change, Entity};
    use crate::model::*;

    fn bind(dir: &mut Directory, id: &str, subject: &str, role: Role, resource: Resource) {
        dir.apply(Change::Upsert(Entity::Binding(AccessBinding {
            id: id.into(),
            subject_iam_id: subject.into(),
            role,
            resource,
            created_at: 0,
        })));
    }

    #[test]
    fn role_coverage() {
        let mut dir = Directory::new();
        dir.apply(Change::Upsert(Entity::ServiceAccount(ServiceAccount {
            id: "ServiceId-1".into(),
            account_id: "acct".into(),
            name: "s".into(),
            description: String::new(),
            created_at: 0,
        })));
        bind(&mut dir, "b1", "IBMid-admin", Role::Admin, Resource::Global);
        bind(
            &mut dir,
            "b2",
            "IBMid-a",
            Role::Admin,
            Resource::Account("acct".into()),
        );
        bind(
            &mut dir,
            "b3",
            "IBMid-v",
            Role::Viewer,
            Resource::Account("acct".into()),
        );
        bind(
            &mut dir,
            "b4",
            "IBMid-t",
            Role::TokenCreator,
            Resource::ServiceAccount("ServiceId-1".into()),
        );
        let acct = Resource::Account("acct".into());
        let other = Resource::Account("other".into());
        let sa = Resource::ServiceAccount("ServiceId-1".into());
        assert!(is_global_admin(&dir, "IBMid-admin"));
        assert!(!is_global_admin(&dir, "IBMid-a"));
        assert!(has_role(&dir, "IBMid-admin", Role::Admin, &other));
        assert!(has_role(&dir, "IBMid-a", Role::Admin, &acct));
        assert!(has_role(&dir, "IBMid-a", Role::Viewer, &acct));
        assert!(has_role(&dir, "IBMid-a", Role::Admin, &sa));
        assert!(!has_role(&dir, "IBMid-a", Role::Admin, &other));
        assert!(has_role(&dir, "IBMid-v", Role::Viewer, &acct));
        assert!(!has_role(&dir, "IBMid-v", Role::Admin, &acct));
        assert!(has_role(&dir, "IBMid-t", Role::TokenCreator, &sa));
        assert!(!has_role(&dir, "IBMid-t", Role::TokenCreator, &acct));
        assert!(!has_role(&dir, "IBMid-nobody", Role::Viewer, &acct));
        // Admin implies the service-account roles; viewer does not.
        assert!(has_role(&dir, "IBMid-a", Role::TokenCreator, &sa));
        assert!(has_role(&dir, "IBMid-a", Role::ServiceAccountUser, &sa));
        assert!(!has_role(&dir, "IBMid-v", Role::TokenCreator, &sa));
        assert!(!has_role(&dir, "IBMid-t", Role::ServiceAccountUser, &sa));
    }
}
