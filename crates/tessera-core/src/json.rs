//! JSON of the token path written straight into its buffer: token answers, and the claims and
//! refresh grants that are signed or sealed on every grant.
//!
//! serde_json escapes a string by looking up every byte in a table, one at a time: on the API-key
//! grant that scan over the tokens of the answer, the claims and the refresh grant was the
//! largest single cost beyond the signature (`serialize_str`, docs/benchmarks.md). Tokens, ids
//! and most names need no escaping; one scan that the compiler vectorizes proves it, and
//! anything else still goes through serde_json, so the bytes are the same either way. The types
//! written here keep their serde derive for reading, and property tests hold their writers to
//! serde_json's bytes.

/// Whether `value` can stand between JSON quotes as it is.
fn needs_no_escaping(value: &str) -> bool {
    // No early exit: the whole-string fold vectorizes, a short-circuiting `all` does not.
    value.bytes().fold(true, |plain, b| {
        plain & (b >= 0x20) & (b != b'"') & (b != b'\\')
    })
}

/// Appends `value` as a JSON string.
pub fn push_string(out: &mut String, value: &str) {
    if needs_no_escaping(value) {
        out.reserve(value.len() + 2);
        out.push('"');
        out.push_str(value);
        out.push('"');
    } else {
        // Serializing a `str` cannot fail.
        out.push_str(&serde_json::Value::from(value).to_string());
    }
}

/// A JSON object built member by member: `{`, the members, `}`.
#[derive(Debug)]
pub struct ObjectWriter {
    out: String,
    empty: bool,
}

impl ObjectWriter {
    /// An empty object with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> ObjectWriter {
        let mut out = String::with_capacity(capacity);
        out.push('{');
        ObjectWriter { out, empty: true }
    }

    /// A member's name and colon. Names are literals of ours that need no escaping (checked in
    /// debug builds, which every test of a writer runs), so they are not scanned: a scan per
    /// name was half of the writer's cost.
    fn name(&mut self, name: &'static str) {
        debug_assert!(
            needs_no_escaping(name),
            "member name {name:?} needs escaping"
        );
        self.out.push_str(if std::mem::take(&mut self.empty) {
            "\""
        } else {
            ",\""
        });
        self.out.push_str(name);
        self.out.push_str("\":");
    }

    pub fn string(mut self, name: &'static str, value: &str) -> ObjectWriter {
        self.name(name);
        push_string(&mut self.out, value);
        self
    }

    pub fn optional_string(self, name: &'static str, value: Option<&str>) -> ObjectWriter {
        match value {
            Some(value) => self.string(name, value),
            None => self,
        }
    }

    pub fn number(mut self, name: &'static str, value: i64) -> ObjectWriter {
        self.name(name);
        self.out.push_str(itoa::Buffer::new().format(value));
        self
    }

    pub fn boolean(mut self, name: &'static str, value: bool) -> ObjectWriter {
        self.name(name);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    /// An array of strings.
    pub fn strings<S: AsRef<str>>(mut self, name: &'static str, values: &[S]) -> ObjectWriter {
        self.name(name);
        self.out.push('[');
        for (index, value) in values.iter().enumerate() {
            if index > 0 {
                self.out.push(',');
            }
            push_string(&mut self.out, value.as_ref());
        }
        self.out.push(']');
        self
    }

    /// An array of strings, left out when empty (serde's `skip_serializing_if = "…is_empty"`).
    pub fn strings_unless_empty<S: AsRef<str>>(
        self,
        name: &'static str,
        values: &[S],
    ) -> ObjectWriter {
        if values.is_empty() {
            self
        } else {
            self.strings(name, values)
        }
    }

    /// A nested object, its members written by `members`.
    pub fn object(
        mut self,
        name: &'static str,
        members: impl FnOnce(ObjectWriter) -> ObjectWriter,
    ) -> ObjectWriter {
        self.name(name);
        let mut out = std::mem::take(&mut self.out);
        out.push('{');
        self.out = members(ObjectWriter { out, empty: true }).finish();
        self
    }

    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// Test strategies for the types whose JSON the token path writes by hand.
#[cfg(test)]
pub(crate) mod strategies {
    use crate::iam_token::IamTokenClaims;
    use crate::lineage::{Lineage, Link};
    use crate::token::{AccountClaim, AuthnClaim, IbmClaims};
    use proptest::prelude::*;

    /// ASCII with the characters JSON escapes, or any Unicode.
    pub fn text() -> impl Strategy<Value = String> {
        prop_oneof!["[\\x00-\\x7f]{0,12}", any::<String>()]
    }

    pub fn strings() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(text(), 0..3)
    }

    pub fn lineage() -> impl Strategy<Value = Lineage> {
        prop::collection::vec((0..3u8, text()), 0..3).prop_map(|links| {
            let links = links.into_iter().map(|(kind, value)| match kind {
                0 => Link::ApiKey(value),
                1 => Link::RefreshFamily(value),
                _ => Link::Client(value),
            });
            Lineage::empty().extended(links).unwrap_or_default()
        })
    }

    pub fn ibm_claims() -> impl Strategy<Value = IbmClaims> {
        (
            prop::collection::vec(text(), 16),
            proptest::option::of(text()),
            (any::<bool>(), any::<i64>(), any::<i64>(), any::<u8>()),
            strings(),
            lineage(),
        )
            .prop_map(
                |(t, email, (valid, iat, exp, acr), amr, lineage)| IbmClaims {
                    iam_id: t[0].clone(),
                    id: t[1].clone(),
                    realmid: t[2].clone(),
                    jti: t[3].clone(),
                    identifier: t[4].clone(),
                    name: t[5].clone(),
                    email,
                    sub: t[6].clone(),
                    sub_type: t[7].clone(),
                    authn: AuthnClaim {
                        sub: t[8].clone(),
                        iam_id: t[9].clone(),
                        sub_type: t[10].clone(),
                        name: t[11].clone(),
                    },
                    account: AccountClaim {
                        valid,
                        bss: t[12].clone(),
                    },
                    iat,
                    exp,
                    iss: t[13].clone(),
                    grant_type: t[14].clone(),
                    scope: t[15].clone(),
                    client_id: t[0].clone(),
                    acr,
                    amr,
                    lineage,
                },
            )
    }

    pub fn iam_claims() -> impl Strategy<Value = IamTokenClaims> {
        (
            prop::collection::vec(text(), 7),
            any::<(i64, i64)>(),
            lineage(),
        )
            .prop_map(|(t, (iat, exp), lineage)| IamTokenClaims {
                kid: t[0].clone(),
                jti: t[1].clone(),
                iss: t[2].clone(),
                sub: t[3].clone(),
                subject_id: t[4].clone(),
                subject_type: t[5].clone(),
                account_id: t[6].clone(),
                iat,
                exp,
                lineage,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_object_reads_back_as_the_members_written() {
        let body = ObjectWriter::with_capacity(16)
            .string("access_token", "eyJ.eyJ.sig")
            .optional_string("refresh_token", None)
            .number("expires_in", 3600)
            .string("scope", "ibm \"openid\"\n")
            .object("account", |o| o.boolean("valid", true).number("n", -7))
            .object("empty", |o| o)
            .strings("amr", &["pwd", "otp"])
            .strings("none", &[] as &[&str])
            .strings_unless_empty("skipped", &[] as &[String])
            .boolean("off", false)
            .finish();
        assert_eq!(
            body,
            r#"{"access_token":"eyJ.eyJ.sig","expires_in":3600,"scope":"ibm \"openid\"\n","account":{"valid":true,"n":-7},"empty":{},"amr":["pwd","otp"],"none":[],"off":false}"#
        );
        assert_eq!(ObjectWriter::with_capacity(0).finish(), "{}");
    }

    fn written(value: &str) -> String {
        let mut out = String::new();
        push_string(&mut out, value);
        out
    }

    #[test]
    fn every_ascii_character_is_written_as_serde_json_writes_it() {
        for byte in 0u8..=0x7f {
            let value = format!("a{}b", char::from(byte));
            assert_eq!(
                written(&value),
                serde_json::to_string(&value).unwrap_or_default()
            );
        }
    }

    proptest! {
        /// Whatever the string, the bytes are serde_json's own: control characters, quotes and
        /// backslashes (the escaped ones) as well as any Unicode.
        #[test]
        fn strings_are_written_as_serde_json_writes_them(
            value in prop_oneof!["[\\x00-\\x7f]{0,40}", any::<String>()]
        ) {
            prop_assert_eq!(written(&value), serde_json::to_string(&value).unwrap_or_default());
        }
    }
}
