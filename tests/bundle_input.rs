//! `bundle` on damaged input and a full disk, with pyenv's CPython 3.11 as the build
//! interpreter: a truncated wheel, a RECORD that does not match its members, a wheel with no
//! executable at all, and an output folder on a full disk (a small tmpfs in a private mount
//! namespace: root only). Each: exit 2, one message naming the file, nothing left in the output
//! folder. The synthetic wheels are written here with the zip crate.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

/// An executable carrying the current runtime finder for Python 3.11, among other bytes.
fn finder_elf() -> Vec<u8> {
    let mut data = b"\x7fELF\x02\x01\x01\0 ...code... ".to_vec();
    data.extend_from_slice(b"patch-uwsgi runtime finder 3\0/patch_uwsgi_runtime/python3.11\0");
    // Some bulk, so that a wheel is larger than a small full disk's room.
    data.extend((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    data
}

/// The RECORD hash of `data` (sha256, urlsafe base64 without padding), computed here with
/// Python's `base64` semantics spelt out: the test's own encoder, not the library's.
fn hash(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let out = Command::new("python3")
        .args([
            "-c",
            "import base64, sys; print(base64.urlsafe_b64encode(bytes.fromhex(sys.argv[1])).rstrip(b'=').decode())",
        ])
        .arg(digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .output()
        .unwrap();
    assert!(out.status.success());
    format!("sha256={}", String::from_utf8(out.stdout).unwrap().trim())
}

/// `dir/uwsgi-1.0-cp311-cp311-linux_x86_64.whl` with `members`, a WHEEL file and a RECORD
/// listing every member with its true hash and size, except those in `lie` (name, the hash
/// RECORD gives instead).
fn wheel(dir: &Path, members: &[(&str, Vec<u8>)], lie: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("uwsgi-1.0-cp311-cp311-linux_x86_64.whl");
    let mut all: Vec<(String, Vec<u8>)> = members
        .iter()
        .map(|(n, d)| (n.to_string(), d.clone()))
        .collect();
    all.push((
        "uwsgi-1.0.dist-info/WHEEL".into(),
        b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-linux_x86_64\n".to_vec(),
    ));
    let mut record = String::new();
    for (name, data) in &all {
        let recorded = lie
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, h)| h.to_string())
            .unwrap_or_else(|| hash(data));
        record.push_str(&format!("{name},{recorded},{}\n", data.len()));
    }
    record.push_str("uwsgi-1.0.dist-info/RECORD,,\n");
    all.push(("uwsgi-1.0.dist-info/RECORD".into(), record.into_bytes()));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    for (name, data) in &all {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o755);
        zip.start_file(name.as_str(), options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
    path
}

fn bundle(wheel: &Path, out_dir: &Path, python: &Path) -> Output {
    support::bin()
        .arg("bundle")
        .arg(wheel)
        .arg("-w")
        .arg(out_dir)
        .arg("--python")
        .arg(python)
        .output()
        .unwrap()
}

fn python311() -> Option<PathBuf> {
    support::require_python("3.11").map(|(_, path)| path)
}

fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn truncated_mismatched_and_executable_less_wheels_are_refused_by_name() {
    let Some(python) = python311() else { return };
    let work = tempfile::tempdir().unwrap();
    let good = wheel(
        &work.path().join("good"),
        &[
            ("uwsgi-1.0.data/scripts/uwsgi", finder_elf()),
            (
                "uwsgidecorators.py",
                b"def timer(f):\n    return f\n".to_vec(),
            ),
        ],
        &[],
    );
    // Cut in the middle of a member, and cut just before the end of the central directory.
    let bytes = std::fs::read(&good).unwrap();
    let half = work.path().join("half").join(good.file_name().unwrap());
    std::fs::create_dir(half.parent().unwrap()).unwrap();
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let almost = work.path().join("almost").join(good.file_name().unwrap());
    std::fs::create_dir(almost.parent().unwrap()).unwrap();
    std::fs::write(&almost, &bytes[..bytes.len() - 10]).unwrap();
    let mismatched = wheel(
        &work.path().join("mismatched"),
        &[
            ("uwsgi-1.0.data/scripts/uwsgi", finder_elf()),
            (
                "uwsgidecorators.py",
                b"def timer(f):\n    return f\n".to_vec(),
            ),
        ],
        &[(
            "uwsgidecorators.py",
            "sha256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )],
    );
    let no_executable = wheel(
        &work.path().join("no-executable"),
        &[("uwsgidecorators.py", b"pass\n".to_vec())],
        &[],
    );
    let out_dir = work.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    for (input, wanted) in [
        (&half, "not a readable wheel"),
        (&almost, "not a readable wheel"),
        (
            &mismatched,
            "its RECORD does not match the wheel (line 2: uwsgidecorators.py has sha256=",
        ),
        (
            &no_executable,
            "no executable in it embeds a static libpython with patch-uwsgi's runtime finder \
             (ELF files looked at: none, in 3 members)",
        ),
    ] {
        let out = bundle(input, &out_dir, &python);
        let (_, stderr) = support::texts(&out);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", input.display());
        assert!(
            stderr.contains(wanted)
                && stderr.contains(&input.display().to_string())
                && stderr.contains("nothing was written"),
            "{}: {stderr}",
            input.display()
        );
        assert_eq!(names_in(&out_dir), Vec::<String>::new(), "{stderr}");
    }
    // The good wheel is good, and its RECORD checks out. Each step is one line on stderr,
    // with its time.
    let out = bundle(&good, &out_dir, &python);
    let (_, stderr) = support::texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let name = good.file_name().unwrap().to_str().unwrap();
    let steps: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("patch_uwsgi bundle: "))
        .map(|l| l.rsplitn(3, ' ').nth(2).unwrap_or(l))
        .collect();
    assert_eq!(
        steps,
        [
            "probe".to_string(),
            format!("read {name}"),
            "compress".into(),
            format!("write {name}"),
            "rename".into()
        ],
        "{stderr}"
    );
    assert!(stderr.lines().all(|l| l.ends_with(" s")), "{stderr}");
    assert_eq!(
        names_in(&out_dir),
        [good.file_name().unwrap().to_str().unwrap()]
    );
}

/// The output folder on a tmpfs too small for the bundled wheel: the write fails with
/// `No space left on device`, the message names the wheel, and the folder is left empty
/// (looked at inside the namespace, before the tmpfs goes away). A previous wheel of the same
/// name there is kept as it was.
#[test]
fn a_full_disk_leaves_nothing_half_written() {
    let Some(python) = python311() else { return };
    if !support::running_as_root() {
        support::missing("root, to mount a small tmpfs with unshare -m");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let good = wheel(
        &work.path().join("good"),
        &[("uwsgi-1.0.data/scripts/uwsgi", finder_elf())],
        &[],
    );
    let out_dir = work.path().join("full");
    std::fs::create_dir(&out_dir).unwrap();
    let script = "mount -t tmpfs -o size=\"$4\" tmpfs \"$1\" || exit 99\n\
        [ -z \"$5\" ] || printf previous > \"$1/$(basename \"$3\")\"\n\
        \"$2\" bundle \"$3\" -w \"$1\" --python \"$6\"\n\
        rc=$?\n\
        echo \"LEFT:$(ls -A \"$1\" | tr '\\n' ' ')\"\n\
        [ -z \"$5\" ] || echo \"PREVIOUS:$(cat \"$1/$(basename \"$3\")\")\"\n\
        exit $rc\n";
    for previous in ["", "yes"] {
        // 256 KiB: room for the previous wheel, not for the bundled one (MBs of modules).
        let out = Command::new("unshare")
            .args(["-m", "sh", "-c", script, "sh"])
            .arg(&out_dir)
            .arg(env!("CARGO_BIN_EXE_patch_uwsgi"))
            .arg(&good)
            .arg("256k")
            .arg(previous)
            .arg(&python)
            .output()
            .unwrap();
        let (stdout, stderr) = support::texts(&out);
        assert_eq!(out.status.code(), Some(2), "{stdout} {stderr}");
        let target = out_dir.join(good.file_name().unwrap());
        assert!(
            stderr.contains(&format!("{}: cannot write the wheel", target.display()))
                && stderr.contains("No space left on device")
                && stderr.contains("nothing was written"),
            "{stderr}"
        );
        let left = stdout
            .lines()
            .find_map(|l| l.strip_prefix("LEFT:"))
            .unwrap_or_else(|| panic!("{stdout}"));
        if previous.is_empty() {
            assert_eq!(left.trim(), "", "{stdout}");
        } else {
            assert_eq!(
                left.trim(),
                good.file_name().unwrap().to_str().unwrap(),
                "{stdout}"
            );
            assert!(stdout.contains("PREVIOUS:previous"), "{stdout}");
        }
    }
}
