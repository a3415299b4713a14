//! The real build frontends on one uWSGI sdist tree, switching between static-only Pythons the
//! way cibuildwheel does (one folder, one Python after the other). PEP 517 frontends run the
//! backend's hooks in separate processes, each importing `uwsgiconfig`; the rebuild guard must
//! make the process that builds recompile every object when the Python changed, and reuse them
//! when it did not. Every wheel's `uwsgi` must then serve its own Python's version.
//!
//! Frontends: `pip wheel`, `python -m build --wheel` (pypa/build, cibuildwheel's default, from
//! a venv: `sys.prefix` differs from `base_prefix`), `pip install --target`, `setup.py
//! bdist_wheel`, `uwsgiconfig.py --build`, and a hook caller (pyproject_hooks) that calls
//! `get_requires_for_build_wheel` three times before `build_wheel`, or only `build_wheel`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use support::uwsgi::{app, apply_from_tarball, serve_once, uwsgi_source};
use support::{static_python, StaticPython};

use support::tools::{frontend_command, run_ok, tool_wheels, MINORS, TOOLS};

/// A venv of `py` holding setuptools, wheel and build (a build interpreter whose `sys.prefix`
/// is not its `base_prefix`).
fn tools_venv(py: &StaticPython, wheels: &Path, into: &Path) -> PathBuf {
    let venv = into.join(format!("venv-{}", py.version));
    let mut make = Command::new(&py.python);
    make.args(["-m", "venv"]).arg(&venv);
    run_ok(make, "python -m venv");
    let python = venv.join("bin/python");
    let mut install = frontend_command(&python, wheels);
    install.args(["-m", "pip", "install", "-q"]).args(TOOLS);
    run_ok(install, "pip install of the tools");
    python
}

/// How a tree gets built.
#[derive(Debug, Clone, Copy)]
enum Frontend {
    /// `python -m pip wheel --use-pep517 --no-deps -w OUT .` (build isolation by pip).
    PipWheel,
    /// `venv/bin/python -m build --wheel -o OUT .` (isolation in a fresh venv by pypa/build).
    Build,
    /// `python -m pip install --use-pep517 --no-deps --target OUT .`
    PipInstallTarget,
    /// `venv/bin/python setup.py bdist_wheel -d OUT`
    SetupPyBdistWheel,
    /// `python uwsgiconfig.py --build pyonly`: the binary is `./uwsgi`.
    UwsgiConfig,
    /// pyproject_hooks from the venv: `get_requires_for_build_wheel` this many times (each in
    /// its own process), then `build_wheel`.
    Hooks(usize),
}

/// The hook-calling frontend: the backend is setuptools' legacy one, as pip and build use for
/// a tree without pyproject.toml.
const HOOK_CALLER: &str = "import sys\n\
from pyproject_hooks import BuildBackendHookCaller\n\
tree, out, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])\n\
hooks = BuildBackendHookCaller(tree, 'setuptools.build_meta:__legacy__')\n\
for _ in range(calls):\n\
\x20   hooks.get_requires_for_build_wheel({})\n\
print(hooks.build_wheel(out, {}))\n";

struct Pythons {
    /// The static-only interpreter (pip frontends, uwsgiconfig.py).
    bare: StaticPython,
    /// A venv of it with setuptools, wheel and build.
    venv: PathBuf,
    /// Its manylinux-like root (archive only in the tarball).
    root: tempfile::TempDir,
}

fn pythons(wheels: &Path, work: &Path) -> Option<Vec<Pythons>> {
    let mut found = Vec::new();
    for minor in MINORS {
        let bare = static_python(minor)?;
        let venv = tools_venv(&bare, wheels, work);
        let root = support::uwsgi::manylinux_root(&bare);
        found.push(Pythons { bare, venv, root });
    }
    Some(found)
}

/// Build `tree` with `frontend` under `py`; returns the `uwsgi` executable it produced (taken
/// out of the wheel where there is one) and the wheel's file name.
fn build_with(
    frontend: Frontend,
    py: &Pythons,
    wheels: &Path,
    tree: &Path,
    out: &Path,
) -> (PathBuf, Option<String>) {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).unwrap();
    let (program, args): (&Path, Vec<String>) = match frontend {
        Frontend::PipWheel => (
            &py.bare.python,
            vec![
                "-m",
                "pip",
                "wheel",
                "-v",
                "--use-pep517",
                "--no-deps",
                "-w",
            ]
            .into_iter()
            .map(String::from)
            .chain([out.display().to_string(), ".".into()])
            .collect(),
        ),
        Frontend::Build => (
            &py.venv,
            vec!["-m", "build", "--wheel", "-o"]
                .into_iter()
                .map(String::from)
                .chain([out.display().to_string(), ".".into()])
                .collect(),
        ),
        Frontend::PipInstallTarget => (
            &py.bare.python,
            vec!["-m", "pip", "install", "-v", "--use-pep517", "--no-deps"]
                .into_iter()
                .map(String::from)
                .chain(["--target".into(), out.display().to_string(), ".".into()])
                .collect(),
        ),
        Frontend::SetupPyBdistWheel => (
            &py.venv,
            vec![
                "setup.py".to_string(),
                "bdist_wheel".into(),
                "-d".into(),
                out.display().to_string(),
            ],
        ),
        Frontend::UwsgiConfig => (
            &py.bare.python,
            vec!["uwsgiconfig.py".into(), "--build".into(), "pyonly".into()],
        ),
        Frontend::Hooks(calls) => (
            &py.venv,
            vec![
                "-c".to_string(),
                HOOK_CALLER.into(),
                tree.display().to_string(),
                out.display().to_string(),
                calls.to_string(),
            ],
        ),
    };
    let mut command = frontend_command(program, wheels);
    command.current_dir(tree).args(&args);
    run_ok(command, &format!("{frontend:?} with {}", py.bare.version));

    if let Frontend::UwsgiConfig = frontend {
        return (tree.join("uwsgi"), None);
    }
    if let Frontend::PipInstallTarget = frontend {
        return (find_file(out, "uwsgi").expect("uwsgi under --target"), None);
    }
    let wheel = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .unwrap_or_else(|| panic!("{frontend:?} left no wheel in {}", out.display()));
    let unpacked = out.join("unpacked");
    let status = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(status.success());
    let binary = find_file(&unpacked, "uwsgi").expect("uwsgi in the wheel");
    // zipfile -e drops the executable bit.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    (binary, Some(name))
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if entry.file_name() == name {
            return Some(path);
        }
    }
    None
}

/// Every object file uWSGI compiles into the tree (not setuptools' `build/`), with its mtime.
fn objects(tree: &Path) -> Vec<(PathBuf, SystemTime)> {
    let mut found = Vec::new();
    for folder in ["core", "proto", "lib", "plugins"] {
        collect_objects(&tree.join(folder), &mut found);
    }
    for entry in std::fs::read_dir(tree).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "o") {
            found.push((path, entry.metadata().unwrap().modified().unwrap()));
        }
    }
    found.sort();
    found
}

fn collect_objects(dir: &Path, found: &mut Vec<(PathBuf, SystemTime)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            collect_objects(&path, found);
        } else if path.extension().is_some_and(|x| x == "o") {
            found.push((path, entry.metadata().unwrap().modified().unwrap()));
        }
    }
}

/// What one build did to the objects: which were compiled during it.
struct Rebuilt {
    total: usize,
    all: Vec<PathBuf>,
    compiled: Vec<PathBuf>,
}

impl Rebuilt {
    fn python_plugin(&self) -> usize {
        self.compiled
            .iter()
            .filter(|p| p.to_string_lossy().contains("/plugins/python/"))
            .count()
    }
}

/// Apply for `py`, build with `frontend`, check the wheel tag and serve; returns what was
/// compiled.
fn apply_build_serve(
    frontend: Frontend,
    py: &Pythons,
    wheels: &Path,
    tree: &Path,
    work: &Path,
) -> Rebuilt {
    apply_from_tarball(&py.bare, tree, py.root.path());
    let before = objects(tree);
    // Whole-second mtimes on some file systems: a recompiled object must get a new one.
    std::thread::sleep(Duration::from_millis(1100));
    let started = Instant::now();
    let (binary, wheel) = build_with(frontend, py, wheels, tree, &work.join("out"));
    let seconds = started.elapsed().as_secs_f64();
    let all = objects(tree);
    // Compared with the object's own earlier mtime, not with the clock: file times come from
    // a coarser clock than SystemTime::now().
    let compiled: Vec<PathBuf> = all
        .iter()
        .filter(|(path, mtime)| !before.iter().any(|(p, m)| p == path && m == mtime))
        .map(|(p, _)| p.clone())
        .collect();
    if let Some(wheel) = wheel {
        let (major, minor) = py.bare.version.split_once('.').unwrap();
        let minor = minor.split('.').next().unwrap();
        let tag = format!("-cp{major}{minor}-cp{major}{minor}");
        assert!(wheel.contains(&tag), "{frontend:?}: {wheel} lacks {tag}");
    }
    let body = serve_once(&binary, &app(work));
    assert_eq!(
        body, py.bare.version,
        "{frontend:?}: the built uwsgi runs another Python"
    );
    eprintln!(
        "{frontend:?} for {}: {:.1} s, {} of {} objects compiled",
        py.bare.version,
        seconds,
        compiled.len(),
        all.len()
    );
    Rebuilt {
        total: all.len(),
        all: all.into_iter().map(|(p, _)| p).collect(),
        compiled,
    }
}

fn assert_all_compiled(rebuilt: &Rebuilt, what: &str) {
    assert!(
        rebuilt.total >= 80,
        "{what}: only {} objects",
        rebuilt.total
    );
    let reused: Vec<&PathBuf> = rebuilt
        .all
        .iter()
        .filter(|p| !rebuilt.compiled.contains(p))
        .collect();
    assert!(
        reused.is_empty(),
        "{what}: objects compiled for the previous Python were reused: {reused:?}"
    );
}

/// Both static-only Pythons with their venvs and tarballs, made once for the whole binary: the
/// builds only read them. Their folders are removed when the process exits.
fn shared_pythons(wheels: &Path) -> Option<&'static [Pythons]> {
    static SHARED: std::sync::OnceLock<Option<Vec<Pythons>>> = std::sync::OnceLock::new();
    SHARED
        .get_or_init(|| {
            let work = tempfile::tempdir().unwrap().keep();
            support::remove_at_exit(&work);
            let pythons = pythons(wheels, &work)?;
            for py in &pythons {
                support::remove_at_exit(py.bare.root.path());
                support::remove_at_exit(py.root.path());
            }
            Some(pythons)
        })
        .as_deref()
}

/// What the switching tests share: the tool wheels, a work folder, both static-only Pythons
/// with their venvs and tarballs, and an unpacked 2.0.31 sdist tree of the test's own.
fn switching_setup() -> Option<(PathBuf, tempfile::TempDir, &'static [Pythons], PathBuf)> {
    let wheels = tool_wheels()?;
    let work = tempfile::tempdir().unwrap();
    let pythons = shared_pythons(&wheels)?;
    let tree = uwsgi_source("2.0.31", work.path())?;
    Some((wheels, work, pythons, tree))
}

/// 3.12, then 3.8, then 3.12 again: each switch recompiles every object; a fourth build for
/// the same 3.12 reuses the python plugin's objects.
fn switch_pythons(frontend: Frontend) {
    let Some((wheels, work, pythons, tree)) = switching_setup() else {
        return;
    };
    let [py312, py38] = [&pythons[0], &pythons[1]];
    for (step, py) in [py312, py38, py312].into_iter().enumerate() {
        let rebuilt = apply_build_serve(frontend, py, &wheels, &tree, work.path());
        assert_all_compiled(
            &rebuilt,
            &format!("{frontend:?} step {} ({})", step + 1, py.bare.version),
        );
    }
    let again = apply_build_serve(frontend, py312, &wheels, &tree, work.path());
    assert_eq!(
        again.python_plugin(),
        0,
        "{frontend:?}: the same Python rebuilt the python plugin: {:?}",
        again.compiled
    );
    assert!(
        again.compiled.len() <= 4,
        "{frontend:?}: the same Python rebuilt {:?}",
        again.compiled
    );
}

#[test]
fn pip_wheel_recompiles_on_every_python_switch() {
    switch_pythons(Frontend::PipWheel);
}

#[test]
fn pypa_build_recompiles_on_every_python_switch() {
    switch_pythons(Frontend::Build);
}

#[test]
fn other_frontends_and_hook_counts_recompile_on_every_switch() {
    let Some((wheels, work, pythons, tree)) = switching_setup() else {
        return;
    };
    let [py312, py38] = [&pythons[0], &pythons[1]];
    for (frontend, py) in [
        (Frontend::UwsgiConfig, py312),
        (Frontend::SetupPyBdistWheel, py38),
        (Frontend::PipInstallTarget, py312),
        (Frontend::Hooks(3), py38),
    ] {
        let rebuilt = apply_build_serve(frontend, py, &wheels, &tree, work.path());
        assert_all_compiled(&rebuilt, &format!("{frontend:?} ({})", py.bare.version));
    }
    // Fewer hook calls than pip makes, same Python: nothing of the plugin is recompiled.
    let again = apply_build_serve(Frontend::Hooks(0), py38, &wheels, &tree, work.path());
    assert_eq!(again.python_plugin(), 0, "{:?}", again.compiled);
}

/// Without patch-uwsgi, uWSGI itself reuses objects across Pythons under a PEP 517 frontend:
/// the stock tree, real (shared-libpython) pyenv CPythons 3.12 then 3.8, `pip wheel`. The
/// second build compiles none of the python plugin's objects, which were made against 3.12's
/// headers. This is what the rebuild guard exists for.
#[test]
fn stock_tree_reuses_objects_compiled_for_another_python() {
    let Some(wheels) = tool_wheels() else {
        return;
    };
    let Some((_, py312)) = support::require_python("3.12") else {
        return;
    };
    let Some((_, py38)) = support::require_python("3.8") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let Some(tree) = uwsgi_source("2.0.31", work.path()) else {
        return;
    };
    let out = work.path().join("out");
    let pip_wheel = |python: &Path| {
        support::tools::output_past_spawn_glitch(&mut support::tools::pip_wheel(
            python, &wheels, &tree, &out,
        ))
    };
    let first = pip_wheel(&py312);
    assert!(
        first.status.success(),
        "stock build for the shared 3.12: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    let before = objects(&tree);
    std::thread::sleep(Duration::from_millis(1100));
    // Whether this links depends on which 3.12-only symbols the objects use; the defect is
    // that it compiles nothing for 3.8.
    let _ = pip_wheel(&py38);
    let plugin: Vec<_> = objects(&tree)
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().contains("/plugins/python/"))
        .collect();
    assert!(plugin.len() >= 10, "{plugin:?}");
    let recompiled = plugin
        .iter()
        .filter(|(path, mtime)| !before.iter().any(|(p, m)| p == path && m == mtime))
        .count();
    assert_eq!(
        recompiled, 0,
        "stock uWSGI recompiled the python plugin for 3.8 on its own"
    );
}

/// A process that succeeds although one of its threads died (what uwsgiconfig.py does when a
/// compile thread raises: it links the object an earlier build left) fails `run_ok`.
#[test]
#[should_panic(expected = "a thread of the build died")]
fn a_build_whose_compile_thread_died_fails() {
    let mut python = Command::new("python3");
    python.args([
        "-c",
        "import threading\nt = threading.Thread(target=lambda: 1 / 0)\nt.start()\nt.join()",
    ]);
    run_ok(python, "a process with a dead thread");
}

/// A long build log of multi-byte characters (gcc quotes with ‘’ in a UTF-8 locale): `run_ok`
/// keeps the log's tail for its messages without cutting a character in two.
#[test]
fn run_ok_takes_the_tail_of_a_long_multibyte_log() {
    let mut python = Command::new("python3");
    python.args(["-c", "import sys; sys.stdout.write('\\u2018' * 50000)"]);
    python.env("PYTHONIOENCODING", "utf-8");
    run_ok(python, "a long log of three-byte characters");
}
