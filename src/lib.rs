//! patch-uwsgi rewrites uWSGI's `uwsgiconfig.py` and `plugins/python/uwsgiplugin.py` so the
//! python plugin links a static libpython correctly: the archive after every object file, the
//! libraries it needs after it, no `-lpython`, no `-L`/`-rpath`/`LD_RUN_PATH` into the build
//! machine's Python. It is made for cibuildwheel's manylinux/musllinux containers, whose
//! Pythons are static-only.
//!
//! The recipes are pure text functions ([`patch_text`], [`revert_text`]) usable from a
//! `build.rs`; [`apply`], [`check`], [`diff`] and [`revert`] work on a tree on disk, all or
//! nothing; [`locate`] finds the static archive and [`verify`] links and runs a program
//! embedding the interpreter with the plan, in about a second. The library prints nothing and
//! never exits the process.
//!
//! ```no_run
//! use patch_uwsgi::{apply, Options};
//! let report = apply("uwsgi".as_ref(), &Options::default())?;
//! println!("uWSGI {}: {:?}", report.uwsgi_version, report.mode);
//! # Ok::<(), patch_uwsgi::Error>(())
//! ```
#![deny(missing_docs)]

mod error;
mod fsio;
mod link;
mod locate;
mod plan;
mod process;
mod python;
mod recipe;
mod text;
mod tree;
mod verify;

pub use error::{Error, Result};
pub use link::{needs_no_pie, PieDecision};
pub use locate::{
    archive_name, locate_libpython, reject_reason, Candidate, Located, SearchOptions, Source,
    LIBPYTHON_ENV, MANYLINUX_ROOT,
};
pub use plan::{LinkPlan, Mode, ModeChoice, PlanFile, PlanOptions, PythonId, PLAN_FILE};
pub use python::{
    find_interpreter, ConfigVars, Interpreter, PROBE_SCRIPT, PROBE_TIMEOUT, PROBE_TIMEOUT_ENV,
};
pub use recipe::{
    is_patched, patch_text, recipes_for, revert_text, FileKind, Outcome, PatchedText,
    PluginVariant, Recipe, RECIPES,
};
pub use tree::{
    apply, check, diff, locate, revert, FileReport, Location, Options, RecipeReport, Report,
    UwsgiTree,
};
pub use verify::{
    verify, ImportFailure, RuntimeReport, Step, StepFailure, StepReport, Verification,
    VerifyOptions, EMBED_SOURCE, IMPORTS_SCRIPT, RUN_TIMEOUT,
};

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
