//! The real pipeline: `scripts/pipeline.sh` runs cibuildwheel 4.3.5 on examples/uwsgi-wheels
//! (uWSGI 2.0.31 from PyPI as its ./uwsgi) through podman in the manylinux stand-in of
//! `scripts/standin/build.sh` (CPython 3.9, 3.11 and 3.13 compiled from source the manylinux
//! way, non-PIC, their archives only in the tarball), the example's before-build,
//! repair-wheel-command and test-command as the docs give them. Each wheel is then installed
//! into a venv of another distribution's build of the same minor (Debian bullseye's python3.9,
//! bookworm's python3.11, trixie's python3.13, in debootstrapped roots where no build prefix
//! exists) and its `venv/bin/uwsgi` serves an app importing 31 extension modules on 127.0.0.1.
//! The controls: the same pipeline without `patch_uwsgi verify`/`apply` fails to link, and a
//! wheel built without `bundle` does not start on bookworm's python3.11. A `bundle --stdlib`
//! wheel serves in a root with no Python at all.
//! Slow the first time (the stand-in is built, about 11 - 18 minutes on 2 cores); cached after.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::roots::{in_root, launcher_in, run_script as script, tail, users_root};
use support::uwsgi::serve_with;

/// Extension modules the app imports beyond the shared test set ([`support::uwsgi::MODULES`],
/// which distributions compile into their interpreter): those needing libraries auditwheel
/// grafts.
const WITH_LIBRARIES: &[&str] = &[
    "_ssl", "_hashlib", "_ctypes", "_sqlite3", "_decimal", "_lzma", "_bz2", "_uuid", "pyexpat",
];

/// (wheel tag, Debian suite, that suite's Python of the same minor)
const USERS: &[(&str, &str, &str)] = &[
    ("cp39", "bullseye", "python3.9"),
    ("cp311", "bookworm", "python3.11"),
    ("cp313", "trixie", "python3.13"),
];

#[test]
fn cibuildwheel_in_the_manylinux_stand_in_and_the_wheels_serve_on_other_distributions() {
    if !support::running_as_root() {
        support::missing("root, for podman, debootstrap and chroot");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let wheels = out.path().join("wheelhouse");
    let (ok, _, said) = script("pipeline.sh", &[wheels.as_os_str()], &[]);
    assert!(ok, "scripts/pipeline.sh failed:\n{}", tail(&said, 6000));
    let built: Vec<PathBuf> = std::fs::read_dir(&wheels)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(built.len(), 3, "{built:?}");
    for (tag, _, _) in USERS {
        let name = format!("-{tag}-{tag}-manylinux_2_31_x86_64.whl");
        assert!(
            built.iter().any(|w| w.to_string_lossy().ends_with(&name)),
            "no {name} in {built:?}"
        );
    }
    // Each Python's own test-command (verify --wheel) ran in the container and passed.
    let passed = said
        .lines()
        .filter(|l| l.contains("/venv/bin/uwsgi -> ") && l.ends_with("extension modules; 0 failed"))
        .count();
    assert_eq!(passed, 3, "{}", tail(&said, 6000));

    // The control: without patch-uwsgi the link fails as users saw it.
    let control = out.path().join("control");
    let (ok, _, said) = script(
        "pipeline.sh",
        &[control.as_os_str()],
        &[
            ("PIPELINE_VARIANT", "without-apply"),
            ("PIPELINE_BUILD", "cp311-manylinux_x86_64"),
        ],
    );
    assert!(!ok, "the control built: {}", tail(&said, 3000));
    assert!(
        said.contains("cannot find -lpython3.11"),
        "{}",
        tail(&said, 3000)
    );

    let modules: Vec<&str> = support::uwsgi::MODULES
        .iter()
        .chain(WITH_LIBRARIES)
        .copied()
        .collect();
    // Users' machines: another build of each minor, no /opt/_internal there.
    for (tag, suite, python) in USERS {
        let root = users_root(suite, python, "");
        let wheel = wheel_for(&built, tag);
        install_in_venv(&root, python, wheel);
        write_app(&root, &modules);
        // venv/bin/uwsgi (auditwheel's wrapper, then the executable), as users start it.
        let launcher = launcher_in(
            out.path(),
            &format!("uwsgi-{suite}"),
            &root,
            "/venv/bin/uwsgi",
        );
        let answer = serve_app(&launcher, suite);
        let minor = python.trim_start_matches("python");
        assert_eq!(answer["version"], minor, "{suite}");
        assert_eq!(answer["prefix"], "/venv", "{suite}");
        assert_modules_from(
            &answer,
            &modules,
            &format!("/venv/lib/{python}/site-packages/patch_uwsgi_runtime/{python}/lib-dynload/"),
            suite,
        );
    }

    // The control for users' machines: linked by patch-uwsgi but not bundled, the wheel does
    // not start on bookworm's python3.11 (its stdlib is not where the build prefix was).
    let unbundled = out.path().join("unbundled");
    let (ok, _, said) = script(
        "pipeline.sh",
        &[unbundled.as_os_str()],
        &[
            ("PIPELINE_VARIANT", "without-bundle"),
            ("PIPELINE_BUILD", "cp311-manylinux_x86_64"),
        ],
    );
    assert!(ok, "the unbundled build: {}", tail(&said, 6000));
    let root = users_root("bookworm", "python3.11", "");
    install_in_venv(&root, "python3.11", &only_wheel(&unbundled));
    let launcher = launcher_in(out.path(), "uwsgi-unbundled", &root, "/venv/bin/uwsgi");
    let started = Command::new("timeout")
        .arg("60")
        .arg(&launcher)
        .args(["--pyrun", "/tmp/app.py"])
        .output()
        .unwrap();
    let (stdout, stderr) = support::texts(&started);
    assert!(
        !started.status.success() && stderr.contains("No module named"),
        "the unbundled wheel on bookworm's python3.11: {:?}\n{stdout}{stderr}",
        started.status
    );

    // `bundle --stdlib`: the wheel serves in a root with no Python at all, unpacked (there is
    // no pip there), started as its executable.
    let stdlib = out.path().join("stdlib");
    let (ok, _, said) = script(
        "pipeline.sh",
        &[stdlib.as_os_str()],
        &[
            ("PIPELINE_VARIANT", "stdlib"),
            ("PIPELINE_BUILD", "cp313-manylinux_x86_64"),
        ],
    );
    assert!(ok, "the --stdlib build: {}", tail(&said, 6000));
    let root = users_root("trixie", "none", "");
    let python_there = std::fs::read_dir(root.join("usr/bin"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("python"));
    assert_eq!(python_there, None, "the root without Python has one");
    let site = root.join("opt/app");
    let _ = std::fs::remove_dir_all(&site);
    let unzip = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(only_wheel(&stdlib))
        .arg(&site)
        .output()
        .unwrap();
    assert!(unzip.status.success(), "{:?}", support::texts(&unzip));
    write_app(&root, &modules);
    // auditwheel moved the executable to <dist>.scripts/ (my_uwsgi.scripts/uwsgi here).
    let scripts = std::fs::read_dir(&site)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.ends_with(".scripts"))
        .expect("a <dist>.scripts folder in the repaired wheel");
    // (Python's zipfile keeps no file modes; pip would make it executable.)
    let program = site.join(&scripts).join("uwsgi");
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let launcher = launcher_in(
        out.path(),
        "uwsgi-no-python",
        &root,
        &format!("/opt/app/{scripts}/uwsgi"),
    );
    let answer = serve_app(&launcher, "trixie, no Python");
    assert_eq!(answer["version"], "3.13");
    let bundle = "/opt/app/patch_uwsgi_runtime/python3.13";
    assert_eq!(answer["prefix"], bundle, "the bundle is the home");
    let json = answer["json"].as_str().unwrap();
    assert!(
        json.starts_with(&format!("{bundle}/lib/python313.zip/")),
        "json from {json}"
    );
    assert_modules_from(
        &answer,
        &modules,
        &format!("{bundle}/lib-dynload/"),
        "no Python",
    );
}

/// The wheel of `built` for CPython tag `tag` (cp311).
fn wheel_for<'a>(built: &'a [PathBuf], tag: &str) -> &'a Path {
    built
        .iter()
        .find(|w| w.to_string_lossy().contains(&format!("-{tag}-")))
        .unwrap_or_else(|| panic!("no {tag} wheel in {built:?}"))
}

/// The one wheel in `dir`.
fn only_wheel(dir: &Path) -> PathBuf {
    let wheels: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    assert_eq!(wheels.len(), 1, "{wheels:?}");
    wheels.into_iter().next().unwrap()
}

/// A fresh `/venv` of the root's `python`, with `wheel` installed by its pip (`pip install` of
/// the file, as users install it).
fn install_in_venv(root: &Path, python: &str, wheel: &Path) {
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::copy(wheel, root.join("tmp").join(&name)).unwrap();
    let install = in_root(
        root,
        &format!(
            "rm -rf /venv && {python} -m venv /venv && /venv/bin/pip install -q --no-deps --no-index /tmp/{name}"
        ),
    )
    .output()
    .unwrap();
    assert!(
        install.status.success(),
        "{}: {:?}",
        root.display(),
        support::texts(&install)
    );
}

/// `/tmp/app.py` in `root`: imports `modules` and answers with the Python version, sys.prefix,
/// where each module came from and where json (a stdlib module in a file) came from.
fn write_app(root: &Path, modules: &[&str]) {
    std::fs::write(
        root.join("tmp/app.py"),
        format!(
            "import json, sys\n\
             NAMES = {modules:?}\n\
             for name in NAMES:\n\
             \x20   __import__(name)\n\
             def application(environ, start_response):\n\
             \x20   files = dict((n, getattr(sys.modules[n], '__file__', 'built-in')) for n in NAMES)\n\
             \x20   start_response('200 OK', [('Content-Type', 'application/json')])\n\
             \x20   return [json.dumps({{'version': '%d.%d' % sys.version_info[:2], 'prefix': sys.prefix, 'json': json.__file__, 'files': files}}).encode()]\n"
        ),
    )
    .unwrap();
}

/// The JSON answer of `/tmp/app.py` served by `launcher` on 127.0.0.1.
fn serve_app(launcher: &Path, what: &str) -> serde_json::Value {
    let body = serve_with(launcher, Path::new("/tmp/app.py"), &[]);
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"))
}

/// Every one of `modules` was imported, each from a file under `folder`.
fn assert_modules_from(answer: &serde_json::Value, modules: &[&str], folder: &str, what: &str) {
    let files = answer["files"].as_object().unwrap();
    assert_eq!(files.len(), modules.len(), "{what}: {files:?}");
    for (module, file) in files {
        let file = file.as_str().unwrap();
        assert!(file.starts_with(folder), "{what}: {module} from {file}");
    }
}
