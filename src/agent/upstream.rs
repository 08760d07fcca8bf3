//! The agent's side of the wire to the Tessera server: turning its credential into a token,
//! tokens for host-mode workloads (`CreateForServiceAccount`), the subject's e-mail, ID tokens
//! and the cr-token exchange of the IBM VPC flavour. Error messages carry the server's message
//! and never a credential or a token.

use crate::transport::{tls_cause, TlsProblem};
use anyhow::{anyhow, bail, Context, Result};
use aws_lc_rs::rand::SystemRandom;
use serde::Deserialize;
use serde_json::json;
use std::fmt;
use std::path::Path;
use std::time::Duration;
use tessera_api::admin::IdTokenCreate;
use tessera_api::token::{IbmTokenResponse, YandexIamToken};
pub use tessera_client::TrustedProfileSelector;
use tessera_client::{Client, Error as ClientError};
use tessera_core::jose::SigningKey;
use tessera_core::model::Algorithm;
use tessera_core::service_account_jwt::pem_decode;

/// The audience of the service-account JWTs the agent signs: the canonical Yandex tokens URL,
/// which every Tessera server accepts.
const YANDEX_TOKENS_AUDIENCE: &str = "https://iam.api.cloud.yandex.net/iam/v1/tokens";

/// A bearer token and when it stops working (unix seconds).
#[derive(Clone)]
pub struct FetchedToken {
    pub access_token: String,
    pub expires_at: i64,
}

impl fmt::Debug for FetchedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchedToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What the agent authenticates with.
pub enum Credential {
    /// A Yandex authorized key file: the agent signs PS256 JWTs and calls `POST /iam/v1/tokens`.
    AuthorizedKey {
        key_id: String,
        service_account_id: String,
        key: SigningKey,
    },
    /// An IBM API key file (`{"apikey": …}`): the `apikey` grant of `POST /identity/token`.
    ApiKey(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::AuthorizedKey {
                key_id,
                service_account_id,
                ..
            } => write!(f, "authorized key {key_id} of {service_account_id}"),
            Credential::ApiKey(_) => f.write_str("API key"),
        }
    }
}

#[derive(Deserialize)]
struct CredentialFile {
    id: Option<String>,
    service_account_id: Option<String>,
    private_key: Option<String>,
    apikey: Option<String>,
}

impl Credential {
    /// Reads a credential file: an authorized key file (`id`, `service_account_id`,
    /// `private_key`) or an API key file (`apikey`).
    pub fn load(path: &Path) -> Result<Credential> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read credentials file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("credentials file {}", path.display()))
    }

    /// Parses the text of a credential file; errors never quote it (it holds a secret).
    pub fn parse(text: &str) -> Result<Credential> {
        let file: CredentialFile = serde_json::from_str(text)
            .map_err(|e| anyhow!("is not JSON (line {}, column {})", e.line(), e.column()))?;
        match file {
            CredentialFile {
                apikey: Some(apikey),
                ..
            } if !apikey.trim().is_empty() => Ok(Credential::ApiKey(apikey.trim().to_owned())),
            CredentialFile {
                id: Some(key_id),
                service_account_id: Some(service_account_id),
                private_key: Some(pem),
                ..
            } => {
                let der = pem_to_der(&pem).context("private_key is not a PKCS#8 PEM key")?;
                let key = SigningKey::from_pkcs8(&key_id, Algorithm::Ps256, &der)
                    .map_err(|_| anyhow!("private_key is not an RSA PKCS#8 key"))?;
                Ok(Credential::AuthorizedKey {
                    key_id,
                    service_account_id,
                    key,
                })
            }
            _ => bail!(
                "holds neither an authorized key (id, service_account_id, private_key) nor an \
                 API key (apikey)"
            ),
        }
    }

    /// The service account the credential belongs to, when the file says.
    pub fn service_account_id(&self) -> Option<&str> {
        match self {
            Credential::AuthorizedKey {
                service_account_id, ..
            } => Some(service_account_id),
            Credential::ApiKey(_) => None,
        }
    }
}

/// The DER bytes of the `PRIVATE KEY` (PKCS#8) block of a PEM file.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    pem_decode("PRIVATE KEY", pem).ok_or_else(|| anyhow!("no base64 PRIVATE KEY block"))
}

/// What the server said, for logs and for answers to the agent's clients.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The server could not be reached or answered 5xx: try again later.
    #[error("the server is unavailable: {0}")]
    Unavailable(String),
    /// The TLS handshake with the server failed: a configuration problem (the CA, the name,
    /// http vs https) rather than an outage, so it says what to check.
    #[error("TLS with the server failed: {0}")]
    Tls(String),
    /// The server refused (4xx): the credential or the request is wrong.
    #[error("the server refused: {message}")]
    Refused { status: u16, message: String },
}

/// The agent's client of one Tessera server: `tessera_client` with the agent's timeouts and
/// user agent, its errors classified for the refresh loop and the agent's own answers.
#[derive(Clone)]
pub struct Upstream {
    client: Client,
    rng: std::sync::Arc<SystemRandom>,
}

impl UpstreamError {
    /// The `outcome` label of a failed refresh.
    pub fn label(&self) -> &'static str {
        match self {
            UpstreamError::Unavailable(_) => "unavailable",
            UpstreamError::Tls(_) => "tls",
            UpstreamError::Refused { .. } => "refused",
        }
    }
}

impl From<ClientError> for UpstreamError {
    /// A refusal (4xx, but 429) carries the server's message; an outage (5xx, 429, no answer,
    /// an answer that is not the API's) is worth retrying; a TLS failure says what to check.
    fn from(error: ClientError) -> UpstreamError {
        if let ClientError::Http { source, .. } = &error {
            return transport_error(source);
        }
        let message = match (error.server_message(), error.status()) {
            (Some(message), _) => message.to_owned(),
            (None, Some(status)) => format!("HTTP {status}"),
            (None, None) => error.to_string(),
        };
        match error.status() {
            Some(status) if !(status >= 500 || status == 429) => {
                UpstreamError::Refused { status, message }
            }
            _ => UpstreamError::Unavailable(message),
        }
    }
}

impl Upstream {
    pub fn new(server: &str, ca_pem: Option<&[u8]>) -> Result<Upstream> {
        let mut builder = Client::builder(server)
            .user_agent(concat!("tessera-agent/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15));
        if let Some(pem) = ca_pem {
            builder = builder.ca_pem(pem);
        }
        let client = match builder.build() {
            // The CA file's fault, not the server address's: the caller names the file.
            Err(e @ tessera_client::Error::NotPem) => return Err(e.into()),
            other => other.context("--server")?,
        };
        Ok(Upstream {
            client,
            rng: std::sync::Arc::new(SystemRandom::new()),
        })
    }

    /// A token for the credential's own identity.
    pub async fn authenticate(
        &self,
        credential: &Credential,
    ) -> Result<FetchedToken, UpstreamError> {
        match credential {
            Credential::AuthorizedKey {
                service_account_id,
                key,
                ..
            } => {
                let now = unix_now();
                let claims = json!({
                    "iss": service_account_id,
                    "aud": YANDEX_TOKENS_AUDIENCE,
                    "iat": now,
                    "exp": now + 600,
                });
                let jwt = key
                    .sign_jws(claims.to_string().as_bytes(), self.rng.as_ref())
                    .map_err(|_| UpstreamError::Unavailable("cannot sign the JWT".into()))?;
                yandex_token(&self.client.yandex_token_from_jwt(&jwt).await?)
            }
            Credential::ApiKey(apikey) => ibm_token(self.client.token_from_apikey(apikey).await?),
        }
    }

    /// A token for `service_account_id`, obtained with the agent's own token
    /// (`CreateForServiceAccount`: the agent needs the token-creator role on that account).
    pub async fn create_for_service_account(
        &self,
        bearer: &str,
        service_account_id: &str,
    ) -> Result<FetchedToken, UpstreamError> {
        let token = self
            .client
            .with_token(bearer)
            .create_for_service_account(service_account_id)
            .await?;
        yandex_token(&token)
    }

    /// The token's subject: `(id, email)`.
    pub async fn whoami(&self, bearer: &str) -> Result<(String, Option<String>), UpstreamError> {
        let me = self.client.with_token(bearer).whoami().await?;
        Ok((me.id, me.email))
    }

    /// An ID token for the bearer, addressed to `audience`.
    pub async fn id_token(
        &self,
        bearer: &str,
        audience: &str,
        full: bool,
        compute_engine: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<FetchedToken, UpstreamError> {
        let request = IdTokenCreate {
            audience: Some(audience.to_owned()),
            format: Some(if full { "full" } else { "standard" }.to_owned()),
            compute_engine: if full {
                compute_engine.clone()
            } else {
                serde_json::Map::new()
            },
        };
        let minted = self
            .client
            .with_token(bearer)
            .create_id_token(&request)
            .await?;
        Ok(FetchedToken {
            access_token: minted.id_token.into_inner(),
            expires_at: unix_now() + minted.expires_in,
        })
    }

    /// The IBM `cr-token` grant: a compute-resource token (here, an instance identity token)
    /// for an access token of a trusted profile (`None`: the one its links and rules admit).
    pub async fn cr_token(
        &self,
        cr_token: &str,
        profile: Option<&TrustedProfileSelector>,
    ) -> Result<FetchedToken, UpstreamError> {
        ibm_token(self.client.token_from_cr_token(cr_token, profile).await?)
    }
}

/// A transport error, without the URL's query (none is sent) or any body: a TLS failure as
/// such, with what to check; anything else as the server being unavailable.
fn transport_error(error: &reqwest::Error) -> UpstreamError {
    if let Some(tls) = tls_cause(error) {
        return UpstreamError::Tls(describe_tls(tls));
    }
    UpstreamError::Unavailable(if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else {
        error.to_string()
    })
}

fn describe_tls(error: &rustls::Error) -> String {
    match TlsProblem::of(error) {
        TlsProblem::UnknownIssuer => format!(
            "{error}: the server's certificate is not signed by a CA the agent trusts; \
             pass --cacert FILE (or set TESSERA_CACERT) with the CA that signed it"
        ),
        TlsProblem::WrongName => format!(
            "{error}: the server's certificate does not name the host in --server; use a name \
             the certificate has"
        ),
        TlsProblem::Expired => format!("{error}: the server's certificate has expired"),
        TlsProblem::NotTls => format!(
            "{error}: the server did not answer in TLS; if it serves plain HTTP, use an \
             http:// --server URL"
        ),
        TlsProblem::Other => error.to_string(),
    }
}

/// `{iamToken, expiresAt}` (RFC 3339).
fn yandex_token(token: &YandexIamToken) -> Result<FetchedToken, UpstreamError> {
    let expires_at = time::OffsetDateTime::parse(
        &token.expires_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| UpstreamError::Unavailable("expiresAt is not RFC 3339".into()))?
    .unix_timestamp();
    Ok(FetchedToken {
        access_token: token.iam_token.clone(),
        expires_at,
    })
}

/// `{access_token, expiration}` (unix seconds).
fn ibm_token(token: IbmTokenResponse) -> Result<FetchedToken, UpstreamError> {
    Ok(FetchedToken {
        access_token: token
            .access_token
            .ok_or_else(|| UpstreamError::Unavailable("the answer has no access_token".into()))?,
        expires_at: token.expiration,
    })
}

/// The agent's and CLI's one wall-clock read (token expiry checks against upstream tokens).
#[allow(clippy::disallowed_methods)] // The binary's one clock; see clippy.toml.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_are_classified() {
        let api = |status| {
            UpstreamError::from(ClientError::Api(tessera_client::ApiError {
                status,
                code: "x".into(),
                message: "denied".into(),
                request_id: None,
            }))
        };
        assert!(
            matches!(api(403), UpstreamError::Refused { status: 403, message } if message == "denied")
        );
        assert!(matches!(api(429), UpstreamError::Unavailable(m) if m == "denied"));
        assert!(matches!(api(503), UpstreamError::Unavailable(_)));
        let yandex = ClientError::Yandex(tessera_client::YandexError {
            status: 401,
            code: 16,
            message: "bad jwt".into(),
        });
        assert!(
            matches!(UpstreamError::from(yandex), UpstreamError::Refused { status: 401, message } if message == "bad jwt")
        );
        let proxy = ClientError::UnexpectedResponse {
            url: "http://x/".into(),
            status: 404,
            body: "<html>".into(),
        };
        assert!(
            matches!(UpstreamError::from(proxy), UpstreamError::Refused { message, .. } if message == "HTTP 404")
        );
        let decode = ClientError::Decode {
            url: "http://x/".into(),
            detail: "missing field".into(),
        };
        assert!(matches!(
            UpstreamError::from(decode),
            UpstreamError::Unavailable(_)
        ));
    }

    #[test]
    fn yandex_answers_parse() {
        let answer = |expires_at: &str| YandexIamToken {
            iam_token: "t1.x".into(),
            expires_at: expires_at.into(),
        };
        let token = yandex_token(&answer("2026-01-01T00:00:00Z")).unwrap();
        assert_eq!(token.expires_at, 1_767_225_600);
        assert!(yandex_token(&answer("tomorrow")).is_err());
    }

    #[test]
    fn credential_files_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, r#"{"apikey": "k"}"#).unwrap();
        assert!(matches!(
            Credential::load(&path).unwrap(),
            Credential::ApiKey(_)
        ));
        std::fs::write(
            &path,
            r#"{"id": "k", "service_account_id": "s", "private_key": "nope"}"#,
        )
        .unwrap();
        let err = format!("{:#}", Credential::load(&path).unwrap_err());
        assert!(err.contains("not a PKCS#8 PEM key"), "{err}");
        std::fs::write(&path, r#"{"x": 1}"#).unwrap();
        assert!(Credential::load(&path).is_err());
    }
}
