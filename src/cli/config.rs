//! Saved profiles: `<config dir>/tessera/config.toml`, where the config dir is
//! `$TESSERA_CONFIG_DIR` if set, else the platform's (`~/.config` on Linux).
//!
//! The file holds API keys, so it is written `0600` in a `0700` directory, atomically (a
//! temporary file renamed over the old one), so that a crash never leaves a half-written file
//! and the new file never exists with looser permissions, whatever the old one had.
//!
//! Every function takes the path explicitly: tests use a temporary directory and never touch the
//! process environment.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The profile used without `--profile` or `TESSERA_PROFILE` (`tessera profile use`);
    /// `default` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_profile: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    /// Settings this version does not know, kept so that saving a profile does not drop them.
    #[serde(flatten)]
    pub other: toml::Table,
}

/// One saved login.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub endpoint: String,
    /// `None` after `tessera logout`: the endpoint (and CA) stay for the next login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apikey: Option<String>,
    /// PEM file of the CA that signed the server's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cacert: Option<PathBuf>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("endpoint", &self.endpoint)
            .field("apikey", &"<redacted>")
            .field("cacert", &self.cacert)
            .finish()
    }
}

/// The config file's path, given `$TESSERA_CONFIG_DIR` (`None` when unset or empty).
pub fn config_path(config_dir_env: Option<OsString>) -> Result<PathBuf> {
    let base = match config_dir_env.filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => dirs::config_dir()
            .context("cannot find the configuration directory; set TESSERA_CONFIG_DIR")?,
    };
    Ok(base.join("tessera").join("config.toml"))
}

/// Reads the config file; a missing file is an empty config.
pub fn load(path: &Path) -> Result<Config> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    // toml's messages quote the offending line, which may hold an API key: keep only the fact.
    toml::from_str(&text).map_err(|err| {
        let at = err
            .span()
            .map(|span| line_of(&text, span.start))
            .unwrap_or_default();
        anyhow::anyhow!("{} is not a valid Tessera config file{at}", path.display())
    })
}

fn line_of(text: &str, offset: usize) -> String {
    let line = text
        .get(..offset)
        .map_or(0, |before| before.matches('\n').count())
        + 1;
    format!(" (line {line})")
}

/// Writes `config` to `path` (mode 0600; the directory is created 0700 if missing).
pub fn save(path: &Path, config: &Config) -> Result<()> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let text = toml::to_string_pretty(config).context("cannot serialize the configuration")?;
    let file_name = path
        .file_name()
        .context("the config path has no file name")?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = write_private(&tmp, text.as_bytes()).and_then(|()| fs::rename(&tmp, path));
    if let Err(err) = written {
        let _ = fs::remove_file(&tmp);
        return Err(err).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// The profile name a command uses: the flag (or `TESSERA_PROFILE`), else the current profile,
/// else `default`.
pub fn profile_name(given: Option<&str>, config: &Config) -> String {
    given
        .map(str::to_owned)
        .or_else(|| config.current_profile.clone())
        .unwrap_or_else(|| DEFAULT_PROFILE.to_owned())
}

pub const DEFAULT_PROFILE: &str = "default";

/// Loads the file, applies `change` and saves it again.
pub fn update<T>(path: &Path, change: impl FnOnce(&mut Config) -> Result<T>) -> Result<T> {
    let mut config = load(path)?;
    let result = change(&mut config)?;
    save(path, &config)?;
    Ok(result)
}

/// Adds or replaces one profile in the file at `path`, keeping the others.
pub fn save_profile(path: &Path, name: &str, profile: Profile) -> Result<()> {
    if name.trim().is_empty() {
        bail!("the profile name must not be empty");
    }
    let mut config = load(path)?;
    config.profiles.insert(name.to_owned(), profile);
    save(path, &config)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // A leftover from a crashed run with the same pid would make `create_new` fail.
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Set at creation, so the key is never readable by others, not even for an instant.
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn profile(endpoint: &str, apikey: &str) -> Profile {
        Profile {
            endpoint: endpoint.into(),
            apikey: Some(apikey.into()),
            cacert: None,
        }
    }

    #[test]
    fn path_comes_from_the_variable_when_set() {
        assert_eq!(
            config_path(Some("/tmp/cfg".into())).unwrap(),
            PathBuf::from("/tmp/cfg/tessera/config.toml")
        );
        // An empty variable counts as unset.
        if let Ok(path) = config_path(Some(OsString::new())) {
            assert!(path.ends_with("tessera/config.toml"));
        }
    }

    #[test]
    fn missing_file_is_an_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            load(&dir.path().join("nope.toml")).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn profiles_round_trip_and_keep_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera").join("config.toml");
        save_profile(&path, "default", profile("https://a", "key-a")).unwrap();
        let mut dev = profile("http://127.0.0.1:8080", "key-b");
        dev.cacert = Some("/etc/ca.pem".into());
        save_profile(&path, "dev", dev.clone()).unwrap();
        save_profile(&path, "default", profile("https://a2", "key-a2")).unwrap();

        let config = load(&path).unwrap();
        assert_eq!(config.profiles.len(), 2);
        assert_eq!(config.profiles["default"], profile("https://a2", "key-a2"));
        assert_eq!(config.profiles["dev"], dev);
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn unknown_settings_survive_a_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        fs::write(
            &path,
            "color = \"never\"\n[profiles.default]\nendpoint = \"https://a\"\napikey = \"k\"\n",
        )
        .unwrap();
        save_profile(&path, "dev", profile("https://b", "k2")).unwrap();
        let config = load(&path).unwrap();
        assert_eq!(
            config.other.get("color").and_then(|v| v.as_str()),
            Some("never")
        );
        assert_eq!(config.profiles.len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn file_is_0600_and_directory_0700() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .join("nested")
            .join("tessera")
            .join("config.toml");
        // Even replacing a world-readable file yields a private one.
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        save_profile(&path, "default", profile("https://a", "k")).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);

        let fresh = dir.path().join("fresh").join("tessera").join("config.toml");
        save_profile(&fresh, "default", profile("https://a", "k")).unwrap();
        assert_eq!(mode(&fresh), 0o600);
        assert_eq!(mode(fresh.parent().unwrap()), 0o700);
    }

    #[test]
    fn broken_files_are_reported_without_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        fs::write(&path, "[profiles.default]\napikey = \"SECRET\" junk\n").unwrap();
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(!err.contains("SECRET"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        assert!(!format!("{:?}", profile("https://a", "SECRET")).contains("SECRET"));
    }

    #[test]
    fn the_current_profile_and_a_logged_out_profile_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        save_profile(&path, "dev", profile("https://b", "k2")).unwrap();
        assert_eq!(profile_name(None, &load(&path).unwrap()), "default");
        update(&path, |c| {
            c.current_profile = Some("dev".into());
            c.profiles.get_mut("dev").unwrap().apikey = None;
            Ok(())
        })
        .unwrap();
        let config = load(&path).unwrap();
        assert_eq!(profile_name(None, &config), "dev");
        assert_eq!(profile_name(Some("x"), &config), "x");
        assert_eq!(config.profiles["dev"].apikey, None);
        assert!(!fs::read_to_string(&path).unwrap().contains("k2"));
    }

    #[test]
    fn empty_profile_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(save_profile(&dir.path().join("c.toml"), " ", profile("https://a", "k")).is_err());
    }
}
