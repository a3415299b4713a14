//! The wheel users get, run where users run it. A uWSGI 2.0.31 wheel is built with `pip wheel`
//! for a static-only CPython 3.11 (its archive only in a manylinux-style tarball), bundled with
//! `patch_uwsgi bundle`, repaired by the real `auditwheel`, installed the ways users install it,
//! and started as users start it, with the build interpreter out of reach (`unshare -m`, tmpfs
//! over its prefixes) unless it is the runtime itself. Every run serves an app on 127.0.0.1
//! that imports at least 20 extension modules, those needing grafted libraries (OpenSSL,
//! libffi, SQLite) included, and answers where each came from.

mod support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::tools::{auditwheel, frontend_command, pip_wheel, run_ok, tool_wheels};
use support::uwsgi::{apply_from_tarball, serve_with, uwsgi_source, with_build_prefix_hidden};
use support::{static_python, StaticPython};

/// Extension modules the app imports too when the build interpreter has them as files in its
/// lib-dynload: they link libraries that auditwheel grafts into the wheel.
const WITH_LIBRARIES: &[&str] = &[
    "_ssl", "_hashlib", "_ctypes", "_sqlite3", "_decimal", "_lzma", "_bz2", "_uuid",
];

/// A wheel made by `pip wheel` for a static-only Python, and what it was made with: made once
/// per test process (see [`made_wheel`]) and never changed; tests work on copies ([`Built`]).
struct MadeWheel {
    /// Holds the uWSGI tree and the wheel; removed at exit (a `static` is never dropped).
    work: tempfile::TempDir,
    manylinux_root: tempfile::TempDir,
    py: StaticPython,
    tools: PathBuf,
    debian: PathBuf,
    wheel: PathBuf,
}

/// One test's view of a [`MadeWheel`]: its own folder `work`, holding its own copy of the wheel.
struct Built {
    work: tempfile::TempDir,
    py: &'static StaticPython,
    tools: PathBuf,
    debian: PathBuf,
    wheel: PathBuf,
}

impl Built {
    /// The build interpreter's prefixes: its static-only copy and the pyenv prefix it links to.
    fn build_prefixes(&self) -> [PathBuf; 2] {
        [
            std::fs::canonicalize(self.py.root.path()).unwrap(),
            std::fs::canonicalize(self.py.original.parent().unwrap().parent().unwrap()).unwrap(),
        ]
    }

    /// `patch_uwsgi bundle` of this wheel into `work/<name>`; asserts success.
    fn bundle(&self, wheel: &Path, name: &str, stdlib: bool) -> PathBuf {
        let out_dir = self.work.path().join(name);
        std::fs::create_dir(&out_dir).unwrap();
        let options: &[&str] = if stdlib { &["--stdlib"] } else { &[] };
        let out = bundle(&[wheel], &out_dir, &self.py.python, options);
        assert_eq!(out.status.code(), Some(0), "{:?}", support::texts(&out));
        out_dir.join(wheel.file_name().unwrap())
    }

    /// A venv of Debian's python3.11 with `wheel` installed by its pip.
    fn debian_venv(&self, wheel: &Path, name: &str) -> PathBuf {
        let venv = self.work.path().join(name);
        run_ok(
            {
                let mut c = Command::new(&self.debian);
                c.args(["-m", "venv"]).arg(&venv);
                c
            },
            "python3.11 -m venv",
        );
        let mut install = frontend_command(&venv.join("bin/python"), &self.tools);
        install
            .args(["-m", "pip", "install", "-q", "--no-deps"])
            .arg(wheel);
        run_ok(install, "pip install of the wheel");
        venv
    }

    /// `program` started with the build interpreter out of reach.
    fn hidden(&self, program: &Path, name: &str) -> PathBuf {
        with_build_prefix_hidden(self.py, self.work.path(), program, name)
    }

    /// `program` started with `env -i` and no Python reachable: the build interpreter, Debian's
    /// python3 executables and standard library hidden (`unshare -m`, tmpfs, /dev/null binds).
    /// Asserts that Debian's python3.11 does not start in there.
    fn with_no_python(&self, program: &Path, name: &str) -> PathBuf {
        let work = self.work.path();
        let mut hide = String::new();
        for prefix in self.build_prefixes() {
            hide += &format!("mount -t tmpfs none '{}' || exit 97\n", prefix.display());
        }
        hide += "for d in /usr/lib/python3 /usr/lib/python3.11 /usr/local/lib/python3.11; do\n\
                 \x20 [ -d \"$d\" ] && { mount -t tmpfs none \"$d\" || exit 97; }\ndone\n\
                 for f in /usr/bin/python3*; do mount --bind /dev/null \"$f\" || exit 97; done\n\
                 exec \"$@\"\n";
        let hider = support::script(work, &format!("{name}-hide"), &hide);
        let probe = Command::new("env")
            .args(["-i", "unshare", "-m"])
            .arg(&hider)
            .args(["/usr/bin/python3.11", "-c", "pass"])
            .output()
            .unwrap();
        assert!(!probe.status.success(), "python3.11 still runs");
        support::script(
            work,
            name,
            &format!(
                "exec env -i unshare -m '{}' '{}' \"$@\"\n",
                hider.display(),
                program.display()
            ),
        )
    }

    /// `wheel` unpacked (as `python -m zipfile -e` does) into `work/<name>`.
    fn unpack(&self, wheel: &Path, name: &str) -> PathBuf {
        let unpacked = self.work.path().join(name);
        std::fs::create_dir(&unpacked).unwrap();
        assert!(Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(wheel)
            .arg(&unpacked)
            .status()
            .unwrap()
            .success());
        unpacked
    }
}

/// Make a file unpacked from a zip (which keeps no modes here) executable.
fn executable(path: &Path) {
    assert!(path.is_file(), "{} is not in the wheel", path.display());
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

fn built_wheel() -> Option<Built> {
    built_wheel_for("3.11")
}

/// `pip wheel` of uWSGI 2.0.31 for a static-only copy of pyenv's CPython `minor`.
fn built_wheel_for(minor: &str) -> Option<Built> {
    built_wheel_of(minor, None)
}

/// `pip wheel` for a static-only copy of pyenv's CPython `minor`: of uWSGI 2.0.31 itself, or
/// of `project` (copied), whose setup.py builds the uWSGI tree named by MYSERVER_UWSGI_SOURCE.
/// Made once per test process (the tests of a binary run as its threads); each caller gets a
/// new folder with its own copy of the wheel.
fn built_wheel_of(minor: &str, project: Option<&Path>) -> Option<Built> {
    let made = made_wheel(minor, project)?;
    let work = tempfile::tempdir().unwrap();
    let wheel = empty_dir(work.path(), "built").join(made.wheel.file_name().unwrap());
    std::fs::copy(&made.wheel, &wheel).unwrap();
    Some(Built {
        work,
        py: &made.py,
        tools: made.tools.clone(),
        debian: made.debian.clone(),
        wheel,
    })
}

/// The [`MadeWheel`] of `minor` and `project`, made by the first test asking for it while the
/// others asking wait; `None` (a failure under `CI=true`) when something it needs is missing.
fn made_wheel(minor: &str, project: Option<&Path>) -> Option<&'static MadeWheel> {
    type Made = std::sync::OnceLock<Option<MadeWheel>>;
    static MADE: std::sync::Mutex<Vec<(String, &'static Made)>> = std::sync::Mutex::new(Vec::new());
    let key = format!("{minor} {project:?}");
    let once: &'static Made = {
        let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
        match made.iter().find(|(k, _)| *k == key) {
            Some((_, once)) => once,
            None => {
                let once: &'static Made = Box::leak(Box::default());
                made.push((key, once));
                once
            }
        }
    };
    once.get_or_init(|| {
        let made = make_wheel(minor, project)?;
        for dir in [&made.work, &made.manylinux_root] {
            support::remove_at_exit(dir.path());
        }
        support::remove_at_exit(made.py.root.path());
        Some(made)
    })
    .as_ref()
}

fn make_wheel(minor: &str, project: Option<&Path>) -> Option<MadeWheel> {
    let tools = tool_wheels()?;
    let debian = support::debian_python311()?;
    if !support::running_as_root() {
        support::missing("root, to hide the build prefix with unshare -m and tmpfs mounts");
        return None;
    }
    let py = static_python(minor)?;
    let work = tempfile::tempdir().unwrap();
    let tree = uwsgi_source("2.0.31", work.path())?;
    let manylinux_root = support::uwsgi::manylinux_root(&py);
    apply_from_tarball(&py, &tree, manylinux_root.path());
    let out_dir = work.path().join("built");
    let pip = match project {
        None => pip_wheel(&py.python, &tools, &tree, &out_dir),
        Some(project) => {
            let copy = work.path().join("project");
            support::copy_tree(project, &copy);
            let mut pip = pip_wheel(&py.python, &tools, &copy, &out_dir);
            pip.env("MYSERVER_UWSGI_SOURCE", &tree);
            pip
        }
    };
    run_ok(pip, "pip wheel");
    let wheel = support::only_wheel(&out_dir);
    Some(MadeWheel {
        work,
        manylinux_root,
        py,
        tools,
        debian,
        wheel,
    })
}

/// A new empty folder `dir/name`.
fn empty_dir(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir(&path).unwrap();
    path
}

/// `patch_uwsgi bundle WHEELS -w OUT_DIR --python PYTHON --json OPTIONS`.
fn bundle(wheels: &[&Path], out_dir: &Path, python: &Path, options: &[&str]) -> Output {
    support::bin()
        .arg("bundle")
        .args(wheels)
        .arg("-w")
        .arg(out_dir)
        .arg("--python")
        .arg(python)
        .arg("--json")
        .args(options)
        .output()
        .unwrap()
}

/// `auditwheel repair` as the README's `repair-wheel-command` runs it; `None` (a failure under
/// `CI=true`) without auditwheel. Debian 12's glibc 2.36 symbols in the bundled modules make
/// manylinux_2_36 the policy here; in a manylinux container it is that image's.
fn repair(wheel: &Path, out_dir: &Path) -> Option<PathBuf> {
    let auditwheel = auditwheel()?;
    let out = Command::new(&auditwheel)
        .args(["repair", "--plat", "manylinux_2_36_x86_64", "-w"])
        .arg(out_dir)
        .arg(wheel)
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
    Some(support::only_wheel(out_dir))
}

/// `dir/app.py`: a WSGI app importing the test modules plus those of [`WITH_LIBRARIES`] that
/// `py` has, answering JSON: version, sys.prefix, each module's file, the shared libraries
/// mapped (to see grafted ones). Returns the app and the modules it imports.
fn runtime_app(dir: &Path, py: &StaticPython, extra_imports: &[&str]) -> (PathBuf, Vec<String>) {
    let dynload = std::fs::canonicalize(py.original.parent().unwrap().parent().unwrap())
        .unwrap()
        .join("lib/python3.11/lib-dynload");
    let files: Vec<String> = std::fs::read_dir(&dynload)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut modules: Vec<String> = support::uwsgi::MODULES
        .iter()
        .map(|m| m.to_string())
        .collect();
    for module in WITH_LIBRARIES {
        if files.iter().any(|f| f.starts_with(&format!("{module}."))) {
            modules.push(module.to_string());
        }
    }
    let path = dir.join("app.py");
    std::fs::write(
        &path,
        format!(
            "import json, os, sys\n\
             import {modules}\n\
             {extra}\
             NAMES = {names:?}\n\
             def application(environ, start_response):\n\
             \x20   maps = open('/proc/self/maps').read().split()\n\
             \x20   answer = {{'version': '%d.%d.%d' % sys.version_info[:3], 'prefix': sys.prefix,\n\
             \x20             'files': dict((n, getattr(sys.modules[n], '__file__', 'built-in')) for n in NAMES + ['json', 'encodings']),\n\
             \x20             'libs': sorted(set(w for w in maps if '.so' in w))}}\n\
             \x20   start_response('200 OK', [('Content-Type', 'application/json')])\n\
             \x20   return [json.dumps(answer).encode()]\n",
            modules = modules.join(", "),
            extra = extra_imports
                .iter()
                .map(|m| format!("import {m}\n"))
                .collect::<String>(),
            names = modules
                .iter()
                .map(String::as_str)
                .chain(extra_imports.iter().copied())
                .collect::<Vec<_>>(),
        ),
    )
    .unwrap();
    (path, modules)
}

/// Check a served answer: the build's version, every extension module imported, none from the
/// build interpreter's prefixes, `math` from the bundle. Returns the answer.
fn check_answer(body: &str, built: &Built, modules: &[String], what: &str) -> serde_json::Value {
    let answer: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
    assert_eq!(answer["version"], built.py.version.as_str(), "{what}");
    assert!(modules.len() >= 20, "{modules:?}");
    let files = answer["files"].as_object().unwrap();
    for module in modules {
        assert!(files.contains_key(module), "{what}: {module} missing");
    }
    for (module, file) in files {
        let file = file.as_str().unwrap();
        for prefix in built.build_prefixes() {
            assert!(
                !file.starts_with(prefix.to_str().unwrap()),
                "{what}: {module} loaded from the build prefix: {file}"
            );
        }
    }
    let math = files["math"].as_str().unwrap();
    assert!(
        math.contains("/patch_uwsgi_runtime/python3.11/lib-dynload/"),
        "{what}: math from {math}"
    );
    answer
}

/// `launcher --pyrun` of a one-line script: what uWSGI and Python said.
fn pyrun(launcher: &Path, dir: &Path) -> String {
    let script = dir.join("import_math.py");
    std::fs::write(&script, "import math\nprint('math from', math.__file__)\n").unwrap();
    let out = Command::new(launcher)
        .arg("--pyrun")
        .arg(&script)
        .output()
        .unwrap();
    let (stdout, stderr) = support::texts(&out);
    format!("{stdout}{stderr}")
}

/// The reproduction, then every runtime a user may have: the unbundled wheel fails in a
/// venv of Debian's python3.11 (repaired: `No module named 'encodings'`; as built: `No module
/// named 'math'`); the bundled and repaired one serves there through auditwheel's wrapper, also
/// with `--home`/`--virtualenv` naming the venv and with `--pythonpath`; in a venv of the build
/// interpreter itself (its prefix present) the bundled modules are the ones loaded; installed
/// with `pip install --target` (no venv) it uses the system's python3.11 found on PATH.
#[test]
fn bundled_wheel_serves_in_every_runtime() {
    let Some(built) = built_wheel() else {
        return;
    };
    let work = built.work.path();
    let Some(repaired_plain) = repair(&built.wheel, &work.join("repaired-plain")) else {
        return;
    };
    let bundled = built.bundle(&built.wheel, "bundled", false);
    let repaired = repair(&bundled, &work.join("repaired")).unwrap();

    // Without the bundle, as the issue found it.
    let venv = built.debian_venv(&repaired_plain, "venv-plain");
    let said = pyrun(
        &built.hidden(&venv.join("bin/uwsgi"), "plain-repaired"),
        work,
    );
    assert!(said.contains("No module named 'encodings'"), "{said}");
    let venv = built.debian_venv(&built.wheel, "venv-plain-unrepaired");
    let said = pyrun(&built.hidden(&venv.join("bin/uwsgi"), "plain"), work);
    assert!(said.contains("No module named 'math'"), "{said}");

    // Bundled and repaired, in a venv of Debian's python3.11.
    let extra = work.join("extra");
    std::fs::create_dir(&extra).unwrap();
    std::fs::write(extra.join("app_helper.py"), "VALUE = 1\n").unwrap();
    let (app, modules) = runtime_app(work, built.py, &[]);
    let (app_with_helper, _) = runtime_app(&extra, built.py, &["app_helper"]);
    let venv = built.debian_venv(&repaired, "venv");
    let venv_real = std::fs::canonicalize(&venv).unwrap();
    let launcher = built.hidden(&venv.join("bin/uwsgi"), "uwsgi-venv");
    let home = venv.as_os_str();
    let usr = Path::new("/usr");
    // (what, uWSGI options, app, the sys.prefix it must run with)
    let option_sets: [(&str, Vec<&OsStr>, &Path, &Path); 5] = [
        ("venv/bin/uwsgi", vec![], &app, &venv_real),
        (
            "--home venv",
            vec![OsStr::new("--home"), home],
            &app,
            &venv_real,
        ),
        (
            "--virtualenv venv",
            vec![OsStr::new("--virtualenv"), home],
            &app,
            &venv_real,
        ),
        (
            "--pythonpath extra",
            vec![OsStr::new("--pythonpath"), extra.as_os_str()],
            &app_with_helper,
            &venv_real,
        ),
        // The user's home wins over the one the finder found: here the system's Python.
        (
            "--home /usr",
            vec![OsStr::new("--home"), usr.as_os_str()],
            &app,
            usr,
        ),
    ];
    for (what, options, app, prefix) in option_sets {
        let body = serve_with(&launcher, app, &options);
        let answer = check_answer(&body, &built, &modules, what);
        assert_eq!(
            std::fs::canonicalize(answer["prefix"].as_str().unwrap()).unwrap(),
            prefix,
            "{what}: sys.prefix"
        );
        // The grafted OpenSSL, not the system's.
        if modules.iter().any(|m| m == "_ssl") {
            let libs = answer["libs"].as_array().unwrap();
            assert!(
                libs.iter()
                    .any(|l| l.as_str().unwrap().contains("/uwsgi.libs/libssl")),
                "{what}: {libs:?}"
            );
        }
        if what.starts_with("--pythonpath") {
            let helper = answer["files"]["app_helper"].as_str().unwrap();
            assert!(helper.starts_with(extra.to_str().unwrap()), "{helper}");
        }
    }

    // A venv of the build interpreter itself (its prefix is there): the bundle still wins.
    let venv = work.join("venv-build");
    run_ok(
        {
            let mut c = Command::new(&built.py.python);
            c.args(["-m", "venv"]).arg(&venv);
            c
        },
        "venv of the build interpreter",
    );
    let mut install = frontend_command(&venv.join("bin/python"), &built.tools);
    install
        .args(["-m", "pip", "install", "-q", "--no-deps"])
        .arg(&repaired);
    run_ok(install, "pip install into the build interpreter's venv");
    let body = serve_with(&venv.join("bin/uwsgi"), &app, &[]);
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    for module in &modules {
        let file = answer["files"][module].as_str().unwrap();
        assert!(
            file == "built-in" || file.contains("/patch_uwsgi_runtime/python3.11/lib-dynload/"),
            "build venv: {module} from {file}"
        );
    }

    // `pip install --target DIR` by the system's python3.11: no venv; its bin/uwsgi finds the
    // python3.11 on PATH. (auditwheel's wrapper looks in the interpreter's own site-packages,
    // so a --target install takes the wheel as built, whose bin/uwsgi is the executable.)
    let target = work.join("target-dir");
    let mut install = frontend_command(&built.debian, &built.tools);
    install
        .args(["-m", "pip", "install", "-q", "--no-deps", "--target"])
        .arg(&target)
        .arg(&bundled);
    run_ok(install, "pip install --target");
    let launcher = support::script(
        work,
        "uwsgi-target",
        &format!(
            "PATH=/usr/bin:/bin exec '{}' \"$@\"\n",
            built
                .hidden(&target.join("bin/uwsgi"), "uwsgi-target-hidden")
                .display()
        ),
    );
    let body = serve_with(&launcher, &app, &[]);
    let answer = check_answer(&body, &built, &modules, "--target");
    assert_eq!(answer["prefix"], "/usr", "--target: {answer:#}");
}

/// `bundle --stdlib`: the repaired wheel, unpacked, runs with `env -i` and no Python reachable
/// at all (the build interpreter, Debian's python3 and its standard library hidden): stdlib
/// from the bundled zip, extension modules from the bundle, libraries from the wheel. The same
/// wheel in a Debian venv keeps the venv's site-packages importable, after the stdlib.
#[test]
fn stdlib_bundle_runs_with_no_python_on_the_machine() {
    let Some(built) = built_wheel() else {
        return;
    };
    let work = built.work.path();
    let bundled = built.bundle(&built.wheel, "bundled-stdlib", true);
    let Some(repaired) = repair(&bundled, &work.join("repaired")) else {
        return;
    };
    let unpacked = built.unpack(&repaired, "unpacked");
    let program = unpacked.join("uwsgi.scripts/uwsgi");
    executable(&program);
    let launcher = built.with_no_python(&program, "uwsgi-no-python");
    let (app, modules) = runtime_app(work, built.py, &[]);
    let body = serve_with(&launcher, &app, &[]);
    let answer = check_answer(&body, &built, &modules, "env -i, no Python");
    let runtime = std::fs::canonicalize(&unpacked)
        .unwrap()
        .join("patch_uwsgi_runtime/python3.11");
    assert_eq!(
        answer["prefix"],
        runtime.to_str().unwrap(),
        "the bundle is the home"
    );
    // (os is frozen into 3.11's libpython: its __file__ names where it would be.)
    for module in ["json", "encodings"] {
        let file = answer["files"][module].as_str().unwrap();
        assert!(file.contains("/lib/python311.zip/"), "{module} from {file}");
    }
    if modules.iter().any(|m| m == "_ssl") {
        let libs = answer["libs"].as_array().unwrap();
        assert!(
            libs.iter()
                .any(|l| l.as_str().unwrap().contains("/uwsgi.libs/libssl")),
            "{libs:?}"
        );
    }

    // In a Debian venv: the bundled stdlib, and the venv's site-packages (with its .pth files)
    // after it.
    let venv = built.debian_venv(&repaired, "venv-stdlib");
    let site = venv.join("lib/python3.11/site-packages");
    std::fs::write(site.join("venv_dependency.py"), "VALUE = 1\n").unwrap();
    let pth_dir = work.join("pth-dir");
    std::fs::create_dir(&pth_dir).unwrap();
    std::fs::write(pth_dir.join("pth_dependency.py"), "VALUE = 2\n").unwrap();
    std::fs::write(site.join("extra.pth"), format!("{}\n", pth_dir.display())).unwrap();
    let (app, modules) = runtime_app(&pth_dir, built.py, &["venv_dependency", "pth_dependency"]);
    let body = serve_with(
        &built.hidden(&venv.join("bin/uwsgi"), "uwsgi-venv-stdlib"),
        &app,
        &[],
    );
    let answer = check_answer(&body, &built, &modules, "venv, --stdlib");
    let json = answer["files"]["json"].as_str().unwrap();
    assert!(json.contains("/lib/python311.zip/"), "json from {json}");
    let dependency = answer["files"]["venv_dependency"].as_str().unwrap();
    assert!(
        dependency.starts_with(std::fs::canonicalize(&site).unwrap().to_str().unwrap()),
        "{dependency}"
    );

    // verify --wheel agrees, with Debian's python3.11 as the runtime.
    let out = support::bin()
        .args(["verify", "--json", "--wheel"])
        .arg(&repaired)
        .arg("--python")
        .arg(&built.py.python)
        .arg("--runtime-python")
        .arg(&built.debian)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", support::texts(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let zip = json["bundled_stdlib"].as_str().unwrap();
    assert!(
        zip.ends_with("/patch_uwsgi_runtime/python3.11/lib/python311.zip"),
        "{json:#}"
    );
    assert!(
        json["stdlib"].as_str().unwrap().starts_with(zip),
        "{json:#}"
    );

    // Sizes, for the README's table (printed with --nocapture).
    for (what, wheel) in [
        ("built", &built.wheel),
        ("bundled --stdlib", &bundled),
        ("repaired", &repaired),
    ] {
        eprintln!("{what}: {} bytes", std::fs::metadata(wheel).unwrap().len());
    }
}

/// `verify --wheel` and `bundle` on the wheel as built. The wheel `pip wheel` made for a static-only 3.11
/// is installed into a fresh venv and its `uwsgi` started from there, with the build prefix
/// present, as in a build container. Unbundled, it imports everything from the build prefix
/// with the build interpreter as the runtime, and Debian's python3.11 (another build of 3.11,
/// which compiles math, select, zlib, ... into its interpreter) lacks modules: both are named.
/// Bundled (and repaired), both runtimes say ok; bundling the repaired wheel is refused. (The
/// rest of `bundle`'s bad input is tested on small synthetic wheels in tests/bundle.rs.)
#[test]
fn verify_wheel_runs_the_installed_uwsgi_and_names_what_a_runtime_lacks() {
    let Some(built) = built_wheel() else {
        return;
    };
    let (py, debian, wheel) = (built.py, &built.debian, &built.wheel);
    let work = &built.work;
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
    let verify = |runtime: Option<&Path>| verify_wheel(wheel, runtime);
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

    // With the build interpreter as the runtime (as in cibuildwheel's test-command) everything
    // imports, but from the build prefix: named, and not ok.
    let (code, json) = verify(None);
    assert_eq!(code, Some(1), "{json:#}");
    assert!(
        json["import_failures"].as_array().unwrap().is_empty(),
        "{json:#}"
    );
    let from_build = names(&json["from_build_prefix"]);
    for module in ["math", "select", "zlib", "_ssl"] {
        assert!(
            from_build.iter().any(|m| m == module),
            "{module}: {from_build:?}"
        );
    }
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

    let (code, json) = verify(Some(debian));
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
    let out = bundle(&[wheel], &bundled_dir, &py.python, &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", support::texts(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["wheels"][0]["modules"].as_u64().unwrap() >= 20,
        "{report:#}"
    );
    let bundled = bundled_dir.join(wheel.file_name().unwrap());
    for runtime in [Some(debian.as_path()), None] {
        let (code, json) = verify_wheel(&bundled, runtime);
        assert_eq!(code, Some(0), "bundled, {runtime:?}: {json:#}");
        assert!(names(&json["from_build_prefix"]).is_empty(), "{json:#}");
    }
    // --exclude: those modules stay out, verify --wheel does not expect them, and auditwheel
    // then grafts no Tcl/Tk or X11 libraries.
    let slim_dir = empty_dir(work.path(), "slim");
    let excluded = ["_curses", "_curses_panel", "_tkinter", "readline"];
    let out = bundle(
        &[wheel],
        &slim_dir,
        &py.python,
        &[
            "--exclude",
            "_tkinter,_curses",
            "--exclude",
            "_curses_panel,readline",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{:?}", support::texts(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["excluded"],
        serde_json::json!(excluded),
        "{report:#}"
    );
    let slim = slim_dir.join(wheel.file_name().unwrap());
    let (code, json) = verify_wheel(&slim, Some(debian));
    assert_eq!(code, Some(0), "slim: {json:#}");
    assert_eq!(json["excluded"], serde_json::json!(excluded), "{json:#}");
    let imported = names(&json["imported"]);
    for module in excluded {
        assert!(!imported.iter().any(|m| m == module), "{module} tried");
    }
    let members = Command::new("python3")
        .args(["-m", "zipfile", "-l"])
        .arg(&slim)
        .output()
        .unwrap();
    let members = String::from_utf8_lossy(&members.stdout);
    assert!(members.contains("lib-dynload/_ssl."), "{members}");
    assert!(!members.contains("lib-dynload/_tkinter."), "{members}");

    // Bundling twice gives the same bytes.
    let again_dir = work.path().join("again");
    std::fs::create_dir(&again_dir).unwrap();
    let out = bundle(&[&bundled], &again_dir, &py.python, &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", support::texts(&out));
    assert_eq!(
        std::fs::read(&bundled).unwrap(),
        std::fs::read(again_dir.join(wheel.file_name().unwrap())).unwrap(),
        "bundling twice differs from once"
    );
    // The written wheel gets the mode of any new file (not mkstemp's 0600), and the folder holds
    // nothing else: under umask 027, 0640.
    let umask_dir = work.path().join("umask");
    std::fs::create_dir(&umask_dir).unwrap();
    let out = Command::new("sh")
        .args(["-c", "umask 027 && exec \"$@\"", "sh"])
        .arg(env!("CARGO_BIN_EXE_patch_uwsgi"))
        .arg("bundle")
        .arg(wheel)
        .arg("-w")
        .arg(&umask_dir)
        .arg("--python")
        .arg(&py.python)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", support::texts(&out));
    let written: Vec<_> = std::fs::read_dir(&umask_dir).unwrap().flatten().collect();
    assert_eq!(written.len(), 1, "leftovers: {written:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        written[0].metadata().unwrap().permissions().mode() & 0o777,
        0o640
    );
    let Some(repaired) = repair(&bundled, &work.path().join("repaired")) else {
        return;
    };
    let (code, json) = verify_wheel(&repaired, Some(debian));
    assert_eq!(code, Some(0), "repaired: {json:#}");
    assert_eq!(json["installer"], "builtin", "{json:#}");
    // auditwheel's `.data/scripts/uwsgi` shim (`#!python`) and `uwsgi.scripts/uwsgi`, installed
    // by the built-in installer as pip installs them.
    installs_like_pip(
        &repaired,
        &py.python,
        debian,
        &empty_dir(work.path(), "like-pip"),
    );
    // Bundling after repair would leave the modules' libraries ungrafted: refused.
    let out = bundle(
        &[&repaired],
        &empty_dir(work.path(), "after-repair"),
        &py.python,
        &[],
    );
    let (_, stderr) = support::texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("already repaired by auditwheel (uwsgi.scripts/uwsgi)")
            && stderr.contains("before `auditwheel repair`"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(work.path().join("after-repair"))
            .unwrap()
            .count(),
        0
    );

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

/// `program` started as a user's shell would, with only `variables` in its environment and
/// the build interpreter out of reach (`unshare -m`, tmpfs over its prefixes); every tool by
/// its full path, as `PATH` may hold nothing but a venv's `bin/`.
fn as_user(built: &Built, program: &Path, name: &str, variables: &[(&str, String)]) -> PathBuf {
    let work = built.work.path();
    let mut hide = String::new();
    for prefix in built.build_prefixes() {
        hide += &format!(
            "/bin/mount -t tmpfs none '{}' || exit 97\n",
            prefix.display()
        );
    }
    hide += "exec \"$@\"\n";
    let hider = support::script(work, &format!("{name}-hide"), &hide);
    let assignments: String = variables
        .iter()
        .map(|(key, value)| format!(" {key}='{value}'"))
        .collect();
    support::script(
        work,
        name,
        &format!(
            "exec /usr/bin/env -i{assignments} /usr/bin/unshare -m '{}' '{}' \"$@\"\n",
            hider.display(),
            program.display()
        ),
    )
}

/// The wheel shape of projects that ship their own server (examples/custom-server): a custom
/// build profile (`bin_name = myserver`, an embedded bootstrap module and config), the
/// executable as package data `myserver/bin/myserver`, a console script `myserver` that execs
/// it. Built with `pip wheel` for the static-only 3.11, with no change to its packaging: unbundled
/// and repaired it fails in a venv of Debian's python3.11 as users saw it; bundled and repaired
/// it serves there through its console script, the bootstrap importing the project's package
/// and the app a module from the venv's site-packages, with `VIRTUAL_ENV` set and with only the
/// venv's `bin/` on `PATH`; `verify --wheel` starts it through the console script.
#[test]
fn project_server_as_package_data_serves_through_its_console_script() {
    let project = support::repo().join("examples/custom-server");
    let Some(built) = built_wheel_of("3.11", Some(&project)) else {
        return;
    };
    let work = built.work.path();
    let name = built
        .wheel
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("myserver-1.0-cp311-cp311-linux_"),
        "{name}"
    );
    let listing = Command::new("python3")
        .args(["-m", "zipfile", "-l"])
        .arg(&built.wheel)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(listing.contains("myserver/bin/myserver"), "{listing}");
    assert!(!listing.contains(".data/scripts/"), "{listing}");

    // Unbundled, as users met it: repaired, installed, started through the console script.
    let Some(repaired_plain) = repair(&built.wheel, &work.join("repaired-plain")) else {
        return;
    };
    let venv_plain = built.debian_venv(&repaired_plain, "venv-plain");
    let path_plain = format!("{}/bin:/usr/bin:/bin", venv_plain.display());
    let said = pyrun(
        &as_user(
            &built,
            &venv_plain.join("bin/myserver"),
            "myserver-plain",
            &[("PATH", path_plain)],
        ),
        work,
    );
    assert!(said.contains("No module named"), "{said}");

    // Bundled: the report names the package-data executable and its Python.
    let bundled_dir = work.join("bundled");
    let out = bundle(&[&built.wheel], &bundled_dir, &built.py.python, &[]);
    let (stdout, stderr) = support::texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        report["wheels"][0]["executables"],
        serde_json::json!([{"path": "myserver/bin/myserver", "python": "3.11"}]),
        "{report:#}"
    );
    let repaired = repair(&bundled_dir.join(&name), &work.join("repaired")).unwrap();
    let venv = built.debian_venv(&repaired, "venv");
    let venv_real = std::fs::canonicalize(&venv).unwrap();
    let site = venv_real.join("lib/python3.11/site-packages");
    // A dependency of the app in the venv; it also checks that the server's embedded config
    // ran its bootstrap (which imports the project's package from the same site-packages).
    std::fs::write(
        site.join("appdep.py"),
        "import myserver\n\
         if not myserver.started_by_server:\n\
         \x20   raise RuntimeError('the embedded bootstrap did not run')\n",
    )
    .unwrap();
    let (app, mut modules) = runtime_app(work, built.py, &["appdep", "myserver", "myserver_boot"]);
    assert!(modules.len() >= 25, "{modules:?}");
    modules.extend(["appdep".to_string(), "myserver".to_string()]);
    let with_venv = [
        (
            "PATH",
            format!("{}/bin:/usr/local/bin:/usr/bin:/bin", venv.display()),
        ),
        ("VIRTUAL_ENV", venv.display().to_string()),
    ];
    let only_venv_bin = [("PATH", format!("{}/bin", venv.display()))];
    for (what, variables) in [
        ("VIRTUAL_ENV set", &with_venv[..]),
        ("only the venv's bin on PATH", &only_venv_bin[..]),
    ] {
        let launcher = as_user(&built, &venv.join("bin/myserver"), "myserver", variables);
        let body = serve_with(&launcher, &app, &[]);
        let answer = check_answer(&body, &built, &modules, what);
        assert_eq!(
            std::fs::canonicalize(answer["prefix"].as_str().unwrap()).unwrap(),
            venv_real,
            "{what}: sys.prefix"
        );
        for module in ["appdep", "myserver"] {
            let file = answer["files"][module].as_str().unwrap();
            assert!(
                file.starts_with(site.to_str().unwrap()),
                "{what}: {module} from {file}"
            );
        }
        assert_eq!(
            answer["files"]["myserver_boot"], "sym://myserver_boot_py",
            "{what}"
        );
    }

    // verify --wheel starts the program through its console script and says so.
    let verify = |wheel: &Path| {
        let out = support::bin()
            .args(["verify", "--json", "--wheel"])
            .arg(wheel)
            .arg("--python")
            .arg(&built.py.python)
            .arg("--runtime-python")
            .arg(&built.debian)
            .output()
            .unwrap();
        let (stdout, stderr) = support::texts(&out);
        let json: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
        (out.status.code(), json)
    };
    let (code, json) = verify(&repaired);
    assert_eq!(code, Some(0), "{json:#}");
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{json:#}");
    assert!(runs[0]["started"]
        .as_str()
        .unwrap()
        .ends_with("/bin/myserver"));
    assert!(
        runs[0]["reached"]
            .as_str()
            .unwrap()
            .ends_with("/site-packages/myserver/bin/myserver"),
        "{json:#}"
    );
    assert!(
        runs[0]["imported"].as_array().unwrap().len() >= 25,
        "{json:#}"
    );
    let (code, json) = verify(&built.wheel);
    assert_eq!(code, Some(1), "{json:#}");
    assert_eq!(json["ok"], false);
    // A console script that execs package data, installed by the built-in installer as pip
    // installs it.
    installs_like_pip(
        &repaired,
        &built.py.python,
        &built.debian,
        &empty_dir(work, "like-pip"),
    );
}

/// `bundle --stdlib` on the oldest and newest minors cibuildwheel builds for here (3.8: C
/// getpath; 3.13: getpath.py, another frozen set): the unpacked wheel's own executable, under
/// `env -i` with no Python reachable, takes its stdlib from the zip and its extension modules
/// (those with grafted-to-be libraries too) from the bundle.
#[test]
fn stdlib_bundle_runs_with_no_python_on_other_minors() {
    for minor in ["3.8", "3.13"] {
        let Some(built) = built_wheel_for(minor) else {
            return;
        };
        let bundled = built.bundle(&built.wheel, "bundled-stdlib", true);
        let unpacked = built.unpack(&bundled, "unpacked");
        // uWSGI's dist name is spelled `uWSGI` on some Pythons' setuptools: find the scripts.
        let data = std::fs::read_dir(&unpacked)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".data"))
            .expect("a .data folder");
        let program = data.join("scripts/uwsgi");
        executable(&program);
        let script = built.work.path().join("imports.py");
        std::fs::write(
            &script,
            "import sys, math, json, _ssl, _ctypes, _sqlite3\n\
             print('ANSWER', sys.prefix, json.__file__, math.__file__, _ssl.__file__)\n",
        )
        .unwrap();
        let out = Command::new(built.with_no_python(&program, "uwsgi-no-python"))
            .arg("--pyrun")
            .arg(&script)
            .output()
            .unwrap();
        let (stdout, stderr) = support::texts(&out);
        let said = format!("{stdout}{stderr}");
        let answer = said
            .lines()
            .find_map(|l| l.strip_prefix("ANSWER "))
            .unwrap_or_else(|| panic!("{minor}: {said}"));
        let words: Vec<&str> = answer.split(' ').collect();
        let runtime = std::fs::canonicalize(&unpacked)
            .unwrap()
            .join(format!("patch_uwsgi_runtime/python{minor}"));
        assert_eq!(words[0], runtime.to_str().unwrap(), "{minor}: {said}");
        let zip = format!("/lib/python{}.zip/", minor.replace('.', ""));
        assert!(words[1].contains(&zip), "{minor}: json from {}", words[1]);
        for file in &words[2..] {
            assert!(
                file.starts_with(&format!("{}/lib-dynload/", runtime.display())),
                "{minor}: {file}"
            );
        }
    }
}

/// What `verify --wheel` installs with its own installer is what pip installs: `wheel`
/// verified twice with the venv kept (`--venv`), by the built-in installer and by
/// `--installer pip`, with `runtime` as the runtime Python. The same files and folders with
/// the same modes and symlinks, the same bytes once the venv's own path is put in common
/// (`.data/scripts` with their `#!python` line rewritten included), RECORD listing the same
/// paths; the console-script launchers (each installer writes its own text) behave the same
/// for `--version`; and the two verifications find the same. Left out of the comparison on
/// purpose: byte-compiled `__pycache__` folders (pip compiles, the built-in installer does
/// not), pip's `direct_url.json`, the installer's name in `INSTALLER`, `pyvenv.cfg`'s
/// command line.
fn installs_like_pip(wheel: &Path, python: &Path, runtime: &Path, work: &Path) {
    let verify = |installer: &str, venv: &Path| {
        let out = support::bin()
            .args(["verify", "--json", "--wheel"])
            .arg(wheel)
            .arg("--python")
            .arg(python)
            .arg("--runtime-python")
            .arg(runtime)
            .args(["--installer", installer, "--venv"])
            .arg(venv)
            .output()
            .unwrap();
        let (stdout, stderr) = support::texts(&out);
        let json: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
        assert_eq!(json["installer"], installer, "{json:#}");
        (out.status.code(), json)
    };
    // One name for both: the venv's name is in its activate scripts' prompt.
    let (ours, pips) = (work.join("builtin/venv"), work.join("pip/venv"));
    std::fs::create_dir_all(ours.parent().unwrap()).unwrap();
    std::fs::create_dir_all(pips.parent().unwrap()).unwrap();
    let (our_code, our_json) = verify("builtin", &ours);
    let (pip_code, pip_json) = verify("pip", &pips);
    let (ours_text, pips_text) = (ours.display().to_string(), pips.display().to_string());
    let in_common = |bytes: Vec<u8>| -> Vec<u8> {
        String::from_utf8(bytes.clone())
            .map(|text| text.replace(&ours_text, &pips_text).into_bytes())
            .unwrap_or(bytes)
    };
    assert_eq!(our_code, pip_code, "{our_json:#}\n{pip_json:#}");
    for field in [
        "ok",
        "imported",
        "import_failures",
        "from_build_prefix",
        "excluded",
    ] {
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&in_common(
                our_json[field].to_string().into_bytes()
            ))
            .unwrap(),
            pip_json[field],
            "{field}"
        );
    }
    let ignored = |relative: &Path| {
        relative
            .components()
            .any(|c| c.as_os_str() == "__pycache__")
            || relative.ends_with("direct_url.json")
    };
    let tree = |root: &Path| -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                let relative = path.strip_prefix(root).unwrap().to_path_buf();
                if ignored(&relative) {
                    continue;
                }
                if entry.file_type().unwrap().is_dir() {
                    pending.push(path);
                }
                found.push(relative);
            }
        }
        found.sort();
        found
    };
    let listed = tree(&ours);
    assert_eq!(listed, tree(&pips), "the two venvs hold other files");
    let launchers: Vec<String> = listed
        .iter()
        .filter(|p| p.ends_with("entry_points.txt"))
        .flat_map(|p| {
            let text = std::fs::read_to_string(ours.join(p)).unwrap();
            let mut section = String::new();
            let mut names = Vec::new();
            for line in text.lines().map(str::trim) {
                if line.starts_with('[') {
                    section = line.to_string();
                } else if section == "[console_scripts]" || section == "[gui_scripts]" {
                    names.extend(line.split_once('=').map(|(n, _)| n.trim().to_string()));
                }
            }
            names
        })
        .collect();
    use std::os::unix::fs::PermissionsExt;
    let mut compared = 0;
    for relative in &listed {
        let (a, b) = (ours.join(relative), pips.join(relative));
        let (meta_a, meta_b) = (
            std::fs::symlink_metadata(&a).unwrap(),
            std::fs::symlink_metadata(&b).unwrap(),
        );
        assert_eq!(
            (meta_a.file_type().is_symlink(), meta_a.is_dir()),
            (meta_b.file_type().is_symlink(), meta_b.is_dir()),
            "{}",
            relative.display()
        );
        if meta_a.file_type().is_symlink() {
            assert_eq!(
                in_common(
                    std::fs::read_link(&a)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes()
                ),
                std::fs::read_link(&b)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
                "{}",
                relative.display()
            );
            continue;
        }
        assert_eq!(
            meta_a.permissions().mode() & 0o7777,
            meta_b.permissions().mode() & 0o7777,
            "mode of {}",
            relative.display()
        );
        if meta_a.is_dir() {
            continue;
        }
        let name = relative.file_name().unwrap().to_string_lossy();
        let is_launcher =
            relative.starts_with("bin") && launchers.iter().any(|l| l.as_str() == name);
        if is_launcher {
            let run = |launcher: &Path| {
                let out = Command::new(launcher).arg("--version").output().unwrap();
                (
                    out.status.code(),
                    in_common(out.stdout),
                    in_common(out.stderr),
                )
            };
            assert_eq!(run(&a), run(&b), "{} --version", relative.display());
        } else if name == "RECORD" {
            let paths = |file: &Path| -> std::collections::BTreeSet<String> {
                std::fs::read_to_string(file)
                    .unwrap()
                    .lines()
                    .filter_map(|l| l.rsplitn(3, ',').nth(2).map(str::to_string))
                    .filter(|p| !ignored(Path::new(p)))
                    .collect()
            };
            assert_eq!(paths(&a), paths(&b), "{}", relative.display());
        } else if name != "INSTALLER" && name != "pyvenv.cfg" {
            assert!(
                in_common(std::fs::read(&a).unwrap()) == std::fs::read(&b).unwrap(),
                "{} differs",
                relative.display()
            );
        }
        compared += 1;
    }
    assert!(compared >= 20, "only {compared} files compared");
}
