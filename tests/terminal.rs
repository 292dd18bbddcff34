//! The interactive terminal (SPEC.md section 4), driven through a pty the
//! test owns, as a user's terminal emulator would; and the plain stdio path.

mod common;

use common::*;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::pty::{OpenptyResult, Winsize, openpty};
use nix::sys::termios::tcgetattr;

nix::ioctl_write_ptr_bad!(set_window_size, libc::TIOCSWINSZ, libc::winsize);

struct Session {
    master: OwnedFd,
    slave: OwnedFd,
    child: Child,
    seen: String,
}

fn winsize(rows: u16, cols: u16) -> Winsize {
    Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 }
}

impl Session {
    /// zookeeper (as the test user) with the test's pty as its controlling
    /// terminal and stdio.
    fn start(args: &[&str]) -> Session {
        let OpenptyResult { master, slave } = openpty(Some(&winsize(30, 100)), None).unwrap();
        let fx = fixture();
        let mut all = vec!["-r", fx.rootfs.to_str().unwrap(), "-P"];
        all.extend_from_slice(args);
        let mut command = zookeeper(As::User(RANGED_USER), &all);
        command.env("TERM", "xterm");
        for (i, stdio) in [0, 1, 2].iter().enumerate() {
            let fd = slave.try_clone().unwrap();
            match i {
                0 => command.stdin(Stdio::from(fd)),
                1 => command.stdout(Stdio::from(fd)),
                _ => command.stderr(Stdio::from(fd)),
            };
            let _ = stdio;
        }
        // SAFETY: setsid and TIOCSCTTY are async-signal-safe system calls.
        unsafe {
            command.pre_exec(|| {
                nix::unistd::setsid()?;
                if libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().unwrap();
        Session { master, slave, child, seen: String::new() }
    }

    fn send(&mut self, bytes: &[u8]) {
        let mut file = std::fs::File::from(self.master.try_clone().unwrap());
        file.write_all(bytes).unwrap();
    }

    /// Reads until `needle` shows up in the output (since the last call).
    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buffer = [0u8; 4096];
        loop {
            if let Some(at) = self.seen.find(needle) {
                let upto = at + needle.len();
                let before = self.seen[..upto].to_string();
                self.seen.drain(..upto);
                return before;
            }
            assert!(Instant::now() < deadline, "never saw {needle:?}; got {:?}", self.seen);
            let mut fds = [nix::poll::PollFd::new(self.master.as_fd(), nix::poll::PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16));
            if let Ok(n) = nix::unistd::read(&self.master, &mut buffer) {
                self.seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        }
    }

    fn resize(&self, rows: u16, cols: u16) {
        let size = winsize(rows, cols);
        // SAFETY: TIOCSWINSZ reads one winsize that outlives the call.
        unsafe { set_window_size(self.master.as_raw_fd(), &size) }.unwrap();
    }
}

impl Drop for Session {
    /// A failed assertion must not leave zookeeper waiting on the pty.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn an_interactive_shell_behaves_like_docker_it() {
    let mut s = Session::start(&["sh"]);
    let modes_before = format!("{:?}", tcgetattr(s.slave.as_fd()).unwrap());
    s.expect("/ # ");
    // Markers computed by the shell, so the echo of the typed line never matches.
    s.send(b"tty; stty size; set -o | grep monitor; echo E$((1+1))ND\r");
    let out = s.expect("E2ND");
    assert!(out.contains("monitor         on"), "job control: {out}");
    assert!(out.contains("/dev/pts/0"), "tty inside: {out}");
    assert!(out.contains("30 100"), "size: {out}");
    s.expect("/ # ");
    // A resize reaches the container.
    s.resize(40, 120);
    std::thread::sleep(Duration::from_millis(200));
    s.send(b"stty size; echo E$((2+1))ND\r");
    let out = s.expect("E3ND");
    assert!(out.contains("40 120"), "after resize: {out}");
    // Ctrl-C stops the foreground job, not the shell or zookeeper.
    s.send(b"sleep 30\r");
    std::thread::sleep(Duration::from_millis(300));
    s.send(b"\x03");
    s.expect("/ # ");
    s.send(b"echo alive-$((6*7))\r");
    s.expect("alive-42");
    // Ctrl-Z stops it; job control brings it back to the foreground.
    s.send(b"sleep 30\r");
    std::thread::sleep(Duration::from_millis(300));
    s.send(b"\x1a");
    s.expect("Stopped");
    s.send(b"fg\r");
    std::thread::sleep(Duration::from_millis(300));
    s.send(b"\x03");
    s.send(b"echo done-$((1+1))\r");
    s.expect("done-2");
    s.send(b"exit 7\r");
    let status = s.child.wait().unwrap();
    assert_eq!(status.code(), Some(7));
    let modes_after = format!("{:?}", tcgetattr(s.slave.as_fd()).unwrap());
    assert_eq!(modes_before, modes_after, "the terminal's modes were not restored");
}

#[test]
fn the_terminal_is_restored_after_a_failure() {
    let mut s = Session::start(&["no-such-command"]);
    let modes_before = format!("{:?}", tcgetattr(s.slave.as_fd()).unwrap());
    s.expect("not found in PATH");
    assert_eq!(s.child.wait().unwrap().code(), Some(127));
    assert_eq!(modes_before, format!("{:?}", tcgetattr(s.slave.as_fd()).unwrap()));
}

#[test]
fn without_a_terminal_stdio_is_passed_through_binary_safe() {
    let fx = fixture();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let mut child = zookeeper(As::User(RANGED_USER), &["-r", fx.rootfs.to_str().unwrap(), "--no-tty", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = data.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    assert!(out.stdout == data, "the bytes changed on the way through");
    // And no terminal inside.
    let out = ok(run_in_rootfs(As::User(RANGED_USER), &["sh", "-c", "tty; true"]));
    assert_eq!(out, "not a tty\n");
}

#[test]
fn forced_tty_with_piped_input_ends_at_end_of_input() {
    use std::io::Read;
    let fx = fixture();
    let mut child = zookeeper(As::User(RANGED_USER), &["-r", fx.rootfs.to_str().unwrap(), "--tty", "sh"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Like any interactive shell, ash drops input typed before its prompt.
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("# ") {
        assert_eq!(stdout.read(&mut byte).unwrap(), 1, "no prompt: {}", String::from_utf8_lossy(&seen));
        seen.push(byte[0]);
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"tty; echo in-$((20+3))\n").unwrap();
    drop(stdin); // end of input: the shell gets its Ctrl-D and exits
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("/dev/pts/0") && rest.contains("in-23"), "{rest}");
    assert!(child.wait().unwrap().success());
}
