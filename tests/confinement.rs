//! Confinement (SPEC.md 3.5), proven by escape attempts from inside real
//! containers: capabilities, no_new_privs, seccomp and descriptor hygiene.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const USER: As = As::User(RANGED_USER);

/// A fresh directory the escape attempts may write in, owned by `owner`.
fn scratch(name: &str, owner: Option<&str>) -> PathBuf {
    let dir = fixture().dir.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    if let Some(owner) = owner {
        let (uid, gid) = ids_of(owner);
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    }
    dir
}

fn probe() -> PathBuf {
    fixture().rootfs.join("bin/zoo-probe")
}

/// attempt -> "reached" or "blocked ERRNO"
fn parse_attempts(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .map(|line| {
            let (name, verdict) = line.split_once(' ').unwrap();
            (name.to_string(), verdict.to_string())
        })
        .collect()
}

/// Walks `dir` on the host: no file in it may have a set-id bit.
fn no_setid_files_in(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            no_setid_files_in(&entry.path());
        } else {
            assert_eq!(meta.mode() & 0o6000, 0, "set-id file {}: {:o}", entry.path().display(), meta.mode());
        }
    }
}

/// Runs the escape attempts in a fresh directory under the rootfs's /tmp.
fn escape_inside(who: As) -> BTreeMap<String, String> {
    let out = ok(run_in_rootfs(who, &["sh", "-c", "cd \"$(mktemp -d)\" && exec zoo-probe escape"]));
    no_setid_files_in(&fixture().rootfs.join("tmp"));
    parse_attempts(&out)
}

#[test]
fn every_denied_facility_is_blocked_inside_and_reachable_outside() {
    // Without zookeeper (as root on the host) every attempt gets through, so
    // a "blocked" inside is zookeeper's doing, not this machine's.
    let dir = scratch("escape-baseline", None);
    let baseline =
        parse_attempts(&ok(Command::new(probe()).arg("escape").current_dir(&dir).output().unwrap()));
    assert!(baseline.len() >= 36, "{baseline:?}");
    for (attempt, verdict) in &baseline {
        assert_eq!(verdict, "reached", "{attempt} does not work even without zookeeper here");
    }

    for who in [USER, As::Root] {
        let inside = escape_inside(who);
        assert_eq!(inside.keys().collect::<Vec<_>>(), baseline.keys().collect::<Vec<_>>());
        for (attempt, verdict) in &inside {
            let expected = match attempt.as_str() {
                // Their arguments are out of seccomp's reach: ENOSYS makes
                // libc fall back to the calls that are checked.
                "clone3-newuser" | "openat2-creat-setuid" => "blocked ENOSYS",
                _ => "blocked EPERM",
            };
            assert_eq!(verdict, expected, "{attempt} as {who:?}");
        }
    }
}

fn status_field(status: &str, field: &str) -> u64 {
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap();
    let value = line.split_whitespace().nth(1).unwrap();
    u64::from_str_radix(value, if field.starts_with("Cap") { 16 } else { 10 }).unwrap()
}

#[test]
fn proc_status_shows_the_confinement() {
    // Bit numbers of the capabilities SPEC.md 3.5 drops (linux/capability.h).
    const DROPPED: [u32; 20] = [30, 37, 29, 36, 2, 4, 14, 33, 32, 27, 31, 34, 21, 22, 16, 23, 17, 24, 25, 35];
    let dropped_mask: u64 = DROPPED.iter().map(|bit| 1u64 << bit).sum();
    for who in [USER, As::Root] {
        let status = ok(run_in_rootfs(who, &["cat", "/proc/self/status"]));
        for set in ["CapBnd", "CapEff", "CapPrm"] {
            let caps = status_field(&status, set);
            assert_eq!(caps & dropped_mask, 0, "{set} {caps:x} still has a dropped capability");
            // Container root keeps the rest, e.g. CAP_CHOWN (0) and CAP_SETUID (7).
            assert_ne!(caps & 1, 0, "{set} {caps:x} lost CAP_CHOWN");
            assert_ne!(caps & (1 << 7), 0, "{set} {caps:x} lost CAP_SETUID");
        }
        assert_eq!(status_field(&status, "CapInh"), 0);
        assert_eq!(status_field(&status, "CapAmb"), 0);
        assert_eq!(status_field(&status, "NoNewPrivs"), 1);
        assert_eq!(status_field(&status, "Seccomp"), 2);
    }
}

#[test]
fn admin_operations_fail_and_ordinary_ones_work() {
    // Errors go to a file: the busybox rootfs has no /dev/null, and a failed
    // redirection would skip the very command under test.
    let script = "
        cd \"$(mktemp -d)\" || exit 9
        mount -t tmpfs none /mnt 2>>err && echo mount-worked
        hostname evil 2>>err && echo hostname-worked
        mknod null c 1 3 2>>err && echo mknod-worked
        cp /bin/busybox bb && chmod u+s bb 2>>err && echo setuid-worked
        test $(wc -l < err) = 4 || cat err
        echo data > a && chmod 755 a && cp a b && tar cf t.tar a b && mkdir x && tar xf t.tar -C x && cat x/b
        chown 1000:1000 b && ls -n b | awk '{print $3\":\"$4}'
        hostname
    ";
    for who in [USER, As::Root] {
        let out = run_in_rootfs(who, &["sh", "-c", script]);
        assert_eq!(stdout(&out), "data\n1000:1000\nzoo\n", "as {who:?}: {}", stderr(&out));
    }
}

#[test]
fn the_callers_descriptors_do_not_reach_the_container() {
    let fx = fixture();
    let probe_in_rootfs = "/bin/zoo-probe";
    let command = format!(
        "exec 7</etc/hostname 9>/dev/null; exec setpriv --reuid={RANGED_USER} --regid={RANGED_USER} --init-groups {} -r {} -P {probe_in_rootfs} fds",
        fx.zookeeper.display(),
        fx.rootfs.display()
    );
    let out = Command::new("sh").args(["-c", &command]).current_dir(&fx.dir).output().unwrap();
    assert_eq!(ok(out), "0\n1\n2\n");
}

#[test]
fn the_container_has_its_own_session() {
    let out = ok(run_in_rootfs(USER, &["sh", "-c", "cut -d' ' -f6 /proc/self/stat; echo $$"]));
    let mut lines = out.lines();
    let session: u32 = lines.next().unwrap().parse().unwrap();
    assert_eq!(session, lines.next().unwrap().parse::<u32>().unwrap(), "pid 1 leads its own session");
}

#[test]
fn the_experiment_in_the_docs_is_true() {
    // docs/seccomp-experiment.md: chmod u+s inside fails; the copy is made.
    let script = "cd \"$(mktemp -d)\" && cp /bin/busybox suid && pwd && chmod u+s suid";
    let out = run_in_rootfs(USER, &["sh", "-c", script]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "chmod: suid: Operation not permitted\n");
    let dir = stdout(&out);
    let copy = fixture().rootfs.join(dir.trim().trim_start_matches('/')).join("suid");
    assert_eq!(std::fs::metadata(copy).unwrap().permissions().mode() & 0o7777, 0o755);
}
