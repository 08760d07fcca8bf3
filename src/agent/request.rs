//! What a metadata request asks for, before any answer is chosen: the path below
//! `/computeMetadata/v1/` as segments, and the query parameters GCE defines. A leaf module of
//! pure parsing, so the fuzz targets reach it without a server.

/// Longest `wait_for_change` hang.
pub const MAX_WAIT_SECONDS: u64 = 3600;

/// The path below the prefix, split into segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataPath<'a> {
    /// Non-empty segments (repeated slashes collapse).
    pub segments: Vec<&'a str>,
    /// Whether the path names a directory (empty, or ending in `/`).
    pub is_dir: bool,
}

impl<'a> MetadataPath<'a> {
    /// Splits `rest` (the path after `/computeMetadata/v1/`); `None` for `.` or `..` segments,
    /// which name nothing (no traversal out of the tree).
    pub fn parse(rest: &'a str) -> Option<MetadataPath<'a>> {
        let is_dir = rest.is_empty() || rest.ends_with('/');
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        if segments.iter().any(|s| *s == "." || *s == "..") {
            return None;
        }
        Some(MetadataPath { segments, is_dir })
    }
}

/// Query parameters of metadata requests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params {
    pub recursive: bool,
    pub json: Option<bool>,
    pub wait_for_change: bool,
    pub last_etag: Option<String>,
    pub timeout_sec: Option<u64>,
    pub scopes: Option<String>,
    pub audience: Option<String>,
    pub full: bool,
}

impl Params {
    pub fn parse(query: Option<&str>) -> Result<Params, String> {
        let pairs: Vec<(String, String)> = match query {
            Some(q) => {
                serde_urlencoded::from_str(q).map_err(|_| "the query string is malformed")?
            }
            None => Vec::new(),
        };
        let mut params = Params::default();
        for (key, value) in pairs {
            match key.as_str() {
                "recursive" => params.recursive = boolean(&key, &value)?,
                "wait_for_change" => params.wait_for_change = boolean(&key, &value)?,
                "alt" => {
                    params.json = Some(match value.as_str() {
                        "json" => true,
                        "text" => false,
                        _ => return Err(format!("alt must be json or text, got {value:?}")),
                    })
                }
                "last_etag" => params.last_etag = Some(value),
                "timeout_sec" => {
                    let seconds: u64 = value.parse().map_err(|_| {
                        format!("timeout_sec must be a number of seconds, got {value:?}")
                    })?;
                    params.timeout_sec = Some(seconds.min(MAX_WAIT_SECONDS));
                }
                "scopes" => params.scopes = Some(value),
                "audience" => params.audience = Some(value),
                "format" => {
                    params.full = match value.as_str() {
                        "full" => true,
                        "standard" => false,
                        _ => return Err(format!("format must be standard or full, got {value:?}")),
                    }
                }
                // licenses=TRUE adds GCE license codes, of which Tessera has none.
                "licenses" => {
                    boolean(&key, &value)?;
                }
                _ => {}
            }
        }
        Ok(params)
    }
}

fn boolean(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{key} must be true or false, got {value:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_segments_and_refuse_dots() {
        let path = MetadataPath::parse("instance//service-accounts/").unwrap();
        assert_eq!(path.segments, ["instance", "service-accounts"]);
        assert!(path.is_dir);
        assert!(MetadataPath::parse("instance/../project").is_none());
        assert!(MetadataPath::parse("").unwrap().is_dir);
    }

    #[test]
    fn query_parameters_are_checked() {
        let params = Params::parse(Some("recursive=TRUE&alt=json&timeout_sec=99999")).unwrap();
        assert!(params.recursive);
        assert_eq!(params.json, Some(true));
        assert_eq!(params.timeout_sec, Some(MAX_WAIT_SECONDS));
        assert!(Params::parse(Some("alt=xml")).is_err());
        assert!(Params::parse(Some("recursive=maybe")).is_err());
        assert_eq!(Params::parse(None).unwrap(), Params::default());
    }
}
