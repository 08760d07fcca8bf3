//! The metadata agent's request parsing: the path below `/computeMetadata/v1/` and the query
//! string (`agent::request`). The input is `path?query`.
//!
//! Properties: segments are never empty, `.`, `..` or slashed, and are the path's own pieces in
//! order; accepted parameters keep their documented bounds; parsing is deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::agent::request::{MetadataPath, Params, MAX_WAIT_SECONDS};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = match text.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (text, None),
    };
    if let Some(parsed) = MetadataPath::parse(path) {
        for segment in &parsed.segments {
            assert!(!segment.is_empty() && *segment != "." && *segment != "..");
            assert!(!segment.contains('/'));
        }
        let collapsed: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        assert_eq!(parsed.segments, collapsed);
        assert_eq!(parsed.is_dir, path.is_empty() || path.ends_with('/'));
    } else {
        assert!(path.split('/').any(|s| s == "." || s == ".."));
    }
    let first = Params::parse(query);
    assert_eq!(first, Params::parse(query), "parsing is deterministic");
    if let Ok(params) = first {
        assert!(params.timeout_sec.is_none_or(|s| s <= MAX_WAIT_SECONDS));
        if params.wait_for_change || params.recursive {
            assert!(query.is_some());
        }
    }
});
