//! The second stage after parsing: turning what was typed, the environment and the saved
//! profiles into a [`Plan`] — which server, which credentials, which operation.
//!
//! The environment comes in as an [`Env`] value (read once, in [`Env::from_process`]) and the
//! config file through a loader closure, so the precedence rules (flag > environment variable >
//! saved profile) are tested without `set_var` and without touching the real config file. The
//! file is only read when a value is actually missing, so a broken config file does not get in
//! the way of a fully specified command.

use super::args::{
    AdminVerb, AuditVerb, BackupArgs, Cli, Command, ConnectionArgs, ExportArgs, Format,
    IamResource, ImportArgs, KeysVerb, RecoverArgs, RestoreArgs, SavedProfileVerb, Secret,
};
use super::config::{self, Config, Profile};
use super::failure::CliError;
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use tessera_client::Client;

/// The environment variables the CLI reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// `TESSERA_ENDPOINT`
    pub endpoint: Option<String>,
    /// `TESSERA_APIKEY`
    pub apikey: Option<Secret>,
    /// `TESSERA_CACERT`
    pub cacert: Option<PathBuf>,
    /// `TESSERA_CONFIG_DIR`
    pub config_dir: Option<OsString>,
    /// `COLUMNS`: the terminal width tables fit in (when stdout is a terminal).
    pub columns: Option<String>,
}

impl Env {
    /// Reads the variables. Empty values count as unset, as they do for most tools (so that
    /// `TESSERA_APIKEY= tessera token` falls back to the profile).
    pub fn from_process() -> Env {
        let text = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let os = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        Env {
            endpoint: text("TESSERA_ENDPOINT"),
            apikey: text("TESSERA_APIKEY").map(Secret::from),
            cacert: os("TESSERA_CACERT").map(PathBuf::from),
            config_dir: os("TESSERA_CONFIG_DIR"),
            columns: text("COLUMNS"),
        }
    }

    pub fn config_path(&self) -> Result<PathBuf> {
        config::config_path(self.config_dir.clone())
    }
}

/// A server and the credentials to use with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub endpoint: String,
    pub apikey: Secret,
    pub cacert: Option<PathBuf>,
}

impl Connection {
    /// An unauthenticated client for the endpoint.
    pub fn client(&self) -> Result<Client> {
        make_client(&self.endpoint, self.cacert.as_deref())
    }
}

/// The CLI's client of `endpoint`: its user agent, the client's default timeouts, and the CA
/// in `cacert` trusted besides the public web PKI.
pub fn make_client(endpoint: &str, cacert: Option<&Path>) -> Result<Client> {
    let builder =
        Client::builder(endpoint).user_agent(concat!("tessera-cli/", env!("CARGO_PKG_VERSION")));
    let client = match cacert {
        None => builder.build()?,
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the CA certificate {}", path.display()))?;
            match builder.ca_pem(&pem).build() {
                Ok(client) => client,
                Err(tessera_client::Error::NotPem) => {
                    return Err(CliError::NotPem {
                        path: path.display().to_string(),
                    }
                    .into())
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("cannot use the CA certificate {}", path.display())))
                }
            }
        }
    };
    Ok(client)
}

/// Two spellings of one endpoint (`https://x` and `https://x/`) are the same endpoint.
fn same_endpoint(a: &str, b: &str) -> bool {
    a.trim().trim_end_matches('/') == b.trim().trim_end_matches('/')
}

/// Resolves the connection of every command except `login` and `serve`.
///
/// Each value is taken from the flag, else the environment variable, else the saved profile.
/// One exception guards the saved key: it is only ever sent to the endpoint it was saved for, so
/// an overridden endpoint needs a key from a flag or the environment too.
pub fn resolve_connection(
    flags: &ConnectionArgs,
    env: &Env,
    load_config: impl FnOnce() -> Result<Config>,
) -> Result<Connection> {
    let endpoint = flags.endpoint.clone().or_else(|| env.endpoint.clone());
    let apikey = flags.apikey.clone().or_else(|| env.apikey.clone());
    let cacert = flags.cacert.clone().or_else(|| env.cacert.clone());

    if let (Some(endpoint), Some(apikey)) = (&endpoint, &apikey) {
        return Ok(Connection {
            endpoint: endpoint.clone(),
            apikey: apikey.clone(),
            cacert,
        });
    }

    let config = load_config()?;
    let name = &config::profile_name(flags.profile.as_deref(), &config);
    let Some(profile) = config.profiles.get(name) else {
        return Err(match (&endpoint, &apikey) {
            (Some(_), None) => {
                anyhow::anyhow!("no API key: run `tessera login`, or set TESSERA_APIKEY")
            }
            (None, Some(_)) => anyhow::anyhow!(
                "no endpoint: pass --endpoint, set TESSERA_ENDPOINT, or run `tessera login`"
            ),
            _ => anyhow::anyhow!(
                "not logged in (no saved profile {name:?}): run `tessera login --endpoint URL{}` \
                 or set TESSERA_ENDPOINT and TESSERA_APIKEY",
                profile_flag(name)
            ),
        });
    };

    let endpoint = endpoint.unwrap_or_else(|| profile.endpoint.clone());
    let uses_profile_endpoint = same_endpoint(&endpoint, &profile.endpoint);
    let apikey = match apikey {
        Some(apikey) => apikey,
        None if uses_profile_endpoint => match &profile.apikey {
            Some(saved) => Secret::new(saved.clone()),
            None => bail!(
                "profile {name:?} is logged out: run `tessera login{}`, or set TESSERA_APIKEY",
                profile_flag(name)
            ),
        },
        None => bail!(
            "the API key saved in profile {name:?} is for {}, not {endpoint}; set TESSERA_APIKEY \
             for this endpoint, or log in to it as another profile (`tessera login --profile NAME`)",
            profile.endpoint
        ),
    };
    let cacert = cacert.or_else(|| profile.cacert.clone().filter(|_| uses_profile_endpoint));
    Ok(Connection {
        endpoint,
        apikey,
        cacert,
    })
}

fn profile_flag(name: &str) -> String {
    if name == config::DEFAULT_PROFILE {
        String::new()
    } else {
        format!(" --profile {name}")
    }
}

/// What `tessera login` will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPlan {
    pub endpoint: String,
    /// `None`: read the key from standard input.
    pub apikey: Option<Secret>,
    pub cacert: Option<PathBuf>,
    pub profile: String,
    pub config_path: PathBuf,
    /// The endpoint the profile holds a key for, when that is another one than `endpoint`:
    /// logging in replaces that key, so it needs `--force` or a yes.
    pub replaces: Option<String>,
    pub force: bool,
    pub format: Format,
}

impl LoginPlan {
    pub fn profile_to_save(&self, apikey: &Secret) -> Profile {
        Profile {
            endpoint: self.endpoint.clone(),
            apikey: Some(apikey.expose().to_owned()),
            // Saved as an absolute path: a relative one would depend on where later commands run.
            cacert: self
                .cacert
                .as_ref()
                .map(|path| std::path::absolute(path).unwrap_or_else(|_| path.clone())),
        }
    }
}

/// Resolves `tessera login`: the endpoint from the flag, the environment or (to log in again)
/// the profile being replaced; the key from the flag or the environment, else standard input.
pub fn resolve_login(
    flags: &ConnectionArgs,
    force: bool,
    env: &Env,
    config_path: PathBuf,
    load_config: impl FnOnce(&Path) -> Result<Config>,
) -> Result<LoginPlan> {
    let config = load_config(&config_path)?;
    let profile = config::profile_name(flags.profile.as_deref(), &config);
    let saved = config.profiles.get(&profile);
    let mut endpoint = flags.endpoint.clone().or_else(|| env.endpoint.clone());
    let mut cacert = flags.cacert.clone().or_else(|| env.cacert.clone());
    if endpoint.is_none() {
        if let Some(saved) = saved {
            endpoint = Some(saved.endpoint.clone());
            cacert = cacert.or_else(|| saved.cacert.clone());
        }
    }
    let Some(endpoint) = endpoint else {
        bail!("which server? pass --endpoint URL (or set TESSERA_ENDPOINT)");
    };
    // Fail before asking for a key when the endpoint is unusable.
    Client::new(&endpoint)?;
    let replaces = saved
        .filter(|saved| saved.apikey.is_some() && !same_endpoint(&saved.endpoint, &endpoint))
        .map(|saved| saved.endpoint.clone());
    Ok(LoginPlan {
        endpoint,
        apikey: flags.apikey.clone().or_else(|| env.apikey.clone()),
        cacert,
        profile,
        config_path,
        replaces,
        force,
        format: Format::Table,
    })
}

/// A fully resolved command, ready to run.
pub enum Plan {
    Serve(Box<tessera_server::ServeArgs>),
    /// A completion script for this shell, on standard output.
    Completion(clap_complete::Shell),
    Agent(Box<crate::agent::AgentArgs>),
    Login(LoginPlan),
    Logout {
        /// `None`: the current profile.
        profile: Option<String>,
        config_path: PathBuf,
    },
    /// `tessera profile …`: the config file only, no server.
    SavedProfile {
        verb: SavedProfileVerb,
        format: Format,
        /// `--profile`/`TESSERA_PROFILE` is not a flag of these commands; only the file counts.
        config_path: PathBuf,
    },
    Token {
        connection: Connection,
        format: Format,
    },
    Whoami {
        connection: Connection,
        format: Format,
    },
    Iam {
        connection: Connection,
        format: Format,
        resource: IamResource,
    },
    Keys {
        connection: Connection,
        format: Format,
        verb: KeysVerb,
    },
    Audit {
        connection: Connection,
        format: Format,
        verb: AuditVerb,
    },
    /// The store commands talk to the store, not to a server: no connection to resolve.
    Migrate(tessera_server::StoreArgs),
    Export(ExportArgs),
    Import(ImportArgs),
    Backup(BackupArgs),
    Restore(RestoreArgs),
    Recover(RecoverArgs),
}

/// A store command's plan as `Name { file: …, .. }`: its store arguments are left out, as a
/// database URL may hold a password.
fn debug_store_command(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    file_field: &str,
    file: &dyn fmt::Debug,
) -> fmt::Result {
    f.debug_struct(name)
        .field(file_field, file)
        .finish_non_exhaustive()
}

impl fmt::Debug for Plan {
    // By hand: the server's argument type is not ours and need not implement `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Plan::Serve(_) => f.write_str("Serve(..)"),
            Plan::Completion(shell) => f.debug_tuple("Completion").field(shell).finish(),
            Plan::Agent(_) => f.write_str("Agent(..)"),
            Plan::Login(plan) => f.debug_tuple("Login").field(plan).finish(),
            Plan::Logout { profile, .. } => f
                .debug_struct("Logout")
                .field("profile", profile)
                .finish_non_exhaustive(),
            Plan::SavedProfile { verb, format, .. } => f
                .debug_struct("SavedProfile")
                .field("verb", verb)
                .field("format", format)
                .finish_non_exhaustive(),
            Plan::Token { connection, format } => f
                .debug_struct("Token")
                .field("connection", connection)
                .field("format", format)
                .finish(),
            Plan::Whoami { connection, format } => f
                .debug_struct("Whoami")
                .field("connection", connection)
                .field("format", format)
                .finish(),
            Plan::Iam {
                connection,
                format,
                resource,
            } => f
                .debug_struct("Iam")
                .field("connection", connection)
                .field("format", format)
                .field("resource", resource)
                .finish(),
            Plan::Keys {
                connection,
                format,
                verb,
            } => f
                .debug_struct("Keys")
                .field("connection", connection)
                .field("format", format)
                .field("verb", verb)
                .finish(),
            Plan::Audit {
                connection,
                format,
                verb,
            } => f
                .debug_struct("Audit")
                .field("connection", connection)
                .field("format", format)
                .field("verb", verb)
                .finish(),
            // Database URLs may hold a password: never shown.
            Plan::Migrate(_) => f.write_str("Migrate(..)"),
            Plan::Export(args) => debug_store_command(f, "Export", "output", &args.output),
            Plan::Import(args) => debug_store_command(f, "Import", "input", &args.input),
            Plan::Backup(args) => debug_store_command(f, "Backup", "output", &args.output),
            Plan::Restore(args) => debug_store_command(f, "Restore", "input", &args.input),
            Plan::Recover(_) => f.write_str("Recover(..)"),
        }
    }
}

impl Plan {
    pub fn resolve(cli: Cli, env: &Env) -> Result<Plan> {
        let load = || -> Result<Config> { config::load(&env.config_path()?) };
        Ok(match cli.command {
            Command::Serve(args) => Plan::Serve(args),
            Command::Completion(args) => Plan::Completion(args.shell),
            Command::Agent(args) => Plan::Agent(args),
            Command::Login(args) => Plan::Login(LoginPlan {
                format: args.output.format,
                ..resolve_login(
                    &args.connection,
                    args.force,
                    env,
                    env.config_path()?,
                    config::load,
                )?
            }),
            Command::Logout(args) => Plan::Logout {
                profile: args.profile,
                config_path: env.config_path()?,
            },
            Command::Profile(args) => Plan::SavedProfile {
                verb: args.verb,
                format: args.output.format,
                config_path: env.config_path()?,
            },
            Command::Token(args) => Plan::Token {
                connection: resolve_connection(&args.connection, env, load)?,
                format: args.output.format,
            },
            Command::Whoami(args) => Plan::Whoami {
                connection: resolve_connection(&args.connection, env, load)?,
                format: args.output.format,
            },
            Command::Iam(args) => Plan::Iam {
                connection: resolve_connection(&args.connection, env, load)?,
                format: args.output.format,
                resource: args.resource,
            },
            Command::Audit(args) => Plan::Audit {
                connection: resolve_connection(&args.connection, env, load)?,
                format: args.output.format,
                verb: args.verb,
            },
            Command::Keys(args) => Plan::Keys {
                connection: resolve_connection(&args.connection, env, load)?,
                format: args.output.format,
                verb: args.verb,
            },
            Command::Migrate(args) => Plan::Migrate(args.store),
            Command::Export(args) => Plan::Export(args),
            Command::Import(args) => Plan::Import(args),
            Command::Backup(args) => Plan::Backup(args),
            Command::Restore(args) => Plan::Restore(args),
            Command::Admin(args) => match args.verb {
                AdminVerb::Recover(args) => Plan::Recover(args),
            },
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn flags(endpoint: Option<&str>, apikey: Option<&str>, profile: &str) -> ConnectionArgs {
        ConnectionArgs {
            endpoint: endpoint.map(str::to_owned),
            apikey: apikey.map(Secret::new),
            cacert: None,
            // "default" stands for no --profile flag.
            profile: Some(profile.to_owned()).filter(|p| p != "default"),
        }
    }

    fn env(endpoint: Option<&str>, apikey: Option<&str>) -> Env {
        Env {
            endpoint: endpoint.map(str::to_owned),
            apikey: apikey.map(Secret::new),
            ..Env::default()
        }
    }

    fn saved() -> Config {
        let mut config = Config::default();
        config.profiles.insert(
            "default".into(),
            Profile {
                endpoint: "https://file".into(),
                apikey: Some("file-key".into()),
                cacert: Some("/ca.pem".into()),
            },
        );
        config.profiles.insert(
            "dev".into(),
            Profile {
                endpoint: "http://dev".into(),
                apikey: Some("dev-key".into()),
                cacert: None,
            },
        );
        config
    }

    fn resolve(flags: &ConnectionArgs, env: &Env) -> Result<Connection> {
        resolve_connection(flags, env, || Ok(saved()))
    }

    fn pair(connection: &Connection) -> (&str, &str) {
        (connection.endpoint.as_str(), connection.apikey.expose())
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let none = flags(None, None, "default");
        let c = resolve(&none, &Env::default()).unwrap();
        assert_eq!(pair(&c), ("https://file", "file-key"));
        assert_eq!(c.cacert.as_deref(), Some(Path::new("/ca.pem")));

        let c = resolve(&none, &env(Some("https://env"), Some("env-key"))).unwrap();
        assert_eq!(pair(&c), ("https://env", "env-key"));
        assert_eq!(
            c.cacert, None,
            "the profile's CA is not used for another endpoint"
        );

        let c = resolve(
            &flags(Some("https://flag"), Some("flag-key"), "default"),
            &env(Some("https://env"), Some("env-key")),
        )
        .unwrap();
        assert_eq!(pair(&c), ("https://flag", "flag-key"));

        // Mixed: key from the flag, endpoint from the environment.
        let c = resolve(
            &flags(None, Some("flag-key"), "default"),
            &env(Some("https://env"), Some("env-key")),
        )
        .unwrap();
        assert_eq!(pair(&c), ("https://env", "flag-key"));

        // A key from the environment with the profile's endpoint.
        let c = resolve(&none, &env(None, Some("env-key"))).unwrap();
        assert_eq!(pair(&c), ("https://file", "env-key"));

        // Another profile.
        let c = resolve(&flags(None, None, "dev"), &Env::default()).unwrap();
        assert_eq!(pair(&c), ("http://dev", "dev-key"));
    }

    #[test]
    fn the_file_is_not_read_when_flags_and_env_suffice() {
        let c = resolve_connection(
            &flags(Some("https://flag"), None, "default"),
            &env(None, Some("env-key")),
            || bail!("must not be read"),
        )
        .unwrap();
        assert_eq!(pair(&c), ("https://flag", "env-key"));
    }

    #[test]
    fn the_saved_key_is_only_sent_to_its_own_endpoint() {
        let err = resolve(
            &flags(Some("https://elsewhere"), None, "default"),
            &Env::default(),
        )
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("TESSERA_APIKEY") && !text.contains("file-key"),
            "{text}"
        );
        // The same endpoint spelt with a trailing slash is fine.
        let c = resolve(
            &flags(Some("https://file/"), None, "default"),
            &Env::default(),
        )
        .unwrap();
        assert_eq!(c.apikey.expose(), "file-key");
    }

    #[test]
    fn missing_credentials_say_to_log_in() {
        let no_file =
            |f: &ConnectionArgs, e: &Env| resolve_connection(f, e, || Ok(Config::default()));
        let text = format!(
            "{:#}",
            no_file(&flags(None, None, "default"), &Env::default()).unwrap_err()
        );
        assert!(text.contains("tessera login"), "{text}");
        let text = format!(
            "{:#}",
            no_file(&flags(None, None, "prod"), &Env::default()).unwrap_err()
        );
        assert!(text.contains("--profile prod"), "{text}");
        let text = format!(
            "{:#}",
            no_file(&flags(Some("https://x"), None, "default"), &Env::default()).unwrap_err()
        );
        assert!(
            text.contains("no API key") && text.contains("tessera login"),
            "{text}"
        );
        let text = format!(
            "{:#}",
            no_file(&flags(None, Some("k"), "default"), &Env::default()).unwrap_err()
        );
        assert!(text.contains("no endpoint"), "{text}");
        let text = format!(
            "{:#}",
            resolve(&flags(None, None, "nope"), &Env::default()).unwrap_err()
        );
        assert!(text.contains("\"nope\""), "{text}");
    }

    #[test]
    fn store_commands_need_no_login_and_hide_database_urls() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env {
            config_dir: Some(dir.path().join("none").into_os_string()),
            ..Env::default()
        };
        let parse = |args: &[&str]| {
            use clap::Parser;
            Cli::try_parse_from(std::iter::once("tessera").chain(args.iter().copied())).unwrap()
        };
        let plan = Plan::resolve(
            parse(&[
                "export",
                "--database-url",
                "postgres://u:hunter2@db/iam",
                "-o",
                "x.json",
            ]),
            &env,
        )
        .unwrap();
        let shown = format!("{plan:?}");
        assert!(
            shown.contains("x.json") && !shown.contains("hunter2"),
            "{shown}"
        );
        let Plan::Export(ExportArgs { store, output }) = plan else {
            panic!("not an export: {shown}");
        };
        assert_eq!(
            store.database_url.as_deref(),
            Some("postgres://u:hunter2@db/iam")
        );
        assert_eq!(output, Some(PathBuf::from("x.json")));
        let plan = Plan::resolve(parse(&["migrate", "--data-dir", "d"]), &env).unwrap();
        assert!(matches!(plan, Plan::Migrate(_)), "{plan:?}");
        let plan = Plan::resolve(parse(&["import", "--data-dir", "d"]), &env).unwrap();
        assert!(
            matches!(plan, Plan::Import(ImportArgs { input: None, .. })),
            "{plan:?}"
        );
        // `keys` talks to a server: it needs credentials like every admin command.
        let err = Plan::resolve(parse(&["keys", "list"]), &env).unwrap_err();
        assert!(format!("{err:#}").contains("tessera login"), "{err:#}");
        let plan = Plan::resolve(
            parse(&["keys", "rotate", "--endpoint", "http://x", "--apikey", "k"]),
            &env,
        )
        .unwrap();
        assert!(matches!(plan, Plan::Keys { .. }), "{plan:?}");
    }

    #[test]
    fn login_endpoint_and_key_sources() {
        let path = PathBuf::from("/cfg/tessera/config.toml");
        let load = |_: &Path| Ok(saved());
        let plan = resolve_login(
            &flags(Some("https://flag"), None, "default"),
            false,
            &env(Some("https://env"), None),
            path.clone(),
            load,
        )
        .unwrap();
        assert_eq!(plan.endpoint, "https://flag");
        assert_eq!(plan.apikey, None, "the key will come from stdin");

        let plan = resolve_login(
            &flags(None, None, "default"),
            false,
            &env(Some("https://env"), Some("env-key")),
            path.clone(),
            load,
        )
        .unwrap();
        assert_eq!(
            (
                plan.endpoint.as_str(),
                plan.apikey.as_ref().map(Secret::expose)
            ),
            ("https://env", Some("env-key"))
        );

        // Logging in again to a saved profile reuses its endpoint.
        let plan = resolve_login(
            &flags(None, Some("k"), "dev"),
            false,
            &Env::default(),
            path.clone(),
            load,
        )
        .unwrap();
        assert_eq!(plan.endpoint, "http://dev");
        assert_eq!(plan.profile, "dev");
        assert_eq!(plan.config_path, path);

        let err = resolve_login(
            &flags(None, None, "new"),
            false,
            &Env::default(),
            path.clone(),
            load,
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("--endpoint"));
        assert!(resolve_login(
            &flags(Some("not a url"), None, "default"),
            false,
            &Env::default(),
            path,
            load
        )
        .is_err());
    }

    #[test]
    fn login_elsewhere_marks_the_key_it_would_replace() {
        let path = PathBuf::from("/cfg/tessera/config.toml");
        let load = |_: &Path| Ok(saved());
        let login = |endpoint: &str, profile: &str| {
            resolve_login(
                &flags(Some(endpoint), None, profile),
                false,
                &Env::default(),
                path.clone(),
                load,
            )
            .unwrap()
        };
        assert_eq!(login("https://file/", "default").replaces, None);
        assert_eq!(
            login("https://other", "default").replaces.as_deref(),
            Some("https://file")
        );
        assert_eq!(login("https://other", "new").replaces, None);
        // The current profile is the one replaced without --profile.
        let mut config = saved();
        config.current_profile = Some("dev".into());
        let plan = resolve_login(
            &flags(Some("https://other"), None, "default"),
            false,
            &Env::default(),
            path.clone(),
            |_: &Path| Ok(config),
        )
        .unwrap();
        assert_eq!(plan.profile, "dev");
        assert_eq!(plan.replaces.as_deref(), Some("http://dev"));
    }

    #[test]
    fn the_current_profile_is_used_and_a_logged_out_one_says_so() {
        let mut config = saved();
        config.current_profile = Some("dev".into());
        let c = resolve_connection(&flags(None, None, "default"), &Env::default(), || {
            Ok(config.clone())
        })
        .unwrap();
        assert_eq!(pair(&c), ("http://dev", "dev-key"));
        config.profiles.get_mut("dev").unwrap().apikey = None;
        let err = resolve_connection(&flags(None, None, "default"), &Env::default(), || {
            Ok(config)
        })
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("logged out")
                && format!("{err:#}").contains("--profile dev"),
            "{err:#}"
        );
    }
}
