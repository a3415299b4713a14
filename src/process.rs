//! Running a child process with a time limit, its output collected.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Run `command` to the end, or kill it after `limit`. `Ok(None)` means it was killed, with
/// every process it started: it runs in a process group of its own, and the whole group is
/// killed (a hung compiler or pip grandchild must not outlive the limit). Standard input is
/// closed; both output streams are read while it runs, so a chatty child cannot block on a
/// full pipe.
pub(crate) fn run_bounded(
    command: &mut Command,
    limit: Duration,
) -> std::io::Result<Option<Output>> {
    let mut child = command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait()? {
            Some(status) => break status,
            None if started.elapsed() < limit => std::thread::sleep(Duration::from_millis(5)),
            None => {
                if let Ok(group) = i32::try_from(child.id()) {
                    // SAFETY: kill(2) with a negative pid signals that process group only; the
                    // group is the child's own (process_group(0) above), still unreaped.
                    unsafe { libc::kill(-group, libc::SIGKILL) };
                }
                let _ = child.kill();
                let _ = child.wait();
                // The readers end when the pipes close; a process that left the group and
                // holds them open is not waited for.
                return Ok(None);
            }
        }
    };
    Ok(Some(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }))
}

/// The last `n` lines of `text`, joined with " / " (for one-line error messages).
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

/// Which of a finished process's output streams to quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Streams {
    /// Its standard error.
    Stderr,
    /// Its standard output, then its standard error.
    Both,
}

/// What a finished process said, for a message: with `lines`, its last lines joined with
/// " / " (see [`last_lines`]); without, all of it, trimmed. Empty when it said nothing. The one
/// place a finished process becomes text; each caller words the message around it.
pub(crate) fn said(output: &Output, streams: Streams, lines: Option<usize>) -> String {
    let text = match streams {
        Streams::Stderr => String::from_utf8_lossy(&output.stderr).into_owned(),
        Streams::Both => format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    };
    match lines {
        Some(n) => last_lines(&text, n),
        None => text.trim().to_string(),
    }
}

/// A tool that ran but did not succeed (a compiler, `python -m venv`, pip).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToolFailure {
    /// It ended unsuccessfully: its status and what it said (see [`said`]).
    Ended {
        /// How it ended.
        status: ExitStatus,
        /// What it said.
        said: String,
    },
    /// It ran longer than the limit and was stopped.
    Stopped {
        /// The limit.
        limit: Duration,
    },
}

impl ToolFailure {
    /// What it said, or that it was stopped: the whole message where the tool's own words are
    /// the message (a compiler's error).
    pub(crate) fn said(&self) -> String {
        match self {
            ToolFailure::Ended { said, .. } => said.clone(),
            ToolFailure::Stopped { limit } => {
                format!("did not finish within {} s", limit.as_secs())
            }
        }
    }
}

impl std::fmt::Display for ToolFailure {
    /// `STATUS: WHAT IT SAID`, or `did not finish within N s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolFailure::Ended { status, said } => write!(f, "{status}: {said}"),
            ToolFailure::Stopped { .. } => f.write_str(&self.said()),
        }
    }
}

/// Run a tool to the end within `limit` ([`run_bounded`]). `Err` only when it could not be
/// started; `Ok(Err(..))` when it ran and failed, with what it said on `streams` (the last
/// `lines`, or all of it).
pub(crate) fn run_tool(
    command: &mut Command,
    limit: Duration,
    streams: Streams,
    lines: Option<usize>,
) -> crate::error::Result<Result<(), ToolFailure>> {
    let program = PathBuf::from(command.get_program());
    let output =
        run_bounded(command, limit).map_err(|e| crate::error::Error::io("run", &program, e))?;
    Ok(match output {
        Some(out) if out.status.success() => Ok(()),
        Some(out) => Err(ToolFailure::Ended {
            status: out.status,
            said: said(&out, streams, lines),
        }),
        None => Err(ToolFailure::Stopped { limit }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_failures_say_how_the_tool_ended() {
        let sh = |script: &str| {
            let mut command = Command::new("sh");
            command.args(["-c", script]);
            command
        };
        let limit = Duration::from_secs(10);
        assert_eq!(
            run_tool(&mut sh("exit 0"), limit, Streams::Both, None).unwrap(),
            Ok(())
        );
        let failed = run_tool(
            &mut sh("echo one; echo two; echo three >&2; exit 3"),
            limit,
            Streams::Both,
            Some(2),
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(failed.said(), "two / three");
        assert_eq!(failed.to_string(), "exit status: 3: two / three");
        let stderr_only = run_tool(
            &mut sh("echo out; echo err >&2; exit 1"),
            limit,
            Streams::Stderr,
            None,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(stderr_only.said(), "err");
        let stopped = run_tool(
            &mut sh("sleep 5"),
            Duration::from_millis(200),
            Streams::Both,
            None,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(
            stopped,
            ToolFailure::Stopped {
                limit: Duration::from_millis(200)
            }
        );
        assert_eq!(stopped.to_string(), "did not finish within 0 s");
        let missing = run_tool(
            &mut Command::new("/nonexistent/tool"),
            limit,
            Streams::Both,
            None,
        );
        assert!(missing
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/tool"));
    }

    /// Whether a process is gone (or a zombie, waiting for whoever inherited it).
    fn ended(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                stat.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
    }

    #[test]
    fn a_timeout_kills_the_grandchildren_too() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let out = run_bounded(
            Command::new("sh").arg("-c").arg(format!(
                "sleep 60 & echo $! > '{}'; wait",
                pid_file.display()
            )),
            Duration::from_millis(500),
        )
        .unwrap();
        assert!(out.is_none(), "the shell was not stopped");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let pid = pid.trim();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ended(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(ended(pid), "the grandchild sleep {pid} outlived the limit");
    }

    #[test]
    fn what_a_finished_process_said() {
        let out = run_bounded(
            Command::new("sh").args(["-c", "echo o1; echo o2; echo e1 >&2; echo e2 >&2; echo >&2"]),
            Duration::from_secs(10),
        )
        .unwrap()
        .unwrap();
        assert_eq!(said(&out, Streams::Stderr, None), "e1\ne2");
        assert_eq!(said(&out, Streams::Stderr, Some(1)), "e2");
        assert_eq!(said(&out, Streams::Both, Some(3)), "o2 / e1 / e2");
        let quiet = run_bounded(Command::new("true").arg(""), Duration::from_secs(10))
            .unwrap()
            .unwrap();
        assert_eq!(said(&quiet, Streams::Both, Some(6)), "");
    }

    #[test]
    fn a_finished_command_gives_its_output() {
        let out = run_bounded(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap()
        .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }
}
