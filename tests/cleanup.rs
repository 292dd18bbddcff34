//! Nothing is left behind (SPEC.md 2): after a normal exit, a failing
//! command, an exec failure and a set-up error, no /tmp/zoo.* directory and
//! no process of the container remains. One test in its own binary, so that
//! no other test's containers come and go while it counts.

mod common;

use common::*;

/// Processes owned by the test users (the containers run as them or their
/// subordinate ids on the host).
fn test_user_processes() -> Vec<String> {
    let (uid, _) = ids_of(RANGED_USER);
    let (sub, count) = subid_range("/etc/subuid", RANGED_USER).unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let Some(line) = status.lines().find(|l| l.starts_with("Uid:")) else {
            continue;
        };
        let real: u32 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        if real == uid || (sub..sub + count).contains(&real) {
            found.push(status.lines().next().unwrap_or("").to_string());
        }
    }
    found
}

#[test]
fn nothing_is_left_behind_on_any_path() {
    let fx = fixture();
    // A rootfs without /proc: mounting a fresh one fails inside the child.
    let broken = fx.dir.join("rootfs-without-proc");
    std::fs::create_dir_all(broken.join("bin")).unwrap();
    std::fs::create_dir_all(broken.join("dev")).unwrap();
    std::os::unix::fs::symlink(fx.rootfs.join("bin/busybox"), broken.join("bin/busybox")).ok();

    let before = zoo_tmp_dirs();
    let user = As::User(RANGED_USER);
    for who in [user, As::Root] {
        assert!(run_in_rootfs(who, &["true"]).status.success());
        assert_eq!(run_in_rootfs(who, &["sh", "-c", "exit 3"]).status.code(), Some(3));
        fails_with(&run_in_rootfs(who, &["no-such-command"]), 127, "not found");
        fails_with(&run_in_rootfs(who, &["/etc/not-executable"]), 126, "permission denied");
        let out =
            zookeeper(who, &["-r", broken.to_str().unwrap(), "-P", "/bin/busybox", "true"]).output().unwrap();
        fails_with(&out, 125, "the container's root has no /proc directory");
        assert!(zookeeper(who, &["-P", "true"]).output().unwrap().status.success(), "default root");
        let out = zookeeper(who, &["-P", "no-such-command"]).output().unwrap();
        fails_with(&out, 127, "not found");
        let out = zookeeper(who, &["-r", "/nonexistent", "true"]).output().unwrap();
        fails_with(&out, 125, "--rootfs /nonexistent: no such directory");
    }
    assert_eq!(zoo_tmp_dirs(), before, "a /tmp/zoo.* directory was left behind");
    assert_eq!(test_user_processes(), Vec::<String>::new(), "processes of the test user remain");
}
