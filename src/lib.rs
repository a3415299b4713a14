//! patch-uwsgi rewrites uWSGI's `uwsgiconfig.py` and `plugins/python/uwsgiplugin.py` so the
//! python plugin links a static libpython correctly: the archive after every object file, the
//! libraries it needs after it, no `-lpython`, no `-L`/`-rpath`/`LD_RUN_PATH` into the build
//! machine's Python. It is made for cibuildwheel's manylinux/musllinux containers, whose
//! Pythons are static-only.
//!
//! The recipes are pure text functions ([`patch_text`], [`revert_text`]) usable from a
//! `build.rs`; [`apply`], [`check`], [`diff`] and [`revert`] work on a tree on disk, all or
//! nothing; [`locate`] finds the static archive and [`verify`] links and runs a program
//! embedding the interpreter with the plan, in about a second. For the wheels users get,
//! [`bundle`] adds the build interpreter's runtime (extension modules, and with
//! [`BundleOptions::stdlib`] its standard library) where the executable's runtime finder looks,
//! and [`verify_wheel`] installs a wheel into a fresh venv and runs its `uwsgi` as users do. The
//! library prints nothing and never exits the process.
//!
//! ```no_run
//! use patch_uwsgi::{apply, Options};
//! let report = apply("uwsgi".as_ref(), &Options::default())?;
//! println!("uWSGI {}: {:?}", report.uwsgi_version, report.mode);
//! # Ok::<(), patch_uwsgi::Error>(())
//! ```
//!
//! # The API
//!
//! Everything an embedder uses is at the crate root: the operations above with their options
//! ([`Options`], [`VerifyOptions`], [`BundleOptions`], [`PlanOptions`], [`SearchOptions`]) and
//! reports ([`Report`], [`Location`], [`Verification`], [`WheelVerification`],
//! [`BundleReport`]), the link plan ([`LinkPlan`], [`PlanFile`]), the interpreter's probe
//! ([`Interpreter::load`] reads one saved by `patch_uwsgi locate --json`), and the one error
//! type. Options and reports are `#[non_exhaustive]`: make options with their constructors
//! and `with_*` methods (or `Default` and field assignment), read reports by field. The table
//! of uWSGI releases against CPython minors is the public module [`releases`].
//!
//! # Modules
//!
//! One folder per concern, each script or C file beside the Rust that uses it; every module
//! uses only those listed below it (no circle; `tests/structure.rs` checks it):
//!
//! | module | what it does |
//! | --- | --- |
//! | `runtime` | `verify` (the embedding check, `verify_embed.c`, `verify_imports.py`), `bundle` (the wheel rewrite; `stdlib_zip.py`), `wheel` (`verify --wheel`) and `install` (its own wheel installer), `runs` (the import-run protocol, the baseline run and step timing they share) |
//! | `tree` | [`apply`], [`check`], [`diff`], [`revert`]; `tree::fsio` writes several files all or nothing under the tree's lock |
//! | `options` | [`Options`], [`VerifyOptions`], and [`Options::interpreter`], the one way an operation gets its interpreter |
//! | `plan` | the link plan and its file; `plan::interpreter` (the probe, `probe.py`), `plan::libpython` (the archive search), `plan::locate` ([`locate`]), the compiler and the `-no-pie` probe link |
//! | [`releases`] | which uWSGI release builds for which CPython, whether a Python is free-threaded, and the checks made from them |
//! | `recipes` | the rewrites of uWSGI's files and their markers, the blocks they insert (`rebuild_guard.py`, `compile_thread_guard.py`, `plugin_link_plan.py`, `runtime_finder.c`), the text handling |
//! | `names` | the names shared with the Python and C files (the runtime folder, the plan file, the import-run protocol) |
//! | `cache`, `files` | the cache folder (saved probes, `-no-pie` answers); single-file writes |
//! | `process`, [`error`](Error) | bounded child processes and what they said; the one error type, which imports nothing of the crate |
//!
//! The `patch_uwsgi` binary (`src/bin/patch_uwsgi/`: `main.rs`, `cli.rs` the usage text and
//! the arguments of each command, `output.rs` the human reports) uses this crate root only.
#![deny(missing_docs)]

mod cache;
mod error;
mod files;
mod names;
mod options;
mod plan;
mod process;
mod recipes;
pub mod releases;
mod runtime;
mod tree;

pub use cache::cache_dir_from;
pub use error::{Error, Operation, Result};
pub use options::{Installer, Options, VerifyOptions, RUN_TIMEOUT};
pub use plan::interpreter::{ConfigVars, Interpreter, PROBE_TIMEOUT};
pub use plan::libpython::{Candidate, Located, SearchOptions, Source};
pub use plan::locate::Location;
pub use plan::{
    Compiler, LinkPlan, Mode, ModeChoice, PieDecision, PlanFile, PlanOptions, PythonId, Target,
    PLAN_FILE,
};
pub use recipes::{patch_text, revert_text, FileKind, Outcome, PatchedText, PluginVariant};
pub use runtime::bundle::{
    bundle, bundle_with_progress, BundleOptions, BundleReport, BundledExecutable, BundledWheel,
};
pub use runtime::runs::{ForeignModule, ImportFailure, StepFailure, StepReport};
pub use runtime::verify::{verify, RuntimeReport, Step, Verification};
pub use runtime::wheel::{
    verify_wheel, verify_wheel_with_progress, ProgramRun, WheelStep, WheelVerification,
};
pub use tree::{apply, check, diff, revert, FileReport, RecipeReport, Report};

/// Probe the target interpreter and find its static libpython (unless the mode is `nolib` or
/// an automatic `shared`); changes nothing but may extract the archive from manylinux's
/// tarball.
///
/// ```no_run
/// use patch_uwsgi::{locate, Options};
/// let location = locate(&Options::for_python("/opt/python/cp312-cp312/bin/python"))?;
/// println!("{:?} from {:?}", location.plan.libpython, location.plan.source);
/// # Ok::<(), patch_uwsgi::Error>(())
/// ```
pub fn locate(options: &Options) -> Result<Location> {
    plan::locate::locate_for(options.interpreter(Operation::Locate)?, &options.plan)
}

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
