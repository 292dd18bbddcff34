//! The copy fallback of an image's root: where overlayfs refuses the
//! layers (more than it stacks, a kernel that refuses it in a user
//! namespace), the container's child copies them, lowest first, into a
//! directory of its writable layer's tmpfs, applying each layer as overlay
//! would: a whiteout (a 0:0 character device) removes what the layers
//! below had at its name, a directory marked `user.overlay.opaque=y` hides
//! what they had under it, any other entry replaces theirs. The copy lives
//! in the container's own mount namespace, so it goes with the container
//! whatever happens to zookeeper.
//!
//! Runs as container root, with its capabilities, before the container
//! exists. The layers are the store's, unpacked by zookeeper, but every
//! step is still taken through descriptors without following a link, on
//! both sides: a symlink a lower layer put in the copy must not redirect
//! what a higher layer writes under its name.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

const DIR_FLAGS: OFlag =
    OFlag::O_RDONLY.union(OFlag::O_DIRECTORY).union(OFlag::O_NOFOLLOW).union(OFlag::O_CLOEXEC);

/// Copies `layers` (uppermost first, any descriptors of their directories)
/// merged into the empty directory `target`.
pub(crate) fn merge_layers(layers: &[OwnedFd], target: BorrowedFd) -> Result<()> {
    let target = openat(target, ".", DIR_FLAGS, Mode::empty()).context("opening the copy's directory")?;
    for (depth, layer) in layers.iter().enumerate().rev() {
        let source = openat(layer.as_fd(), ".", DIR_FLAGS, Mode::empty())
            .with_context(|| format!("opening layer {} (from the top)", depth + 1))?;
        // Hard links within a layer stay links: the first name copied of a
        // multiply-linked file, by its inode, held open for the others.
        let mut links = HashMap::new();
        let mut path = Vec::new();
        merge_dir(&source, &target, &mut path, &mut links)
            .with_context(|| format!("layer {} (from the top)", depth + 1))?;
        let root = fstatat(source.as_fd(), ".", AtFlags::AT_SYMLINK_NOFOLLOW).context("stat of a layer")?;
        set_owner_and_mode(&target, c".", &root, true)?;
        copy_xattrs(&source, &target);
        set_times(&target, c".", &root)?;
    }
    Ok(())
}

fn kind(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT
}

fn c_name(name: &OsStr) -> CString {
    // Names read from a directory hold no NUL.
    CString::new(name.as_bytes()).unwrap_or_default()
}

fn shown(path: &[OsString], name: &OsStr) -> String {
    let mut text = String::new();
    for part in path.iter().map(|p| p.as_os_str()).chain([name]) {
        text.push('/');
        text.push_str(&part.to_string_lossy());
    }
    text
}

fn names(dir: &OwnedFd) -> Result<Vec<OsString>> {
    Ok(crate::cleanup::entries(dir.as_fd())?)
}

fn merge_dir(
    source: &OwnedFd,
    target: &OwnedFd,
    path: &mut Vec<OsString>,
    links: &mut HashMap<(u64, u64), OwnedFd>,
) -> Result<()> {
    for name in names(source).with_context(|| format!("reading {}", shown(path, OsStr::new(""))))? {
        let what = shown(path, &name);
        let stat = fstatat(source.as_fd(), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .with_context(|| format!("stat of {what}"))?;
        let existing = fstatat(target.as_fd(), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        let cname = c_name(&name);
        match kind(&stat) {
            // A whiteout: what the layers below had here goes.
            SFlag::S_IFCHR if stat.st_rdev == 0 => {
                if existing.is_some() {
                    remove(target, &name).with_context(|| format!("removing {what}"))?;
                }
            }
            SFlag::S_IFDIR => {
                let sub_source = openat(source.as_fd(), name.as_os_str(), DIR_FLAGS, Mode::empty())
                    .with_context(|| format!("opening {what}"))?;
                match existing.as_ref().map(kind) {
                    Some(SFlag::S_IFDIR) if crate::image::unpack::is_opaque(sub_source.as_fd()) => {
                        let sub = openat(target.as_fd(), name.as_os_str(), DIR_FLAGS, Mode::empty())?;
                        empty(&sub).with_context(|| format!("emptying {what} (opaque above)"))?;
                    }
                    Some(SFlag::S_IFDIR) => {}
                    other => {
                        if other.is_some() {
                            remove(target, &name).with_context(|| format!("replacing {what}"))?;
                        }
                        nix::sys::stat::mkdirat(
                            target.as_fd(),
                            name.as_os_str(),
                            Mode::from_bits_truncate(0o700),
                        )
                        .with_context(|| format!("creating {what}"))?;
                    }
                }
                let sub_target = openat(target.as_fd(), name.as_os_str(), DIR_FLAGS, Mode::empty())
                    .with_context(|| format!("opening the copy's {what}"))?;
                path.push(name.clone());
                merge_dir(&sub_source, &sub_target, path, links)?;
                path.pop();
                set_owner_and_mode(target, &cname, &stat, true).with_context(|| what.clone())?;
                copy_xattrs(&sub_source, &sub_target);
                // Last: after its entries, whose writes changed it.
                set_times(target, &cname, &stat).with_context(|| what.clone())?;
            }
            file_kind => {
                if existing.is_some() {
                    remove(target, &name).with_context(|| format!("replacing {what}"))?;
                }
                copy_entry(source, target, &name, &stat, file_kind, links)
                    .with_context(|| format!("copying {what}"))?;
            }
        }
    }
    Ok(())
}

fn copy_entry(
    source: &OwnedFd,
    target: &OwnedFd,
    name: &OsStr,
    stat: &FileStat,
    file_kind: SFlag,
    links: &mut HashMap<(u64, u64), OwnedFd>,
) -> Result<()> {
    let cname = c_name(name);
    match file_kind {
        SFlag::S_IFREG => {
            let inode = (stat.st_dev, stat.st_ino);
            if let Some(first) = links.get(&inode) {
                // The name of an open file in /proc, followed: a hard link
                // to it, which linkat's AT_EMPTY_PATH would need
                // CAP_DAC_READ_SEARCH of the host for.
                let first_name = format!("/proc/self/fd/{}", first.as_raw_fd());
                nix::unistd::linkat(
                    nix::fcntl::AT_FDCWD,
                    first_name.as_str(),
                    target.as_fd(),
                    name,
                    AtFlags::AT_SYMLINK_FOLLOW,
                )
                .context("linking")?;
                return Ok(());
            }
            let from = openat(
                source.as_fd(),
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .context("opening")?;
            let flags =
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let to =
                openat(target.as_fd(), name, flags, Mode::from_bits_truncate(0o600)).context("creating")?;
            let (mut reader, mut writer) = (std::fs::File::from(from), std::fs::File::from(to));
            std::io::copy(&mut reader, &mut writer).context("copying the contents")?;
            let (from, to): (OwnedFd, OwnedFd) = (reader.into(), writer.into());
            copy_xattrs(&from, &to);
            if stat.st_nlink > 1 {
                links.insert(inode, to);
            }
        }
        SFlag::S_IFLNK => {
            let link = nix::fcntl::readlinkat(source.as_fd(), name).context("reading the link")?;
            nix::unistd::symlinkat(link.as_os_str(), target.as_fd(), name).context("creating the link")?;
        }
        SFlag::S_IFIFO => {
            nix::sys::stat::mknodat(target.as_fd(), name, SFlag::S_IFIFO, Mode::from_bits_truncate(0o600), 0)
                .context("creating the FIFO")?;
        }
        // Sockets mean nothing copied; device nodes a user namespace
        // cannot make (the unpack skipped them already).
        _ => return Ok(()),
    }
    set_owner_and_mode(target, &cname, stat, file_kind != SFlag::S_IFLNK)?;
    set_times(target, &cname, stat)
}

/// The layer's owner, then its mode (a chown clears set-id bits).
fn set_owner_and_mode(dir: &OwnedFd, name: &std::ffi::CStr, stat: &FileStat, with_mode: bool) -> Result<()> {
    // SAFETY: fchownat and fchmodat read the NUL-terminated name relative
    // to our descriptor; no link is followed.
    let rc = unsafe {
        libc::fchownat(dir.as_raw_fd(), name.as_ptr(), stat.st_uid, stat.st_gid, libc::AT_SYMLINK_NOFOLLOW)
    };
    Errno::result(rc).context("setting the owner")?;
    if with_mode {
        // SAFETY: as above; the name is never a symlink here.
        let rc = unsafe { libc::fchmodat(dir.as_raw_fd(), name.as_ptr(), stat.st_mode & 0o7777, 0) };
        Errno::result(rc).context("setting the mode")?;
    }
    Ok(())
}

fn set_times(dir: &OwnedFd, name: &std::ffi::CStr, stat: &FileStat) -> Result<()> {
    let times = [
        libc::timespec { tv_sec: stat.st_atime, tv_nsec: stat.st_atime_nsec },
        libc::timespec { tv_sec: stat.st_mtime, tv_nsec: stat.st_mtime_nsec },
    ];
    // SAFETY: utimensat reads the name and the two timespecs, alive here.
    let rc =
        unsafe { libc::utimensat(dir.as_raw_fd(), name.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    Errno::result(rc).context("setting the times")?;
    Ok(())
}

/// The extended attributes of `from` on `to`, but for overlay's own marks;
/// those the kernel refuses (trusted.* in a user namespace) are skipped,
/// as the unpack skipped them.
fn copy_xattrs(from: &OwnedFd, to: &OwnedFd) {
    let mut list = vec![0u8; 64 * 1024];
    // SAFETY: flistxattr writes at most list.len() bytes into list.
    let len = unsafe { libc::flistxattr(from.as_raw_fd(), list.as_mut_ptr().cast(), list.len()) };
    if len <= 0 {
        return;
    }
    let mut value = vec![0u8; 64 * 1024];
    for name in list[..len as usize].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"user.overlay.") || name.starts_with(b"trusted.overlay.") {
            continue;
        }
        let Ok(cname) = CString::new(name) else { continue };
        // SAFETY: fgetxattr writes at most value.len() bytes into value.
        let size = unsafe {
            libc::fgetxattr(from.as_raw_fd(), cname.as_ptr(), value.as_mut_ptr().cast(), value.len())
        };
        if size < 0 {
            continue;
        }
        // SAFETY: fsetxattr reads size bytes of value, which it holds.
        unsafe { libc::fsetxattr(to.as_raw_fd(), cname.as_ptr(), value.as_ptr().cast(), size as usize, 0) };
    }
}

/// Removes `name` under `dir`, a directory with everything in it.
fn remove(dir: &OwnedFd, name: &OsStr) -> Result<()> {
    match unlinkat(dir.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
        Err(Errno::EISDIR) => {
            let sub = openat(dir.as_fd(), name, DIR_FLAGS, Mode::empty())?;
            empty(&sub)?;
            unlinkat(dir.as_fd(), name, UnlinkatFlags::RemoveDir)?;
            Ok(())
        }
        other => Ok(other?),
    }
}

fn empty(dir: &OwnedFd) -> Result<()> {
    for name in names(dir)? {
        remove(dir, &name)?;
    }
    Ok(())
}
