//! The link plan: how the python plugin must be linked for one interpreter, and the plan file
//! the patched `uwsgiplugin.py` reads at build time. Making one asks the interpreter
//! ([`interpreter`], which runs `probe.py`), finds its static archive ([`libpython`]) and
//! decides `-no-pie` by a probe link (`link`). Uses `error`, `process`, `cache` and `files` only.

pub mod interpreter;
pub mod libpython;
mod link;
pub mod locate;

pub(crate) use link::{
    compiler_said, describe, failed_with_and_without_no_pie, is_pie_relocation_error,
    remember_no_pie, run_compiler,
};
pub use link::{Compiler, PieDecision};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use interpreter::Interpreter;
use libpython::{locate_libpython, Located, SearchOptions, Source};
use link::needs_no_pie_cached;

/// Path of the plan file inside a uWSGI tree.
pub const PLAN_FILE: &str = crate::names::PLAN_FILE;

/// How libpython gets into the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Mode {
    /// Embed the static archive in the uwsgi executable.
    Static,
    /// Link no libpython (shared plugins, pyuwsgi).
    Nolib,
    /// The interpreter has a usable libpython.so: leave uWSGI's own flags alone.
    Shared,
}

impl Mode {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Static => "static",
            Mode::Nolib => "nolib",
            Mode::Shared => "shared",
        }
    }
}

/// The mode asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ModeChoice {
    /// `shared` when the interpreter has a usable libpython.so, else `static`.
    #[default]
    Auto,
    /// Always `static`.
    Static,
    /// Always `nolib`.
    Nolib,
}

/// Which Python a plan is made for: the one question every operation starts with.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Target {
    /// `python`, then `python3` on `PATH` (cibuildwheel puts the Python being built first on
    /// `PATH` as `python`), probed.
    #[default]
    OnPath,
    /// This interpreter, probed.
    Python(PathBuf),
    /// An interpreter already probed, e.g. a saved probe ([`Interpreter::load`]): nothing is
    /// launched.
    Probed(Box<Interpreter>),
    /// A ready plan: no interpreter is launched and no archive searched. Only `apply`, `check`
    /// and `diff` accept it; `locate` and `verify` need an interpreter.
    Plan(Box<LinkPlan>),
}

/// The identity a plan is made for; the patched plugin compares it with the running Python.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PythonId {
    /// `X.Y.Z`.
    pub version: String,
    /// `sys.abiflags`.
    pub abiflags: String,
    /// Real path of the base prefix.
    pub prefix: String,
}

impl PythonId {
    /// It, as the release checks see it (a plan records abiflags, not `Py_GIL_DISABLED`).
    pub fn checked(&self) -> crate::releases::CheckedPython<'_> {
        crate::releases::CheckedPython {
            path: std::path::Path::new(&self.prefix),
            version: &self.version,
            abiflags: &self.abiflags,
            free_threaded: crate::releases::is_free_threaded(&self.abiflags, None),
        }
    }
}

/// How to link the python plugin for one interpreter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LinkPlan {
    /// The interpreter it is for.
    pub python: PythonId,
    /// The mode.
    pub mode: Mode,
    /// Absolute path of the static archive (`static` mode only).
    pub libpython: Option<PathBuf>,
    /// Where the archive was found.
    pub source: Option<Source>,
    /// The plugin's `LIBS` for the executable link, in order (after every object file).
    pub libs: Vec<String>,
    /// The plugin's `LIBS` for a shared plugin (no libpython).
    pub nolib_libs: Vec<String>,
    /// Flags added to the plugin's `LDFLAGS` for the executable link.
    pub ldflags: Vec<String>,
    /// The interpreter's library folders: `-L`, `-Wl,-rpath,` and `LD_RUN_PATH` into them go.
    pub python_lib_dirs: Vec<String>,
    /// Whether the executable must be linked `-no-pie` (non-PIC archive).
    pub no_pie: bool,
}

/// A plan, the archive search that led to it, and how `-no-pie` was decided.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The plan.
    pub plan: LinkPlan,
    /// The search result for a static plan (every candidate looked at).
    pub located: Option<Located>,
    /// How `-no-pie` was decided (`None` when no archive is planned).
    pub pie: Option<PieDecision>,
}

/// Options for making a plan.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PlanOptions {
    /// The mode asked for.
    pub mode: ModeChoice,
    /// Where to look for the archive.
    pub search: SearchOptions,
    /// Force `-no-pie` on (`Some(true)`) or off; `None` decides from the archive.
    pub no_pie: Option<bool>,
    /// The C compiler for the `-no-pie` probe link (and `verify`).
    pub compiler: Compiler,
}

impl PlanOptions {
    /// With the mode asked for.
    pub fn with_mode(mut self, mode: ModeChoice) -> PlanOptions {
        self.mode = mode;
        self
    }

    /// With other archive search options.
    pub fn with_search(mut self, search: SearchOptions) -> PlanOptions {
        self.search = search;
        self
    }

    /// With `-no-pie` forced on or off (`None`: decided from the archive).
    pub fn with_no_pie(mut self, no_pie: Option<bool>) -> PlanOptions {
        self.no_pie = no_pie;
        self
    }

    /// With another C compiler.
    pub fn with_compiler(mut self, compiler: Compiler) -> PlanOptions {
        self.compiler = compiler;
        self
    }
}

/// The libraries the static archive needs on glibc older than 2.34, where libpthread, libdl,
/// libutil and librt were separate libraries.
const OLD_GLIBC_LIBS: [&str; 5] = ["-lpthread", "-ldl", "-lutil", "-lm", "-lrt"];

/// The words of a sysconfig flags value. Makefile continuation lines reach sysconfig flattened
/// on some builds (Debian's `MODLIBS = '-lm ... -lexpat \ \ -lz'`): a lone `\` is not a flag,
/// and handed to the linker it is a file name (`ld: cannot find \`).
fn split_flags(value: &Option<String>) -> Vec<String> {
    value
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .filter(|word| *word != "\\")
        .map(str::to_string)
        .collect()
}

/// Driver options only clang knows (or, for `-fuse-ld=lld`, that need a linker only a clang
/// toolchain brings). manylinux and musllinux build CPython with clang named `gcc` and remove
/// it from the image afterwards, so a flag such a build recorded in sysconfig would reach the
/// image's real gcc when uWSGI links, and gcc stops on it (`unrecognized command-line
/// option`). None has been seen in the `LIBS`, `MODLIBS` and `SYSLIBS` of the clang-built
/// CPythons tested here; they are dropped from the link line all the same, as gcc would
/// otherwise refuse the whole link.
fn clang_only(flag: &str) -> bool {
    const OPTIONS: [&str; 3] = ["-Qunused-arguments", "-fuse-ld=lld", "-fno-integrated-as"];
    const WITH_VALUE: [&str; 12] = [
        "--rtlib=",
        "-rtlib=",
        "--unwindlib=",
        "-unwindlib=",
        "--gcc-toolchain=",
        "-gcc-toolchain=",
        "--gcc-install-dir=",
        "--gcc-triple=",
        "--target=",
        "--config=",
        "-fuse-ld=ld.lld",
        "--ld-path=",
    ];
    OPTIONS.contains(&flag) || WITH_VALUE.iter().any(|prefix| flag.starts_with(prefix))
}

fn glibc_before_2_34(glibc: &str) -> bool {
    let mut parts = glibc.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    match (parts.next(), parts.next()) {
        (Some(2), Some(minor)) => minor < 34,
        _ => false,
    }
}

impl LinkPlan {
    /// Make the plan for `interp`, locating the archive when the mode needs one.
    pub fn new(interp: &Interpreter, options: &PlanOptions) -> Result<LinkPlan> {
        Ok(Self::make(interp, options)?.plan)
    }

    /// Like [`LinkPlan::new`], also returning the search result and how `-no-pie` was decided.
    pub fn make(interp: &Interpreter, options: &PlanOptions) -> Result<Planned> {
        let mode = match options.mode {
            ModeChoice::Nolib => Mode::Nolib,
            ModeChoice::Static => Mode::Static,
            // An archive named by the user (option or variable) asks for static.
            ModeChoice::Auto
                if has_usable_shared_lib(interp)
                    && options.search.explicit.is_none()
                    && options.search.env.is_none() =>
            {
                Mode::Shared
            }
            ModeChoice::Auto => Mode::Static,
        };
        let located = match mode {
            Mode::Static => Some(locate_libpython(interp, &options.search)?),
            _ => None,
        };
        if let Some(found) = &located {
            // The plan file is JSON and uWSGI's link line a shell string: both need text.
            if found.path.to_str().is_none() {
                return Err(Error::BadLibpython {
                    path: found.path.clone(),
                    problem: "its path is not valid UTF-8, so it cannot be written into the plan; \
                              copy the archive to a UTF-8 path and pass --libpython"
                        .to_string(),
                });
            }
        }
        let mut plan = Self::with_archive(
            interp,
            mode,
            located.as_ref(),
            options.no_pie.unwrap_or(false),
        );
        let pie = match (&located, options.no_pie) {
            (None, _) => None,
            (Some(_), Some(_)) => Some(PieDecision::Given),
            (Some(found), None) => {
                // Decide -no-pie by a probe link, not by image name: a non-PIC archive
                // (manylinux) fails in a PIE executable with a relocation error.
                let (no_pie, decision) = needs_no_pie_cached(
                    &options.compiler,
                    &plan.libs,
                    &found.path,
                    options.search.cache_dir.as_deref(),
                )?;
                if no_pie {
                    plan.set_no_pie();
                }
                Some(decision)
            }
        };
        Ok(Planned { plan, located, pie })
    }

    /// Link the executable `-no-pie` (a static plan only; the libraries stay as they are).
    pub(crate) fn set_no_pie(&mut self) {
        if self.mode == Mode::Static && !self.no_pie {
            self.no_pie = true;
            self.ldflags.push("-no-pie".to_string());
        }
    }

    /// Make the plan from an archive already located (no search; only the library folders'
    /// real paths are read from disk).
    pub fn with_archive(
        interp: &Interpreter,
        mode: Mode,
        located: Option<&Located>,
        no_pie: bool,
    ) -> LinkPlan {
        let python_lib_dirs = python_lib_dirs(interp);
        let (nolib_libs, system) = kept_libs(interp, &python_lib_dirs);
        let (libs, ldflags) = match (mode, located) {
            (Mode::Static, Some(found)) => {
                // One token, so uwsgiconfig.py's uniq_warnings cannot drop a repeated
                // --whole-archive; whole-archive keeps the members uWSGI never references but
                // extension modules need (Py_GetArgcArgv, ...).
                let mut libs = vec![format!(
                    "-Wl,--whole-archive,{},--no-whole-archive",
                    found.path.display()
                )];
                libs.extend(system);
                (
                    libs,
                    if no_pie {
                        vec!["-no-pie".to_string()]
                    } else {
                        Vec::new()
                    },
                )
            }
            (Mode::Nolib, _) => (nolib_libs.clone(), Vec::new()),
            _ => (Vec::new(), Vec::new()),
        };
        LinkPlan {
            python: PythonId {
                version: interp.version.clone(),
                abiflags: interp.abiflags.clone(),
                prefix: interp.base_prefix.clone(),
            },
            mode,
            libpython: located
                .filter(|_| mode == Mode::Static)
                .map(|l| l.path.clone()),
            source: located.filter(|_| mode == Mode::Static).map(|l| l.source),
            libs,
            nolib_libs,
            ldflags,
            python_lib_dirs,
            no_pie: no_pie && mode == Mode::Static,
        }
    }
}

/// `LIBDIR` and `LIBPL`, each as written and as its real path.
fn python_lib_dirs(interp: &Interpreter) -> Vec<String> {
    let mut dirs: Vec<String> = Vec::new();
    for dir in [&interp.config.LIBDIR, &interp.config.LIBPL]
        .into_iter()
        .flatten()
    {
        for form in [
            dir.clone(),
            std::fs::canonicalize(dir)
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ] {
            if !form.is_empty() && !dirs.contains(&form) {
                dirs.push(form);
            }
        }
    }
    dirs
}

/// The interpreter's libraries for a shared plugin (`LIBS`, `SYSLIBS`) and for the executable
/// link (`LIBS`, `MODLIBS`, `SYSLIBS`, and glibc's split-out libraries before 2.34), each
/// once. `-lpython`, any search path or run path into the build machine's Python
/// (`python_lib_dirs`) and clang-only driver options go: a shipped binary must not look for
/// libraries in the build container's prefix.
fn kept_libs(interp: &Interpreter, python_lib_dirs: &[String]) -> (Vec<String>, Vec<String>) {
    let into_python = |dir: &str| python_lib_dirs.iter().any(|d| d == dir);
    let keep = |flag: &String| {
        !clang_only(flag)
            && !flag.starts_with("-lpython")
            && !flag.strip_prefix("-L").is_some_and(into_python)
            && !flag.strip_prefix("-Wl,-rpath,").is_some_and(into_python)
            && !flag.strip_prefix("-Wl,-rpath=").is_some_and(into_python)
    };
    let push = |flags: Vec<String>, out: &mut Vec<String>| {
        for flag in flags {
            if keep(&flag) && !out.contains(&flag) {
                out.push(flag);
            }
        }
    };
    let (mut nolib_libs, mut system) = (Vec::new(), Vec::new());
    push(split_flags(&interp.config.LIBS), &mut nolib_libs);
    push(split_flags(&interp.config.SYSLIBS), &mut nolib_libs);
    push(split_flags(&interp.config.LIBS), &mut system);
    push(split_flags(&interp.config.MODLIBS), &mut system);
    push(split_flags(&interp.config.SYSLIBS), &mut system);
    if glibc_before_2_34(&interp.glibc) {
        let old_glibc = OLD_GLIBC_LIBS.iter().map(|s| s.to_string()).collect();
        push(old_glibc, &mut system);
    }
    (nolib_libs, system)
}

/// Whether `LIBDIR/LDLIBRARY` is a shared library that exists (symlinks followed).
fn has_usable_shared_lib(interp: &Interpreter) -> bool {
    if !interp.shared() {
        return false;
    }
    match (&interp.config.LIBDIR, &interp.config.LDLIBRARY) {
        (Some(dir), Some(name)) if name.contains(".so") || name.ends_with(".dylib") => {
            Path::new(dir).join(name).is_file()
        }
        _ => false,
    }
}

/// The plan file: one plan per interpreter, so one patched tree serves every Python.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PlanFile {
    /// Format number of this file.
    pub format: u32,
    /// What wrote it.
    pub generator: String,
    /// The plans, sorted by interpreter.
    pub plans: Vec<LinkPlan>,
}

impl PlanFile {
    /// Parse a plan file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<PlanFile> {
        let file: PlanFile = serde_json::from_str(text).map_err(|e| Error::BadPlan {
            path: path.to_path_buf(),
            problem: e.to_string(),
        })?;
        if file.format != 1 {
            return Err(Error::BadPlan {
                path: path.to_path_buf(),
                problem: format!("format {} is not 1", file.format),
            });
        }
        Ok(file)
    }

    /// A file holding `existing`'s plans for other interpreters plus `plan`.
    pub fn with_plan(existing: Option<&PlanFile>, plan: LinkPlan) -> PlanFile {
        let mut plans: Vec<LinkPlan> = existing
            .map(|f| {
                f.plans
                    .iter()
                    .filter(|p| p.python != plan.python)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        plans.push(plan);
        plans.sort_by(|a, b| a.python.cmp(&b.python));
        PlanFile {
            format: 1,
            generator: format!("patch-uwsgi {}", env!("CARGO_PKG_VERSION")),
            plans,
        }
    }

    /// The plan for one interpreter.
    pub fn plan_for(&self, python: &PythonId) -> Option<&LinkPlan> {
        self.plans.iter().find(|p| &p.python == python)
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("plan serializes");
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use interpreter::ConfigVars;

    #[test]
    fn split_flags_table() {
        let cases: &[(Option<&str>, &[&str])] = &[
            (None, &[]),
            (Some(""), &[]),
            (Some("-ldl  -lm"), &["-ldl", "-lm"]),
            // Debian sid's python3.14 MODLIBS, continuation lines flattened.
            (
                Some("-lm -lmpdec -lexpat \\ \\ \\ \\ -lz"),
                &["-lm", "-lmpdec", "-lexpat", "-lz"],
            ),
            // A backslash inside a word is the word's own.
            (Some("-L/odd\\dir -lm"), &["-L/odd\\dir", "-lm"]),
        ];
        for (value, expected) in cases {
            assert_eq!(
                split_flags(&value.map(str::to_string)),
                *expected,
                "{value:?}"
            );
        }
    }

    #[test]
    fn clang_only_table() {
        let cases: &[(&str, bool)] = &[
            ("-Qunused-arguments", true),
            ("--rtlib=compiler-rt", true),
            ("-rtlib=libgcc", true),
            ("--unwindlib=none", true),
            ("--gcc-toolchain=/usr", true),
            ("--gcc-triple=x86_64-linux-gnu", true),
            ("--target=x86_64-alpine-linux-musl", true),
            ("--config=/opt/clang/bin/clang.cfg", true),
            ("-fuse-ld=lld", true),
            ("--ld-path=/opt/clang/bin/ld.lld", true),
            // What gcc takes stays, whoever recorded it.
            ("-fuse-ld=gold", false),
            ("-lpthread", false),
            ("-lm", false),
            ("-Wl,--as-needed", false),
            ("-L/usr/local/lib", false),
            ("-Xlinker", false),
            ("-export-dynamic", false),
            ("-pthread", false),
        ];
        for (flag, expected) in cases {
            assert_eq!(clang_only(flag), *expected, "{flag}");
        }
    }

    /// A clang-built CPython's link flags as sysconfig could record them: the plan's link
    /// line keeps the libraries and loses what only clang's driver takes, for the executable
    /// and for the nolib mode alike.
    #[test]
    fn clang_only_flags_never_reach_the_link_line() {
        let interp = Interpreter {
            path: PathBuf::from("/opt/python/cp313-cp313/bin/python"),
            implementation: "CPython".to_string(),
            version: "3.13.5".to_string(),
            abiflags: String::new(),
            executable: "/opt/python/cp313-cp313/bin/python".to_string(),
            prefix: "/opt/_internal/cpython-3.13.5".to_string(),
            base_prefix: "/opt/_internal/cpython-3.13.5".to_string(),
            glibc: "2.31".to_string(),
            builtin_modules: Vec::new(),
            config: ConfigVars {
                LIBS: Some("-lpthread --rtlib=compiler-rt -ldl -Qunused-arguments".to_string()),
                MODLIBS: Some("-fuse-ld=lld -lz".to_string()),
                SYSLIBS: Some("-lm --unwindlib=libgcc".to_string()),
                ..ConfigVars::default()
            },
            depends_on: Vec::new(),
            lib_dynload: None,
            stdlib: None,
            platlibdir: None,
            machine: None,
        };
        let archive = Located::new(PathBuf::from("/tmp/libpython3.13.a"), Source::Explicit);
        let executable = LinkPlan::with_archive(&interp, Mode::Static, Some(&archive), false);
        let nolib = LinkPlan::with_archive(&interp, Mode::Nolib, None, false);
        for libs in [&executable.libs, &executable.nolib_libs, &nolib.libs] {
            assert!(libs.iter().all(|flag| !clang_only(flag)), "{libs:?}");
            for wanted in ["-lpthread", "-ldl", "-lm"] {
                assert!(
                    libs.iter().any(|flag| flag == wanted),
                    "{wanted} in {libs:?}"
                );
            }
        }
        assert!(
            executable.libs.iter().any(|flag| flag == "-lz"),
            "{:?}",
            executable.libs
        );
    }
}
