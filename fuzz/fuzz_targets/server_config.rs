//! `tessera.toml` (`config::parse_file`, then `Config::merge` as `serve` does it).
//!
//! Properties: a configuration that is accepted keeps every documented bound; its `Display`
//! (what the startup log shows) never contains the database password.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_server::config::{self, Config, SecretEnv, ServeArgs};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = config::parse_file(text) else {
        return;
    };
    let password = file
        .database_url
        .as_deref()
        .and_then(|url| url.split_once("://"))
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|authority| authority.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password.to_owned());
    let Ok(config) = Config::merge(&ServeArgs::default(), file, SecretEnv::default()) else {
        return;
    };
    assert!((60..=43_200).contains(&config.token_lifetime));
    assert!((60..=43_200).contains(&config.iam_token_lifetime));
    assert!(config.refresh_token_lifetime >= config.token_lifetime);
    assert!((1..=86_400).contains(&config.max_staleness));
    assert!(config.key_rotation_period > 4 * config.jwks_cache_seconds);
    assert!(config.connections.max_connections >= 1);
    assert!(!config.connections.header_read_timeout.is_zero());
    assert!(!config.connections.idle_timeout.is_zero());
    // Only a password that appears nowhere else in the file can only have come from the URL
    // (the fuzzer also copies it into paths, which the log line rightly shows).
    if let Some(password) =
        password.filter(|p| p.len() >= 4 && text.matches(p.as_str()).count() == 1)
    {
        let shown = config.to_string();
        assert!(
            !shown.contains(&password),
            "the log line shows the database password: {shown}"
        );
    }
});
