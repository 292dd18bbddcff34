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

    // The proposed range overlaps no one's, in either file (the debug
    // build's test-only override names the files).
    let dir = fixture().dir.join("preflight-subids");
    std::fs::create_dir_all(&dir).unwrap();
    let (subuid, subgid) = (dir.join("subuid"), dir.join("subgid"));
    std::fs::write(&subuid, format!("{RANGED_USER}:100000:65536\nother:165536:65536\n")).unwrap();
    std::fs::write(&subgid, format!("{RANGED_USER}:100000:65536\nthird:231072:100\n")).unwrap();
    for file in [&dir, &subuid, &subgid] {
        let mode = if file == &dir { 0o755 } else { 0o644 };
        std::fs::set_permissions(file, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }
    let out = zookeeper(As::User(NORANGE_USER), &["--check"])
        .env("ZOOKEEPER_SUBUID_FILE", &subuid)
        .env("ZOOKEEPER_SUBGID_FILE", &subgid)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains(&format!("missing  /etc/subuid: no range for {NORANGE_USER}")), "{text}");
    let fix = format!("fix: usermod --add-subuids 231172-296707 --add-subgids 231172-296707 {NORANGE_USER}");
    assert_eq!(text.matches(&fix).count(), 2, "{text}");
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
