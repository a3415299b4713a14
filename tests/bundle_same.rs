//! `bundle` (Rust) against the Python script it replaced (`tests/support/bundle_wheel_old.py`,
//! `src/runtime/bundle_wheel.py` as it was at 0c54b28, run as `bundle` ran it): on a real
//! uWSGI 2.0.31 wheel from `pip wheel` for a static-only CPython 3.11, both write wheels with
//! the same members in the same order, each with the same content (sha256), mode bits, date
//! and compression method, the same RECORD, and the same report; plain, with `--stdlib`, with
//! `--exclude`, and bundling an already bundled wheel again. The compressed bytes differ (the
//! members kept are copied as they were compressed, not recompressed), which is the point.

mod support;

use std::path::Path;
use std::process::Command;

use support::tools::{pip_wheel, run_ok, tool_wheels};
use support::uwsgi::{apply_from_tarball, uwsgi_source};

/// Each member of a zip file as `name mode date method sha256`, in order (Python's zipfile).
fn listing(wheel: &Path) -> Vec<String> {
    let lister = "import hashlib, sys, zipfile\n\
        z = zipfile.ZipFile(sys.argv[1])\n\
        for i in z.infolist():\n\
        \x20   print(i.filename, oct(i.external_attr >> 16), '%04d-%02d-%02d.%02d:%02d:%02d' % i.date_time,\n\
        \x20         i.compress_type, hashlib.sha256(z.read(i)).hexdigest())\n";
    let out = Command::new("python3")
        .args(["-c", lister])
        .arg(wheel)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", support::texts(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The text of one member.
fn member(wheel: &Path, name: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())",
        ])
        .arg(wheel)
        .arg(name)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", support::texts(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// The report's fields both implementations fill the same way.
fn comparable(report: &serde_json::Value) -> serde_json::Value {
    let mut report = report.clone();
    report.as_object_mut().unwrap().remove("command");
    for wheel in report["wheels"].as_array_mut().unwrap() {
        let wheel = wheel.as_object_mut().unwrap();
        // Another compression of the members kept: another size.
        wheel.remove("bytes_after");
        wheel.remove("output");
    }
    report
}

#[test]
fn rust_bundle_writes_what_the_python_script_wrote() {
    let Some(tools) = tool_wheels() else { return };
    let Some(py) = support::static_python("3.11") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let Some(tree) = uwsgi_source("2.0.31", work.path()) else {
        return;
    };
    let manylinux_root = support::uwsgi::manylinux_root(&py);
    apply_from_tarball(&py, &tree, manylinux_root.path());
    let built = work.path().join("built");
    run_ok(pip_wheel(&py.python, &tools, &tree, &built), "pip wheel");
    let wheel = support::only_wheel(&built);

    let old_script = support::repo().join("tests/support/bundle_wheel_old.py");
    let mut compared = 0;
    for (name, options) in [
        ("plain", vec![]),
        ("stdlib", vec!["--stdlib"]),
        ("exclude", vec!["--exclude", "math,_json"]),
        // A bundled wheel bundled again: the earlier runtime members are dropped, then added.
        ("again", vec![]),
    ] {
        let input = if name == "again" {
            support::only_wheel(&work.path().join("new-plain"))
        } else {
            wheel.clone()
        };
        let old_dir = work.path().join(format!("old-{name}"));
        let new_dir = work.path().join(format!("new-{name}"));
        let mut old = Command::new(&py.python);
        old.arg("-S").arg(&old_script);
        old.args(&options).arg(&old_dir).arg(&input);
        old.env("PYTHONHASHSEED", "0");
        let old_out = old.output().unwrap();
        assert!(
            old_out.status.success(),
            "{name}: {:?}",
            support::texts(&old_out)
        );
        let new_out = support::bin()
            .arg("bundle")
            .arg(&input)
            .arg("-w")
            .arg(&new_dir)
            .arg("--python")
            .arg(&py.python)
            .arg("--json")
            .args(&options)
            .output()
            .unwrap();
        let (stdout, stderr) = support::texts(&new_out);
        assert_eq!(new_out.status.code(), Some(0), "{name}: {stderr}");

        let old_report: serde_json::Value = serde_json::from_slice(&old_out.stdout).unwrap();
        let new_report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(
            comparable(&new_report),
            comparable(&old_report),
            "{name}: the reports differ"
        );
        let (old_wheel, new_wheel) = (support::only_wheel(&old_dir), support::only_wheel(&new_dir));
        let (old_members, new_members) = (listing(&old_wheel), listing(&new_wheel));
        assert!(old_members.len() > 40, "{name}: {old_members:?}");
        for (index, (old, new)) in old_members.iter().zip(&new_members).enumerate() {
            assert_eq!(new, old, "{name}: member {index} differs");
        }
        assert_eq!(
            new_members.len(),
            old_members.len(),
            "{name}: {new_members:?}"
        );
        let record = new_members
            .iter()
            .map(|line| line.split(' ').next().unwrap())
            .find(|n| n.ends_with(".dist-info/RECORD"))
            .unwrap();
        assert_eq!(
            member(&new_wheel, record),
            member(&old_wheel, record),
            "{name}: RECORD"
        );
        compared += 1;
    }
    assert_eq!(compared, 4);

    // `verify --wheel` of the bundled wheel: one line per step on stderr, with its time.
    let out = support::bin()
        .arg("verify")
        .arg("--wheel")
        .arg(support::only_wheel(&work.path().join("new-plain")))
        .arg("--python")
        .arg(&py.python)
        .output()
        .unwrap();
    let (stdout, stderr) = support::texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout} {stderr}");
    let steps: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("patch_uwsgi verify --wheel: "))
        .filter_map(|l| l.strip_suffix(" s"))
        .filter_map(|l| l.split_once(' ').map(|(step, _)| step))
        .collect();
    assert_eq!(steps, ["probe", "install", "run"], "{stderr}");
}
