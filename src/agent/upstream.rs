//! The agent's side of the wire to the Tessera server: turning its credential into a token,
//! tokens for host-mode workloads (`CreateForServiceAccount`), the subject's e-mail, ID tokens
//! and the cr-token exchange of the IBM VPC flavour. Error messages carry the server's message
//! and never a credential or a token.

use anyhow::{anyhow, bail, Context, Result};
use aws_lc_rs::rand::SystemRandom;
use serde::Deserialize;
use serde_json::{json, Value};
use std::fmt;
use std::path::Path;
use std::time::Duration;
use tessera_core::jose::SigningKey;
use tessera_core::model::Algorithm;
use tessera_core::service_account_jwt::pem_decode;

/// The audience of the service-account JWTs the agent signs: the canonical Yandex tokens URL,
/// which every Tessera server accepts.
const YANDEX_TOKENS_AUDIENCE: &str = "https://iam.api.cloud.yandex.net/iam/v1/tokens";
const APIKEY_GRANT: &str = "urn:ibm:params:oauth:grant-type:apikey";
const CR_TOKEN_GRANT: &str = "urn:ibm:params:oauth:grant-type:cr-token";

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

/// An HTTP client of one Tessera server.
#[derive(Clone)]
pub struct Upstream {
    base: String,
    http: reqwest::Client,
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

impl Upstream {
    pub fn new(server: &str, ca_pem: Option<&[u8]>) -> Result<Upstream> {
        let base = server.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("server must be an http:// or https:// URL, got {server:?}");
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("tessera-agent/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15));
        if let Some(pem) = ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .context("the CA certificate file is not PEM")?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Upstream {
            base,
            http: builder.build().context("cannot build the HTTP client")?,
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
                let body = self
                    .send(
                        self.http
                            .post(self.url("/iam/v1/tokens"))
                            .json(&json!({"jwt": jwt})),
                    )
                    .await?;
                yandex_token(&body)
            }
            Credential::ApiKey(apikey) => {
                let body = self
                    .send(
                        self.http
                            .post(self.url("/identity/token"))
                            .header("Accept", "application/json")
                            .form(&[("grant_type", APIKEY_GRANT), ("apikey", apikey)]),
                    )
                    .await?;
                ibm_token(&body)
            }
        }
    }

    /// A token for `service_account_id`, obtained with the agent's own token
    /// (`CreateForServiceAccount`: the agent needs the token-creator role on that account).
    pub async fn create_for_service_account(
        &self,
        bearer: &str,
        service_account_id: &str,
    ) -> Result<FetchedToken, UpstreamError> {
        let body = self
            .send(
                self.http
                    .post(self.url("/iam/v1/tokens:createForServiceAccount"))
                    .bearer_auth(bearer)
                    .json(&json!({"serviceAccountId": service_account_id})),
            )
            .await?;
        yandex_token(&body)
    }

    /// The token's subject: `(id, email)`.
    pub async fn whoami(&self, bearer: &str) -> Result<(String, Option<String>), UpstreamError> {
        let body = self
            .send(self.http.get(self.url("/v1/whoami")).bearer_auth(bearer))
            .await?;
        let id = text_field(&body, "id")?;
        let email = body.get("email").and_then(Value::as_str).map(str::to_owned);
        Ok((id, email))
    }

    /// An ID token for the bearer, addressed to `audience`.
    pub async fn id_token(
        &self,
        bearer: &str,
        audience: &str,
        full: bool,
        compute_engine: &serde_json::Map<String, Value>,
    ) -> Result<FetchedToken, UpstreamError> {
        let mut request =
            json!({"audience": audience, "format": if full { "full" } else { "standard" }});
        if full && !compute_engine.is_empty() {
            request["compute_engine"] = Value::Object(compute_engine.clone());
        }
        let body = self
            .send(
                self.http
                    .post(self.url("/v1/id_tokens"))
                    .bearer_auth(bearer)
                    .json(&request),
            )
            .await?;
        Ok(FetchedToken {
            access_token: text_field(&body, "id_token")?,
            expires_at: unix_now() + int_field(&body, "expires_in")?,
        })
    }

    /// The IBM `cr-token` grant: a compute-resource token (here, an instance identity token)
    /// for an access token of a trusted profile. `profile` is `(field, value)`, e.g.
    /// `("profile_id", "Profile-…")`.
    pub async fn cr_token(
        &self,
        cr_token: &str,
        profile: &[(&str, &str)],
    ) -> Result<FetchedToken, UpstreamError> {
        let mut form = vec![("grant_type", CR_TOKEN_GRANT), ("cr_token", cr_token)];
        form.extend_from_slice(profile);
        let body = self
            .send(
                self.http
                    .post(self.url("/identity/token"))
                    .header("Accept", "application/json")
                    .form(&form),
            )
            .await?;
        ibm_token(&body)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, UpstreamError> {
        let response = request.send().await.map_err(|e| transport_error(&e))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let message = server_message(&body).unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(UpstreamError::Unavailable(message));
        }
        Err(UpstreamError::Refused {
            status: status.as_u16(),
            message,
        })
    }
}

/// The message in any of the server's error shapes (IBM, Yandex, admin).
fn server_message(body: &Value) -> Option<String> {
    let candidates = [
        body.get("errorMessage"),
        body.get("message"),
        body.pointer("/error/message"),
        body.get("error_description"),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(Value::as_str)
        .map(str::to_owned)
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

/// The rustls error somewhere in `error`'s causes. An `io::Error` does not report its inner
/// error as a source, so those are opened by hand.
fn tls_cause<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = current {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(tls) = tls_cause(inner) {
                return Some(tls);
            }
        }
        current = cause.source();
    }
    None
}

fn describe_tls(error: &rustls::Error) -> String {
    use rustls::{CertificateError, Error};
    match error {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "{error}: the server's certificate is not signed by a CA the agent trusts;              pass --cacert FILE (or set TESSERA_CACERT) with the CA that signed it"
        ),
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "{error}: the server's certificate does not name the host in --server; use a name              the certificate has"
        ),
        Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => format!("{error}: the server's certificate has expired"),
        Error::InvalidMessage(_) => format!(
            "{error}: the server did not answer in TLS; if it serves plain HTTP, use an              http:// --server URL"
        ),
        other => other.to_string(),
    }
}

fn text_field(body: &Value, field: &str) -> Result<String, UpstreamError> {
    body.get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| UpstreamError::Unavailable(format!("the answer has no {field}")))
}

fn int_field(body: &Value, field: &str) -> Result<i64, UpstreamError> {
    body.get(field)
        .and_then(Value::as_i64)
        .ok_or_else(|| UpstreamError::Unavailable(format!("the answer has no {field}")))
}

/// `{iamToken, expiresAt}` (RFC 3339).
fn yandex_token(body: &Value) -> Result<FetchedToken, UpstreamError> {
    let access_token = text_field(body, "iamToken")?;
    let expires_at = text_field(body, "expiresAt")?;
    let expires_at =
        time::OffsetDateTime::parse(&expires_at, &time::format_description::well_known::Rfc3339)
            .map_err(|_| UpstreamError::Unavailable("expiresAt is not RFC 3339".into()))?
            .unix_timestamp();
    Ok(FetchedToken {
        access_token,
        expires_at,
    })
}

/// `{access_token, expiration}` (unix seconds).
fn ibm_token(body: &Value) -> Result<FetchedToken, UpstreamError> {
    Ok(FetchedToken {
        access_token: text_field(body, "access_token")?,
        expires_at: int_field(body, "expiration")?,
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
    fn server_messages_are_found_in_every_shape() {
        let ibm = json!({"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found."});
        assert_eq!(
            server_message(&ibm).unwrap(),
            "Provided API key could not be found."
        );
        let yandex = json!({"code": 16, "message": "bad jwt"});
        assert_eq!(server_message(&yandex).unwrap(), "bad jwt");
        let admin = json!({"error": {"code": "x", "message": "denied"}});
        assert_eq!(server_message(&admin).unwrap(), "denied");
    }

    #[test]
    fn yandex_answers_parse() {
        let body = json!({"iamToken": "t1.x", "expiresAt": "2026-01-01T00:00:00Z"});
        let token = yandex_token(&body).unwrap();
        assert_eq!(token.expires_at, 1_767_225_600);
        assert!(yandex_token(&json!({"iamToken": "t1.x"})).is_err());
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
