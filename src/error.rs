//! The one error type of the library. It sits below every other module and imports none of
//! them: what a message needs from elsewhere (a release-table row, the archives tried) is
//! stored as plain data.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Convenience alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong. Every variant names the file or program it is about, what was
/// expected, and what to do; I/O errors always carry their path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call on a path failed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done ("read", "write", "rename", ...).
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The tree's uWSGI release cannot build its python plugin for the target CPython.
    #[error(
        "{tree}: uWSGI {uwsgi_version} cannot build its python plugin for CPython {python_version}: {reason}"
    )]
    UnsupportedPython {
        /// The uWSGI tree.
        tree: PathBuf,
        /// Its release (`uwsgi_version` in uwsgiconfig.py).
        uwsgi_version: String,
        /// The target interpreter's `X.Y.Z`.
        python_version: String,
        /// The cibuildwheel `skip` selector that leaves this Python out (`cp313-*`).
        selector: String,
        /// What the release table says: the first release that builds (or the newest one
        /// checked), what the release before stops on, and the two ways out.
        reason: String,
    },

    /// The target interpreter is a free-threaded build, which patch-uwsgi does not support.
    #[error(
        "{python}: CPython {version} is a free-threaded build (sys.abiflags {abiflags:?}), which patch-uwsgi does not support: no uWSGI release declares support for running without the GIL, and the runtime finder and bundle know only the standard layout (lib/pythonX.Y, python3.X on PATH), not the free-threaded one (lib/pythonX.Yt). Leave free-threaded Pythons out of the build (cibuildwheel: skip = \"{selector}\"); --no-release-check builds anyway"
    )]
    FreeThreadedPython {
        /// The interpreter.
        python: PathBuf,
        /// Its `X.Y.Z`.
        version: String,
        /// Its `sys.abiflags`.
        abiflags: String,
        /// The cibuildwheel `skip` selector for every free-threaded CPython.
        selector: &'static str,
    },

    /// The folder does not exist or is not a folder.
    #[error(
        "{path} is not a folder: give the uWSGI source tree (the folder holding uwsgiconfig.py)"
    )]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },

    /// The folder exists but holds no `uwsgiconfig.py`.
    #[error("{dir} is not a uWSGI source tree: it has no uwsgiconfig.py{}", hint_text(.hint))]
    NotATree {
        /// The folder given.
        dir: PathBuf,
        /// The one uWSGI tree found one level below, if exactly one was.
        hint: Option<PathBuf>,
    },

    /// A file the rewrite needs is missing from the tree.
    #[error("{path} is missing: a uWSGI tree with the python plugin has this file ({what})")]
    MissingFile {
        /// The missing file.
        path: PathBuf,
        /// Why it is needed.
        what: &'static str,
    },

    /// `uwsgiconfig.py` has no `uwsgi_version = '...'` line.
    #[error("{path} has no line `uwsgi_version = '...'`: expected uWSGI's own uwsgiconfig.py; restore it from the uWSGI release")]
    NoVersion {
        /// The file.
        path: PathBuf,
    },

    /// A file is not valid UTF-8.
    #[error("{path} is not valid UTF-8 (first bad byte at offset {offset}): uWSGI's build files are UTF-8 text; restore the upstream file")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },

    /// A recipe's anchor was not found, or found more than once.
    #[error("{path}: recipe `{recipe}` cannot place its change: expected {expected}, found {found}. \
             The file differs from every uWSGI release this tool knows; restore the upstream file or report the uWSGI version")]
    Anchor {
        /// The file.
        path: PathBuf,
        /// The recipe id.
        recipe: &'static str,
        /// What the recipe looks for.
        expected: &'static str,
        /// What it found instead ("nothing", "3 matches at lines 4, 9, 12").
        found: String,
    },

    /// A patch-uwsgi marker is damaged (a begin without an end, text edited by hand, ...).
    #[error("{path}, line {line}: damaged patch-uwsgi block: {problem}. Restore the upstream file (or remove the block by hand), then run `patch_uwsgi apply` again")]
    DamagedBlock {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },

    /// The file already carries a block appended by hand or by a shell script.
    #[error("{path}, line {line}: found a hand-appended block (`{text}`) from an earlier shell-script fix. \
             patch-uwsgi will not patch on top of it: remove that block or restore the upstream file, then run again")]
    LegacyBlock {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the block's first line.
        line: usize,
        /// The first line of the block.
        text: String,
    },

    /// The plan file of the tree is unreadable.
    #[error("{path} is not a valid patch-uwsgi plan ({problem}): delete it and run `patch_uwsgi apply` again")]
    BadPlan {
        /// The plan file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// `bundle` refused its input; nothing was written.
    #[error("bundle: {problem}; nothing was written")]
    Bundle {
        /// What is wrong, naming the wheel or folder.
        problem: String,
    },

    /// `verify --wheel` was given something that is not a wheel.
    #[error("{path} is not a wheel (a .whl zip file): give the wheel built for uWSGI, e.g. from `pip wheel` or cibuildwheel's output folder")]
    NotAWheel {
        /// The path given.
        path: PathBuf,
    },

    /// `verify --wheel --venv DIR` named a folder that is already there.
    #[error("{path} already exists: --venv makes a new venv there and keeps it; give a folder that does not exist yet")]
    VenvExists {
        /// The folder given.
        path: PathBuf,
    },

    /// `verify --wheel --command NAME` named a command the wheel does not install.
    #[error("{wheel} installs no command {command:?} (it installs: {}): give one of those to --command, or leave --command out to start every program of the wheel", if commands.is_empty() { "none".to_string() } else { commands.join(", ") })]
    NoSuchCommand {
        /// The wheel.
        wheel: PathBuf,
        /// The name given.
        command: String,
        /// The commands it installs into the venv's `bin/`.
        commands: Vec<String>,
    },

    /// `locate` or `verify` was given a ready plan instead of an interpreter.
    #[error("{operation} needs an interpreter to ask, not a ready link plan: name the Python (--python PATH) or give a saved probe (--probe FILE)")]
    NeedsInterpreter {
        /// The operation asked.
        operation: Operation,
    },

    /// The target interpreter could not be found.
    #[error("no Python interpreter found: looked for `python` and `python3` on PATH; pass --python PATH")]
    NoInterpreter,

    /// The target interpreter could not be run or did not answer as CPython does.
    #[error("{python}: {problem}")]
    Interpreter {
        /// The interpreter.
        python: PathBuf,
        /// What went wrong.
        problem: String,
    },

    /// No usable static libpython was found.
    #[error("no usable static libpython for {python} (wanted {wanted}); tried:{}\nPass --libpython PATH, set PATCH_UWSGI_LIBPYTHON, or use --mode nolib for shared plugins and pyuwsgi", tried_text(.tried))]
    NoLibpython {
        /// The interpreter.
        python: PathBuf,
        /// The archive name looked for.
        wanted: String,
        /// Every candidate looked at and why it was rejected, one line each:
        /// `PATH (SOURCE): REASON`.
        tried: Vec<String>,
    },

    /// The probe link of the archive failed with and without `-no-pie`.
    #[error("{compiler} cannot link a program with the static libpython and its libraries:\n{message}\nInstall the missing libraries or pass --libpython with a usable archive")]
    LinkProbe {
        /// The compiler run.
        compiler: String,
        /// What it said.
        message: String,
    },

    /// An archive given explicitly is not usable.
    #[error("{path} cannot be used as libpython: {problem}")]
    BadLibpython {
        /// The archive.
        path: PathBuf,
        /// Why not.
        problem: String,
    },

    /// Another process kept the tree locked for too long.
    #[error("another patch_uwsgi has been working on {dir} for {seconds} s: wait for it to finish, or stop it and run again")]
    Locked {
        /// The tree.
        dir: PathBuf,
        /// How long this process waited.
        seconds: u64,
    },
}

fn hint_text(hint: &Option<PathBuf>) -> String {
    match hint {
        Some(p) => format!(
            "; a uWSGI tree sits one level below, at {}: pass that folder",
            p.display()
        ),
        None => String::new(),
    }
}

fn tried_text(tried: &[String]) -> String {
    let mut out = String::new();
    if tried.is_empty() {
        out.push_str(" nothing");
    }
    for line in tried {
        let _ = write!(out, "\n  {line}");
    }
    out
}

impl Error {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Prefix the file path of text-level errors with the tree folder, so messages name the
    /// real file instead of the path relative to the tree.
    pub(crate) fn in_dir(self, dir: &Path) -> Error {
        match self {
            Error::Anchor {
                path,
                recipe,
                expected,
                found,
            } => Error::Anchor {
                path: dir.join(path),
                recipe,
                expected,
                found,
            },
            Error::DamagedBlock {
                path,
                line,
                problem,
            } => Error::DamagedBlock {
                path: dir.join(path),
                line,
                problem,
            },
            Error::LegacyBlock { path, line, text } => Error::LegacyBlock {
                path: dir.join(path),
                line,
                text,
            },
            Error::NotUtf8 { path, offset } => Error::NotUtf8 {
                path: dir.join(path),
                offset,
            },
            Error::NoVersion { path } => Error::NoVersion {
                path: dir.join(path),
            },
            other => other,
        }
    }
}

/// The operation that asked for an interpreter, as [`Error::NeedsInterpreter`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// `apply`, `check` or `diff` (they plan the same way).
    Apply,
    /// `locate`.
    Locate,
    /// `verify`, with or without `--wheel`.
    Verify,
    /// `bundle`.
    Bundle,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Apply => "apply",
            Operation::Locate => "locate",
            Operation::Verify => "verify",
            Operation::Bundle => "bundle",
        })
    }
}
