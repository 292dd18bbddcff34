//! The container's stdin, stdout and stderr when it has no pty of its own.
//!
//! Pipes, files and /dev/null go to the command as they are: binary-safe,
//! and at no cost. A terminal does not: whoever holds one can change its
//! modes and line discipline, resize it, claim it exclusively or read what
//! the user types for the shell (TIOCSTI aside, which seccomp refuses), and
//! the caller's session would stay broken after the container ends. So each
//! of zookeeper's 0, 1 and 2 that is a terminal reaches the command as a
//! pipe, which the supervisor relays to or from the terminal, as docker does
//! without `-t`; the terminals' modes are saved at start and put back at the
//! end if anything changed them.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios::{SetArg, Termios, tcgetattr, tcsetattr};

/// What the relay holds per stream. Bounded: a command that never reads its
/// stdin leaves the user's typing in the terminal, not in zookeeper.
const CHUNK: usize = 4096;

fn stdio(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: descriptors 0, 1 and 2 stay open for the life of the process
    // (the relay only replaces them in the container's first process).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Which of zookeeper's stdin, stdout and stderr are terminals.
pub fn terminals() -> [bool; 3] {
    [0, 1, 2].map(|fd| nix::unistd::isatty(stdio(fd)).unwrap_or(false))
}

/// The caller's terminals' modes at start, put back on drop.
pub struct SavedModes(Vec<(RawFd, Termios)>);

impl Drop for SavedModes {
    fn drop(&mut self) {
        for (fd, saved) in &self.0 {
            // Only what changed: setting a terminal's modes from a background
            // job would stop zookeeper (SIGTTOU) on its way out.
            // Only in the foreground: a background job's modes are the
            // foreground job's (an interactive shell's line editor sets its
            // own), and setting them would stop zookeeper with SIGTTOU.
            if crate::terminal::in_foreground(stdio(*fd))
                && tcgetattr(stdio(*fd)).ok().as_ref() != Some(saved)
            {
                let _ = tcsetattr(stdio(*fd), SetArg::TCSANOW, saved);
            }
        }
    }
}

/// The pipe ends the container's first process puts in place of
/// zookeeper's terminals, indexed by the descriptor they become.
pub struct ChildStdio([Option<OwnedFd>; 3]);

impl ChildStdio {
    /// Child side, before exec: from here on no descriptor of the
    /// container's refers to the caller's terminal.
    pub fn attach(&self) -> Result<()> {
        for (target, end) in self.0.iter().enumerate() {
            if let Some(end) = end {
                // SAFETY: dup2 onto 0, 1 or 2, which this process owns,
                // closing the terminal there; the copy is not close-on-exec,
                // which is what the command needs.
                if unsafe { libc::dup2(end.as_raw_fd(), target as RawFd) } == -1 {
                    return Err(std::io::Error::last_os_error())
                        .with_context(|| format!("putting a pipe in place of descriptor {target}"));
                }
            }
        }
        Ok(())
    }
}

/// For each of zookeeper's stdin, stdout and stderr that is a terminal, a
/// pipe for the container and zookeeper's side of it; `None` when none is a
/// terminal (the common case: nothing to do beyond three isatty checks).
pub fn pipe_terminals() -> Result<Option<(SavedModes, Relay, ChildStdio)>> {
    let terminals = terminals();
    if !terminals.contains(&true) {
        return Ok(None);
    }
    let modes = SavedModes(
        (0..3)
            .filter(|&fd| terminals[fd as usize])
            .filter_map(|fd| Some((fd, tcgetattr(stdio(fd)).ok()?)))
            .collect(),
    );
    let mut child: [Option<OwnedFd>; 3] = [None, None, None];
    let mut streams = Vec::new();
    if terminals[0] {
        let (read, write) = nonblocking_pipe(false)?;
        child[0] = Some(read);
        streams.push(Stream { pipe: Some(write), terminal: 0, buffer: Buffer::new() });
        // Relayed input to a command that has closed its stdin would kill
        // zookeeper with SIGPIPE; blocked, the write fails with EPIPE
        // instead. (A signal left pending does no harm: the container
        // resets its mask before exec, and zookeeper unblocks only a signal
        // it mirrors, which it is about to die of anyway.)
        let mut sigpipe = SigSet::empty();
        sigpipe.add(Signal::SIGPIPE);
        sigpipe.thread_block().context("blocking SIGPIPE")?;
    }
    for fd in [1, 2] {
        if !terminals[fd as usize] {
            continue;
        }
        // stdout and stderr on the same terminal share one pipe, so that
        // what the command writes to both keeps its order on the screen.
        if fd == 2
            && let Some(stdout) = &child[1]
            && same_file(1, 2)
        {
            child[2] = Some(stdout.try_clone().context("sharing the stdout pipe with stderr")?);
            continue;
        }
        let (read, write) = nonblocking_pipe(true)?;
        child[fd as usize] = Some(write);
        streams.push(Stream { pipe: Some(read), terminal: fd, buffer: Buffer::new() });
    }
    Ok(Some((modes, Relay { streams }, ChildStdio(child))))
}

/// A close-on-exec pipe whose read end (`reader`) or write end is made
/// non-blocking: zookeeper's, never the container's.
fn nonblocking_pipe(reader: bool) -> Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating a stdio pipe")?;
    let ours = if reader { &read } else { &write };
    fcntl(ours, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).context("making a stdio pipe non-blocking")?;
    Ok((read, write))
}

fn same_file(a: RawFd, b: RawFd) -> bool {
    match (nix::sys::stat::fstat(stdio(a)), nix::sys::stat::fstat(stdio(b))) {
        (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
        _ => false,
    }
}

/// zookeeper's side: relays between the caller's terminals and the
/// container's pipes, driven by the supervisor's poll loop. It never blocks
/// on a pipe (its ends are non-blocking) and writes to a terminal only when
/// poll says it has room, so signals keep being forwarded whatever the
/// command reads or writes.
pub struct Relay {
    streams: Vec<Stream>,
}

impl Relay {
    /// What to wait for, appended to `fds` in the order [`Relay::pump`]
    /// expects.
    pub fn interests<'a>(&'a self, fds: &mut Vec<PollFd<'a>>) {
        fds.extend(self.streams.iter().filter_map(Stream::interest));
    }

    /// Moves what can move; `ready` says, in the order of
    /// [`Relay::interests`], which descriptors poll woke up.
    pub fn pump(&mut self, ready: &[bool]) {
        let mut ready = ready.iter();
        for stream in &mut self.streams {
            if stream.interest().is_some() && ready.next().copied().unwrap_or(false) {
                stream.step();
            }
        }
    }

    /// Once the container has ended: what it wrote last, to the terminal.
    /// (Its processes are all gone, so every pipe reaches its end.)
    pub fn drain(&mut self) {
        for stream in self.streams.iter_mut().filter(|s| s.terminal != 0) {
            while let Some(pipe) = &stream.pipe {
                if !stream.buffer.is_empty() {
                    if crate::terminal::write_all(stdio(stream.terminal), stream.buffer.pending()).is_err() {
                        break;
                    }
                    stream.buffer.consume(stream.buffer.pending().len());
                }
                match stream.buffer.fill(pipe.as_fd()) {
                    Ok(n) if n > 0 => {}
                    Err(Errno::EINTR) => {}
                    _ => break,
                }
            }
        }
    }
}

/// One direction: the caller's terminal (0) to the container's stdin pipe,
/// or the container's stdout or stderr pipe to the terminal (1 or 2).
struct Stream {
    /// zookeeper's end of the pipe; `None` once closed.
    pipe: Option<OwnedFd>,
    terminal: RawFd,
    /// Read from the source and not yet written to the sink. The source is
    /// read only when it is empty.
    buffer: Buffer,
}

/// A stream's (source, sink), while its pipe is open.
fn ends(pipe: &Option<OwnedFd>, terminal: RawFd) -> Option<(BorrowedFd<'_>, BorrowedFd<'_>)> {
    let pipe = pipe.as_ref()?.as_fd();
    Some(match terminal {
        0 => (stdio(0), pipe),
        fd => (pipe, stdio(fd)),
    })
}

impl Stream {
    fn interest(&self) -> Option<PollFd<'_>> {
        let (source, sink) = ends(&self.pipe, self.terminal)?;
        Some(match self.buffer.is_empty() {
            true => PollFd::new(source, PollFlags::POLLIN),
            false => PollFd::new(sink, PollFlags::POLLOUT),
        })
    }

    /// One read or one write, whichever poll waited for. The stream closes
    /// at the end of its source or on an error:
    /// - stdin: end of file, or EIO (a hung-up terminal, or a read from a
    ///   background job that cannot be stopped): the command sees end of
    ///   file; EPIPE: the command closed its stdin, and what the user types
    ///   next stays in the terminal for the shell;
    /// - stdout, stderr: every writer gone; or the terminal fails (hung up):
    ///   the command's next writes fail, as they would on such a terminal.
    fn step(&mut self) {
        let Some((source, sink)) = ends(&self.pipe, self.terminal) else { return };
        let result = match self.buffer.is_empty() {
            true => self.buffer.fill(source).map(|n| n > 0),
            false => nix::unistd::write(sink, self.buffer.pending()).map(|n| {
                self.buffer.consume(n);
                true
            }),
        };
        match result {
            Ok(true) | Err(Errno::EINTR | Errno::EAGAIN) => {}
            Ok(false) | Err(_) => self.pipe = None,
        }
    }
}

struct Buffer {
    bytes: Box<[u8; CHUNK]>,
    start: usize,
    end: usize,
}

impl Buffer {
    fn new() -> Buffer {
        Buffer { bytes: Box::new([0; CHUNK]), start: 0, end: 0 }
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn pending(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// One read into the (empty) buffer.
    fn fill(&mut self, source: BorrowedFd) -> nix::Result<usize> {
        let n = nix::unistd::read(source, &mut self.bytes[..])?;
        (self.start, self.end) = (0, n);
        Ok(n)
    }
}
