//! The supervisor's signals: forwarded to the container, never acted on.

use anyhow::{Context, Result};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::status::ExitState;
use crate::stdio::Relay;
use crate::terminal::Terminal;

/// Signals that a user (or a service manager) sends to stop or poke a
/// program; zookeeper passes them on to the container's first process.
const FORWARDED: [Signal; 6] =
    [Signal::SIGHUP, Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTERM, Signal::SIGUSR1, Signal::SIGUSR2];

/// Holds the forwarded signals and SIGCHLD blocked, read through a signalfd,
/// from before the container exists (so none is lost while it starts) until
/// zookeeper exits.
pub struct Supervisor {
    fd: SignalFd,
    /// How long the container has to end after a stop signal (HUP, INT,
    /// QUIT, TERM) before it is killed, as `docker stop` gives it. A second
    /// stop signal kills it at once.
    stop_timeout: Duration,
    /// Sent in place of SIGTERM (an image's StopSignal).
    stop_signal: Option<Signal>,
}

/// Signals that ask zookeeper, and so the container, to stop.
fn is_stop(sig: Signal) -> bool {
    matches!(sig, Signal::SIGHUP | Signal::SIGINT | Signal::SIGQUIT | Signal::SIGTERM)
}

impl Supervisor {
    pub fn block(stop_timeout: Duration, stop_signal: Option<Signal>) -> Result<Supervisor> {
        let mut set = SigSet::empty();
        for sig in FORWARDED {
            set.add(sig);
        }
        set.add(Signal::SIGCHLD);
        set.add(Signal::SIGWINCH);
        set.thread_block().context("blocking signals")?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).context("creating a signalfd")?;
        Ok(Supervisor { fd, stop_timeout, stop_signal })
    }

    /// Forwards signals to `child` until it ends, and reaps it; with a
    /// terminal (a pty, or pipes in place of the caller's terminals),
    /// relays it meanwhile.
    pub fn wait_forwarding(
        &self,
        child: Pid,
        mut terminal: Option<&mut Terminal>,
        mut relay: Option<&mut Relay>,
    ) -> Result<ExitState> {
        let mut pty_open = terminal.is_some();
        // Some(None): stopping, with a timeout beyond what the clock can count:
        // only a second stop signal kills.
        let mut stop_deadline: Option<Option<Instant>> = None;
        loop {
            if let Some(state) = reap(child, WaitPidFlag::WNOHANG)? {
                if let Some(terminal) = terminal.as_deref_mut() {
                    // What the container wrote last is still in the pty.
                    let _ = terminal.pump_output();
                }
                if let Some(relay) = relay.as_deref_mut() {
                    relay.drain();
                }
                return Ok(state);
            }
            let mut fds = vec![PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            if let Some(terminal) = terminal.as_deref() {
                if pty_open {
                    fds.push(PollFd::new(terminal.master(), PollFlags::POLLIN));
                }
                if terminal.input_open {
                    // SAFETY: descriptor 0 stays open for the life of the process.
                    fds.push(PollFd::new(unsafe { BorrowedFd::borrow_raw(0) }, PollFlags::POLLIN));
                }
            }
            let relayed_from = fds.len();
            if let Some(relay) = relay.as_deref() {
                relay.interests(&mut fds);
            }
            let timeout = match stop_deadline.flatten() {
                None => PollTimeout::NONE,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::ZERO)
                }
            };
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(err) => return Err(err).context("waiting for the container"),
            }
            if stop_deadline.flatten().is_some_and(|deadline| Instant::now() >= deadline) {
                // It had its time: as `docker stop` does after its timeout.
                let _ = kill(child, Signal::SIGKILL);
            }
            let ready: Vec<bool> = fds.iter().map(|fd| fd.any().unwrap_or(false)).collect();
            drop(fds);
            if let Some(relay) = relay.as_deref_mut() {
                relay.pump(&ready[relayed_from..]);
            }
            if let Some(terminal) = terminal.as_deref_mut() {
                let mut next = 1;
                if pty_open {
                    if ready[next] {
                        pty_open = terminal.pump_output()?;
                    }
                    next += 1;
                }
                if terminal.input_open
                    && ready.get(next).copied().unwrap_or(false)
                    && terminal.pump_input()?
                {
                    // The terminal's escape: the user means it, whatever the
                    // container does with Ctrl-C. (The terminal is raw: \r.)
                    eprint!("\r\nzookeeper: Ctrl-] three times: killing the container\r\n");
                    let _ = kill(child, Signal::SIGKILL);
                }
            }
            if ready[0] && self.handle_signal(child, terminal.as_deref())? {
                stop_deadline = match stop_deadline {
                    // A second stop: the user means it.
                    Some(_) => Some(Some(Instant::now())),
                    None => Some(Instant::now().checked_add(self.stop_timeout)),
                };
                if stop_deadline.flatten().is_some_and(|d| d <= Instant::now()) {
                    let _ = kill(child, Signal::SIGKILL);
                }
            }
        }
    }

    /// Waits until `fd` is readable, while the container is still starting.
    /// A signal that asks zookeeper to stop (HUP, INT, QUIT, TERM) cannot be
    /// forwarded to a command that does not run yet: it is returned, so
    /// zookeeper can give up, clean up, and die of it.
    pub fn wait_readable(&self, fd: BorrowedFd) -> Result<Option<Signal>> {
        loop {
            let mut fds =
                [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN), PollFd::new(fd, PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(err) => return Err(err).context("waiting for the container to start"),
            }
            let (signal_ready, fd_ready) = (fds[0].any().unwrap_or(false), fds[1].any().unwrap_or(false));
            if fd_ready {
                return Ok(None);
            }
            if signal_ready {
                // Others (SIGCHLD, SIGWINCH) can wait: the reports that
                // follow say what happened, and the size is copied at attach.
                if let Ok(Some(info)) = self.fd.read_signal()
                    && let Ok(sig) = Signal::try_from(info.ssi_signo as i32)
                    && is_stop(sig)
                {
                    return Ok(Some(sig));
                }
            }
        }
    }

    /// Acts on one pending signal; `true` for a stop signal (forwarded).
    fn handle_signal(&self, child: Pid, terminal: Option<&Terminal>) -> Result<bool> {
        let info = match self.fd.read_signal() {
            Ok(Some(info)) => info,
            Ok(None) | Err(Errno::EINTR) | Err(Errno::EAGAIN) => return Ok(false),
            Err(err) => return Err(err).context("reading signals"),
        };
        match Signal::try_from(info.ssi_signo as i32) {
            Ok(Signal::SIGCHLD) => {}
            Ok(Signal::SIGWINCH) => match terminal {
                Some(terminal) => terminal.copy_window_size(),
                None => {
                    let _ = kill(child, Signal::SIGWINCH);
                }
            },
            // ESRCH: it ended meanwhile; the next reap sees it.
            Ok(sig) => {
                let sent = match (sig, self.stop_signal) {
                    (Signal::SIGTERM, Some(stop)) => stop,
                    _ => sig,
                };
                let _ = kill(child, sent);
                return Ok(is_stop(sig));
            }
            Err(_) => {}
        }
        Ok(false)
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
