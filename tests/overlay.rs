//! `--overlay`: `-r DIR` as the read-only lower layer, the container's
//! writes in a private layer on a tmpfs of its own mount namespace.
//! Rootless and as root: two containers on one DIR never see each other's
//! writes, DIR is unchanged (a checksum of its tree), the writable layer
//! is gone after exit and after zookeeper is SIGKILLed, and it works with
//! --read-only.

mod common;

use common::*;
use std::io::BufRead;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const USER: As = As::User(RANGED_USER);
const WHO: [As; 2] = [USER, As::Root];

/// One test at a time: the leftover checks count every test's directories.
fn turn() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn tag(who: As) -> &'static str {
    if who == As::Root { "root" } else { "user" }
}

/// A directory both containers (and the test) can write, for handshakes.
fn shared_dir(name: &str, who: As) -> PathBuf {
    let dir = fixture().dir.join(format!("overlay-{name}-shared-{}", tag(who)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    if let As::User(user) = who {
        let (uid, gid) = ids_of(user);
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    }
    dir
}

/// Everything about a tree that a write could change: each entry's path,
/// type, mode, owner, size, modification time, and a file's content or a
/// link's target.
fn checksum(root: &Path) -> Vec<String> {
    use std::hash::{Hash, Hasher};
    let mut lines = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        if meta.is_file() {
            std::fs::read(&path).unwrap().hash(&mut hasher);
        } else if meta.file_type().is_symlink() {
            std::fs::read_link(&path).unwrap().hash(&mut hasher);
        } else if meta.is_dir() {
            let mut entries: Vec<PathBuf> =
                std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()).collect();
            entries.sort();
            stack.extend(entries);
        }
        lines.push(format!(
            "{} {:o} {}:{} {} {}.{} {:x}",
            path.strip_prefix(root).unwrap().display(),
            meta.mode(),
            meta.uid(),
            meta.gid(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            hasher.finish()
        ));
    }
    lines
}

/// Whether any process on the host still has an overlay of zookeeper's
/// (its layers named `/proc/self/fd/N`) in its mount table.
fn an_overlay_is_mounted_somewhere() -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read_to_string(entry.path().join("mountinfo")).is_ok_and(|table| {
            table.lines().any(|l| l.contains(" overlay ") && l.contains("upperdir=/proc/self/fd/"))
        })
    })
}

/// What a container writes, changes and removes in its root.
const WRITES: &str = "echo $ME > /mine; echo only > /only-$ME; echo $ME >> /etc/passwd; \
                      rm /etc/group; mkdir -p /var/lib/$ME; ";

#[test]
fn two_containers_on_one_dir_never_see_each_others_writes() {
    let _turn = turn();
    for who in WHO {
        let rootfs = own_rootfs_copy("overlay", "two", who);
        let sync = shared_dir("two", who);
        let before = checksum(&rootfs);
        let tmp_before = zoo_tmp_dirs();
        // Each writes, says so, and waits (at most 10 s) for the other to
        // have written too before it looks: both run at once on one DIR.
        let script = format!(
            "{WRITES} touch /sync/$ME; i=0; while [ ! -e /sync/$OTHER ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; \
             cat /mine; ls / | grep only-; tail -1 /etc/passwd; ls /etc/group 2>&1 | grep -c 'No such'; ls /var/lib"
        );
        let volume = format!("{}:/sync", sync.display());
        let start = |me: &str, other: &str| {
            let (me_env, other_env) = (format!("ME={me}"), format!("OTHER={other}"));
            let args = [
                "-r",
                rootfs.to_str().unwrap(),
                "-P",
                "--overlay",
                "-v",
                &volume,
                "-e",
                &me_env,
                "-e",
                &other_env,
                "sh",
                "-c",
                &script,
            ];
            zookeeper(who, &args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
        };
        let (a, b) = (start("a", "b"), start("b", "a"));
        for (child, me) in [(a, "a"), (b, "b")] {
            let out = ok(child.wait_with_output().unwrap());
            assert_eq!(out, format!("{me}\nonly-{me}\n{me}\n1\n{me}\n"), "{who:?}");
        }
        assert_eq!(checksum(&rootfs), before, "{who:?}: the lower layer changed");
        assert_no_zoo_tmp_dir_left(&tmp_before, &format!("{who:?}"));
        assert!(!an_overlay_is_mounted_somewhere(), "{who:?}");
        // A third container starts from DIR as it was.
        let out = ok(zookeeper(
            who,
            &[
                "-r",
                rootfs.to_str().unwrap(),
                "--overlay",
                "sh",
                "-c",
                "ls /mine /only-a /only-b 2>&1 | grep -c 'No such'; cat /etc/group | head -1",
            ],
        )
        .output()
        .unwrap());
        assert_eq!(out, "3\nroot:x:0:\n", "{who:?}");
    }
}

#[test]
fn the_writable_layer_goes_with_a_sigkilled_zookeeper() {
    let _turn = turn();
    for who in WHO {
        let rootfs = own_rootfs_copy("overlay", "kill", who);
        let before = checksum(&rootfs);
        let tmp_before = zoo_tmp_dirs();
        let mut child = zookeeper(
            who,
            &[
                "-r",
                rootfs.to_str().unwrap(),
                "--overlay",
                "sh",
                "-c",
                "dd if=/dev/zero of=/big bs=1k count=1024 2>/dev/null; echo x >> /etc/passwd; echo ready; exec sleep 60",
            ],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n", "{who:?}");
        let container: Vec<u32> = children_of(child.id());
        assert_eq!(container.len(), 1, "{who:?}: {container:?}");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGKILL)
            .unwrap();
        child.wait().unwrap();
        // Its parent-death signal kills the container, and with its last
        // process its mount namespace goes, the only one holding the tmpfs.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{}", container[0])).exists() {
            assert!(Instant::now() < deadline, "{who:?}: the container outlived zookeeper");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!an_overlay_is_mounted_somewhere(), "{who:?}");
        ok(zookeeper(who, &["--cleanup"]).output().unwrap());
        assert_no_zoo_tmp_dir_left(&tmp_before, &format!("{who:?}: after --cleanup"));
        assert_eq!(checksum(&rootfs), before, "{who:?}: the lower layer changed");
    }
}

#[test]
fn read_only_and_mount_points_over_an_overlay() {
    let _turn = turn();
    for who in WHO {
        let rootfs = own_rootfs_copy("overlay", "ro", who);
        std::fs::create_dir(rootfs.join("run")).unwrap();
        if let As::User(user) = who {
            let (uid, gid) = ids_of(user);
            std::os::unix::fs::chown(rootfs.join("run"), Some(uid), Some(gid)).unwrap();
        }
        let before = checksum(&rootfs);
        let host = shared_dir("ro", who);
        let volume = format!("{}:/new/mount/point", host.display());
        let r = rootfs.to_str().unwrap();
        let out = ok(zookeeper(
            who,
            &[
                "-r",
                r,
                "-P",
                "--overlay",
                "--read-only",
                "-v",
                &volume,
                "sh",
                "-c",
                "touch /x 2>/dev/null && echo root-writable; touch /tmp/a /run/b && echo tmp-and-run; \
                 grep -c ' / / ro,.* - overlay ' /proc/self/mountinfo",
            ],
        )
        .output()
        .unwrap());
        assert_eq!(out, "tmp-and-run\n1\n", "{who:?}");
        let out = ok(zookeeper(
            who,
            &[
                "-r",
                r,
                "--overlay",
                "-v",
                &volume,
                "-w",
                "/made/here",
                "sh",
                "-c",
                "pwd; ls -d /new/mount/point",
            ],
        )
        .output()
        .unwrap());
        assert_eq!(out, "/made/here\n/new/mount/point\n", "{who:?}");
        // The mount point and the working directory were made in the
        // writable layer, not in DIR.
        assert_eq!(checksum(&rootfs), before, "{who:?}");
        // --overlay-size bounds the writable layer.
        let out = zookeeper(
            who,
            &[
                "-r",
                r,
                "--overlay",
                "--overlay-size",
                "1M",
                "sh",
                "-c",
                "dd if=/dev/zero of=/big bs=1k count=2048",
            ],
        )
        .output()
        .unwrap();
        assert!(!out.status.success() && stderr(&out).contains("No space left"), "{who:?}: {}", stderr(&out));
        assert_eq!(checksum(&rootfs), before, "{who:?}");
    }
}

#[test]
fn bad_overlay_flags_are_one_line_and_leave_nothing() {
    let _turn = turn();
    let before = zoo_tmp_dirs();
    let rootfs = fixture().rootfs.to_str().unwrap();
    for (args, needle) in [
        (vec!["--overlay", "true"], "--overlay needs -r DIR"),
        (vec!["-r", rootfs, "--overlay-size", "64M", "true"], "--overlay-size needs --overlay"),
        (vec!["-r", rootfs, "--overlay", "--overlay-size", "lots", "true"], "--overlay-size"),
    ] {
        for who in WHO {
            fails_with(&zookeeper(who, &args).output().unwrap(), 125, needle);
        }
    }
    assert_no_zoo_tmp_dir_left(&before, "bad overlay flags");
}
