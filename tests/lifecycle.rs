//! The container's life as the user sees it: identity, namespaces, hostname,
//! exit statuses and signals (SPEC.md sections 1-3.3), with the real binary.

mod common;

use common::*;
use std::time::{Duration, Instant};

const USER: As = As::User(RANGED_USER);

#[test]
fn container_root_is_uid_and_gid_zero() {
    for who in [USER, As::User(NORANGE_USER), As::Root] {
        let out = ok(run_in_rootfs(who, &["sh", "-c", "id -u; id -g; id -un"]));
        assert_eq!(out, "0\n0\nroot\n", "as {who:?}");
    }
}

#[test]
fn ranged_user_gets_root_then_its_subordinate_range() {
    let (uid, gid) = ids_of(RANGED_USER);
    let (sub_uid, uid_count) = subid_range("/etc/subuid", RANGED_USER).unwrap();
    let (sub_gid, gid_count) = subid_range("/etc/subgid", RANGED_USER).unwrap();
    let out = run_in_rootfs(USER, &["sh", "-c", "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map"]);
    assert_eq!(stderr(&out), "", "no notice when the range is there");
    let out = ok(out);
    let (uid_map, gid_map) = out.split_once("--\n").unwrap();
    assert_eq!(parse_map(uid_map), [(0, uid, 1), (1, sub_uid, uid_count)]);
    assert_eq!(parse_map(gid_map), [(0, gid, 1), (1, sub_gid, gid_count)]);
    // A subordinate id is really usable: a file chowned to it inside.
    let out = ok(run_in_rootfs(
        USER,
        &["sh", "-c", "touch /tmp/f && chown 1000:1000 /tmp/f && stat -c %u:%g /tmp/f"],
    ));
    assert_eq!(out, "1000:1000\n");
}

#[test]
fn user_without_range_gets_root_alone_and_is_told_once() {
    let (uid, gid) = ids_of(NORANGE_USER);
    let out = run_in_rootfs(
        As::User(NORANGE_USER),
        &["sh", "-c", "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; cat /proc/self/setgroups"],
    );
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("zookeeper: note: only root is mapped") && err.contains("/etc/subuid"), "{err}");
    let out = ok(out);
    let (uid_map, rest) = out.split_once("--\n").unwrap();
    assert_eq!(parse_map(uid_map), [(0, uid, 1)]);
    let mut rest = rest.lines();
    assert_eq!(parse_map(rest.next().unwrap()), [(0, gid, 1)]);
    assert_eq!(rest.next(), Some("deny"), "setgroups must be denied with a self-written gid map");
}

/// A caller /etc/passwd does not know (as a directory service's user looks
/// to it): zookeeper, a static binary, must not ask the name service (a
/// static glibc crashes loading its modules). The login name from the
/// environment only picks which range to ask newuidmap for; newuidmap grants
/// none that is not the caller's.
#[test]
fn a_caller_without_a_passwd_entry() {
    let fx = fixture();
    let run = |logname: Option<&str>| {
        let mut command = std::process::Command::new("/usr/bin/setpriv");
        command.args(["--reuid=4242", "--regid=4242", "--clear-groups", "--"]).arg(&fx.zookeeper);
        command.args(["-r", fx.rootfs.to_str().unwrap(), "-P", "sh", "-c", "cat /proc/self/uid_map"]);
        command.current_dir(&fx.dir).env_clear().env("PATH", "/usr/bin:/bin");
        if let Some(name) = logname {
            command.env("LOGNAME", name);
        }
        command.output().unwrap()
    };
    let out = run(None);
    assert!(stderr(&out).starts_with("zookeeper: note: only root is mapped"), "{}", stderr(&out));
    assert_eq!(parse_map(&ok(out)), [(0, 4242, 1)]);
    // Claiming to be the ranged user gets a refusal from newuidmap, not its range.
    let out = run(Some(RANGED_USER));
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(stderr(&out).contains("newuidmap failed"), "{}", stderr(&out));
}

#[test]
fn root_without_range_maps_the_identity() {
    let out = ok(run_in_rootfs(As::Root, &["cat", "/proc/self/uid_map", "/proc/self/gid_map"]));
    assert_eq!(parse_map(&out), [(0, 0, u32::MAX), (0, 0, u32::MAX)]);
}

#[test]
fn root_with_a_range_is_not_host_root() {
    let fx = fixture();
    let subuid = fx.dir.join("subuid-root");
    std::fs::write(&subuid, "root:500000:65536\n").unwrap();
    let subgid = fx.dir.join("subgid-root");
    std::fs::write(&subgid, "0:600000:1000\n").unwrap();
    let out = run_in_rootfs_env(
        As::Root,
        &[("ZOOKEEPER_SUBUID_FILE", &subuid), ("ZOOKEEPER_SUBGID_FILE", &subgid)],
        &["sh", "-c", "id -u; cat /proc/self/uid_map /proc/self/gid_map"],
    );
    let out = ok(out);
    let (id, maps) = out.split_once('\n').unwrap();
    assert_eq!(id, "0");
    assert_eq!(parse_map(maps), [(0, 500000, 65536), (0, 600000, 1000)]);
}

fn run_in_rootfs_env(who: As, env: &[(&str, &std::path::Path)], args: &[&str]) -> std::process::Output {
    let fx = fixture();
    let mut all = vec!["-r", fx.rootfs.to_str().unwrap(), "-P"];
    all.extend_from_slice(args);
    let mut command = zookeeper(who, &all);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

#[test]
fn hostname_is_zoo_and_command_is_pid_1() {
    let out = ok(run_in_rootfs(USER, &["sh", "-c", "hostname; echo $$; cat /proc/sys/kernel/hostname"]));
    assert_eq!(out, "zoo\n1\nzoo\n");
}

#[test]
fn all_seven_namespaces_differ_from_the_callers() {
    let kinds = ["user", "pid", "mnt", "net", "ipc", "uts", "cgroup"];
    let script: String = kinds.iter().map(|k| format!("readlink /proc/1/ns/{k}; ")).collect();
    let out = ok(run_in_rootfs(USER, &["sh", "-c", &script]));
    let inside: Vec<&str> = out.lines().collect();
    assert_eq!(inside.len(), kinds.len(), "{out}");
    for (kind, inside) in kinds.iter().zip(inside) {
        let outside = std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
        assert!(inside.starts_with(&format!("{kind}:[")), "{inside}");
        assert_ne!(inside, outside.to_str().unwrap(), "{kind} namespace is shared with the caller");
    }
}

#[test]
fn exit_codes_pass_through() {
    for code in [0, 1, 42, 255] {
        let out = run_in_rootfs(USER, &["sh", "-c", &format!("exit {code}")]);
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
        assert_eq!(stderr(&out), "");
    }
}

#[test]
fn arguments_reach_the_command_untouched() {
    assert_eq!(ok(run_in_rootfs(USER, &["echo", "-n", "hi"])), "hi");
    assert_eq!(ok(run_in_rootfs(USER, &["sh", "-c", "-x", "true"])), "");
    assert_eq!(ok(run_in_rootfs(USER, &["sh", "-c", "echo \"$0|$1|$2\"", "-P", "-r x", ""])), "-P|-r x|\n");
    // A bare name is found through the container's PATH, not the caller's.
    assert_eq!(ok(run_in_rootfs(USER, &["--env", "PATH=/bin", "sh", "-c", "echo $PATH"])), "/bin\n");
    fails_with(&run_in_rootfs(USER, &["--env", "PATH=/etc", "sh"]), 127, "'sh': not found in PATH");
}

#[test]
fn the_environment_is_clean() {
    let out = ok(run_in_rootfs(USER, &["env"]));
    let mut vars: Vec<&str> = out.lines().collect();
    vars.sort();
    // busybox sh adds PWD and SHLVL only for shells; env execs directly.
    assert_eq!(
        vars,
        ["HOME=/root", "HOSTNAME=zoo", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    );
}

#[test]
fn death_by_a_fault_signal_is_mirrored() {
    let out = run_in_rootfs(USER, &["zoo-probe", "segv"]);
    assert_eq!(signal_of(&out), Some(libc::SIGSEGV), "{:?} {}", out.status, stderr(&out));
    // No core file from zookeeper itself: it re-raised with RLIMIT_CORE 0.
    assert!(!std::os::unix::process::ExitStatusExt::core_dumped(&out.status));
}

/// Starts a container running `extra` (options and command) and returns
/// zookeeper and the container's host pid, once the command (possibly a
/// child of --init) runs.
#[allow(clippy::zombie_processes)] // the caller waits for the child it is handed
fn start_sleeper(who: As, extra: &[&str]) -> (std::process::Child, i32) {
    let fx = fixture();
    let mut args = vec!["-r", fx.rootfs.to_str().unwrap()];
    args.extend_from_slice(extra);
    let program = extra.iter().find(|a| !a.starts_with('-')).unwrap().to_string() + "\0";
    let mut child = zookeeper(who, &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let children_of = |pid: u32| -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(&container) = children_of(child.id()).first() {
            let mut candidates = vec![container];
            candidates.extend(children_of(container));
            let started = candidates.iter().any(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .unwrap_or_default()
                    .starts_with(&program)
            });
            if started {
                return (child, container as i32);
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the container did not start");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn death_by_sigkill_is_mirrored() {
    let (child, pid) = start_sleeper(USER, &["sleep", "100"]);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(signal_of(&out), Some(libc::SIGKILL), "{:?}", out.status);
    assert_eq!(stderr(&out), "");
}

#[test]
fn signals_to_zookeeper_reach_the_container() {
    let script = "trap 'echo got TERM; exit 7' TERM; trap 'echo got USR1' USR1; echo ready; while :; do sleep 0.05; done";
    let (child, _pid) = start_sleeper(USER, &["sh", "-c", script]);
    let zk = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut child = child;
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert_eq!(&first, b"ready\n");
    nix::sys::signal::kill(zk, nix::sys::signal::Signal::SIGUSR1).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(zk, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "got USR1\ngot TERM\n");
    assert_eq!(status.code(), Some(7));
}

#[test]
fn command_not_found_is_127() {
    fails_with(
        &run_in_rootfs(USER, &["no-such-command"]),
        127,
        "cannot execute 'no-such-command': not found in PATH",
    );
    fails_with(&run_in_rootfs(USER, &["/bin/no-such-file"]), 127, "no such file or directory");
    // The host has /usr/bin/perl; the busybox rootfs does not.
    fails_with(&run_in_rootfs(USER, &["/usr/bin/perl"]), 127, "'/usr/bin/perl'");
}

#[test]
fn command_not_executable_is_126() {
    fails_with(
        &run_in_rootfs(USER, &["/etc/not-executable"]),
        126,
        "cannot execute '/etc/not-executable': permission denied",
    );
    fails_with(&run_in_rootfs(USER, &["/etc"]), 126, "permission denied");
}

#[test]
fn zookeepers_own_failures_are_125_with_one_line() {
    let fx = fixture();
    let file = fx.dir.join("zookeeper");
    let file = file.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["-r", file, "sh"], "--rootfs"),
        (&["-r", "/no/such/dir", "sh"], "--rootfs /no/such/dir"),
        (&["-r", "/", "sh"], "--rootfs"),
        (&["-m", "12X", "sh"], "--memory"),
        (&["-m", "1.5G", "sh"], "--memory"),
        (&["-m", "", "sh"], "--memory"),
        (&["-m", "99999999999999G", "sh"], "--memory"),
        (&["-c", "0", "sh"], "--cpus"),
        (&["-c", "half", "sh"], "--cpus"),
        (&["-c", "-50", "sh"], "--cpus"),
        (&["-p", "0", "sh"], "--pids"),
        (&["-p", "1e3", "sh"], "--pids"),
        (&["-p"], "--pids"),
        (&["-Z", "sh"], "'-Z'"),
        (&["--frobnicate", "sh"], "'--frobnicate'"),
        (&["--env", "=1", "sh"], "--env"),
        (&[], "no command given"),
        (&["-P", "-n"], "no command given"),
    ];
    for (args, needle) in cases {
        for who in [USER, As::Root] {
            let out = zookeeper(who, args).output().unwrap();
            fails_with(&out, 125, needle);
            assert_eq!(stdout(&out), "", "{args:?}");
        }
    }
}

#[test]
fn help_is_on_stdout_with_status_0() {
    for flag in ["-h", "--help"] {
        let out = zookeeper(USER, &[flag]).output().unwrap();
        let text = ok(out);
        for needle in [
            "Usage: zookeeper [options] <command>",
            "-r, --rootfs",
            "-m, --memory",
            "-c, --cpus",
            "-p, --pids",
            "-P, --proc",
            "-n, --net",
            "125",
        ] {
            assert!(text.contains(needle), "help lacks {needle}: {text}");
        }
    }
}

#[test]
fn works_without_rootfs_in_the_default_root() {
    let out =
        ok(zookeeper(USER, &["-P", "sh", "-c", "id -u; hostname; echo $$; ls /proc | grep -c '^[0-9]'"])
            .output()
            .unwrap());
    // pid 1 (sh) and ls and grep: only the container's own processes.
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], ["0", "zoo", "1"]);
    assert!(lines[3].parse::<u32>().unwrap() <= 3, "{out}");
}

#[test]
fn under_init_death_by_sigterm_is_mirrored() {
    let (child, _pid) = start_sleeper(USER, &["--init", "sleep", "100"]);
    let zk = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(zk, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(signal_of(&out), Some(libc::SIGTERM), "{:?} {}", out.status, stderr(&out));
}

#[test]
fn under_init_the_command_is_pid_2_and_its_status_counts() {
    assert_eq!(ok(run_in_rootfs(USER, &["--init", "sh", "-c", "echo $$"])), "2\n");
    assert_eq!(run_in_rootfs(USER, &["--init", "sh", "-c", "exit 42"]).status.code(), Some(42));
    let out = run_in_rootfs(USER, &["--init", "zoo-probe", "segv"]);
    assert_eq!(signal_of(&out), Some(libc::SIGSEGV));
    fails_with(&run_in_rootfs(USER, &["--init", "no-such-command"]), 127, "not found in PATH");
}

#[test]
fn init_reaps_orphans_and_a_plain_pid_1_does_not() {
    // An orphan is handed to pid 1 and ends; then count zombies.
    let script = "zoo-probe orphan; exec zoo-probe zombies 400";
    let with_init = run_in_rootfs(USER, &["--init", "sh", "-c", script]);
    assert_eq!(stdout(&with_init), "0\n", "{}", stderr(&with_init));
    let without = run_in_rootfs(USER, &["sh", "-c", script]);
    assert_eq!(stdout(&without), "1\n", "the probe should have left a zombie: {}", stderr(&without));
}
