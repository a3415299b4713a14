//! Helpers shared by the integration tests: real interpreters, static-only copies of them,
//! temp copies of vendored uWSGI trees, and running the real binary.
#![allow(dead_code)]

pub mod roots;
pub mod tools;
pub mod uwsgi;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The one `.whl` in `dir` (asserted).
pub fn only_wheel(dir: &Path) -> PathBuf {
    let wheels: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    assert_eq!(wheels.len(), 1, "{wheels:?}");
    wheels.into_iter().next().unwrap()
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The project's cache outside the clone, as the scripts find it (PATCH_UWSGI_CACHE, else
/// `patch-uwsgi-pipeline` in XDG_CACHE_HOME or ~/.cache): what takes minutes to build and
/// depends only on its inputs.
pub fn project_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("PATCH_UWSGI_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    base.join("patch-uwsgi-pipeline")
}

/// Every vendored uWSGI version, oldest first.
pub fn sample_versions() -> Vec<String> {
    let mut versions: Vec<String> = std::fs::read_dir(repo().join("vendor-samples"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("uwsgiconfig.py").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    versions.sort_by_key(|v| {
        v.split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    assert!(
        versions.len() >= 17,
        "vendor-samples holds {} trees",
        versions.len()
    );
    versions
}

/// Copy a directory tree (files and folders only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A temp copy of `vendor-samples/<version>`; the tree is `<tempdir>/uwsgi`.
pub fn sample_tree(version: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("uwsgi");
    copy_tree(&repo().join("vendor-samples").join(version), &tree);
    (dir, tree)
}

/// Every file under `dir` with its bytes, sorted, for before/after comparisons.
pub fn snapshot_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                walk(base, &path, out);
            } else {
                out.push((
                    path.strip_prefix(base).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap_or_default(),
                ));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skip (with a printed reason) outside CI; fail under `CI=true`.
pub fn missing(what: &str) {
    if in_ci() {
        panic!("CI=true and {what} is missing: this test must not be skipped in CI");
    }
    eprintln!("SKIPPED: {what} is missing");
}

/// The pyenv root.
pub fn pyenv_root() -> PathBuf {
    std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".pyenv")
        })
}

/// The pyenv CPython whose version starts with `minor` (e.g. "3.12"), as `(X.Y.Z, bin/pythonX.Y)`.
pub fn pyenv_python(minor: &str) -> Option<(String, PathBuf)> {
    let versions = std::fs::read_dir(pyenv_root().join("versions")).ok()?;
    let mut found: Vec<String> = versions
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|v| {
            v.strip_prefix(minor)
                .is_some_and(|rest| rest.starts_with('.'))
                && v.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
        .collect();
    found.sort();
    let version = found.pop()?;
    let exe = pyenv_root()
        .join("versions")
        .join(&version)
        .join("bin")
        .join(format!("python{minor}"));
    exe.is_file().then_some((version, exe))
}

/// Like [`pyenv_python`], but records a skip (or fails in CI) when it is missing.
pub fn require_python(minor: &str) -> Option<(String, PathBuf)> {
    let found = pyenv_python(minor);
    if found.is_none() {
        missing(&format!("pyenv CPython {minor}"));
    }
    found
}

/// A folder whose path is the same from run to run, `<tmp>/patch-uwsgi-<name>-<slot>`: the
/// first slot no other test holds (a lock on `<folder>.lock`, kept while this lives) is
/// emptied and taken, and removed on drop. Compilers then see the same include paths in
/// every run, and ccache finds what it compiled before (tests/support/tools.rs).
pub struct StableDir {
    path: PathBuf,
    _lock: std::fs::File,
}

impl StableDir {
    /// Take the first free slot for `name`.
    pub fn new(name: &str) -> StableDir {
        let tmp = std::env::temp_dir().canonicalize().unwrap();
        for slot in 0.. {
            let path = tmp.join(format!("patch-uwsgi-{name}-{slot}"));
            let lock_path = tmp.join(format!("patch-uwsgi-{name}-{slot}.lock"));
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .unwrap_or_else(|e| panic!("{}: {e}", lock_path.display()));
            if lock.try_lock().is_err() {
                continue;
            }
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("{}: {e}", path.display()),
            }
            std::fs::create_dir(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            return StableDir { path, _lock: lock };
        }
        unreachable!("slots are unbounded")
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StableDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A static-only interpreter made from a pyenv CPython (see tests/support/make_static_prefix.py).
pub struct StaticPython {
    /// Holds everything; removed on drop. At a stable path: see [`StableDir`].
    pub root: StableDir,
    /// `X.Y.Z`.
    pub version: String,
    /// The copied executable, `<root>/cpython-X.Y.Z/bin/pythonX.Y`.
    pub python: PathBuf,
    /// The new prefix.
    pub prefix: PathBuf,
    /// The real archive of the original interpreter (not inside the new prefix).
    pub archive: PathBuf,
    /// The original interpreter.
    pub original: PathBuf,
}

/// Build a static-only copy of the pyenv CPython `minor`.
pub fn static_python(minor: &str) -> Option<StaticPython> {
    let (version, original) = require_python(minor)?;
    let root = StableDir::new(&format!("static-{version}"));
    let name = format!("cpython-{version}");
    let out = Command::new(&original)
        .arg(repo().join("tests/support/make_static_prefix.py"))
        .arg(root.path())
        .arg(&name)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make_static_prefix.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let python = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let archive = libpl_archive(&original);
    assert!(
        archive.is_file(),
        "{} has no archive at {}",
        original.display(),
        archive.display()
    );
    let prefix = root.path().canonicalize().unwrap().join(&name);
    Some(StaticPython {
        root,
        version,
        python,
        prefix,
        archive,
        original,
    })
}

/// The real `patch_uwsgi` binary.
pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_patch_uwsgi"));
    cmd.env_remove("PATCH_UWSGI_LIBPYTHON");
    cmd
}

/// Run the binary with `args`.
pub fn run(args: &[&std::ffi::OsStr]) -> Output {
    bin().args(args).output().unwrap()
}

/// Text of stdout and stderr.
pub fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Execute the tree's `plugins/python/uwsgiplugin.py` the way uwsgiconfig.py does (exec in a
/// fresh namespace, cwd = tree) under `python` with extra `argv` and `env`; returns the JSON
/// `{"LIBS": [...], "LDFLAGS": [...], "LD_RUN_PATH": ...}` or the failure output.
pub fn exec_plugin(
    python: &Path,
    tree: &Path,
    argv: &[&str],
    env: &[(&str, &str)],
) -> Result<serde_json::Value, String> {
    const RUNNER: &str = "import json, os, sys\n\
        sys.argv = ['uwsgiconfig.py'] + sys.argv[1:]\n\
        up = {}\n\
        exec(open('plugins/python/uwsgiplugin.py').read(), up)\n\
        sys.stdout.write(json.dumps({'LIBS': up['LIBS'], 'LDFLAGS': up['LDFLAGS'], 'LD_RUN_PATH': os.environ.get('LD_RUN_PATH')}))\n";
    let mut cmd = Command::new(python);
    cmd.current_dir(tree)
        .arg("-c")
        .arg(RUNNER)
        .args(argv)
        .env_remove("UWSGI_PYTHON_NOLIB")
        .env_remove("LD_RUN_PATH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "bad runner output {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        }))
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A manylinux-like root: `static-libs-for-embedding-only.tar.xz` made with the system `tar`
/// from `(member, source file)` pairs, in the order given.
pub fn manylinux_root(members: &[(&str, &Path)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let stage = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for (member, source) in members {
        let dest = stage.path().join(member);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(source, &dest).unwrap();
        names.push(member.split('/').next().unwrap().to_string());
    }
    names.dedup();
    let status = std::process::Command::new("tar")
        .env("XZ_OPT", "-1")
        .arg("-cJf")
        .arg(root.path().join("static-libs-for-embedding-only.tar.xz"))
        .arg("-C")
        .arg(stage.path())
        .args(&names)
        .status()
        .unwrap();
    assert!(status.success());
    root
}

/// What `python` prints for `print(<expr>)` after `import sysconfig`, trimmed.
pub fn python_eval(python: &Path, expr: &str) -> String {
    let out = Command::new(python)
        .arg("-c")
        .arg(format!("import sysconfig; print({expr})"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} -c {expr}: {}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `LIBPL/LIBRARY` of `python`: where its static archive should be.
pub fn libpl_archive(python: &Path) -> PathBuf {
    PathBuf::from(python_eval(
        python,
        "sysconfig.get_config_var('LIBPL') + '/' + sysconfig.get_config_var('LIBRARY')",
    ))
}

/// `dir/<name>`: a real non-PIC archive, as manylinux's are. It holds the members of `base`
/// (if given) plus one object compiled `-fno-pic` that takes an absolute address
/// (R_X86_64_32), so a PIE link of it fails with the relocation error.
pub fn non_pic_archive(dir: &Path, name: &str, base: Option<&Path>) -> PathBuf {
    std::fs::write(
        dir.join("nonpic.c"),
        "int patch_uwsgi_nonpic_v;\nlong patch_uwsgi_nonpic_addr(void) { return (long)&patch_uwsgi_nonpic_v; }\n",
    )
    .unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-c", "-fno-pic", "-fno-pie", "-O0", "-o"])
        .arg(dir.join("nonpic.o"))
        .arg(dir.join("nonpic.c"))
        .status()
        .unwrap();
    assert!(status.success());
    let archive = dir.join(name);
    if let Some(base) = base {
        std::fs::copy(base, &archive).unwrap();
    }
    let status = Command::new("ar")
        .arg("rcs")
        .arg(&archive)
        .arg(dir.join("nonpic.o"))
        .status()
        .unwrap();
    assert!(status.success());
    archive
}

/// Write an executable shell script `dir/name` with `body` after the `#!/bin/sh` line.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Whether the tests run as root (who may write anywhere).
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// `program` run as `nobody` when the tests run as root (through `setpriv`), else as is: for
/// tests that need a user who cannot write somewhere.
pub fn unprivileged(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// `readelf FLAG BINARY`'s output.
pub fn readelf(flag: &str, binary: &Path) -> String {
    let out = Command::new("readelf")
        .arg(flag)
        .arg(binary)
        .output()
        .unwrap();
    assert!(out.status.success(), "readelf {flag} {}", binary.display());
    String::from_utf8(out.stdout).unwrap()
}

/// `patch_uwsgi apply TREE --python PYTHON`, to add options to and run.
pub fn apply_command(tree: &Path, python: &Path) -> Command {
    let mut command = bin();
    command.arg("apply").arg(tree).arg("--python").arg(python);
    command
}

/// Debian's python3.11, or `None` (a failure under `CI=true`) when this machine lacks it.
pub fn debian_python311() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/bin/python3.11");
    if debian.is_file() {
        Some(debian)
    } else {
        missing("Debian's /usr/bin/python3.11");
        None
    }
}

/// `command.output()` for a program file the test has just copied: a child that another test
/// thread forked meanwhile may still hold the copy's write descriptor until it execs, and the
/// exec then fails with ETXTBSY ("Text file busy", also as `setpriv`'s message). Retried for
/// up to 5 s.
pub fn output_of_fresh_copy(command: &mut Command) -> Output {
    for _ in 0..50 {
        match command.output() {
            Err(e) if e.raw_os_error() == Some(26) => {}
            Ok(out) if texts(&out).1.contains("Text file busy") => {}
            other => return other.unwrap(),
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    command.output().unwrap()
}

/// Remove the folder `path` when the test process exits: for temp folders a `static` keeps for
/// every test of a binary (a `static` is never dropped, so a `TempDir` in one would stay).
pub fn remove_at_exit(path: &Path) {
    static PATHS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    extern "C" fn remove_all() {
        let paths = PATHS.lock().unwrap_or_else(|e| e.into_inner());
        for path in paths.iter() {
            let _ = std::fs::remove_dir_all(path);
        }
    }
    PATHS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(path.to_path_buf());
    REGISTERED.call_once(|| {
        // SAFETY: `remove_all` is a plain function that stays valid until the process ends.
        let registered = unsafe { libc::atexit(remove_all) };
        assert_eq!(registered, 0, "atexit");
    });
}
