//! The container's filesystem (SPEC.md 3.4, section 1's default root):
//! pivot_root into the rootfs, /proc, /dev, /sys, hostile rootfs layouts and
//! the secure default root, with the real binary.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const USER: As = As::User(RANGED_USER);

#[test]
fn root_is_the_rootfs_and_the_host_is_gone() {
    let fx = fixture();
    let host_marker = fx.dir.join("host-marker");
    std::fs::write(&host_marker, "host\n").unwrap();
    let script = format!(
        "cat /zoo-rootfs-marker; test -e {} && echo host-visible; cd /.. && pwd; ls /",
        host_marker.display()
    );
    let out = ok(run_in_rootfs(USER, &["sh", "-c", &script]));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("inside"));
    assert_eq!(lines.next(), Some("/"));
    let mut listing: Vec<&str> = lines.collect();
    listing.sort();
    assert_eq!(listing, ["bin", "dev", "etc", "proc", "root", "sys", "tmp", "usr", "zoo-rootfs-marker"]);
}

#[test]
fn proc_is_empty_without_p_and_the_containers_own_with_it() {
    let fx = fixture();
    let out =
        ok(zookeeper(USER, &["-r", fx.rootfs.to_str().unwrap(), "ls", "-A", "/proc"]).output().unwrap());
    assert_eq!(out, "");
    let out = ok(run_in_rootfs(
        USER,
        &["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /proc | grep -c '^[0-9]'"],
    ));
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("sh -c cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /proc | grep -c '^[0-9]' ")
    );
    // sh, ls and grep: nothing of the host's.
    assert!(lines.next().unwrap().parse::<u32>().unwrap() <= 3);
}

#[test]
fn proc_hides_and_freezes_what_docker_does() {
    let script = "
        for f in keys timer_list interrupts; do test -e /proc/$f && printf '%s:%s\\n' $f \"$(wc -c < /proc/$f)\"; done
        ls -A /proc/acpi | wc -l
        echo zoo2 > /proc/sys/kernel/hostname 2>/dev/null && echo sys-writable
        grep -E ' /proc/(sys|irq|bus|fs) ' /proc/self/mountinfo | awk '{print $5, substr($6,1,2)}'
    ";
    let out = ok(run_in_rootfs(USER, &["sh", "-c", script]));
    assert_eq!(
        out,
        "keys:0\ntimer_list:0\ninterrupts:0\n0\n/proc/bus ro\n/proc/fs ro\n/proc/irq ro\n/proc/sys ro\n"
    );
}

#[test]
fn sys_is_read_only_and_masked() {
    let out = ok(run_in_rootfs(
        USER,
        &[
            "sh",
            "-c",
            "ls /sys/class >/dev/null && echo listed; touch /sys/x 2>/dev/null || echo ro; ls -A /sys/firmware | wc -l",
        ],
    ));
    assert_eq!(out, "listed\nro\n0\n");
}

#[test]
fn dev_has_what_programs_need() {
    let script = "
        echo discarded > /dev/null && echo null-ok
        test $(head -c 16 /dev/urandom | wc -c) = 16 && echo urandom-ok
        test $(head -c 4 /dev/zero | tr '\\0' z) = zzzz && echo zero-ok
        echo x > /dev/full 2>/dev/null || echo full-ok
        readlink /dev/fd; readlink /dev/stdin; readlink /dev/ptmx
        echo shm > /dev/shm/x && cat /dev/shm/x
        zoo-probe pty
        ls -A /dev | sort | tr '\\n' ' '
    ";
    for who in [USER, As::Root] {
        let out = ok(run_in_rootfs(who, &["sh", "-c", script]));
        assert_eq!(
            out,
            "null-ok\nurandom-ok\nzero-ok\nfull-ok\n/proc/self/fd\n/proc/self/fd/0\npts/ptmx\nshm\n/dev/pts/0 hello\n\
             fd full null ptmx pts random shm stderr stdin stdout tty urandom zero ",
            "as {who:?}"
        );
    }
}

/// A rootfs with busybox, its shell and whatever `extra` adds.
fn hostile_rootfs(name: &str, extra: impl FnOnce(&Path)) -> PathBuf {
    let dir = fixture().dir.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["bin", "etc"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::copy(fixture().rootfs.join("bin/busybox"), dir.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
    extra(&dir);
    let status = std::process::Command::new("chmod").args(["-R", "a+rX"]).arg(&dir).status().unwrap();
    assert!(status.success());
    dir
}

#[test]
fn symlinks_in_the_rootfs_never_reach_the_host() {
    let fx = fixture();
    let victim = fx.dir.join("victim");
    let _ = std::fs::remove_dir_all(&victim);
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("untouched"), "").unwrap();
    let victim_str = victim.to_str().unwrap().to_string();
    let link = |name: &'static str, target: String| {
        move |dir: &Path| {
            for sub in ["dev", "proc", "sys"] {
                if sub != name {
                    std::fs::create_dir_all(dir.join(sub)).unwrap();
                }
            }
            std::os::unix::fs::symlink(target, dir.join(name)).unwrap();
        }
    };
    let cases = [
        ("evil-dev-root", link("dev", "/".into()), "/dev is a symbolic link"),
        ("evil-dev-victim", link("dev", victim_str.clone()), "/dev is a symbolic link"),
        (
            "evil-proc-etc",
            link("proc", "/etc".into()),
            "/proc is a symbolic link in the container's root; refusing to mount over it (it must be mounted on ordinary directory)",
        ),
        ("evil-sys-victim", link("sys", victim_str.clone()), "/sys is a symbolic link"),
        ("evil-proc-dotdot", link("proc", "../../../../..".into()), "/proc is a symbolic link"),
    ];
    for (name, layout, message) in cases {
        let rootfs = hostile_rootfs(name, layout);
        for who in [USER, As::Root] {
            let out = zookeeper(who, &["-r", rootfs.to_str().unwrap(), "-P", "true"]).output().unwrap();
            fails_with(&out, 125, message);
        }
    }
    let entries: Vec<_> = std::fs::read_dir(&victim).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, ["untouched"], "something was created in the host directory");

    // A symlinked /tmp is harmless: after pivot_root it resolves inside.
    let rootfs = hostile_rootfs("evil-tmp", |dir| {
        for sub in ["dev", "proc", "sys", "home"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(&victim_str, dir.join("tmp")).unwrap();
    });
    let out = zookeeper(USER, &["-r", rootfs.to_str().unwrap(), "sh", "-c", "echo x > /tmp/planted"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(!victim.join("planted").exists());
}

#[test]
fn a_rootfs_without_dev_or_proc_is_refused_not_modified() {
    let rootfs = hostile_rootfs("no-dev", |_| {});
    let out = zookeeper(USER, &["-r", rootfs.to_str().unwrap(), "true"]).output().unwrap();
    fails_with(&out, 125, "the container's root has no /dev directory");
    assert!(!rootfs.join("dev").exists());
}

#[test]
fn the_default_root_shows_the_host_system_read_only_and_nothing_else() {
    let script = "
        test -r /usr/bin/env && echo usr-readable
        touch /usr/zoo 2>/dev/null || echo usr-ro
        touch /etc/zoo 2>/dev/null || echo etc-ro
        touch /zoo 2>/dev/null || echo root-ro
        ls -A /home /tmp /root /run | tr -s '\\n' ' '; echo
        echo hi > /tmp/x && cat /tmp/x
        echo hi > /root/x && cat /root/x
        test -e /var/lib && echo host-var-visible
        readlink /bin
        id -un
    ";
    for who in [USER, As::Root] {
        let out = ok(zookeeper(who, &["-P", "/bin/sh", "-c", script]).output().unwrap());
        assert_eq!(
            out, "usr-readable\nusr-ro\netc-ro\nroot-ro\n/home: /root: /run: /tmp: \nhi\nhi\nusr/bin\nroot\n",
            "as {who:?}"
        );
    }
}

#[test]
fn the_default_root_runs_a_real_shell() {
    // bash from the host's /usr, with its libraries, in the default root.
    let out =
        ok(zookeeper(USER, &["bash", "-c", "echo $BASH_VERSION | cut -d. -f1; hostname; ls / | wc -l"])
            .output()
            .unwrap());
    assert_eq!(out.lines().nth(1), Some("zoo"));
}

#[test]
fn a_full_debian_rootfs_runs() {
    // Built once and cached by scripts/debian-rootfs.sh (scripts/test.sh
    // calls it first and says loudly when the mirror cannot be reached).
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/debian-rootfs.sh");
    let out = std::process::Command::new(&script).output().unwrap();
    if out.status.code() == Some(3) {
        eprintln!("SKIPPED: no Debian rootfs could be built: {}", stderr(&out));
        return;
    }
    let rootfs = ok(out).trim().to_string();
    let script = "bash --version | head -1; dpkg --version | head -1; apt-get --version | head -1; cat /etc/debian_version";
    for who in [USER, As::Root] {
        let out = ok(zookeeper(who, &["-r", &rootfs, "-P", "bash", "-c", script]).output().unwrap());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[0].starts_with("GNU bash, version 5."), "{out}");
        assert!(lines[1].starts_with("Debian 'dpkg' package management program"), "{out}");
        assert!(lines[2].starts_with("apt 2."), "{out}");
        assert!(lines[3].starts_with("12."), "{out}");
    }
}

/// Issue 14: dpkg cannot install a package with a set-id program under the
/// strict default filter, and can with `--security-opt allow-setid`, rootless
/// (container root is the user, not host root). The .deb is the one
/// debootstrap left in the rootfs's apt cache: no network.
#[test]
fn dpkg_installs_set_id_programs_only_with_allow_setid() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/debian-rootfs.sh");
    let out = std::process::Command::new(&script).output().unwrap();
    if out.status.code() == Some(3) {
        eprintln!("SKIPPED: no Debian rootfs could be built: {}", stderr(&out));
        return;
    }
    let cached = ok(out).trim().to_string();
    let rootfs = fixture().dir.join("debian-setid");
    let _ = std::fs::remove_dir_all(&rootfs);
    let copy = std::process::Command::new("cp").arg("-a").arg(&cached).arg(&rootfs).status().unwrap();
    assert!(copy.success());
    // Container root is the user: it must own what dpkg replaces.
    let owned = std::process::Command::new("chown")
        .args(["-R", &format!("{RANGED_USER}:{RANGED_USER}")])
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(owned.success());
    let debs = std::fs::read_dir(rootfs.join("var/cache/apt/archives")).unwrap();
    let deb = debs
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("passwd_") && name.ends_with(".deb"))
        .expect("debootstrap's cache has passwd's .deb");
    let deb = format!("/var/cache/apt/archives/{deb}");
    let rootfs_arg = rootfs.to_str().unwrap();
    let strict = zookeeper(USER, &["-r", rootfs_arg, "-P", "dpkg", "-i", &deb]).output().unwrap();
    assert!(!strict.status.success(), "dpkg installed set-id files under the strict filter");
    assert!(stderr(&strict).contains("Operation not permitted"), "{}", stderr(&strict));
    let allowed =
        zookeeper(USER, &["-r", rootfs_arg, "-P", "--security-opt", "allow-setid", "dpkg", "-i", &deb])
            .output()
            .unwrap();
    ok(allowed);
    let mode =
        std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(rootfs.join("usr/bin/passwd")).unwrap());
    assert_eq!(mode & 0o4000, 0o4000, "passwd is not set-uid: {mode:o}");
    std::fs::remove_dir_all(&rootfs).unwrap();
}
