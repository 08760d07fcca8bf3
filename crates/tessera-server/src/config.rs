//! Server configuration: flags > `TESSERA_*` environment > `tessera.toml` > defaults.
//!
//! Clap reads flags and environment into [`ServeArgs`] (every field optional, so that "not
//! given" is visible); [`Config::resolve`] layers the file and the defaults under them and
//! validates the result. `Display` of [`Config`] is safe to log: it never shows a secret.

use crate::telemetry::LogFormat;
use anyhow::{bail, Context};
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tessera_core::model::Algorithm;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "tessera-data";
/// Default configuration file, read if present in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "tessera.toml";

/// Which store an installation lives in: shared by `tessera serve`, `migrate`, `export` and
/// `import`, so that every command finds the store the same way. Each flag also reads its
/// `TESSERA_*` environment variable, and the configuration file is read as for `serve`.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct StoreArgs {
    /// Configuration file (TOML). Default: ./tessera.toml if it exists.
    #[arg(long, env = "TESSERA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the embedded store, the master key and generated files.
    #[arg(long, env = "TESSERA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://user:pass@host/db); default: the embedded SQLite store.
    // The URL may hold a password: `--help` names the variable but never shows its value.
    #[arg(
        long,
        env = "TESSERA_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// PostgreSQL schema to use (created if missing); default: the connection's search path.
    #[arg(long, env = "TESSERA_DATABASE_SCHEMA", value_name = "NAME")]
    pub database_schema: Option<String>,
}

/// `tessera serve` arguments. Each flag also reads its `TESSERA_*` environment variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on for every surface (REST, gRPC, admin API). Port 0 picks a free port.
    #[arg(long, env = "TESSERA_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Base URL clients reach this server at (default: http://<listen address>).
    #[arg(long, env = "TESSERA_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// `iss` of issued tokens (default: <public URL>/identity).
    #[arg(long, env = "TESSERA_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
    /// Algorithm of IBM-surface JWTs: RS256 (default), PS256, ES256 or EdDSA.
    #[arg(long, env = "TESSERA_JWT_ALGORITHM", value_name = "ALG")]
    pub jwt_algorithm: Option<String>,
    /// Access-token lifetime in seconds (default 3600; 60..=43200).
    #[arg(long, env = "TESSERA_TOKEN_LIFETIME", value_name = "SECONDS")]
    pub token_lifetime: Option<i64>,
    /// Refresh-token lifetime in seconds (default 2592000 = 30 days).
    #[arg(long, env = "TESSERA_REFRESH_TOKEN_LIFETIME", value_name = "SECONDS")]
    pub refresh_token_lifetime: Option<i64>,
    /// Master key file (default: <data dir>/master.key, created 0600 on first start).
    /// TESSERA_MASTER_KEY (base64 of 32 bytes) takes precedence over any file.
    #[arg(long, env = "TESSERA_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Log format: text (default) or json.
    #[arg(long, env = "TESSERA_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Log level of Tessera's own logs (default info; dependencies log at info at most), or a
    /// filter used as written, e.g. info,tessera_server=debug.
    #[arg(long, env = "TESSERA_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Export traces (request, grant, store write spans) over OTLP/gRPC to this collector,
    /// e.g. http://127.0.0.1:4317 (default: no traces).
    #[arg(long, env = "TESSERA_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// How long a JWT signing key signs before its successor takes over (default 30 days).
    #[arg(long, env = "TESSERA_KEY_ROTATION_PERIOD", value_name = "SECONDS")]
    pub key_rotation_period: Option<i64>,
    /// How long an Ed25519 `t1.` token key signs (default 7 days).
    #[arg(
        long,
        env = "TESSERA_EDDSA_KEY_ROTATION_PERIOD",
        value_name = "SECONDS"
    )]
    pub eddsa_key_rotation_period: Option<i64>,
    /// How long verifiers may cache the JWKS (Cache-Control max-age; default 300).
    #[arg(long, env = "TESSERA_JWKS_CACHE_SECONDS", value_name = "SECONDS")]
    pub jwks_cache_seconds: Option<i64>,
    /// How often a node checks whether a key rotation is due (default 60).
    #[arg(long, env = "TESSERA_ROTATION_CHECK_INTERVAL", value_name = "SECONDS")]
    pub rotation_check_interval: Option<i64>,
    /// How long a node keeps issuing from its snapshot when the store is unreachable (default 30).
    #[arg(long, env = "TESSERA_MAX_STALENESS", value_name = "SECONDS")]
    pub max_staleness: Option<i64>,
    /// Lifetime of `t1.` IAM tokens of the Yandex surface in seconds (default 43200 = 12 h;
    /// 60..=43200).
    #[arg(long, env = "TESSERA_IAM_TOKEN_LIFETIME", value_name = "SECONDS")]
    pub iam_token_lifetime: Option<i64>,
    /// `host:port` that ApiEndpointService advertises to Yandex SDKs (default: the host and port
    /// of the public URL).
    #[arg(long, env = "TESSERA_ADVERTISED_ADDRESS", value_name = "HOST:PORT")]
    pub advertised_address: Option<String>,
    /// Accepted `aud` of service-account JWTs; repeat for several (default: the canonical Yandex
    /// URL and https://iam.<advertised address>/iam/v1/tokens).
    #[arg(
        long = "jwt-audience",
        env = "TESSERA_JWT_AUDIENCES",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub jwt_audiences: Vec<String>,
    /// PEM certificate chain to serve TLS with (needs --tls-key).
    #[arg(long, env = "TESSERA_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "TESSERA_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Serve TLS with a certificate from a local CA created (once) in the data directory.
    #[arg(long, env = "TESSERA_TLS_SELF_SIGNED")]
    pub tls_self_signed: bool,
    /// Extra DNS names or IP addresses for the self-signed certificate (besides localhost,
    /// 127.0.0.1 and ::1); repeat for several.
    #[arg(
        long = "tls-name",
        env = "TESSERA_TLS_NAMES",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub tls_names: Vec<String>,
    /// Brute-force throttling: failures of one credential before each attempt is delayed
    /// (default 5).
    #[arg(long, env = "TESSERA_THROTTLE_DELAY_AFTER", value_name = "N")]
    pub throttle_delay_after: Option<u32>,
    /// Failures of one credential before it is locked (default 10).
    #[arg(long, env = "TESSERA_THROTTLE_LOCK_AFTER", value_name = "N")]
    pub throttle_lock_after: Option<u32>,
    /// Failures from one source address before each attempt is delayed (default 50).
    #[arg(long, env = "TESSERA_THROTTLE_ADDRESS_DELAY_AFTER", value_name = "N")]
    pub throttle_address_delay_after: Option<u32>,
    /// Failures from one source address before it is locked (default 200).
    #[arg(long, env = "TESSERA_THROTTLE_ADDRESS_LOCK_AFTER", value_name = "N")]
    pub throttle_address_lock_after: Option<u32>,
    /// Window in which failures count, from the first of a run (default 900).
    #[arg(long, env = "TESSERA_THROTTLE_WINDOW", value_name = "SECONDS")]
    pub throttle_window: Option<i64>,
    /// How long a locked credential or address stays locked (default 900).
    #[arg(long, env = "TESSERA_THROTTLE_LOCK_SECONDS", value_name = "SECONDS")]
    pub throttle_lock_seconds: Option<i64>,
    /// How long a client may take to finish the TLS handshake and to send each request's
    /// headers (default 10; 1..=300).
    #[arg(long, env = "TESSERA_HEADER_READ_TIMEOUT", value_name = "SECONDS")]
    pub header_read_timeout: Option<i64>,
    /// How long a connection may stay open with no request in flight (default 120; 1..=3600).
    #[arg(long, env = "TESSERA_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub idle_timeout: Option<i64>,
    /// Connections served at once; further ones wait in the listen queue (default 1000).
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<u32>,
    /// Dev mode: a throw-away installation in a temporary directory (deleted at exit), plain
    /// HTTP, fixed printed API keys for the administrator and a ready service account, and
    /// lines to paste. Nothing is kept. Listens on loopback addresses only.
    #[arg(long)]
    pub dev: bool,
    /// With --dev: listen on a non-loopback address too (the dev keys are public).
    #[arg(long, requires = "dev")]
    pub dev_listen_any: bool,
}

/// The optional configuration file. Unknown keys are an error, so typos do not pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// File format version; only 1 exists.
    pub version: Option<u32>,
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub public_url: Option<String>,
    pub issuer: Option<String>,
    pub jwt_algorithm: Option<String>,
    pub token_lifetime: Option<i64>,
    pub refresh_token_lifetime: Option<i64>,
    pub master_key_file: Option<PathBuf>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    pub otlp_endpoint: Option<String>,
    pub database_url: Option<String>,
    pub database_schema: Option<String>,
    pub key_rotation_period: Option<i64>,
    pub eddsa_key_rotation_period: Option<i64>,
    pub jwks_cache_seconds: Option<i64>,
    pub rotation_check_interval: Option<i64>,
    pub max_staleness: Option<i64>,
    pub iam_token_lifetime: Option<i64>,
    pub advertised_address: Option<String>,
    pub jwt_audiences: Option<Vec<String>>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_self_signed: Option<bool>,
    pub tls_names: Option<Vec<String>>,
    pub throttle_delay_after: Option<u32>,
    pub throttle_lock_after: Option<u32>,
    pub throttle_address_delay_after: Option<u32>,
    pub throttle_address_lock_after: Option<u32>,
    pub throttle_window: Option<i64>,
    pub throttle_lock_seconds: Option<i64>,
    pub header_read_timeout: Option<i64>,
    pub idle_timeout: Option<i64>,
    pub max_connections: Option<u32>,
}

/// The validated configuration the server runs with.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `None` until the listener is bound when the default (derived from the address) applies.
    pub public_url: Option<String>,
    pub issuer: Option<String>,
    pub jwt_algorithm: Algorithm,
    pub token_lifetime: i64,
    pub refresh_token_lifetime: i64,
    pub master_key_file: PathBuf,
    /// Base64 master key from `TESSERA_MASTER_KEY`.
    pub master_key_env: Option<String>,
    /// `TESSERA_BOOTSTRAP_ADMIN_APIKEY`: the first administrator's API key, on first start only.
    pub bootstrap_admin_apikey: Option<String>,
    pub log_format: LogFormat,
    pub log_level: String,
    /// Where traces go (OTLP/gRPC); `None`: no traces.
    pub otlp_endpoint: Option<String>,
    /// `None`: the embedded SQLite store in the data directory. May hold a password.
    pub database_url: Option<String>,
    pub database_schema: Option<String>,
    pub key_rotation_period: i64,
    pub eddsa_key_rotation_period: i64,
    pub jwks_cache_seconds: i64,
    pub rotation_check_interval: i64,
    pub max_staleness: i64,
    /// Lifetime of `t1.` IAM tokens.
    pub iam_token_lifetime: i64,
    /// `host:port` advertised by ApiEndpointService; `None`: derived from the public URL.
    pub advertised_address: Option<String>,
    /// Extra accepted service-account JWT audiences; the defaults are always accepted.
    pub jwt_audiences: Vec<String>,
    pub tls: TlsMode,
    /// Brute-force throttling thresholds.
    pub throttle: crate::throttle::ThrottleConfig,
    /// Bounds on the listener's connections.
    pub connections: ConnectionLimits,
    /// `serve --dev`: a throw-away installation (see [`crate::dev`]).
    pub dev: bool,
}

/// Bounds on the listener's connections, plaintext and TLS alike, so that slow or idle clients
/// cannot hold the server's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A client must finish the TLS handshake, and each request's headers, within this time
    /// (counted from the connection's start, or from its first byte after the last answer).
    pub header_read_timeout: std::time::Duration,
    /// A connection with no request in flight is closed after this long.
    pub idle_timeout: std::time::Duration,
    /// Connections served at once; more wait in the kernel's listen queue until one closes.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: std::time::Duration::from_secs(10),
            idle_timeout: std::time::Duration::from_secs(120),
            max_connections: 1000,
        }
    }
}

/// How the listener speaks TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Plaintext HTTP/1.1 and h2c.
    Off,
    /// A certificate chain and key from PEM files.
    Files { cert: PathBuf, key: PathBuf },
    /// A local CA and server certificate kept in the data directory; `names` are extra SANs.
    SelfSigned { names: Vec<String> },
}

/// Environment values that are secrets and so are not clap flags (they would show in `ps`).
#[derive(Default)]
pub struct SecretEnv {
    pub master_key: Option<String>,
    pub bootstrap_admin_apikey: Option<String>,
}

impl SecretEnv {
    pub fn from_process() -> Self {
        SecretEnv {
            master_key: std::env::var("TESSERA_MASTER_KEY")
                .ok()
                .filter(|s| !s.is_empty()),
            bootstrap_admin_apikey: std::env::var("TESSERA_BOOTSTRAP_ADMIN_APIKEY")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }
}

impl Config {
    /// Layers flags/env over the file over defaults and validates.
    pub fn resolve(args: &ServeArgs, secrets: SecretEnv) -> anyhow::Result<Config> {
        let file = match &args.store.config {
            Some(path) => read_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                read_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileConfig::default(),
        };
        Self::merge(args, file, secrets)
    }

    /// The configuration of a one-shot store command (`migrate`, `export`, `import`): the store
    /// flags and the master key file as given, everything else from the configuration file and
    /// the defaults, exactly as `serve` would resolve them.
    pub fn resolve_store(
        store: &StoreArgs,
        master_key_file: Option<PathBuf>,
        secrets: SecretEnv,
    ) -> anyhow::Result<Config> {
        let args = ServeArgs {
            store: store.clone(),
            master_key_file,
            ..ServeArgs::default()
        };
        Self::resolve(&args, secrets)
    }

    pub fn merge(args: &ServeArgs, file: FileConfig, secrets: SecretEnv) -> anyhow::Result<Config> {
        if let Some(version) = file.version {
            if version != 1 {
                bail!("configuration file version {version} is not supported (expected 1)");
            }
        }
        // Copied out before the file's other fields are moved from.
        let file_throttle = FileConfig {
            throttle_delay_after: file.throttle_delay_after,
            throttle_lock_after: file.throttle_lock_after,
            throttle_address_delay_after: file.throttle_address_delay_after,
            throttle_address_lock_after: file.throttle_address_lock_after,
            throttle_window: file.throttle_window,
            throttle_lock_seconds: file.throttle_lock_seconds,
            ..FileConfig::default()
        };
        let listen = match args.listen.or(file.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        let data_dir = args
            .store
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let alg_text = args
            .jwt_algorithm
            .clone()
            .or(file.jwt_algorithm)
            .unwrap_or_else(|| "RS256".into());
        let jwt_algorithm = Algorithm::parse(&alg_text).with_context(|| {
            format!("jwt algorithm {alg_text:?} is not one of RS256, PS256, ES256, EdDSA")
        })?;
        let token_lifetime = args.token_lifetime.or(file.token_lifetime).unwrap_or(3600);
        if !(60..=43_200).contains(&token_lifetime) {
            bail!("token lifetime must be between 60 and 43200 seconds, got {token_lifetime}");
        }
        let refresh_token_lifetime = args
            .refresh_token_lifetime
            .or(file.refresh_token_lifetime)
            .unwrap_or(30 * 86_400);
        if !(token_lifetime..=365 * 86_400).contains(&refresh_token_lifetime) {
            bail!("refresh token lifetime must be between the token lifetime and 365 days, got {refresh_token_lifetime}");
        }
        let public_url = args
            .public_url
            .clone()
            .or(file.public_url)
            .map(|u| u.trim_end_matches('/').to_owned());
        if let Some(url) = &public_url {
            check_url("public URL", url)?;
        }
        let issuer = args.issuer.clone().or(file.issuer);
        if let Some(url) = &issuer {
            check_url("issuer", url)?;
        }
        let master_key_file = args
            .master_key_file
            .clone()
            .or(file.master_key_file)
            .unwrap_or_else(|| data_dir.join("master.key"));
        let log_format = match args.log_format.clone().or(file.log_format) {
            None => LogFormat::Text,
            Some(format) => LogFormat::parse(&format)?,
        };
        let log_level = args
            .log_level
            .clone()
            .or(file.log_level)
            .unwrap_or_else(|| "info".into());
        crate::telemetry::log_filter(&log_level)?;
        let otlp_endpoint = args.otlp_endpoint.clone().or(file.otlp_endpoint);
        if let Some(endpoint) = &otlp_endpoint {
            check_otlp_endpoint(endpoint)?;
        }
        let database_url = args.store.database_url.clone().or(file.database_url);
        if let Some(url) = &database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                bail!("database URL must start with postgres:// or postgresql://");
            }
        }
        let database_schema = args.store.database_schema.clone().or(file.database_schema);
        if let Some(schema) = &database_schema {
            let valid = !schema.is_empty()
                && schema.len() <= 63
                && schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                bail!(
                    "database schema must be 1 to 63 characters of a-z, 0-9 and _, got {schema:?}"
                );
            }
            if database_url.is_none() {
                bail!("--database-schema needs --database-url");
            }
        }
        let seconds = |name: &str,
                       value: Option<i64>,
                       default: i64,
                       min: i64,
                       max: i64|
         -> anyhow::Result<i64> {
            let value = value.unwrap_or(default);
            if !(min..=max).contains(&value) {
                bail!("{name} must be between {min} and {max} seconds, got {value}");
            }
            Ok(value)
        };
        let jwks_cache_seconds = seconds(
            "JWKS cache time",
            args.jwks_cache_seconds.or(file.jwks_cache_seconds),
            300,
            1,
            86_400,
        )?;
        let key_rotation_period = seconds(
            "key rotation period",
            args.key_rotation_period.or(file.key_rotation_period),
            30 * 86_400,
            10,
            3650 * 86_400,
        )?;
        let eddsa_key_rotation_period = seconds(
            "EdDSA key rotation period",
            args.eddsa_key_rotation_period
                .or(file.eddsa_key_rotation_period),
            7 * 86_400,
            10,
            3650 * 86_400,
        )?;
        for (name, period) in [
            ("key rotation period", key_rotation_period),
            ("EdDSA key rotation period", eddsa_key_rotation_period),
        ] {
            if period <= 2 * publish_lead(jwks_cache_seconds) {
                bail!("{name} ({period} s) must be more than twice the key publication lead ({} s, twice the JWKS cache time)", publish_lead(jwks_cache_seconds));
            }
        }
        let rotation_check_interval = seconds(
            "rotation check interval",
            args.rotation_check_interval
                .or(file.rotation_check_interval),
            60,
            1,
            3600,
        )?;
        let max_staleness = seconds(
            "maximum staleness",
            args.max_staleness.or(file.max_staleness),
            30,
            1,
            86_400,
        )?;
        let throttle = throttle_config(args, &file_throttle, seconds)?;
        let default_limits = ConnectionLimits::default();
        let max_connections = args
            .max_connections
            .or(file.max_connections)
            .unwrap_or(default_limits.max_connections as u32);
        if !(1..=1_000_000).contains(&max_connections) {
            bail!("maximum connections must be between 1 and 1000000, got {max_connections}");
        }
        let connections = ConnectionLimits {
            header_read_timeout: std::time::Duration::from_secs(seconds(
                "header read timeout",
                args.header_read_timeout.or(file.header_read_timeout),
                default_limits.header_read_timeout.as_secs() as i64,
                1,
                300,
            )? as u64),
            idle_timeout: std::time::Duration::from_secs(seconds(
                "idle timeout",
                args.idle_timeout.or(file.idle_timeout),
                default_limits.idle_timeout.as_secs() as i64,
                1,
                3600,
            )? as u64),
            max_connections: max_connections as usize,
        };
        let iam_token_lifetime = seconds(
            "IAM token lifetime",
            args.iam_token_lifetime.or(file.iam_token_lifetime),
            43_200,
            60,
            43_200,
        )?;
        let advertised_address = args.advertised_address.clone().or(file.advertised_address);
        if let Some(address) = &advertised_address {
            check_host_port("advertised address", address)?;
        }
        let jwt_audiences = if args.jwt_audiences.is_empty() {
            file.jwt_audiences.unwrap_or_default()
        } else {
            args.jwt_audiences.clone()
        };
        for audience in &jwt_audiences {
            check_url("JWT audience", audience)?;
        }
        let tls_self_signed = args.tls_self_signed || file.tls_self_signed.unwrap_or(false);
        let tls_names = if args.tls_names.is_empty() {
            file.tls_names.unwrap_or_default()
        } else {
            args.tls_names.clone()
        };
        let tls = match (
            args.tls_cert.clone().or(file.tls_cert),
            args.tls_key.clone().or(file.tls_key),
            tls_self_signed,
        ) {
            (None, None, false) => {
                if !tls_names.is_empty() {
                    bail!("--tls-name needs --tls-self-signed");
                }
                TlsMode::Off
            }
            (None, None, true) => TlsMode::SelfSigned { names: tls_names },
            (Some(cert), Some(key), false) => TlsMode::Files { cert, key },
            (Some(_), Some(_), true) => {
                bail!("--tls-self-signed and --tls-cert/--tls-key exclude each other")
            }
            (Some(_), None, _) => bail!("--tls-cert needs --tls-key"),
            (None, Some(_), _) => bail!("--tls-key needs --tls-cert"),
        };
        Ok(Config {
            listen,
            data_dir,
            public_url,
            issuer,
            jwt_algorithm,
            token_lifetime,
            refresh_token_lifetime,
            master_key_file,
            master_key_env: secrets.master_key,
            bootstrap_admin_apikey: secrets.bootstrap_admin_apikey,
            log_format,
            log_level,
            otlp_endpoint,
            database_url,
            database_schema,
            key_rotation_period,
            eddsa_key_rotation_period,
            jwks_cache_seconds,
            rotation_check_interval,
            max_staleness,
            iam_token_lifetime,
            advertised_address,
            jwt_audiences,
            tls,
            throttle,
            connections,
            dev: false,
        })
    }

    /// The store, for people: `sqlite:<path>`, or the PostgreSQL URL without its password and
    /// with the schema. Never shows a secret.
    pub fn store_description(&self) -> String {
        match (&self.database_url, &self.database_schema) {
            (Some(url), Some(schema)) => format!("{} (schema {schema})", redact_url(url)),
            (Some(url), None) => redact_url(url),
            (None, _) => format!("sqlite:{}", self.data_dir.join("tessera.db").display()),
        }
    }

    /// How `tessera serve` logs and traces.
    pub fn telemetry_settings(&self) -> crate::telemetry::Settings {
        crate::telemetry::Settings {
            format: self.log_format,
            level: self.log_level.clone(),
            otlp_endpoint: self.otlp_endpoint.clone(),
            service_name: "tessera",
        }
    }

    /// Longest lifetime of any token a signing key signs (`t1.` tokens live up to 12 h).
    pub fn longest_token_lifetime(&self) -> i64 {
        self.token_lifetime.max(self.iam_token_lifetime)
    }

    /// How keys of each use rotate.
    pub fn rotation_policy(
        &self,
        key_use: tessera_core::model::KeyUse,
    ) -> tessera_core::rotation::RotationPolicy {
        let period = match key_use {
            tessera_core::model::KeyUse::Jwt => self.key_rotation_period,
            tessera_core::model::KeyUse::YandexIam => self.eddsa_key_rotation_period,
        };
        tessera_core::rotation::RotationPolicy {
            period,
            publish_lead: publish_lead(self.jwks_cache_seconds),
            // Clock skew allowance of 5 minutes on top of token lifetime and cache time.
            retire_after: self.longest_token_lifetime() + self.jwks_cache_seconds + 300,
        }
    }

    /// A configuration for tests: a temporary data directory, a free port, quiet logs.
    pub fn for_test(data_dir: &Path) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
            public_url: None,
            issuer: None,
            jwt_algorithm: Algorithm::Rs256,
            token_lifetime: 3600,
            refresh_token_lifetime: 30 * 86_400,
            master_key_file: data_dir.join("master.key"),
            master_key_env: None,
            bootstrap_admin_apikey: None,
            log_format: LogFormat::Text,
            log_level: "warn".into(),
            otlp_endpoint: None,
            database_url: None,
            database_schema: None,
            key_rotation_period: 30 * 86_400,
            eddsa_key_rotation_period: 7 * 86_400,
            jwks_cache_seconds: 300,
            rotation_check_interval: 60,
            max_staleness: 30,
            iam_token_lifetime: 43_200,
            advertised_address: None,
            jwt_audiences: Vec::new(),
            tls: TlsMode::Off,
            throttle: crate::throttle::ThrottleConfig::default(),
            connections: ConnectionLimits::default(),
            dev: false,
        }
    }
}

/// The throttling thresholds: flags over the file over the defaults; each lock threshold must
/// be above its delay threshold.
fn throttle_config(
    args: &ServeArgs,
    file: &FileConfig,
    seconds: impl Fn(&str, Option<i64>, i64, i64, i64) -> anyhow::Result<i64>,
) -> anyhow::Result<crate::throttle::ThrottleConfig> {
    use crate::throttle::{Limits, ThrottleConfig};
    let defaults = ThrottleConfig::default();
    let limits = |what: &str,
                  delay: Option<u32>,
                  lock: Option<u32>,
                  default: Limits|
     -> anyhow::Result<Limits> {
        let delay_after = delay.unwrap_or(default.delay_after);
        let lock_after = lock.unwrap_or(default.lock_after);
        if delay_after == 0 || lock_after == 0 || lock_after > 1_000_000 {
            bail!("{what} throttle thresholds must be between 1 and 1000000");
        }
        if lock_after < delay_after {
            bail!("{what} lock threshold ({lock_after}) must not be below its delay threshold ({delay_after})");
        }
        Ok(Limits {
            delay_after,
            lock_after,
        })
    };
    Ok(ThrottleConfig {
        credential: limits(
            "credential",
            args.throttle_delay_after.or(file.throttle_delay_after),
            args.throttle_lock_after.or(file.throttle_lock_after),
            defaults.credential,
        )?,
        address: limits(
            "address",
            args.throttle_address_delay_after
                .or(file.throttle_address_delay_after),
            args.throttle_address_lock_after
                .or(file.throttle_address_lock_after),
            defaults.address,
        )?,
        window: seconds(
            "throttle window",
            args.throttle_window.or(file.throttle_window),
            defaults.window as i64,
            1,
            86_400,
        )? as u64,
        lock_for: seconds(
            "throttle lock time",
            args.throttle_lock_seconds.or(file.throttle_lock_seconds),
            defaults.lock_for as i64,
            1,
            86_400,
        )? as u64,
    })
}

/// How long a new key is published before it signs: twice the JWKS cache time, so a verifier
/// that fetched the JWKS just before the key appeared has refreshed before its first token.
pub fn publish_lead(jwks_cache_seconds: i64) -> i64 {
    2 * jwks_cache_seconds
}

/// A `host:port` as gRPC clients dial it: a DNS name, an IPv4 address or a bracketed IPv6
/// address, and a port.
fn check_host_port(what: &str, value: &str) -> anyhow::Result<()> {
    let valid = value.len() <= 255
        && value.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && port.parse::<u16>().is_ok_and(|p| p != 0)
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
        });
    if !valid {
        bail!("{what} must be host:port, got {value:?}");
    }
    Ok(())
}

/// The OTLP exporter speaks plaintext gRPC (to a collector on the host or in the pod): an
/// `http://` URL with a host and port.
fn check_otlp_endpoint(endpoint: &str) -> anyhow::Result<()> {
    let authority = endpoint
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'));
    match authority {
        Some(authority) if !authority.contains('/') => check_host_port("OTLP endpoint", authority),
        _ => bail!(
            "OTLP endpoint must be http://host:port of an OTLP/gRPC collector (plaintext, \
             e.g. http://127.0.0.1:4317), got {endpoint:?}"
        ),
    }
}

fn check_url(what: &str, url: &str) -> anyhow::Result<()> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 512 {
        bail!("{what} must be an http:// or https:// URL of at most 512 characters, got {url:?}");
    }
    Ok(())
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration file {}", path.display()))?;
    parse_file(&text).with_context(|| format!("invalid configuration file {}", path.display()))
}

/// Parses the text of a `tessera.toml`. Unknown keys are an error; values are checked later by
/// [`Config::merge`].
pub fn parse_file(text: &str) -> anyhow::Result<FileConfig> {
    Ok(toml::from_str(text)?)
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let master_key = if self.master_key_env.is_some() {
            "env".to_owned()
        } else {
            self.master_key_file.display().to_string()
        };
        let store = match &self.database_url {
            Some(url) => redact_url(url),
            None => format!("sqlite:{}", self.data_dir.join("tessera.db").display()),
        };
        write!(
            f,
            "listen={} store={} jwt_algorithm={} token_lifetime={}s refresh_token_lifetime={}s \
             key_rotation_period={}s eddsa_key_rotation_period={}s jwks_cache={}s max_staleness={}s iam_token_lifetime={}s tls={} master_key={} header_read_timeout={}s idle_timeout={}s max_connections={}",
            self.listen,
            store,
            self.jwt_algorithm.as_str(),
            self.token_lifetime,
            self.refresh_token_lifetime,
            self.key_rotation_period,
            self.eddsa_key_rotation_period,
            self.jwks_cache_seconds,
            self.max_staleness,
            self.iam_token_lifetime,
            match &self.tls {
                TlsMode::Off => "off",
                TlsMode::Files { .. } => "files",
                TlsMode::SelfSigned { .. } => "self-signed",
            },
            master_key,
            self.connections.header_read_timeout.as_secs(),
            self.connections.idle_timeout.as_secs(),
            self.connections.max_connections,
        )
    }
}

/// A database URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<invalid url>".into();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let path = tail.split('?').next().unwrap_or("");
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's configuration table, as (flag, environment variable, file key) rows.
    fn documented_settings() -> Vec<(String, String, String)> {
        let readme = include_str!("../../../README.md");
        let table = readme
            .split("## Configuration reference")
            .nth(1)
            .and_then(|rest| {
                rest.split("\n\n")
                    .find(|block| block.starts_with("| flag |"))
            })
            .expect("the README's configuration table");
        let cell = |text: &str| {
            // `--flag VALUE` → `--flag`; `NAME` (comma-separated) → `NAME`.
            let text = text.trim();
            let inner = text.split('`').nth(1).unwrap_or("");
            inner.split_whitespace().next().unwrap_or("").to_owned()
        };
        table
            .lines()
            .skip(2)
            .map(|row| {
                let cells: Vec<&str> = row.trim_matches('|').split('|').collect();
                (cell(cells[0]), cell(cells[1]), cell(cells[2]))
            })
            .collect()
    }

    /// Every flag of `tessera serve` is in the README's table with its variable, and every row
    /// of the table names a flag, variable and file key that exist.
    #[test]
    fn the_readme_configuration_table_is_the_serve_flags_and_file_keys() {
        use clap::CommandFactory;
        #[derive(clap::Parser)]
        struct Serve {
            #[command(flatten)]
            args: ServeArgs,
        }
        let command = Serve::command();
        let flags: Vec<(String, String)> = command
            .get_arguments()
            .filter_map(|a| {
                let long = a.get_long()?;
                let env = a
                    .get_env()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Some((format!("--{long}"), env))
            })
            .collect();
        let documented = documented_settings();
        assert!(documented.len() > 30, "{documented:?}");
        for (flag, env) in &flags {
            let row = documented.iter().find(|(f, _, _)| f == flag);
            let Some((_, documented_env, _)) = row else {
                panic!("`tessera serve {flag}` is missing from the README's configuration table");
            };
            assert_eq!(documented_env, env, "the variable of {flag} in the README");
        }
        for (flag, env, key) in &documented {
            if !flag.is_empty() {
                assert!(
                    flags.iter().any(|(f, _)| f == flag),
                    "the README documents {flag}, which `tessera serve` does not have"
                );
            }
            if flag.is_empty() {
                assert!(
                    ["TESSERA_MASTER_KEY", "TESSERA_BOOTSTRAP_ADMIN_APIKEY"]
                        .contains(&env.as_str()),
                    "{env}: a documented variable without a flag must be one of the secrets"
                );
            }
            if !key.is_empty() {
                let error = parse_file(&format!("{key} = 0"))
                    .err()
                    .map(|e| format!("{e:#}"));
                assert!(
                    !error.as_deref().unwrap_or("").contains("unknown field"),
                    "the README documents the file key {key}, which tessera.toml does not have: {error:?}"
                );
            }
        }
    }

    #[test]
    fn flags_beat_file_beat_defaults() {
        let file: FileConfig = toml::from_str(
            "version = 1\nlisten = \"127.0.0.1:9000\"\njwt_algorithm = \"ES256\"\ntoken_lifetime = 600\n",
        )
        .unwrap();
        let args = ServeArgs {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Default::default()
        };
        let config = Config::merge(&args, file, SecretEnv::default()).unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.jwt_algorithm, Algorithm::Es256);
        assert_eq!(config.token_lifetime, 600);
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(
            config.master_key_file,
            PathBuf::from(DEFAULT_DATA_DIR).join("master.key")
        );
    }

    #[test]
    fn bad_values_are_explained() {
        let bad = |args: ServeArgs| {
            Config::merge(&args, FileConfig::default(), SecretEnv::default())
                .unwrap_err()
                .to_string()
        };
        assert!(bad(ServeArgs {
            jwt_algorithm: Some("HS256".into()),
            ..Default::default()
        })
        .contains("HS256"));
        assert!(bad(ServeArgs {
            token_lifetime: Some(5),
            ..Default::default()
        })
        .contains("token lifetime"));
        assert!(bad(ServeArgs {
            public_url: Some("ftp://x".into()),
            ..Default::default()
        })
        .contains("public URL"));
        assert!(bad(ServeArgs {
            log_level: Some("loud".into()),
            ..Default::default()
        })
        .contains("log level"));
        assert!(bad(ServeArgs {
            otlp_endpoint: Some("https://collector:4317".into()),
            ..Default::default()
        })
        .contains("OTLP endpoint"));
        assert!(bad(ServeArgs {
            otlp_endpoint: Some("http://collector".into()),
            ..Default::default()
        })
        .contains("OTLP endpoint"));
        let traced = ServeArgs {
            otlp_endpoint: Some("http://127.0.0.1:4317/".into()),
            ..Default::default()
        };
        Config::merge(&traced, FileConfig::default(), SecretEnv::default()).unwrap();
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
        let v2: FileConfig = toml::from_str("version = 2").unwrap();
        assert!(Config::merge(&ServeArgs::default(), v2, SecretEnv::default()).is_err());
    }

    #[test]
    fn display_hides_master_key() {
        let secrets = SecretEnv {
            master_key: Some("c2VjcmV0".into()),
            bootstrap_admin_apikey: Some("x".repeat(40)),
        };
        let config = Config::merge(&ServeArgs::default(), FileConfig::default(), secrets).unwrap();
        let shown = config.to_string();
        assert!(shown.contains("master_key=env"));
        assert!(!shown.contains("c2VjcmV0") && !shown.contains("xxxx"));
        let with_db = ServeArgs {
            store: StoreArgs {
                database_url: Some("postgres://tessera:hunter2@db:5432/iam?sslmode=require".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let config = Config::merge(&with_db, FileConfig::default(), SecretEnv::default()).unwrap();
        assert!(
            config
                .to_string()
                .contains("store=postgres://tessera:***@db:5432/iam"),
            "{config}"
        );
        assert!(!config.to_string().contains("hunter2"));
    }

    #[test]
    fn store_commands_resolve_like_serve() {
        let store = StoreArgs {
            database_url: Some("postgres://u:pw@db/iam".into()),
            database_schema: Some("tenant_a".into()),
            ..Default::default()
        };
        let args = ServeArgs {
            store: store.clone(),
            ..Default::default()
        };
        let served = Config::merge(&args, FileConfig::default(), SecretEnv::default()).unwrap();
        assert_eq!(served.database_url, store.database_url);
        assert_eq!(
            served.store_description(),
            "postgres://u:***@db/iam (schema tenant_a)"
        );
        let file: FileConfig = toml::from_str("data_dir = \"/srv/tessera\"\n").unwrap();
        let args = ServeArgs {
            master_key_file: Some("/run/key".into()),
            ..Default::default()
        };
        let config = Config::merge(&args, file, SecretEnv::default()).unwrap();
        assert_eq!(config.store_description(), "sqlite:/srv/tessera/tessera.db");
        assert_eq!(config.master_key_file, PathBuf::from("/run/key"));
    }

    #[test]
    fn rotation_settings_are_checked() {
        let bad = |args: ServeArgs| {
            Config::merge(&args, FileConfig::default(), SecretEnv::default())
                .unwrap_err()
                .to_string()
        };
        assert!(bad(ServeArgs {
            key_rotation_period: Some(100),
            ..Default::default()
        })
        .contains("twice"));
        assert!(bad(ServeArgs {
            store: StoreArgs {
                database_schema: Some("x".into()),
                ..Default::default()
            },
            ..Default::default()
        })
        .contains("--database-url"));
        assert!(bad(ServeArgs {
            store: StoreArgs {
                database_url: Some("mysql://x".into()),
                ..Default::default()
            },
            ..Default::default()
        })
        .contains("postgres://"));
        let ok = ServeArgs {
            key_rotation_period: Some(30),
            jwks_cache_seconds: Some(5),
            ..Default::default()
        };
        let config = Config::merge(&ok, FileConfig::default(), SecretEnv::default()).unwrap();
        let policy = config.rotation_policy(tessera_core::model::KeyUse::Jwt);
        assert_eq!((policy.period, policy.publish_lead), (30, 10));
    }
}
