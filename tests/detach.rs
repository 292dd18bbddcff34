//! Detached, named containers (issue 18): `--detach` and the long options
//! that manage them, root and rootless, with the real binary, a real
//! slirp4netns and a real web server (busybox httpd) reached from the host.
//! Root's state is in /run/zookeeper/containers (shared with anything else
//! root runs there: every name here is the test's own); the test user's in
//! an XDG_RUNTIME_DIR the test makes for it.

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The leak counts (cgroups, /tmp/zoo.*) need the other tests' containers gone.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

const WHO: [As; 2] = [As::Root, As::User(RANGED_USER)];

fn tag(who: As) -> &'static str {
    if who == As::Root { "root" } else { "user" }
}

/// The test user's runtime directory (what a login session's
/// /run/user/UID would be), private to it.
fn runtime_dir(who: As) -> Option<PathBuf> {
    let As::User(user) = who else { return None };
    let dir = fixture().dir.join(format!("run-{user}"));
    if !dir.exists() {
        std::fs::create_dir(&dir).unwrap();
        let (uid, gid) = ids_of(user);
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    }
    Some(dir)
}

fn zk(who: As, args: &[&str]) -> Command {
    let mut command = zookeeper(who, args);
    if let Some(dir) = runtime_dir(who) {
        command.env("XDG_RUNTIME_DIR", dir);
    }
    command
}

fn run(who: As, args: &[&str]) -> Output {
    zk(who, args).output().unwrap()
}

fn state_root(who: As) -> PathBuf {
    match runtime_dir(who) {
        Some(dir) => dir.join("zookeeper/containers"),
        None => PathBuf::from("/run/zookeeper/containers"),
    }
}

/// A unique name for this run.
fn name(what: &str, who: As) -> String {
    format!("t{}-{what}-{}", std::process::id(), tag(who))
}

/// Removes (with --force) every container of this run's when a test ends,
/// failed or not, so that a failure leaves nothing running.
struct Sweep;

impl Drop for Sweep {
    fn drop(&mut self) {
        let prefix = format!("t{}-", std::process::id());
        for who in WHO {
            let Ok(out) = zk(who, &["--list"]).output() else { continue };
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some(name) = line.split_whitespace().next().filter(|n| n.starts_with(&prefix)) {
                    let _ = zk(who, &["--remove", name, "--force"]).output();
                }
            }
        }
    }
}

/// Starts a detached container in the fixture's rootfs; returns its id.
fn detach(who: As, name: &str, extra: &[&str], command: &[&str]) -> String {
    let rootfs = fixture().rootfs.to_str().unwrap().to_string();
    let mut args = vec!["-d", "--name", name, "-r", &rootfs, "-P"];
    args.extend_from_slice(extra);
    args.extend_from_slice(command);
    let id = ok(run(who, &args)).trim().to_string();
    assert!(id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id:?}");
    id
}

fn inspect(who: As, name: &str) -> Value {
    serde_json::from_str(&ok(run(who, &["--inspect", name]))).unwrap()
}

fn pid_of(state: &Value, key: &str) -> i32 {
    state[key].as_i64().unwrap_or_else(|| panic!("{key} in {state}")) as i32
}

fn alive(pid: i32) -> bool {
    // A zombie is gone for our purposes.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !matches!(s.rsplit(')').next().unwrap().split_whitespace().next(), Some("Z" | "X")))
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status_lines(pid: i32) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .filter(|l| ["CapBnd:", "CapEff:", "Seccomp:", "NoNewPrivs:"].iter().any(|k| l.starts_with(k)))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// GET / from the host, retried while the server comes up.
fn http_get(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
            let mut reply = String::new();
            stream.read_to_string(&mut reply)?;
            Ok(reply)
        })();
        match attempt {
            Ok(reply) if reply.contains("200") => return reply,
            other if Instant::now() > deadline => panic!("no answer on port {port}: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn list_row(who: As, name: &str) -> Option<String> {
    ok(run(who, &["--list"])).lines().find(|l| l.split_whitespace().next() == Some(name)).map(String::from)
}

/// The README's walk-through, for root and rootless: a web server detached
/// with a published port, reached, listed, exec'd into with its
/// confinement, its logs read, stopped within the timeout, removed, and
/// nothing of it left.
#[test]
fn a_detached_web_server_from_start_to_removal() {
    let _turn = turn();
    let _sweep = Sweep;
    for who in WHO {
        let cgroups_before = zoo_cgroups();
        let tmp_before = zoo_tmp_dirs();
        let name = name("web", who);
        let port = free_port();
        let publish = format!("127.0.0.1:{port}:8080");
        let mut start = zk(
            who,
            &["-d", "--name", &name, "-r", fixture().rootfs.to_str().unwrap(), "-P", "--publish", &publish],
        );
        // Root gets a cgroup (cgroup v1 limits are root's only here).
        if who == As::Root {
            start.args(["-m", "64M"]);
        }
        // The caller's environment must not reach the container.
        start.env("ZOO_CALLER_SECRET", "leaked");
        start.args([
            "sh",
            "-c",
            "echo hello from the web server; mkdir -p /tmp/www; echo served > /tmp/www/index.html; exec httpd -f -p 8080 -h /tmp/www",
        ]);
        let started = Instant::now();
        let id = ok(start.output().unwrap()).trim().to_string();
        assert!(started.elapsed() < Duration::from_secs(10));

        assert!(http_get(port).contains("served"), "{who:?}");

        let row = list_row(who, &name).unwrap_or_else(|| panic!("{who:?}: not listed"));
        assert!(row.contains(&id) && row.contains("running") && row.contains(&publish), "{row}");
        let listed_by_id = ok(run(who, &["--inspect", &id]));
        assert!(listed_by_id.contains(&name));

        let state = inspect(who, &name);
        assert_eq!(state["status"], "running");
        let (pid, supervisor, helper) =
            (pid_of(&state, "pid"), pid_of(&state, "supervisorPid"), pid_of(&state, "helperPid"));
        assert!(alive(pid) && alive(supervisor) && alive(helper));
        let mountpoint =
            PathBuf::from(state["mountpoint"].as_str().expect("a mountpoint for slirp4netns's socket"));
        let cgroups: Vec<PathBuf> = state["cgroupDirs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| PathBuf::from(d.as_str().unwrap()))
            .collect();
        assert_eq!(cgroups.is_empty(), who != As::Root, "{cgroups:?}");

        // The supervisor: a session of its own, no terminal, nothing open
        // but its stdio (/dev/null and the log pipe) and its own.
        let stat = std::fs::read_to_string(format!("/proc/{supervisor}/stat")).unwrap();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
        assert_eq!(fields[3], supervisor.to_string(), "session id: {stat}");
        assert_eq!(fields[4], "0", "a controlling terminal: {stat}");
        for fd in std::fs::read_dir(format!("/proc/{supervisor}/fd")).unwrap().flatten() {
            let target = std::fs::read_link(fd.path()).unwrap().display().to_string();
            assert!(
                target == "/dev/null"
                    || target.starts_with("pipe:")
                    || target.starts_with("anon_inode:")
                    || target.starts_with("/memfd:slirp4netns-log")
                    || target.starts_with("/tmp/zoo."),
                "{who:?}: the supervisor holds {target}"
            );
        }

        // exec: the first process's confinement and pid namespace.
        let out = run(
            who,
            &[
                "--exec",
                &name,
                "sh",
                "-c",
                "grep -E '^(CapBnd|CapEff|Seccomp|NoNewPrivs):' /proc/self/status; readlink /proc/self/ns/pid; cat /proc/1/cmdline | tr '\\0' ' '; echo; env",
            ],
        );
        let text = ok(out);
        let exec_status: Vec<String> = text
            .lines()
            .filter(|l| l.contains(':') && !l.contains('='))
            .filter(|l| !l.starts_with("pid:"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        let mut first = status_lines(pid);
        first.sort();
        let mut exec_sorted = exec_status.clone();
        exec_sorted.sort();
        assert_eq!(exec_sorted, first, "{who:?}: {text}");
        assert!(first.iter().any(|l| l == "Seccomp: 2") && first.iter().any(|l| l == "NoNewPrivs: 1"));
        let pid_ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap().display().to_string();
        assert!(text.contains(&pid_ns), "{who:?}: {text} lacks {pid_ns}");
        assert!(text.contains("httpd -f -p 8080"), "{who:?}: pid 1 is not the server: {text}");
        assert!(!text.contains("ZOO_CALLER_SECRET"), "{who:?}: {text}");
        // The exit status and a command that is not there.
        assert_eq!(run(who, &["--exec", &name, "sh", "-c", "exit 7"]).status.code(), Some(7));
        fails_with(&run(who, &["--exec", &name, "no-such-command"]), 127, "");

        let logs = ok(run(who, &["--logs", &name]));
        assert!(logs.contains("hello from the web server"), "{who:?}: {logs:?}");

        // httpd as pid 1 ignores SIGTERM: killed once the 2 s are up.
        let stopping = Instant::now();
        ok(run(who, &["--stop", &name, "--time", "2"]));
        let took = stopping.elapsed();
        assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(8), "{who:?}: {took:?}");
        let state = inspect(who, &name);
        assert_eq!(state["status"], "exited");
        assert_eq!(state["exitSignal"], "SIGKILL");
        assert!(!alive(pid) && !alive(supervisor), "{who:?}");
        // slirp4netns is killed, not waited for (src/network.rs): it dies
        // while the kernel takes its tap device down.
        wait_until("slirp4netns to die", Duration::from_secs(1), || !alive(helper));
        assert!(!mountpoint.exists(), "{who:?}: {}", mountpoint.display());
        for cgroup in &cgroups {
            assert!(!cgroup.exists(), "{who:?}: {}", cgroup.display());
        }
        assert!(list_row(who, &name).unwrap().contains("exited"));

        ok(run(who, &["--remove", &name]));
        assert!(list_row(who, &name).is_none());
        assert!(!state_root(who).join(&id).exists());
        fails_with(&run(who, &["--inspect", &name]), 125, "no container named");
        assert_no_zoo_cgroup_left(&cgroups_before, "after --remove");
        assert_no_zoo_tmp_dir_left(&tmp_before, "after --remove");
    }
}

/// A container that handles SIGTERM ends with its own status at --stop;
/// --kill sends a signal; --remove refuses a running one without --force.
#[test]
fn stop_kill_and_remove() {
    let _turn = turn();
    let _sweep = Sweep;
    for who in WHO {
        let name = name("trap", who);
        detach(
            who,
            &name,
            &[],
            &["sh", "-c", "trap 'echo got term; exit 3' TERM; echo ready; while :; do sleep 0.1; done"],
        );
        fails_with(&run(who, &["--remove", &name]), 125, "is running");
        let stopping = Instant::now();
        ok(run(who, &["--stop", &name, "--time", "20"]));
        assert!(stopping.elapsed() < Duration::from_secs(5));
        let state = inspect(who, &name);
        assert_eq!(state["exitCode"], 3, "{state}");
        assert!(ok(run(who, &["--logs", &name])).contains("got term"));
        ok(run(who, &["--remove", &name]));

        let name2 = self::name("kill", who);
        detach(who, &name2, &["--init"], &["sleep", "1000"]);
        ok(run(who, &["--kill", &name2, "TERM"]));
        wait_until("the container to end", Duration::from_secs(10), || {
            inspect(who, &name2)["status"] == "exited"
        });
        ok(run(who, &["--remove", &name2]));

        let name3 = self::name("force", who);
        detach(who, &name3, &[], &["sleep", "1000"]);
        let pid = pid_of(&inspect(who, &name3), "pid");
        ok(run(who, &["--remove", &name3, "--force"]));
        assert!(!alive(pid));
        assert!(list_row(who, &name3).is_none());
    }
}

/// Names are unique per user; the two users' containers never see each other.
#[test]
fn names_are_unique_and_per_user() {
    let _turn = turn();
    let _sweep = Sweep;
    let name = format!("t{}-same", std::process::id());
    for who in WHO {
        detach(who, &name, &[], &["sleep", "1000"]);
    }
    for who in WHO {
        fails_with(&run(who, &["-d", "--name", &name, "sleep", "1"]), 125, "in use");
        let rows: Vec<String> =
            ok(run(who, &["--list"])).lines().filter(|l| l.starts_with(&name)).map(String::from).collect();
        assert_eq!(rows.len(), 1, "{who:?}: {rows:?}");
    }
    let root_id = inspect(As::Root, &name)["id"].as_str().unwrap().to_string();
    fails_with(&run(As::User(RANGED_USER), &["--inspect", &root_id]), 125, "no container named");
    fails_with(&run(As::User(RANGED_USER), &["-d", "--name", "../x", "true"]), 125, "invalid container name");
    for who in WHO {
        ok(run(who, &["--remove", &name, "--force"]));
    }
}

/// kill -9 of the supervisor: the container dies with it (and slirp4netns);
/// the list says so; --remove clears the cgroup, mountpoint and state.
#[test]
fn a_killed_supervisor_takes_its_container_along() {
    let _turn = turn();
    let _sweep = Sweep;
    for who in WHO {
        let cgroups_before = zoo_cgroups();
        let tmp_before = zoo_tmp_dirs();
        let name = name("orphan", who);
        let publish = format!("127.0.0.1:{}:8080", free_port());
        let mut extra = vec!["--publish", publish.as_str()];
        if who == As::Root {
            extra.extend(["-m", "32M"]);
        }
        let id = detach(who, &name, &extra, &["sleep", "1000"]);
        let state = inspect(who, &name);
        let (pid, supervisor, helper) =
            (pid_of(&state, "pid"), pid_of(&state, "supervisorPid"), pid_of(&state, "helperPid"));
        let mountpoint = PathBuf::from(state["mountpoint"].as_str().unwrap());
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(supervisor), nix::sys::signal::Signal::SIGKILL)
            .unwrap();
        wait_until("the container and slirp4netns to die", Duration::from_secs(10), || {
            !alive(pid) && !alive(helper)
        });
        let row = list_row(who, &name).unwrap();
        assert!(row.contains("gone (supervisor died)"), "{row}");
        assert_eq!(inspect(who, &name)["status"], "gone");
        assert!(mountpoint.exists(), "nothing to clear: the test proves nothing");
        ok(run(who, &["--remove", &name]));
        assert!(!mountpoint.exists());
        assert!(!state_root(who).join(&id).exists());
        assert_no_zoo_cgroup_left(&cgroups_before, "after --remove of a gone container");
        assert_no_zoo_tmp_dir_left(&tmp_before, "after --remove of a gone container");

        // And --cleanup clears one too.
        let name = self::name("orphan2", who);
        let id = detach(who, &name, &[], &["sleep", "1000"]);
        let supervisor = pid_of(&inspect(who, &name), "supervisorPid");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(supervisor), nix::sys::signal::Signal::SIGKILL)
            .unwrap();
        wait_until("the supervisor to die", Duration::from_secs(10), || !alive(supervisor));
        let out = ok(run(who, &["--cleanup"]));
        assert!(out.contains(&id), "{out}");
        assert!(list_row(who, &name).is_none());
    }
}

/// `--exec -t`: the command gets a terminal of its own (on a terminal the
/// test makes with script(1)); `-d --rm`: the state goes when it ends.
#[test]
fn exec_with_a_terminal_and_detach_with_rm() {
    let _turn = turn();
    let _sweep = Sweep;
    for who in WHO {
        let name = name("tty", who);
        detach(who, &name, &[], &["sleep", "1000"]);
        let mut line = String::new();
        if let As::User(user) = who {
            line.push_str(&format!("/usr/bin/setpriv --reuid={user} --regid={user} --init-groups -- "));
        }
        line.push_str(&format!(
            "{} --exec {name} -t sh -c 'tty; test -t 0 && test -t 1 && echo both-terminals'",
            fixture().zookeeper.display()
        ));
        let mut script = Command::new("script");
        script.args(["-qec", &line, "/dev/null"]).env_clear().env("PATH", "/usr/bin:/bin");
        if let Some(dir) = runtime_dir(who) {
            script.env("XDG_RUNTIME_DIR", dir);
        }
        let text = ok(script.stdin(std::process::Stdio::null()).output().unwrap());
        assert!(text.contains("/dev/pts/") && text.contains("both-terminals"), "{who:?}: {text:?}");
        ok(run(who, &["--remove", &name, "--force"]));

        let name = self::name("rm", who);
        let id = detach(who, &name, &["--rm"], &["sh", "-c", "sleep 0.3"]);
        wait_until("the --rm container's state to go", Duration::from_secs(10), || {
            !state_root(who).join(&id).exists()
        });
        assert!(list_row(who, &name).is_none());
    }
}

/// A detached container outlives the terminal (and session) that started
/// it; its log is capped at 1 MiB, the one before kept beside it.
#[test]
fn survives_its_terminal_and_caps_its_log() {
    let _turn = turn();
    let _sweep = Sweep;
    for who in WHO {
        let name = name("hup", who);
        let mut line = String::new();
        if let As::User(user) = who {
            line.push_str(&format!("/usr/bin/setpriv --reuid={user} --regid={user} --init-groups -- "));
        }
        line.push_str(&format!(
            "{} -d --name {name} -r {} sleep 1000",
            fixture().zookeeper.display(),
            fixture().rootfs.display()
        ));
        let mut script = Command::new("script");
        script.args(["-qec", &line, "/dev/null"]).env_clear().env("PATH", "/usr/bin:/bin");
        if let Some(dir) = runtime_dir(who) {
            script.env("XDG_RUNTIME_DIR", dir);
        }
        ok(script.stdin(std::process::Stdio::null()).output().unwrap());
        // The terminal is gone (script closed its pty): still running.
        std::thread::sleep(Duration::from_millis(500));
        let state = inspect(who, &name);
        assert_eq!(state["status"], "running", "{who:?}: {state}");
        assert!(alive(pid_of(&state, "pid")));
        ok(run(who, &["--remove", &name, "--force"]));

        let name = self::name("big", who);
        let id = detach(who, &name, &[], &["sh", "-c", "yes 0123456789 | head -c 3000000; echo END"]);
        wait_until("the writer to end", Duration::from_secs(30), || {
            inspect(who, &name)["status"] == "exited"
        });
        let dir = state_root(who).join(&id);
        let size = |file: &str| std::fs::metadata(dir.join(file)).unwrap().len();
        assert!(size("container.log") <= 1 << 20, "{}", size("container.log"));
        assert!(size("container.log.1") <= 1 << 20 && size("container.log.1") > 0);
        let logs = run(who, &["--logs", &name]);
        assert!(logs.status.success());
        // The newest output is all there, the oldest dropped.
        assert!(logs.stdout.ends_with(b"END\n"), "{who:?}");
        let len = logs.stdout.len();
        assert!(len > 1 << 20 && len <= 2 << 20, "{who:?}: {len}");
        ok(run(who, &["--remove", &name]));
    }
}

/// --logs --follow prints until the container ends.
#[test]
fn logs_follow_until_the_end() {
    let _turn = turn();
    let _sweep = Sweep;
    for who in WHO {
        let name = name("follow", who);
        detach(who, &name, &[], &["sh", "-c", "echo first; sleep 1; echo second >&2; sleep 0.5; echo third"]);
        let started = Instant::now();
        let out = ok(run(who, &["--logs", &name, "--follow"]));
        assert_eq!(out, "first\nsecond\nthird\n", "{who:?}");
        assert!(started.elapsed() >= Duration::from_millis(900));
        ok(run(who, &["--remove", &name]));
    }
}

/// 20 detached containers at once, then all stopped and removed: no
/// process, cgroup, mountpoint or state left.
#[test]
fn twenty_at_once_leak_nothing() {
    let _turn = turn();
    let _sweep = Sweep;
    for who in WHO {
        let cgroups_before = zoo_cgroups();
        let tmp_before = zoo_tmp_dirs();
        let names: Vec<String> = (0..20).map(|i| name(&format!("many{i}"), who)).collect();
        let extra: &[&str] = if who == As::Root { &["-m", "16M", "-p", "20"] } else { &[] };
        let starts: Vec<std::process::Child> = names
            .iter()
            .map(|name| {
                let rootfs = fixture().rootfs.to_str().unwrap();
                let mut args = vec!["-d", "--name", name, "-r", rootfs, "-P"];
                args.extend_from_slice(extra);
                args.extend(["sleep", "1000"]);
                let mut command = zk(who, &args);
                command.stdout(std::process::Stdio::piped());
                command.spawn().unwrap()
            })
            .collect();
        for child in starts {
            ok(child.wait_with_output().unwrap());
        }
        let mut pids = Vec::new();
        for name in &names {
            let state = inspect(who, name);
            assert_eq!(state["status"], "running");
            pids.extend([
                pid_of(&state, "pid"),
                pid_of(&state, "supervisorPid"),
                pid_of(&state, "loggerPid"),
            ]);
        }
        let stops: Vec<std::process::Child> = names
            .iter()
            .map(|name| {
                zk(who, &["--stop", name, "--time", "1"]).stdout(std::process::Stdio::null()).spawn().unwrap()
            })
            .collect();
        for mut child in stops {
            assert!(child.wait().unwrap().success());
        }
        for name in &names {
            ok(run(who, &["--remove", name]));
        }
        wait_until("every process to end", Duration::from_secs(10), || pids.iter().all(|p| !alive(*p)));
        for name in &names {
            assert!(list_row(who, name).is_none());
        }
        let left: Vec<String> = std::fs::read_dir(state_root(who))
            .unwrap()
            .flatten()
            .filter(|e| e.file_type().unwrap().is_dir())
            .filter_map(|e| {
                let state = std::fs::read_to_string(e.path().join("state.json")).ok()?;
                names
                    .iter()
                    .any(|n| state.contains(&format!("\"{n}\"")))
                    .then(|| e.path().display().to_string())
            })
            .collect();
        assert!(left.is_empty(), "{left:?}");
        assert_no_zoo_cgroup_left(&cgroups_before, "after 20 detached containers");
        assert_no_zoo_tmp_dir_left(&tmp_before, "after 20 detached containers");
    }
}

/// The options' spelling: the first word that is not an option is still
/// the command (`zookeeper list` runs a program named list).
#[test]
fn management_options_keep_the_command_line_contract() {
    let rootfs = fixture().rootfs.to_str().unwrap();
    let out = run(As::Root, &["-r", rootfs, "sh", "-c", "echo list"]);
    assert_eq!(ok(out), "list\n");
    fails_with(&run(As::Root, &["--list", "sh"]), 125, "--list takes no command");
    fails_with(&run(As::Root, &["--list", "--stop", "x"]), 125, "exclude each other");
    fails_with(&run(As::Root, &["--exec", "x"]), 125, "needs a command");
    fails_with(&run(As::Root, &["-d", "-t", "sleep", "1"]), 125, "--detach and --tty");
    fails_with(&run(As::Root, &["--name", "x", "sleep", "1"]), 125, "--name needs --detach");
    // A user without a runtime directory is told what to set.
    let (uid, _) = ids_of(RANGED_USER);
    if !Path::new(&format!("/run/user/{uid}")).exists() {
        let out = zookeeper(As::User(RANGED_USER), &["-d", "sleep", "1"]).output().unwrap();
        fails_with(&out, 125, "set XDG_RUNTIME_DIR");
    }
    let _ = Path::new(rootfs);
}

/// A one-layer image of the fixture's busybox rootfs, served at
/// `zk/bb:1` by a small HTTP server of the test's on a loopback port (a
/// registry's protocol as far as a pull needs it); returns `HOST:PORT`.
fn image_registry() -> &'static str {
    use sha2::Digest;
    use std::io::BufRead;
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let digest = |bytes: &[u8]| format!("sha256:{:x}", sha2::Sha256::digest(bytes));
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        builder.append_dir_all(".", &fixture().rootfs).unwrap();
        let layer = builder.into_inner().unwrap();
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin", "FROM_IMAGE=yes"], "WorkingDir": "/tmp"},
            "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]}
        })
        .to_string()
        .into_bytes();
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}]
        })
        .to_string()
        .into_bytes();
        let served: Vec<(String, Vec<u8>)> = vec![
            ("/v2/zk/bb/manifests/1".into(), manifest),
            (format!("/v2/zk/bb/blobs/{}", digest(&config)), config),
            (format!("/v2/zk/bb/blobs/{}", digest(&layer)), layer),
        ];
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                        break;
                    }
                }
                let (status, body) = match served.iter().find(|(p, _)| *p == path) {
                    Some((_, body)) => ("200 OK", body.as_slice()),
                    None => ("404 Not Found", &br#"{"errors":[{"code":"NAME_UNKNOWN"}]}"#[..]),
                };
                let kind = if path.contains("/manifests/") {
                    "application/vnd.oci.image.manifest.v1+json"
                } else {
                    "application/octet-stream"
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(body);
            }
        });
        host
    })
}

/// `--detach --image`: the caller pulls (and shows it), the supervisor runs
/// the image's container holding the store; `--exec` joins it with the
/// confinement saved at its start (`exec.json`, which a planted link does
/// not redirect), `--logs` reads it, `--stop` ends it, `--remove` clears
/// its state, and nothing of it stays: no mountpoint, cgroup or process.
#[test]
fn a_detached_image_container_from_pull_to_removal() {
    let _turn = turn();
    let _sweep = Sweep;
    let image = format!("{}/zk/bb:1", image_registry());
    for who in WHO {
        let parent = fixture().dir.join(format!("detach-store-{}", tag(who)));
        if parent.exists() {
            assert!(Command::new("rm").arg("-rf").arg(&parent).status().unwrap().success());
        }
        std::fs::create_dir(&parent).unwrap();
        if let As::User(user) = who {
            let (uid, gid) = ids_of(user);
            std::os::unix::fs::chown(&parent, Some(uid), Some(gid)).unwrap();
        }
        let store = parent.join("store");
        let store = store.to_str().unwrap();
        let tmp_before = zoo_tmp_dirs();
        let cgroups_before = zoo_cgroups();
        let name = name("image", who);
        let script = "echo started in $(pwd) from-image=$FROM_IMAGE; echo hi > /tmp/mark; exec sleep 1000";
        let out = run(
            who,
            &[
                "-d",
                "--name",
                &name,
                "--store",
                store,
                "--image",
                &image,
                "-e",
                "MARK=given",
                "sh",
                "-c",
                script,
            ],
        );
        let err = stderr(&out);
        let id = ok(out).trim().to_string();
        assert!(id.len() == 12, "{who:?}: {id:?}");
        assert!(err.contains("fetched, unpacked"), "{who:?}: the pull is the caller's to see: {err}");
        wait_until("the image container's first line", Duration::from_secs(10), || {
            stdout(&run(who, &["--logs", &name])).contains("started")
        });
        assert_eq!(ok(run(who, &["--logs", &name])), "started in /tmp from-image=yes\n", "{who:?}");
        let row = list_row(who, &name).unwrap();
        assert!(row.contains(&image) && row.contains("running"), "{who:?}: {row}");
        let state = inspect(who, &name);
        assert_eq!(state["image"], image.as_str(), "{who:?}");
        let container = pid_of(&state, "pid");

        // --exec: the container's own writable layer, environment and
        // confinement, read from exec.json.
        let out = ok(run(
            who,
            &[
                "--exec",
                &name,
                "sh",
                "-c",
                "cat /tmp/mark; echo $MARK $FROM_IMAGE; pwd; echo $$ > /tmp/exec-pid; exec sleep 2",
            ],
        ));
        assert_eq!(out, "hi\ngiven yes\n/tmp\n", "{who:?}");
        let exec_file = state_root(who).join(&id).join("exec.json");
        let meta = std::fs::symlink_metadata(&exec_file).unwrap();
        assert!(
            meta.is_file() && std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777 == 0o600,
            "{who:?}"
        );
        // The exec'd process had the first one's confinement.
        let (tx, rx) = std::sync::mpsc::channel();
        let mut sleeper = zk(who, &["--exec", &name, "sleep", "5"]).spawn().unwrap();
        wait_until("the exec'd sleep", Duration::from_secs(10), || {
            let Some(pid) = std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .find(|pid| {
                    *pid != container
                        && std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                            .is_ok_and(|c| c == "sleep\x005\x00")
                        && std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()
                            == std::fs::read_link(format!("/proc/{container}/ns/mnt")).ok()
                })
            else {
                return false;
            };
            let _ = tx.send(pid);
            true
        });
        let exec_pid = rx.recv().unwrap();
        assert_eq!(status_lines(exec_pid), status_lines(container), "{who:?}");
        let _ = sleeper.kill();
        let _ = sleeper.wait();

        // exec.json is believed only as the caller's regular file: a link
        // planted in its place is not followed.
        let moved = exec_file.with_extension("moved");
        std::fs::rename(&exec_file, &moved).unwrap();
        std::os::unix::fs::symlink(&moved, &exec_file).unwrap();
        fails_with(&run(who, &["--exec", &name, "true"]), 125, "exec.json");
        std::fs::remove_file(&exec_file).unwrap();
        std::fs::rename(&moved, &exec_file).unwrap();

        // Running, it holds the store; stopped, it does not.
        fails_with(&run(who, &["--store", store, "--image-rm", &image]), 125, "in use");
        assert_eq!(ok(run(who, &["--stop", &name, "--time", "1"])), format!("{name}\n"));
        assert!(!alive(container), "{who:?}");
        assert_eq!(inspect(who, &name)["status"], "exited", "{who:?}");
        ok(run(who, &["--remove", &name]));
        assert!(!state_root(who).join(&id).exists(), "{who:?}");
        let out = run(who, &["--store", store, "--image-rm", &image]);
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        assert_no_zoo_tmp_dir_left(&tmp_before, &format!("{who:?}"));
        assert_no_zoo_cgroup_left(&cgroups_before, &format!("{who:?}: cgroups"));
    }
}
