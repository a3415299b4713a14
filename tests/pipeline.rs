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
//! The manylinux stand-in's 3.13 is compiled by clang, as manylinux i686/ppc64le/s390x/riscv64
//! compile theirs. A second test does the same for musllinux in the musl stand-in of
//! `scripts/standin/build-musl.sh` (its CPythons compiled by clang), with users' musl roots.
//! Slow the first time (the stand-ins are built, about 8 - 18 minutes each on 2 cores);
//! cached after.

mod support;

use std::ffi::OsStr;
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
    // The clang-built CPython (3.13, as manylinux i686/ppc64le/s390x build theirs) went
    // through verify, apply, the gcc build and bundle like the others: its libpython's objects
    // carry clang's name inside the uwsgi, uWSGI's own gcc's.
    let unpacked = out.path().join("unpacked-cp313");
    unzip(wheel_for(&built, "cp313"), &unpacked);
    let comment = support::readelf(
        "--string-dump=.comment",
        &unpacked.join(uwsgi_in(&unpacked)),
    );
    assert!(comment.contains("clang version"), "cp313: {comment}");
    assert!(comment.contains("GCC: "), "cp313: {comment}");
    // Each Python's own test-command (verify --wheel) ran in the container and passed.
    let passed = said
        .lines()
        .filter(|l| l.contains("/venv/bin/uwsgi -> ") && l.ends_with("extension modules; 0 failed"))
        .count();
    assert_eq!(passed, 3, "{}", tail(&said, 6000));

    // The control: without patch-uwsgi the link fails as users saw it.
    let control = out.path().join("control");
    stock_build_stops_at_the_link(&control, &[], "cp311-manylinux_x86_64");

    let modules: Vec<&str> = support::uwsgi::MODULES
        .iter()
        .chain(WITH_LIBRARIES)
        .copied()
        .collect();
    // Users' machines: another build of each minor, no /opt/_internal there.
    for (tag, suite, python) in USERS {
        let root = users_root(suite, python, "");
        let bundled =
            format!("/venv/lib/{python}/site-packages/patch_uwsgi_runtime/{python}/lib-dynload/");
        serves_from_a_venv(
            out.path(),
            &root,
            python,
            wheel_for(&built, tag),
            &modules,
            &bundled,
        );
    }

    // The control for users' machines: linked by patch-uwsgi but not bundled, the wheel does
    // not start on bookworm's python3.11 (its stdlib is not where the build prefix was).
    let root = users_root("bookworm", "python3.11", "");
    let unbundled = unbundled_wheel(out.path(), &[], "cp311-manylinux_x86_64");
    install_in_venv(&root, "python3.11", &unbundled);
    does_not_start(out.path(), &root, "/venv/bin/uwsgi");

    // `bundle --stdlib`: the wheel serves in a root with no Python at all.
    let root = users_root("trixie", "none", "");
    stdlib_wheel_serves(
        out.path(),
        &[],
        "cp313-manylinux_x86_64",
        &root,
        "3.13",
        &modules,
    );
}

/// The musllinux stand-in's wheels: `PIPELINE_LIBC=musl scripts/pipeline.sh` runs cibuildwheel
/// in the musl root of `scripts/standin/build-musl.sh`, whose CPython 3.11 and 3.13 clang
/// compiled; each wheel is checked as users get it (musl's loader, no libpython, clang's code
/// inside) and serves from a venv of a CPython built as Alpine builds its own (gcc, shared,
/// /usr), with no build prefix there. The controls as for manylinux.
#[test]
fn cibuildwheel_in_the_musllinux_stand_in_and_the_wheels_serve_on_musl() {
    if !support::running_as_root() {
        support::missing("root, for podman, debootstrap and chroot");
        return;
    }
    let musl = [("PIPELINE_LIBC", "musl")];
    let out = tempfile::tempdir().unwrap();
    let wheels = out.path().join("wheelhouse");
    let (ok, _, said) = script("pipeline.sh", &[wheels.as_os_str()], &musl);
    assert!(
        ok,
        "PIPELINE_LIBC=musl scripts/pipeline.sh failed:\n{}",
        tail(&said, 6000)
    );
    assert!(
        said.contains("cibuildwheel version 4.3.5"),
        "cibuildwheel did not run: {}",
        tail(&said, 3000)
    );
    let built: Vec<PathBuf> = std::fs::read_dir(&wheels)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(built.len(), MUSL_USERS.len(), "{built:?}");
    for (tag, _) in MUSL_USERS {
        let name = format!("-{tag}-{tag}-musllinux_1_2_x86_64.whl");
        let wheel = built
            .iter()
            .find(|w| w.to_string_lossy().ends_with(&name))
            .unwrap_or_else(|| panic!("no {name} in {built:?}"));
        let unpacked = out.path().join(format!("unpacked-{tag}"));
        unzip(wheel, &unpacked);
        assert!(
            unpacked.join("patch_uwsgi_runtime").is_dir(),
            "{tag}: no bundle"
        );
        let program = unpacked.join(uwsgi_in(&unpacked));
        let headers = support::readelf("-l", &program);
        assert!(
            headers.contains("[Requesting program interpreter: /lib/ld-musl-x86_64.so.1]"),
            "{tag}: {headers}"
        );
        let dynamic = support::readelf("-d", &program);
        assert!(
            dynamic.contains("(NEEDED)"),
            "{tag}: a static executable: {dynamic}"
        );
        assert!(!dynamic.contains("libpython"), "{tag}: {dynamic}");
        // libpython's objects carry clang's name; uWSGI's own, gcc's.
        let comment = support::readelf("--string-dump=.comment", &program);
        assert!(comment.contains("clang version"), "{tag}: {comment}");
        assert!(comment.contains("GCC: "), "{tag}: {comment}");
    }
    let passed = said
        .lines()
        .filter(|l| l.contains("/venv/bin/uwsgi") && l.ends_with("extension modules; 0 failed"))
        .count();
    assert_eq!(passed, MUSL_USERS.len(), "{}", tail(&said, 6000));

    // The control: stock uWSGI without `apply` stops at the link.
    let control = out.path().join("control");
    stock_build_stops_at_the_link(&control, &musl, "cp311-musllinux_x86_64");

    // Users' machines: the stand-in's users-python root (CPython built as Alpine does).
    let modules: Vec<&str> = support::uwsgi::MODULES
        .iter()
        .chain(WITH_LIBRARIES_MUSL)
        .copied()
        .collect();
    let users = musl_users_root("users-python");
    for (tag, python) in MUSL_USERS {
        let bundled =
            format!("/venv/lib/{python}/site-packages/patch_uwsgi_runtime/{python}/lib-dynload/");
        serves_from_a_venv(
            out.path(),
            &users,
            python,
            wheel_for(&built, tag),
            &modules,
            &bundled,
        );
    }

    // Without `bundle`: a CPython built as Alpine builds its own has every module as a file of
    // the same minor, so the unbundled wheel serves from its venv with that CPython's modules
    // (unlike Debian's, which compiles some into its interpreter); where there is no Python,
    // it does not start.
    let unbundled = unbundled_wheel(out.path(), &musl, "cp311-musllinux_x86_64");
    serves_from_a_venv(
        out.path(),
        &users,
        "python3.11",
        &unbundled,
        &modules,
        "/usr/lib/python3.11/lib-dynload/",
    );
    let none = musl_users_root("users-none");
    let site = none.join("opt/unbundled");
    let _ = std::fs::remove_dir_all(&site);
    unzip(&unbundled, &site);
    write_app(&none, &modules);
    does_not_start(
        out.path(),
        &none,
        &format!("/opt/unbundled/{}", uwsgi_in(&site)),
    );
    stdlib_wheel_serves(
        out.path(),
        &musl,
        "cp313-musllinux_x86_64",
        &none,
        "3.13",
        &modules,
    );

    interrupted_stand_in_is_never_reused("standin/build-musl.sh", "standin-musl");
}

/// A stand-in whose build was killed mid-way is never taken for a built one: in a cache folder
/// of its own, a real run of `builder` is killed once its work folder exists; `--status` then
/// says a run builds the entry and names the leftover, as it does for an entry (the real one,
/// hard-linked) that lacks its `complete` mark, and only the marked entry counts as built.
fn interrupted_stand_in_is_never_reused(builder: &str, cache_name: &str) {
    let real = support::project_cache().join(cache_name);
    let (ok, image, said) = script(builder, &[real.as_os_str()], &[]);
    assert!(ok, "{builder}: {}", tail(&said, 3000));
    let key = image.trim().rsplit(':').next().unwrap().to_string();
    let cache = tempfile::tempdir_in(support::project_cache()).unwrap();
    let status = |expect_built: bool, mentions: &str| {
        let (built, stdout, said) = script(
            builder,
            &[OsStr::new("--status"), cache.path().as_os_str()],
            &[],
        );
        assert_eq!(built, expect_built, "{builder} --status: {said}");
        assert!(
            stdout.contains(mentions),
            "{builder} --status: no {mentions} in {stdout}"
        );
    };

    let mut run = Command::new("setsid")
        .arg(support::repo().join("scripts").join(builder))
        .arg(cache.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let work = cache.path().join(format!(".build-{key}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while !work.join("logs/debootstrap.log").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{builder} never started its build"
        );
        assert!(
            run.try_wait().unwrap().is_none(),
            "{builder} stopped before building"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // The whole process group: the script, debootstrap, its downloads.
    let killed = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", run.id())])
        .status()
        .unwrap();
    assert!(killed.success());
    run.wait().unwrap();
    assert!(!cache.path().join(&key).exists());
    status(false, &format!(".build-{key}"));

    let entry = cache.path().join(&key);
    let copied = Command::new("cp")
        .arg("-al")
        .arg(real.join(&key))
        .arg(&entry)
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::remove_file(entry.join("complete")).unwrap();
    status(false, &entry.display().to_string());
    std::fs::write(entry.join("complete"), "").unwrap();
    status(true, &format!("complete {}", entry.display()));
}

/// The control: the example without `verify` and `apply` (PIPELINE_VARIANT=without-apply,
/// cibuildwheel identifier `build`) stops at the link as users saw it.
fn stock_build_stops_at_the_link(out: &Path, envs: &[(&str, &str)], build: &str) {
    let mut envs = envs.to_vec();
    envs.extend([
        ("PIPELINE_VARIANT", "without-apply"),
        ("PIPELINE_BUILD", build),
    ]);
    let (ok, _, said) = script("pipeline.sh", &[out.as_os_str()], &envs);
    assert!(!ok, "the control built: {}", tail(&said, 3000));
    assert!(
        said.contains("cannot find -lpython3.11"),
        "{}",
        tail(&said, 3000)
    );
}

/// `wheel`, `pip install`ed into a fresh venv of `python` in `root` (a users' machine: no
/// build prefix there), serves the app importing `modules` from `venv/bin/uwsgi` as users
/// start it, with its Python's version, the venv as prefix and every module from the folder
/// `modules_from`.
fn serves_from_a_venv(
    out: &Path,
    root: &Path,
    python: &str,
    wheel: &Path,
    modules: &[&str],
    modules_from: &str,
) {
    let what = format!("{python} in {}", root.display());
    install_in_venv(root, python, wheel);
    write_app(root, modules);
    let name = format!("uwsgi-{}", wheel.file_name().unwrap().to_string_lossy());
    let launcher = launcher_in(out, &name, root, "/venv/bin/uwsgi");
    let answer = serve_app(&launcher, &what);
    assert_eq!(
        answer["version"],
        python.trim_start_matches("python"),
        "{what}"
    );
    assert_eq!(answer["prefix"], "/venv", "{what}");
    assert_modules_from(&answer, modules, modules_from, &what);
}

/// Extension modules of the musl stand-in's CPythons that need a library (linked statically
/// there, from the sources build-musl.sh builds): no libuuid, readline or curses.
const WITH_LIBRARIES_MUSL: &[&str] = &[
    "_ssl", "_hashlib", "_ctypes", "_sqlite3", "_decimal", "_lzma", "_bz2", "pyexpat",
];

/// (wheel tag, the musl users' root's Python of the same minor)
const MUSL_USERS: &[(&str, &str)] = &[("cp311", "python3.11"), ("cp313", "python3.13")];

/// A users' machine of the musllinux stand-in's cache entry (`users-python`, `users-none`):
/// `scripts/standin/build-musl.sh` names the entry in its image's tag (and reuses it).
fn musl_users_root(name: &str) -> PathBuf {
    let cache = support::project_cache().join("standin-musl");
    let (ok, image, said) = script("standin/build-musl.sh", &[cache.as_os_str()], &[]);
    assert!(ok, "build-musl.sh: {}", tail(&said, 3000));
    let key = image
        .trim()
        .lines()
        .last()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let root = cache.join(key).join(name);
    assert!(root.join("etc").is_dir(), "{}", root.display());
    assert!(!root.join("opt/_internal").exists());
    root
}

/// A wheel linked by patch-uwsgi but repaired without `bundle` (PIPELINE_VARIANT=without-bundle,
/// cibuildwheel identifier `build`), in its own folder of `out`.
fn unbundled_wheel(out: &Path, envs: &[(&str, &str)], build: &str) -> PathBuf {
    let unbundled = out.join(format!("unbundled-{build}"));
    let mut envs = envs.to_vec();
    envs.extend([
        ("PIPELINE_VARIANT", "without-bundle"),
        ("PIPELINE_BUILD", build),
    ]);
    let (ok, _, said) = script("pipeline.sh", &[unbundled.as_os_str()], &envs);
    assert!(ok, "the unbundled build: {}", tail(&said, 6000));
    support::only_wheel(&unbundled)
}

/// The uwsgi `program` (a path in `root`) does not start the app: a module is not found.
fn does_not_start(out: &Path, root: &Path, program: &str) {
    let name = format!("uwsgi-unbundled-{}", program.replace('/', "_"));
    let launcher = launcher_in(out, &name, root, program);
    let started = Command::new("timeout")
        .arg("60")
        .arg(&launcher)
        .args(["--pyrun", "/tmp/app.py"])
        .output()
        .unwrap();
    let (stdout, stderr) = support::texts(&started);
    assert!(
        !started.status.success() && stderr.contains("No module named"),
        "the unbundled {program} in {}: {:?}\n{stdout}{stderr}",
        root.display(),
        started.status
    );
}

/// `bundle --stdlib` (PIPELINE_VARIANT=stdlib, identifier `build`): the wheel serves in `root`,
/// which has no Python at all, unpacked (there is no pip there), started as its executable.
fn stdlib_wheel_serves(
    out: &Path,
    envs: &[(&str, &str)],
    build: &str,
    root: &Path,
    minor: &str,
    modules: &[&str],
) {
    let stdlib = out.join(format!("stdlib-{build}"));
    let mut envs = envs.to_vec();
    envs.extend([("PIPELINE_VARIANT", "stdlib"), ("PIPELINE_BUILD", build)]);
    let (ok, _, said) = script("pipeline.sh", &[stdlib.as_os_str()], &envs);
    assert!(ok, "the --stdlib build: {}", tail(&said, 6000));
    let python_there = std::fs::read_dir(root.join("usr/bin"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("python"));
    assert_eq!(python_there, None, "the root without Python has one");
    let site = root.join("opt/app");
    let _ = std::fs::remove_dir_all(&site);
    unzip(&support::only_wheel(&stdlib), &site);
    write_app(root, modules);
    let launcher = launcher_in(
        out,
        &format!("uwsgi-no-python-{build}"),
        root,
        &format!("/opt/app/{}", uwsgi_in(&site)),
    );
    let answer = serve_app(&launcher, &format!("{build}, no Python"));
    assert_eq!(answer["version"], minor);
    let bundle = format!("/opt/app/patch_uwsgi_runtime/python{minor}");
    assert_eq!(answer["prefix"], bundle.as_str(), "the bundle is the home");
    let json = answer["json"].as_str().unwrap();
    let zip = format!("{bundle}/lib/python{}.zip/", minor.replace('.', ""));
    assert!(json.starts_with(&zip), "json from {json}");
    assert_modules_from(&answer, modules, &format!("{bundle}/lib-dynload/"), build);
}

/// `wheel` unpacked into `dir` with Python's zipfile, which keeps no file modes (pip would
/// make the scripts executable): the uwsgi gets its bit back.
fn unzip(wheel: &Path, dir: &Path) {
    let unzip = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(wheel)
        .arg(dir)
        .output()
        .unwrap();
    assert!(unzip.status.success(), "{:?}", support::texts(&unzip));
    std::fs::set_permissions(
        dir.join(uwsgi_in(dir)),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
}

/// Where the uwsgi is in an unpacked repaired wheel, relative to it: `<dist>.scripts/uwsgi`
/// when auditwheel grafted a library (it moves executables there behind a shim, to give
/// them an RPATH), else `<dist>.data/scripts/uwsgi` as the build left it (musl's stand-in
/// links every library statically: nothing to graft).
fn uwsgi_in(dir: &Path) -> String {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let moved = names.iter().find(|name| name.ends_with(".scripts"));
    let data = names.iter().find(|name| name.ends_with(".data"));
    match (moved, data) {
        (Some(folder), _) => format!("{folder}/uwsgi"),
        (None, Some(data)) if dir.join(data).join("scripts/uwsgi").is_file() => {
            format!("{data}/scripts/uwsgi")
        }
        _ => panic!("no uwsgi in {}: {names:?}", dir.display()),
    }
}

/// The wheel of `built` for CPython tag `tag` (cp311).
fn wheel_for<'a>(built: &'a [PathBuf], tag: &str) -> &'a Path {
    built
        .iter()
        .find(|w| w.to_string_lossy().contains(&format!("-{tag}-")))
        .unwrap_or_else(|| panic!("no {tag} wheel in {built:?}"))
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
