//! The runtime finder on its own: the C that the patched `uwsgiplugin.py` compiles into a static
//! uwsgi (`src/recipes/runtime_finder.c`, which the recipe block carries verbatim), compiled
//! with warnings as errors by every C compiler present (gcc and clang), with a `main` that prints what the constructor set. The program is
//! hard-linked into fake install layouts (a venv's `bin/`, auditwheel's `.scripts/`, package
//! data at several depths, `pip install --user` and `--target`, a system prefix, an unpacked
//! wheel) and run there with a chosen environment. Needs no root and no uWSGI build.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const FINDER: &str = include_str!("../src/recipes/runtime_finder.c");

/// What the constructor leaves for uWSGI, printed by the test's `main`.
const VARIABLES: &[&str] = &[
    "UWSGI_PYTHONPATH",
    "UWSGI_PYTHON_PATH",
    "UWSGI_PP",
    "UWSGI_HOME",
];

/// The finder's C for Python 3.11, as the patched plugin writes it, plus a `main`.
fn finder_source() -> String {
    let mut source = FINDER
        .replace("@PY@", "3.11")
        .replace("@ZIP@", "lib/python311.zip");
    source.push_str("\nint main(void) {\n");
    for name in VARIABLES {
        source.push_str(&format!(
            "    printf(\"{name}=%s\\n\", getenv(\"{name}\") ? getenv(\"{name}\") : \"-\");\n"
        ));
    }
    source.push_str("    return 0;\n}\n");
    source
}

/// The C compilers on this machine (gcc is required; clang is used when installed).
fn compilers() -> Vec<&'static str> {
    let present = |cc: &str| {
        Command::new(cc)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(
        present("gcc"),
        "gcc is needed to compile the runtime finder"
    );
    ["gcc", "clang"]
        .into_iter()
        .filter(|cc| present(cc))
        .collect()
}

/// The finder compiled by `cc` with warnings as errors, into `dir/finder-<cc>`.
fn compile(cc: &str, dir: &Path) -> PathBuf {
    let source = dir.join("finder.c");
    std::fs::write(&source, finder_source()).unwrap();
    let program = dir.join(format!("finder-{cc}"));
    let out = Command::new(cc)
        .args(["-Wall", "-Wextra", "-Werror", "-O2", "-o"])
        .arg(&program)
        .arg(&source)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cc} -Wall -Wextra -Werror fails on the runtime finder:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    program
}

/// One fake install: folders and files under a root, where the program goes, the environment.
struct Layout {
    name: &'static str,
    /// Folders to make (relative to the root).
    dirs: &'static [&'static str],
    /// Empty files to make.
    files: &'static [&'static str],
    /// Where the program is linked to.
    program: &'static str,
    /// A symlink to the program (as a console script's target would be a link), if any, and
    /// the path run is then the link.
    link: Option<&'static str>,
    /// Environment beyond `PATH=<root>/sys/bin` (where a python3.11 of a prefix with a stdlib
    /// lives); `{root}` is replaced.
    env: &'static [(&'static str, &'static str)],
    /// No python3.11 on PATH.
    no_path_python: bool,
    /// Expected values (`-` for unset); `{root}` is replaced.
    expected: &'static [(&'static str, &'static str)],
}

const VENV_RUNTIME: &str = "venv/lib/python3.11/site-packages/patch_uwsgi_runtime/python3.11";

fn layouts() -> Vec<Layout> {
    const DYNLOAD: &str =
        "{root}/venv/lib/python3.11/site-packages/patch_uwsgi_runtime/python3.11/lib-dynload";
    vec![
        Layout {
            name: "no bundle: nothing set",
            dirs: &["venv/bin", "venv/lib/python3.11/site-packages"],
            files: &["venv/pyvenv.cfg"],
            program: "venv/lib/python3.11/site-packages/uwsgi.scripts/uwsgi",
            link: None,
            env: &[],
            no_path_python: false,
            expected: &[("UWSGI_PYTHONPATH", "-"), ("UWSGI_HOME", "-")],
        },
        Layout {
            name: "a venv's bin/: CPython finds the venv itself",
            dirs: &["{runtime}/lib-dynload", "venv/bin"],
            files: &["venv/pyvenv.cfg"],
            program: "venv/bin/uwsgi",
            link: None,
            env: &[],
            no_path_python: false,
            expected: &[("UWSGI_PYTHONPATH", DYNLOAD), ("UWSGI_HOME", "-")],
        },
        Layout {
            name: "auditwheel's <dist>.scripts/: the venv is the home",
            dirs: &["{runtime}/lib-dynload"],
            files: &["venv/pyvenv.cfg"],
            program: "venv/lib/python3.11/site-packages/uwsgi.scripts/uwsgi",
            link: None,
            env: &[],
            no_path_python: false,
            expected: &[("UWSGI_PYTHONPATH", DYNLOAD), ("UWSGI_HOME", "{root}/venv")],
        },
        Layout {
            name: "package data five levels below the venv",
            dirs: &["{runtime}/lib-dynload"],
            files: &["venv/pyvenv.cfg"],
            program: "venv/lib/python3.11/site-packages/myserver/bin/myserver",
            link: None,
            env: &[],
            no_path_python: false,
            expected: &[("UWSGI_PYTHONPATH", DYNLOAD), ("UWSGI_HOME", "{root}/venv")],
        },
        Layout {
            name: "package data deeper still, no python on PATH",
            dirs: &["{runtime}/lib-dynload"],
            files: &["venv/pyvenv.cfg"],
            program: "venv/lib/python3.11/site-packages/myserver/_vendor/server/libexec/bin/myserver",
            link: None,
            env: &[],
            no_path_python: true,
            expected: &[("UWSGI_PYTHONPATH", DYNLOAD), ("UWSGI_HOME", "{root}/venv")],
        },
        Layout {
            name: "started through a link in the venv's bin/ (the real path counts)",
            dirs: &["{runtime}/lib-dynload", "venv/bin"],
            files: &["venv/pyvenv.cfg"],
            program: "venv/lib/python3.11/site-packages/myserver/bin/myserver",
            link: Some("venv/bin/myserver"),
            env: &[],
            no_path_python: false,
            expected: &[("UWSGI_PYTHONPATH", DYNLOAD), ("UWSGI_HOME", "{root}/venv")],
        },
        Layout {
            name: "a venv whose platlib is lib64 (Fedora)",
            dirs: &["venv/lib64/python3.11/site-packages/patch_uwsgi_runtime/python3.11/lib-dynload"],
            files: &["venv/pyvenv.cfg"],
            program: "venv/lib64/python3.11/site-packages/myserver/bin/myserver",
            link: None,
            env: &[],
            no_path_python: false,
            expected: &[
                (
                    "UWSGI_PYTHONPATH",
                    "{root}/venv/lib64/python3.11/site-packages/patch_uwsgi_runtime/python3.11/lib-dynload",
                ),
                ("UWSGI_HOME", "{root}/venv"),
            ],
        },
        Layout {
            name: "the user's options win: UWSGI_HOME kept, the path added",
            dirs: &["{runtime}/lib-dynload"],
            files: &["venv/pyvenv.cfg"],
            program: "venv/lib/python3.11/site-packages/myserver/bin/myserver",
            link: None,
            env: &[("UWSGI_HOME", "/elsewhere")],
            no_path_python: false,
            expected: &[("UWSGI_PYTHONPATH", DYNLOAD), ("UWSGI_HOME", "/elsewhere")],
        },
        Layout {
            name: "the user's PYTHONHOME: no home set",
            dirs: &["{runtime}/lib-dynload"],
            files: &["venv/pyvenv.cfg"],
            program: "venv/lib/python3.11/site-packages/myserver/bin/myserver",
            link: None,
            env: &[("PYTHONHOME", "/elsewhere")],
            no_path_python: false,
            expected: &[("UWSGI_PYTHONPATH", DYNLOAD), ("UWSGI_HOME", "-")],
        },
        Layout {
            name: "the user's UWSGI_PYTHONPATH: the bundle takes the next spelling",
            dirs: &["{runtime}/lib-dynload"],
            files: &["venv/pyvenv.cfg"],
            program: "venv/lib/python3.11/site-packages/myserver/bin/myserver",
            link: None,
            env: &[("UWSGI_PYTHONPATH", "/mine")],
            no_path_python: false,
            expected: &[
                ("UWSGI_PYTHONPATH", "/mine"),
                ("UWSGI_PYTHON_PATH", DYNLOAD),
                ("UWSGI_HOME", "{root}/venv"),
            ],
        },
        Layout {
            name: "a bundled stdlib makes the bundle the home",
            dirs: &["{runtime}/lib-dynload"],
            files: &["venv/pyvenv.cfg", "{runtime}/lib/python311.zip"],
            program: "venv/lib/python3.11/site-packages/myserver/bin/myserver",
            link: None,
            env: &[],
            no_path_python: false,
            expected: &[
                ("UWSGI_PYTHONPATH", DYNLOAD),
                ("UWSGI_HOME", "{root}/{runtime}"),
            ],
        },
        Layout {
            name: "pip install --user: the system python3.11 on PATH is the home",
            dirs: &[".local/lib/python3.11/site-packages/patch_uwsgi_runtime/python3.11/lib-dynload"],
            files: &[],
            program: ".local/lib/python3.11/site-packages/myserver/bin/myserver",
            link: Some(".local/bin/myserver"),
            env: &[],
            no_path_python: false,
            expected: &[
                (
                    "UWSGI_PYTHONPATH",
                    "{root}/.local/lib/python3.11/site-packages/patch_uwsgi_runtime/python3.11/lib-dynload",
                ),
                ("UWSGI_HOME", "{root}/sys"),
            ],
        },
        Layout {
            name: "pip install --target: the system python3.11 on PATH is the home",
            dirs: &["target/patch_uwsgi_runtime/python3.11/lib-dynload"],
            files: &[],
            program: "target/bin/uwsgi",
            link: None,
            env: &[],
            no_path_python: false,
            expected: &[
                (
                    "UWSGI_PYTHONPATH",
                    "{root}/target/patch_uwsgi_runtime/python3.11/lib-dynload",
                ),
                ("UWSGI_HOME", "{root}/sys"),
            ],
        },
        Layout {
            name: "pip install --target, no python3.11 anywhere: the path only",
            dirs: &["target/patch_uwsgi_runtime/python3.11/lib-dynload"],
            files: &[],
            program: "target/myserver/bin/myserver",
            link: None,
            env: &[],
            no_path_python: true,
            expected: &[
                (
                    "UWSGI_PYTHONPATH",
                    "{root}/target/patch_uwsgi_runtime/python3.11/lib-dynload",
                ),
                ("UWSGI_HOME", "-"),
            ],
        },
        Layout {
            name: "package data in a prefix's site-packages: that prefix",
            dirs: &["prefix/lib/python3.11/site-packages/patch_uwsgi_runtime/python3.11/lib-dynload"],
            files: &["prefix/lib/python3.11/os.py"],
            program: "prefix/lib/python3.11/site-packages/myserver/bin/myserver",
            link: None,
            env: &[],
            no_path_python: false,
            expected: &[
                (
                    "UWSGI_PYTHONPATH",
                    "{root}/prefix/lib/python3.11/site-packages/patch_uwsgi_runtime/python3.11/lib-dynload",
                ),
                ("UWSGI_HOME", "{root}/prefix"),
            ],
        },
        Layout {
            name: "a prefix's bin/: CPython finds the prefix itself",
            dirs: &["prefix/lib/python3.11/site-packages/patch_uwsgi_runtime/python3.11/lib-dynload"],
            files: &["prefix/lib/python3.11/os.py"],
            program: "prefix/bin/uwsgi",
            link: None,
            env: &[],
            no_path_python: false,
            expected: &[
                (
                    "UWSGI_PYTHONPATH",
                    "{root}/prefix/lib/python3.11/site-packages/patch_uwsgi_runtime/python3.11/lib-dynload",
                ),
                ("UWSGI_HOME", "-"),
            ],
        },
        Layout {
            name: "Debian's /usr/local (dist-packages, no stdlib there): python3.11 on PATH",
            dirs: &["usr/local/lib/python3.11/dist-packages/patch_uwsgi_runtime/python3.11/lib-dynload"],
            files: &[],
            program: "usr/local/lib/python3.11/dist-packages/myserver/bin/myserver",
            link: Some("usr/local/bin/myserver"),
            env: &[],
            no_path_python: false,
            expected: &[
                (
                    "UWSGI_PYTHONPATH",
                    "{root}/usr/local/lib/python3.11/dist-packages/patch_uwsgi_runtime/python3.11/lib-dynload",
                ),
                ("UWSGI_HOME", "{root}/sys"),
            ],
        },
        Layout {
            name: "an unpacked wheel's <dist>.data/scripts/",
            dirs: &["unpacked/patch_uwsgi_runtime/python3.11/lib-dynload"],
            files: &[],
            program: "unpacked/myserver-1.0.data/scripts/myserver",
            link: None,
            env: &[],
            no_path_python: false,
            expected: &[
                (
                    "UWSGI_PYTHONPATH",
                    "{root}/unpacked/patch_uwsgi_runtime/python3.11/lib-dynload",
                ),
                ("UWSGI_HOME", "{root}/sys"),
            ],
        },
        Layout {
            name: "another minor's bundle is not this program's",
            dirs: &["venv/lib/python3.12/site-packages/patch_uwsgi_runtime/python3.12/lib-dynload"],
            files: &["venv/pyvenv.cfg"],
            program: "venv/lib/python3.12/site-packages/myserver/bin/myserver",
            link: None,
            env: &[],
            no_path_python: false,
            expected: &[("UWSGI_PYTHONPATH", "-"), ("UWSGI_HOME", "-")],
        },
    ]
}

/// Build `layout` under `root` with `program` linked in; run it; its printed variables.
fn run_in(layout: &Layout, root: &Path, program: &Path) -> BTreeMap<String, String> {
    let fill = |text: &str| {
        text.replace("{runtime}", VENV_RUNTIME)
            .replace("{root}", &root.display().to_string())
    };
    for dir in layout.dirs {
        std::fs::create_dir_all(root.join(fill(dir))).unwrap();
    }
    for file in layout.files {
        let path = root.join(fill(file));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "").unwrap();
    }
    // A system Python of the same minor, found through PATH.
    std::fs::create_dir_all(root.join("sys/bin")).unwrap();
    std::fs::create_dir_all(root.join("sys/lib/python3.11")).unwrap();
    std::fs::write(root.join("sys/bin/python3.11"), "").unwrap();
    std::fs::write(root.join("sys/lib/python3.11/os.py"), "").unwrap();
    let placed = root.join(layout.program);
    std::fs::create_dir_all(placed.parent().unwrap()).unwrap();
    // A hard link: /proc/self/exe names the path it was started by, and nothing writes it.
    std::fs::hard_link(program, &placed).unwrap();
    let started = match layout.link {
        Some(link) => {
            let link = root.join(link);
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(&placed, &link).unwrap();
            link
        }
        None => placed,
    };
    let mut command = Command::new(&started);
    command.env_clear();
    if !layout.no_path_python {
        command.env("PATH", root.join("sys/bin"));
    }
    for (name, value) in layout.env {
        command.env(name, fill(value));
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}: {out:?}", layout.name);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn runtime_finder_compiles_warning_free_and_finds_its_bundle_from_every_install_layout() {
    let work = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let compilers = compilers();
    for cc in &compilers {
        let program = compile(cc, work.path());
        for (index, layout) in layouts().iter().enumerate() {
            let root = work.path().join(format!("{cc}-{index}"));
            std::fs::create_dir(&root).unwrap();
            // Paths the finder reports are real paths.
            let root = std::fs::canonicalize(&root).unwrap();
            let got = run_in(layout, &root, &program);
            for (name, wanted) in layout.expected {
                let wanted = wanted
                    .replace("{runtime}", VENV_RUNTIME)
                    .replace("{root}", &root.display().to_string());
                let value = got
                    .get(*name)
                    .map(String::as_str)
                    .unwrap_or("(not printed)");
                if value != wanted {
                    failures.push(format!(
                        "{cc}, {}: {name} = {value}, expected {wanted}",
                        layout.name
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("compiled and exercised with {}", compilers.join(", "));
}

/// The mark `bundle` reads to know what the finder in an executable can do.
#[test]
fn finder_carries_its_version_mark() {
    assert!(finder_source().contains("\"patch-uwsgi runtime finder 3\""));
}

/// The finder's C is a file of its own beside the recipe (a C file, so editors, compilers and
/// linters see it as C), and the patched plugin still carries it verbatim, as the raw string the
/// block hands to the link plan.
#[test]
fn the_finder_is_its_own_c_file_inserted_verbatim_into_the_patched_plugin() {
    let recipes = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/recipes");
    let c_file = recipes.join("runtime_finder.c");
    let finder =
        std::fs::read_to_string(&c_file).unwrap_or_else(|e| panic!("{}: {e}", c_file.display()));
    assert!(
        finder.starts_with("/* Written by patch-uwsgi"),
        "{finder:.80}"
    );
    assert!(
        finder.ends_with("}\n"),
        "ends: {:?}",
        &finder[finder.len() - 20..]
    );
    let py_file = recipes.join("plugin_link_plan.py");
    let block =
        std::fs::read_to_string(&py_file).unwrap_or_else(|e| panic!("{}: {e}", py_file.display()));
    assert!(
        !block.contains("#include"),
        "{} still holds C",
        py_file.display()
    );
    let plugin = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("vendor-samples/2.0.31/plugins/python/uwsgiplugin.py"),
    )
    .unwrap();
    let patched = patch_uwsgi::patch_text(
        patch_uwsgi::FileKind::PythonPlugin,
        &plugin,
        "uwsgiplugin.py".as_ref(),
    )
    .unwrap()
    .text;
    assert!(
        patched.contains(&format!(
            "_patch_uwsgi_runtime_finder = r'''\n{finder}'''\n"
        )),
        "the patched plugin does not carry {} verbatim",
        c_file.display()
    );
}
