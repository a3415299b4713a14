//! `bundle` on small synthetic wheels, with pyenv's CPython 3.11 as the build interpreter: where
//! it finds the executables that carry the runtime finder (anywhere in the wheel, under any
//! name), what it refuses, that it makes a missing output folder, and that a bundle failing
//! half-way through its renames leaves the output folder as it was. No uWSGI build, no root:
//! the wheels built by real uWSGI builds go through `tests/runtime.rs`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The bytes an executable with a runtime finder of `version` (None: the first, unmarked)
/// for Python `minor` carries, among others.
fn finder_elf(minor: &str, version: Option<u32>) -> Vec<u8> {
    let mut data = b"\x7fELF\x02\x01\x01\0 ...code... ".to_vec();
    if let Some(version) = version {
        data.extend_from_slice(format!("patch-uwsgi runtime finder {version}\0").as_bytes());
    }
    data.extend_from_slice(format!("/patch_uwsgi_runtime/python{minor}\0 ...").as_bytes());
    data
}

/// `dir/<dist>-1.0-cp311-cp311-linux_x86_64.whl` with these members (and a RECORD).
fn wheel(dir: &Path, dist: &str, members: &[(&str, Vec<u8>)]) -> PathBuf {
    let path = dir.join(format!("{dist}-1.0-cp311-cp311-linux_x86_64.whl"));
    let maker = "import sys, zipfile\n\
        z = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED)\n\
        args = sys.argv[2:]\n\
        for name, source in zip(args[::2], args[1::2]):\n\
        \x20   z.writestr(name, open(source, 'rb').read())\n\
        z.close()\n";
    let mut command = Command::new("python3");
    command.args(["-c", maker]).arg(&path);
    let mut all: Vec<(String, Vec<u8>)> = members
        .iter()
        .map(|(n, d)| (n.to_string(), d.clone()))
        .collect();
    all.push((
        format!("{dist}-1.0.dist-info/WHEEL"),
        b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-linux_x86_64\n".to_vec(),
    ));
    all.push((format!("{dist}-1.0.dist-info/RECORD"), Vec::new()));
    let sources = tempfile::tempdir().unwrap();
    for (index, (name, data)) in all.iter().enumerate() {
        let source = sources.path().join(index.to_string());
        std::fs::write(&source, data).unwrap();
        command.arg(name).arg(&source);
    }
    assert!(command.status().unwrap().success());
    path
}

/// `patch_uwsgi bundle WHEELS -w OUT --python PY --json`.
fn bundle(wheels: &[&Path], out_dir: &Path, python: &Path) -> Output {
    bundle_with(wheels, out_dir, python, &[])
}

/// `patch_uwsgi bundle WHEELS -w OUT --python PY --json OPTIONS`.
fn bundle_with(wheels: &[&Path], out_dir: &Path, python: &Path, options: &[&str]) -> Output {
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

/// `wheel` copied to `out` with `member` stored (not deflated) and one byte of its data
/// changed: its CRC no longer matches.
fn corrupted(wheel: &Path, member: &str, out: &Path) {
    let corrupter = "import io, sys, zipfile\n\
        source = zipfile.ZipFile(sys.argv[1])\n\
        buffer = io.BytesIO()\n\
        with zipfile.ZipFile(buffer, 'w') as z:\n\
        \x20   for info in source.infolist():\n\
        \x20       data = source.read(info)\n\
        \x20       if info.filename == sys.argv[2]:\n\
        \x20           info.compress_type = zipfile.ZIP_STORED\n\
        \x20       z.writestr(info, data)\n\
        data = bytearray(buffer.getvalue())\n\
        info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo(sys.argv[2])\n\
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)\n\
        data[start + 100] ^= 0xff\n\
        open(sys.argv[3], 'wb').write(data)\n";
    assert!(Command::new("python3")
        .args(["-c", corrupter])
        .arg(wheel)
        .arg(member)
        .arg(out)
        .status()
        .unwrap()
        .success());
}

/// The names in a zip file.
fn members(wheel: &Path) -> Vec<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
        ])
        .arg(wheel)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn python311() -> Option<PathBuf> {
    support::require_python("3.11").map(|(_, path)| path)
}

#[test]
fn finds_executables_anywhere_under_any_name_and_makes_the_output_folder() {
    let Some(python) = python311() else { return };
    let work = tempfile::tempdir().unwrap();
    let built = wheel(
        work.path(),
        "myserver",
        &[
            ("myserver/__init__.py", b"".to_vec()),
            ("myserver/bin/myserver", finder_elf("3.11", Some(3))),
            (
                "myserver-1.0.data/data/libexec/myserver/worker",
                finder_elf("3.11", Some(3)),
            ),
            // An ELF without the finder (a helper tool): not an executable to bundle for.
            ("myserver/bin/helper", b"\x7fELF plain".to_vec()),
        ],
    );
    let out_dir = work.path().join("not/yet/there");
    let out = bundle(&[&built], &out_dir, &python);
    let (stdout, stderr) = support::texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let executables = &report["wheels"][0]["executables"];
    assert_eq!(
        executables,
        &serde_json::json!([
            {"path": "myserver/bin/myserver", "python": "3.11"},
            {"path": "myserver-1.0.data/data/libexec/myserver/worker", "python": "3.11"},
        ]),
        "{report:#}"
    );
    let written = out_dir.join(built.file_name().unwrap());
    let names = members(&written);
    let modules = names
        .iter()
        .filter(|n| n.starts_with("patch_uwsgi_runtime/python3.11/lib-dynload/"))
        .count();
    assert!(modules >= 20, "{modules} modules: {names:?}");
    assert_eq!(report["wheels"][0]["modules"], modules);
    assert!(names.contains(&"myserver/bin/myserver".to_string()));

    // The text report names each executable and its Python.
    let out = support::bin()
        .arg("bundle")
        .arg(&built)
        .arg("-w")
        .arg(work.path().join("text"))
        .arg("--python")
        .arg(&python)
        .output()
        .unwrap();
    let (stdout, stderr) = support::texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("myserver/bin/myserver (Python 3.11)")
            && stdout.contains("libexec/myserver/worker (Python 3.11)"),
        "{stdout}"
    );
}

#[test]
fn refuses_what_its_finder_or_python_cannot_serve_and_writes_nothing() {
    let Some(python) = python311() else { return };
    let work = tempfile::tempdir().unwrap();
    type Members = Vec<(&'static str, Vec<u8>)>;
    let cases: Vec<(&str, Members, &str)> = vec![
        (
            "old-finder-package-data",
            vec![("pkg/bin/server", finder_elf("3.11", Some(2)))],
            "only looks for the bundle from <dist>.data/scripts/",
        ),
        (
            "other-minor",
            vec![("pkg/bin/server", finder_elf("3.12", Some(3)))],
            "pkg/bin/server embeds Python 3.12, but the Python given is 3.11",
        ),
        (
            "no-finder",
            vec![
                ("pkg/bin/server", b"\x7fELF no finder".to_vec()),
                ("pkg/data.txt", b"text".to_vec()),
            ],
            "ELF files looked at: pkg/bin/server",
        ),
        (
            "repaired",
            vec![("pkg.scripts/server", finder_elf("3.11", Some(3)))],
            "already repaired by auditwheel",
        ),
    ];
    for (dist, wheel_members, wanted) in cases {
        let made = wheel(work.path(), dist, &wheel_members);
        let out_dir = work.path().join(format!("out-{dist}"));
        let out = bundle(&[&made], &out_dir, &python);
        let (_, stderr) = support::texts(&out);
        assert_eq!(out.status.code(), Some(2), "{dist}: {stderr}");
        assert!(
            stderr.contains(wanted) && stderr.contains("nothing was written"),
            "{dist}: {stderr}"
        );
        assert!(!out_dir.exists(), "{dist}: the output folder was made");
    }
    // The first finder in uWSGI's own layout still bundles (without --stdlib).
    let old_scripts = wheel(
        work.path(),
        "olduwsgi",
        &[("olduwsgi-1.0.data/scripts/uwsgi", finder_elf("3.11", None))],
    );
    let out = bundle(&[&old_scripts], &work.path().join("out-old"), &python);
    assert_eq!(out.status.code(), Some(0), "{:?}", support::texts(&out));
}

/// Two wheels; the second cannot be renamed into place (a folder of its name is in the way):
/// the first, already renamed over an older copy, is put back, and nothing is left behind.
#[test]
fn a_failed_rename_puts_back_what_the_earlier_renames_replaced() {
    let Some(python) = python311() else { return };
    let work = tempfile::tempdir().unwrap();
    let first = wheel(
        work.path(),
        "first",
        &[("first/bin/server", finder_elf("3.11", Some(3)))],
    );
    let second = wheel(
        work.path(),
        "second",
        &[("second/bin/server", finder_elf("3.11", Some(3)))],
    );
    let out_dir = work.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let previous = out_dir.join(first.file_name().unwrap());
    std::fs::write(&previous, "the previous wheel").unwrap();
    let blocker = out_dir.join(second.file_name().unwrap());
    std::fs::create_dir(&blocker).unwrap();
    std::fs::write(blocker.join("keep"), "x").unwrap();
    let before = support::snapshot_dir(&out_dir);

    let out = bundle(&[&first, &second], &out_dir, &python);
    let (_, stderr) = support::texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write the wheel") && stderr.contains("nothing was written"),
        "{stderr}"
    );
    assert_eq!(support::snapshot_dir(&out_dir), before, "{stderr}");

    // With the way clear, both are written and the previous one is replaced.
    std::fs::remove_dir_all(&blocker).unwrap();
    let out = bundle(&[&first, &second], &out_dir, &python);
    assert_eq!(out.status.code(), Some(0), "{:?}", support::texts(&out));
    assert_ne!(std::fs::read(&previous).unwrap(), b"the previous wheel");
    let mut left: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "first-1.0-cp311-cp311-linux_x86_64.whl",
            "second-1.0-cp311-cp311-linux_x86_64.whl"
        ]
    );
}

/// Bad input to `bundle`: exit 2, one message saying nothing was written, and the output
/// folder left empty. The wheels are uWSGI-shaped (`<dist>.data/scripts/uwsgi`); `good` bundles.
#[test]
fn refuses_bad_input_and_leaves_the_output_folder_empty() {
    let Some(python) = python311() else { return };
    let Some((_, py312)) = support::require_python("3.12") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let dir = |name: &str| {
        let path = work.path().join(name);
        std::fs::create_dir(&path).unwrap();
        path
    };
    let uwsgi_wheel = |name: &str, script: Vec<u8>| {
        wheel(
            &dir(name),
            "uwsgi",
            &[("uwsgi-1.0.data/scripts/uwsgi", script)],
        )
    };
    let decorators: String = (0..200)
        .map(|i| {
            format!(
                "def decorator_{i}(f):\n    return f  # {}\n",
                i * 7919 % 1000
            )
        })
        .collect();
    let good = wheel(
        &dir("good"),
        "uwsgi",
        &[
            ("uwsgi-1.0.data/scripts/uwsgi", finder_elf("3.11", Some(3))),
            (
                "uwsgi-1.0.data/purelib/uwsgidecorators.py",
                decorators.into_bytes(),
            ),
        ],
    );
    let not_a_zip = dir("not-a-zip").join(good.file_name().unwrap());
    std::fs::write(&not_a_zip, "not a zip").unwrap();
    let corrupt = dir("corrupt").join(good.file_name().unwrap());
    corrupted(&good, "uwsgi-1.0.data/purelib/uwsgidecorators.py", &corrupt);
    // An executable linked to a shared libpython (its NEEDED name among its bytes), an ELF
    // with neither that nor the finder, an executable with the first runtime finder (which
    // knows no bundled stdlib), and one auditwheel has already moved to `uwsgi.scripts/`.
    let shared = uwsgi_wheel(
        "shared",
        b"\x7fELF....NEEDED libpython3.11.so.1.0 ....".to_vec(),
    );
    let plain = uwsgi_wheel("plain", b"\x7fELF.... no python here ....".to_vec());
    let old_finder = uwsgi_wheel("old-finder", finder_elf("3.11", None));
    let repaired = wheel(
        &dir("repaired"),
        "uwsgi",
        &[("uwsgi.scripts/uwsgi", finder_elf("3.11", Some(3)))],
    );
    let empty = dir("empty-out");
    let a_file = work.path().join("a-file");
    std::fs::write(&a_file, "").unwrap();
    let (py311, py312) = (python.as_path(), py312.as_path());
    for (wheels, options, out_dir, python, wanted) in [
        (
            vec![not_a_zip.as_path()],
            vec![],
            empty.as_path(),
            py311,
            "not a readable wheel",
        ),
        (
            vec![corrupt.as_path()],
            vec![],
            empty.as_path(),
            py311,
            "corrupt member uwsgi-1.0.data/purelib/uwsgidecorators.py",
        ),
        (
            vec![good.as_path()],
            vec!["--exclude", "_nosuch,math"],
            empty.as_path(),
            py311,
            "--exclude _nosuch: not an extension module",
        ),
        (
            vec![old_finder.as_path()],
            vec!["--stdlib"],
            empty.as_path(),
            py311,
            "older patch-uwsgi",
        ),
        (
            vec![good.as_path()],
            vec![],
            empty.as_path(),
            py312,
            "is tagged cp311",
        ),
        (
            vec![good.as_path()],
            vec![],
            a_file.as_path(),
            py311,
            "the output folder is a file",
        ),
        (
            vec![good.as_path(), not_a_zip.as_path()],
            vec![],
            empty.as_path(),
            py311,
            "not a readable wheel",
        ),
        (
            vec![shared.as_path()],
            vec![],
            empty.as_path(),
            py311,
            "links a shared libpython",
        ),
        (
            vec![plain.as_path()],
            vec![],
            empty.as_path(),
            py311,
            "no executable in it embeds",
        ),
        (
            vec![repaired.as_path()],
            vec![],
            empty.as_path(),
            py311,
            "already repaired by auditwheel (uwsgi.scripts/uwsgi): bundle the wheel as built, \
             before `auditwheel repair`",
        ),
    ] {
        let out = bundle_with(&wheels, out_dir, python, &options);
        let (_, stderr) = support::texts(&out);
        assert_eq!(out.status.code(), Some(2), "{wanted}: {stderr}");
        assert!(
            stderr.contains(wanted) && stderr.contains("nothing was written"),
            "{wanted}: {stderr}"
        );
        assert_eq!(
            std::fs::read_dir(&empty).unwrap().count(),
            0,
            "{wanted}: wrote something"
        );
    }

    // A folder that cannot be written: for root (who writes anywhere), a read-only bind mount
    // of it in a private mount namespace; for anyone else, a folder without write permission.
    let readonly = dir("read-only");
    let mut command = if support::running_as_root() {
        let mut command = Command::new("unshare");
        command
            .args(["-m", "sh", "-c"])
            .arg(
                "mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" && shift && \
                 exec \"$@\"",
            )
            .arg("sh")
            .arg(&readonly)
            .arg(env!("CARGO_BIN_EXE_patch_uwsgi"));
        command
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&readonly, std::fs::Permissions::from_mode(0o555)).unwrap();
        Command::new(env!("CARGO_BIN_EXE_patch_uwsgi"))
    };
    let out = command
        .env_remove("PATCH_UWSGI_LIBPYTHON")
        .arg("bundle")
        .arg(&good)
        .arg("-w")
        .arg(&readonly)
        .arg("--python")
        .arg(py311)
        .output()
        .unwrap();
    let (_, stderr) = support::texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write a wheel there") && stderr.contains("nothing was written"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(&readonly).unwrap().count(), 0);

    // The good wheel is good: alone, it bundles.
    let out = bundle(&[&good], &empty, py311);
    assert_eq!(out.status.code(), Some(0), "{:?}", support::texts(&out));
}
