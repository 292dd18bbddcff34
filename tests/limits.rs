//! Resource limits on this host (cgroup v1, as root), the assignment's 5.4
//! experiments: each limit is exceeded from inside and holds. The cgroup v2
//! checks (rootless, delegated and through systemd) run in the guest of
//! ../shared/vm: tests/guest/limits.sh, called by scripts/test.sh.

mod common;

use common::*;

fn on_cgroup_v1() -> bool {
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
    if !v1 {
        eprintln!("SKIPPED: this host has no cgroup v1 memory hierarchy; the guest tests cover cgroup v2");
    }
    v1
}

#[test]
fn limits_hold_as_root_on_cgroup_v1() {
    if !on_cgroup_v1() {
        return;
    }
    let before = zoo_cgroups();
    // Memory: 96M under a 32M limit is OOM-killed; 64M under 128M runs.
    let out = run_in_rootfs(As::Root, &["-m", "32M", "zoo-probe", "alloc", "96"]);
    assert_eq!(signal_of(&out), Some(libc::SIGKILL), "{:?} {}", out.status, stdout(&out));
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
    assert_eq!(zoo_cgroups(), before, "a zoo-* cgroup was left behind");
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
