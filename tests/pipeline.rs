//! The real pipeline: `scripts/pipeline.sh` runs cibuildwheel 4.3.5 on examples/uwsgi-wheels
//! (uWSGI 2.0.31 from PyPI as its ./uwsgi) through podman in the manylinux stand-in of
//! `scripts/standin/build.sh` (CPython 3.9, 3.11 and 3.13 compiled from source the manylinux
//! way, non-PIC, their archives only in the tarball), the example's before-build,
//! repair-wheel-command and test-command as the docs give them. Each wheel is then installed
//! into a venv of another distribution's build of the same minor (Debian bullseye's python3.9,
//! bookworm's python3.11, trixie's python3.13, in debootstrapped roots where no build prefix
//! exists) and its `venv/bin/uwsgi` serves an app importing 31 extension modules on 127.0.0.1.
//! The control: the same pipeline without `patch_uwsgi verify`/`apply` fails to link.
//! Slow the first time (the stand-in is built, about 11 - 18 minutes on 2 cores); cached after.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// `scripts/NAME ARGS` with `envs`: (success, stdout, stdout + stderr).
fn script(name: &str, args: &[&std::ffi::OsStr], envs: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(support::repo().join("scripts").join(name));
    command.args(args);
    for (key, value) in envs {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    let (stdout, stderr) = support::texts(&out);
    let said = format!("{stdout}{stderr}");
    (out.status.success(), stdout, said)
}

/// The last `n` bytes of a long log, for failure messages.
fn tail(text: &str, n: usize) -> &str {
    let start = text.len().saturating_sub(n);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    &text[start..]
}

/// Run `command` in `root` (a private mount namespace with /proc, then chroot).
fn in_root(root: &Path, command: &str) -> Command {
    let mut c = Command::new("unshare");
    c.args(["-m", "sh", "-c"]).arg(format!(
        "mount -t proc proc '{}/proc' && exec chroot '{}' /bin/sh -c '{command}'",
        root.display(),
        root.display()
    ));
    c
}

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
            ("PIPELINE_CONTROL", "1"),
            ("PIPELINE_BUILD", "cp311-manylinux_x86_64"),
        ],
    );
    assert!(!ok, "the control built: {}", tail(&said, 3000));
    assert!(
        said.contains("cannot find -lpython3.11"),
        "{}",
        tail(&said, 3000)
    );

    // Users' machines: another build of each minor, no /opt/_internal there.
    for (tag, suite, python) in USERS {
        let (ok, root, said) = script(
            "users-root.sh",
            &[std::ffi::OsStr::new(suite), std::ffi::OsStr::new(python)],
            &[],
        );
        assert!(ok, "users-root.sh {suite}: {}", tail(&said, 3000));
        let root = PathBuf::from(root.trim());
        assert!(!root.join("opt/_internal").exists());
        let wheel = built
            .iter()
            .find(|w| w.to_string_lossy().contains(&format!("-{tag}-")))
            .unwrap();
        let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::copy(wheel, root.join("tmp").join(&name)).unwrap();
        let install = in_root(
            &root,
            &format!(
                "rm -rf /venv && {python} -m venv /venv && /venv/bin/pip install -q --no-deps --no-index /tmp/{name}"
            ),
        )
        .output()
        .unwrap();
        assert!(
            install.status.success(),
            "{suite}: {:?}",
            support::texts(&install)
        );
        let modules: Vec<&str> = support::uwsgi::MODULES
            .iter()
            .chain(WITH_LIBRARIES)
            .copied()
            .collect();
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
                 \x20   return [json.dumps({{'version': '%d.%d' % sys.version_info[:2], 'prefix': sys.prefix, 'files': files}}).encode()]\n"
            ),
        )
        .unwrap();
        // venv/bin/uwsgi (auditwheel's wrapper, then the executable), as users start it.
        let launcher = support::script(
            out.path(),
            &format!("uwsgi-{suite}"),
            &format!(
                "exec unshare -m sh -c 'mount -t proc proc \"$0/proc\" && exec chroot \"$0\" /venv/bin/uwsgi \"$@\"' '{}' \"$@\"\n",
                root.display()
            ),
        );
        let body = serve_with(&launcher, Path::new("/tmp/app.py"), &[]);
        let answer: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{suite}: {e}: {body}"));
        let minor = python.trim_start_matches("python");
        assert_eq!(answer["version"], minor, "{suite}");
        assert_eq!(answer["prefix"], "/venv", "{suite}");
        let files = answer["files"].as_object().unwrap();
        assert_eq!(files.len(), modules.len(), "{suite}: {files:?}");
        for (module, file) in files {
            let file = file.as_str().unwrap();
            assert!(
                file.starts_with(&format!(
                    "/venv/lib/{python}/site-packages/patch_uwsgi_runtime/{python}/lib-dynload/"
                )),
                "{suite}: {module} from {file}"
            );
        }
    }
}
