//! Reliability (issue 9): nothing is lost or leaked under faults and load.
//! The tests take turns: each counts what is on the host before and after.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// Processes of the test users and their subordinate ids, and slirp4netns.
fn container_processes() -> Vec<String> {
    let (uid, _) = ids_of(RANGED_USER);
    let (nouid, _) = ids_of(NORANGE_USER);
    let (sub, count) = subid_range("/etc/subuid", RANGED_USER).unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else { continue };
        let name = status.lines().next().unwrap_or("").to_string();
        // The user's keeper (src/keeper.rs) outlives containers by design;
        // tests/keeper.rs holds it to account.
        if name == "Name:\tzookeeper-keep" {
            continue;
        }
        // A killed network helper is init's to reap once its zookeeper has
        // gone (src/network.rs): a zombie holds nothing.
        if status.lines().any(|l| l.starts_with("State:\tZ")) {
            continue;
        }
        let real: u32 = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0);
        if real == uid || real == nouid || (sub..sub + count).contains(&real) || name.ends_with("slirp4netns")
        {
            found.push(format!("{} {name}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

fn host_mounts() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().count()
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    tmp: BTreeSet<String>,
    cgroups: BTreeSet<String>,
    processes: Vec<String>,
    mounts: usize,
}

fn snapshot() -> Snapshot {
    Snapshot {
        tmp: zoo_tmp_dirs(),
        cgroups: zoo_cgroups(),
        processes: container_processes(),
        mounts: host_mounts(),
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A container that runs until killed; returns once its command runs.
/// (The caller kills and waits for it.)
#[allow(clippy::zombie_processes)]
fn long_running(who: As, extra: &[&str]) -> Child {
    let fx = fixture();
    let mut args = vec!["-r", fx.rootfs.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend(["sh", "-c", "echo up; exec sleep 100"]);
    let mut child = zookeeper(who, &args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut up = [0u8; 3];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut up).unwrap();
    child
}

#[test]
fn a_killed_zookeeper_takes_its_container_along_and_cleanup_removes_the_rest() {
    let _turn = turn();
    // Leftovers of other tests' SIGKILLed zookeepers would blur the counts.
    ok(zookeeper(As::Root, &["--cleanup"]).output().unwrap());
    let before = snapshot();
    let v1_limits = std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
    let extra: &[&str] = if v1_limits { &["-m", "64M", "-n"] } else { &["-n"] };
    let mut victim = long_running(As::Root, extra);
    // With a network helper, whose socket or pid file it holds, a running
    // container keeps its /tmp/zoo.* directory to the end.
    let mut bystander = long_running(As::User(RANGED_USER), &["-n"]);
    // Without, the directory is gone as soon as the command runs.
    let mut quiet = long_running(As::User(RANGED_USER), &[]);
    // The victim's and the bystander's directories stay; the quiet one's goes
    // once zookeeper has seen its command start (just after "up", maybe).
    wait_until("the quiet container's /tmp/zoo.* to go", || zoo_tmp_dirs().len() == before.tmp.len() + 2);

    let zk = victim.id();
    let helpers: Vec<String> = std::fs::read_to_string(format!("/proc/{zk}/task/{zk}/children"))
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(helpers.len(), 2, "the container and slirp4netns: {helpers:?}");
    victim.kill().unwrap(); // SIGKILL: zookeeper cannot clean up
    victim.wait().unwrap();
    // The container (parent-death signal) and slirp4netns (exit fd) go anyway.
    wait_until("the killed zookeeper's container and slirp4netns to go", || {
        helpers.iter().all(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
    });
    let left = snapshot();
    assert_eq!(left.tmp.len(), before.tmp.len() + 2, "the killed one's /tmp/zoo.* stays until --cleanup");
    if v1_limits {
        assert_eq!(left.cgroups.len(), before.cgroups.len() + 1, "{:?}", left.cgroups);
    }

    let out = zookeeper(As::Root, &["--cleanup"]).output().unwrap();
    let report = ok(out);
    let after_cleanup = snapshot();
    assert_eq!(
        after_cleanup.tmp.len(),
        before.tmp.len() + 1,
        "only the bystander's directory remains: {report}"
    );
    assert_eq!(after_cleanup.cgroups, before.cgroups, "{report}");
    assert!(report.lines().all(|l| l.starts_with("removed /")), "{report}");

    for other in [&mut bystander, &mut quiet] {
        other.kill().unwrap();
        other.wait().unwrap();
    }
    wait_until("the bystander to go", || container_processes().is_empty());
    // A rootless caller cleans up its own leftovers too.
    let report = ok(zookeeper(As::User(RANGED_USER), &["--cleanup"]).output().unwrap());
    // (And stops the user's keeper, if one runs: src/keeper.rs.)
    assert_eq!(report.lines().filter(|l| l.starts_with("removed /")).count(), 1, "{report}");
    assert!(
        report.lines().all(|l| l.starts_with("removed /") || l.starts_with("stopped the keeper")),
        "{report}"
    );
    assert_eq!(snapshot(), before);
}

#[test]
fn a_thousand_containers_in_a_row_and_fifty_at_once_leave_nothing() {
    let _turn = turn();
    let before = snapshot();
    let fx = fixture();
    let rootfs = fx.rootfs.to_str().unwrap();
    // 1000 in a row, through one shell so that the test's own spawning is not what is measured.
    let script = format!(
        "i=0; while [ $i -lt 1000 ]; do {} -r {rootfs} -P true || exit 1; i=$((i+1)); done",
        fx.zookeeper.display()
    );
    let out = zookeeper(As::Root, &[]).output().unwrap(); // warm the fixture
    drop(out);
    let status = std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={RANGED_USER}"),
            &format!("--regid={RANGED_USER}"),
            "--init-groups",
            "sh",
            "-c",
            &script,
        ])
        .current_dir(&fx.dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .status()
        .unwrap();
    assert!(status.success(), "a container in the row of 1000 failed");
    assert_eq!(snapshot(), before);

    let children: Vec<Child> = (0..50)
        .map(|i| {
            let who = if i % 2 == 0 { As::User(RANGED_USER) } else { As::Root };
            zookeeper(who, &["-r", rootfs, "-P", "sh", "-c", "echo $$ > /dev/null; sleep 0.2"])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(snapshot(), before);
}

#[test]
fn a_stop_signal_during_start_up_gives_up_cleanly() {
    let _turn = turn();
    let before = snapshot();
    let fx = fixture();
    // A slirp4netns that never gets ready: zookeeper waits for it, and must
    // still hear SIGTERM (its signals are blocked, read through a signalfd).
    let fake = fx.dir.join("fake-bin");
    std::fs::create_dir_all(&fake).unwrap();
    let script = fake.join("slirp4netns");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 100\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", fake.display());
    let mut child = zookeeper(As::User(RANGED_USER), &["-r", fx.rootfs.to_str().unwrap(), "-n", "true"])
        .env("PATH", &path)
        .spawn()
        .unwrap();
    let zk = child.id();
    wait_until("the fake slirp4netns to start", || {
        std::fs::read_to_string(format!("/proc/{zk}/task/{zk}/children"))
            .is_ok_and(|c| c.split_whitespace().count() == 2)
    });
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(zk as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGTERM), "{status:?}");
    wait_until("everything to go", || snapshot() == before);
}

#[test]
fn a_container_that_ignores_stop_signals_is_killed_after_the_timeout_or_a_second_signal() {
    let _turn = turn();
    let before = snapshot();
    let fx = fixture();
    let rootfs = fx.rootfs.to_str().unwrap();
    // The command ignores every stop signal, as a wedged service would.
    // (Not by leaving them at their default: busybox `sh -c` catches INT.)
    for (signals, timeout) in [(&[libc::SIGTERM][..], "1"), (&[libc::SIGINT, libc::SIGINT][..], "60")] {
        let mut child = zookeeper(
            As::User(RANGED_USER),
            &[
                "-r",
                rootfs,
                "--stop-timeout",
                timeout,
                "sh",
                "-c",
                "trap '' HUP INT QUIT TERM; echo up; exec sleep 100",
            ],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
        let mut up = [0u8; 3];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut up).unwrap();
        let started = Instant::now();
        for &sig in signals {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::try_from(sig).unwrap(),
            )
            .unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "{signals:?}: {status:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{signals:?} took {:?}", started.elapsed());
    }
    wait_until("everything to go", || snapshot() == before);
}

/// A stop timeout too large to add to the clock (issue item 7) made
/// zookeeper panic on the first stop signal (status 134, the container and
/// its directory left to the parent-death signal and --cleanup). Now it
/// means no deadline: the first signal is forwarded and waited out, the
/// second kills.
#[test]
fn a_stop_timeout_beyond_any_deadline_waits_and_a_second_signal_kills() {
    let _turn = turn();
    let before = snapshot();
    let fx = fixture();
    for who in [As::Root, As::User(RANGED_USER), As::User(NORANGE_USER)] {
        let mut child = zookeeper(
            who,
            &[
                "-r",
                fx.rootfs.to_str().unwrap(),
                "--stop-timeout",
                "18446744073709551615",
                "sh",
                "-c",
                "trap '' HUP INT QUIT TERM; echo up; exec sleep 100",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let mut up = [0u8; 3];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut up).unwrap();
        let zk = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(zk, nix::sys::signal::Signal::SIGTERM).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("{who:?}: zookeeper ended on the first SIGTERM: {status:?}, stderr: {err}");
        }
        nix::sys::signal::kill(zk, nix::sys::signal::Signal::SIGTERM).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(signal_of(&out), Some(libc::SIGKILL), "{who:?}: {:?}", out.status);
        let err = stderr(&out);
        assert!(err.lines().all(|l| l.starts_with("zookeeper: note: ")), "{who:?}: {err}");
    }
    wait_until("everything to go", || snapshot() == before);
}

/// The memory hierarchy's directory of this process's cgroup (cgroup v1),
/// where zookeeper run from here puts `zoo-<pid>`.
fn own_v1_memory_cgroup() -> Option<std::path::PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let within = own.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, list, path) = (f.next()?, f.next()?, f.next()?);
        list.split(',').any(|c| c == "memory").then(|| path.trim_start_matches('/').to_string())
    })?;
    let dir = std::path::Path::new("/sys/fs/cgroup/memory").join(within);
    dir.join("memory.limit_in_bytes").exists().then_some(dir)
}

/// zookeeper, as root, as the first process of a new pid namespace whose
/// next pid is `pid`: so its container is `pid`, and its cgroup `zoo-<pid>`.
/// (Only that namespace's ns_last_pid is written; the host's is not.)
fn limited_container_with_pid(pid: u32) -> std::process::Output {
    let fx = fixture();
    std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "/bin/sh", "-c"])
        .arg(format!("echo {} > /proc/sys/kernel/ns_last_pid && exec \"$@\"", pid - 1))
        .arg("sh")
        .arg(&fx.zookeeper)
        .args(["-r", fx.rootfs.to_str().unwrap(), "-P", "-m", "64M", "cat", "/proc/self/cgroup"])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A dead container's empty `zoo-<pid>` (its zookeeper was SIGKILLed and
/// nobody ran --cleanup) made the next container that got the same pid fail
/// with "File exists" (issue item 7). It is taken over now; one that holds
/// processes is refused in one line and left alone.
#[test]
fn a_stale_cgroup_with_the_containers_pid_is_replaced_and_a_busy_one_left_alone() {
    let _turn = turn();
    let Some(parent) = own_v1_memory_cgroup() else {
        eprintln!("SKIPPED: no cgroup v1 memory hierarchy here; the guest tests cover cgroup v2");
        return;
    };
    let before = snapshot();
    let stale = parent.join("zoo-4242");
    std::fs::create_dir(&stale).unwrap();
    let out = limited_container_with_pid(4242);
    let _ = std::fs::remove_dir(&stale);
    assert!(out.status.success(), "{:?}: {}", out.status, stderr(&out));
    assert!(stdout(&out).lines().any(|l| l.contains(":memory:/")), "{}", stdout(&out));
    assert_eq!(snapshot(), before, "the container's cgroup was left behind");

    // Busy: a process of the test's own in it.
    std::fs::create_dir(&stale).unwrap();
    let mut tenant = std::process::Command::new("sleep").arg("100").spawn().unwrap();
    std::fs::write(stale.join("cgroup.procs"), tenant.id().to_string()).unwrap();
    let out = limited_container_with_pid(4242);
    let still_there = std::fs::read_to_string(stale.join("cgroup.procs")).unwrap_or_default();
    let alive = tenant.try_wait().unwrap().is_none();
    tenant.kill().unwrap();
    tenant.wait().unwrap();
    wait_until("the test's cgroup to be removable", || std::fs::remove_dir(&stale).is_ok());
    fails_with(&out, 125, "zoo-4242: it already exists and holds processes of another container");
    assert!(alive && still_there.trim() == tenant.id().to_string(), "the busy cgroup was touched");
    assert_eq!(snapshot(), before);
}
