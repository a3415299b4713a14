//! The artefacts after the build: [`verify`] links and runs a program embedding the target
//! interpreter with the static plan (`verify_embed.c`, `verify_imports.py`), [`bundle`] adds the
//! build interpreter's runtime to a wheel (`stdlib_zip.py` for its standard library), [`wheel`] installs a wheel into a
//! fresh venv and starts its programs as users do (`verify --wheel`). Uses `options`, `plan`,
//! `releases`, `tree` (to open the tree `verify DIR` names), `process` and `error`.

pub mod bundle;
mod install;
pub mod runs;
pub mod verify;
pub mod wheel;
