//! One process at a time per data directory: `serve`, and the commands that write a store or
//! replace it (`migrate`, `import`, `restore`, `admin recover` on the embedded store), take an
//! exclusive lock on `<data dir>/tessera.lock` and hold it for as long as they run. A second one
//! fails at once, naming the directory and the holder's PID. The operating system releases the
//! lock when its holder exits, however it exits (even `kill -9`), so a stale lock file never
//! blocks a start. Commands that only read a running installation (`export`, `backup`) take no
//! lock: SQLite lets them read while the server writes.

use anyhow::Context;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "tessera.lock";

/// Who holds a data directory's lock, as the holder wrote it into the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    /// The command that holds it (`serve`, `import`, …).
    pub command: Option<String>,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "data directory {dir} is in use by another Tessera process{}; stop it first, or use another \
         --data-dir",
        describe(holder)
    )]
    Busy { dir: PathBuf, holder: Holder },
    #[error("cannot lock data directory {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn describe(holder: &Holder) -> String {
    match (&holder.pid, &holder.command) {
        (Some(pid), Some(command)) => format!(" (PID {pid}, `tessera {command}`)"),
        (Some(pid), None) => format!(" (PID {pid})"),
        _ => String::new(),
    }
}

/// The exclusive lock on a data directory, held until dropped (or the process ends).
#[derive(Debug)]
pub struct DataDirLock {
    // Never read: holding the open file is what holds the lock.
    _file: File,
    dir: PathBuf,
}

impl DataDirLock {
    /// Takes the lock of `dir` (which must exist) for `command`, or fails at once if another
    /// process holds it.
    pub fn acquire(dir: &Path, command: &str) -> Result<DataDirLock, LockError> {
        let io = |source| LockError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        let mut file = open_lock_file(dir).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Busy {
                    dir: dir.to_path_buf(),
                    holder: read_holder(&mut file),
                })
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // Ours now: say who holds it, for the error of the next one who tries.
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}\n{command}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(DataDirLock {
            _file: file,
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Takes the lock of a directory that may not exist yet: creates it (mode 0700) first.
pub fn acquire_creating(dir: &Path, command: &str) -> anyhow::Result<DataDirLock> {
    crate::bootstrap::create_private_dir(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    Ok(DataDirLock::acquire(dir, command)?)
}

/// Who holds the lock of `dir` now, if anyone (for commands that refuse a running server's
/// directory without taking the lock themselves).
pub fn holder(dir: &Path) -> Option<Holder> {
    let mut file = File::open(dir.join(LOCK_FILE)).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(_) => Some(read_holder(&mut file)),
    }
}

fn open_lock_file(dir: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(dir.join(LOCK_FILE))
}

fn read_holder(file: &mut File) -> Holder {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.take(256).read_to_string(&mut text);
    let mut lines = text.lines();
    Holder {
        pid: lines.next().and_then(|l| l.trim().parse().ok()),
        command: lines
            .next()
            .map(|l| l.trim().to_owned())
            .filter(|c| !c.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path(), "serve").unwrap();
        assert_eq!(first.dir(), dir.path());
        let err = DataDirLock::acquire(dir.path(), "import").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&format!("PID {}", std::process::id())),
            "{message}"
        );
        assert!(message.contains("`tessera serve`"), "{message}");
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        assert_eq!(
            holder(dir.path()).and_then(|h| h.pid),
            Some(std::process::id())
        );
        drop(first);
        assert_eq!(holder(dir.path()), None);
        let again = DataDirLock::acquire(dir.path(), "migrate").unwrap();
        drop(again);
    }
}
