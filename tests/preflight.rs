//! `--check` (issue 9) on this host: it names what is missing, with the fix,
//! and exits 0 only when nothing is. The guest runs it too
//! (tests/guest/limits.sh), where a rootless user lacks nothing.

mod common;

use common::*;

#[test]
fn check_reports_what_this_host_lacks() {
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();

    let out = zookeeper(As::User(RANGED_USER), &["--check"]).output().unwrap();
    let text = stdout(&out);
    assert!(text.contains("ok       user namespaces"), "{text}");
    assert!(text.contains(&format!("ok       /etc/subuid: {RANGED_USER} has")), "{text}");
    assert!(text.contains("ok       newuidmap: /usr/bin/newuidmap (set-user-id root)"), "{text}");
    assert!(text.contains("ok       /dev/net/tun: usable"), "{text}");
    if v1 {
        assert!(text.contains("missing  cgroups: v1 for the controllers"), "{text}");
        assert_eq!(out.status.code(), Some(1));
    }

    let out = zookeeper(As::User(NORANGE_USER), &["--check"]).output().unwrap();
    let text = stdout(&out);
    assert!(text.contains(&format!("missing  /etc/subuid: no range for {NORANGE_USER}")), "{text}");
    assert!(text.contains(&format!(
        "fix: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {NORANGE_USER}"
    )));
    assert_eq!(out.status.code(), Some(1));

    // Without the helpers on PATH.
    let out = zookeeper(As::User(RANGED_USER), &["--check"]).env("PATH", "/nonexistent").output().unwrap();
    let text = stdout(&out);
    assert!(text.contains("missing  newuidmap: not found") && text.contains("apt install uidmap"), "{text}");
    assert!(text.contains("missing  slirp4netns: not found"), "{text}");
    assert_eq!(out.status.code(), Some(1));

    // Root on this host lacks nothing.
    let out = zookeeper(As::Root, &["--check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(!stdout(&out).contains("missing"));
}
