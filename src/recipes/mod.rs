//! The recipes: small, named, data-like rewrites of uWSGI's two build files, and the pure
//! functions (`&str` in, text out) that apply and revert them.
//!
//! Every change a recipe makes is marked in the file itself, so the patched text alone says how
//! to get the upstream bytes back: inserted blocks sit between a begin and an end marker line,
//! and an edited line is preceded by a comment holding the original. Applying is therefore
//! "revert whatever patch-uwsgi put there, then apply the current recipes to the pristine
//! text": idempotent, and it upgrades a tree patched by an older recipe version in place.
//!
//! Beside this file: the blocks the recipes insert (`rebuild_guard.py`,
//! `compile_thread_guard.py`, `plugin_link_plan.py`), the runtime finder's C that the plugin block carries
//! (`runtime_finder.c`, put in place of a placeholder when the block text is first needed),
//! and the text handling (BOM, line endings: `text`). Uses `error` only.

pub(crate) mod text;

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use crate::error::{Error, Result};
use text::{line_of, Doc};

/// The uWSGI build files patch-uwsgi rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum FileKind {
    /// `uwsgiconfig.py`, the build driver.
    UwsgiConfig,
    /// `plugins/python/uwsgiplugin.py`, which computes the python plugin's flags.
    PythonPlugin,
}

impl FileKind {
    /// Both files, in the order they are processed.
    pub const ALL: [FileKind; 2] = [FileKind::UwsgiConfig, FileKind::PythonPlugin];

    /// Path relative to the uWSGI tree, with `/` separators.
    pub fn rel_path(self) -> &'static str {
        match self {
            FileKind::UwsgiConfig => "uwsgiconfig.py",
            FileKind::PythonPlugin => "plugins/python/uwsgiplugin.py",
        }
    }
}

/// The text variants of `plugins/python/uwsgiplugin.py` found in uWSGI releases on PyPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PluginVariant {
    /// 2.0.17 – 2.0.19.1: `from distutils import sysconfig`, archive path appended unchecked.
    Baseline,
    /// 2.0.20: adds the `MULTIARCH` config-folder fallback.
    Multiarch,
    /// 2.0.21, 2.0.22: re-appends `-lrt` after the archive.
    RelinkLrt,
    /// 2.0.23 – 2.0.27: falls back to the stdlib `sysconfig` without distutils.
    StdlibSysconfig,
    /// 2.0.28 and later: archive checked, `-lpython` + `LD_RUN_PATH` fallback.
    CheckedArchive,
    /// Text none of the known releases has (a fork, or a newer uWSGI).
    Unknown,
}

impl PluginVariant {
    /// Recognise the variant of a pristine `uwsgiplugin.py` body by the features each
    /// release added (newest first), not by exact bytes, so whitespace changes do not matter.
    pub fn detect(text: &str) -> PluginVariant {
        if !text.contains("UWSGI_PYTHON_NOLIB") {
            PluginVariant::Unknown
        } else if text.contains("use_static_lib = False") {
            PluginVariant::CheckedArchive
        } else if text.contains("except ImportError") && text.contains("import sysconfig") {
            PluginVariant::StdlibSysconfig
        } else if text.contains("'-lrt' in LIBS") {
            PluginVariant::RelinkLrt
        } else if text.contains("MULTIARCH") {
            PluginVariant::Multiarch
        } else if text.contains("from distutils import sysconfig") {
            PluginVariant::Baseline
        } else {
            PluginVariant::Unknown
        }
    }
}

/// What a recipe does.
#[derive(Debug)]
pub(crate) enum Action {
    /// Insert the text `block` gives after the one line range matching `anchor`.
    InsertAfter {
        anchor: &'static str,
        block: fn() -> &'static str,
    },
    /// Replace whole string literals `'-lpython…'` by `''`, keeping the original line.
    StripLiteral {
        literal: &'static str,
        unsafe_use: &'static str,
    },
}

/// A named rewrite of one file.
#[derive(Debug)]
pub struct Recipe {
    /// Stable identifier, written into the markers in the file.
    pub id: &'static str,
    /// Bumped whenever the text the recipe writes changes; older blocks are upgraded.
    pub version: u32,
    /// The file it rewrites.
    pub file: FileKind,
    /// What it looks for, in words (used in error messages).
    pub expects: &'static str,
    pub(crate) action: Action,
}

/// The rebuild-guard block.
const REBUILD_GUARD_BLOCK: &str = include_str!("rebuild_guard.py");

/// The compile-thread-guard block.
const COMPILE_THREAD_GUARD_BLOCK: &str = include_str!("compile_thread_guard.py");

/// The plugin-link-plan block's Python, with [`FINDER_PLACEHOLDER`] where the C goes.
const PLUGIN_LINK_PLAN_PY: &str = include_str!("plugin_link_plan.py");

/// The runtime finder: the C the patched plugin writes beside itself and compiles into a
/// static uwsgi (`@PY@` and `@ZIP@` are filled in by the plugin at build time).
pub(crate) const RUNTIME_FINDER_C: &str = include_str!("runtime_finder.c");

/// Where [`RUNTIME_FINDER_C`] goes in [`PLUGIN_LINK_PLAN_PY`]: the body of a Python raw string.
const FINDER_PLACEHOLDER: &str = "@RUNTIME_FINDER_C@";

/// The plugin-link-plan block as written into `uwsgiplugin.py`: its Python with the runtime
/// finder's C in place of the placeholder, made once.
fn plugin_link_plan_block() -> &'static str {
    static BLOCK: LazyLock<String> =
        LazyLock::new(|| PLUGIN_LINK_PLAN_PY.replacen(FINDER_PLACEHOLDER, RUNTIME_FINDER_C, 1));
    &BLOCK
}

/// Every recipe, in the order it is applied.
pub static RECIPES: &[Recipe] = &[
    Recipe {
        id: "rebuild-guard",
        version: 3,
        file: FileKind::UwsgiConfig,
        expects: "one line `uwsgi_version = '...'` at the start of a line",
        action: Action::InsertAfter {
            anchor: r"(?m)^uwsgi_version = '[^'\n]*'[ \t\r]*$",
            block: || REBUILD_GUARD_BLOCK,
        },
    },
    Recipe {
        id: "compile-thread-guard",
        version: 1,
        file: FileKind::UwsgiConfig,
        expects: "one line `uwsgi_version = '...'` at the start of a line",
        action: Action::InsertAfter {
            anchor: r"(?m)^uwsgi_version = '[^'\n]*'[ \t\r]*$",
            block: || COMPILE_THREAD_GUARD_BLOCK,
        },
    },
    Recipe {
        id: "strip-literal-lpython",
        version: 1,
        file: FileKind::UwsgiConfig,
        expects: "`-lpython` only as a whole string literal such as '-lpython3.12'",
        action: Action::StripLiteral {
            literal: r#"'-lpython[^'\s%]*'|"-lpython[^"\s%]*""#,
            unsafe_use: r"-lpython",
        },
    },
    Recipe {
        id: "plugin-link-plan",
        version: 5,
        file: FileKind::PythonPlugin,
        expects:
            "one top-level `else:` followed by `    LIBS = []` (the UWSGI_PYTHON_NOLIB branch)",
        action: Action::InsertAfter {
            anchor: r"(?m)^else:[ \t\r]*\n[ \t]+LIBS = \[\][ \t\r]*$",
            block: plugin_link_plan_block,
        },
    },
];

/// The recipes for one file.
pub fn recipes_for(file: FileKind) -> impl Iterator<Item = &'static Recipe> {
    RECIPES.iter().filter(move |r| r.file == file)
}

/// What a recipe or a file operation did or would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Outcome {
    /// The change was made.
    Applied,
    /// The file already was as wanted.
    Unchanged,
    /// patch-uwsgi's changes were removed.
    Reverted,
    /// `check` or `diff`: the change is still to be made.
    NeedsPatch,
    /// The recipe has nothing to do in this file.
    NotNeeded,
}

impl Outcome {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Unchanged => "unchanged",
            Outcome::Reverted => "reverted",
            Outcome::NeedsPatch => "needs-patch",
            Outcome::NotNeeded => "not-needed",
        }
    }
}

/// The result of patching one file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PatchedText {
    /// The full patched text (BOM and line endings as in the input).
    pub text: String,
    /// For every recipe of the file: `Applied` or `NotNeeded` relative to the upstream text.
    pub recipes: Vec<(&'static str, Outcome)>,
    /// The variant of `uwsgiplugin.py` (always `Unknown` for `uwsgiconfig.py`).
    pub variant: PluginVariant,
}

struct Compiled {
    anchor_or_literal: Regex,
    unsafe_use: Option<Regex>,
}

static COMPILED: LazyLock<Vec<Compiled>> = LazyLock::new(|| {
    RECIPES
        .iter()
        .map(|r| match r.action {
            Action::InsertAfter { anchor, .. } => Compiled {
                anchor_or_literal: Regex::new(anchor).expect("recipe anchor"),
                unsafe_use: None,
            },
            Action::StripLiteral {
                literal,
                unsafe_use,
            } => Compiled {
                anchor_or_literal: Regex::new(literal).expect("recipe literal"),
                unsafe_use: Some(Regex::new(unsafe_use).expect("recipe pattern")),
            },
        })
        .collect()
});

fn compiled(recipe: &Recipe) -> &'static Compiled {
    let index = RECIPES
        .iter()
        .position(|r| std::ptr::eq(r, recipe))
        .expect("recipe from RECIPES");
    &COMPILED[index]
}

static BEGIN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^# >>> patch-uwsgi:([a-z0-9-]+) v([0-9]+) >>>\r?\n?$").unwrap());
static END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^# <<< patch-uwsgi:([a-z0-9-]+) <<<\r?\n?$").unwrap());
static WAS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^# patch-uwsgi:([a-z0-9-]+) was: (.*)\n$").unwrap());
static ANY_MARKER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*#.*patch-uwsgi:").unwrap());
static LEGACY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?m)^[ \t]*#[ \t]*(?:ci: append static libpython|ci:[^\n]*libpython|envoxy:)[^\n]*$",
    )
    .unwrap()
});

fn begin_marker(recipe: &Recipe) -> String {
    format!("# >>> patch-uwsgi:{} v{} >>>\n", recipe.id, recipe.version)
}

fn end_marker(recipe: &Recipe) -> String {
    format!("# <<< patch-uwsgi:{} <<<", recipe.id)
}

/// The index of the end marker of the block `id` that begins at `lines[begin]`; or the line
/// (1-based) and what is wrong: no end marker, another block's end marker, another marker
/// inside.
fn block_end(
    lines: &[&str],
    begin: usize,
    id: &str,
) -> std::result::Result<usize, (usize, String)> {
    for (j, inner) in lines.iter().enumerate().skip(begin + 1) {
        if let Some(end) = END.captures(inner) {
            if &end[1] != id {
                return Err((
                    j + 1,
                    format!("block `{id}` ends with the end marker of `{}`", &end[1]),
                ));
            }
            return Ok(j);
        }
        if BEGIN.is_match(inner) || WAS.is_match(inner) {
            return Err((j + 1, format!("another marker inside block `{id}`")));
        }
    }
    Err((
        begin + 1,
        format!("begin marker of `{id}` has no end marker"),
    ))
}

/// Remove every patch-uwsgi change from a `\n`-separated body, whatever recipe version made it.
pub(crate) fn unpatch_body(body: &str, path: &Path) -> Result<String> {
    let damaged = |line: usize, problem: String| Error::DamagedBlock {
        path: path.to_path_buf(),
        line,
        problem,
    };
    let lines: Vec<&str> = body.split_inclusive('\n').collect();
    let mut out = String::with_capacity(body.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(begin) = BEGIN.captures(line) {
            let id = &begin[1];
            let j = block_end(&lines, i, id).map_err(|(line, problem)| damaged(line, problem))?;
            if !lines[j].ends_with('\n') {
                // The block was appended to a file without a final newline: the newline before
                // the block was ours too.
                if !out.ends_with('\n') || j + 1 != lines.len() {
                    return Err(damaged(
                        i + 1,
                        format!("block `{id}` is not where patch-uwsgi puts it"),
                    ));
                }
                out.pop();
            }
            i = j + 1;
        } else if let Some(was) = WAS.captures(line) {
            let id = was[1].to_string();
            let Some(edited) = lines.get(i + 1) else {
                return Err(damaged(
                    i + 1,
                    format!("`{id}` original-line comment is the last line"),
                ));
            };
            if ANY_MARKER.is_match(edited) {
                return Err(damaged(
                    i + 2,
                    format!("`{id}` original-line comment is followed by another marker"),
                ));
            }
            out.push_str(&was[2]);
            if edited.ends_with('\n') {
                out.push('\n');
            }
            i += 2;
        } else if END.is_match(line) {
            return Err(damaged(i + 1, "end marker without a begin marker".into()));
        } else if ANY_MARKER.is_match(line) {
            return Err(damaged(
                i + 1,
                format!("unrecognised patch-uwsgi marker `{}`", line.trim_end()),
            ));
        } else {
            out.push_str(line);
            i += 1;
        }
    }
    Ok(out)
}

/// Fail if the body carries a block appended by the shell-script fixes this tool replaces.
pub(crate) fn reject_legacy(body: &str, path: &Path) -> Result<()> {
    match LEGACY.find(body) {
        Some(m) => Err(Error::LegacyBlock {
            path: path.to_path_buf(),
            line: line_of(body, m.start()),
            text: m.as_str().trim().to_string(),
        }),
        None => Ok(()),
    }
}

fn describe_matches(body: &str, starts: &[usize]) -> String {
    match starts.len() {
        0 => "nothing".to_string(),
        n => {
            let lines: Vec<String> = starts
                .iter()
                .map(|&s| line_of(body, s).to_string())
                .collect();
            format!("{n} matches, at lines {}", lines.join(", "))
        }
    }
}

/// Apply one recipe to a pristine body.
fn apply_recipe(recipe: &Recipe, body: &str, path: &Path) -> Result<(String, Outcome)> {
    let compiled = compiled(recipe);
    match recipe.action {
        Action::InsertAfter { block, .. } => {
            let starts: Vec<regex::Match> = compiled.anchor_or_literal.find_iter(body).collect();
            if starts.len() != 1 {
                let positions: Vec<usize> = starts.iter().map(|m| m.start()).collect();
                return Err(Error::Anchor {
                    path: path.to_path_buf(),
                    recipe: recipe.id,
                    expected: recipe.expects,
                    found: describe_matches(body, &positions),
                });
            }
            let end = starts[0].end();
            let mut marked = begin_marker(recipe);
            marked.push_str(block());
            marked.push_str(&end_marker(recipe));
            let mut out = String::with_capacity(body.len() + marked.len() + 2);
            match body[end..].find('\n') {
                Some(k) => {
                    let at = end + k + 1;
                    out.push_str(&body[..at]);
                    out.push_str(&marked);
                    out.push('\n');
                    out.push_str(&body[at..]);
                }
                None => {
                    // No final newline: keep it that way, the block ends the file.
                    out.push_str(body);
                    out.push('\n');
                    out.push_str(&marked);
                }
            }
            Ok((out, Outcome::Applied))
        }
        Action::StripLiteral { .. } => {
            let unsafe_use = compiled
                .unsafe_use
                .as_ref()
                .expect("strip recipe has a pattern");
            let mut out = String::with_capacity(body.len());
            let mut changed = false;
            let mut offset = 0;
            for line in body.split_inclusive('\n') {
                let code = line.trim_start();
                if code.starts_with('#') || !unsafe_use.is_match(line) {
                    out.push_str(line);
                    offset += line.len();
                    continue;
                }
                let stripped = compiled.anchor_or_literal.replace_all(line, "''");
                if unsafe_use.is_match(&stripped) {
                    return Err(Error::Anchor {
                        path: path.to_path_buf(),
                        recipe: recipe.id,
                        expected: recipe.expects,
                        found: format!("`{}` at line {}", line.trim(), line_of(body, offset)),
                    });
                }
                let original = line.strip_suffix('\n').unwrap_or(line);
                out.push_str(&format!("# patch-uwsgi:{} was: {original}\n", recipe.id));
                // The edited line keeps the original's ending (or lack of one).
                out.push_str(&stripped);
                changed = true;
                offset += line.len();
            }
            Ok((
                out,
                if changed {
                    Outcome::Applied
                } else {
                    Outcome::NotNeeded
                },
            ))
        }
    }
}

/// Patch the text of one file: remove earlier patch-uwsgi changes, then apply every recipe of
/// the file to the upstream text. `path` only names the file in errors.
///
/// ```
/// use patch_uwsgi::{patch_text, revert_text, FileKind};
/// let upstream = "# uWSGI build system\n\nuwsgi_version = '2.0.31'\n\nimport os\n";
/// let patched = patch_text(FileKind::UwsgiConfig, upstream, "uwsgiconfig.py".as_ref()).unwrap();
/// assert!(patched.text.contains("# >>> patch-uwsgi:rebuild-guard v3 >>>"));
/// assert_eq!(revert_text(upstream, "uwsgiconfig.py".as_ref()).unwrap(), upstream);
/// ```
pub fn patch_text(file: FileKind, text: &str, path: &Path) -> Result<PatchedText> {
    let doc = Doc::from_str(text);
    let pristine = unpatch_body(&doc.body, path)?;
    reject_legacy(&pristine, path)?;
    let variant = match file {
        FileKind::PythonPlugin => PluginVariant::detect(&pristine),
        FileKind::UwsgiConfig => PluginVariant::Unknown,
    };
    let mut body = pristine.clone();
    let mut outcomes = Vec::new();
    for recipe in recipes_for(file) {
        let (next, outcome) = apply_recipe(recipe, &body, path).map_err(|err| {
            // Earlier recipes shifted the lines: redo this one on the upstream text so the
            // error gives upstream line numbers (only on the error path).
            apply_recipe(recipe, &pristine, path).err().unwrap_or(err)
        })?;
        body = next;
        outcomes.push((recipe.id, outcome));
    }
    Ok(PatchedText {
        text: doc.encode(&body),
        recipes: outcomes,
        variant,
    })
}

/// Give back the upstream text: every patch-uwsgi change removed, byte for byte.
///
/// ```
/// use patch_uwsgi::{patch_text, revert_text, FileKind};
/// let path = "vendor-samples/2.0.31/plugins/python/uwsgiplugin.py";
/// let upstream = std::fs::read_to_string(path).unwrap();
/// let patched = patch_text(FileKind::PythonPlugin, &upstream, path.as_ref()).unwrap();
/// assert_eq!(revert_text(&patched.text, path.as_ref()).unwrap(), upstream);
/// ```
pub fn revert_text(text: &str, path: &Path) -> Result<String> {
    let doc = Doc::from_str(text);
    Ok(doc.encode(&unpatch_body(&doc.body, path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "f.py";

    fn plugin_tail(ending: &str) -> String {
        format!("import os\nif not 'UWSGI_PYTHON_NOLIB' in os.environ:\n    LIBS = ['-lm']\nelse:\n    LIBS = []{ending}")
    }

    #[test]
    fn insert_after_anchor_table() {
        // (input, recipe file, expected error substring or None)
        let cases: Vec<(String, FileKind, Option<&str>)> = vec![
            (plugin_tail("\n"), FileKind::PythonPlugin, None),
            (plugin_tail(""), FileKind::PythonPlugin, None),
            (
                plugin_tail("\n\n# trailing comment\n"),
                FileKind::PythonPlugin,
                None,
            ),
            (plugin_tail("   \n"), FileKind::PythonPlugin, None),
            (
                "import os\nLIBS = []\n".into(),
                FileKind::PythonPlugin,
                Some("found nothing"),
            ),
            (
                format!("{}{}", plugin_tail("\n"), "else:\n    LIBS = []\n"),
                FileKind::PythonPlugin,
                Some("2 matches, at lines 4, 6"),
            ),
            (
                "if x:\n    else:\n        LIBS = []\n".into(),
                FileKind::PythonPlugin,
                Some("found nothing"),
            ),
            (
                "uwsgi_version = '2.0.31'\n".into(),
                FileKind::UwsgiConfig,
                None,
            ),
            (
                "uwsgi_version = '2.0.31'".into(),
                FileKind::UwsgiConfig,
                None,
            ),
            (
                "  uwsgi_version = '2.0.31'\n".into(),
                FileKind::UwsgiConfig,
                Some("found nothing"),
            ),
            (
                "uwsgi_version = '1'\nuwsgi_version = '2'\n".into(),
                FileKind::UwsgiConfig,
                Some("2 matches, at lines 1, 2"),
            ),
        ];
        for (input, file, want_err) in cases {
            let result = patch_text(file, &input, P.as_ref());
            match (want_err, result) {
                (None, Ok(patched)) => {
                    assert_ne!(patched.text, input);
                    assert_eq!(
                        revert_text(&patched.text, P.as_ref()).unwrap(),
                        input,
                        "revert of {input:?}"
                    );
                    let again = patch_text(file, &patched.text, P.as_ref()).unwrap();
                    assert_eq!(again.text, patched.text, "idempotent on {input:?}");
                    assert_eq!(
                        input.ends_with('\n'),
                        patched.text.ends_with('\n'),
                        "final newline kept for {input:?}"
                    );
                }
                (Some(want), Err(err)) => {
                    let msg = err.to_string();
                    assert!(msg.contains(want), "{input:?}: {msg}");
                    assert!(msg.contains(P) && msg.contains("recipe `"), "{msg}");
                }
                (want, got) => panic!("{input:?}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn strip_literal_lpython_table() {
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            // (uwsgiconfig body after the version line, expected edited line, expected error)
            (
                "libs.append('-lpython3.12')\n",
                Some("libs.append('')\n"),
                None,
            ),
            (
                "    libs = [\"-lpython2.7\", '-lm']\n",
                Some("    libs = ['', '-lm']\n"),
                None,
            ),
            ("# libs.append('-lpython3.12')\n", None, None),
            ("libs.append('-lm')\n", None, None),
            (
                "libs.append('-lpython%s' % v)\n",
                None,
                Some("libs.append('-lpython%s' % v)` at line 2"),
            ),
            ("x = '-lm -lpython3.12'\n", None, Some("at line 2")),
        ];
        for &(tail, edited, err) in cases {
            let input = format!("uwsgi_version = '2.0.31'\n{tail}");
            match patch_text(FileKind::UwsgiConfig, &input, P.as_ref()) {
                Ok(patched) => {
                    assert!(err.is_none(), "{tail:?} should fail");
                    let strip = patched
                        .recipes
                        .iter()
                        .find(|(id, _)| *id == "strip-literal-lpython")
                        .unwrap()
                        .1;
                    match edited {
                        Some(line) => {
                            assert_eq!(strip, Outcome::Applied);
                            let original = tail.trim_end_matches('\n');
                            let expect = format!(
                                "# patch-uwsgi:strip-literal-lpython was: {original}\n{line}"
                            );
                            assert!(patched.text.contains(&expect), "{}", patched.text);
                        }
                        None => {
                            assert_eq!(strip, Outcome::NotNeeded);
                            assert!(patched.text.ends_with(tail));
                        }
                    }
                    assert_eq!(revert_text(&patched.text, P.as_ref()).unwrap(), input);
                }
                Err(e) => assert!(
                    e.to_string().contains(err.expect("unexpected error")),
                    "{e}"
                ),
            }
        }
    }

    #[test]
    fn damaged_markers_are_errors() {
        let good = patch_text(FileKind::PythonPlugin, &plugin_tail("\n"), P.as_ref())
            .unwrap()
            .text;
        let cases: Vec<(String, &str)> = vec![
            (
                good.replace("# <<< patch-uwsgi:plugin-link-plan <<<\n", ""),
                "has no end marker",
            ),
            (
                good.replace("# >>> patch-uwsgi:plugin-link-plan v5 >>>\n", ""),
                "end marker without a begin",
            ),
            (
                good.replace(
                    "# <<< patch-uwsgi:plugin-link-plan",
                    "# <<< patch-uwsgi:other",
                ),
                "ends with the end marker of `other`",
            ),
            (
                format!("{good}# patch-uwsgi: something\n"),
                "unrecognised patch-uwsgi marker",
            ),
            (
                format!("{good}# patch-uwsgi:x was: y\n"),
                "is the last line",
            ),
        ];
        for (text, want) in cases {
            let err = revert_text(&text, P.as_ref()).unwrap_err().to_string();
            assert!(err.contains(want) && err.contains(P), "{want}: {err}");
            assert!(patch_text(FileKind::PythonPlugin, &text, P.as_ref()).is_err());
        }
    }

    #[test]
    fn older_block_version_is_upgraded() {
        let current = patch_text(FileKind::PythonPlugin, &plugin_tail("\n"), P.as_ref())
            .unwrap()
            .text;
        let old = plugin_tail("\n") + "# >>> patch-uwsgi:plugin-link-plan v0 >>>\nLIBS = ['-lpython3.12']\n# <<< patch-uwsgi:plugin-link-plan <<<\n";
        let upgraded = patch_text(FileKind::PythonPlugin, &old, P.as_ref()).unwrap();
        assert_eq!(upgraded.text, current);
        // A retired recipe's block goes away too.
        let retired = plugin_tail("\n")
            + "# >>> patch-uwsgi:gone-recipe v3 >>>\nx = 1\n# <<< patch-uwsgi:gone-recipe <<<\n";
        assert_eq!(
            patch_text(FileKind::PythonPlugin, &retired, P.as_ref())
                .unwrap()
                .text,
            current
        );
    }

    #[test]
    fn legacy_blocks_are_refused() {
        for marker in [
            "# ci: append static libpython",
            "# envoxy: link libpython statically",
            "  # ci: force libpython3.12.a",
        ] {
            let text = format!("{}{marker}\nLIBS.append('/opt/x.a')\n", plugin_tail("\n"));
            let err = patch_text(FileKind::PythonPlugin, &text, P.as_ref()).unwrap_err();
            assert!(matches!(err, Error::LegacyBlock { line: 6, .. }), "{err:?}");
            assert!(err.to_string().contains(marker.trim()));
        }
    }

    #[test]
    fn crlf_bom_are_kept() {
        let input = format!("\u{feff}{}", plugin_tail("\n").replace('\n', "\r\n"));
        let patched = patch_text(FileKind::PythonPlugin, &input, P.as_ref())
            .unwrap()
            .text;
        assert!(patched.starts_with('\u{feff}'));
        assert_eq!(
            patched.matches('\n').count(),
            patched.matches("\r\n").count()
        );
        assert_eq!(revert_text(&patched, P.as_ref()).unwrap(), input);
    }

    #[test]
    fn the_finder_c_fills_the_placeholder_of_the_plugin_block() {
        assert_eq!(PLUGIN_LINK_PLAN_PY.matches(FINDER_PLACEHOLDER).count(), 1);
        // It is the body of a Python raw string: no closing quotes inside, no backslash at the
        // end, and a line of its own.
        assert!(PLUGIN_LINK_PLAN_PY.contains(&format!("r'''\n{FINDER_PLACEHOLDER}'''\n")));
        assert!(!RUNTIME_FINDER_C.contains("'''"));
        assert!(RUNTIME_FINDER_C.ends_with("}\n"));
        assert!(!RUNTIME_FINDER_C.contains(FINDER_PLACEHOLDER));
        let block = plugin_link_plan_block();
        assert!(block.contains(RUNTIME_FINDER_C));
        assert!(!block.contains(FINDER_PLACEHOLDER));
        assert_eq!(
            block.len(),
            PLUGIN_LINK_PLAN_PY.len() - FINDER_PLACEHOLDER.len() + RUNTIME_FINDER_C.len()
        );
    }

    #[test]
    fn variants_of_known_texts() {
        let cases = [
            (
                "from distutils import sysconfig\nUWSGI_PYTHON_NOLIB",
                PluginVariant::Baseline,
            ),
            (
                "from distutils import sysconfig\nMULTIARCH\nUWSGI_PYTHON_NOLIB",
                PluginVariant::Multiarch,
            ),
            (
                "MULTIARCH\nif '-lrt' in LIBS:\nUWSGI_PYTHON_NOLIB",
                PluginVariant::RelinkLrt,
            ),
            (
                "except ImportError:\n    import sysconfig\nUWSGI_PYTHON_NOLIB",
                PluginVariant::StdlibSysconfig,
            ),
            (
                "use_static_lib = False\nUWSGI_PYTHON_NOLIB",
                PluginVariant::CheckedArchive,
            ),
            ("print(1)", PluginVariant::Unknown),
        ];
        for (text, want) in cases {
            assert_eq!(PluginVariant::detect(text), want, "{text}");
        }
    }
}
