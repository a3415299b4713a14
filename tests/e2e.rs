//! End to end: a real uWSGI sdist from PyPI, a static-only CPython whose archive is only in a
//! fake manylinux tarball. The stock build fails to link; after `patch_uwsgi apply` it links,
//! carries no libpython NEEDED and no RPATH, serves a WSGI app on 127.0.0.1 that imports
//! lib-dynload modules, and a second Python rebuilds from the same tree.

mod support;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::{bin, static_python, texts, StaticPython};

/// sdist sha256 values, as in vendor-samples/README.md.
const SDISTS: &[(&str, &str)] = &[
    (
        "2.0.23",
        "0cafda0c16f921db7fe42cfaf81b167cf884ee17350efbdd87d1ecece2d7de37",
    ),
    (
        "2.0.27",
        "3ee5bfb7e6e9c93478c22aa8183eef35b95a2d5b14cca16172e67f135565c458",
    ),
    (
        "2.0.28",
        "79ca1891ef2df14508ab0471ee8c0eb94bd2d51d03f32f90c4bbe557ab1e99d0",
    ),
    (
        "2.0.31",
        "e8f8b350ccc106ff93a65247b9136f529c14bf96b936ac5b264c6ff9d0c76257",
    ),
];

/// Download (once; cached under target/) and verify a uWSGI sdist, then unpack it into `into`.
fn uwsgi_source(version: &str, into: &Path) -> Option<PathBuf> {
    let (_, sha) = SDISTS
        .iter()
        .find(|(v, _)| *v == version)
        .expect("known sdist");
    let cache = support::repo().join("target/e2e-sdists").join(version);
    let find = || {
        std::fs::read_dir(&cache)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
    };
    if find().is_none() {
        std::fs::create_dir_all(&cache).unwrap();
        let out = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
            ])
            .arg(&cache)
            .arg(format!("uwsgi=={version}"))
            .output()
            .unwrap();
        if !out.status.success() {
            support::missing(&format!(
                "the uWSGI {version} sdist from PyPI ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
    }
    let sdist = find().expect("sdist downloaded");
    let digest = format!("{:x}", Sha256::digest(std::fs::read(&sdist).unwrap()));
    assert_eq!(
        &digest,
        sha,
        "{} does not match the recorded sha256",
        sdist.display()
    );
    assert!(Command::new("tar")
        .arg("-xzf")
        .arg(&sdist)
        .arg("-C")
        .arg(into)
        .status()
        .unwrap()
        .success());
    Some(
        std::fs::read_dir(into)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("uwsgiconfig.py").is_file())
            .expect("unpacked tree"),
    )
}

fn build(python: &Path, tree: &Path) -> (bool, String) {
    let out = Command::new(python)
        .current_dir(tree)
        .args(["uwsgiconfig.py", "--build", "pyonly"])
        .env("CPUCOUNT", "2")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn manylinux_root(py: &StaticPython) -> tempfile::TempDir {
    let member = format!(
        "cpython-{}/lib/{}",
        py.version,
        py.archive.file_name().unwrap().to_string_lossy()
    );
    support::manylinux_root(&[(&member, &py.archive)])
}

/// `patch_uwsgi apply TREE --python PY --manylinux-root ROOT`, asserting success; returns stdout.
fn apply_from_tarball(py: &StaticPython, tree: &Path, root: &Path) -> String {
    let cache = tempfile::tempdir().unwrap();
    let out = support::apply_command(tree, &py.python)
        .env("XDG_CACHE_HOME", cache.path())
        .arg("--manylinux-root")
        .arg(root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    texts(&out).0
}

const MODULES: &[&str] = &[
    "math",
    "cmath",
    "_socket",
    "_json",
    "_struct",
    "select",
    "_datetime",
    "array",
    "binascii",
    "zlib",
    "_csv",
    "_bisect",
    "_heapq",
    "_random",
    "_pickle",
    "_posixsubprocess",
    "fcntl",
    "mmap",
    "unicodedata",
    "_contextvars",
    "_queue",
    "_statistics",
];

fn app(dir: &Path) -> PathBuf {
    let path = dir.join("app.py");
    let imports = MODULES.join(", ");
    std::fs::write(
        &path,
        format!(
            "import sys\nimport {imports}\n\
             def application(environ, start_response):\n\
             \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
             \x20   return [('%d.%d.%d' % tuple(sys.version_info[:3])).encode('ascii')]\n"
        ),
    )
    .unwrap();
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start the binary on 127.0.0.1, GET /, stop it; returns the body.
fn serve_once(binary: &Path, app: &Path) -> String {
    let port = free_port();
    let mut child = Command::new(binary)
        .args([
            "--http-socket",
            &format!("127.0.0.1:{port}"),
            "--master",
            "--processes",
            "1",
            "--die-on-term",
            "--wsgi-file",
        ])
        .arg(app)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut body = None;
    while started.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("uwsgi exited ({status}): {err}");
        }
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            stream
                .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                .unwrap();
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            if response.starts_with("HTTP/1.") {
                body = Some(response);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SIGTERM (die-on-term), then a bounded wait, then SIGKILL.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let stopped = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if stopped.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("uwsgi did not stop within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let response = body.expect("no HTTP answer within 20 s");
    assert!(
        response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
        "{response}"
    );
    response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

fn readelf_dynamic(binary: &Path) -> String {
    support::readelf("-d", binary)
}

#[test]
fn static_only_python_links_serves_and_rebuilds_for_a_second_python() {
    let Some(py312) = static_python("3.12") else {
        return;
    };
    let Some(py38) = static_python("3.8") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let Some(tree) = uwsgi_source("2.0.31", work.path()) else {
        return;
    };

    // The failure being fixed.
    let (ok, log) = build(&py312.python, &tree);
    assert!(!ok, "the stock build linked: {log}");
    assert!(
        log.contains("cannot find -lpython3.12"),
        "{}",
        &log[log.len().saturating_sub(2000)..]
    );

    for py in [&py312, &py38] {
        let root = manylinux_root(py);
        let report = apply_from_tarball(py, &tree, root.path());
        assert!(report.contains("mode static"), "{report}");
        let started = Instant::now();
        let (ok, log) = build(&py.python, &tree);
        assert!(
            ok,
            "patched build failed for {}: {}",
            py.version,
            &log[log.len().saturating_sub(3000)..]
        );
        eprintln!(
            "uWSGI 2.0.31 built for {} in {:.1} s",
            py.version,
            started.elapsed().as_secs_f32()
        );

        let binary = tree.join("uwsgi");
        let dynamic = readelf_dynamic(&binary);
        assert!(!dynamic.contains("libpython"), "{dynamic}");
        assert!(
            !dynamic.contains("RPATH") && !dynamic.contains("RUNPATH"),
            "{dynamic}"
        );
        let archives = Command::new("nm").arg("-D").arg(&binary).output().unwrap();
        assert!(
            String::from_utf8_lossy(&archives.stdout).contains(" T Py_Initialize"),
            "libpython is not inside the binary"
        );

        // verify's seconds-long check agrees with the minutes-long build.
        let out = bin()
            .args([OsStr::new("verify"), OsStr::new("--python")])
            .arg(&py.python)
            .arg("--manylinux-root")
            .arg(root.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "verify: {:?}", texts(&out));

        let body = serve_once(&binary, &app(work.path()));
        assert_eq!(body, py.version, "served by the wrong Python");
        std::fs::remove_file(&binary).unwrap();
    }
}

#[test]
fn older_text_variants_link_and_serve_with_python_312() {
    // 2.0.23 and 2.0.27 append a missing archive path; 2.0.28 falls back to -lpython.
    let Some(py) = static_python("3.12") else {
        return;
    };
    let root = manylinux_root(&py);
    for (version, stock_error) in [
        ("2.0.23", "libpython3.12.a: No such file"),
        ("2.0.27", "libpython3.12.a: No such file"),
        ("2.0.28", "cannot find -lpython3.12"),
    ] {
        let work = tempfile::tempdir().unwrap();
        let Some(tree) = uwsgi_source(version, work.path()) else {
            return;
        };
        // The previous version's apply extracted the archive into the prefix, where stock
        // 2.0.28+ would find it through -L: take it away to show the container's situation.
        let _ = std::fs::remove_file(py.prefix.join("lib/libpython3.12.a"));
        let (ok, log) = build(&py.python, &tree);
        assert!(
            !ok && log.contains(stock_error),
            "{version} stock: {}",
            &log[log.len().saturating_sub(2000)..]
        );
        apply_from_tarball(&py, &tree, root.path());
        let (ok, log) = build(&py.python, &tree);
        assert!(
            ok,
            "{version} patched: {}",
            &log[log.len().saturating_sub(3000)..]
        );
        let dynamic = readelf_dynamic(&tree.join("uwsgi"));
        assert!(
            !dynamic.contains("libpython")
                && !dynamic.contains("RPATH")
                && !dynamic.contains("RUNPATH"),
            "{dynamic}"
        );
        assert_eq!(
            serve_once(&tree.join("uwsgi"), &app(work.path())),
            py.version,
            "{version}"
        );
    }
}

#[test]
fn nolib_shared_plugin_builds_without_libpython() {
    // A shared python plugin (`--plugin`, as pyuwsgi-style builds make) resolves libpython
    // from the process that loads it: nothing of libpython may be linked into it.
    let Some(py) = static_python("3.12") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let Some(tree) = uwsgi_source("2.0.31", work.path()) else {
        return;
    };
    let build_plugin = || {
        let out = Command::new(&py.python)
            .current_dir(&tree)
            .args(["uwsgiconfig.py", "--plugin", "plugins/python"])
            .output()
            .unwrap();
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), log)
    };
    let _ = std::fs::remove_file(py.prefix.join("lib/libpython3.12.a"));
    let (ok, log) = build_plugin();
    assert!(
        !ok && log.contains("cannot find -lpython3.12"),
        "stock: {}",
        &log[log.len().saturating_sub(2000)..]
    );

    // nolib needs no archive: no manylinux root, no --libpython.
    let out = support::apply_command(&tree, &py.python)
        .args(["--mode", "nolib"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    let (ok, log) = build_plugin();
    assert!(ok, "patched: {}", &log[log.len().saturating_sub(3000)..]);
    let plugin = tree.join("python_plugin.so");
    let dynamic = readelf_dynamic(&plugin);
    assert!(!dynamic.contains("libpython"), "{dynamic}");
    assert!(
        !dynamic.contains("RPATH") && !dynamic.contains("RUNPATH"),
        "{dynamic}"
    );
    let symbols = Command::new("nm").arg("-D").arg(&plugin).output().unwrap();
    let symbols = String::from_utf8_lossy(&symbols.stdout);
    assert!(
        symbols.lines().any(|l| l.trim() == "U Py_Initialize"),
        "Py_Initialize should be left to the loading process"
    );
    assert!(
        !symbols.contains(" T PyObject_Call"),
        "libpython's code is inside the plugin"
    );
}
