//! `tessera serve --dev`: a throw-away installation for trying Tessera and for local
//! development, like `vault server -dev`. Everything lives in a temporary directory removed at
//! exit; TLS is off; the administrator's and a ready service account's API keys are fixed and
//! printed, with the `export` lines and SDK snippets to paste.
//!
//! The keys are public knowledge (they are in this file), so dev mode listens on a loopback
//! address only, unless `--dev-listen-any` says otherwise.

use crate::bootstrap::system_audit;
use crate::config::{Config, SecretEnv, ServeArgs, TlsMode};
use crate::server::Installed;
use crate::state::AppState;
use anyhow::{bail, Context};
use std::io::Write;
use std::path::{Path, PathBuf};
use tessera_core::directory::Entity;
use tessera_core::model::{ApiKey, ServiceAccount};
use tessera_core::secret::SecretPurpose;

/// The administrator's API key of every dev installation.
pub const ADMIN_APIKEY: &str = "tessera-dev-admin-apikey-not-for-production";
/// The API key of the dev installation's service account.
pub const SERVICE_APIKEY: &str = "tessera-dev-service-apikey-not-for-production";
/// The dev installation's service account.
pub const SERVICE_ACCOUNT_NAME: &str = "dev-workload";

/// A dev installation's configuration and the temporary directory it lives in (removed when
/// this is dropped, after the server has stopped).
pub struct DevSetup {
    pub config: Config,
    dir: tempfile::TempDir,
}

impl DevSetup {
    /// Where the installation lives.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The configuration of `serve --dev`: `args` as given, over a fresh temporary data directory,
/// with the fixed administrator key. Refuses what would keep data or expose the fixed keys: a
/// database URL, TLS settings (dev mode is plain HTTP), a non-loopback address without
/// `--dev-listen-any`.
pub fn setup(args: &ServeArgs, secrets: SecretEnv) -> anyhow::Result<DevSetup> {
    if args.store.data_dir.is_some() {
        bail!("--dev keeps nothing: it uses a temporary data directory, so --data-dir (TESSERA_DATA_DIR) cannot be given");
    }
    if args.master_key_file.is_some() || secrets.master_key.is_some() {
        bail!("--dev creates a throw-away master key: --master-key-file (TESSERA_MASTER_KEY_FILE) and TESSERA_MASTER_KEY cannot be given");
    }
    let dir = tempfile::Builder::new()
        .prefix("tessera-dev-")
        .tempdir()
        .context("cannot create the temporary directory of the dev installation")?;
    let args = ServeArgs {
        store: crate::config::StoreArgs {
            data_dir: Some(dir.path().join("data")),
            ..args.store.clone()
        },
        ..args.clone()
    };
    let secrets = SecretEnv {
        master_key: None,
        bootstrap_admin_apikey: Some(ADMIN_APIKEY.to_owned()),
    };
    let mut config = Config::resolve(&args, secrets)?;
    if config.database_url.is_some() {
        bail!("--dev keeps nothing: it uses a temporary embedded store, so a database URL (--database-url, TESSERA_DATABASE_URL or the configuration file) cannot be given");
    }
    if !matches!(config.tls, TlsMode::Off) {
        bail!("--dev serves plain HTTP: remove the TLS settings (--tls-cert/--tls-key/--tls-self-signed or the configuration file's)");
    }
    if !config.listen.ip().is_loopback() && !args.dev_listen_any {
        bail!(
            "--dev refuses to listen on {}: its API keys are fixed and public, so it listens on a \
             loopback address only (e.g. 127.0.0.1:8080); add --dev-listen-any to listen there anyway",
            config.listen
        );
    }
    config.dev = true;
    Ok(DevSetup { config, dir })
}

/// What [`provision`] created.
pub struct DevObjects {
    pub account_id: String,
    pub admin_user_id: String,
    pub service_account_id: String,
    /// `{"apikey": …}` of the service account, for `tessera agent --credentials`.
    pub credentials_file: PathBuf,
}

/// Creates the ready service account and its API key (the account and the administrator were
/// created by the first start) and waits until this node's snapshot holds them.
pub async fn provision(
    state: &AppState,
    installed: &Installed,
    dir: &Path,
) -> anyhow::Result<DevObjects> {
    let now = state.clock.now();
    let err = anyhow::Error::msg;
    let account_id = installed.account_id.clone();
    let service_account = ServiceAccount {
        id: tessera_core::ids::new_service_account_id(&state.rng).map_err(err)?,
        account_id: account_id.clone(),
        name: SERVICE_ACCOUNT_NAME.into(),
        description: "The service account of the dev installation".into(),
        created_at: now,
    };
    let key = ApiKey {
        id: tessera_core::ids::new_api_key_id(&state.rng).map_err(err)?,
        name: "dev".into(),
        description: "API key of the dev installation's service account".into(),
        owner_iam_id: service_account.iam_id(),
        account_id: account_id.clone(),
        key_hash: state.pepper.hash(SecretPurpose::ApiKey, SERVICE_APIKEY),
        created_at: now,
    };
    let service_account_id = service_account.id.clone();
    state
        .store
        .create_all(
            &[Entity::ServiceAccount(service_account), Entity::ApiKey(key)],
            &system_audit(now, "installation.dev", "dev mode service account".into()),
        )
        .await
        .context("cannot create the dev service account")?;
    state.snapshot.catch_up(state.store.as_ref(), now).await?;
    let credentials_file = dir.join("dev-workload-apikey.json");
    std::fs::write(
        &credentials_file,
        format!("{{\"apikey\": \"{SERVICE_APIKEY}\"}}\n"),
    )
    .with_context(|| format!("cannot write {}", credentials_file.display()))?;
    Ok(DevObjects {
        account_id,
        admin_user_id: installed.admin_user_id.clone(),
        service_account_id,
        credentials_file,
    })
}

/// The banner of a dev installation: what it is, its keys, and lines to paste.
pub fn banner(public_url: &str, dir: &Path, objects: &DevObjects) -> String {
    let host_port = public_url
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let credentials = objects.credentials_file.display();
    format!(
        "\n\
==> Tessera is running in DEV MODE. NOTHING IS KEPT: the installation lives in\n    \
    {dir} and is deleted when the server stops. The API keys below are fixed\n    \
    and public: never use dev mode for anything that matters.\n\
\n    \
    endpoint:         {public_url}\n    \
    account:          {account} (Default account)\n    \
    admin API key:    {ADMIN_APIKEY} (global administrator)\n    \
    service account:  {sa} ({SERVICE_ACCOUNT_NAME})\n    \
    its API key:      {SERVICE_APIKEY}\n\
\n\
The CLI, as the administrator:\n    \
    export TESSERA_ENDPOINT={public_url}\n    \
    export TESSERA_APIKEY={ADMIN_APIKEY}\n    \
    tessera whoami\n\
\n\
A token for the service account, as IBM Cloud IAM gives it:\n    \
    curl -s {public_url}/identity/token -d grant_type=urn:ibm:params:oauth:grant-type:apikey \\\n      \
    -d apikey={SERVICE_APIKEY}\n\
\n\
IBM Cloud SDKs (Python):\n    \
    from ibm_cloud_sdk_core.authenticators import IAMAuthenticator\n    \
    auth = IAMAuthenticator(\"{SERVICE_APIKEY}\", url=\"{public_url}\")\n\
\n\
Yandex Cloud IAM (REST and plaintext gRPC here; the Yandex SDKs insist on TLS, see the README):\n    \
    tessera iam oauth-token create --user-id {admin}    # prints a y0_… token once\n    \
    curl -s {public_url}/iam/v1/tokens -d '{{\"yandexPassportOauthToken\": \"y0_…\"}}'\n    \
    grpcurl -plaintext {host_port} yandex.cloud.endpoint.ApiEndpointService/List\n\
\n\
The metadata agent, serving the service account's tokens GCE-style:\n    \
    tessera agent --server {public_url} --credentials {credentials} --listen 127.0.0.1:8081\n    \
    curl -H 'Metadata-Flavor: Google' \\\n      \
    http://127.0.0.1:8081/computeMetadata/v1/instance/service-accounts/default/token\n",
        dir = dir.display(),
        account = objects.account_id,
        admin = objects.admin_user_id,
        sa = objects.service_account_id,
    )
}

/// Prints [`banner`] to stdout.
pub fn print_banner(public_url: &str, dir: &Path, objects: &DevObjects) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(banner(public_url, dir, objects).as_bytes())?;
    out.flush()?;
    Ok(())
}
