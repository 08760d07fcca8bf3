//! The client: one server, one connection pool, an optional bearer token; the calls of each
//! surface, and the plumbing that maps each surface's error shape to [`Error`] once.

use crate::error::{ApiError, Error, Result, TokenError, YandexError};
use crate::resource::{list_key, Resource};
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::time::Duration;
use tessera_api::admin::{
    AccountUpdate, AccountView, AuditEvent, AuditQuery, CodeBody, ConfirmCodeBody, EnrollQuery,
    IdTokenCreate, IdTokenView, ListQuery, SigningKeyRotate, SigningKeyView, TotpEnrollView,
    TotpStatusView, TrustedIssuerUpdate, TrustedIssuerView, TrustedProfileReplace,
    TrustedProfileView, WhoAmI,
};
use tessera_api::error::ErrorBody;
use tessera_api::paths;
use tessera_api::token::{
    GrantType, IbmErrorBody, IbmTokenRequest, IbmTokenResponse, YandexErrorBody, YandexIamToken,
    YandexTokenCreate, YandexTokenForServiceAccount,
};

/// Longest excerpt of an unexpected (non-JSON) error body kept in an error message.
const BODY_EXCERPT_CHARS: usize = 200;

/// Which trusted profile a `cr-token` exchange asks for: exactly one of its id, CRN or name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedProfileSelector {
    Id(String),
    Crn(String),
    Name(String),
}

/// A connection to one Tessera server. Cheap to clone (the connection pool is shared).
///
/// A client made with [`Client::new`] can exchange credentials for tokens; [`Client::with_token`]
/// gives a client that also authenticates admin API calls (and `createForServiceAccount`).
/// Calls on a client without a token are sent without an `Authorization` header (the server
/// answers `401 unauthenticated`), which lets tests exercise exactly that.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: Url,
    token: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// How to reach the server: the CA to trust, timeouts, the user agent. [`Client::builder`].
#[derive(Clone)]
pub struct ClientBuilder {
    endpoint: String,
    user_agent: String,
    connect_timeout: Duration,
    timeout: Duration,
    ca_pem: Option<Vec<u8>>,
}

impl ClientBuilder {
    /// The `User-Agent` header (default `tessera-client/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> ClientBuilder {
        self.user_agent = user_agent.into();
        self
    }

    /// How long connecting may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = timeout;
        self
    }

    /// How long a whole request may take, body included (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.timeout = timeout;
        self
    }

    /// Also trust the CA certificate(s) in `pem`, for a server whose certificate comes from a
    /// private CA (the public web PKI stays trusted).
    pub fn ca_pem(mut self, pem: &[u8]) -> ClientBuilder {
        self.ca_pem = Some(pem.to_vec());
        self
    }

    pub fn build(self) -> Result<Client> {
        let endpoint = parse_endpoint(&self.endpoint)?;
        let mut builder = reqwest::Client::builder()
            .user_agent(self.user_agent)
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout);
        if let Some(pem) = &self.ca_pem {
            let certificates =
                reqwest::Certificate::from_pem_bundle(pem).map_err(Error::InvalidCertificate)?;
            if certificates.is_empty() {
                return Err(Error::NotPem);
            }
            for cert in certificates {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(Error::Build)?;
        Ok(Client {
            http,
            endpoint,
            token: None,
        })
    }
}

impl Client {
    /// How to reach the server at `endpoint` (e.g. `https://iam.example.com`, optionally with
    /// a base path).
    pub fn builder(endpoint: &str) -> ClientBuilder {
        ClientBuilder {
            endpoint: endpoint.to_owned(),
            user_agent: concat!("tessera-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            ca_pem: None,
        }
    }

    /// A client for the server at `endpoint` with the defaults of [`Client::builder`],
    /// trusting the public web PKI.
    pub fn new(endpoint: &str) -> Result<Client> {
        Client::builder(endpoint).build()
    }

    /// The same server, authenticating with `access_token` (a bearer token).
    pub fn with_token(&self, access_token: impl Into<String>) -> Client {
        Client {
            http: self.http.clone(),
            endpoint: self.endpoint.clone(),
            token: Some(access_token.into()),
        }
    }

    /// The endpoint, normalised (always ends in `/`).
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    // --- token surfaces -------------------------------------------------------------------

    /// `POST /identity/token` with any grant's form, as the public client (no client
    /// authentication).
    pub async fn token(&self, form: &IbmTokenRequest) -> Result<IbmTokenResponse> {
        self.token_request(form, None).await
    }

    /// `POST /identity/token` with any grant's form, authenticating as the confidential
    /// client `client_id` (HTTP Basic), whose id the issued tokens then carry.
    pub async fn token_as_client(
        &self,
        client_id: &str,
        client_secret: &str,
        form: &IbmTokenRequest,
    ) -> Result<IbmTokenResponse> {
        self.token_request(form, Some((client_id, client_secret)))
            .await
    }

    async fn token_request(
        &self,
        form: &IbmTokenRequest,
        client: Option<(&str, &str)>,
    ) -> Result<IbmTokenResponse> {
        let url = self.url(paths::IBM_TOKEN, None);
        let mut request = self
            .http
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form);
        if let Some((id, secret)) = client {
            request = request.basic_auth(id, Some(secret));
        }
        let response = send(request, &url).await?;
        let status = response.status();
        let global_id = response
            .headers()
            .get("x-global-transaction-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_body(response, &url).await?;
        if status.is_success() {
            return decode(&body, &url, Secrets::Present);
        }
        match serde_json::from_slice::<IbmErrorBody>(&body) {
            Ok(err) => Err(TokenError::new(status.as_u16(), err, global_id).into()),
            Err(_) => Err(unexpected(status, &body, &url)),
        }
    }

    /// Exchanges an API key for an IAM access token (the `apikey` grant, with
    /// `response_type=cloud_iam`, as IBM's SDKs send it).
    pub async fn token_from_apikey(&self, apikey: &str) -> Result<IbmTokenResponse> {
        self.token(&IbmTokenRequest {
            grant_type: grant_type(GrantType::ApiKey),
            apikey: Some(apikey.to_owned()),
            response_type: Some("cloud_iam".to_owned()),
            ..IbmTokenRequest::default()
        })
        .await
    }

    /// The `cr-token` grant: a compute-resource token for an access token of the trusted
    /// profile `profile` names, or without one, of the profile the token's links and claim
    /// rules admit it to.
    pub async fn token_from_cr_token(
        &self,
        cr_token: &str,
        profile: Option<&TrustedProfileSelector>,
    ) -> Result<IbmTokenResponse> {
        let mut form = IbmTokenRequest {
            grant_type: grant_type(GrantType::CrToken),
            cr_token: Some(cr_token.to_owned()),
            ..IbmTokenRequest::default()
        };
        match profile {
            Some(TrustedProfileSelector::Id(id)) => form.profile_id = Some(id.clone()),
            Some(TrustedProfileSelector::Crn(crn)) => form.profile_crn = Some(crn.clone()),
            Some(TrustedProfileSelector::Name(name)) => form.profile_name = Some(name.clone()),
            None => {}
        }
        self.token(&form).await
    }

    /// `POST /iam/v1/tokens` with a PS256 JWT signed by a service account's authorized key.
    pub async fn yandex_token_from_jwt(&self, jwt: &str) -> Result<YandexIamToken> {
        let body = YandexTokenCreate {
            yandex_passport_oauth_token: None,
            jwt: Some(jwt.to_owned()),
        };
        self.yandex(paths::YANDEX_TOKENS, &body).await
    }

    /// `POST /iam/v1/tokens` with a user's OAuth token.
    pub async fn yandex_token_from_oauth_token(&self, oauth_token: &str) -> Result<YandexIamToken> {
        let body = YandexTokenCreate {
            yandex_passport_oauth_token: Some(oauth_token.to_owned()),
            jwt: None,
        };
        self.yandex(paths::YANDEX_TOKENS, &body).await
    }

    /// `POST /iam/v1/tokens:createForServiceAccount`: a token for `service_account_id`,
    /// authorised by this client's token (its subject needs the token-creator role).
    pub async fn create_for_service_account(
        &self,
        service_account_id: &str,
    ) -> Result<YandexIamToken> {
        let body = YandexTokenForServiceAccount {
            service_account_id: service_account_id.to_owned(),
        };
        self.yandex(paths::YANDEX_TOKENS_FOR_SERVICE_ACCOUNT, &body)
            .await
    }

    /// `POST /v1/id_tokens`: an ID token for this client's token's subject.
    pub async fn create_id_token(&self, body: &IdTokenCreate) -> Result<IdTokenView> {
        self.admin_call(
            Method::POST,
            self.url(paths::ID_TOKENS, None),
            None::<&()>,
            Some(body),
            Secrets::Present,
        )
        .await
    }

    // --- admin API: every collection ------------------------------------------------------

    /// `GET /v1/<plural>`: one page of the collection.
    pub async fn list<R: Resource>(&self, query: &ListQuery) -> Result<Vec<R::Item>> {
        let url = self.url(R::PATH, None);
        let body = self
            .admin_raw(Method::GET, url.clone(), Some(query), None::<&()>)
            .await?;
        list_items(&body, &url, list_key::<R>())
    }

    /// `GET /v1/<plural>/{id}`.
    pub async fn get<R: Resource>(&self, id: &str) -> Result<R::Item> {
        let url = self.url(R::PATH, Some(id));
        self.admin_call(Method::GET, url, None::<&()>, None::<&()>, Secrets::Absent)
            .await
    }

    /// `DELETE /v1/<plural>/{id}`.
    pub async fn delete<R: Resource>(&self, id: &str) -> Result<()> {
        let url = self.url(R::PATH, Some(id));
        self.admin_raw(Method::DELETE, url, None::<&()>, None::<&()>)
            .await?;
        Ok(())
    }

    /// `POST /v1/<plural>`: the created object (with its one-time secret, for the resources
    /// that have one).
    pub async fn create<R: Resource>(&self, body: &R::Create) -> Result<R::Item> {
        let secrets = if R::CREATE_ANSWER_HOLDS_SECRET {
            Secrets::Present
        } else {
            Secrets::Absent
        };
        let url = self.url(R::PATH, None);
        self.admin_call(Method::POST, url, None::<&()>, Some(body), secrets)
            .await
    }

    // --- admin API: the calls particular to one resource ----------------------------------

    /// `GET /v1/whoami`: the caller.
    pub async fn whoami(&self) -> Result<WhoAmI> {
        let url = self.url(paths::WHOAMI, None);
        self.admin_call(Method::GET, url, None::<&()>, None::<&()>, Secrets::Absent)
            .await
    }

    /// `PATCH /v1/accounts/{id}`: the account's sign-in requirement.
    pub async fn update_account(&self, id: &str, body: &AccountUpdate) -> Result<AccountView> {
        let url = self.url(paths::ACCOUNT, Some(id));
        self.admin_call(Method::PATCH, url, None::<&()>, Some(body), Secrets::Absent)
            .await
    }

    /// `POST /v1/users/{id}/totp`: the answer holds the secret. `code` is a current code of
    /// the confirmed factor when replacing it (step-up).
    pub async fn enroll_totp(
        &self,
        user_id: &str,
        replace: bool,
        code: Option<&str>,
    ) -> Result<TotpEnrollView> {
        let url = self.url(paths::USER_TOTP, Some(user_id));
        let query = EnrollQuery { replace };
        let body = code.map(|code| CodeBody {
            code: Some(code.to_owned()),
        });
        self.admin_call(
            Method::POST,
            url,
            Some(&query),
            body.as_ref(),
            Secrets::Present,
        )
        .await
    }

    /// `POST /v1/users/{id}/totp/confirm`.
    pub async fn confirm_totp(&self, user_id: &str, code: &str) -> Result<TotpStatusView> {
        let url = self.url(paths::USER_TOTP_CONFIRM, Some(user_id));
        let body = ConfirmCodeBody {
            code: Some(code.to_owned()),
        };
        self.admin_call(Method::POST, url, None::<&()>, Some(&body), Secrets::Absent)
            .await
    }

    /// `DELETE /v1/users/{id}/totp`; `code` is a current code of a confirmed factor (step-up).
    pub async fn delete_totp(&self, user_id: &str, code: Option<&str>) -> Result<()> {
        let url = self.url(paths::USER_TOTP, Some(user_id));
        let body = code.map(|code| CodeBody {
            code: Some(code.to_owned()),
        });
        self.admin_raw(Method::DELETE, url, None::<&()>, body.as_ref())
            .await?;
        Ok(())
    }

    /// `PUT /v1/trusted_profiles/{id}`: replaces name, description, identities, links, rules.
    pub async fn replace_trusted_profile(
        &self,
        id: &str,
        body: &TrustedProfileReplace,
    ) -> Result<TrustedProfileView> {
        let url = self.url(paths::TRUSTED_PROFILE, Some(id));
        self.admin_call(Method::PUT, url, None::<&()>, Some(body), Secrets::Absent)
            .await
    }

    /// `PUT /v1/trusted_issuers/{id}`: the fields given replace the issuer's.
    pub async fn update_trusted_issuer(
        &self,
        id: &str,
        body: &TrustedIssuerUpdate,
    ) -> Result<TrustedIssuerView> {
        let url = self.url(paths::TRUSTED_ISSUER, Some(id));
        self.admin_call(Method::PUT, url, None::<&()>, Some(body), Secrets::Absent)
            .await
    }

    /// `GET /v1/signing_keys`: every stored signing key (global administrator).
    pub async fn list_signing_keys(&self) -> Result<Vec<SigningKeyView>> {
        let url = self.url(paths::SIGNING_KEYS, None);
        let body = self
            .admin_raw(Method::GET, url.clone(), None::<&()>, None::<&()>)
            .await?;
        list_items(&body, &url, "signing_keys")
    }

    /// `POST /v1/signing_keys/rotate`; answers the key list after the rotation.
    pub async fn rotate_signing_keys(
        &self,
        body: &SigningKeyRotate,
    ) -> Result<Vec<SigningKeyView>> {
        let url = self.url(paths::SIGNING_KEYS_ROTATE, None);
        let bytes = self
            .admin_raw(Method::POST, url.clone(), None::<&()>, Some(body))
            .await?;
        list_items(&bytes, &url, "signing_keys")
    }

    /// `GET /v1/audit`: one page of audit events, newest first (the next page: `before` = the
    /// last event's `id`).
    pub async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let url = self.url(paths::AUDIT, None);
        let body = self
            .admin_raw(Method::GET, url.clone(), Some(query), None::<&()>)
            .await?;
        list_items(&body, &url, "events")
    }

    // --- plumbing -------------------------------------------------------------------------

    /// A Yandex REST call (JSON in, `YandexIamToken` out), with this client's token if any.
    async fn yandex<B: Serialize>(&self, path: &str, body: &B) -> Result<YandexIamToken> {
        let url = self.url(path, None);
        let mut request = self.http.post(url.clone()).json(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = send(request, &url).await?;
        let status = response.status();
        let bytes = read_body(response, &url).await?;
        if status.is_success() {
            return decode(&bytes, &url, Secrets::Present);
        }
        match serde_json::from_slice::<YandexErrorBody>(&bytes) {
            Ok(err) => Err(Error::Yandex(YandexError {
                status: status.as_u16(),
                code: err.code,
                message: err.message,
            })),
            Err(_) => Err(unexpected(status, &bytes, &url)),
        }
    }

    async fn admin_call<Q: Serialize, B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        query: Option<&Q>,
        body: Option<&B>,
        secrets: Secrets,
    ) -> Result<T> {
        let bytes = self.admin_raw(method, url.clone(), query, body).await?;
        decode(&bytes, &url, secrets)
    }

    /// Sends an authenticated admin request; answers the body of a success, the typed error
    /// otherwise.
    async fn admin_raw<Q: Serialize, B: Serialize>(
        &self,
        method: Method,
        url: Url,
        query: Option<&Q>,
        body: Option<&B>,
    ) -> Result<Vec<u8>> {
        let mut request = self
            .http
            .request(method, url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(query) = query {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = send(request, &url).await?;
        let status = response.status();
        let bytes = read_body(response, &url).await?;
        if status.is_success() {
            return Ok(bytes);
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(Error::Api(ApiError::new(status.as_u16(), body))),
            Err(_) => Err(unexpected(status, &bytes, &url)),
        }
    }

    /// `endpoint` + a route path of `tessera_api::paths`, its `{id}` (or, without one, a
    /// trailing segment) filled with `id`, which is percent-encoded as one path segment: ids
    /// are user-chosen for OAuth clients, so they may hold `/` or `?`.
    fn url(&self, route: &str, id: Option<&str>) -> Url {
        let mut url = self.endpoint.clone();
        let templated = route.contains("{id}");
        // `parse_endpoint` rejected URLs that cannot be a base, so this always succeeds.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            for segment in route.split('/').filter(|s| !s.is_empty()) {
                match (segment, id) {
                    ("{id}", Some(id)) => path.push(id),
                    _ => path.push(segment),
                };
            }
            if let (false, Some(id)) = (templated, id) {
                path.push(id);
            }
        }
        url
    }
}

/// The wire name of a grant (`GrantType`'s serde name).
fn grant_type(grant: GrantType) -> String {
    serde_json::to_value(grant)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The items of a list body `{"<key>": [...]}`, decoded through a Value so that fields added
/// next to the list (a future cursor, say) do not break old clients.
fn list_items<T: DeserializeOwned>(body: &[u8], url: &Url, key: &str) -> Result<Vec<T>> {
    let mut value: serde_json::Value = decode(body, url, Secrets::Absent)?;
    let items = value
        .get_mut(key)
        .map(serde_json::Value::take)
        .ok_or_else(|| Error::Decode {
            url: url.to_string(),
            detail: format!("missing field `{key}`"),
        })?;
    serde_json::from_value(items).map_err(|err| Error::Decode {
        url: url.to_string(),
        detail: err.to_string(),
    })
}

/// Validates and normalises an endpoint URL.
fn parse_endpoint(endpoint: &str) -> Result<Url> {
    let invalid = |reason: &str| Error::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.into(),
    };
    let mut url = Url::parse(endpoint.trim()).map_err(|err| invalid(&err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(invalid("not an absolute URL with a host"));
    }
    // URLs are quoted in error messages; credentials in them would leak there.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::InvalidEndpoint {
            endpoint: "<redacted: contains credentials>".into(),
            reason: "the URL must not contain credentials".into(),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("the URL must not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn http_error(url: &Url, source: reqwest::Error) -> Error {
    // Our message names the URL already; reqwest's would repeat it.
    Error::Http {
        url: url.to_string(),
        source: source.without_url(),
    }
}

async fn send(request: RequestBuilder, url: &Url) -> Result<reqwest::Response> {
    request
        .send()
        .await
        .map_err(|source| http_error(url, source))
}

async fn read_body(response: reqwest::Response, url: &Url) -> Result<Vec<u8>> {
    let bytes = response
        .bytes()
        .await
        .map_err(|source| http_error(url, source))?;
    Ok(bytes.to_vec())
}

/// Whether a response body may hold a secret, which decides how much of a decoding error is
/// shown.
#[derive(Clone, Copy)]
enum Secrets {
    Present,
    Absent,
}

fn decode<T: DeserializeOwned>(body: &[u8], url: &Url, secrets: Secrets) -> Result<T> {
    serde_json::from_slice(body).map_err(|err| {
        let detail = match secrets {
            Secrets::Absent => err.to_string(),
            // serde_json's message can quote the offending value, which may be a token.
            Secrets::Present => format!(
                "{:?} error at line {} column {}",
                err.classify(),
                err.line(),
                err.column()
            ),
        };
        Error::Decode {
            url: url.to_string(),
            detail,
        }
    })
}

fn unexpected(status: StatusCode, body: &[u8], url: &Url) -> Error {
    let text = String::from_utf8_lossy(body);
    let mut excerpt: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(BODY_EXCERPT_CHARS)
        .collect();
    if text.chars().count() > BODY_EXCERPT_CHARS {
        excerpt.push('…');
    }
    if excerpt.trim().is_empty() {
        excerpt = "(empty body)".into();
    }
    Error::UnexpectedResponse {
        url: url.to_string(),
        status: status.as_u16(),
        body: excerpt,
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
