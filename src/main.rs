//! `patch_uwsgi`: parse the command line, call the library, print, map to an exit code.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use patch_uwsgi::{
    LinkPlan, ModeChoice, Options, Report, Verification, VerifyOptions, LIBPYTHON_ENV,
};

const USAGE: &str = "\
patch_uwsgi: make uWSGI's python plugin link a static libpython (manylinux, cibuildwheel)

usage:
  patch_uwsgi apply  [DIR]   rewrite the tree for the target Python (DIR defaults to .)
  patch_uwsgi check  [DIR]   change nothing; exit 0 if patched and the plan fits this Python, 1 if not
  patch_uwsgi diff   [DIR]   change nothing; print the unified diff apply would make
  patch_uwsgi revert [DIR]   restore upstream bytes and remove the plan (needs no interpreter)
  patch_uwsgi locate         find the static libpython of the target Python and print the plan
  patch_uwsgi verify         link and run a tiny program embedding the target Python with the
                             static plan; import its lib-dynload modules (seconds, not a build)

options:
  --python PATH       target interpreter (default: `python` on PATH, then `python3`)
  --libpython PATH    use this static archive (also: PATCH_UWSGI_LIBPYTHON)
  --probe FILE        use a saved interpreter probe (`locate --json` output, or its `probe`)
                      instead of launching the interpreter (offline use, build tools)
  --mode MODE         auto|static|nolib (default auto: shared if the Python has a libpython.so;
                      locate defaults to static)
  --manylinux-root DIR  folder with static-libs-for-embedding-only.tar.xz (default /opt/_internal)
  --no-pie auto|yes|no  link the executable -no-pie: auto decides by a probe link (remembered
                      in the cache folder for the same archive and compiler)
  --runtime-python PATH  (verify) also run against this Python's stdlib, as a shipped binary
                      would meet it
  --json              report as JSON on stdout
  --quiet             print nothing but errors
  --help, --version

exit: 0 done or nothing to do; 1 check found work, or verify failed; 2 error, and then nothing
was changed
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Apply,
    Check,
    Diff,
    Revert,
    Locate,
    Verify,
}

impl Command {
    fn name(self) -> &'static str {
        match self {
            Command::Apply => "apply",
            Command::Check => "check",
            Command::Diff => "diff",
            Command::Revert => "revert",
            Command::Locate => "locate",
            Command::Verify => "verify",
        }
    }
}

struct Args {
    command: Command,
    dir: PathBuf,
    options: Options,
    runtime_python: Option<PathBuf>,
    probe: Option<PathBuf>,
    json: bool,
    quiet: bool,
}

enum Parsed {
    Run(Box<Args>),
    Help,
    Version,
}

fn parse() -> Result<Parsed, lexopt::Error> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_env();
    let mut command = None;
    let mut dir = None;
    let mut options = Options::default();
    let mut json = false;
    let mut quiet = false;
    let mut runtime_python = None;
    let mut probe = None;
    let mut mode_given = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("help") | Short('h') => return Ok(Parsed::Help),
            Long("version") | Short('V') => return Ok(Parsed::Version),
            Long("python") => options.python = Some(parser.value()?.into()),
            Long("libpython") => options.plan.search.explicit = Some(parser.value()?.into()),
            Long("manylinux-root") => options.plan.search.manylinux_root = Some(parser.value()?.into()),
            Long("mode") => {
                mode_given = true;
                options.plan.mode = match parser.value()?.string()?.as_str() {
                    "auto" => ModeChoice::Auto,
                    "static" => ModeChoice::Static,
                    "nolib" => ModeChoice::Nolib,
                    other => {
                        return Err(
                            format!("--mode takes auto, static or nolib, not {other:?}").into()
                        )
                    }
                }
            }
            Long("runtime-python") => runtime_python = Some(PathBuf::from(parser.value()?)),
            Long("probe") => probe = Some(PathBuf::from(parser.value()?)),
            Long("no-pie") => {
                options.plan.no_pie = match parser.value()?.string()?.as_str() {
                    "auto" => None,
                    "yes" => Some(true),
                    "no" => Some(false),
                    other => {
                        return Err(format!("--no-pie takes auto, yes or no, not {other:?}").into())
                    }
                }
            }
            Long("json") => json = true,
            Long("quiet") | Short('q') => quiet = true,
            Value(value) if command.is_none() => {
                command = Some(match value.string()?.as_str() {
                    "apply" => Command::Apply,
                    "check" => Command::Check,
                    "diff" => Command::Diff,
                    "revert" => Command::Revert,
                    "locate" => Command::Locate,
                    "verify" => Command::Verify,
                    other => {
                        return Err(format!(
                        "unknown command {other:?}: use apply, check, diff, revert, locate or verify (see --help)"
                    )
                        .into())
                    }
                })
            }
            Value(value)
                if dir.is_none()
                    && !matches!(command, Some(Command::Locate | Command::Verify)) =>
            {
                dir = Some(PathBuf::from(value))
            }
            _ => return Err(arg.unexpected()),
        }
    }
    let command = command
        .ok_or("no command given: use apply, check, diff, revert, locate or verify (see --help)")?;
    if command == Command::Verify && mode_given {
        return Err("verify always checks the static plan; --mode does not apply to it".into());
    }
    if command != Command::Verify && runtime_python.is_some() {
        return Err("--runtime-python is an option of verify only".into());
    }
    if command == Command::Locate && !mode_given {
        options.plan.mode = ModeChoice::Static;
    }
    if options.plan.search.explicit.is_none() {
        options.plan.search.env = std::env::var_os(LIBPYTHON_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
    }
    Ok(Parsed::Run(Box::new(Args {
        command,
        dir: dir.unwrap_or_else(|| PathBuf::from(".")),
        options,
        runtime_python,
        probe,
        json,
        quiet,
    })))
}

fn run(args: &Args) -> patch_uwsgi::Result<(Report, Option<String>)> {
    match args.command {
        Command::Apply => patch_uwsgi::apply(&args.dir, &args.options).map(|r| (r, None)),
        Command::Check => patch_uwsgi::check(&args.dir, &args.options).map(|r| (r, None)),
        Command::Diff => patch_uwsgi::diff(&args.dir, &args.options).map(|(r, d)| (r, Some(d))),
        Command::Revert => patch_uwsgi::revert(&args.dir).map(|r| (r, None)),
        Command::Locate | Command::Verify => unreachable!("handled by run_locate, run_verify"),
    }
}

#[derive(serde::Serialize)]
struct JsonReport<'a> {
    command: &'static str,
    uwsgi_version: &'a str,
    tree: &'a std::path::Path,
    python: Option<&'a std::path::Path>,
    mode: Option<&'static str>,
    libpython: Option<&'a std::path::Path>,
    plugin_variant: patch_uwsgi::PluginVariant,
    files: &'a [patch_uwsgi::FileReport],
    plan: Option<&'a LinkPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<&'a str>,
}

fn print_human(out: &mut impl Write, command: Command, report: &Report) -> std::io::Result<()> {
    writeln!(
        out,
        "uWSGI {} in {}",
        report.uwsgi_version,
        report.tree.display()
    )?;
    if let Some(mode) = report.mode {
        let python = report.python.as_deref().unwrap_or("(given plan)".as_ref());
        let archive = report
            .libpython
            .as_ref()
            .map(|p| format!(", libpython {}", p.display()))
            .unwrap_or_default();
        let no_pie = if report.plan.as_ref().is_some_and(|p| p.no_pie) {
            ", -no-pie"
        } else {
            ""
        };
        writeln!(
            out,
            "python {}: mode {}{archive}{no_pie}",
            python.display(),
            mode.as_str()
        )?;
    }
    for file in &report.files {
        let recipes: Vec<String> = file
            .recipes
            .iter()
            .map(|r| format!("{} {}", r.id, r.outcome.as_str()))
            .collect();
        let detail = if recipes.is_empty() {
            String::new()
        } else {
            format!("  ({})", recipes.join(", "))
        };
        writeln!(out, "  {:<12} {}{detail}", file.outcome.as_str(), file.path)?;
    }
    if command == Command::Check {
        writeln!(
            out,
            "{}",
            if report.needs_work() {
                "needs patching: run `patch_uwsgi apply`"
            } else {
                "patched, and the plan fits this Python"
            }
        )?;
    }
    Ok(())
}

/// The one place results become exit codes: 2 when the report could not be written (a closed
/// pipe is not an error), else 0 for success and 1 for "check found work" / "verify failed".
fn exit_code(printed: std::io::Result<()>, success: bool) -> ExitCode {
    match printed {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("patch_uwsgi: cannot write the report: {err}");
            ExitCode::from(2)
        }
        _ if success => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

fn print_error(command: Command, err: &patch_uwsgi::Error) -> ExitCode {
    let mut message = format!("patch_uwsgi {}: error: {err}", command.name());
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    eprintln!("{message}");
    ExitCode::from(2)
}

fn run_locate(args: &Args) -> ExitCode {
    let found = match patch_uwsgi::locate(&args.options) {
        Ok(found) => found,
        Err(err) => return print_error(Command::Locate, &err),
    };
    let interp = &found.interpreter;
    let plan = &found.plan;
    let printed = if args.json {
        let json = serde_json::json!({
            "python": interp.path,
            "version": interp.version,
            "abiflags": interp.abiflags,
            "shared": interp.shared(),
            "free_threaded": interp.free_threaded(),
            "mode": plan.mode.as_str(),
            "libpython": plan.libpython,
            "source": plan.source,
            "libs": plan.libs,
            "ldflags": plan.ldflags,
            "no_pie": plan.no_pie,
            "pie_decision": found.pie,
            "tried": found.tried,
            "probe": interp,
        });
        println!("{}", serde_json::to_string_pretty(&json).expect("json"));
        Ok(())
    } else if !args.quiet {
        let mut out = std::io::stdout().lock();
        (|| {
            writeln!(
                out,
                "python {} (CPython {}{}, mode {})",
                interp.path.display(),
                interp.version,
                interp.abiflags,
                plan.mode.as_str()
            )?;
            if let (Some(path), Some(source)) = (&plan.libpython, plan.source) {
                writeln!(out, "libpython {} (found by {source})", path.display())?;
            }
            writeln!(out, "libs after the objects: {}", plan.libs.join(" "))?;
            if !plan.ldflags.is_empty() {
                writeln!(out, "ldflags: {}", plan.ldflags.join(" "))?;
            }
            if let Some(decision) = found.pie {
                writeln!(
                    out,
                    "-no-pie: {} ({})",
                    if plan.no_pie { "needed" } else { "not needed" },
                    match decision {
                        patch_uwsgi::PieDecision::ProbeLink => "probe link",
                        patch_uwsgi::PieDecision::Cached => "earlier probe link, cached",
                        patch_uwsgi::PieDecision::Given => "given",
                    }
                )?;
            }
            for candidate in &found.tried {
                let verdict = candidate.rejected.as_deref().unwrap_or("chosen");
                writeln!(
                    out,
                    "  tried {} ({}): {verdict}",
                    candidate.path.display(),
                    candidate.source
                )?;
            }
            Ok::<(), std::io::Error>(())
        })()
    } else {
        Ok(())
    };
    exit_code(printed, true)
}

fn print_verification(out: &mut impl Write, v: &Verification) -> std::io::Result<()> {
    let archive = v
        .plan
        .libpython
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let source = v.plan.source.map(|s| format!(" ({s})")).unwrap_or_default();
    writeln!(
        out,
        "verify {} (CPython {}) with {archive}{source}",
        v.python.display(),
        v.version
    )?;
    for step in &v.steps {
        let command = step
            .command
            .as_ref()
            .map(|c| format!("  {}", c.join(" ")))
            .unwrap_or_default();
        writeln!(
            out,
            "  {:<8} {:>6.2} s{command}",
            step.step.as_str(),
            step.seconds
        )?;
    }
    if v.needs_no_pie {
        writeln!(
            out,
            "the archive is not position-independent: the link needs -no-pie (apply puts it in the plan)"
        )?;
    }
    if let Some(failure) = &v.failure {
        writeln!(out, "FAILED at {}:", failure.step.as_str())?;
        for line in failure.message.lines() {
            writeln!(out, "  {line}")?;
        }
    }
    if !v.imported.is_empty() || !v.import_failures.is_empty() {
        writeln!(
            out,
            "imported {} lib-dynload modules embedded; {} failed that import in the interpreter",
            v.imported.len(),
            v.import_failures.len()
        )?;
    }
    for failure in &v.import_failures {
        writeln!(out, "  FAILED import {}: {}", failure.module, failure.error)?;
    }
    for failure in &v.failing_in_interpreter_too {
        writeln!(
            out,
            "  (fails in the interpreter too: {}: {})",
            failure.module, failure.error
        )?;
    }
    if !v.builtin_modules.is_empty() {
        writeln!(
            out,
            "compiled into the archive ({}): {}",
            v.builtin_modules.len(),
            v.builtin_modules.join(" ")
        )?;
        writeln!(
            out,
            "at run time the binary needs CPython {}'s stdlib with a lib-dynload providing: {}",
            v.version,
            v.imported.join(" ")
        )?;
    }
    if let Some(runtime) = &v.runtime {
        writeln!(
            out,
            "against {} (CPython {}, home {}):",
            runtime.python.display(),
            runtime.version,
            runtime.home
        )?;
        if let Some(error) = &runtime.error {
            writeln!(out, "  FAILED: {error}")?;
        }
        for failure in &runtime.failed {
            writeln!(out, "  FAILED import {}: {}", failure.module, failure.error)?;
        }
        if !runtime.builtin_there.is_empty() {
            writeln!(
                out,
                "  built into that interpreter, so missing from its lib-dynload: {}",
                runtime.builtin_there.join(" ")
            )?;
        }
    }
    writeln!(
        out,
        "{} in {:.2} s",
        if v.ok() { "ok" } else { "FAILED" },
        v.seconds
    )
}

fn run_verify(args: &Args) -> ExitCode {
    let options = VerifyOptions {
        python: args.options.python.clone(),
        interpreter: args.options.interpreter.clone(),
        no_pie: args.options.plan.no_pie,
        search: args.options.plan.search.clone(),
        runtime_python: args.runtime_python.clone(),
        ..VerifyOptions::default()
    };
    let verification = match patch_uwsgi::verify(&options) {
        Ok(v) => v,
        Err(err) => return print_error(Command::Verify, &err),
    };
    let mut out = std::io::stdout().lock();
    let printed = if args.json {
        let mut json = serde_json::to_value(&verification).expect("json");
        json["ok"] = verification.ok().into();
        serde_json::to_writer_pretty(&mut out, &json)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else if !args.quiet || !verification.ok() {
        print_verification(&mut out, &verification)
    } else {
        Ok(())
    };
    exit_code(printed, verification.ok())
}

/// Load `--probe FILE`: a saved probe, or `locate --json` output holding one under `probe`.
fn load_probe(path: &std::path::Path) -> patch_uwsgi::Result<patch_uwsgi::Interpreter> {
    let text = std::fs::read_to_string(path).map_err(|e| patch_uwsgi::Error::Io {
        action: "read the saved probe",
        path: path.to_path_buf(),
        source: e,
    })?;
    let inner = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("probe").map(|p| p.to_string()));
    let mut interp = patch_uwsgi::Interpreter::from_json(inner.as_deref().unwrap_or(&text), path)?;
    if interp.path.as_os_str().is_empty() {
        interp.path = PathBuf::from(&interp.executable);
    }
    Ok(interp)
}

fn main() -> ExitCode {
    let mut args = match parse() {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("patch_uwsgi {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("patch_uwsgi: {err}\n(run `patch_uwsgi --help` for usage)");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = &args.probe {
        match load_probe(path) {
            Ok(interp) => args.options.interpreter = Some(interp),
            Err(err) => return print_error(args.command, &err),
        }
    }
    match args.command {
        Command::Locate => return run_locate(&args),
        Command::Verify => return run_verify(&args),
        _ => {}
    }
    match run(&args) {
        Ok((report, diff)) => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let printed = if args.json {
                let json = JsonReport {
                    command: args.command.name(),
                    uwsgi_version: &report.uwsgi_version,
                    tree: &report.tree,
                    python: report.python.as_deref(),
                    mode: report.mode.map(|m| m.as_str()),
                    libpython: report.libpython.as_deref(),
                    plugin_variant: report.plugin_variant,
                    files: &report.files,
                    plan: report.plan.as_ref(),
                    diff: diff.as_deref(),
                };
                serde_json::to_writer_pretty(&mut out, &json)
                    .map_err(std::io::Error::from)
                    .and_then(|()| writeln!(out))
            } else if let Some(diff) = &diff {
                out.write_all(diff.as_bytes())
            } else if !args.quiet {
                print_human(&mut out, args.command, &report)
            } else {
                Ok(())
            };
            exit_code(
                printed,
                !(args.command == Command::Check && report.needs_work()),
            )
        }
        Err(err) => print_error(args.command, &err),
    }
}
