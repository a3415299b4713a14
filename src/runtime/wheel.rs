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

use super::install::{install_wheel, unsupported_tags, VenvLayout};
use super::runs::{
    parse_output, run_problem, seconds_since, timed, Baseline, ForeignModule, ImportFailure,
    ImportRun, StepFailure, StepReport, IMPORTS_SCRIPT,
};
use crate::error::{Error, Operation, Result};
use crate::names::{EXCLUDED_LIST, MODULES_VARIABLE, RUNTIME_FOLDER};
use crate::options::{Installer, VerifyOptions};
use crate::plan::interpreter::Interpreter;
use crate::process::{run_bounded, run_tool, Streams};

/// Limit for making the venv and for installing the wheel.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

/// The steps of [`verify_wheel`], in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum WheelStep {
    /// Asking the interpreters about themselves.
    Probe,
    /// A fresh venv of the runtime Python, and the wheel installed into it.
    Install,
    /// Starting the installed programs and importing the modules.
    Run,
}

impl WheelStep {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            WheelStep::Probe => "probe",
            WheelStep::Install => "install",
            WheelStep::Run => "run",
        }
    }
}

/// What [`verify_wheel`] found (also its JSON shape).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
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
    /// What installed the wheel.
    pub installer: Installer,
    /// The venv, when it is kept (`--venv`).
    pub venv: Option<PathBuf>,
    /// The first command started (`<venv>/bin/<name>`, or a program where the wheel installed
    /// it), once installed.
    pub executable: Option<PathBuf>,
    /// The programs the wheel installed that embed libpython with the runtime finder (else every
    /// ELF program it installed), wherever they are.
    pub programs: Vec<PathBuf>,
    /// Each start: every program through each installed command named like it (the program
    /// itself, auditwheel's wrapper, a console script), or directly where none is.
    pub runs: Vec<ProgramRun>,
    /// The steps run, with their times.
    pub steps: Vec<StepReport<WheelStep>>,
    /// The first step that failed, with the installer's or the program's own message.
    pub failure: Option<StepFailure<WheelStep>>,
    /// Extension modules the installed program imported.
    pub imported: Vec<String>,
    /// Extension modules the build interpreter imports but the installed program could not.
    pub import_failures: Vec<ImportFailure>,
    /// Modules loaded from the build interpreter's prefix, even when the runtime is that
    /// interpreter: they will be missing on users' machines.
    pub from_build_prefix: Vec<ForeignModule>,
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

/// One start of an installed program by [`verify_wheel`].
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ProgramRun {
    /// What was started: an installed command, or the program itself.
    pub started: PathBuf,
    /// The program this start must reach (`None` for a command chosen with `--command` that
    /// is named like none: then any of [`WheelVerification::programs`]).
    pub program: Option<PathBuf>,
    /// The program that ran (its `/proc/self/exe`), once it said.
    pub reached: Option<PathBuf>,
    /// Extension modules it imported.
    pub imported: Vec<String>,
    /// Extension modules the build interpreter imports but this run could not.
    pub import_failures: Vec<ImportFailure>,
    /// Modules this run loaded from the build interpreter's prefix.
    pub from_build_prefix: Vec<ForeignModule>,
    /// Where its standard library came from (its `encodings` package).
    pub stdlib: Option<String>,
    /// Why it did not run to the end, or ran the wrong program.
    pub failure: Option<String>,
    /// Wall time of the run.
    pub seconds: f64,
    /// Whether it ran the right program and imported everything from the right place.
    pub ok: bool,
}

impl WheelVerification {
    /// The report before anything was installed.
    fn new(
        wheel: &Path,
        interp: &Interpreter,
        runtime: &Interpreter,
        options: &VerifyOptions,
        steps: Vec<StepReport<WheelStep>>,
    ) -> WheelVerification {
        WheelVerification {
            wheel: wheel.to_path_buf(),
            python: interp.path.clone(),
            version: interp.version.clone(),
            runtime_python: runtime.path.clone(),
            runtime_version: runtime.version.clone(),
            installer: options.installer,
            venv: None,
            executable: None,
            programs: Vec::new(),
            runs: Vec::new(),
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
        }
    }

    /// The report with its runs: the first run's imports, every run's failures (each naming
    /// the start that met it when there were several), and the first run that failed.
    fn with_runs(mut self, runs: Vec<ProgramRun>, started: Instant) -> WheelVerification {
        let several = runs.len() > 1;
        if let Some(first) = runs.first() {
            self.imported = first.imported.clone();
            self.stdlib = first.stdlib.clone();
        }
        for run in &runs {
            let via = several.then(|| run.started.clone());
            self.import_failures
                .extend(run.import_failures.iter().map(|failure| ImportFailure {
                    module: failure.module.clone(),
                    error: match &via {
                        Some(via) => format!("{} (via {})", failure.error, via.display()),
                        None => failure.error.clone(),
                    },
                }));
            self.from_build_prefix
                .extend(run.from_build_prefix.iter().map(|found| ForeignModule {
                    via: via.clone(),
                    ..found.clone()
                }));
        }
        self.runs = runs;
        if let Some(failed) = self.runs.iter().find(|r| r.failure.is_some()) {
            let said = failed.failure.clone().unwrap_or_default();
            let message = if several {
                format!("{}: {said}", failed.started.display())
            } else {
                said
            };
            return self.fail(WheelStep::Run, message, started);
        }
        self.seconds = seconds_since(started);
        self.ok = self.runs.iter().all(|r| r.ok);
        self
    }

    fn fail(mut self, step: WheelStep, message: String, started: Instant) -> WheelVerification {
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
        .flat_map(|python_dir| children(&python_dir.join("site-packages").join(RUNTIME_FOLDER)))
        .collect()
}

/// The modules `bundle --exclude` left out, as listed in the runtime folder's `excluded.txt`.
fn excluded_modules(venv: &Path) -> Vec<String> {
    runtime_folders(venv)
        .iter()
        .filter_map(|runtime| std::fs::read_to_string(runtime.join(EXCLUDED_LIST)).ok())
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

/// The venv's site-packages folders (`lib*/python*/site-packages`).
fn site_packages(venv: &Path) -> Vec<PathBuf> {
    ["lib", "lib64"]
        .iter()
        .flat_map(|lib| children(&venv.join(lib)))
        .map(|python_dir| python_dir.join("site-packages"))
        .filter(|site| site.is_dir())
        .collect()
}

/// Every file the wheel installed, from the `RECORD` of each `.dist-info` that was not in
/// the venv before (paths in it are relative to site-packages; scripts are `../../../bin/x`).
fn installed_files(venv: &Path, sites_before: &BTreeSet<PathBuf>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for site in site_packages(venv) {
        for dist_info in children(&site) {
            let is_new_dist_info = dist_info.extension().is_some_and(|x| x == "dist-info")
                && !sites_before.contains(&dist_info);
            if !is_new_dist_info {
                continue;
            }
            let record = std::fs::read_to_string(dist_info.join("RECORD")).unwrap_or_default();
            for line in record.lines() {
                // path,hash,size: the path may hold commas, the other two do not.
                let mut fields = line.rsplitn(3, ',');
                let (Some(_), Some(_), Some(path)) = (fields.next(), fields.next(), fields.next())
                else {
                    continue;
                };
                let path = path.trim_matches('"');
                let file = std::fs::canonicalize(site.join(path)).unwrap_or(site.join(path));
                if file.is_file() && !files.contains(&file) {
                    files.push(file);
                }
            }
        }
    }
    files.sort();
    files
}

/// Whether the file starts with the ELF magic.
fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == b"\x7fELF"
}

/// The bytes every executable with the runtime finder holds (the folder it looks for).
fn finder_mark() -> Vec<u8> {
    format!("/{RUNTIME_FOLDER}/python").into_bytes()
}

/// The programs among installed files: ELF files that are not shared libraries
/// (`*.so`, `*.so.N`), those with the runtime finder if any has it.
fn programs_among(files: &[PathBuf]) -> Vec<PathBuf> {
    let elf_programs: Vec<&PathBuf> = files
        .iter()
        .filter(|f| {
            let name = f.file_name().unwrap_or_default().to_string_lossy();
            !name.ends_with(".so") && !name.contains(".so.") && is_elf(f)
        })
        .collect();
    let mark = finder_mark();
    let with_finder: Vec<PathBuf> = elf_programs
        .iter()
        .filter(|f| {
            std::fs::read(f).is_ok_and(|data| data.windows(mark.len()).any(|window| window == mark))
        })
        .map(|f| f.to_path_buf())
        .collect();
    if with_finder.is_empty() {
        elf_programs.into_iter().cloned().collect()
    } else {
        with_finder
    }
}

/// Why [`planned_runs`] has nothing to start.
#[derive(Debug, PartialEq, Eq)]
enum RunPlanProblem {
    /// The wheel installed no program.
    NoProgram,
    /// `--command NAME` names no command the wheel installed.
    NoSuchCommand(String),
}

/// What to start, and the program each start must reach: with `chosen`, that command only;
/// else every program through each installed command of its file name (the program itself
/// in `bin/`, auditwheel's wrapper, a console script that execs it), or directly where no
/// command has its name.
fn planned_runs(
    programs: &[PathBuf],
    commands: &[String],
    bin: &Path,
    chosen: Option<&str>,
) -> std::result::Result<Vec<(PathBuf, Option<PathBuf>)>, RunPlanProblem> {
    let named_like = |name: &str| {
        programs
            .iter()
            .find(|p| p.file_name().is_some_and(|n| n == name))
            .cloned()
    };
    if let Some(name) = chosen {
        if !commands.iter().any(|c| c == name) {
            return Err(RunPlanProblem::NoSuchCommand(name.to_string()));
        }
        return Ok(vec![(bin.join(name), named_like(name))]);
    }
    if programs.is_empty() {
        return Err(RunPlanProblem::NoProgram);
    }
    let mut runs = Vec::new();
    for program in programs {
        let name = program.file_name().unwrap_or_default().to_string_lossy();
        let through: Vec<PathBuf> = commands
            .iter()
            .filter(|c| c.as_str() == name)
            .map(|c| bin.join(c))
            .collect();
        if through.is_empty() {
            runs.push((program.clone(), Some(program.clone())));
        }
        runs.extend(through.into_iter().map(|c| (c, Some(program.clone()))));
    }
    Ok(runs)
}

/// What every run is checked against.
struct RunChecks<'a> {
    interp: &'a Interpreter,
    wanted: &'a ImportRun,
    script: &'a Path,
    cwd: &'a Path,
    bundled_stdlib: Option<PathBuf>,
    limit: Duration,
}

impl RunChecks<'_> {
    /// Write the imports script, then make every start of `runs`.
    fn run_all(
        &self,
        runs: &[(PathBuf, Option<PathBuf>)],
        programs: &[PathBuf],
    ) -> Result<Vec<ProgramRun>> {
        std::fs::write(self.script, IMPORTS_SCRIPT)
            .map_err(|e| Error::io("write", self.script, e))?;
        runs.iter()
            .map(|(command, program)| self.run(command, program.as_deref(), programs))
            .collect()
    }

    /// Start `command` as a user would, from a folder of one's own with none of Python's
    /// variables set, importing the wanted modules.
    fn run(
        &self,
        command: &Path,
        program: Option<&Path>,
        programs: &[PathBuf],
    ) -> Result<ProgramRun> {
        let run_start = Instant::now();
        let output = run_bounded(
            Command::new(command)
                .arg("--pyrun")
                .arg(self.script)
                .current_dir(self.cwd)
                .env(MODULES_VARIABLE, self.wanted.ok.join(" "))
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .env_remove("PYTHONHOME")
                .env_remove("PYTHONPATH"),
            self.limit,
        )
        .map_err(|e| Error::io("run", command, e))?;
        // uWSGI points its stdout at its log (stderr): the script's lines may be on either.
        let output = output.map(|mut out| {
            let log = std::mem::take(&mut out.stderr);
            out.stdout.extend_from_slice(&log);
            out.stderr = log;
            out
        });
        let run = parse_output(&output);
        let mut report = ProgramRun {
            started: command.to_path_buf(),
            program: program.map(Path::to_path_buf),
            reached: run.program.as_ref().map(PathBuf::from),
            imported: run.ok.clone(),
            import_failures: run.failed.clone(),
            from_build_prefix: self.taken_from_build_prefix(&run),
            stdlib: run.stdlib.clone(),
            failure: run_problem(&output, &run, self.limit),
            seconds: 0.0,
            ok: false,
        };
        if report.failure.is_none() {
            report.failure = self.wrong_program(&report, programs);
        }
        if report.failure.is_none() {
            report.failure = self.stdlib_problem(&report);
        }
        report.seconds = seconds_since(run_start);
        report.ok = report.failure.is_none()
            && report.import_failures.is_empty()
            && report.from_build_prefix.is_empty();
        Ok(report)
    }

    /// Modules the run took from the build interpreter, whatever the runtime: its prefix, or
    /// the very file the interpreter itself loads, which may sit behind a link. Such a module
    /// is missing wherever that interpreter is not, so the answer in the build container
    /// (cibuildwheel's test-command) is the answer on users' machines.
    fn taken_from_build_prefix(&self, run: &ImportRun) -> Vec<ForeignModule> {
        let real = |file: &str| {
            std::fs::canonicalize(file)
                .map(|f| f.display().to_string())
                .unwrap_or_else(|_| file.to_string())
        };
        let build_files: BTreeSet<String> =
            self.wanted.origins.iter().map(|(_, f)| real(f)).collect();
        let base_prefix = &self.interp.base_prefix;
        let build_prefixes = [
            format!("{}/", base_prefix.trim_end_matches('/')),
            format!("{}/", real(base_prefix).trim_end_matches('/')),
        ];
        run.origins
            .iter()
            .filter(|(_, file)| {
                let real_file = real(file);
                file.starts_with('/')
                    && (build_files.contains(&real_file)
                        || build_prefixes
                            .iter()
                            .any(|p| file.starts_with(p) || real_file.starts_with(p)))
            })
            .map(|(module, file)| ForeignModule {
                module: module.clone(),
                file: PathBuf::from(file),
                via: None,
            })
            .collect()
    }

    /// A start that reached another program than the one it leads to.
    fn wrong_program(&self, run: &ProgramRun, programs: &[PathBuf]) -> Option<String> {
        let reached = run.reached.as_ref()?;
        let fits = match &run.program {
            Some(program) => program == reached,
            None => programs.contains(reached),
        };
        (!fits).then(|| {
            format!(
                "{} started {}, not {}",
                run.started.display(),
                reached.display(),
                run.program.as_ref().map_or_else(
                    || "one of the wheel's programs".to_string(),
                    |p| p.display().to_string()
                )
            )
        })
    }

    /// With a bundled standard library, the program must take its `encodings` from it.
    fn stdlib_problem(&self, run: &ProgramRun) -> Option<String> {
        let zip = self.bundled_stdlib.as_ref()?;
        let inside = format!("{}/", zip.display());
        let used = run.stdlib.clone().unwrap_or_else(|| "unknown".into());
        let real_used = std::fs::canonicalize(&used)
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        (!used.starts_with(&inside) && !real_used.starts_with(&inside)).then(|| {
            format!(
                "the wheel bundles a standard library ({}), but the program took its \
                 `encodings` from {used} (is its runtime finder older than --stdlib?)",
                zip.display()
            )
        })
    }
}

/// Whether `python -m pip` is 22.3 or later (it can then install into another interpreter).
fn runtime_pip_can_target(python: &Path) -> bool {
    let Ok(Some(out)) = run_bounded(
        Command::new(python)
            .args(["-m", "pip", "--version"])
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env_remove("PYTHONPATH"),
        Duration::from_secs(60),
    ) else {
        return false;
    };
    let said = String::from_utf8_lossy(&out.stdout);
    out.status.success() && pip_version_can_target(&said)
}

/// `pip X.Y[.Z] from ...`: whether X.Y is 22.3 or later.
fn pip_version_can_target(said: &str) -> bool {
    let version = said.strip_prefix("pip ").unwrap_or("");
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (22, 3)
}

/// `python -m venv` of the runtime Python at `venv`, with pip or `--without-pip`.
fn make_venv(
    python: &Path,
    venv: &Path,
    with_pip: bool,
) -> Result<std::result::Result<(), String>> {
    let made = run_tool(
        Command::new(python)
            .args(["-m", "venv"])
            .args((!with_pip).then_some("--without-pip"))
            .arg(venv)
            .env_remove("PYTHONHOME")
            .env_remove("PYTHONPATH"),
        INSTALL_TIMEOUT,
        Streams::Both,
        Some(8),
    )?;
    Ok(made.map_err(|failure| format!("python -m venv {failure}")))
}

/// `pip install --no-deps --no-index` of `wheel` into `venv`. The venv's own pip is the one
/// ensurepip bundles with that CPython, which may be too old for the wheel's platform tag
/// (CPython 3.9.2's pip 20.2 knows no manylinux_2_31): when the runtime Python has a pip that
/// can install into another interpreter (22.3 and later: `--python`), that pip installs, as
/// the newest one at hand.
fn pip_install(
    python: &Path,
    venv: &Path,
    wheel: &Path,
    runtime_pip: bool,
) -> Result<std::result::Result<(), String>> {
    let venv_python = venv.join("bin/python");
    let mut pip = if runtime_pip {
        let mut pip = Command::new(python);
        pip.args(["-m", "pip", "--python"]).arg(&venv_python);
        pip
    } else {
        let mut pip = Command::new(&venv_python);
        pip.args(["-m", "pip"]);
        pip
    };
    let installed = run_tool(
        pip.args(["install", "--no-deps", "--no-index", "-q"])
            .arg(wheel)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env_remove("PYTHONPATH"),
        INSTALL_TIMEOUT,
        Streams::Both,
        Some(8),
    )?;
    Ok(installed.map_err(|failure| format!("pip install {failure}")))
}

/// Install `wheel` into a fresh venv of the runtime Python and check that its executable
/// starts and imports what the build interpreter can. Errors (exit 2 in the CLI) are problems
/// before anything could be tried: no wheel, no interpreter; a failed install, start or import
/// is a [`WheelVerification`] that is not `ok`.
///
/// ```no_run
/// use patch_uwsgi::{verify_wheel, Options, VerifyOptions};
/// let options = VerifyOptions::new(Options::for_python("/opt/python/cp312-cp312/bin/python"))
///     .with_runtime_python("/usr/bin/python3.12");
/// let checked = verify_wheel("wheelhouse/uwsgi-2.0.31-cp312-cp312-manylinux_2_28_x86_64.whl".as_ref(), &options)?;
/// for found in &checked.from_build_prefix {
///     eprintln!("{} came from {}", found.module, found.file.display());
/// }
/// assert!(checked.ok);
/// # Ok::<(), patch_uwsgi::Error>(())
/// ```
pub fn verify_wheel(wheel: &Path, options: &VerifyOptions) -> Result<WheelVerification> {
    verify_wheel_with_progress(wheel, options, &mut |_, _| {})
}

/// [`verify_wheel`], calling `progress` after each step (`probe`, `install`, `run`) with its
/// name and its duration in seconds, as it ends.
pub fn verify_wheel_with_progress(
    wheel: &Path,
    options: &VerifyOptions,
    progress: &mut dyn FnMut(&str, f64),
) -> Result<WheelVerification> {
    let mut announce = |steps: &[StepReport<WheelStep>]| {
        if let Some(step) = steps.last() {
            progress(step.step.as_str(), step.seconds);
        }
    };
    let started = Instant::now();
    let (wheel, kept_venv) = checked_inputs(wheel, options)?;
    let mut steps = Vec::new();
    let (interp, runtime) = timed(&mut steps, WheelStep::Probe, |_| interpreters(options))?;
    announce(&steps);
    let baseline = Baseline::start(&interp, options.run_timeout);
    let mut report = WheelVerification::new(&wheel, &interp, &runtime, options, steps);
    report.venv = kept_venv.clone();

    let work = tempfile::Builder::new()
        .prefix("patch-uwsgi-wheel-")
        .tempdir()
        .map_err(|e| Error::io("create a temporary folder in", &std::env::temp_dir(), e))?;
    let venv = kept_venv.unwrap_or_else(|| work.path().join("venv"));
    let installed = timed(&mut report.steps, WheelStep::Install, |_| {
        install(&wheel, &runtime, &venv, options.installer)
    })?;
    announce(&report.steps);
    let installed = match installed {
        Ok(installed) => installed,
        Err(message) => return Ok(report.fail(WheelStep::Install, message, started)),
    };
    let programs = programs_among(&installed.files);
    let chosen = options.command.as_deref();
    let runs = match planned_runs(&programs, &installed.commands, &venv.join("bin"), chosen) {
        Ok(runs) => runs,
        Err(RunPlanProblem::NoProgram) => {
            let message = installed.no_program();
            return Ok(report.fail(WheelStep::Install, message, started));
        }
        Err(RunPlanProblem::NoSuchCommand(name)) => {
            return Err(Error::NoSuchCommand {
                wheel: wheel.clone(),
                command: name,
                commands: installed.commands,
            })
        }
    };
    report.programs = programs.clone();
    report.executable = runs.first().map(|r| r.0.clone());
    report.bundled_stdlib = bundled_stdlib(&venv);
    report.excluded = excluded_modules(&venv);

    let mut wanted = baseline.finish(&interp, options.run_timeout)?;
    report.failing_in_interpreter_too = wanted.failed.clone();
    wanted.ok.retain(|module| !report.excluded.contains(module));
    let checks = RunChecks {
        interp: &interp,
        wanted: &wanted,
        script: &work.path().join("imports.py"),
        cwd: work.path(),
        bundled_stdlib: report.bundled_stdlib.clone(),
        limit: options.run_timeout,
    };
    let runs_done = timed(&mut report.steps, WheelStep::Run, |shown| {
        *shown = Some(shown_runs(&runs));
        checks.run_all(&runs, &programs)
    })?;
    announce(&report.steps);
    Ok(report.with_runs(runs_done, started))
}

/// The build interpreter, and the runtime Python (by default the same).
fn interpreters(options: &VerifyOptions) -> Result<(Interpreter, Interpreter)> {
    let given = &options.options;
    let interp = given.interpreter(Operation::Verify)?;
    let runtime = match &options.runtime_python {
        Some(path) => Interpreter::probe(path, given.probe_timeout)?,
        None => interp.clone(),
    };
    Ok((interp, runtime))
}

/// The wheel (absolute) and the venv to keep (absolute), or why they cannot be used: not a
/// wheel file (only the zip magic is read here), or a `--venv` folder that is there already.
fn checked_inputs(wheel: &Path, options: &VerifyOptions) -> Result<(PathBuf, Option<PathBuf>)> {
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
    let kept_venv = match &options.venv {
        Some(dir) if dir.symlink_metadata().is_ok() => {
            return Err(Error::VenvExists { path: dir.clone() })
        }
        Some(dir) => Some(std::path::absolute(dir).map_err(|e| Error::io("resolve", dir, e))?),
        None => None,
    };
    Ok((wheel, kept_venv))
}

/// What an install put into the venv.
struct InstalledWheel {
    /// The commands it added to `bin/`.
    commands: Vec<String>,
    /// Every file its RECORD lists.
    files: Vec<PathBuf>,
}

impl InstalledWheel {
    /// Why there is nothing to start: the ELF files and commands it installed.
    fn no_program(&self) -> String {
        let listed = |items: Vec<String>| {
            if items.is_empty() {
                "none".to_string()
            } else {
                items.join(", ")
            }
        };
        let elf = self
            .files
            .iter()
            .filter(|f| is_elf(f))
            .map(|f| f.display().to_string())
            .collect();
        format!(
            "the wheel installs no executable to start (ELF files: {}; commands: {})",
            listed(elf),
            listed(self.commands.clone())
        )
    }
}

/// A fresh venv of `runtime` at `venv` with `wheel` installed by `installer`; `Ok(Err(..))`
/// says why the install failed (the report's message).
fn install(
    wheel: &Path,
    runtime: &Interpreter,
    venv: &Path,
    installer: Installer,
) -> Result<std::result::Result<InstalledWheel, String>> {
    // pip decides this from the wheel's tags before it installs anything; so does the
    // built-in installer.
    if installer == Installer::Builtin {
        let file_name = wheel.file_name().unwrap_or_default().to_string_lossy();
        if let Some(problem) = unsupported_tags(&file_name, runtime) {
            return Ok(Err(problem));
        }
    }
    // Whether the runtime Python's pip installs (see pip_install), asked once: a Python start.
    let runtime_pip = installer == Installer::Pip && runtime_pip_can_target(&runtime.path);
    let with_pip = installer == Installer::Pip && !runtime_pip;
    if let Err(message) = make_venv(&runtime.path, venv, with_pip)? {
        return Ok(Err(message));
    }
    let bin = venv.join("bin");
    let before = names_in(&bin);
    let sites_before: BTreeSet<PathBuf> = site_packages(venv)
        .iter()
        .flat_map(|site| children(site))
        .collect();
    let installed = match installer {
        Installer::Builtin => VenvLayout::of(venv)
            .and_then(|layout| install_wheel(wheel, &layout))
            .map(|_| ()),
        Installer::Pip => pip_install(&runtime.path, venv, wheel, runtime_pip)?,
    };
    Ok(installed.map(|()| InstalledWheel {
        commands: names_in(&bin).difference(&before).cloned().collect(),
        files: installed_files(venv, &sites_before),
    }))
}

/// The run step's command line, for the report.
fn shown_runs(runs: &[(PathBuf, Option<PathBuf>)]) -> Vec<String> {
    vec![
        runs.iter()
            .map(|(c, _)| c.display().to_string())
            .collect::<Vec<_>>()
            .join(" | "),
        "--pyrun".into(),
        "<imports script>".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_versions_that_install_into_another_interpreter() {
        for (said, expected) in [
            ("pip 26.1.2 from /x/pip (python 3.11)", true),
            ("pip 22.3 from /x (python 3.9)", true),
            ("pip 22.2.2 from /x (python 3.9)", false),
            ("pip 20.2.3 from /x (python 3.9)", false),
            ("", false),
        ] {
            assert_eq!(pip_version_can_target(said), expected, "{said}");
        }
    }

    #[test]
    fn planned_runs_table() {
        let bin = Path::new("/v/bin");
        let site = Path::new("/v/lib/python3.11/site-packages");
        let uwsgi_in_bin = bin.join("uwsgi");
        let scripts = site.join("uwsgi.scripts/uwsgi");
        let package_data = site.join("myserver/bin/myserver");
        let worker = site.join("myserver/libexec/worker");
        let run =
            |command: &Path, program: &Path| (command.to_path_buf(), Some(program.to_path_buf()));
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // (programs, commands, --command, expected)
        type Expected = std::result::Result<Vec<(PathBuf, Option<PathBuf>)>, RunPlanProblem>;
        type Case<'a> = (Vec<PathBuf>, Vec<String>, Option<&'a str>, Expected);
        let cases: Vec<Case> = vec![
            // setup.py's wheel: the program is the command.
            (
                vec![uwsgi_in_bin.clone()],
                names(&["uwsgi", "uwsgidecorators-tool"]),
                None,
                Ok(vec![run(&uwsgi_in_bin, &uwsgi_in_bin)]),
            ),
            // auditwheel's wrapper leads to .scripts/uwsgi.
            (
                vec![scripts.clone()],
                names(&["uwsgi"]),
                None,
                Ok(vec![run(&bin.join("uwsgi"), &scripts)]),
            ),
            // A console script named like the package-data program; a second program with no
            // command is started where it is.
            (
                vec![package_data.clone(), worker.clone()],
                names(&["myserver", "myserver-admin"]),
                None,
                Ok(vec![
                    run(&bin.join("myserver"), &package_data),
                    run(&worker, &worker),
                ]),
            ),
            // --command picks one, named like no program: any program may be reached.
            (
                vec![package_data.clone()],
                names(&["myserver", "serve"]),
                Some("serve"),
                Ok(vec![(bin.join("serve"), None)]),
            ),
            (
                vec![package_data.clone()],
                names(&["myserver"]),
                Some("nosuch"),
                Err(RunPlanProblem::NoSuchCommand("nosuch".into())),
            ),
            (
                vec![],
                names(&["myserver"]),
                None,
                Err(RunPlanProblem::NoProgram),
            ),
        ];
        for (programs, commands, chosen, expected) in cases {
            assert_eq!(
                planned_runs(&programs, &commands, bin, chosen),
                expected,
                "{programs:?} {commands:?} {chosen:?}"
            );
        }
    }
}
