//! The archive search on real interpreters: pyenv CPythons, Debian's python3.11 (dangling
//! symlink), a venv, and static-only copies whose archive is only in a fake manylinux root
//! holding a real `.tar.xz`.

mod support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{bin, manylinux_root, static_python, texts};

fn locate(python: &Path, extra: &[&OsStr], cache: &Path) -> (Option<i32>, Value, String) {
    let out = bin()
        .env("XDG_CACHE_HOME", cache)
        .args([
            OsStr::new("locate"),
            OsStr::new("--json"),
            OsStr::new("--python"),
            python.as_os_str(),
        ])
        .args(extra)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code(), json, stderr)
}

fn sources(json: &Value) -> Vec<(String, Option<String>)> {
    json["tried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["source"].as_str().unwrap().to_string(),
                c["rejected"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn archive_only_in_tarball_is_extracted_once_and_nogil_is_not_confused() {
    let Some(py) = static_python("3.12") else {
        return;
    };
    let Some(py38) = static_python("3.8") else {
        return;
    };
    let name = format!("cpython-{}", py.version);
    let nogil = format!("{name}-nogil/lib/libpython3.12t.a");
    let wanted = format!("{name}/lib/libpython3.12.a");
    let other = format!("cpython-{}/lib/libpython3.8.a", py38.version);
    // The free-threaded member comes first and holds different bytes.
    let root = manylinux_root(&[
        (&nogil, &py38.archive),
        (&other, &py38.archive),
        (&wanted, &py.archive),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let args = [OsStr::new("--manylinux-root"), root.path().as_os_str()];

    let (code, json, stderr) = locate(&py.python, &args, cache.path());
    assert_eq!(code, Some(0), "{stderr}");
    let extracted = py.prefix.join("lib/libpython3.12.a");
    assert_eq!(json["source"], "manylinux-tarball");
    assert_eq!(json["libpython"], extracted.display().to_string());
    assert_eq!(
        std::fs::read(&extracted).unwrap(),
        std::fs::read(&py.archive).unwrap(),
        "wrong member extracted"
    );
    let tried = sources(&json);
    assert_eq!(
        tried.last().unwrap(),
        &("manylinux-tarball".to_string(), None)
    );
    assert_eq!(
        tried[0],
        ("libpl".to_string(), Some("does not exist".to_string()))
    );
    assert!(std::fs::read_dir(py.prefix.join("lib"))
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().starts_with(".patch-uwsgi-")));

    // Second run: found where sysconfig expects it, no decompression.
    let (code, json, _) = locate(&py.python, &args, cache.path());
    assert_eq!(code, Some(0));
    assert_eq!(json["source"], "libdir");
    assert!(sources(&json).iter().all(|(s, _)| s != "manylinux-tarball"));

    // apply uses the same search: the plugin links the extracted archive.
    let (_tmp, tree) = support::sample_tree("2.0.31");
    std::fs::remove_file(&extracted).unwrap();
    let out = support::apply_command(&tree, &py.python)
        .env("XDG_CACHE_HOME", cache.path())
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    let got = support::exec_plugin(&py.python, &tree, &[], &[]).unwrap();
    assert_eq!(
        got["LIBS"][0],
        format!(
            "-Wl,--whole-archive,{},--no-whole-archive",
            extracted.display()
        )
    );
}

#[test]
fn broken_tarballs_and_wrong_magic_are_rejected_with_reasons() {
    let Some(py) = static_python("3.12") else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let good = manylinux_root(&[(
        &format!("cpython-{}/lib/libpython3.12.a", py.version),
        &py.archive,
    )]);
    let good_bytes =
        std::fs::read(good.path().join("static-libs-for-embedding-only.tar.xz")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "corrupt",
            b"this is not xz data at all".repeat(100),
            "corrupt or truncated tarball",
        ),
        (
            "truncated",
            good_bytes[..good_bytes.len() / 2].to_vec(),
            "corrupt or truncated tarball",
        ),
    ];
    for (name, bytes, wanted) in cases {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(
            root.path().join("static-libs-for-embedding-only.tar.xz"),
            bytes,
        )
        .unwrap();
        let (code, _, stderr) = locate(
            &py.python,
            &[OsStr::new("--manylinux-root"), root.path().as_os_str()],
            cache.path(),
        );
        assert_eq!(code, Some(2), "{name}");
        assert!(
            stderr.contains(wanted) && stderr.contains("static-libs-for-embedding-only.tar.xz"),
            "{name}: {stderr}"
        );
        assert!(
            !py.prefix.join("lib/libpython3.12.a").exists(),
            "{name}: a partial archive was left"
        );
    }

    // A file with the right name but no ar magic, where sysconfig points: rejected, search goes on.
    let libpl = PathBuf::from(support::python_eval(
        &py.python,
        "sysconfig.get_config_var('LIBPL')",
    ));
    std::fs::write(libpl.join("libpython3.12.a"), b"not an archive").unwrap();
    let (code, json, stderr) = locate(
        &py.python,
        &[OsStr::new("--manylinux-root"), good.path().as_os_str()],
        cache.path(),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        sources(&json)[0],
        (
            "libpl".to_string(),
            Some("not an ar archive (no !<arch> magic)".to_string())
        )
    );
    assert_eq!(json["source"], "manylinux-tarball");

    // The same file given explicitly is an error, not a reason to look further.
    let (code, _, stderr) = locate(
        &py.python,
        &[
            OsStr::new("--libpython"),
            libpl.join("libpython3.12.a").as_os_str(),
        ],
        cache.path(),
    );
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("not an ar archive") && stderr.contains("given by explicit"),
        "{stderr}"
    );
}

#[test]
fn pyenv_debian_and_venv_interpreters() {
    let cache = tempfile::tempdir().unwrap();
    let empty_root = tempfile::tempdir().unwrap();
    let no_tarball = [
        OsStr::new("--manylinux-root"),
        empty_root.path().as_os_str(),
    ];
    // (minor, archive name) — 3.6 carries the `m` abiflag.
    for (minor, archive) in [
        ("2.7", "libpython2.7.a"),
        ("3.6", "libpython3.6m.a"),
        ("3.13", "libpython3.13.a"),
    ] {
        let Some((_, python)) = support::require_python(minor) else {
            continue;
        };
        let (code, json, stderr) = locate(&python, &no_tarball, cache.path());
        assert_eq!(code, Some(0), "{minor}: {stderr}");
        assert_eq!(json["source"], "libpl", "{minor}");
        assert!(
            json["libpython"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/{archive}")),
            "{minor}: {json}"
        );
        assert_eq!(json["shared"], true);
    }

    // Debian's python3.11: LIBPL/libpython3.11.a is a symlink into libpython3.11-dev, dangling
    // unless that package is installed.
    let debian = Path::new("/usr/bin/python3.11");
    let link = Path::new("/usr/lib/python3.11/config-3.11-x86_64-linux-gnu/libpython3.11.a");
    if debian.is_file() && std::fs::symlink_metadata(link).is_ok() {
        let (code, json, stderr) = locate(debian, &no_tarball, cache.path());
        if link.exists() {
            assert_eq!(code, Some(0), "{stderr}");
            assert_eq!(json["source"], "libpl");
        } else {
            assert_eq!(code, Some(2), "{stderr}");
            assert!(
                stderr.contains(&format!("{} (libpl): dangling symlink", link.display())),
                "{stderr}"
            );
            assert!(
                stderr.contains(
                    "static-libs-for-embedding-only.tar.xz (manylinux-tarball): does not exist"
                ),
                "{stderr}"
            );
            assert!(stderr.contains("--libpython PATH"), "{stderr}");
        }
    } else {
        support::missing("Debian's /usr/bin/python3.11 with its libpython3.11.a link");
    }
    // The same situation made on purpose: a dangling symlink where LIBPL points.
    if let Some(py) = static_python("3.12") {
        let libpl = PathBuf::from(support::python_eval(
            &py.python,
            "sysconfig.get_config_var('LIBPL')",
        ));
        std::os::unix::fs::symlink(
            "/nonexistent/libpython3.12.a",
            libpl.join("libpython3.12.a"),
        )
        .unwrap();
        let (code, _, stderr) = locate(&py.python, &no_tarball, cache.path());
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "{} (libpl): dangling symlink",
                libpl.join("libpython3.12.a").display()
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "{}/lib/libpython3.12.a (libdir): does not exist",
                py.prefix.display()
            )),
            "{stderr}"
        );
    }

    // A venv: the archive is found through the base prefix.
    let Some((version, python)) = support::require_python("3.12") else {
        return;
    };
    let venv = tempfile::tempdir().unwrap();
    let status = Command::new(&python)
        .args(["-m", "venv", "--without-pip"])
        .arg(venv.path().join("v"))
        .status()
        .unwrap();
    assert!(status.success());
    let (code, json, stderr) = locate(&venv.path().join("v/bin/python"), &no_tarball, cache.path());
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(json["source"], "libpl");
    assert_eq!(
        json["probe"]["base_prefix"],
        support::pyenv_root()
            .join("versions")
            .join(&version)
            .canonicalize()
            .unwrap()
            .display()
            .to_string()
    );
}

#[test]
fn non_pic_archive_gets_no_pie_by_a_probe_link() {
    // A real non-PIC archive: one object compiled -fno-pic that takes an absolute address
    // (R_X86_64_32), as manylinux's libpython objects do; a PIE link of it fails.
    let Some(py) = static_python("3.12") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let archive = support::non_pic_archive(dir.path(), "libpython3.12.a", None);
    let cache = tempfile::tempdir().unwrap();
    let (code, json, stderr) = locate(
        &py.python,
        &[OsStr::new("--libpython"), archive.as_os_str()],
        cache.path(),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(json["no_pie"], true);
    assert_eq!(json["ldflags"], serde_json::json!(["-no-pie"]));
    assert_eq!(json["pie_decision"], "probe-link");

    // The answer is remembered for the same archive and compiler; a changed archive is probed
    // again; `--no-pie no` is taken as given.
    let again = |extra: &[&OsStr]| {
        let mut args = vec![OsStr::new("--libpython"), archive.as_os_str()];
        args.extend_from_slice(extra);
        locate(&py.python, &args, cache.path()).1
    };
    let json = again(&[]);
    assert_eq!(
        (&json["pie_decision"], &json["no_pie"]),
        (&"cached".into(), &true.into())
    );
    let file = std::fs::File::options()
        .append(true)
        .open(&archive)
        .unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(file);
    let json = again(&[]);
    assert_eq!(
        (&json["pie_decision"], &json["no_pie"]),
        (&"probe-link".into(), &true.into())
    );
    let json = again(&[OsStr::new("--no-pie"), OsStr::new("no")]);
    assert_eq!(
        (&json["pie_decision"], &json["no_pie"]),
        (&"given".into(), &false.into())
    );
    assert_eq!(json["ldflags"], serde_json::json!([]));

    // The pyenv archive is PIC: no -no-pie.
    let (_, json, _) = locate(
        &py.python,
        &[OsStr::new("--libpython"), py.archive.as_os_str()],
        cache.path(),
    );
    assert_eq!(json["no_pie"], false);

    // apply carries the flag into the plugin's LDFLAGS, for the executable link only.
    let (_tmp, tree) = support::sample_tree("2.0.31");
    let out = support::apply_command(&tree, &py.python)
        .arg("--libpython")
        .arg(&archive)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    assert!(texts(&out).0.contains("-no-pie"));
    assert_eq!(
        support::exec_plugin(&py.python, &tree, &[], &[]).unwrap()["LDFLAGS"],
        serde_json::json!(["-no-pie"])
    );
    assert_eq!(
        support::exec_plugin(&py.python, &tree, &["--plugin", "plugins/python"], &[]).unwrap()
            ["LDFLAGS"],
        serde_json::json!([])
    );
}

#[test]
fn unwritable_prefix_extracts_into_the_cache_folder() {
    // The prefix's lib folder must be unwritable for the user running patch_uwsgi. Root can
    // write anywhere, so as root the binary runs as `nobody` (setpriv); everything it needs
    // (binary, interpreter copy, tarball) is placed where `nobody` can read it: Debian's
    // python3.11 copied static-only (pyenv lives under /root, which nobody cannot enter).
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(debian) = support::debian_python311() else {
        return;
    };
    let Some((_, pyenv311)) = support::require_python("3.11") else {
        return;
    };
    let as_root = support::running_as_root();
    let open = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let work = tempfile::tempdir().unwrap();
    open(work.path(), 0o755);
    let status = Command::new(debian)
        .arg(support::repo().join("tests/support/make_static_prefix.py"))
        .arg(work.path())
        .arg("cpython-3.11-debian")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let prefix = work.path().join("cpython-3.11-debian");
    let python = prefix.join("bin/python3.11");
    let binary = work.path().join("patch_uwsgi");
    std::fs::copy(env!("CARGO_BIN_EXE_patch_uwsgi"), &binary).unwrap();
    let archive = support::libpl_archive(&pyenv311);
    let root = support::manylinux_root(&[("cpython-3.11-debian/lib/libpython3.11.a", &archive)]);
    open(root.path(), 0o755);
    let cache = work.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    if as_root {
        std::os::unix::fs::chown(&cache, Some(65534), Some(65534)).unwrap();
    } else {
        open(&prefix.join("lib"), 0o555);
    }

    let run = |json: bool| {
        let mut command = support::unprivileged(&binary);
        command
            .env("XDG_CACHE_HOME", &cache)
            .env("HOME", &cache)
            .env_remove("PATCH_UWSGI_LIBPYTHON")
            .arg("locate")
            .args(json.then_some("--json"))
            .arg("--python")
            .arg(&python)
            .arg("--manylinux-root")
            .arg(root.path());
        support::output_of_fresh_copy(&mut command)
    };
    let out = run(true);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let extracted = cache.join("patch-uwsgi/cpython-3.11-debian/lib/libpython3.11.a");
    assert_eq!(json["source"], "manylinux-tarball");
    assert_eq!(json["libpython"], extracted.display().to_string());
    assert_eq!(
        std::fs::read(&extracted).unwrap(),
        std::fs::read(&archive).unwrap()
    );
    if as_root {
        assert_eq!(std::fs::metadata(&extracted).unwrap().uid(), 65534);
    }
    assert!(!prefix.join("lib/libpython3.11.a").exists());
    let tarball = root.path().join("static-libs-for-embedding-only.tar.xz");
    assert!(json["tried"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["path"] == tarball.display().to_string() && c["rejected"].is_null()));

    // Second run: found in the cache, the tarball is not opened again; the report names it.
    let out = run(false);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "libpython {} (found by manylinux-tarball)",
            extracted.display()
        )),
        "{stdout}"
    );
    assert!(
        !stdout.contains("static-libs-for-embedding-only"),
        "{stdout}"
    );
}
