//! `verify --wheel`'s own installer: the wheel unpacked into a venv made `--without-pip`, as the
//! wheel specification (and pip) lay it out, in a fraction of pip's time. Every member is
//! checked (CRC, RECORD) and written on all cores; `.data/` folders go to their scheme paths,
//! `.data/scripts` get their `#!python` line pointed at the venv's interpreter; a member with
//! an executable bit keeps it; `console_scripts` and `gui_scripts` get launchers; the
//! `.dist-info` gets `INSTALLER`, `REQUESTED` and a RECORD of what was written. Not done (they
//! change nothing a program meets when it starts): byte-compiling `.py` files and pip's
//! `direct_url.json`.

use std::io::{Cursor, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use zip::ZipArchive;

use super::bundle::{check_record, csv_fields, current_umask, on_all_cores, record_hash, Member};
use crate::plan::interpreter::Interpreter;

/// What [`install_wheel`] wrote. Its callers read the venv itself; the tests read this.
#[derive(Debug, Default)]
#[cfg_attr(not(test), allow(dead_code))]
pub(super) struct Installed {
    /// The console and GUI scripts made from `entry_points.txt`.
    pub(super) launchers: Vec<String>,
    /// Number of files written, launchers and metadata included.
    pub(super) files: usize,
}

/// The folders of a venv a wheel installs into.
#[derive(Debug, Clone)]
pub(super) struct VenvLayout {
    /// The venv itself (`data` scheme).
    pub(super) root: PathBuf,
    /// `bin/` (`scripts`).
    pub(super) bin: PathBuf,
    /// `lib/pythonX.Y/site-packages` (`purelib` and `platlib`).
    pub(super) site: PathBuf,
    /// `pythonX.Y` as in the site-packages path (for `headers`).
    pub(super) python_dir: String,
}

impl VenvLayout {
    /// The layout of the venv at `root`, as `python -m venv` made it (the one
    /// `lib/python*/site-packages` folder).
    pub(super) fn of(root: &Path) -> std::result::Result<VenvLayout, String> {
        let lib = root.join("lib");
        let sites: Vec<PathBuf> = std::fs::read_dir(&lib)
            .map_err(|e| format!("{}: cannot read the venv's lib folder: {e}", lib.display()))?
            .flatten()
            .map(|entry| entry.path().join("site-packages"))
            .filter(|site| site.is_dir())
            .collect();
        let [site] = sites.as_slice() else {
            return Err(format!(
                "{}: expected one python*/site-packages folder in the venv, found {}",
                lib.display(),
                sites.len()
            ));
        };
        let python_dir = site
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(VenvLayout {
            root: root.to_path_buf(),
            bin: root.join("bin"),
            site: site.clone(),
            python_dir,
        })
    }

    fn python(&self) -> PathBuf {
        self.bin.join("python")
    }
}

/// Where the wheel's own folders are: `NAME-VERSION.dist-info/` and `NAME-VERSION.data/`.
struct Layout {
    dist_info: String,
    data: String,
    project: String,
}

/// Where one member goes.
#[derive(Debug, PartialEq, Eq)]
struct Destination {
    path: PathBuf,
    /// A `.data/scripts` file: its `#!python` line is rewritten.
    script: bool,
}

/// Install `wheel` into the venv of `venv`. `Err` says why it could not be installed (the
/// install step's failure, as pip's message would be).
pub(super) fn install_wheel(
    wheel: &Path,
    venv: &VenvLayout,
) -> std::result::Result<Installed, String> {
    let shown = wheel.display();
    let bytes = std::fs::read(wheel).map_err(|e| format!("{shown}: cannot read it: {e}"))?;
    let archive = ZipArchive::new(Cursor::new(bytes.as_slice()))
        .map_err(|e| format!("{shown}: not a readable wheel (zip): {e}"))?;
    let names: Vec<String> = archive
        .file_names()
        .map(|name| name.map(|n| n.into_owned()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| format!("{shown}: not a readable wheel (zip): {e}"))?;
    let mut unpacking = Unpacking {
        wheel,
        layout: wheel_layout(wheel, &archive, &names)?,
        archive,
        venv,
        umask: current_umask(),
        record: Vec::new(),
    };
    unpacking.members()?;
    let entry_points = format!("{}entry_points.txt", unpacking.layout.dist_info);
    let launchers = if names.contains(&entry_points) {
        unpacking.launchers(&entry_points)?
    } else {
        Vec::new()
    };
    let files = unpacking.metadata()?;
    Ok(Installed { launchers, files })
}

/// One wheel being unpacked into a venv, with the RECORD lines of what was written so far.
struct Unpacking<'a> {
    wheel: &'a Path,
    archive: ZipArchive<Cursor<&'a [u8]>>,
    layout: Layout,
    venv: &'a VenvLayout,
    umask: u32,
    record: Vec<String>,
}

impl Unpacking<'_> {
    /// Every member read once on all cores: the CRC checked as it is read (a truncated or
    /// damaged member fails here), its RECORD hash taken, and written where it belongs; then
    /// the wheel's RECORD checked against what was read.
    fn members(&mut self) -> std::result::Result<(), String> {
        let shown = self.wheel.display();
        let (layout, venv, umask) = (&self.layout, self.venv, self.umask);
        let written = on_all_cores(
            self.archive.len(),
            || (self.archive.clone(), Vec::new()),
            |(archive, buffer), index| -> std::result::Result<(Member, Option<String>), String> {
                let mut file = archive.by_index(index).map_err(|e| e.to_string())?;
                let name = file.name().map_err(|e| e.to_string())?.into_owned();
                let executable = file.unix_mode().is_some_and(|mode| mode & 0o111 != 0);
                buffer.clear();
                file.read_to_end(buffer)
                    .map_err(|e| format!("{shown}: damaged member {name} ({e})"))?;
                let member = Member {
                    hash: record_hash(buffer),
                    size: buffer.len() as u64,
                    name,
                    elf: None,
                };
                let Some(destination) = destination(&member.name, layout, venv)? else {
                    return Ok((member, None));
                };
                let content = if destination.script {
                    pointed_at(buffer, &venv.python())
                } else {
                    std::mem::take(buffer)
                };
                write_file(&destination.path, &content, executable, umask)?;
                let entry = record_line(&destination.path, &content, &venv.site);
                *buffer = content;
                Ok((member, Some(entry)))
            },
        );
        let mut members = Vec::with_capacity(written.len());
        for result in written {
            let (member, entry) = result?;
            members.push(member);
            self.record.extend(entry);
        }
        let record_name = self.record_name();
        let Some(record_index) = members.iter().position(|m| m.name == record_name) else {
            return Err(format!("{shown}: it has no {record_name}"));
        };
        check_record(self.wheel, &self.archive, &members, record_index)
    }

    fn record_name(&self) -> String {
        format!("{}RECORD", self.layout.dist_info)
    }

    /// The launchers `entry_points` asks for, written to `bin/`; their names.
    fn launchers(&mut self, entry_points: &str) -> std::result::Result<Vec<String>, String> {
        let shown = self.wheel.display();
        let mut text = String::new();
        self.archive
            .by_name(entry_points)
            .map_err(|e| e.to_string())
            .and_then(|mut f| f.read_to_string(&mut text).map_err(|e| e.to_string()))
            .map_err(|e| format!("{shown}: {entry_points} is not text: {e}"))?;
        let specs = launcher_specs(&text)
            .map_err(|problem| format!("{shown}: {entry_points}: {problem}"))?;
        let mut names = Vec::new();
        for (name, module, call) in specs {
            let path = self.venv.bin.join(&name);
            let content = launcher(&self.venv.python(), &module, &call);
            write_file(&path, content.as_bytes(), true, self.umask)?;
            self.record
                .push(record_line(&path, content.as_bytes(), &self.venv.site));
            names.push(name);
        }
        Ok(names)
    }

    /// `INSTALLER`, `REQUESTED` and the RECORD of everything written, which lists itself
    /// without hash or size, as the specification asks. Returns the number of files.
    fn metadata(mut self) -> std::result::Result<usize, String> {
        let dist_info = self.venv.site.join(&self.layout.dist_info);
        for (name, content) in [("INSTALLER", &b"patch-uwsgi\n"[..]), ("REQUESTED", b"")] {
            let path = dist_info.join(name);
            write_file(&path, content, false, self.umask)?;
            self.record
                .push(record_line(&path, content, &self.venv.site));
        }
        let record_name = self.record_name();
        self.record
            .retain(|line| csv_fields(line).first() != Some(&record_name));
        self.record.push(format!("{},,", csv_field(&record_name)));
        let mut text = self.record.join("\n");
        text.push('\n');
        write_file(
            &dist_info.join("RECORD"),
            text.as_bytes(),
            false,
            self.umask,
        )?;
        Ok(self.record.len())
    }
}

/// Why the runtime interpreter would not take a wheel of this file name, as installers decide
/// from its tags (`python-abi-platform`, each possibly `.`-joined); `None` when one of its tag
/// triples fits: the interpreter's own `cpXY` (or `pyX`/`pyXY` with ABI `none`, or `cpXY` not
/// newer than it with `abi3`), and `any`, `linux_<machine>`, a manylinux tag whose glibc the
/// runtime has, or a musllinux tag on a musl runtime. A machine the probe did not record is
/// not checked.
pub(super) fn unsupported_tags(file_name: &str, runtime: &Interpreter) -> Option<String> {
    let stem = file_name.strip_suffix(".whl").unwrap_or(file_name);
    let parts: Vec<&str> = stem.split('-').collect();
    if parts.len() < 5 {
        return Some(format!(
            "{file_name} is not a wheel file name (NAME-VERSION-PYTHON-ABI-PLATFORM.whl)"
        ));
    }
    let [python_tags, abi_tags, platform_tags] = [
        parts[parts.len() - 3],
        parts[parts.len() - 2],
        parts[parts.len() - 1],
    ];
    let tags = RuntimeTags::of(runtime);
    let fits = python_tags.split('.').any(|python| {
        abi_tags.split('.').any(|abi| {
            tags.python_fits(python, abi)
                && platform_tags
                    .split('.')
                    .any(|platform| tags.platform_fits(platform))
        })
    });
    (!fits).then(|| {
        format!(
            "{file_name} is not a supported wheel on this platform: the runtime Python is \
             {} {} ({}, {}{})",
            runtime.implementation,
            runtime.version,
            tags.own_abi,
            if runtime.glibc.is_empty() {
                "not glibc".to_string()
            } else {
                format!("glibc {}", runtime.glibc)
            },
            runtime
                .machine
                .as_ref()
                .map_or(String::new(), |m| format!(", {m}"))
        )
    })
}

/// What a runtime interpreter's tags are made of.
struct RuntimeTags<'a> {
    runtime: &'a Interpreter,
    major: u32,
    minor: u32,
    /// `cpXY`.
    own: String,
    /// `cpXY` with its abiflags.
    own_abi: String,
    /// Its glibc's version parts (none on musl).
    glibc: Vec<u32>,
}

impl<'a> RuntimeTags<'a> {
    fn of(runtime: &'a Interpreter) -> RuntimeTags<'a> {
        let mut version = runtime
            .version
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (version.next().unwrap_or(0), version.next().unwrap_or(0));
        let own = format!("cp{major}{minor}");
        RuntimeTags {
            runtime,
            major,
            minor,
            own_abi: format!("{own}{}", runtime.abiflags),
            own,
            glibc: runtime
                .glibc
                .split('.')
                .filter_map(|p| p.parse().ok())
                .collect(),
        }
    }

    /// The minor of a `cpXY`/`pyXY` tag of this major (`py3`: 0), if it is one.
    fn tag_minor(&self, tag: &str, prefix: &str) -> Option<u32> {
        let digits = tag
            .strip_prefix(prefix)?
            .strip_prefix(&self.major.to_string())?;
        if digits.is_empty() {
            return Some(0);
        }
        digits.parse().ok()
    }

    /// Whether a python and ABI tag pair fits: its own ABI, `abi3` of a CPython not newer
    /// (not for free-threaded builds), or `none` for its own or an older `pyX[Y]`.
    fn python_fits(&self, python: &str, abi: &str) -> bool {
        match abi {
            _ if abi == self.own_abi => python == self.own,
            "abi3" => {
                !self.runtime.abiflags.contains('t')
                    && self
                        .tag_minor(python, "cp")
                        .is_some_and(|m| (2..=self.minor).contains(&m))
            }
            "none" => {
                python == self.own
                    || self
                        .tag_minor(python, "py")
                        .is_some_and(|m| m <= self.minor)
            }
            _ => false,
        }
    }

    fn has_glibc(&self, wanted_minor: u32) -> bool {
        self.glibc.first() == Some(&2) && self.glibc.get(1) >= Some(&wanted_minor)
    }

    /// Whether a platform tag fits: `any`; else its machine (when the probe recorded one) and
    /// its C library: `linux`, a manylinux tag whose glibc the runtime has, musllinux on musl.
    fn platform_fits(&self, platform: &str) -> bool {
        static PLATFORM: LazyLock<regex::Regex> = LazyLock::new(|| {
            regex::Regex::new(
                r"^(linux|manylinux(?:1|2010|2014|_2_([0-9]+))|musllinux_1_[0-9]+)_(.+)$",
            )
            .expect("valid pattern")
        });
        if platform == "any" {
            return true;
        }
        let Some(found) = PLATFORM.captures(platform) else {
            return false;
        };
        let machine_fits = self
            .runtime
            .machine
            .as_deref()
            .is_none_or(|m| m == &found[3]);
        let libc_fits = match &found[1] {
            "linux" => true,
            "manylinux1" => self.has_glibc(5),
            "manylinux2010" => self.has_glibc(12),
            "manylinux2014" => self.has_glibc(17),
            name if name.starts_with("musllinux") => self.runtime.glibc.is_empty(),
            _ => found[2].parse().is_ok_and(|m| self.has_glibc(m)),
        };
        machine_fits && libc_fits
    }
}

/// The `.dist-info` folder (the one with a `WHEEL` file at the top), its `.data` twin, and a
/// `Wheel-Version` this installer knows (1.x).
fn wheel_layout(
    wheel: &Path,
    archive: &ZipArchive<Cursor<&[u8]>>,
    names: &[String],
) -> std::result::Result<Layout, String> {
    let shown = wheel.display();
    let wheel_files: Vec<&String> = names
        .iter()
        .filter(|n| n.ends_with(".dist-info/WHEEL") && n.matches('/').count() == 1)
        .collect();
    let [wheel_file] = wheel_files.as_slice() else {
        return Err(format!(
            "{shown}: expected one NAME-VERSION.dist-info/WHEEL, found {}",
            wheel_files.len()
        ));
    };
    let dist_info = wheel_file.trim_end_matches("WHEEL").to_string();
    let stem = dist_info.trim_end_matches(".dist-info/");
    let mut text = String::new();
    archive
        .clone()
        .by_name(wheel_file)
        .map_err(|e| e.to_string())
        .and_then(|mut f| f.read_to_string(&mut text).map_err(|e| e.to_string()))
        .map_err(|e| format!("{shown}: {wheel_file} is not text: {e}"))?;
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("Wheel-Version:"))
        .map(str::trim)
        .unwrap_or("");
    if version.split('.').next() != Some("1") {
        return Err(format!(
            "{shown}: {wheel_file} says Wheel-Version {version:?}; this installer knows 1.x \
             (use --installer pip)"
        ));
    }
    Ok(Layout {
        data: format!("{stem}.data/"),
        project: stem.split('-').next().unwrap_or(stem).to_string(),
        dist_info,
    })
}

/// Where member `name` is installed (`None` for a folder entry), or why it cannot be.
fn destination(
    name: &str,
    layout: &Layout,
    venv: &VenvLayout,
) -> std::result::Result<Option<Destination>, String> {
    if name.ends_with('/') {
        return Ok(None);
    }
    let relative = Path::new(name);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(format!(
            "member {name:?} would be written outside the venv (absolute, or with ..): \
             the wheel is damaged or hostile"
        ));
    }
    let Some(rest) = name.strip_prefix(&layout.data) else {
        return Ok(Some(Destination {
            path: venv.site.join(relative),
            script: false,
        }));
    };
    let (key, inside) = rest.split_once('/').unwrap_or((rest, ""));
    let base = match key {
        "purelib" | "platlib" => venv.site.clone(),
        "scripts" => venv.bin.clone(),
        "headers" => venv
            .root
            .join("include/site")
            .join(&venv.python_dir)
            .join(&layout.project),
        "data" => venv.root.clone(),
        _ => {
            return Err(format!(
                "member {name:?} is in {}{key}/, which is no install scheme (purelib, \
                 platlib, scripts, headers, data)",
                layout.data
            ))
        }
    };
    if inside.is_empty() {
        return Ok(None);
    }
    Ok(Some(Destination {
        path: base.join(inside),
        script: key == "scripts",
    }))
}

/// A script whose first line starts `#!python`, with that line naming `python` instead (as
/// installers do); anything else unchanged.
fn pointed_at(script: &[u8], python: &Path) -> Vec<u8> {
    if !script.starts_with(b"#!python") {
        return script.to_vec();
    }
    let rest = script
        .iter()
        .position(|&b| b == b'\n')
        .map_or(&b""[..], |end| &script[end + 1..]);
    let mut out = format!("#!{}\n", python.display()).into_bytes();
    out.extend_from_slice(rest);
    out
}

/// Write `content` to `path` (folders made), with the mode an installer gives: 0666, or 0777
/// with every execute bit for an executable, less the umask's other bits.
fn write_file(
    path: &Path,
    content: &[u8],
    executable: bool,
    umask: u32,
) -> std::result::Result<(), String> {
    let failed = |what: &str, e: std::io::Error| format!("cannot {what} {}: {e}", path.display());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| failed("make the folder of", e))?;
    }
    let mut file = std::fs::File::create(path).map_err(|e| failed("create", e))?;
    file.write_all(content).map_err(|e| failed("write", e))?;
    if executable {
        let mode = (0o777 & !umask) | 0o111;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| failed("set the mode of", e))?;
    }
    Ok(())
}

/// A RECORD line for a file written at `path`: its path relative to site-packages.
fn record_line(path: &Path, content: &[u8], site: &Path) -> String {
    let relative = relative_to(path, site);
    format!(
        "{},{},{}",
        csv_field(&relative),
        record_hash(content),
        content.len()
    )
}

/// `path` relative to `base` (`../` as needed); both absolute or both relative to the same.
fn relative_to(path: &Path, base: &Path) -> String {
    let path: Vec<Component> = path.components().collect();
    let base: Vec<Component> = base.components().collect();
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); base.len() - common];
    parts.extend(
        path[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// One CSV field as Python's `csv` module writes it.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The launchers `entry_points.txt` asks for: `(name, module, call)` from each
/// `name = module:attr.path [extras]` line of `[console_scripts]` and `[gui_scripts]`.
fn launcher_specs(text: &str) -> std::result::Result<Vec<(String, String, String)>, String> {
    let mut section = "";
    let mut specs = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim();
            continue;
        }
        if section != "console_scripts" && section != "gui_scripts" {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!("[{section}] line {line:?} has no `=`"));
        };
        let value = value.split('[').next().unwrap_or("").trim();
        let Some((module, call)) = value.split_once(':') else {
            return Err(format!(
                "[{section}] {line:?} names no callable (module:function)"
            ));
        };
        let dotted = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|part| {
                    part.chars().next().is_some_and(|c| !c.is_ascii_digit())
                        && part.chars().all(|c| c.is_alphanumeric() || c == '_')
                })
        };
        let (module, call) = (module.trim(), call.trim());
        if !dotted(module) || !dotted(call) {
            return Err(format!(
                "[{section}] {line:?} is not module:function with dotted names"
            ));
        }
        specs.push((
            name.trim().to_string(),
            module.to_string(),
            call.to_string(),
        ));
    }
    Ok(specs)
}

/// The launcher of an entry point: a Python script importing `module` and exiting with what
/// `call` returns. The interpreter line is `#!python`, or, where the kernel would not take it
/// (longer than 127 bytes, or with a space), `/bin/sh` running it with the same arguments.
fn launcher(python: &Path, module: &str, call: &str) -> String {
    let python = python.display().to_string();
    let start = if python.len() + 2 > 127 || python.contains(' ') {
        format!("#!/bin/sh\n'''exec' \"{python}\" \"$0\" \"$@\"\n' '''\n")
    } else {
        format!("#!{python}\n")
    };
    let head = call.split('.').next().unwrap_or(call);
    format!(
        "{start}# -*- coding: utf-8 -*-\n\
         # Entry point {module}:{call}, written by patch-uwsgi verify --wheel.\n\
         import sys\n\
         from {module} import {head}\n\
         if __name__ == \"__main__\":\n\
         \x20   sys.exit({call}())\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn venv_at(root: &Path) -> VenvLayout {
        let site = root.join("lib/python3.11/site-packages");
        std::fs::create_dir_all(&site).unwrap();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        VenvLayout::of(root).unwrap()
    }

    /// A member: name, content, unix mode.
    type WheelMember<'a> = (&'a str, &'a [u8], u32);

    /// A wheel of `members` with a RECORD that matches them.
    fn wheel_of(dir: &Path, members: &[WheelMember]) -> PathBuf {
        let path = dir.join("demo-1.0-cp311-cp311-linux_x86_64.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let mut record = String::new();
        for (name, content, mode) in members {
            let options = SimpleFileOptions::default().unix_permissions(*mode);
            zip.start_file(*name, options).unwrap();
            zip.write_all(content).unwrap();
            record += &format!("{name},{},{}\n", record_hash(content), content.len());
        }
        zip.start_file("demo-1.0.dist-info/RECORD", SimpleFileOptions::default())
            .unwrap();
        record += "demo-1.0.dist-info/RECORD,,\n";
        zip.write_all(record.as_bytes()).unwrap();
        zip.finish().unwrap();
        path
    }

    const WHEEL: &[u8] = b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\n";

    #[test]
    fn a_wheel_lands_where_the_scheme_says_with_its_modes_and_launchers() {
        let dir = tempfile::tempdir().unwrap();
        let venv = venv_at(&dir.path().join("venv"));
        let wheel = wheel_of(
            dir.path(),
            &[
                ("demo/__init__.py", b"X = 1\n", 0o644),
                ("demo/bin/server", b"\x7fELF...", 0o755),
                ("demo-1.0.data/scripts/tool", b"#!python\nprint(1)\n", 0o755),
                (
                    "demo-1.0.data/scripts/plain.sh",
                    b"#!/bin/sh\necho\n",
                    0o644,
                ),
                ("demo-1.0.data/platlib/extra.py", b"", 0o644),
                ("demo-1.0.data/headers/demo.h", b"int x;\n", 0o644),
                ("demo-1.0.data/data/share/demo.txt", b"d\n", 0o644),
                ("demo-1.0.dist-info/WHEEL", WHEEL, 0o644),
                (
                    "demo-1.0.dist-info/entry_points.txt",
                    b"[console_scripts]\ndemo = demo.cli:main.run [extra]\n\
                      [other]\nx = y:z\n[gui_scripts]\ndemo-gui=demo:gui\n",
                    0o644,
                ),
            ],
        );
        let installed = install_wheel(&wheel, &venv).unwrap();
        assert_eq!(installed.launchers, ["demo", "demo-gui"]);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let umask = current_umask();
        let site = &venv.site;
        let root = &venv.root;
        assert_eq!(mode(&site.join("demo/__init__.py")), 0o666 & !umask);
        assert_eq!(
            mode(&site.join("demo/bin/server")),
            (0o777 & !umask) | 0o111
        );
        let tool = std::fs::read_to_string(root.join("bin/tool")).unwrap();
        assert_eq!(
            tool,
            format!("#!{}\nprint(1)\n", root.join("bin/python").display())
        );
        assert_eq!(mode(&root.join("bin/tool")), (0o777 & !umask) | 0o111);
        assert_eq!(
            std::fs::read_to_string(root.join("bin/plain.sh")).unwrap(),
            "#!/bin/sh\necho\n"
        );
        assert!(site.join("extra.py").is_file());
        assert!(root.join("include/site/python3.11/demo/demo.h").is_file());
        assert!(root.join("share/demo.txt").is_file());
        let demo = std::fs::read_to_string(root.join("bin/demo")).unwrap();
        assert!(demo.contains("from demo.cli import main\n"), "{demo}");
        assert!(demo.contains("sys.exit(main.run())"), "{demo}");
        assert_eq!(mode(&root.join("bin/demo")) & 0o111, 0o111);
        assert!(!root.join("bin/x").exists());
        let record = std::fs::read_to_string(site.join("demo-1.0.dist-info/RECORD")).unwrap();
        let tool_line = format!("../../../bin/tool,{},", record_hash(tool.as_bytes()));
        for expected in [
            "demo/__init__.py,",
            tool_line.as_str(),
            "../../../bin/demo,sha256=",
            "../../../include/site/python3.11/demo/demo.h,",
            "../../../share/demo.txt,",
            "demo-1.0.dist-info/INSTALLER,",
            "demo-1.0.dist-info/REQUESTED,",
            "demo-1.0.dist-info/RECORD,,\n",
        ] {
            assert!(record.contains(expected), "{expected}\n{record}");
        }
        assert_eq!(record.matches("dist-info/RECORD").count(), 1, "{record}");
        assert_eq!(record.lines().count(), installed.files);
    }

    #[test]
    fn refused_wheels_say_why() {
        let cases: &[(&[WheelMember], &str)] = &[
            (
                &[("demo/x.py", b"", 0o644)],
                "expected one NAME-VERSION.dist-info/WHEEL, found 0",
            ),
            (
                &[
                    ("demo-1.0.dist-info/WHEEL", b"Wheel-Version: 2.0\n", 0o644),
                    ("demo/x.py", b"", 0o644),
                ],
                "Wheel-Version \"2.0\"",
            ),
            (
                &[
                    ("demo-1.0.dist-info/WHEEL", WHEEL, 0o644),
                    ("../escape.py", b"", 0o644),
                ],
                "outside the venv",
            ),
            (
                &[
                    ("demo-1.0.dist-info/WHEEL", WHEEL, 0o644),
                    ("demo-1.0.data/nosuch/x", b"", 0o644),
                ],
                "no install scheme",
            ),
            (
                &[
                    ("demo-1.0.dist-info/WHEEL", WHEEL, 0o644),
                    (
                        "demo-1.0.dist-info/entry_points.txt",
                        b"[console_scripts]\ndemo = demo\n",
                        0o644,
                    ),
                ],
                "names no callable",
            ),
        ];
        for (members, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            let venv = venv_at(&dir.path().join("venv"));
            let wheel = wheel_of(dir.path(), members);
            let problem = install_wheel(&wheel, &venv).unwrap_err();
            assert!(problem.contains(expected), "{expected}: {problem}");
            assert!(!dir.path().join("escape.py").exists());
        }
    }

    #[test]
    fn a_record_that_does_not_match_stops_the_install() {
        let dir = tempfile::tempdir().unwrap();
        let venv = venv_at(&dir.path().join("venv"));
        let path = dir.path().join("demo-1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, content) in [
            ("demo-1.0.dist-info/WHEEL", WHEEL),
            ("demo.py", b"X = 2\n"),
            (
                "demo-1.0.dist-info/RECORD",
                b"demo.py,sha256=AAAA,6\ndemo-1.0.dist-info/RECORD,,\n",
            ),
        ] {
            zip.start_file(name, SimpleFileOptions::default()).unwrap();
            zip.write_all(content).unwrap();
        }
        zip.finish().unwrap();
        let problem = install_wheel(&path, &venv).unwrap_err();
        assert!(
            problem.contains("RECORD does not match") && problem.contains("demo.py"),
            "{problem}"
        );
    }

    #[test]
    fn which_wheel_tags_a_runtime_takes() {
        let saved = include_str!("../../vendor-samples/sysconfig/pyenv-cpython-3.11.7.json");
        let mut glibc = Interpreter::from_json(saved, "saved".as_ref()).unwrap();
        glibc.glibc = "2.28".into();
        glibc.machine = Some("x86_64".into());
        let mut musl = glibc.clone();
        musl.glibc = String::new();
        let mut unknown_machine = glibc.clone();
        unknown_machine.machine = None;
        let mut free_threaded = glibc.clone();
        free_threaded.abiflags = "t".into();
        // (runtime, wheel file name, installs)
        let cases = [
            (&glibc, "u-2.0.31-cp311-cp311-linux_x86_64.whl", true),
            (
                &glibc,
                "u-2.0.31-cp311-cp311-manylinux_2_28_x86_64.whl",
                true,
            ),
            (
                &glibc,
                "u-2.0.31-cp311-cp311-manylinux_2_31_x86_64.whl",
                false,
            ),
            (
                &glibc,
                "u-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                true,
            ),
            (&glibc, "u-1-cp311-cp311-manylinux1_x86_64.whl", true),
            (&glibc, "u-1-cp311-cp311-manylinux_2_28_aarch64.whl", false),
            (&glibc, "u-1-cp311-cp311-musllinux_1_2_x86_64.whl", false),
            (&glibc, "u-1-cp312-cp312-linux_x86_64.whl", false),
            (&glibc, "u-1-cp310-cp310-linux_x86_64.whl", false),
            (&glibc, "u-1-cp38-abi3-linux_x86_64.whl", true),
            (&glibc, "u-1-cp312-abi3-linux_x86_64.whl", false),
            (&glibc, "u-1-py3-none-any.whl", true),
            (&glibc, "u-1-py2.py3-none-any.whl", true),
            (&glibc, "u-1-py2-none-any.whl", false),
            (&glibc, "u-1-1build-cp311-cp311-linux_x86_64.whl", true),
            (&glibc, "u-1-cp311-cp311t-linux_x86_64.whl", false),
            (&musl, "u-1-cp311-cp311-musllinux_1_2_x86_64.whl", true),
            (&musl, "u-1-cp311-cp311-manylinux_2_17_x86_64.whl", false),
            (
                &unknown_machine,
                "u-1-cp311-cp311-manylinux_2_17_aarch64.whl",
                true,
            ),
            (&free_threaded, "u-1-cp311-cp311t-linux_x86_64.whl", true),
            (&free_threaded, "u-1-cp311-cp311-linux_x86_64.whl", false),
            (&free_threaded, "u-1-cp38-abi3-linux_x86_64.whl", false),
            (&glibc, "u-cp311-linux_x86_64.whl", false),
        ];
        for (runtime, name, installs) in cases {
            let problem = unsupported_tags(name, runtime);
            assert_eq!(problem.is_none(), installs, "{name}: {problem:?}");
        }
        let said = unsupported_tags("u-1-cp312-cp312-linux_x86_64.whl", &glibc).unwrap();
        assert!(
            said.contains("is not a supported wheel")
                && said.contains("3.11.7 (cp311, glibc 2.28, x86_64)"),
            "{said}"
        );
    }

    #[test]
    fn relative_paths_and_shebangs() {
        let site = Path::new("/v/lib/python3.11/site-packages");
        for (path, expected) in [
            ("/v/lib/python3.11/site-packages/a/b.py", "a/b.py"),
            ("/v/bin/uwsgi", "../../../bin/uwsgi"),
            ("/v/share/x", "../../../share/x"),
        ] {
            assert_eq!(relative_to(Path::new(path), site), expected);
        }
        let python = Path::new("/v/bin/python");
        for (script, expected) in [
            (&b"#!python\nx\n"[..], &b"#!/v/bin/python\nx\n"[..]),
            (b"#!python3 -E\nx\n", b"#!/v/bin/python\nx\n"),
            (b"#!/usr/bin/env python\nx\n", b"#!/usr/bin/env python\nx\n"),
            (b"#!python", b"#!/v/bin/python\n"),
        ] {
            assert_eq!(pointed_at(script, python), expected);
        }
        let long = PathBuf::from(format!("/{}/bin/python", "d".repeat(130)));
        assert!(launcher(&long, "m", "f").starts_with("#!/bin/sh\n'''exec' \"/ddd"));
        assert!(launcher(python, "m", "f").starts_with("#!/v/bin/python\n"));
    }
}
