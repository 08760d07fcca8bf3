//! The command line as clap parses it. These types only describe syntax; nothing here reads the
//! environment, a file or the network (that is [`super::resolve`]'s job), so parsing is
//! testable with `Cli::try_parse_from`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::fmt;
use std::path::PathBuf;

/// A secret given on the command line (an API key). Its `Debug` output is redacted so that it
/// cannot end up in a log line or a test failure message.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Tessera: a self-hosted IAM token service.
#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = after_help()
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `tessera --help`'s closing text: how to start, and what the exit codes mean.
fn after_help() -> String {
    format!(
        "Get started:\n  \
        tessera login --endpoint https://iam.example.com    (prompts for the API key)\n  \
        tessera iam service-account list\n  \
        curl -H \"Authorization: Bearer $(tessera token)\" ...\n\n{}",
        super::failure::EXIT_CODES_HELP
    )
}

impl Cli {
    /// The output format the command asked for, which its errors are written in too.
    pub fn format(&self) -> Format {
        match &self.command {
            Command::Token(args) => args.output.format,
            Command::Whoami(args) => args.output.format,
            Command::Iam(args) => args.output.format,
            Command::Keys(args) => args.output.format,
            Command::Profile(args) => args.output.format,
            Command::Login(args) => args.output.format,
            _ => Format::Table,
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the Tessera server.
    Serve(Box<tessera_server::ServeArgs>),
    /// Run the workload metadata agent (a GCE-format metadata server that serves IAM tokens).
    #[command(
        after_help = "Examples:\n  tessera agent --server https://iam.example.com --credentials key.json --listen 127.0.0.1:8081\n  tessera agent --config agent.toml            # attributes, host-mode workloads, IBM VPC flavour\n  tessera agent token --credentials key.json   # one token as JSON, for a function runtime\n  tessera agent keygen --key-out instance-key.pem > instance-jwks.json"
    )]
    Agent(Box<crate::agent::AgentArgs>),
    /// Check an API key against a server and save it as a profile.
    #[command(
        after_help = "Without TESSERA_APIKEY, the API key is asked for on the terminal (not \
        echoed), or read from the first line of standard input when that is a pipe \
        (`tessera login --endpoint URL < key.txt`). Profiles are saved in \
        $TESSERA_CONFIG_DIR/tessera/config.toml (default: the user's configuration directory), \
        readable by their owner only. Logging in to another endpoint than the profile's asks \
        before replacing it; without a terminal it is refused unless --force is given (or \
        --profile NAME names a new profile)."
    )]
    Login(LoginArgs),
    /// Remove the saved API key of the current profile (or --profile NAME); its endpoint stays.
    Logout(LogoutArgs),
    /// List, switch between, show and delete saved profiles (`tessera login` creates them).
    Profile(SavedProfileArgs),
    /// Print a fresh IAM access token.
    Token(TokenArgs),
    /// Show the identity the credentials belong to.
    Whoami(WhoamiArgs),
    /// Manage identities and access through the admin API.
    Iam(IamArgs),
    /// List and rotate the token signing keys (global administrator).
    Keys(KeysArgs),
    /// Read the audit log: who changed what, when (administrators).
    #[command(after_help = AUDIT_HELP)]
    Audit(AuditArgs),
    /// Apply the store's schema migrations and show the schema version before and after.
    #[command(after_help = STORE_HELP)]
    Migrate(MigrateArgs),
    /// Write the whole installation (identities, credentials, keys, secrets) as JSON.
    #[command(after_help = EXPORT_HELP)]
    Export(ExportArgs),
    /// Load an export into an empty store (to move between SQLite and PostgreSQL).
    #[command(after_help = IMPORT_HELP)]
    Import(ImportArgs),
    /// Write a consistent copy of the embedded store, also while the server runs.
    #[command(after_help = BACKUP_HELP)]
    Backup(BackupArgs),
    /// Put a backup in place as the embedded store of a data directory (server stopped).
    #[command(after_help = RESTORE_HELP)]
    Restore(RestoreArgs),
    /// Operator commands on the store itself, without a server (e.g. `admin recover`).
    Admin(AdminArgs),
    /// Print a shell completion script.
    #[command(after_help = COMPLETION_HELP)]
    Completion(CompletionArgs),
}

const COMPLETION_HELP: &str = "Install it once per shell:\n  \
    bash:        tessera completion bash > ~/.local/share/bash-completion/completions/tessera\n  \
    zsh:         tessera completion zsh > \"${fpath[1]}/_tessera\"\n  \
    fish:        tessera completion fish > ~/.config/fish/completions/tessera.fish\n  \
    PowerShell:  tessera completion powershell >> $PROFILE";

#[derive(Args)]
pub struct CompletionArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

const BACKUP_HELP: &str = "The copy is one consistent snapshot of the store (SQLite's VACUUM \
    INTO), taken while the server keeps serving and writing; it is written beside FILE and \
    renamed into place when complete, mode 0600. Like the store it holds sealed keys and \
    credential hashes, which only the installation's master key opens: keep the master key \
    apart from the backups, and back it up too. For PostgreSQL use pg_dump, or `tessera export`.";

const RESTORE_HELP: &str = "Refuses a data directory a server is running on, and a backup that \
    the master key (TESSERA_MASTER_KEY, or --master-key-file, default <data dir>/master.key) \
    does not open. A store already in the directory is kept beside it as \
    tessera.db.before-restore-<unix time>. Start the server afterwards with the same --issuer.";

const RECOVER_HELP: &str = "For an installation whose administrators are all gone or whose keys \
    are lost: creates a new user with the global admin role in the installation's first account, \
    and an API key for it, printed once. Needs the master key (TESSERA_MASTER_KEY, or \
    --master-key-file, default <data dir>/master.key) and the store; on the embedded store the \
    server must be stopped (start it afterwards), on PostgreSQL the nodes see the new \
    administrator within a second. Recorded in the audit log as installation.recover.";

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct BackupArgs {
    #[command(flatten)]
    pub store: tessera_server::StoreArgs,
    /// The backup file to write (must not exist)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub store: tessera_server::StoreArgs,
    /// The backup to put in place
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: PathBuf,
    /// Master key file (default: <data dir>/master.key); TESSERA_MASTER_KEY takes precedence.
    #[arg(long, env = "TESSERA_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub verb: AdminVerb,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum AdminVerb {
    /// Mint a new global administrator and its API key (printed once), offline.
    #[command(after_help = RECOVER_HELP)]
    Recover(RecoverArgs),
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub store: tessera_server::StoreArgs,
    /// Master key file (default: <data dir>/master.key); TESSERA_MASTER_KEY takes precedence.
    #[arg(long, env = "TESSERA_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
}

/// How the store commands find the store.
const STORE_HELP: &str = "The store is chosen as for `tessera serve`: --database-url (with \
    --database-schema) for PostgreSQL, else the SQLite file in --data-dir; each flag also reads \
    its TESSERA_* environment variable, and ./tessera.toml (or --config) is read too. `serve` \
    migrates at startup as well; `migrate` does it explicitly, e.g. once before several nodes \
    start a new version. A schema newer than this Tessera knows is an error.";

const EXPORT_HELP: &str = "The export holds the server secrets and the private signing keys, \
    sealed under the master key, and the API-key, client-secret and password hashes: guard it \
    like a database backup (with --output the file is created with mode 0600). It can only be \
    imported by an installation with the same master key. Without --output it goes to standard \
    output. The store is chosen as for `tessera serve` (--data-dir, --database-url, \
    --database-schema, their TESSERA_* variables, the configuration file).";

const IMPORT_HELP: &str = "The target must be empty (a fresh data directory or database schema; \
    its schema is created) and must use the same master key as the exported installation: \
    TESSERA_MASTER_KEY, or the master key file (--master-key-file, default \
    <data dir>/master.key). The master key is checked against the export before anything is \
    written. Without --input the export is read from standard input. Start the servers on the \
    new store with the same --issuer, so that tokens issued before the move keep verifying.";

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub store: tessera_server::StoreArgs,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: tessera_server::StoreArgs,
    /// Write the export to FILE (mode 0600) instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: tessera_server::StoreArgs,
    /// Read the export from FILE instead of standard input
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Master key file (default: <data dir>/master.key); TESSERA_MASTER_KEY takes precedence.
    /// It must be the exported installation's master key.
    #[arg(long, env = "TESSERA_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct KeysArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub verb: KeysVerb,
}

const AUDIT_HELP: &str = "A global administrator reads every event; an account's administrator \
    reads that account's events with --account-id. Examples:\n  \
    tessera audit list --account-id 0123…  --action api_key. --since 2026-12-01T00:00:00Z\n  \
    tessera audit list --actor iam-ServiceId-… -o json\n  \
    tessera audit export --account-id 0123… --output audit.jsonl   # every page, one JSON event a line";

#[derive(Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub verb: AuditVerb,
}

/// Which events, as `GET /v1/audit` filters them.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditFilterArgs {
    /// Events of this account
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
    /// Events of this actor (an iam_id, or `system`)
    #[arg(long, value_name = "IAM_ID")]
    pub actor: Option<String>,
    /// Events of this action (api_key.delete), or of every action it begins if it ends with a dot (api_key.)
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
    /// Events at or after this RFC 3339 time
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Events before this RFC 3339 time
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum AuditVerb {
    /// One page of events, newest first
    #[command(alias = "ls")]
    List {
        #[command(flatten)]
        filter: AuditFilterArgs,
        /// At most this many events (1–1000)
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Events older than this event id (the last id of the previous page)
        #[arg(long, value_name = "ID")]
        before: Option<i64>,
    },
    /// Every matching event, newest first, one JSON object a line (all pages)
    Export {
        #[command(flatten)]
        filter: AuditFilterArgs,
        /// Write to FILE instead of standard output
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum KeysVerb {
    /// List the signing keys: kid, algorithm, use, state (next, active, retired), dates
    #[command(alias = "ls")]
    List,
    /// Rotate the signing keys of one use now
    #[command(
        after_help = "Without --immediate, a successor key is published in the JWKS at once and \
        starts signing after the publication lead (twice the JWKS cache time), so verifiers \
        know it before its first token; the automatic rotation then continues from it. With \
        --immediate (e.g. after a key compromise) the new key signs at once and the old ones are \
        retired: they stay published, so tokens they signed keep verifying, but verifiers that \
        cached the JWKS reject new tokens until they fetch it again."
    )]
    Rotate {
        /// Which keys: JWT access tokens, or the Ed25519 keys of `t1.` IAM tokens
        #[arg(long = "use", value_enum, default_value_t = KeyUse::Jwt)]
        key_use: KeyUse,
        /// Replace the signer at once instead of publishing a successor first
        #[arg(long)]
        immediate: bool,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// JWT access tokens (and ID tokens)
    Jwt,
    /// `t1.` IAM tokens (Ed25519)
    YandexIam,
}

impl KeyUse {
    /// The name the server takes (the core's spelling of the key use).
    pub fn as_str(self) -> &'static str {
        let key_use = match self {
            KeyUse::Jwt => tessera_core::model::KeyUse::Jwt,
            KeyUse::YandexIam => tessera_core::model::KeyUse::YandexIam,
        };
        key_use.as_str()
    }
}

/// Help heading of the connection flags, which are accepted by every subcommand below the one
/// that defines them and would otherwise be interleaved with the subcommand's own flags.
const CONNECTION: &str = "Connection";

/// Where to connect and with which key. Each value is looked up in order: the flag, the
/// environment variable, the saved profile.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ConnectionArgs {
    /// The server's URL.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = CONNECTION,
        help = "Server URL, e.g. https://iam.example.com [env: TESSERA_ENDPOINT]"
    )]
    pub endpoint: Option<String>,
    /// API key; TESSERA_APIKEY or a saved profile is safer, as flags end up in shell history
    /// [env: TESSERA_APIKEY]
    #[arg(long, global = true, value_name = "KEY", help_heading = CONNECTION)]
    pub apikey: Option<Secret>,
    /// PEM file of the CA that signed the server's certificate [env: TESSERA_CACERT]
    #[arg(long, global = true, value_name = "FILE", help_heading = CONNECTION)]
    pub cacert: Option<PathBuf>,
    /// Saved profile to use (default: the one `tessera profile use` chose, else "default")
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        env = "TESSERA_PROFILE",
        help_heading = CONNECTION
    )]
    pub profile: Option<String>,
}

#[derive(Args, Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputArgs {
    /// Output format (`-o json` is short for `--format json`); errors follow it
    #[arg(
        long,
        short = 'o',
        global = true,
        value_enum,
        default_value_t = Format::Table,
        help_heading = "Output"
    )]
    pub format: Format,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable table
    Table,
    /// The API's JSON, pretty-printed
    Json,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct LoginArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Replace the profile even if it is logged in to another endpoint, without asking
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct LogoutArgs {
    /// Profile to log out of (default: the current one)
    #[arg(long, value_name = "NAME", env = "TESSERA_PROFILE")]
    pub profile: Option<String>,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct SavedProfileArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub verb: SavedProfileVerb,
}

/// The saved profiles of `tessera login` (not the trusted profiles of `tessera iam profile`).
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum SavedProfileVerb {
    /// List the saved profiles; the current one is marked
    #[command(alias = "ls")]
    List,
    /// Make NAME the profile used without --profile
    Use { name: String },
    /// Show a profile's endpoint and CA, and whether a key is saved (never the key)
    Show {
        /// Default: the current profile
        name: Option<String>,
    },
    /// Delete a saved profile with its key
    #[command(alias = "rm")]
    Delete { name: String },
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct TokenArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct WhoamiArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct IamArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub resource: IamResource,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum IamResource {
    /// Enterprises (groups of accounts)
    #[command(alias = "enterprises")]
    Enterprise {
        #[command(subcommand)]
        verb: EnterpriseVerb,
    },
    /// Accounts
    #[command(alias = "accounts")]
    Account {
        #[command(subcommand)]
        verb: AccountVerb,
    },
    /// Users
    #[command(alias = "users")]
    User {
        #[command(subcommand)]
        verb: UserVerb,
    },
    /// Service accounts (service IDs)
    #[command(alias = "service-accounts")]
    ServiceAccount {
        #[command(subcommand)]
        verb: ServiceAccountVerb,
    },
    /// API keys of users and service accounts
    #[command(alias = "api-keys")]
    ApiKey {
        #[command(subcommand)]
        verb: ApiKeyVerb,
    },
    /// Authorized keys of service accounts (RSA key pairs, `yc` key files)
    #[command(visible_alias = "authorized-key", alias = "keys")]
    Key {
        #[command(subcommand)]
        verb: KeyVerb,
    },
    /// Long-lived OAuth tokens of users (y0_…)
    #[command(alias = "oauth-tokens")]
    OauthToken {
        #[command(subcommand)]
        verb: OAuthTokenVerb,
    },
    /// OAuth clients
    #[command(alias = "clients")]
    Client {
        #[command(subcommand)]
        verb: ClientVerb,
    },
    /// Access bindings (who holds which role where)
    #[command(alias = "access-bindings")]
    AccessBinding {
        #[command(subcommand)]
        verb: AccessBindingVerb,
    },
    /// Trusted issuers: external OIDC issuers (Kubernetes clusters) whose tokens are
    /// compute-resource tokens for the cr-token grant
    #[command(alias = "issuers", visible_alias = "trusted-issuer")]
    Issuer {
        #[command(subcommand)]
        verb: IssuerVerb,
    },
    /// Trusted profiles (identities others become with `assume` or a compute-resource token)
    #[command(alias = "profiles", alias = "trusted-profile")]
    Profile {
        #[command(subcommand)]
        verb: ProfileVerb,
    },
    /// Authorization policies (which identity may get tokens for which resource CRN)
    #[command(alias = "policies", visible_alias = "authorization-policy")]
    Policy {
        #[command(subcommand)]
        verb: PolicyVerb,
    },
}

/// `tessera iam issuer …`.
pub type IssuerVerb = Verbs<IssuerCreate, AccountFilter, IdArg, IssuerMore>;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct IssuerCreate {
    /// Display name
    #[arg(long)]
    pub name: String,
    /// The exact `iss` of its tokens (https, or http on a loopback host)
    #[arg(long, value_name = "URL")]
    pub issuer_url: String,
    /// A local JWKS file (e.g. from `kubectl get --raw /openid/v1/jwks`), sent inline
    #[arg(
        long,
        value_name = "LOCAL_PATH",
        conflicts_with = "server_jwks_path",
        required_unless_present = "server_jwks_path"
    )]
    pub jwks_file: Option<PathBuf>,
    /// A JWKS file path on the server, re-read when it changes (global administrator)
    #[arg(long, value_name = "PATH")]
    pub server_jwks_path: Option<String>,
    /// Accepted token audience (repeatable; default iam)
    #[arg(long = "audience", value_name = "AUD")]
    pub audiences: Vec<String>,
    /// Compute-resource type (IKS_SA, ROKS_SA, CE, VSI, BMS, PVS; default IKS_SA)
    #[arg(long, value_name = "TYPE")]
    pub cr_type: Option<String>,
    /// The compute resource's CRN (default: derived from the account and issuer id)
    #[arg(long)]
    pub crn: Option<String>,
    /// Claim mapping CLAIM=DOTTED.PATH (repeatable), e.g. namespace=kubernetes.io.namespace
    #[arg(long = "map", value_name = "CLAIM=PATH")]
    pub map: Vec<String>,
    /// Account id (default: your own)
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
}

impl VerbHelp for IssuerCreate {
    const CREATE: &'static str = "Register a trusted issuer";
    const LIST: &'static str = "List trusted issuers";
    const GET: &'static str = "Show a trusted issuer";
    const DELETE: &'static str = "Delete a trusted issuer (its tokens stop working at once)";
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum IssuerMore {
    /// Replace a trusted issuer's keys or audiences (key rotation)
    Update {
        id: String,
        /// A local JWKS file, sent inline
        #[arg(long, value_name = "LOCAL_PATH", conflicts_with = "server_jwks_path")]
        jwks_file: Option<PathBuf>,
        /// A JWKS file path on the server (global administrator)
        #[arg(long, value_name = "PATH")]
        server_jwks_path: Option<String>,
        /// Accepted token audience (repeatable; replaces the list)
        #[arg(long = "audience", value_name = "AUD")]
        audiences: Vec<String>,
        /// Claim mapping CLAIM=DOTTED.PATH (repeatable; replaces the mapping)
        #[arg(long = "map", value_name = "CLAIM=PATH")]
        map: Vec<String>,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedIdentityType {
    /// A user (IBMid-…)
    User,
    /// A service ID (iam-ServiceId-… or ServiceId-…)
    Serviceid,
    /// A resource identity (a CRN)
    Crn,
}

impl TrustedIdentityType {
    pub fn as_str(self) -> &'static str {
        match self {
            TrustedIdentityType::User => "user",
            TrustedIdentityType::Serviceid => "serviceid",
            TrustedIdentityType::Crn => "crn",
        }
    }
}

/// Profile verbs. The `add-*`/`remove-*` verbs read the profile, change it, and replace it
/// (`PUT`), answering the profile as it is now.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ProfileVerb {
    /// Create a trusted profile (add identities, links and rules with the add-* verbs)
    Create {
        /// Account of the profile (default: your own)
        #[arg(long, value_name = "ID")]
        account_id: Option<String>,
        /// Name, unique in the account
        #[arg(long)]
        name: String,
        /// Free-text description
        #[arg(long)]
        description: Option<String>,
    },
    /// List trusted profiles
    #[command(alias = "ls")]
    List(AccountFilter),
    /// Show a trusted profile (by id, or by --name)
    Get(ProfileRef),
    /// Change a profile's name or description
    Update {
        /// Profile id (Profile-…)
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a trusted profile (its tokens stop working)
    #[command(alias = "rm")]
    Delete(ProfileRef),
    /// Trust an identity to assume the profile
    AddIdentity {
        /// Profile id (Profile-…)
        id: String,
        #[arg(long = "type", value_enum)]
        kind: TrustedIdentityType,
        /// IBMid-…, iam-ServiceId-… (or ServiceId-…), or a CRN
        #[arg(long)]
        identifier: String,
        /// Users only: an account whose tokens of the user are trusted (repeatable; default:
        /// the user's own)
        #[arg(long = "account", value_name = "ID")]
        accounts: Vec<String>,
    },
    /// Stop trusting an identity
    RemoveIdentity {
        /// Profile id (Profile-…)
        id: String,
        /// The identity's identifier, as `get` shows it
        #[arg(long)]
        identifier: String,
    },
    /// Link a compute resource (Kubernetes service account, Code Engine component, VM)
    AddLink {
        /// Profile id (Profile-…)
        id: String,
        /// IKS_SA, ROKS_SA, CE, VSI, BMS or PVS
        #[arg(long)]
        cr_type: String,
        /// The compute resource's CRN (e.g. the cluster's)
        #[arg(long)]
        crn: String,
        /// Kubernetes namespace (IKS_SA, ROKS_SA)
        #[arg(long)]
        namespace: Option<String>,
        /// Kubernetes service account (IKS_SA, ROKS_SA)
        #[arg(long)]
        name: Option<String>,
        /// Code Engine component type (CE)
        #[arg(long)]
        component_type: Option<String>,
        /// Code Engine component name (CE)
        #[arg(long)]
        component_name: Option<String>,
    },
    /// Remove a link by its id (Link-…)
    RemoveLink {
        /// Profile id (Profile-…)
        id: String,
        link_id: String,
    },
    /// Add a claim rule (type Profile-CR): all conditions must hold
    AddRule {
        /// Profile id (Profile-…)
        id: String,
        /// IKS_SA, ROKS_SA, CE, VSI, BMS or PVS
        #[arg(long)]
        cr_type: String,
        /// 'CLAIM OPERATOR VALUE', e.g. 'namespace EQUALS prod' or 'pod IN a,b' (repeatable);
        /// VALUE is JSON if it parses as JSON, else a string (IN: a comma-separated list)
        #[arg(long = "condition", value_name = "CONDITION", required = true)]
        conditions: Vec<String>,
        /// Rule name
        #[arg(long = "rule-name")]
        rule_name: Option<String>,
    },
    /// Remove a claim rule by its id (ClaimRule-…)
    RemoveRule {
        /// Profile id (Profile-…)
        id: String,
        rule_id: String,
    },
}

/// Parses `CLAIM OPERATOR VALUE` into a condition object with a JSON-encoded value.
pub fn parse_condition(text: &str) -> Result<serde_json::Value, String> {
    let mut parts = text.trim().splitn(3, char::is_whitespace);
    let (Some(claim), Some(operator), Some(value)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "condition {text:?} must be 'CLAIM OPERATOR VALUE', e.g. 'namespace EQUALS prod'"
        ));
    };
    let operator = operator.to_ascii_uppercase();
    let value = value.trim();
    let encoded = match serde_json::from_str::<serde_json::Value>(value) {
        Ok(json) if operator != "IN" || json.is_array() => value.to_owned(),
        _ if operator == "IN" => serde_json::Value::from(
            value
                .split(',')
                .map(|v| serde_json::Value::from(v.trim()))
                .collect::<Vec<_>>(),
        )
        .to_string(),
        _ => serde_json::Value::from(value).to_string(),
    };
    Ok(serde_json::json!({"claim": claim, "operator": operator, "value": encoded}))
}

/// `get <id>` and `delete <id>`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct IdArg {
    pub id: String,
}

/// A service account by id, or by its name (unique in an account), looked up in the list.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountRef {
    /// Service account id (ServiceId-… or iam-ServiceId-…)
    #[arg(
        value_parser = service_account_id,
        required_unless_present = "name",
        conflicts_with = "name"
    )]
    pub id: Option<String>,
    /// The service account's name instead of its id
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// With --name: the account to look in (default: every account you may see)
    #[arg(long, value_name = "ID", requires = "name")]
    pub account_id: Option<String>,
}

/// A trusted profile by id, or by its name (unique in an account), looked up in the list.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ProfileRef {
    /// Profile id (Profile-…)
    #[arg(required_unless_present = "name", conflicts_with = "name")]
    pub id: Option<String>,
    /// The profile's name instead of its id
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// With --name: the account to look in (default: every account you may see)
    #[arg(long, value_name = "ID", requires = "name")]
    pub account_id: Option<String>,
}

/// `get`/`delete` of a user: its id in either spelling, or its e-mail address (unique in an
/// account), looked up in the list.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct UserRef {
    /// User id (IBMid-… or iam-IBMid-…)
    #[arg(
        value_parser = user_id,
        required_unless_present = "email",
        conflicts_with = "email"
    )]
    pub id: Option<String>,
    /// The user's e-mail address instead of its id
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,
    /// With --email: the account to look in (default: every account you may see)
    #[arg(long, value_name = "ID", requires = "email")]
    pub account_id: Option<String>,
}

// Ids in any spelling people copy from the tables, normalised as they are parsed, so that every
// verb gets the form the API expects.
fn service_account_id(text: &str) -> Result<String, String> {
    Ok(tessera_core::ids::service_account_id_of(text).to_owned())
}

fn user_id(text: &str) -> Result<String, String> {
    Ok(tessera_core::ids::user_id_of(text).to_owned())
}

fn iam_id(text: &str) -> Result<String, String> {
    Ok(tessera_core::ids::iam_id_of(text))
}

/// Paging shared by every `list`.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
pub struct PageArgs {
    /// Show at most N objects (default: all)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    /// Start after this id (keyset pagination)
    #[arg(long, value_name = "ID")]
    pub after: Option<String>,
}

/// `list` of a collection filtered by account (`--account-id`).
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountFilter {
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

/// The verbs of one admin collection, written once: `create` with the resource's own flags
/// (`C`), `list` with its filters (`L`), `get` and `delete` by id (`I`), and the verbs only
/// that resource has (`X`, listed between `get` and `delete`). Each resource's `--help` still
/// shows its own flags and its own words: `C` carries them ([`VerbHelp`]).
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Verbs<C: Args + VerbHelp, L: Args, I: Args, X: Subcommand = NoMoreVerbs> {
    #[command(about = C::CREATE, after_help = C::CREATE_AFTER_HELP)]
    Create(C),
    #[command(alias = "ls", about = C::LIST)]
    List(L),
    #[command(about = C::GET)]
    Get(I),
    #[command(flatten)]
    More(X),
    #[command(alias = "rm", visible_aliases = C::DELETE_ALIASES, about = C::DELETE)]
    Delete(I),
}

/// The one-line help of a collection's [`Verbs`], carried by its create flags.
pub trait VerbHelp {
    const CREATE: &'static str;
    const CREATE_AFTER_HELP: Option<&'static str> = None;
    const LIST: &'static str;
    const GET: &'static str;
    const DELETE: &'static str;
    /// More names of `delete` shown in the help (`revoke`); `rm` is always one.
    const DELETE_ALIASES: &'static [&'static str] = &[];
}

/// The verbs of a collection that has only the common ones.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum NoMoreVerbs {}

pub type EnterpriseVerb = Verbs<EnterpriseCreate, PageArgs, IdArg>;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseCreate {
    /// Display name
    #[arg(long)]
    pub name: String,
}

impl VerbHelp for EnterpriseCreate {
    const CREATE: &'static str = "Create an enterprise";
    const LIST: &'static str = "List enterprises";
    const GET: &'static str = "Show an enterprise";
    const DELETE: &'static str = "Delete an enterprise (it must have no accounts)";
}

pub type AccountVerb = Verbs<AccountCreate, PageArgs, IdArg, AccountMore>;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct AccountCreate {
    /// Display name
    #[arg(long)]
    pub name: String,
    /// Enterprise the account belongs to
    #[arg(long, value_name = "ID")]
    pub enterprise_id: Option<String>,
}

impl VerbHelp for AccountCreate {
    const CREATE: &'static str = "Create an account";
    const LIST: &'static str = "List accounts";
    const GET: &'static str = "Show an account";
    const DELETE: &'static str = "Delete an account (it must have no members)";
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum AccountMore {
    /// Update an account (its MFA requirement)
    Update {
        id: String,
        /// Second factor required of the account's users at password login
        #[arg(long, value_enum)]
        mfa: MfaArg,
    },
}

pub type UserVerb = Verbs<UserCreate, AccountFilter, UserRef, UserMore>;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct UserCreate {
    /// Account of the user (default: your own)
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
    /// Display name
    #[arg(long)]
    pub name: String,
    /// E-mail address (unique)
    #[arg(long)]
    pub email: String,
    /// Read the user's password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
    /// The user signs in through a federated identity provider
    #[arg(long)]
    pub federated: bool,
}

impl VerbHelp for UserCreate {
    const CREATE: &'static str = "Create a user";
    const LIST: &'static str = "List users";
    const GET: &'static str = "Show a user (by id, or by --email)";
    const DELETE: &'static str = "Delete a user, with its API keys and access bindings";
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum UserMore {
    /// The user's TOTP second factor
    Totp {
        #[command(subcommand)]
        verb: TotpVerb,
    },
}

/// `--mfa` of `iam account update`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaArg {
    /// Users need a confirmed TOTP factor and a code to log in with a password
    Totp,
    /// A password alone is enough (users with a confirmed factor still need a code)
    None,
}

impl MfaArg {
    pub fn as_api(self) -> &'static str {
        match self {
            MfaArg::Totp => "TOTP",
            MfaArg::None => "NONE",
        }
    }
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum TotpVerb {
    /// Enrol a TOTP factor; prints the secret and otpauth:// URI once
    Enroll {
        /// User id (IBMid-…)
        #[arg(value_parser = user_id)]
        user_id: String,
        /// Replace a confirmed factor (needs --code, a current code of it, unless signed in
        /// with a code in the last five minutes)
        #[arg(long)]
        replace: bool,
        /// A current code of the confirmed factor: the step-up proof for --replace
        #[arg(long)]
        code: Option<String>,
    },
    /// Confirm the factor with a first code from the authenticator app
    Confirm {
        /// User id (IBMid-…)
        #[arg(value_parser = user_id)]
        user_id: String,
        /// The current 6-digit code
        #[arg(long)]
        code: String,
    },
    /// Delete the user's TOTP factor (yourself only, once confirmed)
    #[command(alias = "rm")]
    Delete {
        /// User id (IBMid-…)
        #[arg(value_parser = user_id)]
        user_id: String,
        /// A current code of the confirmed factor: the step-up proof (not needed when signed
        /// in with a code in the last five minutes)
        #[arg(long)]
        code: Option<String>,
    },
}

pub type ServiceAccountVerb = Verbs<ServiceAccountCreate, AccountFilter, ServiceAccountRef>;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountCreate {
    /// Account of the service account (default: your own)
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
    /// Display name
    #[arg(long)]
    pub name: String,
    /// Free-text description
    #[arg(long)]
    pub description: Option<String>,
}

impl VerbHelp for ServiceAccountCreate {
    const CREATE: &'static str = "Create a service account";
    const LIST: &'static str = "List service accounts";
    const GET: &'static str = "Show a service account (by id, or by --name)";
    const DELETE: &'static str = "Delete a service account, with its API keys and access bindings";
}

/// Whose API key it is: exactly one of the three.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[group(required = true, multiple = false)]
pub struct OwnerArgs {
    /// Service account id (ServiceId-…)
    #[arg(long, value_name = "ID", value_parser = service_account_id)]
    pub service_account_id: Option<String>,
    /// User id (IBMid-…)
    #[arg(long, value_name = "ID", value_parser = user_id)]
    pub user_id: Option<String>,
    /// Owner's iam id (IBMid-… or iam-ServiceId-…)
    #[arg(long, value_name = "IAM_ID", value_parser = iam_id)]
    pub owner_iam_id: Option<String>,
}

impl OwnerArgs {
    /// The `owner_iam_id` the API expects. A service account's iam id is its id with `iam-` in
    /// front; a user's iam id is its id.
    pub fn owner_iam_id(&self) -> Option<String> {
        // Each is normalised by its parser: the service account's to its id.
        if let Some(id) = &self.service_account_id {
            return Some(tessera_core::ids::service_iam_id(id));
        }
        self.user_id.clone().or_else(|| self.owner_iam_id.clone())
    }
}

pub type ApiKeyVerb = Verbs<ApiKeyCreate, ApiKeyFilter, IdArg>;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyCreate {
    #[command(flatten)]
    pub owner: OwnerArgs,
    /// Display name
    #[arg(long)]
    pub name: String,
    /// Free-text description
    #[arg(long)]
    pub description: Option<String>,
}

impl VerbHelp for ApiKeyCreate {
    const CREATE: &'static str = "Create an API key (the key is shown only once)";
    const LIST: &'static str = "List API keys";
    const GET: &'static str = "Show an API key's metadata";
    const DELETE: &'static str = "Delete an API key";
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyFilter {
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
    #[arg(long, value_name = "IAM_ID", value_parser = iam_id)]
    pub owner_iam_id: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

/// The key size of a new authorized key.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    /// RSA, 2048 bits
    #[default]
    #[value(name = "RSA_2048")]
    Rsa2048,
    /// RSA, 4096 bits (slower to create)
    #[value(name = "RSA_4096")]
    Rsa4096,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "RSA_2048",
            KeyAlgorithm::Rsa4096 => "RSA_4096",
        }
    }
}

const KEY_CREATE_HELP: &str = "The key file is the JSON `yc iam key create` writes (id, \
    service_account_id, created_at, key_algorithm, public_key, private_key) and what the Yandex \
    SDKs read. The private key is shown only this once and is not stored by the server: the \
    file is created readable by its owner only (mode 0600), and an existing file is kept unless \
    --force is given. With --output - the key file is printed to standard output instead.";

pub type KeyVerb = Verbs<KeyCreate, KeyFilter, IdArg>;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct KeyCreate {
    /// Service account id (ServiceId-…)
    #[arg(long, value_name = "ID", value_parser = service_account_id)]
    pub service_account_id: String,
    /// Key algorithm
    #[arg(long, value_enum, default_value_t = KeyAlgorithm::Rsa2048)]
    pub algorithm: KeyAlgorithm,
    /// Free-text description
    #[arg(long)]
    pub description: Option<String>,
    /// Write the key file to FILE (mode 0600); `-` prints it to standard output
    // No `-o`: that is `--format` (`-o json`) here, as in kubectl.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Replace FILE if it exists
    #[arg(long)]
    pub force: bool,
}

impl VerbHelp for KeyCreate {
    const CREATE: &'static str =
        "Create an authorized key and write its key file (the private key is shown only once)";
    const CREATE_AFTER_HELP: Option<&'static str> = Some(KEY_CREATE_HELP);
    const LIST: &'static str = "List authorized keys";
    const GET: &'static str = "Show an authorized key's metadata and public key";
    const DELETE: &'static str = "Delete an authorized key (JWTs it signs stop working at once)";
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct KeyFilter {
    #[arg(long, value_name = "ID", value_parser = service_account_id)]
    pub service_account_id: Option<String>,
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

pub type OAuthTokenVerb = Verbs<OAuthTokenCreate, OAuthTokenFilter, IdArg>;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct OAuthTokenCreate {
    /// User id (IBMid-…)
    #[arg(long, value_name = "ID", value_parser = user_id)]
    pub user_id: String,
    /// Free-text description
    #[arg(long)]
    pub description: Option<String>,
}

impl VerbHelp for OAuthTokenCreate {
    const CREATE: &'static str = "Create an OAuth token for a user (the token is shown only once)";
    const LIST: &'static str = "List OAuth tokens";
    const GET: &'static str = "Show an OAuth token's metadata";
    const DELETE: &'static str = "Delete (revoke) an OAuth token: it stops working at once";
    const DELETE_ALIASES: &'static [&'static str] = &["revoke"];
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct OAuthTokenFilter {
    #[arg(long, value_name = "ID", value_parser = user_id)]
    pub user_id: Option<String>,
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

pub type PolicyVerb = Verbs<PolicyCreate, PolicyFilter, IdArg>;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct PolicyCreate {
    /// Source identity: IBMid-…, iam-ServiceId-… (or ServiceId-…), iam-Profile-…, crn-<CRN>
    #[arg(long, value_name = "IAM_ID", value_parser = iam_id)]
    pub source: String,
    /// Target resource CRN, or a CRN prefix ending in *
    #[arg(long, value_name = "CRN")]
    pub target: String,
    /// Account of the target (default: the CRN's a/<account> scope, else your own)
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
    /// Free-text description
    #[arg(long)]
    pub description: Option<String>,
}

impl VerbHelp for PolicyCreate {
    const CREATE: &'static str =
        "Let an identity obtain tokens for a resource identity (iam-authz grant)";
    const LIST: &'static str = "List authorization policies";
    const GET: &'static str = "Show an authorization policy";
    const DELETE: &'static str =
        "Delete an authorization policy (tokens it allowed stop working at once)";
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct PolicyFilter {
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
    /// Only policies from this identity
    #[arg(long, value_name = "IAM_ID", value_parser = iam_id)]
    pub source: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

pub type ClientVerb = Verbs<ClientCreate, AccountFilter, IdArg>;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ClientCreate {
    /// Client id
    #[arg(long)]
    pub id: String,
    /// Display name
    #[arg(long)]
    pub name: Option<String>,
    /// Account managing the client (default: your own)
    #[arg(long, value_name = "ID", conflicts_with = "no_account")]
    pub account_id: Option<String>,
    /// Create a global client that belongs to no account
    #[arg(long)]
    pub no_account: bool,
}

impl VerbHelp for ClientCreate {
    const CREATE: &'static str = "Create an OAuth client (the secret is shown only once)";
    const LIST: &'static str = "List OAuth clients";
    const GET: &'static str = "Show an OAuth client";
    const DELETE: &'static str = "Delete an OAuth client";
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Manage everything in the resource
    Admin,
    /// Read everything in the resource
    Viewer,
    /// Mint tokens for the resource's service accounts
    #[value(name = "iam.serviceAccounts.tokenCreator")]
    TokenCreator,
    /// Use the resource's service accounts
    #[value(name = "iam.serviceAccounts.user")]
    ServiceAccountUser,
}

impl Role {
    /// The name the server takes (the core's spelling of the role).
    pub fn as_str(self) -> &'static str {
        use tessera_core::model::Role as Core;
        let role = match self {
            Role::Admin => Core::Admin,
            Role::Viewer => Core::Viewer,
            Role::TokenCreator => Core::TokenCreator,
            Role::ServiceAccountUser => Core::ServiceAccountUser,
        };
        role.as_str()
    }
}

/// Checks a resource's text form (`*`, `account/<id>`, `service-account/<id>`) at parse time,
/// so a typo is a usage error rather than a round trip to the server.
pub fn parse_resource(text: &str) -> Result<String, String> {
    let valid = text == "*"
        || text.split_once('/').is_some_and(|(kind, id)| {
            matches!(kind, "account" | "service-account") && !id.is_empty()
        });
    if valid {
        Ok(text.to_owned())
    } else {
        Err("expected `*`, `account/<id>` or `service-account/<id>`".to_owned())
    }
}

pub type AccessBindingVerb = Verbs<AccessBindingCreate, AccessBindingFilter, IdArg>;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct AccessBindingCreate {
    /// Who gets the role (IBMid-… or iam-ServiceId-…)
    #[arg(long, value_name = "IAM_ID", value_parser = iam_id)]
    pub subject_iam_id: String,
    #[arg(long, value_enum)]
    pub role: Role,
    /// `*`, `account/<id>` or `service-account/<id>`
    #[arg(long, value_parser = parse_resource)]
    pub resource: String,
}

impl VerbHelp for AccessBindingCreate {
    const CREATE: &'static str = "Grant a role on a resource";
    const LIST: &'static str = "List access bindings";
    const GET: &'static str = "Show an access binding";
    const DELETE: &'static str = "Revoke an access binding";
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct AccessBindingFilter {
    #[arg(long, value_name = "IAM_ID", value_parser = iam_id)]
    pub subject_iam_id: Option<String>,
    #[arg(long, value_parser = parse_resource)]
    pub resource: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tessera").chain(args.iter().copied()))
    }

    #[test]
    fn profile_conditions_encode_their_values_as_json() {
        let c = parse_condition("namespace equals prod").unwrap();
        assert_eq!(c["operator"], "EQUALS");
        assert_eq!(c["value"], "\"prod\"");
        assert_eq!(parse_condition("n EQUALS 42").unwrap()["value"], "42");
        assert_eq!(
            parse_condition("n EQUALS \"4 2\"").unwrap()["value"],
            "\"4 2\""
        );
        assert_eq!(
            parse_condition("pod IN a, b").unwrap()["value"],
            "[\"a\",\"b\"]"
        );
        assert_eq!(
            parse_condition("pod IN [\"x\"]").unwrap()["value"],
            "[\"x\"]"
        );
        assert!(parse_condition("pod EQUALS")
            .unwrap_err()
            .contains("CLAIM OPERATOR VALUE"));
    }

    fn iam(args: &[&str]) -> IamArgs {
        match parse(args).map(|cli| cli.command) {
            Ok(Command::Iam(iam)) => iam,
            Ok(_) => panic!("not an iam command: {args:?}"),
            Err(err) => panic!("{args:?}: {err}"),
        }
    }

    fn error_kind(args: &[&str]) -> Option<ErrorKind> {
        parse(args).err().map(|err| err.kind())
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn service_account_create() {
        let parsed = iam(&[
            "iam",
            "service-account",
            "create",
            "--name",
            "ci",
            "--description",
            "d",
        ]);
        assert_eq!(parsed.output.format, Format::Table);
        assert_eq!(
            parsed.resource,
            IamResource::ServiceAccount {
                verb: ServiceAccountVerb::Create(ServiceAccountCreate {
                    account_id: None,
                    name: "ci".into(),
                    description: Some("d".into()),
                })
            }
        );
    }

    #[test]
    fn global_flags_go_anywhere_below_iam() {
        let before = iam(&[
            "iam",
            "--format",
            "json",
            "--endpoint",
            "http://x",
            "user",
            "list",
        ]);
        let after = iam(&[
            "iam",
            "user",
            "list",
            "--format",
            "json",
            "--endpoint",
            "http://x",
        ]);
        assert_eq!(before, after);
        assert_eq!(before.output.format, Format::Json);
        assert_eq!(before.connection.endpoint.as_deref(), Some("http://x"));
        assert_eq!(before.connection.profile, None);
    }

    #[test]
    fn key_create_needs_an_output_and_knows_its_algorithms() {
        let parsed = iam(&[
            "iam",
            "key",
            "create",
            "--service-account-id",
            "ServiceId-1",
            "--output",
            "-",
        ]);
        let IamResource::Key {
            verb:
                KeyVerb::Create(KeyCreate {
                    algorithm,
                    output,
                    force,
                    ..
                }),
        } = parsed.resource
        else {
            panic!("wrong command");
        };
        assert_eq!(algorithm, KeyAlgorithm::Rsa2048);
        assert_eq!(output, PathBuf::from("-"));
        assert!(!force);

        let parsed = iam(&[
            "iam",
            "authorized-key",
            "create",
            "--service-account-id",
            "ServiceId-1",
            "--algorithm",
            "RSA_4096",
            "--output",
            "k.json",
            "--force",
            "-o",
            "json",
        ]);
        let IamResource::Key {
            verb: KeyVerb::Create(KeyCreate {
                algorithm, force, ..
            }),
        } = parsed.resource
        else {
            panic!("wrong command");
        };
        assert_eq!((algorithm.as_str(), force), ("RSA_4096", true));
        // `-o` is `--format` here too, not the key file.
        assert_eq!(parsed.output.format, Format::Json);

        assert_eq!(
            error_kind(&["iam", "key", "create", "--service-account-id", "S"]),
            Some(ErrorKind::MissingRequiredArgument)
        );
        assert_eq!(
            error_kind(&[
                "iam",
                "key",
                "create",
                "--service-account-id",
                "S",
                "--algorithm",
                "RSA_1024",
                "--output",
                "-"
            ]),
            Some(ErrorKind::InvalidValue)
        );
    }

    #[test]
    fn oauth_tokens_are_revoked_by_delete() {
        let parsed = iam(&["iam", "oauth-token", "revoke", "OAuthToken-1"]);
        assert!(matches!(
            parsed.resource,
            IamResource::OauthToken {
                verb: OAuthTokenVerb::Delete(IdArg { ref id })
            } if id == "OAuthToken-1"
        ));
        assert_eq!(
            error_kind(&["iam", "oauth-token", "create"]),
            Some(ErrorKind::MissingRequiredArgument)
        );
    }

    #[test]
    fn api_key_owner_is_exactly_one_of_three() {
        let parsed = iam(&[
            "iam",
            "api-key",
            "create",
            "--service-account-id",
            "ServiceId-1",
            "--name",
            "k",
        ]);
        let IamResource::ApiKey {
            verb:
                ApiKeyVerb::Create(ApiKeyCreate {
                    owner,
                    name,
                    description,
                }),
        } = parsed.resource
        else {
            panic!("wrong command");
        };
        assert_eq!(owner.owner_iam_id().as_deref(), Some("iam-ServiceId-1"));
        assert_eq!((name.as_str(), description), ("k", None));

        let parsed = iam(&[
            "iam",
            "api-key",
            "create",
            "--user-id",
            "IBMid-1",
            "--name",
            "k",
        ]);
        let IamResource::ApiKey {
            verb: ApiKeyVerb::Create(ApiKeyCreate { owner, .. }),
        } = parsed.resource
        else {
            panic!("wrong command");
        };
        assert_eq!(owner.owner_iam_id().as_deref(), Some("IBMid-1"));

        assert_eq!(
            error_kind(&["iam", "api-key", "create", "--name", "k"]),
            Some(ErrorKind::MissingRequiredArgument)
        );
        assert_eq!(
            error_kind(&[
                "iam",
                "api-key",
                "create",
                "--user-id",
                "IBMid-1",
                "--owner-iam-id",
                "x",
                "--name",
                "k"
            ]),
            Some(ErrorKind::ArgumentConflict)
        );
    }

    #[test]
    fn service_account_ids_in_iam_form_are_not_prefixed_twice() {
        for given in ["iam-ServiceId-1", "ServiceId-1"] {
            let parsed = iam(&[
                "iam",
                "api-key",
                "create",
                "--service-account-id",
                given,
                "--name",
                "k",
            ]);
            let IamResource::ApiKey {
                verb: ApiKeyVerb::Create(ApiKeyCreate { owner, .. }),
            } = parsed.resource
            else {
                panic!("not an api-key create");
            };
            assert_eq!(owner.owner_iam_id().as_deref(), Some("iam-ServiceId-1"));
        }
    }

    #[test]
    fn ids_are_taken_in_either_spelling() {
        let parsed = iam(&["iam", "service-account", "get", "iam-ServiceId-1"]);
        assert_eq!(
            parsed.resource,
            IamResource::ServiceAccount {
                verb: ServiceAccountVerb::Get(ServiceAccountRef {
                    id: Some("ServiceId-1".into()),
                    name: None,
                    account_id: None,
                })
            }
        );
        let parsed = iam(&["iam", "user", "rm", "iam-IBMid-A"]);
        assert_eq!(
            parsed.resource,
            IamResource::User {
                verb: UserVerb::Delete(UserRef {
                    id: Some("IBMid-A".into()),
                    email: None,
                    account_id: None,
                })
            }
        );
        let parsed = iam(&[
            "iam",
            "access-binding",
            "list",
            "--subject-iam-id",
            "ServiceId-2",
        ]);
        let IamResource::AccessBinding {
            verb: AccessBindingVerb::List(AccessBindingFilter { subject_iam_id, .. }),
        } = parsed.resource
        else {
            panic!("not a binding list");
        };
        assert_eq!(subject_iam_id.as_deref(), Some("iam-ServiceId-2"));
        // By name; an id and a name at once, or neither, is a usage error.
        let parsed = iam(&["iam", "service-account", "get", "--name", "ci"]);
        assert!(matches!(
            parsed.resource,
            IamResource::ServiceAccount {
                verb: ServiceAccountVerb::Get(ServiceAccountRef { id: None, .. })
            }
        ));
        assert!(parse(&["iam", "service-account", "get"]).is_err());
        assert!(parse(&[
            "iam",
            "service-account",
            "get",
            "ServiceId-1",
            "--name",
            "ci"
        ])
        .is_err());
    }

    #[test]
    fn access_binding_roles_and_resources() {
        let parsed = iam(&[
            "iam",
            "access-binding",
            "create",
            "--subject-iam-id",
            "iam-ServiceId-1",
            "--role",
            "iam.serviceAccounts.tokenCreator",
            "--resource",
            "service-account/ServiceId-2",
        ]);
        assert_eq!(
            parsed.resource,
            IamResource::AccessBinding {
                verb: AccessBindingVerb::Create(AccessBindingCreate {
                    subject_iam_id: "iam-ServiceId-1".into(),
                    role: Role::TokenCreator,
                    resource: "service-account/ServiceId-2".into(),
                })
            }
        );
        for bad_role in ["owner", "Admin"] {
            assert_eq!(
                error_kind(&[
                    "iam",
                    "access-binding",
                    "create",
                    "--subject-iam-id",
                    "x",
                    "--role",
                    bad_role,
                    "--resource",
                    "*"
                ]),
                Some(ErrorKind::InvalidValue)
            );
        }
        for bad_resource in ["account/", "planet/earth", "**"] {
            assert_eq!(
                error_kind(&["iam", "access-binding", "list", "--resource", bad_resource]),
                Some(ErrorKind::ValueValidation),
                "{bad_resource}"
            );
        }
        assert_eq!(parse_resource("*").as_deref(), Ok("*"));
        assert_eq!(parse_resource("account/abc").as_deref(), Ok("account/abc"));
        for role in [
            Role::Admin,
            Role::Viewer,
            Role::TokenCreator,
            Role::ServiceAccountUser,
        ] {
            assert_eq!(
                role.to_possible_value()
                    .map(|v| v.get_name().to_owned())
                    .as_deref(),
                Some(role.as_str())
            );
        }
    }

    #[test]
    fn get_delete_and_list_paging() {
        let parsed = iam(&["iam", "client", "get", "my-client"]);
        assert_eq!(
            parsed.resource,
            IamResource::Client {
                verb: ClientVerb::Get(IdArg {
                    id: "my-client".into()
                })
            }
        );
        let parsed = iam(&["iam", "enterprises", "rm", "e1"]);
        assert_eq!(
            parsed.resource,
            IamResource::Enterprise {
                verb: EnterpriseVerb::Delete(IdArg { id: "e1".into() })
            }
        );
        let parsed = iam(&[
            "iam",
            "api-key",
            "ls",
            "--owner-iam-id",
            "IBMid-1",
            "--limit",
            "5",
        ]);
        assert_eq!(
            parsed.resource,
            IamResource::ApiKey {
                verb: ApiKeyVerb::List(ApiKeyFilter {
                    account_id: None,
                    owner_iam_id: Some("IBMid-1".into()),
                    page: PageArgs {
                        limit: Some(5),
                        after: None
                    },
                })
            }
        );
        assert_eq!(
            error_kind(&["iam", "user", "list", "--limit", "0"]),
            Some(ErrorKind::ValueValidation)
        );
        assert_eq!(
            error_kind(&["iam", "user", "get"]),
            Some(ErrorKind::MissingRequiredArgument)
        );
        assert_eq!(
            error_kind(&["iam", "user", "frobnicate"]),
            Some(ErrorKind::InvalidSubcommand)
        );
    }

    #[test]
    fn user_and_client_create_flags() {
        let parsed = iam(&[
            "iam",
            "user",
            "create",
            "--name",
            "Ann",
            "--email",
            "ann@example.com",
            "--password-stdin",
        ]);
        assert_eq!(
            parsed.resource,
            IamResource::User {
                verb: UserVerb::Create(UserCreate {
                    account_id: None,
                    name: "Ann".into(),
                    email: "ann@example.com".into(),
                    password_stdin: true,
                    federated: false,
                })
            }
        );
        assert_eq!(
            error_kind(&[
                "iam",
                "client",
                "create",
                "--id",
                "c",
                "--account-id",
                "a",
                "--no-account"
            ]),
            Some(ErrorKind::ArgumentConflict)
        );
    }

    #[test]
    fn login_and_token() {
        match parse(&["login", "--endpoint", "http://x", "--profile", "dev"]).map(|c| c.command) {
            Ok(Command::Login(login)) => {
                assert_eq!(login.connection.endpoint.as_deref(), Some("http://x"));
                assert_eq!(login.connection.apikey, None);
                assert_eq!(login.connection.profile.as_deref(), Some("dev"));
            }
            _ => panic!("not parsed as login"),
        }
        match parse(&["token", "--format", "json", "--apikey", "k"]).map(|c| c.command) {
            Ok(Command::Token(token)) => {
                assert_eq!(token.output.format, Format::Json);
                assert_eq!(token.connection.apikey, Some(Secret::new("k")));
            }
            _ => panic!("not parsed as token"),
        }
        assert_eq!(
            error_kind(&[]),
            Some(ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand)
        );
        assert_eq!(
            error_kind(&["token", "--format", "yaml"]),
            Some(ErrorKind::InvalidValue)
        );
    }

    #[test]
    fn keys_list_and_rotate() {
        let keys = |args: &[&str]| match parse(args).map(|cli| cli.command) {
            Ok(Command::Keys(keys)) => keys,
            Ok(_) => panic!("not a keys command: {args:?}"),
            Err(err) => panic!("{args:?}: {err}"),
        };
        let listed = keys(&["keys", "list", "--format", "json", "--endpoint", "http://x"]);
        assert_eq!(listed.verb, KeysVerb::List);
        assert_eq!(listed.output.format, Format::Json);
        assert_eq!(listed.connection.endpoint.as_deref(), Some("http://x"));
        assert_eq!(keys(&["keys", "ls"]).verb, KeysVerb::List);
        assert_eq!(
            keys(&["keys", "rotate"]).verb,
            KeysVerb::Rotate {
                key_use: KeyUse::Jwt,
                immediate: false
            }
        );
        assert_eq!(
            keys(&["keys", "rotate", "--use", "yandex-iam", "--immediate"]).verb,
            KeysVerb::Rotate {
                key_use: KeyUse::YandexIam,
                immediate: true
            }
        );
        for key_use in [KeyUse::Jwt, KeyUse::YandexIam] {
            assert_eq!(
                key_use
                    .to_possible_value()
                    .map(|v| v.get_name().to_owned())
                    .as_deref(),
                Some(key_use.as_str())
            );
        }
        assert_eq!(
            error_kind(&["keys", "rotate", "--use", "rsa"]),
            Some(ErrorKind::InvalidValue)
        );
        assert_eq!(
            error_kind(&["keys"]),
            Some(ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand)
        );
    }

    #[test]
    fn store_commands_share_the_store_flags() {
        let store = tessera_server::StoreArgs {
            config: None,
            data_dir: Some("/srv/t".into()),
            database_url: None,
            database_schema: None,
        };
        match parse(&["migrate", "--data-dir", "/srv/t"]).map(|c| c.command) {
            Ok(Command::Migrate(args)) => assert_eq!(args.store, store),
            _ => panic!("not parsed as migrate"),
        }
        match parse(&[
            "migrate",
            "--database-url",
            "postgres://db/iam",
            "--database-schema",
            "tenant_a",
            "--config",
            "/etc/tessera.toml",
        ])
        .map(|c| c.command)
        {
            Ok(Command::Migrate(args)) => {
                assert_eq!(
                    args.store.database_url.as_deref(),
                    Some("postgres://db/iam")
                );
                assert_eq!(args.store.database_schema.as_deref(), Some("tenant_a"));
                assert_eq!(
                    args.store.config.as_deref(),
                    Some(std::path::Path::new("/etc/tessera.toml"))
                );
            }
            _ => panic!("not parsed as migrate"),
        }
        match parse(&["export", "--data-dir", "/srv/t", "--output", "dump.json"]).map(|c| c.command)
        {
            Ok(Command::Export(args)) => {
                assert_eq!(args.store, store);
                assert_eq!(args.output, Some(PathBuf::from("dump.json")));
            }
            _ => panic!("not parsed as export"),
        }
        match parse(&["export", "--data-dir", "/srv/t"]).map(|c| c.command) {
            Ok(Command::Export(args)) => assert_eq!(args.output, None, "stdout by default"),
            _ => panic!("not parsed as export"),
        }
        match parse(&[
            "import",
            "-i",
            "dump.json",
            "--data-dir",
            "/srv/t",
            "--master-key-file",
            "/run/key",
        ])
        .map(|c| c.command)
        {
            Ok(Command::Import(args)) => {
                assert_eq!(args.store, store);
                assert_eq!(args.input, Some(PathBuf::from("dump.json")));
                assert_eq!(args.master_key_file, Some(PathBuf::from("/run/key")));
            }
            _ => panic!("not parsed as import"),
        }
        // Serve takes the same store flags.
        match parse(&["serve", "--data-dir", "/srv/t", "--listen", "127.0.0.1:0"])
            .map(|c| c.command)
        {
            Ok(Command::Serve(args)) => assert_eq!(args.store, store),
            _ => panic!("not parsed as serve"),
        }
        // The store commands talk to no server: no connection flags.
        assert_eq!(
            error_kind(&["migrate", "--endpoint", "http://x"]),
            Some(ErrorKind::UnknownArgument)
        );
        assert_eq!(
            error_kind(&["import", "--output", "x"]),
            Some(ErrorKind::UnknownArgument)
        );
    }

    #[test]
    fn export_help_warns_about_the_master_key() {
        let mut command = Cli::command();
        for name in ["export", "import"] {
            let help = command
                .find_subcommand_mut(name)
                .unwrap()
                .render_long_help()
                .to_string();
            assert!(help.contains("same master key"), "{name}: {help}");
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let args = ConnectionArgs {
            endpoint: None,
            apikey: Some(Secret::new("hunter2")),
            cacert: None,
            profile: None,
        };
        assert!(!format!("{args:?}").contains("hunter2"));
    }
}
