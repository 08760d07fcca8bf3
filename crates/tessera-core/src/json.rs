//! Token answers written straight into their buffer.
//!
//! serde_json escapes a string by looking up every byte in a table, one at a time: on the API-key
//! grant that scan over the tokens of the answer was most of the 7.7 % of the server's
//! instructions spent in `serialize_str` (docs/benchmarks.md). A JWT, a `t1.` token or a sealed
//! refresh token is base64url and dots, which needs no escaping; one scan that the compiler
//! vectorizes proves it, and anything else still goes through serde_json, so the bytes are the
//! same either way.

use std::fmt::Write as _;

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
        // Writing into a String cannot fail.
        let _ = write!(self.out, "{value}");
        self
    }

    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
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
            .finish();
        assert_eq!(
            body,
            r#"{"access_token":"eyJ.eyJ.sig","expires_in":3600,"scope":"ibm \"openid\"\n"}"#
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
