//! The attacker's review (issue 12), one test per hole it found, each trying
//! the attack for real from inside a container, from a hostile rootfs or as
//! another local user: pid 1 under --init, host inodes bound into the
//! container, the rootfs swapped while zookeeper starts, hostile files in a
//! rootfs, the parent-death signal's window, the host's secrets.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const USER: As = As::User(RANGED_USER);
const NORANGE: As = As::User(NORANGE_USER);

/// attempt -> "reached" or "blocked ERRNO", from the probe's output.
fn attempts(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, verdict)| (name.to_string(), verdict.to_string()))
        .collect()
}

/// Runs `args` as `who` with a binary of its own (owned by `who`, in a
/// directory `who` owns, as a user's own build is) and a caller's
/// environment holding a secret.
fn run_own_binary(tag: &str, who: As, args: &[&str]) -> (Output, PathBuf) {
    let fx = fixture();
    let (name, owner) = match who {
        As::Root => ("root", (0, 0)),
        As::User(user) => (user, ids_of(user)),
    };
    let dir = fx.dir.join(format!("own-binary-{tag}-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let binary = dir.join("zookeeper");
    std::fs::copy(&fx.zookeeper, &binary).unwrap();
    std::os::unix::fs::chown(&dir, Some(owner.0), Some(owner.1)).unwrap();
    std::os::unix::fs::chown(&binary, Some(owner.0), Some(owner.1)).unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = match who {
        As::Root => Command::new(&binary),
        As::User(user) => {
            let mut c = Command::new("/usr/bin/setpriv");
            c.args([&format!("--reuid={user}"), &format!("--regid={user}"), "--init-groups", "--"]);
            c.arg(&binary);
            c
        }
    };
    let mut all = vec!["-r", fx.rootfs.to_str().unwrap(), "-P"];
    all.extend_from_slice(args);
    command
        .args(all)
        .current_dir(&dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("ZOO_CALLER_SECRET", "s3cr3t-of-the-caller")
        .stdin(Stdio::null());
    // A binary just written may be "busy" for an instant: another test
    // thread's fork can hold the copy's descriptor until it execs.
    for _ in 0..100 {
        match command.output() {
            Err(err) if err.raw_os_error() == Some(libc::ETXTBSY) => {}
            // setpriv's own exec of it, as a user.
            Ok(out) if out.status.code() == Some(126) && stderr(&out).contains("Text file busy") => {}
            output => return (output.unwrap(), binary),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{} stayed busy", binary.display())
}

/// Item 1: under --init, pid 1 is zookeeper's code. From inside, nothing of
/// it may be reached: descriptors, environment, memory, cwd, root, binary.
#[test]
fn under_init_pid_1_gives_nothing_of_the_hosts() {
    for who in [USER, NORANGE, As::Root] {
        let (out, binary) = run_own_binary("proc1", who, &["--init", "zoo-probe", "proc1"]);
        let before = std::fs::read(&binary).unwrap();
        let text = ok(out);
        let found = attempts(&text);
        assert!(found.len() >= 18, "{who:?}: {text}");
        for (attempt, verdict) in &found {
            if attempt == "cmdline" {
                // Readable by anyone; it must name no host path.
                assert_eq!(verdict.trim(), "zookeeper-init", "{who:?}: pid 1's command line");
                continue;
            }
            assert!(verdict.starts_with("blocked"), "{who:?}: {attempt} {verdict}\n{text}");
        }
        // The binary that runs zookeeper, owned by the caller, is intact.
        assert_eq!(std::fs::read(&binary).unwrap(), before, "{who:?}: the binary changed");
    }
}

/// Item 1, through a shell: the same, with the tools a user would try.
#[test]
fn under_init_the_callers_environment_and_descriptors_stay_out() {
    for who in [USER, As::Root] {
        let script = "cat /proc/1/environ; echo \"environ=$?\"; \
                      for f in /proc/1/fd/*; do readlink \"$f\" && echo \"leaked $f\"; timeout 1 cat \"$f\" </dev/null >/dev/null && echo \"leaked $f\"; done; \
                      tr '\\0' ' ' </proc/1/cmdline; echo; ls /proc/1/cwd/..; echo \"walk=$?\"";
        let (out, _) = run_own_binary("shell", who, &["--init", "sh", "-c", script]);
        let text = ok(out);
        assert!(!text.contains("s3cr3t"), "{who:?}: the caller's environment leaked: {text}");
        assert!(!text.contains("/tmp"), "{who:?}: a host path leaked: {text}");
        assert!(!text.contains("leaked"), "{who:?}: {text}");
        for line in ["environ=1", "walk=1"] {
            assert!(text.lines().any(|l| l == line), "{who:?}: {line} missing in {text}");
        }
    }
}

/// Item 1: pid 1's own view of itself: non-dumpable, and only the
/// descriptors init needs (a signalfd and the channel to the supervisor).
#[test]
fn init_holds_no_descriptor_of_the_supervisor() {
    let fx = fixture();
    // pid 1's descriptors, read by the host (which may).
    let rootfs = fx.rootfs.to_str().unwrap();
    let mut child = zookeeper(USER, &["-r", rootfs, "--init", "sleep", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let init = loop {
        if let Some(&pid) = children_of(child.id()).first() {
            if !children_of(pid).is_empty() {
                break pid;
            }
        }
        assert!(Instant::now() < deadline, "the container did not start");
        std::thread::sleep(Duration::from_millis(5));
    };
    std::thread::sleep(Duration::from_millis(50));
    let mut fds = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{init}/fd")).unwrap().flatten() {
        let target = std::fs::read_link(entry.path()).unwrap();
        fds.push((entry.file_name().to_string_lossy().into_owned(), target.display().to_string()));
    }
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
    for (fd, target) in &fds {
        match fd.as_str() {
            "0" | "1" | "2" => assert_eq!(target, "/dev/null", "init's fd {fd}: {fds:?}"),
            _ => assert!(
                target.starts_with("pipe:") || target.contains("signalfd"),
                "init holds fd {fd} -> {target}: {fds:?}"
            ),
        }
    }
    assert!(fds.len() <= 5, "{fds:?}");
    // The kernel says "dumpable" nowhere in status; a non-dumpable process's
    // /proc files belong to root, which the fd listing above (as root)
    // could still read. What matters is checked from inside (above).
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
}

/// Item 2: the device nodes bound into /dev and the /dev/null binds that
/// mask /proc files are the host's inodes; as root without a range the
/// container's root is host root and must still not change them.
#[test]
fn a_container_cannot_change_a_host_inode() {
    let mut paths: Vec<String> =
        ["null", "zero", "full", "random", "urandom", "tty"].iter().map(|d| format!("/dev/{d}")).collect();
    for masked in [
        "kcore",
        "keys",
        "timer_list",
        "sched_debug",
        "latency_stats",
        "timer_stats",
        "interrupts",
        "acpi",
        "scsi",
        "asound",
        "sysrq-trigger",
        "sys",
        "irq",
        "bus",
        "fs",
    ] {
        if Path::new("/proc").join(masked).exists() {
            paths.push(format!("/proc/{masked}"));
        }
    }
    paths.push("/sys/firmware".into());
    let before: Vec<_> = ["null", "zero", "full", "random", "urandom", "tty"]
        .iter()
        .map(|d| std::fs::metadata(format!("/dev/{d}")).unwrap())
        .map(|m| (m.mode(), m.uid(), m.gid(), m.mtime()))
        .collect();
    let mut args = vec!["zoo-probe", "host-inodes"];
    args.extend(paths.iter().map(String::as_str));
    for who in [As::Root, USER] {
        for default_root in [false, true] {
            let out = if default_root {
                // The default root is the host's system: its coreutils
                // make the same attempts as the probe.
                let mut all = vec!["-P", "sh", "-c", HOST_INODES_SCRIPT, "sh"];
                all.extend_from_slice(&args[2..]);
                zookeeper(who, &all).output().unwrap()
            } else {
                run_in_rootfs(who, &args)
            };
            let text = ok(out);
            let found = attempts(&text);
            assert!(found.len() >= 4 * 7, "{who:?}: {text}");
            for (attempt, verdict) in &found {
                assert!(
                    verdict.starts_with("blocked"),
                    "{who:?} (default root: {default_root}): {attempt} {verdict}"
                );
            }
        }
    }
    let after: Vec<_> = ["null", "zero", "full", "random", "urandom", "tty"]
        .iter()
        .map(|d| std::fs::metadata(format!("/dev/{d}")).unwrap())
        .map(|m| (m.mode(), m.uid(), m.gid(), m.mtime()))
        .collect();
    assert_eq!(before, after, "the host's /dev changed");
}

/// `zoo-probe host-inodes` in shell, for the default root.
const HOST_INODES_SCRIPT: &str = r#"for p in "$@"; do
  chmod "$(stat -c %a "$p")" "$p" 2>/dev/null && echo "chmod:$p reached" || echo "chmod:$p blocked"
  chown "$(stat -c %u:%g "$p")" "$p" 2>/dev/null && echo "chown:$p reached" || echo "chown:$p blocked"
  touch -c -r "$p" "$p" 2>/dev/null && echo "utimes:$p reached" || echo "utimes:$p blocked"
  touch -c "$p" 2>/dev/null && echo "touch:$p reached" || echo "touch:$p blocked"
done"#;

/// Item 2: the devices still work on their read-only binds.
#[test]
fn devices_work_on_read_only_binds() {
    for who in [As::Root, USER] {
        let out = ok(run_in_rootfs(
            who,
            &[
                "sh",
                "-c",
                "echo x > /dev/null && head -c 5 /dev/zero | wc -c && head -c 7 /dev/urandom | wc -c && \
                 (echo x > /dev/full; echo full=$?)",
            ],
        ));
        assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["5", "7", "full=1"], "{who:?}");
    }
}

/// Item 7: a credential change clears the parent-death signal, which the
/// child then sets again. A zookeeper killed in between sent no signal: the
/// child must notice and end, not run the command with no supervisor. Root
/// with a range changes credentials for real (host root -> the range), and
/// the debug build's test hook holds the child in that window.
#[test]
fn a_zookeeper_killed_while_the_child_changes_identity_takes_the_child_along() {
    let fx = fixture();
    let subuid = fx.dir.join("subuid-root-stall");
    std::fs::write(&subuid, "root:700000:65536\n").unwrap();
    let rootfs = fx.rootfs.to_str().unwrap();
    let mut zk = zookeeper(As::Root, &["-r", rootfs, "sleep", "30"])
        .env("ZOOKEEPER_SUBUID_FILE", &subuid)
        .env("ZOOKEEPER_SUBGID_FILE", &subuid)
        .env("ZOOKEEPER_TEST_STALL_MS", "600")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let child = loop {
        if let Some(&pid) = children_of(zk.id()).first() {
            break pid as i32;
        }
        assert!(Instant::now() < deadline, "no container process appeared");
        std::thread::sleep(Duration::from_millis(2));
    };
    // Well inside the child's 600 ms stall after its credential change.
    std::thread::sleep(Duration::from_millis(200));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(zk.id() as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    let _ = zk.wait();
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(child) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survived = alive(child);
    if survived {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), nix::sys::signal::Signal::SIGKILL);
    }
    // The killed zookeeper's /tmp/zoo.* went to container root, 700000:
    // --cleanup takes it with the same range in view.
    let cleaned = zookeeper(As::Root, &["--cleanup"])
        .env("ZOOKEEPER_SUBUID_FILE", &subuid)
        .env("ZOOKEEPER_SUBGID_FILE", &subuid)
        .output()
        .unwrap();
    assert!(cleaned.status.success(), "{}", stderr(&cleaned));
    assert!(!survived, "the container's process {child} outlived its killed zookeeper");
}

/// A small rootfs of its own at `dir`: busybox, /dev, and the marker file.
fn mini_rootfs(dir: &Path) {
    for sub in ["bin", "dev", "proc"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::copy(fixture().rootfs.join("bin/busybox"), dir.join("bin/busybox")).unwrap();
    std::fs::write(dir.join("zoo-rootfs-marker"), "inside\n").unwrap();
}

/// Item 4: the rootfs is checked and bound by descriptor. A path that is
/// swapped, over and over, between a rootfs and a symlink to `/` (as a user
/// who controls a path component could) either runs in the rootfs or is
/// refused: never on the host's `/`.
#[test]
fn a_rootfs_swapped_for_the_hosts_root_never_runs_there() {
    let base = fixture().dir.join("swap");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir(&base).unwrap();
    let current = base.join("current");
    mini_rootfs(&current);
    let other = base.join("other");
    std::os::unix::fs::symlink("/", &other).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, current, other) = (stop.clone(), current.clone(), other.clone());
        std::thread::spawn(move || {
            let c = std::ffi::CString::new(current.as_os_str().as_encoded_bytes()).unwrap();
            let o = std::ffi::CString::new(other.as_os_str().as_encoded_bytes()).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: two NUL-terminated paths; an atomic exchange of the two names.
                unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        c.as_ptr(),
                        libc::AT_FDCWD,
                        o.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
            }
        })
    };
    let (mut inside, mut refused) = (0, 0);
    let mut on_host = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while inside + refused < 300 && Instant::now() < deadline {
        let out = zookeeper(
            As::Root,
            &["-r", current.to_str().unwrap(), "/bin/busybox", "cat", "/zoo-rootfs-marker"],
        )
        .output()
        .unwrap();
        match out.status.code() {
            Some(0) if stdout(&out) == "inside\n" => inside += 1,
            Some(125) => {
                assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
                refused += 1
            }
            _ => on_host.push(format!("{:?} {} {}", out.status, stdout(&out), stderr(&out))),
        }
        if on_host.len() > 3 {
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(on_host.is_empty(), "ran outside the rootfs ({inside} inside, {refused} refused): {on_host:?}");
    assert!(inside > 0 && refused > 0, "the swap never raced ({inside} inside, {refused} refused)");
}

/// Item 4: a rootfs that someone else could change is refused, as ssh
/// refuses such files: under another user's directory, or writable by
/// others. As root (whose container may be host root) and as a user.
#[test]
fn a_rootfs_that_another_user_can_change_is_refused() {
    let base = fixture().dir.join("others");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir(&base).unwrap();
    // Under a directory that zoonorange owns: zoonorange could rename it.
    let theirs = base.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    let (uid, gid) = ids_of(NORANGE_USER);
    std::os::unix::fs::chown(&theirs, Some(uid), Some(gid)).unwrap();
    mini_rootfs(&theirs.join("rootfs"));
    // Writable by everyone.
    let open_to_all = base.join("open");
    mini_rootfs(&open_to_all);
    std::fs::set_permissions(&open_to_all, std::fs::Permissions::from_mode(0o777)).unwrap();
    // Owned by the other user itself.
    let owned = base.join("owned");
    mini_rootfs(&owned);
    std::os::unix::fs::chown(&owned, Some(uid), Some(gid)).unwrap();
    for who in [As::Root, USER] {
        for (rootfs, needle) in [
            (theirs.join("rootfs"), "belongs to uid"),
            (open_to_all.clone(), "writable by others"),
            (owned.clone(), "belongs to uid"),
        ] {
            let out =
                zookeeper(who, &["-r", rootfs.to_str().unwrap(), "/bin/busybox", "true"]).output().unwrap();
            fails_with(&out, 125, needle);
        }
    }
    // The sticky /tmp above the fixture's rootfs is fine, and so is root's
    // rootfs for a user.
    ok(run_in_rootfs(USER, &["true"]));
}

/// Runs `args` as `who`, failing the test (not hanging it) after 20 s.
fn run_bounded(who: As, args: &[&str]) -> Output {
    let mut child = zookeeper(who, args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("zookeeper {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Item 5: with a network, zookeeper reads the rootfs's /etc/resolv.conf.
/// A FIFO there must not hang the start, a link to a device must not be
/// read, a huge file is read only so far, and a symlink (as systemd
/// images have) resolves inside the container's root.
#[test]
fn a_hostile_resolv_conf_neither_hangs_nor_leads_out() {
    let base = fixture().dir.join("resolv");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir(&base).unwrap();
    let make = |name: &str, plant: &dyn Fn(&Path)| -> PathBuf {
        let dir = base.join(name);
        mini_rootfs(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::create_dir_all(dir.join("run")).unwrap();
        plant(&dir.join("etc/resolv.conf"));
        let mut chmod = Command::new("chmod");
        assert!(chmod.args(["-R", "a+rX"]).arg(&dir).status().unwrap().success());
        dir
    };
    let fifo =
        make("fifo", &|p| nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap());
    let device = make("device", &|p| std::os::unix::fs::symlink("/dev/zero", p).unwrap());
    // A reachable server only past what zookeeper reads: read whole, the
    // file would keep its own; read as far as the bound, it gets ours.
    let huge = make("huge", &|p| {
        let mut text = "# padding\n".repeat(200_000);
        text.push_str("nameserver 192.0.2.53\n");
        std::fs::write(p, text).unwrap();
    });
    let relative = make("relative", &|p| {
        std::fs::write(
            p.parent().unwrap().parent().unwrap().join("run/stub.conf"),
            "nameserver 127.0.0.53\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("../run/stub.conf", p).unwrap();
    });
    // Absolute: the container's /run, not the host's.
    let absolute = make("absolute", &|p| {
        std::fs::write(p.parent().unwrap().parent().unwrap().join("run/abs.conf"), "nameserver ::1\n")
            .unwrap();
        std::os::unix::fs::symlink("/run/abs.conf", p).unwrap();
    });
    for who in [USER, As::Root] {
        for (rootfs, expected) in [
            (&fifo, None),
            (&device, None),
            (&huge, Some("nameserver 10.0.2.3\n")),
            (&relative, Some("nameserver 10.0.2.3\n")),
            (&absolute, Some("nameserver 10.0.2.3\n")),
        ] {
            let script = "if [ -f /etc/resolv.conf ]; then /bin/busybox head -c 40 /etc/resolv.conf; else echo not-a-file; fi";
            let out =
                run_bounded(who, &["-n", "-r", rootfs.to_str().unwrap(), "/bin/busybox", "sh", "-c", script]);
            let text = ok(out);
            match expected {
                Some(expected) => assert_eq!(text, expected, "{who:?} {}", rootfs.display()),
                None => assert_eq!(text, "not-a-file\n", "{who:?} {}", rootfs.display()),
            }
        }
    }
    // The relative link's target is the one bound over, inside the root.
    let out = ok(run_bounded(
        USER,
        &["-n", "-r", relative.to_str().unwrap(), "/bin/busybox", "cat", "/run/stub.conf"],
    ));
    assert_eq!(out, "nameserver 10.0.2.3\n");
}

/// Item 8: the default root shows the host's /etc, but not its secrets,
/// even to a container whose root is host root.
#[test]
fn the_default_root_hides_the_hosts_secrets() {
    let secrets = ["/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/security/opasswd"];
    let present: Vec<&str> = secrets.iter().copied().filter(|p| Path::new(p).exists()).collect();
    assert!(present.contains(&"/etc/shadow"), "this host has no /etc/shadow to protect");
    for who in [As::Root, USER] {
        let mut args = vec!["cat"];
        args.extend(&present);
        let out = zookeeper(who, &args).output().unwrap();
        assert!(stdout(&out).is_empty(), "{who:?} read the host's secrets: {}", stdout(&out));
        if Path::new("/etc/ssl/private").is_dir() {
            let out = zookeeper(who, &["ls", "-A", "/etc/ssl/private"]).output().unwrap();
            assert!(stdout(&out).is_empty(), "{who:?}: /etc/ssl/private shows {}", stdout(&out));
        }
    }
    // The rest of /etc is there.
    assert!(ok(zookeeper(As::Root, &["cat", "/etc/passwd"]).output().unwrap()).contains("root:"));
}
