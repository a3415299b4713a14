//! The documents stay true to the repository:
//!
//! - the README fits its reader: at most 1,200 words, `before-build` in its first 60 lines, no
//!   figures (they live in docs/benchmarks.md), and its Library section names only what its
//!   compiled example uses;
//! - every relative link in README.md, CONTRIBUTING.md and docs/*.md points to a file of the
//!   repository, and to a heading of that file when it has an `#anchor`;
//! - the tool-wheel targets the documents name are those of scripts/build-wheels.sh.
//!
//! Each check is a function from text to a list of problems. The tests run it on the real files
//! and on planted faults, so that a check which can no longer fail is noticed too. (The
//! command-line block is `--help`: tests/cli.rs.)

mod support;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use regex::Regex;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn readme() -> String {
    read(&support::repo().join("README.md"))
}

/// README.md and CONTRIBUTING.md of `root`, and every Markdown file of its docs/.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md"), root.join("CONTRIBUTING.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
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

// The README's shape.

const README_MAX_WORDS: usize = 1200;
const BEFORE_BUILD_BY_LINE: usize = 60;

/// What is wrong with the README's shape: too many words (split on whitespace, as `wc -w`
/// counts them), or no `before-build` in its first lines.
fn readme_shape(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let words = text.split_whitespace().count();
    if words > README_MAX_WORDS {
        problems.push(format!("{words} words, more than {README_MAX_WORDS}"));
    }
    match text.lines().position(|l| l.contains("before-build")) {
        Some(i) if i < BEFORE_BUILD_BY_LINE => {}
        Some(i) => problems.push(format!(
            "`before-build` first at line {}, after line {BEFORE_BUILD_BY_LINE}",
            i + 1
        )),
        None => problems.push("no `before-build`".to_string()),
    }
    problems
}

#[test]
fn the_readme_is_short_and_shows_before_build_early() {
    let problems = readme_shape(&readme());
    assert!(problems.is_empty(), "README.md: {problems:?}");
}

#[test]
fn the_readme_shape_check_catches_planted_faults() {
    let words = |n: usize| vec!["word"; n].join(" ");
    let early = format!("before-build\n{}\n", words(README_MAX_WORDS - 1));
    let late = format!("{}before-build\n", "line\n".repeat(BEFORE_BUILD_BY_LINE));
    let cases: [(&str, String, usize); 4] = [
        ("fits", early.clone(), 0),
        ("one word too many", format!("{early} word"), 1),
        ("before-build on line 61", late, 1),
        ("no before-build", words(3), 1),
    ];
    for (name, text, problems) in cases {
        assert_eq!(readme_shape(&text).len(), problems, "{name}");
    }
    assert!(readme_shape(&format!("x\n{}", "line\n".repeat(58) + "before-build")).is_empty());
}

// Figures.

/// Numbers followed by a unit of time, size, ratio or rate. A number must not continue a word,
/// a version or a tag (`cp311`, `2.0.31`, `manylinux_2_28`, `UTF-8`), so its first digit follows
/// the start of a line or a character other than a letter, digit, `_`, `.` or `-`; `1 - 2 s`
/// and `1-2 s` ranges still count.
fn figures(text: &str) -> Vec<String> {
    let figure = Regex::new(concat!(
        r"(?m)(?:^|[^\w.-]|\d-)",
        r"(\d[\d,]*(?:\.\d+)?[ \x{a0}]?",
        r"(?:ms|s|secs?|seconds?|min|mins|minutes?|h|hours?",
        r"|[kK]B|KiB|MB|MiB|GB|GiB|bytes|x|×|%",
        r"|requests per second|requests/s|req/s))",
        r"(?:[^\w.]|\.(?:\s|$)|$)",
    ))
    .unwrap();
    figure
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .collect()
}

#[test]
fn the_readme_holds_no_figures() {
    let found = figures(&readme());
    assert!(
        found.is_empty(),
        "figures in README.md (they belong in docs/benchmarks.md): {found:?}"
    );
}

#[test]
fn the_figure_check_tells_figures_from_versions() {
    let figures_found = [
        ("took 27 s,", "27 s"),
        ("in 1.4 ms", "1.4 ms"),
        ("9,611,086 bytes", "9,611,086 bytes"),
        ("1.10x faster", "1.10x"),
        ("0.12× of pip", "0.12×"),
        ("21,835 requests per second", "21,835 requests per second"),
        ("about 8.6 MB.", "8.6 MB"),
        ("9,484 KiB", "9,484 KiB"),
        ("3 minutes", "3 minutes"),
        ("2 seconds", "2 seconds"),
        ("27 - 28 s per Python", "28 s"),
        ("1.3 % apart", "1.3 %"),
    ];
    for (text, figure) in figures_found {
        assert_eq!(figures(text), [figure], "{text:?}");
    }
    let not_figures = [
        "uWSGI 2.0.31 for CPython 3.11",
        "2.0.x releases",
        "3.14 and 3.15: 2.0.30",
        "manylinux_2_28_x86_64 and musllinux_1_2",
        "x86_64, -m64, cp311-cp311",
        "non-UTF-8 bytes",
        "(default 30) seconds",
        "exit 2 with the file named",
        "2 shapes, 14 platforms",
        "pip 24.1 or newer",
    ];
    for text in not_figures {
        assert_eq!(figures(text), Vec::<String>::new(), "{text:?}");
    }
}

// The Library section.

#[test]
fn the_library_section_names_only_what_its_example_uses() {
    let text = readme();
    let library = section(&text, "Library");
    let code_start = library.find("```rust\n").expect("a rust example");
    let (prose, code) = library.split_at(code_start);
    let named = Regex::new(r"`([A-Za-z_][A-Za-z_0-9]*(?:::[A-Za-z_0-9]+)?)`").unwrap();
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

// Links.

/// `text` with fenced code blocks and inline code spans blanked out (newlines kept, so that
/// offsets and line numbers stay): a link or heading there is an example, not a link.
fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fenced = false;
    for line in text.split_inclusive('\n') {
        let fence = {
            let t = line.trim_start();
            t.starts_with("```") || t.starts_with("~~~")
        };
        if fence || fenced {
            out.extend(line.chars().map(|c| if c == '\n' { c } else { ' ' }));
        } else {
            out.push_str(line);
        }
        if fence {
            fenced = !fenced;
        }
    }
    let span = Regex::new(r"`[^`]*`").unwrap();
    span.replace_all(&out, |c: &regex::Captures| {
        c[0].chars()
            .map(|ch| if ch == '\n' { ch } else { ' ' })
            .collect::<String>()
    })
    .into_owned()
}

/// GitHub's anchor of a heading's text: links reduced to their text, then lower case, spaces
/// to `-`, and nothing else but letters, digits, `-` and `_`.
fn anchor(heading: &str) -> String {
    let link = Regex::new(r"\[([^\]]*)\]\([^)]*\)").unwrap();
    link.replace_all(heading.trim(), "$1")
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown text's headings, as GitHub numbers repeated ones (`x`, `x-1`).
fn anchors(text: &str) -> BTreeSet<String> {
    let heading = Regex::new(r"^#{1,6}[ \t]+(.*?)[ \t#]*$").unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut found = BTreeSet::new();
    // Code spans stay in headings (they are part of the text); only fenced blocks go.
    let mut fenced = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        let Some(c) = heading.captures(line).filter(|_| !fenced) else {
            continue;
        };
        let base = anchor(&c[1]);
        let n = seen.entry(base.clone()).or_insert(0);
        found.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    found
}

/// Every relative link of `files` that does not point to a file or folder inside `root`, or
/// whose `#anchor` is not a heading of the Markdown file it points to.
fn broken_links(given_root: &Path, files: &[PathBuf]) -> Vec<String> {
    let root = given_root.canonicalize().unwrap();
    let link = Regex::new(r#"\]\(([^)\s]+)(?:\s+"[^"]*")?\)"#).unwrap();
    let mut broken = Vec::new();
    for file in files {
        let text = prose(&read(file));
        let name = file.strip_prefix(given_root).unwrap_or(file).display();
        for c in link.captures_iter(&text) {
            let target = &c[1];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let line = text[..c.get(0).unwrap().start()].matches('\n').count() + 1;
            let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
            let linked = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            match linked.canonicalize() {
                Ok(real) if real.starts_with(&root) => {}
                Ok(_) => {
                    broken.push(format!("{name}:{line}: {target} is outside the repository"));
                    continue;
                }
                Err(_) => {
                    broken.push(format!("{name}:{line}: {target}: no such file"));
                    continue;
                }
            }
            if fragment.is_empty() {
                continue;
            }
            if !linked.is_file() || linked.extension().is_none_or(|x| x != "md") {
                broken.push(format!(
                    "{name}:{line}: {target}: an anchor into a non-Markdown file"
                ));
            } else if !anchors(&read(&linked)).contains(fragment) {
                broken.push(format!("{name}:{line}: {target}: no such heading"));
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_points_to_a_file_and_heading_that_exist() {
    let repo = support::repo();
    let broken = broken_links(&repo, &markdown_files(&repo));
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_check_catches_planted_faults() {
    assert_eq!(
        anchor("`bundle` and `verify --wheel` against what they replace (issue 28)"),
        "bundle-and-verify---wheel-against-what-they-replace-issue-28"
    );
    assert_eq!(
        anchor("patch-uwsgi's own wheels"),
        "patch-uwsgis-own-wheels"
    );
    assert_eq!(anchor("See [the finder](x.md) now"), "see-the-finder-now");

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(dir.path().join("outside.md"), "# Outside\n").unwrap();
    std::fs::write(root.join("script.sh"), "").unwrap();
    std::fs::write(
        root.join("docs/a.md"),
        "# Real heading\n\n## Twice\n\n## Twice\n\n```sh\n# Not a heading\n```\n",
    )
    .unwrap();
    std::fs::write(
        root.join("README.md"),
        "# Top\n\
         [ok](docs/a.md#real-heading), [second](docs/a.md#twice-1), [dir](docs),\n\
         [self](#top), [web](https://example.org/a.md#b), [script](script.sh)\n\
         `[in code](nowhere.md)` and `across\n\
         [lines](nowhere.md)`\n\
         ```text\n[fenced](nowhere.md)\n```\n\
         [gone](docs/missing.md)\n\
         [bad anchor](docs/a.md#nope)\n\
         [fenced heading](docs/a.md#not-a-heading)\n\
         [third](docs/a.md#twice-2)\n\
         [outside](../outside.md)\n\
         [anchor into a script](script.sh#x)\n",
    )
    .unwrap();
    std::fs::write(root.join("CONTRIBUTING.md"), "[back](README.md#top)\n").unwrap();
    let broken = broken_links(&root, &markdown_files(&root));
    let expected = [
        "README.md:9: docs/missing.md: no such file",
        "README.md:10: docs/a.md#nope: no such heading",
        "README.md:11: docs/a.md#not-a-heading: no such heading",
        "README.md:12: docs/a.md#twice-2: no such heading",
        "README.md:13: ../outside.md is outside the repository",
        "README.md:14: script.sh#x: an anchor into a non-Markdown file",
    ];
    assert_eq!(broken, expected);
}

// The tool-wheel targets.

/// The Rust targets of scripts/build-wheels.sh: the first word of each row of its
/// `matrix="..."` (a row is five words; the script's awk takes only such rows).
fn script_targets(script: &str) -> Result<BTreeSet<String>, String> {
    let (_, rest) = script
        .split_once("\nmatrix=\"\n")
        .ok_or("no `matrix=\"` line")?;
    let (rows, _) = rest
        .split_once("\n\"\n")
        .ok_or("no closing `\"` line after the matrix")?;
    let mut targets = BTreeSet::new();
    for row in rows.lines().filter(|r| !r.trim().is_empty()) {
        let words: Vec<&str> = row.split_whitespace().collect();
        if words.len() != 5 {
            return Err(format!("a matrix row of {} words: {row}", words.len()));
        }
        targets.insert(words[0].to_string());
    }
    if targets.is_empty() {
        return Err("an empty matrix".to_string());
    }
    Ok(targets)
}

/// The Rust targets a text names (`x86_64-unknown-linux-gnu`, `armv7-unknown-linux-gnueabihf`).
fn named_targets(text: &str) -> BTreeSet<String> {
    let target = Regex::new(r"\b[a-z0-9_]+-unknown-linux-[a-z0-9_]+\b").unwrap();
    target
        .find_iter(text)
        .map(|m| m.as_str().to_string())
        .collect()
}

/// What a document must say about the targets.
#[derive(Clone, Copy, Debug)]
enum TargetRule {
    /// Name them all and no other: the document that lists them.
    All,
    /// Either none or all: a document that may repeat the list.
    NoneOrAll,
    /// Any of them, and no other (every other document).
    Subset,
}

const TARGET_RULES: &[(&str, TargetRule)] = &[
    ("docs/wheels.md", TargetRule::All),
    ("docs/cibuildwheel.md", TargetRule::NoneOrAll),
];

fn target_problems(
    named: &BTreeSet<String>,
    built: &BTreeSet<String>,
    rule: TargetRule,
) -> Vec<String> {
    let unknown: Vec<&String> = named.difference(built).collect();
    let missing: Vec<&String> = built.difference(named).collect();
    let mut problems = Vec::new();
    if !unknown.is_empty() {
        problems.push(format!(
            "names targets the script does not build: {unknown:?}"
        ));
    }
    let must_name_all = match rule {
        TargetRule::All => true,
        TargetRule::NoneOrAll => !named.is_empty(),
        TargetRule::Subset => false,
    };
    if must_name_all && !missing.is_empty() {
        problems.push(format!("lacks targets the script builds: {missing:?}"));
    }
    problems
}

#[test]
fn the_documents_name_the_tool_wheel_targets_the_script_builds() {
    let repo = support::repo();
    let built = script_targets(&read(&repo.join("scripts/build-wheels.sh")))
        .unwrap_or_else(|e| panic!("scripts/build-wheels.sh: {e}"));
    let mut problems = Vec::new();
    for file in markdown_files(&repo) {
        let name = file
            .strip_prefix(&repo)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let rule = TARGET_RULES
            .iter()
            .find(|(doc, _)| *doc == name)
            .map_or(TargetRule::Subset, |(_, rule)| *rule);
        for problem in target_problems(&named_targets(&read(&file)), &built, rule) {
            problems.push(format!("{name} {problem}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for (doc, _) in TARGET_RULES {
        assert!(repo.join(doc).exists(), "{doc} is in TARGET_RULES but gone");
    }
}

#[test]
fn the_target_check_catches_planted_faults() {
    let script = "set -e\nmatrix=\"\n\
                  x86_64-unknown-linux-gnu manylinux2014 - - zig\n\
                  riscv64gc-unknown-linux-gnu linux manylinux_2_17_riscv64 gcc-riscv64-linux-gnu riscv64-linux-gnu-gcc\n\
                  \"\nwanted=all\n";
    let built = script_targets(script).unwrap();
    assert_eq!(
        built,
        BTreeSet::from([
            "riscv64gc-unknown-linux-gnu".into(),
            "x86_64-unknown-linux-gnu".into()
        ])
    );
    assert!(script_targets("matrix=x\n").is_err());
    assert!(
        script_targets("\nmatrix=\"\nx86_64-unknown-linux-gnu manylinux2014 zig\n\"\n").is_err()
    );

    let both = "`x86_64-unknown-linux-gnu` and `riscv64gc-unknown-linux-gnu`";
    let one = "`x86_64-unknown-linux-gnu` only";
    let stray =
        "`x86_64-unknown-linux-gnu`, `riscv64gc-unknown-linux-gnu`, `s390x-unknown-linux-gnu`";
    let cases = [
        (both, TargetRule::All, 0),
        (one, TargetRule::All, 1),
        ("no target", TargetRule::All, 1),
        (stray, TargetRule::All, 1),
        ("no target", TargetRule::NoneOrAll, 0),
        (one, TargetRule::NoneOrAll, 1),
        (both, TargetRule::NoneOrAll, 0),
        (one, TargetRule::Subset, 0),
        (stray, TargetRule::Subset, 1),
    ];
    for (text, rule, problems) in cases {
        assert_eq!(
            target_problems(&named_targets(text), &built, rule).len(),
            problems,
            "{text:?} under {rule:?}"
        );
    }
}
