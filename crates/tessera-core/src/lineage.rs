//! Revocation lineage: where a token came from, so that removing any link kills it.
//!
//! Every token (access, refresh, delegated refresh, `t1.`) carries the list of links it was
//! derived through: the credential that started the chain (an API key, an authorized key, an
//! OAuth token), the refresh family it belongs to, the tokens and identities that derived it
//! (who assumed a profile, who minted a token for another service account, who obtained a resource
//! identity), the authorization policy or trusted issuer that allowed the step, and the OAuth
//! client it was issued to. A token is dead on its next use once any link is gone:
//!
//! | link | dead when |
//! |---|---|
//! | `k:<api key id>` | the API key was deleted |
//! | `s:<authorized key id>` | the authorized key was deleted |
//! | `o:<OAuth token id>` | the OAuth token was deleted |
//! | `f:<refresh family>` | a refresh token of the family was revoked |
//! | `t:<jti>` | the token it was derived from was revoked |
//! | `a:<iam_id>` | that identity was deleted, or cut off after this token was issued |
//! | `u:<profile iam_id> <iam_id>` | as `a:`, or that profile no longer trusts that identity |
//! | `p:<policy id>` | the authorization policy was deleted |
//! | `i:<issuer id>` | the trusted issuer was deleted |
//! | `c:<client key>` | the OAuth client was deleted |
//!
//! The check ([`crate::directory::Directory::dead_link`]) is a handful of hash look-ups in the
//! snapshot: no write and no slow hash on the token path. Chains are bounded
//! ([`MAX_LINKS`], [`MAX_ENCODED`]) so a derived token always fits the surfaces' size limits;
//! deriving past the bound is refused rather than truncated.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Most links one token may carry.
pub const MAX_LINKS: usize = 12;
/// Most bytes the links may take together (the `t1.` token limit is 4096 after base64).
pub const MAX_ENCODED: usize = 1600;

/// One link of a token's ancestry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Link {
    ApiKey(String),
    AuthorizedKey(String),
    OAuthToken(String),
    RefreshFamily(String),
    /// A token presented to derive this one (by its `jti`).
    Token(String),
    /// An identity that derived this token for another subject (CreateForServiceAccount,
    /// `iam-authz`).
    Actor(String),
    /// A profile assumption: `"<profile iam_id> <assumer iam_id>"` (see [`Link::assumer`]); the
    /// profile must still trust the assumer.
    Assumer(String),
    Policy(String),
    Issuer(String),
    /// The OAuth client (by its store key) the token was issued to.
    Client(String),
}

impl Link {
    fn tag(&self) -> char {
        match self {
            Link::ApiKey(_) => 'k',
            Link::AuthorizedKey(_) => 's',
            Link::OAuthToken(_) => 'o',
            Link::RefreshFamily(_) => 'f',
            Link::Token(_) => 't',
            Link::Actor(_) => 'a',
            Link::Assumer(_) => 'u',
            Link::Policy(_) => 'p',
            Link::Issuer(_) => 'i',
            Link::Client(_) => 'c',
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Link::ApiKey(v)
            | Link::AuthorizedKey(v)
            | Link::OAuthToken(v)
            | Link::RefreshFamily(v)
            | Link::Token(v)
            | Link::Actor(v)
            | Link::Assumer(v)
            | Link::Policy(v)
            | Link::Issuer(v)
            | Link::Client(v) => v,
        }
    }

    /// The link of `assumer` becoming `profile_iam_id`.
    pub fn assumer(profile_iam_id: &str, assumer: &str) -> Link {
        Link::Assumer(format!("{profile_iam_id} {assumer}"))
    }

    /// The profile and the assumer of an [`Link::Assumer`] link.
    pub fn assumer_parts(&self) -> Option<(&str, &str)> {
        match self {
            Link::Assumer(value) => value.split_once(' '),
            _ => None,
        }
    }

    /// The wire form: `<tag>:<value>`.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.value().len() + 2);
        out.push(self.tag());
        out.push(':');
        out.push_str(self.value());
        out
    }

    /// Parses the wire form; `None` for anything else (such a token is refused).
    pub fn decode(text: &str) -> Option<Link> {
        let (tag, value) = text.split_once(':')?;
        if value.is_empty() {
            return None;
        }
        let value = value.to_owned();
        Some(match tag {
            "k" => Link::ApiKey(value),
            "s" => Link::AuthorizedKey(value),
            "o" => Link::OAuthToken(value),
            "f" => Link::RefreshFamily(value),
            "t" => Link::Token(value),
            "a" => Link::Actor(value),
            "u" if value
                .split_once(' ')
                .is_some_and(|(p, a)| !p.is_empty() && !a.is_empty()) =>
            {
                Link::Assumer(value)
            }
            "p" => Link::Policy(value),
            "i" => Link::Issuer(value),
            "c" => Link::Client(value),
            _ => return None,
        })
    }

    /// How people read the link in an error message ("API key ApiKey-…").
    pub fn describe(&self) -> String {
        let what = match self {
            Link::ApiKey(_) => "API key",
            Link::AuthorizedKey(_) => "authorized key",
            Link::OAuthToken(_) => "OAuth token",
            Link::RefreshFamily(_) => "refresh token family",
            Link::Token(_) => "token",
            Link::Actor(_) => "identity",
            Link::Assumer(_) => "profile assumption",
            Link::Policy(_) => "authorization policy",
            Link::Issuer(_) => "trusted issuer",
            Link::Client(_) => "OAuth client",
        };
        format!("{what} {}", self.value())
    }
}

/// The ancestry of a token: the links it was derived through, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Lineage(Vec<Link>);

impl Lineage {
    pub fn empty() -> Lineage {
        Lineage(Vec::new())
    }

    pub fn of(link: Link) -> Lineage {
        Lineage(vec![link])
    }

    pub fn links(&self) -> &[Link] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// This lineage with `links` appended, refused when the chain would exceed its bounds.
    pub fn extended(&self, links: impl IntoIterator<Item = Link>) -> Result<Lineage> {
        let mut out = self.0.clone();
        for link in links {
            if !out.contains(&link) {
                out.push(link);
            }
        }
        let lineage = Lineage(out);
        lineage.check_bounds()?;
        Ok(lineage)
    }

    fn check_bounds(&self) -> Result<()> {
        let bytes: usize = self.0.iter().map(|l| l.value().len() + 4).sum();
        if self.0.len() > MAX_LINKS || bytes > MAX_ENCODED {
            return Err(Error::denied(format!(
                "the chain of credentials and identities behind this token is too long (at most \
                 {MAX_LINKS} links); obtain a token from a credential of your own instead"
            )));
        }
        Ok(())
    }

    pub fn encode(&self) -> Vec<String> {
        self.0.iter().map(Link::encode).collect()
    }

    /// Parses the wire form. An unknown or malformed link, or an oversize chain, is an error:
    /// a token whose ancestry cannot be read cannot be checked, so it is refused.
    pub fn decode(encoded: &[String]) -> Result<Lineage> {
        let invalid = || Error::credential("the token's lineage is malformed");
        let links = encoded
            .iter()
            .map(|text| Link::decode(text).ok_or_else(invalid))
            .collect::<Result<Vec<Link>>>()?;
        let lineage = Lineage(links);
        lineage.check_bounds().map_err(|_| invalid())?;
        Ok(lineage)
    }
}

/// The `lineage` claim is an array of `<tag>:<value>` strings; tokens without ancestry omit it
/// (`skip_serializing_if = "Lineage::is_empty"`), keeping IBM's claim set.
impl Serialize for Lineage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.encode().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Lineage {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let encoded = Vec::<String>::deserialize(deserializer)?;
        Lineage::decode(&encoded).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_round_trip() {
        let links = [
            Link::ApiKey("ApiKey-1".into()),
            Link::AuthorizedKey("aje1".into()),
            Link::OAuthToken("OAuthToken-1".into()),
            Link::RefreshFamily("f1".into()),
            Link::Token("j1".into()),
            Link::Actor("iam-ServiceId-1".into()),
            Link::assumer("iam-Profile-1", "IBMid-1"),
            Link::Policy("Policy-1".into()),
            Link::Issuer("Issuer-1".into()),
            Link::Client("0123/app".into()),
        ];
        for link in links {
            assert_eq!(Link::decode(&link.encode()), Some(link));
        }
        // A CRN actor keeps its colons.
        let crn = Link::Actor("crn-crn:v1:a:b:c:d:a/x:i::".into());
        assert_eq!(Link::decode(&crn.encode()), Some(crn));
        assert_eq!(Link::decode("z:1"), None);
        assert_eq!(Link::decode("k:"), None);
        assert_eq!(Link::decode("nocolon"), None);
        assert_eq!(Link::decode("u:IBMid-1"), None);
        assert_eq!(
            Link::assumer("iam-Profile-1", "IBMid-1").assumer_parts(),
            Some(("iam-Profile-1", "IBMid-1"))
        );
    }

    #[test]
    fn chains_are_bounded_and_deduplicated() {
        let base = Lineage::of(Link::ApiKey("k".into()));
        let same = base.extended([Link::ApiKey("k".into())]).unwrap();
        assert_eq!(same.links().len(), 1);
        let mut chain = base;
        for i in 0..MAX_LINKS - 1 {
            chain = chain.extended([Link::Token(format!("j{i}"))]).unwrap();
        }
        assert!(chain.extended([Link::Token("one-more".into())]).is_err());
        let long = Lineage::of(Link::Actor("x".repeat(MAX_ENCODED)));
        assert!(long.check_bounds().is_err());
        assert!(Lineage::decode(&["q:1".to_owned()]).is_err());
    }
}
