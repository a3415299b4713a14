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
use crate::link::{c_compiler, describe, is_pie_relocation_error, remember_no_pie, run_compiler};
use crate::locate::{cache_dir, Candidate, SearchOptions};
use crate::plan::{LinkPlan, Mode, ModeChoice, PlanOptions};
use crate::process::{last_lines, run_bounded};
use crate::python::{target_interpreter, Interpreter};

/// The C program that embeds the interpreter.
pub const EMBED_SOURCE: &str = include_str!("blocks/verify_embed.c");

/// The script run by the build interpreter and by the embedding program.
pub const IMPORTS_SCRIPT: &str = include_str!("blocks/verify_imports.py");

/// Default limit for running the embedding program (and the interpreter's own import run).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// The libraries uWSGI's own `uwsgiconfig.py` puts before the plugins' (`self.libs`): without
/// `-rdynamic` the executable exports no Python symbols and every extension module fails with
/// `undefined symbol`.
const UWSGI_CORE_LIBS: [&str; 3] = ["-lpthread", "-lm", "-rdynamic"];

/// Options for [`verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The target interpreter (default: `python`, then `python3` on `PATH`).
    pub python: Option<PathBuf>,
    /// An already probed interpreter; skips the probe.
    pub interpreter: Option<Interpreter>,
    /// Where to look for the archive.
    pub search: SearchOptions,
    /// Force `-no-pie` on or off; `None` tries without and retries with it on a PIE
    /// relocation error.
    pub no_pie: Option<bool>,
    /// Also run the program against this interpreter's stdlib and `lib-dynload` (the runtime a
    /// shipped binary will meet), reporting what it cannot import there.
    pub runtime_python: Option<PathBuf>,
    /// Limit for each run of the program (default [`RUN_TIMEOUT`]).
    pub timeout: Option<Duration>,
}

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
}

impl Verification {
    /// Whether everything linked, ran and imported.
    pub fn ok(&self) -> bool {
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
struct ImportRun {
    version: Option<String>,
    builtin: Vec<String>,
    ok: Vec<String>,
    failed: Vec<ImportFailure>,
    /// The module being imported when the output stopped, if its result never came.
    unfinished: Option<String>,
}

fn parse_import_run(stdout: &str) -> ImportRun {
    let mut run = ImportRun::default();
    for line in stdout.lines() {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "version" => run.version = Some(rest.to_string()),
            "builtin" => run.builtin = rest.split_whitespace().map(str::to_string).collect(),
            "try" => run.unfinished = Some(rest.to_string()),
            "ok" => {
                run.ok.push(rest.to_string());
                run.unfinished = None;
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
fn parse_output(output: &Option<Output>) -> ImportRun {
    parse_import_run(&String::from_utf8_lossy(
        output
            .as_ref()
            .map(|o| o.stdout.as_slice())
            .unwrap_or_default(),
    ))
}

fn seconds_since(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// Why a finished program run is not a success, or `None` when it is.
fn run_problem(output: &Option<Output>, run: &ImportRun, limit: Duration) -> Option<String> {
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
    let said = String::from_utf8_lossy(&output.stderr);
    Some(format!(
        "ended with {}{during}{}",
        output.status,
        if said.trim().is_empty() {
            String::new()
        } else {
            format!(": {}", last_lines(&said, 6))
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

/// Link and run a program embedding the target interpreter with its static plan; see the
/// module documentation. Errors (exit 2 in the CLI) are problems before anything could be
/// tried: no interpreter, no archive, no compiler. A failed compile, link, run or import is a
/// [`Verification`] that is not [`ok`](Verification::ok).
pub fn verify(options: &VerifyOptions) -> Result<Verification> {
    let started = Instant::now();
    let limit = options.timeout.unwrap_or(RUN_TIMEOUT);
    let mut steps = Vec::new();

    let step_start = Instant::now();
    let interp = target_interpreter(options.interpreter.as_ref(), options.python.as_deref())?;
    steps.push(StepReport {
        step: Step::Probe,
        seconds: seconds_since(step_start),
        command: None,
    });

    let step_start = Instant::now();
    let plan_options = PlanOptions {
        mode: ModeChoice::Static,
        search: options.search.clone(),
        // The link below is the PIE probe: no separate probe link.
        no_pie: Some(options.no_pie.unwrap_or(false)),
    };
    let (mut plan, located) = LinkPlan::new_located(&interp, &plan_options)?;
    let located = located.expect("a static plan is located");
    steps.push(StepReport {
        step: Step::Locate,
        seconds: seconds_since(step_start),
        command: None,
    });

    let tool = c_compiler()?;
    let dir = tempfile::Builder::new()
        .prefix("patch-uwsgi-verify-")
        .tempdir()
        .map_err(|e| Error::io("create a temporary folder in", &std::env::temp_dir(), e))?;
    let source = dir.path().join("embed.c");
    let object = dir.path().join("embed.o");
    let exe = dir.path().join("embed");
    std::fs::write(&source, EMBED_SOURCE).map_err(|e| Error::io("write", &source, e))?;

    // Meanwhile the build interpreter imports its own lib-dynload modules: the list to try and
    // the baseline to compare with. Every later return waits for it (it is bounded).
    let baseline = {
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
        std::thread::spawn(move || run_bounded(&mut command, limit))
    };

    let mut verification = Verification {
        python: interp.path.clone(),
        version: interp.version.clone(),
        plan: plan.clone(),
        tried: located.tried.clone(),
        compiler: tool.path().to_path_buf(),
        needs_no_pie: false,
        steps,
        failure: None,
        imported: Vec::new(),
        import_failures: Vec::new(),
        failing_in_interpreter_too: Vec::new(),
        builtin_modules: Vec::new(),
        runtime: None,
        seconds: 0.0,
    };
    let finish = |mut v: Verification, step: Step, message: String| {
        v.failure = Some(StepFailure { step, message });
        v.seconds = seconds_since(started);
        Ok(v)
    };

    let step_start = Instant::now();
    let mut compile = tool.to_command();
    compile.arg("-c").arg(&source).arg("-o").arg(&object);
    for dir in include_dirs(&interp) {
        compile.arg(format!("-I{dir}"));
    }
    let compiled = run_compiler(&mut compile)?;
    verification.steps.push(StepReport {
        step: Step::Compile,
        seconds: seconds_since(step_start),
        command: Some(describe(&compile)),
    });
    if let Err(message) = compiled {
        // The interpreter's import run is bounded; wait for it so nothing outlives verify.
        let _ = baseline.join();
        return finish(verification, Step::Compile, message);
    }

    // uWSGI's link line: compiler, -o, LDFLAGS, the objects, then core and plugin LIBS.
    let link_command = |plan: &LinkPlan| {
        let mut command = tool.to_command();
        command
            .arg("-o")
            .arg(&exe)
            .args(&plan.ldflags)
            .arg(&object)
            .args(UWSGI_CORE_LIBS)
            .args(&plan.libs);
        command
    };
    let step_start = Instant::now();
    let mut link = link_command(&plan);
    let mut linked = run_compiler(&mut link)?;
    if let Err(message) = &linked {
        if options.no_pie.is_none() && is_pie_relocation_error(message) {
            plan = LinkPlan::with_archive(&interp, Mode::Static, Some(&located), true);
            link = link_command(&plan);
            linked = run_compiler(&mut link)?;
            verification.needs_no_pie = linked.is_ok();
            verification.plan = plan.clone();
        }
    }
    if options.no_pie.is_none() && linked.is_ok() {
        // Spare the `apply` that usually follows its own probe link.
        remember_no_pie(
            &tool,
            &plan.libs,
            &located.path,
            &cache_dir(&options.search),
            verification.needs_no_pie,
        );
    }
    verification.steps.push(StepReport {
        step: Step::Link,
        seconds: seconds_since(step_start),
        command: Some(describe(&link)),
    });
    if let Err(message) = linked {
        // The interpreter's import run is bounded; wait for it so nothing outlives verify.
        let _ = baseline.join();
        return finish(verification, Step::Link, message);
    }

    let baseline_output = baseline
        .join()
        .expect("the import thread does not panic")
        .map_err(|e| Error::io("run", &interp.path, e))?;
    let baseline_run = parse_output(&baseline_output);
    if let Some(problem) = run_problem(&baseline_output, &baseline_run, limit) {
        return Err(Error::Interpreter {
            python: interp.path.clone(),
            problem: format!("importing its own lib-dynload modules failed: {problem}"),
        });
    }
    verification.failing_in_interpreter_too = baseline_run.failed.clone();

    let step_start = Instant::now();
    let (output, shown) = run_embedded(&exe, &interp.base_prefix, &baseline_run.ok, limit)?;
    let run = parse_output(&output);
    verification.steps.push(StepReport {
        step: Step::Run,
        seconds: seconds_since(step_start),
        command: Some(shown),
    });
    verification.builtin_modules = run.builtin.clone();
    verification.imported = run.ok.clone();
    verification.import_failures = run.failed.clone();
    if let Some(message) = run_problem(&output, &run, limit) {
        return finish(verification, Step::Run, message);
    }

    if let Some(runtime_python) = &options.runtime_python {
        let step_start = Instant::now();
        let runtime = Interpreter::probe(runtime_python)?;
        let (output, shown) = run_embedded(&exe, &runtime.base_prefix, &baseline_run.ok, limit)?;
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
        verification.runtime = Some(RuntimeReport {
            python: runtime_python.clone(),
            version: runtime.version.clone(),
            home: runtime.base_prefix.clone(),
            error,
            failed: there.failed,
            builtin_there: run
                .ok
                .iter()
                .filter(|m| builtin_there.contains(m))
                .cloned()
                .collect(),
        });
        verification.steps.push(StepReport {
            step: Step::Runtime,
            seconds: seconds_since(step_start),
            command: Some(shown),
        });
    }
    verification.seconds = seconds_since(started);
    Ok(verification)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_run_lines() {
        let cases: &[(&str, ImportRun)] = &[
            (
                "version 3.12.1\nbuiltin _abc sys\ntry math\nok math\ntry _tkinter\nfail _tkinter ImportError: libtk8.6.so: cannot open\n",
                ImportRun {
                    version: Some("3.12.1".into()),
                    builtin: vec!["_abc".into(), "sys".into()],
                    ok: vec!["math".into()],
                    failed: vec![ImportFailure {
                        module: "_tkinter".into(),
                        error: "ImportError: libtk8.6.so: cannot open".into(),
                    }],
                    unfinished: None,
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
