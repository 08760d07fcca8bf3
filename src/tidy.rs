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
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "crates", "bench/src", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a //! doc comment: {missing:?}"
    );
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
