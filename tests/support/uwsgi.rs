//! Real uWSGI builds for the end-to-end tests: sdists from PyPI (checked against recorded
//! sha256 values, cached in the project's cache), static-only interpreters whose archive is only in a
//! manylinux-style tarball, and a built binary serving a WSGI app on 127.0.0.1.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{texts, StaticPython};

/// sdist sha256 values, as in vendor-samples/README.md.
pub const SDISTS: &[(&str, &str)] = &[
    (
        "2.0.19.1",
        "faa85e053c0b1be4d5585b0858d3a511d2cd10201802e8676060fd0a109e5869",
    ),
    (
        "2.0.20",
        "88ab9867d8973d8ae84719cf233b7dafc54326fcaec89683c3f9f77c002cdff9",
    ),
    (
        "2.0.21",
        "35a30d83791329429bc04fe44183ce4ab512fcf6968070a7bfba42fc5a0552a9",
    ),
    (
        "2.0.22",
        "4cc4727258671ac5fa17ab422155e9aaef8a2008ebb86e4404b66deaae965db2",
    ),
    (
        "2.0.23",
        "0cafda0c16f921db7fe42cfaf81b167cf884ee17350efbdd87d1ecece2d7de37",
    ),
    (
        "2.0.27",
        "3ee5bfb7e6e9c93478c22aa8183eef35b95a2d5b14cca16172e67f135565c458",
    ),
    (
        "2.0.26",
        "86e6bfcd4dc20529665f5b7777193cdc48622fb2c59f0a7f1e3dc32b3882e7f9",
    ),
    (
        "2.0.28",
        "79ca1891ef2df14508ab0471ee8c0eb94bd2d51d03f32f90c4bbe557ab1e99d0",
    ),
    (
        "2.0.29",
        "6bd150ae60d0d9947429ea7dc8e5f868de027e5eb38355fb613b9413732c432f",
    ),
    (
        "2.0.30",
        "c12aa652124f062ac216077da59f6d247bd7ef938234445881552e58afb1eb5f",
    ),
    (
        "2.0.31",
        "e8f8b350ccc106ff93a65247b9136f529c14bf96b936ac5b264c6ff9d0c76257",
    ),
];

/// Download (once; cached in `uwsgi-sdists` of the project's cache) and verify a uWSGI sdist,
/// then unpack it into `into`.
pub fn uwsgi_source(version: &str, into: &Path) -> Option<PathBuf> {
    let (_, sha) = SDISTS
        .iter()
        .find(|(v, _)| *v == version)
        .expect("known sdist");
    let cache = super::project_cache().join("uwsgi-sdists").join(version);
    let find = || {
        std::fs::read_dir(&cache)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
    };
    if find().is_none() {
        std::fs::create_dir_all(&cache).unwrap();
        // Into a folder of its own first, then renamed into the cache: the cache outlives the
        // clone, and an interrupted download must not stay there.
        let partial = tempfile::tempdir_in(&cache).unwrap();
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
            .arg(partial.path())
            .arg(format!("uwsgi=={version}"))
            .output()
            .unwrap();
        if !out.status.success() {
            super::missing(&format!(
                "the uWSGI {version} sdist from PyPI ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        for entry in std::fs::read_dir(partial.path()).unwrap().flatten() {
            std::fs::rename(entry.path(), cache.join(entry.file_name())).unwrap();
        }
    }
    let sdist = find().expect("sdist downloaded");
    let digest = format!("{:x}", Sha256::digest(std::fs::read(&sdist).unwrap()));
    assert_eq!(
        &digest,
        sha,
        "{} does not match the recorded sha256 (delete it to download it again)",
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
    // The 2.0.19.1 sdist has no top folder: its files land in `into` itself.
    if into.join("uwsgiconfig.py").is_file() {
        return Some(into.to_path_buf());
    }
    Some(
        std::fs::read_dir(into)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("uwsgiconfig.py").is_file())
            .expect("unpacked tree"),
    )
}

/// `python uwsgiconfig.py --build pyonly` in `tree`: (success, stdout + stderr).
pub fn build(python: &Path, tree: &Path) -> (bool, String) {
    let mut command = Command::new(python);
    command
        .current_dir(tree)
        .args(["uwsgiconfig.py", "--build", "pyonly"])
        .env("CPUCOUNT", "2");
    let out = super::tools::with_compiler_cache(&mut command)
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

/// A manylinux-like root whose tarball holds only `py`'s archive, as `cpython-X.Y.Z/lib/NAME`.
pub fn manylinux_root(py: &StaticPython) -> tempfile::TempDir {
    let member = format!(
        "cpython-{}/lib/{}",
        py.version,
        py.archive.file_name().unwrap().to_string_lossy()
    );
    super::manylinux_root(&[(&member, &py.archive)])
}

/// `patch_uwsgi apply TREE --python PY --manylinux-root ROOT`, asserting success; returns stdout.
pub fn apply_from_tarball(py: &StaticPython, tree: &Path, root: &Path) -> String {
    let cache = tempfile::tempdir().unwrap();
    let out = super::apply_command(tree, &py.python)
        .env("XDG_CACHE_HOME", cache.path())
        .arg("--manylinux-root")
        .arg(root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    texts(&out).0
}

/// Extension modules the test app imports (lib-dynload in pyenv builds, built in by Debian).
pub const MODULES: &[&str] = &[
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

/// `dir/app.py`: a WSGI app importing [`MODULES`] that answers its Python's `X.Y.Z`.
pub fn app(dir: &Path) -> PathBuf {
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

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start the binary on 127.0.0.1, GET /, stop it; returns the body.
pub fn serve_once(binary: &Path, app: &Path) -> String {
    serve_with(binary, app, &[])
}

/// [`serve_once`] with more uWSGI options after the usual ones.
pub fn serve_with(binary: &Path, app: &Path, options: &[&std::ffi::OsStr]) -> String {
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
        .args(options)
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

/// `dir/name`: a launcher that starts `binary` with the build interpreter of `py` out of reach,
/// as on a user's machine: a private mount namespace (`unshare -m`, root only) with tmpfs over
/// the static-only copy and over the pyenv prefix it links to. It execs, so its pid is the
/// program's.
pub fn with_build_prefix_hidden(
    py: &StaticPython,
    dir: &Path,
    binary: &Path,
    name: &str,
) -> PathBuf {
    let pyenv_prefix =
        std::fs::canonicalize(py.original.parent().unwrap().parent().unwrap()).unwrap();
    let hide = super::script(
        dir,
        &format!("{name}-hide"),
        &format!(
            "mount -t tmpfs none '{}' && mount -t tmpfs none '{}' && exec \"$@\"\n",
            py.root.path().display(),
            pyenv_prefix.display()
        ),
    );
    super::script(
        dir,
        name,
        &format!(
            "exec unshare -m '{}' '{}' \"$@\"\n",
            hide.display(),
            binary.display()
        ),
    )
}
