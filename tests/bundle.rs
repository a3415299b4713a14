//! `bundle` on small synthetic wheels, with pyenv's CPython 3.11 as the build interpreter: where
//! it finds the executables that carry the runtime finder (anywhere in the wheel, under any
//! name), what it refuses, that it makes a missing output folder, and that a bundle failing
//! half-way through its renames leaves the output folder as it was. No uWSGI build, no root:
//! the wheels built by real uWSGI builds go through `tests/runtime.rs` and `tests/shapes.rs`.

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
    support::bin()
        .arg("bundle")
        .args(wheels)
        .arg("-w")
        .arg(out_dir)
        .arg("--python")
        .arg(python)
        .arg("--json")
        .output()
        .unwrap()
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
