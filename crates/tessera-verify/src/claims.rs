//! One reading of a claim set, in one pass: the registered claims [`crate::Validation`] checks
//! (typed, a value of the wrong JSON type kept as [`Typed::Wrong`] so that it is refused, never
//! taken as absent), the claims a [`crate::VerifiedCaller`] is read from (leniently, as before:
//! a value of another type is absent), and every top-level name (for required claims).
//!
//! The same code reads a token's JSON payload straight from its text (no `serde_json::Map` is
//! built on the token path: no allocation per claim, strings borrowed from the payload) and an
//! already parsed `Map` (a `&serde_json::Value` is a deserializer too), so both give the same
//! answer by construction; a test runs the wrong-type fixtures through both.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// A registered claim as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Typed<T> {
    #[default]
    Absent,
    Is(T),
    /// Present, of another JSON type (for `exp`: not an integer that fits an `i64`).
    Wrong,
}

impl<T> Typed<T> {
    fn ok(self) -> Option<T> {
        match self {
            Typed::Is(value) => Some(value),
            Typed::Absent | Typed::Wrong => None,
        }
    }
}

/// `aud`: a string, or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Audience<'a> {
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

/// What one pass over a claim set found. Strings borrow from the payload unless they had
/// escapes.
#[derive(Debug, Default)]
pub(crate) struct ClaimSet<'a> {
    /// Every top-level name, in document order (a repeated name more than once; its last
    /// value is the one read, as `serde_json::Map` keeps it), when asked for: only required
    /// claims need them.
    names: Option<Vec<Cow<'a, str>>>,
    pub exp: Typed<i64>,
    pub nbf: Typed<i64>,
    pub iat: Typed<i64>,
    pub iss: Typed<Cow<'a, str>>,
    pub sub: Typed<Cow<'a, str>>,
    pub jti: Typed<Cow<'a, str>>,
    pub aud: Typed<Audience<'a>>,
    // Read leniently, for the caller: a value of another type counts as absent.
    pub iam_id: Option<Cow<'a, str>>,
    pub sub_type: Option<Cow<'a, str>>,
    pub subject_type: Option<Cow<'a, str>>,
    /// `account.bss`.
    pub account_bss: Option<Cow<'a, str>>,
    pub account_id: Option<Cow<'a, str>>,
    pub scope: Option<Cow<'a, str>>,
    /// The string elements of `roles` (others skipped); empty when it is not an array.
    pub roles: Vec<Cow<'a, str>>,
    pub acr: Option<i64>,
    /// `kid`: the key of a `t1.` token is named in its claims.
    pub kid: Option<Cow<'a, str>>,
}

impl<'a> ClaimSet<'a> {
    /// Reads a JSON object (a token's payload). Anything but one object is an error. With
    /// `names`, every name is kept for [`ClaimSet::has`] (a validation with required claims).
    pub fn from_json(json: &'a str, names: bool) -> Result<Self, serde_json::Error> {
        let mut set = ClaimSet {
            names: names.then(Vec::new),
            ..ClaimSet::default()
        };
        let mut deserializer = serde_json::Deserializer::from_str(json);
        deserializer.deserialize_map(Top(&mut set))?;
        deserializer.end()?;
        Ok(set)
    }

    /// Reads a parsed claim set, with the same code as [`ClaimSet::from_json`].
    pub fn from_map(claims: &'a Map<String, Value>) -> Result<Self, serde_json::Error> {
        let mut set = ClaimSet {
            names: Some(Vec::with_capacity(claims.len())),
            ..ClaimSet::default()
        };
        for (name, value) in claims {
            set.read(name, value)?;
            set.names
                .get_or_insert_with(Vec::new)
                .push(Cow::Borrowed(name));
        }
        Ok(set)
    }

    /// Whether the claim set has a claim `name`; `None` when the names were not kept.
    pub fn has(&self, name: &str) -> Option<bool> {
        Some(self.names.as_ref()?.iter().any(|n| n == name))
    }

    fn read<'de: 'a, D: Deserializer<'de>>(
        &mut self,
        name: &str,
        value: D,
    ) -> Result<(), D::Error> {
        match name {
            "exp" => self.exp = Int::deserialize(value)?.0,
            "nbf" => self.nbf = Int::deserialize(value)?.0,
            "iat" => self.iat = Int::deserialize(value)?.0,
            "iss" => self.iss = Str::deserialize(value)?.0,
            "sub" => self.sub = Str::deserialize(value)?.0,
            "jti" => self.jti = Str::deserialize(value)?.0,
            "aud" => self.aud = Aud::deserialize(value)?.0,
            "iam_id" => self.iam_id = Str::deserialize(value)?.0.ok(),
            "sub_type" => self.sub_type = Str::deserialize(value)?.0.ok(),
            "subject_type" => self.subject_type = Str::deserialize(value)?.0.ok(),
            "account" => self.account_bss = Account::deserialize(value)?.0,
            "account_id" => self.account_id = Str::deserialize(value)?.0.ok(),
            "scope" => self.scope = Str::deserialize(value)?.0.ok(),
            "roles" => self.roles = Roles::deserialize(value)?.0,
            "acr" => self.acr = Int::deserialize(value)?.0.ok(),
            "kid" => self.kid = Str::deserialize(value)?.0.ok(),
            _ => {
                IgnoredAny::deserialize(value)?;
            }
        }
        Ok(())
    }
}

/// The top-level object.
struct Top<'s, 'a>(&'s mut ClaimSet<'a>);

impl<'de: 'a, 'a> Visitor<'de> for Top<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(Name(name)) = map.next_key()? {
            map.next_value_seed(Field {
                name: &name,
                set: &mut *self.0,
            })?;
            if let Some(names) = &mut self.0.names {
                names.push(name);
            }
        }
        Ok(())
    }
}

/// A claim's name, borrowed unless it had escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Name(
            deserializer
                .deserialize_str(StrVisitor)?
                .ok()
                .ok_or_else(|| de::Error::custom("a claim name is a string"))?,
        ))
    }
}

/// One claim's value, read according to its name.
struct Field<'s, 'a> {
    name: &'s str,
    set: &'s mut ClaimSet<'a>,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for Field<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.set.read(self.name, deserializer)
    }
}

/// Consumes whatever a compound value holds.
fn drain_seq<'de, S: SeqAccess<'de>>(mut seq: S) -> Result<(), S::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, M: MapAccess<'de>>(mut map: M) -> Result<(), M::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Every visitor below accepts any JSON value: a value of another type is `Wrong` (or absent),
/// never a parse error.
macro_rules! wrong_for_the_rest {
    ($value:ty, $wrong:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$value, E> {
            Ok($wrong)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$value, E> {
            Ok($wrong)
        }
        fn visit_unit<E: de::Error>(self) -> Result<$value, E> {
            Ok($wrong)
        }
        fn visit_none<E: de::Error>(self) -> Result<$value, E> {
            Ok($wrong)
        }
        fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<$value, S::Error> {
            drain_seq(seq)?;
            Ok($wrong)
        }
        fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<$value, M::Error> {
            drain_map(map)?;
            Ok($wrong)
        }
    };
}

/// A NumericDate or other integer claim: an integer that fits an `i64`.
struct Int(Typed<i64>);

struct IntVisitor;

impl<'de> Visitor<'de> for IntVisitor {
    type Value = Typed<i64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Typed<i64>, E> {
        Ok(Typed::Is(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Typed<i64>, E> {
        Ok(i64::try_from(v).map_or(Typed::Wrong, Typed::Is))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Typed<i64>, E> {
        Ok(Typed::Wrong)
    }

    wrong_for_the_rest!(Typed<i64>, Typed::Wrong);
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IntVisitor).map(Int)
    }
}

/// A string claim.
struct Str<'a>(Typed<Cow<'a, str>>);

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Typed<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Typed::Is(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Typed::Is(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Typed::Is(Cow::Owned(v)))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Typed::Wrong)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Typed::Wrong)
    }

    wrong_for_the_rest!(Self::Value, Typed::Wrong);
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrVisitor).map(Str)
    }
}

/// `aud`: a string, or an array whose every element is a string.
struct Aud<'a>(Typed<Audience<'a>>);

struct AudVisitor;

impl<'de> Visitor<'de> for AudVisitor {
    type Value = Typed<Audience<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Typed::Is(Audience::One(Cow::Borrowed(v))))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Typed::Is(Audience::One(Cow::Owned(v.to_owned()))))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Typed::Wrong)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Typed::Wrong)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Typed::Wrong)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Typed::Wrong)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Typed::Wrong)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Typed::Wrong)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut all = Vec::new();
        let mut wrong = false;
        while let Some(Str(element)) = seq.next_element()? {
            match element {
                Typed::Is(audience) if !wrong => all.push(audience),
                _ => wrong = true,
            }
        }
        Ok(if wrong {
            Typed::Wrong
        } else {
            Typed::Is(Audience::Many(all))
        })
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
        drain_map(map)?;
        Ok(Typed::Wrong)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Aud<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AudVisitor).map(Aud)
    }
}

/// `account`: the string `bss` member of an object (else absent).
struct Account<'a>(Option<Cow<'a, str>>);

struct AccountVisitor;

impl<'de> Visitor<'de> for AccountVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut bss = None;
        while let Some(Name(name)) = map.next_key()? {
            if name == "bss" {
                bss = map.next_value::<Str<'de>>()?.0.ok();
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(bss)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
        drain_seq(seq)?;
        Ok(None)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Account<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AccountVisitor).map(Account)
    }
}

/// `roles`: the string elements of an array (else none).
struct Roles<'a>(Vec<Cow<'a, str>>);

struct RolesVisitor;

impl<'de> Visitor<'de> for RolesVisitor {
    type Value = Vec<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut roles = Vec::new();
        while let Some(Str(role)) = seq.next_element()? {
            if let Typed::Is(role) = role {
                roles.push(role);
            }
        }
        Ok(roles)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
        drain_map(map)?;
        Ok(Vec::new())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Roles<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RolesVisitor).map(Roles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Any JSON value, small, with the strings and numbers claim readers care about.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(Value::from),
            "[a-z \\\\\"é]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((name(), inner), 0..4)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "exp",
                "nbf",
                "iat",
                "iss",
                "sub",
                "jti",
                "aud",
                "iam_id",
                "sub_type",
                "subject_type",
                "account",
                "account_id",
                "scope",
                "roles",
                "acr",
                "kid",
                "bss",
            ])
            .prop_map(str::to_owned),
            "[a-z]{1,4}",
        ]
    }

    /// Every field, owned, for comparing two readings.
    fn fields(set: &ClaimSet<'_>) -> String {
        format!("{set:?}")
            .replace("Borrowed(", "Cow(")
            .replace("Owned(", "Cow(")
    }

    proptest! {
        /// The payload text and the parsed map read the same, whatever the claims hold.
        #[test]
        fn the_text_and_the_map_read_the_same(members in prop::collection::vec((name(), value()), 0..12)) {
            let map: Map<String, Value> = members.into_iter().collect();
            let text = Value::Object(map.clone()).to_string();
            let from_text = ClaimSet::from_json(&text, true).unwrap();
            let from_map = ClaimSet::from_map(&map).unwrap();
            prop_assert_eq!(fields(&from_text), fields(&from_map));
        }

        /// Text that is not one JSON object never reads.
        #[test]
        fn only_an_object_reads(text in "\\PC{0,40}") {
            let parsed: Result<Map<String, Value>, _> = serde_json::from_str(&text);
            prop_assert_eq!(ClaimSet::from_json(&text, false).is_ok(), parsed.is_ok());
        }
    }
}
