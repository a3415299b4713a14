//! End to end: a real uWSGI sdist from PyPI, a static-only CPython whose archive is only in a
//! fake manylinux tarball. The stock build fails to link; after `patch_uwsgi apply` it links,
//! carries no libpython NEEDED and no RPATH, serves a WSGI app on 127.0.0.1 that imports
//! lib-dynload modules, and a second Python rebuilds from the same tree.

mod support;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use support::uwsgi::{app, apply_from_tarball, build, manylinux_root, serve_once, uwsgi_source};
use support::{bin, static_python, texts};

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

/// The runtime finder compiled in by `apply` (static mode): a uwsgi built for a static-only
/// CPython 3.11 is installed into a venv of Debian's python3.11 (another build of 3.11: math,
/// select, zlib, ... are compiled into Debian's interpreter, so its lib-dynload lacks them),
/// with the build interpreter's prefix hidden as on a user's machine (`unshare -m`, tmpfs over
/// it). Without a runtime bundle it fails as before; with the build interpreter's lib-dynload
/// at `<site-packages>/patch_uwsgi_runtime/python3.11/lib-dynload` it serves, both from the
/// venv's bin/ and from where auditwheel puts executables (`<site-packages>/<dist>.scripts/`).
#[test]
fn runtime_bundle_beside_the_installed_uwsgi_serves_on_debian_python() {
    let Some(debian) = support::debian_python311() else {
        return;
    };
    if !support::running_as_root() {
        support::missing("root, to hide the build prefix with unshare -m and tmpfs mounts");
        return;
    }
    let Some(py) = static_python("3.11") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let Some(tree) = uwsgi_source("2.0.31", work.path()) else {
        return;
    };
    let root = manylinux_root(&py);
    apply_from_tarball(&py, &tree, root.path());
    let (ok, log) = build(&py.python, &tree);
    assert!(ok, "{}", &log[log.len().saturating_sub(3000)..]);

    let venv = work.path().join("venv");
    assert!(Command::new(&debian)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .unwrap()
        .success());
    let site = venv.join("lib/python3.11/site-packages");
    let layouts = [venv.join("bin/uwsgi"), site.join("uwsgi.scripts/uwsgi")];
    for binary in &layouts {
        std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
        std::fs::copy(tree.join("uwsgi"), binary).unwrap();
    }

    // Everything of the build interpreter out of reach: the static-only copy and the pyenv
    // prefix it links to.
    let hidden = |binary: &Path, name: &str| {
        support::uwsgi::with_build_prefix_hidden(&py, work.path(), binary, name)
    };
    let imports = work.path().join("imports.py");
    std::fs::write(&imports, "import math\nprint('math from', math.__file__)\n").unwrap();
    let pyrun = |launcher: &Path| {
        let out = Command::new(launcher)
            .arg("--pyrun")
            .arg(&imports)
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };

    // No bundle: as today.
    let bin_layout = hidden(&layouts[0], "uwsgi-bin");
    let scripts_layout = hidden(&layouts[1], "uwsgi-scripts");
    let said = pyrun(&bin_layout);
    assert!(said.contains("No module named 'math'"), "{said}");
    let said = pyrun(&scripts_layout);
    assert!(said.contains("No module named 'encodings'"), "{said}");

    // The bundle: the build interpreter's lib-dynload.
    let pyenv_prefix =
        std::fs::canonicalize(py.original.parent().unwrap().parent().unwrap()).unwrap();
    let dynload = pyenv_prefix.join("lib/python3.11/lib-dynload");
    let bundle = site.join("patch_uwsgi_runtime/python3.11/lib-dynload");
    support::copy_tree(&dynload, &bundle);
    let app = work.path().join("app.py");
    std::fs::write(
        &app,
        format!(
            "import sys\nimport {}\n\
             def application(environ, start_response):\n\
             \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
             \x20   return [('%d.%d.%d %s %s' % (sys.version_info[:3] + (math.__file__, sys.prefix))).encode()]\n",
            support::uwsgi::MODULES.join(", ")
        ),
    )
    .unwrap();
    for launcher in [&bin_layout, &scripts_layout] {
        let body = serve_once(launcher, &app);
        let mut words = body.split(' ');
        assert_eq!(words.next(), Some(py.version.as_str()), "{body}");
        let math = words.next().unwrap();
        assert!(
            math.contains("/site-packages/") && math.contains("patch_uwsgi_runtime/python3.11"),
            "{launcher:?}: math from {math}"
        );
        let prefix = words.next().unwrap();
        assert_eq!(
            std::fs::canonicalize(prefix).unwrap(),
            std::fs::canonicalize(&venv).unwrap(),
            "{launcher:?}: the venv is not sys.prefix"
        );
    }
}
