//! `--init`: a minimal init as the container's pid 1, as docker's --init.
//!
//! The kernel shields a pid namespace's init from every signal it has no
//! handler for, so a plain command as pid 1 ignores SIGTERM and never reaps
//! orphans. With --init, zookeeper's own code stays pid 1: it runs the
//! command as pid 2, forwards every signal to it, reaps every orphan, and when
//! the command ends tells the supervisor how, so that zookeeper can end the
//! same way (even by a signal, which pid 1 itself could not die of).

use std::ffi::CString;

use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use crate::sync::{Failure, Sender};

/// Runs the command under this process as init. Never returns.
pub fn run(argv: &[CString], env: &[CString], report: Sender, exit_report: Sender) -> ! {
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

fn fail(report: Sender, message: String) -> ! {
    report.send_failure(&Failure { exit_code: 125, message });
    exit_now(125)
}

fn exit_now(code: i32) -> ! {
    // SAFETY: _exit skips destructors that belong to the supervisor's copy
    // of this address space.
    unsafe { libc::_exit(code) }
}
