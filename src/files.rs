//! Single-file primitives every layer uses: the temporary files' prefix, new files' mode,
//! an atomic write of one file, reading a file that may be missing. Writing several files all
//! or nothing is the tree's business (`tree::fsio`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Prefix of the temporary files (so a leftover is recognisable).
pub(crate) const TEMP_PREFIX: &str = ".patch-uwsgi-";

/// The real file behind `path`: symlinks are written through so the link itself survives.
pub(crate) fn write_target(path: &Path) -> Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::canonicalize(path).map_err(|e| Error::io("resolve the symlink", path, e))
        }
        _ => Ok(path.to_path_buf()),
    }
}

/// A temporary-file builder for a file that does not exist yet: created with mode 0666 less
/// the process's umask, as any new file would be (tempfile's own default is a private 0600).
pub(crate) fn new_file_builder() -> tempfile::Builder<'static, 'static> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    builder
}

/// The new content of `path` in a temporary file beside it, flushed, with `path`'s permissions
/// (a read-only file is refused).
pub(crate) fn stage(path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let permissions = match fs::metadata(path) {
        Ok(meta) => {
            if meta.permissions().readonly() {
                return Err(Error::io(
                    "rewrite",
                    path,
                    std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        "the file is read-only; make it writable (chmod u+w) and run again",
                    ),
                ));
            }
            Some(meta.permissions())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("inspect", path, e)),
    };
    let builder = match permissions {
        Some(_) => {
            let mut builder = tempfile::Builder::new();
            builder.prefix(TEMP_PREFIX);
            builder
        }
        None => new_file_builder(),
    };
    let mut temp = builder
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))?;
    // Named by the file being replaced: the temporary name means nothing to the user.
    temp.write_all(bytes)
        .map_err(|e| Error::io("write the new content of", path, e))?;
    if let Some(permissions) = permissions {
        fs::set_permissions(temp.path(), permissions)
            .map_err(|e| Error::io("set permissions of", temp.path(), e))?;
    }
    temp.as_file()
        .sync_all()
        .map_err(|e| Error::io("flush the new content of", path, e))?;
    Ok(temp)
}

/// Put `bytes` at `path` atomically (temporary file, then rename), keeping permissions.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let target = write_target(path)?;
    let temp = stage(&target, bytes)?;
    temp.persist(&target)
        .map_err(|e| Error::io("replace", &target, e.error))?;
    Ok(())
}

/// Read a file that may be missing.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}
