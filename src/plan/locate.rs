//! `locate`: the target interpreter's link plan with its static archive found, and the report
//! `patch_uwsgi locate` prints. No tree is involved.

use std::path::Path;

use serde::Serialize;

use super::interpreter::Interpreter;
use super::libpython::{Candidate, Source};
use super::{LinkPlan, PieDecision, PlanOptions};
use crate::error::Result;

/// What [`locate`](crate::locate) found. As JSON (`patch_uwsgi locate --json`): `python`, `version`,
/// `abiflags`, `shared`, `free_threaded`, `mode`, `libpython`, `source`, `libs`, `ldflags`,
/// `no_pie`, `pie_decision`, `tried` and the whole `probe` (loadable again with
/// [`Interpreter::load`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Location {
    /// The probed interpreter.
    pub interpreter: Interpreter,
    /// The plan for it.
    pub plan: LinkPlan,
    /// Every archive candidate looked at, the chosen one last.
    pub tried: Vec<Candidate>,
    /// How `-no-pie` was decided (`None` when no archive is planned).
    pub pie: Option<PieDecision>,
}

impl Serialize for Location {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shape<'a> {
            python: &'a Path,
            version: &'a str,
            abiflags: &'a str,
            shared: bool,
            free_threaded: bool,
            mode: &'static str,
            libpython: Option<&'a Path>,
            source: Option<Source>,
            libs: &'a [String],
            ldflags: &'a [String],
            no_pie: bool,
            pie_decision: Option<PieDecision>,
            tried: &'a [Candidate],
            probe: &'a Interpreter,
        }
        let (interp, plan) = (&self.interpreter, &self.plan);
        Shape {
            python: &interp.path,
            version: &interp.version,
            abiflags: &interp.abiflags,
            shared: interp.shared(),
            free_threaded: interp.free_threaded(),
            mode: plan.mode.as_str(),
            libpython: plan.libpython.as_deref(),
            source: plan.source,
            libs: &plan.libs,
            ldflags: &plan.ldflags,
            no_pie: plan.no_pie,
            pie_decision: self.pie,
            tried: &self.tried,
            probe: interp,
        }
        .serialize(serializer)
    }
}

/// The plan for `interpreter` with the archive found (unless the mode is `nolib` or an
/// automatic `shared`); changes nothing but may extract the archive from manylinux's tarball.
pub fn locate_for(interpreter: Interpreter, options: &PlanOptions) -> Result<Location> {
    let planned = LinkPlan::make(&interpreter, options)?;
    Ok(Location {
        interpreter,
        plan: planned.plan,
        pie: planned.pie,
        tried: planned.located.map(|l| l.tried).unwrap_or_default(),
    })
}
