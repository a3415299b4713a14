//! All-or-nothing writes of several files: every new content goes to a temporary file in the
//! target's own folder first; only when all are written are they renamed into place, and if a
//! rename fails the files already replaced get their old bytes back.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::files::{stage, write_atomic, write_target, TEMP_PREFIX};

/// One file change of a transaction.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    /// The file (a symlink is written through: its target gets the new bytes, the link stays).
    pub path: PathBuf,
    /// Its current bytes, `None` if it does not exist.
    pub before: Option<Vec<u8>>,
    /// Its new bytes, `None` to remove it.
    pub after: Option<Vec<u8>>,
}

struct Staged {
    target: PathBuf,
    temp: Option<tempfile::NamedTempFile>,
    before: Option<Vec<u8>>,
}

/// Apply every change or none. On error, files already replaced are restored.
pub(crate) fn commit(changes: &[Change]) -> Result<()> {
    let mut staged = Vec::with_capacity(changes.len());
    for change in changes {
        let target = write_target(&change.path)?;
        let temp = match &change.after {
            Some(bytes) => Some(stage(&target, bytes)?),
            None => None,
        };
        staged.push(Staged {
            target,
            temp,
            before: change.before.clone(),
        });
    }
    for index in 0..staged.len() {
        let result = match staged[index].temp.take() {
            Some(temp) => temp
                .persist(&staged[index].target)
                .map(|_| ())
                .map_err(|e| Error::io("replace", &staged[index].target, e.error)),
            None => match fs::remove_file(&staged[index].target) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::io("remove", &staged[index].target, e))
                }
                _ => Ok(()),
            },
        };
        if let Err(error) = result {
            roll_back(&staged[..index]);
            return Err(error);
        }
    }
    let mut folders: Vec<&Path> = staged.iter().filter_map(|s| s.target.parent()).collect();
    folders.dedup();
    for folder in folders {
        sync_dir(folder);
    }
    Ok(())
}

fn roll_back(done: &[Staged]) {
    for file in done.iter().rev() {
        // Best effort: the original error is the one worth reporting.
        let _ = match &file.before {
            Some(bytes) => write_atomic(&file.target, bytes),
            None => fs::remove_file(&file.target).map_err(|e| Error::io("remove", &file.target, e)),
        };
    }
}

/// A lock on a tree's folder (`flock`, released when dropped or when the process dies, so a
/// killed run never leaves it behind). Writers hold it exclusively from reading the files to
/// the last rename, so concurrent runs neither tear a file nor lose each other's plans.
#[derive(Debug)]
pub(crate) struct TreeLock {
    _folder: fs::File,
}

/// How long a run waits for another to finish with the same tree.
pub(crate) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

impl TreeLock {
    /// Lock `dir`: `exclusive` for writers, shared for readers.
    pub(crate) fn acquire(dir: &Path, exclusive: bool) -> Result<TreeLock> {
        let folder = fs::File::open(dir).map_err(|e| Error::io("open", dir, e))?;
        let started = std::time::Instant::now();
        loop {
            let attempt = if exclusive {
                folder.try_lock()
            } else {
                folder.try_lock_shared()
            };
            match attempt {
                Ok(()) => return Ok(TreeLock { _folder: folder }),
                Err(fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(Error::Locked {
                        dir: dir.to_path_buf(),
                        seconds: LOCK_WAIT.as_secs(),
                    })
                }
                Err(fs::TryLockError::Error(e)) => return Err(Error::io("lock", dir, e)),
            }
        }
    }
}

/// Remove temporary files a killed run left in `dir`. Only call with the tree's exclusive
/// lock held: every live temporary file there belongs to the lock holder.
pub(crate) fn remove_stale_temps(dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    for entry in entries.flatten() {
        let is_temp = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX);
        if is_temp && entry.file_type().is_ok_and(|t| t.is_file()) {
            let path = entry.path();
            match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io("remove the leftover", &path, e))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Make renames in `dir` durable (the folder's entries reach the disk).
fn sync_dir(dir: &Path) {
    // Best effort: some file systems refuse fsync on a folder; the renames are done anyway.
    if let Ok(folder) = fs::File::open(dir) {
        let _ = folder.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(path: &Path, before: Option<&[u8]>, after: Option<&[u8]>) -> Change {
        Change {
            path: path.to_path_buf(),
            before: before.map(<[u8]>::to_vec),
            after: after.map(<[u8]>::to_vec),
        }
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(TEMP_PREFIX))
            .collect()
    }

    #[test]
    fn commit_writes_all_and_keeps_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.py");
        fs::write(&a, "old").unwrap();
        fs::set_permissions(&a, fs::Permissions::from_mode(0o755)).unwrap();
        let b = dir.path().join("b.json");
        commit(&[
            change(&a, Some(b"old"), Some(b"new")),
            change(&b, None, Some(b"{}")),
        ])
        .unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&a).unwrap().permissions().mode() & 0o777,
            0o755
        );
        // A new file: 0666 less the umask, as `sh` reports it.
        let umask = std::process::Command::new("sh")
            .args(["-c", "umask"])
            .output()
            .unwrap();
        let umask =
            u32::from_str_radix(String::from_utf8(umask.stdout).unwrap().trim(), 8).unwrap();
        assert_eq!(
            fs::metadata(&b).unwrap().permissions().mode() & 0o777,
            0o666 & !umask
        );
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn read_only_second_file_changes_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.py");
        let b = dir.path().join("b.py");
        fs::write(&a, "a0").unwrap();
        fs::write(&b, "b0").unwrap();
        fs::set_permissions(&b, fs::Permissions::from_mode(0o444)).unwrap();
        let err = commit(&[
            change(&a, Some(b"a0"), Some(b"a1")),
            change(&b, Some(b"b0"), Some(b"b1")),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("b.py"), "{err}");
        assert_eq!(fs::read(&a).unwrap(), b"a0");
        assert_eq!(fs::read(&b).unwrap(), b"b0");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn failed_rename_restores_earlier_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.py");
        fs::write(&a, "a0").unwrap();
        // The second target is a non-empty folder: staging works, the rename over it fails.
        let blocker = dir.path().join("blocker");
        fs::create_dir(&blocker).unwrap();
        fs::write(blocker.join("x"), "x").unwrap();
        let err = commit(&[
            change(&a, Some(b"a0"), Some(b"a1")),
            change(&blocker, None, Some(b"new")),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("blocker"), "{err}");
        assert_eq!(fs::read(&a).unwrap(), b"a0");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn symlink_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.py");
        let link = dir.path().join("link.py");
        fs::write(&real, "old").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
    }
}
