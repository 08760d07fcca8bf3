//! Operator commands: `tessera keys list/rotate` against a running server (scheduled and
//! immediate rotation, administrators only), `tessera migrate` on a fresh store, twice, and on a
//! schema from the future, and `tessera export`/`import` moving an installation into a fresh
//! SQLite data directory and a fresh PostgreSQL schema (skipped without
//! `TESSERA_TEST_DATABASE_URL`), where old API keys and old tokens keep working.

use crate::harness::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use tessera_client::api::admin::{AuditQuery, KeyState, KeyUse, ListQuery, SigningKeyView};
use tessera_client::resource::ServiceAccounts;

const ISSUER: &str = "http://tessera.operations.test/identity";

fn json_of(output: Output) -> Value {
    let text = ok(output);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

async fn jwks_kids(server: &TestServer) -> BTreeSet<String> {
    let jwks = server.get_json("/identity/keys").await;
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn introspect_active(server: &TestServer, bearer: &str, token: &str) -> bool {
    server.introspect(bearer, token).await["active"] == true
}

/// The keys of `key_use` in `state`, from a `keys list --format json` array.
fn kids(keys: &Value, key_use: KeyUse, state: KeyState) -> Vec<String> {
    let keys: Vec<SigningKeyView> = serde_json::from_value(keys.clone()).unwrap();
    keys.into_iter()
        .filter(|k| k.key_use == key_use && k.state == state)
        .map(|k| k.kid)
        .collect()
}

/// The ids of every service account `admin` sees on `server`.
async fn service_account_ids(server: &TestServer, admin: &str) -> BTreeSet<String> {
    server
        .client()
        .with_token(admin)
        .list::<ServiceAccounts>(&ListQuery::default())
        .await
        .unwrap()
        .into_iter()
        .map(|sa| sa.id)
        .collect()
}

#[tokio::test]
async fn operators_rotate_keys_on_schedule_or_at_once() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let keys = |args: &[&str]| {
        let mut all = vec!["keys"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--endpoint", &server.url, "--apikey", ADMIN_KEY]);
        tessera(work, &all, &[])
    };

    // Each use has one active key; no private material is shown.
    let before = json_of(keys(&["list", "--format", "json"]));
    let first = kids(&before, KeyUse::Jwt, KeyState::Active);
    assert_eq!(first.len(), 1, "{before}");
    assert_eq!(
        kids(&before, KeyUse::YandexIam, KeyState::Active).len(),
        1,
        "{before}"
    );
    for key in before.as_array().unwrap() {
        let fields: BTreeSet<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            fields,
            BTreeSet::from([
                "kid",
                "algorithm",
                "use",
                "state",
                "created_at",
                "retired_at",
                "published"
            ]),
            "{key}"
        );
        assert_eq!(key["published"], true);
    }
    let table = ok(keys(&["list"]));
    assert!(
        table.starts_with("KID") && table.contains(&first[0]) && table.contains("active"),
        "{table}"
    );
    let old_token = server.admin_token().await;
    assert_eq!(kid_of(&old_token), first[0]);

    // Scheduled: a successor is published at once but does not sign yet.
    let out = ok(keys(&["rotate"]));
    assert!(
        out.contains("next") && out.contains("publication lead"),
        "{out}"
    );
    let listed = json_of(keys(&["list", "--format", "json"]));
    let next = kids(&listed, KeyUse::Jwt, KeyState::Next);
    assert_eq!(next.len(), 1, "{listed}");
    assert_eq!(kids(&listed, KeyUse::Jwt, KeyState::Active), first);
    let published = jwks_kids(&server).await;
    assert!(
        published.contains(&next[0]) && published.contains(&first[0]),
        "{published:?}"
    );
    assert_eq!(kid_of(&server.admin_token().await), first[0]);
    // Asking again while a successor waits changes nothing.
    let again = json_of(keys(&["rotate", "--format", "json"]));
    assert_eq!(kids(&again, KeyUse::Jwt, KeyState::Next), next);

    // Immediate: a new key signs now; the old ones are retired but stay published.
    let rotated = json_of(keys(&["rotate", "--immediate", "--format", "json"]));
    let active = kids(&rotated, KeyUse::Jwt, KeyState::Active);
    assert_eq!(active.len(), 1, "{rotated}");
    assert!(!first.contains(&active[0]) && !next.contains(&active[0]));
    let retired = kids(&rotated, KeyUse::Jwt, KeyState::Retired);
    assert!(
        retired.contains(&first[0]) && retired.contains(&next[0]),
        "{rotated}"
    );
    for key in rotated.as_array().unwrap() {
        assert_eq!(key["retired_at"].is_string(), key["state"] == "retired");
    }
    let new_token = server.admin_token().await;
    assert_eq!(kid_of(&new_token), active[0]);
    let published = jwks_kids(&server).await;
    assert!(
        published.contains(&first[0]) && published.contains(&active[0]),
        "{published:?}"
    );
    assert!(introspect_active(&server, &new_token, &old_token).await);
    // The other use rotates on its own; the JWT signer stays.
    let yandex = json_of(keys(&["rotate", "--use", "yandex-iam", "--format", "json"]));
    assert_eq!(
        kids(&yandex, KeyUse::YandexIam, KeyState::Next).len(),
        1,
        "{yandex}"
    );
    assert_eq!(kids(&yandex, KeyUse::Jwt, KeyState::Active), active);

    // The audit log names the operator.
    let (status, audit) = server.admin_get("/v1/audit?limit=20", &new_token).await;
    assert_eq!(status, 200);
    let admin_id = jwt_payload(&new_token)["iam_id"].clone();
    assert!(
        audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "signing_key.create" && e["actor"] == admin_id),
        "{audit}"
    );

    // Bad input and non-administrators are refused.
    let (status, body) = server
        .admin_post("/v1/signing_keys/rotate", &new_token, json!({"use": "rsa"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("invalid_argument"))
    );
    let (_, sa_key) = server.service_account_with_key().await;
    let sa_token = server.token(&sa_key).await;
    let (status, body) = server.admin_get("/v1/signing_keys", &sa_token).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("permission_denied"))
    );
    let (status, _) = server
        .admin_post(
            "/v1/signing_keys/rotate",
            &sa_token,
            json!({"use": "jwt", "immediate": true}),
        )
        .await;
    assert_eq!(status, 403);
    // Exit 3: authorization refused.
    let denied = fails_with(
        3,
        tessera(
            work,
            &[
                "keys",
                "rotate",
                "--immediate",
                "--endpoint",
                &server.url,
                "--apikey",
                &sa_key,
            ],
            &[],
        ),
    );
    assert!(denied.contains("permission_denied"), "{denied}");
    let unchanged = json_of(keys(&["list", "--format", "json"]));
    assert_eq!(kids(&unchanged, KeyUse::Jwt, KeyState::Active), active);
}

/// A store for the `migrate` test: a data directory, or a schema of its own on PostgreSQL.
fn migrate_store(work: &Path) -> (Vec<String>, Option<PgSchema>) {
    if on_postgres() {
        let url =
            postgres_url().expect("TESSERA_E2E_STORE=postgres needs TESSERA_TEST_DATABASE_URL");
        let schema = PgSchema::new(&url);
        let args = vec![
            "--database-url".to_owned(),
            url,
            "--database-schema".to_owned(),
            schema.name.clone(),
        ];
        (args, Some(schema))
    } else {
        let dir = work.join("data").display().to_string();
        (vec!["--data-dir".to_owned(), dir], None)
    }
}

/// Records a migration this Tessera does not know, as a newer Tessera would have.
async fn plant_future_migration(work: &Path, schema: Option<&PgSchema>) {
    match schema {
        Some(schema) => {
            let pool = sqlx::PgPool::connect(&schema.url).await.unwrap();
            sqlx::query(&format!(
                "INSERT INTO \"{}\"._sqlx_migrations \
                 (version, description, success, checksum, execution_time) \
                 VALUES (9999, 'from the future', TRUE, '\\x00'::bytea, 0)",
                schema.name
            ))
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        None => {
            let path = work.join("data").join("tessera.db");
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO _sqlx_migrations \
                 (version, description, success, checksum, execution_time) \
                 VALUES (9999, 'from the future', 1, x'00', 0)",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
    }
}

#[tokio::test]
async fn migrate_creates_the_schema_once_and_refuses_a_newer_one() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let (store, schema) = migrate_store(work);
    let store: Vec<&str> = store.iter().map(String::as_str).collect();
    let migrate = |extra_env: &[(&str, &str)]| {
        let mut args = vec!["migrate"];
        args.extend_from_slice(&store);
        tessera(work, &args, extra_env)
    };

    let first = ok(migrate(&[]));
    assert!(first.contains("Schema version before: none"), "{first}");
    let after = first
        .lines()
        .find_map(|l| l.strip_prefix("Schema version after: "))
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    let known: i64 = after.parse().unwrap();
    assert!(known >= 2, "{first}");
    assert!(first.contains("Created the schema."), "{first}");
    if schema.is_none() {
        assert!(work.join("data").join("tessera.db").exists());
    }

    let second = ok(migrate(&[]));
    assert!(
        second.contains(&format!("Schema version before: {known}"))
            && second.contains(&format!("Schema version after: {known}"))
            && second.contains("Already up to date."),
        "{second}"
    );

    // The store is found from the environment as `serve` finds it.
    if schema.is_none() {
        let dir = work.join("data").display().to_string();
        let third = ok(tessera(work, &["migrate"], &[("TESSERA_DATA_DIR", &dir)]));
        assert!(third.contains("Already up to date."), "{third}");
    }

    plant_future_migration(work, schema.as_ref()).await;
    let refused = fails(migrate(&[]));
    assert!(
        refused.contains(&format!(
            "database schema version 9999 is newer than this Tessera knows ({known})"
        )),
        "{refused}"
    );
}

/// What must hold on a server running on an imported store.
async fn check_imported(
    target: &TestServer,
    apikey: &str,
    old_token: &str,
    service_accounts: &BTreeSet<String>,
) {
    // The old API key still works, and the old token still verifies.
    let admin = target.admin_token().await;
    target.token(apikey).await;
    assert!(introspect_active(target, &admin, old_token).await);
    assert!(jwks_kids(target).await.contains(&kid_of(old_token)));
    // The same service accounts.
    assert_eq!(&service_account_ids(target, &admin).await, service_accounts);
    // The import is on record.
    let audit = target
        .client()
        .with_token(admin)
        .list_audit(&AuditQuery {
            limit: Some(1000),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "installation.import" && e.actor == "system"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn an_installation_moves_to_sqlite_and_postgres_with_its_master_key() {
    let master = master_key();
    let env = [("TESSERA_MASTER_KEY", master.as_str())];
    let mut source = TestServer::start_with(&["--issuer", ISSUER], &env).await;
    let (_, apikey) = source.service_account_with_key().await;
    let old_token = source.token(&apikey).await;
    let admin = source.admin_token().await;
    let service_accounts = service_account_ids(&source, &admin).await;
    assert!(!service_accounts.is_empty());

    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let source_store = source.store_args();
    let mut export = vec!["export"];
    export.extend(source_store.iter().map(String::as_str));

    // To standard output, and to a file readable by its owner only.
    let streamed = json_of(tessera(work, &export, &[]));
    assert_eq!(streamed["format"], "tessera-export");
    let file = work.join("installation.json");
    let file_arg = file.display().to_string();
    let mut to_file = export.clone();
    to_file.extend(["--output", file_arg.as_str()]);
    let said = ok(tessera(work, &to_file, &[]));
    assert!(
        said.contains("Exported") && said.contains("same master key"),
        "{said}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let dump: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(dump["entities"], streamed["entities"]);
    assert!(dump["entities"]["api_keys"].as_array().unwrap().len() >= 2);
    source.stop();

    // Into a fresh SQLite data directory. The wrong master key is refused before any write.
    let sqlite_dir = work.join("imported");
    let sqlite_arg = sqlite_dir.display().to_string();
    let import = [
        "import",
        "--data-dir",
        sqlite_arg.as_str(),
        "--input",
        file_arg.as_str(),
    ];
    let other_key = master_key();
    let wrong = fails(tessera(
        work,
        &import,
        &[("TESSERA_MASTER_KEY", other_key.as_str())],
    ));
    assert!(wrong.contains("master key does not open"), "{wrong}");
    assert!(!sqlite_dir.join("tessera.db").exists());
    let imported = ok(tessera(work, &import, &env));
    assert!(imported.contains("Imported"), "{imported}");
    let refused = fails(tessera(work, &import, &env));
    assert!(
        refused.contains("the target store is not empty"),
        "{refused}"
    );
    {
        let target =
            TestServer::start_sqlite(&["--data-dir", &sqlite_arg, "--issuer", ISSUER], &env).await;
        check_imported(&target, &apikey, &old_token, &service_accounts).await;
    }

    // Into a fresh PostgreSQL schema, from standard input.
    let Some(url) = postgres_url() else {
        eprintln!("skipped the PostgreSQL import: TESSERA_TEST_DATABASE_URL is not set");
        return;
    };
    let schema = Arc::new(PgSchema::new(&url));
    let import = [
        "import",
        "--database-url",
        url.as_str(),
        "--database-schema",
        schema.name.as_str(),
    ];
    let bytes = std::fs::read(&file).unwrap();
    let imported = ok(tessera_with_stdin(work, &import, &env, &bytes));
    assert!(imported.contains("Imported"), "{imported}");
    let refused = fails(tessera_with_stdin(work, &import, &env, &bytes));
    assert!(
        refused.contains("the target store is not empty"),
        "{refused}"
    );
    let target = TestServer::start_node(schema.clone(), &["--issuer", ISSUER], &env).await;
    check_imported(&target, &apikey, &old_token, &service_accounts).await;
}
