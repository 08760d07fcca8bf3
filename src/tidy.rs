//! Repository hygiene checks that run with the unit tests (rust-analyzer's tidy idea): every
//! Rust module says what it is for in a `//!` doc comment.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == "target" || n == ".venv")
            {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "build.rs")
        {
            out.push(path);
        }
    }
}

#[test]
fn every_module_starts_with_a_doc_comment() {
    let files = repository_files(&[
        "src",
        "crates",
        "bench/src",
        "tests",
        "examples",
        "fuzz/src",
        "fuzz/fuzz_targets",
    ]);
    assert!(files.len() > 20, "found only {} files", files.len());
    let missing: Vec<&String> = files
        .iter()
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(relative, _)| relative)
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a //! doc comment: {missing:?}"
    );
}

/// The `.rs` files under `dirs` (relative to the repository), each as its path relative to the
/// repository and its text.
fn repository_files(dirs: &[&str]) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in dirs {
        rust_files(&root.join(dir), &mut files);
    }
    files
        .iter()
        .map(|path| {
            let relative = path
                .strip_prefix(root)
                .unwrap_or(path)
                .display()
                .to_string();
            (relative, std::fs::read_to_string(path).unwrap_or_default())
        })
        .collect()
}

/// The lines of `text` whose code (what stands before a `//`) `offends`, as `file:line: text`.
fn offending_code(relative: &str, text: &str, offends: impl Fn(&str) -> bool) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| offends(line.split("//").next().unwrap_or("")))
        .map(|(number, line)| format!("{relative}:{}: {}", number + 1, line.trim()))
        .collect()
}

/// Lines of the `.rs` files under `dir` (relative to the repository) that contain any of
/// `patterns`, outside the files named in `allowed` and outside comments.
fn offending_lines(dir: &str, patterns: &[&str], allowed: &[&str]) -> Vec<String> {
    let files = repository_files(&[dir]);
    assert!(!files.is_empty(), "no Rust files under {dir}");
    files
        .iter()
        .filter(|(relative, _)| !allowed.iter().any(|a| relative.ends_with(a)))
        .flat_map(|(relative, text)| {
            offending_code(relative, text, |code| {
                patterns.iter().any(|p| code.contains(p))
            })
        })
        .collect()
}

/// `SECURITY.md` rule 1: surfaces never check roles themselves; they ask
/// `tessera_core::authz::authorize`. Putting a role comparison back into a handler (as the
/// admin API, `ibm/authz.rs` and `yandex/service.rs` once had) fails this test.
#[test]
fn surfaces_ask_the_core_about_permissions() {
    let found = offending_lines(
        "crates/tessera-server/src",
        &[
            "Role::Admin",
            "Role::Viewer",
            "Role::TokenCreator",
            "Role::ServiceAccountUser",
            "has_role(",
            "is_global_admin(",
            "check_contains(",
            "effective_privileges(",
            ".require(",
        ],
        // The bootstrap creates the first administrator's binding; `whoami` shows (does not
        // decide on) whether the caller is the global administrator.
        &["src/bootstrap.rs", "src/admin/auth.rs"],
    );
    assert!(
        found.is_empty(),
        "permission checks outside tessera_core::authz:\n{}",
        found.join("\n")
    );
}

/// `SECURITY.md` rule 2: a `Principal` is built only by `tessera_core::authn`, the functions
/// that check credentials.
#[test]
fn principals_are_built_only_by_authn() {
    let found = offending_lines(
        "crates/tessera-core/src",
        &["Principal::from_parts(", "PrincipalParts {"],
        &["src/authn.rs", "src/principal.rs"],
    );
    assert!(
        found.is_empty(),
        "principals built outside authn:\n{}",
        found.join("\n")
    );
}

/// Whether `code` compares an `exp` or `nbf` value by hand: the word `exp`/`nbf` (alone or as
/// a field, `claims.exp`) next to `<`, `<=`, `>`, `>=`, or followed by `.saturating_…`/
/// `.checked_…` arithmetic. `=>` and `->` are not comparisons; `"exp"` (a claim name) is not the
/// word.
fn compares_exp_or_nbf(code: &str) -> bool {
    let bytes = code.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    for name in ["exp", "nbf"] {
        let mut from = 0;
        while let Some(found) = code[from..].find(name) {
            let start = from + found;
            let end = start + name.len();
            from = end;
            if (start > 0 && (word(bytes[start - 1]) || bytes[start - 1] == b'"'))
                || bytes.get(end).is_some_and(|&b| word(b) || b == b'"')
            {
                continue;
            }
            let after = code[end..].trim_start();
            // `claims.exp`, `self.grant.exp`: the comparison stands before the whole path.
            let before = code[..start]
                .trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                .trim_end();
            let compared_after = (after.starts_with('<') || after.starts_with('>'))
                && !after.starts_with("<<")
                && !after.starts_with(">>");
            let arithmetic_after =
                after.starts_with(".saturating_") || after.starts_with(".checked_");
            let compared_before = (before.ends_with('<')
                || before.ends_with('>')
                || before.ends_with("<=")
                || before.ends_with(">="))
                && !before.ends_with("=>")
                && !before.ends_with("->");
            if compared_after || arithmetic_after || compared_before {
                return true;
            }
        }
    }
    false
}

/// Issue 16: claim validation has one implementation, `tessera_verify::Validation`. A
/// hand-written `exp`/`nbf` comparison anywhere else (as the core, the server and the agent once
/// had, each with its own skew) fails this test. Tests, fuzz targets and the benchmark may
/// assert on times; production code asks `Validation`.
#[test]
fn claim_times_are_checked_only_by_validation() {
    let mut found = Vec::new();
    for (relative, text) in repository_files(&["src", "crates"]) {
        if relative.ends_with("crates/tessera-verify/src/validation.rs")
            || relative.ends_with("_tests.rs")
            || relative == "src/tidy.rs"
        {
            continue;
        }
        // Unit-test modules at the end of a file may assert on times.
        let production = text.split("#[cfg(test)]").next().unwrap_or("");
        found.extend(offending_code(&relative, production, compares_exp_or_nbf));
    }
    assert!(
        found.is_empty(),
        "exp/nbf compared outside tessera_verify::Validation:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_exp_comparison_detector_sees_what_it_should() {
    for code in [
        "if exp <= now {",
        "if grant.exp <= now {",
        "exp.saturating_add(SKEW) <= now",
        "if now >= claims.exp {",
        "nbf.checked_sub(1)",
        "if now > nbf {",
    ] {
        assert!(compares_exp_or_nbf(code), "{code}");
    }
    for code in [
        "PresentedToken::Jwt(c) => c.exp,",
        "fn f() -> exp {",
        "claims.get(\"exp\").and_then(Value::as_i64)",
        "expires_in: claims.exp - claims.iat,",
        "let exp = now + 3600;",
        "if expires_at <= now {",
    ] {
        assert!(!compares_exp_or_nbf(code), "{code}");
    }
}

/// The `cargo …` commands of a shell text, in order (comments and continuations aside).
fn cargo_commands<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    lines
        .map(|line| line.split(" #").next().unwrap_or("").trim())
        .filter(|line| line.starts_with("cargo "))
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn the_dockerfile_builds_as_the_readme_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("\n## Building from source\n")
        .nth(1)
        .expect("the README has a section \"Building from source\"");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```sh block in \"Building from source\"");
    let readme_steps = cargo_commands(block.lines());
    assert!(
        !readme_steps.is_empty(),
        "no cargo command in the README's build block"
    );

    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    // The build stage: from its FROM … AS build to the next FROM.
    let stage = dockerfile
        .split("\nFROM ")
        .find(|stage| {
            stage
                .lines()
                .next()
                .is_some_and(|l| l.ends_with(" AS build"))
        })
        .expect("a build stage (FROM … AS build)");
    let docker_steps = cargo_commands(stage.lines().filter_map(|line| line.strip_prefix("RUN ")));
    assert_eq!(
        docker_steps, readme_steps,
        "the Dockerfile's build stage must run the README's build commands"
    );
}

#[test]
fn the_license_file_is_the_licence_cargo_toml_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("license = \"Apache-2.0\""));
    let license = std::fs::read_to_string(root.join("LICENSE")).unwrap();
    let words: Vec<&str> = license.split_whitespace().take(5).collect();
    assert_eq!(words, ["Apache", "License", "Version", "2.0,", "January"]);
    assert!(
        license.contains("END OF TERMS AND CONDITIONS"),
        "the full text"
    );
}
