//! The container's filesystem (SPEC.md 3.4): a private mount tree, the rootfs
//! bind-mounted on a temporary directory, /proc, pivot_root, and the host's
//! root detached.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::unistd::{Uid, chdir, chown, pivot_root};

/// The host directory `/tmp/zoo.XXXXXX` that the rootfs is bind-mounted on
/// inside the container's mount namespace. zookeeper creates it before the
/// container and removes it when the container is gone (on drop).
#[derive(Debug)]
pub struct Mountpoint(PathBuf);

impl Mountpoint {
    /// Creates the directory, owned by `owner` (the host uid of container
    /// root), which must be able to reach it to mount on it.
    pub fn create(owner: Uid) -> Result<Mountpoint> {
        let path = nix::unistd::mkdtemp("/tmp/zoo.XXXXXX").context("creating /tmp/zoo.XXXXXX")?;
        let mountpoint = Mountpoint(path);
        if owner != nix::unistd::geteuid() {
            chown(&mountpoint.0, Some(owner), None)
                .with_context(|| format!("handing {} to container root", mountpoint.0.display()))?;
        }
        Ok(mountpoint)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Mountpoint {
    fn drop(&mut self) {
        // The bind mount lived only in the container's mount namespace, which
        // is gone, so this is an empty directory again.
        if let Err(err) = std::fs::remove_dir(&self.0) {
            eprintln!("zookeeper: removing {}: {err}", self.0.display());
        }
    }
}

/// The file system type of a bind or propagation change, which the kernel
/// ignores. A string rather than NULL: valgrind's mount(2) wrapper reads it
/// as one, and the supervisor must run clean under valgrind.
const NO_FSTYPE: Option<&str> = Some("none");

/// Child side: stop mount events from reaching the host's namespace.
pub fn make_mounts_private() -> Result<()> {
    mount(Some("none"), "/", NO_FSTYPE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("making the mount tree private")
}

/// Child side: makes `rootfs` the container's `/`.
pub fn enter(rootfs: &Path, mountpoint: &Path, mount_proc: bool) -> Result<()> {
    mount(Some(rootfs), mountpoint, NO_FSTYPE, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .with_context(|| format!("bind-mounting {} on {}", rootfs.display(), mountpoint.display()))?;
    chdir(mountpoint).with_context(|| format!("entering {}", mountpoint.display()))?;
    if mount_proc {
        mount_fresh_proc(Path::new("proc"))?;
    }
    // pivot_root(".", ".") stacks the old root on top of the new one; the
    // detach below then takes it away (pivot_root(2), NOTES).
    pivot_root(".", ".").context("pivot_root into the rootfs")?;
    umount2(".", MntFlags::MNT_DETACH).context("detaching the host's root")?;
    chdir("/").context("entering the new root")?;
    Ok(())
}

/// Child side: a proc for the container's own pid namespace on `target`.
pub fn mount_fresh_proc(target: &Path) -> Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), target, Some("proc"), flags, None::<&str>)
        .with_context(|| format!("mounting proc on /{}", target.display()))
}
