//! The compile-thread guard, with a real fault in real builds: uWSGI sdists from PyPI built by
//! `python uwsgiconfig.py --build pyonly` (and once by `pip wheel`) with a venv of pyenv's
//! CPython 3.8 whose `site` loads a fault injector: when `PATCH_UWSGI_TEST_FAULT` names a
//! source file, `subprocess.call` (`os.system` before 2.0.21) raises `OSError` for the command
//! that compiles it, in the compile thread that runs it, as the sandbox's EFAULT glitch does.
//! A patched tree builds, then fails with the traceback on the faulted build, then builds
//! again; an unpatched tree builds with the same fault and exits 0, having linked the object
//! the previous build left.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::uwsgi::uwsgi_source;

/// The source file whose compile command the injector breaks (every release has it).
const FAULTED: &str = "core/strings.c";

/// Loaded by `site` from the venv's `.pth` file in every process of that venv, including the
/// isolated build processes pip starts (they run the venv's interpreter).
const INJECTOR: &str = r#"import os
import subprocess

_target = os.environ.get('PATCH_UWSGI_TEST_FAULT')


def _faulty(run):
    def run_unless_target(*args, **kwargs):
        command = args[0] if args else kwargs.get('args')
        if isinstance(command, str) and command.rstrip().endswith(' ' + _target):
            raise OSError(5, 'fault injected by patch-uwsgi tests into the compile of ' + _target)
        return run(*args, **kwargs)
    return run_unless_target


if _target:
    # 2.0.21 and later compile with subprocess.call, older releases with os.system.
    subprocess.call = _faulty(subprocess.call)
    os.system = _faulty(os.system)
"#;

/// A venv of pyenv's 3.8 with the injector (made once per test binary).
fn faulty_python() -> Option<PathBuf> {
    faulty_python_of("3.8")
}

/// A venv of pyenv's CPython `minor` with the injector (made once per test binary and minor).
fn faulty_python_of(minor: &str) -> Option<PathBuf> {
    type Venv = Option<(tempfile::TempDir, PathBuf)>;
    static VENVS: std::sync::Mutex<Vec<(String, &'static Venv)>> =
        std::sync::Mutex::new(Vec::new());
    let mut venvs = VENVS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, venv)) = venvs.iter().find(|(m, _)| m == minor) {
        return venv.as_ref().map(|(_, python)| python.clone());
    }
    let made: &'static Venv = Box::leak(Box::new(make_faulty_venv(minor)));
    venvs.push((minor.to_string(), made));
    made.as_ref().map(|(_, python)| python.clone())
}

fn make_faulty_venv(minor: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let (_, python) = support::require_python(minor)?;
    let dir = tempfile::tempdir().unwrap();
    support::remove_at_exit(dir.path());
    let venv = dir.path().join("venv");
    let made = Command::new(&python)
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap();
    assert!(made.status.success(), "{:?}", support::texts(&made));
    let site = venv.join(format!("lib/python{minor}/site-packages"));
    std::fs::write(site.join("patch_uwsgi_fault.py"), INJECTOR).unwrap();
    std::fs::write(
        site.join("patch_uwsgi_fault.pth"),
        "import patch_uwsgi_fault\n",
    )
    .unwrap();
    Some((dir, venv.join("bin/python")))
}

/// `python uwsgiconfig.py --build pyonly` in `tree` with `CPUCOUNT` compile threads, every
/// object recompiled, `fault` (a source file) injected when given: (exit status, output).
///
/// Run once more when the build failed before the fault could matter: a build without a fault
/// that failed, or a faulted one whose output lacks the injected error (it stopped before the
/// faulted compile). Under load this sandbox sometimes cannot start `/bin/sh` (EFAULT):
/// `subprocess.call` then raises (2.0.21 and later, a traceback) and `os.system` returns 127
/// (older releases, silently), and the build stops at an object of its own choosing.
fn build(python: &Path, tree: &Path, cpus: &str, fault: Option<&str>) -> (i32, String) {
    let once = || build_once(python, tree, cpus, fault);
    let (code, said) = once();
    let glitched = match fault {
        None => code != 0,
        Some(_) => !said.contains(INJECTED),
    };
    if glitched {
        eprintln!(
            "building again after a failure before the fault: {}",
            tree.display()
        );
        return once();
    }
    (code, said)
}

/// What the injector's error says, whatever the file.
const INJECTED: &str = "fault injected by patch-uwsgi tests into the compile of";

fn build_once(python: &Path, tree: &Path, cpus: &str, fault: Option<&str>) -> (i32, String) {
    let mut command = Command::new(python);
    command.env("UWSGI_FORCE_REBUILD", "1");
    build_with(command, tree, cpus, fault)
}

/// `python uwsgiconfig.py --build pyonly` in `tree` as `command` (the interpreter, with any
/// variables set) runs it, the injector given `fault`: (exit status, output).
fn build_with(mut command: Command, tree: &Path, cpus: &str, fault: Option<&str>) -> (i32, String) {
    command
        .current_dir(tree)
        .args(["uwsgiconfig.py", "--build", "pyonly"])
        .env("CPUCOUNT", cpus)
        .env_remove("PATCH_UWSGI_TEST_FAULT");
    if let Some(source) = fault {
        command.env("PATCH_UWSGI_TEST_FAULT", source);
    }
    let out = support::tools::with_compiler_cache(&mut command)
        .output()
        .unwrap();
    let (stdout, stderr) = support::texts(&out);
    (out.status.code().unwrap_or(-1), stdout + &stderr)
}

/// What the faulted build must say: the injected error's traceback and the guard's words.
fn assert_stopped_by_the_guard(code: i32, said: &str, what: &str) {
    let tail = support::roots::tail(said, 4000);
    assert_ne!(code, 0, "{what}: the faulted build succeeded: {tail}");
    assert!(
        said.contains("Traceback (most recent call last)"),
        "{what}: {tail}"
    );
    assert!(
        said.contains("fault injected by patch-uwsgi tests into the compile of core/strings.c"),
        "{what}: {tail}"
    );
    assert!(
        said.contains("patch_uwsgi: a compile thread of uwsgiconfig.py died"),
        "{what}: {tail}"
    );
}

/// The tree's `uwsgi --version` says `version`.
fn assert_answers_version(tree: &Path, version: &str) {
    let answered = Command::new(tree.join("uwsgi"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&answered.stdout).trim(),
        version,
        "{version}"
    );
}

/// The two files patch-uwsgi rewrites, as bytes.
fn build_files(tree: &Path) -> Vec<Vec<u8>> {
    ["uwsgiconfig.py", "plugins/python/uwsgiplugin.py"]
        .iter()
        .map(|f| std::fs::read(tree.join(f)).unwrap())
        .collect()
}

/// A fresh tree of uWSGI `version` from PyPI and the venv to build it with: (python, the
/// folder holding the tree, the tree). `None` (a failure under `CI=true`) when either is missing.
fn source_tree(version: &str) -> Option<(PathBuf, tempfile::TempDir, PathBuf)> {
    let python = faulty_python()?;
    let dir = tempfile::tempdir().unwrap();
    let tree = uwsgi_source(version, dir.path())?;
    Some((python, dir, tree))
}

/// [`source_tree`], patched by `patch_uwsgi apply` for the venv's Python.
fn patched_tree(version: &str) -> Option<(PathBuf, tempfile::TempDir, PathBuf)> {
    let (python, dir, tree) = source_tree(version)?;
    let applied = support::apply_command(&tree, &python).output().unwrap();
    assert!(
        applied.status.success(),
        "{version}: {:?}",
        support::texts(&applied)
    );
    Some((python, dir, tree))
}

/// Patched: builds, stops on the fault (traceback, status 1), builds again without it; then
/// `revert` gives back the upstream files byte for byte.
fn patched_tree_stops_on_a_dead_compile_thread(version: &str) {
    let Some((python, _dir, tree)) = source_tree(version) else {
        return;
    };
    let upstream = build_files(&tree);
    let applied = support::apply_command(&tree, &python).output().unwrap();
    assert!(
        applied.status.success(),
        "{version}: {:?}",
        support::texts(&applied)
    );

    let (code, said) = build(&python, &tree, "2", None);
    assert_eq!(code, 0, "{version}: {}", support::roots::tail(&said, 4000));
    let (code, said) = build(&python, &tree, "2", Some(FAULTED));
    assert_stopped_by_the_guard(code, &said, version);
    assert!(
        !said.contains("*** uWSGI is ready"),
        "{version}: linked anyway: {}",
        support::roots::tail(&said, 4000)
    );
    let (code, said) = build(&python, &tree, "2", None);
    assert_eq!(code, 0, "{version}: {}", support::roots::tail(&said, 4000));
    assert_answers_version(&tree, version);

    let reverted = support::bin().arg("revert").arg(&tree).output().unwrap();
    assert!(
        reverted.status.success(),
        "{version}: {:?}",
        support::texts(&reverted)
    );
    assert!(
        build_files(&tree) == upstream,
        "{version}: revert is not byte-exact"
    );
}

/// Unpatched, the same faulted build exits 0: the dead thread's object is the previous build's.
fn unpatched_tree_links_a_stale_object(version: &str) {
    let Some((python, _dir, tree)) = source_tree(version) else {
        return;
    };
    let (code, said) = build(&python, &tree, "2", None);
    assert_eq!(code, 0, "{version}: {}", support::roots::tail(&said, 4000));
    let (code, said) = build(&python, &tree, "2", Some(FAULTED));
    let tail = support::roots::tail(&said, 4000);
    assert!(
        said.contains("Exception in thread"),
        "{version}: no dead thread: {tail}"
    );
    assert_eq!(
        code, 0,
        "{version}: the stock build did not ignore its dead thread: {tail}"
    );
}

#[test]
fn patched_2_0_31_stops_on_a_dead_compile_thread() {
    patched_tree_stops_on_a_dead_compile_thread("2.0.31");
}

#[test]
fn patched_2_0_27_stops_on_a_dead_compile_thread() {
    patched_tree_stops_on_a_dead_compile_thread("2.0.27");
}

#[test]
fn patched_2_0_21_stops_on_a_dead_compile_thread() {
    patched_tree_stops_on_a_dead_compile_thread("2.0.21");
}

#[test]
fn patched_2_0_19_1_stops_on_a_dead_compile_thread() {
    patched_tree_stops_on_a_dead_compile_thread("2.0.19.1");
}

#[test]
fn unpatched_2_0_31_links_a_stale_object_and_exits_0() {
    unpatched_tree_links_a_stale_object("2.0.31");
}

#[test]
fn unpatched_2_0_19_1_links_a_stale_object_and_exits_0() {
    unpatched_tree_links_a_stale_object("2.0.19.1");
}

/// CPUCOUNT=1 compiles in the main thread: the same fault ends a patched build there too.
#[test]
fn patched_single_threaded_build_stops_on_the_fault() {
    let Some((python, _dir, tree)) = patched_tree("2.0.31") else {
        return;
    };
    let (code, said) = build(&python, &tree, "1", Some(FAULTED));
    let tail = support::roots::tail(&said, 4000);
    assert_ne!(
        code, 0,
        "the single-threaded faulted build succeeded: {tail}"
    );
    assert!(said.contains("Traceback (most recent call last)"), "{tail}");
    assert!(
        said.contains("fault injected by patch-uwsgi tests into the compile of core/strings.c"),
        "{tail}"
    );
}

/// `pip wheel` of a patched sdist tree: pip reports the failed build, with the guard's words
/// in the build's output (pip's isolated build runs the venv's interpreter, so the injector
/// is loaded there too).
#[test]
fn pip_wheel_reports_a_dead_compile_thread() {
    let Some(wheels) = support::tools::tool_wheels() else {
        return;
    };
    let Some((python, dir, tree)) = patched_tree("2.0.31") else {
        return;
    };
    let out = dir.path().join("wheels");
    let mut pip = support::tools::pip_wheel(&python, &wheels, &tree, &out);
    pip.env("PATCH_UWSGI_TEST_FAULT", FAULTED);
    let run = |pip: &mut Command| {
        let done = pip.output().unwrap();
        let (stdout, stderr) = support::texts(&done);
        (done.status.code().unwrap_or(-1), stdout + &stderr)
    };
    let (mut code, mut said) = run(&mut pip);
    if !said.contains(INJECTED) {
        // Stopped before the faulted compile (see `build`): once more.
        (code, said) = run(&mut pip);
    }
    assert_stopped_by_the_guard(code, &said, "pip wheel");
    let built = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
    assert_eq!(built, 0, "pip wheel left a wheel behind");
}

/// An unfinished build after a switch of Python leaves uWSGI's record of the new CFLAGS beside
/// objects of the old Python; uWSGI alone would take those objects as up to date on the next
/// build (3.8's `profiler.o` defines `PyFrame_GetCode`, which 3.12's libpython has too: the
/// link fails; other stale objects link and crash). A patched tree's next build compiles every
/// object again. Objects are reused as uWSGI reuses them (no UWSGI_FORCE_REBUILD here).
#[test]
fn a_build_after_an_unfinished_one_for_another_python_recompiles_everything() {
    let (Some(py38), Some(py312)) = (faulty_python_of("3.8"), faulty_python_of("3.12")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(tree) = uwsgi_source("2.0.31", dir.path()) else {
        return;
    };
    for python in [&py38, &py312] {
        let applied = support::apply_command(&tree, python).output().unwrap();
        assert!(applied.status.success(), "{:?}", support::texts(&applied));
    }
    let reusing = |python: &Path, fault: Option<&str>| {
        let mut command = Command::new(python);
        command.env_remove("UWSGI_FORCE_REBUILD");
        build_with(command, &tree, "2", fault)
    };
    let (code, said) = reusing(&py38, None);
    assert_eq!(code, 0, "3.8: {}", support::roots::tail(&said, 4000));
    let mark = tree.join("uwsgibuild.patch_uwsgi_unfinished");
    assert!(!mark.exists(), "a finished build left its mark");
    let (code, said) = reusing(&py312, Some(FAULTED));
    if said.contains(INJECTED) {
        assert_stopped_by_the_guard(code, &said, "3.12, faulted");
        assert!(mark.exists(), "the unfinished build left no mark");
    } else {
        // The sandbox's spawn glitch stopped it before the fault: unfinished all the same.
        assert_ne!(code, 0, "{}", support::roots::tail(&said, 4000));
    }
    let (code, said) = reusing(&py312, None);
    let tail = support::roots::tail(&said, 4000);
    assert_eq!(code, 0, "3.12 after the unfinished build: {tail}");
    assert!(
        !said.contains("plugins/python/profiler.o is up to date"),
        "a 3.8 object was reused: {tail}"
    );
    assert!(!mark.exists(), "the finished build kept the mark");
    let needed = support::readelf("-d", &tree.join("uwsgi"));
    assert!(
        needed.contains("libpython3.12"),
        "not a 3.12 build: {needed}"
    );
    assert_answers_version(&tree, "2.0.31");

    // A build that finds no mark reuses objects as uWSGI does.
    let (code, said) = reusing(&py312, None);
    assert_eq!(code, 0, "{}", support::roots::tail(&said, 4000));
    assert!(
        said.contains("plugins/python/profiler.o is up to date"),
        "nothing reused: {}",
        support::roots::tail(&said, 4000)
    );
}
