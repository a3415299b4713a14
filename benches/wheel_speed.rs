//! `cargo bench --bench wheel_speed`: `bundle` and `verify --wheel` against their baselines, side
//! by side on the uWSGI 2.0.29 default-profile wheel: runs `benches/wheel_speed.sh` (the wheel
//! build and the timed loop are shell and Python work; the script says what it measures).
//! `PATCH_UWSGI_BENCH_RUNS` sets the rounds (default 5). Under `cargo test --benches` it only
//! says how to run it: a timing is never a test.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "wheel_speed: a benchmark of minutes; run it with `cargo bench --bench wheel_speed`"
        );
        return ExitCode::SUCCESS;
    }
    let runs = std::env::var("PATCH_UWSGI_BENCH_RUNS").unwrap_or_else(|_| "5".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/wheel_speed.sh");
    match Command::new("bash").arg(script).arg(&runs).status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("wheel_speed: {script} ended with {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("wheel_speed: cannot run {script}: {e}");
            ExitCode::FAILURE
        }
    }
}
