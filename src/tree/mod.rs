//! Operations on a uWSGI source tree: apply, check, diff, revert. Each reads the files, runs
//! the recipes on their text, and writes every change or none ([`fsio`]). Uses `options`,
//! `plan`, `recipes`, `releases`, `names`, `files` and `error`.

pub(crate) mod fsio;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use crate::error::{Error, Operation, Result};
use crate::files::read_optional;
use crate::names::{RUNTIME_FINDER_OBJECT, RUNTIME_FINDER_SOURCE, UNFINISHED_BUILD_MARK};
use crate::options::Options;
use crate::plan::{LinkPlan, Mode, PlanFile, Target, PLAN_FILE};
use crate::recipes::text::Doc;
use crate::recipes::{patch_text, revert_text, FileKind, Outcome, PluginVariant};
use crate::releases::check_python_support;
use fsio::{commit, remove_stale_temps, Change, TreeLock};

static VERSION_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^uwsgi_version = '([^'\n]+)'").unwrap());

/// An opened uWSGI source tree.
#[derive(Debug, Clone)]
pub(crate) struct UwsgiTree {
    root: PathBuf,
    version: String,
}

impl UwsgiTree {
    /// The tree's folder.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Its uWSGI release (`uwsgi_version` in uwsgiconfig.py).
    pub(crate) fn version(&self) -> &str {
        &self.version
    }

    /// Open the tree at `dir`: it must hold `uwsgiconfig.py` (with its version line) and
    /// `plugins/python/uwsgiplugin.py`.
    pub(crate) fn open(dir: &Path) -> Result<UwsgiTree> {
        match fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(Error::NotADirectory {
                    path: dir.to_path_buf(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotADirectory {
                    path: dir.to_path_buf(),
                })
            }
            Err(e) => return Err(Error::io("open", dir, e)),
        }
        let config = dir.join(FileKind::UwsgiConfig.rel_path());
        let Some(bytes) = read_optional(&config)? else {
            return Err(Error::NotATree {
                dir: dir.to_path_buf(),
                hint: tree_below(dir),
            });
        };
        let doc = Doc::decode(&bytes, &config)?;
        let version = VERSION_LINE
            .captures(&doc.body)
            .map(|c| c[1].to_string())
            .ok_or_else(|| Error::NoVersion {
                path: config.clone(),
            })?;
        let plugin = dir.join(FileKind::PythonPlugin.rel_path());
        if !plugin.is_file() {
            return Err(Error::MissingFile {
                path: plugin,
                what: "the python plugin's build script, which computes its link flags",
            });
        }
        Ok(UwsgiTree {
            root: dir.to_path_buf(),
            version,
        })
    }
}

fn tree_below(dir: &Path) -> Option<PathBuf> {
    let entries = fs::read_dir(dir).ok()?;
    let found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("uwsgiconfig.py").is_file())
        .collect();
    match found.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// What happened to one recipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RecipeReport {
    /// The recipe id.
    pub id: &'static str,
    /// Its outcome.
    pub outcome: Outcome,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FileReport {
    /// Path relative to the tree.
    pub path: String,
    /// Its outcome.
    pub outcome: Outcome,
    /// Its recipes' outcomes (empty for the plan file).
    pub recipes: Vec<RecipeReport>,
}

/// The result of one operation on a tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The tree's folder.
    pub tree: PathBuf,
    /// The uWSGI version.
    pub uwsgi_version: String,
    /// The interpreter planned for (`None` for revert).
    pub python: Option<PathBuf>,
    /// The plan's mode (`None` for revert).
    pub mode: Option<Mode>,
    /// The static archive of the plan.
    pub libpython: Option<PathBuf>,
    /// The plan itself (`None` for revert).
    pub plan: Option<LinkPlan>,
    /// The variant of `uwsgiplugin.py`.
    pub plugin_variant: PluginVariant,
    /// Every file looked at.
    pub files: Vec<FileReport>,
}

impl Report {
    /// Whether `check` found something to do.
    pub fn needs_work(&self) -> bool {
        self.files.iter().any(|f| f.outcome == Outcome::NeedsPatch)
    }

    /// Whether an operation changed (or would change) any file.
    pub fn changed(&self) -> bool {
        self.files.iter().any(|f| {
            matches!(
                f.outcome,
                Outcome::Applied | Outcome::Reverted | Outcome::NeedsPatch
            )
        })
    }
}

struct Prepared {
    changes: Vec<Change>,
    report: Report,
}

fn read_tree_file(tree: &UwsgiTree, file: FileKind) -> Result<(PathBuf, Vec<u8>, String)> {
    let path = tree.root.join(file.rel_path());
    let bytes = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    let doc = std::str::from_utf8(&bytes)
        .map_err(|e| Error::NotUtf8 {
            path: path.clone(),
            offset: e.valid_up_to(),
        })?
        .to_string();
    Ok((path, bytes, doc))
}

/// Work out every file's new bytes for `plan` (apply) or for upstream (revert, `plan = None`).
fn prepare(
    tree: &UwsgiTree,
    plan: Option<&LinkPlan>,
    changed_outcome: Outcome,
) -> Result<Prepared> {
    let mut changes = Changes {
        changes: Vec::new(),
        files: Vec::new(),
        changed_outcome,
    };
    let mut plugin_variant = PluginVariant::Unknown;
    for file in FileKind::ALL {
        let (path, before, text) = read_tree_file(tree, file)?;
        let rel = Path::new(file.rel_path());
        let (after, recipes) = match plan {
            Some(_) => {
                let patched = patch_text(file, &text, rel).map_err(|e| e.in_dir(&tree.root))?;
                if file == FileKind::PythonPlugin {
                    plugin_variant = patched.variant;
                }
                (patched.text, patched.recipes)
            }
            None => {
                let upstream = revert_text(&text, rel).map_err(|e| e.in_dir(&tree.root))?;
                if file == FileKind::PythonPlugin {
                    plugin_variant = PluginVariant::detect(&Doc::from_str(&upstream).body);
                }
                (upstream, Vec::new())
            }
        };
        let change = Change {
            path,
            before: Some(before),
            after: Some(after.into_bytes()),
        };
        changes.add(file.rel_path(), change, recipes);
    }
    let plan_path = tree.root.join(PLAN_FILE);
    let plan_before = read_optional(&plan_path)?;
    let plan_after = match plan {
        Some(plan) => plan_file_bytes(&plan_path, plan_before.as_deref(), plan)?,
        None => None,
    };
    let change = Change {
        path: plan_path,
        before: plan_before,
        after: plan_after,
    };
    changes.add(PLAN_FILE, change, Vec::new());
    if plan.is_none() {
        changes.remove_build_artifacts(tree)?;
    }
    let report = Report {
        tree: tree.root.clone(),
        uwsgi_version: tree.version.clone(),
        python: None,
        mode: plan.map(|p| p.mode),
        libpython: plan.and_then(|p| p.libpython.clone()),
        plan: plan.cloned(),
        plugin_variant,
        files: changes.files,
    };
    Ok(Prepared {
        changes: changes.changes,
        report,
    })
}

/// The changes [`prepare`] collects, and the report line of each file looked at.
struct Changes {
    changes: Vec<Change>,
    files: Vec<FileReport>,
    /// What a change is called in the report (`applied`, `reverted`).
    changed_outcome: Outcome,
}

impl Changes {
    /// For revert: a build of the patched tree wrote the runtime finder's source (and compiled
    /// it next to it), and an unfinished one leaves its mark; they go too.
    fn remove_build_artifacts(&mut self, tree: &UwsgiTree) -> Result<()> {
        for rel in [
            RUNTIME_FINDER_SOURCE,
            RUNTIME_FINDER_OBJECT,
            UNFINISHED_BUILD_MARK,
        ] {
            let path = tree.root.join(rel);
            if let Some(before) = read_optional(&path)? {
                let change = Change {
                    path,
                    before: Some(before),
                    after: None,
                };
                self.add(rel, change, Vec::new());
            }
        }
        Ok(())
    }

    /// Report the file at `rel` (with its recipes' outcomes), and keep `change` if it changes
    /// anything.
    fn add(&mut self, rel: &str, change: Change, recipes: Vec<(&'static str, Outcome)>) {
        let changed = change.after != change.before;
        let outcome = |outcome| match outcome {
            Outcome::Applied if changed => self.changed_outcome,
            Outcome::Applied => Outcome::Unchanged,
            other => other,
        };
        let recipes = recipes
            .into_iter()
            .map(|(id, recipe)| RecipeReport {
                id,
                outcome: outcome(recipe),
            })
            .collect();
        self.files.push(FileReport {
            path: rel.to_string(),
            outcome: outcome(Outcome::Applied),
            recipes,
        });
        if changed {
            self.changes.push(change);
        }
    }
}

/// The plan file's new bytes with `plan` in it (the plans for other Pythons kept); the same
/// bytes when the plan for this Python is already there.
fn plan_file_bytes(
    plan_path: &Path,
    before: Option<&[u8]>,
    plan: &LinkPlan,
) -> Result<Option<Vec<u8>>> {
    let existing = match before {
        Some(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|e| Error::BadPlan {
                path: plan_path.to_path_buf(),
                problem: e.to_string(),
            })?;
            Some(PlanFile::parse(text, plan_path)?)
        }
        None => None,
    };
    Ok(match existing {
        Some(existing) if existing.plan_for(&plan.python) == Some(plan) => {
            before.map(<[u8]>::to_vec)
        }
        existing => Some(
            PlanFile::with_plan(existing.as_ref(), plan.clone())
                .to_text()
                .into_bytes(),
        ),
    })
}

/// The plan for the target, after checking that the tree's release builds for it (before any
/// archive is searched for or extracted).
fn make_plan(tree: &UwsgiTree, options: &Options) -> Result<(Option<PathBuf>, LinkPlan)> {
    if let Target::Plan(plan) = &options.target {
        let id = &plan.python;
        if options.release_check {
            check_python_support(&tree.root, &tree.version, &id.checked())?;
        }
        return Ok((None, (**plan).clone()));
    }
    let interp = options.interpreter(Operation::Apply)?;
    if options.release_check {
        check_python_support(&tree.root, &tree.version, &interp.checked())?;
    }
    let plan = LinkPlan::new(&interp, &options.plan)?;
    Ok((Some(interp.path.clone()), plan))
}

/// Plan (launching the interpreter, unlocked), then lock the tree and work out the changes.
/// The lock is returned so a writer holds it until its last rename.
fn planned(
    dir: &Path,
    options: &Options,
    changed_outcome: Outcome,
) -> Result<(Prepared, TreeLock)> {
    let tree = UwsgiTree::open(dir)?;
    let (python, plan) = make_plan(&tree, options)?;
    let writing = changed_outcome == Outcome::Applied;
    let lock = TreeLock::acquire(&tree.root, writing)?;
    if writing {
        clean_leftovers(&tree)?;
    }
    let mut prepared = prepare(&tree, Some(&plan), changed_outcome)?;
    prepared.report.python = python;
    Ok((prepared, lock))
}

/// Temporary files of a run that was killed before its renames.
fn clean_leftovers(tree: &UwsgiTree) -> Result<()> {
    remove_stale_temps(&tree.root)?;
    let plugin_dir = tree.root.join("plugins/python");
    remove_stale_temps(&plugin_dir)
}

/// Rewrite the tree at `dir` for the target interpreter and write its plan. All files change
/// or none does. Runs on the same tree take turns (a lock on the folder), so concurrent runs
/// for different interpreters all end up in the plan file.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let tree = dir.path();
/// # for file in ["uwsgiconfig.py", "plugins/python/uwsgiplugin.py"] {
/// #     std::fs::create_dir_all(tree.join(file).parent().unwrap())?;
/// #     std::fs::copy(std::path::Path::new("vendor-samples/2.0.31").join(file), tree.join(file))?;
/// # }
/// # let probe = "vendor-samples/sysconfig/pyenv-cpython-3.12.1.json".as_ref();
/// # let options = patch_uwsgi::Options::default()
/// #     .with_target(patch_uwsgi::Target::Probed(Box::new(patch_uwsgi::Interpreter::load(probe)?)))
/// #     .with_plan(patch_uwsgi::PlanOptions::default().with_mode(patch_uwsgi::ModeChoice::Nolib));
/// // `tree` is a uWSGI source tree; `options` name the target Python (here a saved probe).
/// use patch_uwsgi::{apply, Outcome};
/// let report = apply(tree, &options)?;
/// assert_eq!(report.uwsgi_version, "2.0.31");
/// assert!(report.files.iter().any(|f| f.outcome == Outcome::Applied));
/// // Again: nothing left to do.
/// assert!(apply(tree, &options)?.files.iter().all(|f| f.outcome == Outcome::Unchanged));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn apply(dir: &Path, options: &Options) -> Result<Report> {
    let (prepared, _lock) = planned(dir, options, Outcome::Applied)?;
    commit(&prepared.changes)?;
    Ok(prepared.report)
}

/// Change nothing; report `needs-patch` for every file `apply` would change.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let tree = dir.path();
/// # for file in ["uwsgiconfig.py", "plugins/python/uwsgiplugin.py"] {
/// #     std::fs::create_dir_all(tree.join(file).parent().unwrap())?;
/// #     std::fs::copy(std::path::Path::new("vendor-samples/2.0.31").join(file), tree.join(file))?;
/// # }
/// # let probe = "vendor-samples/sysconfig/pyenv-cpython-3.12.1.json".as_ref();
/// # let options = patch_uwsgi::Options::default()
/// #     .with_target(patch_uwsgi::Target::Probed(Box::new(patch_uwsgi::Interpreter::load(probe)?)))
/// #     .with_plan(patch_uwsgi::PlanOptions::default().with_mode(patch_uwsgi::ModeChoice::Nolib));
/// use patch_uwsgi::{check, Outcome};
/// let report = check(tree, &options)?;
/// assert!(report.files.iter().any(|f| f.outcome == Outcome::NeedsPatch));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check(dir: &Path, options: &Options) -> Result<Report> {
    Ok(planned(dir, options, Outcome::NeedsPatch)?.0.report)
}

/// Change nothing; return the report and the unified diff `apply` would make.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let tree = dir.path();
/// # for file in ["uwsgiconfig.py", "plugins/python/uwsgiplugin.py"] {
/// #     std::fs::create_dir_all(tree.join(file).parent().unwrap())?;
/// #     std::fs::copy(std::path::Path::new("vendor-samples/2.0.31").join(file), tree.join(file))?;
/// # }
/// # let probe = "vendor-samples/sysconfig/pyenv-cpython-3.12.1.json".as_ref();
/// # let options = patch_uwsgi::Options::default()
/// #     .with_target(patch_uwsgi::Target::Probed(Box::new(patch_uwsgi::Interpreter::load(probe)?)))
/// #     .with_plan(patch_uwsgi::PlanOptions::default().with_mode(patch_uwsgi::ModeChoice::Nolib));
/// let (_report, diff) = patch_uwsgi::diff(tree, &options)?;
/// assert!(diff.contains("+# >>> patch-uwsgi:plugin-link-plan"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn diff(dir: &Path, options: &Options) -> Result<(Report, String)> {
    let (prepared, _lock) = planned(dir, options, Outcome::NeedsPatch)?;
    let mut out = String::new();
    for change in &prepared.changes {
        let rel = change
            .path
            .strip_prefix(dir)
            .unwrap_or(&change.path)
            .display()
            .to_string();
        let before =
            String::from_utf8_lossy(change.before.as_deref().unwrap_or_default()).into_owned();
        let after =
            String::from_utf8_lossy(change.after.as_deref().unwrap_or_default()).into_owned();
        let old_name = if change.before.is_some() {
            format!("a/{rel}")
        } else {
            "/dev/null".to_string()
        };
        let new_name = if change.after.is_some() {
            format!("b/{rel}")
        } else {
            "/dev/null".to_string()
        };
        let text_diff = similar::TextDiff::from_lines(&before, &after);
        out.push_str(
            &text_diff
                .unified_diff()
                .context_radius(3)
                .header(&old_name, &new_name)
                .to_string(),
        );
    }
    Ok((prepared.report, out))
}

/// Give back the upstream bytes of both files and remove the plan file. Needs no interpreter.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let tree = dir.path();
/// # for file in ["uwsgiconfig.py", "plugins/python/uwsgiplugin.py"] {
/// #     std::fs::create_dir_all(tree.join(file).parent().unwrap())?;
/// #     std::fs::copy(std::path::Path::new("vendor-samples/2.0.31").join(file), tree.join(file))?;
/// # }
/// # let probe = "vendor-samples/sysconfig/pyenv-cpython-3.12.1.json".as_ref();
/// # let options = patch_uwsgi::Options::default()
/// #     .with_target(patch_uwsgi::Target::Probed(Box::new(patch_uwsgi::Interpreter::load(probe)?)))
/// #     .with_plan(patch_uwsgi::PlanOptions::default().with_mode(patch_uwsgi::ModeChoice::Nolib));
/// let upstream = std::fs::read(tree.join("uwsgiconfig.py"))?;
/// patch_uwsgi::apply(tree, &options)?;
/// patch_uwsgi::revert(tree)?;
/// assert_eq!(std::fs::read(tree.join("uwsgiconfig.py"))?, upstream);
/// assert!(!tree.join(patch_uwsgi::PLAN_FILE).exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn revert(dir: &Path) -> Result<Report> {
    let tree = UwsgiTree::open(dir)?;
    let _lock = TreeLock::acquire(&tree.root, true)?;
    clean_leftovers(&tree)?;
    let prepared = prepare(&tree, None, Outcome::Reverted)?;
    commit(&prepared.changes)?;
    Ok(prepared.report)
}
