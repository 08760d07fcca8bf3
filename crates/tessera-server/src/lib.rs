//! Tessera's server: configuration, the in-memory snapshot and its change feed, the protocol
//! surfaces (IBM token API, Yandex IAM over gRPC and REST, OIDC/JWKS/introspection/revocation,
//! admin API, operations), and the
//! listener that serves them.
//!
//! Entry point: [`serve`]. A request flows: [`http`] layers → surface handler ([`ibm`], [`oidc`],
//! [`admin`], [`ops`]) → the token service ([`tokens`]) with `now` → core rules over the
//! [`snapshot`] → a response in the surface's own shape. Only admin writes and revocations reach
//! the store; the token path reads memory only. [`maintenance`] holds the one-shot operator
//! commands on the store (`migrate`, `export`, `import`, `backup`, `restore`, `admin recover`);
//! [`data_dir_lock`] keeps them and `serve` from sharing a data directory.

pub mod admin;
pub mod api_doc;
pub mod bootstrap;
pub mod clock;
pub mod config;
pub mod data_dir_lock;
pub mod http;
pub mod ibm;
pub mod issuer_keys;
pub mod listener;
pub mod maintenance;
pub mod metrics_names;
pub mod oidc;
pub mod ops;
pub mod rfc3339;
pub mod rotation;
pub mod router;
pub mod server;
pub mod snapshot;
pub mod state;
pub mod storage;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod testkit;
pub mod throttle;
pub mod tls;
pub mod tokens;
pub mod yandex;
pub mod yandex_settings;

pub use config::{ServeArgs, StoreArgs};

/// Runs `tessera serve` until SIGINT/SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = config::Config::resolve(&args, config::SecretEnv::from_process())?;
    let telemetry = telemetry::init(&config.telemetry_settings())?;
    let result = async {
        let server = server::Server::prepare(config).await?;
        server.run(server::shutdown_signal()).await
    }
    .await;
    telemetry.shutdown().await;
    result
}
