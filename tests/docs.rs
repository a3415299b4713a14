//! The documents stay true: the README fits its reader (at most 1,200 words, `before-build` in
//! its first 60 lines, no figures: they live in docs/benchmarks.md), its Library section names
//! only what its compiled example uses, and every relative link in the Markdown files points to
//! a file and heading that exist. (The command-line block is `--help`: tests/cli.rs; the tool
//! wheels docs/wheels.md lists are the release matrix's: tests/wheel.rs.)

mod support;

use std::path::{Path, PathBuf};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn readme() -> String {
    read(&support::repo().join("README.md"))
}

/// README.md and CONTRIBUTING.md and every file of docs/.
fn markdown_files() -> Vec<PathBuf> {
    let repo = support::repo();
    let mut files = vec![repo.join("README.md"), repo.join("CONTRIBUTING.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The section of `text` under the heading `## name`, up to the next `## `.
fn section<'a>(text: &'a str, name: &str) -> &'a str {
    let start = text
        .find(&format!("\n## {name}\n"))
        .unwrap_or_else(|| panic!("no section {name}"));
    let rest = &text[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

#[test]
fn the_readme_is_short_and_starts_with_before_build() {
    let text = readme();
    let words = text.split_whitespace().count();
    assert!(
        words <= 1200,
        "README.md has {words} words, more than 1,200"
    );
    let line = text
        .lines()
        .position(|l| l.contains("before-build"))
        .map(|i| i + 1);
    assert!(
        line.is_some_and(|l| l <= 60),
        "`before-build` first at line {line:?}"
    );
}

/// Numbers with a unit of time, size or rate, outside version numbers and tags.
fn figures(text: &str) -> Vec<String> {
    let figure = regex::Regex::new(
        r"(?i)\b\d[\d,.]*\s?(s|ms|seconds?|minutes?|min|KiB|MiB|MB|GB|kB|bytes|x|requests per second)\b",
    )
    .unwrap();
    let version = regex::Regex::new(r"^\d+\.\d+(\.\d+)*$").unwrap();
    figure
        .find_iter(text)
        .map(|m| m.as_str().to_string())
        .filter(|found| {
            let number = found.trim_end_matches(|c: char| !c.is_ascii_digit());
            // `2.0.31`, `3.11` are releases, not measures (a unit right after one is a figure),
            // and `2.0.x` is a release series.
            let series = found.ends_with(".x");
            let release = version.is_match(number) && found.ends_with(|c: char| c.is_ascii_digit());
            !series && !release
        })
        .collect()
}

#[test]
fn the_readme_holds_no_figures() {
    // Outside the command-line block: --help says "default 30" seconds in words of its own.
    let text = readme();
    let help_start = text.find("<!-- cli: patch_uwsgi --help -->").unwrap();
    let help_end = help_start + text[help_start..].find("\n```\n").unwrap();
    let prose = format!("{}{}", &text[..help_start], &text[help_end..]);
    let found = figures(&prose);
    assert!(found.is_empty(), "figures in README.md: {found:?}");
    // The measure itself.
    assert_eq!(
        figures("took 27 s, 1.4 ms and 9,611,086 bytes; 1.10x; uWSGI 2.0.31 (2.0.x) for 3.11"),
        ["27 s", "1.4 ms", "9,611,086 bytes", "1.10x"]
    );
}

#[test]
fn the_library_section_names_only_what_its_example_uses() {
    let text = readme();
    let library = section(&text, "Library");
    let code_start = library.find("```rust\n").expect("a rust example");
    let (prose, code) = library.split_at(code_start);
    let named = regex::Regex::new(r"`([A-Za-z_][A-Za-z_0-9]*(?:::[A-Za-z_0-9]+)?)`").unwrap();
    let names: Vec<&str> = named
        .captures_iter(prose)
        .map(|c| c.get(1).unwrap().as_str())
        .filter(|n| !n.contains("build.rs") && *n != "cargo")
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        assert!(
            code.contains(name),
            "the Library section names `{name}`, which its example does not use"
        );
    }
}

/// GitHub's anchor of a heading: lower case, spaces to `-`, only letters, digits, `-`, `_`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.push(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

#[test]
fn every_relative_link_points_to_a_file_and_heading_that_exist() {
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = read(&file);
        for m in link.captures_iter(&text) {
            let target = &m[1];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
            let linked = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !linked.exists() {
                broken.push(format!("{}: {target} (no such file)", file.display()));
                continue;
            }
            if !fragment.is_empty()
                && linked.is_file()
                && !anchors(&read(&linked)).iter().any(|a| a == fragment)
            {
                broken.push(format!("{}: {target} (no such heading)", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert_eq!(
        anchor("`bundle` and `verify --wheel` against what they replace (issue 28)"),
        "bundle-and-verify---wheel-against-what-they-replace-issue-28"
    );
}
