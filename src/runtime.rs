//! `zookeeper-oci`: the OCI runtime command line (runc's), for podman's
//! conmon, containerd's shim and the conformance suites.
//!
//! A second binary on the same engine, never a second meaning of
//! `zookeeper`'s own command line: `zookeeper create` runs a program named
//! `create`. Every verb is a new process; what one leaves for the next is
//! in the state directory (README "OCI runtime", docs/oci.md):
//! `<root>/<id>/state.json` (written atomically) and `exec.fifo`, the gate
//! the container's first process waits at between `create` and `start`.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::spec::Hook;

pub(crate) mod join;

/// The runtime-spec version `state` and `--version` report.
const OCI_VERSION: &str = "1.2.0";
const STATE_FILE: &str = "state.json";
const GATE_FIFO: &str = "exec.fifo";
/// The config create converted, kept for exec.
const CONFIG_FILE: &str = "config.json";
/// `zookeeper --detach`'s state, under the same default root
/// (`detach::state_root`).
const DETACHED_DIR: &str = "containers";

const USAGE: &str = "\
usage: zookeeper-oci [global options] COMMAND [options] ID

zookeeper's OCI runtime: runc's command line, for podman (--runtime),
containerd (BinaryName) and the OCI conformance suites.

commands:
  create [-b BUNDLE] [--pid-file FILE] [--console-socket SOCKET] [--preserve-fds N] ID
  start ID
  state ID
  kill [-a|--all] ID [SIGNAL]
  delete [-f|--force] ID
  run [-b BUNDLE] [--pid-file FILE] [-d|--detach] [--keep] ID
  exec [-p|--process FILE | --cwd DIR -e|--env K=V -u|--user UID[:GID]
        -g|--additional-gids GID -c|--cap CAP --no-new-privs]
       [-d|--detach] [-t|--tty] [--console-socket SOCKET] [--pid-file FILE]
       [--preserve-fds N] [--cgroup [CONTROLLER,...:]PATH] ID [COMMAND...]
  ps [--format table|json] ID
  list [--format table|json] [-q]
  spec [-b BUNDLE] [--rootless]
  features

global options:
  --root DIR          state directory (default /run/zookeeper as root,
                      $XDG_RUNTIME_DIR/zookeeper otherwise)
  --log FILE          where errors go besides stderr
  --log-format text|json
  --debug, --systemd-cgroup, --rootless VALUE, --criu PATH: accepted
  -v, --version       the version, as runc prints it
";

/// Where errors are said: stderr always, and `--log` in its format.
struct Log {
    file: Option<PathBuf>,
    json: bool,
}

impl Log {
    fn error(&self, message: &str) {
        // "error:" as runc's level=error says it: callers (youki's contest
        // among them) tell a failure by that word.
        let _ = writeln!(std::io::stderr(), "zookeeper-oci: error: {message}");
        let Some(path) = &self.file else { return };
        let time = rfc3339(std::time::SystemTime::now());
        let line = match self.json {
            true => json!({"level": "error", "msg": message, "time": time}).to_string(),
            false => format!("time={} level=error msg={}", json!(time), json!(message)),
        };
        let file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path);
        if let Ok(mut file) = file {
            let _ = writeln!(file, "{line}");
        }
    }
}

/// The global options.
struct Global {
    root: Option<PathBuf>,
    log: Log,
}

/// Runs the command line `args` (argv[0] first); returns the exit status.
pub fn main(args: Vec<OsString>) -> i32 {
    let mut args: Vec<String> = match args.into_iter().skip(1).map(|a| a.into_string()).collect() {
        Ok(args) => args,
        Err(_) => {
            let _ = writeln!(std::io::stderr(), "zookeeper-oci: arguments must be UTF-8");
            return 1;
        }
    };
    let mut global = Global { root: None, log: Log { file: None, json: false } };
    let verb = match parse_global(&mut args, &mut global) {
        Ok(Some(verb)) => verb,
        Ok(None) => return 0,
        Err(err) => {
            global.log.error(&format!("{err:#}"));
            return 1;
        }
    };
    match dispatch(&verb, args, &global) {
        Ok(code) => code,
        Err(err) => {
            global.log.error(&format!("{err:#}"));
            1
        }
    }
}

/// Takes the global options off the front of `args`; the verb, or `None`
/// when the command line asked only for help or the version.
fn parse_global(args: &mut Vec<String>, global: &mut Global) -> Result<Option<String>> {
    let mut rest = std::mem::take(args).into_iter().peekable();
    let mut log_format = None;
    while let Some(arg) = rest.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String> {
            match inline.clone() {
                Some(value) => Ok(value),
                None => rest.next().ok_or_else(|| anyhow!("{what} needs a value")),
            }
        };
        match name.as_str() {
            "--root" => match value("--root")? {
                root if root.is_empty() => bail!("--root needs a directory"),
                root => global.root = Some(PathBuf::from(root)),
            },
            "--log" => global.log.file = Some(PathBuf::from(value("--log")?)),
            "--log-format" => log_format = Some(value("--log-format")?),
            "--criu" | "--cgroup-manager" => {
                value(&name)?;
            }
            "--rootless" => {
                // runc's takes true, false or auto; a bare one means true.
                if inline.is_none()
                    && rest.peek().is_some_and(|next| matches!(next.as_str(), "true" | "false" | "auto"))
                {
                    rest.next();
                }
            }
            "--debug" | "--systemd-cgroup" => {}
            "-v" | "--version" => {
                let _ = write!(
                    std::io::stdout(),
                    "zookeeper-oci version {}\nspec: {OCI_VERSION}\n",
                    env!("CARGO_PKG_VERSION")
                );
                return Ok(None);
            }
            "-h" | "--help" | "help" => {
                let _ = std::io::stdout().write_all(USAGE.as_bytes());
                return Ok(None);
            }
            verb if !verb.starts_with('-') => {
                *args = rest.collect();
                global.log.json = match log_format.as_deref() {
                    None | Some("text") => false,
                    Some("json") => true,
                    Some(other) => bail!("unknown --log-format {other:?}: text or json"),
                };
                return Ok(Some(arg));
            }
            other => bail!("unknown global option {other}"),
        }
    }
    bail!("no command given (zookeeper-oci --help lists them)")
}

/// A verb's options and operands, in any order (youki's contest puts the
/// options after the id).
#[derive(Default)]
struct VerbArgs {
    operands: Vec<String>,
    values: Vec<(&'static str, String)>,
    flags: Vec<&'static str>,
}

impl VerbArgs {
    fn value(&self, name: &str) -> Option<&str> {
        self.values.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    fn flag(&self, name: &str) -> bool {
        self.flags.contains(&name)
    }

    /// Every value of a repeatable option, in order.
    fn all(&self, name: &str) -> Vec<&str> {
        self.values.iter().filter(|(n, _)| *n == name).map(|(_, v)| v.as_str()).collect()
    }

    /// The container's id, the first operand, checked.
    fn id(&self, verb: &str) -> Result<&str> {
        let id = self.operands.first().ok_or_else(|| anyhow!("{verb}: a container id is needed"))?;
        check_id(id)?;
        Ok(id)
    }

    fn at_most(&self, verb: &str, count: usize) -> Result<()> {
        match self.operands.get(count) {
            Some(extra) => bail!("{verb}: unexpected argument {extra:?}"),
            None => Ok(()),
        }
    }
}

/// (long name, short name, takes a value).
type OptionSpec = (&'static str, Option<&'static str>, bool);

const CREATE_OPTIONS: &[OptionSpec] = &[
    ("--bundle", Some("-b"), true),
    ("--pid-file", None, true),
    ("--console-socket", None, true),
    ("--preserve-fds", None, true),
    ("--no-pivot", None, false),
    ("--no-new-keyring", None, false),
];
const RUN_OPTIONS: &[OptionSpec] = &[("--detach", Some("-d"), false), ("--keep", None, false)];
const EXEC_OPTIONS: &[OptionSpec] = &[
    ("--process", Some("-p"), true),
    ("--cwd", None, true),
    ("--env", Some("-e"), true),
    ("--user", Some("-u"), true),
    ("--detach", Some("-d"), false),
    ("--tty", Some("-t"), false),
    ("--console-socket", None, true),
    ("--pid-file", None, true),
    ("--preserve-fds", None, true),
    ("--process-label", None, true),
    ("--apparmor", None, true),
    ("--no-new-privs", None, false),
    ("--ignore-paused", None, false),
    ("--cap", Some("-c"), true),
    ("--cgroup", None, true),
    ("--additional-gids", Some("-g"), true),
];

fn parse_verb(verb: &str, args: Vec<String>, options: &[OptionSpec]) -> Result<VerbArgs> {
    parse_verb_until(verb, args, options, usize::MAX)
}

/// [`parse_verb`], but once `operands` operands are read the rest are
/// operands whatever they look like (exec's command and its options).
fn parse_verb_until(
    verb: &str,
    args: Vec<String>,
    options: &[OptionSpec],
    operands: usize,
) -> Result<VerbArgs> {
    let mut parsed = VerbArgs::default();
    let mut rest = args.into_iter();
    while let Some(arg) = rest.next() {
        if parsed.operands.len() >= operands {
            parsed.operands.push(arg);
            parsed.operands.extend(rest.by_ref());
            break;
        }
        if arg == "--" {
            parsed.operands.extend(rest.by_ref());
            break;
        }
        // A lone "-" or a negative number is an operand (kill ID -9 is not
        // runc's syntax, but a signal number is).
        if !arg.starts_with('-') || arg == "-" {
            parsed.operands.push(arg);
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (arg.clone(), None),
        };
        let name = name.strip_prefix("--").map_or(name.clone(), |long| format!("--{long}"));
        let Some(&(long, _, takes_value)) =
            options.iter().find(|(long, short, _)| *long == name || *short == Some(name.as_str()))
        else {
            bail!("{verb}: unknown option {name}");
        };
        if takes_value {
            let value = match inline {
                Some(value) => value,
                None => rest.next().ok_or_else(|| anyhow!("{verb}: {long} needs a value"))?,
            };
            parsed.values.push((long, value));
        } else if inline.is_some() {
            bail!("{verb}: {long} takes no value");
        } else {
            parsed.flags.push(long);
        }
    }
    Ok(parsed)
}

fn dispatch(verb: &str, args: Vec<String>, global: &Global) -> Result<i32> {
    match verb {
        "create" => {
            let args = parse_verb(verb, args, CREATE_OPTIONS)?;
            args.at_most(verb, 1)?;
            create(global, &args, args.id(verb)?).map(|_| 0)
        }
        "run" => {
            let options: Vec<OptionSpec> = CREATE_OPTIONS.iter().chain(RUN_OPTIONS).copied().collect();
            let args = parse_verb(verb, args, &options)?;
            args.at_most(verb, 1)?;
            run(global, &args, args.id(verb)?)
        }
        "exec" => {
            // The id, then the command's first word: from there on all is
            // the command's.
            let args = parse_verb_until(verb, args, EXEC_OPTIONS, 2)?;
            join::exec(global, &args, args.id(verb)?)
        }
        "start" | "state" => {
            let args = parse_verb(verb, args, &[])?;
            args.at_most(verb, 1)?;
            let id = args.id(verb)?;
            match verb {
                "start" => start(global, id).map(|()| 0),
                _ => state(global, id).map(|()| 0),
            }
        }
        "kill" => {
            let args = parse_verb(verb, args, &[("--all", Some("-a"), false)])?;
            args.at_most(verb, 2)?;
            let signal = parse_signal(args.operands.get(1).map_or("TERM", |s| s.as_str()))?;
            kill(global, args.id(verb)?, signal, args.flag("--all")).map(|()| 0)
        }
        "delete" => {
            let args = parse_verb(verb, args, &[("--force", Some("-f"), false)])?;
            args.at_most(verb, 1)?;
            delete(global, args.id(verb)?, args.flag("--force")).map(|()| 0)
        }
        "spec" => {
            let args =
                parse_verb(verb, args, &[("--bundle", Some("-b"), true), ("--rootless", None, false)])?;
            args.at_most(verb, 0)?;
            spec(args.value("--bundle"), args.flag("--rootless")).map(|()| 0)
        }
        "ps" => {
            let args = parse_verb(verb, args, &[("--format", Some("-f"), true)])?;
            // runc passes what follows the id to ps(1); zookeeper has no table of its own.
            args.at_most(verb, 1)?;
            ps(global, args.id(verb)?, args.value("--format").unwrap_or("table")).map(|()| 0)
        }
        "list" => {
            let args =
                parse_verb(verb, args, &[("--format", Some("-f"), true), ("--quiet", Some("-q"), false)])?;
            args.at_most(verb, 0)?;
            list(global, args.value("--format").unwrap_or("table"), args.flag("--quiet")).map(|()| 0)
        }
        "features" => {
            let args = parse_verb(verb, args, &[])?;
            args.at_most(verb, 0)?;
            features().map(|()| 0)
        }
        other => bail!("unknown command {other:?} (zookeeper-oci --help lists them)"),
    }
}

/// runc's rule for ids: letters, digits and `_+-.`, not `.` or `..` (so
/// never a path).
pub(crate) fn check_id(id: &str) -> Result<()> {
    let fine = !id.is_empty()
        && id != "."
        && id != ".."
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    match fine {
        true => Ok(()),
        false => bail!("invalid container id {id:?}: letters, digits and _+-. only"),
    }
}

/// `9`, `KILL` or `SIGKILL`.
pub(crate) fn parse_signal(text: &str) -> Result<Signal> {
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).map_err(|_| anyhow!("invalid signal {text:?}"));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse().map_err(|_| anyhow!("invalid signal {text:?}"))
}

/// The state directory: `--root`, else runc's choice: /run/zookeeper for
/// root outside a user namespace, a non-empty $XDG_RUNTIME_DIR/zookeeper,
/// /run/user/UID/zookeeper.
fn root_dir(global: &Global) -> PathBuf {
    if let Some(root) = &global.root {
        return root.clone();
    }
    let uid = nix::unistd::geteuid();
    let in_userns = std::fs::read_to_string("/proc/self/uid_map")
        .map(|map| map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
        .unwrap_or(false);
    if uid.is_root() && !in_userns {
        return PathBuf::from("/run/zookeeper");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("zookeeper"),
        _ => PathBuf::from(format!("/run/user/{uid}/zookeeper")),
    }
}

/// What `create` leaves for the other verbs, as state.json holds it.
struct Saved {
    id: String,
    pid: i32,
    /// Field 22 of /proc/PID/stat: a pid reused by another process is not
    /// the container's.
    start_time: u64,
    bundle: String,
    rootfs: String,
    created: String,
    annotations: serde_json::Map<String, Value>,
    cgroup: crate::cgroups::Kept,
    poststart: Vec<Hook>,
    poststop: Vec<Hook>,
}

fn hooks_to_json(hooks: &[Hook]) -> Value {
    hooks
        .iter()
        .map(
            |h| json!({"path": h.path.to_string_lossy(), "args": h.args, "env": h.env, "timeout": h.timeout}),
        )
        .collect()
}

fn hooks_from_json(value: &Value) -> Vec<Hook> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().map_or(Vec::new(), |a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
    };
    value.as_array().map_or(Vec::new(), |hooks| {
        hooks
            .iter()
            .filter_map(|h| {
                Some(Hook {
                    path: PathBuf::from(h["path"].as_str()?),
                    args: strings(&h["args"]),
                    env: strings(&h["env"]),
                    timeout: h["timeout"].as_u64().and_then(|t| u32::try_from(t).ok()),
                })
            })
            .collect()
    })
}

fn paths_to_json(paths: &[PathBuf]) -> Value {
    paths.iter().map(|p| Value::String(p.to_string_lossy().into_owned())).collect()
}

fn paths_from_json(value: &Value) -> Vec<PathBuf> {
    value.as_array().map_or(Vec::new(), |a| a.iter().filter_map(|d| d.as_str().map(PathBuf::from)).collect())
}

impl Saved {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "pid": self.pid,
            "startTime": self.start_time,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "annotations": self.annotations,
            "cgroupDirs": paths_to_json(&self.cgroup.dirs),
            "cgroupMadeParents": paths_to_json(&self.cgroup.made_parents),
            "poststart": hooks_to_json(&self.poststart),
            "poststop": hooks_to_json(&self.poststop),
        })
    }

    fn from_json(value: &Value) -> Option<Saved> {
        Some(Saved {
            id: value["id"].as_str()?.to_string(),
            pid: i32::try_from(value["pid"].as_i64()?).ok()?,
            start_time: value["startTime"].as_u64()?,
            bundle: value["bundle"].as_str()?.to_string(),
            rootfs: value["rootfs"].as_str().unwrap_or_default().to_string(),
            created: value["created"].as_str().unwrap_or_default().to_string(),
            annotations: value["annotations"].as_object().cloned().unwrap_or_default(),
            cgroup: crate::cgroups::Kept {
                dirs: paths_from_json(&value["cgroupDirs"]),
                made_parents: paths_from_json(&value["cgroupMadeParents"]),
            },
            poststart: hooks_from_json(&value["poststart"]),
            poststop: hooks_from_json(&value["poststop"]),
        })
    }

    /// The state hooks read on stdin.
    fn identity(&self) -> crate::spec::Identity {
        crate::spec::Identity {
            id: self.id.clone(),
            bundle: PathBuf::from(&self.bundle),
            annotations: self
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect(),
        }
    }
}

/// One container's directory under the root.
struct ContainerDir {
    path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Creating,
    Created,
    Running,
    Stopped,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        }
    }
}

impl ContainerDir {
    fn of(global: &Global, id: &str) -> ContainerDir {
        ContainerDir { path: root_dir(global).join(id) }
    }

    /// An existing container's directory, or runc's "does not exist".
    fn existing(global: &Global, id: &str) -> Result<ContainerDir> {
        let dir = ContainerDir::of(global, id);
        match std::fs::symlink_metadata(&dir.path) {
            Ok(meta) if meta.is_dir() => Ok(dir),
            _ => bail!("container does not exist: {id}"),
        }
    }

    /// Takes the container's lock (an exclusive flock on its directory),
    /// held until the returned file goes: create, start, kill, delete and
    /// exec's joining of one container do not interleave. A directory a
    /// delete removed meanwhile (or removed and another create made again)
    /// is "does not exist".
    fn lock(&self, id: &str) -> Result<std::fs::File> {
        use std::os::unix::fs::MetadataExt;
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(&self.path)
            .map_err(|_| anyhow!("container does not exist: {id}"))?;
        loop {
            // SAFETY: flock on a descriptor this function owns; no memory is passed.
            if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) } == 0 {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(err).context("locking the container's state");
            }
        }
        let held = dir.metadata().context("locking the container's state")?;
        match std::fs::symlink_metadata(&self.path) {
            Ok(now) if (now.dev(), now.ino()) == (held.dev(), held.ino()) => Ok(dir),
            _ => bail!("container does not exist: {id}"),
        }
    }

    /// What create saved; `None` while it is still creating.
    fn load(&self) -> Result<Option<Saved>> {
        let text = match std::fs::read(self.path.join(STATE_FILE)) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).context("reading the container's state"),
        };
        let value: Value = serde_json::from_slice(&text).context("reading the container's state")?;
        Saved::from_json(&value).map(Some).ok_or_else(|| anyhow!("the container's state file is damaged"))
    }

    fn status(&self, saved: Option<&Saved>) -> Status {
        let Some(saved) = saved else { return Status::Creating };
        match start_time(saved.pid) == Some(saved.start_time) {
            false => Status::Stopped,
            true if self.path.join(GATE_FIFO).exists() => Status::Created,
            true => Status::Running,
        }
    }

    /// The saved state and status of a container create has finished.
    fn load_created(&self, id: &str) -> Result<(Saved, Status)> {
        let saved = self.load()?.ok_or_else(|| anyhow!("container {id} is still being created"))?;
        let status = self.status(Some(&saved));
        Ok((saved, status))
    }
}

/// Field 22 of /proc/PID/stat (the start time, in clock ticks since boot)
/// while the process lives; `None` once it is gone or a zombie.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    parse_start_time(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The start time in a /proc/PID/stat line, `None` for a zombie.
pub(crate) fn parse_start_time(stat: &str) -> Option<u64> {
    // The command name, field 2, may hold spaces and parentheses.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X") | Some(&"x")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Writes `contents` to `path` through a temporary file in the same
/// directory and a rename: a reader sees all of it or nothing.
pub(crate) fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let name = path.file_name().ok_or_else(|| anyhow!("{}: not a file name", path.display()))?;
    let mut temp_name = OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&temp)?;
        file.write_all(contents)?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.with_context(|| format!("writing {}", path.display()))
}

/// `create`: the container set up and waiting at its gate, its pid in the
/// pid file; returns its pid. The state directory goes again on failure.
fn create(global: &Global, args: &VerbArgs, id: &str) -> Result<crate::container::Created> {
    // Before anything of ours is opened: its descriptor could take one of
    // the numbers the caller hands on.
    preserved_fds(args)?;
    if id == DETACHED_DIR && global.root.is_none() {
        bail!(
            "container id {id:?} is taken: the default state directory keeps zookeeper --detach's containers there"
        );
    }
    let bundle = PathBuf::from(args.value("--bundle").unwrap_or("."));
    let bundle = std::path::absolute(&bundle).context("finding the bundle")?;
    // Read once: the bytes converted are the bytes kept for exec.
    let config = crate::oci::read_config(&bundle).map_err(|err| anyhow!("{err}"))?;
    let parsed = crate::oci::parse_config(&config).map_err(|err| anyhow!("{err}"))?;
    let mut spec = crate::oci::convert(&parsed, &bundle, &crate::oci::Host::current())
        .map_err(|err| anyhow!("{err}"))?;
    spec.identity.id = id.to_string();
    let console = args.value("--console-socket").map(PathBuf::from);
    match (spec.process.terminal, &console) {
        (true, None) => {
            bail!("process.terminal is true: --console-socket is needed to hand the terminal over")
        }
        (false, Some(_)) => bail!("--console-socket is given but process.terminal is false"),
        _ => {}
    }
    spec.process.preserve_fds = preserved_fds(args)?;
    let root = root_dir(global);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&root)
        .with_context(|| format!("creating the state directory {}", root.display()))?;
    let dir = ContainerDir::of(global, id);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir.path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("container with id exists: {id}")
        }
        Err(err) => {
            return Err(err).with_context(|| format!("creating the state directory {}", dir.path.display()));
        }
    }
    // Held until create is done: a delete, kill or start meanwhile waits,
    // then finds the container created, or gone.
    let lock = dir.lock(id).map_err(|_| anyhow!("container {id} was deleted while it was being created"))?;
    let created = create_in(&dir, &spec, &bundle, &config, console.as_deref(), args.value("--pid-file"));
    if created.is_err() {
        let _ = std::fs::remove_dir_all(&dir.path);
    }
    drop(lock);
    created
}

/// The most descriptors `--preserve-fds` hands on.
const MAX_PRESERVED_FDS: u32 = 1 << 16;

/// `--preserve-fds N` (0 without it), its descriptors 3..3+N checked to be
/// open: while they are, nothing zookeeper-oci opens can take one of their
/// numbers and so reach the container.
fn preserved_fds(args: &VerbArgs) -> Result<u32> {
    let Some(text) = args.value("--preserve-fds") else { return Ok(0) };
    let count: u32 = match text.parse() {
        Ok(count) if count <= MAX_PRESERVED_FDS => count,
        _ => bail!("--preserve-fds {text:?}: a number up to {MAX_PRESERVED_FDS} expected"),
    };
    for fd in 3..3 + count {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        if unsafe { libc::fcntl(fd as libc::c_int, libc::F_GETFD) } == -1 {
            bail!("--preserve-fds {count}: descriptor {fd} is not open");
        }
    }
    Ok(count)
}

fn create_in(
    dir: &ContainerDir,
    spec: &crate::spec::ContainerSpec,
    bundle: &Path,
    config: &[u8],
    console: Option<&Path>,
    pid_file: Option<&str>,
) -> Result<crate::container::Created> {
    let fifo = dir.path.join(GATE_FIFO);
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).context("creating the exec gate")?;
    // Non-blocking, so that the open does not wait for a writer; the
    // container's first process polls it (exec.rs, wait_at_gate).
    let gate = nix::fcntl::open(&fifo, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty())
        .context("opening the exec gate")?;
    let mut created = crate::container::create(spec, gate).map_err(|err| anyhow!("{err}"))?;
    let pid = created.pid;
    // Killed if anything below fails: create leaves nothing half made.
    let mut setup = || -> Result<()> {
        if let (Some(socket), Some(master)) = (console, created.pty_master.take()) {
            send_console(socket, master)?;
        }
        let start_time = start_time(pid).ok_or_else(|| anyhow!("the container's first process died"))?;
        let saved = Saved {
            id: spec.identity.id.clone(),
            pid,
            start_time,
            bundle: bundle.to_string_lossy().into_owned(),
            rootfs: spec.root.as_ref().map_or(String::new(), |r| r.to_string_lossy().into_owned()),
            created: rfc3339(std::time::SystemTime::now()),
            annotations: spec
                .identity
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
            cgroup: created.cgroup.clone(),
            poststart: spec.hooks.poststart.clone(),
            poststop: spec.hooks.poststop.clone(),
        };
        let text = serde_json::to_vec(&saved.to_json()).context("writing the container's state")?;
        // exec's process is converted from this copy, not from the bundle,
        // which its owner may change meanwhile: the same seccomp profile,
        // compiled again, and the same capabilities.
        write_atomically(&dir.path.join(CONFIG_FILE), config, 0o600)?;
        write_atomically(&dir.path.join(STATE_FILE), &text, 0o600)?;
        if let Some(pid_file) = pid_file {
            let pid_file = std::path::absolute(pid_file).context("finding the pid file")?;
            write_atomically(&pid_file, pid.to_string().as_bytes(), 0o644)?;
        }
        Ok(())
    };
    let result = setup();
    if result.is_err() {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = crate::cgroups::remove_kept(&created.cgroup);
    }
    result.map(|()| created)
}

/// Sends the pty's master to the caller's console socket (SCM_RIGHTS, as
/// runc: conmon and containerd's shim listen there before create).
fn send_console(socket: &Path, master: OwnedFd) -> Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let stream = std::os::unix::net::UnixStream::connect(socket)
        .with_context(|| format!("connecting to the console socket {}", socket.display()))?;
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[std::io::IoSlice::new(b"/dev/ptmx")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .context("sending the terminal to the console socket")?;
    Ok(())
}

/// `start`: opens the gate, so the waiting process execs the command.
fn start(global: &Global, id: &str) -> Result<()> {
    let dir = ContainerDir::existing(global, id)?;
    let _lock = dir.lock(id)?;
    let (saved, status) = dir.load_created(id)?;
    match status {
        Status::Created => {}
        Status::Running => bail!("cannot start an already running container"),
        _ => bail!("cannot start a container that has stopped"),
    }
    let fifo = dir.path.join(GATE_FIFO);
    // Non-blocking: ENXIO says at once that nothing reads, the process at
    // the gate being gone (no polling, no race with its death).
    let gate = match nix::fcntl::open(
        &fifo,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(gate) => gate,
        Err(Errno::ENXIO) => bail!("cannot start a container that has stopped"),
        Err(Errno::ENOENT) => bail!("cannot start an already running container"),
        Err(err) => return Err(err).context("opening the exec gate"),
    };
    nix::unistd::write(&gate, b"0").context("opening the exec gate")?;
    drop(gate);
    std::fs::remove_file(&fifo).context("removing the exec gate")?;
    wait_for_exec(saved.pid, saved.start_time);
    if !saved.poststart.is_empty() {
        let state = crate::hooks::state_json(&saved.identity(), saved.pid, "running");
        if let Err(err) = crate::hooks::run(&saved.poststart, "poststart", &state) {
            let _ = writeln!(std::io::stderr(), "zookeeper-oci: warning: {err:#}");
        }
    }
    Ok(())
}

/// After the gate opened: returns once the container's first process has
/// exec'd its command (or is gone), as runc's start returns once its init
/// has exec'd. Until then it is pid 1 of its pid namespace running
/// zookeeper's code with no signal handler, and the kernel drops a signal
/// the caller sends it (runtime-tools' killsig sent TERM 8 ms after start,
/// and it was lost). Its startContainer hooks run in between, for as long
/// as they take. Read through /proc/PID/stat: its name is zookeeper-gate
/// until exec, and its start time tells a reused pid.
fn wait_for_exec(pid: i32, start_time: u64) {
    let mut pause = std::time::Duration::from_micros(100);
    loop {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return };
        if parse_start_time(&stat) != Some(start_time) {
            return;
        }
        let name = stat.split_once('(').and_then(|(_, rest)| rest.rsplit_once(')')).map(|(name, _)| name);
        if name != Some("zookeeper-gate") {
            return;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(10));
    }
}

/// `state`: the runtime-spec state, as runc prints it.
fn state(global: &Global, id: &str) -> Result<()> {
    let dir = ContainerDir::existing(global, id)?;
    let saved = dir.load()?;
    let status = dir.status(saved.as_ref());
    let value = match &saved {
        Some(saved) => json!({
            "ociVersion": OCI_VERSION,
            "id": id,
            "pid": if status == Status::Stopped { 0 } else { saved.pid },
            "status": status.name(),
            "bundle": saved.bundle,
            "rootfs": saved.rootfs,
            "created": saved.created,
            "owner": "",
            "annotations": saved.annotations,
        }),
        None => json!({"ociVersion": OCI_VERSION, "id": id, "pid": 0, "status": status.name(), "bundle": ""}),
    };
    let text = serde_json::to_string_pretty(&value).context("writing the state")?;
    let _ = writeln!(std::io::stdout(), "{text}");
    Ok(())
}

/// `kill`: a signal to the container's first process; with `--all`, to
/// every process of its cgroup (or of its pid namespace, without one).
fn kill(global: &Global, id: &str, signal: Signal, all: bool) -> Result<()> {
    let dir = ContainerDir::existing(global, id)?;
    let _lock = dir.lock(id)?;
    let (saved, status) = dir.load_created(id)?;
    if !matches!(status, Status::Created | Status::Running) {
        bail!("container not running");
    }
    if all {
        for pid in processes_of(&saved) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
        }
    }
    match nix::sys::signal::kill(Pid::from_raw(saved.pid), signal) {
        Ok(()) => Ok(()),
        Err(Errno::ESRCH) => bail!("container not running"),
        Err(err) => Err(err).context("signalling the container"),
    }
}

/// The container's processes: its cgroup's, or those in its first
/// process's pid namespace.
fn processes_of(saved: &Saved) -> Vec<i32> {
    let mut pids = Vec::new();
    for dir in &saved.cgroup.dirs {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            pids.extend(text.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    if saved.cgroup.dirs.is_empty() {
        let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
        if let (Some(own), Ok(entries)) = (ns(&saved.pid.to_string()), std::fs::read_dir("/proc")) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
                if ns(&pid.to_string()).as_ref() == Some(&own) {
                    pids.push(pid);
                }
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// `ps`: the container's processes, as pids on the caller's side (`json`:
/// an array, as containerd's shim reads it; `table`: one per line).
fn ps(global: &Global, id: &str, format: &str) -> Result<()> {
    let dir = ContainerDir::existing(global, id)?;
    let (saved, status) = dir.load_created(id)?;
    let pids = match status {
        Status::Created | Status::Running => processes_of(&saved),
        _ => Vec::new(),
    };
    let text = match format {
        "json" => serde_json::to_string(&pids).context("writing the process list")?,
        "table" => std::iter::once("PID".to_string())
            .chain(pids.iter().map(|p| p.to_string()))
            .collect::<Vec<_>>()
            .join("\n"),
        other => bail!("unknown --format {other:?}: table or json"),
    };
    let _ = writeln!(std::io::stdout(), "{text}");
    Ok(())
}

/// `list`: the containers under the root, as runc lists them.
fn list(global: &Global, format: &str, quiet: bool) -> Result<()> {
    let root = root_dir(global);
    let mut ids: Vec<String> = match std::fs::read_dir(&root) {
        Ok(entries) => entries.flatten().filter_map(|e| e.file_name().into_string().ok()).collect(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(err).with_context(|| format!("reading {}", root.display())),
    };
    // `containers` beside them is `zookeeper --detach`'s state (src/detach.rs).
    ids.retain(|id| check_id(id).is_ok() && !(id == DETACHED_DIR && global.root.is_none()));
    ids.sort();
    let mut rows = Vec::new();
    for id in &ids {
        let dir = ContainerDir::of(global, id);
        let Ok(saved) = dir.load() else { continue };
        let status = dir.status(saved.as_ref());
        let (pid, bundle, created) = match &saved {
            Some(s) => {
                (if status == Status::Stopped { 0 } else { s.pid }, s.bundle.clone(), s.created.clone())
            }
            None => (0, String::new(), String::new()),
        };
        rows.push((id.clone(), pid, status.name(), bundle, created));
    }
    let mut out = std::io::stdout();
    match (format, quiet) {
        (_, true) => {
            for (id, ..) in &rows {
                let _ = writeln!(out, "{id}");
            }
        }
        ("json", false) => {
            let value: Vec<Value> = rows
                .iter()
                .map(|(id, pid, status, bundle, created)| {
                    json!({"ociVersion": OCI_VERSION, "id": id, "pid": pid, "status": status, "bundle": bundle, "created": created, "owner": ""})
                })
                .collect();
            let _ = writeln!(out, "{}", Value::Array(value));
        }
        ("table", false) => {
            let _ = writeln!(out, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER");
            for (id, pid, status, bundle, created) in &rows {
                let _ = writeln!(out, "{id}\t{pid}\t{status}\t{bundle}\t{created}\t");
            }
        }
        (other, false) => bail!("unknown --format {other:?}: table or json"),
    }
    Ok(())
}

/// `delete`: a stopped (or created) container's cgroup and state removed,
/// its poststop hooks run; `--force` kills a running one first.
fn delete(global: &Global, id: &str, force: bool) -> Result<()> {
    let dir = ContainerDir::existing(global, id)?;
    let _lock = dir.lock(id)?;
    let saved = dir.load()?;
    let status = dir.status(saved.as_ref());
    let Some(saved) = saved else {
        // A create that died half-way (killed before it wrote its state).
        if !force {
            bail!("cannot delete container {id} that is not stopped: creating");
        }
        return std::fs::remove_dir_all(&dir.path).context("removing the container's state");
    };
    match status {
        Status::Running if !force => bail!("cannot delete container {id} that is not stopped: running"),
        Status::Created | Status::Running => {
            for pid in processes_of(&saved) {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = nix::sys::signal::kill(Pid::from_raw(saved.pid), Signal::SIGKILL);
            wait_gone(&saved)?;
        }
        _ => {}
    }
    destroy(&dir, &saved)
}

/// Waits (up to ten seconds) for the container's first process to die:
/// it is the caller's child, not ours, so it is watched, not waited for.
fn wait_gone(saved: &Saved) -> Result<()> {
    for _ in 0..1000 {
        if start_time(saved.pid) != Some(saved.start_time) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("the container's first process (pid {}) did not die", saved.pid)
}

/// The cgroup, the poststop hooks, the state directory.
fn destroy(dir: &ContainerDir, saved: &Saved) -> Result<()> {
    crate::cgroups::remove_kept(&saved.cgroup)?;
    if !saved.poststop.is_empty() {
        let state = crate::hooks::state_json(&saved.identity(), saved.pid, "stopped");
        if let Err(err) = crate::hooks::run(&saved.poststop, "poststop", &state) {
            let _ = writeln!(std::io::stderr(), "zookeeper-oci: warning: {err:#}");
        }
    }
    std::fs::remove_dir_all(&dir.path).context("removing the container's state")
}

/// `run`: create, start, and (without `--detach`) wait, then delete
/// (unless `--keep`); the container's exit status, 128+N for signal N.
fn run(global: &Global, args: &VerbArgs, id: &str) -> Result<i32> {
    let created = create(global, args, id)?;
    start(global, id)?;
    if args.flag("--detach") {
        return Ok(0);
    }
    let pid = Pid::from_raw(created.pid);
    let supervisor =
        crate::signals::Supervisor::block(Duration::from_secs(crate::spec::DEFAULT_STOP_TIMEOUT_SECS), None)?;
    let ended = supervisor.wait_forwarding(pid, None, None)?;
    if !args.flag("--keep") {
        let dir = ContainerDir::existing(global, id)?;
        if let Some(saved) = dir.load()? {
            destroy(&dir, &saved)?;
        }
    }
    Ok(match ended {
        crate::status::ExitState::Exited(code) => code,
        crate::status::ExitState::Signaled(sig) => 128 + sig as i32,
    })
}

/// `spec`: writes a starting config.json, runc's (`--rootless`: for the
/// caller, alone in its user namespace).
fn spec(bundle: Option<&str>, rootless: bool) -> Result<()> {
    let dir = PathBuf::from(bundle.unwrap_or("."));
    let path = dir.join("config.json");
    let config = match rootless {
        true => oci_spec::runtime::Spec::rootless(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        ),
        false => oci_spec::runtime::Spec::default(),
    };
    let text = serde_json::to_vec_pretty(&config).context("writing config.json")?;
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&path).map_err(|err| {
            match err.kind() {
                std::io::ErrorKind::AlreadyExists => anyhow!("{} exists: remove it first", path.display()),
                _ => anyhow!("writing {}: {err}", path.display()),
            }
        })?;
    file.write_all(&text).with_context(|| format!("writing {}", path.display()))
}

/// `features`: what this runtime implements (runtime-spec features.md).
fn features() -> Result<()> {
    let value = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "bind", "rbind",
                         "private", "rprivate", "slave", "rslave", "relatime", "strictatime"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps::all().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": true},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
        },
        "annotations": {"org.zookeeper.runtime": "zookeeper-oci"},
    });
    let text = serde_json::to_string_pretty(&value).context("writing the features")?;
    let _ = writeln!(std::io::stdout(), "{text}");
    Ok(())
}

/// `2026-11-30T09:50:12.123456789Z`.
pub(crate) fn rfc3339(time: std::time::SystemTime) -> String {
    let since = time.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_nanos()
    )
}

/// Howard Hinnant's days-to-date, for days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn options_before_or_after_the_id() {
        for words in [
            &["--bundle", "/b", "--pid-file=/p", "c1"][..],
            &["c1", "--bundle", "/b", "--pid-file", "/p"],
            &["-b", "/b", "c1", "--pid-file", "/p"],
        ] {
            let args = parse_verb("create", argv(words), CREATE_OPTIONS).unwrap();
            assert_eq!(args.id("create").unwrap(), "c1");
            assert_eq!(args.value("--bundle"), Some("/b"));
            assert_eq!(args.value("--pid-file"), Some("/p"));
        }
        assert!(parse_verb("create", argv(&["--bogus", "c1"]), CREATE_OPTIONS).is_err());
        assert!(parse_verb("create", argv(&["c1", "--bundle"]), CREATE_OPTIONS).is_err());
    }

    #[test]
    fn exec_options_end_at_the_command() {
        let args = parse_verb_until(
            "exec",
            argv(&["-d", "c1", "-e", "A=1", "sh", "-c", "x", "--tty"]),
            EXEC_OPTIONS,
            2,
        )
        .unwrap();
        assert_eq!(args.operands, argv(&["c1", "sh", "-c", "x", "--tty"]));
        assert!(args.flag("--detach") && !args.flag("--tty"));
        assert_eq!(args.value("--env"), Some("A=1"));
        let args = parse_verb_until("exec", argv(&["c1", "--tty", "--", "-x"]), EXEC_OPTIONS, 2).unwrap();
        assert_eq!(args.operands, argv(&["c1", "-x"]));
        assert!(args.flag("--tty"));
        assert!(parse_verb_until("exec", argv(&["--bogus", "c1", "sh"]), EXEC_OPTIONS, 2).is_err());
        let args = parse_verb_until(
            "exec",
            argv(&[
                "c1",
                "--cap",
                "CAP_A",
                "-c",
                "CAP_B",
                "-g",
                "1",
                "--additional-gids=2",
                "--cgroup",
                "pids:s",
                "true",
            ]),
            EXEC_OPTIONS,
            2,
        )
        .unwrap();
        assert_eq!(args.operands, argv(&["c1", "true"]));
        assert_eq!(args.all("--cap"), ["CAP_A", "CAP_B"]);
        assert_eq!(args.all("--additional-gids"), ["1", "2"]);
        assert_eq!(args.all("--cgroup"), ["pids:s"]);
    }

    #[test]
    fn global_options_then_the_verb() {
        let mut global = Global { root: None, log: Log { file: None, json: false } };
        let mut args = argv(&[
            "--root",
            "/r",
            "--log",
            "/l.json",
            "--log-format=json",
            "--systemd-cgroup",
            "--rootless",
            "false",
            "--criu",
            "/x",
            "kill",
            "c1",
            "9",
        ]);
        assert_eq!(parse_global(&mut args, &mut global).unwrap().as_deref(), Some("kill"));
        assert_eq!(args, argv(&["c1", "9"]));
        assert_eq!(global.root.as_deref(), Some(Path::new("/r")));
        assert!(global.log.json);
        let mut args = argv(&["--log-format", "xml", "state", "c1"]);
        assert!(parse_global(&mut args, &mut global).is_err());
        assert!(parse_global(&mut argv(&["--what", "state"]), &mut global).is_err());
    }

    #[test]
    fn signals_by_number_and_name() {
        for text in ["9", "KILL", "SIGKILL", "kill"] {
            assert_eq!(parse_signal(text).unwrap(), Signal::SIGKILL);
        }
        assert_eq!(parse_signal("15").unwrap(), Signal::SIGTERM);
        for bad in ["0", "99", "NOPE", "", "-1"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_never_paths() {
        for good in ["c1", "a.b", "x_y-z+1", "0123456789abcdef"] {
            assert!(check_id(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a\0b"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn state_round_trips() {
        let saved = Saved {
            id: "c1".into(),
            pid: 42,
            start_time: 7,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-11-30T00:00:00.000000000Z".into(),
            annotations: [("k".to_string(), Value::String("v".into()))].into_iter().collect(),
            cgroup: crate::cgroups::Kept {
                dirs: vec![PathBuf::from("/sys/fs/cgroup/pids/zk/c1")],
                made_parents: vec![PathBuf::from("/sys/fs/cgroup/pids/zk")],
            },
            poststart: vec![],
            poststop: vec![Hook {
                path: "/bin/true".into(),
                args: vec!["true".into()],
                env: vec![],
                timeout: Some(3),
            }],
        };
        let back = Saved::from_json(&saved.to_json()).unwrap();
        assert_eq!(back.to_json(), saved.to_json());
    }

    #[test]
    fn dates() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_796_032_212);
        assert_eq!(rfc3339(t), "2026-11-30T09:50:12.000000000Z");
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
    }
}
