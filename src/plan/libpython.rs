//! Finding the static libpython of an interpreter: sysconfig folders, the base prefix, and
//! manylinux's tarball of static libraries (one member extracted, atomically).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::interpreter::Interpreter;
use crate::error::{Error, Result};

/// Where a candidate archive came from, in search order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Source {
    /// `--libpython PATH`.
    Explicit,
    /// The `PATCH_UWSGI_LIBPYTHON` variable.
    Env,
    /// sysconfig `LIBPL` / `LIBRARY`.
    Libpl,
    /// sysconfig `LIBDIR` / `LIBRARY`.
    Libdir,
    /// `<base_prefix>/lib/python<ver>/config*/` folders.
    PrefixGlob,
    /// The manylinux tarball of static libraries.
    ManylinuxTarball,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Explicit => "explicit",
            Source::Env => "env",
            Source::Libpl => "libpl",
            Source::Libdir => "libdir",
            Source::PrefixGlob => "prefix-glob",
            Source::ManylinuxTarball => "manylinux-tarball",
        })
    }
}

/// One path looked at while searching, and why it was rejected (`None`: accepted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Candidate {
    /// The path.
    pub path: PathBuf,
    /// Where it came from.
    pub source: Source,
    /// Why it cannot be used, or `None` if it is the one chosen.
    pub rejected: Option<String>,
}

/// The candidates as [`Error::NoLibpython`] lists them: `PATH (SOURCE): REASON`.
fn lines(tried: &[Candidate]) -> Vec<String> {
    tried
        .iter()
        .map(|c| {
            format!(
                "{} ({}): {}",
                c.path.display(),
                c.source,
                c.rejected.as_deref().unwrap_or("accepted")
            )
        })
        .collect()
}

/// The archive chosen, and every candidate looked at on the way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Located {
    /// Absolute path of the archive.
    pub path: PathBuf,
    /// Where it was found.
    pub source: Source,
    /// Every candidate, in order, the chosen one last.
    pub tried: Vec<Candidate>,
}

impl Located {
    /// An archive known without a search (a plan from a given path, tests, build tools).
    pub fn new(path: PathBuf, source: Source) -> Located {
        Located {
            path,
            source,
            tried: Vec::new(),
        }
    }
}

/// The archive file name an interpreter's libpython has: sysconfig `LIBRARY`, else
/// `libpython<VERSION><abiflags>.a`.
pub fn archive_name(interp: &Interpreter) -> String {
    let built = format!("libpython{}.a", interp.ld_version());
    match interp.config.LIBRARY.as_deref() {
        Some(name) if name.ends_with(".a") && name.starts_with("libpython") => name.to_string(),
        _ => built,
    }
}

/// Why `path` is not a usable static libpython named `wanted`, or `None` if it is.
pub fn reject_reason(path: &Path, wanted: &str) -> Option<String> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name != wanted {
        return Some(format!("named {name:?}, wanted {wanted}"));
    }
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(if fs::symlink_metadata(path).is_ok() {
                "dangling symlink".into()
            } else {
                "does not exist".into()
            });
        }
        Err(e) => return Some(format!("cannot stat: {e}")),
    };
    if !meta.is_file() {
        return Some("not a regular file".into());
    }
    let mut magic = [0u8; 8];
    match fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)) {
        Ok(()) if &magic == b"!<arch>\n" => None,
        Ok(()) => Some("not an ar archive (no !<arch> magic)".into()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Some("too short to be an ar archive".into())
        }
        Err(e) => Some(format!("cannot read: {e}")),
    }
}

/// Search options.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SearchOptions {
    /// An archive given on the command line; tried first.
    pub explicit: Option<PathBuf>,
    /// The archive named by the `PATCH_UWSGI_LIBPYTHON` variable, as read by the caller (the
    /// library reads no environment); tried second, and like `explicit` it means `static`.
    pub env: Option<PathBuf>,
    /// Folder holding manylinux's `static-libs-for-embedding-only.tar.xz` (default
    /// `/opt/_internal`, as in the manylinux and musllinux images).
    pub manylinux_root: Option<PathBuf>,
    /// Where to extract the archive when the interpreter's `lib` folder is not writable, and
    /// where `-no-pie` answers are remembered (the binary passes the answer of
    /// [`cache_dir_from`](crate::cache_dir_from)). `None`: nothing is cached.
    pub cache_dir: Option<PathBuf>,
}

impl SearchOptions {
    /// With an archive to use (as `--libpython`).
    pub fn with_libpython(mut self, archive: impl Into<PathBuf>) -> SearchOptions {
        self.explicit = Some(archive.into());
        self
    }

    /// With the folder holding manylinux's tarball (as `--manylinux-root`).
    pub fn with_manylinux_root(mut self, root: impl Into<PathBuf>) -> SearchOptions {
        self.manylinux_root = Some(root.into());
        self
    }

    /// With a cache folder (see [`SearchOptions::cache_dir`]).
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> SearchOptions {
        self.cache_dir = Some(dir.into());
        self
    }
}

/// Where manylinux keeps its interpreters and the tarball of their static libraries.
pub const MANYLINUX_ROOT: &str = "/opt/_internal";

/// The tarball's file name (manylinux PR #1250).
pub const MANYLINUX_TARBALL: &str = "static-libs-for-embedding-only.tar.xz";

/// Extract one member of a `.tar.xz` to `dest` atomically, decompressing only up to that
/// member. Returns a rejection reason on failure (missing member, corrupt or truncated
/// tarball, member not an archive).
fn extract_member(tarball: &Path, member: &str, dest: &Path) -> std::result::Result<(), String> {
    use std::io::{Seek, SeekFrom};
    let file = fs::File::open(tarball).map_err(|e| format!("cannot open: {e}"))?;
    let decoder = lzma_rust2::XzReader::new(std::io::BufReader::with_capacity(1 << 16, file), true);
    let mut archive = tar::Archive::new(decoder);
    let entries = archive
        .entries()
        .map_err(|e| format!("cannot read the tarball: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("corrupt or truncated tarball: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("bad member name: {e}"))?
            .into_owned();
        if path.to_string_lossy().trim_start_matches("./") != member {
            continue;
        }
        let folder = dest.parent().expect("destination has a folder");
        fs::create_dir_all(folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        let mut temp = crate::files::new_file_builder()
            .tempfile_in(folder)
            .map_err(|e| format!("cannot write in {}: {e}", folder.display()))?;
        std::io::copy(&mut entry, &mut temp)
            .map_err(|e| format!("corrupt or truncated tarball while extracting {member}: {e}"))?;
        let mut magic = [0u8; 8];
        let f = temp.as_file_mut();
        f.seek(SeekFrom::Start(0))
            .and_then(|_| f.read_exact(&mut magic))
            .map_err(|e| format!("member {member} is too short to be an ar archive: {e}"))?;
        if &magic != b"!<arch>\n" {
            return Err(format!(
                "member {member} is not an ar archive (no !<arch> magic)"
            ));
        }
        temp.persist(dest).map_err(|e| {
            format!(
                "cannot move the extracted archive to {}: {}",
                dest.display(),
                e.error
            )
        })?;
        return Ok(());
    }
    Err(format!("has no member {member}"))
}

/// Whether a new file can be created in `dir` (it exists and is writable).
fn writable_dir(dir: &Path) -> bool {
    tempfile::Builder::new()
        .prefix(crate::files::TEMP_PREFIX)
        .tempfile_in(dir)
        .is_ok()
}

/// Find the static archive for `interp`. Errors list every candidate with its rejection.
pub fn locate_libpython(interp: &Interpreter, options: &SearchOptions) -> Result<Located> {
    let mut search = Search {
        interp,
        wanted: archive_name(interp),
        tried: Vec::new(),
    };
    // An explicit choice is the user's decision: a bad one is an error, not a reason to look on.
    for (given, source) in [
        (&options.explicit, Source::Explicit),
        (&options.env, Source::Env),
    ] {
        if let Some(path) = given {
            return search.given(path, source);
        }
    }
    for (path, source) in prefix_candidates(interp, &search.wanted) {
        if let Some(located) = search.try_candidate(path, source) {
            return Ok(located);
        }
    }
    search.in_tarball(options)
}

/// The folders an installed CPython keeps its archive in: `LIBPL`, `LIBDIR`, then every
/// `lib/pythonX.Y/config*` folder of its base prefix.
fn prefix_candidates(interp: &Interpreter, wanted: &str) -> Vec<(PathBuf, Source)> {
    let mut candidates: Vec<(PathBuf, Source)> = Vec::new();
    if let Some(libpl) = &interp.config.LIBPL {
        candidates.push((Path::new(libpl).join(wanted), Source::Libpl));
    }
    if let Some(libdir) = &interp.config.LIBDIR {
        candidates.push((Path::new(libdir).join(wanted), Source::Libdir));
    }
    let lib = Path::new(&interp.base_prefix).join("lib");
    for folder in [
        format!("python{}", interp.ld_version()),
        format!(
            "python{}",
            interp.config.VERSION.clone().unwrap_or_default()
        ),
    ] {
        if let Ok(entries) = fs::read_dir(lib.join(&folder)) {
            let mut configs: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    // `config` (2.7), `config-3.12-x86_64-linux-gnu`, `config-3.7m`, ...
                    p.is_dir()
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n == "config" || n.starts_with("config-"))
                })
                .collect();
            configs.sort();
            candidates.extend(
                configs
                    .into_iter()
                    .map(|c| (c.join(wanted), Source::PrefixGlob)),
            );
        }
    }
    candidates
}

/// One search: the archive name wanted and every candidate looked at so far.
struct Search<'a> {
    interp: &'a Interpreter,
    wanted: String,
    tried: Vec<Candidate>,
}

impl Search<'_> {
    /// The archive the user named (`--libpython`, `PATCH_UWSGI_LIBPYTHON`): it must be a
    /// usable archive of the wanted name, whatever else is around.
    fn given(mut self, path: &Path, source: Source) -> Result<Located> {
        let path = absolute(path);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        // The user may name the archive anything; the magic and file type still count.
        if let Some(problem) = reject_reason(&path, &name) {
            return Err(Error::BadLibpython {
                path,
                problem: format!("{problem} (given by {source})"),
            });
        }
        if name != self.wanted {
            return Err(Error::BadLibpython {
                path,
                problem: format!(
                    "named {name}, but {} needs {}",
                    self.interp.path.display(),
                    self.wanted
                ),
            });
        }
        Ok(self.found(path, source, None))
    }

    /// Look at `path` (once): the archive when it is usable, else its rejection is kept.
    fn try_candidate(&mut self, path: PathBuf, source: Source) -> Option<Located> {
        if self.tried.iter().any(|c| c.path == path) {
            return None;
        }
        let rejected = reject_reason(&path, &self.wanted);
        if rejected.is_none() {
            return Some(self.found(path, source, None));
        }
        self.tried.push(Candidate {
            path,
            source,
            rejected,
        });
        None
    }

    /// The search ends at `path` (with `via`, the file looked at last, when it differs).
    fn found(&mut self, path: PathBuf, source: Source, via: Option<PathBuf>) -> Located {
        self.tried.push(Candidate {
            path: via.unwrap_or_else(|| path.clone()),
            source,
            rejected: None,
        });
        Located {
            path,
            source,
            tried: std::mem::take(&mut self.tried),
        }
    }

    /// The search ends with nothing usable: `path` was the last candidate, `rejected` why.
    fn not_found(mut self, path: PathBuf, rejected: String) -> Error {
        self.tried.push(Candidate {
            path,
            source: Source::ManylinuxTarball,
            rejected: Some(rejected),
        });
        Error::NoLibpython {
            python: self.interp.path.clone(),
            wanted: self.wanted,
            tried: lines(&self.tried),
        }
    }

    /// manylinux: the archive is only inside the tarball, under the folder the interpreter's
    /// real prefix is named after (`cpython-3.14.0` and `cpython-3.14.0-nogil` stay apart).
    /// A copy extracted into the cache folder before is used as it is.
    fn in_tarball(mut self, options: &SearchOptions) -> Result<Located> {
        let root = options
            .manylinux_root
            .clone()
            .unwrap_or_else(|| PathBuf::from(MANYLINUX_ROOT));
        let tarball = root.join(MANYLINUX_TARBALL);
        let prefix_name = Path::new(&self.interp.base_prefix)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let member = format!("{prefix_name}/lib/{}", self.wanted);
        let cache = options.cache_dir.as_ref().map(|dir| dir.join(&member));
        if let Some(cache) = &cache {
            if let Some(located) = self.try_candidate(cache.clone(), Source::ManylinuxTarball) {
                return Ok(located);
            }
        }
        if !tarball.is_file() {
            return Err(self.not_found(tarball, "does not exist".into()));
        }
        let prefix_lib = Path::new(&self.interp.base_prefix).join("lib");
        let dest = match cache {
            _ if writable_dir(&prefix_lib) => prefix_lib.join(&self.wanted),
            Some(cache) => cache,
            None => {
                let path = prefix_lib.join(&self.wanted);
                return Err(self.not_found(
                    path,
                    "the archive is in the tarball, but this folder is not writable and no \
                     cache folder was given to extract it into"
                        .into(),
                ));
            }
        };
        match extract_member(&tarball, &member, &dest) {
            Ok(()) => Ok(self.found(dest, Source::ManylinuxTarball, Some(tarball))),
            Err(problem) => Err(self.not_found(tarball, problem)),
        }
    }
}

pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
