//! Run the patched `uwsgiplugin.py` under real interpreters with a static-only sysconfig (as in
//! manylinux) and assert the exact LIBS and LDFLAGS uwsgiconfig.py would use, order included.

mod support;

use serde_json::json;
use support::{exec_plugin, sample_tree, static_python, texts, StaticPython};

fn whole_archive(py: &StaticPython) -> String {
    format!(
        "-Wl,--whole-archive,{},--no-whole-archive",
        py.archive.display()
    )
}

fn apply(py: &StaticPython, tree: &std::path::Path) {
    apply_with_archive(py, tree, &py.archive);
}

/// `patch_uwsgi apply TREE --python PY --libpython ARCHIVE`, asserting a static plan.
fn apply_with_archive(py: &StaticPython, tree: &std::path::Path, archive: &std::path::Path) {
    let out = support::apply_command(tree, &py.python)
        .arg("--libpython")
        .arg(archive)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("mode static"),
        "auto mode must pick static for a static-only Python: {stdout}"
    );
}

/// (pyenv minor, uWSGI versions to patch, system libraries the archive needs, in order)
const CASES: &[(&str, &[&str], &[&str])] = &[
    ("2.7", &["2.0.17.1", "2.0.31"], &["-ldl", "-lm"]),
    (
        "3.8",
        &["2.0.17.1", "2.0.20", "2.0.21", "2.0.23", "2.0.28", "2.0.31"],
        &["-lcrypt", "-ldl", "-lm"],
    ),
    (
        "3.12",
        &["2.0.23", "2.0.27", "2.0.28", "2.0.31"],
        &["-ldl", "-lm"],
    ),
];

#[test]
fn static_plan_gives_exact_libs_and_ldflags() {
    for &(minor, versions, system) in CASES {
        let Some(py) = static_python(minor) else {
            continue;
        };
        for &version in versions {
            let (_tmp, tree) = sample_tree(version);
            apply(&py, &tree);
            let mut libs = vec![json!(whole_archive(&py))];
            libs.extend(system.iter().map(|s| json!(s)));
            let got = exec_plugin(&py.python, &tree, &["--build", "pyonly"], &[])
                .unwrap_or_else(|e| panic!("{minor} {version}: {e}"));
            assert_eq!(
                got,
                json!({"LIBS": libs, "LDFLAGS": [], "LD_RUN_PATH": null}),
                "{minor} {version}"
            );

            // A shared plugin build links no libpython at all.
            let plugin =
                exec_plugin(&py.python, &tree, &["--plugin", "plugins/python"], &[]).unwrap();
            assert_eq!(
                plugin,
                json!({"LIBS": system, "LDFLAGS": [], "LD_RUN_PATH": null}),
                "{minor} {version} --plugin"
            );

            // pyuwsgi's UWSGI_PYTHON_NOLIB keeps upstream's meaning.
            let nolib =
                exec_plugin(&py.python, &tree, &[], &[("UWSGI_PYTHON_NOLIB", "1")]).unwrap();
            assert_eq!(
                nolib["LIBS"],
                json!([]),
                "{minor} {version} UWSGI_PYTHON_NOLIB"
            );
        }
    }
}

#[test]
fn stock_plugin_shows_the_failure_being_fixed() {
    // Without the patch, 2.0.28+ falls back to -lpython with -L/-rpath into the prefix: the
    // link fails in a static-only container. This is what the patched plugin must not do.
    let Some(py) = static_python("3.12") else {
        return;
    };
    let (_tmp, tree) = sample_tree("2.0.31");
    let got = exec_plugin(&py.python, &tree, &[], &[]).unwrap();
    let libdir = format!("{}/lib", py.prefix.display());
    assert_eq!(
        got["LIBS"].as_array().unwrap().last().unwrap(),
        &json!("-lpython3.12")
    );
    assert_eq!(
        got["LDFLAGS"],
        json!([format!("-L{libdir}"), format!("-Wl,-rpath,{libdir}")])
    );
    assert_eq!(got["LD_RUN_PATH"], json!(libdir));
}

#[test]
fn plan_for_another_python_stops_the_build() {
    let Some(py312) = static_python("3.12") else {
        return;
    };
    let Some(py38) = static_python("3.8") else {
        return;
    };
    let (_tmp, tree) = sample_tree("2.0.31");
    apply(&py312, &tree);
    let err = exec_plugin(&py38.python, &tree, &[], &[]).unwrap_err();
    assert!(err.contains("was made for 3.12"), "{err}");
    assert!(err.contains("Re-run `patch_uwsgi apply --python"), "{err}");
    // After applying for the second Python too, both builds find their own plan.
    apply(&py38, &tree);
    assert!(
        exec_plugin(&py38.python, &tree, &[], &[]).unwrap()["LIBS"][0]
            .as_str()
            .unwrap()
            .contains("libpython3.8.a")
    );
    assert!(
        exec_plugin(&py312.python, &tree, &[], &[]).unwrap()["LIBS"][0]
            .as_str()
            .unwrap()
            .contains("libpython3.12.a")
    );
}

#[test]
fn missing_plan_file_stops_the_build_with_advice() {
    let Some(py) = static_python("3.12") else {
        return;
    };
    let (_tmp, tree) = sample_tree("2.0.31");
    apply(&py, &tree);
    std::fs::remove_file(tree.join(patch_uwsgi::PLAN_FILE)).unwrap();
    let err = exec_plugin(&py.python, &tree, &[], &[]).unwrap_err();
    assert!(
        err.contains("cannot read the link plan") && err.contains("Run `patch_uwsgi apply"),
        "{err}"
    );
}

#[test]
fn archive_path_with_spaces_and_quotes_reaches_the_shell_link_as_one_word() {
    // uwsgiconfig.py joins LIBS into a command line run by the shell.
    for minor in ["2.7", "3.12"] {
        let Some(py) = static_python(minor) else {
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("it's a dir $HOME");
        std::fs::create_dir(&odd).unwrap();
        let archive = odd.join(py.archive.file_name().unwrap());
        std::fs::copy(&py.archive, &archive).unwrap();
        let (_tmp, tree) = sample_tree("2.0.31");
        apply_with_archive(&py, &tree, &archive);
        let libs = exec_plugin(&py.python, &tree, &[], &[]).unwrap()["LIBS"].clone();
        let libs: Vec<String> = libs
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert!(libs[0].starts_with('\''), "{minor}: not quoted: {libs:?}");
        std::fs::write(dir.path().join("main.c"), "int main(void) { return 0; }\n").unwrap();
        let line = format!(
            "cc -o prog main.c -lpthread -lm -rdynamic {}",
            libs.join(" ")
        );
        let out = std::process::Command::new("sh")
            .current_dir(dir.path())
            .arg("-c")
            .arg(&line)
            .output()
            .unwrap();
        assert!(out.status.success(), "{minor}: {line}: {:?}", texts(&out));
    }
}

/// `revert` after a build gives back the tree as it was: the runtime finder's source, which
/// the patched plugin writes into `plugins/python/` when a static executable is built, goes
/// too (whatever patch-uwsgi writes into a tree, `revert` removes).
#[test]
fn revert_after_a_build_removes_what_the_plugin_wrote() {
    let Some(py) = static_python("3.12") else {
        return;
    };
    let (_tmp, tree) = sample_tree("2.0.31");
    let upstream = support::snapshot_dir(&tree);
    apply(&py, &tree);
    exec_plugin(&py.python, &tree, &["--build", "pyonly"], &[]).unwrap();
    let finder = tree.join("plugins/python/patch_uwsgi_runtime.c");
    assert!(finder.is_file(), "the build did not write the finder");
    let out = support::bin().arg("revert").arg(&tree).output().unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("plugins/python/patch_uwsgi_runtime.c"),
        "{stdout}"
    );
    assert!(
        support::snapshot_dir(&tree) == upstream,
        "revert is not byte-exact after a build: {stdout}"
    );
}
