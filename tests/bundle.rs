//! `zookeeper --bundle DIR`: OCI bundles run for real, rootless and as root,
//! each field checked from inside the container (docs/oci.md has the table).
//!
//! The configs start from what real tools write (tests/data/oci/: `runc
//! spec` for root, `runc spec --rootless` for a user, with the user's own
//! ids as runc writes them), with a busybox rootfs copied into the bundle.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use serde_json::{Value, json};

const USER: As = As::User(RANGED_USER);
const BOTH: [As; 2] = [USER, As::Root];

/// `sh -c SCRIPT` as a config's args.
fn sh(who: As, script: &str) -> Value {
    config_for(who, &["sh", "-c", script])
}

/// A bundle directory: config.json and a copy of the test rootfs.
fn bundle(name: &str, who: As, config: &Value) -> PathBuf {
    let fx = fixture();
    let who_name = match who {
        As::Root => "root".to_string(),
        As::User(user) => user.to_string(),
    };
    let dir = fx.dir.join("bundles").join(format!("{name}-{who_name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for up in [fx.dir.join("bundles"), dir.clone()] {
        std::fs::set_permissions(up, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let copied = std::process::Command::new("cp").arg("-a").arg(&fx.rootfs).arg(dir.join("rootfs")).status();
    assert!(copied.unwrap().success());
    // A user's bundle has the user's rootfs (root's could not have the
    // mount points and working directories it asks for made in it).
    if let As::User(user) = who {
        let owner = format!("{user}:{user}");
        let chowned =
            std::process::Command::new("chown").args(["-R", &owner]).arg(dir.join("rootfs")).status();
        assert!(chowned.unwrap().success());
    }
    write_config(&dir, config);
    dir
}

fn write_config(dir: &Path, config: &Value) {
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    // zookeeper refuses a config.json that group or others may write.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn run(who: As, dir: &Path, extra: &[&str]) -> Output {
    let dir = dir.to_str().unwrap();
    let mut args = vec!["--bundle", dir];
    args.extend_from_slice(extra);
    zookeeper(who, &args).output().unwrap()
}

/// Runs `script` in a bundle made from `who`'s config after `edit`.
fn run_script(name: &str, who: As, script: &str, edit: impl FnOnce(&mut Value, &Path)) -> Output {
    let mut config = sh(who, script);
    let dir = bundle(name, who, &config);
    edit(&mut config, &dir);
    write_config(&dir, &config);
    run(who, &dir, &[])
}

fn chown(path: &Path, who: As) {
    if let As::User(user) = who {
        let (uid, gid) = ids_of(user);
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

#[test]
fn a_tools_bundle_runs_and_exits_with_the_commands_status() {
    for who in BOTH {
        let dir = bundle("status", who, &sh(who, "echo hello; exit 7"));
        let out = run(who, &dir, &[]);
        assert_eq!(out.status.code(), Some(7), "{who:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "hello\n");
        assert_eq!(stderr(&out), "", "{who:?}");
        // runc's hostname, and its three capabilities.
        let dir = bundle("runc", who, &sh(who, "hostname; grep -E '^Cap(Eff|Bnd)' /proc/self/status"));
        assert_eq!(ok(run(who, &dir, &[])), "runc\nCapEff:\t0000000020000420\nCapBnd:\t0000000020000420\n");
    }
}

/// What `runc spec` (root) or `runc spec --rootless` (a user) writes, run
/// as `who` when runc is installed; otherwise the copy in tests/data/oci/
/// with `who`'s ids, as runc would write them.
fn runc_spec(who: As) -> Value {
    let scratch = fixture().dir.join(format!("runc-spec-{}", matches!(who, As::Root)));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    chown(&scratch, who);
    let mut command = match who {
        As::Root => std::process::Command::new("runc"),
        As::User(user) => {
            let mut c = std::process::Command::new("setpriv");
            c.args([&format!("--reuid={user}"), &format!("--regid={user}"), "--init-groups", "runc"]);
            c
        }
    };
    command.arg("spec").current_dir(&scratch);
    if who != As::Root {
        command.arg("--rootless");
    }
    match command.status() {
        Ok(status) if status.success() => {
            serde_json::from_slice(&std::fs::read(scratch.join("config.json")).unwrap()).unwrap()
        }
        _ => {
            let mut config = config_for(who, &["sh"]);
            config["process"]["terminal"] = json!(true);
            config["root"]["readonly"] = json!(true);
            config
        }
    }
}

#[test]
fn runc_specs_own_bundle_runs_unchanged() {
    use std::io::Write;
    for who in BOTH {
        let config = runc_spec(who);
        // `sh` on a terminal of its own, reading what is typed.
        assert_eq!(config["process"]["args"], json!(["sh"]));
        let dir = bundle("runc-unchanged", who, &config);
        let mut child = zookeeper(who, &["--bundle", dir.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"echo in-$(hostname) as $(id -u); exit 3\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{who:?}: {}", stderr(&out));
        assert!(stdout(&out).contains("in-runc as 0\r\n"), "{who:?}: {:?}", stdout(&out));
    }
}

#[test]
fn hostname_and_cwd() {
    for who in BOTH {
        let out = run_script("hostname", who, "hostname; pwd", |config, _| {
            config["hostname"] = json!("bundled");
            config["process"]["cwd"] = json!("/srv/work");
        });
        assert_eq!(ok(out), "bundled\n/srv/work\n", "{who:?}");
    }
}

#[test]
fn read_only_and_read_write_binds() {
    for who in BOTH {
        let script = "cat /data/ro/file; echo new > /data/ro/file 2>/dev/null || echo ro-refused; \
                      cat /data/rw/file; echo written > /data/rw/file && echo rw-ok";
        let mut host_dirs = Vec::new();
        let out = run_script("binds", who, script, |config, dir| {
            for (name, text) in [("data-ro", "read only\n"), ("data-rw", "read write\n")] {
                let path = dir.join(name);
                std::fs::create_dir(&path).unwrap();
                std::fs::write(path.join("file"), text).unwrap();
                chown(&path, who);
                chown(&path.join("file"), who);
                host_dirs.push(path);
            }
            let mounts = config["mounts"].as_array_mut().unwrap();
            // Sources relative to the bundle, as runc takes them.
            mounts.push(json!({"destination": "/data/ro", "type": "bind", "source": "data-ro", "options": ["rbind", "ro", "nosuid", "nodev"]}));
            mounts.push(json!({"destination": "/data/rw", "source": "data-rw", "options": ["bind", "rw"]}));
        });
        assert_eq!(ok(out), "read only\nro-refused\nread write\nrw-ok\n", "{who:?}");
        assert_eq!(std::fs::read_to_string(host_dirs[0].join("file")).unwrap(), "read only\n");
        assert_eq!(std::fs::read_to_string(host_dirs[1].join("file")).unwrap(), "written\n");
    }
}

#[test]
fn a_tmpfs_with_size_and_mode() {
    for who in BOTH {
        let script = "stat -c %a /scratch; df -k /scratch | tail -1 | awk '{print $2}'; \
                      dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>/dev/null || echo full";
        let out = run_script("tmpfs", who, script, |config, _| {
            let mounts = config["mounts"].as_array_mut().unwrap();
            mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "size=1m", "mode=1777"]}));
        });
        assert_eq!(ok(out), "1777\n1024\nfull\n", "{who:?}");
    }
}

#[test]
fn a_user_with_supplementary_groups() {
    for who in BOTH {
        let out = run_script(
            "user",
            who,
            "id -u; id -g; id -G; touch /tmp/mine && stat -c '%u %g' /tmp/mine",
            |config, _| {
                config["process"]["user"] =
                    json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 63});
                if let As::User(user) = who {
                    // The user's whole map, given explicitly (newuidmap and
                    // newgidmap grant it): runc's one-id map has no uid 1000.
                    let (uid, gid) = ids_of(user);
                    for (key, own, file) in
                        [("uidMappings", uid, "/etc/subuid"), ("gidMappings", gid, "/etc/subgid")]
                    {
                        let (start, count) = subid_range(file, user).unwrap();
                        config["linux"][key] = json!([
                            {"containerID": 0, "hostID": own, "size": 1},
                            {"containerID": 1, "hostID": start, "size": count}
                        ]);
                    }
                }
            },
        );
        assert_eq!(ok(out), "1000\n1000\n1000 10 20\n1000 1000\n", "{who:?}");
    }
}

#[test]
fn rlimits_and_umask() {
    for who in BOTH {
        let out = run_script("rlimits", who, "ulimit -n; ulimit -Hn; umask", |config, _| {
            config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]);
            config["process"]["user"]["umask"] = json!(0o027);
        });
        assert_eq!(ok(out), "123\n456\n0027\n", "{who:?}");
    }
}

#[test]
fn a_reduced_capability_set() {
    for who in BOTH {
        let out = run_script("caps", who, "grep -E '^Cap' /proc/self/status", |config, _| {
            config["process"]["capabilities"] = json!({
                "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID"],
                "permitted": ["CAP_CHOWN", "CAP_KILL"],
                "effective": ["CAP_CHOWN"],
                "inheritable": ["CAP_KILL"],
                "ambient": ["CAP_KILL"]
            });
        });
        // CHOWN 0, KILL 5, SETUID 7.
        assert_eq!(
            ok(out),
            "CapInh:\t0000000000000020\nCapPrm:\t0000000000000021\nCapEff:\t0000000000000021\n\
             CapBnd:\t00000000000000a1\nCapAmb:\t0000000000000020\n",
            "{who:?}"
        );
    }
}

#[test]
fn masked_and_read_only_paths() {
    for who in BOTH {
        let script = "cat /etc/secret; ls /srv/hidden; echo x > /srv/frozen/new 2>/dev/null || echo frozen; \
                      echo x > /srv/open/new && echo open; cat /proc/kcore 2>/dev/null | wc -c";
        let out = run_script("paths", who, script, |_config, dir| {
            let rootfs = dir.join("rootfs");
            std::fs::write(rootfs.join("etc/secret"), "do not show\n").unwrap();
            for sub in ["srv/hidden", "srv/frozen", "srv/open"] {
                std::fs::create_dir_all(rootfs.join(sub)).unwrap();
                chown(&rootfs.join(sub), who);
            }
            std::fs::write(rootfs.join("srv/hidden/inside"), "").unwrap();
        });
        // Without the fields: nothing of these is masked.
        assert!(ok(out).starts_with("do not show\ninside\n"), "{who:?}");
        let out = run_script("paths", who, script, |config, dir| {
            let rootfs = dir.join("rootfs");
            std::fs::write(rootfs.join("etc/secret"), "do not show\n").unwrap();
            for sub in ["srv/hidden", "srv/frozen", "srv/open"] {
                std::fs::create_dir_all(rootfs.join(sub)).unwrap();
                chown(&rootfs.join(sub), who);
            }
            std::fs::write(rootfs.join("srv/hidden/inside"), "").unwrap();
            config["linux"]["maskedPaths"] = json!(["/etc/secret", "/srv/hidden", "/proc/kcore"]);
            config["linux"]["readonlyPaths"] = json!(["/srv/frozen", "/proc/sys"]);
        });
        assert_eq!(ok(out), "frozen\nopen\n0\n", "{who:?}");
    }
}

#[test]
fn a_read_only_root() {
    for who in BOTH {
        let out = run_script("readonly", who, "touch /new 2>&1 || echo refused", |config, _| {
            config["root"]["readonly"] = json!(true);
        });
        let out = ok(out);
        assert!(out.contains("Read-only file system") && out.ends_with("refused\n"), "{who:?}: {out}");
    }
}

#[test]
fn an_oci_seccomp_profile_that_denies_one_call() {
    for who in BOTH {
        let script =
            "grep Seccomp: /proc/self/status; mkdir /tmp/d 2>&1 || echo denied; touch /tmp/f && echo touched";
        let out = run_script("seccomp", who, script, |config, _| {
            config["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
            });
        });
        let out = ok(out);
        assert!(out.starts_with("Seccomp:\t2\n"), "{who:?}: {out}");
        assert!(
            out.contains("Operation not permitted") && out.ends_with("denied\ntouched\n"),
            "{who:?}: {out}"
        );
        // Without linux.seccomp, as under runc: no filter at all.
        let out = run_script("no-seccomp", who, "grep Seccomp: /proc/self/status", |_, _| {});
        assert_eq!(ok(out), "Seccomp:\t0\n", "{who:?}");
    }
}

#[test]
fn sysctl_in_the_containers_own_namespaces() {
    // runc's config for root has a network namespace; its rootless one shares the host's.
    let out = run_script(
        "sysctl",
        As::Root,
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
        |config, _| {
            config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1000"});
        },
    );
    assert_eq!(ok(out), "1\n1000\n");
    let out = run_script("sysctl", USER, "cat /proc/sys/kernel/shmmni", |config, _| {
        config["linux"]["sysctl"] = json!({"kernel.shmmni": "1001"});
    });
    assert_eq!(ok(out), "1001\n");
}

#[test]
fn namespaces_the_config_leaves_out_are_the_hosts() {
    let host_ns = |kind: &str| std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
    // Root, runc's config: no user or cgroup namespace, as under runc.
    let out = run_script(
        "no-userns",
        As::Root,
        "for ns in user cgroup net; do readlink /proc/self/ns/$ns; done; cat /proc/self/uid_map",
        |_, _| {},
    );
    let lines: Vec<String> = ok(out).lines().map(str::to_owned).collect();
    assert_eq!(PathBuf::from(&lines[0]), host_ns("user"));
    assert_eq!(PathBuf::from(&lines[1]), host_ns("cgroup"));
    assert_ne!(PathBuf::from(&lines[2]), host_ns("net"));
    assert_eq!(lines[3].split_whitespace().collect::<Vec<_>>(), ["0", "0", "4294967295"]);
    // A user, runc's rootless config: a user namespace with the user alone
    // mapped, and the host's network namespace.
    let out = run_script(
        "rootless-ns",
        USER,
        "for ns in user net; do readlink /proc/self/ns/$ns; done; cat /proc/self/uid_map",
        |_, _| {},
    );
    let lines: Vec<String> = ok(out).lines().map(str::to_owned).collect();
    assert_ne!(PathBuf::from(&lines[0]), host_ns("user"));
    assert_eq!(PathBuf::from(&lines[1]), host_ns("net"));
    let (uid, _) = ids_of(RANGED_USER);
    assert_eq!(parse_map(&lines[2..].join("\n")), [(0, uid, 1)]);
}

/// A namespace of `kind` (`net`, `cgroup`) made by `unshare FLAG` and held
/// by a sleeping process, the holder, and the path to join it by and what
/// that path names. (The caller kills and waits for the holder.)
#[allow(clippy::zombie_processes)]
fn held_namespace(flag: &str, kind: &str) -> (std::process::Child, String, PathBuf) {
    let holder = std::process::Command::new("unshare").args([flag, "sleep", "30"]).spawn().unwrap();
    let path = format!("/proc/{}/ns/{kind}", holder.id());
    // (unshare has made it once its child execs sleep.)
    let own = std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
    loop {
        let link = std::fs::read_link(&path).unwrap();
        if link != own {
            return (holder, path, link);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn joining_a_network_namespace_by_path() {
    let (mut holder, path, wanted) = held_namespace("-n", "net");
    let out = run_script("join-net", As::Root, "readlink /proc/self/ns/net", |config, _| {
        config["linux"]["namespaces"][1]["path"] = json!(path);
    });
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(PathBuf::from(ok(out).trim()), wanted);
}

#[test]
fn joining_a_cgroup_namespace_by_path() {
    let (mut holder, path, wanted) = held_namespace("-C", "cgroup");
    let out = run_script("join-cgroup", As::Root, "readlink /proc/self/ns/cgroup", |config, _| {
        let namespaces = config["linux"]["namespaces"].as_array_mut().unwrap();
        namespaces.retain(|ns| ns["type"] != "cgroup");
        namespaces.push(json!({"type": "cgroup", "path": path}));
    });
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(PathBuf::from(ok(out).trim()), wanted);
}

#[test]
fn hooks_run_in_order_with_their_state() {
    for who in BOTH {
        let out = run_script("hooks", who, "echo command", |config, dir| {
            // The log, on the host and bound into the container for the
            // hook that runs there.
            let log_dir = dir.join("log");
            std::fs::create_dir(&log_dir).unwrap();
            chown(&log_dir, who);
            let log = log_dir.join("hooks.log");
            let host_log = log.to_str().unwrap();
            let host_hook = |point: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {point} $HOOK_ENV $(cat) >> {host_log}")], "env": ["HOOK_ENV=set"], "timeout": 10});
            config["hooks"] = json!({
                "prestart": [host_hook("prestart")],
                "createRuntime": [host_hook("createRuntime")],
                "createContainer": [host_hook("createContainer")],
                // In the container: its /bin/sh, its view of the log.
                "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo startContainer $(cat) >> /log/hooks.log"]}],
                "poststart": [host_hook("poststart")],
                "poststop": [host_hook("poststop")]
            });
            config["annotations"] = json!({"org.example.test": "hooks"});
            config["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/log", "type": "bind", "source": "log", "options": ["bind"]}));
        });
        assert_eq!(ok(out), "command\n", "{who:?}");
        let dir = fixture().dir.join("bundles").join(format!(
            "hooks-{}",
            match who {
                As::Root => "root",
                As::User(user) => user,
            }
        ));
        let log = std::fs::read_to_string(dir.join("log/hooks.log")).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        let points: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
        assert_eq!(
            points,
            ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
            "{who:?}: {log}"
        );
        for (line, status) in
            lines.iter().zip(["creating", "creating", "created", "created", "running", "stopped"])
        {
            let state: Value = serde_json::from_str(
                line.split_once('{').map(|(_, rest)| rest).map(|rest| format!("{{{rest}")).unwrap().as_str(),
            )
            .unwrap();
            assert_eq!(state["status"], json!(status), "{who:?}: {line}");
            assert_eq!(state["bundle"], json!(dir.to_str().unwrap()), "{who:?}: {line}");
            assert_eq!(state["annotations"], json!({"org.example.test": "hooks"}), "{who:?}: {line}");
            assert!(state["id"].as_str().unwrap().starts_with("zoo-"), "{who:?}: {line}");
            assert_eq!(state["pid"].is_null(), status == "stopped", "{who:?}: {line}");
        }
        assert!(lines[0].starts_with("prestart set {"), "the hook's own environment: {}", lines[0]);
    }
}

#[test]
fn refused_fields_and_bad_bundles_are_one_line_and_125() {
    for who in BOTH {
        let mut config = sh(who, "true");
        config["linux"]["cgroupsPath"] = json!("mine/../..");
        let dir = bundle("refused", who, &config);
        let out = run(who, &dir, &[]);
        fails_with(&out, 125, "config.json: linux.cgroupsPath: \"mine/../..\": '..' would leave");
        config["linux"]["cgroupsPath"] = Value::Null;
        config["linux"]["namespaces"][0]["type"] = json!("bogus");
        write_config(&dir, &config);
        fails_with(
            &run(who, &dir, &[]),
            125,
            "config.json: linux.namespaces[0].type: unknown variant `bogus`",
        );
        std::fs::write(dir.join("config.json"), "{").unwrap();
        std::fs::set_permissions(dir.join("config.json"), std::fs::Permissions::from_mode(0o644)).unwrap();
        fails_with(&run(who, &dir, &[]), 125, "config.json: EOF while parsing an object");
        fails_with(&run(who, &dir, &["sh"]), 125, "--bundle runs config.json's process.args; no command");
        std::fs::set_permissions(dir.join("config.json"), std::fs::Permissions::from_mode(0o666)).unwrap();
        fails_with(&run(who, &dir, &[]), 125, "config.json is writable by group or others (mode 0666)");
        let missing = fixture().dir.join("no-such-bundle");
        let out = run(who, &missing, &[]);
        fails_with(&out, 125, &format!("--bundle {}: no such directory", missing.display()));
        // A command that is not there: 127, as without a bundle.
        write_config(&dir, &config_for(who, &["no-such-command"]));
        assert_eq!(run(who, &dir, &[]).status.code(), Some(127), "{who:?}");
    }
}

#[test]
fn command_line_options_add_to_the_bundle() {
    for who in BOTH {
        let config = sh(who, "echo $A; hostname");
        let dir = bundle("options", who, &config);
        let out = run(who, &dir, &["--env", "A=from-the-command-line", "--init"]);
        assert_eq!(ok(out), "from-the-command-line\nrunc\n", "{who:?}");
    }
}

#[test]
fn mqueue_and_the_cgroup_file_system() {
    let host_hierarchies: Vec<String> = {
        let mut names: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    for who in BOTH {
        // runc's configs list both. A queue made in /dev/mqueue is one of
        // the container's ipc namespace; the cgroup hierarchies (this host
        // runs cgroup v1) are the host's, the container's own cgroup in
        // each, read-only; the hybrid host's cgroup2 is mounted in the
        // container's cgroup namespace.
        let script = "touch /dev/mqueue/q && head -c 6 /dev/mqueue/q && echo; \
                      grep -c ' /dev/mqueue mqueue ' /proc/mounts; \
                      ls /sys/fs/cgroup | tr '\\n' ' '; echo; \
                      grep ' /sys/fs/cgroup/unified ' /proc/mounts | cut -d' ' -f1,3; \
                      grep -E ' /sys/fs/cgroup/(memory|unified) ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1 | tr '\\n' ' '; echo; \
                      cat /sys/fs/cgroup/memory/memory.limit_in_bytes >/dev/null && echo readable; \
                      echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || echo write-refused; \
                      mkdir /sys/fs/cgroup/new 2>/dev/null || echo mkdir-refused";
        let out = run_script("mqueue-cgroup", who, script, |config, _| {
            let namespaces = config["linux"]["namespaces"].as_array_mut().unwrap();
            namespaces.push(json!({"type": "cgroup"}));
            if who != As::Root {
                // A network namespace of its own, so that the kernel gives
                // it a sysfs (which has /sys/fs/cgroup).
                namespaces.push(json!({"type": "network"}));
            }
        });
        assert_eq!(
            ok(out),
            format!(
                "QSIZE:\n1\n{} \ncgroup2 cgroup2\nro ro \nreadable\nwrite-refused\nmkdir-refused\n",
                host_hierarchies.join(" ")
            ),
            "{who:?}"
        );
    }
    // As root with a memory limit: the container's own cgroup is the one
    // bound, even from inside its cgroup namespace.
    let out =
        run_script("cgroup-own", As::Root, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes", |config, _| {
            config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "cgroup"}));
            config["linux"]["resources"]["memory"] = json!({"limit": 67108864});
        });
    assert_eq!(ok(out), "67108864\n");
}

#[test]
fn mqueue_and_cgroup_mounts_that_cannot_be() {
    // In a user namespace without an ipc namespace of its own: the kernel
    // refuses the mqueue mount.
    let mut config = sh(USER, "true");
    config["linux"]["namespaces"] =
        json!([{"type": "pid"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}]);
    let dir = bundle("mqueue-no-ipc", USER, &config);
    fails_with(
        &run(USER, &dir, &[]),
        125,
        "config.json: mounts[4]: /dev/mqueue: an mqueue mount needs the container's own ipc namespace",
    );
    // A writable cgroup file system on this cgroup v1 host: its hierarchies
    // are the host's.
    for who in BOTH {
        let mut config = sh(who, "true");
        config["mounts"][6]["options"] = json!(["nosuid", "noexec", "nodev", "rw"]);
        let dir = bundle("cgroup-rw", who, &config);
        fails_with(
            &run(who, &dir, &[]),
            125,
            "config.json: mounts[6]: /sys/fs/cgroup: rw: this host runs cgroup v1",
        );
    }
}

#[test]
fn devices_bound_rootless_made_as_root() {
    // Rootless: the host's node of that number bound, wherever the config
    // names it (mode and owner the host's, which a bind cannot change); a
    // FIFO made with the config's mode.
    let script = "stat -c '%n %t:%T %a' /dev/net/tun /dev/mytun; \
                  exec 3<>/dev/mytun && echo opened; \
                  stat -c '%F %a' /run/fifo";
    let out = run_script("devices", USER, script, |config, _| {
        config["linux"]["devices"] = json!([
            {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 0o600},
            {"path": "/dev/mytun", "type": "c", "major": 10, "minor": 200},
            {"path": "/run/fifo", "type": "p", "fileMode": 0o600}
        ]);
        // runc's rootless config has no rules; a user's may allow what it lists.
        config["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}]});
    });
    assert_eq!(ok(out), "/dev/net/tun a:c8 666\n/dev/mytun a:c8 666\nopened\nfifo 600\n");
    // As root, without a user namespace: mknod with the config's mode and
    // owner, and a device cgroup (cgroup v1) with the config's rules: the
    // allowed one opens, a listed but not allowed one does not, and a node
    // the container makes itself (given CAP_MKNOD) is refused.
    let before = zoo_cgroups();
    let script = "stat -c '%n %t:%T %a %u %g' /dev/net/tun /dev/fuse; \
                  exec 3<>/dev/net/tun && echo tun-opened; \
                  (exec 4</dev/fuse) 2>/dev/null || echo fuse-denied; \
                  mknod /tmp/loop b 7 0 2>/dev/null || echo mknod-denied; \
                  stat -c '%F %a %u' /run/fifo; \
                  sort /sys/fs/cgroup/devices/devices.list | tr '\\n' ,";
    let out = run_script("devices", As::Root, script, |config, _| {
        config["linux"]["devices"] = json!([
            {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 0o620, "gid": 5},
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666},
            {"path": "/run/fifo", "type": "p", "fileMode": 0o640, "uid": 7}
        ]);
        config["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(json!({"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rw"}));
        for set in ["bounding", "effective", "permitted"] {
            config["process"]["capabilities"][set].as_array_mut().unwrap().push(json!("CAP_MKNOD"));
        }
    });
    // The device cgroup's list: tun's rw (with mknod, as each listed node),
    // fuse's mknod, the profile's eight.
    assert_eq!(
        ok(out),
        "/dev/net/tun a:c8 620 0 5\n/dev/fuse a:e5 666 0 0\ntun-opened\nfuse-denied\nmknod-denied\nfifo 640 7\n\
         c 10:200 rwm,c 10:229 m,c 136:* rwm,c 1:3 rwm,c 1:5 rwm,c 1:7 rwm,c 1:8 rwm,c 1:9 rwm,c 5:0 rwm,c 5:2 rwm,"
    );
    assert_no_zoo_cgroup_left(&before, "the device cgroup was left behind");
}

#[test]
fn devices_that_cannot_be() {
    // A device the host does not have, in a user namespace: nothing to bind.
    let out = run_script("no-device", USER, "true", |config, _| {
        config["linux"]["devices"] = json!([{"path": "/dev/sdz", "type": "b", "major": 8, "minor": 250}]);
    });
    fails_with(
        &out,
        125,
        "config.json: linux.devices[0]: /dev/sdz: the host has no b 8:250 node under /dev to bind",
    );
    // Allowing a device the container does not get: it has only its binds.
    let out = run_script("no-device", USER, "true", |config, _| {
        config["linux"]["resources"] =
            json!({"devices": [{"allow": true, "type": "b", "major": 7, "minor": 0, "access": "rw"}]});
    });
    fails_with(&out, 125, "config.json: linux.resources.devices[0]: allowing b 7:0 rw: in a user namespace");
    // A rule cgroup v1 cannot write (root's device cgroup).
    let out = run_script("no-device", As::Root, "true", |config, _| {
        config["linux"]["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "access": "rwm"},
            {"allow": false, "type": "c", "major": 10, "minor": 200, "access": "rwm"}
        ]);
    });
    fails_with(
        &out,
        125,
        "config.json: linux.resources.devices[2]: c 10:200 rwm: cgroup v1 cannot deny part of what c 10:* rwm did",
    );
}

/// A tmpfs the test mounts on the host (made shared, so that mounts under
/// it propagate to its copies), unmounted when dropped.
struct HostMount(PathBuf);

impl HostMount {
    fn tmpfs(at: &Path, shared: bool) -> HostMount {
        std::fs::create_dir_all(at).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "mode=0755", "tmpfs"])
            .arg(at)
            .status();
        assert!(mounted.unwrap().success());
        if shared {
            assert!(
                std::process::Command::new("mount").arg("--make-shared").arg(at).status().unwrap().success()
            );
        }
        HostMount(at.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-R").arg(&self.0).status();
    }
}

#[test]
fn mount_options_propagation_and_access_times() {
    for who in BOTH {
        // Access times of the container's own file systems, and a bind that
        // asks for the host mount's own (relatime); a slave bind of a
        // shared host mount, an unbindable one.
        let script = "for m in /t/strict /t/noatime /rel; do \
                        echo $m $(grep \" $m \" /proc/mounts | cut -d' ' -f4 | tr , '\\n' | grep -E '^(noatime|relatime|nodiratime)$' | tr '\\n' ' '); \
                      done; \
                      grep -E ' /(src|unb) ' /proc/self/mountinfo | cut -d' ' -f5,7 | sed 's/:[0-9]*$//'; \
                      touch /ready; i=0; \
                      while [ ! -e /src/sub/marker ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; \
                      cat /src/sub/marker 2>/dev/null || echo not-propagated";
        let mut config = sh(who, script);
        let dir = bundle("mount-options", who, &config);
        for sub in ["unb", "rel"] {
            std::fs::create_dir(dir.join(sub)).unwrap();
            chown(&dir.join(sub), who);
        }
        let shared = HostMount::tmpfs(&dir.join("src"), true);
        config["linux"]["rootfsPropagation"] = json!("rslave");
        let mounts = config["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/t/strict", "type": "tmpfs", "source": "tmpfs", "options": ["strictatime", "nodiratime"]}));
        mounts.push(
            json!({"destination": "/t/noatime", "type": "tmpfs", "source": "tmpfs", "options": ["noatime"]}),
        );
        mounts.push(
            json!({"destination": "/src", "type": "bind", "source": "src", "options": ["rbind", "rslave"]}),
        );
        mounts.push(json!({"destination": "/unb", "type": "bind", "source": "unb", "options": ["bind", "unbindable"]}));
        mounts.push(json!({"destination": "/rel", "type": "bind", "source": "rel", "options": ["bind", "relatime", "ro"]}));
        write_config(&dir, &config);
        let child = zookeeper(who, &["--bundle", dir.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Once the container runs, a mount on the host under the shared
        // tmpfs reaches it through its slave bind.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !dir.join("rootfs/ready").exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let late = HostMount::tmpfs(&dir.join("src/sub"), false);
        std::fs::write(dir.join("src/sub/marker"), "propagated\n").unwrap();
        let out = child.wait_with_output().unwrap();
        drop((late, shared));
        assert_eq!(
            ok(out),
            "/t/strict nodiratime\n/t/noatime noatime\n/rel relatime\n/src master\n/unb unbindable\npropagated\n",
            "{who:?}"
        );
    }
}

#[test]
fn mount_options_that_cannot_be() {
    // Rootless, a bind keeps the access times of the host's mount: the
    // kernel locks them in a user namespace.
    let out = run_script("noatime-bind", USER, "true", |config, dir| {
        std::fs::create_dir(dir.join("data")).unwrap();
        config["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/data", "type": "bind", "source": "data", "options": ["bind", "noatime"]}),
        );
    });
    fails_with(&out, 125, "in a user namespace a bind keeps the access-time flags of the host's mount");
    // Rootless, a bind without rbind of a directory with a mount under it.
    let mut config = sh(USER, "true");
    let dir = bundle("bind-not-rbind", USER, &config);
    let _below = HostMount::tmpfs(&dir.join("data/below"), false);
    config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data", "type": "bind", "source": "data", "options": ["bind"]}));
    write_config(&dir, &config);
    fails_with(
        &run(USER, &dir, &[]),
        125,
        "has mounts under it, which a bind must take along in a user namespace; use rbind",
    );
    // As root without a user namespace, rshared would send the container's
    // mounts to the host.
    let out = run_script("rshared", As::Root, "true", |config, _| {
        config["linux"]["rootfsPropagation"] = json!("rshared")
    });
    fails_with(&out, 125, "config.json: linux.rootfsPropagation: \"rshared\": without a user namespace");
}

#[test]
fn without_propagation_options_a_bind_is_private() {
    let mut config = sh(As::Root, "grep ' /src ' /proc/self/mountinfo | cut -d' ' -f7");
    let dir = bundle("private-bind", As::Root, &config);
    let _shared = HostMount::tmpfs(&dir.join("src"), true);
    config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/src", "type": "bind", "source": "src", "options": ["rbind"]}));
    write_config(&dir, &config);
    assert_eq!(ok(run(As::Root, &dir, &[])), "-\n", "no optional field: private");
}

/// containerd's `ctr oci spec` (tests/data/oci/), as root: its mounts and
/// options (strictatime on /dev and /run), its device rules, no user
/// namespace.
fn ctr_config(script: &str) -> Value {
    let mut config: Value = serde_json::from_str(include_str!("data/oci/ctr-oci-spec.json")).unwrap();
    config["process"]["args"] = json!(["/bin/sh", "-c", script]);
    config
}

/// One test at a time makes cgroups at fixed paths (ctr's /default).
fn cgroup_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn ctrs_default_config_runs_unchanged() {
    let _turn = cgroup_turn();
    // Its cgroupsPath, /default, from each hierarchy's root (this cgroup v1
    // host's memory, cpu, pids and, for its device rules, devices).
    let script = "grep -E ' /(run|dev/mqueue) ' /proc/mounts | cut -d' ' -f2-4; id -u; cat /proc/self/uid_map; \
                  grep -E ':(memory|cpu|pids|devices):' /proc/self/cgroup | cut -d: -f3 | sort -u";
    let config = ctr_config(script);
    let dir = bundle("ctr", As::Root, &config);
    let out = ok(run(As::Root, &dir, &[]));
    assert_eq!(
        out,
        "/dev/mqueue mqueue rw,nosuid,nodev,noexec,relatime\n/run tmpfs rw,nosuid,size=65536k,mode=755\n0\n         0          0 4294967295\n/default\n"
    );
    for hierarchy in ["memory", "cpu", "pids", "devices"] {
        assert!(
            !Path::new("/sys/fs/cgroup").join(hierarchy).join("default").exists(),
            "{hierarchy}: left behind"
        );
    }
}

#[test]
fn domainname_in_the_containers_uts_namespace() {
    for who in BOTH {
        let out = run_script("domainname", who, "cat /proc/sys/kernel/domainname", |config, _| {
            config["domainname"] = json!("example.org");
        });
        assert_eq!(ok(out), "example.org\n", "{who:?}");
    }
    let host_domain = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    assert_ne!(host_domain, "example.org\n", "the host's is untouched");
}

/// Where zookeeper runs in a cgroup v1 hierarchy.
fn own_cgroup(hierarchy: &str) -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    text.lines().find_map(|l| l.split_once(&format!(":{hierarchy}:")).map(|(_, p)| p.to_string())).unwrap()
}

#[test]
fn cgroups_path_relative_and_absolute_as_root() {
    let _turn = cgroup_turn();
    let tag = std::process::id();
    let script = "grep -E ':memory:' /proc/self/cgroup | cut -d: -f3; \
                  cat /sys/fs/cgroup/memory/memory.limit_in_bytes";
    // Relative: under zookeeper's own cgroup in each hierarchy.
    let relative = format!("zk-bundle-{tag}/inner");
    let out = run_script("cgroups-path", As::Root, script, |config, _| {
        config["linux"]["cgroupsPath"] = json!(relative);
        config["linux"]["resources"]["memory"] = json!({"limit": 33554432});
        // Its cgroup file system shows its own cgroup: the one made there.
        config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "cgroup"}));
    });
    let memory = own_cgroup("memory");
    let within = memory.trim_matches('/');
    let made = Path::new("/sys/fs/cgroup/memory").join(within).join(format!("zk-bundle-{tag}"));
    // In its cgroup namespace, it is at the root.
    assert_eq!(ok(out), "/\n33554432\n");
    assert!(!made.exists(), "the directory it made on the way was left behind");
    // Absolute: from each hierarchy's root; the directory on the way too.
    let absolute = format!("/zk-bundle-{tag}/abs");
    let out = run_script("cgroups-path", As::Root, script, |config, _| {
        config["linux"]["cgroupsPath"] = json!(absolute);
    });
    let out = ok(out);
    assert!(out.starts_with(&format!("{absolute}\n")), "{out}");
    for hierarchy in ["memory", "cpu", "pids"] {
        let made = Path::new("/sys/fs/cgroup").join(hierarchy).join(format!("zk-bundle-{tag}"));
        assert!(!made.exists(), "{hierarchy}: left behind");
    }
    // Relative, without a cgroup namespace: the host's path shows it.
    let out = run_script(
        "cgroups-path",
        As::Root,
        "grep -E ':memory:' /proc/self/cgroup | cut -d: -f3",
        |config, _| {
            config["linux"]["cgroupsPath"] = json!(relative);
        },
    );
    let expected =
        if within.is_empty() { format!("/{relative}\n") } else { format!("/{within}/{relative}\n") };
    assert_eq!(ok(out), expected);
}

#[test]
fn cgroups_paths_that_cannot_be() {
    let _turn = cgroup_turn();
    // A cgroup already there is not zookeeper's: not entered, not removed.
    let tag = std::process::id();
    let theirs = Path::new("/sys/fs/cgroup/pids").join(format!("zk-theirs-{tag}"));
    std::fs::create_dir(&theirs).unwrap();
    let out = run_script("cgroups-theirs", As::Root, "true", |config, _| {
        config["linux"]["cgroupsPath"] = json!(format!("/zk-theirs-{tag}"));
    });
    let exists = theirs.exists();
    std::fs::remove_dir(&theirs).unwrap();
    fails_with(&out, 125, &format!("linux.cgroupsPath: {} exists already", theirs.display()));
    assert!(exists, "another's cgroup was removed");
    for hierarchy in ["memory", "cpu"] {
        let made = Path::new("/sys/fs/cgroup").join(hierarchy).join(format!("zk-theirs-{tag}"));
        assert!(!made.exists(), "{hierarchy}: what it made before failing was left behind");
    }
    // Rootless on this cgroup v1 host: no cgroup at all.
    let out = run_script("cgroups-rootless", USER, "true", |config, _| {
        config["linux"]["cgroupsPath"] = json!("mine")
    });
    fails_with(
        &out,
        125,
        "config.json: linux.cgroupsPath: a rootless container gets no cgroup on this cgroup v1 host",
    );
    // The systemd driver's form.
    let out = run_script("cgroups-systemd", As::Root, "true", |config, _| {
        config["linux"]["cgroupsPath"] = json!("system.slice:zk:test");
    });
    fails_with(&out, 125, "the systemd driver's slice:prefix:name is not supported");
}

#[test]
fn resources_beyond_limits_as_root_on_cgroup_v1() {
    let before = zoo_cgroups();
    // Read through the container's own cgroup file system (its cgroups,
    // bound read-only) and /proc.
    let script = "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes memory/memory.soft_limit_in_bytes \
                  memory/memory.memsw.limit_in_bytes cpu/cpu.shares cpuset/cpuset.cpus cpuset/cpuset.mems pids/pids.max; \
                  grep Cpus_allowed_list /proc/self/status | cut -f2";
    let out = run_script("resources", As::Root, script, |config, _| {
        config["linux"]["resources"] = json!({
            "memory": {"limit": 67108864, "reservation": 33554432, "swap": 100663296},
            "cpu": {"shares": 512, "cpus": "0", "mems": "0"},
            "pids": {"limit": 20}
        });
    });
    assert_eq!(ok(out), "67108864\n33554432\n100663296\n512\n0\n0\n20\n0\n");
    assert_no_zoo_cgroup_left(&before, "a zoo-* cgroup was left behind");
    // The block I/O weight: BFQ's file on this kernel (CFQ's is gone).
    let out = run_script("blkio", As::Root, "cat /sys/fs/cgroup/blkio/blkio.bfq.weight", |config, _| {
        config["linux"]["resources"] = json!({"blockIO": {"weight": 300}});
    });
    assert_eq!(ok(out), "300\n");
    assert_no_zoo_cgroup_left(&before, "a zoo-* cgroup was left behind");
}

#[test]
fn resources_that_cannot_be() {
    // Rootless on cgroup v1: no cgroup, so no shares.
    let out = run_script("shares", USER, "true", |config, _| {
        config["linux"]["resources"] = json!({"cpu": {"shares": 512}});
    });
    fails_with(&out, 125, "need cgroup v2 for a rootless container");
    // Swap counts memory and swap together: less than the memory is no limit.
    let out = run_script("swap", As::Root, "true", |config, _| {
        config["linux"]["resources"] = json!({"memory": {"limit": 67108864, "swap": 33554432}});
    });
    fails_with(
        &out,
        125,
        "config.json: linux.resources.memory.swap: 33554432 is below the memory limit 67108864",
    );
}

/// linux.resources.cpu's quota and period are written as they are (the
/// period was lost to a percent over 100 ms before; runtime-tools'
/// linux_cgroups_cpus found it). As root, on this host's cgroup v1.
#[test]
fn cpu_quota_and_period_are_kept() {
    let _turn = cgroup_turn();
    let script = "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us";
    let out = run_script("cpu-period", As::Root, script, |config, _| {
        config["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 500000});
    });
    assert_eq!(ok(out), "50000\n500000\n");
}

/// `memory.swappiness` reaches the container's v1 memory cgroup (runtime-tools'
/// linux_cgroups_memory, contest's cgroup_v1_memory); kernel memory limits,
/// which the kernel no longer has, are accepted and ignored, as by runc 1.1.
#[test]
fn memory_swappiness_is_written_and_kernel_memory_ignored() {
    let _turn = cgroup_turn();
    let script = "cat /sys/fs/cgroup/memory/memory.swappiness /sys/fs/cgroup/memory/memory.limit_in_bytes";
    let out = run_script("swappiness", As::Root, script, |config, _| {
        config["linux"]["resources"]["memory"] =
            json!({"limit": 67108864, "swappiness": 7, "kernel": 33554432, "kernelTCP": 16777216});
    });
    assert_eq!(ok(out), "7\n67108864\n");
}
