//! The names patch-uwsgi shares with its Python and C files, and with the wheels and trees it
//! wrote: one spelling on the Rust side, and tests that the scripts spell them the same way.

/// The folder a bundled wheel holds at its root (site-packages, once installed):
/// `patch_uwsgi_runtime/pythonX.Y/`. `bundle` writes it, the runtime finder compiled into the
/// executable (`recipes/runtime_finder.c`) looks for it, `verify --wheel` reads it.
pub(crate) const RUNTIME_FOLDER: &str = "patch_uwsgi_runtime";

/// The runtime folder for Python `X.Y`, with its trailing slash, as a path inside a wheel.
pub(crate) fn runtime_folder_for(major_minor: &str) -> String {
    format!("{RUNTIME_FOLDER}/python{major_minor}/")
}

/// The list, in the runtime folder, of the extension modules `bundle --exclude` left out.
pub(crate) const EXCLUDED_LIST: &str = "excluded.txt";

/// Where `apply` writes the link plan in a uWSGI tree (`plugin_link_plan.py` reads it).
pub(crate) const PLAN_FILE: &str = "plugins/python/patch_uwsgi_plan.json";

/// Where the patched plugin writes the runtime finder's C when a static executable is built
/// (a build artifact, not written by `apply`; `revert` removes it and its object).
pub(crate) const RUNTIME_FINDER_SOURCE: &str = "plugins/python/patch_uwsgi_runtime.c";

/// The mark a build of a patched tree leaves until it exits well (`rebuild_guard.py`): a build
/// that finds it recompiles every object. Made by the build, removed by `revert`.
pub(crate) const UNFINISHED_BUILD_MARK: &str = "uwsgibuild.patch_uwsgi_unfinished";

/// The object the build compiles [`RUNTIME_FINDER_SOURCE`] to.
pub(crate) const RUNTIME_FINDER_OBJECT: &str = "plugins/python/patch_uwsgi_runtime.o";

/// The variable naming the modules `verify_imports.py` imports (unset: every module of the
/// interpreter's own `lib-dynload`).
pub(crate) const MODULES_VARIABLE: &str = "PATCH_UWSGI_VERIFY_MODULES";

/// The first word of each line `verify_imports.py` prints: the import-run protocol.
pub(crate) mod import_run {
    /// `version X.Y.Z`
    pub(crate) const VERSION: &str = "version";
    /// `program PATH`: the program really running (`/proc/self/exe`).
    pub(crate) const PROGRAM: &str = "program";
    /// `builtin NAME...`: `sys.builtin_module_names`.
    pub(crate) const BUILTIN: &str = "builtin";
    /// `stdlib FILE`: where `encodings` came from.
    pub(crate) const STDLIB: &str = "stdlib";
    /// `dynload FOLDER`: a `lib-dynload` folder on `sys.path`.
    pub(crate) const DYNLOAD: &str = "dynload";
    /// `try NAME`: said before each import, so a crash still names the module.
    pub(crate) const TRY: &str = "try";
    /// `ok NAME`
    pub(crate) const OK: &str = "ok";
    /// `from NAME FILE`: where an imported module came from.
    pub(crate) const FROM: &str = "from";
    /// `fail NAME ERROR`
    pub(crate) const FAIL: &str = "fail";
    /// All of them.
    #[cfg(test)]
    pub(crate) const ALL: [&str; 9] = [
        VERSION, PROGRAM, BUILTIN, STDLIB, DYNLOAD, TRY, OK, FROM, FAIL,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMPORTS_SCRIPT: &str = include_str!("runtime/verify_imports.py");
    const FINDER: &str = include_str!("recipes/runtime_finder.c");
    const PLUGIN_LINK_PLAN: &str = include_str!("recipes/plugin_link_plan.py");
    const REBUILD_GUARD: &str = include_str!("recipes/rebuild_guard.py");

    #[test]
    fn the_import_script_speaks_exactly_the_protocol() {
        let said = regex::Regex::new(r"say\('([a-z]+)[ %']").unwrap();
        let mut words: Vec<&str> = said
            .captures_iter(IMPORTS_SCRIPT)
            .map(|c| c.get(1).unwrap().as_str())
            .collect();
        words.sort();
        words.dedup();
        let mut expected = import_run::ALL.to_vec();
        expected.sort();
        assert_eq!(words, expected);
        assert!(IMPORTS_SCRIPT.contains(&format!("os.environ.get('{MODULES_VARIABLE}')")));
    }

    #[test]
    fn the_c_and_python_blocks_use_these_names() {
        assert!(FINDER.contains(&format!("\"/{RUNTIME_FOLDER}/python@PY@\"")));
        let (folder, source) = PLAN_FILE.rsplit_once('/').unwrap();
        let python_folder = folder
            .split('/')
            .map(|p| format!("'{p}'"))
            .collect::<Vec<_>>();
        assert!(PLUGIN_LINK_PLAN.contains(&format!(
            "os.path.join({}, '{source}')",
            python_folder.join(", ")
        )));
        let finder_file = RUNTIME_FINDER_SOURCE.rsplit('/').next().unwrap();
        assert!(PLUGIN_LINK_PLAN.contains(&format!("os.path.dirname(plan_path), '{finder_file}')")));
        assert_eq!(
            RUNTIME_FINDER_OBJECT,
            RUNTIME_FINDER_SOURCE.replace(".c", ".o"),
        );
        assert_eq!(
            runtime_folder_for("3.11"),
            "patch_uwsgi_runtime/python3.11/"
        );
        assert!(REBUILD_GUARD.contains(&format!("os.path.abspath('{UNFINISHED_BUILD_MARK}')")));
    }
}
