//! The interactive terminal (SPEC.md section 4), driven through a pty the
//! test owns, as a user's terminal emulator would; and the plain stdio path.

mod common;

use common::*;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::pty::{OpenptyResult, Winsize, openpty};
use nix::sys::termios::tcgetattr;
use nix::unistd::pipe2;

nix::ioctl_write_ptr_bad!(set_window_size, libc::TIOCSWINSZ, libc::winsize);

struct Session {
    master: OwnedFd,
    slave: OwnedFd,
    child: Child,
    seen: String,
    /// Where the test types: the pty's master, or zookeeper's stdin pipe
    /// (`None` once closed).
    input: Option<OwnedFd>,
    /// Where the test reads: the master, or the pipe that holds zookeeper's
    /// stdout and stderr.
    output: OwnedFd,
}

fn winsize(rows: u16, cols: u16) -> Winsize {
    Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 }
}

impl Session {
    /// zookeeper (as the test user) with the test's pty as its controlling
    /// terminal and stdio.
    fn start(args: &[&str]) -> Session {
        Session::start_with(As::User(RANGED_USER), args, [true; 3])
    }

    /// zookeeper as `who`, with the test's pty as its controlling terminal;
    /// `ttys` says which of its stdin, stdout and stderr are the pty (the
    /// others are pipes: one for stdin, one shared by stdout and stderr).
    fn start_with(who: As, args: &[&str], ttys: [bool; 3]) -> Session {
        let fx = fixture();
        let mut all = vec!["-r", fx.rootfs.to_str().unwrap(), "-P"];
        all.extend_from_slice(args);
        Session::start_command(zookeeper(who, &all), ttys)
    }

    /// `command` (zookeeper, or a shell that starts it) with the test's pty
    /// as its controlling terminal, as [`Session::start_with`].
    fn start_command(mut command: std::process::Command, ttys: [bool; 3]) -> Session {
        let OpenptyResult { master, slave } = openpty(Some(&winsize(30, 100)), None).unwrap();
        // Only zookeeper's stdio may hold the pty: not the processes other
        // tests start meanwhile, nor zookeeper's own spare descriptors.
        for fd in [&master, &slave] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).unwrap();
        }
        let (in_read, in_write) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let (out_read, out_write) = pipe2(OFlag::O_CLOEXEC).unwrap();
        command.env("TERM", "xterm");
        for (i, &tty) in ttys.iter().enumerate() {
            let fd = match (tty, i) {
                (true, _) => slave.try_clone().unwrap(),
                (false, 0) => in_read.try_clone().unwrap(),
                (false, _) => out_write.try_clone().unwrap(),
            };
            match i {
                0 => command.stdin(Stdio::from(fd)),
                1 => command.stdout(Stdio::from(fd)),
                _ => command.stderr(Stdio::from(fd)),
            };
        }
        let slave_fd = slave.as_raw_fd();
        // SAFETY: setsid and TIOCSCTTY are async-signal-safe system calls.
        unsafe {
            command.pre_exec(move || {
                nix::unistd::setsid()?;
                if libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().unwrap();
        // The test's copies of zookeeper's ends go, so that its end of
        // output shows as end of file.
        drop((command, in_read, out_write));
        let input = if ttys[0] { master.try_clone().unwrap() } else { in_write };
        let output = if ttys[1] { master.try_clone().unwrap() } else { out_read };
        Session { master, slave, child, seen: String::new(), input: Some(input), output }
    }

    fn send(&mut self, bytes: &[u8]) {
        let mut file = std::fs::File::from(self.input.as_ref().unwrap().try_clone().unwrap());
        file.write_all(bytes).unwrap();
    }

    /// Ends zookeeper's input, when it is a pipe.
    fn close_input(&mut self) {
        self.input = None;
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
            let mut fds = [nix::poll::PollFd::new(self.output.as_fd(), nix::poll::PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16));
            if fds[0].any() != Some(true) {
                continue;
            }
            if let Ok(n) = nix::unistd::read(&self.output, &mut buffer) {
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

/// What a holder of a terminal could change about it, seen from the test.
#[derive(Debug, PartialEq)]
struct TtyState {
    modes: String,
    size: (u16, u16),
    line_discipline: i32,
    exclusive: i32,
}

nix::ioctl_read_bad!(get_window_size, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_read_bad!(get_line_discipline, libc::TIOCGETD, libc::c_int);
nix::ioctl_read!(get_exclusive, b'T', 0x40, libc::c_int);

impl TtyState {
    fn of(tty: &OwnedFd) -> TtyState {
        let fd = tty.as_raw_fd();
        let (mut size, mut line_discipline, mut exclusive) = (winsize(0, 0), 0, 0);
        // SAFETY: each ioctl writes one value of the type given, which
        // outlives the call.
        unsafe {
            get_window_size(fd, &mut size).unwrap();
            get_line_discipline(fd, &mut line_discipline).unwrap();
            get_exclusive(fd, &mut exclusive).unwrap();
        }
        TtyState {
            modes: format!("{:?}", tcgetattr(tty.as_fd()).unwrap()),
            size: (size.ws_row, size.ws_col),
            line_discipline,
            exclusive,
        }
    }
}

/// Every way the container tries to reach the caller's terminal through
/// stdin, stdout and stderr: the probe's ioctls, then busybox stty on each.
const ATTACK: &str = "zoo-probe tty-attack; stty raw -echo -icanon; stty raw -echo <&1; \
                      stty raw -echo <&2; echo attacked-$((1+1))";

/// `dev:ino` of the test's pty slave, as the probe prints descriptors.
fn identity(tty: &OwnedFd) -> String {
    let st = nix::sys::stat::fstat(tty).unwrap();
    format!("{}:{}", st.st_dev, st.st_ino)
}

/// Runs ATTACK with zookeeper's stdio on the pty where `ttys` says, then
/// checks that nothing reached the caller's terminal, that it still carries
/// the container's output and input, and that it ends as it was.
fn attack_the_callers_terminal(who: As, args: &[&str], ttys: [bool; 3], then: &str) {
    let mut all = args.to_vec();
    let script = format!("{ATTACK}; {then}; echo end-$((3+4))");
    all.extend_from_slice(&["sh", "-c", &script]);
    let mut s = Session::start_with(who, &all, ttys);
    let before = TtyState::of(&s.slave);
    let out = s.expect("attacked-2");
    // Checked while the container runs: restoring the modes afterwards
    // would not undo what a hostile container did meanwhile.
    assert_eq!(
        TtyState::of(&s.slave),
        before,
        "{who:?} {ttys:?}: the container changed the caller's terminal: {out}"
    );
    assert!(!out.contains(": ok"), "{who:?} {ttys:?}: an ioctl on the caller's terminal worked: {out}");
    let pty = identity(&s.slave);
    let fds: Vec<&str> = out.lines().filter(|l| l.starts_with("fd ") && !l.contains(": ")).collect();
    assert!(fds.len() >= 3, "{who:?} {ttys:?}: no descriptor list: {out}");
    assert!(
        fds.iter().all(|l| !l.contains(&format!(" {pty} "))),
        "{who:?} {ttys:?}: the container holds the caller's terminal ({pty}): {fds:?}"
    );
    if ttys[0] {
        // Typed on the terminal, read by the container.
        s.send(b"typed-line\n");
        s.expect("TYPED-LINE");
    } else {
        s.send(b"piped-line\n");
        s.close_input();
        s.expect("piped-line");
    }
    s.expect("end-7");
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{who:?} {ttys:?}: {status:?}");
    assert_eq!(TtyState::of(&s.slave), before, "{who:?} {ttys:?}: the terminal was not left as it was");
}

#[test]
fn no_tty_keeps_the_callers_terminal_out_of_reach() {
    for who in [As::Root, As::User(RANGED_USER)] {
        attack_the_callers_terminal(who, &["--no-tty"], [true; 3], "head -n1 | tr a-z A-Z");
    }
}

#[test]
fn redirected_input_keeps_the_callers_terminal_out_of_reach() {
    // stdin a pipe, stdout and stderr the terminal: no pty by default.
    for who in [As::Root, As::User(RANGED_USER)] {
        attack_the_callers_terminal(who, &[], [false, true, true], "cat");
    }
}

#[test]
fn redirected_output_keeps_the_callers_terminal_out_of_reach() {
    // `zookeeper sh > file` from an interactive shell: stdin the terminal.
    for who in [As::Root, As::User(RANGED_USER)] {
        attack_the_callers_terminal(who, &[], [true, false, false], "head -n1 | tr a-z A-Z");
    }
}

#[test]
fn no_tty_puts_the_terminals_modes_back() {
    use nix::sys::termios::{LocalFlags, SetArg, tcsetattr};
    let mut s = Session::start_with(
        As::User(RANGED_USER),
        &["--no-tty", "sh", "-c", "echo ready-$((1+1)); head -n1"],
        [true; 3],
    );
    let before = TtyState::of(&s.slave);
    s.expect("ready-2");
    // Whatever changes them meanwhile (nothing in the container can now),
    // zookeeper leaves the terminal as it found it.
    let mut modes = tcgetattr(s.slave.as_fd()).unwrap();
    modes.local_flags.remove(LocalFlags::ECHO | LocalFlags::ICANON);
    tcsetattr(s.slave.as_fd(), SetArg::TCSANOW, &modes).unwrap();
    assert_ne!(TtyState::of(&s.slave), before);
    s.send(b"line\n");
    assert!(s.child.wait().unwrap().success());
    assert_eq!(TtyState::of(&s.slave), before, "the terminal's modes were not put back");
}

/// An interactive shell's `zookeeper ... &`: bash with job control puts it
/// in a process group of its own, and the terminal's foreground stays the
/// shell's. zookeeper then gives the container no terminal (as --no-tty)
/// and never sets the terminal's modes, which would stop it with SIGTTOU:
/// not at start (raw mode), not at its end (putting back modes that the
/// foreground job changed meanwhile, here with stty, as a line editor does).
#[test]
fn in_the_background_zookeeper_leaves_the_terminal_alone() {
    let fx = fixture();
    for (who, forced) in [(As::User(RANGED_USER), ""), (As::Root, ""), (As::User(RANGED_USER), "--tty")] {
        let zookeeper = zookeeper(who, &[]);
        let mut line = vec![zookeeper.get_program().to_string_lossy().into_owned()];
        line.extend(zookeeper.get_args().map(|a| a.to_string_lossy().into_owned()));
        let script = format!(
            "{} -r {} {forced} sh -c 'tty; sleep 0.5; echo bg-$((1+1))' & sleep 0.2; stty -echo; \
             wait $!; echo status=$?; stty -a | grep -o -- '-echo ' | head -1",
            line.join(" "),
            fx.rootfs.display()
        );
        let mut bash = std::process::Command::new("/bin/bash");
        bash.args(["-m", "-c", &script]).env_clear().env("PATH", "/usr/bin:/bin");
        let mut s = Session::start_command(bash, [true; 3]);
        let out = s.expect("status=");
        let rest = s.expect("echo ");
        let status = s.child.wait().unwrap();
        assert!(status.success(), "{who:?} {forced}: {out}{rest}");
        if forced.is_empty() {
            assert!(out.contains("not a tty"), "{who:?}: given a terminal in the background: {out}");
        } else {
            assert!(out.contains("/dev/pts/0"), "--tty: {out}");
        }
        assert!(out.contains("bg-2") && rest.starts_with("0"), "{who:?} {forced}: stopped? {out}{rest}");
        // The foreground job's modes stand.
        assert!(rest.contains("-echo "), "{who:?} {forced}: the terminal's modes were changed: {rest}");
    }
}

/// Ctrl-C goes to the container's foreground job through its pty; a
/// container that ignores it is ended by the escape, Ctrl-] three times in
/// a row (not with anything typed between them).
#[test]
fn the_escape_ends_a_container_that_ignores_ctrl_c() {
    for who in [As::User(RANGED_USER), As::Root] {
        let mut s =
            Session::start_with(who, &["sh", "-c", "trap '' INT; echo ready-$((1+1)); sleep 30"], [true; 3]);
        s.expect("ready-2");
        s.send(b"\x03\x03");
        s.send(b"\x1d\x1dx\x1d");
        std::thread::sleep(Duration::from_millis(300));
        assert!(s.child.try_wait().unwrap().is_none(), "{who:?}: ended without the escape");
        s.send(b"\x1d\x1d\x1d");
        s.expect("zookeeper: Ctrl-] three times: killing the container");
        let status = s.child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{who:?}: {status:?}");
    }
}
