//! `agent.toml` (`agent::config::AgentFile::parse`) and the host-mode workload table it holds.
//!
//! Properties: a file that parses keeps the documented bounds and passes its own attribute
//! check; its workload table is unique by source and ordered most specific first.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::agent::config::AgentFile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = AgentFile::parse(text) else {
        return;
    };
    assert!((1..=3600).contains(&file.refresh.max_backoff_seconds));
    assert!(file.refresh.expiry_margin_seconds <= 3600);
    assert!(file.attributes().check().is_ok());
    if let Ok(routes) = file.routes() {
        for pair in routes.windows(2) {
            assert!(pair[0].source.prefix_len() >= pair[1].source.prefix_len());
        }
        for (i, route) in routes.iter().enumerate() {
            assert!(!route.service_account_id.is_empty());
            assert!(routes[i + 1..]
                .iter()
                .all(|other| other.source != route.source));
            assert!(!route.scopes.is_empty());
        }
    }
});
