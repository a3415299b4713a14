//! Properties of the pure recipe functions over random mutations of the real vendored files:
//! they never panic; apply twice = apply once; revert after apply gives the input back; a
//! mangled patched file reverts or fails cleanly.

mod support;

use std::path::Path;
use std::sync::LazyLock;

use patch_uwsgi::{patch_text, revert_text, FileKind};
use proptest::prelude::*;

/// (kind, upstream text, patched text) for both files of every vendored release.
static SAMPLES: LazyLock<Vec<(FileKind, String, String)>> = LazyLock::new(|| {
    let mut out = Vec::new();
    for version in support::sample_versions() {
        for kind in [FileKind::UwsgiConfig, FileKind::PythonPlugin] {
            let path = support::repo()
                .join("vendor-samples")
                .join(&version)
                .join(kind.rel_path());
            let text = std::fs::read_to_string(&path).unwrap();
            let patched = patch_text(kind, &text, &path).unwrap().text;
            out.push((kind, text, patched));
        }
    }
    out
});

/// Fragments that matter to the recipes: anchors, markers, line ends, a BOM.
const FRAGMENTS: &[&str] = &[
    "else:\n    LIBS = []\n",
    "uwsgi_version = '2.0.99'\n",
    "# >>> patch-uwsgi:plugin-link-plan v2 >>>\n",
    "# >>> patch-uwsgi:plugin-link-plan v4 >>>\n",
    "# <<< patch-uwsgi:plugin-link-plan <<<\n",
    "# >>> patch-uwsgi:rebuild-guard v1 >>>\n",
    "# >>> patch-uwsgi:rebuild-guard v3 >>>\n",
    "# patch-uwsgi:strip-literal-lpython was: x\n",
    "LIBS.append('-lpython3.12')\n",
    "# ci: append static libpython\n",
    "\r\n",
    "\u{feff}",
    "    ",
    "\n",
    "é",
];

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Insert(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), 0..FRAGMENTS.len()).prop_map(|(at, f)| Mutation::Insert(at, f)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    for m in mutations {
        let n = lines.len().max(1);
        match *m {
            Mutation::DeleteLine(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Mutation::DuplicateLine(i) if !lines.is_empty() => {
                let line = lines[i % n].clone();
                lines.insert(i % n, line);
            }
            Mutation::SwapLines(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
            Mutation::Insert(at, f) => lines.insert(at % (lines.len() + 1), FRAGMENTS[f].into()),
            Mutation::Truncate(i) => lines.truncate(i % (lines.len() + 1)),
            _ => {}
        }
    }
    lines.concat()
}

fn check_laws(kind: FileKind, input: &str) -> Result<(), TestCaseError> {
    let path = Path::new(kind.rel_path());
    let _ = revert_text(input, path);
    if let Ok(once) = patch_text(kind, input, path) {
        let twice = patch_text(kind, &once.text, path)
            .map_err(|e| TestCaseError::fail(format!("patched text refused: {e}")))?;
        prop_assert_eq!(&twice.text, &once.text, "apply twice != apply once");
        let back = revert_text(&once.text, path)
            .map_err(|e| TestCaseError::fail(format!("revert refused: {e}")))?;
        if !input.contains("patch-uwsgi:") {
            prop_assert_eq!(&back, input, "revert after apply is not the identity");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_upstream_files(sample in 0..34usize, mutations in prop::collection::vec(mutation(), 1..6)) {
        let (kind, upstream, _) = &SAMPLES[sample % SAMPLES.len()];
        check_laws(*kind, &mutate(upstream, &mutations))?;
    }

    #[test]
    fn mutated_patched_files(sample in 0..34usize, mutations in prop::collection::vec(mutation(), 1..6)) {
        let (kind, _, patched) = &SAMPLES[sample % SAMPLES.len()];
        check_laws(*kind, &mutate(patched, &mutations))?;
    }

    #[test]
    fn arbitrary_text(text in ".{0,400}", kind in prop_oneof![Just(FileKind::UwsgiConfig), Just(FileKind::PythonPlugin)]) {
        check_laws(kind, &text)?;
    }
}
