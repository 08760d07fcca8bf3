//! How a failed command ends: its exit code, and its error as text or as JSON, with advice where
//! the cause has a known fix. The typed client error (`tessera_client::Error`) somewhere in the
//! chain decides the exit code; this is the one place that maps it.

use super::args::Format;
use crate::transport::{answer_was_not_http, tls_cause, TlsProblem};
use serde::Serialize;
use std::io::{self, Write};
use tessera_client::Error as ClientError;

/// The exit codes, as `tessera --help` lists them.
pub const EXIT_CODES_HELP: &str = "Exit codes:\n  \
    0  success\n  \
    1  any other error\n  \
    2  usage error (unknown command or flag, bad flag value)\n  \
    3  authentication or authorization refused (the API key is not accepted, HTTP 401/403)\n  \
    4  not found (HTTP 404, or no object has the --name given)\n  \
    5  conflict (HTTP 409: the object exists or is still in use)\n  \
    6  server unavailable or unreachable (connection, TLS or timeout, HTTP 5xx, 429)\n\
    Errors go to standard error: as text, or with --format json (-o json) as\n  \
    {\"error\": {\"code\": \"not_found\", \"message\": \"...\", \"status\": 404, \"hint\": \"...\"}}\n\
    where status (the server's HTTP status) and hint (what to do) appear when known.";

/// What kind of failure, as an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Other = 1,
    Usage = 2,
    Refused = 3,
    NotFound = 4,
    Conflict = 5,
    Unavailable = 6,
}

impl Exit {
    fn of_status(status: u16) -> Exit {
        match status {
            401 | 403 => Exit::Refused,
            404 => Exit::NotFound,
            409 => Exit::Conflict,
            429 | 500..=599 => Exit::Unavailable,
            _ => Exit::Other,
        }
    }
}

/// The CLI's own refusals that are more than a message: each has a code and an exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A `--cacert` file without a PEM certificate (reqwest would silently trust nothing).
    #[error("{path} is not a PEM certificate file (no -----BEGIN CERTIFICATE----- block)")]
    NotPem { path: String },
    /// `login` would replace a saved profile's key for another endpoint.
    #[error(
        "profile {profile:?} is logged in to {saved}, not {endpoint}; pass --profile NAME to \
         save this login as another profile, or --force to replace it"
    )]
    ProfileElsewhere {
        profile: String,
        saved: String,
        endpoint: String,
    },
    /// A `--name` (or `--email`) that no object has.
    #[error("no {kind} {} {name:?}", by.singular())]
    NoSuchName {
        kind: &'static str,
        by: LookUp,
        name: String,
    },
    /// A `--name` (or `--email`) that several objects have.
    #[error("{count} {kind}s {} {name:?}; give the id instead: {ids}", by.plural())]
    AmbiguousName {
        kind: &'static str,
        by: LookUp,
        name: String,
        count: usize,
        ids: String,
    },
    /// A saved profile that does not exist.
    #[error("there is no saved profile {0:?} (see `tessera profile list`)")]
    NoSuchProfile(String),
}

/// What a look-up instead of an id goes by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookUp {
    Name,
    Email,
}

impl LookUp {
    fn singular(self) -> &'static str {
        match self {
            LookUp::Name => "is named",
            LookUp::Email => "has the e-mail address",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            LookUp::Name => "are named",
            LookUp::Email => "have the e-mail address",
        }
    }
}

impl CliError {
    fn code(&self) -> &'static str {
        match self {
            CliError::NotPem { .. } => "invalid_cacert",
            CliError::ProfileElsewhere { .. } => "profile_exists",
            CliError::NoSuchName { .. } | CliError::NoSuchProfile(_) => "not_found",
            CliError::AmbiguousName { .. } => "ambiguous_name",
        }
    }

    fn exit(&self) -> Exit {
        match self {
            CliError::NotPem { .. } => Exit::Usage,
            CliError::NoSuchName { .. } | CliError::NoSuchProfile(_) => Exit::NotFound,
            CliError::ProfileElsewhere { .. } => Exit::Conflict,
            CliError::AmbiguousName { .. } => Exit::Other,
        }
    }
}

/// A failed command as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    #[serde(skip)]
    pub exit: Exit,
    /// The server's error code (`not_found`, `BXNIM0415E`, …) or the CLI's own.
    pub code: String,
    /// The whole chain: "cannot get …: <server message> (code, HTTP 404)".
    pub message: String,
    /// The server's HTTP status, when it answered with an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What to do about it, when the cause has a known fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Failure {
    pub fn of(err: &anyhow::Error) -> Failure {
        let message = format!("{err:#}");
        if let Some(own) = err.chain().find_map(|c| c.downcast_ref::<CliError>()) {
            return Failure {
                exit: own.exit(),
                code: own.code().to_owned(),
                message,
                status: None,
                hint: None,
            };
        }
        let Some(client) = err.chain().find_map(|c| c.downcast_ref::<ClientError>()) else {
            return Failure {
                exit: Exit::Other,
                code: "error".to_owned(),
                message,
                status: None,
                hint: None,
            };
        };
        let status = client.status();
        let (exit, code, hint) = match client {
            ClientError::Api(api) => (Exit::of_status(api.status), api.code.clone(), None),
            // The CLI sends only well-formed API-key grants, so a refusal of one (IBM answers
            // 400 for an unknown key) is the key being refused.
            ClientError::Token(token) => {
                let exit = match token.status {
                    400..=499 if token.status != 429 => Exit::Refused,
                    other => Exit::of_status(other),
                };
                (exit, token.code.clone(), None)
            }
            ClientError::Yandex(yandex) => (
                Exit::of_status(yandex.status),
                format!("grpc_{}", yandex.code),
                None,
            ),
            ClientError::UnexpectedResponse { status, .. } => (
                Exit::of_status(*status),
                "unexpected_response".to_owned(),
                None,
            ),
            ClientError::Http { url, source } => {
                let (code, hint) = transport_advice(url, source);
                (Exit::Unavailable, code.to_owned(), hint)
            }
            ClientError::InvalidEndpoint { endpoint, .. } => (
                Exit::Usage,
                "invalid_endpoint".to_owned(),
                (!endpoint.contains("://")).then(|| {
                    format!(
                        "did you mean https://{endpoint}? (http://{endpoint} for a server \
                         without TLS)"
                    )
                }),
            ),
            ClientError::InvalidCertificate(_) => (Exit::Usage, "invalid_cacert".to_owned(), None),
            _ => (Exit::Other, "error".to_owned(), None),
        };
        Failure {
            exit,
            code,
            message,
            status,
            hint,
        }
    }

    /// Writes the failure to `out` (standard error) as text or JSON.
    pub fn write(&self, format: Format, out: &mut dyn Write) -> io::Result<()> {
        match format {
            Format::Json => {
                serde_json::to_writer_pretty(&mut *out, &serde_json::json!({ "error": self }))?;
                writeln!(out)
            }
            Format::Table => {
                writeln!(out, "error: {}", self.message)?;
                match &self.hint {
                    Some(hint) => writeln!(out, "hint: {hint}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// The code and advice for a request that got no answer.
fn transport_advice(url: &str, error: &reqwest::Error) -> (&'static str, Option<String>) {
    let parsed = reqwest::Url::parse(url).ok();
    let origin = parsed
        .as_ref()
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|| url.to_owned());
    let host = parsed
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let scheme = parsed.as_ref().map(|u| u.scheme().to_owned());
    if let Some(tls) = tls_cause(error) {
        let hint = match TlsProblem::of(tls) {
            TlsProblem::NotTls => Some(format!(
                "the server does not speak TLS on this port; if it serves plain HTTP, use {}",
                origin.replacen("https://", "http://", 1)
            )),
            TlsProblem::UnknownIssuer => Some(
                "the server's certificate is signed by a CA this computer does not trust: pass \
                 `--cacert FILE` (or set TESSERA_CACERT) with that CA's PEM certificate (a server \
                 started with --tls-self-signed prints its path, <data dir>/tls/ca.pem)"
                    .to_owned(),
            ),
            TlsProblem::WrongName => Some(format!(
                "the server's certificate is not for {host:?}: use a host name the certificate \
                 has in --endpoint"
            )),
            TlsProblem::Expired => {
                Some("the server's certificate has expired; it must be renewed".to_owned())
            }
            TlsProblem::Other => None,
        };
        return ("tls", hint);
    }
    if scheme.as_deref() == Some("http") && answer_was_not_http(error) {
        return (
            "not_http",
            Some(format!(
                "the server did not answer in plain HTTP; if it serves TLS, use {}",
                origin.replacen("http://", "https://", 1)
            )),
        );
    }
    if error.is_timeout() {
        return ("timeout", None);
    }
    if error.is_connect() {
        return (
            "unavailable",
            Some(format!(
                "cannot connect to {origin}: check that the server runs there and --endpoint"
            )),
        );
    }
    ("unavailable", None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use tessera_client::ApiError;

    fn api(status: u16, code: &str) -> anyhow::Error {
        anyhow::Error::new(ClientError::Api(ApiError {
            status,
            code: code.into(),
            message: "m".into(),
            request_id: None,
        }))
        .context("cannot get it")
    }

    #[test]
    fn statuses_map_to_exit_codes() {
        for (status, exit) in [
            (401, Exit::Refused),
            (403, Exit::Refused),
            (404, Exit::NotFound),
            (409, Exit::Conflict),
            (503, Exit::Unavailable),
            (500, Exit::Unavailable),
            (429, Exit::Unavailable),
            (400, Exit::Other),
        ] {
            let failure = Failure::of(&api(status, "c"));
            assert_eq!(failure.exit, exit, "{status}");
            assert_eq!(failure.status, Some(status));
        }
        assert_eq!(Failure::of(&anyhow::anyhow!("x")).exit, Exit::Other);
        let own = anyhow::Error::new(CliError::NoSuchName {
            kind: "service account",
            by: LookUp::Name,
            name: "n".into(),
        });
        assert_eq!(Failure::of(&own).exit, Exit::NotFound);
    }

    #[test]
    fn json_has_code_message_and_status() {
        let mut out = Vec::new();
        Failure::of(&api(404, "not_found"))
            .write(Format::Json, &mut out)
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["error"]["code"], "not_found");
        assert_eq!(value["error"]["status"], 404);
        assert!(value["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot get it: m"));
        assert!(value["error"].get("hint").is_none());
    }

    #[test]
    fn a_missing_scheme_suggests_one() {
        let err = tessera_client::Client::new("iam.example.com:8443").unwrap_err();
        let failure = Failure::of(&anyhow::Error::new(err));
        assert_eq!(failure.exit, Exit::Usage);
        assert!(
            failure
                .hint
                .as_deref()
                .unwrap()
                .contains("https://iam.example.com:8443"),
            "{failure:?}"
        );
    }
}
