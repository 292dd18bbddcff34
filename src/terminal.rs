//! An interactive terminal like `docker run -it` (SPEC.md section 4).
//!
//! The container's first process opens a pty pair from its own devpts (so
//! `tty` inside names `/dev/pts/0`), makes the pty its controlling terminal
//! and hands the master to zookeeper over a unix socket. zookeeper puts the
//! user's terminal in raw mode, relays bytes both ways, and passes window
//! size changes on. Ctrl-C and Ctrl-Z are plain bytes in raw mode: the
//! container's pty turns them into signals for its own foreground job. The
//! user's terminal modes are restored on every exit path (on drop).

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

nix::ioctl_read_bad!(get_window_size, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(set_window_size, libc::TIOCSWINSZ, libc::winsize);
nix::ioctl_write_int_bad!(set_controlling_tty, libc::TIOCSCTTY);

/// The socket pair the pty's master travels on from the container's
/// process to zookeeper (parent's end, child's end), when there is a
/// terminal to give.
pub fn master_channel(wanted: bool) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    if !wanted {
        return Ok((None, None));
    }
    let pair = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
        .context("creating the terminal socket")?;
    Ok((Some(pair.0), Some(pair.1)))
}

/// Child side: a new pty from the container's /dev/ptmx becomes the
/// controlling terminal and stdin, stdout and stderr; its master goes to
/// zookeeper over `socket`. Call after setsid(), after pivot_root.
pub fn make_controlling_pty(socket: &OwnedFd) -> Result<()> {
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let master =
        posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).context("opening /dev/ptmx")?;
    grantpt(&master).context("grantpt")?;
    unlockpt(&master).context("unlockpt")?;
    let name = ptsname_r(&master).context("ptsname")?;
    let slave =
        nix::fcntl::open(name.as_str(), OFlag::O_RDWR | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
            .with_context(|| format!("opening {name}"))?;
    // SAFETY: TIOCSCTTY takes an int argument and touches no memory.
    unsafe { set_controlling_tty(slave.as_raw_fd(), 0) }
        .context("making the pty the controlling terminal")?;
    for target in 0..=2 {
        // SAFETY: dup2 onto 0, 1 and 2, which this process owns; the copies
        // are not close-on-exec, which is what the command needs.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } == -1 {
            return Err(std::io::Error::last_os_error()).context("attaching the pty to stdio");
        }
    }
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(b"m")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .context("handing the pty to zookeeper")?;
    Ok(())
}

/// Parent side: the pty master the child sent, or `None` if it closed the
/// socket first (it failed, and reports why on its own channel).
pub fn receive_master(socket: &OwnedFd) -> Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = loop {
        match recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(Errno::EINTR) => continue,
            other => break other.context("receiving the pty from the container")?,
        }
    };
    for cmsg in message.cmsgs().context("reading the pty message")? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us.
                return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
    }
    Ok(None)
}

/// The user's terminal, attached to the container's pty.
pub struct Terminal {
    master: OwnedFd,
    /// The user's terminal modes, restored on drop; `None` when stdin is no
    /// terminal (`--tty` with a pipe).
    saved: Option<Termios>,
    /// Still reading the user's keyboard (false after end of input).
    pub input_open: bool,
    /// How many [`ESCAPE`]s were typed last, in a row.
    escapes: u8,
}

fn stdin() -> BorrowedFd<'static> {
    // SAFETY: descriptor 0 stays open for the life of the process.
    unsafe { BorrowedFd::borrow_raw(0) }
}

fn stdout() -> BorrowedFd<'static> {
    // SAFETY: descriptor 1 stays open for the life of the process.
    unsafe { BorrowedFd::borrow_raw(1) }
}

/// Whether zookeeper's stdin and stdout are both terminals (docker's `-it`).
pub fn stdio_is_terminal() -> bool {
    nix::unistd::isatty(stdin()).unwrap_or(false) && nix::unistd::isatty(stdout()).unwrap_or(false)
}

/// Whether zookeeper is in the foreground process group of the terminal
/// `fd`: the only one whose modes a job may set without the kernel
/// stopping it with SIGTTOU (`zookeeper ... &` from an interactive shell
/// is not), and whose modes are its to set.
pub fn in_foreground(fd: BorrowedFd) -> bool {
    nix::unistd::tcgetpgrp(fd).is_ok_and(|group| group == nix::unistd::getpgrp())
}

/// The escape that ends a container from its terminal whatever runs in it:
/// Ctrl-] typed three times in a row. Ctrl-C goes to the container's
/// foreground job through its pty, which may ignore it, and so does every
/// other key; telnet's escape key, which programs rarely want, three times
/// so that one typed by mistake does nothing. The bytes still reach the
/// container.
pub const ESCAPE: u8 = 0x1d;
const ESCAPES_TO_KILL: u8 = 3;

impl Terminal {
    /// Puts the user's terminal in raw mode and sizes the pty like it.
    pub fn attach(master: OwnedFd) -> Result<Terminal> {
        fcntl(&master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).context("making the pty non-blocking")?;
        // In the background (`--tty` given to `zookeeper ... &`) the modes
        // are the foreground job's, and setting them would stop zookeeper.
        let saved = if in_foreground(stdin()) { tcgetattr(stdin()).ok() } else { None };
        if let Some(saved) = &saved {
            let mut raw = saved.clone();
            cfmakeraw(&mut raw);
            tcsetattr(stdin(), SetArg::TCSANOW, &raw).context("putting the terminal in raw mode")?;
        }
        let terminal = Terminal { master, saved, input_open: true, escapes: 0 };
        terminal.copy_window_size();
        Ok(terminal)
    }

    pub fn master(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    /// The pty gets the user's window size; its kernel side then sends
    /// SIGWINCH to the container's foreground job.
    pub fn copy_window_size(&self) {
        // SAFETY: both ioctls read or write one winsize that outlives them.
        unsafe {
            let mut size: libc::winsize = std::mem::zeroed();
            if get_window_size(0, &mut size).is_ok() {
                let _ = set_window_size(self.master.as_raw_fd(), &size);
            }
        }
    }

    /// Keyboard -> container. At the end of input (a closed pipe, a hung-up
    /// terminal) the container's terminal gets its end-of-file character,
    /// so a shell reading it exits as it would on Ctrl-D. `true` when the
    /// user has just typed the escape ([`ESCAPE`] three times in a row).
    pub fn pump_input(&mut self) -> Result<bool> {
        let mut buffer = [0u8; 4096];
        match nix::unistd::read(stdin(), &mut buffer) {
            Ok(0) | Err(Errno::EIO) => {
                self.input_open = false;
                let eof = tcgetattr(&self.master).map_or(4, |t| t.control_chars[libc::VEOF]);
                write_all(self.master.as_fd(), &[eof])?;
            }
            Ok(n) => {
                write_all(self.master.as_fd(), &buffer[..n])?;
                return Ok(self.count_escapes(&buffer[..n]));
            }
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(err) => return Err(err).context("reading the terminal"),
        }
        Ok(false)
    }

    fn count_escapes(&mut self, typed: &[u8]) -> bool {
        for &byte in typed {
            self.escapes = if byte == ESCAPE { self.escapes.saturating_add(1) } else { 0 };
            if self.escapes == ESCAPES_TO_KILL {
                self.escapes = 0;
                return true;
            }
        }
        false
    }

    /// Container -> screen, everything there is now; `false` once the
    /// container's side of the pty is closed.
    pub fn pump_output(&mut self) -> Result<bool> {
        let mut buffer = [0u8; 16384];
        loop {
            match nix::unistd::read(&self.master, &mut buffer) {
                Ok(0) | Err(Errno::EIO) => return Ok(false),
                Ok(n) => write_all(stdout(), &buffer[..n])?,
                Err(Errno::EAGAIN) => return Ok(true),
                Err(Errno::EINTR) => {}
                Err(err) => return Err(err).context("reading the container's terminal"),
            }
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = tcsetattr(stdin(), SetArg::TCSADRAIN, saved);
        }
    }
}

pub(crate) fn write_all(fd: BorrowedFd, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLOUT)];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE);
            }
            Err(err) => bail!("writing to the terminal: {err}"),
        }
    }
    Ok(())
}
