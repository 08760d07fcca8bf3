//! The metadata tree below `/computeMetadata/v1/` and its GCE renderings: leaves as text or
//! JSON, directories as listings (`name` or `name/` per line) or, with `recursive=true`, as one
//! JSON object whose built-in keys are camelCase (`numericProjectId`, `serviceAccounts`).

use super::config::{Attributes, YandexFile};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Clone)]
pub enum Node {
    /// `literal_keys`: children are user data (attributes, e-mails), not renamed to camelCase.
    Dir {
        children: BTreeMap<String, Node>,
        literal_keys: bool,
    },
    Leaf {
        text: String,
        json: Value,
    },
    /// Answered by a handler (`token`, `identity`): listed, never rendered in a tree.
    Dynamic,
}

impl Node {
    pub fn dir() -> Node {
        Node::Dir {
            children: BTreeMap::new(),
            literal_keys: false,
        }
    }

    fn literal_dir(map: &BTreeMap<String, String>) -> Node {
        Node::Dir {
            children: map
                .iter()
                .map(|(k, v)| (k.clone(), Node::text(v)))
                .collect(),
            literal_keys: true,
        }
    }

    pub fn text(value: &str) -> Node {
        Node::Leaf {
            text: value.to_owned(),
            json: Value::from(value),
        }
    }

    /// A number where it parses as one (GCE renders ids as numbers in JSON).
    fn number(value: &str) -> Node {
        let json = value
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(value));
        Node::Leaf {
            text: value.to_owned(),
            json,
        }
    }

    pub fn insert(&mut self, name: &str, node: Node) {
        if let Node::Dir { children, .. } = self {
            children.insert(name.to_owned(), node);
        }
    }

    /// The node at `segments` (no empty segments).
    pub fn find(&self, segments: &[&str]) -> Option<&Node> {
        let mut node = self;
        for segment in segments {
            match node {
                Node::Dir { children, .. } => node = children.get(*segment)?,
                _ => return None,
            }
        }
        Some(node)
    }

    /// `name` or `name/` per line.
    pub fn listing(&self) -> String {
        let mut out = String::new();
        if let Node::Dir { children, .. } = self {
            for (name, child) in children {
                out.push_str(name);
                if matches!(child, Node::Dir { .. }) {
                    out.push('/');
                }
                out.push('\n');
            }
        }
        out
    }

    /// The JSON rendering: leaves as their JSON value, directories recursively.
    pub fn to_json(&self) -> Value {
        match self {
            Node::Leaf { json, .. } => json.clone(),
            Node::Dynamic => Value::Null,
            Node::Dir {
                children,
                literal_keys,
            } => {
                let mut map = Map::new();
                for (name, child) in children {
                    if matches!(child, Node::Dynamic) {
                        continue;
                    }
                    let key = if *literal_keys {
                        name.clone()
                    } else {
                        camel_case(name)
                    };
                    map.insert(key, child.to_json());
                }
                Value::Object(map)
            }
        }
    }

    /// The text rendering of a tree: one `path value` line per leaf.
    pub fn to_flat_text(&self) -> String {
        let mut out = String::new();
        self.flatten("", &mut out);
        out
    }

    fn flatten(&self, prefix: &str, out: &mut String) {
        match self {
            Node::Leaf { text, .. } => {
                out.push_str(prefix);
                out.push(' ');
                out.push_str(&text.replace('\n', ","));
                out.push('\n');
            }
            Node::Dynamic => {}
            Node::Dir { children, .. } => {
                for (name, child) in children {
                    let path = if prefix.is_empty() {
                        name.clone()
                    } else {
                        format!("{prefix}/{name}")
                    };
                    child.flatten(&path, out);
                }
            }
        }
    }
}

/// `numeric-project-id` → `numericProjectId`.
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '-' || c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The static part of the tree (everything but service accounts), from the attributes.
pub fn build(attributes: &Attributes, started_at: &str) -> Node {
    let mut root = Node::dir();

    let mut instance = Node::dir();
    let i = &attributes.instance;
    if let Some(id) = &i.id {
        instance.insert("id", Node::number(id));
    }
    for (name, value) in [("name", &i.name), ("hostname", &i.hostname)] {
        if let Some(value) = value {
            instance.insert(name, Node::text(value));
        }
    }
    if let Some(zone) = &i.zone {
        let project = attributes.project.numeric_id.as_deref().unwrap_or("0");
        instance.insert(
            "zone",
            Node::text(&format!("projects/{project}/zones/{zone}")),
        );
    }
    if let Some(machine_type) = &i.machine_type {
        let project = attributes.project.numeric_id.as_deref().unwrap_or("0");
        instance.insert(
            "machine-type",
            Node::text(&format!("projects/{project}/machineTypes/{machine_type}")),
        );
    }
    instance.insert("attributes", Node::literal_dir(&i.attributes));
    if let Some(yandex) = &attributes.yandex {
        instance.insert("vendor", vendor(yandex, i.id.as_deref(), started_at));
    }
    root.insert("instance", instance);

    let mut project = Node::dir();
    if let Some(id) = &attributes.project.id {
        project.insert("project-id", Node::text(id));
    }
    if let Some(n) = &attributes.project.numeric_id {
        project.insert("numeric-project-id", Node::number(n));
    }
    project.insert(
        "attributes",
        Node::literal_dir(&attributes.project.attributes),
    );
    root.insert("project", project);

    if let Some(domain) = &attributes.universe_domain {
        let mut universe = Node::dir();
        universe.insert("universe-domain", Node::text(domain));
        root.insert("universe", universe);
    }
    root
}

/// Yandex Cloud's `instance/vendor/…`.
fn vendor(yandex: &YandexFile, instance_id: Option<&str>, started_at: &str) -> Node {
    let mut vendor = Node::dir();
    if let Some(cloud) = &yandex.cloud_id {
        vendor.insert("cloud-id", Node::text(cloud));
    }
    if let Some(folder) = &yandex.folder_id {
        vendor.insert("folder-id", Node::text(folder));
    }
    let document = json!({
        "instanceId": instance_id.unwrap_or_default(),
        "productCodes": null,
        "imageId": yandex.image_id.as_deref().unwrap_or_default(),
        "productIds": yandex.product_ids,
        "createdAt": yandex.created_at.as_deref().unwrap_or(started_at),
        "version": "2023-03-01",
    });
    let mut identity = Node::dir();
    identity.insert(
        "document",
        Node::Leaf {
            text: document.to_string(),
            json: document,
        },
    );
    vendor.insert("identity", identity);
    vendor
}

/// `service-accounts/` for one workload: `default/` and `<email>/`, each with `aliases`,
/// `email`, `scopes` and the dynamic `token` and `identity`.
pub fn service_accounts(email: &str, scopes: &[String]) -> Node {
    let account = || {
        let mut node = Node::dir();
        node.insert(
            "aliases",
            Node::Leaf {
                text: "default".into(),
                json: json!(["default"]),
            },
        );
        node.insert("email", Node::text(email));
        node.insert(
            "scopes",
            Node::Leaf {
                text: scopes.join("\n") + "\n",
                json: json!(scopes),
            },
        );
        node.insert("token", Node::Dynamic);
        node.insert("identity", Node::Dynamic);
        node
    };
    let mut dir = Node::Dir {
        children: BTreeMap::new(),
        literal_keys: true,
    };
    dir.insert("default", account());
    dir.insert(email, account());
    dir
}

/// A short, stable ETag of a rendered body (FNV-1a, 64 bits).
pub fn etag(body: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in body {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes() -> Attributes {
        let mut a = Attributes::default();
        a.instance.id = Some("4242".into());
        a.instance.zone = Some("zone-a".into());
        a.instance.attributes.insert("my-key".into(), "v".into());
        a.project.id = Some("proj".into());
        a.project.numeric_id = Some("1234".into());
        a
    }

    #[test]
    fn recursive_json_renames_built_in_keys_only() {
        let mut tree = build(&attributes(), "2026-01-01T00:00:00Z");
        tree.find(&["instance"]).unwrap();
        if let Node::Dir { children, .. } = &mut tree {
            if let Some(instance) = children.get_mut("instance") {
                instance.insert("service-accounts", service_accounts("a@b", &["s".into()]));
            }
        }
        let json = tree.to_json();
        assert_eq!(json["project"]["numericProjectId"], 1234);
        assert_eq!(json["project"]["projectId"], "proj");
        assert_eq!(json["instance"]["id"], 4242);
        assert_eq!(json["instance"]["zone"], "projects/1234/zones/zone-a");
        assert_eq!(json["instance"]["attributes"]["my-key"], "v");
        let sa = &json["instance"]["serviceAccounts"]["default"];
        assert_eq!(sa["email"], "a@b");
        assert_eq!(sa["aliases"], json!(["default"]));
        assert!(sa.get("token").is_none());
    }

    #[test]
    fn listings_mark_directories() {
        let tree = build(&attributes(), "x");
        assert_eq!(tree.listing(), "instance/\nproject/\n");
        let project = tree.find(&["project"]).unwrap();
        assert_eq!(
            project.listing(),
            "attributes/\nnumeric-project-id\nproject-id\n"
        );
        assert!(tree.find(&["universe"]).is_none());
    }

    #[test]
    fn etags_follow_the_content() {
        assert_eq!(etag(b"a"), etag(b"a"));
        assert_ne!(etag(b"a"), etag(b"b"));
    }
}
