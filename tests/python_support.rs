//! The release table of src/recipes/support.rs, established by real builds. For every CPython
//! minor that needed a new uWSGI release: the release before fails to build (with the error the
//! table quotes) and `apply`, `check` and `verify DIR` refuse it before any build (exit 2, the first
//! release and the cibuildwheel selector named, the tree unchanged); the first release, patched
//! for a static-only interpreter, links and serves. pyenv's CPythons here; 3.14 and 3.15 are
//! Debian sid's, in a root made by `scripts/users-root.sh` (shared mode: Debian's
//! `libpython3.14.a` cannot be embedded, DOMAIN.md).

mod support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use patch_uwsgi::releases::{MinorSupport, PYTHON_SUPPORT};
use support::roots::{in_root, launcher_in, run_script, tail, users_root};
use support::uwsgi::{app, apply_from_tarball, build, manylinux_root, serve_once, uwsgi_source};
use support::{bin, python_eval, require_python, snapshot_dir, static_python, texts};

/// The table's row for `minor`.
fn row(minor: &str) -> &'static MinorSupport {
    PYTHON_SUPPORT
        .iter()
        .find(|row| row.minor == minor)
        .unwrap_or_else(|| panic!("no row for {minor} in PYTHON_SUPPORT"))
}

/// A build log with the compiler's and linker's quotes made plain (they follow the locale).
fn plain(log: &str) -> String {
    log.replace(['\u{2018}', '\u{2019}', '`'], "'")
}

/// The build of the release before `row`'s first failed, with the error the table quotes.
fn assert_stops_as_quoted(row: &MinorSupport, ok: bool, log: &str) {
    assert!(
        !ok && plain(log).contains(row.stops_on),
        "uWSGI {} for {}: expected `{}`: {}",
        row.checked_up_to,
        row.minor,
        row.stops_on,
        tail(log, 3000)
    );
}

/// `patch_uwsgi apply`, `check` and `verify DIR` with `python`: each exits 2 with one message
/// naming the release, the first one that builds and the selector; the tree is unchanged.
fn assert_refused(tree: &Path, python: &Path, row: &MinorSupport, uwsgi: &str) {
    let before = snapshot_dir(tree);
    for command in ["apply", "check", "verify"] {
        let out = bin()
            .args([
                OsStr::new(command),
                tree.as_os_str(),
                OsStr::new("--python"),
            ])
            .arg(python)
            .output()
            .unwrap();
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{command}: {stdout}{stderr}");
        let selector = format!("skip = \"cp{}-*\"", row.minor.replace('.', ""));
        let mut wanted = vec![format!("uWSGI {uwsgi}"), selector];
        wanted.extend(row.first_release.map(|first| format!("{first} or later")));
        for part in &wanted {
            assert!(
                stderr.contains(part.as_str()),
                "{command}: {part} not in {stderr}"
            );
        }
        assert_eq!(stderr.trim().lines().count(), 1, "{command}: {stderr}");
    }
    assert!(
        snapshot_dir(tree) == before,
        "a refused command changed the tree"
    );
}

/// For each minor pyenv has that needed a release of its own: the release before fails as the
/// table says and is refused; the first release, patched for the static-only interpreter,
/// links and serves. (3.12's first release, 2.0.23, links and serves in tests/e2e.rs
/// `older_text_variants_link_and_serve_with_python_312`.)
#[test]
fn each_boundary_with_pyenv_pythons() {
    for minor in ["3.10", "3.11", "3.12", "3.13"] {
        let row = row(minor);
        let Some((_, python)) = require_python(minor) else {
            return;
        };
        let work = tempfile::tempdir().unwrap();
        let (before_dir, first_dir) = (work.path().join("before"), work.path().join("first"));
        std::fs::create_dir(&before_dir).unwrap();
        std::fs::create_dir(&first_dir).unwrap();
        let Some(tree) = uwsgi_source(row.checked_up_to, &before_dir) else {
            return;
        };
        let (ok, log) = build(&python, &tree);
        assert_stops_as_quoted(row, ok, &log);
        assert_refused(&tree, &python, row, row.checked_up_to);

        // The way past the table, for a uWSGI with support backported: the refusal goes.
        let out = bin()
            .args([
                OsStr::new("check"),
                tree.as_os_str(),
                OsStr::new("--python"),
            ])
            .arg(&python)
            .arg("--no-release-check")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{:?}", texts(&out));

        let first = row
            .first_release
            .expect("pyenv minors have a first release");
        if minor == "3.12" {
            continue;
        }
        let Some(py) = static_python(minor) else {
            return;
        };
        let Some(tree) = uwsgi_source(first, &first_dir) else {
            return;
        };
        let root = manylinux_root(&py);
        apply_from_tarball(&py, &tree, root.path());
        let (ok, log) = build(&py.python, &tree);
        assert!(ok, "uWSGI {first} for {minor}: {}", tail(&log, 3000));
        let body = serve_once(&tree.join("uwsgi"), &app(work.path()));
        assert_eq!(body, py.version, "uWSGI {first} served by the wrong Python");
    }
}

/// The packages of the sid root: both newest CPythons with their headers, and a compiler.
const SID_PACKAGES: &str =
    "python3.15-dev,python3.15-venv,python3.14,python3.14-dev,python3.14-venv,gcc,libc6-dev,make";

/// Run `command` in `root` as `sh -c`: (success, stdout + stderr).
fn run_in(root: &Path, command: &str) -> (bool, String) {
    let out = in_root(root, command).output().unwrap();
    let (stdout, stderr) = texts(&out);
    (out.status.success(), format!("{stdout}{stderr}"))
}

/// uWSGI `version` unpacked under `root`'s /tmp/releases; its path inside the root.
fn release_in_root(root: &Path, version: &str) -> Option<String> {
    let into = root.join("tmp/releases").join(version);
    let _ = std::fs::remove_dir_all(&into);
    std::fs::create_dir_all(&into).unwrap();
    let tree = uwsgi_source(version, &into)?;
    Some(format!(
        "/{}",
        tree.strip_prefix(root).unwrap().to_string_lossy()
    ))
}

/// Debian sid's python3.14 and python3.15 (shared builds; their archives cannot be embedded).
#[test]
fn newest_pythons_from_debian_sid() {
    if !support::running_as_root() {
        support::missing("root, for debootstrap and chroot");
        return;
    }
    let root = users_root("sid", "python3.15", SID_PACKAGES);
    let tool = root.join("usr/local/bin/patch_uwsgi");
    std::fs::copy(env!("CARGO_BIN_EXE_patch_uwsgi"), &tool).unwrap();
    let refused = |tree: &str, python: &str| {
        run_in(
            &root,
            &format!("patch_uwsgi apply {tree} --python {python}; echo exit=$?"),
        )
    };
    let build = |tree: &str, python: &str| {
        run_in(
            &root,
            &format!("cd {tree} && CPUCOUNT=2 {python} uwsgiconfig.py --build pyonly"),
        )
    };

    for (minor, python) in [("3.14", "python3.14"), ("3.15", "python3.15")] {
        let row = row(minor);
        let Some(tree) = release_in_root(&root, row.checked_up_to) else {
            return;
        };
        let (ok, log) = build(&tree, python);
        assert_stops_as_quoted(row, ok, &log);
        let (_, said) = refused(&tree, python);
        assert!(
            said.contains("exit=2") && said.contains(&format!("cp{}-*", minor.replace('.', ""))),
            "{said}"
        );
        let Some(first) = row.first_release else {
            continue;
        };
        let Some(tree) = release_in_root(&root, first) else {
            return;
        };
        let (ok, said) = run_in(
            &root,
            &format!("patch_uwsgi apply {tree} --python {python}"),
        );
        assert!(ok && said.contains("mode shared"), "{said}");
        let (ok, log) = build(&tree, python);
        assert!(ok, "uWSGI {first} for {minor}: {}", tail(&log, 3000));
        std::fs::write(
            root.join("tmp/version_app.py"),
            "import sys\n\
             def application(environ, start_response):\n\
             \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
             \x20   return [('%d.%d' % sys.version_info[:2]).encode()]\n",
        )
        .unwrap();
        let work = tempfile::tempdir().unwrap();
        let launcher = launcher_in(work.path(), "uwsgi", &root, &format!("{tree}/uwsgi"));
        let body = support::uwsgi::serve_with(&launcher, Path::new("/tmp/version_app.py"), &[]);
        assert_eq!(body, minor, "uWSGI {first} on sid's {python}");
    }
}

/// A free-threaded CPython as a manylinux image carries its cp313t: 3.13.5 built from source
/// `--disable-gil --disable-shared` by scripts/freethreaded-python.sh, installed as
/// `cpython-3.13.5-nogil`, its archive only in the tarball. patch-uwsgi finds that archive, and
/// `apply`, `check`, `verify` and `verify DIR` refuse the interpreter before anything is built
/// (exit 2, the cause and the `cp31?t-*` selector named, the tree unchanged).
#[test]
fn free_threaded_python_is_refused_before_anything_is_built() {
    let (ok, root, said) = run_script("freethreaded-python.sh", &[], &[]);
    assert!(ok, "freethreaded-python.sh: {}", tail(&said, 3000));
    let root = PathBuf::from(root.trim());
    let prefix = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-nogil"))
        .expect("a cpython-X.Y.Z-nogil prefix");
    let python = prefix.join("bin/python3.13t");
    assert_eq!(
        python_eval(&python, "sysconfig.get_config_var('abiflags')"),
        "t"
    );
    assert_eq!(
        python_eval(&python, "sysconfig.get_config_var('Py_GIL_DISABLED')"),
        "1"
    );
    let listing = Command::new("tar")
        .arg("-tJf")
        .arg(root.join("static-libs-for-embedding-only.tar.xz"))
        .output()
        .unwrap();
    let member = format!(
        "{}/lib/libpython3.13t.a",
        prefix.file_name().unwrap().to_string_lossy()
    );
    assert!(
        texts(&listing).0.lines().any(|l| l == member),
        "{member} not in the tarball: {:?}",
        texts(&listing)
    );

    // The archive is found where manylinux keeps it.
    let cache = tempfile::tempdir().unwrap();
    let run = |args: &[&OsStr]| {
        bin()
            .args(args)
            .arg("--python")
            .arg(&python)
            .arg("--manylinux-root")
            .arg(&root)
            .env("XDG_CACHE_HOME", cache.path())
            .output()
            .unwrap()
    };
    let out = run(&[OsStr::new("locate"), OsStr::new("--json")]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "locate: {stdout}{stderr}");
    let location: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(location["free_threaded"], true, "{stdout}");
    assert!(
        location["libpython"]
            .as_str()
            .unwrap()
            .ends_with("/libpython3.13t.a"),
        "{stdout}"
    );

    let (_tmp, tree) = support::sample_tree("2.0.31");
    let before = snapshot_dir(&tree);
    let runs: [&[&OsStr]; 4] = [
        &[OsStr::new("apply"), tree.as_os_str()],
        &[OsStr::new("check"), tree.as_os_str()],
        &[OsStr::new("verify"), tree.as_os_str()],
        &[OsStr::new("verify")],
    ];
    for args in runs {
        let out = run(args);
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        for part in ["free-threaded", "skip = \"cp31?t-*\"", "3.13.5"] {
            assert!(stderr.contains(part), "{args:?}: {part} not in {stderr}");
        }
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
    }
    assert!(
        snapshot_dir(&tree) == before,
        "a refused command changed the tree"
    );
}
