//! One-way channels between zookeeper and the container's first process.
//!
//! Pipes, each used in one direction only (youki's design), in the order
//! they are used: the child says its early set-up (network namespace,
//! loopback, hostname) is done; the parent tells the child "set-up done, go
//! on", with what the parent prepared for it meanwhile ([`Go`]); the child
//! reports a failure in its own set-up or in exec. The report pipe is
//! close-on-exec, so a successful exec shows up in the parent as
//! end-of-file with nothing read. (Under `--init`, a fourth carries the
//! command's wait status.)
//!
//! Between zookeeper processes: [`lock_exclusive`], a lock file in a
//! directory of the caller's (detached containers' state, the keeper's).

use std::fs::File;
use std::io::{self, Read, Write};

use nix::fcntl::OFlag;

/// A channel's two ends, each a type of its own: sending a message on the
/// wrong channel does not compile.
macro_rules! channel_type {
    ($make:ident, $tx:ident, $rx:ident, $what:literal) => {
        #[doc = concat!("The writing end of ", $what, ".")]
        pub struct $tx(File);
        #[doc = concat!("The reading end of ", $what, ".")]
        pub struct $rx(File);

        #[doc = concat!("A pipe for ", $what, ", close-on-exec at both ends.")]
        pub fn $make() -> io::Result<($tx, $rx)> {
            let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
            Ok(($tx(File::from(write)), $rx(File::from(read))))
        }

        // Not every channel's end is polled or kept open by number.
        #[allow(dead_code)]
        impl $tx {
            pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.0)
            }
        }

        #[allow(dead_code)]
        impl $rx {
            pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.0)
            }
        }
    };
}

channel_type!(prepared_channel, PreparedTx, PreparedRx, "the child's \"early set-up done\"");
channel_type!(go_channel, GoTx, GoRx, "the parent's go");
channel_type!(report_channel, ReportTx, ReportRx, "the child's start report (a failure, or nothing: exec'd)");
channel_type!(exit_channel, ExitTx, ExitRx, "--init's report of the command's wait status");

const GO: u8 = b'G';
const PREPARED: u8 = b'P';
const NETWORK_READY: u8 = b'N';

/// What the parent hands the child with its go, decided after clone().
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Go {
    /// Whether setgroups(2) works in the container (see [`crate::idmap`]).
    pub setgroups_allowed: bool,
    /// The child's pid on the host (it sees itself as 1): for the state
    /// its hooks read.
    pub pid: i32,
    /// The network helper is still starting: the child sets itself up
    /// meanwhile and waits for [`GoTx::send_network_ready`] before exec.
    pub network_follows: bool,
}

impl Go {
    /// `G`, setgroups (0/1), the pid (4 bytes, little-endian), network
    /// follows (0/1).
    fn encode(&self) -> [u8; 7] {
        let pid = self.pid.to_le_bytes();
        [GO, self.setgroups_allowed.into(), pid[0], pid[1], pid[2], pid[3], self.network_follows.into()]
    }

    fn decode(input: &mut impl Read) -> io::Result<Option<Go>> {
        let mut message = [0u8; 7];
        input.read_exact(&mut message)?;
        let pid = i32::from_le_bytes([message[2], message[3], message[4], message[5]]);
        let go = Go { setgroups_allowed: message[1] == 1, pid, network_follows: message[6] == 1 };
        Ok((message[0] == GO).then_some(go))
    }
}

impl PreparedTx {
    /// Child -> parent: the child's own early set-up is done. (If it
    /// failed, the child closes this channel unused and reports why.)
    pub fn send_prepared(mut self) {
        // A parent that is gone notices the child's death instead.
        let _ = self.0.write_all(&[PREPARED]);
    }
}

impl PreparedRx {
    /// Parent side: waits for the child's early set-up; `false` if it
    /// failed (the report channel says why) or the child died.
    pub fn wait_prepared(mut self) -> bool {
        let mut byte = [0u8];
        self.0.read_exact(&mut byte).is_ok_and(|()| byte[0] == PREPARED)
    }
}

impl GoTx {
    /// Parent -> child: all set-up done, and what the child needs for its own.
    pub fn send_go(&mut self, go: &Go) -> io::Result<()> {
        self.0.write_all(&go.encode())
    }

    /// Parent -> child, after a go whose network followed: it is up now.
    pub fn send_network_ready(mut self) -> io::Result<()> {
        self.0.write_all(&[NETWORK_READY])
    }
}

impl GoRx {
    /// Child side: blocks until the parent says go. `None` means the parent
    /// closed the channel instead: it failed or died, so the child must quit.
    pub fn wait_for_go(&mut self) -> Option<Go> {
        // read_exact retries interrupted reads; end-of-file is an error.
        Go::decode(&mut self.0).ok().flatten()
    }

    /// Child side, after a go whose network follows: `false` if the parent
    /// closed the channel instead (it failed, and says why itself).
    pub fn wait_for_network(mut self) -> bool {
        let mut byte = [0u8];
        self.0.read_exact(&mut byte).is_ok_and(|()| byte[0] == NETWORK_READY)
    }
}

impl ReportTx {
    /// Child -> parent: why the container could not start.
    pub fn send_failure(mut self, failure: &Failure) {
        let mut message = vec![failure.exit_code];
        message.extend_from_slice(failure.message.as_bytes());
        // Nothing more can be done if the parent is gone.
        let _ = self.0.write_all(&message);
    }

    /// Child side: whether the parent has closed its end of this channel,
    /// which it holds until the container runs: then it has died.
    pub fn reader_gone(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut fds = [PollFd::new(self.as_fd(), PollFlags::empty())];
        // A pipe's write end reports POLLERR once no reader is left.
        poll(&mut fds, PollTimeout::ZERO)
            .is_ok_and(|_| fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLERR)))
    }
}

impl ReportRx {
    /// Parent side: `None` once the child has exec'd the command, or the
    /// failure it reported.
    pub fn read_failure(mut self) -> io::Result<Option<Failure>> {
        let mut message = Vec::new();
        self.0.read_to_end(&mut message)?;
        Ok(message.split_first().map(|(&exit_code, text)| Failure {
            exit_code,
            message: String::from_utf8_lossy(text).into_owned(),
        }))
    }
}

impl ExitTx {
    /// Init -> parent: the command's raw wait status (see [`crate::init`]).
    pub fn send_exit_status(mut self, raw_status: i32) {
        let _ = self.0.write_all(&raw_status.to_le_bytes());
    }
}

impl ExitRx {
    /// Parent side: the command's raw wait status, if init sent one.
    pub fn read_exit_status(mut self) -> Option<i32> {
        let mut raw = [0u8; 4];
        self.0.read_exact(&mut raw).ok().map(|()| i32::from_le_bytes(raw))
    }
}

/// A failure inside the container before its command ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 125 for set-up, 126 cannot execute, 127 not found.
    pub exit_code: u8,
    /// One line, without the `zookeeper: ` prefix.
    pub message: String,
}

/// An exclusive flock on `path` (made 0600 if missing, never through a
/// link), held while the returned file lives.
pub(crate) fn lock_exclusive(path: &std::path::Path) -> anyhow::Result<File> {
    use anyhow::Context;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("opening the lock {}", path.display()))?;
    loop {
        // SAFETY: flock on a descriptor this function owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(file);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err).with_context(|| format!("locking {}", path.display()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_round_trip_and_silence_means_success() {
        let (tx, rx) = report_channel().unwrap();
        let failure = Failure { exit_code: 127, message: "cannot execute 'x': not found".into() };
        tx.send_failure(&failure);
        assert_eq!(rx.read_failure().unwrap(), Some(failure));
        let (tx, rx) = report_channel().unwrap();
        drop(tx);
        assert_eq!(rx.read_failure().unwrap(), None);
    }

    #[test]
    fn go_with_its_payload_or_closed() {
        let go = Go { setgroups_allowed: true, pid: 4242, network_follows: true };
        let (mut tx, mut rx) = go_channel().unwrap();
        tx.send_go(&go).unwrap();
        assert_eq!(rx.wait_for_go(), Some(go));
        tx.send_network_ready().unwrap();
        assert!(rx.wait_for_network());
        // A parent whose network failed after the go.
        let (mut tx, mut rx) = go_channel().unwrap();
        tx.send_go(&go).unwrap();
        assert_eq!(rx.wait_for_go(), Some(go));
        drop(tx);
        assert!(!rx.wait_for_network());
        // A parent that dies half-way through its message.
        let (mut tx, mut rx) = go_channel().unwrap();
        let whole = go.encode();
        tx.0.write_all(&whole[..whole.len() - 1]).unwrap();
        drop(tx);
        assert_eq!(rx.wait_for_go(), None);
        let (tx, mut rx) = go_channel().unwrap();
        drop(tx);
        assert_eq!(rx.wait_for_go(), None);
    }
}
