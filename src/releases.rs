//! Which uWSGI release builds its python plugin for which CPython, whether a Python is
//! free-threaded (the one place that decides it), and the checks `apply`, `check`, `diff` and
//! `verify` make before anything is built. Uses `error` only.
//!
//! uWSGI learned each new CPython C API in a release of its own. A tree of an older release
//! patched for a newer Python links nothing: its plugin stops compiling minutes into the build.
//! The table below says, per minor, the first release that compiles, links and serves, and what
//! the release before it stops on. Every row is established by real builds in
//! `tests/python_support.rs` (the release before fails, the first release serves).

use std::path::Path;

use crate::error::{Error, Result};

/// One CPython minor's row of [`PYTHON_SUPPORT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MinorSupport {
    /// `X.Y`.
    pub minor: &'static str,
    /// The first uWSGI release whose python plugin builds for it; `None` when no release
    /// checked does (then [`MinorSupport::checked_up_to`] is the newest one tried).
    pub first_release: Option<&'static str>,
    /// The release before [`MinorSupport::first_release`] (or the newest one tried).
    pub checked_up_to: &'static str,
    /// What that release's build stops on.
    pub stops_on: &'static str,
}

/// The releases that first build for each CPython minor that needed one. Minors not listed
/// build with every release patch-uwsgi knows (2.0.17.1 and later): 3.9 and older. Quotes in
/// `stops_on` are plain `'` (compilers print typographic ones in UTF-8 locales).
pub const PYTHON_SUPPORT: &[MinorSupport] = &[
    MinorSupport {
        minor: "3.10",
        first_release: Some("2.0.20"),
        checked_up_to: "2.0.19.1",
        stops_on: "undefined reference to 'PyNode_Compile'",
    },
    MinorSupport {
        minor: "3.11",
        first_release: Some("2.0.21"),
        checked_up_to: "2.0.20",
        stops_on: "has no member named 'recursion_depth'",
    },
    MinorSupport {
        minor: "3.12",
        first_release: Some("2.0.23"),
        checked_up_to: "2.0.22",
        stops_on: "ModuleNotFoundError: No module named 'distutils'",
    },
    MinorSupport {
        minor: "3.13",
        first_release: Some("2.0.27"),
        checked_up_to: "2.0.26",
        stops_on: "unknown type name '_PyCFrame'",
    },
    MinorSupport {
        minor: "3.14",
        first_release: Some("2.0.30"),
        checked_up_to: "2.0.29",
        stops_on: "has no member named 'c_recursion_remaining'",
    },
    // Debian sid's 3.15.2 (shared): 2.0.30 and 2.0.31 build and serve, 2.0.29 stops as for 3.14.
    MinorSupport {
        minor: "3.15",
        first_release: Some("2.0.30"),
        checked_up_to: "2.0.29",
        stops_on: "has no member named 'c_recursion_remaining'",
    },
];

/// The cibuildwheel selector that leaves the free-threaded CPythons out of a build.
pub const FREE_THREADED_SELECTOR: &str = "cp31?t-*";

/// The numeric parts of a uWSGI version (`2.0.25.1` → `[2, 0, 25, 1]`; `2.1.0-dev` →
/// `[2, 1, 0]`); `None` when it does not start with a number.
fn release_parts(version: &str) -> Option<Vec<u32>> {
    let parts: Vec<u32> = version
        .split('.')
        .map_while(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect();
    (!parts.is_empty()).then_some(parts)
}

/// `X.Y` of `X.Y.Z`.
fn minor_of(python_version: &str) -> String {
    python_version
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".")
}

/// The cibuildwheel identifier prefix of a CPython minor: `3.13` → `cp313`.
fn cp_tag(minor: &str) -> String {
    format!("cp{}", minor.replace('.', ""))
}

/// Whether a CPython is a free-threaded build: sysconfig's `Py_GIL_DISABLED` is `1`, or
/// `sys.abiflags` holds `t` (all a saved plan records). CPython sets both together; either
/// one is enough here.
pub fn is_free_threaded(abiflags: &str, gil_disabled: Option<&str>) -> bool {
    gil_disabled == Some("1") || abiflags.contains('t')
}

/// The Python a release check is about: what its messages name, and whether it is
/// free-threaded ([`is_free_threaded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedPython<'a> {
    /// The interpreter (or, for a saved plan, its prefix), as the messages name it.
    pub path: &'a Path,
    /// `X.Y.Z`.
    pub version: &'a str,
    /// `sys.abiflags`.
    pub abiflags: &'a str,
    /// Whether it is a free-threaded build.
    pub free_threaded: bool,
}

/// Refuse a free-threaded interpreter: no uWSGI release declares support for it, and the
/// runtime finder and bundle know only the standard layout. (uWSGI 2.0.31 does build and serve
/// on a free-threaded 3.13.5: `--no-release-check`.)
pub fn check_free_threaded(python: &CheckedPython) -> Result<()> {
    if python.free_threaded {
        return Err(Error::FreeThreadedPython {
            python: python.path.to_path_buf(),
            version: python.version.to_string(),
            abiflags: python.abiflags.to_string(),
            selector: FREE_THREADED_SELECTOR,
        });
    }
    Ok(())
}

/// Refuse a tree whose uWSGI release cannot build its python plugin for `python`, and a
/// free-threaded interpreter. Versions the table does not know (newer releases than the ones
/// checked, development trees) pass.
pub fn check_python_support(
    tree: &Path,
    uwsgi_version: &str,
    python: &CheckedPython,
) -> Result<()> {
    check_free_threaded(python)?;
    let python_version = python.version;
    let minor = minor_of(python_version);
    let Some(row) = PYTHON_SUPPORT.iter().find(|row| row.minor == minor) else {
        return Ok(());
    };
    let Some(release) = release_parts(uwsgi_version) else {
        return Ok(());
    };
    let too_old = match row.first_release {
        Some(first) => release_parts(first).is_some_and(|first| release < first),
        None => release_parts(row.checked_up_to).is_some_and(|newest| release <= newest),
    };
    if too_old {
        let selector = format!("{}-*", cp_tag(&minor));
        return Err(Error::UnsupportedPython {
            tree: tree.to_path_buf(),
            uwsgi_version: uwsgi_version.to_string(),
            python_version: python_version.to_string(),
            reason: support_text(row, &selector),
            selector,
        });
    }
    Ok(())
}

/// The end of [`Error::UnsupportedPython`]'s message: the first release that builds (or the
/// newest one checked), what the release before stops on, and the two ways out.
fn support_text(support: &MinorSupport, selector: &str) -> String {
    match support.first_release {
        Some(first) => format!(
            "the first release that does is {first} ({} stops on `{}`). Use uWSGI {first} or later, or leave CPython {} out of the build (cibuildwheel: skip = \"{selector}\")",
            support.checked_up_to, support.stops_on, support.minor
        ),
        None => format!(
            "no release up to {} does (it stops on `{}`). Leave CPython {} out of the build (cibuildwheel: skip = \"{selector}\") until a uWSGI release supports it",
            support.checked_up_to, support.stops_on, support.minor
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_compare_by_their_numbers() {
        let table: &[(&str, Option<Vec<u32>>)] = &[
            ("2.0.25.1", Some(vec![2, 0, 25, 1])),
            ("2.0.31", Some(vec![2, 0, 31])),
            ("2.1.0-dev", Some(vec![2, 1, 0])),
            ("dev", None),
        ];
        for (version, parts) in table {
            assert_eq!(&release_parts(version), parts, "{version}");
        }
        assert!(release_parts("2.0.9") < release_parts("2.0.21"));
        assert!(release_parts("2.0.25") < release_parts("2.0.25.1"));
    }

    /// A CPython of `version` at `path`, not free-threaded.
    fn plain<'a>(path: &'a Path, version: &'a str) -> CheckedPython<'a> {
        CheckedPython {
            path,
            version,
            abiflags: "",
            free_threaded: false,
        }
    }

    #[test]
    fn each_row_refuses_the_release_before_and_accepts_the_first() {
        let tree = Path::new("/src/uwsgi");
        let python = Path::new("/opt/python/cp3/bin/python");
        // (uWSGI, CPython, refused with this selector)
        let table: &[(&str, &str, Option<&str>)] = &[
            ("2.0.20", "3.11.2", Some("cp311-*")),
            ("2.0.21", "3.11.2", None),
            ("2.0.22", "3.12.1", Some("cp312-*")),
            ("2.0.23", "3.12.1", None),
            ("2.0.25.1", "3.13.5", Some("cp313-*")),
            ("2.0.26", "3.13.5", Some("cp313-*")),
            ("2.0.27", "3.13.5", None),
            ("2.0.29", "3.14.0", Some("cp314-*")),
            ("2.0.30", "3.14.0", None),
            ("2.0.19.1", "3.10.13", Some("cp310-*")),
            ("2.0.20", "3.10.13", None),
            ("2.0.17.1", "3.9.2", None),
            ("2.0.29", "3.15.2", Some("cp315-*")),
            ("2.0.31", "3.15.2", None),
            ("2.0.31", "3.16.0", None),
            ("2.1.0-dev", "3.14.0", None),
            ("master", "3.14.0", None),
        ];
        for (uwsgi, python_version, refused) in table {
            let got = check_python_support(tree, uwsgi, &plain(python, python_version));
            match (refused, got) {
                (None, Ok(())) => {}
                (Some(selector), Err(Error::UnsupportedPython { selector: s, .. })) => {
                    assert_eq!(&s, selector, "{uwsgi} {python_version}")
                }
                (expected, got) => panic!("{uwsgi} {python_version}: {expected:?} vs {got:?}"),
            }
        }
    }

    #[test]
    fn the_message_names_the_tree_the_first_release_and_the_selector() {
        let python = Path::new("/opt/python/cp313-cp313/bin/python");
        let err = check_python_support(Path::new("/src/uwsgi"), "2.0.26", &plain(python, "3.13.5"))
            .unwrap_err();
        let message = err.to_string();
        for part in [
            "/src/uwsgi",
            "uWSGI 2.0.26",
            "CPython 3.13.5",
            "2.0.27",
            "_PyCFrame",
            "skip = \"cp313-*\"",
        ] {
            assert!(message.contains(part), "{part:?} not in {message}");
        }
    }

    /// The one place that decides free-threadedness, for every kind of input: a probed
    /// interpreter (abiflags and `Py_GIL_DISABLED`), a saved plan (abiflags only), and the
    /// refusal every release gets for it.
    #[test]
    fn free_threaded_pythons_are_refused_whatever_the_release() {
        // (abiflags, Py_GIL_DISABLED, free-threaded)
        let table: &[(&str, Option<&str>, bool)] = &[
            ("", None, false),
            ("", Some("0"), false),
            ("d", None, false),
            ("m", Some("0"), false),
            ("t", None, true),
            ("td", Some("1"), true),
            ("", Some("1"), true),
        ];
        let path = Path::new("/opt/python/cp313-cp313t/bin/python");
        for &(abiflags, gil_disabled, expected) in table {
            let free_threaded = is_free_threaded(abiflags, gil_disabled);
            assert_eq!(free_threaded, expected, "{abiflags:?} {gil_disabled:?}");
            let python = CheckedPython {
                path,
                version: "3.13.5",
                abiflags,
                free_threaded,
            };
            let refused = check_python_support(Path::new("/src/uwsgi"), "2.0.31", &python);
            assert_eq!(refused.is_err(), expected, "{abiflags:?} {gil_disabled:?}");
            if let Err(err) = refused {
                let message = err.to_string();
                for part in ["free-threaded", "cp31?t-*", "cp313-cp313t"] {
                    assert!(message.contains(part), "{part}: {message}");
                }
            }
        }
    }
}
