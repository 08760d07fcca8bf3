//! What the Yandex surface derives from the configuration once at startup: the address that
//! endpoint discovery advertises and the audiences a service-account JWT may name.

use crate::config::Config;
use tessera_core::service_account_jwt::CANONICAL_AUDIENCE;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YandexSettings {
    /// `host:port` that `ApiEndpointService` returns for every endpoint.
    pub advertised_address: String,
    /// Accepted `aud` values of service-account JWTs.
    pub audiences: Vec<String>,
}

impl YandexSettings {
    /// `public_url` is the URL clients reach the server at (`http(s)://host[:port]`).
    pub fn new(config: &Config, public_url: &str) -> YandexSettings {
        let advertised_address = config
            .advertised_address
            .clone()
            .unwrap_or_else(|| host_port_of(public_url));
        let mut audiences = vec![CANONICAL_AUDIENCE.to_owned()];
        // SDKs derive `aud` from the endpoint they were given: https://iam.<endpoint>/iam/v1/tokens.
        // For a loopback address, accept every spelling of loopback a developer may type.
        let mut endpoints = vec![advertised_address.clone()];
        if let Some((host, port)) = advertised_address.rsplit_once(':') {
            if matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
                for loopback in ["localhost", "127.0.0.1", "[::1]"] {
                    endpoints.push(format!("{loopback}:{port}"));
                }
            }
        }
        for endpoint in endpoints {
            audiences.push(format!("https://iam.{endpoint}/iam/v1/tokens"));
        }
        audiences.extend(config.jwt_audiences.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        audiences.retain(|aud| seen.insert(aud.clone()));
        YandexSettings {
            advertised_address,
            audiences,
        }
    }
}

/// `host:port` of a URL, with the scheme's default port when the URL has none.
fn host_port_of(url: &str) -> String {
    let (default_port, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (443, rest)
    } else {
        (80, url.strip_prefix("http://").unwrap_or(url))
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let has_port = match authority.rfind(']') {
        Some(bracket) => authority[bracket..].contains(':'),
        None => authority.contains(':'),
    };
    if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_address_comes_from_the_public_url() {
        assert_eq!(
            host_port_of("https://iam.example.com"),
            "iam.example.com:443"
        );
        assert_eq!(host_port_of("http://127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(host_port_of("https://[::1]:8443/x"), "[::1]:8443");
        assert_eq!(host_port_of("http://[::1]"), "[::1]:80");
    }

    #[test]
    fn audiences_include_canonical_derived_and_configured() {
        let dir = std::path::Path::new("/tmp/none");
        let mut config = Config::for_test(dir);
        config.jwt_audiences = vec!["https://custom/aud".into()];
        let settings = YandexSettings::new(&config, "https://127.0.0.1:8443");
        assert_eq!(settings.advertised_address, "127.0.0.1:8443");
        for aud in [
            CANONICAL_AUDIENCE,
            "https://iam.127.0.0.1:8443/iam/v1/tokens",
            "https://iam.localhost:8443/iam/v1/tokens",
            "https://custom/aud",
        ] {
            assert!(settings.audiences.iter().any(|a| a == aud), "{aud}");
        }
        config.advertised_address = Some("iam.corp:443".into());
        let settings = YandexSettings::new(&config, "https://127.0.0.1:8443");
        assert_eq!(settings.advertised_address, "iam.corp:443");
        assert!(settings
            .audiences
            .iter()
            .any(|a| a == "https://iam.iam.corp:443/iam/v1/tokens"));
        assert!(!settings.audiences.iter().any(|a| a.contains("localhost")));
    }
}
