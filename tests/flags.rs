//! The run flags (issue 14), each shown from inside a container, rootless
//! and as root: what the mount table, id, pwd, /proc/self/status and the
//! limits say; and bad input, one line and status 125, nothing left behind.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const USER: As = As::User(RANGED_USER);
const WHO: [As; 2] = [USER, As::Root];

/// One test at a time: the one that checks nothing is left in /tmp counts
/// the others' directories too.
fn turn() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// A host directory `who` may read, with one file in it.
fn host_dir(name: &str, who: As) -> PathBuf {
    let dir = fixture().dir.join(format!("flags-{name}-{}", matches!(who, As::Root)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("file"), "from the host\n").unwrap();
    if let As::User(user) = who {
        let (uid, gid) = ids_of(user);
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        std::os::unix::fs::chown(dir.join("file"), Some(uid), Some(gid)).unwrap();
    }
    dir
}

fn run(who: As, rootfs: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["-r", rootfs.to_str().unwrap(), "-P"];
    all.extend_from_slice(args);
    zookeeper(who, &all).output().unwrap()
}

#[test]
fn volumes_bind_read_write_and_read_only() {
    let _turn = turn();
    for who in WHO {
        let dir = host_dir("volume", who);
        let spec_rw = format!("{}:/data", dir.display());
        let spec_ro = format!("{}:/ro:ro", dir.display());
        let rootfs = own_rootfs_copy("flags", "volume", who);
        let out = ok(run(
            who,
            &rootfs,
            &[
                "-v",
                &spec_rw,
                "-v",
                &spec_ro,
                "sh",
                "-c",
                "cat /data/file; echo written > /data/new; echo x > /ro/other || echo refused",
            ],
        ));
        assert_eq!(out, "from the host\nrefused\n", "{who:?}");
        assert_eq!(std::fs::read_to_string(dir.join("new")).unwrap(), "written\n", "{who:?}");
        assert!(!dir.join("other").exists());
    }
}

#[test]
fn docker_mount_and_tmpfs_flags() {
    let _turn = turn();
    for who in WHO {
        let dir = host_dir("mount", who);
        let bind = format!("type=bind,source={},target=/m,readonly", dir.display());
        let rootfs = own_rootfs_copy("flags", "mount", who);
        let out = ok(run(
            who,
            &rootfs,
            &[
                "--mount",
                &bind,
                "--mount",
                "type=tmpfs,target=/t1,tmpfs-size=1048576,tmpfs-mode=1770",
                "--tmpfs",
                "/t2:size=2m,mode=700,exec",
                "sh",
                "-c",
                "cat /m/file; grep -E ' /(m|t1|t2) ' /proc/self/mounts | cut -d' ' -f2-4 | sort",
            ],
        ));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "from the host", "{who:?}");
        assert!(lines[1].starts_with("/m ") && lines[1].contains(" ro,"), "{out}");
        assert!(lines[2].starts_with("/t1 tmpfs rw,nosuid,nodev,noexec"), "{out}");
        assert!(lines[2].contains("size=1024k") && lines[2].contains("mode=1770"), "{out}");
        assert!(lines[3].starts_with("/t2 tmpfs rw,nosuid,nodev,") && !lines[3].contains("noexec"), "{out}");
        assert!(lines[3].contains("size=2048k") && lines[3].contains("mode=700"), "{out}");
    }
}

#[test]
fn a_missing_workdir_is_made_even_on_a_read_only_root() {
    let _turn = turn();
    for who in WHO {
        let rootfs = own_rootfs_copy("flags", "workdir-ro", who);
        let out = ok(run(
            who,
            &rootfs,
            &["--read-only", "-w", "/srv/app", "sh", "-c", "pwd; touch x || echo read-only"],
        ));
        assert_eq!(out, "/srv/app\nread-only\n", "{who:?}");
        assert!(rootfs.join("srv/app").is_dir());
    }
}

#[test]
fn read_only_root_keeps_tmp_and_run_writable() {
    let _turn = turn();
    for who in WHO {
        let rootfs = own_rootfs_copy("flags", "read-only", who);
        std::fs::create_dir(rootfs.join("run")).unwrap();
        let out = ok(run(
            who,
            &rootfs,
            &[
                "--read-only",
                "sh",
                "-c",
                "touch /x 2>/dev/null && echo root-writable; touch /tmp/a /run/b && echo tmp-and-run-writable",
            ],
        ));
        assert_eq!(out, "tmp-and-run-writable\n", "{who:?}");
    }
}

#[test]
fn user_workdir_and_hostname() {
    let _turn = turn();
    for who in WHO {
        let rootfs = own_rootfs_copy("flags", "user", who);
        std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000:web:/home/web:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
    )
    .unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\nweb:x:1000:\nstaff:x:50:web\naudio:x:29:web\n")
            .unwrap();
        let out = ok(run(
            who,
            &rootfs,
            &[
                "-u",
                "web",
                "-w",
                "/srv/app",
                "--hostname",
                "box",
                "sh",
                "-c",
                "id; pwd; hostname; echo $HOME",
            ],
        ));
        assert_eq!(
            out, "uid=1000(web) gid=1000(web) groups=29(audio),50(staff)\n/srv/app\nbox\n/home/web\n",
            "{who:?}"
        );
        let out = ok(run(
            who,
            &rootfs,
            &["-u", "4321:50", "-e", "HOME=/h", "sh", "-c", "id -u; id -g; echo $HOME"],
        ));
        assert_eq!(out, "4321\n50\n/h\n", "{who:?}");
        fails_with(&run(who, &rootfs, &["-u", "ghost", "true"]), 125, "no user 'ghost'");
    }
    let rootfs = own_rootfs_copy("flags", "user-norange", As::Root);
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nstaff:x:50:nobody\n").unwrap();
    // A one-id map cannot give supplementary groups: said, not dropped.
    // (Its first line is the one-id map's note.)
    let out = run(As::User(NORANGE_USER), &rootfs, &["-u", "nobody", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert!(
        err.lines().last().unwrap().contains("supplementary groups need a subordinate id range"),
        "{err}"
    );
    let out = run(As::User(NORANGE_USER), &rootfs, &["-u", "1000", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert!(err.lines().last().unwrap().contains("user 1000 is not mapped in this container"), "{err}");
}

#[test]
fn capabilities_can_be_dropped_and_added() {
    let _turn = turn();
    for who in WHO {
        let out = ok(run_in_rootfs(
            who,
            &[
                "--cap-drop",
                "ALL",
                "--cap-add",
                "NET_BIND_SERVICE",
                "--cap-add",
                "chown",
                "grep",
                "^Cap",
                "/proc/self/status",
            ],
        ));
        let expected = (1u64 << 10) | 1;
        for line in out
            .lines()
            .filter(|l| l.starts_with("CapBnd") || l.starts_with("CapEff") || l.starts_with("CapPrm"))
        {
            let value = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
            assert_eq!(value, expected, "{who:?}: {line}");
        }
        // Added beyond the default: the kernel acts on it (in the
        // container's own namespaces).
        let out = ok(run_in_rootfs(
            who,
            &["--cap-add", "SYS_ADMIN", "sh", "-c", "mount -t tmpfs t /tmp && echo mounted"],
        ));
        assert_eq!(out, "mounted\n", "{who:?}");
        let out = run_in_rootfs(who, &["sh", "-c", "mount -t tmpfs t /tmp 2>/dev/null || echo refused"]);
        assert_eq!(stdout(&out), "refused\n", "{who:?}");
    }
}

#[test]
fn security_options() {
    let _turn = turn();
    for who in WHO {
        let out = ok(run_in_rootfs(
            who,
            &["--security-opt", "seccomp=unconfined", "grep", "Seccomp:", "/proc/self/status"],
        ));
        assert_eq!(out.split_whitespace().nth(1), Some("0"), "{who:?}");
        let out = ok(run_in_rootfs(
            who,
            &[
                "--security-opt",
                "no-new-privileges=false",
                "grep",
                "-E",
                "NoNewPrivs|Seccomp:",
                "/proc/self/status",
            ],
        ));
        assert!(out.contains("NoNewPrivs:\t0") && out.contains("Seccomp:\t2"), "{who:?}: {out}");
    }
}

#[test]
fn ulimits_apply() {
    let _turn = turn();
    for who in WHO {
        let out = ok(run_in_rootfs(
            who,
            &[
                "--ulimit",
                "nofile=64:128",
                "--ulimit",
                "core=0",
                "sh",
                "-c",
                "ulimit -n; ulimit -Hn; ulimit -c",
            ],
        ));
        assert_eq!(out, "64\n128\n0\n", "{who:?}");
    }
}

#[test]
fn env_file_and_short_env() {
    let _turn = turn();
    let file = fixture().dir.join("flags.env");
    std::fs::write(&file, "# comment\nA=1\n\nB=two words\n").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    for who in WHO {
        let out = ok(run_in_rootfs(
            who,
            &["--env-file", file.to_str().unwrap(), "-e", "C=3", "sh", "-c", "echo $A/$B/$C"],
        ));
        assert_eq!(out, "1/two words/3\n", "{who:?}");
    }
}

#[test]
fn bad_flags_are_one_line_and_leave_nothing() {
    let _turn = turn();
    let before = zoo_tmp_dirs();
    let rootfs = fixture().rootfs.to_str().unwrap();
    for (args, needle) in [
        (vec!["-v", "data:/data", "true"], "not an absolute host path"),
        (vec!["-v", "/no/such/dir:/data", "true"], "opening the bind source /no/such/dir"),
        (vec!["--mount", "type=volume,target=/x", "true"], "not supported"),
        (vec!["--cap-add", "FLY", "true"], "unknown capability 'FLY'"),
        (vec!["--ulimit", "nofile=x", "true"], "'x' is not a number"),
        (vec!["-w", "relative", "true"], "not an absolute path in the container"),
        (vec!["-p", "8080:80", "true"], "to forward a port use --publish 8080:80"),
        (vec!["--mtu", "1500", "true"], "--mtu needs a network"),
        (vec!["--security-opt", "seccomp=/x.json", "true"], "seccomp=/x.json: No such file"),
        (vec!["--env-file", "/no/such/file", "true"], "--env-file /no/such/file"),
        (vec!["--dns", "dns.example", "true"], "'dns.example' is not an IP address"),
        (vec!["--add-host", "db", "true"], "expected NAME:IP"),
        (vec!["--add-host", "db:nowhere", "true"], "'nowhere' is not an IP address"),
        (vec!["--add-host", "gw:host-gateway", "true"], "host-gateway is not offered"),
        (vec!["--network", "host", "true"], "host networking is not offered"),
        (vec!["--cpus", "1.5", "true"], "for 1.5 CPUs write --cpus 150"),
        (vec!["--device", "/etc/passwd", "true"], "--device /etc/passwd: not a character or block device"),
        (vec!["--device", "/dev/nothing-here", "true"], "--device /dev/nothing-here: opening it"),
        (vec!["--device", "/dev/zero:/dev/z:r", "true"], "use rw or rwm"),
        (vec!["--device", "zero", "true"], "not an absolute host path"),
        (vec!["--cpu-percent", "0.5", "true"], "for 0.5 CPUs write --cpus 50"),
        (vec!["--memory-swap", "64M", "true"], "--memory-swap needs --memory"),
        (vec!["-m", "64M", "--memory-swap", "32M", "true"], "is less than --memory"),
    ] {
        let mut all = vec!["-r", rootfs];
        all.extend(args.iter().copied());
        for who in WHO {
            fails_with(&zookeeper(who, &all).output().unwrap(), 125, needle);
        }
    }
    assert_no_zoo_tmp_dir_left(&before, "bad flags");
}

#[test]
fn docker_habits_are_accepted() {
    let _turn = turn();
    for who in WHO {
        assert_eq!(ok(run_in_rootfs(who, &["-i", "--rm", "echo", "ok"])), "ok\n");
    }
}

/// A rootfs without /etc/hostname, /etc/hosts and /etc/resolv.conf.
fn rootfs_without_names(name: &str, who: As) -> PathBuf {
    let rootfs = own_rootfs_copy("flags", name, who);
    for file in ["hostname", "hosts", "resolv.conf"] {
        std::fs::remove_file(rootfs.join("etc").join(file)).unwrap();
    }
    rootfs
}

const NAMES: &str = "cat /etc/hostname; grep -v ip6- /etc/hosts; echo --; cat /etc/resolv.conf";

#[test]
fn names_and_dns_files_always_exist() {
    let _turn = turn();
    for who in WHO {
        // No network: the names, and a resolv.conf that names no server.
        let rootfs = rootfs_without_names("names", who);
        let out =
            ok(run(who, &rootfs, &["--hostname", "box", "--add-host", "db:10.1.2.3", "sh", "-c", NAMES]));
        assert_eq!(out, "box\n127.0.0.1\tlocalhost\n10.1.2.3\tdb\n127.0.1.1\tbox\n--\n", "{who:?}");
        // They were made as empty mount points; their contents stay in the container.
        for file in ["hostname", "hosts", "resolv.conf"] {
            assert_eq!(std::fs::read_to_string(rootfs.join("etc").join(file)).unwrap(), "", "{who:?}");
        }
        let out = ok(run(
            who,
            &rootfs,
            &["--dns", "192.0.2.53", "--dns", "2001:db8::53", "cat", "/etc/resolv.conf"],
        ));
        assert_eq!(out, "nameserver 192.0.2.53\nnameserver 2001:db8::53\n", "{who:?}");
        // slirp4netns: its address and forwarder. (No packet is sent.)
        let rootfs = rootfs_without_names("names-slirp", who);
        let out = ok(run(who, &rootfs, &["-n", "sh", "-c", NAMES]));
        assert_eq!(out, "zoo\n127.0.0.1\tlocalhost\n10.0.2.100\tzoo\n--\nnameserver 10.0.2.3\n", "{who:?}");
        // The root's search and options lines are kept under --dns.
        std::fs::write(
            rootfs.join("etc/resolv.conf"),
            "search example.org\noptions ndots:2\nnameserver 127.0.0.53\n",
        )
        .unwrap();
        let out = ok(run(who, &rootfs, &["-n", "--dns", "192.0.2.53", "cat", "/etc/resolv.conf"]));
        assert_eq!(out, "search example.org\noptions ndots:2\nnameserver 192.0.2.53\n", "{who:?}");
        // With --overlay they are made in the private layer: DIR keeps none.
        let rootfs = rootfs_without_names("names-overlay", who);
        let out = ok(run(who, &rootfs, &["--overlay", "-n", "sh", "-c", NAMES]));
        assert_eq!(out, "zoo\n127.0.0.1\tlocalhost\n10.0.2.100\tzoo\n--\nnameserver 10.0.2.3\n", "{who:?}");
        for file in ["hostname", "hosts", "resolv.conf"] {
            assert!(!rootfs.join("etc").join(file).exists(), "{who:?}: {file}");
        }
    }
    // A rootfs container root may not write (root's, run rootless) that
    // lacks them: the container goes without, as before.
    let rootfs = rootfs_without_names("names-unwritable", As::Root);
    let out = ok(run(USER, &rootfs, &["sh", "-c", "ls /etc/hosts 2>&1 | grep -c 'No such'"]));
    assert_eq!(out, "1\n");
}

/// A names file the container's own mounts name (`-v FILE:/etc/hosts`;
/// containerd's CRI plugin binds a pod's) is that mount's: zookeeper binds
/// its own only over the others.
#[test]
fn a_names_file_bound_by_the_user_is_left_to_that_mount() {
    let _turn = turn();
    for who in WHO {
        let rootfs = rootfs_without_names("names-bound", who);
        let mine = rootfs.with_file_name("names-bound-hosts");
        std::fs::write(&mine, "192.0.2.1\tmine\n").unwrap();
        if let As::User(user) = who {
            let (uid, gid) = ids_of(user);
            std::os::unix::fs::chown(&mine, Some(uid), Some(gid)).unwrap();
        }
        let volume = format!("{}:/etc/hosts:ro", mine.display());
        let out = ok(run(who, &rootfs, &["--hostname", "box", "-v", &volume, "sh", "-c", NAMES]));
        assert_eq!(out, "box\n192.0.2.1\tmine\n--\n", "{who:?}");
    }
}

#[test]
fn pasta_gets_a_dns_forwarder() {
    let _turn = turn();
    for who in WHO {
        let rootfs = rootfs_without_names("names-pasta", who);
        let mut child = zookeeper(
            who,
            &[
                "-r",
                rootfs.to_str().unwrap(),
                "--network",
                "pasta",
                "--stop-timeout",
                "0",
                "sh",
                "-c",
                "cat /etc/resolv.conf; exec sleep 5",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line)
            .unwrap();
        assert_eq!(line, "nameserver 169.254.1.1\n", "{who:?}");
        // pasta was told to forward that address's DNS to the host's resolver.
        let container = children_of(child.id());
        let pasta = std::fs::read_dir("/proc").unwrap().flatten().find_map(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let ours = args.first().is_some_and(|a| a.ends_with("pasta"))
                && args.last().is_some_and(|a| container.iter().any(|pid| a == &pid.to_string()));
            ours.then_some(args)
        });
        let pasta = pasta.expect("pasta is running for the container");
        assert!(pasta.windows(2).any(|w| w == ["--dns-forward", "169.254.1.1"]), "{who:?}: {pasta:?}");
        let _ =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGTERM);
        child.wait().unwrap();
    }
}

#[test]
fn sysctls_of_the_containers_own_namespaces() {
    let _turn = turn();
    let host = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    for who in WHO {
        let out = ok(run_in_rootfs(
            who,
            &[
                "--sysctl",
                "net.ipv4.ip_unprivileged_port_start=80",
                "--sysctl",
                "kernel.shmmni=77",
                "sh",
                "-c",
                "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni",
            ],
        ));
        assert_eq!(out, "80\n77\n", "{who:?}");
        // The host's own value is untouched.
        assert_eq!(std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(), host);
        let out = run_in_rootfs(who, &["--sysctl", "kernel.panic=1", "true"]);
        fails_with(
            &out,
            125,
            "sysctl kernel.panic: not a parameter of a namespace the container has of its own",
        );
    }
}

#[test]
fn a_seccomp_profile_file_replaces_the_built_in_filter() {
    let _turn = turn();
    let dir = fixture().dir.join("flags-seccomp");
    let _ = std::fs::create_dir(&dir);
    let profile = dir.join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
            "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
    )
    .unwrap();
    let docker = dir.join("docker.json");
    std::fs::write(&docker, r#"{"defaultAction":"SCMP_ACT_ERRNO","archMap":[],"syscalls":[]}"#).unwrap();
    for path in [&profile, &docker] {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    }
    let opt = format!("seccomp={}", profile.display());
    for who in WHO {
        let out = ok(run_in_rootfs(
            who,
            &[
                "--security-opt",
                &opt,
                "sh",
                "-c",
                "mkdir /tmp/d 2>&1 | grep -c 'Permission denied'; touch /tmp/f && echo touched",
            ],
        ));
        assert_eq!(out, "1\ntouched\n", "{who:?}");
        let docker_opt = format!("seccomp={}", docker.display());
        fails_with(
            &run_in_rootfs(who, &["--security-opt", &docker_opt, "true"]),
            125,
            "docker's profile format",
        );
        fails_with(
            &run_in_rootfs(who, &["--security-opt", "seccomp=/no/such.json", "true"]),
            125,
            "seccomp=/no/such.json",
        );
    }
}

#[test]
fn allow_setid_lets_a_package_manager_make_set_id_files_where_root_is_not_host_root() {
    let _turn = turn();
    let rootfs = own_rootfs_copy("flags", "setid", USER);
    let script = "touch /tmp/prog && chmod 4755 /tmp/prog && echo made";
    // The strict default refuses, as before.
    let out = run(USER, &rootfs, &["sh", "-c", script]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let out = ok(run(USER, &rootfs, &["--security-opt", "allow-setid", "sh", "-c", script]));
    assert_eq!(out, "made\n");
    let mode = std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(rootfs.join("tmp/prog")).unwrap());
    assert_eq!(mode & 0o7777, 0o4755);
    std::fs::remove_file(rootfs.join("tmp/prog")).unwrap();
    // Root without a range: container root is host root; refused.
    let rootfs = own_rootfs_copy("flags", "setid", As::Root);
    let out = run(As::Root, &rootfs, &["--security-opt", "allow-setid", "true"]);
    fails_with(&out, 125, "container root is host root here");
}

#[test]
fn devices_are_bound_under_their_names() {
    let _turn = turn();
    for who in WHO {
        let rootfs = own_rootfs_copy("flags", "device", who);
        let out = ok(run(
            who,
            &rootfs,
            &[
                "--device",
                "/dev/zero:/dev/myzero",
                "--device",
                "/dev/null:/dev/sink:rwm",
                "--device",
                "/dev/full:/opt/full:rw",
                "sh",
                "-c",
                "head -c 4 /dev/myzero | od -An -tx1; echo data > /dev/sink && echo wrote; \
                 echo x 2>/dev/null > /opt/full || echo full; \
                 ls -l /dev/myzero /opt/full | cut -c1; \
                 grep -E ' /(dev/myzero|dev/sink|opt/full) ' /proc/self/mountinfo | cut -d' ' -f5,6 | cut -d, -f1; \
                 chmod 600 /dev/myzero 2>/dev/null || echo chmod-refused",
            ],
        ));
        assert_eq!(
            out,
            " 00 00 00 00\nwrote\nfull\nc\nc\n/dev/myzero ro\n/dev/sink ro\n/opt/full ro\nchmod-refused\n",
            "{who:?}"
        );
    }
}

#[test]
fn userns_keep_id_keeps_the_callers_own_ids() {
    let _turn = turn();
    let (uid, gid) = ids_of(RANGED_USER);
    let rootfs = own_rootfs_copy("flags", "keep-id", USER);
    let out = ok(run(USER, &rootfs, &["--userns", "keep-id", "sh", "-c", "id -u; id -g; touch /tmp/mine"]));
    assert_eq!(out, format!("{uid}\n{gid}\n"));
    // What it writes is the caller's own on the host.
    let meta = std::fs::metadata(rootfs.join("tmp/mine")).unwrap();
    assert_eq!(
        (std::os::unix::fs::MetadataExt::uid(&meta), std::os::unix::fs::MetadataExt::gid(&meta)),
        (uid, gid)
    );
    // Container root is a subordinate id, not the caller.
    let out = ok(run(USER, &rootfs, &["--userns", "keep-id", "-u", "0", "cat", "/proc/self/uid_map"]));
    let first = parse_map(&out)[0];
    assert_eq!(first.0, 0);
    assert_ne!(first.1, uid, "{out}");
    fails_with(
        &run(As::Root, &fixture().rootfs, &["--userns", "keep-id", "true"]),
        125,
        "--userns keep-id is for a user",
    );
    fails_with(
        &run(As::User(NORANGE_USER), &fixture().rootfs, &["--userns", "keep-id", "true"]),
        125,
        "needs a subordinate range",
    );
    fails_with(
        &run(USER, &fixture().rootfs, &["--userns", "host", "true"]),
        125,
        "--userns host is not offered",
    );
}
