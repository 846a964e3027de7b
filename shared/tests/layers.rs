//! The dependency rule (docs/architecture.md), checked on the sources. A file's layer is
//! the folder it sits in under `src/` (no hand-kept list), and every `crate::` path in its
//! non-test code must point at a layer it may use:
//!
//! | folder | may use |
//! |---|---|
//! | `domain/` | `domain` |
//! | `ports/` | `domain`, `ports` |
//! | `toolkit/` | `domain`, `ports`, `toolkit` |
//! | `providers/<name>/` | those, `providers::common` and its own folder; `providers/mod.rs` (the registry) every provider |
//! | `providers/common/` | `domain`, `ports`, `toolkit`, `providers::common` |
//! | `engine/` | `domain`, `ports`, `toolkit`, `engine` (never a provider by name, an adapter or `config`) |
//! | `adapters/` | `domain`, `ports`, `toolkit`, `adapters` (never a provider or the engine) |
//! | `config/` | everything (the composition root) |
//!
//! Only `lib.rs` sits at the root: any other file there, or a folder that is no layer, is
//! reported. Tests (`tests.rs`, `tests/` folders, `#[cfg(test)] mod …` blocks, and the
//! domain's `testing/` support) may use fixtures from anywhere.

use std::path::{Path, PathBuf};

/// The layer folders, innermost first.
const LAYERS: &[&str] = &["domain", "ports", "toolkit", "providers", "engine", "adapters", "config"];

/// What a file's code may name: its layer's description and the path prefixes it may use,
/// or `None` for the composition root. `Err` names a file that is in no layer.
fn allowed(rel: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let mut parts = rel.split('/');
    let top = parts.next().unwrap_or_default();
    let Some(second) = parts.next() else {
        // A file at the root of `src/`.
        return if top == "lib.rs" { Ok(None) } else { Err(format!("{rel}: a module outside the layer folders")) };
    };
    let base = |extra: &[&str]| -> Vec<String> { extra.iter().map(|s| s.to_string()).collect() };
    let (layer, ok) = match top {
        "domain" => ("domain".to_string(), base(&["domain"])),
        "ports" => ("ports".to_string(), base(&["domain", "ports"])),
        "toolkit" => ("toolkit".to_string(), base(&["domain", "ports", "toolkit"])),
        "providers" => {
            let name = second.trim_end_matches(".rs");
            let mut ok = base(&["domain", "ports", "toolkit", "providers::common"]);
            if name == "mod" {
                // The registry names every provider.
                ok.push("providers".into());
            } else {
                ok.push(format!("providers::{name}"));
            }
            (format!("provider `{name}`"), ok)
        }
        "engine" => ("engine".to_string(), base(&["domain", "ports", "toolkit", "engine"])),
        "adapters" => ("adapters".to_string(), base(&["domain", "ports", "toolkit", "adapters"])),
        "config" => return Ok(None),
        other => return Err(format!("{rel}: `{other}/` is not a layer folder (one of {LAYERS:?})")),
    };
    Ok(Some((layer, ok)))
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

/// Every Rust file under `src`: its path relative to `src` (with `/`) and its text.
fn sources(src: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(src).unwrap().to_string_lossy().replace('\\', "/");
            (rel, std::fs::read_to_string(f).unwrap())
        })
        .collect()
}

/// Whether the file is test code: a `tests.rs`, anything in a `tests/` folder, or the
/// domain's test support (`domain/testing/`).
fn is_test_file(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    parts.last() == Some(&"tests.rs")
        || parts.iter().rev().skip(1).any(|p| *p == "tests")
        || rel.starts_with("domain/testing/")
}

/// The file's code before its unit tests (test modules may use fixtures from anywhere).
fn production_code(text: &str) -> &str {
    let end = text.find("#[cfg(test)]\nmod ").or_else(|| text.find("#[cfg(test)]\npub(crate) mod "));
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
    let mut bad = Vec::new();
    for (rel, text) in sources(src) {
        if is_test_file(&rel) {
            continue;
        }
        let (layer, ok) = match allowed(&rel) {
            Ok(Some(rule)) => rule,
            Ok(None) => continue,
            Err(e) => {
                bad.push(e);
                continue;
            }
        };
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
    bad.sort();
    bad
}

#[test]
fn the_dependency_rule_holds() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&src);
    assert!(bad.is_empty(), "dependency rule broken (see docs/architecture.md):\n{}", bad.join("\n"));
}

/// Where tests break the one placement convention (docs/architecture.md, "Where tests
/// go"): a module's tests are its child module `tests` (inline, `tests.rs` or `tests/`),
/// and the only other test-only module is the domain's `testing` support.
fn misplaced_tests(src: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    for (rel, text) in sources(src) {
        let name = rel.rsplit('/').next().unwrap_or_default();
        if name.ends_with("_tests.rs") || rel.split('/').any(|part| part == "proptests") {
            bad.push(format!("{rel}: tests go in the `tests` module of what they test"));
        }
        for declared in text.split("#[cfg(test)]\n").skip(1) {
            let declared = declared.trim_start_matches("pub(crate) ");
            let Some(rest) = declared.strip_prefix("mod ") else { continue };
            let module: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if module != "tests" && !(rel == "domain/mod.rs" && module == "testing") {
                bad.push(format!("{rel}: test module `{module}` outside `tests`"));
            }
        }
    }
    bad.sort();
    bad
}

#[test]
fn tests_follow_one_placement_convention() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = misplaced_tests(&src);
    assert!(bad.is_empty(), "tests out of place (see docs/architecture.md):\n{}", bad.join("\n"));
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("engine/receiver/mod.rs", "#[cfg(test)]\nmod apimp_tests;\n#[cfg(test)]\npub(crate) mod tests;\n");
    write("engine/receiver/apimp_tests.rs", "");
    write("proptests/mod.rs", "");
    write("domain/mod.rs", "#[cfg(test)]\npub(crate) mod testing;\n#[cfg(test)]\nmod tests { }\n");
    assert_eq!(
        misplaced_tests(dir.path()),
        [
            "engine/receiver/apimp_tests.rs: tests go in the `tests` module of what they test",
            "engine/receiver/mod.rs: test module `apimp_tests` outside `tests`",
            "proptests/mod.rs: tests go in the `tests` module of what they test",
        ]
    );
}

/// The files under `src` that name `krate` outside the composition root (`config/`).
fn exporter_uses(src: &Path, krate: &str) -> Vec<String> {
    let mut bad: Vec<String> = sources(src)
        .into_iter()
        .filter(|(rel, text)| !rel.starts_with("config/") && text.contains(krate))
        .map(|(rel, _)| rel)
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
    std::fs::create_dir_all(dir.path().join("engine/worker")).unwrap();
    std::fs::write(dir.path().join("config/emf.rs"), "use metrics_cloudwatch_embedded::Builder;\n").unwrap();
    std::fs::write(dir.path().join("engine/worker/mod.rs"), "use metrics_cloudwatch_embedded::Collector;\n").unwrap();
    assert_eq!(exporter_uses(dir.path(), "metrics_cloudwatch_embedded"), ["engine/worker/mod.rs"]);
}

/// The violations the old, list-based check caught (rewritten in the folder layout), and
/// the ones only a folder-based check can: a module at the root, a folder that is no layer.
#[test]
fn the_check_catches_what_it_should() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "pub mod domain;\n");
    write("domain/inbox.rs", "use crate::providers::apimp::upstream::Upstream;\n");
    write("ports/mod.rs", "use crate::adapters::sqs::MAX_DELAY;\nuse crate::domain::job::Job;\n");
    write(
        "providers/katalo/reconcile.rs",
        "use crate::providers::apimp::X;\nuse crate::providers::katalo::Y;\nuse crate::providers::common::refresh::Refresh;\n",
    );
    write("providers/katalo/tests.rs", "use crate::engine::worker::Worker;\n");
    write("providers/apimp/tests/worker.rs", "use crate::adapters::memory::MemoryStore;\n");
    write(
        "engine/worker/mod.rs",
        "use crate::providers::katalo;\n#[cfg(test)]\nmod tests { use crate::adapters::memory; }\n",
    );
    write("engine/links/mod.rs", "use crate::config::Env;\nuse crate::engine::answer::error;\n");
    write("toolkit/http/mod.rs", "use crate::engine::receiver::Receiver;\nuse crate::toolkit::http::tls;\n");
    write("adapters/sqlite/mod.rs", "use crate::engine::receiver::random_id;\n");
    write("config/mod.rs", "use crate::providers::ALL;\nuse crate::adapters::sqs;\n");
    write("ports/provider.rs", "//! See [`crate::providers::ALL`].\nuse crate::domain::job::Job;\n");
    write("providers/mod.rs", "use crate::providers::katalo::Katalo;\n");
    write("worker.rs", "use crate::domain::job::Job;\n");
    write("helpers/text.rs", "pub fn clip() {}\n");
    assert_eq!(
        violations(dir.path()),
        [
            "adapters/sqlite/mod.rs: adapters may not use `crate::engine::receiver::random_id`",
            "domain/inbox.rs: domain may not use `crate::providers::apimp::upstream::Upstream`",
            "engine/links/mod.rs: engine may not use `crate::config::Env`",
            "engine/worker/mod.rs: engine may not use `crate::providers::katalo`",
            "helpers/text.rs: `helpers/` is not a layer folder (one of [\"domain\", \"ports\", \"toolkit\", \"providers\", \"engine\", \"adapters\", \"config\"])",
            "ports/mod.rs: ports may not use `crate::adapters::sqs::MAX_DELAY`",
            "providers/katalo/reconcile.rs: provider `katalo` may not use `crate::providers::apimp::X`",
            "toolkit/http/mod.rs: toolkit may not use `crate::engine::receiver::Receiver`",
            "worker.rs: a module outside the layer folders",
        ]
    );
}
