//! Running a resolved [`Plan`]: network calls through `tessera_client`, output through
//! [`super::output`].

use super::args::{
    AccessBindingFilter, AccountFilter, AccountMore, ApiKeyFilter, AuditFilterArgs, AuditVerb,
    Format, IamResource, IdArg, IssuerMore, KeyFilter, KeysVerb, OAuthTokenFilter, PageArgs,
    PolicyFilter, ProfileRef, ProfileVerb, SavedProfileVerb, Secret, ServiceAccountRef, TotpVerb,
    UserCreate, UserMore, UserRef, VerbHelp, Verbs,
};
use super::config;
use super::failure::{CliError, LookUp};
use super::output::{self, SavedProfileRow, Tabular};
use super::resolve::{make_client, Connection, LoginPlan, Plan};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::future::Future;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use tessera_client::api::admin::{self, ListQuery};
use tessera_client::api::token::IbmTokenResponse;
use tessera_client::resource::{
    AccessBindings, Accounts, ApiKeys, AuthorizationPolicies, AuthorizedKeys, Clients, Enterprises,
    OAuthTokens, ServiceAccounts, TrustedIssuers, TrustedProfiles, Users,
};
use tessera_client::{self as client, Client, Resource};
use tessera_server::config::{Config as ServerConfig, SecretEnv};
use tessera_server::{maintenance, StoreArgs};
use tessera_store::transfer::Dump;

/// Largest page the admin API serves.
const MAX_PAGE: u32 = 1000;

/// Writing to standard output failed. A distinct type so that `main` can tell a closed pipe on
/// stdout (success: the reader had enough) from a broken connection to the server (failure).
#[derive(Debug, thiserror::Error)]
#[error("cannot write to standard output")]
pub struct OutputError(#[source] pub io::Error);

impl OutputError {
    /// Whether `err` is, anywhere in its chain, a write to a closed stdout pipe.
    pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
        err.chain()
            .filter_map(|cause| cause.downcast_ref::<OutputError>())
            .any(|OutputError(io)| io.kind() == io::ErrorKind::BrokenPipe)
    }
}

fn emit(written: io::Result<()>) -> Result<()> {
    written.map_err(|err| OutputError(err).into())
}

/// Where a command reads and writes.
pub struct Io<'a> {
    pub out: &'a mut dyn Write,
    pub input: &'a mut dyn BufRead,
    /// Standard input is a terminal: prompt (on stderr) before reading from it.
    pub interactive: bool,
}

impl Io<'_> {
    /// The first line of input without its line ending. Used for secrets, so that they need not
    /// appear on the command line (shell history, `ps`).
    /// On a terminal it is asked for with echo off.
    fn read_secret_line(&mut self, prompt: &str) -> Result<String> {
        if self.interactive {
            return super::tty::read_hidden(prompt).context("cannot read from the terminal");
        }
        self.read_line(prompt)
    }

    /// A line of input without its line ending, after `prompt` on stderr when interactive.
    fn read_line(&mut self, prompt: &str) -> Result<String> {
        if self.interactive {
            let mut stderr = io::stderr();
            let _ = write!(stderr, "{prompt}");
            let _ = stderr.flush();
        }
        let mut line = String::new();
        self.input
            .read_line(&mut line)
            .context("cannot read standard input")?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        Ok(line.to_owned())
    }
}

pub async fn execute(plan: Plan, io: &mut Io<'_>) -> Result<()> {
    match plan {
        Plan::Serve(args) => tessera_server::serve(*args).await,
        Plan::Completion(shell) => {
            use clap::CommandFactory;
            // Into memory first: the generator panics on a failed write (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut super::Cli::command(), "tessera", &mut script);
            emit(io.out.write_all(&script))
        }
        Plan::Agent(args) => crate::agent::run(*args).await,
        Plan::Login(plan) => login(plan, io).await,
        Plan::Logout {
            profile,
            config_path,
        } => logout(profile.as_deref(), &config_path, io),
        Plan::SavedProfile {
            verb,
            format,
            config_path,
        } => saved_profile(verb, format, &config_path, io),
        Plan::Token { connection, format } => {
            let token = connection
                .client()?
                .token_from_apikey(connection.apikey.expose())
                .await
                .with_context(|| token_failure(&connection))?;
            emit(match format {
                Format::Table => writeln!(io.out, "{}", access_token(&token)?),
                Format::Json => output::write_json(io.out, &token),
            })
        }
        Plan::Whoami { connection, format } => {
            let admin = admin_client(&connection).await?;
            let me = admin.whoami().await.context("cannot get your identity")?;
            emit(output::write_one(io.out, format, &me))
        }
        Plan::Iam {
            connection,
            format,
            resource,
        } => {
            let admin = admin_client(&connection).await?;
            iam(&admin, format, resource, io).await
        }
        Plan::Keys {
            connection,
            format,
            verb,
        } => {
            let admin = admin_client(&connection).await?;
            keys(&admin, format, verb, io).await
        }
        Plan::Audit {
            connection,
            format,
            verb,
        } => {
            let admin = admin_client(&connection).await?;
            audit(&admin, format, verb, io).await
        }
        Plan::Migrate(store) => migrate(&store, io).await,
        Plan::Export(args) => export(&args.store, args.output.as_deref(), io).await,
        Plan::Import(args) => {
            import(&args.store, args.input.as_deref(), args.master_key_file, io).await
        }
        Plan::Backup(args) => backup(&args.store, &args.output, io).await,
        Plan::Restore(args) => restore(&args.store, &args.input, args.master_key_file, io).await,
        Plan::Recover(args) => recover(&args.store, args.master_key_file, io).await,
    }
    .and_then(|()| emit(io.out.flush()))
}

fn token_failure(connection: &Connection) -> String {
    format!("cannot get an IAM token from {}", connection.endpoint)
}

/// A client authenticated with a fresh token for the connection's API key.
async fn admin_client(connection: &Connection) -> Result<Client> {
    let client = connection.client()?;
    let token = client
        .token_from_apikey(connection.apikey.expose())
        .await
        .with_context(|| token_failure(connection))?;
    Ok(client.with_token(access_token(&token)?))
}

/// The access token of an API-key exchange (the grant always issues one).
fn access_token(token: &IbmTokenResponse) -> Result<&str> {
    token
        .access_token
        .as_deref()
        .context("the server's token answer has no access_token")
}

async fn login(plan: LoginPlan, io: &mut Io<'_>) -> Result<()> {
    if let Some(saved) = &plan.replaces {
        let refused = || CliError::ProfileElsewhere {
            profile: plan.profile.clone(),
            saved: saved.clone(),
            endpoint: plan.endpoint.clone(),
        };
        if !plan.force {
            if !io.interactive {
                return Err(refused().into());
            }
            let answer = io.read_line(&format!(
                "Profile {:?} is logged in to {saved}. Replace it with {}? [y/N] ",
                plan.profile, plan.endpoint
            ))?;
            if !matches!(answer.trim(), "y" | "Y" | "yes") {
                return Err(refused().into());
            }
        }
    }
    let apikey = match &plan.apikey {
        Some(apikey) => apikey.clone(),
        None => {
            let line = io.read_secret_line("API key: ")?;
            Secret::new(line.trim())
        }
    };
    if apikey.expose().is_empty() {
        bail!("no API key given: type it when asked, pipe it to standard input, or set TESSERA_APIKEY");
    }
    let client = make_client(&plan.endpoint, plan.cacert.as_deref())?;
    // Prove the key works before saving anything.
    let token = client
        .token_from_apikey(apikey.expose())
        .await
        .with_context(|| format!("login to {} failed", plan.endpoint))?;
    let me = client
        .with_token(access_token(&token)?)
        .whoami()
        .await
        .with_context(|| {
            format!(
                "login to {} failed: cannot get your identity",
                plan.endpoint
            )
        })?;
    config::save_profile(
        &plan.config_path,
        &plan.profile,
        plan.profile_to_save(&apikey),
    )
    .context("cannot save the profile")?;
    emit(match plan.format {
        Format::Table => writeln!(
            io.out,
            "Logged in to {} as {} ({})",
            plan.endpoint, me.name, me.iam_id
        ),
        Format::Json => output::write_json(
            io.out,
            &serde_json::json!({"profile": plan.profile, "endpoint": plan.endpoint, "identity": me}),
        ),
    })
}

/// `tessera logout`: forgets the profile's key, keeps its endpoint and CA.
fn logout(profile: Option<&str>, config_path: &Path, io: &mut Io<'_>) -> Result<()> {
    let name = config::update(config_path, |config| {
        let name = config::profile_name(profile, config);
        let Some(saved) = config.profiles.get_mut(&name) else {
            return Err(CliError::NoSuchProfile(name).into());
        };
        saved.apikey = None;
        Ok(name)
    })?;
    emit(writeln!(
        io.out,
        "Logged out of profile {name:?}: its API key is deleted (`tessera login{}` to log in again)",
        if name == config::DEFAULT_PROFILE {
            String::new()
        } else {
            format!(" --profile {name}")
        }
    ))
}

/// `tessera profile …`: the saved profiles in the config file.
fn saved_profile(
    verb: SavedProfileVerb,
    format: Format,
    config_path: &Path,
    io: &mut Io<'_>,
) -> Result<()> {
    let row = |config: &config::Config, name: &str, saved: &config::Profile| SavedProfileRow {
        name: name.to_owned(),
        endpoint: saved.endpoint.clone(),
        cacert: saved.cacert.as_ref().map(|p| p.display().to_string()),
        logged_in: saved.apikey.is_some(),
        current: config::profile_name(None, config) == name,
    };
    match verb {
        SavedProfileVerb::List => {
            let config = config::load(config_path)?;
            let rows: Vec<SavedProfileRow> = config
                .profiles
                .iter()
                .map(|(name, saved)| row(&config, name, saved))
                .collect();
            emit(output::write_list(io.out, format, &rows))
        }
        SavedProfileVerb::Show { name } => {
            let config = config::load(config_path)?;
            let name = config::profile_name(name.as_deref(), &config);
            let Some(saved) = config.profiles.get(&name) else {
                return Err(CliError::NoSuchProfile(name).into());
            };
            emit(output::write_one(
                io.out,
                format,
                &row(&config, &name, saved),
            ))
        }
        SavedProfileVerb::Use { name } => {
            config::update(config_path, |config| {
                if !config.profiles.contains_key(&name) {
                    return Err(CliError::NoSuchProfile(name.clone()).into());
                }
                config.current_profile = Some(name.clone());
                Ok(())
            })?;
            emit(writeln!(io.out, "Using profile {name:?}"))
        }
        SavedProfileVerb::Delete { name } => {
            config::update(config_path, |config| {
                if config.profiles.remove(&name).is_none() {
                    return Err(CliError::NoSuchProfile(name.clone()).into());
                }
                if config.current_profile.as_deref() == Some(name.as_str()) {
                    config.current_profile = None;
                }
                Ok(())
            })?;
            emit(writeln!(io.out, "Deleted profile {name:?} and its API key"))
        }
    }
}

async fn keys(admin: &Client, format: Format, verb: KeysVerb, io: &mut Io<'_>) -> Result<()> {
    match verb {
        KeysVerb::List => {
            let keys = admin
                .list_signing_keys()
                .await
                .context("cannot list the signing keys")?;
            emit(output::write_list(io.out, format, &keys))
        }
        KeysVerb::Rotate { key_use, immediate } => {
            let keys = admin
                .rotate_signing_keys(&admin::SigningKeyRotate {
                    key_use: key_use.as_str().to_owned(),
                    immediate,
                })
                .await
                .with_context(|| format!("cannot rotate the {} signing keys", key_use.as_str()))?;
            emit(output::write_rotated(
                io.out,
                format,
                &keys,
                key_use.as_str(),
                immediate,
            ))
        }
    }
}

/// The `GET /v1/audit` query of a filter.
fn audit_query(filter: AuditFilterArgs, limit: u32, before: Option<i64>) -> admin::AuditQuery {
    admin::AuditQuery {
        account_id: filter.account_id,
        actor: filter.actor,
        action: filter.action,
        since: filter.since,
        until: filter.until,
        before,
        limit: Some(limit),
    }
}

async fn audit(admin: &Client, format: Format, verb: AuditVerb, io: &mut Io<'_>) -> Result<()> {
    match verb {
        AuditVerb::List {
            filter,
            limit,
            before,
        } => {
            let events = admin
                .list_audit(&audit_query(filter, limit, before))
                .await
                .context("cannot read the audit log")?;
            emit(output::write_list(io.out, format, &events))
        }
        AuditVerb::Export { filter, output } => {
            let mut file;
            let mut stdout;
            let out: &mut dyn Write = match &output {
                Some(path) => {
                    file = std::io::BufWriter::new(
                        std::fs::File::create(path)
                            .with_context(|| format!("cannot create {}", path.display()))?,
                    );
                    &mut file
                }
                None => {
                    stdout = &mut *io.out;
                    &mut stdout
                }
            };
            let mut before = None;
            let mut count = 0usize;
            loop {
                let page = admin
                    .list_audit(&audit_query(filter.clone(), 1000, before))
                    .await
                    .context("cannot read the audit log")?;
                let Some(last) = page.last() else { break };
                before = Some(last.id);
                for event in &page {
                    emit(serde_json::to_writer(&mut *out, event).map_err(std::io::Error::from))?;
                    emit(out.write_all(b"\n"))?;
                }
                count += page.len();
                if page.len() < 1000 {
                    break;
                }
            }
            emit(out.flush())?;
            if let Some(path) = &output {
                eprintln!("Wrote {count} audit events to {}", path.display());
            }
            Ok(())
        }
    }
}

/// The server configuration of a store command, resolved as `serve` resolves it. Logs go to
/// stderr, so that standard output holds only the command's output, and only warnings unless
/// `TESSERA_LOG_LEVEL` asks for more: the database's informational notices are noise here.
fn store_config(store: &StoreArgs, master_key_file: Option<PathBuf>) -> Result<ServerConfig> {
    let config = ServerConfig::resolve_store(store, master_key_file, SecretEnv::from_process())?;
    let mut logging = config.telemetry_settings();
    logging.otlp_endpoint = None;
    logging.level = std::env::var("TESSERA_LOG_LEVEL")
        .ok()
        .filter(|level| !level.is_empty())
        .unwrap_or_else(|| "warn".to_owned());
    // A one-shot command has no telemetry to flush.
    drop(tessera_server::telemetry::init(&logging)?);
    Ok(config)
}

async fn migrate(store: &StoreArgs, io: &mut Io<'_>) -> Result<()> {
    let config = store_config(store, None)?;
    let report = maintenance::migrate(&config).await?;
    emit(output::write_migrated(io.out, &report))
}

async fn export(store: &StoreArgs, path: Option<&Path>, io: &mut Io<'_>) -> Result<()> {
    let config = store_config(store, None)?;
    let dump = maintenance::export(&config, tessera_server::clock::Clock::system().now()).await?;
    let mut json = dump.to_json()?;
    json.push('\n');
    match path {
        None => emit(io.out.write_all(json.as_bytes())),
        Some(path) => {
            write_private(path, json.as_bytes())
                .with_context(|| format!("cannot write the export to {}", path.display()))?;
            emit(writeln!(
                io.out,
                "Exported {} objects and {} server secrets from {} to {}.\n\
                 The file holds sealed keys and credential hashes: keep it like a database backup, \
                 and import it with the same master key.",
                dump.entity_count(),
                dump.server_secrets.len(),
                config.store_description(),
                path.display()
            ))
        }
    }
}

/// Writes `contents` to `path` readable by its owner only: into a new file beside it, then
/// renamed over it, so a reader never sees half an export and an existing file's wider mode
/// does not carry over.
fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".to_owned());
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&temporary, path)) {
        Ok(()) => Ok(()),
        Err(err) => {
            let _ = std::fs::remove_file(&temporary);
            Err(err)
        }
    }
}

/// Writes a key file readable by its owner only. Without `replace`, the file must not exist (it
/// is created exclusively, so a file that appeared meanwhile is not overwritten either).
fn write_key_file(path: &Path, contents: &[u8], replace: bool) -> io::Result<()> {
    if replace {
        return write_private(path, contents);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

async fn import(
    store: &StoreArgs,
    path: Option<&Path>,
    master_key_file: Option<PathBuf>,
    io: &mut Io<'_>,
) -> Result<()> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the export {}", path.display()))?,
        None => {
            if io.interactive {
                bail!("no export given: pass --input FILE, or pipe the export to standard input");
            }
            let mut text = String::new();
            io.input
                .read_to_string(&mut text)
                .context("cannot read the export from standard input")?;
            text
        }
    };
    let dump = Dump::from_json(&text).context("cannot read the export")?;
    let config = store_config(store, master_key_file)?;
    let report =
        maintenance::import(&config, &dump, tessera_server::clock::Clock::system().now()).await?;
    emit(output::write_imported(
        io.out,
        &report,
        &config.store_description(),
    ))
}

async fn backup(store: &StoreArgs, output: &Path, io: &mut Io<'_>) -> Result<()> {
    let config = store_config(store, None)?;
    let report = maintenance::backup(&config, output).await?;
    emit(writeln!(
        io.out,
        "Backed up {} (schema version {}) to {} ({} bytes).\n\
         It holds sealed keys and credential hashes: keep it like the store, and keep the master \
         key apart from it (restoring needs that key).",
        report.store,
        report.schema_version.unwrap_or(0),
        report.output.display(),
        report.bytes
    ))
}

async fn restore(
    store: &StoreArgs,
    input: &Path,
    master_key_file: Option<PathBuf>,
    io: &mut Io<'_>,
) -> Result<()> {
    let config = store_config(store, master_key_file)?;
    let report =
        maintenance::restore(&config, input, tessera_server::clock::Clock::system().now()).await?;
    emit(writeln!(
        io.out,
        "Restored {} into {} (schema version {}).",
        input.display(),
        report.store,
        report.schema_version.unwrap_or(0)
    ))?;
    if let Some(previous) = &report.previous {
        emit(writeln!(
            io.out,
            "The store that was there is kept as {}.",
            previous.display()
        ))?;
    }
    emit(writeln!(
        io.out,
        "Start the server with the same master key and --issuer."
    ))
}

async fn recover(
    store: &StoreArgs,
    master_key_file: Option<PathBuf>,
    io: &mut Io<'_>,
) -> Result<()> {
    let config = store_config(store, master_key_file)?;
    let report =
        maintenance::recover(&config, tessera_server::clock::Clock::system().now()).await?;
    // Shown this once, on stdout only; the audit log records that it happened, not the key.
    emit(writeln!(
        io.out,
        "Created a new global administrator in {}:\n  account:        {}\n  administrator:  {}\n  API key id:     {}\n  admin API key:  {}\n\nThe API key is shown only this once. Log in with (it asks for the key):\n  tessera login --endpoint <the server's URL>",
        report.store,
        report.account_id,
        report.user_id,
        report.api_key_id,
        report.api_key.expose()
    ))
}

/// Fetches pages until `page.limit` objects are collected or the list ends. Without a limit,
/// that is the whole list: a person asking for a list wants all of it, not the server's default
/// first 100.
pub async fn collect_pages<T, F, Fut>(
    page: &PageArgs,
    filters: ListQuery,
    id_of: fn(&T) -> &str,
    fetch: F,
) -> Result<Vec<T>, client::Error>
where
    F: Fn(ListQuery) -> Fut,
    Fut: Future<Output = Result<Vec<T>, client::Error>>,
{
    let mut items: Vec<T> = Vec::new();
    let mut after = page.after.clone();
    loop {
        let wanted = match page.limit {
            Some(limit) => limit.saturating_sub(u32::try_from(items.len()).unwrap_or(u32::MAX)),
            None => MAX_PAGE,
        }
        .min(MAX_PAGE);
        if wanted == 0 {
            break;
        }
        let query = ListQuery {
            limit: Some(wanted),
            after: after.clone(),
            ..filters.clone()
        };
        let batch = fetch(query).await?;
        let full = batch.len() >= wanted as usize;
        let next = batch.last().map(|item| id_of(item).to_owned());
        items.extend(batch);
        // Stop at a short page, and also if the cursor does not move (a server bug must not
        // become an endless loop).
        if !full || next.is_none() || next == after {
            break;
        }
        after = next;
    }
    Ok(items)
}

/// The pages of collection `R` (see [`collect_pages`]).
async fn list_pages<R: Resource>(
    admin: &Client,
    page: &PageArgs,
    filters: ListQuery,
) -> Result<Vec<R::Item>, client::Error> {
    collect_pages(page, filters, R::id, |q| async move {
        admin.list::<R>(&q).await
    })
    .await
}

/// Where one IAM operation writes, and how.
struct Op<'a> {
    out: &'a mut dyn Write,
    format: Format,
}

impl Op<'_> {
    fn one<T: Tabular + Serialize>(&mut self, item: &T) -> Result<()> {
        emit(output::write_one(self.out, self.format, item))
    }
    fn list<T: Tabular + Serialize>(&mut self, items: &[T]) -> Result<()> {
        emit(output::write_list(self.out, self.format, items))
    }
    fn deleted(&mut self, kind: &str, id: &str) -> Result<()> {
        emit(output::write_deleted(self.out, self.format, kind, id))
    }
}

/// The verbs every collection has; [`generic`] runs them for any [`Resource`].
enum Generic<R: Resource> {
    Create(R::Create),
    /// Boxed: a query is large beside the other verbs.
    List {
        filters: Box<ListQuery>,
        page: PageArgs,
    },
    Get(String),
    Delete(String),
}

impl<R: Resource> Generic<R> {
    fn list(page: PageArgs, filters: ListQuery) -> Generic<R> {
        Generic::List {
            filters: Box::new(filters),
            page,
        }
    }
}

/// `tessera iam <resource> create|list|get|delete`, the same for every collection.
async fn generic<R>(admin: &Client, op: &mut Op<'_>, verb: Generic<R>) -> Result<()>
where
    R: Resource,
    R::Item: Tabular + Serialize,
{
    let kind = R::KIND;
    match verb {
        Generic::Create(body) => {
            let created = admin
                .create::<R>(&body)
                .await
                .with_context(|| format!("cannot create the {kind}"))?;
            emit(output::write_created(op.out, op.format, &created))
        }
        Generic::List { filters, page } => {
            let items = list_pages::<R>(admin, &page, *filters)
                .await
                .with_context(|| format!("cannot list {kind}s"))?;
            op.list(&items)
        }
        Generic::Get(id) => {
            let item = admin
                .get::<R>(&id)
                .await
                .with_context(|| format!("cannot get {kind} {id}"))?;
            op.one(&item)
        }
        Generic::Delete(id) => {
            admin
                .delete::<R>(&id)
                .await
                .with_context(|| format!("cannot delete {kind} {id}"))?;
            op.deleted(kind, &id)
        }
    }
}

/// A collection whose objects a `get` or `delete` may name by a field unique in an account
/// (a name, a user's e-mail address) instead of by id.
trait Named: Resource {
    const BY: LookUp;
    /// The flag that names an object (`--name`, `--email`).
    const FLAG: &'static str;
    fn key(item: &Self::Item) -> &str;
    /// The account the object is in (for the message listing several).
    fn account(item: &Self::Item) -> &str;
}

impl Named for Users {
    const BY: LookUp = LookUp::Email;
    const FLAG: &'static str = "--email";
    fn key(item: &admin::UserView) -> &str {
        &item.email
    }
    fn account(item: &admin::UserView) -> &str {
        &item.account_id
    }
}

impl Named for ServiceAccounts {
    const BY: LookUp = LookUp::Name;
    const FLAG: &'static str = "--name";
    fn key(item: &admin::ServiceAccountView) -> &str {
        &item.name
    }
    fn account(item: &admin::ServiceAccountView) -> &str {
        &item.account_id
    }
}

impl Named for TrustedProfiles {
    const BY: LookUp = LookUp::Name;
    const FLAG: &'static str = "--name";
    fn key(item: &admin::TrustedProfileView) -> &str {
        &item.name
    }
    fn account(item: &admin::TrustedProfileView) -> &str {
        &item.account_id
    }
}

/// `id` if given, else the id of the object `name` names (clap requires exactly one of them).
async fn id_or_named<R: Named>(
    admin: &Client,
    id: Option<String>,
    name: Option<String>,
    account_id: Option<String>,
) -> Result<String> {
    match (id, name) {
        (Some(id), _) => Ok(id),
        (None, Some(name)) => id_by::<R>(admin, &name, account_id).await,
        (None, None) => bail!("give a {} id or {}", R::KIND, R::FLAG),
    }
}

/// The id of the one object of collection `R` whose name (or e-mail address: unique in an
/// account, not across accounts) is `value`, looked up in the list (in `account_id` if given).
async fn id_by<R: Named>(
    admin: &Client,
    value: &str,
    account_id: Option<String>,
) -> Result<String> {
    let by = R::BY;
    let key = R::key;
    let id = |item: &R::Item| R::id(item).to_owned();
    let place = |item: &R::Item| format!("account {}", R::account(item));
    let kind = R::KIND;
    let all = list_pages::<R>(admin, &PageArgs::default(), filters(account_id))
        .await
        .with_context(|| format!("cannot list {kind}s to find {value:?}"))?;
    let matching: Vec<_> = all.into_iter().filter(|item| key(item) == value).collect();
    match matching.as_slice() {
        [] => Err(CliError::NoSuchName {
            kind,
            by,
            name: value.to_owned(),
        }
        .into()),
        [one] => Ok(id(one)),
        several => Err(CliError::AmbiguousName {
            kind,
            by,
            name: value.to_owned(),
            count: several.len(),
            ids: several
                .iter()
                .map(|item| format!("{} ({})", id(item), place(item)))
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into()),
    }
}

/// The caller's own account: the default `--account-id` of the create commands.
async fn own_account(admin: &Client, given: Option<String>) -> Result<String> {
    match given {
        Some(id) => Ok(id),
        None => Ok(admin
            .whoami()
            .await
            .context("cannot find your account (pass --account-id)")?
            .account_id),
    }
}

fn filters(account_id: Option<String>) -> ListQuery {
    ListQuery {
        account_id,
        ..ListQuery::default()
    }
}

/// The filters of a `list`: its query and its paging.
trait ListFilter {
    fn query(self) -> (ListQuery, PageArgs);
}

impl ListFilter for PageArgs {
    fn query(self) -> (ListQuery, PageArgs) {
        (ListQuery::default(), self)
    }
}

impl ListFilter for AccountFilter {
    fn query(self) -> (ListQuery, PageArgs) {
        (filters(self.account_id), self.page)
    }
}

impl ListFilter for ApiKeyFilter {
    fn query(self) -> (ListQuery, PageArgs) {
        let query = ListQuery {
            account_id: self.account_id,
            owner_iam_id: self.owner_iam_id,
            ..ListQuery::default()
        };
        (query, self.page)
    }
}

impl ListFilter for KeyFilter {
    fn query(self) -> (ListQuery, PageArgs) {
        let query = ListQuery {
            account_id: self.account_id,
            service_account_id: self.service_account_id,
            ..ListQuery::default()
        };
        (query, self.page)
    }
}

impl ListFilter for OAuthTokenFilter {
    fn query(self) -> (ListQuery, PageArgs) {
        let query = ListQuery {
            account_id: self.account_id,
            user_id: self.user_id,
            ..ListQuery::default()
        };
        (query, self.page)
    }
}

impl ListFilter for PolicyFilter {
    fn query(self) -> (ListQuery, PageArgs) {
        let query = ListQuery {
            account_id: self.account_id,
            source_iam_id: self.source,
            ..ListQuery::default()
        };
        (query, self.page)
    }
}

impl ListFilter for AccessBindingFilter {
    fn query(self) -> (ListQuery, PageArgs) {
        let query = ListQuery {
            subject_iam_id: self.subject_iam_id,
            resource: self.resource,
            ..ListQuery::default()
        };
        (query, self.page)
    }
}

/// The object a `get` or `delete` names: its id.
trait Target {
    async fn id(self, admin: &Client) -> Result<String>;
}

impl Target for IdArg {
    async fn id(self, _: &Client) -> Result<String> {
        Ok(self.id)
    }
}

// clap requires exactly one of the id and the name in each of these.
impl Target for UserRef {
    async fn id(self, admin: &Client) -> Result<String> {
        id_or_named::<Users>(admin, self.id, self.email, self.account_id).await
    }
}

impl Target for ServiceAccountRef {
    async fn id(self, admin: &Client) -> Result<String> {
        id_or_named::<ServiceAccounts>(admin, self.id, self.name, self.account_id).await
    }
}

impl Target for ProfileRef {
    async fn id(self, admin: &Client) -> Result<String> {
        id_or_named::<TrustedProfiles>(admin, self.id, self.name, self.account_id).await
    }
}

/// A verb [`shared`] leaves to its resource: `create` (whose body is the resource's own) or a
/// verb only that resource has.
enum Rest<C, X> {
    Create(C),
    More(X),
}

/// Runs `list`, `get` and `delete` of collection `R` (through [`generic`]); answers the verbs
/// it leaves to the caller.
async fn shared<R, C, L, I, X>(
    admin: &Client,
    op: &mut Op<'_>,
    verb: Verbs<C, L, I, X>,
) -> Result<Option<Rest<C, X>>>
where
    R: Resource,
    R::Item: Tabular + Serialize,
    C: clap::Args + VerbHelp,
    L: clap::Args + ListFilter,
    I: clap::Args + Target,
    X: clap::Subcommand,
{
    let verb: Generic<R> = match verb {
        Verbs::Create(create) => return Ok(Some(Rest::Create(create))),
        Verbs::More(more) => return Ok(Some(Rest::More(more))),
        Verbs::List(filter) => {
            let (query, page) = filter.query();
            Generic::list(page, query)
        }
        Verbs::Get(target) => Generic::Get(target.id(admin).await?),
        Verbs::Delete(target) => Generic::Delete(target.id(admin).await?),
    };
    generic(admin, op, verb).await.map(|()| None)
}

/// `POST` to collection `R`, the created object shown (its one-time secret too).
async fn create<R>(admin: &Client, op: &mut Op<'_>, body: R::Create) -> Result<()>
where
    R: Resource,
    R::Item: Tabular + Serialize,
{
    generic::<R>(admin, op, Generic::Create(body)).await
}

/// `tessera iam …`: `list`, `get` and `delete` of every resource are run by [`shared`];
/// each resource's `create` body, and the few verbs particular to one resource (account
/// update, TOTP, key files, issuer update, profile edits), are made where they are matched.
async fn iam(admin: &Client, format: Format, resource: IamResource, io: &mut Io<'_>) -> Result<()> {
    // Read the password before the calls that use it, so that a missing one fails before
    // anything is created.
    let password = match &resource {
        IamResource::User {
            verb:
                Verbs::Create(UserCreate {
                    password_stdin: true,
                    ..
                }),
        } => {
            let password = io.read_secret_line("Password: ")?;
            if password.is_empty() {
                bail!("--password-stdin: standard input holds no password");
            }
            Some(password)
        }
        _ => None,
    };
    let mut op = Op {
        out: &mut *io.out,
        format,
    };
    let op = &mut op;

    match resource {
        IamResource::Enterprise { verb } => {
            let Some(Rest::Create(c)) = shared::<Enterprises, _, _, _, _>(admin, op, verb).await?
            else {
                return Ok(());
            };
            create::<Enterprises>(admin, op, admin::EnterpriseCreate { name: c.name }).await
        }

        IamResource::Account { verb } => {
            match shared::<Accounts, _, _, _, _>(admin, op, verb).await? {
                None => Ok(()),
                Some(Rest::Create(c)) => {
                    let body = admin::AccountCreate {
                        name: c.name,
                        enterprise_id: c.enterprise_id,
                    };
                    create::<Accounts>(admin, op, body).await
                }
                Some(Rest::More(AccountMore::Update { id, mfa })) => {
                    let updated = admin
                        .update_account(
                            &id,
                            &admin::AccountUpdate {
                                mfa: Some(mfa.as_api().to_owned()),
                            },
                        )
                        .await
                        .with_context(|| format!("cannot update {id}"))?;
                    op.one(&updated)
                }
            }
        }

        IamResource::User { verb } => match shared::<Users, _, _, _, _>(admin, op, verb).await? {
            None => Ok(()),
            Some(Rest::Create(c)) => {
                let body = admin::UserCreate {
                    account_id: Some(own_account(admin, c.account_id).await?),
                    name: c.name,
                    email: c.email,
                    password,
                    federated: c.federated,
                };
                create::<Users>(admin, op, body).await
            }
            Some(Rest::More(UserMore::Totp { verb })) => totp(admin, verb, op).await,
        },

        IamResource::ServiceAccount { verb } => {
            let Some(Rest::Create(c)) =
                shared::<ServiceAccounts, _, _, _, _>(admin, op, verb).await?
            else {
                return Ok(());
            };
            let body = admin::ServiceAccountCreate {
                account_id: Some(own_account(admin, c.account_id).await?),
                name: c.name,
                description: c.description,
            };
            create::<ServiceAccounts>(admin, op, body).await
        }

        IamResource::ApiKey { verb } => {
            let Some(Rest::Create(c)) = shared::<ApiKeys, _, _, _, _>(admin, op, verb).await?
            else {
                return Ok(());
            };
            let Some(owner_iam_id) = c.owner.owner_iam_id() else {
                bail!("give the key's owner: --service-account-id, --user-id or --owner-iam-id");
            };
            let body = admin::ApiKeyCreate {
                owner_iam_id,
                name: c.name,
                description: c.description,
            };
            create::<ApiKeys>(admin, op, body).await
        }

        IamResource::Key { verb } => {
            let Some(Rest::Create(c)) =
                shared::<AuthorizedKeys, _, _, _, _>(admin, op, verb).await?
            else {
                return Ok(());
            };
            let body = admin::AuthorizedKeyCreate {
                service_account_id: c.service_account_id,
                key_algorithm: Some(c.algorithm.as_str().to_owned()),
                description: c.description,
            };
            create_key_file(admin, body, &c.output, c.force, op).await
        }

        IamResource::Issuer { verb } => {
            match shared::<TrustedIssuers, _, _, _, _>(admin, op, verb).await? {
                None => Ok(()),
                Some(Rest::Create(c)) => {
                    let body = admin::TrustedIssuerCreate {
                        account_id: c.account_id,
                        name: c.name,
                        issuer_url: c.issuer_url,
                        jwks: c.jwks_file.as_deref().map(read_local_jwks).transpose()?,
                        jwks_file: c.server_jwks_path,
                        audiences: (!c.audiences.is_empty()).then_some(c.audiences),
                        cr_type: c.cr_type,
                        crn: c.crn,
                        claim_mapping: parse_claim_map(&c.map)?,
                    };
                    create::<TrustedIssuers>(admin, op, body).await
                }
                Some(Rest::More(IssuerMore::Update {
                    id,
                    jwks_file,
                    server_jwks_path,
                    audiences,
                    map,
                })) => {
                    let body = admin::TrustedIssuerUpdate {
                        jwks: jwks_file.as_deref().map(read_local_jwks).transpose()?,
                        jwks_file: server_jwks_path,
                        audiences: (!audiences.is_empty()).then_some(audiences),
                        claim_mapping: parse_claim_map(&map)?,
                    };
                    let item = admin
                        .update_trusted_issuer(&id, &body)
                        .await
                        .with_context(|| format!("updating trusted issuer {id} failed"))?;
                    op.one(&item)
                }
            }
        }

        IamResource::OauthToken { verb } => {
            let Some(Rest::Create(c)) = shared::<OAuthTokens, _, _, _, _>(admin, op, verb).await?
            else {
                return Ok(());
            };
            let body = admin::OAuthTokenCreate {
                user_id: c.user_id,
                description: c.description,
            };
            create::<OAuthTokens>(admin, op, body).await
        }

        IamResource::Policy { verb } => {
            let Some(Rest::Create(c)) =
                shared::<AuthorizationPolicies, _, _, _, _>(admin, op, verb).await?
            else {
                return Ok(());
            };
            let body = admin::AuthorizationPolicyCreate {
                account_id: c.account_id,
                source_iam_id: c.source,
                target_crn: c.target,
                description: c.description,
            };
            create::<AuthorizationPolicies>(admin, op, body).await
        }

        IamResource::Client { verb } => {
            let Some(Rest::Create(c)) = shared::<Clients, _, _, _, _>(admin, op, verb).await?
            else {
                return Ok(());
            };
            let body = admin::ClientCreate {
                id: c.id,
                name: c.name,
                account_id: if c.no_account {
                    None
                } else {
                    Some(own_account(admin, c.account_id).await?)
                },
            };
            create::<Clients>(admin, op, body).await
        }

        IamResource::AccessBinding { verb } => {
            let Some(Rest::Create(c)) =
                shared::<AccessBindings, _, _, _, _>(admin, op, verb).await?
            else {
                return Ok(());
            };
            let body = admin::AccessBindingCreate {
                subject_iam_id: c.subject_iam_id,
                role: c.role.as_str().to_owned(),
                resource: c.resource,
            };
            create::<AccessBindings>(admin, op, body).await
        }

        IamResource::Profile { verb } => profile(admin, verb, op).await,
    }
}

/// `tessera iam user totp …`.
async fn totp(admin: &Client, verb: TotpVerb, op: &mut Op<'_>) -> Result<()> {
    match verb {
        TotpVerb::Enroll {
            user_id,
            replace,
            code,
        } => {
            let enrolled = admin
                .enroll_totp(&user_id, replace, code.as_deref())
                .await
                .with_context(|| format!("cannot enrol a TOTP factor for {user_id}"))?;
            emit(output::write_totp_enrollment(op.out, op.format, &enrolled))
        }
        TotpVerb::Confirm { user_id, code } => {
            let status = admin
                .confirm_totp(&user_id, &code)
                .await
                .with_context(|| format!("cannot confirm the TOTP factor of {user_id}"))?;
            op.one(&status)
        }
        TotpVerb::Delete { user_id, code } => {
            admin
                .delete_totp(&user_id, code.as_deref())
                .await
                .with_context(|| format!("cannot delete user {user_id}"))?;
            op.deleted("user", &user_id)
        }
    }
}

/// `tessera iam key create`: the key pair, its key file written to `output` (or stdout, `-`).
async fn create_key_file(
    admin: &Client,
    body: admin::AuthorizedKeyCreate,
    output: &Path,
    force: bool,
    op: &mut Op<'_>,
) -> Result<()> {
    let to_stdout = output.as_os_str() == "-";
    // Refuse before anything is created: the private key exists only in the answer.
    if !to_stdout && !force && std::fs::symlink_metadata(output).is_ok() {
        bail!(
            "{} exists; choose another --output or pass --force to replace it",
            output.display()
        );
    }
    let mut created = admin
        .create::<AuthorizedKeys>(&body)
        .await
        .context("cannot create the authorized key")?;
    let Some(key_file) = created.key_file.take() else {
        bail!("the server's answer has no key file");
    };
    let mut file = serde_json::to_string_pretty(&key_file).context("cannot encode the key file")?;
    file.push('\n');
    if to_stdout {
        return emit(op.out.write_all(file.as_bytes()));
    }
    if let Err(err) = write_key_file(output, file.as_bytes(), force) {
        // A key whose private half is lost is useless: take it back.
        let cleanup = match admin.delete::<AuthorizedKeys>(&created.id).await {
            Ok(()) => "the key was deleted again".to_owned(),
            Err(e) => format!(
                "deleting the key failed too ({e}); delete {} yourself",
                created.id
            ),
        };
        return Err(anyhow::Error::new(err).context(format!(
            "cannot write the key file {}; {cleanup}",
            output.display()
        )));
    }
    emit(output::write_key_file_written(
        op.out, op.format, &created, output,
    ))
}

/// A change to a profile's replaceable parts, applied between the read and the `PUT`.
type ProfileEdit = Box<dyn FnOnce(&mut admin::TrustedProfileReplace) -> Result<()>>;

/// Removes from a profile's `items` those `matches` picks; an error naming `what` if there
/// were none.
fn remove_from_profile<T>(
    items: &mut Vec<T>,
    matches: impl Fn(&T) -> bool,
    what: &str,
) -> Result<()> {
    let before = items.len();
    items.retain(|item| !matches(item));
    if items.len() == before {
        bail!("the profile has no {what}");
    }
    Ok(())
}

/// `tessera iam profile …`. The add-/remove- verbs read, modify and replace the profile.
async fn profile(admin: &Client, verb: ProfileVerb, op: &mut Op<'_>) -> Result<()> {
    let update_failed = |id: &str| format!("cannot update trusted profile {id}");
    let (id, change): (String, ProfileEdit) = match verb {
        ProfileVerb::Create {
            account_id,
            name,
            description,
        } => {
            let body = admin::TrustedProfileCreate {
                account_id,
                name,
                description,
                identities: Vec::new(),
                links: Vec::new(),
                rules: Vec::new(),
            };
            return create::<TrustedProfiles>(admin, op, body).await;
        }
        ProfileVerb::List(filter) => {
            let (query, page) = filter.query();
            return generic::<TrustedProfiles>(admin, op, Generic::list(page, query)).await;
        }
        ProfileVerb::Get(target) => {
            let id = target.id(admin).await?;
            return generic::<TrustedProfiles>(admin, op, Generic::Get(id)).await;
        }
        ProfileVerb::Delete(target) => {
            let id = target.id(admin).await?;
            return generic::<TrustedProfiles>(admin, op, Generic::Delete(id)).await;
        }
        ProfileVerb::Update {
            id,
            name,
            description,
        } => (
            id,
            Box::new(move |p| {
                if let Some(name) = name {
                    p.name = name;
                }
                if let Some(description) = description {
                    p.description = Some(description);
                }
                Ok(())
            }),
        ),
        ProfileVerb::AddIdentity {
            id,
            kind,
            identifier,
            accounts,
        } => (
            id,
            Box::new(move |p| {
                p.identities.push(admin::TrustedIdentity {
                    kind: kind.as_str().to_owned(),
                    identifier,
                    accounts,
                });
                Ok(())
            }),
        ),
        ProfileVerb::RemoveIdentity { id, identifier } => (
            id,
            Box::new(move |p| {
                let what = format!("trusted identity {identifier}");
                remove_from_profile(&mut p.identities, |i| i.identifier == identifier, &what)
            }),
        ),
        ProfileVerb::AddLink {
            id,
            cr_type,
            crn,
            namespace,
            name,
            component_type,
            component_name,
        } => (
            id,
            Box::new(move |p| {
                p.links.push(admin::ComputeResourceLink {
                    id: None,
                    cr_type,
                    crn,
                    namespace,
                    name,
                    component_type,
                    component_name,
                });
                Ok(())
            }),
        ),
        ProfileVerb::RemoveLink { id, link_id } => (
            id,
            Box::new(move |p| {
                let what = format!("link {link_id}");
                remove_from_profile(&mut p.links, |l| l.id.as_ref() == Some(&link_id), &what)
            }),
        ),
        ProfileVerb::AddRule {
            id,
            cr_type,
            conditions,
            rule_name,
        } => (
            id,
            Box::new(move |p| {
                let conditions = conditions
                    .iter()
                    .map(|c| {
                        let condition =
                            super::args::parse_condition(c).map_err(anyhow::Error::msg)?;
                        serde_json::from_value::<admin::ClaimCondition>(condition)
                            .with_context(|| format!("condition {c:?}"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                p.rules.push(admin::ClaimRule {
                    id: None,
                    name: rule_name,
                    rule_type: "Profile-CR".to_owned(),
                    cr_type,
                    conditions,
                });
                Ok(())
            }),
        ),
        ProfileVerb::RemoveRule { id, rule_id } => (
            id,
            Box::new(move |p| {
                let what = format!("claim rule {rule_id}");
                remove_from_profile(&mut p.rules, |r| r.id.as_ref() == Some(&rule_id), &what)
            }),
        ),
    };
    let current = admin
        .get::<TrustedProfiles>(&id)
        .await
        .with_context(|| format!("cannot get trusted profile {id}"))?;
    let mut body = admin::TrustedProfileReplace {
        name: current.name,
        description: Some(current.description),
        identities: current.identities,
        links: current.links,
        rules: current.rules,
    };
    change(&mut body).with_context(|| update_failed(&id))?;
    let updated = admin
        .replace_trusted_profile(&id, &body)
        .await
        .with_context(|| update_failed(&id))?;
    op.one(&updated)
}

/// Reads a local JWKS file to send inline.
fn read_local_jwks(path: &std::path::Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the JWKS file {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("the JWKS file {} is not JSON", path.display()))
}

/// `--map CLAIM=PATH` flags as a claim mapping; `None` when there are none.
fn parse_claim_map(pairs: &[String]) -> Result<Option<std::collections::BTreeMap<String, String>>> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut map = std::collections::BTreeMap::new();
    for pair in pairs {
        let Some((claim, path)) = pair.split_once('=') else {
            bail!("--map takes CLAIM=PATH (e.g. namespace=kubernetes.io.namespace), not {pair:?}");
        };
        map.insert(claim.trim().to_owned(), path.trim().to_owned());
    }
    Ok(Some(map))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A fake list of ids `0000`..`n`, served page by page, recording the queries.
    struct FakeList {
        ids: Vec<String>,
        queries: Mutex<Vec<ListQuery>>,
    }

    impl FakeList {
        fn new(n: usize) -> FakeList {
            FakeList {
                ids: (0..n).map(|i| format!("{i:04}")).collect(),
                queries: Mutex::new(Vec::new()),
            }
        }

        async fn fetch(&self, query: ListQuery) -> Result<Vec<String>, client::Error> {
            self.queries.lock().unwrap().push(query.clone());
            let start = match &query.after {
                Some(after) => self
                    .ids
                    .iter()
                    .position(|id| id > after)
                    .unwrap_or(self.ids.len()),
                None => 0,
            };
            let limit = query.limit.unwrap_or(100) as usize;
            Ok(self.ids.iter().skip(start).take(limit).cloned().collect())
        }

        async fn collect(&self, page: PageArgs) -> Vec<String> {
            let filters = ListQuery {
                account_id: Some("acct".into()),
                ..ListQuery::default()
            };
            collect_pages(&page, filters, |id: &String| id.as_str(), |q| self.fetch(q))
                .await
                .unwrap()
        }
    }

    #[tokio::test]
    async fn without_a_limit_every_page_is_fetched() {
        let list = FakeList::new(2500);
        let items = list.collect(PageArgs::default()).await;
        assert_eq!(items.len(), 2500);
        let queries = list.queries.lock().unwrap();
        assert_eq!(queries.len(), 3);
        assert!(queries
            .iter()
            .all(|q| q.account_id.as_deref() == Some("acct") && q.limit == Some(1000)));
        assert_eq!(queries[1].after.as_deref(), Some("0999"));
    }

    #[tokio::test]
    async fn an_exact_multiple_of_the_page_size_ends_with_an_empty_page() {
        let list = FakeList::new(1000);
        assert_eq!(list.collect(PageArgs::default()).await.len(), 1000);
        assert_eq!(list.queries.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn limits_and_after_are_honoured() {
        let list = FakeList::new(50);
        let items = list
            .collect(PageArgs {
                limit: Some(5),
                after: Some("0010".into()),
            })
            .await;
        assert_eq!(items, ["0011", "0012", "0013", "0014", "0015"]);
        assert_eq!(list.queries.lock().unwrap().len(), 1);

        let list = FakeList::new(2500);
        assert_eq!(
            list.collect(PageArgs {
                limit: Some(1500),
                after: None
            })
            .await
            .len(),
            1500
        );
        let queries = list.queries.lock().unwrap();
        assert_eq!(
            queries.iter().map(|q| q.limit).collect::<Vec<_>>(),
            [Some(1000), Some(500)]
        );
    }

    #[tokio::test]
    async fn a_cursor_that_does_not_move_stops_the_loop() {
        let stuck = |_q: ListQuery| async { Ok::<_, client::Error>(vec!["same".to_owned(); 1000]) };
        let page = PageArgs {
            limit: None,
            after: Some("same".into()),
        };
        let items = collect_pages(
            &page,
            ListQuery::default(),
            |id: &String| id.as_str(),
            stuck,
        )
        .await
        .unwrap();
        assert_eq!(items.len(), 1000);
    }

    #[test]
    fn secret_lines_lose_only_their_line_ending() {
        let mut out = Vec::new();
        let mut input = io::Cursor::new(b" pass word \r\nsecond\n".to_vec());
        let mut io = Io {
            out: &mut out,
            input: &mut input,
            interactive: false,
        };
        assert_eq!(io.read_secret_line("x").unwrap(), " pass word ");
        assert_eq!(io.read_secret_line("x").unwrap(), "second");
        assert_eq!(io.read_secret_line("x").unwrap(), "");
        assert!(out.is_empty(), "prompts never go to stdout");
    }

    #[test]
    fn exports_are_written_private_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.json");
        std::fs::write(&path, "old").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        write_private(&path, b"{}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file stays behind");
        assert!(write_private(&dir.path().join("missing").join("x.json"), b"{}").is_err());
    }

    #[tokio::test]
    async fn import_from_a_terminal_asks_for_the_file() {
        let mut out = Vec::new();
        let mut input = io::Cursor::new(Vec::new());
        let mut io = Io {
            out: &mut out,
            input: &mut input,
            interactive: true,
        };
        let err = import(&StoreArgs::default(), None, None, &mut io)
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("--input"), "{err:#}");
        let mut io = Io {
            out: &mut out,
            input: &mut input,
            interactive: false,
        };
        let err = import(&StoreArgs::default(), None, None, &mut io)
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("not a Tessera export"),
            "{err:#}"
        );
    }

    #[test]
    fn only_stdout_broken_pipes_count_as_success() {
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        let on_stdout = anyhow::Error::from(OutputError(pipe())).context("listing");
        assert!(OutputError::is_broken_pipe(&on_stdout));
        let on_network = anyhow::Error::from(pipe()).context("request failed");
        assert!(!OutputError::is_broken_pipe(&on_network));
    }
}
