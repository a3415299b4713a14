//! The C compiler, and the probe link: can the static archive go into a position-independent
//! executable? manylinux's archives are compiled without -fPIC; on a toolchain that makes PIE
//! executables by default the link then fails with a relocation error unless `-no-pie` is
//! given. The only reliable test is to try.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::process::{run_tool, Streams, ToolFailure};

/// How the `-no-pie` question was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PieDecision {
    /// A probe link just now.
    ProbeLink,
    /// The answer of an earlier probe link for the same archive, compiler and libraries.
    Cached,
    /// Given by the caller (`--no-pie yes|no`).
    Given,
}

impl PieDecision {
    /// How it was decided, in words.
    pub fn describe(self) -> &'static str {
        match self {
            PieDecision::ProbeLink => "probe link",
            PieDecision::Cached => "earlier probe link, cached",
            PieDecision::Given => "given",
        }
    }
}

const MAIN: &str = "int main(void) { return 0; }\n";

/// The C compiler `verify` and the `-no-pie` probe link run, with the arguments that go
/// before everything else. The library reads no environment: the `patch_uwsgi` binary builds
/// it from `CC` and `CFLAGS` with [`Compiler::from_cc_cflags`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Compiler {
    /// The program (`cc`, `gcc`, or a wrapper such as `ccache`), found on `PATH` if not a path.
    pub program: PathBuf,
    /// Arguments given before any other (the rest of `CC`, then `CFLAGS`).
    pub args: Vec<String>,
}

impl Default for Compiler {
    /// `cc` with no arguments.
    fn default() -> Compiler {
        Compiler {
            program: PathBuf::from("cc"),
            args: Vec::new(),
        }
    }
}

impl Compiler {
    /// The compiler described by the values of `CC` (a program, possibly with arguments, such
    /// as `ccache gcc`) and `CFLAGS`, as build tools read them; `cc` when `CC` is unset or
    /// blank.
    ///
    /// ```
    /// use patch_uwsgi::Compiler;
    /// let c = Compiler::from_cc_cflags(Some("ccache gcc -m64"), Some(" -O1  -g"));
    /// assert_eq!(c.program, std::path::Path::new("ccache"));
    /// assert_eq!(c.args, ["gcc", "-m64", "-O1", "-g"]);
    /// assert_eq!(Compiler::from_cc_cflags(Some(" "), None), Compiler::default());
    /// ```
    pub fn from_cc_cflags(cc: Option<&str>, cflags: Option<&str>) -> Compiler {
        let mut words = cc.unwrap_or("").split_whitespace().map(str::to_string);
        let mut compiler = match words.next() {
            Some(program) => Compiler {
                program: PathBuf::from(program),
                args: words.collect(),
            },
            None => Compiler::default(),
        };
        compiler
            .args
            .extend(cflags.unwrap_or("").split_whitespace().map(str::to_string));
        compiler
    }

    /// A command running the compiler with its arguments.
    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        command
    }
}

/// The compiler's command line, for reports.
pub(crate) fn describe(command: &Command) -> Vec<String> {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// Whether a failed link's message is the "archive is not position-independent" error.
pub(crate) fn is_pie_relocation_error(message: &str) -> bool {
    message.contains("recompile with -fPIE")
        || message.contains("recompile with -fPIC")
        || message.contains("can not be used when making a PIE object")
}

/// The message of a link that failed both without `-no-pie` (`first`) and with it (`second`):
/// both linkers' own words, the first one first.
pub(crate) fn failed_with_and_without_no_pie(first: &str, second: &str) -> String {
    format!("{}\nwith -no-pie:\n{}", first.trim(), second.trim())
}

/// Limit for one compiler run: a whole-archive link of a large libpython takes about a second.
const COMPILER_TIMEOUT: Duration = Duration::from_secs(120);

/// Run a compiler command to the end (bounded by [`COMPILER_TIMEOUT`]); `Err(message)` holds
/// the compiler's own message when it failed.
pub(crate) fn run_compiler(command: &mut Command) -> Result<std::result::Result<(), ToolFailure>> {
    run_tool(command, COMPILER_TIMEOUT, Streams::Stderr, None)
}

/// A compiler's failure as its message: what it said, or that it was stopped.
pub(crate) fn compiler_said(failure: &ToolFailure) -> String {
    match failure {
        ToolFailure::Stopped { .. } => format!("the compiler {}", failure.said()),
        ToolFailure::Ended { .. } => failure.said(),
    }
}

fn link(
    tool: &Compiler,
    dir: &Path,
    extra: &[&str],
    libs: &[String],
) -> Result<std::result::Result<(), ToolFailure>> {
    let mut command = tool.command();
    command
        .args(extra)
        .arg("-o")
        .arg(dir.join("probe"))
        .arg(dir.join("main.c"))
        .args(libs);
    run_compiler(&mut command)
}

fn probe_link(tool: &Compiler, libs: &[String]) -> Result<bool> {
    let dir = tempfile::tempdir()
        .map_err(|e| Error::io("create a temporary folder in", &std::env::temp_dir(), e))?;
    let dir = dir.path();
    std::fs::write(dir.join("main.c"), MAIN)
        .map_err(|e| Error::io("write", &dir.join("main.c"), e))?;
    let first = match link(tool, dir, &[], libs)? {
        Ok(()) => return Ok(false),
        Err(failure) => compiler_said(&failure),
    };
    match link(tool, dir, &["-no-pie"], libs)? {
        Ok(()) => Ok(true),
        Err(second) => Err(Error::LinkProbe {
            compiler: tool.program.display().to_string(),
            message: failed_with_and_without_no_pie(&first, &compiler_said(&second)),
        }),
    }
}

fn modified_nanos(path: &Path) -> Option<u128> {
    let meta = std::fs::metadata(path).ok()?;
    let time = meta.modified().ok()?;
    Some(time.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos())
}

/// What the probe link's answer depends on: this tool's version, the archive (real path, size,
/// modification time), the compiler (resolved path, modification time, arguments) and the
/// libraries. `None` when any of it cannot be read (then nothing is cached).
fn probe_key(tool: &Compiler, libs: &[String], archive: &Path) -> Option<u64> {
    let archive_path = std::fs::canonicalize(archive).ok()?;
    let compiler = which::which(&tool.program).ok()?;
    let mut key = format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n",
        env!("CARGO_PKG_VERSION"),
        archive_path.display(),
        std::fs::metadata(&archive_path).ok()?.len(),
        modified_nanos(&archive_path)?,
        compiler.display(),
        modified_nanos(&compiler)?,
    );
    for part in tool.args.iter().chain(libs) {
        key.push_str(part);
        key.push('\n');
    }
    Some(crate::cache::fnv1a(key.as_bytes()))
}

/// [`needs_no_pie`], remembered in `cache_dir/pie-probe/` so that a second run with the same
/// archive, compiler and libraries answers without linking (the link takes most of a
/// `locate` once the archive is extracted).
pub(crate) fn needs_no_pie_cached(
    tool: &Compiler,
    libs: &[String],
    archive: &Path,
    cache_dir: Option<&Path>,
) -> Result<(bool, PieDecision)> {
    let file = cache_dir.and_then(|dir| answer_file(tool, libs, archive, dir));
    if let Some(file) = &file {
        match std::fs::read_to_string(file).as_deref().map(str::trim) {
            Ok("no-pie") => return Ok((true, PieDecision::Cached)),
            Ok("pie") => return Ok((false, PieDecision::Cached)),
            _ => {}
        }
    }
    let no_pie = probe_link(tool, libs)?;
    if let Some(file) = file {
        store_answer(&file, no_pie);
    }
    Ok((no_pie, PieDecision::ProbeLink))
}

fn answer_file(
    tool: &Compiler,
    libs: &[String],
    archive: &Path,
    cache_dir: &Path,
) -> Option<PathBuf> {
    probe_key(tool, libs, archive)
        .map(|key| cache_dir.join("pie-probe").join(format!("{key:016x}")))
}

fn store_answer(file: &Path, no_pie: bool) {
    let answer: &[u8] = if no_pie { b"no-pie\n" } else { b"pie\n" };
    crate::cache::remember(file, answer);
}

/// Record an answer found by another link with the same archive, compiler and libraries
/// (`verify`'s), so the next plan needs no probe link.
pub(crate) fn remember_no_pie(
    tool: &Compiler,
    libs: &[String],
    archive: &Path,
    cache_dir: Option<&Path>,
    no_pie: bool,
) {
    if let Some(file) = cache_dir.and_then(|dir| answer_file(tool, libs, archive, dir)) {
        store_answer(&file, no_pie);
    }
}
