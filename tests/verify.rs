//! `patch_uwsgi verify`: a real compiler links a program embedding real CPythons with the
//! plan `apply` writes; it runs and imports lib-dynload modules. Failures are real ones: a
//! non-PIC archive in a PIE link, an archive without libpython's symbols, a CC that refuses,
//! and Debian's stdlib, which lacks the `.so` files a manylinux-style archive needs.

mod support;

use std::ffi::OsStr;
use std::path::Path;

use serde_json::Value;
use support::{bin, static_python, texts};

fn verify(python: &Path, extra: &[&OsStr], env: &[(&str, &OsStr)]) -> (Option<i32>, Value, String) {
    let mut command = bin();
    command
        .args([
            OsStr::new("verify"),
            OsStr::new("--json"),
            OsStr::new("--python"),
        ])
        .arg(python)
        .args(extra);
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    let (stdout, stderr) = texts(&out);
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code(), json, stderr)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn step<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {}", json["steps"]))
}

/// Extension modules every web app needs: at least these must import embedded.
const MUST_IMPORT: [&str; 6] = ["math", "_socket", "_json", "_struct", "select", "_datetime"];

#[test]
fn static_only_python_from_the_manylinux_tarball_links_runs_and_imports() {
    let Some(py) = static_python("3.12") else {
        return;
    };
    let member = format!(
        "{}/lib/libpython3.12.a",
        py.prefix.file_name().unwrap().to_str().unwrap()
    );
    let root = support::manylinux_root(&[(&member, &py.archive)]);
    let cache = tempfile::tempdir().unwrap();
    let args = [OsStr::new("--manylinux-root"), root.path().as_os_str()];
    let env = [("XDG_CACHE_HOME", cache.path().as_os_str())];
    let (code, json, stderr) = verify(&py.python, &args, &env);
    assert_eq!(code, Some(0), "{stderr}\n{json:#}");
    assert_eq!(json["ok"], true);
    assert_eq!(json["version"], py.version);
    assert_eq!(json["plan"]["source"], "manylinux-tarball");
    assert_eq!(json["failure"], Value::Null);
    assert_eq!(json["import_failures"], serde_json::json!([]));
    let imported = strings(&json["imported"]);
    assert!(imported.len() >= 20, "{imported:?}");
    for module in MUST_IMPORT {
        assert!(
            imported.iter().any(|m| m == module),
            "{module} not in {imported:?}"
        );
    }
    // The archive's own builtins: the core is in, the extension modules are not.
    let builtin = strings(&json["builtin_modules"]);
    for module in ["sys", "posix", "_io"] {
        assert!(builtin.iter().any(|m| m == module), "{builtin:?}");
    }
    assert!(!builtin.iter().any(|m| m == "math"), "{builtin:?}");

    // The link is uWSGI's: objects, then -rdynamic, then the plan's libs in their order.
    let link = strings(&step(&json, "link")["command"]);
    let object = link.iter().position(|a| a.ends_with("embed.o")).unwrap();
    let rdynamic = link.iter().position(|a| a == "-rdynamic").unwrap();
    let plan_libs = strings(&json["plan"]["libs"]);
    assert!(
        plan_libs[0].starts_with("-Wl,--whole-archive,"),
        "{plan_libs:?}"
    );
    assert!(object < rdynamic);
    assert_eq!(&link[link.len() - plan_libs.len()..], plan_libs.as_slice());

    // Exactly the plan apply writes for the same interpreter and options.
    let (_tmp, tree) = support::sample_tree("2.0.31");
    let out = support::apply_command(&tree, &py.python)
        .env("XDG_CACHE_HOME", cache.path())
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    let written: Value = serde_json::from_slice(
        &std::fs::read(tree.join("plugins/python/patch_uwsgi_plan.json")).unwrap(),
    )
    .unwrap();
    let mut verified = json["plan"].clone();
    // The archive was extracted by verify; apply finds it where it was put.
    verified["source"] = "libdir".into();
    assert_eq!(written["plans"][0], verified);

    // Human output names every step and ends with the verdict.
    let out = bin()
        .env("XDG_CACHE_HOME", cache.path())
        .args([OsStr::new("verify"), OsStr::new("--python")])
        .arg(&py.python)
        .args(args)
        .output()
        .unwrap();
    let (stdout, _) = texts(&out);
    for word in [
        "probe",
        "locate",
        "compile",
        "link",
        "run",
        "compiled into the archive",
    ] {
        assert!(stdout.contains(word), "{word} missing from\n{stdout}");
    }
    assert!(
        stdout.lines().last().unwrap().starts_with("ok in "),
        "{stdout}"
    );
}

#[test]
fn every_abi_from_2_7_to_3_13_embeds() {
    // 2.7 (no abiflags, Python 2 C API), 3.6 (`m`), the newest here.
    for minor in ["2.7", "3.6", "3.13"] {
        let Some((_, python)) = support::require_python(minor) else {
            continue;
        };
        let (code, json, stderr) = verify(&python, &[], &[]);
        assert_eq!(code, Some(0), "{minor}: {stderr}\n{json:#}");
        assert_eq!(json["plan"]["source"], "libpl", "{minor}");
        let imported = strings(&json["imported"]);
        assert!(imported.len() >= 20, "{minor}: {imported:?}");
        assert!(imported.iter().any(|m| m == "_socket"), "{minor}");
    }
}

#[test]
fn non_pic_archive_is_retried_with_no_pie_and_the_plan_says_so() {
    let Some(py) = static_python("3.12") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let archive = support::non_pic_archive(dir.path(), "libpython3.12.a", Some(&py.archive));
    let cache = tempfile::tempdir().unwrap();
    let (code, json, stderr) = verify(
        &py.python,
        &[OsStr::new("--libpython"), archive.as_os_str()],
        &[("XDG_CACHE_HOME", cache.path().as_os_str())],
    );
    assert_eq!(code, Some(0), "{stderr}\n{json:#}");
    assert_eq!(json["needs_no_pie"], true);
    // The answer is kept for the apply that follows: it needs no probe link of its own.
    let out = bin()
        .env("XDG_CACHE_HOME", cache.path())
        .args([
            OsStr::new("locate"),
            OsStr::new("--json"),
            OsStr::new("--python"),
        ])
        .arg(&py.python)
        .args([OsStr::new("--libpython"), archive.as_os_str()])
        .output()
        .unwrap();
    let located: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(located["pie_decision"], "cached", "{:?}", texts(&out));
    assert_eq!(located["no_pie"], true);
    assert_eq!(json["plan"]["no_pie"], true);
    assert_eq!(json["plan"]["ldflags"], serde_json::json!(["-no-pie"]));
    let link = strings(&step(&json, "link")["command"]);
    let no_pie = link.iter().position(|a| a == "-no-pie").unwrap();
    let object = link.iter().position(|a| a.ends_with("embed.o")).unwrap();
    assert!(no_pie < object, "{link:?}");

    // The PIC pyenv archive needs nothing.
    let (code, json, _) = verify(
        &py.python,
        &[OsStr::new("--libpython"), py.archive.as_os_str()],
        &[],
    );
    assert_eq!(code, Some(0));
    assert_eq!(json["needs_no_pie"], false);
    assert_eq!(json["plan"]["ldflags"], serde_json::json!([]));
}

#[test]
fn link_failure_reports_the_linkers_own_message() {
    let Some(py) = static_python("3.12") else {
        return;
    };
    // Right name and magic, but no libpython inside.
    let dir = tempfile::tempdir().unwrap();
    let archive = support::non_pic_archive(dir.path(), "libpython3.12.a", None);
    let (code, json, stderr) = verify(
        &py.python,
        &[OsStr::new("--libpython"), archive.as_os_str()],
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}\n{json:#}");
    assert_eq!(json["ok"], false);
    assert_eq!(json["failure"]["step"], "link");
    let message = json["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("undefined reference to `Py_Initialize'"),
        "{message}"
    );
    assert!(step(&json, "link")["command"].is_array());

    // Human form: exit 1, the failing step and the message.
    let out = bin()
        .args([OsStr::new("verify"), OsStr::new("--python")])
        .arg(&py.python)
        .args([OsStr::new("--libpython"), archive.as_os_str()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let (stdout, _) = texts(&out);
    assert!(stdout.contains("FAILED at link:"), "{stdout}");
    assert!(stdout.contains("Py_Initialize"), "{stdout}");
}

#[test]
fn a_link_failing_with_and_without_no_pie_reports_both_errors() {
    let Some((_, python)) = support::require_python("3.12") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Compiles for real; every link fails: without -no-pie with the PIE relocation error (so
    // verify retries), with -no-pie with another message.
    let cc = support::script(
        dir.path(),
        "failing-linker-cc",
        "for a in \"$@\"; do [ \"$a\" = -c ] && exec cc \"$@\"; done\n\
         for a in \"$@\"; do [ \"$a\" = -no-pie ] && { echo 'ld: second error: cannot find -lnothere' >&2; exit 1; }; done\n\
         echo 'ld: first error: relocation R_X86_64_32 can not be used when making a PIE object; recompile with -fPIE' >&2\n\
         exit 1\n",
    );
    let (code, json, stderr) = verify(&python, &[], &[("CC", cc.as_os_str())]);
    assert_eq!(code, Some(1), "{stderr}\n{json:#}");
    assert_eq!(json["failure"]["step"], "link");
    assert_eq!(json["needs_no_pie"], false);
    let message = json["failure"]["message"].as_str().unwrap();
    assert!(message.contains("ld: first error: relocation"), "{message}");
    assert!(
        message.contains("ld: second error: cannot find -lnothere"),
        "{message}"
    );
    assert!(
        message.find("first error") < message.find("with -no-pie:"),
        "{message}"
    );
}

#[test]
fn cc_is_honoured_and_its_failure_reported() {
    let Some((_, python)) = support::require_python("3.12") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    // A wrapper that logs each call and then runs the real compiler.
    let wrapper = support::script(
        dir.path(),
        "logging-cc",
        &format!("echo \"$@\" >> '{}'\nexec cc \"$@\"\n", log.display()),
    );
    // A compiler that refuses every compile (-c) with its own message.
    let refusing = support::script(
        dir.path(),
        "refusing-cc",
        "for a in \"$@\"; do [ \"$a\" = -c ] && { echo 'refusing-cc: no compiling today' >&2; exit 1; }; done\nexec cc \"$@\"\n",
    );
    let (code, json, stderr) = verify(&python, &[], &[("CC", wrapper.as_os_str())]);
    assert_eq!(code, Some(0), "{stderr}\n{json:#}");
    assert_eq!(json["compiler"], wrapper.display().to_string());
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.lines().any(|l| l.contains("embed.c")), "{calls}");
    assert!(calls.lines().any(|l| l.contains("-rdynamic")), "{calls}");

    let (code, json, stderr) = verify(&python, &[], &[("CC", refusing.as_os_str())]);
    assert_eq!(code, Some(1), "{stderr}\n{json:#}");
    assert_eq!(json["failure"]["step"], "compile");
    assert_eq!(
        json["failure"]["message"],
        "refusing-cc: no compiling today"
    );
}

#[test]
fn debian_stdlib_lacks_the_extension_modules_a_static_archive_needs() {
    // The runtime caveat of a static embedding, for real: Debian compiles math, _socket, ... into its
    // python3.11 and ships no .so for them, so a binary embedding a pyenv 3.11 archive and run
    // against Debian's stdlib cannot import them.
    let Some(debian) = support::debian_python311() else {
        return;
    };
    let Some(py) = static_python("3.11") else {
        return;
    };
    let (code, json, stderr) = verify(
        &py.python,
        &[
            OsStr::new("--libpython"),
            py.archive.as_os_str(),
            OsStr::new("--runtime-python"),
            debian.as_os_str(),
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}\n{json:#}");
    // The build itself is fine; only the runtime check fails.
    assert_eq!(json["failure"], Value::Null);
    assert_eq!(json["import_failures"], serde_json::json!([]));
    let runtime = &json["runtime"];
    assert_eq!(runtime["home"], "/usr");
    let failed: Vec<(String, String)> = runtime["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["module"].as_str().unwrap().to_string(),
                f["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for module in ["math", "_socket", "select", "_struct"] {
        let (_, error) = failed
            .iter()
            .find(|(m, _)| m == module)
            .unwrap_or_else(|| panic!("{module} did not fail: {failed:?}"));
        assert!(
            error.starts_with("ModuleNotFoundError"),
            "{module}: {error}"
        );
    }
    let builtin_there = strings(&runtime["builtin_there"]);
    assert!(
        builtin_there.iter().any(|m| m == "math"),
        "{builtin_there:?}"
    );

    // A runtime of another minor is named as the problem.
    let Some((_, other)) = support::require_python("3.12") else {
        return;
    };
    let (code, json, _) = verify(
        &py.python,
        &[
            OsStr::new("--libpython"),
            py.archive.as_os_str(),
            OsStr::new("--runtime-python"),
            other.as_os_str(),
        ],
        &[],
    );
    assert_eq!(code, Some(1));
    let error = json["runtime"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("its stdlib is for Python 3.12, the archive is 3.11"),
        "{error}"
    );
}

#[test]
fn bad_verify_input_exits_2() {
    let Some(py) = static_python("3.12") else {
        return;
    };
    let empty_root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    // No archive anywhere: every candidate is listed.
    let (code, _, stderr) = verify(
        &py.python,
        &[
            OsStr::new("--manylinux-root"),
            empty_root.path().as_os_str(),
        ],
        &[("XDG_CACHE_HOME", cache.path().as_os_str())],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("libpython3.12.a"), "{stderr}");
    assert!(
        stderr.contains("static-libs-for-embedding-only.tar.xz"),
        "{stderr}"
    );
    // Options that do not belong.
    for args in [
        vec!["verify", "--mode", "nolib"],
        vec!["apply", "--runtime-python", "/usr/bin/python3"],
        vec!["verify", "some-dir"],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!texts(&out).1.is_empty(), "{args:?}");
    }
}
