//! TEMPORARY shim of verifyA16's `Validation` (replaced by theirs on merge).
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Validation {
    leeway: i64,
    issuers: Vec<String>,
    audiences: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeewayOutOfRange(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("token lacks the {0} claim")]
    MissingClaim(String),
    #[error("token claim {0} has the wrong type")]
    WrongType(&'static str),
    #[error("token has expired")]
    Expired,
    #[error("token is not yet valid")]
    NotYetValid,
    #[error("token was issued by another issuer")]
    WrongIssuer,
    #[error("token is for another audience")]
    WrongAudience,
}

impl ValidationError {
    pub fn reason(&self) -> &'static str {
        match self {
            ValidationError::MissingClaim(_) => "missing_claim",
            ValidationError::WrongType(_) => "wrong_type",
            ValidationError::Expired => "expired",
            ValidationError::NotYetValid => "not_yet_valid",
            ValidationError::WrongIssuer => "wrong_issuer",
            ValidationError::WrongAudience => "wrong_audience",
        }
    }
}

impl Validation {
    pub fn new() -> Self {
        Validation {
            leeway: 30,
            ..Default::default()
        }
    }
    pub fn with_leeway(mut self, seconds: i64) -> Result<Self, LeewayOutOfRange> {
        if !(0..=60).contains(&seconds) {
            return Err(LeewayOutOfRange(seconds));
        }
        self.leeway = seconds;
        Ok(self)
    }
    pub fn with_issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuers.push(iss.into());
        self
    }
    pub fn with_audiences<I: IntoIterator<Item = S>, S: Into<String>>(mut self, a: I) -> Self {
        self.audiences.extend(a.into_iter().map(Into::into));
        self
    }
    pub fn validate(&self, claims: &Map<String, Value>, now: i64) -> Result<(), ValidationError> {
        let exp = match claims.get("exp") {
            None => return Err(ValidationError::MissingClaim("exp".into())),
            Some(v) => v.as_i64().ok_or(ValidationError::WrongType("exp"))?,
        };
        if !self.issuers.is_empty() {
            let iss = claims.get("iss").and_then(Value::as_str);
            if !self.issuers.iter().any(|i| Some(i.as_str()) == iss) {
                return Err(ValidationError::WrongIssuer);
            }
        }
        if !self.audiences.is_empty() {
            let ok = match claims.get("aud") {
                None => return Err(ValidationError::MissingClaim("aud".into())),
                Some(Value::String(a)) => self.audiences.contains(a),
                Some(Value::Array(list)) => list
                    .iter()
                    .any(|a| a.as_str().is_some_and(|a| self.audiences.iter().any(|x| x == a))),
                Some(_) => return Err(ValidationError::WrongType("aud")),
            };
            if !ok {
                return Err(ValidationError::WrongAudience);
            }
        }
        if exp.saturating_add(self.leeway) <= now {
            return Err(ValidationError::Expired);
        }
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64) {
            if nbf.saturating_sub(self.leeway) > now {
                return Err(ValidationError::NotYetValid);
            }
        }
        Ok(())
    }
}
