//! Rendering: human tables (one column per field, timestamps as the server gave them) or the
//! API's JSON, pretty-printed.
//!
//! Everything writes to a `&mut dyn Write` and returns `io::Result`, so a closed pipe
//! (`tessera iam user list | head -1`) surfaces as an error `main` can recognise instead of a
//! panic inside `println!`.

use super::args::Format;
use comfy_table::{presets, CellAlignment, Table};
use serde::Serialize;
use std::io::{self, Write};
use tessera_api::admin::{
    AccessBindingView, AccountView, ApiKeyView, AuditEvent, AuthorizationPolicyView,
    AuthorizedKeyView, ClientView, EnterpriseView, OAuthTokenView, ServiceAccountView,
    SigningKeyView, TotpEnrollView, TotpStatusView, TrustedIssuerView, TrustedProfileView,
    UserView, WhoAmI,
};
use tessera_server::maintenance::MigrateReport;
use tessera_store::transfer::ImportReport;

/// An object that renders as one table row.
pub trait Tabular: Serialize {
    /// Column titles: the object's field names (as serialized), in capitals.
    const HEADERS: &'static [&'static str];
    /// The row: by default each header's field as the API spells it (see [`cell`]).
    fn cells(&self) -> Vec<String> {
        let value = serde_json::to_value(self).unwrap_or_default();
        Self::HEADERS
            .iter()
            .map(|header| cell(&value[header.to_ascii_lowercase().as_str()]))
            .collect()
    }
    /// The secret a create answer carries, shown once below the table.
    fn one_time_secret(&self) -> Option<OneTimeSecret<'_>> {
        None
    }
}

/// A secret shown once (an API key, a client secret, an OAuth token) and what to call it.
pub struct OneTimeSecret<'a> {
    /// Before the secret on its line: `API key: …`.
    pub label: &'static str,
    /// In the warning: `Save the API key now …`.
    pub noun: &'static str,
    pub value: &'a str,
}

impl<'a> OneTimeSecret<'a> {
    /// The secret of a create answer, if it holds one.
    fn of(value: Option<&'a str>, label: &'static str, noun: &'static str) -> Option<Self> {
        value.map(|value| OneTimeSecret { label, noun, value })
    }
}

/// One field in a table: a string as it is, an enumeration as the API spells it
/// (`RSA_2048`, `yandex-iam`), a list joined with commas, `-` for none.
fn cell(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Ids joined with commas, or `-` for none.
fn joined<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    let ids: Vec<&str> = ids.collect();
    if ids.is_empty() {
        "-".to_owned()
    } else {
        ids.join(",")
    }
}

/// A saved profile as `tessera profile list|show` shows it: never its key, only whether one is
/// saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedProfileRow {
    pub name: String,
    pub endpoint: String,
    pub cacert: Option<String>,
    pub logged_in: bool,
    pub current: bool,
}

impl Tabular for SavedProfileRow {
    const HEADERS: &'static [&'static str] =
        &["CURRENT", "NAME", "ENDPOINT", "CACERT", "LOGGED_IN"];
    fn cells(&self) -> Vec<String> {
        vec![
            if self.current { "*" } else { "" }.to_owned(),
            self.name.clone(),
            self.endpoint.clone(),
            self.cacert.clone().unwrap_or_else(|| "-".to_owned()),
            if self.logged_in { "yes" } else { "no" }.to_owned(),
        ]
    }
}

impl Tabular for WhoAmI {
    const HEADERS: &'static [&'static str] =
        &["IAM_ID", "NAME", "ACCOUNT_ID", "SUB_TYPE", "GLOBAL_ADMIN"];
}

impl Tabular for EnterpriseView {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "CREATED_AT"];
}

impl Tabular for AccountView {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "ENTERPRISE_ID", "CREATED_AT"];
}

impl Tabular for UserView {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "IAM_ID",
        "ACCOUNT_ID",
        "NAME",
        "EMAIL",
        "FEDERATED",
        "HAS_PASSWORD",
        "CREATED_AT",
    ];
}

impl Tabular for ServiceAccountView {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "IAM_ID",
        "ACCOUNT_ID",
        "NAME",
        "DESCRIPTION",
        "CREATED_AT",
    ];
}

impl Tabular for TrustedProfileView {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "ACCOUNT_ID",
        "NAME",
        "IDENTITIES",
        "LINKS",
        "RULES",
        "CREATED_AT",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.account_id.clone(),
            self.name.clone(),
            joined(self.identities.iter().map(|i| i.identifier.as_str())),
            joined(self.links.iter().filter_map(|l| l.id.as_deref())),
            joined(self.rules.iter().filter_map(|r| r.id.as_deref())),
            self.created_at.clone(),
        ]
    }
}

impl Tabular for ApiKeyView {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "NAME",
        "DESCRIPTION",
        "OWNER_IAM_ID",
        "ACCOUNT_ID",
        "CREATED_AT",
    ];
    fn one_time_secret(&self) -> Option<OneTimeSecret<'_>> {
        OneTimeSecret::of(self.apikey.as_deref(), "API key", "API key")
    }
}

impl Tabular for TrustedIssuerView {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "ACCOUNT_ID",
        "NAME",
        "ISSUER_URL",
        "CR_TYPE",
        "AUDIENCES",
        "CRN",
        "CREATED_AT",
    ];
}

impl Tabular for AuthorizedKeyView {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "SERVICE_ACCOUNT_ID",
        "ACCOUNT_ID",
        "KEY_ALGORITHM",
        "DESCRIPTION",
        "CREATED_AT",
    ];
}

impl Tabular for OAuthTokenView {
    const HEADERS: &'static [&'static str] =
        &["ID", "USER_ID", "ACCOUNT_ID", "DESCRIPTION", "CREATED_AT"];
    fn one_time_secret(&self) -> Option<OneTimeSecret<'_>> {
        OneTimeSecret::of(self.token.as_deref(), "OAuth token", "OAuth token")
    }
}

impl Tabular for AuthorizationPolicyView {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "ACCOUNT_ID",
        "SOURCE_IAM_ID",
        "TARGET_CRN",
        "DESCRIPTION",
        "CREATED_AT",
    ];
}

impl Tabular for ClientView {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "ACCOUNT_ID", "CREATED_AT"];
    fn one_time_secret(&self) -> Option<OneTimeSecret<'_>> {
        OneTimeSecret::of(self.secret.as_deref(), "Client secret", "client secret")
    }
}

impl Tabular for AccessBindingView {
    const HEADERS: &'static [&'static str] =
        &["ID", "SUBJECT_IAM_ID", "ROLE", "RESOURCE", "CREATED_AT"];
}

impl Tabular for AuditEvent {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "AT",
        "ACTOR",
        "ACTION",
        "TARGET_KIND",
        "TARGET_ID",
        "ACCOUNT_ID",
        "DETAIL",
    ];
}

impl Tabular for SigningKeyView {
    const HEADERS: &'static [&'static str] = &[
        "KID",
        "ALGORITHM",
        "USE",
        "STATE",
        "CREATED_AT",
        "RETIRED_AT",
    ];
}

/// The width tables must fit in: set once by `cli::main` from the terminal standard output is
/// (`None` when it is a pipe or a file, and in tests). A process setting rather than a
/// parameter, because every writer below renders through [`table`].
static WIDTH: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();

pub fn set_terminal_width(width: Option<usize>) {
    let _ = WIDTH.set(width);
}

/// A borderless, kubectl-like table. Cells are never wrapped (ids must stay copy-pastable);
/// on a terminal too narrow for it, the widest columns are cut with `…`.
pub fn table<T: Tabular>(items: &[T]) -> String {
    table_within(items, WIDTH.get().copied().flatten())
}

/// Columns are this far apart.
const GAP: usize = 3;

/// [`table`] fitted into `width` columns, if given.
pub fn table_within<T: Tabular>(items: &[T], width: Option<usize>) -> String {
    let mut rows: Vec<Vec<String>> = items.iter().map(Tabular::cells).collect();
    if let Some(width) = width {
        fit(T::HEADERS, &mut rows, width);
    }
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_header(T::HEADERS.iter().copied());
    for row in rows {
        table.add_row(row);
    }
    let last = T::HEADERS.len().saturating_sub(1);
    for (index, column) in table.column_iter_mut().enumerate() {
        column.set_cell_alignment(CellAlignment::Left);
        // Three spaces between columns, none at the line ends.
        column.set_padding((0, if index == last { 0 } else { 3 }));
    }
    let mut text = table.to_string();
    // comfy-table pads the last column to its width; trailing blanks only get in the way.
    text = text
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    text
}

/// Cuts the cells of the widest columns (never below their header, nor below 8 characters),
/// other columns before ids, until the rows fit in `width`; a cut cell ends with `…`.
fn fit(headers: &[&str], rows: &mut [Vec<String>], width: usize) {
    let len = |text: &str| text.chars().count();
    let mut widths: Vec<usize> = headers.iter().map(|h| len(h)).collect();
    for row in rows.iter() {
        for (column, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(column) {
                *w = (*w).max(len(cell));
            }
        }
    }
    let floors: Vec<usize> = headers.iter().map(|h| len(h).max(8)).collect();
    let total =
        |widths: &[usize]| widths.iter().sum::<usize>() + GAP * widths.len().saturating_sub(1);
    let original = widths.clone();
    // Ids are cut last: a cut id cannot be copied into the next command.
    let is_id = |column: usize| headers[column] == "ID" || headers[column].ends_with("_ID");
    for ids_too in [false, true] {
        while total(&widths) > width {
            let widest = widths
                .iter()
                .enumerate()
                .filter(|(column, w)| **w > floors[*column] && (ids_too || !is_id(*column)))
                .max_by_key(|(_, w)| **w)
                .map(|(column, _)| column);
            let Some(column) = widest else {
                break;
            };
            widths[column] -= 1;
        }
    }
    for row in rows.iter_mut() {
        for (column, cell) in row.iter_mut().enumerate() {
            let (Some(&limit), Some(&full)) = (widths.get(column), original.get(column)) else {
                continue;
            };
            if limit < full && len(cell) > limit {
                let kept: String = cell.chars().take(limit.saturating_sub(1)).collect();
                *cell = format!("{kept}…");
            }
        }
    }
}

pub fn write_json<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    out.write_all(b"\n")
}

/// One object: a one-row table, or the JSON object.
pub fn write_one<T: Tabular + Serialize>(
    out: &mut dyn Write,
    format: Format,
    item: &T,
) -> io::Result<()> {
    match format {
        Format::Table => out.write_all(table(std::slice::from_ref(item)).as_bytes()),
        Format::Json => write_json(out, item),
    }
}

/// A list: a table (just the header when empty), or a JSON array.
pub fn write_list<T: Tabular + Serialize>(
    out: &mut dyn Write,
    format: Format,
    items: &[T],
) -> io::Result<()> {
    match format {
        Format::Table => out.write_all(table(items).as_bytes()),
        Format::Json => write_json(out, items),
    }
}

/// The answer to a delete: `Deleted <kind> <id>`, or `{"deleted": "<id>"}`.
pub fn write_deleted(out: &mut dyn Write, format: Format, kind: &str, id: &str) -> io::Result<()> {
    match format {
        Format::Table => writeln!(out, "Deleted {kind} {id}"),
        Format::Json => write_json(out, &serde_json::json!({ "deleted": id })),
    }
}

/// The key list after `tessera keys rotate`, with what happened in words (table format only).
pub fn write_rotated(
    out: &mut dyn Write,
    format: Format,
    keys: &[SigningKeyView],
    key_use: &str,
    immediate: bool,
) -> io::Result<()> {
    write_list(out, format, keys)?;
    if format == Format::Table {
        writeln!(out)?;
        if immediate {
            writeln!(
                out,
                "The newest active {key_use} key signs from now on; the keys it replaced are \
                 retired and stay published until the tokens they signed have expired."
            )?;
        } else {
            writeln!(
                out,
                "A next {key_use} key is published; it starts signing after the publication \
                 lead (twice the JWKS cache time)."
            )?;
        }
    }
    Ok(())
}

fn schema_version(version: Option<i64>) -> String {
    version.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

/// What `tessera migrate` did: the store, the schema version before and after, in words.
pub fn write_migrated(out: &mut dyn Write, report: &MigrateReport) -> io::Result<()> {
    writeln!(out, "Store: {}", report.store)?;
    writeln!(
        out,
        "Schema version before: {}",
        schema_version(report.before)
    )?;
    writeln!(
        out,
        "Schema version after: {}",
        schema_version(report.after)
    )?;
    let outcome = match report.before {
        None => "Created the schema.",
        Some(before) if Some(before) == report.after => "Already up to date.",
        Some(_) => "Applied the pending migrations.",
    };
    writeln!(out, "{outcome}")
}

/// What `tessera import` wrote, by kind of object.
pub fn write_imported(out: &mut dyn Write, report: &ImportReport, store: &str) -> io::Result<()> {
    writeln!(
        out,
        "Imported {} objects and {} server secrets into {store}.",
        report.total_entities, report.server_secrets
    )?;
    for (section, count) in &report.entities {
        if *count > 0 {
            writeln!(out, "  {section}: {count}")?;
        }
    }
    Ok(())
}

/// A created object: like [`write_one`], and for an object that comes with a secret shown only
/// once (an API key, a client secret), the secret on a line of its own below the table (easy
/// to copy) and a warning. The JSON is the whole answer, secret included.
pub fn write_created<T: Tabular + Serialize>(
    out: &mut dyn Write,
    format: Format,
    item: &T,
) -> io::Result<()> {
    match (format, item.one_time_secret()) {
        (Format::Table, Some(secret)) => {
            out.write_all(table(std::slice::from_ref(item)).as_bytes())?;
            writeln!(out)?;
            writeln!(out, "{}: {}", secret.label, secret.value)?;
            writeln!(
                out,
                "Save the {} now: it is shown only once and cannot be retrieved later.",
                secret.noun
            )
        }
        _ => write_one(out, format, item),
    }
}

impl Tabular for TotpStatusView {
    const HEADERS: &'static [&'static str] = &["USER_ID", "CONFIRMED", "CREATED_AT"];
}

/// After `iam user totp enroll`: the factor, then its secret and URI, shown only once.
pub fn write_totp_enrollment(
    out: &mut dyn Write,
    format: Format,
    enrolled: &TotpEnrollView,
) -> io::Result<()> {
    match format {
        Format::Json => write_json(out, enrolled),
        Format::Table => {
            let status = TotpStatusView {
                user_id: enrolled.user_id.clone(),
                confirmed: enrolled.confirmed,
                created_at: enrolled.created_at.clone(),
            };
            out.write_all(table(std::slice::from_ref(&status)).as_bytes())?;
            writeln!(out)?;
            writeln!(out, "Secret: {}", enrolled.secret.expose())?;
            writeln!(out, "URI: {}", enrolled.otpauth_uri.expose())?;
            writeln!(
                out,
                "Add it to an authenticator app now (it is shown only once), then confirm with \
                 `tessera iam user totp confirm {} --code <code>`.",
                enrolled.user_id
            )
        }
    }
}

/// After `iam key create --output FILE`: the key's metadata, then where its key file went.
pub fn write_key_file_written(
    out: &mut dyn Write,
    format: Format,
    key: &AuthorizedKeyView,
    path: &std::path::Path,
) -> io::Result<()> {
    match format {
        Format::Json => write_json(out, key),
        Format::Table => {
            out.write_all(table(std::slice::from_ref(key)).as_bytes())?;
            writeln!(out)?;
            writeln!(
                out,
                "Key file written to {} (readable by you only). It holds the private key, which \
                 the server does not keep: it cannot be downloaded again.",
                path.display()
            )
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn enterprise(id: &str, name: &str) -> EnterpriseView {
        EnterpriseView {
            id: id.into(),
            name: name.into(),
            created_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn render(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tables_have_field_columns_and_no_trailing_blanks() {
        let text = table(&[
            enterprise("e1", "Acme"),
            enterprise("e22", "Initech Corporation"),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("ID "), "{text}");
        assert!(
            lines[0].contains("NAME") && lines[0].ends_with("CREATED_AT"),
            "{text}"
        );
        assert!(lines[1].starts_with("e1 "), "{text}");
        assert!(lines.iter().all(|line| !line.ends_with(' ')), "{text}");
        // Columns line up.
        let column = |line: &str| line.find("2026").unwrap();
        assert_eq!(column(lines[1]), column(lines[2]));
        assert_eq!(lines[0].find("CREATED_AT").unwrap(), column(lines[1]));
    }

    #[test]
    fn tables_fit_a_narrow_terminal_by_cutting_the_widest_cells() {
        let long = "e".repeat(60);
        let items = [
            enterprise("Enterprise-1", &long),
            enterprise("Enterprise-2", "short"),
        ];
        let full = table_within(&items, None);
        assert!(full.contains(&long) && !full.contains('…'));
        assert_eq!(table(&items), full, "no width set: nothing is cut");
        let narrow = table_within(&items, Some(60));
        assert!(!narrow.contains(&long), "{narrow}");
        assert!(narrow.contains('…'), "{narrow}");
        assert!(narrow.lines().all(|l| l.chars().count() <= 60), "{narrow}");
        // Short cells and the header stay whole.
        assert!(
            narrow.contains("short") && narrow.contains("CREATED_AT"),
            "{narrow}"
        );
        // Wide enough: unchanged.
        assert_eq!(table_within(&items, Some(500)), full);
    }

    #[test]
    fn empty_lists_show_the_header_or_an_empty_array() {
        let empty: Vec<EnterpriseView> = Vec::new();
        assert_eq!(
            render(|out| write_list(out, Format::Table, &empty)),
            "ID   NAME   CREATED_AT\n"
        );
        assert_eq!(render(|out| write_list(out, Format::Json, &empty)), "[]\n");
    }

    #[test]
    fn json_is_the_object_pretty_printed() {
        let text = render(|out| write_one(out, Format::Json, &enterprise("e1", "Acme")));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["id"], "e1");
        assert!(text.contains("\n  \"name\": \"Acme\""), "{text}");
    }

    #[test]
    fn signing_keys_and_store_reports() {
        let key: SigningKeyView = serde_json::from_value(serde_json::json!({
            "kid": "20260101000000-abcdef", "algorithm": "RS256", "use": "jwt", "state": "retired",
            "created_at": "2026-01-01T00:00:00Z", "retired_at": "2026-02-01T00:00:00Z",
            "published": true
        }))
        .unwrap();
        let text = render(|out| {
            write_rotated(out, Format::Table, std::slice::from_ref(&key), "jwt", true)
        });
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("KID") && lines[0].ends_with("RETIRED_AT"),
            "{text}"
        );
        assert!(
            lines[1].contains("retired") && lines[1].ends_with("2026-02-01T00:00:00Z"),
            "{text}"
        );
        assert!(text.contains("signs from now on"), "{text}");
        let json = render(|out| write_rotated(out, Format::Json, &[key], "jwt", false));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value[0]["use"], "jwt");

        let report = MigrateReport {
            store: "sqlite:x/tessera.db".into(),
            before: None,
            after: Some(2),
            known: 2,
        };
        assert_eq!(
            render(|out| write_migrated(out, &report)),
            "Store: sqlite:x/tessera.db\nSchema version before: none\n\
             Schema version after: 2\nCreated the schema.\n"
        );
        let again = MigrateReport {
            before: Some(2),
            ..report
        };
        assert!(render(|out| write_migrated(out, &again)).ends_with("Already up to date.\n"));
    }

    #[test]
    fn deletes() {
        assert_eq!(
            render(|out| write_deleted(out, Format::Table, "service account", "ServiceId-1")),
            "Deleted service account ServiceId-1\n"
        );
        let json = render(|out| write_deleted(out, Format::Json, "service account", "ServiceId-1"));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            serde_json::json!({"deleted": "ServiceId-1"})
        );
    }

    #[test]
    fn created_api_keys_show_the_key_once_with_a_warning() {
        let created: ApiKeyView = serde_json::from_value(serde_json::json!({
            "id": "ApiKey-1", "name": "k", "description": "", "owner_iam_id": "iam-ServiceId-1",
            "account_id": "a", "created_at": "2026-01-01T00:00:00Z", "apikey": "the-key"
        }))
        .unwrap();
        let text = render(|out| write_created(out, Format::Table, &created));
        assert!(text.contains("\nAPI key: the-key\n"), "{text}");
        assert!(text.contains("shown only once"), "{text}");
        assert!(!text.lines().next().unwrap().contains("APIKEY"), "{text}");
        let json = render(|out| write_created(out, Format::Json, &created));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["apikey"], "the-key");
        assert_eq!(value["id"], "ApiKey-1");
        // Listed or fetched, the same object has no secret and no warning.
        let listed = ApiKeyView {
            apikey: None,
            ..created
        };
        let text = render(|out| write_created(out, Format::Table, &listed));
        assert!(!text.contains("shown only once"), "{text}");
    }
}
