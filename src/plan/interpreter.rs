//! Asking the target interpreter, once, for everything a link plan needs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::process::{last_lines, run_bounded, said, Streams};
use crate::releases::{is_free_threaded, CheckedPython};

/// The probe run inside the target interpreter. Valid Python 2.7 and 3.6 – 3.14: no f-strings,
/// no walrus, only modules every CPython has.
pub const PROBE_SCRIPT: &str = include_str!("probe.py");

/// How long the interpreter may take to answer before it is killed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the interpreter said about itself. Also the format of saved sysconfig dumps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Interpreter {
    /// The interpreter path it was asked through (not part of the dump's identity).
    #[serde(default)]
    pub path: PathBuf,
    /// `platform.python_implementation()`: `CPython`, `PyPy`, `GraalVM`, ...
    pub implementation: String,
    /// `X.Y.Z` from `sys.version_info`.
    pub version: String,
    /// `sys.abiflags` (`""` on 2.7, `m` on 3.6/3.7, `t` free-threaded).
    pub abiflags: String,
    /// `sys.executable`.
    pub executable: String,
    /// `realpath(sys.prefix)`.
    pub prefix: String,
    /// `realpath` of the base prefix (the prefix outside any venv).
    pub base_prefix: String,
    /// The glibc version (`2.36`), or empty on other C libraries.
    #[serde(default)]
    pub glibc: String,
    /// `sys.builtin_module_names`.
    pub builtin_modules: Vec<String>,
    /// The sysconfig variables the plan reads (`None` when unset).
    pub config: ConfigVars,
    /// The files the answers come from (the real executable, the sysconfig data module, the
    /// venv's `pyvenv.cfg` whether or not it exists): a cached probe is reused only while
    /// they are as they were.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// The `lib-dynload` folder on its `sys.path` (`""`: none; `None`: a probe saved before
    /// `bundle` asked for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lib_dynload: Option<String>,
    /// sysconfig's `stdlib` path (`None`: a probe saved before `bundle` asked for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdlib: Option<String>,
    /// `sys.platlibdir` (`lib` before 3.9; `None`: a probe saved before `bundle` asked for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platlibdir: Option<String>,
    /// The machine in its wheels' platform tags (`x86_64`, `i686`, `aarch64`; `None`: a probe
    /// saved before `verify --wheel` installed wheels itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
}

/// The sysconfig variables patch-uwsgi reads, as strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(non_snake_case, missing_docs)]
#[non_exhaustive]
pub struct ConfigVars {
    pub VERSION: Option<String>,
    pub Py_ENABLE_SHARED: Option<String>,
    pub Py_GIL_DISABLED: Option<String>,
    pub LIBRARY: Option<String>,
    pub LDLIBRARY: Option<String>,
    pub LIBDIR: Option<String>,
    pub LIBPL: Option<String>,
    pub LIBS: Option<String>,
    pub MODLIBS: Option<String>,
    pub SYSLIBS: Option<String>,
    pub LINKFORSHARED: Option<String>,
    pub MULTIARCH: Option<String>,
    /// Where `Python.h` is (absent from dumps made before `verify` existed).
    #[serde(default)]
    pub INCLUDEPY: Option<String>,
    /// Where `pyconfig.h` is, when it differs (Debian's multiarch folder).
    #[serde(default)]
    pub CONFINCLUDEPY: Option<String>,
}

impl Interpreter {
    /// Run the probe in `python`; it is stopped after `timeout` ([`PROBE_TIMEOUT`] is the
    /// command line's default).
    pub fn probe(python: &Path, timeout: Duration) -> Result<Interpreter> {
        let fail = |problem: String| Error::Interpreter {
            python: python.to_path_buf(),
            problem,
        };
        let ended = run_bounded(
            Command::new(python)
                .arg("-S")
                .arg("-c")
                .arg(PROBE_SCRIPT)
                .env_remove("PYTHONHOME")
                .env_remove("PYTHONPATH"),
            timeout,
        )
        .map_err(|e| {
            fail(format!(
                "cannot run it ({e}); pass --python with the interpreter that builds uWSGI"
            ))
        })?;
        let Some(output) = ended else {
            return Err(fail(format!(
                "did not answer within {} s; it was stopped",
                timeout.as_secs_f32()
            )));
        };
        if !output.status.success() {
            let said = said(&output, Streams::Stderr, Some(3));
            return Err(fail(format!(
                "the probe failed ({}){}; is this a Python interpreter?",
                output.status,
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {said}")
                }
            )));
        }
        let mut found: Interpreter = serde_json::from_slice(&output.stdout).map_err(|e| {
            fail(format!(
                "answered something that is not the probe's JSON ({e}): {}",
                last_lines(&String::from_utf8_lossy(&output.stdout), 2)
            ))
        })?;
        found.path = python.to_path_buf();
        found.ensure_cpython()?;
        Ok(found)
    }

    /// Load a saved probe answer (`patch_uwsgi locate --json` writes it under `probe`).
    pub fn from_json(text: &str, origin: &Path) -> Result<Interpreter> {
        let found: Interpreter = serde_json::from_str(text).map_err(|e| Error::Interpreter {
            python: origin.to_path_buf(),
            problem: format!("not a saved probe ({e})"),
        })?;
        found.ensure_cpython()?;
        Ok(found)
    }

    /// [`Interpreter::probe`], answered from `cache_dir/probe/` when the same interpreter was
    /// probed before and none of the files its answers come from ([`Interpreter::depends_on`],
    /// plus `/etc/ld.so.cache` for the C library) changed since: one launch of the interpreter
    /// is most of what `check` costs.
    pub fn probe_cached(
        python: &Path,
        timeout: Duration,
        cache_dir: Option<&Path>,
    ) -> Result<Interpreter> {
        let Some(file) = cache_dir.and_then(|dir| probe_cache_file(dir, python)) else {
            return Self::probe(python, timeout);
        };
        if let Some(found) = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<CachedProbe>(&bytes).ok())
            .filter(|cached| cached.stamps == stamps(python, &cached.probe.depends_on))
        {
            let mut interp = found.probe;
            interp.path = python.to_path_buf();
            return Ok(interp);
        }
        let interp = Self::probe(python, timeout)?;
        let cached = CachedProbe {
            stamps: stamps(python, &interp.depends_on),
            probe: interp.clone(),
        };
        if let Ok(text) = serde_json::to_vec(&cached) {
            crate::cache::remember(&file, &text);
        }
        Ok(interp)
    }

    /// Load a saved probe from `path`: a probe, or `patch_uwsgi locate --json` output holding
    /// one under `probe`. The interpreter path is the saved one, or its `sys.executable`.
    ///
    /// ```
    /// let probe = "vendor-samples/sysconfig/pyenv-cpython-3.12.1.json".as_ref();
    /// let python = patch_uwsgi::Interpreter::load(probe)?;
    /// assert_eq!(python.version, "3.12.1");
    /// assert!(!python.free_threaded());
    /// # Ok::<(), patch_uwsgi::Error>(())
    /// ```
    pub fn load(path: &Path) -> Result<Interpreter> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io("read the saved probe", path, e))?;
        let inner = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("probe").map(|p| p.to_string()));
        let mut interp = Interpreter::from_json(inner.as_deref().unwrap_or(&text), path)?;
        if interp.path.as_os_str().is_empty() {
            interp.path = PathBuf::from(&interp.executable);
        }
        Ok(interp)
    }

    fn ensure_cpython(&self) -> Result<()> {
        if self.implementation != "CPython" {
            return Err(Error::Interpreter {
                python: self.path.clone(),
                problem: format!(
                    "is {} {}, not CPython: it has no libpython to embed in uWSGI; use a CPython interpreter \
                     (cibuildwheel: skip pp* builds)",
                    self.implementation, self.version
                ),
            });
        }
        Ok(())
    }

    /// `VERSION` + abiflags, as in `libpython3.13t.a` and `-lpython3.7m`.
    pub fn ld_version(&self) -> String {
        let short = self.config.VERSION.clone().unwrap_or_else(|| {
            self.version
                .split('.')
                .take(2)
                .collect::<Vec<_>>()
                .join(".")
        });
        format!("{short}{}", self.abiflags)
    }

    /// Whether the interpreter was built with `--enable-shared`.
    pub fn shared(&self) -> bool {
        self.config
            .Py_ENABLE_SHARED
            .as_deref()
            .is_some_and(|v| v != "0" && !v.is_empty())
    }

    /// Whether it is a free-threaded build ([`is_free_threaded`]).
    pub fn free_threaded(&self) -> bool {
        is_free_threaded(&self.abiflags, self.config.Py_GIL_DISABLED.as_deref())
    }

    /// It, as the release checks see it.
    pub fn checked(&self) -> CheckedPython<'_> {
        CheckedPython {
            path: &self.path,
            version: &self.version,
            abiflags: &self.abiflags,
            free_threaded: self.free_threaded(),
        }
    }
}

/// A probe answer with the state of the files it depends on when it was made.
#[derive(Serialize, Deserialize)]
struct CachedProbe {
    stamps: Vec<(String, Option<(u64, u128)>)>,
    probe: Interpreter,
}

/// Size and modification time of each file (`None`: absent), the interpreter as given and
/// the C library's cache included.
fn stamps(python: &Path, depends_on: &[String]) -> Vec<(String, Option<(u64, u128)>)> {
    let given = python.display().to_string();
    [given.as_str(), "/etc/ld.so.cache"]
        .into_iter()
        .chain(depends_on.iter().map(String::as_str))
        .map(|path| {
            let stamp = std::fs::metadata(path).ok().and_then(|meta| {
                let modified = meta.modified().ok()?;
                let nanos = modified
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?
                    .as_nanos();
                Some((meta.len(), nanos))
            });
            (path.to_string(), stamp)
        })
        .collect()
}

/// `cache_dir/probe/<hash of the interpreter's path and this tool's version>.json`.
fn probe_cache_file(cache_dir: &Path, python: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(python).ok()?;
    // The probe script is part of the key: a cached answer to an older probe lacks fields.
    let key = format!(
        "{}\n{:016x}\n{}",
        env!("CARGO_PKG_VERSION"),
        crate::cache::fnv1a(PROBE_SCRIPT.as_bytes()),
        absolute.display()
    );
    Some(
        cache_dir
            .join("probe")
            .join(format!("{:016x}.json", crate::cache::fnv1a(key.as_bytes()))),
    )
}

/// The interpreter to target: `explicit` if given, else `python`, then `python3` on `PATH`
/// (cibuildwheel puts the Python being built first on `PATH` as `python`).
pub fn find_interpreter(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    for name in ["python", "python3"] {
        if let Ok(found) = which::which(name) {
            return Ok(found);
        }
    }
    Err(Error::NoInterpreter)
}
