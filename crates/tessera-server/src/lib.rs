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
#[cfg(feature = "console")]
pub mod console;
pub mod data_dir_lock;
pub mod dev;
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
pub mod security_log;
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
    if args.dev {
        return serve_dev(args).await;
    }
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

/// `tessera serve --dev`: [`dev`]'s throw-away installation, removed when the server stops.
async fn serve_dev(args: ServeArgs) -> anyhow::Result<()> {
    let setup = dev::setup(&args, config::SecretEnv::from_process())?;
    let telemetry = telemetry::init(&setup.config.telemetry_settings())?;
    let result = async {
        let server = server::Server::prepare(setup.config.clone()).await?;
        let installed = server
            .installed()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the dev installation was not created"))?;
        let objects = dev::provision(server.state(), &installed, setup.dir()).await?;
        dev::print_banner(&server.state().public_url, setup.dir(), &objects)?;
        tracing::warn!(dir = %setup.dir().display(), "dev mode: nothing is kept, the installation is deleted at exit");
        server.run(server::shutdown_signal()).await
    }
    .await;
    telemetry.shutdown().await;
    drop(setup);
    result
}
