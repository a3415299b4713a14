//! `bundle`: add to built wheels the runtime their static uwsgi needs on users' machines, the
//! build interpreter's extension modules (`lib-dynload`), at
//! `patch_uwsgi_runtime/pythonX.Y/lib-dynload/` in the wheel's root, where the runtime finder
//! compiled in by `apply` (static mode) looks once installed; with
//! [`BundleOptions::stdlib`], its compiled standard library too, as
//! `patch_uwsgi_runtime/pythonX.Y/lib/pythonXY.zip`, which makes that folder the Python home.
//! The wheel work is done by [`BUNDLE_SCRIPT`] in the build interpreter (its `zipfile`,
//! `hashlib`, `lib-dynload` and standard library).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::options::Options;
use crate::process::{run_bounded, said, Streams};

/// The script run by the build interpreter: reads the wheels, writes the bundled ones.
pub const BUNDLE_SCRIPT: &str = include_str!("bundle_wheel.py");

/// Limit for rewriting the wheels.
const BUNDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// One wheel written by [`bundle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundledWheel {
    /// The wheel read.
    pub wheel: PathBuf,
    /// The wheel written (same name, in the output folder).
    pub output: PathBuf,
    /// The executables in it that embed libpython and find the runtime, wherever they are.
    pub executables: Vec<BundledExecutable>,
    /// How many extension modules were added.
    pub modules: usize,
    /// How many standard library modules the bundled zip holds (0 without `stdlib`).
    pub stdlib_modules: usize,
    /// Size of the wheel read.
    pub bytes_before: u64,
    /// Size of the wheel written.
    pub bytes_after: u64,
}

/// An executable of a wheel that embeds a static libpython with the runtime finder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundledExecutable {
    /// Its path in the wheel (`uwsgi-2.0.31.data/scripts/uwsgi`, `myserver/bin/myserver`).
    pub path: String,
    /// The Python minor it embeds, `X.Y` (read from its finder).
    pub python: String,
}

/// What [`bundle`] did (also its JSON shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleReport {
    /// The folder inside the wheels, `patch_uwsgi_runtime/pythonX.Y/`.
    pub runtime: String,
    /// Extension modules left out ([`BundleOptions::exclude`]).
    #[serde(default)]
    pub excluded: Vec<String>,
    /// Every wheel written.
    pub wheels: Vec<BundledWheel>,
}

/// What [`bundle`] needs: the target interpreter (the one that built the wheels) and whether
/// to add its standard library.
#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    /// The target interpreter and where to cache its probe.
    pub options: Options,
    /// Also bundle the standard library: the wheel's uwsgi then runs with no Python installed.
    pub stdlib: bool,
    /// Extension modules to leave out (e.g. `_tkinter`, whose Tcl/Tk and X11 libraries
    /// auditwheel would otherwise graft); each must be one of the interpreter's. They are
    /// listed in the wheel, and `verify --wheel` does not expect them.
    pub exclude: Vec<String>,
}

/// Write to `out_dir` a copy of every wheel with the target interpreter's runtime added. All
/// wheels are written or none; bad input (not a wheel, a corrupt one, no executable embedding
/// libpython, one linked to a shared libpython, a Python tag other than the interpreter's,
/// `stdlib` for an executable whose runtime finder predates it, an output folder that cannot be
/// written) is an [`Error::Bundle`].
pub fn bundle(
    wheels: &[PathBuf],
    out_dir: &Path,
    bundle_options: &BundleOptions,
) -> Result<BundleReport> {
    let options = &bundle_options.options;
    let interp = options.interpreter("bundle")?;
    let output = run_bounded(
        Command::new(&interp.path)
            .arg("-S")
            .arg("-c")
            .arg(BUNDLE_SCRIPT)
            .args(bundle_options.stdlib.then_some("--stdlib"))
            .args(if bundle_options.exclude.is_empty() {
                vec![]
            } else {
                vec!["--exclude".to_string(), bundle_options.exclude.join(",")]
            })
            .arg(out_dir)
            .args(wheels)
            .env_remove("PYTHONHOME")
            .env_remove("PYTHONPATH")
            // Set constants are marshalled in hash order: the same seed, the same zip.
            .env("PYTHONHASHSEED", "0"),
        BUNDLE_TIMEOUT,
    )
    .map_err(|e| Error::io("run", &interp.path, e))?;
    let Some(output) = output else {
        return Err(Error::Bundle {
            problem: format!(
                "{} did not finish within {} s",
                interp.path.display(),
                BUNDLE_TIMEOUT.as_secs()
            ),
        });
    };
    if !output.status.success() {
        return Err(Error::Bundle {
            problem: said(&output, Streams::Stderr, Some(6)),
        });
    }
    serde_json::from_slice(&output.stdout).map_err(|e| Error::Bundle {
        problem: format!(
            "{} answered something that is not the bundle report ({e})",
            interp.path.display()
        ),
    })
}
