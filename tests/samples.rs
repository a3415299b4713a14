//! Every vendored uWSGI release: snapshots of the plugin's change and of the whole diff (with
//! the blocks every release shares snapshotted once), and the apply / check / revert laws on
//! temp copies.

mod support;

use std::path::{Path, PathBuf};

use patch_uwsgi::{
    FileKind, Interpreter, LinkPlan, Located, Mode, Options, Outcome, PlanFile, PluginVariant,
    Source, Target, PLAN_FILE,
};
use support::{repo, sample_tree, sample_versions, snapshot_dir};

/// A plan made from the saved probe of pyenv's CPython 3.12.1, with the archive where a
/// manylinux image would have it after extraction.
fn plan_312() -> LinkPlan {
    let dump = repo().join("vendor-samples/sysconfig/pyenv-cpython-3.12.1.json");
    let interp = Interpreter::from_json(&std::fs::read_to_string(&dump).unwrap(), &dump).unwrap();
    let located = Located::new(
        PathBuf::from("/opt/_internal/cpython-3.12.1/lib/libpython3.12.a"),
        Source::ManylinuxTarball,
    );
    LinkPlan::with_archive(&interp, Mode::Static, Some(&located), true)
}

/// The recipes rewrite every release whatever the Python: 3.12's plan stands in for any, also
/// for releases that cannot build for 3.12 (the release table is tests/python_support.rs's).
fn options() -> Options {
    Options::default()
        .with_target(Target::Plan(Box::new(plan_312())))
        .with_release_check(false)
}

/// The blocks `patch_uwsgi` adds (`# >>> patch-uwsgi:ID vN >>>` through
/// `# <<< patch-uwsgi:ID <<<`), as `(ID, text)` in the order first met. Each is the same in
/// every release, so it is snapshotted once (`samples__patch_uwsgi_blocks.snap`) and each
/// release's snapshots hold one placeholder line where it stands.
#[derive(Default)]
struct SharedBlocks(Vec<(String, String)>);

impl SharedBlocks {
    fn placeholder(prefix: &str, id: &str) -> String {
        format!("{prefix}# [the patch-uwsgi:{id} block: samples__patch_uwsgi_blocks.snap]\n")
    }

    /// `text` with every block whose lines all start with `prefix` (`+` in a diff) replaced by
    /// its placeholder line. A block met before must be the same here, byte for byte; the text
    /// is checked to come back exactly when each placeholder is replaced by its block.
    fn replace_in(&mut self, text: &str, prefix: &str, what: &str) -> String {
        let start = format!("{prefix}# >>> patch-uwsgi:");
        let mut out = String::new();
        let mut lines = text.split_inclusive('\n');
        while let Some(line) = lines.next() {
            let Some(rest) = line.strip_prefix(&start) else {
                out.push_str(line);
                continue;
            };
            let id = rest.split(' ').next().unwrap().to_string();
            let end = format!("{prefix}# <<< patch-uwsgi:{id} <<<");
            let mut block = line[prefix.len()..].to_string();
            loop {
                let line = lines
                    .next()
                    .unwrap_or_else(|| panic!("{what}: the {id} block does not end"));
                let unprefixed = line
                    .strip_prefix(prefix)
                    .unwrap_or_else(|| panic!("{what}: a line of the {id} block: {line:?}"));
                block.push_str(unprefixed);
                if line.trim_end_matches('\n') == end {
                    break;
                }
            }
            match self.0.iter().find(|(known, _)| *known == id) {
                Some((_, known)) => assert_eq!(
                    &block, known,
                    "{what}: the {id} block differs from the one in the shared snapshot"
                ),
                None => self.0.push((id.clone(), block)),
            }
            out.push_str(&Self::placeholder(prefix, &id));
        }
        assert_eq!(self.restore(&out, prefix), text, "{what}: not restored");
        out
    }

    /// `reduced` with each placeholder line replaced by its block, every line prefixed.
    fn restore(&self, reduced: &str, prefix: &str) -> String {
        let mut out = String::new();
        for line in reduced.split_inclusive('\n') {
            match self
                .0
                .iter()
                .find(|(id, _)| line == Self::placeholder(prefix, id))
            {
                Some((_, block)) => {
                    for block_line in block.split_inclusive('\n') {
                        out.push_str(prefix);
                        out.push_str(block_line);
                    }
                }
                None => out.push_str(line),
            }
        }
        out
    }
}

/// Every release's patched output, snapshotted without repeating what all releases share: per
/// release the plugin's change (a unified diff of the vendored file and `patch_text`'s output)
/// and `diff`'s whole output, each with a placeholder line for every shared block; the blocks
/// themselves once. Any change to any release's output changes one of these snapshots.
#[test]
fn snapshots_of_every_release() {
    let mut shared = SharedBlocks::default();
    insta::glob!("../vendor-samples", "*/uwsgiconfig.py", |config| {
        let dir = config.parent().unwrap();
        let version = dir.file_name().unwrap().to_str().unwrap();
        let plugin = std::fs::read_to_string(dir.join(FileKind::PythonPlugin.rel_path())).unwrap();
        let patched =
            patch_uwsgi::patch_text(FileKind::PythonPlugin, &plugin, "uwsgiplugin.py".as_ref())
                .unwrap();
        let patched = shared.replace_in(&patched.text, "", &format!("{version} plugin"));
        let plugin_change = similar::TextDiff::from_lines(&plugin, &patched)
            .unified_diff()
            .header("vendored", "patched")
            .to_string();
        insta::assert_snapshot!(format!("plugin-{version}"), plugin_change);
        let (_tmp, tree) = sample_tree(version);
        let (report, diff) = patch_uwsgi::diff(&tree, &options()).unwrap();
        assert!(report.needs_work());
        let diff = shared.replace_in(&diff, "+", &format!("{version} diff"));
        insta::assert_snapshot!(format!("diff-{version}"), diff);
    });
    let ids: Vec<&str> = shared.0.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        ["plugin-link-plan", "compile-thread-guard", "rebuild-guard"]
    );
    let blocks: Vec<&str> = shared.0.iter().map(|(_, block)| block.as_str()).collect();
    let blocks = blocks.join("\n");
    insta::assert_snapshot!("patch_uwsgi_blocks", blocks);
}

#[test]
fn variant_of_every_release() {
    let expected = |v: &str| -> PluginVariant {
        let parts: Vec<u32> = v.split('.').map(|p| p.parse().unwrap()).collect();
        match parts[2] {
            17..=19 => PluginVariant::Baseline,
            20 => PluginVariant::Multiarch,
            21 | 22 => PluginVariant::RelinkLrt,
            23..=27 => PluginVariant::StdlibSysconfig,
            _ => PluginVariant::CheckedArchive,
        }
    };
    for version in sample_versions() {
        let (_tmp, tree) = sample_tree(&version);
        let report = patch_uwsgi::check(&tree, &options()).unwrap();
        assert_eq!(report.plugin_variant, expected(&version), "{version}");
        assert_eq!(report.uwsgi_version, version);
    }
}

fn file_outcomes(report: &patch_uwsgi::Report) -> Vec<Outcome> {
    report.files.iter().map(|f| f.outcome).collect()
}

#[test]
fn apply_check_revert_laws_on_every_release() {
    for version in sample_versions() {
        let (_tmp, tree) = sample_tree(&version);
        let pristine = snapshot_dir(&tree);

        let before = patch_uwsgi::check(&tree, &options()).unwrap();
        assert_eq!(
            file_outcomes(&before),
            [Outcome::NeedsPatch; 3],
            "{version}"
        );
        assert_eq!(
            snapshot_dir(&tree),
            pristine,
            "{version}: check changed the tree"
        );

        let first = patch_uwsgi::apply(&tree, &options()).unwrap();
        assert_eq!(file_outcomes(&first), [Outcome::Applied; 3], "{version}");
        let recipes: Vec<(&str, Outcome)> = first
            .files
            .iter()
            .flat_map(|f| f.recipes.iter().map(|r| (r.id, r.outcome)))
            .collect();
        assert_eq!(
            recipes,
            [
                ("rebuild-guard", Outcome::Applied),
                ("compile-thread-guard", Outcome::Applied),
                ("strip-literal-lpython", Outcome::NotNeeded),
                ("plugin-link-plan", Outcome::Applied)
            ],
            "{version}"
        );
        let patched = snapshot_dir(&tree);
        assert_ne!(patched, pristine);

        let second = patch_uwsgi::apply(&tree, &options()).unwrap();
        assert_eq!(file_outcomes(&second), [Outcome::Unchanged; 3], "{version}");
        assert_eq!(
            snapshot_dir(&tree),
            patched,
            "{version}: apply twice differs from apply once"
        );

        let after = patch_uwsgi::check(&tree, &options()).unwrap();
        assert!(!after.needs_work(), "{version}");
        let (_, diff) = patch_uwsgi::diff(&tree, &options()).unwrap();
        assert_eq!(diff, "", "{version}");

        let reverted = patch_uwsgi::revert(&tree).unwrap();
        assert_eq!(
            file_outcomes(&reverted),
            [Outcome::Reverted; 3],
            "{version}"
        );
        assert_eq!(
            snapshot_dir(&tree),
            pristine,
            "{version}: revert is not byte-exact"
        );
        let again = patch_uwsgi::revert(&tree).unwrap();
        assert_eq!(file_outcomes(&again), [Outcome::Unchanged; 3], "{version}");
    }
}

#[test]
fn rebuild_guard_names_the_interpreter_in_append_cflags_under_every_pyenv_python() {
    // Importing the patched uwsgiconfig.py (as setup.py does in every hook process) puts one
    // define naming the running Python into APPEND_CFLAGS, which uWSGI adds to the core
    // CFLAGS it compares before reusing objects. The user's flags stay, in order; a define
    // inherited from a parent process that ran another Python is replaced.
    let (_tmp, tree) = sample_tree("2.0.31");
    patch_uwsgi::apply(&tree, &options()).unwrap();
    let mut seen = Vec::new();
    for minor in [
        "2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13",
    ] {
        let Some((version, python)) = support::require_python(minor) else {
            continue;
        };
        let append_cflags = || {
            let out = std::process::Command::new(&python)
                .current_dir(&tree)
                .env("APPEND_CFLAGS", "-O3 -DPATCH_UWSGI_PYTHON=3.99.0-0  -g")
                .args([
                    "-c",
                    "import os, uwsgiconfig; print(os.environ['APPEND_CFLAGS'])",
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{minor}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        let flags = append_cflags();
        let define = flags
            .strip_prefix("-O3 -g -DPATCH_UWSGI_PYTHON=")
            .unwrap_or_else(|| panic!("{minor}: {flags}"));
        let (name, prefix_hash) = define.rsplit_once('-').unwrap();
        let abiflags = if matches!(minor, "3.6" | "3.7") {
            "m"
        } else {
            ""
        };
        assert_eq!(name, format!("{version}{abiflags}"), "{flags}");
        assert!(
            prefix_hash.len() == 8 && prefix_hash.bytes().all(|b| b.is_ascii_hexdigit()),
            "{flags}"
        );
        assert_eq!(
            append_cflags(),
            flags,
            "{minor}: not the same for the same Python"
        );
        seen.push(flags);
    }
    let count = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), count, "two Pythons gave the same define");
}

#[test]
fn patched_files_compile_under_every_pyenv_python() {
    // The injected Python must at least parse under 2.7 and 3.6+; running it is tested in
    // plugin_exec.rs.
    let (_tmp, tree) = sample_tree("2.0.31");
    patch_uwsgi::apply(&tree, &options()).unwrap();
    for minor in [
        "2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13",
    ] {
        let Some((_, python)) = support::require_python(minor) else {
            continue;
        };
        for file in ["uwsgiconfig.py", "plugins/python/uwsgiplugin.py"] {
            let source = tree.join(file);
            let out = std::process::Command::new(&python)
                .args([
                    "-c",
                    "import sys; compile(open(sys.argv[1]).read(), sys.argv[1], 'exec')",
                ])
                .arg(&source)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{minor} {file}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn plan_file_keeps_other_pythons() {
    let (_tmp, tree) = sample_tree("2.0.31");
    patch_uwsgi::apply(&tree, &options()).unwrap();
    let dump = repo().join("vendor-samples/sysconfig/pyenv-cpython-3.8.18.json");
    let interp = Interpreter::from_json(&std::fs::read_to_string(&dump).unwrap(), &dump).unwrap();
    let other = LinkPlan::with_archive(&interp, Mode::Nolib, None, false);
    let report = patch_uwsgi::apply(
        &tree,
        &Options::default().with_target(Target::Plan(Box::new(other.clone()))),
    )
    .unwrap();
    assert_eq!(
        file_outcomes(&report),
        [Outcome::Unchanged, Outcome::Unchanged, Outcome::Applied]
    );
    let text = std::fs::read_to_string(tree.join(PLAN_FILE)).unwrap();
    let file = PlanFile::parse(&text, Path::new("plan")).unwrap();
    let versions: Vec<&str> = file
        .plans
        .iter()
        .map(|p| p.python.version.as_str())
        .collect();
    assert_eq!(versions, ["3.12.1", "3.8.18"]);
    assert_eq!(file.plan_for(&other.python), Some(&other));
}
