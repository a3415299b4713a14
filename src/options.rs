//! The options of the library's operations, and the one way an operation gets its
//! interpreter ([`Options::interpreter`]). Uses `plan` (the target, the plan options) and
//! `error`.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Operation, Result};
use crate::plan::interpreter::{find_interpreter, Interpreter, PROBE_TIMEOUT};
use crate::plan::{PlanOptions, Target};

/// Options for [`apply`](crate::apply), [`check`](crate::check), [`diff`](crate::diff),
/// [`locate`](crate::locate), [`bundle`](crate::bundle) and [`verify`](crate::verify).
/// Everything the library uses comes from here: it reads no environment variable (the
/// `patch_uwsgi` binary turns `PATCH_UWSGI_LIBPYTHON`, `PATCH_UWSGI_PROBE_TIMEOUT`, `CC`,
/// `CFLAGS` and `XDG_CACHE_HOME` into these fields).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The Python to plan for.
    pub target: Target,
    /// How to make the plan.
    pub plan: PlanOptions,
    /// How long the interpreter may take to answer the probe.
    pub probe_timeout: Duration,
    /// Refuse a tree whose uWSGI release cannot build for the target Python, and a
    /// free-threaded Python ([`crate::releases`]). Off only for a uWSGI with support backported
    /// into an older release, or to exercise the recipes alone.
    pub release_check: bool,
}

impl Default for Options {
    /// `python` on `PATH`, automatic mode, no cache folder, [`PROBE_TIMEOUT`], the release
    /// check on.
    fn default() -> Options {
        Options {
            target: Target::OnPath,
            plan: PlanOptions::default(),
            probe_timeout: PROBE_TIMEOUT,
            release_check: true,
        }
    }
}

impl Options {
    /// The defaults with `python` as the target interpreter.
    ///
    /// ```
    /// let options = patch_uwsgi::Options::for_python("/opt/python/cp312-cp312/bin/python")
    ///     .with_release_check(false);
    /// assert!(!options.release_check);
    /// ```
    pub fn for_python(python: impl Into<PathBuf>) -> Options {
        Options::default().with_target(Target::Python(python.into()))
    }

    /// With another target (an interpreter, a saved probe, a ready plan).
    pub fn with_target(mut self, target: Target) -> Options {
        self.target = target;
        self
    }

    /// With other plan options (mode, archive search, `-no-pie`, compiler).
    pub fn with_plan(mut self, plan: PlanOptions) -> Options {
        self.plan = plan;
        self
    }

    /// With the release check on or off ([`Options::release_check`]).
    pub fn with_release_check(mut self, release_check: bool) -> Options {
        self.release_check = release_check;
        self
    }

    /// The target interpreter: probed (bounded by [`Options::probe_timeout`], answered from
    /// the cache folder when nothing changed) unless already probed. A ready plan is refused:
    /// `operation` names the caller in that error.
    pub fn interpreter(&self, operation: Operation) -> Result<Interpreter> {
        let (timeout, cache) = (self.probe_timeout, self.plan.search.cache_dir.as_deref());
        match &self.target {
            Target::OnPath => Interpreter::probe_cached(&find_interpreter(None)?, timeout, cache),
            Target::Python(path) => Interpreter::probe_cached(path, timeout, cache),
            Target::Probed(interp) => Ok((**interp).clone()),
            Target::Plan(_) => Err(Error::NeedsInterpreter { operation }),
        }
    }
}

/// Default limit for running the embedding program (and the interpreter's own import run).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// Options for [`verify`](crate::verify) and [`verify_wheel`](crate::verify_wheel).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// The target, the archive search, the compiler and the probe's limit, as for `apply`.
    /// `options.plan.mode` is not used: verify always checks the static plan. With
    /// `options.plan.no_pie` `None`, the link is tried without `-no-pie` and retried with it
    /// on a PIE relocation error (that link is the probe link).
    pub options: Options,
    /// Also run the program against this interpreter's stdlib and `lib-dynload` (the runtime a
    /// shipped binary will meet), reporting what it cannot import there.
    pub runtime_python: Option<PathBuf>,
    /// Limit for each run of the program and of the interpreter's own import run.
    pub run_timeout: Duration,
    /// `verify --wheel`: start this installed command only (`<venv>/bin/NAME`); by default
    /// every program the wheel ships, through the commands named like it.
    pub command: Option<String>,
    /// The uWSGI tree the build will use (`patch_uwsgi verify DIR`): refuse, before linking
    /// anything, when its release cannot build for the target Python.
    pub tree: Option<PathBuf>,
    /// `verify --wheel`: what installs the wheel into the venv.
    pub installer: Installer,
    /// `verify --wheel`: make the venv here (a folder that does not exist yet) and keep it,
    /// instead of a temporary one removed at the end.
    pub venv: Option<PathBuf>,
}

/// What installs the wheel in [`verify_wheel`](crate::verify_wheel).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Installer {
    /// patch-uwsgi's own: the wheel unpacked as the wheel specification lays it out (scripts'
    /// `#!python` rewritten, executable bits kept, console-script launchers made), into a venv
    /// made `--without-pip`. Several times faster than pip; `.py` files are not
    /// byte-compiled.
    #[default]
    Builtin,
    /// `pip install --no-deps --no-index`: exactly pip's behaviour, at pip's speed.
    Pip,
}

impl Installer {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Installer::Builtin => "builtin",
            Installer::Pip => "pip",
        }
    }
}

impl VerifyOptions {
    /// [`VerifyOptions::default`] with `options` for the target.
    pub fn new(options: Options) -> VerifyOptions {
        VerifyOptions {
            options,
            ..VerifyOptions::default()
        }
    }

    /// Also run against this interpreter (`verify`), or install for it (`verify --wheel`).
    pub fn with_runtime_python(mut self, python: impl Into<PathBuf>) -> VerifyOptions {
        self.runtime_python = Some(python.into());
        self
    }

    /// Check that this uWSGI tree's release builds for the target first (`verify DIR`).
    pub fn with_tree(mut self, tree: impl Into<PathBuf>) -> VerifyOptions {
        self.tree = Some(tree.into());
        self
    }

    /// `verify --wheel`: start only this installed command.
    pub fn with_command(mut self, command: impl Into<String>) -> VerifyOptions {
        self.command = Some(command.into());
        self
    }

    /// `verify --wheel`: install with this installer.
    pub fn with_installer(mut self, installer: Installer) -> VerifyOptions {
        self.installer = installer;
        self
    }

    /// `verify --wheel`: make the venv at `venv` (which must not exist) and keep it.
    pub fn with_venv(mut self, venv: impl Into<PathBuf>) -> VerifyOptions {
        self.venv = Some(venv.into());
        self
    }

    /// With another limit for each program run.
    pub fn with_run_timeout(mut self, limit: Duration) -> VerifyOptions {
        self.run_timeout = limit;
        self
    }
}

impl Default for VerifyOptions {
    /// [`Options::default`], no runtime Python, [`RUN_TIMEOUT`].
    fn default() -> VerifyOptions {
        VerifyOptions {
            options: Options::default(),
            runtime_python: None,
            run_timeout: RUN_TIMEOUT,
            command: None,
            tree: None,
            installer: Installer::Builtin,
            venv: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interpreter_comes_from_the_target() {
        let saved = include_str!("../vendor-samples/sysconfig/pyenv-cpython-3.12.1.json");
        let interp = Interpreter::from_json(saved, "saved".as_ref()).unwrap();
        let probed = Options {
            target: Target::Probed(Box::new(interp.clone())),
            ..Options::default()
        };
        assert_eq!(probed.interpreter(Operation::Locate).unwrap(), interp);
        let plan =
            crate::plan::LinkPlan::with_archive(&interp, crate::plan::Mode::Nolib, None, false);
        let planned = Options {
            target: Target::Plan(Box::new(plan)),
            ..Options::default()
        };
        let err = planned.interpreter(Operation::Verify).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NeedsInterpreter {
                    operation: Operation::Verify
                }
            ),
            "{err:?}"
        );
    }
}
