//! Create forms as admin API requests: each [`Field`] of a resource becomes a member of the
//! JSON body (a string, a JSON value, or a list), and a trusted profile's identities, links and
//! claim rules are rows of the form ([`TrustRows`]). The console checks none of it: the admin
//! API validates the body and its 400 message is shown next to the form, with the values kept,
//! the rows in the order they were sent (so `rules[1].conditions[0]` names the row on screen).

use super::resources::{Field, Input, Resource};
use super::session::Form;
use maud::{html, Markup};
use serde_json::{json, Map, Value};
use tessera_core::trusted_profile::{CR_TYPES, OPERATORS, RULE_TYPE_CR};

/// Most rows of each kind read from a form (the admin API's own limits are lower).
const MAX_ROWS: usize = 50;
/// The kinds of trusted identity (`TrustedIdentityType` of the admin API).
const IDENTITY_TYPES: [&str; 3] = ["user", "serviceid", "crn"];
const LINK_FIELDS: [(&str, &str); 6] = [
    ("cr_type", "Type"),
    ("crn", "CRN"),
    ("namespace", "Namespace (IKS_SA, ROKS_SA)"),
    ("name", "Name (IKS_SA, ROKS_SA)"),
    ("component_type", "Component type (CE)"),
    ("component_name", "Component name (CE)"),
];

/// The JSON body of a create request of `resource` from `form`.
pub fn request_body(resource: &Resource, form: &Form) -> Value {
    let mut body = Map::new();
    for field in resource.create {
        if let Some(value) = form.get(field.name) {
            body.insert(field.name.to_owned(), encode(field, value));
        }
    }
    if resource.trust_editor {
        let rows = TrustRows::from_form(form);
        body.insert("identities".into(), rows.identities_json());
        body.insert("links".into(), rows.links_json());
        body.insert("rules".into(), rows.rules_json());
    }
    Value::Object(body)
}

fn encode(field: &Field, value: &str) -> Value {
    match field.input {
        Input::Text | Input::Password | Input::Choice(_) => Value::String(value.to_owned()),
        // Not JSON: sent as the string it is, for the admin API to say what it expected.
        Input::Json => serde_json::from_str(value).unwrap_or_else(|_| json!(value)),
        Input::Lines => Value::Array(
            value
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(|line| json!(line))
                .collect(),
        ),
    }
}

/// A trusted profile's rows as posted, empty rows dropped.
#[derive(Default)]
pub struct TrustRows {
    /// type, identifier, accounts (comma- or space-separated).
    identities: Vec<[String; 3]>,
    /// The values of [`LINK_FIELDS`].
    links: Vec<[String; 6]>,
    rules: Vec<RuleRows>,
}

#[derive(Default)]
struct RuleRows {
    name: String,
    cr_type: String,
    /// claim, operator, value.
    conditions: Vec<[String; 3]>,
}

fn value(form: &Form, name: &str) -> String {
    form.get(name).unwrap_or("").to_owned()
}

fn filled<const N: usize>(row: &[String; N]) -> bool {
    row.iter().any(|v| !v.is_empty())
}

impl TrustRows {
    pub fn from_form(form: &Form) -> TrustRows {
        let mut rows = TrustRows::default();
        for i in 0..MAX_ROWS {
            let identity = ["type", "identifier", "accounts"]
                .map(|f| value(form, &format!("identities.{i}.{f}")));
            if filled(&identity) {
                rows.identities.push(identity);
            }
            let link = LINK_FIELDS.map(|(f, _)| value(form, &format!("links.{i}.{f}")));
            if filled(&link) {
                rows.links.push(link);
            }
            let mut rule = RuleRows {
                name: value(form, &format!("rules.{i}.name")),
                cr_type: value(form, &format!("rules.{i}.cr_type")),
                conditions: Vec::new(),
            };
            for j in 0..MAX_ROWS {
                let condition = ["claim", "operator", "value"]
                    .map(|f| value(form, &format!("rules.{i}.conditions.{j}.{f}")));
                if filled(&condition) {
                    rule.conditions.push(condition);
                }
            }
            if !rule.name.is_empty() || !rule.cr_type.is_empty() || !rule.conditions.is_empty() {
                rows.rules.push(rule);
            }
        }
        rows
    }

    fn identities_json(&self) -> Value {
        Value::Array(
            self.identities
                .iter()
                .map(|[kind, identifier, accounts]| {
                    let accounts: Vec<&str> = accounts
                        .split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|a| !a.is_empty())
                        .collect();
                    let mut identity = json!({"type": kind, "identifier": identifier});
                    if !accounts.is_empty() {
                        identity["accounts"] = json!(accounts);
                    }
                    identity
                })
                .collect(),
        )
    }

    fn links_json(&self) -> Value {
        Value::Array(
            self.links
                .iter()
                .map(|link| {
                    let mut object = Map::new();
                    for ((name, _), value) in LINK_FIELDS.iter().zip(link) {
                        // cr_type and crn always (the API names them when empty).
                        if !value.is_empty() || matches!(*name, "cr_type" | "crn") {
                            object.insert((*name).to_owned(), json!(value));
                        }
                    }
                    Value::Object(object)
                })
                .collect(),
        )
    }

    fn rules_json(&self) -> Value {
        Value::Array(
            self.rules
                .iter()
                .map(|rule| {
                    let conditions: Vec<Value> = rule
                        .conditions
                        .iter()
                        .map(|[claim, operator, value]| {
                            json!({"claim": claim, "operator": operator, "value": value})
                        })
                        .collect();
                    let mut object = json!({
                        "type": RULE_TYPE_CR,
                        "cr_type": rule.cr_type,
                        "conditions": conditions,
                    });
                    if !rule.name.is_empty() {
                        object["name"] = json!(rule.name);
                    }
                    object
                })
                .collect(),
        )
    }

    /// The editor: the rows as sent, then `spare` empty rows of each kind (and of conditions
    /// in each rule).
    pub fn editor(&self, spare: usize) -> Markup {
        let identities = self.identities.len() + spare;
        let links = self.links.len() + spare;
        let rules = self.rules.len() + spare;
        let empty_rule = RuleRows::default();
        html! {
            fieldset {
                legend { "Trusted identities (who may assume the profile)" }
                @for i in 0..identities {
                    @let row = self.identities.get(i);
                    @let cell = |k: usize| row.map(|r| r[k].as_str()).unwrap_or("");
                    div.row {
                        @let n = i + 1;
                        (choice(&format!("identities.{i}.type"), &format!("Identity {n} (identities[{i}]): type"), &IDENTITY_TYPES, cell(0)))
                        (text_input(&format!("identities.{i}.identifier"), &format!("Identity {n}: identifier (IBMid-…, iam-ServiceId-…, crn:v1:…)"), cell(1)))
                        (text_input(&format!("identities.{i}.accounts"), &format!("Identity {n}: accounts (users only; comma-separated; empty: the user's own)"), cell(2)))
                    }
                }
            }
            fieldset {
                legend { "Compute-resource links" }
                @for i in 0..links {
                    @let row = self.links.get(i);
                    div.row {
                        @for (k, (name, label)) in LINK_FIELDS.iter().enumerate() {
                            @let current = row.map(|r| r[k].as_str()).unwrap_or("");
                            @let id = format!("links.{i}.{name}");
                            @if k == 0 {
                                (choice(&id, &format!("Link {} (links[{i}]): {label}", i + 1), &CR_TYPES, current))
                            } @else {
                                (text_input(&id, &format!("Link {}: {label}", i + 1), current))
                            }
                        }
                    }
                }
            }
            fieldset {
                legend { "Claim rules (every condition of a rule must hold)" }
                @for i in 0..rules {
                    @let rule = self.rules.get(i).unwrap_or(&empty_rule);
                    fieldset.rule {
                        legend { "Rule " (i + 1) " (rules[" (i) "])" }
                        div.row {
                            (text_input(&format!("rules.{i}.name"), &format!("Rule {}: name (optional)", i + 1), &rule.name))
                            (choice(&format!("rules.{i}.cr_type"), &format!("Rule {}: compute-resource type", i + 1), &CR_TYPES, &rule.cr_type))
                        }
                        @for j in 0..rule.conditions.len() + spare.max(1) {
                            @let row = rule.conditions.get(j);
                            @let cell = |k: usize| row.map(|r| r[k].as_str()).unwrap_or("");
                            div.row {
                                @let c = format!("Rule {}, condition {}", i + 1, j + 1);
                                (text_input(&format!("rules.{i}.conditions.{j}.claim"), &format!("{c} (conditions[{j}]): claim"), cell(0)))
                                (choice(&format!("rules.{i}.conditions.{j}.operator"), &format!("{c}: operator"), &OPERATORS, cell(1)))
                                (text_input(&format!("rules.{i}.conditions.{j}.value"), &format!("{c}: value (JSON: \"prod\" or [\"a\",\"b\"])"), cell(2)))
                            }
                        }
                    }
                }
            }
            p {
                button type="submit" name="more" value="rows" formnovalidate { "More rows" }
                " (keeps what you entered; empty rows are left out of the profile)"
            }
        }
    }
}

fn field_id(name: &str) -> String {
    format!("f-{}", name.replace('.', "-"))
}

fn text_input(name: &str, label: &str, current: &str) -> Markup {
    let id = field_id(name);
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) name=(name) type="text" value=(current) autocomplete="off";
        }
    }
}

/// A select of `options` with an empty first choice (an empty row stays empty); a `current`
/// value that is not an option is kept as one, so the admin API's message about it makes sense.
fn choice(name: &str, label: &str, options: &[&str], current: &str) -> Markup {
    let id = field_id(name);
    let unknown = !current.is_empty() && !options.contains(&current);
    html! {
        div.field {
            label for=(id) { (label) }
            select id=(id) name=(name) {
                option value="" selected[current.is_empty()] { "—" }
                @for option in options {
                    option value=(option) selected[*option == current] { (option) }
                }
                @if unknown { option value=(current) selected { (current) } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn rows_become_the_admin_apis_profile_document_without_the_empty_ones() {
        let rows = TrustRows::from_form(&form(&[
            ("identities.0.type", ""),
            ("identities.1.type", "user"),
            ("identities.1.identifier", "IBMid-1"),
            ("identities.1.accounts", "a, b"),
            ("links.3.cr_type", "IKS_SA"),
            ("links.3.crn", "crn:v1:x"),
            ("links.3.namespace", "default"),
            ("rules.2.cr_type", "CE"),
            ("rules.2.conditions.4.claim", "namespace"),
            ("rules.2.conditions.4.operator", "EQUALS"),
            ("rules.2.conditions.4.value", "\"prod\""),
        ]));
        assert_eq!(
            rows.identities_json(),
            json!([{"type": "user", "identifier": "IBMid-1", "accounts": ["a", "b"]}])
        );
        assert_eq!(
            rows.links_json(),
            json!([{"cr_type": "IKS_SA", "crn": "crn:v1:x", "namespace": "default"}])
        );
        assert_eq!(
            rows.rules_json(),
            json!([{"type": "Profile-CR", "cr_type": "CE", "conditions": [
                {"claim": "namespace", "operator": "EQUALS", "value": "\"prod\""}
            ]}])
        );
        // Rendered again in the order sent: the API's `rules[0]` is the first rule on screen.
        let editor = rows.editor(1).into_string();
        assert!(
            editor
                .contains("name=\"rules.0.conditions.0.claim\" type=\"text\" value=\"namespace\""),
            "{editor}"
        );
        assert!(editor.contains("name=\"rules.1.name\""), "a spare rule");
    }

    #[test]
    fn a_json_field_that_is_not_json_goes_to_the_api_as_a_string() {
        let field = Field {
            name: "jwks",
            label: "",
            input: Input::Json,
            required: false,
            hint: "",
        };
        assert_eq!(encode(&field, "{\"keys\": []}"), json!({"keys": []}));
        assert_eq!(encode(&field, "{nope"), json!("{nope"));
        let lines = Field {
            input: Input::Lines,
            ..field
        };
        assert_eq!(encode(&lines, "a\n\n b \n"), json!(["a", "b"]));
    }
}
