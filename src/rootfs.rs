//! The container's filesystem (SPEC.md 3.4 and section 1's default root).
//!
//! In order: the mount tree made private; the root built on a fresh
//! `/tmp/zoo.XXXXXX` (the user's rootfs bind-mounted there, or the secure
//! default root); with -P a fresh /proc with docker's masks; a read-only
//! /sys ([`mount_root`], for a user's rootfs while the parent maps the
//! container's ids); a minimal /dev; /etc/hostname and /etc/hosts;
//! pivot_root(".", "."); the host's root detached ([`enter`]).
//!
//! The rootfs belongs to the user, who may fill it with symlinks such as
//! `dev -> /` or `proc -> /etc`. Every mount target in it is therefore
//! reached through file descriptors, one component at a time, refusing
//! symlinks (see `Node::existing`), and mounted through
//! `/proc/self/fd/N`, so that nothing outside the rootfs is ever mounted on or
//! created. Inside file systems zookeeper mounted itself (the /dev tmpfs, a
//! fresh proc) there is nothing the user could have planted.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, fstat, mkdirat};
use nix::sys::statvfs::{FsFlags, statvfs};
use nix::unistd::{Uid, chown, fchdir, pivot_root, symlinkat};

use crate::cgroups::CgroupView;
use crate::spec::{
    Atime, ContainerSpec, DeviceNode, Mount, MountKind, MountOptions, Namespace, NodeKind, Propagation,
    PropagationKind,
};

/// The host directory `/tmp/zoo.XXXXXX` on which the container's root is
/// built inside its mount namespace. zookeeper creates it before the
/// container and removes it once the container is gone (on drop). It holds
/// an flock on it meanwhile, so `--cleanup` can tell a directory whose
/// zookeeper was killed from one in use.
#[derive(Debug)]
pub struct Mountpoint {
    path: PathBuf,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

pub(crate) const MOUNTPOINT_PREFIX: &str = "zoo.";

impl Mountpoint {
    /// Creates the directory, owned by the caller.
    pub fn create() -> Result<Mountpoint> {
        let template = format!("/tmp/{MOUNTPOINT_PREFIX}XXXXXX");
        // Between mkdtemp and the lock the directory is empty and unlocked,
        // which is what `--cleanup` takes for a killed zookeeper's: one
        // running at that instant may lock or remove it. Then another name.
        for _ in 0..8 {
            let path = nix::unistd::mkdtemp(template.as_str()).context("creating /tmp/zoo.XXXXXX")?;
            match lock_dir(&path) {
                Ok(lock) if is_still_at(&lock, &path) => return Ok(Mountpoint { path, _lock: lock }),
                Ok(_) => continue,
                Err(LockError::Taken) => continue,
                Err(LockError::Failed(err)) => {
                    let _ = std::fs::remove_dir(&path);
                    return Err(err);
                }
            }
        }
        bail!("creating /tmp/zoo.XXXXXX: each new directory was taken by a concurrent --cleanup")
    }

    /// Hands the directory at `path` to `owner`, the host uid of container
    /// root, which must be able to reach it to build the root on it once
    /// its ids are mapped (root's range, for root). A user's container root
    /// is the user, or (with `--userns keep-id`) a subordinate id of a
    /// container in which the user's own id is mapped too, so that container
    /// root reaches the user's 0700 directory by its capabilities; a user
    /// could not chown it anyway.
    pub fn hand_to(path: &Path, owner: Uid) -> Result<()> {
        if owner != nix::unistd::geteuid() && nix::unistd::geteuid().is_root() {
            chown(path, Some(owner), None)
                .with_context(|| format!("handing {} to container root", path.display()))?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Mountpoint {
    fn drop(&mut self) {
        // The mounts lived only in the container's mount namespace, which is
        // gone, so this is an empty directory again.
        if let Err(err) = std::fs::remove_dir(&self.path) {
            eprintln!("zookeeper: removing {}: {err}", self.path.display());
        }
    }
}

enum LockError {
    /// Gone, or locked by someone else (a `--cleanup`).
    Taken,
    Failed(anyhow::Error),
}

fn lock_dir(path: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, LockError> {
    let dir = match std::fs::File::open(path) {
        Ok(dir) => dir,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(LockError::Taken),
        Err(err) => {
            return Err(LockError::Failed(
                anyhow::Error::new(err).context(format!("opening {}", path.display())),
            ));
        }
    };
    nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(
        |(_, errno)| match errno {
            Errno::EWOULDBLOCK => LockError::Taken,
            errno => {
                LockError::Failed(anyhow::Error::new(errno).context(format!("locking {}", path.display())))
            }
        },
    )
}

/// Whether `path` still names the directory `lock` holds (a `--cleanup`
/// may have removed it between our open and our lock).
fn is_still_at(lock: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (lock.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(held), Ok(named)) => (held.dev(), held.ino()) == (named.dev(), named.ino()),
        _ => false,
    }
}

/// The host's system directories the default root shows, read-only.
const HOST_SYSTEM_DIRS: [&str; 8] = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"];

/// Files the container's /dev gets, bound from the host's (a rootless
/// container cannot mknod).
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

const TMPFS_FLAGS: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV);
const PSEUDO_FS_FLAGS: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV).union(MsFlags::MS_NOEXEC);

/// The user's rootfs (`-r DIR`), opened once and checked by descriptor in
/// the parent, before clone. The child, in its own mount namespace, opens
/// the path again and binds what it opened only if it is this very
/// directory (device and inode), so a path component swapped meanwhile
/// (for a symlink to `/`, say) makes the start fail instead of running the
/// container somewhere else. (A descriptor from the parent's mount
/// namespace cannot be bound from the child's: the kernel refuses.)
#[derive(Debug)]
pub struct CheckedRootfs {
    /// Where the descriptor was found, without symlinks.
    pub path: PathBuf,
    dev: u64,
    ino: u64,
}

impl CheckedRootfs {
    /// Opens `root` (following symlinks, as any path a user names) and
    /// checks the directory it found: readable and searchable by the
    /// caller, not the host's `/`, and neither it nor any directory above
    /// it changeable by anyone but the caller and root. Errors are the
    /// user's: status 125, one line naming the path.
    pub fn open(root: &Path) -> Result<CheckedRootfs, crate::Error> {
        let shown = root.display();
        let fd = match open(root, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Err(anyhow::anyhow!("--rootfs {shown}: no such directory").into()),
            Err(Errno::ENOTDIR) => return Err(anyhow::anyhow!("--rootfs {shown}: not a directory").into()),
            Err(errno) => {
                return Err(anyhow::anyhow!("--rootfs {shown}: {}", crate::error::errno_text(errno)).into());
            }
        };
        let stat =
            fstat(&fd).map_err(|e| anyhow::anyhow!("--rootfs {shown}: {}", crate::error::errno_text(e)))?;
        let host_root = nix::sys::stat::stat("/").map_err(|e| anyhow::anyhow!("stat /: {e}"))?;
        if (stat.st_dev, stat.st_ino) == (host_root.st_dev, host_root.st_ino) {
            return Err(anyhow::anyhow!("--rootfs {shown}: the host's / cannot be a container's root").into());
        }
        // Container root acts as the caller on the host's files (or as less).
        let access = nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::X_OK;
        if nix::unistd::access(&fd_path(&fd), access).is_err() {
            return Err(anyhow::anyhow!("--rootfs {shown}: not readable and searchable by this user").into());
        }
        let path = std::fs::read_link(fd_path(&fd))
            .map_err(|e| anyhow::anyhow!("--rootfs {shown}: finding its path: {e}"))?;
        check_nobody_else_can_change(&fd, &host_root)
            .map_err(|reason| anyhow::anyhow!("--rootfs {shown}: {reason}"))?;
        Ok(CheckedRootfs { path, dev: stat.st_dev, ino: stat.st_ino })
    }

    /// Child side: the rootfs, opened again in the child's mount
    /// namespace, if it is still the directory the parent checked.
    fn reopen(&self) -> Result<OwnedFd> {
        let shown = self.path.display();
        let fd = open(&self.path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .with_context(|| format!("opening the rootfs {shown} again"))?;
        let stat = fstat(&fd).context("fstat")?;
        if (stat.st_dev, stat.st_ino) != (self.dev, self.ino) {
            bail!(
                "--rootfs {shown} changed while the container was starting; refusing to run on what is there now"
            );
        }
        Ok(fd)
    }
}

/// A file of the container's root (`etc/passwd`), read as the hostile
/// file it is: found inside the root without following links out of it,
/// a regular file only, at most 64 KiB, never blocking. `None` when absent
/// or not a regular file. Without a rootfs, the default root's: the host's.
pub fn read_container_file(rootfs: Option<&CheckedRootfs>, relative: &str) -> Result<Option<Vec<u8>>> {
    let root = match rootfs {
        Some(rootfs) => Node { fd: rootfs.reopen()?, parent: None },
        None => Node::open(Path::new("/"))?,
    };
    let Some(fd) = root.resolve_in_root(relative)? else { return Ok(None) };
    if file_type(&fd)? != SFlag::S_IFREG {
        return Ok(None);
    }
    read_bounded(&fd).map(Some)
}

/// ssh's rule for the files it trusts (StrictModes), for the rootfs and
/// every directory above it: owned by the caller or root, and writable by
/// nobody else (a sticky directory such as /tmp excepted above the rootfs:
/// others may not rename what is not theirs in it). Someone else who could
/// rename the rootfs or a directory above it could hand zookeeper another
/// directory; one who can write the rootfs itself could move a directory
/// out from under a running container, which then reaches the host through
/// `..`. What the rootfs holds inside is its owner's business, as with
/// any program one runs.
fn check_nobody_else_can_change(
    rootfs: &OwnedFd,
    host_root: &nix::sys::stat::FileStat,
) -> Result<(), String> {
    let me = nix::unistd::geteuid().as_raw();
    let mut dir = rootfs.try_clone().map_err(|e| format!("duplicating a descriptor: {e}"))?;
    let mut is_rootfs = true;
    loop {
        let stat = fstat(&dir).map_err(|e| format!("fstat: {e}"))?;
        let name =
            || std::fs::read_link(fd_path(&dir)).map_or_else(|_| "?".into(), |p| p.display().to_string());
        let what = if is_rootfs { "it".to_string() } else { format!("the directory above it, {}", name()) };
        let trusted = stat.st_uid == 0
            || stat.st_uid == me
            || (!is_rootfs && Some(stat.st_uid) == unmapped_owner_in_a_callers_namespace());
        if !trusted {
            return Err(format!(
                "{what} belongs to uid {}, who could change it under the container; \
                 only the caller's or root's directories can be a rootfs",
                stat.st_uid
            ));
        }
        let sticky = stat.st_mode & libc::S_ISVTX != 0;
        if stat.st_mode & 0o022 != 0 && (is_rootfs || !sticky) {
            return Err(format!(
                "{what} is writable by others (mode {:o}), who could change it under the container",
                stat.st_mode & 0o7777
            ));
        }
        if (stat.st_dev, stat.st_ino) == (host_root.st_dev, host_root.st_ino) {
            return Ok(());
        }
        dir = openat(dir.as_fd(), "..", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| format!("opening the directory above: {e}"))?;
        is_rootfs = false;
    }
}

/// Inside a user namespace that another runtime made (rootless podman runs
/// zookeeper-oci as root of its own), the host's root, which owns `/`,
/// `/home` and `/tmp`, maps to no id and shows as the kernel's overflow uid
/// (65534). Above the rootfs such a directory is taken as root's: whoever
/// made the namespace chose to leave it unmapped, and from inside root and
/// any other unmapped owner look alike. The rootfs itself must still be the
/// caller's or root's. In the host's own user namespace: `None`.
fn unmapped_owner_in_a_callers_namespace() -> Option<u32> {
    let map = std::fs::read_to_string("/proc/self/uid_map").ok()?;
    let whole = map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"];
    if whole {
        return None;
    }
    std::fs::read_to_string("/proc/sys/kernel/overflowuid").ok()?.trim().parse().ok()
}

/// What becomes `/`.
#[derive(Debug, Clone, Copy)]
pub enum RootSource<'a> {
    /// The user's directory (`-r`).
    Dir(&'a CheckedRootfs),
    /// The secure default root: the host's system directories read-only,
    /// private empty /tmp, /root and /run, nothing else of the host.
    HostSystem,
}

/// Child side, first half of the container's filesystem: the mount tree
/// made private, the root on `mountpoint`, and the spec's leading /proc
/// and /sys ([`early_mounts`]) with their masks. It creates nothing in a user's rootfs, so for one the
/// child does it before its ids are mapped, while the parent runs the
/// id-map helpers; the default root creates its directories, which needs a
/// mapped id, so it waits. Runs with full capabilities in the container's
/// user namespace.
pub fn mount_root(source: RootSource, mountpoint: &Path, spec: &ContainerSpec) -> Result<()> {
    // Private, or, for a spec that wants the host's mounts to reach the
    // container, slave: either way nothing made here reaches the host.
    // (Its own propagation goes to the container's / after pivot_root.)
    let (tree, what) = match spec.root_propagation.map(|p| p.kind) {
        Some(PropagationKind::Slave | PropagationKind::Shared) => (MsFlags::MS_SLAVE, "a slave"),
        _ => (MsFlags::MS_PRIVATE, "private"),
    };
    mount(Some("none"), "/", NO_FSTYPE, MsFlags::MS_REC | tree, None::<&str>)
        .with_context(|| format!("making the mount tree {what}"))?;
    match source {
        RootSource::Dir(rootfs) if spec.overlay.is_some() => {
            let overlay = spec.overlay.as_ref().context("the overlay")?;
            // zookeeper mounted fuse-overlayfs here (src/image/fuse.rs);
            // where it could not, overlayfs is tried, and the copy after it.
            if overlay.fuse.is_none() || !fuse_mounted(mountpoint) {
                mount_overlay(rootfs, overlay, mountpoint)?
            }
        }
        RootSource::Dir(rootfs) => {
            let fd = rootfs.reopen()?;
            mount(
                Some(&fd_path(&fd)),
                mountpoint,
                NO_FSTYPE,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .with_context(|| format!("bind-mounting {} on {}", rootfs.path.display(), mountpoint.display()))?
        }
        RootSource::HostSystem => build_default_root(mountpoint)?,
    }
    let root = Node::open(mountpoint)?;
    let creatable = mount_points_creatable(source, spec);
    for wanted in &spec.mounts[..early_mounts(spec)] {
        mount_standard(&root, &wanted.kind, creatable, spec)
            .with_context(|| format!("mounting {}", wanted.target))?;
    }
    Ok(())
}

/// How many of the spec's first mounts [`mount_root`] makes: /proc and
/// /sys, which create nothing in a user's rootfs, so that it has them
/// done while the parent runs the id-map helpers. [`enter`] makes the rest
/// in order.
fn early_mounts(spec: &ContainerSpec) -> usize {
    spec.mounts.iter().take_while(|m| matches!(m.kind, MountKind::Proc | MountKind::Sysfs)).count()
}

/// A [`Mount::is_standard`] one: /proc and /sys with the masked and
/// read-only paths under them applied at once, or /dev.
fn mount_standard(root: &Node, kind: &MountKind, creatable: bool, spec: &ContainerSpec) -> Result<()> {
    match kind {
        MountKind::Proc => {
            mount(
                Some("proc"),
                &root.subdir("proc", creatable)?.proc_path(),
                Some("proc"),
                PSEUDO_FS_FLAGS,
                None::<&str>,
            )
            .context("mounting proc on /proc")?;
            protect_paths(root, spec, |path| path.starts_with("/proc/"))
        }
        MountKind::Sysfs => match root.existing_subdir("sys")? {
            Some(sys) if mount_sys(&sys)? => protect_paths(root, spec, |path| path.starts_with("/sys/")),
            _ => Ok(()),
        },
        MountKind::Dev => mount_dev(&root.subdir("dev", creatable)?),
        _ => bail!("not one of the standard mounts"),
    }
}

/// Whether a missing /proc or /dev is made (with mkdirat, relative to the
/// root, no link followed) rather than refused: in the default root; and
/// for a spec with no user namespace of the container's, as an OCI runtime
/// runs for containerd (whose Kubernetes pause image holds nothing but
/// `/pause`) and podman, where runc makes them and the caller (root, or
/// root of its own user namespace) owns the rootfs. A user's rootfs under
/// zookeeper's own user namespace is refused as before: its mounts are
/// made before the ids are mapped, when nothing can be created in it.
fn mount_points_creatable(source: RootSource, spec: &ContainerSpec) -> bool {
    matches!(source, RootSource::HostSystem) || spec.namespaces.user == crate::spec::Namespace::Host
}

/// Whether [`mount_root`] may run before the container's ids are mapped,
/// while the parent runs the id-map helpers: for a user's rootfs bound as
/// it is, which creates nothing. The default root creates its
/// directories, and an overlay its writable layer's: the kernel refuses to
/// create an inode whose owner has no id in the file system's user
/// namespace (EOVERFLOW), and an overlay keeps its mounter's credentials
/// for every later copy-up, which must be container root's mapped ones
/// (as root with a subordinate range, the child is host root until then,
/// who owns nothing in the container).
pub fn mounts_early(source: RootSource, spec: &ContainerSpec) -> bool {
    matches!(source, RootSource::Dir(_)) && spec.overlay.is_none()
}

/// `--overlay`: a tmpfs on `mountpoint` with the writable layer (`upper`)
/// and overlayfs's scratch directory (`work`), and over it, on the same
/// mountpoint, the overlay of `upper` on the rootfs (and the spec's further
/// lower layers). Everything lives in the child's mount namespace: when
/// the container's last process is gone, so is the tmpfs, whatever
/// happened to zookeeper. The layers are named to the kernel as
/// `/proc/self/fd/N` of descriptors opened here (the rootfs the very one
/// the parent checked), so no path is looked up twice; the container's
/// mount table then shows those names rather than host paths.
fn mount_overlay(rootfs: &CheckedRootfs, overlay: &crate::spec::Overlay, mountpoint: &Path) -> Result<()> {
    let mut lower = vec![rootfs.reopen()?];
    for layer in &overlay.lower {
        lower.push(
            open(layer, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
                .with_context(|| format!("--overlay: opening the layer {}", layer.display()))?,
        );
    }
    let mut options = String::from("mode=0700");
    if let Some(size) = overlay.size {
        options.push_str(&format!(",size={size}"));
    }
    // No nosuid or nodev: the merged root must behave as the bound rootfs
    // would (a set-id program under --security-opt no-new-privileges=false).
    mount(Some("tmpfs"), mountpoint, Some("tmpfs"), MsFlags::empty(), Some(options.as_str()))
        .context("--overlay: mounting the tmpfs for the writable layer")?;
    let scratch = Node::open(mountpoint)?;
    let top = fstat(&lower[0]).context("fstat the rootfs")?;
    for name in ["upper", "work"] {
        mkdirat(scratch.fd.as_fd(), name, Mode::from_bits_truncate(0o700))
            .with_context(|| format!("--overlay: creating the {name} directory"))?;
    }
    let upper = scratch.existing_subdir("upper")?.context("--overlay: the upper directory vanished")?;
    let work = scratch.existing_subdir("work")?.context("--overlay: the work directory vanished")?;
    // The merged root shows the upper directory's owner and mode: the
    // rootfs's own, as a plain bind would show. (An owner the container
    // does not map cannot be given: then container root keeps it.)
    let upper_path = upper.proc_path();
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        &upper_path,
        Mode::from_bits_truncate(top.st_mode & 0o7777),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .context("--overlay: setting the upper directory's mode")?;
    let _ = chown(&upper_path, Some(Uid::from_raw(top.st_uid)), Some(nix::unistd::Gid::from_raw(top.st_gid)));
    let native = mount_overlay_native(&lower, &upper, &work, mountpoint);
    let Err(refused) = native else { return Ok(()) };
    if !overlay.fallback {
        let release = nix::sys::utsname::uname()
            .map_or_else(|_| "?".into(), |u| u.release().to_string_lossy().into_owned());
        bail!(
            "--overlay: the kernel refused an overlay mount in the container's user namespace ({refused}; Linux {release}, and 5.11 or later is needed)"
        );
    }
    // An image's layers: what overlayfs cannot stack, a merged copy of
    // them in the writable layer's tmpfs can be (crate::image::merge).
    eprintln!(
        "zookeeper: note: the kernel refused the image's overlay ({refused}); running on a private copy of its {} layers instead",
        lower.len()
    );
    mkdirat(scratch.fd.as_fd(), "merged", Mode::from_bits_truncate(0o700))
        .context("--overlay: creating the directory for the layers' copy")?;
    let merged = scratch.existing_subdir("merged")?.context("--overlay: the copy's directory vanished")?;
    crate::image::merge::merge_layers(&lower, merged.fd.as_fd())
        .context("--overlay: copying the image's layers")?;
    mount(Some(&merged.proc_path()), mountpoint, NO_FSTYPE, MsFlags::MS_BIND, None::<&str>)
        .context("--overlay: binding the layers' copy on the root")
}

/// The overlay of `upper` on `lower` (uppermost first) on `mountpoint`:
/// with the new mount API, each layer given by its descriptor
/// (`lowerdir+`, Linux 6.8; descriptors with FSCONFIG_SET_FD since 6.13,
/// `/proc/self/fd/N` names before), so that any number of layers up to
/// overlayfs's own limit fits; where the kernel does not know
/// `lowerdir+` (or fsopen), the old option string, which holds about 200
/// layers (one page). The error says what the kernel refused.
fn mount_overlay_native(
    lower: &[OwnedFd],
    upper: &Node,
    work: &Node,
    mountpoint: &Path,
) -> Result<(), String> {
    match new_api::mount_overlay(lower, &upper.fd, &work.fd, mountpoint) {
        Ok(()) => return Ok(()),
        Err(new_api::Failure::Unsupported) => {}
        Err(new_api::Failure::Refused(text)) => return Err(text),
    }
    let lowerdir: Vec<String> = lower.iter().map(|fd| fd_path(fd).display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowerdir.join(":"),
        upper.proc_path().display(),
        work.proc_path().display()
    );
    if data.len() + ",userxattr".len() >= 4096 {
        return Err(format!(
            "{} layers do not fit in the mount options' one page, and this kernel lacks the new mount API's lowerdir+ (Linux 6.8)",
            lower.len()
        ));
    }
    // userxattr: the overlay's own marks (opaque directories, redirects)
    // as user.overlay.* attributes, which a user namespace may set, not
    // trusted.overlay.*, which needs host root. A kernel that does not
    // know it (before 5.11) refuses it; it then refuses the overlay too,
    // which the second try shows.
    let with_userxattr = format!("{data},userxattr");
    mount(Some("overlay"), mountpoint, Some("overlay"), MsFlags::empty(), Some(with_userxattr.as_str()))
        .or_else(|_| {
            mount(Some("overlay"), mountpoint, Some("overlay"), MsFlags::empty(), Some(data.as_str()))
        })
        .map_err(crate::error::errno_text)
}

/// fsopen, fsconfig, fsmount, move_mount: overlayfs configured one layer at
/// a time.
mod new_api {
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::path::Path;

    use nix::errno::Errno;

    pub enum Failure {
        /// No fsopen, or no `lowerdir+`: the option string may do.
        Unsupported,
        /// The kernel refused the overlay itself; what it said.
        Refused(String),
    }

    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
    const FSCONFIG_SET_FLAG: libc::c_uint = 0;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_SET_FD: libc::c_uint = 5;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

    fn fsconfig(
        fs: &OwnedFd,
        cmd: libc::c_uint,
        key: Option<&str>,
        value: Option<&CString>,
        aux: i32,
    ) -> Result<(), Errno> {
        let key = key.map(|k| CString::new(k).expect("keys are ours, without NUL"));
        let key_ptr = key.as_ref().map_or(std::ptr::null(), |k| k.as_ptr());
        let value_ptr = value.map_or(std::ptr::null(), |v| v.as_ptr());
        // SAFETY: fsconfig reads the NUL-terminated key and value, which
        // live until it returns; the descriptor is ours.
        let rc = unsafe { libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), cmd, key_ptr, value_ptr, aux) };
        if rc < 0 { Err(Errno::last()) } else { Ok(()) }
    }

    /// A layer (or upper or work directory) by its descriptor, or, on
    /// kernels before 6.13, which take only strings for overlay's
    /// directories, by its `/proc/self/fd/N` name.
    fn set_dir(fs: &OwnedFd, key: &str, dir: &OwnedFd, by_fd: bool) -> Result<(), Errno> {
        match by_fd {
            true => fsconfig(fs, FSCONFIG_SET_FD, Some(key), None, dir.as_raw_fd()),
            false => {
                let name =
                    CString::new(format!("/proc/self/fd/{}", dir.as_raw_fd())).expect("no NUL in a number");
                fsconfig(fs, FSCONFIG_SET_STRING, Some(key), Some(&name), 0)
            }
        }
    }

    /// What the kernel logged on the filesystem context (its reasons,
    /// "e overlay: ..."), joined; else the errno's text.
    fn reasons(fs: &OwnedFd, errno: Errno) -> String {
        let mut lines = Vec::new();
        let mut buffer = [0u8; 512];
        for _ in 0..8 {
            match nix::unistd::read(fs, &mut buffer) {
                Ok(n) if n > 0 => {
                    let line = String::from_utf8_lossy(&buffer[..n]);
                    let line = line.trim();
                    lines.push(line.strip_prefix("e ").unwrap_or(line).to_string());
                }
                _ => break,
            }
        }
        match lines.is_empty() {
            true => crate::error::errno_text(errno),
            false => format!("{}: {}", crate::error::errno_text(errno), lines.join("; ")),
        }
    }

    pub fn mount_overlay(
        lower: &[OwnedFd],
        upper: &OwnedFd,
        work: &OwnedFd,
        mountpoint: &Path,
    ) -> Result<(), Failure> {
        let name = c"overlay";
        // SAFETY: fsopen reads the NUL-terminated name; it returns a new
        // descriptor or -1.
        let raw = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) };
        if raw < 0 {
            return Err(Failure::Unsupported);
        }
        // SAFETY: the kernel just returned this descriptor, owned by no one else.
        let fs = unsafe { OwnedFd::from_raw_fd(raw as i32) };
        let refused = |errno: Errno| Failure::Refused(reasons(&fs, errno));
        let Some((first, rest)) = lower.split_first() else { return Err(Failure::Unsupported) };
        // The first layer tells what the kernel takes: a descriptor (6.13),
        // a name (6.8), or no lowerdir+ at all (before 6.8).
        let by_fd = match set_dir(&fs, "lowerdir+", first, true) {
            Ok(()) => true,
            Err(Errno::EINVAL) => match set_dir(&fs, "lowerdir+", first, false) {
                Ok(()) => false,
                Err(Errno::EINVAL) => return Err(Failure::Unsupported),
                Err(errno) => return Err(refused(errno)),
            },
            Err(errno) => return Err(refused(errno)),
        };
        for layer in rest {
            set_dir(&fs, "lowerdir+", layer, by_fd).map_err(refused)?;
        }
        set_dir(&fs, "upperdir", upper, by_fd).map_err(refused)?;
        set_dir(&fs, "workdir", work, by_fd).map_err(refused)?;
        // userxattr, as in the option string (see there).
        fsconfig(&fs, FSCONFIG_SET_FLAG, Some("userxattr"), None, 0).map_err(refused)?;
        fsconfig(&fs, FSCONFIG_CMD_CREATE, None, None, 0).map_err(refused)?;
        // SAFETY: fsmount takes the configured context's descriptor and flags.
        let raw = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
        if raw < 0 {
            return Err(refused(Errno::last()));
        }
        // SAFETY: as above, a new descriptor of ours.
        let mnt = unsafe { OwnedFd::from_raw_fd(raw as i32) };
        let target =
            CString::new(mountpoint.as_os_str().as_encoded_bytes()).map_err(|_| Failure::Unsupported)?;
        // SAFETY: move_mount reads the empty path and the NUL-terminated
        // target, both alive until it returns.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                mnt.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        if rc < 0 {
            return Err(Failure::Refused(format!(
                "attaching the overlay: {}",
                crate::error::errno_text(Errno::last())
            )));
        }
        Ok(())
    }
}

/// Whether zookeeper's fuse-overlayfs daemon mounted the root on
/// `mountpoint` before the child was released.
fn fuse_mounted(mountpoint: &Path) -> bool {
    const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;
    nix::sys::statfs::statfs(mountpoint).is_ok_and(|fs| fs.filesystem_type().0 == FUSE_SUPER_MAGIC)
}

/// Child side, second half, once its ids are mapped: the rest of the
/// spec's mounts in order (/dev among them), the masked and read-only paths not done yet, the /etc files,
/// `before_pivot` (the createContainer hooks), and the root on
/// `mountpoint` made `/`.
pub fn enter(
    source: RootSource,
    mountpoint: &Path,
    dns: Option<&str>,
    spec: &ContainerSpec,
    cgroups: &CgroupView,
    before_pivot: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let root = Node::open(mountpoint)?;
    let creatable = mount_points_creatable(source, spec);
    for wanted in &spec.mounts[early_mounts(spec)..] {
        mount_one(&root, wanted, spec, cgroups, creatable)
            .with_context(|| format!("mounting {}", wanted.target))?;
    }
    for device in &spec.devices {
        bind_device(&root, device).with_context(|| format!("--device {}", device.source.display()))?;
    }
    for node in &spec.device_nodes {
        make_device_node(&root, node, spec).with_context(|| format!("making {}", node.target))?;
    }
    protect_paths(&root, spec, |path| !path.starts_with("/proc/") && !path.starts_with("/sys/"))?;
    if spec.etc_files {
        // Staged on /dev's tmpfs, which the container cannot see them on.
        let dev = root.existing_subdir("dev")?.context("the container's /dev vanished")?;
        write_etc_files(&root, &dev, dns, spec)?;
    }
    // The working directory, made if missing (docker's --workdir is), here
    // where the root may still be written: `--read-only` comes after.
    if spec.process.cwd != "/" && root.resolve_in_root(container_relative(&spec.process.cwd)?)?.is_none() {
        root.make_path(container_relative(&spec.process.cwd)?, true)
            .with_context(|| format!("creating the working directory {}", spec.process.cwd))?;
    }
    before_pivot()?;

    // pivot_root(".", ".") stacks the old root on the new one; the detach
    // then takes it away (pivot_root(2), NOTES).
    fchdir(&root.fd).context("entering the new root")?;
    pivot_root(".", ".").context("pivot_root into the new root")?;
    umount2(".", MntFlags::MNT_DETACH).context("detaching the host's root")?;
    nix::unistd::chdir("/").context("entering the new root")?;
    if matches!(source, RootSource::HostSystem) || spec.root_readonly {
        remount_read_only(Path::new("/")).context("making the root read-only")?;
    }
    // Applied to the container's own / now, as runc applies it: before
    // pivot_root it would be the host's.
    if let Some(propagation) = spec.root_propagation.filter(|p| p.kind != PropagationKind::Private) {
        if propagation.kind == PropagationKind::Shared && spec.namespaces.user == Namespace::Host {
            bail!(
                "shared root propagation without a user namespace would send the container's mounts to the host"
            );
        }
        set_propagation(Path::new("/"), propagation).context("setting the root's propagation")?;
    }
    Ok(())
}

/// mount(2)'s propagation change on the mount at `target`.
fn set_propagation(target: &Path, propagation: Propagation) -> Result<()> {
    let mut flags = match propagation.kind {
        PropagationKind::Private => MsFlags::MS_PRIVATE,
        PropagationKind::Slave => MsFlags::MS_SLAVE,
        PropagationKind::Shared => MsFlags::MS_SHARED,
        PropagationKind::Unbindable => MsFlags::MS_UNBINDABLE,
    };
    if propagation.recursive {
        flags |= MsFlags::MS_REC;
    }
    let kind = match propagation.kind {
        PropagationKind::Private => "private",
        PropagationKind::Slave => "a slave",
        PropagationKind::Shared => "shared",
        PropagationKind::Unbindable => "unbindable",
    };
    mount(NO_FSTYPE, target, NO_FSTYPE, flags, None::<&str>)
        .with_context(|| format!("making {} {kind}", target.display()))
}

/// The mount(2) flags of access-time options: the mode, and nodiratime.
fn atime_flags(options: &MountOptions) -> MsFlags {
    let mut flags = match options.atime {
        None => MsFlags::empty(),
        Some(Atime::Strict) => MsFlags::MS_STRICTATIME,
        Some(Atime::Relative) => MsFlags::MS_RELATIME,
        Some(Atime::Never) => MsFlags::MS_NOATIME,
    };
    if options.nodiratime == Some(true) {
        flags |= MsFlags::MS_NODIRATIME;
    }
    flags
}

/// The spec's masked and read-only paths that `select` picks, where they
/// exist: masked ones hidden, read-only ones bound read-only on themselves.
fn protect_paths(root: &Node, spec: &ContainerSpec, select: impl Fn(&str) -> bool) -> Result<()> {
    for path in spec.masked_paths.iter().filter(|p| select(p)) {
        let Some(target) = root.existing(container_relative(path)?)? else { continue };
        mask_node(&target).with_context(|| format!("masking {path}"))?;
    }
    for path in spec.readonly_paths.iter().filter(|p| select(p)) {
        let Some(target) = root.existing(container_relative(path)?)? else { continue };
        bind_read_only(&target.proc_path(), &target).with_context(|| format!("making {path} read-only"))?;
    }
    Ok(())
}

/// A mount point that cannot be made: say why it had to be.
fn explain_unwritable(err: anyhow::Error) -> anyhow::Error {
    let denied = err.chain().any(|cause| {
        matches!(cause.downcast_ref::<Errno>(), Some(Errno::EACCES | Errno::EPERM | Errno::EROFS))
    });
    if denied {
        err.context(
            "the mount point is missing and container root may not create it; create it in the rootfs first",
        )
    } else {
        err
    }
}

/// `/a/b` -> `a/b`: a path in the container, relative to its root.
fn container_relative(path: &str) -> Result<&str> {
    let relative = path.trim_start_matches('/');
    if !path.starts_with('/')
        || relative.is_empty()
        || relative.split('/').any(|c| c.is_empty() || c == "." || c == "..")
    {
        bail!("{path:?} is not an absolute, normalised path in the container");
    }
    Ok(relative)
}

/// One of the spec's mounts. Its target is reached, and what is missing of
/// it created (directories, or an empty file for a bound file), one
/// component at a time without following symlinks, as for every mount.
fn mount_one(
    root: &Node,
    wanted: &Mount,
    spec: &ContainerSpec,
    cgroups: &CgroupView,
    creatable: bool,
) -> Result<()> {
    if wanted.is_standard() {
        return mount_standard(root, &wanted.kind, creatable, spec);
    }
    let relative = container_relative(&wanted.target)?;
    if wanted.if_present && root.existing(relative)?.is_none() {
        return Ok(());
    }
    let mut flags = MsFlags::empty();
    for (asked, flag) in [
        (wanted.nosuid, MsFlags::MS_NOSUID),
        (wanted.nodev, MsFlags::MS_NODEV),
        (wanted.noexec, MsFlags::MS_NOEXEC),
        (wanted.readonly, MsFlags::MS_RDONLY),
    ] {
        if asked {
            flags |= flag;
        }
    }
    let atime = atime_flags(&wanted.options);
    match &wanted.kind {
        MountKind::Bind { source, recursive } => {
            let source_fd = open(source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
                .with_context(|| format!("opening the bind source {}", source.display()))?;
            let is_dir = file_type(&source_fd)? == SFlag::S_IFDIR;
            let target = root.make_path(relative, is_dir)?;
            let rec = if *recursive { MsFlags::MS_REC } else { MsFlags::empty() };
            mount(
                Some(&fd_path(&source_fd)),
                &target.proc_path(),
                NO_FSTYPE,
                MsFlags::MS_BIND | rec,
                None::<&str>,
            )
            .map_err(|errno| match errno {
                // The kernel will not uncover what a user namespace's copy of
                // the host's mounts hides.
                Errno::EINVAL if !*recursive => anyhow::anyhow!(
                    "binding {} (bind, not rbind): it has mounts under it, which a bind must take along in a user namespace; use rbind",
                    source.display()
                ),
                errno => anyhow::Error::new(errno).context(format!("binding {}", source.display())),
            })?;
            // An atime mode asked for replaces the source's; diratime drops
            // its nodiratime.
            let mut clear = MsFlags::empty();
            if wanted.options.atime.is_some() {
                clear |= MsFlags::MS_NOATIME | MsFlags::MS_RELATIME;
            }
            if wanted.options.nodiratime == Some(false) {
                clear |= MsFlags::MS_NODIRATIME;
            }
            if !(flags | atime | clear).is_empty() {
                remount_bind_changing(&target.reopen()?.proc_path(), flags | atime, clear).map_err(|err| {
                    let locked = err.chain().any(|c| c.downcast_ref::<Errno>() == Some(&Errno::EPERM));
                    match locked && !(atime | clear).is_empty() {
                        true => err.context(
                            "in a user namespace a bind keeps the access-time flags of the host's mount (the kernel locks them)",
                        ),
                        false => err,
                    }
                })?;
            }
        }
        MountKind::Tmpfs => {
            let target = root.make_path(relative, true)?;
            mount(Some("tmpfs"), &target.proc_path(), Some("tmpfs"), flags | atime, wanted.data.as_deref())
                .context("mounting a tmpfs")?;
        }
        MountKind::Mqueue => {
            // The kernel mounts the queues of the mounter's ipc namespace,
            // and refuses a user namespace the host's.
            if spec.namespaces.ipc == Namespace::Host && spec.namespaces.user != Namespace::Host {
                bail!("an mqueue file system needs the container's own ipc namespace");
            }
            let target = root.make_path(relative, true)?;
            mount(Some("mqueue"), &target.proc_path(), Some("mqueue"), flags | atime, None::<&str>)
                .context("mounting mqueue")?;
        }
        // The atime options go to its own file systems; bound hierarchies
        // keep the host's (locked in a user namespace).
        MountKind::Cgroup => mount_cgroup(root, relative, flags | atime, spec, cgroups)?,
        MountKind::Proc | MountKind::Sysfs | MountKind::Dev => unreachable!("made by mount_standard"),
    }
    if !wanted.options.recursive.is_empty() {
        let mounted = root.existing(relative)?.context("the mount vanished")?;
        set_recursive(&mounted.fd, &wanted.options.recursive)?;
    }
    if let Some(propagation) = wanted.options.propagation {
        let mounted = root.existing(relative)?.context("the mount vanished")?;
        set_propagation(&mounted.proc_path(), propagation)?;
    }
    Ok(())
}

/// mount_setattr(2)'s `struct mount_attr`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// The mount at `target` and every mount under it get `flags`, at once
/// (mount_setattr(2) with AT_RECURSIVE, Linux 5.12).
fn set_recursive(target: &OwnedFd, flags: &crate::spec::RecursiveFlags) -> Result<()> {
    const RDONLY: u64 = 0x1;
    const NOSUID: u64 = 0x2;
    const NODEV: u64 = 0x4;
    const NOEXEC: u64 = 0x8;
    const ATIME_MASK: u64 = 0x70;
    const NOATIME: u64 = 0x10;
    const STRICTATIME: u64 = 0x20;
    const NODIRATIME: u64 = 0x80;
    const NOSYMFOLLOW: u64 = 0x20_0000;
    let mut attr = MountAttr { attr_set: 0, attr_clr: 0, propagation: 0, userns_fd: 0 };
    for (wanted, bit) in [
        (flags.readonly, RDONLY),
        (flags.nosuid, NOSUID),
        (flags.nodev, NODEV),
        (flags.noexec, NOEXEC),
        (flags.nosymfollow, NOSYMFOLLOW),
        (flags.nodiratime, NODIRATIME),
    ] {
        match wanted {
            Some(true) => attr.attr_set |= bit,
            Some(false) => attr.attr_clr |= bit,
            None => {}
        }
    }
    // The access-time modes are one field: a change clears all of it.
    if let Some(atime) = flags.atime {
        attr.attr_clr |= ATIME_MASK;
        attr.attr_set |= match atime {
            Atime::Strict => STRICTATIME,
            Atime::Never => NOATIME,
            Atime::Relative => 0,
        };
    }
    // SAFETY: mount_setattr reads `size_of::<MountAttr>()` bytes from a live
    // struct of the kernel's layout, and the empty path with AT_EMPTY_PATH
    // names the descriptor's own mount; nothing is written back.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            target.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        let errno = Errno::last();
        let hint = match errno {
            Errno::EPERM => {
                " (in a user namespace the kernel keeps the host's ro, nosuid, nodev, noexec and access-time flags on what it binds)"
            }
            Errno::ENOSYS => " (Linux 5.12 or later has mount_setattr)",
            _ => "",
        };
        bail!(
            "applying the recursive options (rro, rnosuid, ...): {}{hint}",
            crate::error::errno_text(errno)
        );
    }
    Ok(())
}

/// What the container's cgroup file system is made of: the host's
/// hierarchies, read now, while `/proc/self/cgroup` still shows host paths
/// (before the container enters its cgroup namespace). Empty, and nothing
/// read, when the spec mounts none.
pub fn cgroup_view(spec: &ContainerSpec) -> Result<CgroupView> {
    match spec.mounts.iter().any(|m| m.kind == MountKind::Cgroup) {
        true => CgroupView::capture().context("reading the host's cgroup hierarchies"),
        false => Ok(CgroupView::default()),
    }
}

/// The cgroup file system at `relative` (the spec's [`MountKind::Cgroup`]):
/// - on a cgroup v2 host, in the container's own cgroup namespace: cgroup2,
///   whose root the kernel makes the container's cgroup; without one, the
///   container's cgroup directory bound (the kernel would show a new
///   cgroup2 mount's whole tree, or refuse it to a user namespace);
/// - on a cgroup v1 host, where the kernel refuses a user namespace a v1
///   hierarchy: a tmpfs with, for each of the host's hierarchies, the
///   container's cgroup in it bound read-only (rootless runc's way; the
///   hybrid host's cgroup2 `unified` mounted as above), then the tmpfs
///   made read-only. Never writable: the binds are the host's cgroups.
fn mount_cgroup(
    root: &Node,
    relative: &str,
    flags: MsFlags,
    spec: &ContainerSpec,
    view: &CgroupView,
) -> Result<()> {
    // Nothing to execute, no device, no set-id file in a cgroup file system.
    let flags = flags | PSEUDO_FS_FLAGS;
    let own_namespace = spec.namespaces.cgroup == Namespace::New;
    // A bound hierarchy keeps the host mount's access times (a user
    // namespace may not change them).
    let atime = MsFlags::MS_NOATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME | MsFlags::MS_NODIRATIME;
    let bind = |own: &Path, target: &Node| -> Result<()> {
        mount(Some(own), &target.proc_path(), NO_FSTYPE, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .with_context(|| format!("binding {}", own.display()))?;
        remount_bind(&target.reopen()?.proc_path(), flags & !atime)
    };
    // cgroup2 in the container's namespace, or the container's directory.
    let cgroup2 = |own: &Path, target: &Node| -> Result<()> {
        match own_namespace {
            true => mount(Some("cgroup2"), &target.proc_path(), Some("cgroup2"), flags, None::<&str>)
                .context("mounting cgroup2"),
            false => bind(own, target),
        }
    };
    let target = root.make_path(relative, true)?;
    if view.unified {
        let own = &view.hierarchies.first().context("the host's cgroup2 mount")?.own;
        return cgroup2(own, &target);
    }
    if !flags.contains(MsFlags::MS_RDONLY) {
        bail!("this host runs cgroup v1, whose hierarchies a container gets only read-only");
    }
    if view.hierarchies.is_empty() {
        bail!("the host mounts no cgroup hierarchy under /sys/fs/cgroup");
    }
    mount(Some("tmpfs"), &target.proc_path(), Some("tmpfs"), flags & !MsFlags::MS_RDONLY, Some("mode=0755"))
        .context("mounting a tmpfs for the cgroup hierarchies")?;
    let tmpfs = target.reopen()?;
    for hierarchy in &view.hierarchies {
        let dir = tmpfs.subdir(&hierarchy.name, true)?;
        match hierarchy.v2 {
            true => cgroup2(&hierarchy.own, &dir)?,
            false => bind(&hierarchy.own, &dir)?,
        }
    }
    for (name, target) in &view.links {
        symlinkat(target.as_str(), tmpfs.fd.as_fd(), name.as_str())
            .with_context(|| format!("linking {name} to {target}"))?;
    }
    remount_read_only(&target.reopen()?.proc_path())
}

/// `--device`: the host's node, checked by descriptor to be a character
/// or block device (the type the kernel will act on, whatever the path
/// was), bound read-only on its target (made, as a file, without following
/// links), as the profile's own /dev nodes are.
fn bind_device(root: &Node, device: &crate::spec::Device) -> Result<()> {
    let fd = open(&device.source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).context("opening it")?;
    if !matches!(file_type(&fd)?, SFlag::S_IFCHR | SFlag::S_IFBLK) {
        bail!("not a character or block device");
    }
    let target = root.make_path(container_relative(&device.target)?, false)?;
    bind_read_only(&fd_path(&fd), &target).with_context(|| format!("binding it on {}", device.target))
}

/// A device node or FIFO (an OCI config's `linux.devices`), made with
/// mknod(2) as runc makes it where container root is host root, with the
/// config's mode and owner; its directories made on the way without
/// following links. A device node is then bound on itself without
/// `nodev`, which the /dev tmpfs has: it opens, and a node the container
/// makes in /dev itself does not. One already there is kept if it is that
/// very node (runc keeps it, mode and owner too).
fn make_device_node(root: &Node, node: &DeviceNode, spec: &ContainerSpec) -> Result<()> {
    let kind = match node.kind {
        NodeKind::Char => SFlag::S_IFCHR,
        NodeKind::Block => SFlag::S_IFBLK,
        NodeKind::Fifo => SFlag::S_IFIFO,
    };
    // The kernel asks for CAP_MKNOD over the host's user namespace.
    if kind != SFlag::S_IFIFO && spec.namespaces.user != Namespace::Host {
        bail!("in a user namespace no one may make a device node; bind the host's instead");
    }
    let relative = container_relative(&node.target)?;
    let (dir, name) = match relative.rsplit_once('/') {
        Some((parent, name)) => (Some(root.make_path(parent, true)?), name),
        None => (None, relative),
    };
    let dir = dir.as_ref().unwrap_or(root);
    let rdev = nix::sys::stat::makedev(node.major.into(), node.minor.into());
    let made = match nix::sys::stat::mknodat(dir.fd.as_fd(), name, kind, Mode::empty(), rdev) {
        Ok(()) => true,
        Err(Errno::EEXIST) => false,
        Err(errno) => return Err(errno).context("mknod"),
    };
    let target = dir.existing(name)?.context("it vanished")?;
    let stat = fstat(&target.fd).context("fstat")?;
    if file_type(&target.fd)? != kind || (kind != SFlag::S_IFIFO && stat.st_rdev != rdev) {
        bail!("something else is there already");
    }
    if made {
        // mknod applied zookeeper's umask; the mode is the config's.
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            &target.proc_path(),
            Mode::from_bits_truncate(node.mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .context("setting its mode")?;
        chown(&target.proc_path(), Some(Uid::from_raw(node.uid)), Some(nix::unistd::Gid::from_raw(node.gid)))
            .context("setting its owner")?;
    }
    if kind != SFlag::S_IFIFO {
        mount(Some(&target.proc_path()), &target.proc_path(), NO_FSTYPE, MsFlags::MS_BIND, None::<&str>)
            .context("binding it on itself")?;
        // Exactly these flags: without nodev. (Root over the host's user
        // namespace, the only one that gets here, has no locked flags.)
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
        mount(NO_FSTYPE, &target.reopen()?.proc_path(), NO_FSTYPE, flags, None::<&str>)
            .context("letting it open (remounting it without nodev)")?;
    }
    Ok(())
}

/// A tmpfs with the host's system directories bound read-only, and private
/// tmpfs mounts for the places programs write.
fn build_default_root(mountpoint: &Path) -> Result<()> {
    mount(Some("tmpfs"), mountpoint, Some("tmpfs"), TMPFS_FLAGS, Some("mode=0755"))
        .context("mounting the default root's tmpfs")?;
    let root = Node::open(mountpoint)?;
    for name in HOST_SYSTEM_DIRS {
        let host = Path::new("/").join(name);
        let Ok(meta) = host.symlink_metadata() else { continue };
        if meta.file_type().is_symlink() {
            // Merged /usr: /bin -> usr/bin and the like, as on the host.
            let target = std::fs::read_link(&host).with_context(|| format!("reading {}", host.display()))?;
            symlinkat(&target, root.fd.as_fd(), name).with_context(|| format!("linking /{name}"))?;
        } else if meta.is_dir() {
            let target = root.subdir(name, true)?;
            bind_read_only(&host, &target)?;
        }
    }
    for (name, mode) in [("tmp", "mode=1777"), ("root", "mode=0700"), ("run", "mode=0755")] {
        let dir = root.subdir(name, true)?;
        mount(Some("tmpfs"), &dir.proc_path(), Some("tmpfs"), TMPFS_FLAGS, Some(mode))
            .with_context(|| format!("mounting a tmpfs on /{name}"))?;
    }
    for name in ["home", "var", "sys", "mnt"] {
        root.subdir(name, true)?;
    }
    if let Some(etc) = root.existing_subdir("etc")? {
        mask_host_secrets(&etc)?;
    }
    Ok(())
}

/// The host's secrets in its /etc, hidden from the default root: password
/// hashes, the SSH host keys, TLS private keys. Each is masked only if the
/// container could read it, which is when container root is host root
/// (root without a subordinate range); for anyone else the host's own
/// permissions already keep them out, and the check costs no mount.
const HOST_SECRETS: [&str; 6] =
    ["shadow", "shadow-", "gshadow", "gshadow-", "security/opasswd", "ssl/private"];

fn mask_host_secrets(etc: &Dir) -> Result<()> {
    let mut secrets: Vec<String> = HOST_SECRETS.iter().map(|s| s.to_string()).collect();
    if let Ok(entries) = std::fs::read_dir(etc.proc_path().join("ssh")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("ssh_host_") && name.ends_with("_key") {
                secrets.push(format!("ssh/{name}"));
            }
        }
    }
    for secret in secrets {
        // The host's /etc is trusted, but a symlink is not a secret's file.
        let Ok(Some(target)) = etc.existing(&secret) else { continue };
        let readable = nix::unistd::faccessat(
            nix::fcntl::AT_FDCWD,
            &target.proc_path(),
            nix::unistd::AccessFlags::R_OK,
            nix::fcntl::AtFlags::AT_EACCESS,
        );
        if readable.is_ok() {
            mask_node(&target).with_context(|| format!("masking the host's /etc/{secret}"))?;
        }
    }
    Ok(())
}

/// The container's /etc/hostname, /etc/hosts and /etc/resolv.conf, as
/// docker generates them:
/// - hostname: the spec's;
/// - hosts: localhost (IPv4 and IPv6), docker's IPv6 names, the
///   `--add-host` entries, and the container's own name (its slirp4netns
///   address, or 127.0.1.1 as Debian has it where the address is not known
///   in advance);
/// - resolv.conf: the `--dns` servers; else, with a network whose DNS
///   forwarder is `dns`, that forwarder where the root's file names no
///   server the container can reach (none, or only loopback ones, which are
///   the host's); else the root's own. The root's `search` and `options`
///   lines are kept.
///
/// They are bound over the root's files (found as the container will see
/// them); the files on disk are untouched. A file the root lacks is made
/// empty first, as a mount point (see [`make_etc_file`]). The contents are
/// written in the container's /dev tmpfs, bound, and unlinked there again.
fn write_etc_files(root: &Node, dev: &Dir, dns: Option<&str>, spec: &ContainerSpec) -> Result<()> {
    let hostname = &spec.hostname;
    let own_address =
        if spec.network == crate::spec::Network::Slirp4netns { "10.0.2.100" } else { "127.0.1.1" };
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (name, address) in &spec.extra_hosts {
        hosts.push_str(&format!("{address}\t{name}\n"));
    }
    hosts.push_str(&format!("{own_address}\t{hostname}\n"));
    let mut files = vec![("hostname", format!("{hostname}\n")), ("hosts", hosts)];
    let current = etc_file(root, "resolv.conf")?.as_ref().map(read_bounded).transpose()?;
    let current = current.map(|text| String::from_utf8_lossy(&text).into_owned());
    let servers: Vec<String> = match dns {
        _ if !spec.dns_servers.is_empty() => spec.dns_servers.iter().map(|ip| ip.to_string()).collect(),
        Some(forwarder) if !current.as_deref().is_some_and(has_reachable_nameserver) => {
            vec![forwarder.to_string()]
        }
        _ => Vec::new(),
    };
    if !servers.is_empty() {
        let mut resolv_conf: String = current
            .as_deref()
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("search") || l.starts_with("options"))
            .map(|l| format!("{l}\n"))
            .collect();
        for server in servers {
            resolv_conf.push_str(&format!("nameserver {server}\n"));
        }
        files.push(("resolv.conf", resolv_conf));
    } else if current.is_none() {
        // Nothing to say, but the file is there, as docker's always is.
        files.push(("resolv.conf", String::new()));
    }
    for (name, content) in files {
        // A file the spec mounts itself is the caller's: containerd's CRI
        // plugin binds the pod's /etc/hostname, /etc/hosts and
        // /etc/resolv.conf into every container of a pod, and podman its
        // own; binding zookeeper's over them would hide the pod's names.
        let path = format!("/etc/{name}");
        if spec
            .mounts
            .iter()
            .any(|m| m.target.trim_end_matches('/') == path || m.target.trim_end_matches('/') == "/etc")
        {
            continue;
        }
        let target = match etc_file(root, name)? {
            Some(target) => target,
            None => match make_etc_file(root, name)? {
                Some(target) => target,
                None => continue,
            },
        };
        let staged = format!(".zoo-{name}");
        let file = openat(
            dev.fd.as_fd(),
            staged.as_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .with_context(|| format!("writing the container's /etc/{name}"))?;
        nix::unistd::write(&file, content.as_bytes())
            .with_context(|| format!("writing the container's /etc/{name}"))?;
        mount(Some(&fd_path(&file)), &fd_path(&target), NO_FSTYPE, MsFlags::MS_BIND, None::<&str>)
            .with_context(|| format!("binding the container's /etc/{name}"))?;
        nix::unistd::unlinkat(dev.fd.as_fd(), staged.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir)
            .with_context(|| format!("tidying /dev/{staged}"))?;
    }
    Ok(())
}

/// `/etc/NAME` that the root lacks, made as an empty file to bind over (as
/// `-v` makes its mount points; with `--overlay` it lands in the private
/// layer): `/etc` found as the container will see it, made if absent, the
/// file created with O_EXCL and O_NOFOLLOW, so no link is followed out of
/// the root. `None`, and the container goes without the file, where there
/// is something else by that name (a dangling link, a FIFO: the rootfs's
/// business, as for [`etc_file`]) or container root may not write there
/// (a DIR it does not own, a read-only file system, the default root's
/// read-only /etc, an overlay over an /etc whose owner it does not map).
fn make_etc_file(root: &Node, name: &str) -> Result<Option<OwnedFd>> {
    // EOVERFLOW: an overlay cannot copy /etc up, its owner being one the
    // container does not map.
    let denied = |errno: Errno| {
        matches!(errno, Errno::EACCES | Errno::EPERM | Errno::EROFS | Errno::EEXIST | Errno::EOVERFLOW)
    };
    let etc = match root.resolve_in_root("etc")? {
        Some(etc) => etc,
        None => match mkdirat(root.fd.as_fd(), "etc", Mode::from_bits_truncate(0o755)) {
            Ok(()) => match root.resolve_in_root("etc")? {
                Some(etc) => etc,
                None => return Ok(None),
            },
            Err(errno) if denied(errno) => return Ok(None),
            Err(errno) => return Err(errno).context("creating /etc"),
        },
    };
    if file_type(&etc)? != SFlag::S_IFDIR {
        return Ok(None);
    }
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match openat(etc.as_fd(), name, flags, Mode::from_bits_truncate(0o644)) {
        Ok(_) => {}
        Err(errno) if denied(errno) => return Ok(None),
        Err(errno) => return Err(errno).with_context(|| format!("creating /etc/{name}")),
    }
    let fd = openat(etc.as_fd(), name, O_PATH_NOFOLLOW, Mode::empty())
        .with_context(|| format!("opening /etc/{name}"))?;
    Ok((file_type(&fd)? == SFlag::S_IFREG).then_some(fd))
}

/// The root's `/etc/NAME` as the container will see it: a symlink (an
/// image's `resolv.conf -> ../run/systemd/resolve/stub-resolv.conf`)
/// resolved inside the root. `None` unless it is a regular file: a FIFO,
/// a device or a directory there is the rootfs's business, not a file to
/// read or bind over.
fn etc_file(root: &Node, name: &str) -> Result<Option<OwnedFd>> {
    let Some(fd) = root.resolve_in_root(&format!("etc/{name}"))? else { return Ok(None) };
    Ok((file_type(&fd)? == SFlag::S_IFREG).then_some(fd))
}

/// The most of a rootfs's file zookeeper reads: a resolv.conf is a few
/// lines, and a hostile one may be endless.
const READ_LIMIT: u64 = 64 * 1024;

/// Reads at most [`READ_LIMIT`] bytes of the regular file `fd` (an O_PATH
/// descriptor whose type was checked), without blocking.
fn read_bounded(fd: &OwnedFd) -> Result<Vec<u8>> {
    use std::io::Read;
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let file = open(&fd_path(fd), flags, Mode::empty()).context("opening a file of the container's root")?;
    let mut text = Vec::new();
    std::fs::File::from(file)
        .take(READ_LIMIT)
        .read_to_end(&mut text)
        .context("reading a file of the container's root")?;
    Ok(text)
}

/// A nameserver line whose address is not the host's loopback.
fn has_reachable_nameserver(resolv_conf: &str) -> bool {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .any(|addr| addr.parse::<std::net::IpAddr>().is_ok_and(|ip| !ip.is_loopback()))
}

/// A tmpfs /dev with the usual device files, its own devpts, shm and links.
fn mount_dev(dev: &Dir) -> Result<()> {
    mount(
        Some("tmpfs"),
        &dev.proc_path(),
        Some("tmpfs"),
        TMPFS_FLAGS | MsFlags::MS_NOEXEC,
        Some("mode=0755"),
    )
    .context("mounting a tmpfs on /dev")?;
    let dev = dev.reopen()?;
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        let file = openat(
            dev.fd.as_fd(),
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o666),
        )
        .with_context(|| format!("creating /dev/{name}"))?;
        drop(file);
        let target = dev.existing(name)?.with_context(|| format!("/dev/{name} vanished"))?;
        bind_read_only(&host, &target)
            .with_context(|| format!("binding {} into the container", host.display()))?;
    }
    let pts = dev.subdir("pts", true)?;
    mount(
        Some("devpts"),
        &pts.proc_path(),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .context("mounting devpts on /dev/pts")?;
    let shm = dev.subdir("shm", true)?;
    mount(Some("shm"), &shm.proc_path(), Some("tmpfs"), PSEUDO_FS_FLAGS, Some("mode=1777"))
        .context("mounting a tmpfs on /dev/shm")?;
    for (name, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlinkat(target, dev.fd.as_fd(), name).with_context(|| format!("linking /dev/{name}"))?;
    }
    Ok(())
}

/// A read-only sysfs, where the kernel lets the container have one (it owns
/// its network namespace, which sysfs needs); otherwise /sys stays empty.
/// Whether it was mounted.
fn mount_sys(sys: &Dir) -> Result<bool> {
    let flags = PSEUDO_FS_FLAGS | MsFlags::MS_RDONLY;
    match mount(Some("sysfs"), &sys.proc_path(), Some("sysfs"), flags, None::<&str>) {
        Ok(()) => Ok(true),
        Err(Errno::EPERM | Errno::EACCES) => Ok(false),
        Err(err) => Err(err).context("mounting sysfs on /sys"),
    }
}

/// Hides `target`: an empty read-only tmpfs over a directory, /dev/null
/// over a file.
fn mask_node(target: &Node) -> Result<()> {
    if file_type(&target.fd)? == SFlag::S_IFDIR {
        let flags = PSEUDO_FS_FLAGS | MsFlags::MS_RDONLY;
        mount(Some("tmpfs"), &target.proc_path(), Some("tmpfs"), flags, Some("size=0,mode=0555"))?;
    } else {
        bind_read_only(Path::new("/dev/null"), target)?;
    }
    Ok(())
}

/// Binds `source` on `target` and makes the new mount read-only. Every bind
/// of a host inode is read-only, device nodes too (their I/O does not
/// need a writable mount): where container root is host root (root
/// without a subordinate range), a writable bind would let it chmod, chown
/// or touch the host's own /dev/null.
fn bind_read_only(source: &Path, target: &Node) -> Result<()> {
    mount(Some(source), &target.proc_path(), NO_FSTYPE, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .with_context(|| format!("binding {}", source.display()))?;
    // A remount applies to the mount at the path: look it up again to get
    // the new mount rather than the directory under it.
    remount_read_only(&target.reopen()?.proc_path())
}

/// Makes the mount at `target` read-only, keeping the flags a user namespace
/// may not clear (nosuid, nodev, noexec, atime: the kernel locks them).
fn remount_read_only(target: &Path) -> Result<()> {
    remount_bind(target, MsFlags::MS_RDONLY)
}

/// Adds `flags` (read-only, nosuid, nodev, noexec) to the bind mount at
/// `target`, keeping the flags it has: a user namespace may not clear the
/// locked ones, and a remount sets all of them at once.
fn remount_bind(target: &Path, flags: MsFlags) -> Result<()> {
    remount_bind_changing(target, flags, MsFlags::empty())
}

/// [`remount_bind`], not keeping the flags in `clear` (an access-time mode
/// asked for in place of the source's). In a user namespace the kernel
/// refuses to change a locked flag: that is an error, not a flag dropped.
fn remount_bind_changing(target: &Path, flags: MsFlags, clear: MsFlags) -> Result<()> {
    let current = statvfs(target).with_context(|| format!("statvfs {}", target.display()))?.flags();
    let mut all = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags;
    for (has, keep) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if current.contains(has) && !clear.contains(keep) {
            all |= keep;
        }
    }
    mount(NO_FSTYPE, target, NO_FSTYPE, all, None::<&str>)
        .with_context(|| format!("remounting {} with {flags:?}", target.display()))
}

/// The file system type of a bind or a flags change, which the kernel
/// ignores. A string rather than NULL: valgrind's mount(2) wrapper reads it
/// as one, and the supervisor must run clean under valgrind.
const NO_FSTYPE: Option<&str> = Some("none");

/// `/proc/self/fd/N`: mounting on it mounts on exactly what the descriptor
/// refers to, whatever the path to it is now.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// A file or directory held by an `O_PATH` descriptor, with the directory
/// it was found in, to look it up again once something is mounted on it.
struct Node {
    fd: OwnedFd,
    parent: Option<(Rc<OwnedFd>, String)>,
}

/// Nodes zookeeper mounts on are all directories but for a few proc files.
type Dir = Node;

fn file_type(fd: &OwnedFd) -> Result<SFlag> {
    let mode = fstat(fd).context("fstat")?.st_mode;
    Ok(SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()))
}

const O_PATH_NOFOLLOW: OFlag = OFlag::O_PATH.union(OFlag::O_NOFOLLOW).union(OFlag::O_CLOEXEC);

impl Node {
    fn open(path: &Path) -> Result<Node> {
        let fd = open(path, O_PATH_NOFOLLOW | OFlag::O_DIRECTORY, Mode::empty())
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Node { fd, parent: None })
    }

    fn proc_path(&self) -> PathBuf {
        fd_path(&self.fd)
    }

    /// `relative` (names separated by `/`, no `..`) if it exists and is no
    /// symlink at any step; `None` if it does not exist.
    fn existing(&self, relative: &str) -> Result<Option<Node>> {
        let mut dir = Rc::new(self.fd.try_clone().context("duplicating a descriptor")?);
        let mut components = relative.split('/').peekable();
        while let Some(name) = components.next() {
            if name == ".." || name == "." || name.is_empty() {
                bail!("bad path {relative}");
            }
            let fd = match openat(dir.as_fd(), name, O_PATH_NOFOLLOW, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => return Ok(None),
                Err(err) => return Err(err).with_context(|| format!("opening /{relative}")),
            };
            if file_type(&fd)? == SFlag::S_IFLNK {
                // "must be mounted on ordinary directory": runc's words,
                // which its callers' tests look for.
                bail!(
                    "/{relative} is a symbolic link in the container's root; refusing to mount over it (it must be mounted on ordinary directory)"
                );
            }
            if components.peek().is_none() {
                return Ok(Some(Node { fd, parent: Some((dir, name.to_string())) }));
            }
            dir = Rc::new(fd);
        }
        Ok(None)
    }

    /// `relative` as the container will see it once this directory is its
    /// root: symlinks followed, but absolute ones and `..` kept inside this
    /// directory, one component at a time through O_PATH descriptors (the
    /// kernel's RESOLVE_IN_ROOT, done by hand: valgrind, under which the
    /// tests run zookeeper, does not know openat2). `None` if a component
    /// is missing or not a directory.
    fn resolve_in_root(&self, relative: &str) -> Result<Option<OwnedFd>> {
        // Linux's own limit on symlinks in one lookup.
        const MAX_LINKS: u32 = 40;
        let mut stack = vec![self.fd.try_clone().context("duplicating a descriptor")?];
        let mut pending: std::collections::VecDeque<Vec<u8>> =
            relative.split('/').map(|c| c.as_bytes().to_vec()).collect();
        let mut links = 0;
        while let Some(name) = pending.pop_front() {
            match name.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    if stack.len() > 1 {
                        stack.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let dir = stack.last().context("resolving in the root")?;
            let fd = match openat(dir.as_fd(), name.as_slice(), O_PATH_NOFOLLOW, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(None),
                Err(err) => return Err(err).with_context(|| format!("opening /{relative}")),
            };
            match file_type(&fd)? {
                SFlag::S_IFLNK => {
                    links += 1;
                    if links > MAX_LINKS {
                        bail!("/{relative}: too many levels of symbolic links");
                    }
                    let target = nix::fcntl::readlinkat(fd.as_fd(), "")
                        .with_context(|| format!("reading /{relative}"))?;
                    let target = target.as_encoded_bytes();
                    if target.starts_with(b"/") {
                        stack.truncate(1);
                    }
                    for component in target.split(|b| *b == b'/').rev() {
                        pending.push_front(component.to_vec());
                    }
                }
                SFlag::S_IFDIR => stack.push(fd),
                _ if pending.iter().all(|c| c.is_empty()) => return Ok(Some(fd)),
                _ => return Ok(None),
            }
        }
        Ok(stack.pop())
    }

    /// `relative` under this directory, made if missing: the directories on
    /// the way, and the last component a directory (`dir`) or an empty
    /// file, each created with mkdirat/openat relative to its parent, so
    /// no symlink is followed. An existing last component must be of the
    /// kind asked for.
    fn make_path(&self, relative: &str, dir: bool) -> Result<Node> {
        let mut current = Node { fd: self.fd.try_clone().context("duplicating a descriptor")?, parent: None };
        let components: Vec<&str> = relative.split('/').collect();
        for (index, name) in components.iter().enumerate() {
            let last = index + 1 == components.len();
            if !last || dir {
                current = current.subdir(name, true).map_err(explain_unwritable)?;
                continue;
            }
            if current.existing(name)?.is_none() {
                match openat(
                    current.fd.as_fd(),
                    *name,
                    OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                ) {
                    Ok(_) | Err(Errno::EEXIST) => {}
                    Err(err) => {
                        return Err(explain_unwritable(
                            anyhow::Error::new(err).context(format!("creating /{relative}")),
                        ));
                    }
                }
            }
            let node = current.existing(name)?.with_context(|| format!("/{relative} vanished"))?;
            if file_type(&node.fd)? == SFlag::S_IFDIR {
                bail!("/{relative} is a directory in the container, and the bind source is a file");
            }
            return Ok(node);
        }
        Ok(current)
    }

    /// The directory `name` under this one, created if `create` and absent.
    fn subdir(&self, name: &str, create: bool) -> Result<Dir> {
        if let Some(dir) = self.existing_subdir(name)? {
            return Ok(dir);
        }
        if !create {
            bail!("the container's root has no /{name} directory");
        }
        mkdirat(self.fd.as_fd(), name, Mode::from_bits_truncate(0o755))
            .with_context(|| format!("creating /{name}"))?;
        self.existing_subdir(name)?.with_context(|| format!("/{name} vanished"))
    }

    fn existing_subdir(&self, name: &str) -> Result<Option<Dir>> {
        let Some(node) = self.existing(name)? else { return Ok(None) };
        if file_type(&node.fd)? != SFlag::S_IFDIR {
            bail!("/{name} in the container's root is not a directory");
        }
        Ok(Some(node))
    }

    /// The node as it is now: after a mount on it, the mounted root.
    fn reopen(&self) -> Result<Node> {
        let (parent, name) = self.parent.as_ref().context("reopening the root")?;
        let fd = openat(parent.as_fd(), name.as_str(), O_PATH_NOFOLLOW, Mode::empty())
            .with_context(|| format!("reopening {name}"))?;
        Ok(Node { fd, parent: self.parent.clone() })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_nameservers_are_the_hosts() {
        use super::has_reachable_nameserver as reachable;
        assert!(reachable("# c\nnameserver 10.255.255.53\n"));
        assert!(reachable("nameserver 127.0.0.53\nnameserver 2001:db8::1\n"));
        assert!(!reachable("nameserver 127.0.0.53\noptions edns0\n"));
        assert!(!reachable("nameserver ::1\n"));
        assert!(!reachable(""));
    }
}
