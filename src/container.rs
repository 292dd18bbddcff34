//! One container's life, in the order it happens: describe -> spawn ->
//! parent sets up -> child sets up and execs -> wait -> clean up.

use std::ffi::{CString, OsString};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;

use anyhow::{Context, anyhow};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::{Pid, Uid};

use crate::cgroups::ContainerCgroup;
use crate::child::{self, ChildContext, Setup};
use crate::error::Error;
use crate::idmap::IdMapPlan;
use crate::namespaces::{Forked, clone_into_namespaces};
use crate::network::Slirp4netns;
use crate::rootfs::{CheckedRootfs, Mountpoint};
use crate::signals::{Supervisor, reap};
use crate::spec::{ContainerSpec, IdMaps, Network};
use crate::status::ExitState;
use crate::sync::{Go, exit_channel, go_channel, prepared_channel, report_channel};
use crate::terminal::Terminal;
use crate::trace;

/// Runs the container described by `spec` to its end and cleans up after it.
pub fn run(spec: &ContainerSpec) -> Result<ExitState, Error> {
    run_observed(spec, &mut |_| Ok(()))
}

/// What a running container holds on the host, for a detached container's
/// state (src/detach.rs).
#[derive(Debug, Clone)]
pub struct Running {
    /// The first process, on the host's side of the pid namespace.
    pub pid: i32,
    /// Its cgroup, one directory per hierarchy.
    pub cgroup_dirs: Vec<std::path::PathBuf>,
    /// `/tmp/zoo.XXXXXX`, while a network helper keeps files in it.
    pub mountpoint: Option<std::path::PathBuf>,
    /// slirp4netns's pid.
    pub helper_pid: Option<i32>,
}

/// [`run`], calling `on_running` once the command runs (a failure of it
/// takes the container down).
pub fn run_observed(
    spec: &ContainerSpec,
    on_running: &mut dyn FnMut(&Running) -> anyhow::Result<()>,
) -> Result<ExitState, Error> {
    match launch(spec, None, on_running)? {
        Launched::Ended(state) => Ok(state),
        Launched::Created(_) => unreachable!("a foreground container is waited for"),
    }
}

/// A container left at its exec gate by [`create`]: its first process
/// waits, fully set up, until something writes to the gate.
#[derive(Debug)]
pub struct Created {
    /// The first process, on the caller's side of the pid namespace.
    pub pid: i32,
    /// The cgroup it was put in, left to the runtime's `delete`.
    pub cgroup: crate::cgroups::Kept,
    /// With `process.terminal`: the pty's master, for the caller's console
    /// socket.
    pub pty_master: Option<std::os::fd::OwnedFd>,
}

/// The OCI runtime's `create`: everything [`run`] does up to the exec,
/// after which the container's first process waits at `gate` (the read end
/// of a FIFO, opened non-blocking: see `child::wait_at_gate`) instead of
/// running the command. No network helper, no supervision, no terminal
/// relay: the caller (conmon, containerd's shim) is the process's reaper.
pub fn create(spec: &ContainerSpec, gate: std::os::fd::OwnedFd) -> Result<Created, Error> {
    match launch(spec, Some(gate), &mut |_| Ok(()))? {
        Launched::Created(created) => Ok(created),
        Launched::Ended(_) => unreachable!("a created container is not waited for"),
    }
}

enum Launched {
    Ended(ExitState),
    Created(Created),
}

fn launch(
    spec: &ContainerSpec,
    gate: Option<std::os::fd::OwnedFd>,
    on_running: &mut dyn FnMut(&Running) -> anyhow::Result<()>,
) -> Result<Launched, Error> {
    let detached = gate.is_some();
    crate::network::reap_dying();
    if detached && (spec.init || spec.network != Network::LoopbackOnly) {
        return Err(anyhow!("a created container has no --init and no network helper").into());
    }
    let rootfs = spec.root.as_deref().map(CheckedRootfs::open).transpose()?;
    let mut spec = ContainerSpec { root: rootfs.as_ref().map(|r| r.path.clone()), ..spec.clone() };
    crate::users::resolve(&mut spec, rootfs.as_ref())?;
    let spec = &spec;
    let argv = to_cstrings(&spec.process.args, "the command")?;
    let env = to_cstrings(&spec.process.env, "the environment")?;
    trace::mark("described");
    // The id maps are worked out before clone: with the caller's keeper
    // (src/keeper.rs) they are installed as part of it. Found (or started)
    // before zookeeper may move into a delegated cgroup scope, which a
    // keeper started from there would keep from going.
    let ids = match (&spec.namespaces.user, &spec.id_maps) {
        (crate::spec::Namespace::New, IdMaps::Auto) => Some(IdMapPlan::for_current_caller()),
        (crate::spec::Namespace::New, IdMaps::Explicit { uid, gid }) => {
            Some(IdMapPlan::explicit(uid.clone(), gid.clone()).context("installing the id maps")?)
        }
        _ => None,
    };
    trace::mark("id maps planned");
    let kept = match &ids {
        Some(ids)
            if spec.keeper
                && spec.id_maps == IdMaps::Auto
                && spec.namespaces.pid == crate::spec::Namespace::New
                && crate::keeper::applies(ids) =>
        {
            crate::keeper::find_or_start(ids)
        }
        _ => None,
    };

    // Only what must precede clone() comes first: everything else the
    // parent prepares while the id-map helpers run (see below).
    crate::cgroups::prepare(&spec.resources)?;
    // Before clone: the child mounts the root on it while the helpers run.
    let mountpoint = Mountpoint::create()?;
    let mountpoint_path = mountpoint.path().to_owned();
    trace::mark("mountpoint created");
    let supervisor = Supervisor::block(spec.stop_timeout, spec.stop_signal)?;
    let (prepared_tx, prepared_rx) = prepared_channel().context("creating the preparation channel")?;
    let (mut go_tx, go_rx) = go_channel().context("creating the set-up channel")?;
    let (report_tx, report_rx) = report_channel().context("creating the report channel")?;
    let (pty_parent, pty_child) = crate::terminal::master_channel(spec.process.terminal)?;
    // Without a pty, a terminal among zookeeper's stdio reaches the
    // container as a pipe that zookeeper relays (src/stdio.rs); the modes
    // are put back when this guard goes, after the container.
    let (_saved_modes, mut relay, child_stdio) = match spec.process.terminal || detached {
        true => (None, None, None),
        false => match crate::stdio::pipe_terminals()? {
            Some((modes, relay, child)) => (Some(modes), Some(relay), Some(child)),
            None => (None, None, None),
        },
    };
    let (exit_tx, exit_rx) = match spec.init {
        true => exit_channel().map(|(tx, rx)| (Some(tx), Some(rx))).context("creating the init channel")?,
        false => (None, None),
    };
    let clone_flags = crate::namespaces::clone_flags(&spec.namespaces)?;
    // A joined uts namespace's name is checked by the child, once in it.
    if spec.namespaces.uts == crate::spec::Namespace::Host && !spec.hostname.is_empty() {
        return Err(anyhow!("a hostname needs the container's own uts namespace").into());
    }
    if spec.namespaces.uts != crate::spec::Namespace::New && !spec.domainname.is_empty() {
        return Err(anyhow!("a domain name needs the container's own uts namespace").into());
    }
    let kept_clone = match (&kept, &ids) {
        (Some(kept), Some(ids)) => crate::keeper::clone_in(kept, clone_flags, ids)?,
        _ => None,
    };
    // Neither side holds the keeper's namespace any longer than the clone.
    drop(kept);
    let mut maps_pending = None;
    let cloned = match kept_clone {
        Some(crate::keeper::KeptClone::Child) => Ok(Forked::Child),
        Some(crate::keeper::KeptClone::Parent { pid, maps }) => {
            maps_pending = Some(maps);
            Ok(Forked::Parent(pid))
        }
        None => {
            let joined_pid_namespace = crate::namespaces::JoinedPidNamespace::join(&spec.namespaces.pid)?;
            let cloned = clone_into_namespaces(clone_flags);
            match (cloned, joined_pid_namespace) {
                // The child drops it without leaving (see JoinedPidNamespace).
                (Ok(Forked::Child), joined) => {
                    drop(joined);
                    Ok(Forked::Child)
                }
                (cloned, Some(joined)) => joined.leave().and(cloned),
                (cloned, None) => cloned,
            }
        }
    };
    let pid = match cloned? {
        Forked::Parent(pid) => {
            // Each side keeps only its own ends, so that a closed channel
            // means the other side is done (or dead).
            drop((prepared_tx, go_rx, report_tx, exit_tx, pty_child, child_stdio, gate));
            pid
        }
        Forked::Child => {
            // (The child never returns, so the saved modes are not put back
            // from here.) Under --init, pid 1 never execs: the stdin pipe's
            // write end must go now, or the command would never see its end.
            drop((prepared_rx, go_tx, report_rx, exit_rx, pty_parent, relay));
            child::run(ChildContext {
                argv,
                env,
                prepared: prepared_tx,
                go: go_rx,
                report: report_tx,
                exit_report: exit_tx,
                setup: Setup {
                    spec,
                    rootfs: rootfs.as_ref(),
                    mountpoint: &mountpoint_path,
                    pty_socket: pty_child,
                    stdio: child_stdio,
                    gate,
                },
            })
        }
    };
    // Declared before the container, so it goes after it: the poststop
    // hooks run once everything of the container is torn down.
    let _poststop = (!detached).then(|| Poststop { spec, pid: pid.as_raw() });
    let mut container = Container {
        pid,
        reaped: false,
        network: None,
        pasta: None,
        cgroup: None,
        mountpoint: Some(mountpoint),
    };
    trace::mark("cloned");
    // While it holds the container, no other process of the caller's may
    // trace zookeeper or read its memory. (Not before clone: the child needs
    // to be dumpable for newuidmap to accept it.)
    nix::sys::prctl::set_dumpable(false).context("making zookeeper non-dumpable")?;

    // The parent's set-up, while the child does the part of its own that
    // needs no id mapped (child.rs) and then waits for go. The set-id
    // helpers take the longest: the rest is done while they run.
    let setgroups_allowed = match &ids {
        // Being written by the keeper's clone (collected below).
        Some(ids) if maps_pending.is_some() => {
            Mountpoint::hand_to(&mountpoint_path, container_root_on_host(ids))?;
            ids.setgroups_allowed
        }
        Some(ids) => {
            if let Some(notice) = &ids.notice {
                eprintln!("zookeeper: {notice}");
            }
            let installing = ids.start_install(pid.as_raw()).context("installing the id maps")?;
            trace::mark("id maps started");
            if spec.seccomp == crate::spec::Seccomp::BuiltinAllowingSetid
                && container_root_on_host(ids).is_root()
            {
                return Err(anyhow!(
                    "--security-opt allow-setid: container root is host root here (root without a subordinate range), so set-id files it made would be host root's"
                )
                .into());
            }
            let handed = Mountpoint::hand_to(&mountpoint_path, container_root_on_host(ids));
            // The helpers are waited for whatever happened meanwhile.
            let installed = installing.finish();
            handed?;
            installed.context("installing the id maps")?;
            trace::mark("id maps installed");
            ids.setgroups_allowed
        }
        // No user namespace: container root is zookeeper's own root.
        _ if spec.seccomp == crate::spec::Seccomp::BuiltinAllowingSetid => {
            return Err(anyhow!(
                "--security-opt allow-setid needs a user namespace whose root is not host root"
            )
            .into());
        }
        // zookeeper's own: setgroups works unless whoever made this user
        // namespace (a caller's, as `unshare -r` makes) denied it.
        _ => std::fs::read_to_string("/proc/self/setgroups").map_or(true, |text| text.trim() != "deny"),
    };
    // The network helpers join the child's network namespace, which it
    // makes itself: it must be there.
    if !prepared_rx.wait_prepared() {
        let failure = report_rx.read_failure().context("reading the container's start report")?;
        // It waits for the go channel to close before it exits.
        drop(go_tx);
        container.reap_now();
        return Err(match failure {
            Some(failure) => Error::Container(failure),
            None => anyhow!("the container's first process died while starting").into(),
        });
    }
    if let Some(maps) = maps_pending {
        maps.finish()?;
        trace::mark("id maps installed (kept user namespace)");
    }
    // An image's layers under fuse-overlayfs: its daemon, outside the
    // container's pid namespace, mounts them (once the child's ids are mapped) before it is released
    // (src/image/fuse.rs); killed once the container is gone.
    let _fuse = crate::image::fuse::start(spec, pid.as_raw(), &mountpoint_path)?;
    container.cgroup = ContainerCgroup::create(&spec.resources, pid.as_raw())?;
    trace::mark("cgroup ready");
    // slirp4netns takes about 2 ms to start: the child sets itself up
    // meanwhile and waits for it only before exec (unless createRuntime
    // hooks, which may look at the network, come first).
    let network_follows = spec.network == Network::Slirp4netns && spec.hooks.create_runtime.is_empty();
    if spec.network == Network::Slirp4netns {
        // Its API socket, when ports are published, sits in the mountpoint
        // directory: private to the caller, and removed with it.
        let api_socket = (!spec.publish.is_empty()).then(|| mountpoint_path.join("slirp4netns.sock"));
        container.network = Some(Slirp4netns::start(pid.as_raw(), spec.mtu, api_socket.as_deref())?);
        if !network_follows {
            slirp_ready(&mut container, &supervisor, &spec.publish)?;
        }
    }
    if spec.network == Network::Pasta {
        let pid_file = mountpoint_path.join("pasta.pid");
        container.pasta =
            Some(crate::network::Pasta::start(pid.as_raw(), spec.mtu, &spec.publish, &pid_file)?);
        trace::mark("network ready");
    }
    if !spec.hooks.create_runtime.is_empty() {
        let state = crate::hooks::state_json(&spec.identity, pid.as_raw(), "creating");
        crate::hooks::run(&spec.hooks.create_runtime, "createRuntime", &state)?;
    }
    let go = Go { setgroups_allowed, pid: pid.as_raw(), network_follows };
    go_tx.send_go(&go).context("releasing the container")?;
    trace::mark("released");
    if network_follows {
        slirp_ready(&mut container, &supervisor, &spec.publish)?;
        go_tx.send_network_ready().context("releasing the container")?;
    } else {
        drop(go_tx);
    }

    let master = match &pty_parent {
        Some(socket) => {
            if let Some(sig) = supervisor.wait_readable(socket.as_fd())? {
                return Err(Error::Interrupted(sig));
            }
            crate::terminal::receive_master(socket)?
        }
        None => None,
    };
    let (mut terminal, pty_master) = match detached {
        true => (None, master),
        false => (master.map(Terminal::attach).transpose()?, None),
    };
    if let Some(sig) = supervisor.wait_readable(report_rx.as_fd())? {
        return Err(Error::Interrupted(sig));
    }
    if let Some(failure) = report_rx.read_failure().context("reading the container's start report")? {
        container.reap_now();
        return Err(Error::Container(failure));
    }
    if detached {
        // At its gate: the process is the caller's now, its cgroup the
        // runtime's delete's; the mountpoint is pivoted away and goes.
        container.reaped = true;
        let cgroup = container.cgroup.take().map(ContainerCgroup::keep).unwrap_or_default();
        return Ok(Launched::Created(Created { pid: pid.as_raw(), cgroup, pty_master }));
    }
    trace::mark("command running");
    // The container's root is pivoted away from /tmp/zoo.XXXXXX now and the
    // host's side of it is an empty directory: it goes at once, while the
    // command runs, rather than after it (unless a network helper keeps its
    // socket or pid file in it). A zookeeper killed from now on leaves none.
    if container.network.is_none() && container.pasta.is_none() {
        container.mountpoint = None;
    }
    on_running(&Running {
        pid: pid.as_raw(),
        cgroup_dirs: container.cgroup.as_ref().map_or(Vec::new(), |c| c.dirs().to_vec()),
        mountpoint: container.mountpoint.as_ref().map(|m| m.path().to_owned()),
        helper_pid: container.network.as_ref().map(|n| n.pid()),
    })?;
    if !spec.hooks.poststart.is_empty() {
        let state = crate::hooks::state_json(&spec.identity, pid.as_raw(), "running");
        if let Err(err) = crate::hooks::run(&spec.hooks.poststart, "poststart", &state) {
            eprintln!("zookeeper: warning: {err:#}");
        }
    }
    let state = supervisor.wait_forwarding(pid, terminal.as_mut(), relay.as_mut())?;
    trace::mark("container ended");
    container.reaped = true;
    // Under --init, how the command ended is what counts, not how init did.
    let command_state = exit_rx
        .and_then(|rx| rx.read_exit_status())
        .and_then(|raw| ExitState::from_wait(WaitStatus::from_raw(pid, raw).ok()?));
    let state = command_state.unwrap_or(state);
    // Read now: the cgroup, and its count, go when `container` does.
    if let (Some(cgroup), Some(limit)) = (&container.cgroup, spec.resources.memory_bytes) {
        report_oom_kills(cgroup.oom_kills(), limit, state);
    }
    Ok(Launched::Ended(state))
}

/// Waits until slirp4netns has configured the container's eth0, then
/// publishes the ports through it.
fn slirp_ready(
    container: &mut Container,
    supervisor: &Supervisor,
    publish: &[crate::spec::PortMapping],
) -> Result<(), Error> {
    let Some(slirp) = container.network.as_mut() else { return Ok(()) };
    if let Some(sig) = supervisor.wait_readable(slirp.ready_fd())? {
        return Err(Error::Interrupted(sig));
    }
    slirp.confirm_ready()?;
    for mapping in publish {
        slirp.publish(mapping)?;
    }
    trace::mark("network ready");
    Ok(())
}

/// One line when the memory limit made the kernel kill: the container's
/// end, or processes in it.
fn report_oom_kills(kills: u64, limit: u64, state: ExitState) {
    let limit = crate::cgroups::human_size(limit);
    match (kills, state) {
        (0, _) => {}
        (_, ExitState::Signaled(Signal::SIGKILL)) => {
            eprintln!("zookeeper: killed: memory limit {limit} reached")
        }
        (n, _) => eprintln!(
            "zookeeper: memory limit {limit} reached: the kernel killed {n} process(es) in the container"
        ),
    }
}

/// Runs the poststop hooks when dropped; a failure is a warning (the
/// container is gone already).
struct Poststop<'a> {
    spec: &'a ContainerSpec,
    pid: i32,
}

impl Drop for Poststop<'_> {
    fn drop(&mut self) {
        if self.spec.hooks.poststop.is_empty() {
            return;
        }
        let state = crate::hooks::state_json(&self.spec.identity, self.pid, "stopped");
        if let Err(err) = crate::hooks::run(&self.spec.hooks.poststop, "poststop", &state) {
            eprintln!("zookeeper: warning: {err:#}");
        }
    }
}

/// The container's first process and what zookeeper set up for it. On
/// drop, in this order (the fields' order): the process is killed (if
/// zookeeper gives up on it) and reaped, the network helper stopped, the
/// cgroup removed, the mountpoint removed (the network helpers keep their
/// socket and pid file in it). So no error path leaves anything behind.
struct Container {
    pid: Pid,
    reaped: bool,
    network: Option<Slirp4netns>,
    pasta: Option<crate::network::Pasta>,
    cgroup: Option<ContainerCgroup>,
    mountpoint: Option<Mountpoint>,
}

impl Container {
    fn reap_now(&mut self) {
        if !self.reaped {
            let _ = reap(self.pid, WaitPidFlag::empty());
            self.reaped = true;
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            self.reap_now();
        }
    }
}

/// The host uid that container root has, which must own the mountpoint.
fn container_root_on_host(ids: &IdMapPlan) -> Uid {
    let outside = ids.uid.ranges.iter().find(|r| r.inside == 0).map_or(0, |r| r.outside);
    Uid::from_raw(outside)
}

fn to_cstrings(items: &[OsString], what: &str) -> Result<Vec<CString>, Error> {
    items
        .iter()
        .map(|item| CString::new(item.clone().into_vec()))
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow!("{what} contains a NUL byte").into())
}
