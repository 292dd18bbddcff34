//! Creating the container's first process in its own namespaces.

use anyhow::{Context, Result};
use nix::sched::CloneFlags;
use nix::unistd::Pid;

/// The namespaces the container is cloned into (SPEC.md 3.1). The user
/// namespace comes first in the kernel's order, so it owns all the others
/// and the child has full capabilities over them without any privilege on
/// the host.
///
/// The other two the child creates itself, in the same user namespace:
/// - the network namespace ([`enter_network_namespace`]), at once: it is the
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

/// Child side, first thing after clone: the container's network namespace.
pub fn enter_network_namespace() -> Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNET).context("creating the network namespace")
}

/// Child side: a cgroup namespace rooted at the container's own cgroup, so
/// that /proc/self/cgroup inside shows `0::/` and no host path.
pub fn enter_cgroup_namespace() -> Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).context("creating the cgroup namespace")
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
pub fn clone_into_namespaces() -> Result<Forked> {
    let flags = CLONE_NAMESPACES.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
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
