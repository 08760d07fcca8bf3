//! The schema migrations of each backend, embedded in the binary.
//!
//! `sqlx::migrate!` embeds them too, but through sqlx's proc-macro crate, which builds both
//! database drivers (and SQLite's C source) a second time for the build host. `include_str!`
//! embeds the same files, cargo rebuilds when one of them changes, and sqlx's runner gets the
//! same migrations (version and description from the file name, checksum of the text): a
//! database migrated by an older build is current for this one. The tests below hold the lists
//! to the folders.

use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};
use std::future::Future;
use std::pin::Pin;

/// One migration: its version, its file name without `.sql`, and its SQL.
pub(crate) type File = (i64, &'static str, &'static str);

/// The backends have the same migrations, version by version (each in its own dialect), so the
/// versions and file names are listed once and each folder's files are embedded from it.
macro_rules! migrations {
    ($($version:literal => $stem:literal),+ $(,)?) => {
        pub(crate) const SQLITE: &[File] = &[$(
            ($version, $stem, include_str!(concat!("../migrations/sqlite/", $stem, ".sql")))
        ),+];
        pub(crate) const POSTGRES: &[File] = &[$(
            ($version, $stem, include_str!(concat!("../migrations/postgres/", $stem, ".sql")))
        ),+];
    };
}

migrations!(
    1 => "0001_initial",
    2 => "0002_leases",
    3 => "0003_yandex_credentials",
    4 => "0004_profiles_issuers_policies_mfa",
    5 => "0005_tenancy_and_factor_replacement",
    6 => "0006_audit_accounts",
    7 => "0007_list_paging_indexes",
);

/// The newest schema version a list knows.
pub(crate) fn known_version(files: &[File]) -> i64 {
    files
        .iter()
        .map(|(version, _, _)| *version)
        .max()
        .unwrap_or(0)
}

/// sqlx's runner for a list of migrations.
pub(crate) async fn migrator(files: &'static [File]) -> Result<Migrator, MigrateError> {
    Migrator::new(Embedded(files)).await
}

#[derive(Debug)]
struct Embedded(&'static [File]);

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, stem, sql)| migration(version, stem, sql));
        Box::pin(std::future::ready(Ok(migrations.collect())))
    }
}

/// A migration as sqlx reads it from a file `<version>_<description>.sql`.
fn migration(version: i64, stem: &'static str, sql: &'static str) -> Migration {
    let description = stem
        .split_once('_')
        .map_or("", |(_, rest)| rest)
        .replace('_', " ");
    Migration::new(
        version,
        description.into(),
        MigrationType::Simple,
        sql.into(),
        sql.starts_with("-- no-transaction"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The embedded list is exactly what sqlx reads from the folder: same versions, in order,
    /// same descriptions, checksums and transaction modes.
    async fn same_as_folder(files: &'static [File], dir: &str) {
        let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir);
        let from_folder = Migrator::new(folder).await.unwrap();
        let embedded = migrator(files).await.unwrap();
        let key = |m: &Migration| {
            (
                m.version,
                m.description.to_string(),
                m.checksum.to_vec(),
                m.no_tx,
            )
        };
        let expected: Vec<_> = from_folder.iter().map(key).collect();
        let actual: Vec<_> = embedded.iter().map(key).collect();
        assert_eq!(
            actual, expected,
            "migrations/{dir} and the embedded list differ"
        );
        assert!(
            actual.windows(2).all(|w| w[0].0 < w[1].0),
            "in version order"
        );
        for (version, stem, _) in files {
            assert!(
                stem.starts_with(&format!("{version:04}_")),
                "{stem} is version {version}"
            );
        }
    }

    #[tokio::test]
    async fn embedded_migrations_are_the_folders() {
        same_as_folder(SQLITE, "sqlite").await;
        same_as_folder(POSTGRES, "postgres").await;
        assert_eq!(known_version(SQLITE), known_version(POSTGRES));
    }
}
