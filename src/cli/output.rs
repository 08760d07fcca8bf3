//! Rendering: human tables (one column per field, timestamps as the server gave them) or the
//! API's JSON, pretty-printed.
//!
//! Everything writes to a `&mut dyn Write` and returns `io::Result`, so a closed pipe
//! (`tessera iam user list | head -1`) surfaces as an error `main` can recognise instead of a
//! panic inside `println!`.

use super::args::Format;
use crate::client::{
    AccessBinding, Account, ApiKey, AuthorizationPolicy, AuthorizedKey, Enterprise, OAuthClient,
    OAuthToken, ServiceAccount, SigningKey, TotpEnrollment, TotpStatus, TrustedProfile, User,
    Whoami,
};
use comfy_table::{presets, CellAlignment, Table};
use serde::Serialize;
use std::io::{self, Write};
use tessera_server::maintenance::MigrateReport;
use tessera_store::transfer::ImportReport;

/// An object that renders as one table row.
pub trait Tabular {
    /// Column titles: the object's field names.
    const HEADERS: &'static [&'static str];
    fn cells(&self) -> Vec<String>;
}

fn opt(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".to_owned())
}

impl Tabular for Whoami {
    const HEADERS: &'static [&'static str] =
        &["IAM_ID", "NAME", "ACCOUNT_ID", "SUB_TYPE", "GLOBAL_ADMIN"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.iam_id.clone(),
            self.name.clone(),
            self.account_id.clone(),
            self.sub_type.clone(),
            self.global_admin.to_string(),
        ]
    }
}

impl Tabular for Enterprise {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "CREATED_AT"];
    fn cells(&self) -> Vec<String> {
        vec![self.id.clone(), self.name.clone(), self.created_at.clone()]
    }
}

impl Tabular for Account {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "ENTERPRISE_ID", "CREATED_AT"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            opt(&self.enterprise_id),
            self.created_at.clone(),
        ]
    }
}

impl Tabular for User {
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
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.iam_id.clone(),
            self.account_id.clone(),
            self.name.clone(),
            self.email.clone(),
            self.federated.to_string(),
            self.has_password.to_string(),
            self.created_at.clone(),
        ]
    }
}

impl Tabular for ServiceAccount {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "IAM_ID",
        "ACCOUNT_ID",
        "NAME",
        "DESCRIPTION",
        "CREATED_AT",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.iam_id.clone(),
            self.account_id.clone(),
            self.name.clone(),
            self.description.clone(),
            self.created_at.clone(),
        ]
    }
}

impl Tabular for TrustedProfile {
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
        let identities: Vec<&str> = self
            .identities
            .iter()
            .filter_map(|i| i["identifier"].as_str())
            .collect();
        let ids = |items: &[serde_json::Value]| {
            let ids: Vec<&str> = items.iter().filter_map(|i| i["id"].as_str()).collect();
            if ids.is_empty() {
                "-".to_owned()
            } else {
                ids.join(",")
            }
        };
        vec![
            self.id.clone(),
            self.account_id.clone(),
            self.name.clone(),
            if identities.is_empty() {
                "-".to_owned()
            } else {
                identities.join(",")
            },
            ids(&self.links),
            ids(&self.rules),
            self.created_at.clone(),
        ]
    }
}

impl Tabular for ApiKey {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "NAME",
        "DESCRIPTION",
        "OWNER_IAM_ID",
        "ACCOUNT_ID",
        "CREATED_AT",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.description.clone(),
            self.owner_iam_id.clone(),
            self.account_id.clone(),
            self.created_at.clone(),
        ]
    }
}

impl Tabular for crate::client::TrustedIssuer {
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
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.account_id.clone(),
            self.name.clone(),
            self.issuer_url.clone(),
            self.cr_type.clone(),
            self.audiences.join(","),
            self.crn.clone(),
            self.created_at.clone(),
        ]
    }
}

impl Tabular for AuthorizedKey {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "SERVICE_ACCOUNT_ID",
        "ACCOUNT_ID",
        "KEY_ALGORITHM",
        "DESCRIPTION",
        "CREATED_AT",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.service_account_id.clone(),
            self.account_id.clone(),
            self.key_algorithm.clone(),
            self.description.clone(),
            self.created_at.clone(),
        ]
    }
}

impl Tabular for OAuthToken {
    const HEADERS: &'static [&'static str] =
        &["ID", "USER_ID", "ACCOUNT_ID", "DESCRIPTION", "CREATED_AT"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.user_id.clone(),
            self.account_id.clone(),
            self.description.clone(),
            self.created_at.clone(),
        ]
    }
}

impl Tabular for AuthorizationPolicy {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "ACCOUNT_ID",
        "SOURCE_IAM_ID",
        "TARGET_CRN",
        "DESCRIPTION",
        "CREATED_AT",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.account_id.clone(),
            self.source_iam_id.clone(),
            self.target_crn.clone(),
            self.description.clone(),
            self.created_at.clone(),
        ]
    }
}

impl Tabular for OAuthClient {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "ACCOUNT_ID", "CREATED_AT"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            opt(&self.account_id),
            self.created_at.clone(),
        ]
    }
}

impl Tabular for AccessBinding {
    const HEADERS: &'static [&'static str] =
        &["ID", "SUBJECT_IAM_ID", "ROLE", "RESOURCE", "CREATED_AT"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.subject_iam_id.clone(),
            self.role.clone(),
            self.resource.clone(),
            self.created_at.clone(),
        ]
    }
}

impl Tabular for SigningKey {
    const HEADERS: &'static [&'static str] = &[
        "KID",
        "ALGORITHM",
        "USE",
        "STATE",
        "CREATED_AT",
        "RETIRED_AT",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.kid.clone(),
            self.algorithm.clone(),
            self.key_use.clone(),
            self.state.clone(),
            self.created_at.clone(),
            opt(&self.retired_at),
        ]
    }
}

/// A borderless, kubectl-like table. Cells are never wrapped: ids must stay copy-pastable.
pub fn table<T: Tabular>(items: &[T]) -> String {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_header(T::HEADERS.iter().copied());
    for item in items {
        table.add_row(item.cells());
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
    keys: &[SigningKey],
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

/// A created object that comes with a secret shown only once (an API key, a client secret):
/// the table, then the secret on a line of its own (easy to copy) and a warning.
pub fn write_created_with_secret<T: Tabular, J: Serialize>(
    out: &mut dyn Write,
    format: Format,
    item: &T,
    json: &J,
    secret_label: &str,
    secret_noun: &str,
    secret: &str,
) -> io::Result<()> {
    match format {
        Format::Json => write_json(out, json),
        Format::Table => {
            out.write_all(table(std::slice::from_ref(item)).as_bytes())?;
            writeln!(out)?;
            writeln!(out, "{secret_label}: {secret}")?;
            writeln!(
                out,
                "Save the {secret_noun} now: it is shown only once and cannot be retrieved later."
            )
        }
    }
}

impl Tabular for TotpStatus {
    const HEADERS: &'static [&'static str] = &["USER_ID", "CONFIRMED", "CREATED_AT"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.user_id.clone(),
            self.confirmed.to_string(),
            self.created_at.clone(),
        ]
    }
}

/// After `iam user totp enroll`: the factor, then its secret and URI, shown only once.
pub fn write_totp_enrollment(
    out: &mut dyn Write,
    format: Format,
    enrolled: &TotpEnrollment,
) -> io::Result<()> {
    match format {
        Format::Json => write_json(out, enrolled),
        Format::Table => {
            let status = TotpStatus {
                user_id: enrolled.user_id.clone(),
                confirmed: enrolled.confirmed,
                created_at: enrolled.created_at.clone(),
            };
            out.write_all(table(std::slice::from_ref(&status)).as_bytes())?;
            writeln!(out)?;
            writeln!(out, "Secret: {}", enrolled.secret)?;
            writeln!(out, "URI: {}", enrolled.otpauth_uri)?;
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
    key: &AuthorizedKey,
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
    use crate::client::{CreatedApiKey, Extra};

    fn enterprise(id: &str, name: &str) -> Enterprise {
        Enterprise {
            id: id.into(),
            name: name.into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            extra: Extra::new(),
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
    fn empty_lists_show_the_header_or_an_empty_array() {
        let empty: Vec<Enterprise> = Vec::new();
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
        let key: SigningKey = serde_json::from_value(serde_json::json!({
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
        let created: CreatedApiKey = serde_json::from_value(serde_json::json!({
            "id": "ApiKey-1", "name": "k", "description": "", "owner_iam_id": "iam-ServiceId-1",
            "account_id": "a", "created_at": "2026-01-01T00:00:00Z", "apikey": "the-key"
        }))
        .unwrap();
        let text = render(|out| {
            write_created_with_secret(
                out,
                Format::Table,
                &created.api_key,
                &created,
                "API key",
                "API key",
                &created.apikey,
            )
        });
        assert!(text.contains("\nAPI key: the-key\n"), "{text}");
        assert!(text.contains("shown only once"), "{text}");
        let json = render(|out| {
            write_created_with_secret(
                out,
                Format::Json,
                &created.api_key,
                &created,
                "API key",
                "API key",
                &created.apikey,
            )
        });
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["apikey"], "the-key");
        assert_eq!(value["id"], "ApiKey-1");
    }
}
