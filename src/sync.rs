//! One-way channels between zookeeper and the container's first process.
//!
//! Two pipes, each used in one direction only (youki's design): the parent
//! tells the child "set-up done, go on"; the child reports a failure in its
//! own set-up or in exec. The report pipe is close-on-exec, so a successful
//! exec shows up in the parent as end-of-file with nothing read.

use std::fs::File;
use std::io::{self, Read, Write};

use nix::fcntl::OFlag;

/// The writing end of a channel.
pub struct Sender(File);
/// The reading end of a channel.
pub struct Receiver(File);

pub fn channel() -> io::Result<(Sender, Receiver)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    Ok((Sender(File::from(write)), Receiver(File::from(read))))
}

const GO: u8 = b'G';

impl Sender {
    /// Parent -> child: all set-up done.
    pub fn send_go(mut self) -> io::Result<()> {
        self.0.write_all(&[GO])
    }

    /// Child -> parent: why the container could not start.
    pub fn send_failure(mut self, failure: &Failure) {
        let mut message = vec![failure.exit_code];
        message.extend_from_slice(failure.message.as_bytes());
        // Nothing more can be done if the parent is gone.
        let _ = self.0.write_all(&message);
    }

    /// Init -> parent: the command's raw wait status (see [`crate::init`]).
    pub fn send_exit_status(mut self, raw_status: i32) {
        let _ = self.0.write_all(&raw_status.to_le_bytes());
    }
}

impl Receiver {
    /// Child side: blocks until the parent says go. `false` means the parent
    /// closed the channel instead: it failed or died, so the child must quit.
    pub fn wait_for_go(mut self) -> bool {
        let mut byte = [0u8];
        loop {
            match self.0.read(&mut byte) {
                Ok(1) => return byte[0] == GO,
                Ok(_) => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
    }

    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.0)
    }

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

impl Receiver {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_round_trip_and_silence_means_success() {
        let (tx, rx) = channel().unwrap();
        let failure = Failure { exit_code: 127, message: "cannot execute 'x': not found".into() };
        tx.send_failure(&failure);
        assert_eq!(rx.read_failure().unwrap(), Some(failure));
        let (tx, rx) = channel().unwrap();
        drop(tx);
        assert_eq!(rx.read_failure().unwrap(), None);
    }

    #[test]
    fn go_or_closed() {
        let (tx, rx) = channel().unwrap();
        tx.send_go().unwrap();
        assert!(rx.wait_for_go());
        let (tx, rx) = channel().unwrap();
        drop(tx);
        assert!(!rx.wait_for_go());
    }
}
