//! `patch_uwsgi`: parse the command line, call the library, print, map to an exit code.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use patch_uwsgi::{LinkPlan, ModeChoice, Options, Report, LIBPYTHON_ENV};

const USAGE: &str = "\
patch_uwsgi: make uWSGI's python plugin link a static libpython (manylinux, cibuildwheel)

usage:
  patch_uwsgi apply  [DIR]   rewrite the tree for the target Python (DIR defaults to .)
  patch_uwsgi check  [DIR]   change nothing; exit 0 if patched and the plan fits this Python, 1 if not
  patch_uwsgi diff   [DIR]   change nothing; print the unified diff apply would make
  patch_uwsgi revert [DIR]   restore upstream bytes and remove the plan (needs no interpreter)
  patch_uwsgi locate         find the static libpython of the target Python and print the plan

options:
  --python PATH       target interpreter (default: `python` on PATH, then `python3`)
  --libpython PATH    use this static archive (also: PATCH_UWSGI_LIBPYTHON)
  --mode MODE         auto|static|nolib (default auto: shared if the Python has a libpython.so;
                      locate defaults to static)
  --manylinux-root DIR  folder with static-libs-for-embedding-only.tar.xz (default /opt/_internal)
  --json              report as JSON on stdout
  --quiet             print nothing but errors
  --help, --version

exit: 0 done or nothing to do; 1 check found work; 2 error, and then nothing was changed
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Apply,
    Check,
    Diff,
    Revert,
    Locate,
}

impl Command {
    fn name(self) -> &'static str {
        match self {
            Command::Apply => "apply",
            Command::Check => "check",
            Command::Diff => "diff",
            Command::Revert => "revert",
            Command::Locate => "locate",
        }
    }
}

struct Args {
    command: Command,
    dir: PathBuf,
    options: Options,
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
            Long("json") => json = true,
            Long("quiet") | Short('q') => quiet = true,
            Value(value) if command.is_none() => {
                command = Some(match value.string()?.as_str() {
                    "apply" => Command::Apply,
                    "check" => Command::Check,
                    "diff" => Command::Diff,
                    "revert" => Command::Revert,
                    "locate" => Command::Locate,
                    other => {
                        return Err(format!(
                        "unknown command {other:?}: use apply, check, diff, revert or locate (see --help)"
                    )
                        .into())
                    }
                })
            }
            Value(value) if dir.is_none() && command != Some(Command::Locate) => dir = Some(PathBuf::from(value)),
            _ => return Err(arg.unexpected()),
        }
    }
    let command =
        command.ok_or("no command given: use apply, check, diff, revert or locate (see --help)")?;
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
        Command::Locate => unreachable!("locate is handled by run_locate"),
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
    match printed {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("patch_uwsgi: cannot write the report: {err}");
            ExitCode::from(2)
        }
        _ => ExitCode::SUCCESS,
    }
}

fn main() -> ExitCode {
    let args = match parse() {
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
    if args.command == Command::Locate {
        return run_locate(&args);
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
            if let Err(err) = printed {
                if err.kind() != std::io::ErrorKind::BrokenPipe {
                    eprintln!("patch_uwsgi: cannot write the report: {err}");
                    return ExitCode::from(2);
                }
            }
            if args.command == Command::Check && report.needs_work() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => print_error(args.command, &err),
    }
}
