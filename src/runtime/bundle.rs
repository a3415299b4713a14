//! `bundle`: add to built wheels the runtime their static uwsgi needs on users' machines, the
//! build interpreter's extension modules (`lib-dynload`), at
//! `patch_uwsgi_runtime/pythonX.Y/lib-dynload/` in the wheel's root, where the runtime finder
//! compiled in by `apply` (static mode) looks once installed; with
//! [`BundleOptions::stdlib`], its compiled standard library too, as
//! `patch_uwsgi_runtime/pythonX.Y/lib/pythonXY.zip`, which makes that folder the Python home.
//!
//! The wheel work is done here: every member of the wheel is read once (its CRC checked, its
//! sha256 taken for RECORD and compared with the RECORD it came with), the members kept are
//! copied into the new wheel as they are compressed (no recompression), the added ones are
//! deflated on all cores, and RECORD is written last. The interpreter is asked only what it
//! alone knows: where its `lib-dynload` and standard library are (the cached probe), and, for
//! `stdlib`, the compiled standard library ([`STDLIB_SCRIPT`], one launch).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use regex::bytes::Regex as BytesRegex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zip::write::{PreparedZipFile, SimpleFileOptions};
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use super::runs::seconds_since;
use crate::error::{Error, Operation, Result};
use crate::names::{runtime_folder_for, EXCLUDED_LIST, RUNTIME_FOLDER};
use crate::options::Options;
use crate::plan::interpreter::Interpreter;
use crate::process::{run_bounded, said, Streams};

/// The script the build interpreter runs for [`BundleOptions::stdlib`]: it compiles its
/// standard library into the zip CPython puts on its path, and prints the module count.
pub const STDLIB_SCRIPT: &str = include_str!("stdlib_zip.py");

/// Limit for compiling the standard library.
const STDLIB_TIMEOUT: Duration = Duration::from_secs(600);

/// One wheel written by [`bundle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BundledWheel {
    /// The wheel read.
    pub wheel: PathBuf,
    /// The wheel written (same name, in the output folder).
    pub output: PathBuf,
    /// The executables in it that embed libpython and find the runtime, wherever they are.
    pub executables: Vec<BundledExecutable>,
    /// How many extension modules were added.
    pub modules: usize,
    /// How many standard library modules the bundled zip holds (0 without `stdlib`).
    pub stdlib_modules: usize,
    /// Size of the wheel read.
    pub bytes_before: u64,
    /// Size of the wheel written.
    pub bytes_after: u64,
}

/// An executable of a wheel that embeds a static libpython with the runtime finder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BundledExecutable {
    /// Its path in the wheel (`uwsgi-2.0.31.data/scripts/uwsgi`, `myserver/bin/myserver`).
    pub path: String,
    /// The Python minor it embeds, `X.Y` (read from its finder).
    pub python: String,
}

/// What [`bundle`] did (also its JSON shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BundleReport {
    /// The folder inside the wheels, `patch_uwsgi_runtime/pythonX.Y/`.
    pub runtime: String,
    /// Extension modules left out ([`BundleOptions::exclude`]).
    #[serde(default)]
    pub excluded: Vec<String>,
    /// Every wheel written.
    pub wheels: Vec<BundledWheel>,
}

/// What [`bundle`] needs: the target interpreter (the one that built the wheels) and whether
/// to add its standard library.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct BundleOptions {
    /// The target interpreter and where to cache its probe.
    pub options: Options,
    /// Also bundle the standard library: the wheel's uwsgi then runs with no Python installed.
    pub stdlib: bool,
    /// Extension modules to leave out (e.g. `_tkinter`, whose Tcl/Tk and X11 libraries
    /// auditwheel would otherwise graft); each must be one of the interpreter's. They are
    /// listed in the wheel, and `verify --wheel` does not expect them.
    pub exclude: Vec<String>,
}

impl BundleOptions {
    /// Bundle for the target of `options`, extension modules only.
    pub fn new(options: Options) -> BundleOptions {
        BundleOptions {
            options,
            ..BundleOptions::default()
        }
    }

    /// With the standard library too, or not.
    pub fn with_stdlib(mut self, stdlib: bool) -> BundleOptions {
        self.stdlib = stdlib;
        self
    }

    /// Leaving out these extension modules.
    pub fn with_exclude<S: Into<String>>(
        mut self,
        modules: impl IntoIterator<Item = S>,
    ) -> BundleOptions {
        self.exclude = modules.into_iter().map(Into::into).collect();
        self
    }
}

/// Write to `out_dir` a copy of every wheel with the target interpreter's runtime added. All
/// wheels are written or none; bad input (not a wheel, a corrupt or truncated one, a RECORD
/// that does not match its members, no executable embedding libpython, one linked to a shared
/// libpython, a Python tag other than the interpreter's, `stdlib` for an executable whose
/// runtime finder predates it, an output folder that cannot be written, a full disk) is an
/// [`Error::Bundle`].
///
/// ```no_run
/// use patch_uwsgi::{bundle, BundleOptions, Options};
/// let options = BundleOptions::new(Options::for_python("/opt/python/cp312-cp312/bin/python"))
///     .with_exclude(["_tkinter"]);
/// let wheels = ["dist/uwsgi-2.0.31-cp312-cp312-linux_x86_64.whl".into()];
/// let report = bundle(&wheels, "bundled".as_ref(), &options)?;
/// println!("{} modules added", report.wheels[0].modules);
/// # Ok::<(), patch_uwsgi::Error>(())
/// ```
pub fn bundle(
    wheels: &[PathBuf],
    out_dir: &Path,
    bundle_options: &BundleOptions,
) -> Result<BundleReport> {
    bundle_with_progress(wheels, out_dir, bundle_options, &mut |_, _| {})
}

/// [`bundle`], calling `progress` after each step with its name (`probe`, `read NAME`,
/// `stdlib`, `write NAME`, `rename`) and its duration in seconds.
pub fn bundle_with_progress(
    wheels: &[PathBuf],
    out_dir: &Path,
    bundle_options: &BundleOptions,
    progress: &mut dyn FnMut(&str, f64),
) -> Result<BundleReport> {
    let start = Instant::now();
    let runtime = Runtime::of(&bundle_options.options)?;
    progress("probe", seconds_since(start));
    let modules = runtime.modules()?;
    let excluded = excluded_names(&bundle_options.exclude, &modules, &runtime)?;
    if out_dir.exists() && !out_dir.is_dir() {
        return Err(refused(format!(
            "{}: the output folder is a file",
            out_dir.display()
        )));
    }
    let mut planned = Vec::new();
    for wheel in wheels {
        let start = Instant::now();
        planned.push(plan(wheel, bundle_options.stdlib, &runtime)?);
        progress(&format!("read {}", file_name(wheel)), seconds_since(start));
    }
    let stdlib = if bundle_options.stdlib {
        let start = Instant::now();
        let made = runtime.stdlib_zip()?;
        progress("stdlib", seconds_since(start));
        Some(made)
    } else {
        None
    };
    let start = Instant::now();
    let added = added_members(&runtime, &modules, &excluded, stdlib.as_ref())?;
    progress("compress", seconds_since(start));
    let module_count = added
        .members
        .iter()
        .filter(|a| {
            a.name
                .starts_with(&format!("{}lib-dynload/", runtime.folder))
        })
        .count();

    // A missing output folder is made, as `pip wheel -w` and `auditwheel repair -w` do, once
    // every wheel is known to be good; it goes again if the bundle fails.
    let created = make_folders(out_dir)?;
    let counts = (module_count, stdlib.as_ref().map_or(0, |s| s.1));
    match write_all(wheels, &planned, &added, out_dir, counts, progress) {
        Ok(report) => Ok(BundleReport {
            runtime: runtime.folder.clone(),
            excluded,
            wheels: report,
        }),
        Err(err) => {
            remove_folders(&created);
            Err(err)
        }
    }
}

/// The `--exclude` names, sorted and once each; a name that is not one of the interpreter's
/// extension modules is refused.
fn excluded_names(
    exclude: &[String],
    modules: &[(String, String)],
    runtime: &Runtime,
) -> Result<Vec<String>> {
    let mut excluded: Vec<String> = exclude.iter().filter(|n| !n.is_empty()).cloned().collect();
    excluded.sort();
    excluded.dedup();
    let unknown: Vec<&str> = excluded
        .iter()
        .filter(|n| !modules.iter().any(|(m, _)| m == *n))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let mut available: Vec<&str> = modules.iter().map(|(m, _)| m.as_str()).collect();
        available.dedup();
        return Err(refused(format!(
            "--exclude {}: not an extension module of {} (its lib-dynload has: {})",
            unknown.join(","),
            runtime.executable,
            available.join(" ")
        )));
    }
    Ok(excluded)
}

/// Write every bundled wheel next to its target in `out_dir`, then put them all in place or
/// none ([`replace_all`]); on an error the staged files are gone. `counts`: the modules and
/// standard-library modules added, for the report.
fn write_all(
    wheels: &[PathBuf],
    planned: &[Plan],
    added: &AddedMembers,
    out_dir: &Path,
    counts: (usize, usize),
    progress: &mut dyn FnMut(&str, f64),
) -> Result<Vec<BundledWheel>> {
    let mut staged: Vec<(tempfile::TempPath, PathBuf)> = Vec::new();
    let mut report = Vec::new();
    let umask = current_umask();
    for (wheel, plan) in wheels.iter().zip(planned) {
        let start = Instant::now();
        let target = out_dir.join(wheel.file_name().unwrap_or_default());
        let temp = stage(out_dir)?;
        staged.push((temp, target.clone()));
        let temp = &staged.last().expect("just staged").0;
        set_mode(temp, 0o666 & !umask)?;
        let bytes_after = write_wheel(plan, added, temp, &target)?;
        report.push(BundledWheel {
            wheel: wheel.clone(),
            output: target,
            executables: plan.embedding.clone(),
            modules: counts.0,
            stdlib_modules: counts.1,
            bytes_before: plan.bytes.len() as u64,
            bytes_after,
        });
        progress(&format!("write {}", file_name(wheel)), seconds_since(start));
    }
    let start = Instant::now();
    replace_all(out_dir, &mut staged)?;
    progress("rename", seconds_since(start));
    Ok(report)
}

/// A bundle refusal ([`Error::Bundle`]).
fn refused(problem: String) -> Error {
    Error::Bundle { problem }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// What the target interpreter alone knows, from its (cached) probe.
struct Runtime {
    /// The interpreter, to run [`STDLIB_SCRIPT`].
    python: PathBuf,
    /// Its `sys.executable`, for messages.
    executable: String,
    /// `X.Y`.
    minor: String,
    /// `cpXY`.
    tag: String,
    /// `patch_uwsgi_runtime/pythonX.Y/`.
    folder: String,
    /// Its `lib-dynload` folder.
    lib_dynload: PathBuf,
    /// `sys.platlibdir`.
    platlibdir: String,
}

impl Runtime {
    fn of(options: &Options) -> Result<Runtime> {
        let mut interp = options.interpreter(Operation::Bundle)?;
        if interp.lib_dynload.is_none() || interp.platlibdir.is_none() {
            // A saved probe from before `bundle` asked for these: ask the interpreter itself.
            interp = Interpreter::probe(&interp.path, options.probe_timeout)?;
        }
        let mut parts = interp.version.split('.');
        let (major, minor) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let lib_dynload = interp.lib_dynload.clone().unwrap_or_default();
        if lib_dynload.is_empty() {
            return Err(refused(format!(
                "{} has no lib-dynload folder on sys.path",
                interp.executable
            )));
        }
        Ok(Runtime {
            python: interp.path.clone(),
            executable: interp.executable.clone(),
            minor: format!("{major}.{minor}"),
            tag: format!("cp{major}{minor}"),
            folder: runtime_folder_for(&format!("{major}.{minor}")),
            lib_dynload: PathBuf::from(lib_dynload),
            platlibdir: interp.platlibdir.clone().unwrap_or_else(|| "lib".into()),
        })
    }

    /// Every extension module of `lib-dynload`: (module name, file name), by file name.
    fn modules(&self) -> Result<Vec<(String, String)>> {
        let entries = std::fs::read_dir(&self.lib_dynload)
            .map_err(|e| Error::io("list", &self.lib_dynload, e))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &self.lib_dynload, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".so") {
                // math.cpython-311-x86_64-linux-gnu.so, _ssl.so, mod.abi3.so: the name is
                // before the first dot.
                let module = name.split('.').next().unwrap_or_default().to_string();
                found.push((module, name));
            }
        }
        found.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(found)
    }

    /// The compiled standard library as a zip, and its module count.
    fn stdlib_zip(&self) -> Result<(Vec<u8>, usize)> {
        let temp = tempfile::Builder::new()
            .prefix(".patch-uwsgi-stdlib-")
            .suffix(".zip")
            .tempfile()
            .map_err(|e| Error::io("make", &std::env::temp_dir(), e))?
            .into_temp_path();
        let output = run_bounded(
            Command::new(&self.python)
                .arg("-S")
                .arg("-c")
                .arg(STDLIB_SCRIPT)
                .arg(&*temp)
                .env_remove("PYTHONHOME")
                .env_remove("PYTHONPATH")
                // Set constants are marshalled in hash order: the same seed, the same zip.
                .env("PYTHONHASHSEED", "0"),
            STDLIB_TIMEOUT,
        )
        .map_err(|e| Error::io("run", &self.python, e))?;
        let Some(output) = output else {
            return Err(refused(format!(
                "{} did not finish compiling its standard library within {} s",
                self.python.display(),
                STDLIB_TIMEOUT.as_secs()
            )));
        };
        if !output.status.success() {
            return Err(refused(said(&output, Streams::Stderr, Some(6))));
        }
        let count = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                refused(format!(
                    "{} answered something that is not a module count",
                    self.python.display()
                ))
            })?;
        let data = std::fs::read(&temp).map_err(|e| Error::io("read", &temp, e))?;
        Ok((data, count))
    }
}

/// A wheel read and checked, ready to be written again.
struct Plan {
    /// The whole wheel file.
    bytes: Vec<u8>,
    /// Every member: its name, its RECORD hash and its size.
    members: Vec<Member>,
    /// The index of `.dist-info/RECORD`.
    record: usize,
    /// The executables with the runtime finder.
    embedding: Vec<BundledExecutable>,
}

/// One member of a wheel read.
pub(super) struct Member {
    pub(super) name: String,
    /// `sha256=<urlsafe base64, no padding>` of its content.
    pub(super) hash: String,
    pub(super) size: u64,
    /// For ELF files: the finder's Python and version, whether it names a shared libpython.
    pub(super) elf: Option<Elf>,
}

pub(super) struct Elf {
    finder: Option<(String, u32)>,
    shared: bool,
}

/// The `sha256=...` of RECORD (the wheel spec: urlsafe base64 without padding).
pub fn record_hash(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    format!("sha256={}", urlsafe_b64(&digest))
}

fn urlsafe_b64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// `jobs` run on every core (at most one thread per job); each gets the index of a job and
/// the worker's own state made by `state`.
pub(super) fn on_all_cores<S, T: Send>(
    jobs: usize,
    state: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, usize) -> T + Sync,
) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs)
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..jobs).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut own = state();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= jobs {
                        break;
                    }
                    let result = work(&mut own, index);
                    results.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

fn wheel_name_pattern() -> regex::Regex {
    regex::Regex::new(r"^(.+?)-([^-]+)(?:-[0-9][^-]*)?-([^-]+)-([^-]+)-([^-]+)\.whl$")
        .expect("valid pattern")
}

/// Read `wheel` whole, check every member (CRC, RECORD) and find its executables.
fn plan(wheel: &Path, stdlib: bool, runtime: &Runtime) -> Result<Plan> {
    let shown = wheel.display();
    let name = file_name(wheel);
    let Some(parts) = wheel_name_pattern().captures(&name) else {
        return Err(refused(format!(
            "{shown}: not a wheel file name (NAME-VERSION-PYTHON-ABI-PLATFORM.whl)"
        )));
    };
    if !parts[3].split('.').any(|t| t == runtime.tag) {
        return Err(refused(format!(
            "{shown} is tagged {}, but the Python given is {} ({}): pass --python with the \
             interpreter that built it",
            &parts[3], runtime.minor, runtime.tag
        )));
    }
    let bytes = std::fs::read(wheel)
        .map_err(|e| refused(format!("{shown}: not a readable wheel (zip): {e}")))?;
    let archive = ZipArchive::new(Cursor::new(bytes.as_slice()))
        .map_err(|e| refused(format!("{shown}: not a readable wheel (zip): {e}")))?;
    let count = archive.len();
    // Every member read once, on all cores: the CRC checked (a truncated or corrupt member
    // fails here), its sha256 taken, an ELF file searched for the runtime finder.
    let read = on_all_cores(
        count,
        || (archive.clone(), Vec::new()),
        |(archive, buffer), index| -> std::result::Result<Member, String> {
            let mut file = archive.by_index(index).map_err(|e| e.to_string())?;
            let name = file.name().map_err(|e| e.to_string())?.into_owned();
            buffer.clear();
            file.read_to_end(buffer)
                .map_err(|e| format!("corrupt member {name} ({e})"))?;
            let elf = (buffer.starts_with(b"\x7fELF")
                && !name.ends_with('/')
                && !name.starts_with(&format!("{RUNTIME_FOLDER}/")))
            .then(|| inspect_elf(buffer));
            Ok(Member {
                hash: record_hash(buffer),
                size: buffer.len() as u64,
                name,
                elf,
            })
        },
    );
    let mut members = Vec::with_capacity(count);
    for (index, member) in read.into_iter().enumerate() {
        match member {
            Ok(member) => members.push(member),
            Err(problem) if problem.starts_with("corrupt member") => {
                return Err(refused(format!("{shown}: {problem}")))
            }
            Err(problem) => {
                return Err(refused(format!(
                    "{shown}: not a readable wheel (zip): member {index}: {problem}"
                )))
            }
        }
    }
    let records: Vec<usize> = (0..count)
        .filter(|&i| members[i].name.ends_with(".dist-info/RECORD"))
        .collect();
    if records.len() != 1 {
        return Err(refused(format!(
            "{shown}: expected one .dist-info/RECORD, found {}",
            records.len()
        )));
    }
    let record = records[0];
    check_record(wheel, &archive, &members, record).map_err(refused)?;
    let embedding = executables(wheel, &members, stdlib, &runtime.minor)?;
    drop(archive);
    Ok(Plan {
        bytes,
        members,
        record,
        embedding,
    })
}

fn inspect_elf(data: &[u8]) -> Elf {
    let finder_mark =
        BytesRegex::new(&format!(r"{RUNTIME_FOLDER}/python([0-9]+\.[0-9]+)")).unwrap();
    let finder_version = BytesRegex::new(r"patch-uwsgi runtime finder ([0-9]+)").unwrap();
    let shared = BytesRegex::new(r"libpython[0-9]\.[0-9]+[a-z]*\.so").unwrap();
    let text = |m: regex::bytes::Match| String::from_utf8_lossy(m.as_bytes()).into_owned();
    match finder_mark.captures(data) {
        Some(found) => {
            let version = finder_version
                .captures(data)
                .and_then(|v| text(v.get(1).unwrap()).parse().ok())
                .unwrap_or(1);
            Elf {
                finder: Some((text(found.get(1).unwrap()), version)),
                shared: false,
            }
        }
        None => Elf {
            finder: None,
            shared: shared.is_match(data),
        },
    }
}

/// A RECORD that does not match the members it lists (another hash or size, or a member that
/// is not there) is refused: the wheel was changed after it was built, or is damaged. Members
/// it does not list are accepted (the new RECORD lists them). `Err` is the problem, naming the
/// wheel; each caller words its own error around it.
pub(super) fn check_record(
    wheel: &Path,
    archive: &ZipArchive<Cursor<&[u8]>>,
    members: &[Member],
    record: usize,
) -> std::result::Result<(), String> {
    let shown = wheel.display();
    let record_name = &members[record].name;
    let mut archive = archive.clone();
    let mut text = String::new();
    archive
        .by_index(record)
        .and_then(|mut f| f.read_to_string(&mut text).map_err(Into::into))
        .map_err(|e| format!("{shown}: {record_name} is not text: {e}"))?;
    let by_name: HashMap<&str, &Member> = members.iter().map(|m| (m.name.as_str(), m)).collect();
    for (line_number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields = csv_fields(line);
        let (path, hash, size) = (
            fields.first().map_or("", String::as_str),
            fields.get(1).map_or("", String::as_str),
            fields.get(2).map_or("", String::as_str),
        );
        if path == record_name || path.ends_with(".jws") || path.ends_with(".p7s") {
            continue;
        }
        let wrong = |what: String| {
            format!(
                "{shown}: its RECORD does not match the wheel (line {}: {what}): the wheel \
                 was changed after it was built, or is damaged",
                line_number + 1
            )
        };
        let Some(member) = by_name.get(path) else {
            return Err(wrong(format!("{path} is not in the wheel")));
        };
        if !hash.is_empty() && hash != member.hash {
            if !hash.starts_with("sha256=") {
                continue; // another algorithm: not checked here
            }
            return Err(wrong(format!(
                "{path} has {}, RECORD says {hash}",
                member.hash
            )));
        }
        if !size.is_empty() && size != member.size.to_string() {
            return Err(wrong(format!(
                "{path} has {} bytes, RECORD says {size}",
                member.size
            )));
        }
    }
    Ok(())
}

/// The fields of one CSV line as Python's `csv` module writes them (`"` quotes a field
/// holding a comma or a quote, `""` is a quote inside).
pub(super) fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let field = fields.last_mut().expect("one field");
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(String::new()),
            (c, _) => field.push(c),
        }
    }
    fields
}

/// The executables with the runtime finder, or the refusal the old script gave.
fn executables(
    wheel: &Path,
    members: &[Member],
    stdlib: bool,
    this_python: &str,
) -> Result<Vec<BundledExecutable>> {
    let shown = wheel.display();
    let mut found = FoundElf::default();
    for member in members {
        let Some(elf) = &member.elf else { continue };
        let name = member.name.as_str();
        found.looked_at.push(name);
        if name
            .split('/')
            .next()
            .unwrap_or_default()
            .ends_with(".scripts")
        {
            // auditwheel's layout: grafting already happened, without the modules' libraries.
            return Err(refused(format!(
                "{shown} was already repaired by auditwheel ({name}): bundle the wheel as \
                 built, before `auditwheel repair`, so that auditwheel also grafts the \
                 libraries the bundled modules need"
            )));
        }
        match &elf.finder {
            Some((python, _)) if python != this_python => {
                return Err(refused(format!(
                    "{shown}: {name} embeds Python {python}, but the Python given is \
                     {this_python}: pass --python with the interpreter that built it"
                )));
            }
            Some((python, version)) => found.embedding(name, python, *version),
            None if elf.shared => found.shared.push(name),
            None => {}
        }
    }
    found.refusal(&shown.to_string(), stdlib, members.len())?;
    Ok(found.embedding)
}

/// The ELF files of a wheel, sorted by what `bundle` makes of them.
#[derive(Default)]
struct FoundElf<'a> {
    /// With the runtime finder.
    embedding: Vec<BundledExecutable>,
    /// A finder that predates a bundled stdlib.
    old: Vec<&'a str>,
    /// A finder that looks only in fixed places.
    fixed_places: Vec<&'a str>,
    /// Linking a shared libpython.
    shared: Vec<&'a str>,
    looked_at: Vec<&'a str>,
}

impl<'a> FoundElf<'a> {
    fn embedding(&mut self, name: &'a str, python: &str, finder_version: u32) {
        self.embedding.push(BundledExecutable {
            path: name.to_string(),
            python: python.to_string(),
        });
        if finder_version < 2 {
            self.old.push(name);
        }
        if finder_version < 3 && !name.contains(".data/scripts/") {
            self.fixed_places.push(name);
        }
    }

    /// Why these cannot be bundled (an older finder, a shared libpython, no finder at all).
    fn refusal(&self, shown: &str, stdlib: bool, member_count: usize) -> Result<()> {
        if !self.fixed_places.is_empty() {
            return Err(refused(format!(
                "{shown}: {} was built with an older patch-uwsgi whose runtime finder only \
                 looks for the bundle from <dist>.data/scripts/, not from where this wheel \
                 installs it: apply this version, rebuild, then bundle",
                self.fixed_places.join(", ")
            )));
        }
        if stdlib && !self.old.is_empty() {
            return Err(refused(format!(
                "{shown}: {} was built with an older patch-uwsgi whose runtime finder does \
                 not know a bundled standard library: apply this version, rebuild, then \
                 bundle with --stdlib",
                self.old.join(", ")
            )));
        }
        if !self.embedding.is_empty() {
            return Ok(());
        }
        if !self.shared.is_empty() {
            return Err(refused(format!(
                "{shown}: {} links a shared libpython; bundle is for an executable that \
                 embeds a static one (built after `patch_uwsgi apply` in static mode)",
                self.shared.join(", ")
            )));
        }
        let looked = if self.looked_at.is_empty() {
            format!("none, in {member_count} members")
        } else {
            self.looked_at.join(", ")
        };
        Err(refused(format!(
            "{shown}: no executable in it embeds a static libpython with patch-uwsgi's \
             runtime finder (ELF files looked at: {looked}): build uWSGI after `patch_uwsgi \
             apply` (static mode)"
        )))
    }
}

/// A member the bundle adds: its RECORD line's hash and size.
struct Added {
    name: String,
    hash: String,
    size: u64,
}

/// The members every wheel gets, compressed once into a zip in memory, from which each wheel
/// copies them raw.
struct AddedMembers {
    members: Vec<Added>,
    zip: Vec<u8>,
}

/// Where an added member's bytes come from.
enum AddedSource<'a> {
    File(PathBuf),
    Bytes(&'a [u8]),
    Owned(Vec<u8>),
}

/// The members every wheel gets, in the order the old script wrote them: the extension
/// modules by file name (0o755), the stdlib zip and its `.pth` file, the list of excluded
/// modules; deflated on all cores.
fn added_members(
    runtime: &Runtime,
    modules: &[(String, String)],
    excluded: &[String],
    stdlib: Option<&(Vec<u8>, usize)>,
) -> Result<AddedMembers> {
    let mut sources: Vec<(String, u32, AddedSource)> = Vec::new();
    for (module, file) in modules {
        if excluded.contains(module) {
            continue;
        }
        sources.push((
            format!("{}lib-dynload/{file}", runtime.folder),
            0o755,
            AddedSource::File(runtime.lib_dynload.join(file)),
        ));
    }
    if let Some((zip, _)) = stdlib {
        let (major, minor) = runtime.minor.split_once('.').unwrap_or_default();
        sources.push((
            format!(
                "{}{}/python{major}{minor}.zip",
                runtime.folder, runtime.platlibdir
            ),
            0o644,
            AddedSource::Bytes(zip),
        ));
        sources.push((
            format!(
                "{}lib/python{}/site-packages/patch_uwsgi_site.pth",
                runtime.folder, runtime.minor
            ),
            0o644,
            AddedSource::Bytes(SITE_PTH_TEXT),
        ));
    }
    if !excluded.is_empty() {
        let list: String = excluded.iter().map(|n| format!("{n}\n")).collect();
        sources.push((
            format!("{}{EXCLUDED_LIST}", runtime.folder),
            0o644,
            AddedSource::Owned(list.into_bytes()),
        ));
    }
    compressed(&sources)
}

/// `sources` (name, mode, bytes) deflated on all cores into one zip in memory.
fn compressed(sources: &[(String, u32, AddedSource)]) -> Result<AddedMembers> {
    let made = on_all_cores(
        sources.len(),
        || (),
        |(), index| -> Result<(Added, PreparedZipFile)> {
            let (name, mode, source) = &sources[index];
            let read;
            let data: &[u8] = match source {
                AddedSource::File(path) => {
                    read = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
                    &read
                }
                AddedSource::Bytes(data) => data,
                AddedSource::Owned(data) => data,
            };
            let options = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .compression_level(Some(6))
                .last_modified_time(DateTime::default())
                .system(zip::System::Unix)
                .external_attributes(mode << 16);
            let prepared = PreparedZipFile::from_data(name, options, data)
                .map_err(|e| refused(format!("{name}: cannot compress it: {e}")))?;
            let added = Added {
                name: name.clone(),
                hash: record_hash(data),
                size: data.len() as u64,
            };
            Ok((added, prepared))
        },
    );
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let mut members = Vec::with_capacity(made.len());
    for one in made {
        let (added, prepared) = one?;
        writer
            .add_prepared_file(prepared)
            .map_err(|e| refused(format!("{}: cannot add it: {e}", added.name)))?;
        members.push(added);
    }
    let zip = writer
        .finish()
        .map_err(|e| refused(format!("cannot gather the members to add: {e}")))?
        .into_inner();
    Ok(AddedMembers { members, zip })
}

/// Python's `site` reads `.pth` files in `<home>/lib/pythonX.Y/site-packages` at start-up:
/// this one appends the site-packages the runtime folder was installed into
/// (`<site>/patch_uwsgi_runtime/pythonX.Y` = `sys.prefix`), after the bundled stdlib and with
/// its own `.pth` files run, as a site-packages is in any Python.
const SITE_PTH_TEXT: &[u8] = b"import os, site, sys; \
    os.path.basename(os.path.dirname(sys.prefix)) == \"patch_uwsgi_runtime\" \
    and site.addsitedir(os.path.dirname(os.path.dirname(sys.prefix)))\n";

/// Write the bundled wheel to `temp`: the members kept copied as stored, then `added`, then
/// RECORD with the old RECORD's name, date, mode and compression. Returns its size.
fn write_wheel(plan: &Plan, added: &AddedMembers, temp: &Path, target: &Path) -> Result<u64> {
    let failed = |e: &dyn std::fmt::Display| {
        refused(format!(
            "{}: cannot write the wheel (at {}): {e}",
            target.display(),
            temp.display()
        ))
    };
    let file = File::create(temp).map_err(|e| failed(&e))?;
    let mut writer = ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
    let mut archive =
        ZipArchive::new(Cursor::new(plan.bytes.as_slice())).map_err(|e| failed(&e))?;
    let record_name = plan.members[plan.record].name.clone();
    let mut lines = String::new();
    for (index, member) in plan.members.iter().enumerate() {
        if index == plan.record || member.name.starts_with(&format!("{RUNTIME_FOLDER}/")) {
            continue;
        }
        let raw = archive.by_index_raw(index).map_err(|e| failed(&e))?;
        writer.raw_copy_file(raw).map_err(|e| failed(&e))?;
        lines.push_str(&format!(
            "{},{},{}\n",
            member.name, member.hash, member.size
        ));
    }
    let mut extra = ZipArchive::new(Cursor::new(added.zip.as_slice())).map_err(|e| failed(&e))?;
    for (index, member) in added.members.iter().enumerate() {
        let raw = extra.by_index_raw(index).map_err(|e| failed(&e))?;
        writer.raw_copy_file(raw).map_err(|e| failed(&e))?;
        lines.push_str(&format!(
            "{},{},{}\n",
            member.name, member.hash, member.size
        ));
    }
    lines.push_str(&format!("{record_name},,\n"));
    let old_record = archive.by_index_raw(plan.record).map_err(|e| failed(&e))?;
    let options = SimpleFileOptions::default()
        .compression_method(old_record.compression())
        .last_modified_time(old_record.last_modified().unwrap_or_default())
        .system(zip::System::Unix)
        .external_attributes(old_record.external_attributes());
    drop(old_record);
    writer
        .start_file(record_name.as_str(), options)
        .and_then(|()| writer.write_all(lines.as_bytes()).map_err(Into::into))
        .map_err(|e| failed(&e))?;
    let mut buffered = writer.finish().map_err(|e| failed(&e))?;
    buffered.flush().map_err(|e| failed(&e))?;
    let file = buffered.into_inner().map_err(|e| failed(e.error()))?;
    let size = file.metadata().map_err(|e| failed(&e))?.len();
    Ok(size)
}

/// Make the missing folders of `out_dir`, outermost first; returns them innermost first.
fn make_folders(out_dir: &Path) -> Result<Vec<PathBuf>> {
    let absolute = std::path::absolute(out_dir).map_err(|e| Error::io("find", out_dir, e))?;
    let mut created = Vec::new();
    let mut folder = absolute.as_path();
    while !folder.is_dir() {
        created.push(folder.to_path_buf());
        match folder.parent() {
            Some(parent) => folder = parent,
            None => break,
        }
    }
    for folder in created.iter().rev() {
        if let Err(e) = std::fs::create_dir(folder) {
            remove_folders(&created);
            return Err(refused(format!(
                "{}: cannot make the output folder: {e}",
                out_dir.display()
            )));
        }
    }
    Ok(created)
}

/// Remove the folders this run made (innermost first), if they are empty.
fn remove_folders(created: &[PathBuf]) {
    for folder in created {
        let _ = std::fs::remove_dir(folder);
    }
}

/// A new empty temporary wheel file in `out_dir` (so that the rename is atomic); removed
/// when dropped.
fn stage(out_dir: &Path) -> Result<tempfile::TempPath> {
    tempfile::Builder::new()
        .prefix(".patch-uwsgi-")
        .suffix(".whl")
        .tempfile_in(out_dir)
        .map(tempfile::NamedTempFile::into_temp_path)
        .map_err(|e| {
            refused(format!(
                "{}: cannot write a wheel there: {e}",
                out_dir.display()
            ))
        })
}

pub(super) fn current_umask() -> u32 {
    // SAFETY: umask only swaps the process's mask; it is put back at once.
    let mask = unsafe { libc::umask(0o022) };
    // SAFETY: as above.
    unsafe { libc::umask(mask) };
    mask
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io("set the mode of", path, e))
}

/// Rename every staged wheel to its target, or none: a wheel a rename replaced is kept (hard
/// link, else copy) until all are in place, and put back if one rename fails.
fn replace_all(out_dir: &Path, staged: &mut Vec<(tempfile::TempPath, PathBuf)>) -> Result<()> {
    // (target, the previous wheel's keeper)
    let mut done: Vec<(PathBuf, Option<tempfile::TempPath>)> = Vec::new();
    let result = (|| -> Result<()> {
        for (temp, target) in staged.drain(..) {
            let mut keeper = None;
            if target.is_file() {
                let kept = stage(out_dir)?;
                std::fs::remove_file(&kept).map_err(|e| Error::io("remove", &kept, e))?;
                if std::fs::hard_link(&target, &kept).is_err() {
                    std::fs::copy(&target, &kept).map_err(|e| {
                        refused(format!(
                            "{}: cannot keep a copy of the previous wheel at {}: {e}",
                            target.display(),
                            kept.display()
                        ))
                    })?;
                }
                keeper = Some(kept);
            }
            if let Err(e) = std::fs::rename(&temp, &target) {
                return Err(refused(format!(
                    "{}: cannot write the wheel: {e}",
                    target.display()
                )));
            }
            // Renamed: the staged file is the target now, nothing to remove.
            let _ = temp.keep();
            done.push((target, keeper));
        }
        Ok(())
    })();
    if result.is_err() {
        for (target, keeper) in done.into_iter().rev() {
            match keeper {
                Some(kept) => {
                    if let Ok(path) = kept.keep() {
                        let _ = std::fs::rename(&path, &target);
                    }
                }
                None => {
                    let _ = std::fs::remove_file(&target);
                }
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_site_hook_looks_for_the_runtime_folder() {
        let text = String::from_utf8_lossy(SITE_PTH_TEXT);
        assert!(text.contains(&format!("== \"{RUNTIME_FOLDER}\"")), "{text}");
    }

    #[test]
    fn record_hashes_are_urlsafe_base64_without_padding() {
        // sha256 of b"" is e3b0c442...; of b"a" is ca978112...: as `python -c "import
        // hashlib, base64; print(base64.urlsafe_b64encode(hashlib.sha256(b'a').digest()))"`.
        assert_eq!(
            record_hash(b""),
            "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
        assert_eq!(
            record_hash(b"a"),
            "sha256=ypeBEsobvcr6wjGzmiPcTaeG7_gUfE5yuYB3ha_uSLs"
        );
    }
}
