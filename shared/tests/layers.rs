//! The dependency rule (docs/architecture.md), checked on the sources: every `crate::`
//! path in a module's non-test code must point at a layer that module may use.
//!
//! - `domain` uses nothing else in the crate; `ports` only `domain`;
//! - the toolkit (`signature`, `standard_webhooks`, `signed_url`, `http`, `rate_limit`,
//!   `webhook_body`, `link`, `refresh`, `telemetry`, `tls`)
//!   only `domain` and `ports` (and each other);
//! - a provider (`providers/<name>/`) uses those, never another provider, an adapter, the
//!   engine (`receiver`, `worker`) or the composition root (`config`, `consumer`);
//! - adapters use `domain`, `ports` and the toolkit, never a provider or the engine;
//! - the engine (`receiver`, `worker`, `links`) uses `domain`, `ports` and the toolkit, never a
//!   provider by name, an adapter or the composition root.

use std::path::{Path, PathBuf};

const TOOLKIT: &[&str] = &[
    "signature",
    "standard_webhooks",
    "signed_url",
    "http",
    "rate_limit",
    "webhook_body",
    "link",
    "refresh",
    "telemetry",
    "tls",
];

/// The crate-level modules a file may name, by where the file is.
fn allowed(rel: &str) -> Option<(String, Vec<String>)> {
    let top = rel.split(['/', '.']).next()?.to_string();
    let mut ok: Vec<String> = vec!["domain".into()];
    let layer = match top.as_str() {
        "domain" => return Some(("domain".into(), ok)),
        "ports" => {
            ok.push("ports".into());
            "ports".to_string()
        }
        t if TOOLKIT.contains(&t) => {
            ok.push("ports".into());
            ok.extend(TOOLKIT.iter().map(|s| s.to_string()));
            format!("toolkit `{t}`")
        }
        "providers" => {
            ok.push("ports".into());
            ok.extend(TOOLKIT.iter().map(|s| s.to_string()));
            let name = rel.split('/').nth(1)?.trim_end_matches(".rs").to_string();
            if name == "mod" {
                // The registry names every provider.
                ok.push("providers".into());
            } else {
                ok.push(format!("providers::{name}"));
            }
            format!("provider `{name}`")
        }
        "adapters" => {
            ok.extend(["ports", "adapters"].map(String::from));
            ok.extend(TOOLKIT.iter().map(|s| s.to_string()));
            "adapters".to_string()
        }
        "receiver" | "worker" | "links" => {
            ok.extend(["ports".to_string(), top.clone()]);
            ok.extend(TOOLKIT.iter().map(|s| s.to_string()));
            format!("engine `{top}`")
        }
        // The composition root and the crate root may use everything.
        _ => return None,
    };
    Some((layer, ok))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code before its unit tests (test files and modules may use fixtures from
/// anywhere).
fn production_code(text: &str) -> &str {
    let end = ["#[cfg(test)]\nmod tests", "#[cfg(test)]\nmod "].iter().filter_map(|m| text.find(m)).min();
    &text[..end.unwrap_or(text.len())]
}

/// Every `crate::a::b` path in the code (comments, doc links included, left out), as `a::b`.
fn crate_paths(code: &str) -> Vec<String> {
    let code: String = code.lines().filter(|l| !l.trim_start().starts_with("//")).flat_map(|l| [l, "\n"]).collect();
    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        found.push(path.trim_end_matches(':').to_string());
    }
    found
}

fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut bad = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap().to_string_lossy().replace('\\', "/");
        let name = file.file_name().unwrap().to_string_lossy();
        if rel.starts_with("proptests/") || name == "tests.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let Some((layer, ok)) = allowed(&rel) else { continue };
        let text = std::fs::read_to_string(&file).unwrap();
        let code = production_code(&text);
        if code.contains("super::super") {
            bad.push(format!("{rel}: `super::super` reaches outside its module ({layer})"));
        }
        for path in crate_paths(code) {
            if !ok.iter().any(|m| path == *m || path.starts_with(&format!("{m}::"))) {
                bad.push(format!("{rel}: {layer} may not use `crate::{path}`"));
            }
        }
    }
    bad
}

#[test]
fn the_dependency_rule_holds() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&src);
    assert!(bad.is_empty(), "dependency rule broken (see docs/architecture.md):\n{}", bad.join("\n"));
}

/// The files under `src` that name `krate` outside the composition root (`config`).
fn exporter_uses(src: &Path, krate: &str) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut bad: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(src).unwrap().to_string_lossy().replace('\\', "/"))
        .filter(|rel| rel != "config.rs" && !rel.starts_with("config/"))
        .filter(|rel| std::fs::read_to_string(src.join(rel)).unwrap().contains(krate))
        .collect();
    bad.sort();
    bad
}

/// The engine records through the `metrics` facade only; the CloudWatch (EMF) recorder
/// is installed by the composition root, for the Lambda functions.
#[test]
fn only_the_composition_root_names_the_metrics_exporter() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = exporter_uses(&src, "metrics_cloudwatch_embedded");
    assert!(bad.is_empty(), "the EMF exporter is named outside config (see docs/architecture.md): {bad:?}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(dir.path().join("config/emf.rs"), "use metrics_cloudwatch_embedded::Builder;\n").unwrap();
    std::fs::write(dir.path().join("worker.rs"), "use metrics_cloudwatch_embedded::Collector;\n").unwrap();
    assert_eq!(exporter_uses(dir.path(), "metrics_cloudwatch_embedded"), ["worker.rs"]);
}

#[test]
fn the_check_catches_what_it_should() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("domain/inbox.rs", "use crate::providers::apimp::Upstream;\n");
    write("ports/mod.rs", "use crate::adapters::sqs::MAX_DELAY;\nuse crate::domain::job::Job;\n");
    write("providers/katalo/reconcile.rs", "use crate::providers::apimp::X;\nuse crate::providers::katalo::Y;\n");
    write("worker.rs", "use crate::providers::katalo;\n#[cfg(test)]\nmod tests { use crate::adapters::memory; }\n");
    write("adapters/sqlite.rs", "use crate::receiver::random_id;\n");
    write("config.rs", "use crate::providers::ALL;\nuse crate::adapters::sqs;\n");
    write("ports/provider.rs", "//! See [`crate::providers::ALL`].\nuse crate::domain::job::Job;\n");
    let mut bad = violations(dir.path());
    bad.sort();
    assert_eq!(
        bad,
        [
            "adapters/sqlite.rs: adapters may not use `crate::receiver::random_id`",
            "domain/inbox.rs: domain may not use `crate::providers::apimp::Upstream`",
            "ports/mod.rs: ports may not use `crate::adapters::sqs::MAX_DELAY`",
            "providers/katalo/reconcile.rs: provider `katalo` may not use `crate::providers::apimp::X`",
            "worker.rs: engine `worker` may not use `crate::providers::katalo`",
        ]
    );
}
