//! fuse-overlayfs for an image whose layers overlayfs cannot stack (more
//! than its 500): the layers merged in user space, the container's writes
//! in the same private tmpfs as with overlayfs.
//!
//! The daemon must not be reachable from the container: it holds the
//! store's layers and the host's root, and a process of the container's
//! pid namespace running as container root could be traced by it; nor may
//! it live in the container's mount namespace, whose pivot_root would move
//! its root and which it would keep alive. So zookeeper forks it, once the
//! container's ids are mapped and before the container is released. It
//! joins the container's user namespace only and becomes container root
//! there (so that copies up get the container's owners); mounts the
//! writable layer's tmpfs on the mountpoint's path in a mount namespace of
//! its own (fuse-overlayfs looks its upper and work directories up by
//! their real paths); has a child of its own join the container's mount
//! namespace, mount the FUSE file system on the mountpoint and hand its
//! descriptor back; and execs fuse-overlayfs on that descriptor
//! (`/dev/fd/N`, libfuse's "already mounted"), with no environment and no
//! descriptor of zookeeper's but the layers'. The container's child finds
//! the root mounted. The daemon gets SIGKILL when the [`Daemon`] is
//! dropped after the container, or when zookeeper dies (its parent-death
//! signal); its writable layer goes with its mount namespace.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, Pid};

use crate::spec::ContainerSpec;

/// The fuse-overlayfs daemon of a running container; killed and reaped
/// when dropped.
pub struct Daemon {
    pid: Pid,
    /// Already waited for: its pid may be another process's now.
    reaped: bool,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(self.pid, None);
        }
    }
}

/// fuse-overlayfs as the caller's PATH finds it (as podman's
/// `mount_program`), an executable regular file; `None` if it has none.
pub fn find_program() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).filter(|dir| dir.is_absolute()).map(|dir| dir.join("fuse-overlayfs")).find(
        |candidate| {
            std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        },
    )
}

/// Starts the daemon for `spec` if its overlay asks for it, for the
/// container whose first process is `child`, on `mountpoint`; returns once
/// the file system is mounted there.
pub fn start(spec: &ContainerSpec, child: i32, mountpoint: &Path) -> Result<Option<Daemon>> {
    let Some(overlay) = &spec.overlay else { return Ok(None) };
    let Some(program) = &overlay.fuse else { return Ok(None) };
    let top = spec.root.as_ref().context("fuse-overlayfs: the image has no top layer")?;
    let mut layers = vec![top.clone()];
    layers.extend(overlay.lower.iter().cloned());
    // Everything the daemon's process allocates is allocated here, before
    // the fork.
    let program_c = CString::new(program.as_os_str().as_encoded_bytes()).context("fuse-overlayfs's path")?;
    let tmpfs_options = match overlay.size {
        Some(size) => format!("mode=0700,size={size}"),
        None => "mode=0700".to_string(),
    };
    let user_ns = CString::new(format!("/proc/{child}/ns/user")).expect("no NUL");
    let mnt_ns = CString::new(format!("/proc/{child}/ns/mnt")).expect("no NUL");
    let (report_rx, report_tx) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).context("fuse-overlayfs: a pipe")?;
    // SAFETY: zookeeper is single-threaded here; the child only makes
    // system calls and execs or exits.
    match unsafe { nix::unistd::fork() }.context("fuse-overlayfs: fork")? {
        ForkResult::Child => {
            drop(report_rx);
            daemon(&Setup {
                program: &program_c,
                mountpoint,
                tmpfs_options: &tmpfs_options,
                user_ns: &user_ns,
                mnt_ns: &mnt_ns,
                layers: &layers,
                report: report_tx,
            });
            // SAFETY: _exit ends the forked process without running the
            // parent's exit handlers.
            unsafe { libc::_exit(125) }
        }
        ForkResult::Parent { child: pid } => {
            drop(report_tx);
            let mut daemon = Daemon { pid, reaped: false };
            match wait_mounted(&mut daemon, report_rx) {
                Ok(()) => Ok(Some(daemon)),
                // The child finds no FUSE root and copies the layers.
                Err(err) => {
                    eprintln!("zookeeper: note: {err:#}; the layers are copied instead");
                    Ok(None)
                }
            }
        }
    }
}

struct Setup<'a> {
    program: &'a CString,
    mountpoint: &'a Path,
    tmpfs_options: &'a str,
    user_ns: &'a CString,
    mnt_ns: &'a CString,
    layers: &'a [PathBuf],
    report: OwnedFd,
}

/// Writes `text` on the report pipe for the parent's error.
fn say(report: &OwnedFd, text: &str) {
    let _ = nix::unistd::write(report, text.as_bytes());
}

/// The forked process: joins the container's user namespace, has a child
/// of its own join the mount namespace to mount the writable layer's
/// tmpfs and the FUSE file system there, takes the FUSE descriptor back
/// and execs fuse-overlayfs on it (`/dev/fd/N`, libfuse's "already
/// mounted"). The daemon so stays in the host's mount namespace: the
/// container's pivot_root does not move its root, and it does not keep
/// the container's mount namespace alive. Returns only on failure (said
/// on the report pipe).
fn daemon(setup: &Setup) {
    let report = &setup.report;
    let fail = |what: &str, err: &dyn std::fmt::Display| say(report, &format!("{what}: {err}"));
    // Nothing of zookeeper's reaches fuse-overlayfs but what it is given
    // below: every other descriptor closes at exec.
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only marks descriptors.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    // SAFETY: prctl takes plain integers.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
    let ns = |path: &CString| open(path.as_c_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty());
    let (user_ns, mnt_ns) = match (ns(setup.user_ns), ns(setup.mnt_ns)) {
        (Ok(user), Ok(mnt)) => (user, mnt),
        (Err(err), _) | (_, Err(err)) => return fail("opening the container's namespaces", &err),
    };
    if let Err(err) = nix::sched::setns(user_ns, nix::sched::CloneFlags::CLONE_NEWUSER) {
        return fail("joining the container's user namespace", &err);
    }
    let root = nix::unistd::Gid::from_raw(0);
    if let Err(err) = nix::unistd::setresgid(root, root, root)
        .and_then(|()| nix::unistd::setresuid(0.into(), 0.into(), 0.into()))
    {
        return fail("becoming container root", &err);
    }
    // A credential change clears the parent-death signal: again, then
    // check that zookeeper did not go meanwhile.
    // SAFETY: prctl takes plain integers.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
    if nix::unistd::getppid() == Pid::from_raw(1) {
        return;
    }
    let mut lower = Vec::new();
    for layer in setup.layers {
        match open(layer, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW, Mode::empty()) {
            Ok(fd) => lower.push(fd),
            Err(err) => return fail(&format!("opening the layer {}", layer.display()), &err),
        }
    }
    let top = match nix::sys::stat::fstat(&lower[0]) {
        Ok(stat) => stat,
        Err(err) => return fail("stat of the top layer", &err),
    };
    // The writable layer: a tmpfs in a mount namespace of the daemon's own
    // (fuse-overlayfs looks its upper and work directories up by their
    // real paths), on the mountpoint's path; it goes with the daemon.
    if let Err(err) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS) {
        return fail("a mount namespace for the writable layer", &err);
    }
    let private = nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE;
    if let Err(err) = nix::mount::mount(Some("none"), "/", None::<&str>, private, None::<&str>) {
        return fail("making the daemon's mount tree private", &err);
    }
    if let Err(err) = nix::mount::mount(
        Some("tmpfs"),
        setup.mountpoint,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some(setup.tmpfs_options),
    ) {
        return fail("mounting the tmpfs for the writable layer", &err);
    }
    for name in ["upper", "work"] {
        if let Err(err) = nix::unistd::mkdir(&setup.mountpoint.join(name), Mode::from_bits_truncate(0o700)) {
            return fail("creating the writable layer", &err);
        }
    }
    // The merged root shows the upper directory's owner and mode: the top
    // layer's, as with overlayfs (rootfs.rs).
    let upper = setup.mountpoint.join("upper");
    let _ = nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        &upper,
        Mode::from_bits_truncate(top.st_mode & 0o7777),
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    );
    let _ = nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        &upper,
        Some(top.st_uid.into()),
        Some(top.st_gid.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    let (ours, theirs) =
        match socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC) {
            Ok(pair) => pair,
            Err(err) => return fail("a socket pair", &err),
        };
    // SAFETY: this process is single-threaded; the child makes system
    // calls and exits.
    match unsafe { nix::unistd::fork() } {
        Err(err) => return fail("fork", &err),
        Ok(ForkResult::Child) => {
            drop(ours);
            let code = match mount_in_container(setup, mnt_ns, &theirs) {
                Ok(()) => 0,
                Err(err) => {
                    say(report, &format!("{err:#}"));
                    1
                }
            };
            // SAFETY: _exit ends the forked process at once.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(theirs);
            let _ = nix::sys::wait::waitpid(child, None);
        }
    }
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let received = nix::sys::socket::recvmsg::<()>(
        ours.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
    );
    let mut fds = Vec::new();
    if let Ok(message) = received
        && let Ok(cmsgs) = message.cmsgs()
    {
        for cmsg in cmsgs {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(raw) = cmsg {
                // SAFETY: descriptors the kernel just passed to this process.
                fds.extend(
                    raw.into_iter().map(|fd| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }),
                );
            }
        }
    }
    let [fuse] = match <[OwnedFd; 1]>::try_from(fds) {
        Ok(one) => one,
        // The mounting child said why.
        Err(_) => return,
    };
    // Named by descriptor: no path is looked up again, and a store path
    // with ':' or ',' cannot break the option string.
    let by_fd = |fd: &OwnedFd| format!("/proc/self/fd/{}", fd.as_raw_fd());
    let lowerdir: Vec<String> = lower.iter().map(by_fd).collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowerdir.join(":"),
        upper.display(),
        setup.mountpoint.join("work").display()
    );
    // The descriptors named go to fuse-overlayfs; all else closes at exec.
    for fd in lower.iter().chain([&fuse]) {
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()));
    }
    // Room for a descriptor per layer.
    if let Ok((_, hard)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
    let Ok(options) = CString::new(options) else { return fail("fuse-overlayfs's options", &"a NUL byte") };
    let Ok(device) = CString::new(format!("/dev/fd/{}", fuse.as_raw_fd())) else { return };
    let argv = [setup.program.as_c_str(), c"-f", c"-o", options.as_c_str(), device.as_c_str()];
    let env: [&std::ffi::CStr; 0] = [];
    // Standard descriptors: /dev/null (fuse-overlayfs's chatter is not
    // the container's output); its failures show as the mount's.
    if let Ok(null) = open("/dev/null", OFlag::O_RDWR, Mode::empty()) {
        for target in [0, 1, 2] {
            // SAFETY: dup2 onto the standard descriptors, which this
            // process owns; no memory is passed.
            unsafe { libc::dup2(null.as_raw_fd(), target) };
        }
    }
    let err = nix::unistd::execve(setup.program.as_c_str(), &argv, &env).unwrap_err();
    fail("running fuse-overlayfs", &err);
}

/// In the container's mount namespace: the FUSE file system on the
/// mountpoint; its descriptor goes back on `socket`.
fn mount_in_container(setup: &Setup, mnt_ns: OwnedFd, socket: &OwnedFd) -> Result<()> {
    nix::sched::setns(mnt_ns, nix::sched::CloneFlags::CLONE_NEWNS)
        .context("joining the container's mount namespace")?;
    let fuse =
        open("/dev/fuse", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).context("opening /dev/fuse")?;
    // allow_other: the container's processes are not all container root;
    // default_permissions: the kernel checks modes, as on overlayfs.
    let data = format!(
        "fd={},rootmode=40000,user_id=0,group_id=0,default_permissions,allow_other",
        fuse.as_raw_fd()
    );
    nix::mount::mount(
        Some("fuse-overlayfs"),
        setup.mountpoint,
        Some("fuse.fuse-overlayfs"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    )
    .context("mounting the FUSE file system")?;
    let raw = [fuse.as_raw_fd()];
    let rights = [nix::sys::socket::ControlMessage::ScmRights(&raw)];
    nix::sys::socket::sendmsg::<()>(
        socket.as_raw_fd(),
        &[std::io::IoSlice::new(b"m")],
        &rights,
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .context("handing the FUSE descriptor over")?;
    Ok(())
}

/// Waits (at most 10 s) for the daemon's exec (its report pipe closes
/// then) or its failure, said on that pipe.
fn wait_mounted(daemon: &mut Daemon, report: OwnedFd) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut words = Vec::new();
    let mut buffer = [0u8; 512];
    loop {
        let mut poll =
            [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&report), nix::poll::PollFlags::POLLIN)];
        let _ = nix::poll::poll(&mut poll, nix::poll::PollTimeout::from(100u16));
        match nix::unistd::read(&report, &mut buffer) {
            Ok(0) => break,
            Ok(n) if words.len() < 4096 => words.extend_from_slice(&buffer[..n]),
            Ok(_) => {}
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
            Err(_) => break,
        }
        if Instant::now() > deadline {
            bail!("fuse-overlayfs did not start within 10 s");
        }
    }
    if words.is_empty()
        && matches!(
            nix::sys::wait::waitpid(daemon.pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
            Ok(nix::sys::wait::WaitStatus::StillAlive)
        )
    {
        return Ok(());
    }
    daemon.reaped = !matches!(
        nix::sys::wait::waitpid(daemon.pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
        Ok(nix::sys::wait::WaitStatus::StillAlive)
    ) || daemon.reaped;
    let words = String::from_utf8_lossy(&words);
    bail!(
        "fuse-overlayfs did not start{}",
        if words.is_empty() { String::new() } else { format!(": {words}") }
    )
}
