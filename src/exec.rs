//! Replacing the container's first process with the command.

use std::ffi::{CStr, CString};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::sync::{Failure, ReportTx};

/// Execs `argv` with exactly `env`, looking a bare name up in the PATH of
/// `env` (the container's, not zookeeper's). Returns only on failure, with
/// the exit status of the shell's convention: 127 not found, 126 found but
/// not executable.
pub fn exec_command(argv: &[CString], env: &[CString]) -> Failure {
    // execve returns only when it fails.
    find(argv, env, |path| Err(execve(path, argv, env))).unwrap_or_else(|| Failure {
        exit_code: 126,
        message: format!("cannot execute '{}'", argv[0].to_string_lossy()),
    })
}

/// Finds `argv[0]` as execvp(3) does, in the PATH of `env`, trying each
/// candidate with `attempt` (exec it, or only check it): `None` once one
/// succeeds, otherwise why not, with the shell's status (127 not found,
/// 126 found but not executable).
fn find(
    argv: &[CString],
    env: &[CString],
    mut attempt: impl FnMut(&CStr) -> Result<(), Errno>,
) -> Option<Failure> {
    let program = &argv[0];
    let shown = program.to_string_lossy();
    if program.as_bytes().contains(&b'/') {
        return attempt(program).err().map(|errno| failure_for(&shown, program, errno));
    }
    let search_path = env
        .iter()
        .find_map(|e| e.to_bytes().strip_prefix(b"PATH="))
        .unwrap_or(crate::spec::DEFAULT_PATH.as_bytes());
    let mut denied = None;
    for dir in search_path.split(|b| *b == b':') {
        // An empty entry means the current directory, as for execvp(3).
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let mut candidate = dir.to_vec();
        candidate.push(b'/');
        candidate.extend_from_slice(program.as_bytes());
        let Ok(candidate) = CString::new(candidate) else {
            continue;
        };
        match attempt(&candidate) {
            Ok(()) => return None,
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::ENAMETOOLONG) => continue,
            Err(Errno::EACCES) => denied = Some(candidate),
            Err(errno) => return Some(failure_for(&shown, &candidate, errno)),
        }
    }
    Some(match denied {
        Some(candidate) => failure_for(&shown, &candidate, Errno::EACCES),
        None => Failure { exit_code: 127, message: format!("cannot execute '{shown}': not found in PATH") },
    })
}

fn execve(path: &CStr, argv: &[CString], env: &[CString]) -> Errno {
    match nix::unistd::execve(path, argv, env) {
        Err(errno) => errno,
        Ok(never) => match never {},
    }
}

fn failure_for(shown: &str, path: &CStr, errno: Errno) -> Failure {
    let exists = std::path::Path::new(std::ffi::OsStr::from_bytes(path.to_bytes())).exists();
    let (exit_code, reason) = match errno {
        // The file is there, but its #! interpreter or ELF loader is not.
        Errno::ENOENT if exists => (126, "its interpreter or dynamic loader is missing".to_string()),
        Errno::ENOENT | Errno::ENOTDIR => (127, "no such file or directory".to_string()),
        errno => (126, crate::error::errno_text(errno)),
    };
    Failure { exit_code, message: format!("cannot execute '{shown}': {reason}") }
}

/// The OCI runtime's exec gate, in the container's first process, set up
/// and confined: checks that the command can be found (so that `create`
/// fails with the shell's 127 or 126, as runc's callers expect), tells the
/// creating zookeeper so by closing `report`, and waits for `start` to
/// write a byte to the gate FIFO; then runs the startContainer hooks and
/// execs. Meanwhile it holds only the
/// gate, its stdio and nothing of the caller's command line or
/// environment, and stays non-dumpable (child.rs made it so).
pub fn wait_at_gate(
    argv: &[CString],
    env: &[CString],
    gate: &OwnedFd,
    report: ReportTx,
    (start_hooks, state): (&[crate::spec::Hook], &str),
    preserve_fds: u32,
) -> ! {
    if let Some(failure) = check_command(argv, env) {
        let code = failure.exit_code.into();
        report.send_failure(&failure);
        exit_now(code);
    }
    // The creating zookeeper exits once it hears from us: its death must
    // not kill the container (the caller is its reaper now).
    if let Err(err) = nix::sys::prctl::set_pdeathsig(None) {
        let message = format!("clearing the parent-death signal: {err}");
        report.send_failure(&Failure { exit_code: 125, message });
        exit_now(125);
    }
    crate::init::scrub_command_line_and_environment(b"zookeeper-gate");
    let _ = nix::sys::prctl::set_name(c"zookeeper-gate");
    drop(report);
    keep_only(gate.as_raw_fd(), preserve_fds);
    loop {
        let mut fds = [PollFd::new(gate.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(_) => exit_now(125),
            Ok(_) => {}
        }
        let mut byte = [0u8; 1];
        match nix::unistd::read(gate, &mut byte) {
            Ok(1) => break,
            Err(Errno::EINTR | Errno::EAGAIN) => continue,
            // A writer came and went without a word: not a start.
            _ => exit_now(125),
        }
    }
    // startContainer: in the container, once started, before the command.
    let mut stderr = std::io::stderr();
    if !start_hooks.is_empty() {
        if let Err(err) = crate::hooks::run(start_hooks, "startContainer", state) {
            let _ = writeln!(stderr, "zookeeper: {err:#}");
            exit_now(125);
        }
    }
    let failure = exec_command(argv, env);
    let _ = writeln!(stderr, "zookeeper: {}", failure.message);
    exit_now(failure.exit_code.into())
}

/// What exec would say about `argv[0]`, found the way [`exec_command`]
/// finds it, without exec'ing: `None` when an executable file is there.
pub fn check_command(argv: &[CString], env: &[CString]) -> Option<Failure> {
    find(argv, env, |path| {
        nix::unistd::access(path, nix::unistd::AccessFlags::X_OK)?;
        match nix::sys::stat::stat(path)?.st_mode & libc::S_IFMT {
            libc::S_IFREG => Ok(()),
            _ => Err(Errno::EACCES),
        }
    })
}

/// Closes every descriptor above 2 but `keep` and the `preserve` the
/// caller hands on from 3 (below `keep`: their numbers were taken when
/// zookeeper-oci opened it).
fn keep_only(keep: RawFd, preserve: u32) {
    let mut kept: Vec<RawFd> = (3..3 + preserve as RawFd).collect();
    kept.push(keep);
    close_all_but(&mut kept);
}

/// Closes every descriptor but 0-2 and `keep`. Only where no live Rust
/// object uses the others again: the caller execs or exits from here.
pub(crate) fn close_all_but(keep: &mut Vec<RawFd>) {
    keep.retain(|fd| *fd > 2);
    keep.sort_unstable();
    keep.dedup();
    let mut from: RawFd = 3;
    for &fd in keep.iter() {
        if fd > from {
            // SAFETY: closes descriptors no live object of this process uses
            // again (the caller execs or exits from here).
            unsafe { libc::close_range(from as libc::c_uint, (fd - 1) as libc::c_uint, 0) };
        }
        from = fd + 1;
    }
    // SAFETY: as above.
    unsafe { libc::close_range(from as libc::c_uint, libc::c_uint::MAX, 0) };
}

fn exit_now(code: i32) -> ! {
    // SAFETY: _exit skips atexit handlers and destructors, which belong to
    // the parent's copy of this address space.
    unsafe { libc::_exit(code) }
}
