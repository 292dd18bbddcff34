//! The container's first process, from clone() to exec, in order: network
//! namespace, loopback, hostname and (for a user's rootfs) the root, /proc
//! and /sys (while the parent maps its ids), wait for the parent, become
//! root, the rest of the filesystem, signals, confinement, exec.

use std::ffi::CString;
use std::path::Path;

use anyhow::{Context, Result};
use nix::sys::signal::{SigHandler, SigSet, Signal, signal};
use nix::unistd::{Gid, Uid};

use crate::rootfs::{CheckedRootfs, RootSource};
use crate::spec::{ContainerSpec, MemoryPolicy, Scheduler, Seccomp, User};
use crate::sync::{ExitTx, Failure, Go, GoRx, PreparedTx, ReportTx};
use crate::trace;

/// What the child needs, all prepared before clone() so the child allocates
/// as little as possible.
pub struct ChildContext<'a> {
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    /// Where the child says its early set-up is over.
    pub prepared: PreparedTx,
    pub go: GoRx,
    pub report: ReportTx,
    /// With `--init`: where init sends the command's wait status.
    pub exit_report: Option<ExitTx>,
    pub setup: Setup<'a>,
}

/// The child's own set-up steps' inputs, known before clone().
pub struct Setup<'a> {
    pub spec: &'a ContainerSpec,
    /// The user's rootfs as the parent checked it (`-r`).
    pub rootfs: Option<&'a CheckedRootfs>,
    /// Where the container's root is built.
    pub mountpoint: &'a Path,
    /// With a terminal: where the pty's master goes to the parent.
    pub pty_socket: Option<std::os::fd::OwnedFd>,
    /// Without one: the pipes that replace the caller's terminals in 0, 1
    /// and 2 (src/stdio.rs).
    pub stdio: Option<crate::stdio::ChildStdio>,
    /// The OCI runtime's `create`: the exec gate's FIFO, read end, at which
    /// the process waits fully set up until `start` writes to it.
    pub gate: Option<std::os::fd::OwnedFd>,
}

/// Runs the child to exec; on any failure, reports it to the parent and exits.
pub fn run(ctx: ChildContext) -> ! {
    let ChildContext { argv, env, prepared, mut go, report, exit_report, setup } = ctx;
    // If zookeeper dies, so does the container (and with it every process
    // of its pid namespace). Set before waiting: a parent that died earlier
    // shows as end-of-file on the go channel.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if let Err(err) = set_up_early(&setup) {
        // Said at once (the parent must not set up a network for a child
        // that may not have its own network namespace), but the child stays
        // until the parent lets go: the id-map helpers must find it alive,
        // or their failure would hide this one.
        drop(prepared);
        report.send_failure(&Failure { exit_code: 125, message: format!("{err:#}") });
        let _ = go.wait_for_go();
        exit_now(125);
    }
    prepared.send_prepared();
    let mut go_channel = go;
    let Some(go) = go_channel.wait_for_go() else {
        // The parent failed its set-up and reports why itself.
        exit_now(125);
    };
    let go_pid = go.pid;
    let failure = match (set_up(&setup, &go, &report, go_channel), exit_report) {
        (Ok(()), Some(exit_report)) => crate::init::run(&argv, &env, report, exit_report),
        (Ok(()), None) => match &setup.gate {
            Some(gate) => {
                let hooks = &setup.spec.hooks.start_container;
                let state = crate::hooks::state_json(&setup.spec.identity, go_pid, "created");
                let preserve = setup.spec.process.preserve_fds;
                crate::exec::wait_at_gate(&argv, &env, gate, report, (hooks, &state), preserve)
            }
            None => crate::exec::exec_command(&argv, &env),
        },
        (Err(err), _) => Failure { exit_code: 125, message: format!("{err:#}") },
    };
    report.send_failure(&failure);
    exit_now(failure.exit_code.into())
}

/// What the child does while the parent installs its id maps: what needs
/// only the capabilities a new user namespace gives its first process, and
/// no id of it mapped.
fn set_up_early(setup: &Setup) -> Result<()> {
    let spec = setup.spec;
    crate::namespaces::enter_early(&spec.namespaces)?;
    // Here, while the process is still dumpable: a non-dumpable one's
    // /proc/self/timens_offsets belongs to the host's root.
    crate::namespaces::enter_time_namespace(&spec.namespaces.time, &spec.time_offsets)?;
    match &spec.namespaces.uts {
        crate::spec::Namespace::New if !spec.hostname.is_empty() => {
            nix::unistd::sethostname(&spec.hostname).context("setting the hostname")?;
        }
        // The containers of a Kubernetes pod join its sandbox's uts
        // namespace and name the pod's hostname (containerd's CRI plugin
        // writes both): the name it already has is no change. Another name
        // would rename every process of that namespace, which runc does and
        // zookeeper refuses.
        crate::spec::Namespace::Join(path) if !spec.hostname.is_empty() => {
            let current =
                nix::unistd::gethostname().context("reading the joined uts namespace's hostname")?;
            if current.as_os_str() != std::ffi::OsStr::new(&spec.hostname) {
                anyhow::bail!(
                    "the hostname {:?} is not {:?}, the name of the joined uts namespace {}: setting it would rename every process in that namespace",
                    spec.hostname,
                    current,
                    path.display()
                );
            }
        }
        _ => {}
    }
    if spec.namespaces.uts == crate::spec::Namespace::New && !spec.domainname.is_empty() {
        crate::namespaces::set_domainname(&spec.domainname)?;
    }
    trace::mark("child: network namespace, loopback, hostname");
    let source = root_source(setup);
    if crate::rootfs::mounts_early(source, setup.spec) {
        crate::rootfs::mount_root(source, setup.mountpoint, setup.spec)?;
        trace::mark("child: root, /proc and /sys mounted");
    }
    Ok(())
}

fn root_source<'a>(setup: &Setup<'a>) -> RootSource<'a> {
    match setup.rootfs {
        Some(rootfs) => RootSource::Dir(rootfs),
        None => RootSource::HostSystem,
    }
}

/// Everything between the parent's go and exec, in order. The confinement
/// comes last: it takes away the rights the earlier steps need.
fn set_up(setup: &Setup, go: &Go, report: &ReportTx, go_channel: crate::sync::GoRx) -> Result<()> {
    let spec = setup.spec;
    trace::mark("child: go");
    // Kept only while a network is to follow (the exec gate's path closes
    // every descriptor it does not name, this one among them).
    let go_channel = go.network_follows.then_some(go_channel);
    // From here to exec the process runs zookeeper's code among what will
    // be the container's files, holding the supervisor's descriptors:
    // nothing may trace it or open its /proc/PID/{fd,mem,exe,...}. Its
    // memory was made on the host, so non-dumpable asks for a capability
    // over the host's user namespace, which nothing in a container has.
    // (Not before go: newuidmap checks /proc/PID's owner, which a
    // non-dumpable process hides.) exec makes the command dumpable again,
    // as every program is.
    nix::sys::prctl::set_dumpable(false).context("making the container's first process non-dumpable")?;
    // Read while /proc/self/cgroup still shows the host's paths.
    let cgroups = crate::rootfs::cgroup_view(spec)?;
    match &spec.namespaces.cgroup {
        crate::spec::Namespace::New => crate::namespaces::enter_cgroup_namespace()?,
        crate::spec::Namespace::Join(path) => crate::namespaces::join_cgroup_namespace(path)?,
        crate::spec::Namespace::Host => {}
    }
    become_root(go.setgroups_allowed)?;
    after_credential_change(report)?;
    trace::mark("child: identity");
    // Once container root is mapped: the kernel lets only a mapped root
    // write the ipc ones.
    crate::namespaces::write_sysctls(&spec.sysctl, &spec.namespaces)?;
    let source = root_source(setup);
    if !crate::rootfs::mounts_early(source, spec) {
        crate::rootfs::mount_root(source, setup.mountpoint, spec)?;
    }
    let dns = crate::network::dns_forwarder(spec.network);
    if let Some(adj) = spec.process.oom_score_adj {
        // Through the host's /proc, still this process's view before pivot.
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).context("setting oom_score_adj")?;
    }
    let hooks = &spec.hooks;
    let state = || crate::hooks::state_json(&spec.identity, go.pid, "created");
    crate::rootfs::enter(source, setup.mountpoint, dns, spec, &cgroups, || {
        match hooks.create_container.is_empty() {
            true => Ok(()),
            false => crate::hooks::run(&hooks.create_container, "createContainer", &state()),
        }
    })?;
    trace::mark("child: filesystem");
    // Held at an exec gate (the OCI runtime's create), they run once start
    // has opened it, as runc runs them (exec.rs, wait_at_gate).
    if !hooks.start_container.is_empty() && setup.gate.is_none() {
        crate::hooks::run(&hooks.start_container, "startContainer", &state())?;
    }
    reset_signals()?;
    close_inherited_fds(spec.process.preserve_fds);
    // Its own session: no controlling terminal shared with the caller, so
    // nothing in the container can signal or steer the caller's terminal.
    nix::unistd::setsid().context("starting a new session")?;
    if let Some(socket) = &setup.pty_socket {
        crate::terminal::make_controlling_pty(socket)?;
    }
    if let Some(stdio) = &setup.stdio {
        stdio.attach()?;
    }
    if let Some(gate) = &setup.gate {
        // It waits at the gate under the container's seccomp filter, which
        // may deny close_range (runtime-tools' deny-by-default profile
        // does): what it must not hold is closed now, create's lock on the
        // state directory among it (a start or delete would wait for it).
        use std::os::fd::AsRawFd;
        let mut keep: Vec<std::os::fd::RawFd> = (3..3 + spec.process.preserve_fds as i32).collect();
        keep.extend([gate.as_raw_fd(), report.as_fd().as_raw_fd()]);
        crate::exec::close_all_but(&mut keep);
    }
    confine(spec, go.setgroups_allowed, &|| after_credential_change(report))?;
    // The network helper started while this process set itself up; the
    // command finds eth0 configured from its first instruction.
    if go_channel.is_some_and(|channel| !channel.wait_for_network()) {
        // The parent failed to bring it up, and says why itself.
        exit_now(125);
    }
    trace::mark("child: confined, exec");
    Ok(())
}

/// The process's own limits, identity and confinement, in the order the
/// kernel allows: what needs container root's capabilities first.
/// `after_change` runs after a change of user (which resets the dumpable
/// flag and the parent-death signal): the container's first process and
/// `zookeeper-oci exec` (runtime/exec.rs) re-arm different things.
pub(crate) fn confine(
    spec: &ContainerSpec,
    setgroups_allowed: bool,
    after_change: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let process = &spec.process;
    // Before the capabilities go: a real-time class or policy, or a
    // negative nice, needs CAP_SYS_ADMIN or CAP_SYS_NICE.
    if let Some(policy) = &spec.memory_policy {
        set_memory_policy(policy)?;
    }
    if let Some(scheduler) = &process.scheduler {
        set_scheduler(scheduler)?;
    }
    if let Some(priority) = process.io_priority {
        set_io_priority(priority)?;
    }
    for limit in &process.rlimits {
        let value = libc::rlimit { rlim_cur: limit.soft, rlim_max: limit.hard };
        // SAFETY: setrlimit reads the struct, which outlives the call.
        if unsafe { libc::setrlimit(limit.resource as _, &value) } != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| {
                format!("setting resource limit {} to {}:{}", limit.resource, limit.soft, limit.hard)
            });
        }
    }
    // Without no_new_privs the kernel loads a filter only for a holder of
    // CAP_SYS_ADMIN, which container root has until the sets below: load
    // it now, as runc does.
    if !process.no_new_privileges {
        install_seccomp(&spec.seccomp)?;
    }
    crate::capabilities::limit_bounding(process.capabilities.bounding)?;
    let user = &process.user;
    if (user.uid, user.gid) != (0, 0) || !user.additional_gids.is_empty() {
        switch_user(user, setgroups_allowed, after_change)?;
    }
    if process.cwd != "/" {
        nix::unistd::chdir(process.cwd.as_str())
            .with_context(|| format!("entering the working directory {}", process.cwd))?;
    }
    crate::capabilities::set(&process.capabilities)?;
    if let Some(mask) = user.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    if process.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().context("setting no_new_privs")?;
        install_seccomp(&spec.seccomp)?;
    }
    Ok(())
}

/// set_mempolicy(2): the policy this process and its children allocate by.
fn set_memory_policy(policy: &MemoryPolicy) -> Result<()> {
    const WORD: usize = libc::c_ulong::BITS as usize;
    let mut mask = [0 as libc::c_ulong; 1024 / WORD];
    for &node in &policy.nodes {
        let slot = mask.get_mut(node as usize / WORD).context("a memory node beyond 1023")?;
        *slot |= 1 << (node as usize % WORD);
    }
    // SAFETY: the kernel reads maxnode - 1 bits of mask, which holds 1024;
    // nothing is written.
    let done = unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            policy.mode,
            mask.as_ptr(),
            (mask.len() * WORD + 1) as libc::c_ulong,
        )
    };
    if done != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| {
            format!("setting the memory policy (mode {:#x}, nodes {:?})", policy.mode, policy.nodes)
        });
    }
    Ok(())
}

/// The kernel's struct sched_attr (sched_setattr(2)), its first version.
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

fn set_scheduler(scheduler: &Scheduler) -> Result<()> {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: scheduler.policy,
        flags: scheduler.flags,
        nice: scheduler.nice,
        priority: scheduler.priority,
        runtime: scheduler.runtime,
        deadline: scheduler.deadline,
        period: scheduler.period,
    };
    // SAFETY: the kernel reads attr.size bytes of attr, which outlives the call.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| {
            format!("setting the scheduler (policy {}, nice {})", scheduler.policy, scheduler.nice)
        });
    }
    Ok(())
}

fn set_io_priority(priority: u16) -> Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: ioprio_set takes numbers only.
    if unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, libc::c_int::from(priority)) } != 0
    {
        return Err(std::io::Error::last_os_error()).with_context(|| {
            format!("setting the I/O priority (class {}, level {})", priority >> 13, priority & 7)
        });
    }
    Ok(())
}

/// sched_setaffinity(2) of this process to `cpus`.
pub(crate) fn set_cpu_affinity(cpus: &[u32]) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for &cpu in cpus {
        set.set(cpu as usize).with_context(|| format!("cpu {cpu} is beyond the kernel's cpu set"))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("setting the CPU affinity to {cpus:?}"))
}

fn install_seccomp(seccomp: &Seccomp) -> Result<()> {
    match seccomp {
        Seccomp::Builtin => crate::seccomp::install(),
        Seccomp::BuiltinAllowingSetid => {
            crate::seccomp::install_program(crate::seccomp::PROGRAM_ALLOWING_SETID)
        }
        Seccomp::Program(program) => crate::seccomp::install_program(program),
        Seccomp::Unconfined => Ok(()),
    }
}

/// From container root to the process's user: groups first (setgroups
/// needs a range: a one-id map denies it), capabilities kept across the
/// change (capabilities::set then narrows them).
fn switch_user(user: &User, setgroups_allowed: bool, after_change: &dyn Fn() -> Result<()>) -> Result<()> {
    if setgroups_allowed {
        let groups: Vec<Gid> = user.additional_gids.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&groups).context("setting the supplementary groups")?;
    } else if !user.additional_gids.is_empty() {
        anyhow::bail!(
            "supplementary groups need a subordinate id range: this user namespace maps one id and denies setgroups"
        );
    }
    nix::sys::prctl::set_keepcaps(true).context("keeping capabilities across the user change")?;
    // EINVAL: the id has no mapping (a one-id map has only root).
    let unmapped = |what: &'static str, id: u32| {
        move |err: nix::errno::Errno| match err {
            nix::errno::Errno::EINVAL => {
                anyhow::anyhow!(
                    "{what} {id} is not mapped in this container (without a subordinate range only root is)"
                )
            }
            err => anyhow::Error::new(err).context(format!("becoming {what} {id} in the container")),
        }
    };
    let gid = Gid::from_raw(user.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(unmapped("group", user.gid))?;
    let uid = Uid::from_raw(user.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(unmapped("user", user.uid))?;
    nix::sys::prctl::set_keepcaps(false).context("keeping capabilities across the user change")?;
    after_change()
}

/// Takes the container's root identity, now that the parent has mapped it,
/// and drops the caller's supplementary groups where the kernel allows.
fn become_root(setgroups_allowed: bool) -> Result<()> {
    let root = (Uid::from_raw(0), Gid::from_raw(0));
    if setgroups_allowed {
        nix::unistd::setgroups(&[]).context("dropping supplementary groups")?;
    }
    nix::unistd::setresgid(root.1, root.1, root.1).context("becoming group root in the container")?;
    nix::unistd::setresuid(root.0, root.0, root.0).context("becoming root in the container")?;
    stall_for_tests();
    Ok(())
}

/// A credential change clears the parent-death signal and may reset the
/// dumpable flag: both set again, and since a parent that died in between
/// sent no signal, its channel is checked.
fn after_credential_change(report: &ReportTx) -> Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).context("setting the parent-death signal")?;
    nix::sys::prctl::set_dumpable(false).context("making the container's first process non-dumpable")?;
    if report.reader_gone() {
        anyhow::bail!("zookeeper ended while the container was starting");
    }
    Ok(())
}

/// Debug builds only, for tests/security.rs: `ZOOKEEPER_TEST_STALL_MS`
/// holds the child this long between its credential change and re-arming
/// the parent-death signal, the window a killed zookeeper must not slip
/// through. Release builds have no such hook.
pub(crate) fn stall_for_tests() {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var_os("ZOOKEEPER_TEST_STALL_MS").and_then(|v| v.to_str()?.parse().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// The command starts with every signal at its default action and none
/// blocked, as under docker: not with zookeeper's blocked set, nor with the
/// SIGPIPE that Rust's runtime ignores.
pub(crate) fn reset_signals() -> Result<()> {
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler, so nothing can run concurrently.
        unsafe { signal(sig, SigHandler::SigDfl) }.with_context(|| format!("resetting {sig}"))?;
    }
    SigSet::empty().thread_set_mask().context("unblocking signals")?;
    Ok(())
}

/// No descriptor of zookeeper's (nor any the caller leaked to it) may reach
/// the command; 0, 1 and 2 are the container's stdio, and 3..3+`preserve`
/// what the caller hands on (`--preserve-fds`, checked open before
/// zookeeper opened anything, so none of its own has those numbers).
fn close_inherited_fds(preserve: u32) {
    hand_on(preserve);
    // SAFETY: close_range only marks descriptors close-on-exec; the report
    // channel stays open until the exec succeeds, which is what we want.
    unsafe { libc::close_range(3 + preserve, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) };
}

/// Descriptors 3..3+`count` stay open across exec.
pub(crate) fn hand_on(count: u32) {
    for fd in 3..3 + count {
        // SAFETY: clears one descriptor's close-on-exec flag; no memory is passed.
        unsafe { libc::fcntl(fd as libc::c_int, libc::F_SETFD, 0) };
    }
}

fn exit_now(code: i32) -> ! {
    // SAFETY: _exit skips atexit handlers and destructors, which belong to
    // the parent's copy of this address space (e.g. the mountpoint's Drop).
    unsafe { libc::_exit(code) }
}
