//! The documentation's links resolve: every relative Markdown link in `README.md`,
//! `CHANGELOG.md` and `docs/**/*.md` names a file or folder that exists, and every
//! `#anchor` (on a `.md` target, or alone for the same file) names a heading of that
//! file, slugged as GitHub does. Also: the README stays short, and no page carries
//! working notes ("next sitting").
//!
//! Std only, so it also runs standalone:
//! `CARGO_MANIFEST_DIR=$PWD/tests rustc --edition 2024 --test tests/tests/doc_links.rs -o /tmp/doclinks && /tmp/doclinks`

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The README's length limit, in lines.
const README_MAX_LINES: usize = 350;

/// The repository root (the `tests` crate's parent folder).
fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().expect("the tests crate lives in the repository").to_path_buf()
}

/// The documentation files under `root`: `README.md`, `CHANGELOG.md` (when present) and
/// every `*.md` under `docs/`, sorted.
fn doc_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        ["README.md", "CHANGELOG.md"].iter().map(|name| root.join(name)).filter(|p| p.is_file()).collect();
    let mut docs = Vec::new();
    collect_markdown(&root.join("docs"), &mut docs);
    docs.sort();
    files.extend(docs);
    files
}

/// Every `*.md` file under `dir`, recursively (nothing when `dir` does not exist).
fn collect_markdown(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_markdown(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "md") {
            out.push(path);
        }
    }
}

/// The lines of a Markdown text that are not inside a fenced code block, with their
/// 1-based line numbers. The fence lines themselves are left out too.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(open), Some(m)) if open == m => fence = None,
            (None, None) => out.push((i + 1, line)),
            _ => {}
        }
    }
    out
}

/// `line` with each inline code span replaced by a placeholder, so that brackets
/// inside backticks are not read as links. An unclosed backtick stays text.
fn without_code_spans(line: &str) -> String {
    let parts: Vec<&str> = line.split('`').collect();
    let mut out = String::with_capacity(line.len());
    for (i, part) in parts.iter().enumerate() {
        let inside_code = i % 2 == 1 && i + 1 < parts.len();
        if inside_code {
            out.push_str("code");
        } else {
            if i % 2 == 1 {
                out.push('`');
            }
            out.push_str(part);
        }
    }
    out
}

/// The targets of the `[text](target)` links (and images) on one line, without their
/// optional title.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let bytes = line.as_bytes();
    let mut targets = Vec::new();
    let mut i = 0;
    while let Some(open) = line[i..].find("](").map(|at| i + at + 2) {
        let mut depth = 1;
        let mut end = open;
        while end < bytes.len() && depth > 0 {
            match bytes[end] {
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            }
            end += 1;
        }
        if depth == 0 {
            let inner = line[open..end - 1].trim();
            // `<target with spaces>`, else the first word (a title may follow).
            let target = match inner.strip_prefix('<') {
                Some(rest) => rest.split('>').next().unwrap_or(""),
                None => inner.split_whitespace().next().unwrap_or(""),
            };
            targets.push(target.to_string());
        }
        i = end.max(open);
    }
    targets
}

/// GitHub's anchor for a heading: lowercase, backticks and punctuation other than `-`
/// and `_` dropped, spaces turned into `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown text's headings (outside code blocks); a repeated heading
/// gets `-1`, `-2`… as on GitHub.
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (_, line) in prose_lines(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) {
            continue;
        }
        let Some(title) = line[hashes..].strip_prefix(' ') else { continue };
        let base = slug(title.trim_end_matches('#'));
        let count = seen.entry(base.clone()).or_insert(0);
        out.push(if *count == 0 { base.clone() } else { format!("{base}-{count}") });
        *count += 1;
    }
    out
}

/// Every broken link of the documentation under `root`, as `file:line: target (why)`.
fn broken_links(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for file in doc_files(root) {
        let shown = file.strip_prefix(root).unwrap_or(&file).display().to_string();
        let Ok(text) = fs::read_to_string(&file) else {
            problems.push(format!("{shown}: unreadable"));
            continue;
        };
        let folder = file.parent().unwrap_or(root);
        for (number, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if let Some(why) = check_target(&file, &text, folder, &target) {
                    problems.push(format!("{shown}:{number}: {target} ({why})"));
                }
            }
        }
    }
    problems
}

/// Why one link target of `file` (whose text is `text`) is broken, or `None`.
fn check_target(file: &Path, text: &str, folder: &Path, target: &str) -> Option<String> {
    let lower = target.to_ascii_lowercase();
    if ["http:", "https:", "mailto:"].iter().any(|scheme| lower.starts_with(scheme)) {
        return None;
    }
    if target.is_empty() {
        return Some("empty target".into());
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let path = path.split('?').next().unwrap_or("");
    let resolved = if path.is_empty() { file.to_path_buf() } else { folder.join(path) };
    if !resolved.exists() {
        return Some("no such file".into());
    }
    let anchor = anchor.filter(|a| !a.is_empty())?;
    if resolved.extension().is_none_or(|ext| ext != "md") {
        return None;
    }
    let other;
    let headings = if path.is_empty() {
        text
    } else {
        other = fs::read_to_string(&resolved).unwrap_or_default();
        &other
    };
    if anchors(headings).iter().any(|a| a == anchor) { None } else { Some("no such heading".into()) }
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let root = repo_root();
    assert!(root.join("README.md").is_file(), "no README.md at {}", root.display());
    let problems = broken_links(&root);
    assert!(problems.is_empty(), "broken documentation links:\n{}", problems.join("\n"));
}

#[test]
fn the_readme_is_short() {
    let text = fs::read_to_string(repo_root().join("README.md")).expect("README.md is readable");
    let lines = text.lines().count();
    assert!(lines <= README_MAX_LINES, "README.md has {lines} lines, more than {README_MAX_LINES}");
}

#[test]
fn no_page_carries_working_notes() {
    let root = repo_root();
    let offenders: Vec<String> = doc_files(&root)
        .into_iter()
        .filter(|file| fs::read_to_string(file).is_ok_and(|text| text.to_lowercase().contains("next sitting")))
        .map(|file| file.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "\"next sitting\" in: {offenders:?}");
}

#[test]
fn slugs_follow_github() {
    assert_eq!(
        slug("Fresh URLs on request (`generation.urls_refreshed`)"),
        "fresh-urls-on-request-generationurls_refreshed"
    );
    assert_eq!(slug("Receiver CPU per webhook (`scripts/perf.sh`)"), "receiver-cpu-per-webhook-scriptsperfsh");
    assert_eq!(slug("Front end, limits and protection"), "front-end-limits-and-protection");
    assert_eq!(anchors("# A\n```\n# Not a heading\n```\n## A\n"), ["a", "a-1"]);
    assert_eq!(
        link_targets("[a](b.md#c) `[x](y)` ![i](<d e.png> \"t\") [f](g(h).md)"),
        ["b.md#c", "d e.png", "g(h).md"]
    );
}

/// The checker itself: on a scratch tree, it reports a missing file and a missing
/// heading, and nothing else (not the external link, not the link in a code block).
#[test]
fn the_checker_catches_a_broken_link_and_a_broken_anchor() {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let root = std::env::temp_dir().join(format!("genhook-doc-links-{}-{nanos}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("docs")).expect("scratch folder");
    let readme = "# Title\n\n\
        [ok](docs/page.md#a-section) [same](#title) [web](https://example.com/x)\n\
        [missing](docs/nowhere.md)\n\
        ```\n[in code](nowhere-either.md)\n```\n";
    let page = "# Page\n\n## A section\n\n[back](../README.md) [bad anchor](../README.md#no-such-heading)\n";
    fs::write(root.join("README.md"), readme).expect("scratch README");
    fs::write(root.join("docs/page.md"), page).expect("scratch page");

    let problems = broken_links(&root);
    let _ = fs::remove_dir_all(&root);
    assert_eq!(
        problems,
        [
            "README.md:4: docs/nowhere.md (no such file)".to_string(),
            format!(
                "{}:5: ../README.md#no-such-heading (no such heading)",
                Path::new("docs").join("page.md").display()
            ),
        ]
    );
}
