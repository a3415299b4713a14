//! `verify --wheel`: the check of the artifact users get. The wheel is installed into a fresh
//! venv of the runtime Python (by default the build interpreter; any build of the same minor,
//! e.g. a distribution's, is what users have), its executable is started from there as a user
//! starts it, with `--pyrun`, and imports every extension module the build interpreter itself
//! can import. A module that fails, or that was loaded from the build interpreter's prefix
//! (whatever the runtime), is reported: such a wheel only works where it was built.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::process::{last_lines, run_bounded};
use crate::python::Interpreter;
use crate::verification::{
    parse_output, run_problem, seconds_since, timed, Baseline, ImportFailure, Step, StepFailure,
    StepReport, VerifyOptions, IMPORTS_SCRIPT,
};

/// Limit for making the venv and for pip installing the wheel.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

/// What [`verify_wheel`] found (also its JSON shape).
#[derive(Debug, Clone, Serialize)]
pub struct WheelVerification {
    /// The wheel checked.
    pub wheel: PathBuf,
    /// The build interpreter, whose importable extension modules are the list to try.
    pub python: PathBuf,
    /// Its version.
    pub version: String,
    /// The Python whose venv the wheel was installed into.
    pub runtime_python: PathBuf,
    /// Its version.
    pub runtime_version: String,
    /// The installed command that was started (`<venv>/bin/<name>`), once installed.
    pub executable: Option<PathBuf>,
    /// The steps run, with their times.
    pub steps: Vec<StepReport>,
    /// The first step that failed, with pip's or the program's own message.
    pub failure: Option<StepFailure>,
    /// Extension modules the installed program imported.
    pub imported: Vec<String>,
    /// Extension modules the build interpreter imports but the installed program could not.
    pub import_failures: Vec<ImportFailure>,
    /// Modules loaded from the build interpreter's prefix (`error` holds the file), even when
    /// the runtime is that interpreter: they will be missing on users' machines.
    pub from_build_prefix: Vec<ImportFailure>,
    /// Extension modules the build interpreter cannot import either (not counted).
    pub failing_in_interpreter_too: Vec<ImportFailure>,
    /// Extension modules the wheel's bundle leaves out on purpose (`bundle --exclude`): not
    /// tried.
    pub excluded: Vec<String>,
    /// The standard library the wheel bundles (`bundle --stdlib`), as installed, if it does.
    pub bundled_stdlib: Option<PathBuf>,
    /// Where the program's standard library came from (its `encodings` package).
    pub stdlib: Option<String>,
    /// Wall time.
    pub seconds: f64,
    /// Whether it installed, started, and imported everything from the right place.
    pub ok: bool,
}

impl WheelVerification {
    fn fail(mut self, step: Step, message: String, started: Instant) -> WheelVerification {
        self.failure = Some(StepFailure { step, message });
        self.seconds = seconds_since(started);
        self.ok = false;
        self
    }
}

/// The entries of a folder, by name.
fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The entries of a folder (none if it cannot be read).
fn children(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The runtime folders the wheel installed into the venv
/// (`lib/pythonX.Y/site-packages/patch_uwsgi_runtime/pythonX.Y/`).
fn runtime_folders(venv: &Path) -> Vec<PathBuf> {
    children(&venv.join("lib"))
        .iter()
        .flat_map(|python_dir| children(&python_dir.join("site-packages/patch_uwsgi_runtime")))
        .collect()
}

/// The modules `bundle --exclude` left out, as listed in the runtime folder's `excluded.txt`.
fn excluded_modules(venv: &Path) -> Vec<String> {
    runtime_folders(venv)
        .iter()
        .filter_map(|runtime| std::fs::read_to_string(runtime.join("excluded.txt")).ok())
        .flat_map(|text| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The bundled standard library zip in the venv's site-packages, if the wheel installed one
/// (`<runtime folder>/<platlibdir>/pythonXY.zip`).
fn bundled_stdlib(venv: &Path) -> Option<PathBuf> {
    let zip = runtime_folders(venv)
        .iter()
        .flat_map(|runtime| children(runtime))
        .flat_map(|libdir| children(&libdir))
        .find(|p| {
            p.extension().is_some_and(|x| x == "zip")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("python"))
        })?;
    std::fs::canonicalize(&zip).ok().or(Some(zip))
}

/// Run `command` to the end (bounded); `Err` holds the last lines of what it said.
fn run_step(command: &mut Command, limit: Duration) -> Result<std::result::Result<(), String>> {
    let program = PathBuf::from(command.get_program());
    Ok(
        match run_bounded(command, limit).map_err(|e| Error::io("run", &program, e))? {
            Some(out) if out.status.success() => Ok(()),
            Some(out) => Err(format!(
                "{}: {}",
                out.status,
                last_lines(
                    &format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ),
                    8
                )
            )),
            None => Err(format!("did not finish within {} s", limit.as_secs())),
        },
    )
}

/// Install `wheel` into a fresh venv of the runtime Python and check that its executable
/// starts and imports what the build interpreter can. Errors (exit 2 in the CLI) are problems
/// before anything could be tried: no wheel, no interpreter; a failed install, start or import
/// is a [`WheelVerification`] that is not `ok`.
pub fn verify_wheel(wheel: &Path, options: &VerifyOptions) -> Result<WheelVerification> {
    let started = Instant::now();
    let given = &options.options;
    let limit = options.run_timeout;
    // The zip magic only: the wheel itself is read by pip.
    let mut magic = [0u8; 4];
    let is_wheel = wheel.extension().is_some_and(|x| x == "whl")
        && std::fs::File::open(wheel)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok()
        && &magic == b"PK\x03\x04";
    if !is_wheel {
        return Err(Error::NotAWheel {
            path: wheel.to_path_buf(),
        });
    }
    let wheel = std::path::absolute(wheel).map_err(|e| Error::io("resolve", wheel, e))?;
    let mut steps = Vec::new();
    let (interp, runtime) = timed(&mut steps, Step::Probe, || -> Result<_> {
        let interp = given.target.interpreter(
            given.probe_timeout,
            given.plan.search.cache_dir.as_deref(),
            "verify",
        )?;
        let runtime = match &options.runtime_python {
            Some(path) => Interpreter::probe(path, given.probe_timeout)?,
            None => interp.clone(),
        };
        Ok((interp, runtime))
    })?;
    let baseline = Baseline::start(&interp, limit);
    let mut report = WheelVerification {
        wheel: wheel.clone(),
        python: interp.path.clone(),
        version: interp.version.clone(),
        runtime_python: runtime.path.clone(),
        runtime_version: runtime.version.clone(),
        executable: None,
        steps,
        failure: None,
        imported: Vec::new(),
        import_failures: Vec::new(),
        from_build_prefix: Vec::new(),
        failing_in_interpreter_too: Vec::new(),
        excluded: Vec::new(),
        bundled_stdlib: None,
        stdlib: None,
        seconds: 0.0,
        ok: false,
    };

    let step_start = Instant::now();
    let work = tempfile::Builder::new()
        .prefix("patch-uwsgi-wheel-")
        .tempdir()
        .map_err(|e| Error::io("create a temporary folder in", &std::env::temp_dir(), e))?;
    let venv = work.path().join("venv");
    let made = run_step(
        Command::new(&runtime.path)
            .args(["-m", "venv"])
            .arg(&venv)
            .env_remove("PYTHONHOME")
            .env_remove("PYTHONPATH"),
        INSTALL_TIMEOUT,
    )?;
    if let Err(message) = made {
        return Ok(report.fail(Step::Install, format!("python -m venv {message}"), started));
    }
    let bin = venv.join("bin");
    let before = names_in(&bin);
    let installed = run_step(
        Command::new(bin.join("python"))
            .args(["-m", "pip", "install", "--no-deps", "--no-index", "-q"])
            .arg(&wheel)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env_remove("PYTHONPATH"),
        INSTALL_TIMEOUT,
    )?;
    report.steps.push(StepReport {
        step: Step::Install,
        seconds: seconds_since(step_start),
        command: None,
    });
    if let Err(message) = installed {
        return Ok(report.fail(Step::Install, format!("pip install {message}"), started));
    }
    let added: Vec<String> = names_in(&bin).difference(&before).cloned().collect();
    let Some(command) = added
        .iter()
        .find(|n| n.as_str() == "uwsgi")
        .or_else(|| added.first().filter(|_| added.len() == 1))
    else {
        let found = if added.is_empty() {
            "none".to_string()
        } else {
            added.join(", ")
        };
        return Ok(report.fail(
            Step::Install,
            format!("the wheel installs no `uwsgi` command to start (commands: {found})"),
            started,
        ));
    };
    let executable = bin.join(command);
    report.executable = Some(executable.clone());
    report.bundled_stdlib = bundled_stdlib(&venv);
    report.excluded = excluded_modules(&venv);

    let mut wanted = baseline.finish(&interp, limit)?;
    report.failing_in_interpreter_too = wanted.failed.clone();
    wanted.ok.retain(|module| !report.excluded.contains(module));
    let script = work.path().join("imports.py");
    std::fs::write(&script, IMPORTS_SCRIPT).map_err(|e| Error::io("write", &script, e))?;
    let step_start = Instant::now();
    // As a user starts it: the installed command, from a folder of one's own, with none of
    // Python's variables set.
    let output = run_bounded(
        Command::new(&executable)
            .arg("--pyrun")
            .arg(&script)
            .current_dir(work.path())
            .env("PATCH_UWSGI_VERIFY_MODULES", wanted.ok.join(" "))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PYTHONHOME")
            .env_remove("PYTHONPATH"),
        limit,
    )
    .map_err(|e| Error::io("run", &executable, e))?;
    // uWSGI points its stdout at its log (stderr): the script's lines may be on either.
    let output = output.map(|mut out| {
        let log = std::mem::take(&mut out.stderr);
        out.stdout.extend_from_slice(&log);
        out.stderr = log;
        out
    });
    let run = parse_output(&output);
    report.steps.push(StepReport {
        step: Step::Run,
        seconds: seconds_since(step_start),
        command: Some(vec![
            executable.display().to_string(),
            "--pyrun".into(),
            "<imports script>".into(),
        ]),
    });
    report.imported = run.ok.clone();
    report.import_failures = run.failed.clone();
    // Checked whatever the runtime: a module the installed program takes from the build
    // interpreter (its prefix, or the very file the interpreter itself loads, which may sit
    // behind a link) is missing wherever that interpreter is not, so the answer in the build
    // container (cibuildwheel's test-command) is the answer on users' machines.
    let real = |file: &str| {
        std::fs::canonicalize(file)
            .map(|f| f.display().to_string())
            .unwrap_or_else(|_| file.to_string())
    };
    let build_files: BTreeSet<String> = wanted.origins.iter().map(|(_, f)| real(f)).collect();
    let build_prefixes = [
        format!("{}/", interp.base_prefix.trim_end_matches('/')),
        format!("{}/", real(&interp.base_prefix).trim_end_matches('/')),
    ];
    report.from_build_prefix = run
        .origins
        .iter()
        .filter(|(_, file)| {
            let real_file = real(file);
            file.starts_with('/')
                && (build_files.contains(&real_file)
                    || build_prefixes
                        .iter()
                        .any(|p| file.starts_with(p) || real_file.starts_with(p)))
        })
        .map(|(module, file)| ImportFailure {
            module: module.clone(),
            error: file.clone(),
        })
        .collect();
    report.stdlib = run.stdlib.clone();
    if let Some(message) = run_problem(&output, &run, limit) {
        return Ok(report.fail(Step::Run, message, started));
    }
    if let Some(zip) = &report.bundled_stdlib {
        let inside = format!("{}/", zip.display());
        let used = report.stdlib.clone().unwrap_or_else(|| "unknown".into());
        if !used.starts_with(&inside) && !real(&used).starts_with(&inside) {
            let message = format!(
                "the wheel bundles a standard library ({}), but the program took its \
                 `encodings` from {used} (is its runtime finder older than --stdlib?)",
                zip.display()
            );
            return Ok(report.fail(Step::Run, message, started));
        }
    }
    report.seconds = seconds_since(started);
    report.ok = report.import_failures.is_empty() && report.from_build_prefix.is_empty();
    Ok(report)
}
