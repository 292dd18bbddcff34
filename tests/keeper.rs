//! The kept user namespace (src/keeper.rs, docs/keeper.md): one keeper per
//! user, found, checked, replaced and stopped; containers made inside it
//! with the same ids as before and as separate from each other and from it.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

const USER: As = As::User(RANGED_USER);

/// The tests here start, kill and replace the one keeper of the test user.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// The test user's keeper state file (its runtime directory: the tests run
/// zookeeper without XDG_RUNTIME_DIR, and this machine has no /run/user).
fn state_file() -> std::path::PathBuf {
    let (uid, _) = ids_of(RANGED_USER);
    match std::path::Path::new(&format!("/run/user/{uid}")).is_dir() {
        true => format!("/run/user/{uid}/zookeeper/keeper").into(),
        false => format!("/tmp/zookeeper-{uid}/keeper").into(),
    }
}

/// The keeper's pid as its state file says.
fn keeper_pid() -> Option<u32> {
    let text = std::fs::read_to_string(state_file()).ok()?;
    text.split_whitespace().nth(2)?.parse().ok()
}

/// Whether `pid` is a live (not zombie) keeper process of the test user.
fn is_live_keeper(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).unwrap_or_default()
    };
    let (uid, _) = ids_of(RANGED_USER);
    field("Name:") == "zookeeper-keep"
        && !field("State:").starts_with('Z')
        && field("Uid:").split_whitespace().next() == Some(&uid.to_string())
}

/// Every live keeper process of the test user for [`state_file`] (a keeper
/// belongs to one runtime directory: tests/images.rs runs with others).
fn live_keepers() -> Vec<u32> {
    let state = state_file().display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| is_live_keeper(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == state.as_bytes()))
        })
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cleanup() -> String {
    ok(zookeeper(USER, &["--cleanup"]).output().unwrap())
}

/// Starts `sleep 30` in a container as the test user; the zookeeper
/// process and the container's first process.
fn start_sleeping(extra: &[&str]) -> (std::process::Child, u32) {
    let fx = fixture();
    let mut args = vec!["-r", fx.rootfs.to_str().unwrap(), "-P"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["sleep", "30"]);
    let child = zookeeper(USER, &args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    let mut container = 0;
    wait_until("the container's first process", || {
        container = children_of(pid).first().copied().unwrap_or(0);
        container != 0
            && std::fs::read_to_string(format!("/proc/{container}/cmdline"))
                .is_ok_and(|c| c.starts_with("sleep"))
    });
    (child, container)
}

fn stop(mut child: std::process::Child) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    child.wait().unwrap();
}

fn open_ns(pid: u32) -> OwnedFd {
    OwnedFd::from(std::fs::File::open(format!("/proc/{pid}/ns/user")).unwrap())
}

fn ns_id(fd: &OwnedFd) -> (u64, u64) {
    let meta = nix::sys::stat::fstat(fd).unwrap();
    (meta.st_dev, meta.st_ino)
}

/// The user namespace a user namespace was made in (NS_GET_PARENT), as
/// root on the host sees it.
fn parent_ns(fd: &OwnedFd) -> (u64, u64) {
    // SAFETY: NS_GET_PARENT takes no argument and returns a new descriptor.
    let parent = unsafe { nix::libc::ioctl(fd.as_raw_fd(), 0xb702) };
    assert!(parent >= 0, "NS_GET_PARENT: {}", std::io::Error::last_os_error());
    // SAFETY: a descriptor the kernel just returned, owned by nothing else.
    ns_id(&unsafe { OwnedFd::from_raw_fd(parent) })
}

#[test]
fn one_keeper_serves_every_container_with_the_same_ids() {
    let _turn = turn();
    cleanup();
    let (uid, gid) = ids_of(RANGED_USER);
    let (sub_uid, uid_count) = subid_range("/etc/subuid", RANGED_USER).unwrap();
    let (sub_gid, gid_count) = subid_range("/etc/subgid", RANGED_USER).unwrap();
    let mut pids = Vec::new();
    for _ in 0..3 {
        let out =
            ok(run_in_rootfs(USER, &["sh", "-c", "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map"]));
        // As the container reads it: what newuidmap would have written.
        let (uid_map, gid_map) = out.split_once("--\n").unwrap();
        assert_eq!(parse_map(uid_map), [(0, uid, 1), (1, sub_uid, uid_count)]);
        assert_eq!(parse_map(gid_map), [(0, gid, 1), (1, sub_gid, gid_count)]);
        pids.push(keeper_pid().expect("a keeper recorded"));
    }
    assert!(pids.windows(2).all(|w| w[0] == w[1]), "one keeper for all: {pids:?}");
    let keeper = pids[0];
    wait_until("the recorded keeper", || is_live_keeper(keeper));
    assert_eq!(live_keepers(), [keeper], "exactly one keeper");
    // It holds nothing but its namespace: no descriptor beyond /dev/null,
    // no environment, no capability, not dumpable, not zookeeper's child.
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{keeper}/fd"))
        .unwrap()
        .map(|e| std::fs::read_link(e.unwrap().path()).unwrap().display().to_string())
        .collect();
    assert!(fds.iter().all(|target| target == "/dev/null"), "{fds:?}");
    assert_eq!(std::fs::read(format!("/proc/{keeper}/environ")).unwrap(), b"");
    let status = std::fs::read_to_string(format!("/proc/{keeper}/status")).unwrap();
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    // Not dumpable: its /proc files belong to root, not to the user.
    let owner = std::fs::metadata(format!("/proc/{keeper}/environ")).unwrap().uid();
    assert_eq!(owner, 0, "the keeper is dumpable");
    let parent = status.lines().find_map(|l| l.strip_prefix("PPid:")).unwrap().trim().to_string();
    let parent_name = std::fs::read_to_string(format!("/proc/{parent}/comm")).unwrap_or_default();
    assert_ne!(parent_name.trim(), "zookeeper", "the keeper is nobody's child of ours");
    // Its own map: every id a container gets, as itself.
    let keeper_map = std::fs::read_to_string(format!("/proc/{keeper}/uid_map")).unwrap();
    assert_eq!(parse_map(&keeper_map), [(uid, uid, 1), (sub_uid, sub_uid, uid_count)]);

    // A container's user namespace is its own, made in the keeper's; with
    // --no-keeper (or ZOOKEEPER_NO_KEEPER=1), in the host's, as before.
    let host = ns_id(&open_ns(std::process::id()));
    let keeper_ns = ns_id(&open_ns(keeper));
    let (a, a_pid) = start_sleeping(&[]);
    let (b, b_pid) = start_sleeping(&[]);
    let (c, c_pid) = start_sleeping(&["--no-keeper"]);
    let (a_ns, b_ns, c_ns) = (open_ns(a_pid), open_ns(b_pid), open_ns(c_pid));
    assert_ne!(ns_id(&a_ns), ns_id(&b_ns), "each container has a user namespace of its own");
    assert_ne!(ns_id(&a_ns), keeper_ns);
    assert_eq!(parent_ns(&a_ns), keeper_ns);
    assert_eq!(parent_ns(&b_ns), keeper_ns);
    assert_eq!(parent_ns(&c_ns), host);
    // The same host ids either way, as the host reads them.
    for pid in [a_pid, c_pid] {
        let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
        assert_eq!(parse_map(&map), [(0, uid, 1), (1, sub_uid, uid_count)], "container {pid}");
    }
    for child in [a, b, c] {
        stop(child);
    }
    let mut command = zookeeper(USER, &["-r", fixture().rootfs.to_str().unwrap(), "true"]);
    ok(command.env("ZOOKEEPER_NO_KEEPER", "1").output().unwrap());
    assert_eq!(keeper_pid(), Some(keeper), "the opt-out leaves the keeper alone");

    // Files made in the container get the same host owners with and without it.
    let dir = own_rootfs_copy("keeper", "owners", USER);
    let owners = |extra: &[&str]| {
        let mut args = vec!["-r", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "sh",
            "-c",
            "rm -f /tmp/a /tmp/b; touch /tmp/a /tmp/b; chown 1000:2000 /tmp/b",
        ]);
        ok(zookeeper(USER, &args).output().unwrap());
        let meta = |name: &str| {
            let m = std::fs::metadata(dir.join("tmp").join(name)).unwrap();
            (m.uid(), m.gid())
        };
        (meta("a"), meta("b"))
    };
    let kept = owners(&[]);
    assert_eq!(kept, ((uid, gid), (sub_uid + 999, sub_gid + 1999)));
    assert_eq!(owners(&["--no-keeper"]), kept);
}

/// /etc/subuid and /etc/subgid as they were, put back when dropped.
struct SubidFilesRestored(Vec<(&'static str, String)>);

impl SubidFilesRestored {
    fn save() -> SubidFilesRestored {
        SubidFilesRestored(
            ["/etc/subuid", "/etc/subgid"]
                .into_iter()
                .map(|f| (f, std::fs::read_to_string(f).unwrap()))
                .collect(),
        )
    }
}

impl Drop for SubidFilesRestored {
    fn drop(&mut self) {
        for (file, text) in &self.0 {
            std::fs::write(file, text).unwrap();
        }
    }
}

#[test]
fn a_new_keeper_after_a_kill_a_range_change_the_cleanup_and_the_idle_time() {
    let _turn = turn();
    let true_ = || ok(run_in_rootfs(USER, &["true"]));
    true_();
    let first = keeper_pid().unwrap();

    // kill -9: the next container starts a new one.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    wait_until("the killed keeper to die", || !is_live_keeper(first));
    true_();
    let second = keeper_pid().unwrap();
    assert_ne!(second, first);
    wait_until("the new keeper", || is_live_keeper(second));

    // The subordinate ranges change (/etc/subuid and /etc/subgid edited
    // for real, and put back whatever happens): a keeper with the new map
    // replaces the old one.
    let (sub_uid, uid_count) = subid_range("/etc/subuid", RANGED_USER).unwrap();
    let (sub_gid, gid_count) = subid_range("/etc/subgid", RANGED_USER).unwrap();
    let third = {
        let _restore = SubidFilesRestored::save();
        let extra = uid_count.max(gid_count) + sub_uid.max(sub_gid) + 1000;
        for file in ["/etc/subuid", "/etc/subgid"] {
            let mut text = std::fs::read_to_string(file).unwrap();
            text.push_str(&format!("{RANGED_USER}:{extra}:1000\n"));
            std::fs::write(file, text).unwrap();
        }
        let out = ok(run_in_rootfs(USER, &["cat", "/proc/self/uid_map"]));
        let (uid, _) = ids_of(RANGED_USER);
        assert_eq!(parse_map(&out), [(0, uid, 1), (1, sub_uid, uid_count), (1 + uid_count, extra, 1000)]);
        keeper_pid().unwrap()
    };
    assert_ne!(third, second, "a keeper with the old map is not used");
    wait_until("the outdated keeper to go", || !is_live_keeper(second));
    assert_eq!(live_keepers(), [third]);
    // And back: the files as they were, the keeper replaced again.
    let out = ok(run_in_rootfs(USER, &["cat", "/proc/self/uid_map"]));
    let (uid, _) = ids_of(RANGED_USER);
    assert_eq!(parse_map(&out), [(0, uid, 1), (1, sub_uid, uid_count)]);
    let fourth = keeper_pid().unwrap();
    assert_ne!(fourth, third);
    wait_until("the outdated keeper to go", || !is_live_keeper(third));
    let third = fourth;

    // --cleanup stops it and says so.
    let said = cleanup();
    assert!(said.contains(&format!("stopped the keeper (pid {third})")), "{said:?}");
    wait_until("the keeper to go after --cleanup", || !is_live_keeper(third));
    assert_eq!(keeper_pid(), None, "its state file goes too");
    assert_eq!(cleanup(), "", "a second cleanup has nothing to do");

    // It leaves by itself once unused for its idle time.
    let mut command = zookeeper(USER, &["-r", fixture().rootfs.to_str().unwrap(), "true"]);
    ok(command.env("ZOOKEEPER_KEEPER_IDLE", "1").output().unwrap());
    let idle = keeper_pid().unwrap();
    wait_until("the new keeper", || is_live_keeper(idle));
    wait_until("the idle keeper to leave", || !is_live_keeper(idle));
    assert_eq!(keeper_pid(), None);
}

#[test]
fn fifty_first_containers_at_once_share_one_keeper_and_leak_nothing() {
    let _turn = turn();
    cleanup();
    let tmp_before = zoo_tmp_dirs();
    let cgroups_before = zoo_cgroups();
    let fx = fixture();
    let children: Vec<std::process::Child> = (0..50)
        .map(|_| {
            zookeeper(USER, &["-r", fx.rootfs.to_str().unwrap(), "-P", "sh", "-c", "cat /proc/self/uid_map"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let (uid, _) = ids_of(RANGED_USER);
    let (sub_uid, count) = subid_range("/etc/subuid", RANGED_USER).unwrap();
    for child in children {
        let out = ok(child.wait_with_output().unwrap());
        assert_eq!(parse_map(&out), [(0, uid, 1), (1, sub_uid, count)]);
    }
    let keeper = keeper_pid().unwrap();
    assert_eq!(live_keepers(), [keeper], "one keeper for fifty first containers");
    assert_no_zoo_tmp_dir_left(&tmp_before, "fifty containers");
    assert_no_zoo_cgroup_left(&cgroups_before, "fifty containers");
}

#[test]
fn containers_start_while_their_keeper_is_being_killed() {
    let _turn = turn();
    let stop_killing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let stop_killing = stop_killing.clone();
        std::thread::spawn(move || {
            let mut killed = 0;
            while !stop_killing.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(pid) = keeper_pid().filter(|pid| is_live_keeper(*pid)) {
                    if nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    )
                    .is_ok()
                    {
                        killed += 1;
                    }
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            killed
        })
    };
    for round in 0..30 {
        let out = run_in_rootfs(USER, &["true"]);
        assert!(out.status.success(), "round {round}: {:?} {}", out.status, stderr(&out));
        assert_eq!(stderr(&out), "", "round {round}: no word about the keeper");
    }
    stop_killing.store(true, std::sync::atomic::Ordering::Relaxed);
    let killed = killer.join().unwrap();
    assert!(killed > 0, "the test killed no keeper: it proved nothing");
}

/// From inside a container: neither the keeper nor another container of the
/// same user can be named, signalled, opened or joined, and the user
/// namespace the container's is made in is out of its reach.
#[test]
fn a_container_reaches_neither_the_keeper_nor_another_container() {
    let _turn = turn();
    let (b, b_pid) = start_sleeping(&[]);
    let keeper = keeper_pid().unwrap();
    wait_until("the keeper", || is_live_keeper(keeper));
    // Without the seccomp filter, so that what stops it is the kernel's
    // isolation (the filter would refuse ptrace first).
    let (keeper_arg, b_arg) = (keeper.to_string(), b_pid.to_string());
    let probe = ["--security-opt", "seccomp=unconfined", "zoo-probe", "reach", &keeper_arg, &b_arg];
    let out = ok(run_in_rootfs(USER, &probe));
    stop(b);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("parent: EPERM"), "{out}");
    for pid in [keeper, b_pid] {
        let expected = format!("{pid} kill: ESRCH ns: ENOENT pidfd: ESRCH ptrace: ESRCH");
        assert_eq!(lines.next(), Some(expected.as_str()), "{out}");
    }
    // Nor from a container running as a subordinate id, under the filter.
    let out = ok(run_in_rootfs(USER, &["-u", "1000", "zoo-probe", "reach", &keeper_arg]));
    assert!(out.starts_with("parent: EPERM\n"), "{out}");
    assert!(out.contains("kill: ESRCH ns: ENOENT pidfd: ESRCH ptrace: EPERM"), "{out}");
    // And the other local user can neither use nor stop it.
    let probe = Command::new("/usr/bin/setpriv")
        .args([
            &format!("--reuid={NORANGE_USER}"),
            &format!("--regid={NORANGE_USER}"),
            "--clear-groups",
            "--",
        ])
        .args([
            "sh",
            "-c",
            &format!("kill -0 {keeper}; cat /proc/{keeper}/ns/user; nsenter -U -t {keeper} true"),
        ])
        .output()
        .unwrap();
    assert!(!probe.status.success());
    let err = stderr(&probe);
    assert!(err.contains("Operation not permitted") || err.contains("Permission denied"), "{err}");
    assert!(is_live_keeper(keeper));
}

/// Another local user plants the keeper's directory in /tmp before the test
/// user has one, with a record naming a namespace of its own: the test
/// user's containers do not use it (the directory is not theirs), start no
/// keeper there, and say nothing about it.
#[test]
fn a_planted_keeper_directory_is_not_used() {
    let _turn = turn();
    cleanup();
    let dir = state_file().parent().unwrap().to_path_buf();
    if !dir.starts_with("/tmp") {
        panic!("this test plants /tmp/zookeeper-UID; this machine has /run/user for the test user");
    }
    let saved = dir.with_file_name(format!("{}.saved-by-test", dir.file_name().unwrap().to_string_lossy()));
    std::fs::rename(&dir, &saved).unwrap();
    // zoonorange's own process in a user namespace of its own.
    let mut planter = Command::new("/usr/bin/setpriv")
        .args([
            &format!("--reuid={NORANGE_USER}"),
            &format!("--regid={NORANGE_USER}"),
            "--clear-groups",
            "--",
        ])
        .args(["unshare", "-U", "sleep", "30"])
        .spawn()
        .unwrap();
    let planted_pid = planter.id();
    wait_until("the planter's namespace", || {
        let planted = std::fs::read_link(format!("/proc/{planted_pid}/ns/user")).ok();
        planted.is_some()
            && planted != std::fs::read_link(format!("/proc/{}/ns/user", std::process::id())).ok()
    });
    let ns = std::fs::metadata(format!("/proc/{planted_pid}/ns/user")).unwrap();
    let start: u64 = {
        let stat = std::fs::read_to_string(format!("/proc/{planted_pid}/stat")).unwrap();
        stat[stat.rfind(')').unwrap() + 1..].split_whitespace().nth(19).unwrap().parse().unwrap()
    };
    let plant = format!(
        "mkdir -m 0777 {dir} && printf 'zookeeper-keeper 1 {planted_pid} {start} {} {}\\n' > {dir}/keeper && chmod 666 {dir}/keeper",
        ns.dev(),
        ns.ino(),
        dir = dir.display()
    );
    let planted = Command::new("/usr/bin/setpriv")
        .args([
            &format!("--reuid={NORANGE_USER}"),
            &format!("--regid={NORANGE_USER}"),
            "--clear-groups",
            "--",
        ])
        .args(["sh", "-c", &plant])
        .status()
        .unwrap();
    let result = std::panic::catch_unwind(|| {
        assert!(planted.success());
        let out = run_in_rootfs(USER, &["sh", "-c", "cat /proc/self/uid_map"]);
        assert_eq!(stderr(&out), "", "nothing said about the planted directory");
        let (uid, _) = ids_of(RANGED_USER);
        let (sub_uid, count) = subid_range("/etc/subuid", RANGED_USER).unwrap();
        assert_eq!(parse_map(&ok(out)), [(0, uid, 1), (1, sub_uid, count)]);
        assert!(live_keepers().is_empty(), "no keeper started in a directory that is not the user's");
        let text = std::fs::read_to_string(dir.join("keeper")).unwrap();
        assert!(text.contains(&format!(" {planted_pid} ")), "the plant is left as it was: {text}");
    });
    let _ = planter.kill();
    let _ = planter.wait();
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::rename(&saved, &dir).unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
