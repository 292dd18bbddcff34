//! The kept user namespace: a rootless container's id maps installed once
//! per user instead of once per container (docs/keeper.md).
//!
//! newuidmap and newgidmap, the set-id helpers that grant a user the
//! subordinate ids of /etc/subuid and /etc/subgid, take about 1.3 ms of a
//! 5 ms start. So the first such container of a user starts a keeper: a
//! process that does nothing but hold a user namespace mapped once by the
//! helpers, with every id a container gets (the caller's own, the ranges)
//! as the same id in it. Later zookeepers make each container's own user
//! namespace inside it and write its maps themselves: whoever joins the
//! keeper's namespace (its owner may) holds CAP_SETUID there and may map
//! any of its ids, and the maps are the very text the helpers would have
//! installed. Every container keeps a user namespace of its own, so
//! containers are as separate from each other as before (podman, by
//! contrast, runs them all in its pause process's one namespace); every
//! file gets the host owner it had before, and a container reads the same
//! /proc/self/uid_map.
//!
//! The keeper is found through `keeper` in the caller's runtime directory
//! and checked before use: its pid and start time, its user namespace's
//! identity, owner and parent (the caller's own: never a container's
//! namespace), and its maps, which must still be what /etc/subuid and
//! /etc/subgid grant today. Whatever does not check out, or fails, falls
//! back to the helpers, with no error. It leaves after an idle time
//! ([`DEFAULT_IDLE`], `ZOOKEEPER_KEEPER_IDLE` seconds), and
//! `zookeeper --cleanup` stops it; containers running in its namespace keep
//! it alive without it.

use std::ffi::CString;
use std::io::Read as _;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::idmap::{IdMapPlan, IdRange, Map};
use crate::namespaces::Forked;
use crate::trace;

/// How long a keeper waits for a container to use it before it leaves.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(600);

/// What the keeper's process is called (comm: 15 bytes at most).
pub const KEEPER_NAME: &str = "zookeeper-keep";

/// argv[0] of the keeper's exec: the binary's entry point for it.
pub const KEEPER_ARGV0: &str = "zookeeper-keeper";

const STATE_FILE: &str = "keeper";
const LOCK_FILE: &str = "keeper.lock";
const STATE_MAGIC: &str = "zookeeper-keeper 1";

// ioctl(2)s of nsfs (linux/nsfs.h): _IO(0xb7, 2) and _IO(0xb7, 4).
const NS_GET_PARENT: libc::c_ulong = 0xb702;
const NS_GET_OWNER_UID: libc::c_ulong = 0xb704;

/// A keeper's user namespace, checked, held open: it stays usable even if
/// the keeper leaves meanwhile.
#[derive(Debug)]
pub(crate) struct Kept {
    ns: OwnedFd,
}

/// Whether a container with these maps can use a keeper: a user's own
/// subordinate ranges, which only the set-id helpers can grant.
pub(crate) fn applies(plan: &IdMapPlan) -> bool {
    !nix::unistd::geteuid().is_root() && plan.uid.helper.is_some() && plan.gid.helper.is_some()
}

/// The caller's keeper, found and checked, or started; `None` when neither
/// works (the caller then installs the maps with the helpers).
pub(crate) fn find_or_start(plan: &IdMapPlan) -> Option<Kept> {
    let dir = match keeper_dir() {
        Ok(dir) => dir,
        Err(err) => {
            trace::mark(&format!("keeper: no directory ({err:#})"));
            return None;
        }
    };
    let state_path = dir.join(STATE_FILE);
    if let Some(kept) = open_checked(&state_path, plan) {
        trace::mark("keeper found");
        return Some(kept);
    }
    // Only starting one is serialised: of fifty first containers, one
    // starts it and the others find it.
    let _lock = crate::sync::lock_exclusive(&dir.join(LOCK_FILE)).ok()?;
    if let Some(kept) = open_checked(&state_path, plan) {
        return Some(kept);
    }
    match start(&state_path, plan) {
        Ok(kept) => {
            trace::mark("keeper started");
            Some(kept)
        }
        Err(err) => {
            trace::mark(&format!("keeper: not started ({err:#})"));
            None
        }
    }
}

/// The directory of the keeper's files: `zookeeper` in $XDG_RUNTIME_DIR,
/// else in /run/user/UID, else /tmp/zookeeper-UID; made 0700 and checked to
/// be the caller's own and private (a planted file there could only name a
/// namespace that then fails the checks, but nobody else's files belong in
/// it).
fn keeper_dir() -> Result<PathBuf> {
    let uid = nix::unistd::geteuid().as_raw();
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute() && private_dir(dir, uid))
        .or_else(|| Some(PathBuf::from(format!("/run/user/{uid}"))).filter(|dir| private_dir(dir, uid)));
    let dir = match runtime {
        Some(runtime) => runtime.join("zookeeper"),
        None => PathBuf::from(format!("/tmp/zookeeper-{uid}")),
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err).with_context(|| format!("creating {}", dir.display())),
    }
    if !private_dir(&dir, uid) {
        bail!("{} is not a private directory of yours", dir.display());
    }
    Ok(dir)
}

/// A directory (not a link to one) of `uid`'s that nobody else may write.
fn private_dir(dir: &Path, uid: u32) -> bool {
    std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o022 == 0)
}

/// What the state file says: which process keeps which namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    pid: i32,
    start_time: u64,
    ns_dev: u64,
    ns_ino: u64,
}

impl State {
    fn text(&self) -> String {
        format!("{STATE_MAGIC} {} {} {} {}\n", self.pid, self.start_time, self.ns_dev, self.ns_ino)
    }

    fn parse(text: &str) -> Option<State> {
        let rest = text.strip_prefix(STATE_MAGIC)?.strip_suffix('\n')?;
        let fields: Vec<&str> = rest.split(' ').skip(1).collect();
        let [pid, start_time, ns_dev, ns_ino] = fields[..] else { return None };
        let state = State {
            pid: pid.parse().ok()?,
            start_time: start_time.parse().ok()?,
            ns_dev: ns_dev.parse().ok()?,
            ns_ino: ns_ino.parse().ok()?,
        };
        (state.pid > 1).then_some(state)
    }
}

/// The state file, opened without following a link, checked to be a small
/// regular file of the caller's, and read whole.
fn read_state(path: &Path) -> Option<(State, std::fs::File)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.uid() != nix::unistd::geteuid().as_raw() || meta.len() > 128 {
        return None;
    }
    let mut text = String::new();
    (&file).take(128).read_to_string(&mut text).ok()?;
    Some((State::parse(&text)?, file))
}

/// The keeper the state file names, if every check passes; its use is
/// marked on the file (its modification time), which keeps it from going
/// idle.
fn open_checked(state_path: &Path, plan: &IdMapPlan) -> Option<Kept> {
    let (state, file) = read_state(state_path)?;
    let ns = check(&state, plan).map_err(|err| trace::mark(&format!("keeper: {err:#}"))).ok()?;
    let now = nix::sys::time::TimeSpec::UTIME_NOW;
    let _ = nix::sys::stat::futimens(file.as_fd(), &now, &now);
    Some(Kept { ns })
}

/// Opens the user namespace of the process `state` names and checks that
/// it is the keeper's: the same process (its start time, before and after,
/// read through one /proc/PID directory, which goes stale if the pid is
/// reused), the same namespace, owned by the caller, a child of the
/// caller's own namespace (so never a container's, which are one level
/// deeper), with the maps `plan` would install.
fn check(state: &State, plan: &IdMapPlan) -> Result<OwnedFd> {
    let proc_dir = nix::fcntl::open(
        format!("/proc/{}", state.pid).as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("the keeper is gone")?;
    let start_time = || -> Result<u64> {
        let stat = read_at(&proc_dir, "stat", 1024)?;
        crate::runtime::parse_start_time(&stat).context("the keeper is gone")
    };
    if start_time()? != state.start_time {
        bail!("pid {} is another process now", state.pid);
    }
    let ns = nix::fcntl::openat(
        &proc_dir,
        "ns/user",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("opening the keeper's user namespace")?;
    let meta = nix::sys::stat::fstat(&ns).context("reading the keeper's user namespace")?;
    if (meta.st_dev, meta.st_ino) != (state.ns_dev, state.ns_ino) {
        bail!("the keeper's user namespace is another one");
    }
    let mut owner: libc::uid_t = 0;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t to the pointer, which points
    // at a live local of that type.
    if unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_OWNER_UID, &mut owner) } != 0
        || owner != nix::unistd::geteuid().as_raw()
    {
        bail!("the keeper's user namespace is not the caller's");
    }
    // SAFETY: NS_GET_PARENT takes no argument and returns a new descriptor
    // (or -1), which is owned here at once.
    let parent = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_PARENT) };
    if parent < 0 {
        bail!("the keeper's user namespace has no parent the caller can see");
    }
    // SAFETY: a descriptor the kernel just returned, owned by nothing else.
    let parent = unsafe { OwnedFd::from_raw_fd(parent) };
    let parent = nix::sys::stat::fstat(&parent).context("reading the keeper's parent namespace")?;
    let own = nix::sys::stat::stat("/proc/self/ns/user").context("reading zookeeper's user namespace")?;
    if (parent.st_dev, parent.st_ino) != (own.st_dev, own.st_ino) {
        bail!("the keeper's user namespace is not a child of the caller's");
    }
    let wanted = keeper_plan(plan);
    for (file, map) in [("uid_map", &wanted.uid), ("gid_map", &wanted.gid)] {
        if parse_map(&read_at(&proc_dir, file, 4096)?) != sorted(&map.ranges) {
            bail!("the keeper's {file} is not what the subordinate-id files grant now");
        }
    }
    if start_time()? != state.start_time {
        bail!("the keeper left while it was checked");
    }
    Ok(ns)
}

/// Reads at most `limit` bytes of a file under a /proc/PID directory.
fn read_at(dir: &OwnedFd, name: &str, limit: u64) -> Result<String> {
    let fd = nix::fcntl::openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .with_context(|| format!("opening the keeper's {name}"))?;
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(limit)
        .read_to_string(&mut text)
        .with_context(|| format!("reading the keeper's {name}"))?;
    Ok(text)
}

/// The ranges of a /proc/PID/uid_map text, as the reader's namespace sees
/// them, in order of their first inside id.
fn parse_map(text: &str) -> Vec<IdRange> {
    let ranges: Vec<IdRange> = text
        .lines()
        .filter_map(|line| {
            let mut numbers = line.split_whitespace().map(|n| n.parse::<u32>().ok());
            Some(IdRange { inside: numbers.next()??, outside: numbers.next()??, count: numbers.next()?? })
        })
        .collect();
    sorted(&ranges)
}

fn sorted(ranges: &[IdRange]) -> Vec<IdRange> {
    let mut ranges = ranges.to_vec();
    ranges.sort_by_key(|r| r.inside);
    ranges
}

/// The keeper's map: each host id the container would get is the same id
/// in the keeper's namespace. A container's map inside it is then the very
/// text newuidmap would have installed (its lower ids are the keeper's,
/// which are the host's), and the container reads its /proc/self/uid_map as
/// before. The keeper's namespace has no root of its own: nothing needs one.
fn identity(map: &Map) -> Map {
    let ranges = map.ranges.iter().map(|r| IdRange { inside: r.outside, outside: r.outside, count: r.count });
    Map { kind: map.kind, ranges: ranges.collect(), helper: map.helper.clone() }
}

fn keeper_plan(plan: &IdMapPlan) -> IdMapPlan {
    IdMapPlan { uid: identity(&plan.uid), gid: identity(&plan.gid), notice: None, setgroups_allowed: true }
}

/// Starts a keeper (under the lock) and records it; an older one the state
/// file names (whose maps are out of date) is stopped first.
fn start(state_path: &Path, plan: &IdMapPlan) -> Result<Kept> {
    stop_named(state_path);
    let idle = std::env::var("ZOOKEEPER_KEEPER_IDLE")
        .ok()
        .and_then(|secs| secs.parse::<u64>().ok())
        .map_or(DEFAULT_IDLE, Duration::from_secs);
    let argv = [
        CString::new(KEEPER_ARGV0)?,
        CString::new(state_path.as_os_str().as_encoded_bytes())?,
        CString::new(idle.as_secs().to_string())?,
    ];
    let exe = CString::new("/proc/self/exe")?;
    let (go_read, go_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating a pipe")?;
    let (pid_read, pid_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating a pipe")?;
    // The keeper is a grandchild, so that it is nobody's child once this
    // process goes (init or the caller's subreaper reaps it).
    // SAFETY: zookeeper is single-threaded here; the child only makes
    // system calls and leaves with _exit.
    let middle = match unsafe { nix::unistd::fork() }.context("forking")? {
        nix::unistd::ForkResult::Child => {
            drop((go_write, pid_read));
            let pid = match crate::namespaces::clone_into_namespaces(CloneFlags::CLONE_NEWUSER) {
                Ok(Forked::Child) => keeper_child(go_read, &exe, &argv),
                Ok(Forked::Parent(pid)) => pid.as_raw(),
                Err(_) => -1,
            };
            let _ = nix::unistd::write(&pid_write, &pid.to_ne_bytes());
            exit_now(0)
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop((go_read, pid_write));
    let mut bytes = [0u8; 4];
    let read = std::fs::File::from(pid_read).read_exact(&mut bytes);
    let _ = nix::sys::wait::waitpid(middle, None);
    read.context("starting the keeper: no pid")?;
    let pid = i32::from_ne_bytes(bytes);
    if pid <= 0 {
        bail!("starting the keeper: clone failed");
    }
    // From here, an error closes `go_write`: the keeper sees it and leaves.
    let wanted = keeper_plan(plan);
    wanted.start_install(pid)?.finish().context("mapping the keeper's ids")?;
    let start_time = crate::runtime::start_time(pid).context("the keeper died while starting")?;
    let ns = nix::fcntl::open(
        format!("/proc/{pid}/ns/user").as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("opening the keeper's user namespace")?;
    let meta = nix::sys::stat::fstat(&ns).context("reading the keeper's user namespace")?;
    let state = State { pid, start_time, ns_dev: meta.st_dev, ns_ino: meta.st_ino };
    // Recorded before it is released: the first thing it does is look for
    // its record, and it leaves if there is none.
    crate::runtime::write_atomically(state_path, state.text().as_bytes(), 0o600)
        .with_context(|| format!("recording the keeper in {}", state_path.display()))?;
    if let Err(err) = nix::unistd::write(&go_write, b"g") {
        let _ = std::fs::remove_file(state_path);
        return Err(err).context("releasing the keeper");
    }
    Ok(Kept { ns })
}

/// The keeper's process before its exec: in its new user namespace, which
/// the caller maps meanwhile; it waits for the word, then becomes the
/// keeper, holding nothing of the caller's (no descriptor, no terminal, no
/// environment).
fn keeper_child(go: OwnedFd, exe: &CString, argv: &[CString]) -> ! {
    let mut word = [0u8; 1];
    if !matches!(nix::unistd::read(&go, &mut word), Ok(1)) || word[0] != b'g' {
        exit_now(0);
    }
    let _ = nix::unistd::setsid();
    let _ = nix::unistd::chdir("/");
    if let Ok(null) = nix::fcntl::open("/dev/null", OFlag::O_RDWR, nix::sys::stat::Mode::empty()) {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors, which nothing in
            // this process uses any more.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    crate::exec::close_all_but(&mut Vec::new());
    let env: [CString; 0] = [];
    let _ = nix::unistd::execve(exe, argv, &env);
    exit_now(127)
}

fn exit_now(code: i32) -> ! {
    // SAFETY: _exit skips destructors and atexit handlers, which belong to
    // the parent's copy of this address space.
    unsafe { libc::_exit(code) }
}

/// Clones the container's first process with its new namespaces inside the
/// keeper's user namespace, and writes the maps the helpers would have.
///
/// A process of zookeeper's own (not zookeeper itself, which stays in the
/// host's user namespace, where its uids mean what they say) joins the
/// keeper's namespace, clones the container as zookeeper's child
/// (CLONE_PARENT), says its pid, writes its maps and leaves; zookeeper
/// goes on with its own set-up meanwhile and collects the outcome with
/// [`MapsPending::finish`] before it lets the container go. `Ok(None)`:
/// nothing was made, the caller clones as usual.
pub(crate) fn clone_in(kept: &Kept, flags: CloneFlags, plan: &IdMapPlan) -> Result<Option<KeptClone>> {
    let uid_map = plan.uid.proc_text();
    let gid_map = plan.gid.proc_text();
    let (report_read, report_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating a pipe")?;
    // SAFETY: zookeeper is single-threaded here; the child makes system
    // calls, clones, and leaves with _exit (its clone returns to the caller
    // as the container's first process, as clone_into_namespaces' does).
    let spawner = match unsafe { nix::unistd::fork() }.context("forking")? {
        nix::unistd::ForkResult::Child => {
            drop(report_read);
            let say = |value: i32| nix::unistd::write(&report_write, &value.to_ne_bytes()).is_ok();
            if nix::sched::setns(&kept.ns, CloneFlags::CLONE_NEWUSER).is_err() {
                say(-1);
                exit_now(0);
            }
            let pid = match crate::namespaces::clone_into_namespaces(flags | CloneFlags::CLONE_PARENT) {
                Ok(Forked::Child) => {
                    drop(report_write);
                    return Ok(Some(KeptClone::Child));
                }
                Ok(Forked::Parent(pid)) => pid.as_raw(),
                Err(_) => {
                    say(-1);
                    exit_now(0);
                }
            };
            say(pid);
            let written = std::fs::write(format!("/proc/{pid}/uid_map"), &uid_map)
                .and_then(|()| std::fs::write(format!("/proc/{pid}/gid_map"), &gid_map));
            say(written.err().map_or(0, |err| err.raw_os_error().unwrap_or(libc::EIO)));
            exit_now(0)
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop(report_write);
    let report = std::fs::File::from(report_read);
    let mut pending = MapsPending { spawner: Some(spawner), report };
    let Some(pid) = pending.read().filter(|pid| *pid > 0) else {
        trace::mark("keeper: not joined");
        pending.reap();
        return Ok(None);
    };
    Ok(Some(KeptClone::Parent { pid: Pid::from_raw(pid), maps: pending }))
}

/// Which side of [`clone_in`] this is.
pub(crate) enum KeptClone {
    /// The container's first process; it must exec or exit, never return.
    Child,
    /// zookeeper, with the container's pid; its maps are being written.
    Parent { pid: Pid, maps: MapsPending },
}

/// The spawner of [`clone_in`], still writing the container's maps.
pub(crate) struct MapsPending {
    spawner: Option<Pid>,
    report: std::fs::File,
}

impl MapsPending {
    fn read(&mut self) -> Option<i32> {
        let mut bytes = [0u8; 4];
        self.report.read_exact(&mut bytes).ok().map(|()| i32::from_ne_bytes(bytes))
    }

    fn reap(&mut self) {
        if let Some(spawner) = self.spawner.take() {
            let _ = nix::sys::wait::waitpid(spawner, None);
        }
    }

    /// Waits for the maps to be written (before the container may go on).
    pub(crate) fn finish(mut self) -> Result<()> {
        let outcome = self.read();
        self.reap();
        match outcome {
            Some(0) => Ok(()),
            Some(errno) => Err(anyhow!(std::io::Error::from_raw_os_error(errno)))
                .context("writing the container's id maps in the kept user namespace"),
            None => bail!("writing the container's id maps in the kept user namespace: the spawner died"),
        }
    }
}

impl Drop for MapsPending {
    fn drop(&mut self) {
        self.reap();
    }
}

/// Stops the keeper the state file names, if it is still that process, and
/// removes the file; what was stopped, for `--cleanup`.
fn stop_named(state_path: &Path) -> Option<i32> {
    let (state, _file) = read_state(state_path)?;
    let _ = std::fs::remove_file(state_path);
    // The same process (start time) in the keeper's namespace: not a
    // process that got its pid since.
    let ns = std::fs::metadata(format!("/proc/{}/ns/user", state.pid)).ok()?;
    if (ns.dev(), ns.ino()) != (state.ns_dev, state.ns_ino)
        || crate::runtime::start_time(state.pid) != Some(state.start_time)
    {
        return None;
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, state.pid, 0) };
    if pidfd < 0 {
        return None;
    }
    // SAFETY: a descriptor the kernel just returned, owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    // Checked again through the pidfd's process: the pid could have been
    // reused between the look and the open.
    if crate::runtime::start_time(state.pid) != Some(state.start_time) {
        return None;
    }
    // SAFETY: pidfd_send_signal with a live pidfd, no siginfo, no flags.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<u8>(),
            0,
        )
    };
    (sent == 0).then_some(state.pid)
}

/// `zookeeper --cleanup`: stops the caller's keeper; its pid if there was one.
pub fn stop() -> Option<i32> {
    let dir = keeper_dir().ok()?;
    let _lock = crate::sync::lock_exclusive(&dir.join(LOCK_FILE)).ok()?;
    stop_named(&dir.join(STATE_FILE))
}

/// The keeper's own life, after its exec (argv: [`KEEPER_ARGV0`], the
/// state file, the idle time in seconds): it holds its user namespace and
/// nothing else, and leaves once no container was started in it for the
/// idle time, or when the state file no longer names it.
pub fn keeper_main(args: &[std::ffi::OsString]) -> ! {
    let (Some(state_path), Some(idle)) = (args.get(1), args.get(2)) else { exit_now(2) };
    let state_path = PathBuf::from(state_path);
    let idle = Duration::from_secs(idle.to_str().and_then(|s| s.parse().ok()).unwrap_or(600));
    let _ = nix::sys::prctl::set_name(&CString::new(KEEPER_NAME).unwrap_or_default());
    // Not traceable by the caller's other processes, and no capability
    // over the containers' namespaces (which are its namespace's children)
    // that code could use: it runs none, and needs none to leave.
    let _ = nix::sys::prctl::set_dumpable(false);
    let _ = nix::sys::prctl::set_no_new_privs();
    for set in
        [caps::CapSet::Ambient, caps::CapSet::Inheritable, caps::CapSet::Effective, caps::CapSet::Permitted]
    {
        let _ = caps::clear(None, set);
    }
    for signal in [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGPIPE,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
    ] {
        // SAFETY: SIG_IGN for a signal that has no handler of ours.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
    let me = std::process::id() as i32;
    loop {
        let Some((state, file)) = read_state(&state_path) else { exit_now(0) };
        if state.pid != me {
            exit_now(0);
        }
        let last_use = file.metadata().and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
        drop(file);
        let idle_for = SystemTime::now().duration_since(last_use).unwrap_or_default();
        if idle_for >= idle {
            // Under the lock, so that a zookeeper starting a keeper does not
            // see this one's file vanish half-way.
            let lock = state_path.parent().map(|dir| crate::sync::lock_exclusive(&dir.join(LOCK_FILE)));
            if read_state(&state_path).is_some_and(|(s, f)| {
                s.pid == me && f.metadata().and_then(|m| m.modified()).is_ok_and(|m| m == last_use)
            }) {
                let _ = std::fs::remove_file(&state_path);
                exit_now(0);
            }
            drop(lock);
            continue;
        }
        std::thread::sleep(idle - idle_for);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_rejects_junk() {
        let state = State { pid: 1234, start_time: 99, ns_dev: 4, ns_ino: 4026531837 };
        assert_eq!(State::parse(&state.text()), Some(state));
        for junk in [
            "",
            "zookeeper-keeper 1 1234 99 4\n",
            "zookeeper-keeper 2 1234 99 4 5\n",
            "zookeeper-keeper 1 1 99 4 5\n",
            "zookeeper-keeper 1 -5 99 4 5\n",
            "zookeeper-keeper 1 12 99 4 5",
        ] {
            assert_eq!(State::parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn maps_read_back_as_ranges_and_the_keeper_maps_the_host_ids_to_themselves() {
        let r = |inside, outside, count| IdRange { inside, outside, count };
        let text = "         1     100000      65536\n         0       1000          1\n";
        assert_eq!(parse_map(text), [r(0, 1000, 1), r(1, 100000, 65536)]);
        let map = Map {
            kind: crate::idmap::IdKind::User,
            ranges: vec![r(0, 1000, 1), r(1, 100000, 65536)],
            helper: None,
        };
        assert_eq!(identity(&map).ranges, [r(1000, 1000, 1), r(100000, 100000, 65536)]);
    }
}
