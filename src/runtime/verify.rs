//! `verify`: before the long uWSGI build, link a tiny program that embeds the interpreter with
//! exactly the plan `apply` writes, run it, and import every `lib-dynload` module the build
//! interpreter can import. Failures show up here in about a second instead of after a build
//! (`undefined symbol`, a PIE relocation error) or after shipping (`No module named 'math'`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Operation, Result};
use crate::names::MODULES_VARIABLE;
use crate::options::VerifyOptions;
use crate::plan::interpreter::Interpreter;
use crate::plan::libpython::{Candidate, Located};
use crate::plan::{
    compiler_said, describe, failed_with_and_without_no_pie, is_pie_relocation_error,
    remember_no_pie, run_compiler, Compiler, LinkPlan, ModeChoice, PlanOptions,
};
use crate::process::{run_bounded, ToolFailure};
use crate::releases::{check_free_threaded, check_python_support};

use super::runs::{
    parse_output, run_problem, seconds_since, timed, Baseline, ImportFailure, IMPORTS_SCRIPT,
};
pub use super::runs::{StepFailure, StepReport};

/// The C program that embeds the interpreter.
pub const EMBED_SOURCE: &str = include_str!("verify_embed.c");

/// The libraries uWSGI's own `uwsgiconfig.py` puts before the plugins' (`self.libs`): without
/// `-rdynamic` the executable exports no Python symbols and every extension module fails with
/// `undefined symbol`.
const UWSGI_CORE_LIBS: [&str; 3] = ["-lpthread", "-lm", "-rdynamic"];

/// The steps of [`verify`], in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
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
        }
    }
}

/// The program run against another interpreter's stdlib.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
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
#[non_exhaustive]
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
    pub steps: Vec<StepReport<Step>>,
    /// The first step that failed, with the tool's own message.
    pub failure: Option<StepFailure<Step>>,
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
    /// The report before anything was compiled.
    fn new(
        interp: &Interpreter,
        plan: &LinkPlan,
        located: &Located,
        compiler: &Compiler,
        steps: Vec<StepReport<Step>>,
    ) -> Verification {
        Verification {
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
        }
    }

    fn fail(mut self, step: Step, message: String, started: Instant) -> Verification {
        self.failure = Some(StepFailure { step, message });
        self.seconds = seconds_since(started);
        self.ok = false;
        self
    }

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
        .env(MODULES_VARIABLE, modules.join(" "))
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
    ) -> Result<(std::result::Result<(), ToolFailure>, Vec<String>)> {
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

    /// [`Program::link`]; a PIE relocation error is retried with `-no-pie` (unless the caller
    /// decided `-no-pie`), and when that fails too, the message keeps both linkers' words.
    /// `shown` gets the last command line.
    fn link_retrying_no_pie(
        &self,
        compiler: &Compiler,
        plan: &LinkPlan,
        no_pie: Option<bool>,
        shown: &mut Option<Vec<String>>,
    ) -> Result<Linked> {
        let (linked, command) = self.link(compiler, plan)?;
        *shown = Some(command);
        match linked.map_err(|failure| compiler_said(&failure)) {
            Err(first) if no_pie.is_none() && is_pie_relocation_error(&first) => {
                let mut no_pie_plan = plan.clone();
                no_pie_plan.set_no_pie();
                let (linked, command) = self.link(compiler, &no_pie_plan)?;
                *shown = Some(command);
                Ok(Linked {
                    result: linked.map_err(|second| {
                        failed_with_and_without_no_pie(&first, &compiler_said(&second))
                    }),
                    no_pie_plan: Some(no_pie_plan),
                })
            }
            result => Ok(Linked {
                result,
                no_pie_plan: None,
            }),
        }
    }

    /// Link as uWSGI does: compiler, -o, LDFLAGS, the objects, then core and plugin LIBS.
    fn link(
        &self,
        compiler: &Compiler,
        plan: &LinkPlan,
    ) -> Result<(std::result::Result<(), ToolFailure>, Vec<String>)> {
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
///
/// ```no_run
/// use patch_uwsgi::{verify, Options, VerifyOptions};
/// let python = "/opt/python/cp312-cp312/bin/python";
/// let checked = verify(&VerifyOptions::new(Options::for_python(python)).with_tree("uwsgi"))?;
/// if !checked.ok() {
///     eprintln!("{:?}: {:?}", checked.failure, checked.import_failures);
/// }
/// # Ok::<(), patch_uwsgi::Error>(())
/// ```
pub fn verify(options: &VerifyOptions) -> Result<Verification> {
    let started = Instant::now();
    let limit = options.run_timeout;
    let given = &options.options;
    let compiler = &given.plan.compiler;
    let mut steps = Vec::new();
    let interp = timed(&mut steps, Step::Probe, |_| {
        given.interpreter(Operation::Verify)
    })?;
    refuse_unsupported(options, &interp)?;
    let (plan, located) = timed(&mut steps, Step::Locate, |_| {
        static_plan(&interp, &given.plan)
    })?;
    let program = Program::new()?;
    let baseline = Baseline::start(&interp, limit);
    let mut verification = Verification::new(&interp, &plan, &located, compiler, steps);

    let compiled = timed(&mut verification.steps, Step::Compile, |shown| {
        let (compiled, command) = program.compile(compiler, &interp)?;
        *shown = Some(command);
        Ok::<_, Error>(compiled)
    })?;
    if let Err(failure) = compiled {
        return Ok(verification.fail(Step::Compile, compiler_said(&failure), started));
    }
    let linked = timed(&mut verification.steps, Step::Link, |shown| {
        program.link_retrying_no_pie(compiler, &plan, given.plan.no_pie, shown)
    })?;
    if let Some(no_pie_plan) = linked.no_pie_plan {
        verification.needs_no_pie = linked.result.is_ok();
        verification.plan = no_pie_plan;
    }
    if given.plan.no_pie.is_none() && linked.result.is_ok() {
        // Spare the `apply` that usually follows its own probe link.
        let cache = given.plan.search.cache_dir.as_deref();
        let (libs, needs) = (&verification.plan.libs, verification.needs_no_pie);
        remember_no_pie(compiler, libs, &located.path, cache, needs);
    }
    if let Err(message) = linked.result {
        return Ok(verification.fail(Step::Link, message, started));
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
        return Ok(verification.fail(Step::Run, message, started));
    }
    if let Some(runtime_python) = &options.runtime_python {
        let report = timed(&mut verification.steps, Step::Runtime, |shown| {
            let embedded = Embedded {
                interp: &interp,
                exe: &exe,
                modules: &baseline_run.ok,
                imported: &run.ok,
                limit,
            };
            let (report, command) =
                embedded.against_runtime(runtime_python, given.probe_timeout)?;
            *shown = Some(command);
            Ok::<_, Error>(report)
        })?;
        verification.runtime = Some(report);
    }
    verification.seconds = seconds_since(started);
    verification.ok = verification.compute_ok();
    Ok(verification)
}

/// uWSGI cannot run on this Python at all: say so before linking anything (the tree's release
/// with `verify DIR`, a free-threaded Python without).
fn refuse_unsupported(options: &VerifyOptions, interp: &Interpreter) -> Result<()> {
    match &options.tree {
        _ if !options.options.release_check => Ok(()),
        Some(dir) => {
            let tree = crate::tree::UwsgiTree::open(dir)?;
            check_python_support(tree.root(), tree.version(), &interp.checked())
        }
        None => check_free_threaded(&interp.checked()),
    }
}

/// The link of [`Program::link_retrying_no_pie`].
struct Linked {
    /// Linked, or the linker's words (both linkers' after a retry).
    result: std::result::Result<(), String>,
    /// The plan with `-no-pie` when the link was retried with it.
    no_pie_plan: Option<LinkPlan>,
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

/// The linked program and what its run in the build interpreter's home found.
struct Embedded<'a> {
    interp: &'a Interpreter,
    exe: &'a Path,
    /// The modules to import (those the build interpreter imports).
    modules: &'a [String],
    /// Those the program imported in the build interpreter's home.
    imported: &'a [String],
    limit: Duration,
}

impl Embedded<'_> {
    /// Run the program against `runtime_python`'s stdlib and lib-dynload.
    fn against_runtime(
        &self,
        runtime_python: &Path,
        probe_timeout: Duration,
    ) -> Result<(RuntimeReport, Vec<String>)> {
        let runtime = Interpreter::probe(runtime_python, probe_timeout)?;
        let (output, shown) =
            run_embedded(self.exe, &runtime.base_prefix, self.modules, self.limit)?;
        let there = parse_output(&output);
        let mut error = run_problem(&output, &there, self.limit);
        if runtime.ld_version() != self.interp.ld_version() {
            error.get_or_insert_with(String::new).insert_str(
                0,
                &format!(
                    "its stdlib is for Python {}, the archive is {}; ",
                    runtime.ld_version(),
                    self.interp.ld_version()
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
            builtin_there: self
                .imported
                .iter()
                .filter(|m| builtin_there.contains(m))
                .cloned()
                .collect(),
        };
        Ok((report, shown))
    }
}
