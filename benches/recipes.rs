//! `cargo bench --bench recipes`: patch every vendored uWSGI release in memory, and a whole
//! `apply` (read, plan file, atomic writes) on a temp copy of a tree with a ready plan.

use std::path::{Path, PathBuf};

use patch_uwsgi::{FileKind, Interpreter, LinkPlan, Located, Mode, Options, Source, Target};

// The integration tests' helpers (copying a vendored tree).
#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    divan::main();
}

fn samples() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("vendor-samples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap().flatten() {
        let dir = entry.path();
        if dir.join("uwsgiconfig.py").is_file() {
            out.push((
                std::fs::read_to_string(dir.join("uwsgiconfig.py")).unwrap(),
                std::fs::read_to_string(dir.join(FileKind::PythonPlugin.rel_path())).unwrap(),
            ));
        }
    }
    out
}

#[divan::bench]
fn patch_every_release_in_memory(bencher: divan::Bencher) {
    let samples = samples();
    bencher.bench(|| {
        for (config, plugin) in &samples {
            divan::black_box(
                patch_uwsgi::patch_text(FileKind::UwsgiConfig, config, "uwsgiconfig.py".as_ref())
                    .unwrap(),
            );
            divan::black_box(
                patch_uwsgi::patch_text(FileKind::PythonPlugin, plugin, "uwsgiplugin.py".as_ref())
                    .unwrap(),
            );
        }
    });
}

#[divan::bench]
fn apply_whole_tree(bencher: divan::Bencher) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dump = root.join("vendor-samples/sysconfig/pyenv-cpython-3.12.1.json");
    let interp = Interpreter::from_json(&std::fs::read_to_string(&dump).unwrap(), &dump).unwrap();
    let located = Located::new(
        PathBuf::from("/opt/_internal/cpython-3.12.1/lib/libpython3.12.a"),
        Source::ManylinuxTarball,
    );
    let options = Options::default().with_target(Target::Plan(Box::new(LinkPlan::with_archive(
        &interp,
        Mode::Static,
        Some(&located),
        false,
    ))));
    bencher
        .with_inputs(|| {
            let dir = tempfile::tempdir().unwrap();
            support::copy_tree(&root.join("vendor-samples/2.0.31"), dir.path());
            dir
        })
        .bench_values(|dir| {
            patch_uwsgi::apply(dir.path(), &options).unwrap();
            dir
        });
}
