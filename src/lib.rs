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
//! # Modules
//!
//! One folder per concern, each script or C file beside the Rust that uses it; every module
//! uses only those listed below it (no circle):
//!
//! | module | what it does |
//! | --- | --- |
//! | `runtime` | [`runtime::verify`] (the embedding check, `verify_embed.c`, `verify_imports.py`), [`runtime::bundle`] (the wheel rewrite; `stdlib_zip.py`), [`runtime::wheel`] (`verify --wheel`) |
//! | `tree` | [`apply`], [`check`], [`diff`], [`revert`]; `tree::fsio` writes several files all or nothing under the tree's lock |
//! | `options` | [`Options`], [`VerifyOptions`], and [`Options::interpreter`], the one way an operation gets its interpreter |
//! | [`plan`] | the link plan and its file; [`plan::interpreter`] (the probe, `probe.py`), [`plan::libpython`] (the archive search), the compiler and the `-no-pie` probe link |
//! | [`recipes`] | the rewrites of uWSGI's files and their markers, the blocks they insert (`rebuild_guard.py`, `plugin_link_plan.py`, `runtime_finder.c`), the text handling |
//! | [`releases`] | which uWSGI release builds for which CPython, whether a Python is free-threaded, and the checks made from them |
//! | `cache`, `files` | the cache folder (saved probes, `-no-pie` answers); single-file writes |
//! | `process`, [`error`](Error) | bounded child processes and what they said; the one error type, which imports nothing of the crate |
//!
//! The `patch_uwsgi` binary (`src/bin/patch_uwsgi/`: `main.rs`, `cli.rs` the usage text and
//! the arguments of each command, `output.rs` the human reports) uses this library only.
#![deny(missing_docs)]

mod cache;
mod error;
mod files;
mod names;
mod options;
pub mod plan;
mod process;
pub mod recipes;
pub mod releases;
pub mod runtime;
mod tree;

pub use cache::cache_dir_from;
pub use error::{Error, Operation, Result};
pub use options::{Installer, Options, VerifyOptions, RUN_TIMEOUT};
pub use plan::libpython::SearchOptions;
pub use plan::locate::Location;
pub use plan::{Compiler, ModeChoice, PieDecision, PlanOptions, Target};
pub use recipes::{patch_text, revert_text, FileKind, Outcome, PatchedText};
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
pub fn locate(options: &Options) -> Result<Location> {
    plan::locate::locate_for(options.interpreter(Operation::Locate)?, &options.plan)
}

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
