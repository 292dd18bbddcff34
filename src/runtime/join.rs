//! `zookeeper-oci exec`: a new process in a running container, as runc
//! puts one there.
//!
//! zookeeper-oci (a subreaper meanwhile) forks a helper that joins the
//! container's namespaces by descriptor, user first, from
//! `/proc/<init pid>/ns/*` (the pid checked against state.json's start
//! time); zookeeper-oci puts it in the container's cgroup; the helper
//! forks the process (a pid namespace is entered only by a child), says its
//! pid and exits. The process is confined as the container's is
//! (`child::confine`: rlimits, seccomp, capabilities' five sets,
//! no_new_privs, user, umask, cwd) and execs with exactly the process's
//! environment. The README's rule holds: non-dumpable from before the
//! first setns to exec, no descriptor but 0-2 at exec (none of the host's
//! directories ever after the mount namespace is joined), its root and
//! cwd the container's (setns into a mount namespace moves both there).

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use nix::fcntl::{OFlag, openat};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};
use serde_json::Value;

use super::{ContainerDir, Global, Saved, Status, VerbArgs, write_atomically};
use crate::spec::ContainerSpec;
use crate::sync::{Failure, ReportTx, report_channel};

/// The namespaces joined, in this order: the user namespace first, so that
/// its root may join the others; the pid namespace last (it applies to the
/// children only).
const NAMESPACES: [(&str, CloneFlags); 8] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("time", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
    ("pid", CloneFlags::CLONE_NEWPID),
];

/// `exec`: runs the process in container `id`; its exit status (128+N for
/// signal N), 0 with `--detach`, 127 or 126 when the command cannot be run.
pub(super) fn exec(global: &Global, args: &VerbArgs, id: &str) -> Result<i32> {
    // Before anything of ours is opened (see preserved_fds).
    let preserve_fds = super::preserved_fds(args)?;
    let dir = ContainerDir::existing(global, id)?;
    // Held until the process is in the container: a delete or kill waits
    // for it (and then finds it among the container's processes), and an
    // exec after a delete finds nothing to join.
    let lock = dir.lock(id)?;
    let (saved, status) = dir.load_created(id)?;
    if !matches!(status, Status::Created | Status::Running) {
        bail!("cannot exec in a stopped container");
    }
    let console = args.value("--console-socket").map(std::path::PathBuf::from);
    let mut spec = process_spec(&dir, &saved, args)?;
    spec.process.preserve_fds = preserve_fds;
    match (spec.process.terminal, &console) {
        (true, None) => bail!("exec: a terminal needs --console-socket to hand it over"),
        (false, Some(_)) => bail!("exec: --console-socket is given but no terminal is asked for"),
        _ => {}
    }
    let cgroups = sub_cgroups(&saved.cgroup.dirs, &args.all("--cgroup"))?;
    let target = Target::open(saved.pid, saved.start_time, status)?;
    // Before the fork, so that no signal to forward is lost; the process
    // unblocks them all before exec.
    let supervisor = crate::signals::Supervisor::block(
        std::time::Duration::from_secs(crate::spec::DEFAULT_STOP_TIMEOUT_SECS),
        None,
    )?;
    let mut spawned = spawn(target, &cgroups, &spec)?;
    // In the container's cgroup and namespaces now: a delete or kill sees it.
    drop(lock);
    let pid = spawned.pid;
    if let (Some(master), Some(path)) = (spawned.pty_master.take(), &console) {
        super::send_console(path, master)?;
    }
    if let Some(failure) = spawned.failure()? {
        global.log.error(&failure.message);
        return Ok(failure.exit_code.into());
    }
    if let Some(pid_file) = args.value("--pid-file") {
        let pid_file = std::path::absolute(pid_file).context("finding the pid file")?;
        write_atomically(&pid_file, pid.as_raw().to_string().as_bytes(), 0o644)?;
    }
    if args.flag("--detach") {
        return Ok(0);
    }
    let ended = supervisor.wait_forwarding(pid, None, None)?;
    Ok(match ended {
        crate::status::ExitState::Exited(code) => code,
        crate::status::ExitState::Signaled(sig) => 128 + sig as i32,
    })
}

/// A process [`spawn`] put in a running container.
pub(crate) struct Spawned {
    /// On the caller's side of the pid namespace; the caller (a subreaper)
    /// reaps it.
    pub pid: Pid,
    /// With `spec.process.terminal`: the pty's master.
    pub pty_master: Option<OwnedFd>,
    report: Option<crate::sync::ReportRx>,
}

impl Spawned {
    /// Waits until the process has exec'd the command (`None`) or failed
    /// to (its failure: 126, 127, or 125 for its confinement; it is
    /// reaped then).
    pub(crate) fn failure(&mut self) -> Result<Option<Failure>> {
        let Some(report) = self.report.take() else { return Ok(None) };
        let failure = report.read_failure().context("reading the exec report")?;
        if failure.is_some() {
            let _ = waitpid(self.pid, None);
        }
        Ok(failure)
    }
}

/// Puts a new process into the running container `target` (its first
/// process's namespaces) and its cgroup `cgroup_dirs`, confined as `spec`
/// says, running `spec.process.args`. The caller becomes a subreaper (the
/// process is orphaned to it) and should block the signals it forwards
/// first; [`Spawned::failure`] then says whether the command runs.
pub(crate) fn spawn(
    target: Target,
    cgroup_dirs: &[std::path::PathBuf],
    spec: &ContainerSpec,
) -> Result<Spawned> {
    let argv = to_cstrings(&spec.process.args, "the command")?;
    let env = to_cstrings(&spec.process.env, "the environment")?;
    let (pty_parent, pty_child) = crate::terminal::master_channel(spec.process.terminal)?;
    let (go_rx, go_tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating the exec channels")?;
    let (pid_rx, pid_tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating the exec channels")?;
    let (report_tx, report_rx) = report_channel().context("creating the exec channels")?;
    // The process is orphaned when the helper exits: it comes to us.
    nix::sys::prctl::set_child_subreaper(true).context("becoming a subreaper")?;
    // SAFETY: zookeeper is single-threaded here, so the child's copy of the
    // address space holds no lock another thread would release; the child
    // only joins namespaces, forks and exits (helper never returns).
    let helper = match unsafe { nix::unistd::fork() }.context("forking the exec helper")? {
        ForkResult::Child => {
            drop((go_tx, pid_rx, report_rx, pty_parent));
            self::helper(Helper {
                target,
                go: go_rx,
                pid: pid_tx,
                report: report_tx,
                pty: pty_child,
                spec,
                argv,
                env,
            })
        }
        ForkResult::Parent { child } => child,
    };
    drop((go_rx, pid_tx, report_tx, pty_child, target));
    // The helper is put in the container's cgroup before it forks, so
    // that the process is born there.
    let placed = (|| -> Result<()> {
        for cgroup in cgroup_dirs {
            std::fs::write(cgroup.join("cgroup.procs"), helper.as_raw().to_string())
                .with_context(|| format!("joining the container's cgroup {}", cgroup.display()))?;
        }
        nix::unistd::write(&go_tx, b"G").context("releasing the exec helper")?;
        Ok(())
    })();
    drop(go_tx);
    let helper_status = waitpid(helper, None).context("waiting for the exec helper")?;
    placed?;
    let mut pid_bytes = Vec::new();
    std::fs::File::from(pid_rx).read_to_end(&mut pid_bytes).context("reading the process's pid")?;
    let pid = match <[u8; 4]>::try_from(pid_bytes.as_slice()) {
        Ok(bytes) => Pid::from_raw(i32::from_le_bytes(bytes)),
        // The helper failed before it forked, and says why on the report.
        Err(_) => {
            let failure = report_rx.read_failure().context("reading the exec report")?;
            return Err(match failure {
                Some(failure) => anyhow!("{}", failure.message),
                None => anyhow!("the exec helper ended without a word ({helper_status:?})"),
            });
        }
    };
    let pty_master = match &pty_parent {
        Some(socket) => crate::terminal::receive_master(socket)?,
        None => None,
    };
    Ok(Spawned { pid, pty_master, report: Some(report_rx) })
}

/// The process to run: `--process FILE` in place of the config's
/// `process`, or the config's with the command line's command, `--cwd`,
/// `--env`, `--user` and `--tty`; then converted as create converts the
/// whole config, the copy create kept in the state directory (so its
/// seccomp profile is compiled again from the very bytes create compiled).
fn process_spec(dir: &ContainerDir, saved: &Saved, args: &VerbArgs) -> Result<ContainerSpec> {
    let bundle = std::path::Path::new(&saved.bundle);
    // The copy create kept (a container created before it kept one: the bundle's).
    let kept = dir.path.join(super::CONFIG_FILE).exists();
    let bytes =
        crate::oci::read_config(if kept { &dir.path } else { bundle }).map_err(|err| anyhow!("{err}"))?;
    let mut config: Value = serde_json::from_slice(&bytes).context("reading the bundle's config.json")?;
    let command = &args.operands[1..];
    // Set in the process as runc sets them; a process file is taken as it is.
    for (option, what) in [
        ("--apparmor", "AppArmor profiles are not supported (runc too fails when the host has no AppArmor)"),
        (
            "--process-label",
            "SELinux labels are not supported (runc too refuses one when SELinux is disabled)",
        ),
    ] {
        if let Some(value) = args.value(option).filter(|v| !v.is_empty()) {
            bail!("exec {option} {value:?}: {what}");
        }
    }
    let process = match args.value("--process") {
        Some(path) => {
            if !command.is_empty() {
                bail!("exec: --process and a command on the command line exclude each other");
            }
            for option in ["--cap", "--additional-gids", "--no-new-privs"] {
                if args.flag(option) || args.value(option).is_some() {
                    bail!("exec: --process and {option} exclude each other (the process file says it)");
                }
            }
            let text = std::fs::read(path).with_context(|| format!("reading the process file {path}"))?;
            let mut process: Value =
                serde_json::from_slice(&text).with_context(|| format!("reading the process file {path}"))?;
            // A process file without capabilities runs with none, as under
            // runc (a whole config without them keeps all; an exec'd process
            // cannot gain what the container's bounding set took anyway).
            if process.is_object() && process.get("capabilities").is_none() {
                let none = serde_json::json!([]);
                process["capabilities"] = serde_json::json!({
                    "bounding": none, "effective": none, "inheritable": none, "permitted": none, "ambient": none
                });
            }
            process
        }
        None => {
            if command.is_empty() {
                bail!("exec: a command is needed (or --process FILE)");
            }
            let mut process = config["process"].clone();
            if !process.is_object() {
                bail!("exec: the bundle's config.json has no process");
            }
            process["args"] = serde_json::json!(command);
            if let Some(cwd) = args.value("--cwd") {
                process["cwd"] = Value::String(cwd.to_string());
            }
            let mut env: Vec<String> = process["env"]
                .as_array()
                .map(|e| e.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                .unwrap_or_default();
            for (name, value) in &args.values {
                if *name != "--env" {
                    continue;
                }
                let Some((key, _)) = value.split_once('=') else {
                    bail!("exec: --env {value:?}: KEY=VALUE expected");
                };
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
                env.push(value.clone());
            }
            process["env"] = serde_json::json!(env);
            if let Some(user) = args.value("--user") {
                let (uid, gid) = user.split_once(':').map_or((user, None), |(u, g)| (u, Some(g)));
                let number = |text: &str| -> Result<u32> {
                    text.parse().map_err(|_| anyhow!("exec: --user {user:?}: UID[:GID] in numbers expected"))
                };
                process["user"]["uid"] = Value::from(number(uid)?);
                process["user"]["gid"] = Value::from(gid.map(number).transpose()?.unwrap_or(0));
            }
            for gid in args.all("--additional-gids") {
                let gid: u32 = gid
                    .parse()
                    .map_err(|_| anyhow!("exec: --additional-gids {gid:?}: a group number expected"))?;
                match process["user"]["additionalGids"].as_array_mut() {
                    Some(gids) => gids.push(Value::from(gid)),
                    None => process["user"]["additionalGids"] = serde_json::json!([gid]),
                }
            }
            // runc's --cap: into bounding, effective and permitted, and
            // ambient when the process has an inheritable set (ambient
            // needs it). A process without capabilities has them all.
            let capabilities = &mut process["capabilities"];
            if capabilities.is_object() {
                for cap in args.all("--cap") {
                    let mut sets = vec!["bounding", "effective", "permitted"];
                    if capabilities["inheritable"].is_array() {
                        sets.push("ambient");
                    }
                    for set in sets {
                        match capabilities[set].as_array_mut() {
                            Some(list) => list.push(Value::from(cap)),
                            None => capabilities[set] = serde_json::json!([cap]),
                        }
                    }
                }
            }
            if args.flag("--no-new-privs") {
                process["noNewPrivileges"] = Value::Bool(true);
            }
            process["terminal"] = Value::Bool(false);
            process
        }
    };
    config["process"] = process;
    if args.flag("--tty") {
        config["process"]["terminal"] = Value::Bool(true);
    }
    let bytes = serde_json::to_vec(&config).context("writing the process's config")?;
    let parsed = crate::oci::parse_config(&bytes).map_err(|err| anyhow!("{err}"))?;
    crate::oci::convert(&parsed, bundle, &crate::oci::Host::current()).map_err(|err| anyhow!("{err}"))
}

/// The cgroup directories an exec'd process joins: the container's, or
/// with `--cgroup` (runc's syntax) existing sub-cgroups of them: `PATH` in
/// every hierarchy, or `CONTROLLER[,CONTROLLER...]:PATH` in those
/// controllers' hierarchies (the others stay the container's).
fn sub_cgroups(dirs: &[PathBuf], args: &[&str]) -> Result<Vec<PathBuf>> {
    // None, or `/` (contest's `--cgroup=/`): the container's own cgroup.
    if args.iter().all(|arg| !arg.contains(':') && arg.trim_start_matches('/').is_empty()) {
        return Ok(dirs.to_vec());
    }
    if dirs.is_empty() {
        bail!(
            "exec --cgroup: the container has no cgroup of its own (a user's container on cgroup v1 has none)"
        );
    }
    // A hierarchy's controllers: its directory's name under /sys/fs/cgroup
    // ("cpu,cpuacct"; "" for cgroup v2's single one).
    let controllers = |dir: &Path| -> Vec<String> {
        let name = dir.strip_prefix("/sys/fs/cgroup").ok().and_then(|rest| rest.iter().next());
        match name.and_then(|n| n.to_str()) {
            Some(name) if !crate::cgroups::is_v2_root() => name.split(',').map(String::from).collect(),
            _ => vec![String::new()],
        }
    };
    let mut chosen: Vec<Option<&str>> = vec![None; dirs.len()];
    for arg in args {
        match arg.split_once(':') {
            None if args.len() == 1 => chosen.iter_mut().for_each(|c| *c = Some(arg)),
            None => bail!("exec --cgroup {arg:?}: with several --cgroup each is CONTROLLER:PATH"),
            Some((list, path)) => {
                for controller in list.split(',') {
                    if controller.is_empty() {
                        bail!("exec --cgroup {arg:?}: an empty controller name");
                    }
                    let Some(index) =
                        dirs.iter().position(|d| controllers(d).iter().any(|c| c == controller))
                    else {
                        bail!(
                            "exec --cgroup {arg:?}: the container has no cgroup of controller {controller}"
                        );
                    };
                    if chosen[index].replace(path).is_some() {
                        bail!("exec --cgroup: controller {controller} is given twice");
                    }
                }
            }
        }
    }
    dirs.iter()
        .zip(chosen)
        .map(|(dir, sub)| {
            let Some(sub) = sub else { return Ok(dir.clone()) };
            // Within the container's cgroup, never above it.
            let relative = Path::new(sub.trim_start_matches('/'));
            if relative.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
                bail!("exec --cgroup {sub:?}: a path below the container's cgroup expected");
            }
            let path = dir.join(relative);
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => Ok(path),
                _ => bail!(
                    "exec --cgroup {sub:?}: no such cgroup {} (runc joins existing ones only)",
                    path.display()
                ),
            }
        })
        .collect()
}

/// The container's first process's namespaces that are not ours, held by
/// descriptors opened through its /proc directory, which was checked
/// (before and after) to be the process state.json names.
pub(crate) struct Target {
    namespaces: Vec<(&'static str, CloneFlags, OwnedFd)>,
    setgroups_allowed: bool,
}

impl Target {
    /// The namespaces of `pid`, which must still be the process that
    /// started at `start_time` (field 22 of its stat); `status` says whether
    /// it may still be at its gate (created) or is about to exec (running).
    pub(crate) fn open(pid: i32, start_time: u64, status: Status) -> Result<Target> {
        let stopped = || anyhow!("cannot exec in a stopped container");
        let proc_dir = nix::fcntl::open(
            format!("/proc/{pid}").as_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|_| stopped())?;
        // Read through the descriptor: a pid reused after the open would
        // show another start time, and a dead process's directory fails.
        let read = |name: &str| -> Option<String> {
            let fd =
                openat(proc_dir.as_fd(), name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).ok()?;
            let mut text = String::new();
            std::fs::File::from(fd).read_to_string(&mut text).ok()?;
            Some(text)
        };
        let stat = read("stat").ok_or_else(stopped)?;
        if super::parse_start_time(&stat) != Some(start_time) {
            return Err(stopped());
        }
        let mut namespaces = Vec::new();
        for (name, flag) in NAMESPACES {
            let path = format!("ns/{name}");
            let started = std::time::Instant::now();
            let fd = loop {
                let errno = match openat(
                    proc_dir.as_fd(),
                    path.as_str(),
                    OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => break fd,
                    Err(errno) => errno,
                };
                // A kill just before: its namespaces go before its /proc entry.
                if read("stat").is_none_or(|stat| exiting(&stat)) {
                    return Err(stopped());
                }
                // Until it execs the command, the first process runs
                // zookeeper's code, non-dumpable: only a caller privileged
                // over the host (not a user) may open its namespaces. Just
                // after start that is a moment (or the startContainer
                // hooks' time); before start, all the time.
                match (errno, status) {
                    (nix::errno::Errno::EACCES, Status::Running) if started.elapsed() < GATE_WAIT => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    (nix::errno::Errno::EACCES, Status::Created) => bail!(
                        "exec in a created container: its first process, held at the gate, can be joined only by root until start"
                    ),
                    (errno, _) => bail!("opening the container's {name} namespace: {errno}"),
                }
            };
            let theirs = nix::sys::stat::fstat(&fd).context("reading a namespace")?;
            let ours = nix::sys::stat::stat(format!("/proc/self/ns/{name}").as_str())
                .context("reading a namespace")?;
            if (theirs.st_dev, theirs.st_ino) != (ours.st_dev, ours.st_ino) {
                namespaces.push((name, flag, fd));
            }
        }
        let setgroups_allowed = read("setgroups").is_none_or(|text| text.trim() != "deny");
        // Still the same process once its namespaces are held.
        if read("stat").and_then(|stat| super::parse_start_time(&stat)) != Some(start_time) {
            return Err(stopped());
        }
        Ok(Target { namespaces, setgroups_allowed })
    }
}

/// How long exec waits for a started container's first process to exec
/// its command (it may be running startContainer hooks).
const GATE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A /proc/PID/stat line of a process that is exiting (PF_EXITING in its
/// flags) or has exited.
fn exiting(stat: &str) -> bool {
    const PF_EXITING: u64 = 0x4;
    let Some(after) = stat.rfind(')').map(|end| &stat[end + 1..]) else { return true };
    let fields: Vec<&str> = after.split_whitespace().collect();
    let state = fields.first().copied().unwrap_or("X");
    let flags = fields.get(6).and_then(|f| f.parse::<u64>().ok()).unwrap_or(PF_EXITING);
    matches!(state, "Z" | "X" | "x") || flags & PF_EXITING != 0
}

struct Helper<'a> {
    target: Target,
    go: OwnedFd,
    pid: OwnedFd,
    report: ReportTx,
    pty: Option<OwnedFd>,
    spec: &'a ContainerSpec,
    argv: Vec<CString>,
    env: Vec<CString>,
}

/// The helper: waits to be in the cgroup, joins the namespaces, forks the
/// process, sends its pid and exits.
fn helper(h: Helper) -> ! {
    let Helper { target, go, pid, report, pty, spec, argv, env } = h;
    let fail = |report: ReportTx, err: anyhow::Error| -> ! {
        report.send_failure(&Failure { exit_code: 125, message: format!("{err:#}") });
        exit_now(125)
    };
    // Before anything of the container's can see this process.
    if let Err(err) = nix::sys::prctl::set_dumpable(false) {
        fail(report, anyhow!("making the exec'd process non-dumpable: {err}"));
    }
    // execCPUAffinity: `initial` outside the container's cgroup, `final`
    // once in it (joining a cpuset moves a process to the cpuset's CPUs).
    let affinity = spec.process.exec_cpu_affinity.clone().unwrap_or_default();
    if let Some(cpus) = &affinity.initial {
        if let Err(err) = crate::child::set_cpu_affinity(cpus) {
            fail(report, err.context("execCPUAffinity.initial"));
        }
    }
    let mut byte = [0u8; 1];
    if !matches!(nix::unistd::read(&go, &mut byte), Ok(1)) {
        exit_now(125);
    }
    drop(go);
    match (&affinity.initial, &affinity.last) {
        (_, Some(cpus)) => {
            if let Err(err) = crate::child::set_cpu_affinity(cpus) {
                fail(report, err.context("execCPUAffinity.final"));
            }
        }
        // As runc: without an affinity of its own the process does not
        // inherit zookeeper-oci's (a caller pinned to one CPU, say), but
        // may run on every CPU its cpuset allows. A failure is no error
        // (runc warns): the process then runs where zookeeper-oci did.
        (None, None) => {
            let every: Vec<u32> = (0..nix::sched::CpuSet::count() as u32).collect();
            let _ = crate::child::set_cpu_affinity(&every);
        }
        (Some(_), None) => {}
    }
    if let Some(adj) = spec.process.oom_score_adj {
        // The host's /proc, still this process's view.
        if let Err(err) = std::fs::write("/proc/self/oom_score_adj", adj.to_string()) {
            fail(report, anyhow!("setting oom_score_adj: {err}"));
        }
    }
    let setgroups_allowed = target.setgroups_allowed;
    for (name, flag, fd) in target.namespaces {
        if let Err(errno) = nix::sched::setns(&fd, flag) {
            fail(report, anyhow!("joining the container's {name} namespace: {errno}"));
        }
    }
    // The namespaces' descriptors are closed (dropped above); nothing else
    // but stdio, the report, the pid channel, the pty socket and what the
    // caller hands on (`--preserve-fds`) stays.
    let preserve = spec.process.preserve_fds;
    let mut keep = vec![report.as_fd().as_raw_fd(), pid.as_raw_fd()];
    keep.extend(pty.as_ref().map(|p| p.as_raw_fd()));
    keep.extend((3..3 + preserve).map(|fd| fd as RawFd));
    crate::exec::close_all_but(&mut keep);
    crate::child::hand_on(preserve);
    // SAFETY: the helper is single-threaded (forked from a single-threaded
    // zookeeper-oci), so its child's copy of the address space holds no
    // lock another thread would release; the child execs or exits.
    match unsafe { nix::unistd::fork() } {
        // A pid namespace whose first process has died takes no more.
        Err(nix::errno::Errno::ENOMEM) => fail(report, anyhow!("cannot exec in a stopped container")),
        Err(err) => fail(report, anyhow!("forking the exec'd process: {err}")),
        Ok(ForkResult::Parent { child }) => {
            let _ = nix::unistd::write(&pid, &child.as_raw().to_le_bytes());
            exit_now(0)
        }
        Ok(ForkResult::Child) => {
            drop(pid);
            let failure = match in_container(spec, setgroups_allowed, pty.as_ref(), &report) {
                Ok(()) => {
                    crate::child::stall_for_tests();
                    crate::exec::exec_command(&argv, &env)
                }
                Err(err) => Failure { exit_code: 125, message: format!("{err:#}") },
            };
            let code = failure.exit_code.into();
            report.send_failure(&failure);
            exit_now(code)
        }
    }
}

/// The process, in the container's namespaces and cgroup: its session,
/// terminal, signals and confinement.
fn in_container(
    spec: &ContainerSpec,
    setgroups_allowed: bool,
    pty: Option<&OwnedFd>,
    report: &ReportTx,
) -> Result<()> {
    // Where setns into the mount namespace put it: the container's root.
    let cwd = nix::unistd::getcwd().context("finding the working directory")?;
    if !cwd.is_absolute() {
        bail!("the working directory is outside the container");
    }
    crate::child::reset_signals()?;
    nix::unistd::setsid().context("starting a new session")?;
    if let Some(socket) = pty {
        crate::terminal::make_controlling_pty(socket)?;
    }
    // Container root first (the caller's groups dropped where allowed),
    // as the container's first process is before its confinement.
    if setgroups_allowed {
        nix::unistd::setgroups(&[]).context("dropping supplementary groups")?;
    }
    let root = (nix::unistd::Uid::from_raw(0), nix::unistd::Gid::from_raw(0));
    nix::unistd::setresgid(root.1, root.1, root.1).context("becoming group root in the container")?;
    nix::unistd::setresuid(root.0, root.0, root.0).context("becoming root in the container")?;
    let rearm = || -> Result<()> {
        nix::sys::prctl::set_dumpable(false).context("making the exec'd process non-dumpable")?;
        if report.reader_gone() {
            bail!("zookeeper-oci ended while the process was starting");
        }
        Ok(())
    };
    rearm()?;
    crate::child::confine(spec, setgroups_allowed, &rearm)?;
    Ok(())
}

fn to_cstrings(items: &[std::ffi::OsString], what: &str) -> Result<Vec<CString>> {
    use std::os::unix::ffi::OsStrExt;
    items
        .iter()
        .map(|item| CString::new(item.as_bytes()).map_err(|_| anyhow!("{what} contains a NUL byte")))
        .collect()
}

fn exit_now(code: i32) -> ! {
    // SAFETY: _exit skips atexit handlers and destructors, which belong to
    // zookeeper-oci's copy of this address space.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exiting_processes_by_their_stat() {
        let stat = |state: &str, flags: u64| format!("7 (a (b) c) {state} 1 7 7 0 -1 {flags} 0 0");
        assert!(!exiting(&stat("S", 0x400100)));
        assert!(exiting(&stat("R", 0x400104)));
        assert!(exiting(&stat("Z", 0)));
        assert!(exiting("garbage"));
    }

    #[test]
    fn sub_cgroups_as_runc_spells_them() {
        let dirs =
            [PathBuf::from("/sys/fs/cgroup/pids/zk/c1"), PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/zk/c1")];
        assert_eq!(sub_cgroups(&dirs, &[]).unwrap(), dirs);
        let err = |args: &[&str]| format!("{:#}", sub_cgroups(&dirs, args).unwrap_err());
        assert!(err(&["nope:x"]).contains("no cgroup of controller nope"));
        assert!(err(&["pids:x", "pids:y"]).contains("given twice"));
        assert!(err(&["x", "y"]).contains("CONTROLLER:PATH"));
        assert!(err(&[":x"]).contains("empty controller"));
        assert!(err(&["cpuacct:../x"]).contains("below the container's cgroup"));
        assert!(err(&["pids:no-such-sub"]).contains("no such cgroup"));
        assert!(format!("{:#}", sub_cgroups(&[], &["x"]).unwrap_err()).contains("no cgroup of its own"));
        assert_eq!(sub_cgroups(&dirs, &["/"]).unwrap(), dirs);
        assert!(sub_cgroups(&[], &["/"]).unwrap().is_empty());
    }
}
