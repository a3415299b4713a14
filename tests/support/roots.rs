//! Other machines, for real: Debian roots made by `scripts/users-root.sh` (debootstrap, cached),
//! commands run chrooted into them, and the project's shell scripts.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `scripts/NAME ARGS` with `envs`: (success, stdout, stdout + stderr).
pub fn run_script(name: &str, args: &[&OsStr], envs: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(super::repo().join("scripts").join(name));
    command.args(args);
    for (key, value) in envs {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    let (stdout, stderr) = super::texts(&out);
    let said = format!("{stdout}{stderr}");
    (out.status.success(), stdout, said)
}

/// The last `n` bytes of a long log, for failure messages.
pub fn tail(text: &str, n: usize) -> &str {
    let start = text.len().saturating_sub(n);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    &text[start..]
}

/// The root `scripts/users-root.sh SUITE PYTHON [PACKAGES]` makes (or reuses); no build prefix
/// (`/opt/_internal`) is there.
pub fn users_root(suite: &str, python: &str, packages: &str) -> PathBuf {
    let mut args = vec![OsStr::new(suite), OsStr::new(python)];
    if !packages.is_empty() {
        args.push(OsStr::new(packages));
    }
    let (ok, root, said) = run_script("users-root.sh", &args, &[]);
    assert!(ok, "users-root.sh {suite} {python}: {}", tail(&said, 3000));
    let root = PathBuf::from(root.trim());
    assert!(!root.join("opt/_internal").exists());
    root
}

/// Run the shell `command` in `root` (a private mount namespace with /proc, then chroot).
pub fn in_root(root: &Path, command: &str) -> Command {
    let mut c = Command::new("unshare");
    c.args(["-m", "sh", "-c"]).arg(format!(
        "mount -t proc proc '{}/proc' && exec chroot '{}' /bin/sh -c '{command}'",
        root.display(),
        root.display()
    ));
    c
}

/// `dir/name`: starts `program` (a path inside `root`) chrooted there, with its arguments.
pub fn launcher_in(dir: &Path, name: &str, root: &Path, program: &str) -> PathBuf {
    super::script(
        dir,
        name,
        &format!(
            "exec unshare -m sh -c 'mount -t proc proc \"$0/proc\" && exec chroot \"$0\" {program} \"$@\"' '{}' \"$@\"\n",
            root.display()
        ),
    )
}
