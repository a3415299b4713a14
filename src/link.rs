//! The C compiler, and the probe link: can the static archive go into a position-independent
//! executable? manylinux's archives are compiled without -fPIC; on a toolchain that makes PIE
//! executables by default the link then fails with a relocation error unless `-no-pie` is
//! given. The only reliable test is to try.

use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};

const MAIN: &str = "int main(void) { return 0; }\n";

/// The C compiler for this platform as the `cc` crate finds it: `CC` (a wrapper such as
/// `ccache gcc` included) and `CFLAGS` are honoured, else `cc`.
pub(crate) fn c_compiler() -> Result<cc::Tool> {
    cc::Build::new()
        .target(env!("PATCH_UWSGI_TARGET"))
        .host(env!("PATCH_UWSGI_TARGET"))
        .opt_level(0)
        .debug(false)
        .warnings(false)
        .cargo_metadata(false)
        .cargo_warnings(false)
        .cargo_output(false)
        .emit_rerun_if_env_changed(false)
        .inherit_rustflags(false)
        .try_get_compiler()
        .map_err(|e| Error::LinkProbe {
            compiler: std::env::var("CC").unwrap_or_else(|_| "cc".to_string()),
            message: format!("no C compiler found ({e}); install gcc or set CC"),
        })
}

/// The compiler's command line, for reports.
pub(crate) fn describe(command: &Command) -> Vec<String> {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// Whether a failed link's message is the "archive is not position-independent" error.
pub(crate) fn is_pie_relocation_error(message: &str) -> bool {
    message.contains("recompile with -fPIE")
        || message.contains("recompile with -fPIC")
        || message.contains("can not be used when making a PIE object")
}

fn link(
    tool: &cc::Tool,
    dir: &Path,
    extra: &[&str],
    libs: &[String],
) -> Result<std::result::Result<(), String>> {
    let source = dir.join("main.c");
    let mut command = tool.to_command();
    command
        .args(extra)
        .arg("-o")
        .arg(dir.join("probe"))
        .arg(&source)
        .args(libs);
    let out = command
        .output()
        .map_err(|e| Error::io("run the C compiler", tool.path(), e))?;
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
    let tool = c_compiler()?;
    let first = match link(&tool, dir.path(), &[], libs)? {
        Ok(()) => return Ok(false),
        Err(message) => message,
    };
    match link(&tool, dir.path(), &["-no-pie"], libs)? {
        Ok(()) => Ok(true),
        Err(second) => Err(Error::LinkProbe {
            compiler: tool.path().display().to_string(),
            message: format!("{}\nwith -no-pie:\n{}", first.trim(), second.trim()),
        }),
    }
}
