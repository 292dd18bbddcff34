//! `--cleanup`: removes what killed zookeepers left behind, the
//! `/tmp/zoo.XXXXXX` mountpoint directories and the `zoo-<pid>` cgroups
//! (the latter in `cgroups::remove_stale`).
//!
//! /tmp is shared with every user, and root runs this too: whatever is found
//! there is treated as planted by an attacker. So nothing is reached by
//! path. /tmp is opened once and every directory under it is opened
//! relative to it, without following a symbolic link, then checked (a
//! directory, the caller's, writable by no one else) before anything inside
//! it is touched; root cleans only its own directories, never another
//! user's. Entries are unlinked relative to the directory's descriptor, and
//! the directory itself only after checking that the name still leads to
//! the very directory that was opened. Every open is non-blocking (a FIFO
//! cannot hang it) and every read is bounded (a link to /dev/zero cannot
//! make it read forever). A pasta named in a `pasta.pid` is killed only if
//! it really is the caller's pasta, started with that very file, and
//! through a pidfd taken before those checks, so a pid reused meanwhile is
//! not hit.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, Flock, FlockArg, OFlag, open, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::error::errno_text;

/// What `--cleanup` did: the paths it removed, and those it could not
/// remove with the reason.
#[derive(Debug, Default)]
pub struct Report {
    pub removed: Vec<PathBuf>,
    pub failed: Vec<(PathBuf, String)>,
}

/// Removes the stale mountpoint directories and cgroups of the caller.
pub fn run() -> Report {
    let mut report = Report::default();
    remove_stale_mountpoints(Path::new(TMP), &mut report);
    let (removed, failed) = crate::cgroups::remove_stale();
    report.removed.extend(removed);
    report.failed.extend(failed);
    report
}

const TMP: &str = "/tmp";

/// The most a `pasta.pid` may hold: a pid and a newline, with room to spare.
const PID_FILE_LIMIT: usize = 32;

/// The most of a /proc file read to tell what a process is.
const PROC_FILE_LIMIT: u64 = 64 * 1024;

/// The names pasta runs under: it re-executes itself as passt.avx2 where
/// the CPU has AVX2.
const PASTA_NAMES: [&str; 4] = ["pasta", "passt", "pasta.avx2", "passt.avx2"];

/// The mountpoint directories under `tmp` that no running zookeeper holds:
/// stops a pasta left running, empties them and removes them.
pub fn remove_stale_mountpoints(tmp: &Path, report: &mut Report) {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let tmp_fd = match open(tmp, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(errno) => return report.failed.push((tmp.to_path_buf(), errno_text(errno))),
    };
    let names = match entries(tmp_fd.as_fd()) {
        Ok(names) => names,
        Err(errno) => return report.failed.push((tmp.to_path_buf(), errno_text(errno))),
    };
    let owners = acceptable_owners();
    for name in names.iter().filter(|name| is_mountpoint_name(name)) {
        clean_one(tmp_fd.as_fd(), tmp, name, &owners, report);
    }
}

/// What [`crate::rootfs::Mountpoint::create`] makes: `zoo.` and mkdtemp's
/// six characters. Anything else is not zookeeper's, whoever owns it.
fn is_mountpoint_name(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    let prefix = crate::rootfs::MOUNTPOINT_PREFIX.as_bytes();
    bytes.len() == prefix.len() + 6
        && bytes.starts_with(prefix)
        && bytes[prefix.len()..].iter().all(u8::is_ascii_alphanumeric)
}

/// Who may own a mountpoint of the caller's: the caller, and the host uid
/// of container root, to whom zookeeper hands it (root's first subordinate
/// uid when root has a range; the caller otherwise).
fn acceptable_owners() -> Vec<u32> {
    let me = nix::unistd::geteuid().as_raw();
    let plan = crate::idmap::IdMapPlan::for_current_caller();
    let container_root = plan.uid.ranges.iter().find(|r| r.inside == 0).map_or(me, |r| r.outside);
    vec![me, container_root]
}

/// The names in the directory `dir`, without `.` and `..`.
pub(crate) fn entries(dir: BorrowedFd) -> Result<Vec<OsString>, Errno> {
    // Dir takes its own descriptor: "." reopens `dir` itself.
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut listing = Dir::openat(dir, ".", flags, Mode::empty())?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(OsString::from_vec(name));
        }
    }
    Ok(names)
}

fn clean_one(tmp_fd: BorrowedFd, tmp: &Path, name: &OsStr, owners: &[u32], report: &mut Report) {
    let path = tmp.join(name);
    // O_NOFOLLOW: a symbolic link planted under this name is not followed
    // (ELOOP); O_DIRECTORY: nor is anything but a directory opened.
    let flags =
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let Ok(dir) = openat(tmp_fd, name, flags, Mode::empty()) else { return };
    let Ok(opened) = fstat(&dir) else { return };
    let is_dir = SFlag::from_bits_truncate(opened.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    // Someone else's, or one that others may write into: not ours to clean.
    if !is_dir || !owners.contains(&opened.st_uid) || opened.st_mode & 0o022 != 0 {
        return;
    }
    // A running zookeeper holds its directory locked; a killed one's is free.
    let Ok(dir) = Flock::lock(dir, FlockArg::LockExclusiveNonblock) else { return };
    let dir_fd = dir.as_fd();

    if let Some(removed) = stop_stale_pasta(dir_fd, &path) {
        report.removed.push(removed);
    }
    let names = match entries(dir_fd) {
        Ok(names) => names,
        Err(errno) => return report.failed.push((path, errno_text(errno))),
    };
    for entry in names {
        let entry_path = path.join(&entry);
        // The network helpers leave sockets and pid files; zookeeper never
        // makes a directory here, so one is reported, not emptied.
        match unlinkat(dir_fd, entry.as_os_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) => report.removed.push(entry_path),
            Err(Errno::EISDIR) => {
                report.failed.push((entry_path, "a directory, which zookeeper never makes".into()))
            }
            Err(errno) => report.failed.push((entry_path, errno_text(errno))),
        }
    }
    // The name must still lead to the directory that was opened and emptied.
    match fstatat(tmp_fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(now) if same_file(&now, &opened) => match unlinkat(tmp_fd, name, UnlinkatFlags::RemoveDir) {
            Ok(()) => report.removed.push(path),
            Err(errno) => report.failed.push((path, errno_text(errno))),
        },
        Ok(_) => report.failed.push((path, "it was replaced while being cleaned".into())),
        Err(errno) => report.failed.push((path, errno_text(errno))),
    }
}

fn same_file(a: &FileStat, b: &FileStat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

/// pasta, unlike slirp4netns, does not notice when its zookeeper is killed:
/// a dead zookeeper's directory may still name it in `pasta.pid`. It is
/// stopped only if that process really is the caller's pasta, started with
/// that very file. Returns the pid file's path once it is removed.
fn stop_stale_pasta(dir: BorrowedFd, dir_path: &Path) -> Option<PathBuf> {
    let pid_file = dir_path.join("pasta.pid");
    let pid = read_pid_file(dir)?;
    if let Some(process) = Process::open(pid)
        && process.is_pasta_with(&pid_file)
    {
        process.kill();
    }
    unlinkat(dir, "pasta.pid", UnlinkatFlags::NoRemoveDir).ok()?;
    Some(pid_file)
}

/// The pid in `pasta.pid` under `dir`, if it is a regular file of the
/// caller's holding one.
fn read_pid_file(dir: BorrowedFd) -> Option<i32> {
    // O_NONBLOCK: opening a FIFO returns at once instead of waiting for a
    // writer; the type check below then refuses it.
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let fd = openat(dir, "pasta.pid", flags, Mode::empty()).ok()?;
    let stat = fstat(&fd).ok()?;
    let regular = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
    if !regular || stat.st_uid != nix::unistd::geteuid().as_raw() {
        return None;
    }
    let mut text = Vec::with_capacity(PID_FILE_LIMIT);
    std::fs::File::from(fd).take(PID_FILE_LIMIT as u64).read_to_end(&mut text).ok()?;
    let pid: i32 = std::str::from_utf8(&text).ok()?.trim().parse().ok()?;
    (pid > 0).then_some(pid)
}

/// A process held by a pidfd, which keeps naming that process even if it
/// exits and its pid is reused.
struct Process {
    pid: i32,
    pidfd: OwnedFd,
}

impl Process {
    fn open(pid: i32) -> Option<Process> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: the kernel just returned this descriptor, owned by no one else.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Some(Process { pid, pidfd })
    }

    /// Whether the process is a pasta of the caller's whose command line
    /// names `pid_file`. Read after the pidfd was taken: if the pid was
    /// reused since, what is read here is another process, and the pidfd's
    /// signal then finds its own process gone.
    fn is_pasta_with(&self, pid_file: &Path) -> bool {
        let proc_file = |name: &str| -> Option<Vec<u8>> {
            let mut bytes = Vec::new();
            let file = std::fs::File::open(format!("/proc/{}/{name}", self.pid)).ok()?;
            file.take(PROC_FILE_LIMIT).read_to_end(&mut bytes).ok()?;
            Some(bytes)
        };
        let Some(status) = proc_file("status") else { return false };
        let real_uid = String::from_utf8_lossy(&status)
            .lines()
            .find_map(|line| line.strip_prefix("Uid:")?.split_whitespace().next()?.parse::<u32>().ok());
        if real_uid != Some(nix::unistd::geteuid().as_raw()) {
            return false;
        }
        let comm = proc_file("comm").unwrap_or_default();
        let comm = String::from_utf8_lossy(&comm);
        if !PASTA_NAMES.contains(&comm.trim_end()) {
            return false;
        }
        let cmdline = proc_file("cmdline").unwrap_or_default();
        cmdline.split(|b| *b == 0).any(|arg| arg == pid_file.as_os_str().as_bytes())
    }

    fn kill(&self) {
        // SAFETY: a signal to the process the pidfd holds; no memory is passed.
        // SIGKILL: pasta keeps no state worth a graceful stop.
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, self.pidfd.as_raw_fd(), libc::SIGKILL, 0, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mkdtemp_names_are_mountpoints() {
        for good in ["zoo.AbC123", "zoo.000000"] {
            assert!(is_mountpoint_name(OsStr::new(good)), "{good}");
        }
        for bad in ["zoo.", "zoo.abc", "zoo.abcdefg", "zoo.abc/de", "zoo.abc-de", "zoo-123456", "xzoo.abcdef"]
        {
            assert!(!is_mountpoint_name(OsStr::new(bad)), "{bad}");
        }
    }
}
