//! What the binary prints: the human-readable reports. JSON comes from the library's
//! `Serialize` implementations, with the command's name added (see `print`).

use std::io::Write;

use patch_uwsgi::{
    BundleReport, ImportFailure, Location, Report, RuntimeReport, Verification, WheelVerification,
};

use crate::cli::Command;

pub fn print_human(
    out: &mut impl Write,
    command: &Command,
    report: &Report,
) -> std::io::Result<()> {
    writeln!(
        out,
        "uWSGI {} in {}",
        report.uwsgi_version,
        report.tree.display()
    )?;
    if let Some(mode) = report.mode {
        let python = report.python.as_deref().unwrap_or("(given plan)".as_ref());
        let archive = report
            .libpython
            .as_ref()
            .map(|p| format!(", libpython {}", p.display()))
            .unwrap_or_default();
        let no_pie = if report.plan.as_ref().is_some_and(|p| p.no_pie) {
            ", -no-pie"
        } else {
            ""
        };
        writeln!(
            out,
            "python {}: mode {}{archive}{no_pie}",
            python.display(),
            mode.as_str()
        )?;
    }
    for file in &report.files {
        let recipes: Vec<String> = file
            .recipes
            .iter()
            .map(|r| format!("{} {}", r.id, r.outcome.as_str()))
            .collect();
        let detail = if recipes.is_empty() {
            String::new()
        } else {
            format!("  ({})", recipes.join(", "))
        };
        writeln!(out, "  {:<12} {}{detail}", file.outcome.as_str(), file.path)?;
    }
    if matches!(command, Command::Check { .. }) {
        writeln!(
            out,
            "{}",
            if report.needs_work() {
                "needs patching: run `patch_uwsgi apply`"
            } else {
                "patched, and the plan fits this Python"
            }
        )?;
    }
    Ok(())
}

pub fn print_location(out: &mut impl Write, found: &Location) -> std::io::Result<()> {
    let interp = &found.interpreter;
    let plan = &found.plan;
    writeln!(
        out,
        "python {} (CPython {}{}, mode {})",
        interp.path.display(),
        interp.version,
        interp.abiflags,
        plan.mode.as_str()
    )?;
    if let (Some(path), Some(source)) = (&plan.libpython, plan.source) {
        writeln!(out, "libpython {} (found by {source})", path.display())?;
    }
    writeln!(out, "libs after the objects: {}", plan.libs.join(" "))?;
    if !plan.ldflags.is_empty() {
        writeln!(out, "ldflags: {}", plan.ldflags.join(" "))?;
    }
    if let Some(decision) = found.pie {
        writeln!(
            out,
            "-no-pie: {} ({})",
            if plan.no_pie { "needed" } else { "not needed" },
            decision.describe()
        )?;
    }
    for candidate in &found.tried {
        let verdict = candidate.rejected.as_deref().unwrap_or("chosen");
        writeln!(
            out,
            "  tried {} ({}): {verdict}",
            candidate.path.display(),
            candidate.source
        )?;
    }
    Ok(())
}

pub fn print_verification(out: &mut impl Write, v: &Verification) -> std::io::Result<()> {
    let archive = v
        .plan
        .libpython
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let source = v.plan.source.map(|s| format!(" ({s})")).unwrap_or_default();
    writeln!(
        out,
        "verify {} (CPython {}) with {archive}{source}",
        v.python.display(),
        v.version
    )?;
    for step in &v.steps {
        let command = step
            .command
            .as_ref()
            .map(|c| format!("  {}", c.join(" ")))
            .unwrap_or_default();
        writeln!(
            out,
            "  {:<8} {:>6.2} s{command}",
            step.step.as_str(),
            step.seconds
        )?;
    }
    if v.needs_no_pie {
        writeln!(
            out,
            "the archive is not position-independent: the link needs -no-pie (apply puts it in the plan)"
        )?;
    }
    if let Some(failure) = &v.failure {
        print_failure(out, failure.step.as_str(), &failure.message)?;
    }
    print_embedded_imports(out, v)?;
    if let Some(runtime) = &v.runtime {
        print_runtime(out, runtime)?;
    }
    print_verdict(out, v.ok(), v.seconds)
}

fn print_failure(out: &mut impl Write, step: &str, message: &str) -> std::io::Result<()> {
    writeln!(out, "FAILED at {step}:")?;
    for line in message.lines() {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

fn print_import_failures(out: &mut impl Write, failures: &[ImportFailure]) -> std::io::Result<()> {
    for failure in failures {
        writeln!(out, "  FAILED import {}: {}", failure.module, failure.error)?;
    }
    Ok(())
}

fn print_verdict(out: &mut impl Write, ok: bool, seconds: f64) -> std::io::Result<()> {
    writeln!(
        out,
        "{} in {:.2} s",
        if ok { "ok" } else { "FAILED" },
        seconds
    )
}

/// What the embedding program imported, and what the binary needs at run time.
fn print_embedded_imports(out: &mut impl Write, v: &Verification) -> std::io::Result<()> {
    if !v.imported.is_empty() || !v.import_failures.is_empty() {
        writeln!(
            out,
            "imported {} lib-dynload modules embedded; {} failed that import in the interpreter",
            v.imported.len(),
            v.import_failures.len()
        )?;
    }
    print_import_failures(out, &v.import_failures)?;
    for failure in &v.failing_in_interpreter_too {
        writeln!(
            out,
            "  (fails in the interpreter too: {}: {})",
            failure.module, failure.error
        )?;
    }
    if !v.builtin_modules.is_empty() {
        writeln!(
            out,
            "compiled into the archive ({}): {}",
            v.builtin_modules.len(),
            v.builtin_modules.join(" ")
        )?;
        writeln!(
            out,
            "at run time the binary needs CPython {}'s stdlib with a lib-dynload providing: {}",
            v.version,
            v.imported.join(" ")
        )?;
    }
    Ok(())
}

fn print_runtime(out: &mut impl Write, runtime: &RuntimeReport) -> std::io::Result<()> {
    writeln!(
        out,
        "against {} (CPython {}, home {}):",
        runtime.python.display(),
        runtime.version,
        runtime.home
    )?;
    if let Some(error) = &runtime.error {
        writeln!(out, "  FAILED: {error}")?;
    }
    print_import_failures(out, &runtime.failed)?;
    if !runtime.builtin_there.is_empty() {
        writeln!(
            out,
            "  built into that interpreter, so missing from its lib-dynload: {}",
            runtime.builtin_there.join(" ")
        )?;
    }
    Ok(())
}

pub fn print_wheel_verification(
    out: &mut impl Write,
    w: &WheelVerification,
) -> std::io::Result<()> {
    writeln!(
        out,
        "verify {} in a fresh venv of {} (CPython {}; modules from {}, CPython {}; installed \
         by {})",
        w.wheel.display(),
        w.runtime_python.display(),
        w.runtime_version,
        w.python.display(),
        w.version,
        w.installer.as_str()
    )?;
    if let Some(venv) = &w.venv {
        writeln!(out, "  venv kept at {}", venv.display())?;
    }
    for step in &w.steps {
        writeln!(out, "  {:<8} {:>6.2} s", step.step.as_str(), step.seconds)?;
    }
    if let Some(failure) = &w.failure {
        print_failure(out, failure.step.as_str(), &failure.message)?;
    }
    for run in &w.runs {
        let reached = match &run.reached {
            Some(reached) if reached != &run.started => format!(" -> {}", reached.display()),
            _ => String::new(),
        };
        writeln!(
            out,
            "{}{reached}: imported {} extension modules; {} failed{}",
            run.started.display(),
            run.imported.len(),
            run.import_failures.len() + run.from_build_prefix.len(),
            if run.ok { "" } else { " (FAILED)" }
        )?;
    }
    print_not_tried(out, w)?;
    print_wheel_problems(out, w)?;
    print_verdict(out, w.ok, w.seconds)
}

/// The modules `verify --wheel` did not try, and where the standard library came from.
fn print_not_tried(out: &mut impl Write, w: &WheelVerification) -> std::io::Result<()> {
    if !w.failing_in_interpreter_too.is_empty() {
        let names: Vec<&str> = w
            .failing_in_interpreter_too
            .iter()
            .map(|f| f.module.as_str())
            .collect();
        writeln!(
            out,
            "  not tried, they fail in the build interpreter too: {}",
            names.join(", ")
        )?;
    }
    if !w.excluded.is_empty() {
        writeln!(
            out,
            "  left out by bundle --exclude (not tried): {}",
            w.excluded.join(", ")
        )?;
    }
    if let (Some(zip), Some(used)) = (&w.bundled_stdlib, &w.stdlib) {
        writeln!(
            out,
            "  standard library: bundled {}; encodings from {used}",
            zip.display()
        )?;
    }
    Ok(())
}

/// The modules that failed or came from the build prefix, and the way out.
fn print_wheel_problems(out: &mut impl Write, w: &WheelVerification) -> std::io::Result<()> {
    print_import_failures(out, &w.import_failures)?;
    for found in &w.from_build_prefix {
        writeln!(
            out,
            "  FAILED {} came from the build prefix: {}{} (absent on users' machines)",
            found.module,
            found.file.display(),
            found
                .via
                .as_ref()
                .map_or(String::new(), |via| format!(" (via {})", via.display()))
        )?;
    }
    if !w.from_build_prefix.is_empty() || !w.import_failures.is_empty() {
        writeln!(
            out,
            "  (a wheel's static uwsgi needs the build interpreter's modules beside it: \
             `patch_uwsgi bundle WHEEL -w OUTDIR`, before auditwheel repair)"
        )?;
    }
    Ok(())
}

pub fn print_bundle(out: &mut impl Write, report: &BundleReport) -> std::io::Result<()> {
    if !report.excluded.is_empty() {
        writeln!(out, "left out: {}", report.excluded.join(", "))?;
    }
    for wheel in &report.wheels {
        let stdlib = match wheel.stdlib_modules {
            0 => String::new(),
            n => format!(" and a standard library of {n} modules"),
        };
        writeln!(
            out,
            "{}: {} extension modules{stdlib} added in {} for {} ({} -> {} bytes)",
            wheel.output.display(),
            wheel.modules,
            report.runtime,
            wheel
                .executables
                .iter()
                .map(|e| format!("{} (Python {})", e.path, e.python))
                .collect::<Vec<_>>()
                .join(", "),
            wheel.bytes_before,
            wheel.bytes_after
        )?;
    }
    Ok(())
}
