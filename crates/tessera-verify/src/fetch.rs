//! The HTTP client of the key sources and of introspection: timeouts, no redirects, a body
//! limit, and an SSRF guard that refuses private, loopback and link-local addresses (IP
//! literals in the URL and every address a host name resolves to) unless allow-listed.

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How the crate talks HTTP. Build with [`HttpOptions::default`] and adjust.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The whole request, connect to last byte.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Networks that may be reached although they are private, loopback or link-local
    /// (an issuer inside the cluster, `127.0.0.1/32` in tests).
    pub allow_private: Vec<IpNet>,
    /// Largest answer read, in bytes.
    pub max_body: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            allow_private: Vec::new(),
            max_body: 1024 * 1024,
        }
    }
}

/// Why a fetch failed. Messages name the URL (never a token or secret) and the cause.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    #[error("{0} is not an http or https URL")]
    BadUrl(String),
    #[error("{0} is a private, loopback or link-local address that is not allow-listed")]
    Forbidden(String),
    #[error("request to {url} failed: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} answered more than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url} answered an unusable document: {reason}")]
    Document { url: String, reason: String },
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

/// One answer: the body and its `Cache-Control: max-age`.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub body: Vec<u8>,
    pub max_age: Option<u64>,
}

/// Decides which addresses may be contacted.
#[derive(Debug)]
struct AddressGuard {
    allow: Vec<IpNet>,
}

impl AddressGuard {
    fn allows(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.allow.iter().any(|net| net.contains(&ip))
    }
}

/// Whether `ip` is a globally routed unicast address (not private, loopback, link-local
/// (cloud metadata lives there), shared, unspecified, documentation, broadcast or multicast).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                || (first == 0x0064 && v6.segments()[1] == 0xff9b))
        }
    }
}

/// Resolves host names and drops refused addresses, so a name cannot lead inside.
struct GuardedResolver {
    guard: Arc<AddressGuard>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.into_iter().filter(|a| guard.allows(a.ip())).collect();
            if allowed.is_empty() {
                let refused = std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{host} resolves only to private addresses that are not allow-listed"),
                );
                return Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The guarded client.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    client: reqwest::Client,
    guard: Arc<AddressGuard>,
    max_body: usize,
}

impl Fetcher {
    pub fn new(options: &HttpOptions) -> Result<Self, FetchError> {
        let guard = Arc::new(AddressGuard {
            allow: options.allow_private.clone(),
        });
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would reach the addresses the guard refuses.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                guard: guard.clone(),
            }))
            .user_agent(concat!("tessera-verify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Client(e.to_string()))?;
        Ok(Fetcher {
            client,
            guard,
            max_body: options.max_body,
        })
    }

    /// Parses `url` and refuses it unless it is http(s) to an allowed address literal or a
    /// host name (whose addresses the resolver checks).
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, FetchError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| FetchError::BadUrl(url.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") || !parsed.username().is_empty() {
            return Err(FetchError::BadUrl(url.to_owned()));
        }
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(FetchError::BadUrl(url.to_owned())),
        };
        if let Some(ip) = literal {
            if !self.guard.allows(ip) {
                return Err(FetchError::Forbidden(url.to_owned()));
            }
        }
        Ok(parsed)
    }

    /// `GET url`, expecting a 200 answer.
    pub async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        let parsed = self.check_url(url)?;
        let request = self
            .client
            .get(parsed)
            .header(reqwest::header::ACCEPT, "application/json");
        self.send(url, request).await
    }

    /// A request built on this client (introspection's POST).
    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, FetchError> {
        let parsed = self.check_url(url)?;
        Ok(self.client.post(parsed))
    }

    /// Sends a request and reads a 200 answer of at most `max_body` bytes.
    pub async fn send(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Fetched, FetchError> {
        let transport = |e: reqwest::Error| FetchError::Transport {
            url: url.to_owned(),
            reason: describe(&e),
        };
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status,
            });
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::refresh::max_age);
        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            limit: self.max_body,
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > self.max_body {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, max_age })
    }
}

/// A transport error with its causes, which name refused addresses and timeouts.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "transport error".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_not_public() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn urls_to_refused_addresses_fail_before_any_request() {
        let fetcher = Fetcher::new(&HttpOptions::default()).unwrap();
        for url in [
            "http://127.0.0.1:1/keys",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/keys",
            "http://10.0.0.1/keys",
        ] {
            assert_eq!(
                fetcher.get(url).await.unwrap_err(),
                FetchError::Forbidden(url.to_owned())
            );
        }
        for url in ["file:///etc/passwd", "ftp://example.com/", "not a url"] {
            assert_eq!(
                fetcher.get(url).await.unwrap_err(),
                FetchError::BadUrl(url.to_owned())
            );
        }
        // A name that resolves to loopback is refused by the resolver.
        let err = fetcher.get("http://localhost:1/keys").await.unwrap_err();
        assert!(
            matches!(&err, FetchError::Transport { reason, .. } if reason.contains("not allow-listed")),
            "{err}"
        );
        // Allow-listed, the same literal goes through to the connection attempt.
        let allowed = Fetcher::new(&HttpOptions {
            allow_private: vec!["127.0.0.1/32".parse().unwrap()],
            ..HttpOptions::default()
        })
        .unwrap();
        assert!(allowed.check_url("http://127.0.0.1:1/keys").is_ok());
        assert!(allowed.check_url("http://127.0.0.2:1/keys").is_err());
    }
}
