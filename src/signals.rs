//! The supervisor's signals: forwarded to the container, never acted on.

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::status::ExitState;

/// Signals that a user (or a service manager) sends to stop or poke a
/// program; zookeeper passes them on to the container's first process.
const FORWARDED: [Signal; 6] =
    [Signal::SIGHUP, Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTERM, Signal::SIGUSR1, Signal::SIGUSR2];

/// Holds the forwarded signals and SIGCHLD blocked, read through a signalfd,
/// from before the container exists (so none is lost while it starts) until
/// zookeeper exits.
pub struct Supervisor {
    fd: SignalFd,
}

impl Supervisor {
    pub fn block() -> Result<Supervisor> {
        let mut set = SigSet::empty();
        for sig in FORWARDED {
            set.add(sig);
        }
        set.add(Signal::SIGCHLD);
        set.thread_block().context("blocking signals")?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).context("creating a signalfd")?;
        Ok(Supervisor { fd })
    }

    /// Forwards signals to `child` until it ends, and reaps it.
    pub fn wait_forwarding(&self, child: Pid) -> Result<ExitState> {
        loop {
            if let Some(state) = reap(child, WaitPidFlag::WNOHANG)? {
                return Ok(state);
            }
            let info = match self.fd.read_signal() {
                Ok(Some(info)) => info,
                Ok(None) | Err(Errno::EINTR) => continue,
                Err(err) => return Err(err).context("reading signals"),
            };
            let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            if sig != Signal::SIGCHLD {
                // ESRCH: it ended meanwhile; the next reap sees it.
                let _ = kill(child, sig);
            }
        }
    }
}

/// Waits for `child`; `None` while it runs (with WNOHANG).
pub fn reap(child: Pid, flags: WaitPidFlag) -> Result<Option<ExitState>> {
    loop {
        match waitpid(child, Some(flags)) {
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(status) => {
                if let Some(state) = ExitState::from_wait(status) {
                    return Ok(Some(state));
                }
            }
            Err(Errno::EINTR) => continue,
            Err(err) => return Err(err).context("waiting for the container"),
        }
    }
}
