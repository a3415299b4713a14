//! `verify`: before the long uWSGI build, link a tiny program that embeds the interpreter with
//! exactly the plan `apply` writes, run it, and import every `lib-dynload` module the build
//! interpreter can import. Failures show up here in about a second instead of after a build
//! (`undefined symbol`, a PIE relocation error) or after shipping (`No module named 'math'`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::options::VerifyOptions;
use crate::plan::interpreter::Interpreter;
use crate::plan::libpython::{Candidate, Located};
use crate::plan::{
    describe, failed_with_and_without_no_pie, is_pie_relocation_error, remember_no_pie,
    run_compiler, Compiler, LinkPlan, ModeChoice, PlanOptions,
};
use crate::process::{run_bounded, said, Streams};
use crate::recipes::support::{check_free_threaded, check_python_support};

/// The C program that embeds the interpreter.
pub const EMBED_SOURCE: &str = include_str!("verify_embed.c");

/// The script run by the build interpreter and by the embedding program.
pub const IMPORTS_SCRIPT: &str = include_str!("verify_imports.py");

/// The libraries uWSGI's own `uwsgiconfig.py` puts before the plugins' (`self.libs`): without
/// `-rdynamic` the executable exports no Python symbols and every extension module fails with
/// `undefined symbol`.
const UWSGI_CORE_LIBS: [&str; 3] = ["-lpthread", "-lm", "-rdynamic"];

/// The steps of a verification, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Asking the interpreter about itself.
    Probe,
    /// Finding the archive (maybe extracting it from manylinux's tarball).
    Locate,
    /// Compiling the embedding program.
    Compile,
    /// Linking it with the plan.
    Link,
    /// Running it: `Py_Initialize` and the imports.
    Run,
    /// Running it against another interpreter's stdlib.
    Runtime,
    /// `verify --wheel`: a fresh venv of the runtime Python, and the wheel installed into it.
    Install,
}

impl Step {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Probe => "probe",
            Step::Locate => "locate",
            Step::Compile => "compile",
            Step::Link => "link",
            Step::Run => "run",
            Step::Runtime => "runtime",
            Step::Install => "install",
        }
    }
}

/// One step that ran.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Which.
    pub step: Step,
    /// How long it took.
    pub seconds: f64,
    /// The command line, for compiler and program runs.
    pub command: Option<Vec<String>>,
}

/// The step that failed and what the tool run there said.
#[derive(Debug, Clone, Serialize)]
pub struct StepFailure {
    /// Which step.
    pub step: Step,
    /// The compiler's or the program's own message.
    pub message: String,
}

/// A module that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportFailure {
    /// The module.
    pub module: String,
    /// The exception, as `ImportError: ...`.
    pub error: String,
}

/// The program run against another interpreter's stdlib.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeReport {
    /// That interpreter.
    pub python: PathBuf,
    /// Its version.
    pub version: String,
    /// The `PYTHONHOME` used (its base prefix).
    pub home: String,
    /// Why the program did not get to the imports there, if it did not.
    pub error: Option<String>,
    /// Modules that import in the build interpreter but not there.
    pub failed: Vec<ImportFailure>,
    /// Modules the binary loads from `lib-dynload` that this runtime has compiled into its
    /// interpreter, so its `lib-dynload` has no file for them (Debian: `math`, `_socket`, ...).
    pub builtin_there: Vec<String>,
}

/// The result of [`verify`].
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// The build interpreter.
    pub python: PathBuf,
    /// Its version.
    pub version: String,
    /// The plan linked with (with `-no-pie` when the link needed it).
    pub plan: LinkPlan,
    /// Every archive candidate looked at.
    pub tried: Vec<Candidate>,
    /// The C compiler.
    pub compiler: PathBuf,
    /// Whether the first link failed with the PIE relocation error and `-no-pie` fixed it:
    /// `apply` then puts `-no-pie` in the plan too.
    pub needs_no_pie: bool,
    /// The steps run, with their times.
    pub steps: Vec<StepReport>,
    /// The first step that failed, with the tool's own message.
    pub failure: Option<StepFailure>,
    /// Extension modules the program imported from `lib-dynload`.
    pub imported: Vec<String>,
    /// Extension modules the build interpreter imports but the program could not.
    pub import_failures: Vec<ImportFailure>,
    /// Extension modules the build interpreter cannot import either (not counted as failures).
    pub failing_in_interpreter_too: Vec<ImportFailure>,
    /// The modules compiled into the archive (`sys.builtin_module_names` of the program).
    pub builtin_modules: Vec<String>,
    /// The run against another interpreter's stdlib, if asked for.
    pub runtime: Option<RuntimeReport>,
    /// Wall time of the whole verification.
    pub seconds: f64,
    /// Whether everything linked, ran and imported (in JSON too).
    pub ok: bool,
}

impl Verification {
    /// Whether everything linked, ran and imported (also the `ok` field).
    pub fn ok(&self) -> bool {
        self.ok
    }

    fn compute_ok(&self) -> bool {
        self.failure.is_none()
            && self.import_failures.is_empty()
            && self
                .runtime
                .as_ref()
                .is_none_or(|r| r.error.is_none() && r.failed.is_empty())
    }
}

/// What one run of [`IMPORTS_SCRIPT`] printed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ImportRun {
    pub(crate) version: Option<String>,
    pub(crate) builtin: Vec<String>,
    pub(crate) ok: Vec<String>,
    pub(crate) failed: Vec<ImportFailure>,
    /// The module being imported when the output stopped, if its result never came.
    pub(crate) unfinished: Option<String>,
    /// Where each imported module was loaded from (`from NAME FILE` lines).
    pub(crate) origins: Vec<(String, String)>,
    /// Where the standard library's `encodings` was loaded from.
    pub(crate) stdlib: Option<String>,
    /// The program that ran (`/proc/self/exe`).
    pub(crate) program: Option<String>,
}

pub(crate) fn parse_import_run(stdout: &str) -> ImportRun {
    let mut run = ImportRun::default();
    for line in stdout.lines() {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "version" => run.version = Some(rest.to_string()),
            "builtin" => run.builtin = rest.split_whitespace().map(str::to_string).collect(),
            "stdlib" => run.stdlib = Some(rest.to_string()),
            "program" => run.program = Some(rest.to_string()),
            "try" => run.unfinished = Some(rest.to_string()),
            "ok" => {
                run.ok.push(rest.to_string());
                run.unfinished = None;
            }
            "from" => {
                let (module, file) = rest.split_once(' ').unwrap_or((rest, ""));
                run.origins.push((module.to_string(), file.to_string()));
            }
            "fail" => {
                let (module, error) = rest.split_once(' ').unwrap_or((rest, ""));
                run.failed.push(ImportFailure {
                    module: module.to_string(),
                    error: error.to_string(),
                });
                run.unfinished = None;
            }
            // Anything else (a module printing on import) is not ours.
            _ => {}
        }
    }
    run
}

/// What a run printed (nothing if it was stopped).
pub(crate) fn parse_output(output: &Option<Output>) -> ImportRun {
    parse_import_run(&String::from_utf8_lossy(
        output
            .as_ref()
            .map(|o| o.stdout.as_slice())
            .unwrap_or_default(),
    ))
}

pub(crate) fn seconds_since(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// Why a finished program run is not a success, or `None` when it is.
pub(crate) fn run_problem(
    output: &Option<Output>,
    run: &ImportRun,
    limit: Duration,
) -> Option<String> {
    let during = run
        .unfinished
        .as_ref()
        .map(|m| format!(" while importing {m}"))
        .unwrap_or_default();
    let Some(output) = output else {
        return Some(format!(
            "did not finish within {} s{during}; it was stopped",
            limit.as_secs_f32()
        ));
    };
    if output.status.success() && run.unfinished.is_none() && run.version.is_some() {
        return None;
    }
    let said = said(output, Streams::Stderr, Some(6));
    Some(format!(
        "ended with {}{during}{}",
        output.status,
        if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        }
    ))
}

/// Run the embedding program with `home` as `PYTHONHOME`, importing `modules`.
fn run_embedded(
    exe: &Path,
    home: &str,
    modules: &[String],
    limit: Duration,
) -> Result<(Option<Output>, Vec<String>)> {
    let mut command = Command::new(exe);
    command
        .arg(IMPORTS_SCRIPT)
        .env("PYTHONHOME", home)
        .env("PATCH_UWSGI_VERIFY_MODULES", modules.join(" "))
        .env("PYTHONNOUSERSITE", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("TERM", "dumb")
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONSTARTUP");
    let shown = describe(&command)
        .into_iter()
        .take(1)
        .chain(["<imports script>".to_string()])
        .collect();
    let output = run_bounded(&mut command, limit).map_err(|e| Error::io("run", exe, e))?;
    Ok((output, shown))
}

fn include_dirs(interp: &Interpreter) -> Vec<String> {
    let mut dirs: Vec<String> = [&interp.config.INCLUDEPY, &interp.config.CONFINCLUDEPY]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    if dirs.is_empty() {
        // Dumps made before INCLUDEPY was probed: CPython's default layout.
        dirs.push(format!(
            "{}/include/python{}",
            interp.base_prefix,
            interp.ld_version()
        ));
    }
    dirs.dedup();
    dirs
}

/// The build interpreter importing its own lib-dynload modules, in a thread started before the
/// compile: the list to try embedded and the baseline to compare with. Dropping it waits for
/// the (bounded) run, so no return from [`verify`] leaves the interpreter running.
pub(crate) struct Baseline(Option<std::thread::JoinHandle<std::io::Result<Option<Output>>>>);

impl Baseline {
    pub(crate) fn start(interp: &Interpreter, limit: Duration) -> Baseline {
        let mut command = Command::new(&interp.path);
        command
            .arg("-S")
            .arg("-c")
            .arg(IMPORTS_SCRIPT)
            .env("TERM", "dumb")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PATCH_UWSGI_VERIFY_MODULES")
            .env_remove("PYTHONHOME")
            .env_remove("PYTHONPATH");
        Baseline(Some(std::thread::spawn(move || {
            run_bounded(&mut command, limit)
        })))
    }

    /// The modules the interpreter imported; an error if its own run failed.
    pub(crate) fn finish(mut self, interp: &Interpreter, limit: Duration) -> Result<ImportRun> {
        let handle = self.0.take().expect("finished once");
        let output = handle
            .join()
            .expect("the import thread does not panic")
            .map_err(|e| Error::io("run", &interp.path, e))?;
        let run = parse_output(&output);
        if let Some(problem) = run_problem(&output, &run, limit) {
            return Err(Error::Interpreter {
                python: interp.path.clone(),
                problem: format!("importing its own lib-dynload modules failed: {problem}"),
            });
        }
        Ok(run)
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            let _ = handle.join();
        }
    }
}

/// Run `work` and append its duration as `step` to `steps`, with the command line `work`
/// reports through its argument (for compiler and program runs). The one way the steps of
/// `verify` and `verify --wheel` are timed.
pub(crate) fn timed<T>(
    steps: &mut Vec<StepReport>,
    step: Step,
    work: impl FnOnce(&mut Option<Vec<String>>) -> T,
) -> T {
    let start = Instant::now();
    let mut command = None;
    let value = work(&mut command);
    steps.push(StepReport {
        step,
        seconds: seconds_since(start),
        command,
    });
    value
}

/// The temporary folder with the program's source, object and executable.
struct Program {
    dir: tempfile::TempDir,
}

impl Program {
    fn new() -> Result<Program> {
        let dir = tempfile::Builder::new()
            .prefix("patch-uwsgi-verify-")
            .tempdir()
            .map_err(|e| Error::io("create a temporary folder in", &std::env::temp_dir(), e))?;
        let source = dir.path().join("embed.c");
        std::fs::write(&source, EMBED_SOURCE).map_err(|e| Error::io("write", &source, e))?;
        Ok(Program { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Compile `embed.c` against the interpreter's headers.
    fn compile(
        &self,
        compiler: &Compiler,
        interp: &Interpreter,
    ) -> Result<(std::result::Result<(), String>, Vec<String>)> {
        let mut compile = compiler.command();
        compile
            .arg("-c")
            .arg(self.path("embed.c"))
            .arg("-o")
            .arg(self.path("embed.o"));
        for dir in include_dirs(interp) {
            compile.arg(format!("-I{dir}"));
        }
        Ok((run_compiler(&mut compile)?, describe(&compile)))
    }

    /// Link as uWSGI does: compiler, -o, LDFLAGS, the objects, then core and plugin LIBS.
    fn link(
        &self,
        compiler: &Compiler,
        plan: &LinkPlan,
    ) -> Result<(std::result::Result<(), String>, Vec<String>)> {
        let mut link = compiler.command();
        link.arg("-o")
            .arg(self.path("embed"))
            .args(&plan.ldflags)
            .arg(self.path("embed.o"))
            .args(UWSGI_CORE_LIBS)
            .args(&plan.libs);
        Ok((run_compiler(&mut link)?, describe(&link)))
    }
}

/// Link and run a program embedding the target interpreter with its static plan; see the
/// module documentation. Errors (exit 2 in the CLI) are problems before anything could be
/// tried: no interpreter, no archive, no compiler. A failed compile, link, run or import is a
/// [`Verification`] that is not [`ok`](Verification::ok).
pub fn verify(options: &VerifyOptions) -> Result<Verification> {
    let started = Instant::now();
    let limit = options.run_timeout;
    let given = &options.options;
    let compiler = &given.plan.compiler;
    let mut steps = Vec::new();

    let interp = timed(&mut steps, Step::Probe, |_| given.interpreter("verify"))?;
    // uWSGI cannot run on this Python at all: say so before linking anything.
    match &options.tree {
        _ if !given.release_check => {}
        Some(dir) => {
            let tree = crate::tree::UwsgiTree::open(dir)?;
            check_python_support(
                tree.root(),
                tree.version(),
                &interp.path,
                &interp.version,
                &interp.abiflags,
            )?;
        }
        None => check_free_threaded(&interp.path, &interp.version, &interp.abiflags)?,
    }
    let (plan, located) = timed(&mut steps, Step::Locate, |_| {
        static_plan(&interp, &given.plan)
    })?;
    let program = Program::new()?;
    let baseline = Baseline::start(&interp, limit);

    let mut verification = Verification {
        python: interp.path.clone(),
        version: interp.version.clone(),
        plan: plan.clone(),
        tried: located.tried.clone(),
        compiler: compiler.program.clone(),
        needs_no_pie: false,
        steps,
        failure: None,
        imported: Vec::new(),
        import_failures: Vec::new(),
        failing_in_interpreter_too: Vec::new(),
        builtin_modules: Vec::new(),
        runtime: None,
        seconds: 0.0,
        ok: false,
    };
    let failed = |mut v: Verification, step: Step, message: String| {
        v.failure = Some(StepFailure { step, message });
        v.seconds = seconds_since(started);
        v.ok = false;
        Ok(v)
    };

    let compiled = timed(&mut verification.steps, Step::Compile, |shown| {
        let (compiled, command) = program.compile(compiler, &interp)?;
        *shown = Some(command);
        Ok::<_, Error>(compiled)
    })?;
    if let Err(message) = compiled {
        return failed(verification, Step::Compile, message);
    }

    // A PIE relocation error is retried with -no-pie (unless -no-pie was decided by the
    // caller); when that fails too, the message keeps both linkers' words.
    let (linked, no_pie_plan) = timed(&mut verification.steps, Step::Link, |shown| {
        let (linked, command) = program.link(compiler, &plan)?;
        *shown = Some(command);
        match linked {
            Err(first) if given.plan.no_pie.is_none() && is_pie_relocation_error(&first) => {
                let mut no_pie_plan = plan.clone();
                no_pie_plan.set_no_pie();
                let (linked, command) = program.link(compiler, &no_pie_plan)?;
                *shown = Some(command);
                let linked =
                    linked.map_err(|second| failed_with_and_without_no_pie(&first, &second));
                Ok::<_, Error>((linked, Some(no_pie_plan)))
            }
            linked => Ok((linked, None)),
        }
    })?;
    if let Some(no_pie_plan) = no_pie_plan {
        verification.needs_no_pie = linked.is_ok();
        verification.plan = no_pie_plan;
    }
    if given.plan.no_pie.is_none() && linked.is_ok() {
        // Spare the `apply` that usually follows its own probe link.
        remember_no_pie(
            compiler,
            &verification.plan.libs,
            &located.path,
            given.plan.search.cache_dir.as_deref(),
            verification.needs_no_pie,
        );
    }
    if let Err(message) = linked {
        return failed(verification, Step::Link, message);
    }

    let baseline_run = baseline.finish(&interp, limit)?;
    verification.failing_in_interpreter_too = baseline_run.failed.clone();

    let exe = program.path("embed");
    let (output, run) = timed(&mut verification.steps, Step::Run, |shown| {
        let (output, command) = run_embedded(&exe, &interp.base_prefix, &baseline_run.ok, limit)?;
        *shown = Some(command);
        let run = parse_output(&output);
        Ok::<_, Error>((output, run))
    })?;
    verification.builtin_modules = run.builtin.clone();
    verification.imported = run.ok.clone();
    verification.import_failures = run.failed.clone();
    if let Some(message) = run_problem(&output, &run, limit) {
        return failed(verification, Step::Run, message);
    }

    if let Some(runtime_python) = &options.runtime_python {
        let report = timed(&mut verification.steps, Step::Runtime, |shown| {
            let (report, command) = against_runtime(
                runtime_python,
                given.probe_timeout,
                &interp,
                &exe,
                &baseline_run.ok,
                &run.ok,
                limit,
            )?;
            *shown = Some(command);
            Ok::<_, Error>(report)
        })?;
        verification.runtime = Some(report);
    }
    verification.seconds = seconds_since(started);
    verification.ok = verification.compute_ok();
    Ok(verification)
}

/// The static plan for `interp`; the link in [`verify`] is the probe link, so none is made
/// here.
fn static_plan(interp: &Interpreter, given: &PlanOptions) -> Result<(LinkPlan, Located)> {
    let plan_options = PlanOptions {
        mode: ModeChoice::Static,
        no_pie: Some(given.no_pie.unwrap_or(false)),
        ..given.clone()
    };
    let planned = LinkPlan::make(interp, &plan_options)?;
    Ok((
        planned.plan,
        planned.located.expect("a static plan is located"),
    ))
}

/// Run the program against `runtime_python`'s stdlib and lib-dynload.
fn against_runtime(
    runtime_python: &Path,
    probe_timeout: Duration,
    interp: &Interpreter,
    exe: &Path,
    modules: &[String],
    imported: &[String],
    limit: Duration,
) -> Result<(RuntimeReport, Vec<String>)> {
    let runtime = Interpreter::probe(runtime_python, probe_timeout)?;
    let (output, shown) = run_embedded(exe, &runtime.base_prefix, modules, limit)?;
    let there = parse_output(&output);
    let mut error = run_problem(&output, &there, limit);
    if runtime.ld_version() != interp.ld_version() {
        error.get_or_insert_with(String::new).insert_str(
            0,
            &format!(
                "its stdlib is for Python {}, the archive is {}; ",
                runtime.ld_version(),
                interp.ld_version()
            ),
        );
    }
    let builtin_there: BTreeSet<&String> = runtime.builtin_modules.iter().collect();
    let report = RuntimeReport {
        python: runtime_python.to_path_buf(),
        version: runtime.version.clone(),
        home: runtime.base_prefix.clone(),
        error,
        failed: there.failed,
        builtin_there: imported
            .iter()
            .filter(|m| builtin_there.contains(m))
            .cloned()
            .collect(),
    };
    Ok((report, shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_run_lines() {
        let cases: &[(&str, ImportRun)] = &[
            (
                "version 3.12.1\nprogram /v/bin/uwsgi\nbuiltin _abc sys\nstdlib /p/encodings/__init__.py\ntry math\nok math\nfrom math /p/math.so\ntry _tkinter\nfail _tkinter ImportError: libtk8.6.so: cannot open\n",
                ImportRun {
                    version: Some("3.12.1".into()),
                    builtin: vec!["_abc".into(), "sys".into()],
                    ok: vec!["math".into()],
                    failed: vec![ImportFailure {
                        module: "_tkinter".into(),
                        error: "ImportError: libtk8.6.so: cannot open".into(),
                    }],
                    unfinished: None,
                    origins: vec![("math".into(), "/p/math.so".into())],
                    stdlib: Some("/p/encodings/__init__.py".into()),
                    program: Some("/v/bin/uwsgi".into()),
                },
            ),
            (
                "version 2.7.18\nbuiltin\ntry math\nok math\ntry _ctypes\n",
                ImportRun {
                    version: Some("2.7.18".into()),
                    ok: vec!["math".into()],
                    unfinished: Some("_ctypes".into()),
                    ..ImportRun::default()
                },
            ),
            ("", ImportRun::default()),
            (
                "something a module printed\nversion 3.8.18\n",
                ImportRun {
                    version: Some("3.8.18".into()),
                    ..ImportRun::default()
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(&parse_import_run(text), expected, "for {text:?}");
        }
    }

    #[test]
    fn timed_steps_record_their_command() {
        let mut steps = Vec::new();
        let value = timed(&mut steps, Step::Probe, |_| 7);
        assert_eq!(value, 7);
        let value = timed(&mut steps, Step::Link, |shown| {
            *shown = Some(vec!["cc".to_string(), "-o".to_string()]);
            "linked"
        });
        assert_eq!(value, "linked");
        let recorded: Vec<(Step, Option<Vec<String>>)> =
            steps.iter().map(|s| (s.step, s.command.clone())).collect();
        assert_eq!(
            recorded,
            [
                (Step::Probe, None),
                (Step::Link, Some(vec!["cc".to_string(), "-o".to_string()]))
            ]
        );
        assert!(steps.iter().all(|s| s.seconds >= 0.0));
    }

    #[test]
    fn run_problems() {
        use std::os::unix::process::ExitStatusExt;
        let output = |code: i32, stderr: &str| {
            Some(Output {
                status: std::process::ExitStatus::from_raw(code),
                stdout: Vec::new(),
                stderr: stderr.as_bytes().to_vec(),
            })
        };
        let finished = ImportRun {
            version: Some("3.12.1".into()),
            ..ImportRun::default()
        };
        let crashed = ImportRun {
            version: Some("3.12.1".into()),
            unfinished: Some("_ctypes".into()),
            ..ImportRun::default()
        };
        let limit = Duration::from_secs(2);
        assert_eq!(run_problem(&output(0, ""), &finished, limit), None);
        // Signal 11 (raw wait status 11).
        let message = run_problem(&output(11, ""), &crashed, limit).unwrap();
        assert!(message.contains("while importing _ctypes"), "{message}");
        assert!(message.contains("SIGSEGV"), "{message}");
        let message = run_problem(
            &output(
                1 << 8,
                "Fatal Python error: init_fs_encoding\nNo module named 'encodings'",
            ),
            &ImportRun::default(),
            limit,
        )
        .unwrap();
        assert!(message.contains("No module named 'encodings'"), "{message}");
        let message = run_problem(&None, &crashed, limit).unwrap();
        assert!(
            message.contains("within 2 s while importing _ctypes"),
            "{message}"
        );
    }
}
