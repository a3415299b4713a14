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
#![deny(missing_docs)]

mod bundle;
mod error;
mod fsio;
pub mod libpython;
mod link;
pub mod plan;
mod process;
pub mod python;
pub mod recipe;
pub mod support;
mod text;
mod tree;
pub mod verification;
mod wheel_check;

pub use bundle::{bundle, BundleOptions, BundleReport, BundledExecutable, BundledWheel};
pub use error::{Error, Result};
pub use libpython::SearchOptions;
pub use link::{Compiler, PieDecision};
pub use plan::{ModeChoice, PlanOptions};
pub use python::Target;
pub use recipe::{patch_text, revert_text, FileKind, Outcome, PatchedText};
pub use tree::{
    apply, check, diff, locate, revert, FileReport, Location, Options, RecipeReport, Report,
};
pub use verification::{verify, Verification, VerifyOptions};
pub use wheel_check::{verify_wheel, WheelVerification};

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
