//! The command line: the usage text (the one source of the CLI's description; the README's
//! copy is checked against it) and parsing, environment variables included, into one
//! [`Command`] holding that command's own arguments and the library's options. The library reads no environment; this is where it is read.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use patch_uwsgi::{
    cache_dir_from, BundleOptions, Compiler, Installer, Interpreter, ModeChoice, Options, Target,
    VerifyOptions, PROBE_TIMEOUT,
};

/// `patch_uwsgi --help`.
pub const USAGE: &str = "\
patch_uwsgi: make uWSGI's python plugin link a static libpython (manylinux, cibuildwheel)

usage:
  patch_uwsgi apply  [DIR]   rewrite the uWSGI tree (default .) for the target Python
  patch_uwsgi check  [DIR]   change nothing; exit 1 if apply would change something
  patch_uwsgi diff   [DIR]   change nothing; print the diff apply would make
  patch_uwsgi revert [DIR]   give back the upstream files byte for byte
  patch_uwsgi locate         find the static libpython and print the link plan
  patch_uwsgi verify [DIR]   link and run a program embedding the target Python with that plan
                             and import its extension modules (seconds); with DIR, first
                             check that this uWSGI release builds for it
  patch_uwsgi bundle WHEEL... -w OUTDIR   add the target Python's extension modules (and
                             with --stdlib its standard library) to each wheel; before auditwheel
  patch_uwsgi verify --wheel WHEEL   install the wheel into a fresh venv, start each program
                             it ships as users start it, import every extension module

options:
  --python PATH       the target Python (default: python, then python3, on PATH)
  --libpython PATH    use this static archive
  --probe FILE        a saved probe (locate --json) instead of running the Python
  --mode MODE         auto|static|nolib (auto: shared if the Python has a libpython.so;
                      locate: static)
  --manylinux-root DIR  where static-libs-for-embedding-only.tar.xz is (default /opt/_internal)
  --no-pie auto|yes|no  link -no-pie; auto decides by a probe link
  --runtime-python PATH  verify: also run against this Python's stdlib; verify --wheel:
                      install for this Python
  --wheel WHEEL       the wheel verify --wheel checks
  --command NAME      start only this installed command
  --installer builtin|pip  what installs the wheel (builtin: as pip lays it out, faster)
  --venv DIR          make the venv at DIR (must not exist) and keep it
  -w, --wheel-dir DIR  where bundle writes the wheels
  --stdlib            bundle the standard library too: no Python needed on the machine
  --exclude NAMES     leave out these extension modules (comma-separated, e.g. _tkinter)
  --no-release-check  build even where the release table says this uWSGI cannot, or for a
                      free-threaded Python
  --json              report as JSON on stdout
  --quiet             print nothing but errors
  --help, --version

environment:
  PATCH_UWSGI_LIBPYTHON      an archive, as --libpython (the option wins)
  PATCH_UWSGI_PROBE_TIMEOUT  seconds the Python may take to answer (default 30)
  CC, CFLAGS                 the C compiler for verify and the probe link (default cc)
  XDG_CACHE_HOME, HOME       cache: $XDG_CACHE_HOME/patch-uwsgi, else ~/.cache/patch-uwsgi

apply, check, diff and verify refuse a uWSGI release older than the first that builds for the
target CPython (3.10: 2.0.20, 3.11: 2.0.21, 3.12: 2.0.23, 3.13: 2.0.27, 3.14 and 3.15:
2.0.30) and a free-threaded CPython, naming the cibuildwheel skip selector.

exit: 0 done; 1 check found work, or verify failed; 2 error, and nothing was changed
";

/// The command names, as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Apply,
    Check,
    Diff,
    Revert,
    Locate,
    Verify,
    Bundle,
}

impl Name {
    const ALL: [Name; 7] = [
        Name::Apply,
        Name::Check,
        Name::Diff,
        Name::Revert,
        Name::Locate,
        Name::Verify,
        Name::Bundle,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Name::Apply => "apply",
            Name::Check => "check",
            Name::Diff => "diff",
            Name::Revert => "revert",
            Name::Locate => "locate",
            Name::Verify => "verify",
            Name::Bundle => "bundle",
        }
    }

    fn takes_dir(self) -> bool {
        !matches!(self, Name::Locate | Name::Bundle)
    }
}

/// A command with its own arguments: each holds what it uses, and only that.
#[derive(Debug)]
pub enum Command {
    /// `apply [DIR]`.
    Apply { dir: PathBuf, options: Options },
    /// `check [DIR]`.
    Check { dir: PathBuf, options: Options },
    /// `diff [DIR]`.
    Diff { dir: PathBuf, options: Options },
    /// `revert [DIR]` (needs no interpreter).
    Revert { dir: PathBuf },
    /// `locate`.
    Locate { options: Options },
    /// `verify [DIR]` (the tree, if given, is `options.tree`).
    Verify { options: VerifyOptions },
    /// `verify --wheel WHEEL [--command NAME]`.
    VerifyWheel {
        wheel: PathBuf,
        options: VerifyOptions,
    },
    /// `bundle WHEEL... -w OUTDIR [--stdlib] [--exclude NAMES]`.
    Bundle {
        wheels: Vec<PathBuf>,
        out_dir: PathBuf,
        options: BundleOptions,
    },
}

impl Command {
    /// The name reports and error messages give the command (`verify` for `verify --wheel`).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Apply { .. } => "apply",
            Command::Check { .. } => "check",
            Command::Diff { .. } => "diff",
            Command::Revert { .. } => "revert",
            Command::Locate { .. } => "locate",
            Command::Verify { .. } | Command::VerifyWheel { .. } => "verify",
            Command::Bundle { .. } => "bundle",
        }
    }

    /// The options of the target, for the commands that have one.
    fn options_mut(&mut self) -> Option<&mut Options> {
        match self {
            Command::Apply { options, .. }
            | Command::Check { options, .. }
            | Command::Diff { options, .. }
            | Command::Locate { options } => Some(options),
            Command::Verify { options } | Command::VerifyWheel { options, .. } => {
                Some(&mut options.options)
            }
            Command::Bundle { options, .. } => Some(&mut options.options),
            Command::Revert { .. } => None,
        }
    }
}

/// A parsed command line.
pub struct Args {
    pub command: Command,
    /// `--probe FILE`: loaded by [`Args::load_probe`].
    pub probe: Option<PathBuf>,
    pub json: bool,
    pub quiet: bool,
}

impl Args {
    /// Replace the target with the saved probe, if one was given (a bad file is an error for
    /// every command).
    pub fn load_probe(&mut self) -> patch_uwsgi::Result<()> {
        if let Some(path) = &self.probe {
            let interp = Interpreter::load(path)?;
            if let Some(options) = self.command.options_mut() {
                options.target = Target::Probed(Box::new(interp));
            }
        }
        Ok(())
    }
}

/// What the command line asks for.
pub enum Parsed {
    Run(Box<Args>),
    Help,
    Version,
}

fn choice<T: Copy>(option: &str, value: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            format!("{option} takes {}, not {value:?}", names.join(", "))
        })
}

/// Everything the command line says, before it is sorted into a [`Command`].
#[derive(Default)]
struct Given {
    name: Option<Name>,
    dir: Option<PathBuf>,
    options: Options,
    /// The options given, by their names in [`OPTION_SCOPES`].
    seen: Vec<&'static str>,
    runtime_python: Option<PathBuf>,
    probe: Option<PathBuf>,
    wheel: Option<PathBuf>,
    command: Option<String>,
    installer: Option<Installer>,
    venv: Option<PathBuf>,
    wheels: Vec<PathBuf>,
    wheel_dir: Option<PathBuf>,
    stdlib: bool,
    exclude: Vec<String>,
    json: bool,
    quiet: bool,
}

/// A command as its options see it: `verify --wheel` takes others than `verify [DIR]`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Form {
    Apply,
    Check,
    Diff,
    Revert,
    Locate,
    Verify,
    VerifyWheel,
    Bundle,
}

impl Form {
    const ALL: [Form; 8] = [
        Form::Apply,
        Form::Check,
        Form::Diff,
        Form::Revert,
        Form::Locate,
        Form::Verify,
        Form::VerifyWheel,
        Form::Bundle,
    ];

    fn of(name: Name, wheel_given: bool) -> Form {
        match name {
            Name::Apply => Form::Apply,
            Name::Check => Form::Check,
            Name::Diff => Form::Diff,
            Name::Revert => Form::Revert,
            Name::Locate => Form::Locate,
            Name::Verify if wheel_given => Form::VerifyWheel,
            Name::Verify => Form::Verify,
            Name::Bundle => Form::Bundle,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Form::Apply => "apply",
            Form::Check => "check",
            Form::Diff => "diff",
            Form::Revert => "revert",
            Form::Locate => "locate",
            Form::Verify => "verify",
            Form::VerifyWheel => "verify --wheel",
            Form::Bundle => "bundle",
        }
    }
}

/// The commands that plan a link (the target, the archive search, `-no-pie`).
const PLANNING: &[Form] = &[
    Form::Apply,
    Form::Check,
    Form::Diff,
    Form::Locate,
    Form::Verify,
];

/// Every option and the commands that take it; any other command refuses it. One table for
/// the parser and for `--help`'s "options by command" (made from it).
const OPTION_SCOPES: [(&str, &[Form]); 17] = [
    (
        "--python",
        &[
            Form::Apply,
            Form::Check,
            Form::Diff,
            Form::Locate,
            Form::Verify,
            Form::VerifyWheel,
            Form::Bundle,
        ],
    ),
    ("--libpython", PLANNING),
    (
        "--probe",
        &[Form::Apply, Form::Check, Form::Diff, Form::Locate],
    ),
    (
        "--mode",
        &[Form::Apply, Form::Check, Form::Diff, Form::Locate],
    ),
    ("--manylinux-root", PLANNING),
    ("--no-pie", PLANNING),
    ("--runtime-python", &[Form::Verify, Form::VerifyWheel]),
    ("--wheel", &[Form::VerifyWheel]),
    ("--command", &[Form::VerifyWheel]),
    ("--installer", &[Form::VerifyWheel]),
    ("--venv", &[Form::VerifyWheel]),
    ("-w/--wheel-dir", &[Form::Bundle]),
    ("--stdlib", &[Form::Bundle]),
    ("--exclude", &[Form::Bundle]),
    (
        "--no-release-check",
        &[Form::Apply, Form::Check, Form::Diff, Form::Verify],
    ),
    ("--json", &Form::ALL),
    ("--quiet", &Form::ALL),
];

/// The commands that take `option` (a name of [`OPTION_SCOPES`]).
fn scope_of(option: &str) -> &'static [Form] {
    OPTION_SCOPES
        .iter()
        .find(|(name, _)| *name == option)
        .map_or(&[], |(_, forms)| *forms)
}

/// The name in [`OPTION_SCOPES`] of an option as given (`-w` is `-w/--wheel-dir`).
fn table_name(arg: &lexopt::Arg) -> Option<&'static str> {
    use lexopt::Arg::{Long, Short};
    match arg {
        Long("wheel-dir") | Short('w') => Some("-w/--wheel-dir"),
        Short('q') => Some("--quiet"),
        Long(name) => OPTION_SCOPES
            .iter()
            .map(|(option, _)| *option)
            .find(|option| option.strip_prefix("--") == Some(*name)),
        _ => None,
    }
}

/// The options `form` takes, as `--help` lists them.
fn options_of(form: Form) -> Vec<&'static str> {
    OPTION_SCOPES
        .iter()
        .filter(|(name, forms)| forms.contains(&form) && !matches!(*name, "--json" | "--quiet"))
        .map(|(name, _)| *name)
        .collect()
}

/// `patch_uwsgi --help`: [`USAGE`] with [`options_by_command`] before the environment.
pub fn usage() -> String {
    USAGE.replacen(
        "\nenvironment:\n",
        &format!("\n{}\nenvironment:\n", options_by_command()),
        1,
    )
}

/// `--help`'s section on which command takes which option, from [`OPTION_SCOPES`].
pub fn options_by_command() -> String {
    let mut text = String::from("options by command (any other is refused, exit 2):\n");
    for forms in [
        &[Form::Apply, Form::Check, Form::Diff][..],
        &[Form::Revert],
        &[Form::Locate],
        &[Form::Verify],
        &[Form::VerifyWheel],
        &[Form::Bundle],
    ] {
        let names: Vec<&str> = forms.iter().map(|f| f.as_str()).collect();
        let options = options_of(forms[0]);
        let mut lines = vec![String::new()];
        for option in if options.is_empty() {
            vec!["none of its own"]
        } else {
            options
        } {
            let line = lines.last_mut().expect("one line");
            if line.len() + option.len() > 70 {
                lines.push(option.to_string());
            } else {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(option);
            }
        }
        text += &format!(
            "  {:<20} {}\n",
            names.join(", "),
            lines.join(&format!("\n{:23}", ""))
        );
    }
    text += "  every command        --json --quiet\n";
    text
}

impl Given {
    /// The command with its own arguments, or what is wrong with the line.
    fn into_command(mut self, name: Name) -> Result<Command, String> {
        let form = Form::of(name, self.wheel.is_some());
        if let Some(option) = self.seen.iter().find(|o| !scope_of(o).contains(&form)) {
            let takers: Vec<&str> = scope_of(option).iter().map(|f| f.as_str()).collect();
            return Err(format!(
                "{option} does not apply to {}: it is an option of {} only",
                form.as_str(),
                takers.join(", ")
            ));
        }
        let dir = self.dir.take();
        let tree = || dir.clone().unwrap_or_else(|| PathBuf::from("."));
        let mut options = std::mem::take(&mut self.options);
        if name == Name::Locate && !self.seen.contains(&"--mode") {
            options.plan.mode = ModeChoice::Static;
        }
        let (runtime_python, chosen) = (self.runtime_python.take(), self.command.take());
        let (installer, kept_venv) = (self.installer, self.venv.take());
        let verify = |options: Options, tree: Option<PathBuf>| {
            let mut verify = VerifyOptions::new(options);
            verify.runtime_python = runtime_python;
            verify.command = chosen;
            verify.installer = installer.unwrap_or_default();
            verify.venv = kept_venv;
            verify.tree = tree;
            verify
        };
        Ok(match name {
            Name::Apply => Command::Apply {
                dir: tree(),
                options,
            },
            Name::Check => Command::Check {
                dir: tree(),
                options,
            },
            Name::Diff => Command::Diff {
                dir: tree(),
                options,
            },
            Name::Revert => Command::Revert { dir: tree() },
            Name::Locate => Command::Locate { options },
            Name::Verify => match self.wheel.clone() {
                Some(_) if dir.is_some() => {
                    return Err("verify --wheel takes no DIR (the wheel says what it ships)".into())
                }
                Some(wheel) => Command::VerifyWheel {
                    wheel,
                    options: verify(options, None),
                },
                None => Command::Verify {
                    options: verify(options, dir.clone()),
                },
            },
            Name::Bundle => match self.wheel_dir.take() {
                Some(out_dir) if !self.wheels.is_empty() => Command::Bundle {
                    wheels: std::mem::take(&mut self.wheels),
                    out_dir,
                    options: BundleOptions::new(options)
                        .with_stdlib(self.stdlib)
                        .with_exclude(std::mem::take(&mut self.exclude)),
                },
                _ => return Err(
                    "bundle needs the wheels and -w OUTDIR: patch_uwsgi bundle WHEEL... -w OUTDIR"
                        .into(),
                ),
            },
        })
    }
}

/// Parse the arguments, then read the environment variables listed in [`USAGE`].
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, lexopt::Error> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut given = Given::default();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("help") | Short('h') => return Ok(Parsed::Help),
            Long("version") | Short('V') => return Ok(Parsed::Version),
            _ => {}
        }
        if let Some(option) = table_name(&arg) {
            if !given.seen.contains(&option) {
                given.seen.push(option);
            }
            given.set(option, &mut parser)?;
            continue;
        }
        match arg {
            Value(value) => given.positional(value)?,
            _ => return Err(arg.unexpected()),
        }
    }
    let name = given.name.ok_or(
        "no command given: use apply, check, diff, revert, locate, verify or bundle (see --help)",
    )?;
    let (probe, json, quiet) = (given.probe.take(), given.json, given.quiet);
    let mut command = given.into_command(name)?;
    let mut unused = Options::default();
    let options = command.options_mut().unwrap_or(&mut unused);
    read_environment(options, |name| std::env::var_os(name))?;
    Ok(Parsed::Run(Box::new(Args {
        command,
        probe,
        json,
        quiet,
    })))
}

impl Given {
    /// Take `option` (a name of [`OPTION_SCOPES`]) and its value.
    fn set(&mut self, option: &str, parser: &mut lexopt::Parser) -> Result<(), lexopt::Error> {
        use lexopt::prelude::*;
        let options = &mut self.options;
        match option {
            "--python" => options.target = Target::Python(parser.value()?.into()),
            "--libpython" => options.plan.search.explicit = Some(parser.value()?.into()),
            "--manylinux-root" => options.plan.search.manylinux_root = Some(parser.value()?.into()),
            "--mode" => {
                options.plan.mode = choice(
                    "--mode",
                    &parser.value()?.string()?,
                    &[
                        ("auto", ModeChoice::Auto),
                        ("static", ModeChoice::Static),
                        ("nolib", ModeChoice::Nolib),
                    ],
                )?;
            }
            "--no-pie" => {
                options.plan.no_pie = choice(
                    "--no-pie",
                    &parser.value()?.string()?,
                    &[("auto", None), ("yes", Some(true)), ("no", Some(false))],
                )?;
            }
            "--no-release-check" => options.release_check = false,
            "--runtime-python" => self.runtime_python = Some(parser.value()?.into()),
            "--probe" => self.probe = Some(PathBuf::from(parser.value()?)),
            "--wheel" => self.wheel = Some(PathBuf::from(parser.value()?)),
            "--command" => self.command = Some(parser.value()?.string()?),
            "--installer" => {
                self.installer = Some(choice(
                    "--installer",
                    &parser.value()?.string()?,
                    &[("builtin", Installer::Builtin), ("pip", Installer::Pip)],
                )?);
            }
            "--venv" => self.venv = Some(PathBuf::from(parser.value()?)),
            "-w/--wheel-dir" => self.wheel_dir = Some(PathBuf::from(parser.value()?)),
            "--stdlib" => self.stdlib = true,
            "--exclude" => self.exclude.extend(
                parser
                    .value()?
                    .string()?
                    .split(',')
                    .filter(|name| !name.is_empty())
                    .map(str::to_string),
            ),
            "--json" => self.json = true,
            "--quiet" => self.quiet = true,
            other => unreachable!("{other} is in OPTION_SCOPES but not taken here"),
        }
        Ok(())
    }

    /// A word that is not an option: the command, then its DIR or its wheels.
    fn positional(&mut self, value: OsString) -> Result<(), lexopt::Error> {
        use lexopt::ValueExt;
        if self.name.is_none() {
            let names = Name::ALL.map(Name::as_str);
            let value = value.string()?;
            let name = Name::ALL
                .iter()
                .find(|c| c.as_str() == value)
                .ok_or_else(|| {
                    format!(
                        "unknown command {value:?}: use {} (see --help)",
                        names.join(", ")
                    )
                })?;
            self.name = Some(*name);
        } else if self.name == Some(Name::Bundle) {
            self.wheels.push(PathBuf::from(value));
        } else if self.dir.is_none() && self.name.is_some_and(Name::takes_dir) {
            self.dir = Some(PathBuf::from(value));
        } else {
            return Err(lexopt::Error::UnexpectedArgument(value));
        }
        Ok(())
    }
}

/// Fill in what the environment says (`var` looks a variable up).
fn read_environment(
    options: &mut Options,
    var: impl Fn(&str) -> Option<OsString>,
) -> Result<(), String> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    options.plan.search.env = set("PATCH_UWSGI_LIBPYTHON").map(PathBuf::from);
    options.plan.search.cache_dir =
        cache_dir_from(var("XDG_CACHE_HOME").as_deref(), var("HOME").as_deref());
    let text = |name: &str| set(name).map(|v| v.to_string_lossy().into_owned());
    options.plan.compiler =
        Compiler::from_cc_cflags(text("CC").as_deref(), text("CFLAGS").as_deref());
    options.probe_timeout = match text("PATCH_UWSGI_PROBE_TIMEOUT") {
        None => PROBE_TIMEOUT,
        Some(value) => value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                format!(
                    "PATCH_UWSGI_PROBE_TIMEOUT must be a number of seconds above 0, not {value:?}"
                )
            })?,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_names_every_first_release_of_the_table() {
        let usage = USAGE.replace('\n', " ");
        for row in patch_uwsgi::releases::PYTHON_SUPPORT {
            let first = row.first_release.unwrap();
            assert!(
                usage.contains(&format!("{}: {first}", row.minor))
                    || usage.contains(&format!("{} and ", row.minor)),
                "--help does not say {} needs {first}",
                row.minor
            );
        }
    }

    /// Every option `--help` describes is in the parser's table and the other way round; the
    /// commands its description names in parentheses (`(verify --wheel) ...`) take it.
    #[test]
    fn help_scopes_are_the_parsers() {
        let help = usage();
        let options_part =
            &help[help.find("\noptions:\n").unwrap()..help.find("\noptions by command").unwrap()];
        let mut described: Vec<(String, String)> = Vec::new();
        for line in options_part.lines().skip(2) {
            if let Some(rest) = line.strip_prefix("  -") {
                let name = format!("-{}", rest.split([' ', ',']).next().unwrap());
                described.push((name, line.to_string()));
            } else if let Some(last) = described.last_mut() {
                last.1 += line;
            }
        }
        let table_name = |name: &str| {
            if name == "-w" {
                "-w/--wheel-dir".to_string()
            } else {
                name.to_string()
            }
        };
        let mut names: Vec<String> = described
            .iter()
            .map(|(n, _)| table_name(n))
            .filter(|n| n != "--help")
            .collect();
        names.sort();
        let mut table: Vec<String> = OPTION_SCOPES.iter().map(|(n, _)| n.to_string()).collect();
        table.sort();
        assert_eq!(names, table, "--help's options against the parser's table");
        for (name, text) in &described {
            let scope = scope_of(&table_name(name));
            for group in text.split('(').skip(1).filter_map(|g| g.split(')').next()) {
                let forms: Vec<&str> = group.split(", ").collect();
                let all_forms = forms
                    .iter()
                    .all(|f| Form::ALL.iter().any(|form| form.as_str() == *f));
                if !all_forms {
                    continue;
                }
                for form in forms {
                    assert!(
                        scope.iter().any(|s| s.as_str() == form),
                        "--help says {name} is for {form}, the parser refuses it there"
                    );
                }
            }
        }
        // And the parser really refuses outside the table, accepts inside it.
        let value_of = |option: &str| match option {
            "--mode" => Some("static"),
            "--no-pie" => Some("yes"),
            "--installer" => Some("pip"),
            "--stdlib" | "--no-release-check" | "--json" | "--quiet" => None,
            _ => Some("x"),
        };
        for (option, forms) in OPTION_SCOPES {
            for form in Form::ALL {
                let mut args: Vec<&str> = match form {
                    Form::VerifyWheel => vec!["verify", "--wheel", "w.whl"],
                    Form::Bundle => vec!["bundle", "a.whl", "-w", "o"],
                    other => vec![other.as_str()],
                };
                let flag = option.rsplit('/').next().unwrap();
                if !(flag == "--wheel" && form == Form::VerifyWheel) {
                    args.push(flag);
                    args.extend(value_of(flag));
                }
                if flag == "--wheel" && form == Form::Verify {
                    continue; // --wheel makes it verify --wheel
                }
                let refused = parsed(&args)
                    .err()
                    .is_some_and(|e| e.contains("does not apply"));
                assert_eq!(refused, !forms.contains(&form), "{args:?}");
            }
        }
    }

    fn parsed(args: &[&str]) -> Result<Box<Args>, String> {
        match parse(args.iter().map(OsString::from)) {
            Ok(Parsed::Run(args)) => Ok(args),
            Ok(_) => Err("help or version".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn command_line_table() {
        // (arguments, expected error substring or None)
        let cases: &[(&[&str], Option<&str>)] = &[
            (&["apply"], None),
            (&["apply", "tree"], None),
            (&["locate", "tree"], Some("unexpected argument")),
            (&["frobnicate"], Some("unknown command \"frobnicate\"")),
            (
                &[],
                Some("no command given: use apply, check, diff, revert, locate, verify or bundle"),
            ),
            (
                &["apply", "--mode", "shared"],
                Some("--mode takes auto, static, nolib"),
            ),
            (
                &["apply", "--no-pie", "maybe"],
                Some("--no-pie takes auto, yes, no"),
            ),
            (
                &["verify", "--mode", "static"],
                Some("--mode does not apply"),
            ),
            (
                &["apply", "--runtime-python", "p"],
                Some("--runtime-python does not apply to apply: it is an option of verify, verify --wheel only"),
            ),
            (
                &["revert", "--python", "p"],
                Some("--python does not apply to revert: it is an option of apply, check, diff, locate, verify, verify --wheel, bundle only"),
            ),
            (
                &["locate", "--no-release-check"],
                Some("--no-release-check does not apply to locate"),
            ),
            (&["bundle", "a.whl", "-w", "o", "--mode", "static"], Some("--mode does not apply to bundle")),
            (&["verify", "--wheel", "w", "--libpython", "a"], Some("--libpython does not apply to verify --wheel")),
            (&["verify", "--wheel", "w", "--probe", "p"], Some("--probe does not apply to verify --wheel")),
            (&["verify", "--probe", "p"], Some("--probe does not apply to verify:")),
            (&["apply", "--wheel", "w"], Some("--wheel does not apply to apply: it is an option of verify --wheel only")),
            (&["revert", "t", "--json", "-q"], None),
            (&["verify", "t", "--no-release-check", "--no-pie", "yes"], None),
            (&["bundle", "a.whl", "b.whl", "-w", "out"], None),
            (&["bundle", "a.whl"], Some("needs the wheels and -w OUTDIR")),
            (&["apply", "-w", "out"], Some("-w/--wheel-dir does not apply to apply: it is an option of bundle only")),
            (
                &["verify", "--wheel", "w.whl", "--command", "myserver"],
                None,
            ),
            (
                &["verify", "--command", "myserver"],
                Some("--command does not apply to verify: it is an option of verify --wheel only"),
            ),
            (&["bundle", "a.whl", "-w", "out", "--stdlib"], None),
            (
                &["verify", "--installer", "pip"],
                Some("--installer does not apply to verify: it is an option of verify --wheel only"),
            ),
            (
                &["apply", "--venv", "v"],
                Some("--venv does not apply to apply"),
            ),
            (
                &["verify", "--wheel", "w.whl", "--installer", "uv"],
                Some("--installer takes builtin, pip, not \"uv\""),
            ),
            (
                &["verify", "--stdlib"],
                Some("--stdlib does not apply to verify: it is an option of bundle only"),
            ),
        ];
        assert_parses(cases);
    }

    /// Each line parses (`None`) or fails with a message holding the expected text.
    fn assert_parses(cases: &[(&[&str], Option<&str>)]) {
        for (args, want) in cases {
            match (parsed(args), want) {
                (Ok(_), None) => {}
                (Err(e), Some(want)) => assert!(e.contains(want), "{args:?}: {e}"),
                (got, want) => panic!("{args:?}: {:?} vs {want:?}", got.err()),
            }
        }
    }

    #[test]
    fn locate_plans_static_unless_told() {
        for (args, mode) in [
            (&["locate"][..], ModeChoice::Static),
            (&["locate", "--mode", "auto"], ModeChoice::Auto),
        ] {
            match parsed(args).unwrap().command {
                Command::Locate { options } => assert_eq!(options.plan.mode, mode),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn each_command_gets_its_own_arguments() {
        let command = |args: &[&str]| parsed(args).unwrap().command;
        match command(&[
            "bundle",
            "a.whl",
            "b.whl",
            "-w",
            "out",
            "--stdlib",
            "--exclude",
            "_tkinter,",
        ]) {
            Command::Bundle {
                wheels,
                out_dir,
                options,
            } => {
                assert_eq!(wheels, [PathBuf::from("a.whl"), PathBuf::from("b.whl")]);
                assert_eq!(out_dir, PathBuf::from("out"));
                assert!(options.stdlib);
                assert_eq!(options.exclude, ["_tkinter"]);
            }
            other => panic!("{other:?}"),
        }
        match command(&["verify", "--wheel", "w.whl", "--command", "myserver"]) {
            Command::VerifyWheel { wheel, options } => {
                assert_eq!(wheel, PathBuf::from("w.whl"));
                assert_eq!(options.command.as_deref(), Some("myserver"));
                assert_eq!(options.tree, None);
                assert_eq!(options.installer, Installer::Builtin);
                assert_eq!(options.venv, None);
            }
            other => panic!("{other:?}"),
        }
        match command(&[
            "verify",
            "--wheel",
            "w",
            "--installer",
            "pip",
            "--venv",
            "v",
        ]) {
            Command::VerifyWheel { options, .. } => {
                assert_eq!(options.installer, Installer::Pip);
                assert_eq!(options.venv, Some(PathBuf::from("v")));
            }
            other => panic!("{other:?}"),
        }
        match command(&["verify", "tree", "--runtime-python", "/usr/bin/python3"]) {
            Command::Verify { options } => {
                assert_eq!(options.tree, Some(PathBuf::from("tree")));
                assert_eq!(
                    options.runtime_python,
                    Some(PathBuf::from("/usr/bin/python3"))
                );
            }
            other => panic!("{other:?}"),
        }
        match command(&["revert", "t"]) {
            Command::Revert { dir } => assert_eq!(dir, PathBuf::from("t")),
            other => panic!("{other:?}"),
        }
        match command(&["check", "--mode", "nolib"]) {
            Command::Check { dir, options } => {
                assert_eq!(dir, PathBuf::from("."));
                assert_eq!(options.plan.mode, ModeChoice::Nolib);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(command(&["verify", "--wheel", "w.whl"]).name(), "verify");
        assert_eq!(
            parsed(&["verify", "--wheel", "w.whl", "tree"])
                .err()
                .as_deref(),
            Some("verify --wheel takes no DIR (the wheel says what it ships)")
        );
    }

    #[test]
    fn environment_table() {
        let read = |vars: &[(&str, &str)]| {
            let mut options = Options::default();
            let vars: Vec<(String, OsString)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.into()))
                .collect();
            read_environment(&mut options, |name| {
                vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
            })
            .map(|()| options)
        };
        let options = read(&[
            ("PATCH_UWSGI_LIBPYTHON", "/a/libpython3.12.a"),
            ("PATCH_UWSGI_PROBE_TIMEOUT", "2.5"),
            ("CC", "ccache gcc"),
            ("CFLAGS", "-O1"),
            ("XDG_CACHE_HOME", "/c"),
        ])
        .unwrap();
        assert_eq!(
            options.plan.search.env.as_deref(),
            Some("/a/libpython3.12.a".as_ref())
        );
        assert_eq!(options.probe_timeout, Duration::from_millis(2500));
        assert_eq!(options.plan.compiler.args, ["gcc", "-O1"]);
        assert_eq!(
            options.plan.search.cache_dir.as_deref(),
            Some("/c/patch-uwsgi".as_ref())
        );
        let empty = read(&[("PATCH_UWSGI_LIBPYTHON", "")]).unwrap();
        assert_eq!(empty.plan.search.env, None);
        assert_eq!(empty.probe_timeout, PROBE_TIMEOUT);
        assert_eq!(empty.plan.compiler, Compiler::default());
        for bad in ["0", "-1", "soon", "inf"] {
            let err = read(&[("PATCH_UWSGI_PROBE_TIMEOUT", bad)]).unwrap_err();
            assert!(err.contains("PATCH_UWSGI_PROBE_TIMEOUT"), "{err}");
        }
    }
}
