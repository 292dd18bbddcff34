//! Creating the container's first process in its own namespaces.

use anyhow::{Context, Result};
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::spec::{Namespace, Namespaces};

/// The namespaces the container is cloned into (SPEC.md 3.1). The user
/// namespace comes first in the kernel's order, so it owns all the others
/// and the child has full capabilities over them without any privilege on
/// the host.
///
/// The other two the child creates itself, in the same user namespace:
/// - the network namespace ([`enter_early`]), at once: it is the
///   costliest to make (about half a millisecond of the kernel registering
///   loopback and sysctls), and made in the child it is made while the
///   parent runs the id-map helpers, instead of before them;
/// - the cgroup namespace ([`enter_cgroup_namespace`]), once the parent has
///   moved it into its cgroup: a cgroup namespace is rooted where its
///   creator stands, and the container's cgroup is named after its pid,
///   which only exists after clone.
pub const CLONE_NAMESPACES: CloneFlags = CloneFlags::CLONE_NEWUSER
    .union(CloneFlags::CLONE_NEWNS)
    .union(CloneFlags::CLONE_NEWPID)
    .union(CloneFlags::CLONE_NEWIPC)
    .union(CloneFlags::CLONE_NEWUTS);

/// The clone flags for `spec`'s namespaces: [`CLONE_NAMESPACES`] for the
/// default profile; without the user, ipc or uts namespace where the spec
/// joins or shares them. The mount and pid namespaces are always new.
pub fn clone_flags(ns: &Namespaces) -> Result<CloneFlags> {
    let mut flags = CLONE_NAMESPACES;
    match &ns.user {
        Namespace::New => {}
        Namespace::Host if nix::unistd::geteuid().is_root() => flags.remove(CloneFlags::CLONE_NEWUSER),
        Namespace::Host => anyhow::bail!(
            "a container without a user namespace needs root (zookeeper runs as uid {})",
            nix::unistd::geteuid()
        ),
        Namespace::Join(path) => {
            anyhow::bail!("joining the user namespace {} is not supported yet", path.display())
        }
    }
    for (kind, flag) in [
        (&ns.ipc, CloneFlags::CLONE_NEWIPC),
        (&ns.uts, CloneFlags::CLONE_NEWUTS),
        (&ns.pid, CloneFlags::CLONE_NEWPID),
    ] {
        if *kind != Namespace::New {
            flags.remove(flag);
        }
    }
    Ok(flags)
}

/// Child side, first thing after clone: the network, ipc and uts
/// namespaces the spec joins, and the container's own network namespace
/// (with loopback up) when it has one.
pub fn enter_early(ns: &Namespaces) -> Result<()> {
    for (what, kind, flag) in [
        ("ipc", &ns.ipc, CloneFlags::CLONE_NEWIPC),
        ("uts", &ns.uts, CloneFlags::CLONE_NEWUTS),
        ("network", &ns.network, CloneFlags::CLONE_NEWNET),
    ] {
        if let Namespace::Join(path) = kind {
            join(what, path, flag)?;
        }
    }
    if ns.network == Namespace::New {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).context("creating the network namespace")?;
        crate::network::bring_up_loopback()?;
    }
    Ok(())
}

/// Child side, where [`enter_cgroup_namespace`] would make one: the cgroup
/// namespace the spec names by path.
pub fn join_cgroup_namespace(path: &std::path::Path) -> Result<()> {
    join("cgroup", path, CloneFlags::CLONE_NEWCGROUP)
}

/// Child side, early, with the capabilities a new user namespace gives its
/// first process: the container's time namespace, new (with its clock
/// offsets) or joined. The kernel moves
/// this process into a new one at exec (and its children at fork, the
/// command of --init), and takes the offsets only until then.
pub fn enter_time_namespace(ns: &Namespace, offsets: &[crate::spec::TimeOffset]) -> Result<()> {
    match ns {
        Namespace::Host => Ok(()),
        Namespace::Join(path) => join("time", path, CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
        Namespace::New => {
            nix::sched::unshare(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
                .context("creating the time namespace")?;
            if offsets.is_empty() {
                return Ok(());
            }
            let text: String = offsets
                .iter()
                .map(|o| {
                    let clock = match o.clock {
                        crate::spec::Clock::Monotonic => "monotonic",
                        crate::spec::Clock::Boottime => "boottime",
                    };
                    format!("{clock} {} {}\n", o.secs, o.nanosecs)
                })
                .collect();
            // The host's /proc: this process's own file, before pivot_root.
            std::fs::write("/proc/self/timens_offsets", text)
                .context("setting the time namespace's clock offsets")
        }
    }
}

/// setns(2) into the namespace at `path`, which must be one of `flag`'s kind.
fn join(what: &str, path: &std::path::Path, flag: CloneFlags) -> Result<()> {
    let shown = path.display();
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("opening the {what} namespace {shown}"))?;
    nix::sched::setns(fd, flag).map_err(|errno| match errno {
        nix::errno::Errno::EINVAL => anyhow::anyhow!("{shown} is not a {what} namespace"),
        nix::errno::Errno::EPERM => anyhow::anyhow!(
            "joining the {what} namespace {shown}: not permitted (it belongs to a user namespace this container's root has no say over)"
        ),
        errno => anyhow::Error::new(errno).context(format!("joining the {what} namespace {shown}")),
    })
}

/// setdomainname(2), in the container's own uts namespace (nix has no
/// wrapper for it).
pub fn set_domainname(name: &str) -> Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive
    // the call; the kernel copies them and needs no terminating NUL.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if ret != 0 {
        return Err(std::io::Error::last_os_error()).context("setting the domain name");
    }
    Ok(())
}

/// Child side: a cgroup namespace rooted at the container's own cgroup, so
/// that /proc/self/cgroup inside shows `0::/` and no host path.
pub fn enter_cgroup_namespace() -> Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).context("creating the cgroup namespace")
}

/// A pid namespace the container joins (a pod's): the caller's children
/// go there from [`JoinedPidNamespace::join`] until
/// [`JoinedPidNamespace::leave`], which the parent calls as soon as it has
/// cloned the container's first process. The child just drops it: its
/// children (the command under --init) must stay in the joined one.
pub struct JoinedPidNamespace {
    /// The caller's own, to go back to.
    own: std::os::fd::OwnedFd,
}

impl JoinedPidNamespace {
    pub fn join(ns: &Namespace) -> Result<Option<JoinedPidNamespace>> {
        let Namespace::Join(path) = ns else { return Ok(None) };
        let own = nix::fcntl::open(
            "/proc/self/ns/pid",
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .context("opening zookeeper's own pid namespace")?;
        join("pid", path, CloneFlags::CLONE_NEWPID)?;
        Ok(Some(JoinedPidNamespace { own }))
    }

    /// Parent side, after clone: its later children (hooks, network
    /// helpers) are its own again.
    pub fn leave(self) -> Result<()> {
        nix::sched::setns(&self.own, CloneFlags::CLONE_NEWPID)
            .context("returning to zookeeper's own pid namespace")
    }
}

/// Which side of [`clone_into_namespaces`] this is.
pub enum Forked {
    /// The container's first process; it must exec or exit, never return.
    Child,
    Parent(Pid),
}

/// clone(2)s a child into new namespaces, fork-style: both processes return
/// from this call, each with its own copy of the address space.
///
/// The caller must be single-threaded, as zookeeper's supervisor is: the child
/// inherits only the calling thread, so locks held by other threads would
/// stay locked in it forever.
pub fn clone_into_namespaces(flags: CloneFlags) -> Result<Forked> {
    let flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: a fork-style clone (no CLONE_VM, null stack) gives the child a
    // private copy of the address space, exactly like fork(2); the pointers
    // are null because neither CLONE_*TID nor CLONE_SETTLS is set.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match ret {
        -1 => Err(std::io::Error::last_os_error()).context(
            "creating the container's namespaces (clone); are unprivileged user namespaces allowed? \
             see 'zookeeper --help' and the README",
        ),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// Writes the spec's sysctls, each of which must belong to a namespace the
/// container has of its own (runc's rule): the kernel would otherwise apply
/// it to the host, or to a namespace the container only joined. Through the
/// host's /proc, which shows the writer's own namespaces' values.
pub fn write_sysctls(sysctl: &[(String, String)], ns: &Namespaces) -> Result<()> {
    for (name, value) in sysctl {
        let own = |kind: &Namespace| *kind == Namespace::New;
        let namespaced = match name.as_str() {
            _ if name.starts_with("net.") => own(&ns.network),
            "kernel.msgmax"
            | "kernel.msgmnb"
            | "kernel.msgmni"
            | "kernel.sem"
            | "kernel.shmall"
            | "kernel.shmmax"
            | "kernel.shmmni"
            | "kernel.shm_rmid_forced" => own(&ns.ipc),
            _ if name.starts_with("fs.mqueue.") => own(&ns.ipc),
            "kernel.hostname" | "kernel.domainname" => own(&ns.uts),
            _ => false,
        };
        let valid = name.split('.').all(|part| !part.is_empty() && part != ".." && !part.contains('/'));
        if !namespaced || !valid {
            anyhow::bail!("sysctl {name}: not a parameter of a namespace the container has of its own");
        }
        let path = format!("/proc/sys/{}", name.replace('.', "/"));
        std::fs::write(&path, value).with_context(|| format!("setting sysctl {name} to {value}"))?;
    }
    Ok(())
}
