//! Program runs as both checks make them: the import-run protocol their programs and the build
//! interpreter speak ([`IMPORTS_SCRIPT`], read by [`parse_import_run`]), the build interpreter's
//! own run beside the check ([`Baseline`]), why a run is not a success ([`run_problem`]), and
//! the timing of each step ([`timed`]). [`verify`](super::verify) and
//! [`wheel`](super::wheel) use it; it uses neither.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::names::{import_run, MODULES_VARIABLE};
use crate::plan::interpreter::Interpreter;
use crate::process::{run_bounded, said, Streams};

/// The script run by the build interpreter and by the embedding program.
pub const IMPORTS_SCRIPT: &str = include_str!("verify_imports.py");

/// One step that ran: a step of [`verify`](crate::verify) or of
/// [`verify_wheel`](crate::verify_wheel).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct StepReport<S> {
    /// Which.
    pub step: S,
    /// How long it took.
    pub seconds: f64,
    /// The command line, for compiler and program runs.
    pub command: Option<Vec<String>>,
}

/// The step that failed and what the tool run there said.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct StepFailure<S> {
    /// Which step.
    pub step: S,
    /// The compiler's or the program's own message.
    pub message: String,
}

/// A module that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ImportFailure {
    /// The module.
    pub module: String,
    /// The exception, as `ImportError: ...`.
    pub error: String,
}

/// A module a program loaded from the build interpreter's prefix: it will be missing on users'
/// machines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ForeignModule {
    /// The module.
    pub module: String,
    /// The file it was loaded from.
    pub file: PathBuf,
    /// The installed command whose run loaded it, when `verify --wheel` started several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<PathBuf>,
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

/// Read the lines of [`IMPORTS_SCRIPT`] ([`import_run`]); other lines (a module printing on
/// import) are skipped.
pub(crate) fn parse_import_run(stdout: &str) -> ImportRun {
    let mut run = ImportRun::default();
    for line in stdout.lines() {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            import_run::VERSION => run.version = Some(rest.to_string()),
            import_run::BUILTIN => {
                run.builtin = rest.split_whitespace().map(str::to_string).collect()
            }
            import_run::STDLIB => run.stdlib = Some(rest.to_string()),
            import_run::PROGRAM => run.program = Some(rest.to_string()),
            import_run::TRY => run.unfinished = Some(rest.to_string()),
            import_run::OK => {
                run.ok.push(rest.to_string());
                run.unfinished = None;
            }
            import_run::FROM => {
                let (module, file) = rest.split_once(' ').unwrap_or((rest, ""));
                run.origins.push((module.to_string(), file.to_string()));
            }
            import_run::FAIL => {
                let (module, error) = rest.split_once(' ').unwrap_or((rest, ""));
                run.failed.push(ImportFailure {
                    module: module.to_string(),
                    error: error.to_string(),
                });
                run.unfinished = None;
            }
            // For a reader of the output only: the lib-dynload folders the script listed.
            import_run::DYNLOAD => {}
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

/// Seconds since `start`, to the millisecond.
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

/// The build interpreter importing its own lib-dynload modules, in a thread started before the
/// compile: the list to try embedded and the baseline to compare with. Dropping it waits for
/// the (bounded) run, so no return from a check leaves the interpreter running.
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
            .env_remove(MODULES_VARIABLE)
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
pub(crate) fn timed<S, T>(
    steps: &mut Vec<StepReport<S>>,
    step: S,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Step {
        Probe,
        Link,
    }

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
