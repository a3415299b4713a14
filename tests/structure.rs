//! The shape of the source, kept as the house rules say: no function in src/ longer than 80
//! lines, the library's modules in layers (each uses only those below it, so there is no
//! circle and no import running back up), and the binary using the library's façade only.

mod support;

use std::path::{Path, PathBuf};

/// The library's top-level modules, lowest first.
const LAYERS: [&str; 11] = [
    "error", "process", "files", "cache", "names", "recipes", "releases", "plan", "options",
    "tree", "runtime",
];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Each `fn` of `text` with its first line (1-based) and its length in lines, the closing
/// brace found at the indentation of the `fn` line (rustfmt's layout).
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let start = regex::Regex::new(r"^(\s*)(?:pub(?:\([a-z]+\))? )?(?:const )?(?:unsafe )?fn (\w+)")
        .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(m) = start.captures(line) else {
            continue;
        };
        if line.trim_end().ends_with(';') {
            continue; // a declaration without a body
        }
        let close = format!("{}}}", &m[1]);
        let end = (i + 1..lines.len())
            .find(|&j| lines[j] == close)
            .unwrap_or(lines.len() - 1);
        found.push((m[2].to_string(), i + 1, end - i + 1));
    }
    found
}

#[test]
fn no_function_in_src_is_longer_than_80_lines() {
    let mut long = Vec::new();
    for file in rust_files(&support::repo().join("src")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (name, line, length) in functions(&text) {
            if length > 80 {
                long.push(format!("{}:{line} {name} ({length} lines)", file.display()));
            }
        }
    }
    assert!(long.is_empty(), "over 80 lines:\n{}", long.join("\n"));
    // The measure itself: a 3-line function and an 82-line one.
    let short = "fn a() {\n    1;\n}\n";
    let body = "    x;\n".repeat(80);
    let long_one = format!("    pub(crate) fn b() {{\n{body}    }}\n");
    assert_eq!(functions(short), [("a".to_string(), 1, 3)]);
    assert_eq!(functions(&long_one), [("b".to_string(), 1, 82)]);
}

/// The top-level modules `text` uses in code (`use crate::m` and `crate::m::` paths outside
/// comments).
fn crate_modules_used(text: &str) -> Vec<String> {
    let path = regex::Regex::new(r"crate::([a-z_]+)").unwrap();
    let mut used = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for m in path.captures_iter(code) {
            let module = m[1].to_string();
            if LAYERS.contains(&module.as_str()) && !used.contains(&module) {
                used.push(module);
            }
        }
    }
    // Grouped imports: `use crate::{a, b::c}`.
    let grouped = regex::Regex::new(r"(?s)use crate::\{([^;]*)\};").unwrap();
    for m in grouped.captures_iter(text) {
        for item in m[1].split(',') {
            let module = item.trim().split("::").next().unwrap_or("").to_string();
            if LAYERS.contains(&module.as_str()) && !used.contains(&module) {
                used.push(module);
            }
        }
    }
    used
}

#[test]
fn each_module_uses_only_the_layers_below_it() {
    let src = support::repo().join("src");
    let mut wrong = Vec::new();
    for (rank, module) in LAYERS.iter().enumerate() {
        let file = src.join(format!("{module}.rs"));
        let files = if file.is_file() {
            vec![file]
        } else {
            rust_files(&src.join(module))
        };
        assert!(!files.is_empty(), "no source for module {module}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for used in crate_modules_used(&text) {
                let used_rank = LAYERS.iter().position(|m| *m == used).unwrap();
                if used_rank > rank {
                    wrong.push(format!("{} ({module}) uses {used}", file.display()));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports running up:\n{}",
        wrong.join("\n")
    );
    // Every top-level module is placed in a layer.
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let declared = regex::Regex::new(r"(?m)^(?:pub )?mod ([a-z_]+);").unwrap();
    for m in declared.captures_iter(&lib) {
        assert!(LAYERS.contains(&&m[1]), "module {} is in no layer", &m[1]);
    }
    assert_eq!(
        crate_modules_used(
            "use crate::{error::Error, plan::X};\n// crate::tree\nlet a = crate::names::Y;"
        ),
        ["names", "error", "plan"]
    );
}

#[test]
fn the_binary_uses_the_crate_root_only() {
    // `patch_uwsgi::releases` is the one public module; everything else is at the root.
    let module_path = regex::Regex::new(r"patch_uwsgi::([a-z_]+)::").unwrap();
    let mut reaching = Vec::new();
    for file in rust_files(&support::repo().join("src/bin")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for m in module_path.captures_iter(&text) {
            if &m[1] != "releases" {
                reaching.push(format!("{}: patch_uwsgi::{}::", file.display(), &m[1]));
            }
        }
    }
    assert!(
        reaching.is_empty(),
        "past the façade:\n{}",
        reaching.join("\n")
    );
    assert!(module_path.is_match("use patch_uwsgi::plan::interpreter::Interpreter;"));
}
