//! `agent.toml`: where the server is, whose credential to use, the instance and project
//! attributes to serve, the host-mode workload table and the IBM VPC flavour. Flags override
//! the file's connection settings. The attribute sections may be edited while the agent runs
//! (they are re-read on change, which is what `wait_for_change` watches); the rest is read once.

use anyhow::{bail, Context, Result};
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The scope GCE attaches by default, which Google's libraries expect to see.
pub const DEFAULT_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFile {
    pub server: Option<String>,
    pub listen: Option<SocketAddr>,
    /// `/healthz`, `/readyz` and `/metrics`, on an address of their own (default: off).
    pub admin_listen: Option<SocketAddr>,
    pub credentials: Option<PathBuf>,
    pub cacert: Option<PathBuf>,
    pub universe_domain: Option<String>,
    #[serde(default)]
    pub instance: InstanceFile,
    #[serde(default)]
    pub project: ProjectFile,
    pub yandex: Option<YandexFile>,
    pub service_account: Option<ServiceAccountFile>,
    #[serde(default)]
    pub workloads: Vec<WorkloadFile>,
    pub ibm_vpc: Option<IbmVpcFile>,
    #[serde(default)]
    pub refresh: RefreshFile,
}

/// What the metadata tree shows besides service accounts. Re-read when the file changes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Attributes {
    /// `universe/universe-domain`; absent means 404 there, which clients read as the default.
    pub universe_domain: Option<String>,
    pub instance: InstanceFile,
    pub project: ProjectFile,
    pub yandex: Option<YandexFile>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceFile {
    pub id: Option<String>,
    pub name: Option<String>,
    pub hostname: Option<String>,
    pub zone: Option<String>,
    pub machine_type: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    pub id: Option<String>,
    pub numeric_id: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// Yandex Cloud's vendor paths (`instance/vendor/…`).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YandexFile {
    pub cloud_id: Option<String>,
    /// Defaults to the service account's folder (its account).
    pub folder_id: Option<String>,
    pub image_id: Option<String>,
    #[serde(default)]
    pub product_ids: Vec<String>,
    /// RFC 3339; defaults to when the agent started.
    pub created_at: Option<String>,
}

/// Overrides for the single workload's service account.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountFile {
    pub email: Option<String>,
    pub scopes: Option<Vec<String>>,
}

/// Host mode: a source address or CIDR and the service account its workload runs as.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadFile {
    pub source: String,
    pub service_account_id: String,
    pub email: Option<String>,
    pub scopes: Option<Vec<String>>,
}

/// The IBM VPC instance-identity flavour: the agent signs instance identity tokens with this
/// key; the server trusts them through a trusted issuer with the key's JWKS (cr_type VSI).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IbmVpcFile {
    pub key_file: PathBuf,
    pub issuer: String,
    pub instance_crn: String,
    /// The `aud` of instance identity tokens (the trusted issuer's audience; default `iam`).
    pub audience: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshFile {
    /// A token is served until this many seconds before it expires (at most half its life),
    /// and refreshed halfway through the time it may be served. Default 300, as GCE.
    #[serde(default = "default_margin")]
    pub expiry_margin_seconds: u64,
    /// Longest wait between retries while the server cannot be reached. Default 30.
    #[serde(default = "default_backoff")]
    pub max_backoff_seconds: u64,
}

impl Default for RefreshFile {
    fn default() -> Self {
        RefreshFile {
            expiry_margin_seconds: default_margin(),
            max_backoff_seconds: default_backoff(),
        }
    }
}

fn default_margin() -> u64 {
    300
}

fn default_backoff() -> u64 {
    30
}

/// A parsed workload row.
#[derive(Debug, Clone)]
pub struct WorkloadRoute {
    pub source: IpNet,
    pub service_account_id: String,
    pub email: Option<String>,
    pub scopes: Vec<String>,
}

impl AgentFile {
    pub fn load(path: &Path) -> Result<AgentFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read agent config {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("agent config {} is not valid", path.display()))
    }

    /// Parses and checks the text of an `agent.toml` (what [`AgentFile::load`] does after
    /// reading the file).
    pub fn parse(text: &str) -> Result<AgentFile> {
        let file: AgentFile = toml::from_str(text)?;
        file.attributes().check()?;
        if file.refresh.max_backoff_seconds == 0 || file.refresh.max_backoff_seconds > 3600 {
            bail!("refresh.max_backoff_seconds must be between 1 and 3600");
        }
        if file.refresh.expiry_margin_seconds > 3600 {
            bail!("refresh.expiry_margin_seconds must be at most 3600");
        }
        Ok(file)
    }

    pub fn attributes(&self) -> Attributes {
        Attributes {
            universe_domain: self.universe_domain.clone(),
            instance: self.instance.clone(),
            project: self.project.clone(),
            yandex: self.yandex.clone(),
        }
    }

    /// The host-mode table, most specific source first. Empty: single-workload mode.
    pub fn routes(&self) -> Result<Vec<WorkloadRoute>> {
        let mut routes = Vec::with_capacity(self.workloads.len());
        for (i, w) in self.workloads.iter().enumerate() {
            let source = parse_source(&w.source)
                .with_context(|| format!("workloads[{i}].source {:?}", w.source))?;
            if w.service_account_id.trim().is_empty() {
                bail!("workloads[{i}].service_account_id must not be empty");
            }
            if routes.iter().any(|r: &WorkloadRoute| r.source == source) {
                bail!("workloads[{i}].source {source} appears twice");
            }
            routes.push(WorkloadRoute {
                source,
                service_account_id: w.service_account_id.trim().to_owned(),
                email: w.email.clone(),
                scopes: checked_scopes(w.scopes.clone())?,
            });
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.source.prefix_len()));
        Ok(routes)
    }
}

impl Attributes {
    pub fn check(&self) -> Result<()> {
        let texts = [
            ("universe_domain", &self.universe_domain),
            ("instance.id", &self.instance.id),
            ("instance.name", &self.instance.name),
            ("instance.hostname", &self.instance.hostname),
            ("instance.zone", &self.instance.zone),
            ("project.id", &self.project.id),
            ("project.numeric_id", &self.project.numeric_id),
        ];
        for (name, value) in texts {
            if let Some(value) = value {
                if value.is_empty() || value.len() > 1024 || value.contains(['\n', '\r']) {
                    bail!("{name} must be one line of 1 to 1024 characters");
                }
            }
        }
        if let Some(n) = &self.project.numeric_id {
            if !n.bytes().all(|b| b.is_ascii_digit()) {
                bail!("project.numeric_id must be digits, got {n:?}");
            }
        }
        for (section, map) in [
            ("instance.attributes", &self.instance.attributes),
            ("project.attributes", &self.project.attributes),
        ] {
            for key in map.keys() {
                let ok = !key.is_empty()
                    && key.len() <= 128
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    bail!("{section} key {key:?} must be 1 to 128 letters, digits, - or _");
                }
            }
        }
        Ok(())
    }
}

/// An address (`10.0.0.5`) or a network (`10.0.0.0/24`).
fn parse_source(text: &str) -> Result<IpNet> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    let ip: std::net::IpAddr = text
        .parse()
        .map_err(|_| anyhow::anyhow!("is neither an IP address nor a CIDR"))?;
    Ok(IpNet::from(ip))
}

/// Scopes as configured, or the GCE default.
pub fn checked_scopes(scopes: Option<Vec<String>>) -> Result<Vec<String>> {
    let scopes = scopes.unwrap_or_else(|| vec![DEFAULT_SCOPE.to_owned()]);
    for scope in &scopes {
        if scope.is_empty() || scope.chars().any(|c| c.is_whitespace() || c == ',') {
            bail!("scope {scope:?} must be non-empty, without spaces or commas");
        }
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_most_specific_first_and_validated() {
        let file: AgentFile = toml::from_str(
            r#"
            [[workloads]]
            source = "10.0.0.0/8"
            service_account_id = "wide"
            [[workloads]]
            source = "10.1.2.3"
            service_account_id = "narrow"
            "#,
        )
        .unwrap();
        let routes = file.routes().unwrap();
        assert_eq!(routes[0].service_account_id, "narrow");
        assert_eq!(routes[0].scopes, vec![DEFAULT_SCOPE.to_owned()]);
        let bad: AgentFile =
            toml::from_str("[[workloads]]\nsource = \"10.0.0.300\"\nservice_account_id = \"x\"\n")
                .unwrap();
        assert!(bad.routes().is_err());
    }

    #[test]
    fn attributes_are_checked() {
        let mut attributes = Attributes::default();
        attributes.project.numeric_id = Some("12a".into());
        assert!(attributes.check().is_err());
        attributes.project.numeric_id = Some("12".into());
        attributes
            .instance
            .attributes
            .insert("bad key".into(), "v".into());
        assert!(attributes.check().is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<AgentFile>("[instance]\nnam = \"x\"\n").is_err());
    }
}
