//! The real binary on temp copies: exit codes, reports, and bad input leaving the tree as it was.

mod support;

use std::ffi::OsStr;
use std::path::Path;

use support::{run, sample_tree, snapshot_dir, texts};

fn python312() -> Option<std::path::PathBuf> {
    support::require_python("3.12").map(|(_, p)| p)
}

fn cmd(args: &[&str], tree: &Path, python: &Path) -> std::process::Output {
    let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    all.push(tree.as_os_str());
    all.push(OsStr::new("--python"));
    all.push(python.as_os_str());
    run(&all)
}

#[test]
fn apply_check_diff_revert_exit_codes_and_json() {
    let Some(python) = python312() else { return };
    let (_tmp, tree) = sample_tree("2.0.31");
    let pristine = snapshot_dir(&tree);

    let out = cmd(&["check"], &tree, &python);
    assert_eq!(out.status.code(), Some(1), "{:?}", texts(&out));
    assert!(texts(&out).0.contains("needs-patch"));

    let out = cmd(&["diff"], &tree, &python);
    assert_eq!(out.status.code(), Some(0));
    let diff = texts(&out).0;
    assert!(
        diff.contains("--- a/uwsgiconfig.py\n+++ b/uwsgiconfig.py")
            && diff.contains("+++ b/plugins/python/patch_uwsgi_plan.json"),
        "{diff}"
    );
    assert_eq!(snapshot_dir(&tree), pristine, "diff changed the tree");
    // --quiet means nothing but errors, for diff too.
    let out = cmd(&["diff", "--quiet"], &tree, &python);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "{:?}", texts(&out));

    let out = cmd(&["apply", "--json"], &tree, &python);
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["uwsgi_version"], "2.0.31");
    // pyenv's CPython is built --enable-shared: auto mode keeps uWSGI's own shared link.
    assert_eq!(report["mode"], "shared");
    assert_eq!(report["libpython"], serde_json::Value::Null);
    let outcomes: Vec<(&str, &str)> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("uwsgiconfig.py", "applied"),
            ("plugins/python/uwsgiplugin.py", "applied"),
            ("plugins/python/patch_uwsgi_plan.json", "applied")
        ]
    );

    let out = cmd(&["apply", "--json"], &tree, &python);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["outcome"] == "unchanged"),
        "{report}"
    );

    let out = cmd(&["check", "--quiet"], &tree, &python);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());

    // The static archive of the same interpreter, asked for explicitly.
    let archive = support::libpl_archive(&python).display().to_string();
    let out = cmd(
        &["check", "--mode", "static", "--libpython", &archive],
        &tree,
        &python,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a plan change is work to do: {:?}",
        texts(&out)
    );
    let out = cmd(
        &[
            "apply",
            "--mode",
            "static",
            "--libpython",
            &archive,
            "--json",
        ],
        &tree,
        &python,
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["mode"], "static");
    assert_eq!(report["libpython"], archive.as_str());

    let out = run(&[OsStr::new("revert"), tree.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    assert_eq!(snapshot_dir(&tree), pristine, "revert is not byte-exact");
}

#[test]
fn version_help_and_usage_errors() {
    let out = run(&[OsStr::new("--version")]);
    assert_eq!(
        texts(&out).0.trim(),
        format!("patch_uwsgi {}", env!("CARGO_PKG_VERSION"))
    );
    let out = run(&[OsStr::new("--help")]);
    assert!(texts(&out).0.contains("patch_uwsgi apply  [DIR]"));
    for args in [
        &["frobnicate"][..],
        &[],
        &["apply", "--mode", "dynamic"],
        &["apply", "--bogus"],
    ] {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            texts(&out).1.contains("--help"),
            "{args:?}: {:?}",
            texts(&out)
        );
    }
}

/// How to break a fresh 2.0.31 copy for one bad-input case.
type Breaker = Box<dyn Fn(&Path)>;

#[test]
fn bad_input_exits_2_names_the_problem_and_changes_nothing() {
    let Some(python) = python312() else { return };
    let edit = |tree: &Path, file: &str, from: &str, to: &str| {
        let path = tree.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    let cases: Vec<(&str, Breaker, &[&str])> = vec![
        (
            "missing plugin",
            Box::new(|t: &Path| {
                std::fs::remove_file(t.join("plugins/python/uwsgiplugin.py")).unwrap()
            }),
            &["uwsgiplugin.py is missing"],
        ),
        (
            "anchor removed",
            Box::new(move |t: &Path| {
                edit(
                    t,
                    "plugins/python/uwsgiplugin.py",
                    "else:\n    LIBS = []",
                    "LIBS = LIBS",
                )
            }),
            &[
                "uwsgiplugin.py",
                "recipe `plugin-link-plan`",
                "found nothing",
            ],
        ),
        (
            "anchor duplicated",
            Box::new(move |t: &Path| {
                edit(
                    t,
                    "plugins/python/uwsgiplugin.py",
                    "else:\n    LIBS = []",
                    "else:\n    LIBS = []\nelse:\n    LIBS = []",
                )
            }),
            &["recipe `plugin-link-plan`", "2 matches, at lines 101, 103"],
        ),
        (
            "anchor indented",
            Box::new(move |t: &Path| {
                edit(
                    t,
                    "uwsgiconfig.py",
                    "uwsgi_version = '2.0.31'",
                    "if True:\n    uwsgi_version = '2.0.31'",
                )
            }),
            &["has no line `uwsgi_version"],
        ),
        (
            "legacy block",
            Box::new(move |t: &Path| {
                let path = t.join("plugins/python/uwsgiplugin.py");
                let mut text = std::fs::read_to_string(&path).unwrap();
                text.push_str(
                    "# ci: append static libpython\nLIBS.append('/opt/libpython3.12.a')\n",
                );
                std::fs::write(&path, text).unwrap();
            }),
            &[
                "line 103",
                "hand-appended block",
                "# ci: append static libpython",
            ],
        ),
        (
            "not utf-8",
            Box::new(|t: &Path| {
                let path = t.join("uwsgiconfig.py");
                let mut bytes = std::fs::read(&path).unwrap();
                bytes.extend_from_slice(b"# \xff\n");
                std::fs::write(&path, bytes).unwrap();
            }),
            &["uwsgiconfig.py is not valid UTF-8"],
        ),
    ];
    for (name, breaker, wanted) in cases {
        let (_tmp, tree) = sample_tree("2.0.31");
        breaker(&tree);
        let before = snapshot_dir(&tree);
        let out = cmd(&["apply"], &tree, &python);
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        for w in wanted {
            assert!(stderr.contains(w), "{name}: wanted {w:?} in {stderr}");
        }
        assert_eq!(snapshot_dir(&tree), before, "{name}: the tree changed");
    }
}

#[test]
fn an_option_of_another_command_exits_2_and_changes_nothing() {
    let (_tmp, tree) = sample_tree("2.0.31");
    let patched = run(&[
        OsStr::new("apply"),
        tree.as_os_str(),
        OsStr::new("--mode"),
        OsStr::new("nolib"),
        OsStr::new("--probe"),
        saved_probe("pyenv-cpython-3.12.1.json").as_os_str(),
    ]);
    assert_eq!(patched.status.code(), Some(0), "{:?}", texts(&patched));
    let before = snapshot_dir(&tree);
    let cases: [(&[&OsStr], &str); 3] = [
        (
            &[
                OsStr::new("revert"),
                tree.as_os_str(),
                OsStr::new("--python"),
                OsStr::new("python3"),
            ],
            "--python does not apply to revert",
        ),
        (
            &[OsStr::new("locate"), OsStr::new("--no-release-check")],
            "--no-release-check does not apply to locate",
        ),
        (
            &[
                OsStr::new("apply"),
                tree.as_os_str(),
                OsStr::new("--stdlib"),
            ],
            "--stdlib does not apply to apply",
        ),
    ];
    for (args, wanted) in cases {
        let out = run(args);
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert_eq!(snapshot_dir(&tree), before, "{args:?} changed the tree");
    }
}

#[test]
fn bad_folders_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let project = dir.path().join("project");
    let (_tmp, tree) = sample_tree("2.0.31");
    support::copy_tree(&tree, &project.join("uwsgi"));
    let cases: Vec<(std::path::PathBuf, String)> = vec![
        (dir.path().join("nope"), "is not a folder".into()),
        (file.clone(), "is not a folder".into()),
        (
            project.clone(),
            format!(
                "a uWSGI tree sits one level below, at {}",
                project.join("uwsgi").display()
            ),
        ),
    ];
    for (path, wanted) in cases {
        for command in ["apply", "revert", "check", "diff"] {
            // revert takes no interpreter (and refuses --python).
            let python: &[&OsStr] = if command == "revert" {
                &[]
            } else {
                &[OsStr::new("--python"), OsStr::new("/nonexistent/python")]
            };
            let mut args = vec![OsStr::new(command), path.as_os_str()];
            args.extend(python);
            let out = run(&args);
            let (_, stderr) = texts(&out);
            assert_eq!(out.status.code(), Some(2), "{command} {}", path.display());
            assert!(
                stderr.contains(&wanted) && stderr.contains(&path.display().to_string()),
                "{command}: {stderr}"
            );
        }
    }
}

#[test]
fn verify_wheel_keeps_no_venv_over_an_existing_folder() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = dir.path().join("u-1-cp311-cp311-linux_x86_64.whl");
    std::fs::write(&wheel, b"PK\x03\x04 enough for the magic").unwrap();
    let venv = dir.path().join("venv");
    std::fs::create_dir(&venv).unwrap();
    std::fs::write(venv.join("mine.txt"), "kept").unwrap();
    let out = run(&[
        OsStr::new("verify"),
        OsStr::new("--wheel"),
        wheel.as_os_str(),
        OsStr::new("--venv"),
        venv.as_os_str(),
        OsStr::new("--python"),
        OsStr::new("/nonexistent/python"),
    ]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{} already exists", venv.display())),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&venv).unwrap().flatten().collect();
    assert_eq!(left.len(), 1);
    assert_eq!(
        std::fs::read_to_string(venv.join("mine.txt")).unwrap(),
        "kept"
    );
}

#[test]
fn interpreter_problems_exit_2() {
    let (_tmp, tree) = sample_tree("2.0.31");
    let before = snapshot_dir(&tree);
    let dir = tempfile::tempdir().unwrap();
    let fake_pypy = support::script(
        dir.path(),
        "pypy3",
        "echo '{\"implementation\": \"PyPy\", \"version\": \"3.10.14\", \"abiflags\": \"\", \"executable\": \"/x\", \"prefix\": \"/x\", \"base_prefix\": \"/x\", \"builtin_modules\": [], \"config\": {}}'\n",
    );
    let not_python = support::script(
        dir.path(),
        "false-python",
        "echo 'I am not Python' >&2\nexit 3\n",
    );
    let crashing = support::script(dir.path(), "crashing-python", "kill -SEGV $$\n");
    // exec: the process killed at the time limit is the one holding the pipes.
    let hanging = support::script(dir.path(), "hanging-python", "exec sleep 60\n");
    let cases: Vec<(&Path, &str)> = vec![
        (Path::new("/nonexistent/python"), "cannot run it"),
        (&fake_pypy, "is PyPy 3.10.14, not CPython"),
        (&not_python, "I am not Python"),
        (&crashing, "SIGSEGV"),
        (&hanging, "did not answer within 1 s; it was stopped"),
    ];
    for (python, wanted) in cases {
        let out = support::apply_command(&tree, python)
            .env("PATCH_UWSGI_PROBE_TIMEOUT", "1")
            .output()
            .unwrap();
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(wanted) && stderr.contains(&python.display().to_string()),
            "{stderr}"
        );
    }
    assert_eq!(snapshot_dir(&tree), before);
}

/// A saved probe from vendor-samples (no interpreter launched).
fn saved_probe(name: &str) -> std::path::PathBuf {
    support::repo().join("vendor-samples/sysconfig").join(name)
}

#[test]
fn closed_stdout_is_not_a_panic() {
    // The reader of the pipe is gone before anything is written, as in
    // `patch_uwsgi locate --json | (exec 0<&-; true)`: the write fails with EPIPE.
    let Some(python) = python312() else { return };
    let archive = support::libpl_archive(&python);
    let cases: Vec<Vec<&OsStr>> = vec![
        vec![
            OsStr::new("locate"),
            OsStr::new("--json"),
            OsStr::new("--no-pie"),
            OsStr::new("no"),
            OsStr::new("--python"),
            python.as_os_str(),
            OsStr::new("--libpython"),
            archive.as_os_str(),
        ],
        vec![OsStr::new("--help")],
        vec![OsStr::new("--version")],
    ];
    for args in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = support::bin()
            .args(&args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

#[test]
fn libpython_variable_means_static_like_the_option() {
    // pyenv's 3.12 has a usable libpython3.12.so, so `auto` alone plans `shared`; an archive
    // named by PATCH_UWSGI_LIBPYTHON asks for static, exactly as --libpython does.
    let Some(python) = python312() else { return };
    let archive = support::libpl_archive(&python);
    let (_tmp, tree) = sample_tree("2.0.31");
    let plan_of = |extra: &[&OsStr], env: Option<&Path>| {
        let mut command = support::bin();
        command
            .args(["diff", "--json", "--no-pie", "no"])
            .arg(&tree)
            .arg("--python")
            .arg(&python)
            .args(extra);
        if let Some(env) = env {
            command.env("PATCH_UWSGI_LIBPYTHON", env);
        }
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (json["mode"].clone(), json["libpython"].clone())
    };
    let archive_json = serde_json::json!(archive);
    assert_eq!(plan_of(&[], None).0, "shared");
    for (extra, env) in [
        (vec![OsStr::new("--libpython"), archive.as_os_str()], None),
        (vec![], Some(archive.as_path())),
    ] {
        let (mode, libpython) = plan_of(&extra, env);
        assert_eq!(mode, "static", "{extra:?} {env:?}");
        assert_eq!(libpython, archive_json, "{extra:?} {env:?}");
    }
    // locate agrees.
    let out = support::bin()
        .args(["locate", "--json", "--no-pie", "no", "--python"])
        .arg(&python)
        .env("PATCH_UWSGI_LIBPYTHON", &archive)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (json["mode"].clone(), json["source"].clone()),
        (serde_json::json!("static"), serde_json::json!("env"))
    );
}

#[test]
fn new_files_respect_the_umask_and_existing_files_keep_their_mode() {
    use std::os::unix::fs::PermissionsExt;
    let (_tmp, tree) = sample_tree("2.0.31");
    let config = tree.join("uwsgiconfig.py");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o751)).unwrap();
    for (umask, plan_mode) in [("027", 0o640), ("002", 0o664)] {
        let _ = std::fs::remove_file(tree.join("plugins/python/patch_uwsgi_plan.json"));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_patch_uwsgi"))
            .args(["apply", "--mode", "nolib", "--probe"])
            .arg(saved_probe("pyenv-cpython-3.12.1.json"))
            .arg(&tree)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode(&tree.join("plugins/python/patch_uwsgi_plan.json")),
            plan_mode,
            "umask {umask}"
        );
        assert_eq!(mode(&config), 0o751, "an existing file's mode changed");
    }
}

#[test]
fn readme_command_line_block_is_the_help_text() {
    let out = run(&[OsStr::new("--help")]);
    let help = texts(&out).0;
    let readme = std::fs::read_to_string(support::repo().join("README.md")).unwrap();
    let block = readme
        .split("<!-- cli: patch_uwsgi --help -->\n```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```\n").next())
        .expect("README has the help block");
    assert_eq!(
        block, help,
        "README's command-line block differs from --help"
    );
}

#[test]
fn probe_is_cached_until_the_interpreter_changes() {
    // A wrapper logs each launch of the interpreter. The second `check` answers from the
    // cache (no launch); touching the interpreter makes the next one probe again.
    let Some(python) = python312() else { return };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("launches");
    let wrapper = support::script(
        dir.path(),
        "python3.12",
        &format!(
            "echo launch >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            python.display()
        ),
    );
    let cache = dir.path().join("cache");
    let (_tmp, tree) = sample_tree("2.0.31");
    let check = || {
        let out = support::bin()
            .args(["check", "--json"])
            .arg(&tree)
            .arg("--python")
            .arg(&wrapper)
            .env("XDG_CACHE_HOME", &cache)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{:?}", texts(&out));
        let launches = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count();
        (launches, String::from_utf8(out.stdout).unwrap())
    };
    let (first, report) = check();
    assert_eq!(first, 1);
    assert_eq!(
        check(),
        (1, report.clone()),
        "the second check launched Python"
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    let body = std::fs::read_to_string(&wrapper).unwrap();
    std::fs::write(&wrapper, format!("{body}# changed\n")).unwrap();
    assert_eq!(
        check(),
        (2, report),
        "a changed interpreter was not probed again"
    );
}
