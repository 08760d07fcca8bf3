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

    fn name(&mut self, name: &str) {
        if !std::mem::take(&mut self.empty) {
            self.out.push(',');
        }
        push_string(&mut self.out, name);
        self.out.push(':');
    }

    pub fn string(mut self, name: &str, value: &str) -> ObjectWriter {
        self.name(name);
        push_string(&mut self.out, value);
        self
    }

    pub fn optional_string(self, name: &str, value: Option<&str>) -> ObjectWriter {
        match value {
            Some(value) => self.string(name, value),
            None => self,
        }
    }

    pub fn number(mut self, name: &str, value: i64) -> ObjectWriter {
        self.name(name);
        self.out.push_str(itoa::Buffer::new().format(value));
        self
    }

    pub fn boolean(mut self, name: &str, value: bool) -> ObjectWriter {
        self.name(name);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    /// An array of strings.
    pub fn strings<S: AsRef<str>>(mut self, name: &str, values: &[S]) -> ObjectWriter {
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
    pub fn strings_unless_empty<S: AsRef<str>>(self, name: &str, values: &[S]) -> ObjectWriter {
        if values.is_empty() {
            self
        } else {
            self.strings(name, values)
        }
    }

    /// A nested object, its members written by `members`.
    pub fn object(
        mut self,
        name: &str,
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
    use crate::lineage::{Lineage, Link};
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
