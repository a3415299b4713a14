//! `patch_uwsgi`: parse the command line, call the library, print, map to an exit code.

mod cli;
mod output;

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use cli::{Args, Command, Parsed};

/// What a command produced, ready to print.
enum Outcome {
    Tree(Box<patch_uwsgi::Report>, Option<String>),
    Location(Box<patch_uwsgi::Location>),
    Verification(Box<patch_uwsgi::Verification>),
    Wheel(Box<patch_uwsgi::WheelVerification>),
    Bundle(patch_uwsgi::BundleReport),
}

impl Outcome {
    /// Exit 1: `check` found work, or `verify` failed.
    fn success(&self, command: &Command) -> bool {
        match self {
            Outcome::Tree(report, _) => {
                !(matches!(command, Command::Check { .. }) && report.needs_work())
            }
            Outcome::Location(_) => true,
            Outcome::Verification(v) => v.ok,
            Outcome::Wheel(w) => w.ok,
            Outcome::Bundle(_) => true,
        }
    }
}

/// One line on stderr for a step that ended, where users wait (`bundle`, `verify --wheel`): a
/// slow step shows in a cibuildwheel log as it happens.
fn step_line(command: &'static str, quiet: bool) -> impl FnMut(&str, f64) {
    move |step, seconds| {
        if !quiet {
            eprintln!("patch_uwsgi {command}: {step} {seconds:.2} s");
        }
    }
}

fn run(command: &Command, quiet: bool) -> patch_uwsgi::Result<Outcome> {
    let tree = |report| Outcome::Tree(Box::new(report), None);
    Ok(match command {
        Command::Apply { dir, options } => tree(patch_uwsgi::apply(dir, options)?),
        Command::Check { dir, options } => tree(patch_uwsgi::check(dir, options)?),
        Command::Diff { dir, options } => {
            let (report, diff) = patch_uwsgi::diff(dir, options)?;
            Outcome::Tree(Box::new(report), Some(diff))
        }
        Command::Revert { dir } => tree(patch_uwsgi::revert(dir)?),
        Command::Locate { options } => Outcome::Location(Box::new(patch_uwsgi::locate(options)?)),
        Command::Bundle {
            wheels,
            out_dir,
            options,
        } => Outcome::Bundle(patch_uwsgi::bundle_with_progress(
            wheels,
            out_dir,
            options,
            &mut step_line("bundle", quiet),
        )?),
        Command::VerifyWheel { wheel, options } => {
            Outcome::Wheel(Box::new(patch_uwsgi::verify_wheel_with_progress(
                wheel,
                options,
                &mut step_line("verify --wheel", quiet),
            )?))
        }
        Command::Verify { options } => {
            Outcome::Verification(Box::new(patch_uwsgi::verify(options)?))
        }
    })
}

/// The JSON shape of every command: the library's report with the command's name first, and
/// for `diff` the diff text.
#[derive(Serialize)]
struct Json<'a, T: Serialize> {
    command: &'static str,
    #[serde(flatten)]
    report: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<&'a str>,
}

fn json<T: Serialize>(
    out: &mut impl Write,
    command: &Command,
    report: &T,
    diff: Option<&str>,
) -> std::io::Result<()> {
    let json = Json {
        command: command.name(),
        report,
        diff,
    };
    serde_json::to_writer_pretty(&mut *out, &json)?;
    writeln!(out)
}

fn print(out: &mut impl Write, args: &Args, outcome: &Outcome) -> std::io::Result<()> {
    let (command, quiet) = (&args.command, args.quiet);
    match outcome {
        Outcome::Tree(report, diff) if args.json => {
            json(out, command, report.as_ref(), diff.as_deref())
        }
        Outcome::Tree(_, Some(diff)) if !quiet => out.write_all(diff.as_bytes()),
        Outcome::Tree(report, None) if !quiet => output::print_human(out, command, report),
        Outcome::Location(found) if args.json => json(out, command, found.as_ref(), None),
        Outcome::Location(found) if !quiet => output::print_location(out, found),
        Outcome::Verification(v) if args.json => json(out, command, v.as_ref(), None),
        Outcome::Verification(v) if !quiet || !v.ok => output::print_verification(out, v),
        Outcome::Wheel(w) if args.json => json(out, command, w.as_ref(), None),
        Outcome::Wheel(w) if !quiet || !w.ok => output::print_wheel_verification(out, w),
        Outcome::Bundle(b) if args.json => json(out, command, b, None),
        Outcome::Bundle(b) if !quiet => output::print_bundle(out, b),
        _ => Ok(()),
    }
}

/// The error with its whole cause chain.
fn print_error(command: &str, err: &dyn std::error::Error) {
    let mut message = format!("patch_uwsgi {command}: error: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    eprintln!("{message}");
}

/// Write to stdout; a reader that went away (a closed pipe) is not an error.
fn write_stdout(write: impl FnOnce(&mut std::io::StdoutLock) -> std::io::Result<()>) -> bool {
    let mut out = std::io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("patch_uwsgi: cannot write the report: {err}");
            false
        }
        _ => true,
    }
}

/// The one place results become exit codes: 0 success, 1 "check found work" or "verify
/// failed", 2 an error (nothing was changed) or a report that could not be written.
fn main() -> ExitCode {
    let mut args = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            return exit(write_stdout(|o| o.write_all(cli::usage().as_bytes())), true)
        }
        Ok(Parsed::Version) => {
            let version = format!("patch_uwsgi {}\n", env!("CARGO_PKG_VERSION"));
            return exit(write_stdout(|o| o.write_all(version.as_bytes())), true);
        }
        Err(err) => {
            eprintln!("patch_uwsgi: {err}\n(run `patch_uwsgi --help` for usage)");
            return ExitCode::from(2);
        }
    };
    match args
        .load_probe()
        .and_then(|()| run(&args.command, args.quiet))
    {
        Ok(outcome) => exit(
            write_stdout(|out| print(out, &args, &outcome)),
            outcome.success(&args.command),
        ),
        Err(err) => {
            print_error(args.command.name(), &err);
            ExitCode::from(2)
        }
    }
}

fn exit(printed: bool, success: bool) -> ExitCode {
    match (printed, success) {
        (false, _) => ExitCode::from(2),
        (true, true) => ExitCode::SUCCESS,
        (true, false) => ExitCode::from(1),
    }
}
