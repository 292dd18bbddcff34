//! Detached, named containers (issue 18): `zookeeper --detach`, and the
//! long options that manage them (`--list`, `--logs`, `--stop`, `--kill`,
//! `--remove`, `--inspect`, `--exec`). Long options, never sub-commands: the
//! first word that is not an option is still the command to run.
//!
//! `--detach` forks a supervisor of ours (as conmon is podman's): in a
//! session of its own, with no terminal, stdin `/dev/null`, stdout and
//! stderr a pipe to a logger process that writes the size-capped
//! `container.log`, no descriptor of the caller's. It runs the container
//! exactly as the foreground zookeeper does (`container::run_observed`:
//! network helper and published ports, cgroup, stop timeout, clean-up), so
//! the container dies with it (its parent-death signal) and slirp4netns too
//! (its exit fd). The caller returns once the command runs, printing the id.
//!
//! The state, one directory per container, the caller's own (0700):
//! `/run/zookeeper/containers/<id>/` as root, otherwise
//! `$XDG_RUNTIME_DIR/zookeeper/containers/<id>/` (or
//! `/run/user/UID/zookeeper/containers/<id>/`): `state.json`, written
//! atomically and only by the supervisor once it runs, and the logs. A lock
//! on `containers/.lock` makes names unique per user.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::runtime::{rfc3339, start_time, write_atomically};
use crate::spec::ContainerSpec;
use crate::status::ExitState;

const STATE_FILE: &str = "state.json";
/// What `--exec` needs of the container's confinement ([`ExecSpec`]),
/// written by the supervisor before the container starts.
const EXEC_FILE: &str = "exec.json";
/// The most `exec.json` may hold (a seccomp program is the largest part).
const EXEC_FILE_LIMIT: u64 = 4 << 20;
const LOG_FILE: &str = "container.log";
const OLD_LOG_FILE: &str = "container.log.1";
/// The most `container.log` holds before it is rotated to
/// `container.log.1` (the one before that is dropped): a container's
/// output keeps at most twice this on the host.
const LOG_CAP: u64 = 1 << 20;

/// `--detach`: what to run and under which name.
#[derive(Debug, PartialEq, Eq)]
pub struct Detach {
    pub spec: Box<ContainerSpec>,
    pub name: Option<String>,
    /// The command line's words after argv[0], kept so that `--exec`
    /// rebuilds the same confinement from them.
    pub argv: Vec<OsString>,
    /// `--rm`: the state goes when the container ends.
    pub auto_remove: bool,
    /// `--image`: pulled (if missing) by the caller, who sees the pull;
    /// the supervisor prepares it again from the store and holds the
    /// store's shared lock while the container runs.
    pub image: Option<Box<crate::image::ImageRun>>,
}

/// The management options.
#[derive(Debug, PartialEq, Eq)]
pub enum Manage {
    List,
    Logs { name: String, follow: bool },
    Stop { name: String, time: Option<u64> },
    Kill { name: String, signal: String },
    Remove { name: String, force: bool },
    Inspect { name: String },
    Exec { name: String, command: Vec<OsString>, tty: bool },
}

/// The caller's state directory for detached containers.
pub fn state_root() -> Result<PathBuf> {
    let uid = nix::unistd::geteuid();
    let in_userns = std::fs::read_to_string("/proc/self/uid_map")
        .map(|map| map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
        .unwrap_or(false);
    if uid.is_root() && !in_userns {
        return Ok(PathBuf::from("/run/zookeeper/containers"));
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => Ok(PathBuf::from(dir).join("zookeeper/containers")),
        _ => {
            let run = PathBuf::from(format!("/run/user/{uid}"));
            match std::fs::metadata(&run) {
                Ok(meta) if meta.is_dir() && meta.uid() == uid.as_raw() => {
                    Ok(run.join("zookeeper/containers"))
                }
                _ => bail!(
                    "no runtime directory for the containers' state: XDG_RUNTIME_DIR is unset and {} is not yours; set XDG_RUNTIME_DIR to a directory only you can write",
                    run.display()
                ),
            }
        }
    }
}

/// Makes the state root (0700), and checks it is the caller's and private:
/// a directory someone else can write could hold planted state.
fn make_root(root: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .with_context(|| format!("creating the state directory {}", root.display()))?;
    let meta = std::fs::symlink_metadata(root).with_context(|| format!("reading {}", root.display()))?;
    if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
        bail!("the state directory {} is not a private directory of yours", root.display());
    }
    Ok(())
}

/// An exclusive flock on the root's `.lock`, held while the returned file lives.
fn lock_root(root: &Path) -> Result<std::fs::File> {
    crate::sync::lock_exclusive(&root.join(".lock"))
}

/// Names: letters, digits and `_+-.`, not starting with `.` or `-`, at most 64.
fn check_name(name: &str) -> Result<()> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    match fine {
        true => Ok(()),
        false => bail!("invalid container name {name:?}: letters, digits and _+-. only (at most 64)"),
    }
}

fn new_id() -> Result<String> {
    let mut bytes = [0u8; 8];
    let mut file = std::fs::File::open("/dev/urandom").context("reading /dev/urandom for an id")?;
    file.read_exact(&mut bytes).context("reading /dev/urandom for an id")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()[..12].to_string())
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// One container's state directory and what its state.json says.
struct Entry {
    id: String,
    dir: PathBuf,
    state: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Starting,
    Running,
    Exited,
    /// Its supervisor died (killed): the container died with it.
    Gone,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Exited => "exited",
            Status::Gone => "gone",
        }
    }
}

/// Whether the process `pid_key`/`start_key` names in `state` still runs.
fn alive(state: &Value, pid_key: &str, start_key: &str) -> bool {
    let (Some(pid), Some(start)) = (state[pid_key].as_i64(), state[start_key].as_u64()) else { return false };
    i32::try_from(pid).is_ok_and(|pid| start_time(pid) == Some(start))
}

impl Entry {
    fn status(&self) -> Status {
        match self.state["status"].as_str() {
            Some("exited") => Status::Exited,
            // Before the supervisor has written its pid, the zookeeper that
            // forks it stands for it: a start is not taken for a dead one.
            _ if !alive(&self.state, "supervisorPid", "supervisorStartTime")
                && !alive(&self.state, "creatorPid", "creatorStartTime") =>
            {
                Status::Gone
            }
            Some("running") => Status::Running,
            _ => Status::Starting,
        }
    }

    fn status_text(&self) -> String {
        match self.status() {
            Status::Exited => match (self.state["exitCode"].as_i64(), self.state["exitSignal"].as_str()) {
                (Some(code), _) => format!("exited ({code})"),
                (None, Some(sig)) => format!("exited ({sig})"),
                _ => "exited".into(),
            },
            Status::Gone => "gone (supervisor died)".into(),
            other => other.name().into(),
        }
    }

    fn name(&self) -> &str {
        self.state["name"].as_str().unwrap_or_default()
    }

    fn strings(&self, key: &str) -> Vec<String> {
        self.state[key]
            .as_array()
            .map_or(Vec::new(), |a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
    }

    fn container_pid(&self) -> Option<(i32, u64)> {
        let pid = i32::try_from(self.state["pid"].as_i64()?).ok()?;
        Some((pid, self.state["startTime"].as_u64()?))
    }
}

/// Every container under `root`, by id.
fn entries(root: &Path) -> Result<Vec<Entry>> {
    let read = match std::fs::read_dir(root) {
        Ok(read) => read,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading {}", root.display())),
    };
    let mut found = Vec::new();
    for entry in read.flatten() {
        let Ok(id) = entry.file_name().into_string() else { continue };
        if id.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = entry.path();
        let Ok(text) = read_bounded(&dir.join(STATE_FILE), 1 << 20) else { continue };
        let Ok(state) = serde_json::from_slice::<Value>(&text) else { continue };
        found.push(Entry { id, dir, state });
    }
    found.sort_by(|a, b| a.state["created"].as_str().cmp(&b.state["created"].as_str()));
    Ok(found)
}

/// A regular file read to at most `limit` bytes, no link followed.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.is_file() {
        bail!("{} is not a file", path.display());
    }
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The container named `name` (or with that id).
fn find(root: &Path, name: &str) -> Result<Entry> {
    entries(root)?
        .into_iter()
        .find(|e| e.name() == name || e.id == name)
        .ok_or_else(|| anyhow!("no container named {name:?}"))
}

/// `--detach`: starts the supervisor and returns the container's id once
/// the command runs.
pub fn start(detach: Detach) -> Result<String, crate::Error> {
    let root = state_root()?;
    make_root(&root)?;
    let argv: Vec<String> =
        detach
            .argv
            .iter()
            .map(|a| a.to_str().map(String::from))
            .collect::<Option<_>>()
            .ok_or_else(|| anyhow!("--detach: the command line must be UTF-8 (it is kept in the state)"))?;
    // The image pulled here, in the caller's sight, with its errors; the
    // state shows the command and environment the image gives.
    let prepared = match &detach.image {
        Some(image) => {
            let mut spec = (*detach.spec).clone();
            drop(crate::image::prepare(image, &mut spec)?);
            Some(spec)
        }
        None => None,
    };
    let shown_spec = prepared.as_ref().unwrap_or(&detach.spec);
    let image = detach.image.as_ref().map(|i| i.reference.as_str());
    let (id, name, dir) = {
        let _lock = lock_root(&root)?;
        let id = new_id()?;
        let name = detach.name.clone().unwrap_or_else(|| format!("zoo-{}", &id[..8]));
        check_name(&name)?;
        if let Some(other) = entries(&root)?.iter().find(|e| e.name() == name || e.id == name) {
            return Err(anyhow!("the name {name:?} is in use by container {}", other.id).into());
        }
        let dir = root.join(&id);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating the state directory {}", dir.display()))?;
        // Written now, so that the name is taken before the lock goes.
        let state = initial_state(&id, &name, shown_spec, &argv, image);
        let written = write_state(&dir, &state);
        if written.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        written?;
        (id, name, dir)
    };
    let (ready_rx, ready_tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating the ready channel")?;
    // SAFETY: zookeeper is single-threaded, so the child's copy of the
    // address space holds no lock another thread would release; the child
    // becomes the supervisor and exits without returning.
    match unsafe { nix::unistd::fork() }.context("forking the supervisor")? {
        nix::unistd::ForkResult::Child => {
            drop(ready_rx);
            supervise(&dir, &detach, ready_tx)
        }
        nix::unistd::ForkResult::Parent { .. } => {}
    }
    drop(ready_tx);
    // "0\n" once the command runs, or the exit code and the reason.
    let mut reply = Vec::new();
    let _ = std::fs::File::from(ready_rx).take(4096).read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    let (code, message) = reply.trim_end().split_once(' ').unwrap_or((reply.trim_end(), ""));
    match code.parse::<u8>() {
        Ok(0) => Ok(id),
        Ok(code) => {
            Err(crate::Error::Container(crate::sync::Failure { exit_code: code, message: message.into() }))
        }
        Err(_) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(anyhow!("the supervisor of container {name} died while starting it").into())
        }
    }
}

fn initial_state(id: &str, name: &str, spec: &ContainerSpec, argv: &[String], image: Option<&str>) -> Value {
    let lossy = |items: &[OsString]| -> Vec<String> {
        items.iter().map(|i| i.to_string_lossy().into_owned()).collect()
    };
    json!({
        "id": id,
        "name": name,
        "status": "starting",
        "created": rfc3339(SystemTime::now()),
        "rootfs": match image {
            Some(_) => None,
            None => spec.root.as_ref().map(|r| r.to_string_lossy().into_owned()),
        },
        "image": image,
        "command": lossy(&spec.process.args),
        "env": lossy(&spec.process.env),
        "ports": spec.publish.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "stopTimeout": spec.stop_timeout.as_secs(),
        "argv": argv,
        "creatorPid": std::process::id(),
        "creatorStartTime": start_time(std::process::id() as i32),
    })
}

fn write_state(dir: &Path, state: &Value) -> Result<()> {
    let text = serde_json::to_vec_pretty(state).context("writing the container's state")?;
    write_atomically(&dir.join(STATE_FILE), &text, 0o600)
}

/// The supervisor: detaches from the caller, starts the logger, runs the
/// container to its end, records how it ended.
fn supervise(dir: &Path, detach: &Detach, ready: OwnedFd) -> ! {
    let spec: &ContainerSpec = &detach.spec;
    let mut ready = Some(ready);
    let say = |ready: &mut Option<OwnedFd>, text: &str| {
        if let Some(fd) = ready.take() {
            let _ = nix::unistd::write(&fd, text.as_bytes());
        }
    };
    let mut state = match detach_from_caller(dir) {
        Ok(logger) => {
            // Nothing of the caller's stays open here but the standard three
            // (ours now) and the ready channel.
            if let Some(fd) = &ready {
                close_all_but(fd.as_raw_fd());
            }
            let mut state = initial_state_from_disk(dir);
            state["supervisorPid"] = json!(std::process::id());
            state["supervisorStartTime"] = json!(start_time(std::process::id() as i32));
            state["loggerPid"] = json!(logger.0);
            state["loggerStartTime"] = json!(logger.1);
            state
        }
        Err(err) => {
            say(&mut ready, &format!("125 starting the supervisor: {err:#}\n"));
            let _ = std::fs::remove_dir_all(dir);
            exit_now(125)
        }
    };
    if let Err(err) = write_state(dir, &state) {
        say(&mut ready, &format!("125 {err:#}\n"));
        let _ = std::fs::remove_dir_all(dir);
        exit_now(125)
    }
    let mut spec = ContainerSpec {
        process: crate::spec::Process { terminal: false, ..spec.process.clone() },
        ..spec.clone()
    };
    // The store's shared lock, held until the container ends. The caller
    // pulled the image: it is taken from the store as it is now.
    let in_use = match &detach.image {
        Some(image) => {
            let run = crate::image::ImageRun { pull: crate::image::Pull::Never, ..(**image).clone() };
            match crate::image::prepare(&run, &mut spec) {
                Ok(in_use) => Some(in_use),
                Err(err) => {
                    say(&mut ready, &format!("125 {err:#}\n"));
                    let _ = std::fs::remove_dir_all(dir);
                    exit_now(125)
                }
            }
        }
        None => None,
    };
    if let Err(err) = write_exec_spec(dir, &spec) {
        say(&mut ready, &format!("125 {err:#}\n"));
        let _ = std::fs::remove_dir_all(dir);
        exit_now(125)
    }
    let result = crate::container::run_observed(&spec, &mut |running| {
        state["status"] = json!("running");
        state["pid"] = json!(running.pid);
        state["startTime"] = json!(start_time(running.pid));
        state["startedAt"] = json!(now_secs());
        state["cgroupDirs"] =
            json!(running.cgroup_dirs.iter().map(|d| d.to_string_lossy()).collect::<Vec<_>>());
        state["mountpoint"] = json!(running.mountpoint.as_ref().map(|m| m.to_string_lossy()));
        state["helperPid"] = json!(running.helper_pid);
        write_state(dir, &state)?;
        say(&mut ready, "0\n");
        Ok(())
    });
    if ready.is_some() {
        // It never ran: the caller says why, and nothing of it stays.
        let (code, message) = match &result {
            Ok(_) => (125, "the container ended before it ran".to_string()),
            Err(err) => (err.exit_code().clamp(1, 255), err.to_string()),
        };
        say(&mut ready, &format!("{code} {message}\n"));
        let _ = std::fs::remove_dir_all(dir);
        exit_now(code)
    }
    drop(in_use);
    state["status"] = json!("exited");
    state["finishedAt"] = json!(now_secs());
    match result {
        Ok(ExitState::Exited(code)) => state["exitCode"] = json!(code),
        Ok(ExitState::Signaled(sig)) => state["exitSignal"] = json!(sig.as_str()),
        Err(err) => {
            eprintln!("zookeeper: {err}");
            state["error"] = json!(err.to_string());
        }
    }
    match detach.auto_remove {
        true => {
            let _ = std::fs::remove_dir_all(dir);
        }
        false => {
            let _ = write_state(dir, &state);
        }
    }
    exit_now(0)
}

fn initial_state_from_disk(dir: &Path) -> Value {
    read_bounded(&dir.join(STATE_FILE), 1 << 20)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_else(|| json!({}))
}

/// A session of its own, no terminal, stdin /dev/null, stdout and stderr
/// the logger's pipe, no descriptor of the caller's but the ready channel
/// (close-on-exec); returns the logger's pid and start time.
fn detach_from_caller(dir: &Path) -> Result<(i32, u64)> {
    nix::unistd::setsid().context("starting a session")?;
    // A caller gone before the ready word must not kill the supervisor
    // (the container's first process resets every signal before exec).
    // SAFETY: setting a disposition to ignore installs no handler.
    unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn) }
        .context("ignoring SIGPIPE")?;
    std::env::set_current_dir("/").context("leaving the caller's directory")?;
    let null = nix::fcntl::open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .context("opening /dev/null")?;
    let (log_rx, log_tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating the log pipe")?;
    let log_path = dir.join(LOG_FILE);
    let old_path = dir.join(OLD_LOG_FILE);
    // SAFETY: single-threaded (see `start`); the child only copies the pipe
    // into the log and exits.
    let logger = match unsafe { nix::unistd::fork() }.context("forking the logger")? {
        nix::unistd::ForkResult::Child => {
            drop(log_tx);
            let _ = nix::sys::prctl::set_dumpable(false);
            for fd in 0..3 {
                let _ = dup_onto(null.as_raw_fd(), fd);
            }
            let keep = log_rx.as_raw_fd();
            close_all_but(keep);
            copy_to_log(log_rx, &log_path, &old_path);
            exit_now(0)
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop(log_rx);
    let logger_start = start_time(logger.as_raw()).unwrap_or(0);
    dup_onto(null.as_raw_fd(), 0).context("putting /dev/null on stdin")?;
    dup_onto(log_tx.as_raw_fd(), 1).context("putting the log on stdout")?;
    dup_onto(log_tx.as_raw_fd(), 2).context("putting the log on stderr")?;
    drop((null, log_tx));
    Ok((logger.as_raw(), logger_start))
}

/// dup2(2): `to` (0, 1 or 2) becomes a copy of `from`, without close-on-exec.
fn dup_onto(from: i32, to: i32) -> std::io::Result<()> {
    // SAFETY: dup2 on descriptors; `to` is one of the standard three, which
    // std's handles refer to by number only.
    match unsafe { libc::dup2(from, to) } {
        -1 => Err(std::io::Error::last_os_error()),
        _ => Ok(()),
    }
}

/// Closes every descriptor above 2 but `keep`, and marks the rest of the
/// supervisor's close-on-exec.
fn close_all_but(keep: i32) {
    // SAFETY: closes descriptors no live object of this process uses again
    // (the logger only reads `keep` from here).
    unsafe {
        if keep > 3 {
            libc::close_range(3, (keep - 1) as libc::c_uint, 0);
        }
        libc::close_range((keep + 1) as libc::c_uint, libc::c_uint::MAX, 0);
    }
}

/// The logger: the pipe into `container.log`, rotated to
/// `container.log.1` at [`LOG_CAP`].
fn copy_to_log(pipe: OwnedFd, path: &Path, old: &Path) {
    let open = |path: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
    };
    let Ok(mut file) = open(path) else { return };
    let mut size = file.metadata().map_or(0, |m| m.len());
    let mut pipe = std::fs::File::from(pipe);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match pipe.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if size + n as u64 > LOG_CAP && size > 0 {
            let _ = std::fs::rename(path, old);
            match open(path) {
                Ok(new) => file = new,
                Err(_) => return,
            }
            size = 0;
        }
        // A write that fails (a full disk) drops the output, never blocks the container.
        if file.write_all(&buffer[..n]).is_ok() {
            size += n as u64;
        }
    }
}

fn exit_now(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    // SAFETY: _exit skips atexit handlers and destructors, which belong to
    // the caller's copy of this address space.
    unsafe { libc::_exit(code) }
}

/// Runs a management option; `Some` for `--exec`, how its process ended.
pub fn manage(manage: Manage) -> Result<Option<ExitState>> {
    let root = state_root()?;
    // Its state names pids to signal and cgroups to remove: only a private
    // directory of the caller's is believed.
    if root.exists() {
        make_root(&root)?;
    }
    let mut out = std::io::stdout();
    match manage {
        Manage::List => {
            let _ = writeln!(out, "{}", list(&root)?);
        }
        Manage::Inspect { name } => {
            let entry = find(&root, &name)?;
            let mut state = entry.state.clone();
            state["status"] = json!(entry.status().name());
            state["stateDir"] = json!(entry.dir.to_string_lossy());
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&state).context("writing the state")?);
        }
        Manage::Logs { name, follow } => logs(&find(&root, &name)?, follow)?,
        Manage::Kill { name, signal } => {
            let entry = find(&root, &name)?;
            let signal = crate::runtime::parse_signal(&signal)?;
            if !signal_container(&entry, signal)? {
                bail!("container {name} is not running");
            }
        }
        Manage::Stop { name, time } => {
            let entry = find(&root, &name)?;
            stop(&entry, time)?;
            let _ = writeln!(out, "{name}");
        }
        Manage::Remove { name, force } => {
            let entry = find(&root, &name)?;
            remove(&entry, force)?;
            let _ = writeln!(out, "{name}");
        }
        Manage::Exec { name, command, tty } => return exec(&find(&root, &name)?, command, tty).map(Some),
    }
    Ok(None)
}

fn list(root: &Path) -> Result<String> {
    let mut rows = vec![["NAME", "ID", "ROOTFS", "COMMAND", "STATUS", "UPTIME", "PORTS"].map(String::from)];
    for entry in entries(root)? {
        let status = entry.status();
        let uptime = match (status, entry.state["startedAt"].as_u64()) {
            (Status::Running, Some(at)) => human_duration(now_secs().saturating_sub(at)),
            _ => "-".into(),
        };
        let command = entry.strings("command").join(" ");
        let command = if command.chars().count() > 30 {
            format!("{}...", command.chars().take(27).collect::<String>())
        } else {
            command
        };
        let ports = entry.strings("ports").join(",");
        rows.push([
            entry.name().to_string(),
            entry.id.clone(),
            match entry.state["image"].as_str() {
                Some(image) => image.to_string(),
                None => entry.state["rootfs"].as_str().unwrap_or("(default root)").to_string(),
            },
            format!("{command:?}"),
            entry.status_text(),
            uptime,
            if ports.is_empty() { "-".into() } else { ports },
        ]);
    }
    let widths: Vec<usize> =
        (0..7).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    Ok(rows
        .iter()
        .map(|row| {
            let cells: Vec<String> =
                row.iter().zip(&widths).map(|(cell, width)| format!("{cell:width$}")).collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

fn human_duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{}h", secs / 86400, secs % 86400 / 3600),
    }
}

/// Sends `signal` to the container's first process, held by a pidfd taken
/// before its start time is checked (a reused pid is not hit); `false`
/// when it is not running.
fn signal_container(entry: &Entry, signal: Signal) -> Result<bool> {
    if !matches!(entry.status(), Status::Running) {
        return Ok(false);
    }
    let Some((pid, start)) = entry.container_pid() else { return Ok(false) };
    // SAFETY: pidfd_open takes a pid and flags, no memory.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Ok(false);
    }
    // SAFETY: the kernel just returned this descriptor, owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    if start_time(pid) != Some(start) {
        return Ok(false);
    }
    // SAFETY: pidfd_send_signal with a valid descriptor and no siginfo.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as i32,
            std::ptr::null::<u8>(),
            0,
        )
    };
    if sent < 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ESRCH) {
            return Ok(false);
        }
        return Err(err).context("signalling the container");
    }
    Ok(true)
}

/// Waits up to `timeout` for the supervisor to finish (it records the end
/// after the network helper, cgroup and mountpoint are gone).
fn wait_supervisor(entry: &Entry, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(&entry.state, "supervisorPid", "supervisorStartTime") {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn container_alive(entry: &Entry) -> bool {
    entry.container_pid().is_some_and(|(pid, start)| start_time(pid) == Some(start))
}

/// `--stop`: SIGTERM, then SIGKILL after `time` (default: the container's
/// `--stop-timeout`); returns once its supervisor has cleaned up.
fn stop(entry: &Entry, time: Option<u64>) -> Result<()> {
    if !signal_container(entry, Signal::SIGTERM)? {
        return match entry.status() {
            Status::Starting => bail!("container {} is still starting", entry.name()),
            _ => Ok(()),
        };
    }
    let timeout =
        Duration::from_secs(time.or(entry.state["stopTimeout"].as_u64()).unwrap_or(10).min(1 << 32));
    let deadline = Instant::now() + timeout;
    while container_alive(entry) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if container_alive(entry) {
        signal_container(entry, Signal::SIGKILL)?;
    }
    if !wait_supervisor(entry, Duration::from_secs(30)) {
        bail!("the supervisor of container {} did not finish", entry.name());
    }
    Ok(())
}

/// `--remove`: the state; a running container only with `force` (killed
/// first); a gone one's leftovers (its cgroup, its mountpoint) too.
fn remove(entry: &Entry, force: bool) -> Result<()> {
    match entry.status() {
        Status::Running | Status::Starting if !force => {
            bail!("container {} is {}: stop it first, or give --force", entry.name(), entry.status().name())
        }
        Status::Running | Status::Starting => {
            signal_container(entry, Signal::SIGKILL)?;
            if !wait_supervisor(entry, Duration::from_secs(30)) {
                bail!("the supervisor of container {} did not finish", entry.name());
            }
        }
        Status::Gone => {
            // The supervisor was killed: the container died with it (its
            // parent-death signal), slirp4netns too (its exit fd); what only
            // the supervisor could remove is removed here.
            if container_alive(entry) {
                signal_container_anyway(entry);
            }
            let dirs: Vec<PathBuf> = entry.strings("cgroupDirs").into_iter().map(PathBuf::from).collect();
            if !dirs.is_empty() {
                crate::cgroups::remove_kept(&crate::cgroups::Kept { dirs, made_parents: Vec::new() })?;
            }
            if entry.state["mountpoint"].as_str().is_some_and(|m| Path::new(m).exists()) {
                let mut report = crate::cleanup::Report::default();
                crate::cleanup::remove_stale_mountpoints(Path::new("/tmp"), &mut report);
                if let Some((path, reason)) = report.failed.first() {
                    bail!("removing {}: {reason}", path.display());
                }
            }
        }
        Status::Exited => {}
    }
    std::fs::remove_dir_all(&entry.dir).with_context(|| format!("removing {}", entry.dir.display()))
}

fn signal_container_anyway(entry: &Entry) {
    if let Some((pid, start)) = entry.container_pid()
        && start_time(pid) == Some(start)
    {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// `--cleanup`'s part: the state of containers whose supervisor was killed.
pub fn remove_gone(report: &mut crate::cleanup::Report) {
    let Ok(root) = state_root() else { return };
    let Ok(all) = entries(&root) else { return };
    for entry in all.iter().filter(|e| e.status() == Status::Gone) {
        match remove(entry, false) {
            Ok(()) => report.removed.push(entry.dir.clone()),
            Err(err) => report.failed.push((entry.dir.clone(), format!("{err:#}"))),
        }
    }
}

/// `--logs`: what the container wrote, the rotated part first; with
/// `follow`, what it writes next, until its logger ends.
fn logs(entry: &Entry, follow: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if let Ok(bytes) = read_bounded(&entry.dir.join(OLD_LOG_FILE), LOG_CAP * 2) {
        let _ = out.write_all(&bytes);
    }
    let path = entry.dir.join(LOG_FILE);
    let open = || {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
    };
    let mut file = match open() {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !follow => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        loop {
            let n = file.read(&mut buffer).context("reading the log")?;
            if n == 0 {
                break;
            }
            if out.write_all(&buffer[..n]).and_then(|()| out.flush()).is_err() {
                return Ok(()); // the reader went (`| head`)
            }
        }
        if !follow {
            return Ok(());
        }
        // Rotated: the rest of the old file is read above; the new one next.
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.ino() != file.metadata().map_or(0, |f| f.ino())) {
            if let Ok(new) = open() {
                file = new;
                continue;
            }
        }
        if !alive(&entry.state, "loggerPid", "loggerStartTime") {
            // One more read: what it wrote last.
            let n = file.read(&mut buffer).unwrap_or(0);
            let _ = out.write_all(&buffer[..n]);
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `--exec`: `command` in the running container, with the namespaces,
/// cgroup and confinement of its first process (the OCI runtime's join).
fn exec(entry: &Entry, command: Vec<OsString>, tty: bool) -> Result<ExitState> {
    if entry.status() != Status::Running {
        bail!("container {} is not running ({})", entry.name(), entry.status_text());
    }
    let (pid, start) = entry.container_pid().ok_or_else(|| anyhow!("the container's state has no pid"))?;
    let saved = read_exec_spec(&entry.dir)?;
    let mut spec = ContainerSpec::new(Vec::new(), Vec::new());
    spec.process = crate::spec::Process { args: command, terminal: tty, ..saved.process };
    spec.seccomp = saved.seccomp;
    spec.memory_policy = saved.memory_policy;
    spec.stop_timeout = Duration::from_secs(saved.stop_timeout_secs);
    spec.stop_signal = saved.stop_signal.and_then(|n| Signal::try_from(n).ok());
    let dirs: Vec<PathBuf> = entry.strings("cgroupDirs").into_iter().map(PathBuf::from).collect();
    let target = crate::runtime::join::Target::open(pid, start, crate::runtime::Status::Running)?;
    let supervisor = crate::signals::Supervisor::block(spec.stop_timeout, spec.stop_signal)?;
    let mut spawned = crate::runtime::join::spawn(target, &dirs, &spec)?;
    let master = spawned.pty_master.take();
    if let Some(failure) = spawned.failure()? {
        return Err(crate::Error::Container(failure)).map_err(|e| anyhow!(ExecFailed(e)));
    }
    let mut terminal = master.map(crate::terminal::Terminal::attach).transpose()?;
    let ended = supervisor.wait_forwarding(spawned.pid, terminal.as_mut(), None)?;
    Ok(ended)
}

/// What `--exec` confines its process with: the container's first
/// process as it started (its user resolved, its environment, limits,
/// capabilities, seccomp program), saved once by the supervisor rather
/// than rebuilt later from a command line whose meaning can change (an
/// image's tag moved, a rootfs's /etc/passwd edited, another zookeeper).
#[derive(serde::Serialize, serde::Deserialize)]
struct ExecSpec {
    process: crate::spec::Process,
    seccomp: crate::spec::Seccomp,
    memory_policy: Option<crate::spec::MemoryPolicy>,
    stop_timeout_secs: u64,
    stop_signal: Option<i32>,
}

/// Writes `exec.json` for `spec`, its user resolved as the container's
/// start resolves it.
fn write_exec_spec(dir: &Path, spec: &ContainerSpec) -> Result<()> {
    let mut resolved = spec.clone();
    let rootfs = resolved
        .root
        .as_deref()
        .map(crate::rootfs::CheckedRootfs::open)
        .transpose()
        .map_err(|e| anyhow!("{e}"))?;
    crate::users::resolve(&mut resolved, rootfs.as_ref())?;
    let saved = ExecSpec {
        process: resolved.process,
        seccomp: resolved.seccomp,
        memory_policy: resolved.memory_policy,
        stop_timeout_secs: resolved.stop_timeout.as_secs(),
        stop_signal: resolved.stop_signal.map(|s| s as i32),
    };
    let text = serde_json::to_vec(&saved).context("writing what --exec needs")?;
    write_atomically(&dir.join(EXEC_FILE), &text, 0o600)
}

/// Reads `exec.json` back as hostile data: the state directory is the
/// caller's own, but what is in it is believed only as a regular file of
/// the caller's, reached without following a link, at most
/// [`EXEC_FILE_LIMIT`] long.
fn read_exec_spec(dir: &Path) -> Result<ExecSpec> {
    let path = dir.join(EXEC_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&path)
        .with_context(|| {
            format!("opening {} (a container started by an older zookeeper has none)", path.display())
        })?;
    let meta = file.metadata().with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() || meta.uid() != nix::unistd::geteuid().as_raw() || meta.len() > EXEC_FILE_LIMIT {
        bail!("{} is not a regular file of yours of at most {EXEC_FILE_LIMIT} bytes", path.display());
    }
    let mut bytes = Vec::new();
    file.take(EXEC_FILE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > EXEC_FILE_LIMIT {
        bail!("{} grew beyond {EXEC_FILE_LIMIT} bytes", path.display());
    }
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// An exec'd command that could not run, with its exit code (126, 127, 125).
#[derive(Debug)]
pub struct ExecFailed(pub crate::Error);

impl std::fmt::Display for ExecFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for ExecFailed {}
