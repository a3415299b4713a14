//! The probe link: can the static archive go into a position-independent executable?
//! manylinux's archives are compiled without -fPIC; on a toolchain that makes PIE executables
//! by default the link then fails with a relocation error unless `-no-pie` is given. The only
//! reliable test is to try.

use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};

const MAIN: &str = "int main(void) { return 0; }\n";

/// The C compiler: `$CC` (first word), else `cc`.
pub(crate) fn compiler() -> String {
    std::env::var("CC")
        .ok()
        .and_then(|cc| cc.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "cc".to_string())
}

fn link(
    cc: &str,
    dir: &Path,
    extra: &[&str],
    libs: &[String],
) -> Result<std::result::Result<(), String>> {
    let source = dir.join("main.c");
    let out = Command::new(cc)
        .args(extra)
        .arg("-o")
        .arg(dir.join("probe"))
        .arg(&source)
        .args(libs)
        .output()
        .map_err(|e| Error::io("run the C compiler", Path::new(cc), e))?;
    Ok(if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

/// Whether the executable link needs `-no-pie` with these `libs` (archive first). An error
/// carries the compiler's own message when the link fails either way.
pub fn needs_no_pie(libs: &[String]) -> Result<bool> {
    let dir = tempfile::tempdir()
        .map_err(|e| Error::io("create a temporary folder in", &std::env::temp_dir(), e))?;
    std::fs::write(dir.path().join("main.c"), MAIN)
        .map_err(|e| Error::io("write", &dir.path().join("main.c"), e))?;
    let cc = compiler();
    let first = match link(&cc, dir.path(), &[], libs)? {
        Ok(()) => return Ok(false),
        Err(message) => message,
    };
    let relocation = first.contains("recompile with -fPIE")
        || first.contains("recompile with -fPIC")
        || first.contains("can not be used when making a PIE object");
    match link(&cc, dir.path(), &["-no-pie"], libs)? {
        Ok(()) if relocation => Ok(true),
        Ok(()) => Ok(true),
        Err(second) => Err(Error::LinkProbe {
            compiler: cc,
            message: format!("{}\nwith -no-pie:\n{}", first.trim(), second.trim()),
        }),
    }
}
