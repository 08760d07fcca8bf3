//! Telling transport failures apart, for advice: which TLS problem a failed request hit. Shared
//! by the CLI and the agent, which word the advice with their own flag names.

/// The TLS failures that have a fix the user can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsProblem {
    /// The server's certificate is signed by a CA the client does not trust.
    UnknownIssuer,
    /// The certificate does not name the host the client connected to.
    WrongName,
    Expired,
    /// The peer did not answer in TLS at all (a plain-HTTP server).
    NotTls,
    Other,
}

impl TlsProblem {
    pub fn of(error: &rustls::Error) -> TlsProblem {
        use rustls::{CertificateError, Error};
        match error {
            Error::InvalidCertificate(CertificateError::UnknownIssuer) => TlsProblem::UnknownIssuer,
            Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => TlsProblem::WrongName,
            Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            ) => TlsProblem::Expired,
            Error::InvalidMessage(_) => TlsProblem::NotTls,
            _ => TlsProblem::Other,
        }
    }
}

/// The rustls error somewhere in `error`'s causes. An `io::Error` does not report its inner
/// error as a source, so those are opened by hand.
pub fn tls_cause<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
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

/// Whether a plain-HTTP request got an answer that is not HTTP, as when `http://` is used with
/// a TLS port (the server's TLS alert does not parse as a status line). hyper reports this as a
/// parse error, which it exposes only as text.
pub fn answer_was_not_http(error: &reqwest::Error) -> bool {
    if error.is_connect() || error.is_timeout() {
        return false;
    }
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = current {
        if cause.to_string().contains("invalid HTTP version") {
            return true;
        }
        current = cause.source();
    }
    false
}
