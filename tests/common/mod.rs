//! The integration tests' harness: runs the real zookeeper binary, as root or
//! as the unprivileged test users that scripts/setup.sh creates, in a busybox
//! rootfs built here.
#![allow(dead_code)] // each test binary uses a different part of it

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The user with a subordinate id range (scripts/setup.sh).
pub const RANGED_USER: &str = "zootest";
/// The user without one.
pub const NORANGE_USER: &str = "zoonorange";

/// Who runs zookeeper in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    Root,
    User(&'static str),
}

pub struct Fixture {
    /// A world-readable directory holding a copy of the binary, so that the
    /// test users can run it wherever the checkout lives (CI's may be under
    /// /root, which they cannot enter).
    pub dir: PathBuf,
    pub zookeeper: PathBuf,
    pub rootfs: PathBuf,
}

/// Built once per test binary; test binaries run one after the other.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

fn build_fixture() -> Fixture {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the integration tests run as root (they switch to the test users themselves); \
         run scripts/test.sh, or scripts/setup.sh and then cargo test as root"
    );
    for user in [RANGED_USER, NORANGE_USER] {
        assert!(
            nix::unistd::User::from_name(user).unwrap().is_some(),
            "test user {user} is missing: run scripts/setup.sh as root first"
        );
    }
    let name =
        Path::new(&std::env::args().next().unwrap()).file_name().unwrap().to_string_lossy().into_owned();
    // Two checkouts (git worktrees) build test binaries of the same name:
    // the checkout's path keeps their fixtures apart.
    let checkout = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        env!("CARGO_MANIFEST_DIR").hash(&mut hasher);
        hasher.finish() & 0xffff_ffff
    };
    let dir = PathBuf::from(format!("/tmp/zookeeper-fixture-{name}-{checkout:08x}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    chmod(&dir, 0o755);
    let zookeeper = dir.join("zookeeper");
    std::fs::copy(env!("CARGO_BIN_EXE_zookeeper"), &zookeeper).unwrap();
    chmod(&zookeeper, 0o755);
    let rootfs = dir.join("rootfs");
    build_busybox_rootfs(&rootfs);
    Fixture { dir, zookeeper, rootfs }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A minimal rootfs: busybox-static with a link per applet, the probe
/// program, and the files `id` and `sh` expect.
fn build_busybox_rootfs(rootfs: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(busybox.exists(), "busybox-static is missing: run scripts/setup.sh as root first");
    for sub in ["bin", "etc", "proc", "dev", "tmp", "root", "sys", "usr/bin"] {
        std::fs::create_dir_all(rootfs.join(sub)).unwrap();
    }
    chmod(&rootfs.join("tmp"), 0o1777);
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    let list = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    std::fs::write(rootfs.join("etc/not-executable"), "plain data\n").unwrap();
    // Empty, as in many images: zookeeper binds its own over them.
    for name in ["resolv.conf", "hosts", "hostname"] {
        std::fs::write(rootfs.join("etc").join(name), "").unwrap();
    }
    std::fs::write(rootfs.join("zoo-rootfs-marker"), "inside\n").unwrap();

    let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probe");
    let status = Command::new("cc")
        .args(["-static", "-O2", "-Wall", "-Werror", "-o"])
        .arg(rootfs.join("bin/zoo-probe"))
        .arg(probe.join("zoo-probe.c"))
        .arg(probe.join("escape.c"))
        .arg(probe.join("attack.c"))
        .status()
        .expect("running cc (gcc and libc6-dev: run scripts/setup.sh)");
    assert!(status.success(), "building the probe program failed");
    let mut chmod_all = Command::new("chmod");
    assert!(chmod_all.args(["-R", "a+rX"]).arg(rootfs).status().unwrap().success());
}

/// A zookeeper invocation, run as `who`.
pub fn zookeeper(who: As, args: &[&str]) -> Command {
    let fx = fixture();
    let mut command = match who {
        As::Root => Command::new(&fx.zookeeper),
        As::User(user) => {
            let mut c = Command::new("/usr/bin/setpriv");
            c.args([&format!("--reuid={user}"), &format!("--regid={user}"), "--init-groups", "--"]);
            c.arg(&fx.zookeeper);
            c
        }
    };
    command.args(args);
    command.current_dir(&fx.dir).env_clear().env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
    // The test users' keepers (src/keeper.rs) leave two minutes after the
    // suite's last container, not ten.
    command.env("ZOOKEEPER_KEEPER_IDLE", "120");
    command.stdin(Stdio::null());
    command
}

/// Runs zookeeper with the busybox rootfs and a fresh /proc: `-r ROOTFS -P ARGS`.
pub fn run_in_rootfs(who: As, args: &[&str]) -> Output {
    let fx = fixture();
    let rootfs = fx.rootfs.to_str().unwrap();
    let mut all = vec!["-r", rootfs, "-P"];
    all.extend_from_slice(args);
    zookeeper(who, &all).output().unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a clean success and returns stdout.
pub fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "zookeeper failed: {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

/// Asserts zookeeper's own kind of failure: this status and exactly one
/// stderr line that starts with `zookeeper: ` and contains `needle`.
pub fn fails_with(output: &Output, code: i32, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "status {:?}, stderr: {err}", output.status);
    assert_eq!(err.lines().count(), 1, "expected one line on stderr, got: {err:?}");
    assert!(err.starts_with("zookeeper: "), "{err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

pub fn signal_of(output: &Output) -> Option<i32> {
    output.status.signal()
}

/// `user`'s (uid, gid) and its first subordinate ranges, from /etc.
pub fn ids_of(user: &str) -> (u32, u32) {
    let u = nix::unistd::User::from_name(user).unwrap().unwrap();
    (u.uid.as_raw(), u.gid.as_raw())
}

pub fn subid_range(file: &str, user: &str) -> Option<(u32, u32)> {
    std::fs::read_to_string(file).ok()?.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next()? == user).then(|| (f.next().unwrap().parse().unwrap(), f.next().unwrap().parse().unwrap()))
    })
}

/// An id map as (inside, outside, count) rows.
pub fn parse_map(text: &str) -> Vec<(u32, u32, u32)> {
    text.lines()
        .map(|l| {
            let v: Vec<u32> = l.split_whitespace().map(|n| n.parse().unwrap()).collect();
            (v[0], v[1], v[2])
        })
        .collect()
}

/// The `/tmp/zoo.*` directories on the host.
pub fn zoo_tmp_dirs() -> std::collections::BTreeSet<String> {
    std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("zoo."))
        .collect()
}

/// Every `zoo-*` cgroup on the host, in any hierarchy.
pub fn zoo_cgroups() -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if entry.file_name().to_string_lossy().starts_with("zoo-") {
                    found.insert(entry.path().display().to_string());
                }
                stack.push(entry.path());
            }
        }
    }
    found
}

/// The children of process `pid` (its main thread's), as the kernel lists them.
pub fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Asserts that no `/tmp/zoo.*` directory is there that was not in
/// `before`. Other checkouts' tests may run on this machine meanwhile, and
/// their containers' directories come and go within milliseconds: one
/// still there after two seconds was left behind.
pub fn assert_no_zoo_tmp_dir_left(before: &std::collections::BTreeSet<String>, context: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let left: Vec<String> = zoo_tmp_dirs().difference(before).cloned().collect();
        if left.is_empty() {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{context}: left behind: {left:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A copy of the fixture's rootfs that is `who`'s own, owner and group, for
/// tests that write in it (mount points, working directories; an overlay
/// copies a file up with its owner, which a rootless container must map).
/// Named `{test}-{name}-{root|user}` in the fixture's directory.
pub fn own_rootfs_copy(test: &str, name: &str, who: As) -> PathBuf {
    let tag = if who == As::Root { "root" } else { "user" };
    let dir = fixture().dir.join(format!("{test}-{name}-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    let status = Command::new("cp").arg("-a").arg(&fixture().rootfs).arg(&dir).status().unwrap();
    assert!(status.success());
    if let As::User(user) = who {
        let owner = format!("{user}:{user}");
        let status = Command::new("chown").args(["-R", &owner]).arg(&dir).status().unwrap();
        assert!(status.success());
    }
    dir
}

/// No `zoo-*` cgroup is left beyond `before`: the other tests of the same
/// binary start containers meanwhile, whose cgroups come and go, so what is
/// new must be gone within a few seconds; one that stays was left behind.
pub fn assert_no_zoo_cgroup_left(before: &std::collections::BTreeSet<String>, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let now = zoo_cgroups();
        if now.is_subset(before) {
            return;
        }
        if std::time::Instant::now() > deadline {
            let left: Vec<&String> = now.difference(before).collect();
            panic!("{what}: {left:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The config a tool writes for `who`: `runc spec` for root (no user
/// namespace), `runc spec --rootless` for a user (container root is the
/// user, alone); the command given, no terminal (stdin is /dev/null here).
pub fn config_for(who: As, args: &[&str]) -> serde_json::Value {
    use serde_json::json;
    let mut config: serde_json::Value = match who {
        As::Root => serde_json::from_str(include_str!("../data/oci/runc-spec.json")).unwrap(),
        As::User(user) => {
            let mut config: serde_json::Value =
                serde_json::from_str(include_str!("../data/oci/runc-spec-rootless.json")).unwrap();
            let (uid, gid) = ids_of(user);
            config["linux"]["uidMappings"][0]["hostID"] = json!(uid);
            config["linux"]["gidMappings"][0]["hostID"] = json!(gid);
            config
        }
    };
    config["process"]["args"] = json!(args);
    config["process"]["terminal"] = json!(false);
    config["root"]["readonly"] = json!(false);
    config
}
