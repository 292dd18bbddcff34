//! `--init`: a minimal init as the container's pid 1, as docker's --init.
//!
//! The kernel shields a pid namespace's init from every signal it has no
//! handler for, so a plain command as pid 1 ignores SIGTERM and never reaps
//! orphans. With --init, zookeeper's own code stays pid 1: it runs the
//! command as pid 2, forwards every signal to it, reaps every orphan, and when
//! the command ends tells the supervisor how, so that zookeeper can end the
//! same way (even by a signal, which pid 1 itself could not die of).
//!
//! Being zookeeper's code in the container, init is the process an attacker
//! inside goes for first: it was forked from the supervisor, never exec'd,
//! so it starts with the supervisor's memory, descriptors (among them
//! directories on the host) and the caller's command line and environment.
//! The rule for every process zookeeper puts into a container, and how init
//! keeps it (the README's "Confinement" has it for all of them):
//! - it is not dumpable while it runs zookeeper's code, so nothing in the
//!   container can open its /proc/PID/{fd,mem,environ,exe,cwd,root,maps}
//!   or trace it. Its memory was created on the host, so the kernel asks for
//!   a capability over the host's user namespace, which no container has;
//! - it holds no descriptor but what it needs: the signalfd and the channel
//!   to the supervisor; its stdin, stdout and stderr are /dev/null;
//! - it carries nothing of the caller's environment or command line: both
//!   are overwritten in its memory, where /proc/1/environ and
//!   /proc/1/cmdline read them.

use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};

use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use crate::sync::{ExitTx, Failure, ReportTx};

/// Runs the command under this process as init. Never returns.
pub fn run(argv: &[CString], env: &[CString], report: ReportTx, exit_report: ExitTx) -> ! {
    // Already so since the child's set-up (child.rs); said again here
    // because init's safety rests on it.
    if let Err(err) = nix::sys::prctl::set_dumpable(false) {
        fail(report, format!("init: making itself non-dumpable: {err}"));
    }
    scrub_command_line_and_environment(b"zookeeper-init");
    let _ = nix::sys::prctl::set_name(c"zookeeper-init");
    // Blocked before the fork so no signal slips past between the two.
    let all = SigSet::all();
    if let Err(err) = all.thread_block() {
        fail(report, format!("init: blocking signals: {err}"));
    }
    let signals = match SignalFd::with_flags(&all, SfdFlags::SFD_CLOEXEC) {
        Ok(fd) => fd,
        Err(err) => fail(report, format!("init: creating a signalfd: {err}")),
    };
    // SAFETY: the container's pid 1 is single-threaded (a fork-style clone
    // of the single-threaded supervisor), so the child may run any code.
    let command = match unsafe { fork() } {
        Err(err) => fail(report, format!("init: starting the command: {err}")),
        Ok(ForkResult::Child) => {
            drop((signals, exit_report));
            let _ = SigSet::empty().thread_set_mask();
            let failure = crate::exec::exec_command(argv, env);
            let code = failure.exit_code.into();
            report.send_failure(&failure);
            exit_now(code)
        }
        Ok(ForkResult::Parent { child }) => child,
    };
    // Only the command holds the report channel now: its exec closes it.
    drop(report);
    keep_only_descriptors(&[signals.as_raw_fd(), exit_report.as_fd().as_raw_fd()]);
    loop {
        let sig = match signals.read_signal() {
            Ok(Some(info)) => Signal::try_from(info.ssi_signo as i32).ok(),
            _ => None,
        };
        match sig {
            Some(Signal::SIGCHLD) => {
                if let Some(status) = reap_all(command) {
                    exit_report.send_exit_status(status);
                    exit_now(0);
                }
            }
            Some(sig) => {
                let _ = kill(command, sig);
            }
            None => {}
        }
    }
}

/// Reaps every child that has ended; the command's raw wait status once it has.
fn reap_all(command: Pid) -> Option<i32> {
    let mut ended = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == command => ended = Some((code & 0xff) << 8),
            Ok(WaitStatus::Signaled(pid, sig, core)) if pid == command => {
                ended = Some(sig as i32 | if core { 0x80 } else { 0 })
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return ended,
            Ok(_) => {}
        }
    }
}

/// Closes every descriptor but `keep`, and points stdin, stdout and stderr
/// at /dev/null: the container's stdio belongs to the command, and init
/// needs none of it. (Not merely close-on-exec: init never execs.)
fn keep_only_descriptors(keep: &[RawFd]) {
    let mut keep = keep.to_vec();
    keep.sort_unstable();
    let mut from: RawFd = 3;
    for fd in keep.into_iter().filter(|fd| *fd >= 3) {
        if fd > from {
            close_range(from, fd - 1);
        }
        from = fd + 1;
    }
    close_range(from, RawFd::MAX);
    // The container's own /dev/null (its /dev is built by zookeeper).
    match nix::fcntl::open(c"/dev/null", nix::fcntl::OFlag::O_RDWR, nix::sys::stat::Mode::empty()) {
        Ok(null) => {
            for stdio in 0..3 {
                // SAFETY: dup2 onto 0, 1 and 2, which no Rust object owns in init.
                unsafe { libc::dup2(null.as_raw_fd(), stdio) };
            }
        }
        Err(_) => close_range(0, 2),
    }
}

fn close_range(first: RawFd, last: RawFd) {
    // SAFETY: closes descriptors that no live Rust object of init's uses:
    // the ones it keeps are outside the range, and init never returns to
    // drop the others' owners (it ends by _exit).
    unsafe { libc::close_range(first as libc::c_uint, last as libc::c_uint, 0) };
}

/// Overwrites the caller's command line and environment where the kernel
/// keeps them for /proc/PID/cmdline and /proc/PID/environ: the strings at
/// the top of the stack that the supervisor's exec placed there, which
/// init inherited by fork. Host paths, tokens and whatever else the caller's
/// environment holds are gone from init's memory; its cmdline reads
/// `zookeeper-init`.
pub(crate) fn scrub_command_line_and_environment(name: &[u8]) {
    let Some([arg_start, arg_end, env_start, env_end]) = argument_areas() else { return };
    for (start, end, text) in [(arg_start, arg_end, name), (env_start, env_end, &b""[..])] {
        if end <= start {
            continue;
        }
        let len = end - start;
        // SAFETY: [start, end) is this process's own argument or environment
        // area as the kernel reports it, mapped writable on the initial
        // stack. No Rust reference into it is alive: std and libc reach
        // those strings through raw argv/environ pointers, which nothing
        // follows again here (the command's argv and environment are heap
        // copies, made before clone).
        unsafe {
            let area = std::slice::from_raw_parts_mut(start as *mut u8, len);
            area.fill(0);
            let keep = text.len().min(len.saturating_sub(1));
            area[..keep].copy_from_slice(&text[..keep]);
        }
    }
}

/// arg_start, arg_end, env_start and env_end, fields 48 to 51 of
/// /proc/self/stat, read into a bounded buffer.
fn argument_areas() -> Option<[usize; 4]> {
    let file =
        nix::fcntl::open(c"/proc/self/stat", nix::fcntl::OFlag::O_RDONLY, nix::sys::stat::Mode::empty())
            .ok()?;
    let mut buf = [0u8; 2048];
    let len = nix::unistd::read(&file, &mut buf).ok()?;
    let text = std::str::from_utf8(&buf[..len]).ok()?;
    // The command name, field 2, is in parentheses and may hold anything.
    let after_name = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Field 3 is the first after the name: field N is fields[N - 3].
    let mut areas = [0usize; 4];
    for (area, field) in areas.iter_mut().zip(48..=51) {
        *area = fields.get(field - 3)?.parse().ok()?;
    }
    Some(areas)
}

fn fail(report: ReportTx, message: String) -> ! {
    report.send_failure(&Failure { exit_code: 125, message });
    exit_now(125)
}

fn exit_now(code: i32) -> ! {
    // SAFETY: _exit skips destructors that belong to the supervisor's copy
    // of this address space.
    unsafe { libc::_exit(code) }
}
