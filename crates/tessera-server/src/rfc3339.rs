//! RFC 3339 timestamps, as every surface writes them (`2026-12-02T21:30:00Z`). A leaf.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Unix seconds as RFC 3339 (whole seconds, UTC). Empty for a time outside the calendar's range,
/// which no stored timestamp is.
pub fn from_unix(at: i64) -> String {
    OffsetDateTime::from_unix_timestamp(at)
        .map(format)
        .unwrap_or_default()
}

/// An instant as RFC 3339, with its fraction of a second if it has one.
pub fn format(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// RFC 3339 text as unix seconds (a fraction of a second is dropped). `None` if it is not RFC 3339.
pub fn to_unix(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_what_it_writes_and_offsets() {
        assert_eq!(super::to_unix("2027-01-15T08:00:00Z"), Some(1_800_000_000));
        assert_eq!(
            super::to_unix("2027-01-15T09:00:00.9+01:00"),
            Some(1_800_000_000)
        );
        assert_eq!(super::to_unix("2027-01-15 08:00"), None);
        assert_eq!(super::to_unix(""), None);
    }

    #[test]
    fn whole_and_fractional_seconds() {
        assert_eq!(super::from_unix(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(super::from_unix(0), "1970-01-01T00:00:00Z");
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(1_500_000_000).unwrap();
        assert_eq!(super::format(at), "1970-01-01T00:00:01.5Z");
    }
}
