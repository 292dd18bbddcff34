//! How the container ended, and ending zookeeper the same way (SPEC.md 2).

use nix::sys::signal::{SigHandler, SigSet, Signal, signal};
use nix::sys::wait::WaitStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitState {
    Exited(i32),
    Signaled(Signal),
}

impl ExitState {
    pub fn from_wait(status: WaitStatus) -> Option<ExitState> {
        match status {
            WaitStatus::Exited(_, code) => Some(ExitState::Exited(code)),
            WaitStatus::Signaled(_, sig, _) => Some(ExitState::Signaled(sig)),
            _ => None,
        }
    }

    /// Ends zookeeper as the container ended: the same exit code, or death by
    /// the same signal, so the caller's shell cannot tell the difference.
    pub fn mirror(self) -> ! {
        match self {
            ExitState::Exited(code) => std::process::exit(code),
            ExitState::Signaled(sig) => {
                // The container may have dumped core already; a second core
                // file of zookeeper itself would only mislead.
                let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
                // SAFETY: restoring the default action has no handler to race with.
                let _ = unsafe { signal(sig, SigHandler::SigDfl) };
                let mut only = SigSet::empty();
                only.add(sig);
                let _ = only.thread_unblock();
                let _ = nix::sys::signal::raise(sig);
                // Signals whose default is to continue or be ignored land here.
                std::process::exit(128 + sig as i32)
            }
        }
    }
}
