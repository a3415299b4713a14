//! Never a corrupt tree: SIGKILL at random moments of `apply` and `revert`, concurrent runs on
//! one tree, a failing write, permission denied, odd paths (interpreters that crash or hang
//! are among the bad-input cases of tests/cli.rs). The figures in the
//! docs/reliability.md's table come from these tests (they print them).

mod support;

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{bin, sample_tree, snapshot_dir, texts};

/// Files a run may change, relative to the tree.
const FILES: [&str; 3] = [
    "uwsgiconfig.py",
    "plugins/python/uwsgiplugin.py",
    "plugins/python/patch_uwsgi_plan.json",
];

fn dump(name: &str) -> PathBuf {
    support::repo()
        .join("vendor-samples/sysconfig")
        .join(format!("{name}.json"))
}

/// `apply` from a saved probe: no interpreter is launched, so the run is nothing but the tree
/// work, and a random kill lands in reading, staging or renaming.
fn apply_command(tree: &Path, probe: &Path) -> Command {
    let mut command = bin();
    command
        .args([OsStr::new("apply"), tree.as_os_str(), OsStr::new("--probe")])
        .arg(probe)
        .args(["--mode", "nolib", "--quiet"]);
    command
}

fn revert_command(tree: &Path) -> Command {
    let mut command = bin();
    command.args([
        OsStr::new("revert"),
        tree.as_os_str(),
        OsStr::new("--quiet"),
    ]);
    command
}

fn files(tree: &Path) -> Vec<Option<Vec<u8>>> {
    FILES
        .iter()
        .map(|f| std::fs::read(tree.join(f)).ok())
        .collect()
}

/// Temporary files anywhere in the tree.
fn leftovers(tree: &Path) -> Vec<PathBuf> {
    snapshot_dir(tree)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".patch-uwsgi-"))
        })
        .collect()
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        // xorshift64*: enough to spread kill times; the seed is printed for reruns.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

fn run_ok(mut command: Command) {
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
}

#[derive(Default, Debug)]
struct KillStats {
    landed: u32,
    finished_first: u32,
    mixed_tree: u32,
    temp_left: u32,
}

#[test]
fn sigkill_at_random_moments_never_leaves_a_torn_file() {
    let probe = dump("pyenv-cpython-3.12.1");
    let (_tmp, tree) = sample_tree("2.0.31");
    let pristine = files(&tree);
    // The quickest of three unkilled runs: one run timed while other tests load the machine
    // would stretch the kill window, and most kills would then land after the process ended.
    let mut run_time = Duration::MAX;
    let mut patched = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        run_ok(apply_command(&tree, &probe));
        run_time = run_time.min(started.elapsed());
        patched = files(&tree);
        assert!(pristine[2].is_none() && patched[2].is_some());
        run_ok(revert_command(&tree));
        assert_eq!(files(&tree), pristine);
    }

    let seed = std::env::var("PATCH_UWSGI_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let mut rng = Rng(seed);
    // Kill times spread over 0 .. 1.2 x an unkilled run (startup included).
    let window = (run_time.as_micros() as u64 * 12 / 10).max(2_000);
    let mut stats = [KillStats::default(), KillStats::default()];
    let wanted = 150;
    let mut attempts = 0;
    while stats.iter().any(|s| s.landed < wanted) {
        attempts += 1;
        assert!(attempts < 5_000, "kills keep missing: {stats:?}");
        // Alternate: kill an apply on a pristine tree, then a revert on a patched one.
        for (index, (mut command, before, after)) in [
            (apply_command(&tree, &probe), &pristine, &patched),
            (revert_command(&tree), &patched, &pristine),
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(&files(&tree), before);
            let delay = Duration::from_micros(rng.below(window));
            let mut child = command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(delay);
            let _ = child.kill();
            let status = child.wait().unwrap();
            let stat = &mut stats[index];
            if status.signal() == Some(9) {
                stat.landed += 1;
            } else {
                assert_eq!(status.code(), Some(0), "seed {seed}");
                stat.finished_first += 1;
            }
            // Every file wholly before or wholly after.
            let now = files(&tree);
            for (i, file) in now.iter().enumerate() {
                assert!(
                    file == &before[i] || file == &after[i],
                    "seed {seed}: {} is torn after a kill at {delay:?}",
                    FILES[i]
                );
            }
            if now != *before && now != *after {
                stat.mixed_tree += 1;
            }
            if !leftovers(&tree).is_empty() {
                stat.temp_left += 1;
            }
            // A re-run finishes the job and clears the killed run's temp files.
            let rerun = if index == 0 {
                apply_command(&tree, &probe)
            } else {
                revert_command(&tree)
            };
            run_ok(rerun);
            assert_eq!(&files(&tree), after, "seed {seed}");
            assert_eq!(leftovers(&tree), Vec::<PathBuf>::new(), "seed {seed}");
        }
    }
    eprintln!(
        "kill injection (seed {seed}, window {window} us): apply {:?}; revert {:?}",
        stats[0], stats[1]
    );
    // Kills must also have landed inside the writes, or the test proved little.
    assert!(
        stats
            .iter()
            .map(|s| s.mixed_tree + s.temp_left)
            .sum::<u32>()
            > 0,
        "no kill landed during the writes: {stats:?}"
    );
}

fn plan_versions(tree: &Path) -> Vec<String> {
    let plan: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tree.join("plugins/python/patch_uwsgi_plan.json")).unwrap(),
    )
    .unwrap();
    let mut versions: Vec<String> = plan["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["python"]["version"].as_str().unwrap().to_string())
        .collect();
    versions.sort();
    versions
}

/// Start every command at once, then wait for all; each must succeed.
fn run_together(commands: Vec<Command>) {
    let children: Vec<_> = commands
        .into_iter()
        .map(|mut c| {
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    }
}

#[test]
fn eight_concurrent_applies_keep_every_plan() {
    let (_tmp, reference) = sample_tree("2.0.31");
    run_ok(apply_command(&reference, &dump("pyenv-cpython-3.12.1")));
    let patched_text = &files(&reference)[..2];

    // From saved probes: all eight reach the tree within a millisecond or two.
    let dumps = [
        "pyenv-cpython-2.7.18",
        "pyenv-cpython-3.6.15",
        "pyenv-cpython-3.7.16",
        "pyenv-cpython-3.8.18",
        "pyenv-cpython-3.9.18",
        "pyenv-cpython-3.10.13",
        "pyenv-cpython-3.11.7",
        "pyenv-cpython-3.12.1",
    ];
    let mut expected: Vec<String> = dumps
        .iter()
        .map(|d| d.rsplit('-').next().unwrap().to_string())
        .collect();
    expected.sort();
    let rounds = 10;
    for round in 0..rounds {
        let (_tmp, tree) = sample_tree("2.0.31");
        run_together(
            dumps
                .iter()
                .map(|d| apply_command(&tree, &dump(d)))
                .collect(),
        );
        assert_eq!(plan_versions(&tree), expected, "round {round}");
        assert_eq!(&files(&tree)[..2], patched_text, "round {round}");
        assert!(leftovers(&tree).is_empty(), "round {round}");
    }

    // Real interpreters, probed at the same time.
    let mut pythons = Vec::new();
    for minor in ["2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12"] {
        let Some((version, python)) = support::require_python(minor) else {
            return;
        };
        pythons.push((version, python));
    }
    let (_tmp, tree) = sample_tree("2.0.31");
    run_together(
        pythons
            .iter()
            .map(|(_, python)| {
                let mut command = support::apply_command(&tree, python);
                command.args(["--mode", "nolib"]);
                command
            })
            .collect(),
    );
    let mut versions: Vec<String> = pythons.into_iter().map(|(v, _)| v).collect();
    versions.sort();
    assert_eq!(plan_versions(&tree), versions);
    assert_eq!(&files(&tree)[..2], patched_text);
    eprintln!(
        "concurrency: {rounds} rounds x 8 applies from saved probes, 1 round x 8 real interpreters"
    );
}

#[test]
fn a_write_that_fails_for_lack_of_room_changes_nothing() {
    // A real failing write: the file-size limit (ulimit -f, SIGXFSZ ignored) makes writing the
    // 62 KB uwsgiconfig.py fail with EFBIG, as a full disk fails with ENOSPC.
    let (_tmp, tree) = sample_tree("2.0.31");
    let before = snapshot_dir(&tree);
    let out = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 16; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_patch_uwsgi"))
        .args([OsStr::new("apply"), tree.as_os_str(), OsStr::new("--probe")])
        .arg(dump("pyenv-cpython-3.12.1"))
        .args(["--mode", "nolib"])
        .output()
        .unwrap();
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot write the new content of {}",
            tree.join("uwsgiconfig.py").display()
        )) && stderr.contains("File too large"),
        "{stderr}"
    );
    assert_eq!(snapshot_dir(&tree), before);
}

#[test]
fn permission_denied_exits_2_and_changes_nothing() {
    // Root may write anywhere: as root the binary runs as `nobody` (setpriv) on a tree it can
    // read but not write; otherwise the folders are made read-only.
    use std::os::unix::fs::PermissionsExt;
    let as_root = support::running_as_root();
    let work = tempfile::tempdir().unwrap();
    let set_mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set_mode(work.path(), 0o755);
    let tree = work.path().join("uwsgi");
    support::copy_tree(&support::repo().join("vendor-samples/2.0.31"), &tree);
    let binary = work.path().join("patch_uwsgi");
    std::fs::copy(env!("CARGO_BIN_EXE_patch_uwsgi"), &binary).unwrap();
    let probe = work.path().join("probe.json");
    std::fs::copy(dump("pyenv-cpython-3.12.1"), &probe).unwrap();
    if !as_root {
        set_mode(&tree, 0o555);
        set_mode(&tree.join("plugins/python"), 0o555);
    }
    let before = snapshot_dir(&tree);
    for args in [vec!["apply", "--mode", "nolib", "--probe"], vec!["revert"]] {
        let mut command = support::unprivileged(&binary);
        command.arg(args[0]).arg(&tree).args(&args[1..]);
        if args[0] == "apply" {
            command.arg(&probe);
        }
        let out = support::output_of_fresh_copy(&mut command);
        let (_, stderr) = texts(&out);
        if args[0] == "revert" {
            // Nothing to revert on a pristine tree: no write is attempted.
            assert_eq!(out.status.code(), Some(0), "{stderr}");
            continue;
        }
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&tree.display().to_string()), "{stderr}");
        assert!(stderr.contains("Permission denied"), "{stderr}");
        assert_eq!(snapshot_dir(&tree), before);
    }
    if !as_root {
        set_mode(&tree.join("plugins/python"), 0o755);
        set_mode(&tree, 0o755);
    }
}

#[test]
fn paths_with_spaces_and_non_utf8_bytes_work() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let odd = dir
        .path()
        .join("my tree")
        .join(OsStr::from_bytes(b"uwsgi \xff\xfe 'x'"));
    support::copy_tree(&support::repo().join("vendor-samples/2.0.31"), &odd);
    let pristine = snapshot_dir(&odd);
    run_ok(apply_command(&odd, &dump("pyenv-cpython-3.12.1")));
    assert_ne!(snapshot_dir(&odd), pristine);
    let out = bin()
        .args([OsStr::new("check"), odd.as_os_str(), OsStr::new("--probe")])
        .arg(dump("pyenv-cpython-3.12.1"))
        .args(["--mode", "nolib"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    run_ok(revert_command(&odd));
    assert_eq!(snapshot_dir(&odd), pristine);
    // An error about such a path still names it (lossily).
    let missing = dir.path().join(OsStr::from_bytes(b"gone \xff"));
    let out = revert_command(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(texts(&out).1.contains("gone \u{fffd}"), "{:?}", texts(&out));

    // An archive under a non-UTF-8 path cannot be written into the JSON plan or the shell
    // link line: refused before anything is written.
    let Some((_, python)) = support::require_python("3.12") else {
        return;
    };
    let odd_dir = dir.path().join(OsStr::from_bytes(b"archive \xff"));
    std::fs::create_dir(&odd_dir).unwrap();
    let archive = odd_dir.join("libpython3.12.a");
    std::fs::copy(support::libpl_archive(&python), &archive).unwrap();
    let (_tmp, tree) = sample_tree("2.0.31");
    let before = snapshot_dir(&tree);
    let out = support::apply_command(&tree, &python)
        .arg("--libpython")
        .arg(&archive)
        .output()
        .unwrap();
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("its path is not valid UTF-8"), "{stderr}");
    assert_eq!(snapshot_dir(&tree), before);
}
