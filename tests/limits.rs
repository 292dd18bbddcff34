//! Resource limits on this host (cgroup v1, as root), the assignment's 5.4
//! experiments: each limit is exceeded from inside and holds. The cgroup v2
//! checks (rootless, delegated and through systemd) run in the guest of
//! ../shared/vm: tests/guest/limits.sh, called by scripts/test.sh.

mod common;

use common::*;

/// One test at a time: each checks that no zoo-* cgroup is left, which
/// counts the others'.
fn turn() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn on_cgroup_v1() -> bool {
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
    if !v1 {
        eprintln!("SKIPPED: this host has no cgroup v1 memory hierarchy; the guest tests cover cgroup v2");
    }
    v1
}

#[test]
fn limits_hold_as_root_on_cgroup_v1() {
    let _turn = turn();
    if !on_cgroup_v1() {
        return;
    }
    let before = zoo_cgroups();
    // Memory: 96M under a 32M limit is OOM-killed; 64M under 128M runs.
    let out = run_in_rootfs(As::Root, &["-m", "32M", "zoo-probe", "alloc", "96"]);
    assert_eq!(signal_of(&out), Some(libc::SIGKILL), "{:?} {}", out.status, stdout(&out));
    // Said in one line, read from the cgroup (memory.oom_control's oom_kill).
    assert_eq!(stderr(&out), "zookeeper: killed: memory limit 32M reached\n");
    // A process killed while the container goes on: said too.
    let out = run_in_rootfs(As::Root, &["-m", "32M", "sh", "-c", "zoo-probe alloc 96; echo survived"]);
    assert_eq!(stdout(&out), "survived\n");
    // (sh says "Killed" first.)
    assert_eq!(
        stderr(&out).lines().last(),
        Some("zookeeper: memory limit 32M reached: the kernel killed 1 process(es) in the container")
    );
    // No limit reached, nothing said.
    assert_eq!(stderr(&run_in_rootfs(As::Root, &["-m", "32M", "true"])), "");
    assert_eq!(ok(run_in_rootfs(As::Root, &["-m", "128M", "zoo-probe", "alloc", "64"])), "allocated\n");
    // Processes: pid 1 plus at most 9 more.
    let started: u32 =
        ok(run_in_rootfs(As::Root, &["-p", "10", "zoo-probe", "forks", "50"])).trim().parse().unwrap();
    assert_eq!(started, 9);
    // CPU: a busy loop gets about 20% of one CPU over a second.
    let cpu_ms: u32 =
        ok(run_in_rootfs(As::Root, &["-c", "20", "zoo-probe", "spin", "1000"])).trim().parse().unwrap();
    assert!((100..=350).contains(&cpu_ms), "got {cpu_ms} ms of CPU in 1000 ms under -c 20");
    // All at once, and the container sees its cgroup as its root.
    let out = ok(run_in_rootfs(As::Root, &["-m", "64M", "-c", "50", "-p", "20", "cat", "/proc/self/cgroup"]));
    assert!(out.lines().all(|l| l.ends_with(":/")), "{out}");
    assert_no_zoo_cgroup_left(&before, "a zoo-* cgroup was left behind");
}

#[test]
fn rootless_limits_on_cgroup_v1_are_refused_not_dropped() {
    if !on_cgroup_v1() {
        return;
    }
    for flag in [["-m", "32M"], ["-c", "50"], ["-p", "10"]] {
        let mut args = flag.to_vec();
        args.push("true");
        let out = run_in_rootfs(As::User(RANGED_USER), &args);
        fails_with(&out, 125, "need cgroup v2 for a rootless container");
    }
}

/// The container's v1 memory limits while it runs: (memory, memory+swap).
fn memory_limits_while_running(args: &[&str]) -> (String, String) {
    use std::io::BufRead;
    let mut all = vec!["--stop-timeout", "0"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["sh", "-c", "echo ready; exec sleep 10"]);
    let fx = fixture();
    let mut with_rootfs = vec!["-r", fx.rootfs.to_str().unwrap()];
    with_rootfs.extend(all);
    let mut child = zookeeper(As::Root, &with_rootfs).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let container = children_of(child.id());
    let name = format!("/zoo-{}", container[0]);
    let dir = zoo_cgroups()
        .into_iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/memory/") && d.ends_with(&name))
        .expect("the container's memory cgroup");
    let read = |file: &str| std::fs::read_to_string(format!("{dir}/{file}")).unwrap().trim().to_string();
    let limits = (read("memory.limit_in_bytes"), read("memory.memsw.limit_in_bytes"));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGTERM).unwrap();
    child.wait().unwrap();
    limits
}

#[test]
fn memory_swap_as_docker_on_cgroup_v1() {
    let _turn = turn();
    if !on_cgroup_v1() || !std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
    {
        return;
    }
    let before = zoo_cgroups();
    let m32 = (32u64 << 20).to_string();
    // Without --memory-swap: no swap, the limit is real.
    assert_eq!(memory_limits_while_running(&["-m", "32M"]), (m32.clone(), m32.clone()));
    // Memory and swap together, as docker counts them.
    assert_eq!(
        memory_limits_while_running(&["-m", "32M", "--memory-swap", "96M"]),
        (m32.clone(), (96u64 << 20).to_string())
    );
    // -1: swap unlimited (the kernel's largest value, page-aligned).
    let (memory, total) = memory_limits_while_running(&["-m", "32M", "--memory-swap", "-1"]);
    assert_eq!(memory, m32);
    assert!(total.parse::<u64>().unwrap() >= i64::MAX as u64 - 4096, "{total}");
    assert_no_zoo_cgroup_left(&before, "a zoo-* cgroup was left behind");
}
