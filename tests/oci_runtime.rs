//! `zookeeper-oci`: the OCI runtime's verbs driven as runc's callers drive
//! them (conmon, containerd's shim, the conformance suites), for real, as
//! root and as a user with `runc spec --rootless`'s config.
//!
//! The caller of `create` is a subreaper in real life; here the container's
//! first process is orphaned to the machine's reaper instead, which is all
//! the verbs need (they watch the process, they never wait for it).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const USER: As = As::User(RANGED_USER);
const BOTH: [As; 2] = [USER, As::Root];

fn who_name(who: As) -> String {
    match who {
        As::Root => "root".to_string(),
        As::User(user) => user.to_string(),
    }
}

/// zookeeper-oci, copied where the test users can run it.
fn runtime_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let path = fixture().dir.join("zookeeper-oci");
        std::fs::copy(env!("CARGO_BIN_EXE_zookeeper-oci"), &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    })
}

/// A scratch directory of `who`'s, fresh.
fn scratch(name: &str, who: As) -> PathBuf {
    let dir = fixture().dir.join("oci").join(format!("{name}-{}", who_name(who)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for up in [fixture().dir.join("oci"), dir.clone()] {
        std::fs::set_permissions(up, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    chown(&dir, who);
    dir
}

fn chown(path: &Path, who: As) {
    if let As::User(user) = who {
        let (uid, gid) = ids_of(user);
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

/// A test's world: a bundle (the config a tool writes for `who`, the test
/// rootfs, `/out` bound from `out`), a state root and a pid file.
struct World {
    who: As,
    bundle: PathBuf,
    root: PathBuf,
    out: PathBuf,
    pid_file: PathBuf,
    /// Ids created, deleted (forced) when the test ends, passed or not.
    ids: std::cell::RefCell<Vec<String>>,
}

impl Drop for World {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.oci(&["delete", "--force", id]);
        }
    }
}

impl World {
    fn new(name: &str, who: As, args: &[&str]) -> World {
        let dir = scratch(name, who);
        let bundle = dir.join("bundle");
        let out = dir.join("out");
        let root = dir.join("state");
        for sub in [&bundle, &out] {
            std::fs::create_dir(sub).unwrap();
            chown(sub, who);
        }
        let copied = Command::new("cp").arg("-a").arg(&fixture().rootfs).arg(bundle.join("rootfs")).status();
        assert!(copied.unwrap().success());
        if let As::User(user) = who {
            let owner = format!("{user}:{user}");
            let chowned = Command::new("chown").args(["-R", &owner]).arg(bundle.join("rootfs")).status();
            assert!(chowned.unwrap().success());
        }
        let mut config = config_for(who, args);
        config["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/out", "type": "bind", "source": out.to_str().unwrap(), "options": ["rbind", "rw"]}),
        );
        let path = bundle.join("config.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        World { who, bundle, root, out, pid_file: dir.join("pid"), ids: Default::default() }
    }

    /// Changes the bundle's config.json.
    fn edit_config(&self, edit: impl FnOnce(&mut Value)) {
        let path = self.bundle.join("config.json");
        let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        edit(&mut config);
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    }

    /// `zookeeper-oci --root ROOT ARGS`.
    fn oci(&self, args: &[&str]) -> Output {
        let mut all = vec!["--root", self.root.to_str().unwrap()];
        all.extend_from_slice(args);
        oci(self.who, &all).output().unwrap()
    }

    fn create(&self, id: &str) -> Output {
        self.ids.borrow_mut().push(id.to_string());
        let mut all = vec!["--root", self.root.to_str().unwrap(), "create", "--bundle"];
        all.extend([self.bundle.to_str().unwrap(), "--pid-file", self.pid_file.to_str().unwrap(), id]);
        detached_output(oci(self.who, &all))
    }

    fn state(&self, id: &str) -> Value {
        let out = self.oci(&["state", id]);
        assert!(out.status.success(), "state {id}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    fn pid(&self) -> i32 {
        let text = std::fs::read_to_string(&self.pid_file).unwrap();
        assert!(!text.ends_with('\n'), "runc writes the pid file without a newline");
        text.parse().unwrap()
    }
}

/// zookeeper-oci as `who`, with runc's callers' clean environment.
fn oci(who: As, args: &[&str]) -> Command {
    let binary = runtime_binary();
    let mut command = match who {
        As::Root => Command::new(binary),
        As::User(user) => {
            let mut c = Command::new("/usr/bin/setpriv");
            c.args([&format!("--reuid={user}"), &format!("--regid={user}"), "--init-groups", "--"]);
            c.arg(binary);
            c
        }
    };
    command.args(args);
    command
        .current_dir(&fixture().dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
    command.stdin(Stdio::null());
    command
}

/// `command`'s status and output, for a command that leaves a process
/// behind holding its stdio (create): through files, not pipes, whose end
/// would never come.
fn detached_output(mut command: Command) -> Output {
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = fixture().dir.join("oci");
    std::fs::create_dir_all(&dir).unwrap();
    let paths = [dir.join(format!("create-{n}.out")), dir.join(format!("create-{n}.err"))];
    let status = command
        .stdout(std::fs::File::create(&paths[0]).unwrap())
        .stderr(std::fs::File::create(&paths[1]).unwrap())
        .status()
        .unwrap();
    let [stdout, stderr] = paths.map(|p| std::fs::read(&p).unwrap());
    Output { status, stdout, stderr }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !matches!(stat.rsplit(')').next().unwrap().split_whitespace().next(), Some("Z")))
}

/// One line on stderr, runc's words in it, and exit status `code`.
fn oci_fails_with(output: &Output, code: i32, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "status {:?}, stderr: {err}", output.status);
    assert_eq!(err.lines().count(), 1, "expected one line on stderr, got: {err:?}");
    assert!(err.starts_with("zookeeper-oci: "), "{err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

fn assert_gone(world: &World, id: &str) {
    let out = world.oci(&["state", id]);
    oci_fails_with(&out, 1, "container does not exist");
}

#[test]
fn create_start_state_kill_delete() {
    for who in BOTH {
        let id = format!("life-{}", who_name(who));
        let world = World::new("life", who, &["sh", "-c", "echo started > /out/effect; exec sleep 1000"]);
        let out = world.create(&id);
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        // create is silent: its stdio is the container's.
        assert_eq!((stdout(&out), stderr(&out)), (String::new(), String::new()));
        let pid = world.pid();
        let state = world.state(&id);
        assert_eq!(state["status"], "created", "{who:?}");
        assert_eq!(state["pid"], pid);
        assert_eq!(state["id"], id.as_str());
        assert_eq!(state["bundle"], world.bundle.to_str().unwrap());
        // Alive and waiting at the gate, not yet the command.
        assert!(alive(pid));
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm, "zookeeper-gate\n", "{who:?}");
        // Holding only its stdio and the gate, non-dumpable (its /proc
        // files are root's, even a user's container's), nothing of the
        // caller's command line or environment.
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| std::fs::read_link(e.unwrap().path()).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(fds.len(), 4, "{who:?}: {fds:?}");
        assert!(fds.iter().any(|fd| fd.ends_with("/exec.fifo")), "{fds:?}");
        // The rest is create's stdio (/dev/null and the files it wrote to).
        let stdio = |fd: &String| fd == "/dev/null" || fd.contains("/oci/create-");
        assert!(fds.iter().filter(|fd| !fd.ends_with("/exec.fifo")).all(stdio), "{fds:?}");
        let owner =
            std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(format!("/proc/{pid}/fd")).unwrap());
        assert_eq!(owner, 0, "{who:?}: dumpable");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert!(cmdline.starts_with(b"zookeeper-gate\0"), "{:?}", String::from_utf8_lossy(&cmdline));
        assert!(!String::from_utf8_lossy(&cmdline).contains("bundle"));
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(environ.iter().all(|b| *b == 0), "{who:?}: {:?}", String::from_utf8_lossy(&environ));
        std::thread::sleep(Duration::from_millis(100));
        assert!(!world.out.join("effect").exists(), "{who:?}: the command ran before start");
        // The id is taken.
        oci_fails_with(&world.create(&id), 1, "exists");

        let out = world.oci(&["start", &id]);
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        wait_for("the command's effect", || world.out.join("effect").exists());
        assert_eq!(std::fs::read_to_string(world.out.join("effect")).unwrap(), "started\n");
        assert_eq!(world.status(&id), "running");
        // containerd's shim asks for the processes as JSON.
        let pids: Vec<i32> = serde_json::from_str(&ok(world.oci(&["ps", "--format", "json", &id]))).unwrap();
        assert!(pids.contains(&pid), "{who:?}: {pids:?}");
        assert_eq!(ok(world.oci(&["list", "-q"])), format!("{id}\n"));
        let listed: Value = serde_json::from_str(&ok(world.oci(&["list", "--format", "json"]))).unwrap();
        assert_eq!(listed[0]["status"], "running");
        oci_fails_with(&world.oci(&["start", &id]), 1, "already running");
        // Running: delete without --force refuses.
        oci_fails_with(&world.oci(&["delete", &id]), 1, "not stopped");

        let out = world.oci(&["kill", &id, "KILL"]);
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        wait_for("the container to stop", || world.status(&id) == "stopped");
        assert_eq!(world.state(&id)["pid"], 0);
        oci_fails_with(&world.oci(&["kill", &id, "9"]), 1, "container not running");

        let out = world.oci(&["delete", &id]);
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        assert_gone(&world, &id);
        // containerd's shim deletes twice: the second says "does not exist".
        oci_fails_with(&world.oci(&["delete", "--force", &id]), 1, "does not exist");
        assert!(!world.root.join(&id).exists());
    }
}

#[test]
fn delete_force_kills_a_running_container_and_delete_kills_a_created_one() {
    for who in BOTH {
        let world = World::new("force", who, &["sleep", "1000"]);
        let id = format!("force-{}", who_name(who));
        assert!(world.create(&id).status.success());
        let pid = world.pid();
        assert!(world.oci(&["start", &id]).status.success());
        wait_for("the command", || {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "sleep\n")
        });
        // Options after the id, as youki's contest writes them.
        let out = world.oci(&["delete", &id, "--force"]);
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        assert!(!alive(pid), "{who:?}");
        assert_gone(&world, &id);

        // A created container is killed by a plain delete, as runc does.
        assert!(world.create(&id).status.success());
        let pid = world.pid();
        let out = world.oci(&["delete", &id]);
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        assert!(!alive(pid));
        assert!(!world.out.join("effect").exists());
        assert_gone(&world, &id);
    }
}

/// A console socket at `path`, as conmon and the shim listen on one: the
/// thread returns the pty master the runtime sends.
fn console_socket(path: &Path) -> std::thread::JoinHandle<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || -> OwnedFd {
        let (stream, _) = listener.accept().unwrap();
        let mut byte = [0u8; 64];
        let mut iov = [std::io::IoSliceMut::new(&mut byte)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let message = nix::sys::socket::recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        for cmsg in message.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = cmsg {
                // SAFETY: the kernel just installed this descriptor for us.
                return unsafe { OwnedFd::from_raw_fd(fds[0]) };
            }
        }
        panic!("no descriptor came with the message");
    })
}

/// `process.terminal`: create sends the pty's master to the caller's
/// console socket (conmon's and the shim's way); the command's terminal is
/// that pty.
#[test]
fn the_terminal_goes_to_the_console_socket() {
    let world = World::new("console", As::Root, &["sh", "-c", "tty; echo via-pty"]);
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(world.bundle.join("config.json")).unwrap()).unwrap();
    config["process"]["terminal"] = json!(true);
    std::fs::write(world.bundle.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    // Without a console socket, create refuses, as runc does.
    oci_fails_with(&world.create("tty"), 1, "--console-socket");
    let socket = world.root.with_file_name("console.sock");
    let receiver = console_socket(&socket);
    let bundle = world.bundle.to_str().unwrap();
    let args = ["--root", world.root.to_str().unwrap(), "create", "-b", bundle, "--console-socket"];
    let mut create = oci(As::Root, &args);
    create.arg(&socket).arg("tty");
    let out = detached_output(create);
    assert!(out.status.success(), "{}", stderr(&out));
    let master = std::fs::File::from(receiver.join().unwrap());
    assert!(world.oci(&["start", "tty"]).status.success());
    let mut text = String::new();
    let mut reader = std::io::BufReader::new(master);
    while !text.contains("via-pty") {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) == 0 {
            break;
        }
        text.push_str(&line);
    }
    assert!(text.starts_with("/dev/pts/0"), "{text:?}");
    assert!(text.contains("via-pty"), "{text:?}");
    wait_for("the container to stop", || world.status("tty") == "stopped");
    assert!(world.oci(&["delete", "tty"]).status.success());
}

/// startContainer hooks run in the container once start opens the gate,
/// before the command (runc's order), not at create.
#[test]
fn start_container_hooks_run_at_start() {
    for who in BOTH {
        let world = World::new(
            "hooks",
            who,
            &["sh", "-c", "cat /out/hook > /out/saw && mv /out/saw /out/command-saw"],
        );
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(world.bundle.join("config.json")).unwrap()).unwrap();
        config["hooks"] = json!({"startContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", "cat > /out/hook"]}
        ]});
        std::fs::write(world.bundle.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
        let id = format!("hooks-{}", who_name(who));
        let out = world.create(&id);
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        std::thread::sleep(Duration::from_millis(100));
        assert!(!world.out.join("hook").exists(), "{who:?}: the hook ran at create");
        assert!(world.oci(&["start", &id]).status.success());
        wait_for("the command", || world.out.join("command-saw").exists());
        let state: Value =
            serde_json::from_slice(&std::fs::read(world.out.join("command-saw")).unwrap()).unwrap();
        assert_eq!(state["id"], id.as_str(), "{who:?}");
        assert_eq!(state["status"], "created");
        wait_for("the container to stop", || world.status(&id) == "stopped");
        assert!(world.oci(&["delete", &id]).status.success());
    }
}

#[test]
fn kill_all_reaches_every_process_of_the_container() {
    let world =
        World::new("killall", As::Root, &["sh", "-c", "sleep 1000 & echo $! > /out/child; exec sleep 1000"]);
    assert!(world.create("ka").status.success());
    assert!(world.oci(&["start", "ka"]).status.success());
    wait_for("the child", || {
        std::fs::read_to_string(world.out.join("child")).is_ok_and(|t| t.ends_with('\n'))
    });
    let pid = world.pid();
    let children = children_of(pid as u32);
    assert_eq!(children.len(), 1, "{children:?}");
    // TERM: pid 1 of a pid namespace ignores it, the others do not.
    assert!(world.oci(&["kill", "--all", "ka", "TERM"]).status.success());
    wait_for("the child to die", || !alive(children[0] as i32));
    assert!(alive(pid));
    assert!(world.oci(&["kill", "ka", "--all", "KILL"]).status.success());
    wait_for("the container to stop", || world.status("ka") == "stopped");
    assert!(world.oci(&["delete", "ka"]).status.success());
}

/// poststart runs in start's process once the gate is open, poststop in
/// delete's once the container is gone; both on the host, with the state.
#[test]
fn poststart_and_poststop_hooks_run_at_start_and_delete() {
    let world = World::new("posthooks", As::Root, &["sleep", "1000"]);
    let out = world.out.to_str().unwrap();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(world.bundle.join("config.json")).unwrap()).unwrap();
    config["hooks"] = json!({
        "poststart": [{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {out}/poststart")]}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {out}/poststop")]}],
    });
    std::fs::write(world.bundle.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    assert!(world.create("ph").status.success());
    assert!(!world.out.join("poststart").exists());
    assert!(world.oci(&["start", "ph"]).status.success());
    let state: Value = serde_json::from_slice(&std::fs::read(world.out.join("poststart")).unwrap()).unwrap();
    assert_eq!((state["id"].as_str(), state["status"].as_str()), (Some("ph"), Some("running")));
    assert!(!world.out.join("poststop").exists());
    assert!(world.oci(&["delete", "--force", "ph"]).status.success());
    let state: Value = serde_json::from_slice(&std::fs::read(world.out.join("poststop")).unwrap()).unwrap();
    assert_eq!((state["id"].as_str(), state["status"].as_str()), (Some("ph"), Some("stopped")));
}

/// As root, a cgroupsPath: create puts the container there, kill --all
/// goes through its cgroup.procs, delete removes it (and the directory
/// made on the way). The cgroup is this test's own.
#[test]
fn the_cgroup_outlives_create_and_goes_with_delete() {
    let world = World::new("cgroup", As::Root, &["sh", "-c", "sleep 1000 & exec sleep 1000"]);
    let name = format!("zkoci-test-{}", std::process::id());
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(world.bundle.join("config.json")).unwrap()).unwrap();
    config["linux"]["cgroupsPath"] = json!(format!("{name}/c1"));
    config["linux"]["resources"] = json!({"pids": {"limit": 64}});
    std::fs::write(world.bundle.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    let out = world.create("cg");
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = world.pid();
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let pids_line =
        own.lines().find(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|c| c == "pids")));
    let within = match pids_line {
        Some(line) => line.splitn(3, ':').nth(2).unwrap().to_string(),
        // cgroup v2: the one line.
        None => own.lines().find_map(|l| l.strip_prefix("0::")).unwrap().to_string(),
    };
    assert!(within.ends_with(&format!("/{name}/c1")), "{own}");
    let dir = match pids_line {
        Some(_) => PathBuf::from(format!("/sys/fs/cgroup/pids{within}")),
        None => PathBuf::from(format!("/sys/fs/cgroup{within}")),
    };
    assert_eq!(std::fs::read_to_string(dir.join("pids.max")).unwrap().trim(), "64");
    assert!(world.oci(&["start", "cg"]).status.success());
    wait_for("two processes", || {
        std::fs::read_to_string(dir.join("cgroup.procs")).unwrap().lines().count() == 2
    });
    assert!(world.oci(&["kill", "--all", "cg", "KILL"]).status.success());
    wait_for("the container to stop", || world.status("cg") == "stopped");
    assert!(world.oci(&["delete", "cg"]).status.success());
    assert!(!dir.exists(), "{}", dir.display());
    assert!(!dir.parent().unwrap().exists(), "{}", dir.parent().unwrap().display());
}

/// containerd's shim and podman may race on one container: the verbs take
/// its lock, so of four forced deletes at once one deletes and the others
/// find nothing.
#[test]
fn concurrent_deletes_are_serialised() {
    let world = World::new("race", As::Root, &["sleep", "1000"]);
    assert!(world.create("race").status.success());
    assert!(world.oci(&["start", "race"]).status.success());
    let root = world.root.to_str().unwrap().to_string();
    let deleting: Vec<_> = (0..4)
        .map(|_| {
            let mut delete = oci(As::Root, &["--root", &root, "delete", "--force", "race"]);
            delete.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    let outs: Vec<Output> = deleting.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    assert_eq!(outs.iter().filter(|o| o.status.success()).count(), 1);
    for out in outs.iter().filter(|o| !o.status.success()) {
        oci_fails_with(out, 1, "container does not exist");
    }
    assert_gone(&world, "race");
}

#[test]
fn kill_a_created_container_by_signal_name_then_start_fails() {
    let world = World::new("killcreated", As::Root, &["true"]);
    assert!(world.create("kc").status.success());
    assert_eq!(world.status("kc"), "created");
    assert!(world.oci(&["kill", "kc", "SIGKILL"]).status.success());
    wait_for("the container to stop", || world.status("kc") == "stopped");
    oci_fails_with(&world.oci(&["start", "kc"]), 1, "stopped");
    assert!(world.oci(&["delete", "kc"]).status.success());
}

#[test]
fn run_waits_and_ends_with_the_commands_status() {
    for who in BOTH {
        let world = World::new("run", who, &["sh", "-c", "echo out; echo err >&2; exit 3"]);
        let out = world.oci(&["run", "--bundle", world.bundle.to_str().unwrap(), "r1"]);
        assert_eq!(out.status.code(), Some(3), "{who:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "out\n");
        assert_eq!(stderr(&out), "err\n");
        assert_gone(&world, "r1");
    }
}

/// runtime-spec: mounts "MUST be mounted in the order listed". The config's
/// mount points in the container's mountinfo, in that order (runtime-tools'
/// runtimetest checks the same; /sys used to come first, mounted early), and
/// /etc as the rootfs has it: a runtime's caller binds its own files there.
#[test]
fn mounts_are_made_in_the_configs_order_and_etc_is_left_alone() {
    for who in BOTH {
        let script = "cut -d' ' -f5 /proc/self/mountinfo; echo --; cat /etc/hostname";
        let world = World::new("order", who, &["sh", "-c", script]);
        std::fs::write(world.bundle.join("rootfs/etc/hostname"), "the-rootfs-own\n").unwrap();
        let config: Value =
            serde_json::from_slice(&std::fs::read(world.bundle.join("config.json")).unwrap()).unwrap();
        let listed: Vec<&str> =
            config["mounts"].as_array().unwrap().iter().map(|m| m["destination"].as_str().unwrap()).collect();
        assert!(
            listed.starts_with(&["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"]),
            "{listed:?}"
        );
        let out = world.oci(&["run", "--bundle", world.bundle.to_str().unwrap(), "o1"]);
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        let text = stdout(&out);
        let (mounts, hostname) = text.split_once("--\n").unwrap();
        let mounted: Vec<&str> = mounts.lines().collect();
        let mut at = 0;
        for wanted in &listed {
            match mounted[at..].iter().position(|m| m == wanted) {
                Some(found) => at += found + 1,
                None => {
                    panic!("{who:?}: {wanted} not found in order: listed {listed:?}, mounted {mounted:?}")
                }
            }
        }
        assert_eq!(hostname, "the-rootfs-own\n", "{who:?}: /etc/hostname is the rootfs's");
        assert!(!mounted.iter().any(|m| m.starts_with("/etc/")), "{who:?}: {mounted:?}");
        assert_gone(&world, "o1");
    }
}

/// runc's recursive mount options (mount_setattr with AT_RECURSIVE): the
/// host's /dev, bound with its mounts (/dev/shm, /dev/pts, /dev/mqueue),
/// `rro,rnoexec,rnoatime` reaches the mounts under it; `ro` alone only the
/// top one. Read from the container's mountinfo (nothing is written to the
/// host's /dev).
#[test]
fn recursive_mount_options_reach_the_mounts_under_a_bind() {
    for who in BOTH {
        let world = World::new("recursive", who, &["cat", "/proc/self/mountinfo"]);
        // In a user namespace the kernel locks the host's access-time mode
        // on what it binds (a change is EPERM, for runc too): there only the
        // flags that add protection.
        let mut wanted = vec!["ro", "noexec"];
        let mut recursive = vec!["rbind", "rro", "rnoexec"];
        if who == As::Root {
            wanted.push("noatime");
            recursive.push("rnoatime");
        }
        world.edit_config(|config| {
            let mounts = config["mounts"].as_array_mut().unwrap();
            mounts
                .push(json!({"destination": "/rec", "type": "bind", "source": "/dev", "options": recursive}));
            mounts.push(
                json!({"destination": "/top", "type": "bind", "source": "/dev", "options": ["rbind", "ro"]}),
            );
        });
        let out = world.oci(&["run", "--bundle", world.bundle.to_str().unwrap(), "rec1"]);
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        let text = stdout(&out);
        let options = |target: &str| -> Vec<String> {
            let line = text.lines().find(|l| l.split(' ').nth(4) == Some(target));
            let line = line.unwrap_or_else(|| panic!("{who:?}: no {target} in {text}"));
            line.split(' ').nth(5).unwrap().split(',').map(String::from).collect()
        };
        for target in ["/rec", "/rec/shm", "/rec/pts"] {
            let flags = options(target);
            for wanted in &wanted {
                assert!(flags.iter().any(|f| f == wanted), "{who:?}: {target} lacks {wanted}: {flags:?}");
            }
        }
        assert!(options("/top").contains(&"ro".to_string()), "{who:?}");
        assert!(options("/top/shm").contains(&"rw".to_string()), "{who:?}: ro is not recursive");
        assert_gone(&world, "rec1");
    }
}

/// linux.timeOffsets in a time namespace of the container's own: the
/// container's first process and an exec'd one see the shifted clocks
/// (contest's time_ns group); the host's clocks are untouched.
#[test]
fn a_time_namespace_shifts_the_containers_clocks_and_exec_joins_it() {
    for who in BOTH {
        let id = format!("time-{}", who_name(who));
        let world = World::new("time", who, &["sleep", "1000"]);
        world.edit_config(|config| {
            config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "time"}));
            config["linux"]["timeOffsets"] = json!({
                "monotonic": {"secs": 7881, "nanosecs": 2718281},
                "boottime": {"secs": 1337, "nanosecs": 3141519}
            });
        });
        let out = world.create(&id);
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        assert!(world.oci(&["start", &id]).status.success());
        let pid = world.pid();
        let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/time")).unwrap();
        wait_for("the command to run in its time namespace", || ns(&pid.to_string()) != ns("self"));
        let offsets = ok(world.oci(&["exec", &id, "cat", "/proc/self/timens_offsets"]));
        let rows: Vec<Vec<&str>> = offsets.lines().map(|l| l.split_whitespace().collect()).collect();
        assert!(rows.contains(&vec!["monotonic", "7881", "2718281"]), "{who:?}: {offsets}");
        assert!(rows.contains(&vec!["boottime", "1337", "3141519"]), "{who:?}: {offsets}");
        // The shifted boot time shows in the container's uptime.
        let host_uptime: f64 =
            std::fs::read_to_string("/proc/uptime").unwrap().split(' ').next().unwrap().parse().unwrap();
        let inside = ok(world.oci(&["exec", &id, "cat", "/proc/uptime"]));
        let uptime: f64 = inside.split(' ').next().unwrap().parse().unwrap();
        assert!(uptime - host_uptime > 1300.0, "{who:?}: {uptime} inside, {host_uptime} on the host");
        assert!(world.oci(&["delete", "--force", &id]).status.success());
    }
}

/// A pod's shared pid namespace (Kubernetes' shareProcessNamespace: the CRI
/// joins the sandbox's by path): the second container's command sees the
/// first's as pid 1 and is in its namespace; zookeeper-oci's own later
/// children (its hooks) stay in the caller's. A user cannot join a pid
/// namespace it may not open (nor one it may: the kernel wants
/// CAP_SYS_ADMIN where zookeeper-oci runs): one clear line.
#[test]
fn a_pid_namespace_is_joined_by_path_as_pods_share_one() {
    let (first, first_pid) = running_for_exec("pidns-a", As::Root, "pod-a");
    let world =
        World::new("pidns-b", As::Root, &["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$"]);
    let path = world.bundle.join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let pid_ns = format!("/proc/{first_pid}/ns/pid");
    for ns in config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "pid" {
            ns["path"] = json!(pid_ns);
        }
    }
    // A hook, to see where zookeeper-oci's own children run.
    let hook_out = world.out.join("hook-ns");
    let hook = format!("readlink /proc/self/ns/pid > {}", hook_out.display());
    config["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", hook]}]});
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let out = world.oci(&["run", "--bundle", world.bundle.to_str().unwrap(), "pod-b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("sleep 1000 "), "{text}");
    let inner_pid: i32 = lines.next().unwrap().parse().unwrap();
    assert!(inner_pid > 1, "{text}");
    let own = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let hook_ns = std::fs::read_to_string(&hook_out).unwrap();
    assert_eq!(hook_ns.trim(), own.to_str().unwrap(), "the hook ran in the caller's pid namespace");
    assert_gone(&world, "pod-b");
    drop(first);

    let user = World::new("pidns-user", As::User(RANGED_USER), &["true"]);
    let path = user.bundle.join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for ns in config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "pid" {
            ns["path"] = json!("/proc/1/ns/pid");
        }
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let out = user.oci(&["run", "--bundle", user.bundle.to_str().unwrap(), "pod-u"]);
    oci_fails_with(&out, 1, "zookeeper-oci: error: opening the pid namespace /proc/1/ns/pid: EACCES");
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

/// `start` returns once the command runs, as runc's does (its init's exec
/// closes the fifo runc reads): before that, the first process is pid 1 of
/// its namespace without a signal handler, and a signal sent right after
/// start was dropped by the kernel (runtime-tools' killsig). A slow
/// startContainer hook stands between the gate and exec here.
#[test]
fn start_returns_once_the_command_runs() {
    for who in BOTH {
        let world = World::new("start-exec", who, &["sleep", "1000"]);
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(world.bundle.join("config.json")).unwrap()).unwrap();
        config["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 0.3"]}]});
        std::fs::write(world.bundle.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
        let id = format!("sx-{}", who_name(who));
        let out = world.create(&id);
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        assert!(world.oci(&["start", &id]).status.success());
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", world.pid())).unwrap();
        assert_eq!(comm, "sleep\n", "{who:?}: start returned before the command ran");
        assert!(world.oci(&["delete", "--force", &id]).status.success());
    }
}

/// A seccomp profile that denies close_range (runtime-tools' deny-by-default
/// one does; docker's allows it): the process waiting at the gate holds
/// nothing of create's but the gate, and a start, kill and delete do not
/// wait for create's lock on the state directory (they hung until the
/// gate was killed).
#[test]
fn the_gate_holds_nothing_of_creates_under_a_filter_without_close_range() {
    for who in BOTH {
        let world = World::new("gate-fds", who, &["sleep", "1000"]);
        world.edit_config(|config| {
            config["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["close_range"], "action": "SCMP_ACT_ERRNO"}]
            });
        });
        let id = format!("gfd-{}", who_name(who));
        let out = world.create(&id);
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        let gate = world.pid();
        // Read as root: the gate is non-dumpable.
        let fds = fds_of(gate);
        assert_eq!(fds.len(), 4, "{who:?}: stdio and the gate only: {fds:?}");
        let within = |args: &[&str]| {
            let mut all = vec!["--root", world.root.to_str().unwrap()];
            all.extend_from_slice(args);
            let mut child = oci(who, &all).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    return status;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("{who:?}: {args:?} waited over 10 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        assert!(within(&["start", &id]).success(), "{who:?}");
        assert!(within(&["kill", &id, "KILL"]).success(), "{who:?}");
        wait_for("the container to stop", || world.status(&id) == "stopped");
        assert!(within(&["delete", &id]).success(), "{who:?}");
    }
}

#[test]
fn a_command_that_is_not_there_fails_at_create() {
    let world = World::new("missing", As::Root, &["/no/such/program"]);
    let out = world.create("m1");
    oci_fails_with(&out, 1, "no such file or directory");
    assert_gone(&world, "m1");
    assert!(!world.pid_file.exists());
}

#[test]
fn a_failed_create_leaves_one_json_error_line_in_the_log() {
    let world = World::new("log", As::Root, &["true"]);
    std::fs::write(world.bundle.join("config.json"), "{ not json").unwrap();
    let log = world.root.with_file_name("log.json");
    let log_arg = log.to_str().unwrap();
    let bundle = world.bundle.to_str().unwrap();
    let out = world.oci(&["--log", log_arg, "--log-format", "json", "create", "--bundle", bundle, "bad"]);
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    // podman reads the whole file as one object.
    let line: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("config.json"), "{text}");
    assert!(line["time"].as_str().unwrap().ends_with('Z'));
    assert_gone(&world, "bad");
}

#[test]
fn ids_that_are_paths_are_refused() {
    let world = World::new("ids", As::Root, &["true"]);
    for id in ["../escape", "a/b", "..", ""] {
        let out = world.create(id);
        oci_fails_with(&out, 1, "invalid container id");
    }
    assert!(!world.root.parent().unwrap().join("escape").exists());
}

#[test]
fn the_default_root_for_root_with_podmans_empty_xdg_runtime_dir() {
    let world = World::new("xdg", As::Root, &["true"]);
    let id = format!("zk-test-xdg-{}", std::process::id());
    let bundle = world.bundle.to_str().unwrap();
    let mut create = oci(As::Root, &["create", &id, "--bundle", bundle]);
    create.env("XDG_RUNTIME_DIR", "");
    let out = detached_output(create);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = Path::new("/run/zookeeper").join(&id);
    assert!(dir.join("state.json").exists());
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let out = oci(As::Root, &["delete", &id]).env("XDG_RUNTIME_DIR", "").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!dir.exists());
}

#[test]
fn the_default_root_for_a_user_is_under_xdg_runtime_dir() {
    let world = World::new("xdguser", USER, &["true"]);
    let xdg = world.root.with_file_name("xdg");
    std::fs::create_dir(&xdg).unwrap();
    chown(&xdg, USER);
    let bundle = world.bundle.to_str().unwrap();
    let mut create = oci(USER, &["create", "--bundle", bundle, "u1"]);
    create.env("XDG_RUNTIME_DIR", &xdg);
    let out = detached_output(create);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(xdg.join("zookeeper/u1/state.json").exists());
    let mode = std::fs::metadata(xdg.join("zookeeper")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let out = oci(USER, &["delete", "u1"]).env("XDG_RUNTIME_DIR", &xdg).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!xdg.join("zookeeper/u1").exists());
}

/// Bad command lines: one line, status 1, nothing made.
#[test]
fn bad_command_lines_are_one_line_errors() {
    let root = scratch("bad", As::Root).join("state");
    let root = root.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&[], "no command given"),
        (&["--root"], "--root needs a value"),
        (&["--root", "", "state", "x"], "--root needs a directory"),
        (&["--log-format", "xml", "state", "x"], "unknown --log-format"),
        (&["--bogus", "state", "x"], "unknown global option --bogus"),
        (&["--root", root, "kill"], "a container id is needed"),
        (&["--root", root, "kill", "x", "NOPE"], "invalid signal"),
        (&["--root", root, "kill", "x", "99"], "invalid signal"),
        (&["--root", root, "state", "x", "y"], "unexpected argument"),
        (&["--root", root, "state", "../x"], "invalid container id"),
        (&["--root", root, "create", "--bundle"], "--bundle needs a value"),
        (&["--root", root, "create", "--frob", "x"], "unknown option --frob"),
        (&["--root", root, "delete", "--force=yes", "x"], "takes no value"),
        (&["--root", root, "start", "nothere"], "container does not exist"),
        (&["--root", root, "kill", "nothere", "9"], "container does not exist"),
        (&["--root", root, "ps", "nothere"], "container does not exist"),
    ];
    for (args, needle) in cases {
        let out = oci(As::Root, args).output().unwrap();
        oci_fails_with(&out, 1, needle);
    }
    assert!(!Path::new(root).exists());
}

/// `spec` writes a config that runs (with a rootfs beside it), and refuses
/// to overwrite one.
#[test]
fn spec_writes_a_config_that_runs() {
    for who in BOTH {
        let world = World::new("spec", who, &["true"]);
        std::fs::remove_file(world.bundle.join("config.json")).unwrap();
        let bundle = world.bundle.to_str().unwrap();
        let args: &[&str] = match who {
            As::Root => &["spec", "--bundle", bundle],
            As::User(_) => &["spec", "--rootless", "-b", bundle],
        };
        assert!(oci(who, args).output().unwrap().status.success());
        oci_fails_with(&oci(who, args).output().unwrap(), 1, "exists");
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(world.bundle.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["root"]["path"], "rootfs");
        config["process"]["args"] = json!(["sh", "-c", "echo from-spec"]);
        config["process"]["terminal"] = json!(false);
        std::fs::write(world.bundle.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
        let out = world.oci(&["run", "-b", bundle, "spec1"]);
        assert_eq!(stdout(&out), "from-spec\n", "{who:?}: {}", stderr(&out));
        assert!(out.status.success());
    }
}

#[test]
fn version_and_usage_of_the_separate_binary() {
    let out = oci(As::Root, &["--version"]).output().unwrap();
    let text = ok(out);
    assert!(text.starts_with("zookeeper-oci version "), "{text}");
    assert!(text.lines().any(|l| l.starts_with("spec: ")), "{text}");
    let out = oci(As::Root, &["frobnicate", "x"]).output().unwrap();
    oci_fails_with(&out, 1, "unknown command");
    let features: Value = serde_json::from_str(&ok(oci(As::Root, &["features"]).output().unwrap())).unwrap();
    assert!(features["ociVersionMax"].is_string());
    // The seed's command line is untouched: `zookeeper create` runs a
    // program named create (which the test rootfs does not have).
    let out = zookeeper(As::Root, &["-r", fixture().rootfs.to_str().unwrap(), "create"]).output().unwrap();
    common::fails_with(&out, 127, "create");
}

/// Debian's podman (4.3) with `--runtime zookeeper-oci`, as root, on a
/// private storage (vfs: no mounts left behind) and run directory, removed
/// after; the image is the test rootfs, imported offline. On this cgroup v1
/// host podman's default rlimits need CAP_SYS_RESOURCE, which the sandbox
/// lacks, hence the --ulimit flags (runc needs them too).
#[test]
fn podman_runs_containers_through_zookeeper_oci() {
    assert!(Path::new("/usr/bin/podman").exists(), "podman is missing: run scripts/setup.sh as root first");
    // podman refuses a run directory longer than 50 characters.
    let dir = PathBuf::from(format!("/tmp/zkpm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let podman = |args: &[&str]| -> Output {
        let mut command = Command::new("/usr/bin/podman");
        command.arg("--root").arg(dir.join("storage")).arg("--runroot").arg(dir.join("runroot"));
        command.arg("--tmpdir").arg(dir.join("tmp")).arg("--runtime").arg(runtime_binary());
        command.args(["--cgroup-manager=cgroupfs", "--events-backend=file", "--storage-driver=vfs"]);
        command.args(args).env_clear().env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
        command.stdin(Stdio::null()).output().unwrap()
    };
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&fixture().rootfs)
        .arg("-cf")
        .arg(dir.join("rootfs.tar"))
        .arg(".")
        .status();
    assert!(tar.unwrap().success());
    let out = podman(&["import", dir.join("rootfs.tar").to_str().unwrap(), "localhost/zk-busybox:1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = |extra: &[&str], command: &[&str]| -> Output {
        let mut args =
            vec!["run", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];
        args.extend_from_slice(extra);
        args.push("localhost/zk-busybox:1");
        args.extend_from_slice(command);
        podman(&args)
    };
    assert_eq!(ok(run(&["--rm"], &["echo", "ok"])), "ok\n");
    // podman's /etc/hosts and /etc/hostname reach the container: zookeeper-oci
    // binds none of its own over them (it used to, hiding --add-host).
    let etc = ok(run(
        &["--rm", "--hostname", "zk-named", "--add-host", "zk-extra:10.9.8.7"],
        &["cat", "/etc/hostname", "/etc/hosts"],
    ));
    assert!(etc.starts_with("zk-named"), "{etc}");
    assert!(etc.contains("10.9.8.7\tzk-extra") || etc.contains("10.9.8.7 zk-extra"), "{etc}");
    assert_eq!(run(&["--rm"], &["sh", "-c", "exit 7"]).status.code(), Some(7));
    // A missing command fails at create, with the shell's status.
    let out = run(&["--rm"], &["/no/such/program"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    // Detached, listed, stopped (sleep as pid 1 ignores TERM: podman kills),
    // removed.
    let id = ok(run(&["-d", "--name", "zk-c1"], &["sleep", "100"]));
    assert!(ok(podman(&["ps", "--format", "{{.Names}} {{.Status}}"])).contains("zk-c1 Up"));
    // podman exec: conmon runs `exec --pid-file P --process F --detach ID`.
    assert_eq!(ok(podman(&["exec", "zk-c1", "sh", "-c", "echo in; cat /proc/1/comm"])), "in\nsleep\n");
    assert_eq!(podman(&["exec", "zk-c1", "sh", "-c", "exit 5"]).status.code(), Some(5));
    let out = podman(&["exec", "zk-c1", "/no/such/program"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    // podman run -it: conmon hands zookeeper-oci a console socket; the
    // container's shell talks to the test's terminal.
    let mut it = Command::new("/usr/bin/podman");
    it.arg("--root").arg(dir.join("storage")).arg("--runroot").arg(dir.join("runroot"));
    it.arg("--tmpdir").arg(dir.join("tmp")).arg("--runtime").arg(runtime_binary());
    it.args(["--cgroup-manager=cgroupfs", "--events-backend=file", "--storage-driver=vfs"]);
    it.args(["run", "--rm", "-it", "--network", "none", "--ulimit", "nofile=1024:1024"]);
    it.args(["--ulimit", "nproc=1024:1024", "localhost/zk-busybox:1", "sh"]);
    it.env_clear().env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin").env("TERM", "xterm");
    let (seen, status) = on_a_terminal(it, b"tty; echo it-$((6*7)); exit 3\n");
    assert!(seen.contains("/dev/pts/0") && seen.contains("it-42"), "{seen}");
    assert_eq!(status.code(), Some(3), "{seen}");
    assert!(podman(&["stop", "-t", "1", "zk-c1"]).status.success());
    let out = podman(&["rm", "zk-c1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!Path::new("/run/zookeeper").join(id.trim()).exists());
}

/// Runs `command` with a new pty as its controlling terminal and stdio,
/// types `input`, and reads what it shows until every holder of the pty's
/// other end has gone (at most 30 s); its output and exit status.
fn on_a_terminal(mut command: Command, input: &[u8]) -> (String, std::process::ExitStatus) {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let pty = nix::pty::openpty(None, None).unwrap();
    for fd in [&pty.master, &pty.slave] {
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).unwrap();
    }
    command.stdin(Stdio::from(pty.slave.try_clone().unwrap()));
    command.stdout(Stdio::from(pty.slave.try_clone().unwrap()));
    command.stderr(Stdio::from(pty.slave.try_clone().unwrap()));
    let slave_fd = pty.slave.as_raw_fd();
    // SAFETY: setsid and TIOCSCTTY are async-signal-safe system calls.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid()?;
            if libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    drop(command);
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    master.write_all(input).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let mut fds =
            [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&master), nix::poll::PollFlags::POLLIN)];
        assert!(
            Instant::now() < deadline,
            "the terminal session did not end: {}",
            String::from_utf8_lossy(&seen)
        );
        if nix::poll::poll(&mut fds, 200u16).unwrap() == 0 {
            continue;
        }
        match master.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
        }
    }
    (String::from_utf8_lossy(&seen).into_owned(), child.wait().unwrap())
}

/// Debian's podman as the test user (rootless): it runs zookeeper-oci as
/// root of its own user namespace, with a config that has none, the rootfs
/// on its private vfs storage. Its pause process (catatonit) is stopped by
/// the pid it records, and everything removed, after.
#[test]
fn rootless_podman_runs_containers_through_zookeeper_oci() {
    assert!(Path::new("/usr/bin/podman").exists(), "podman is missing: run scripts/setup.sh as root first");
    let who = As::User(RANGED_USER);
    // podman refuses a run directory longer than 50 characters.
    let dir = PathBuf::from(format!("/tmp/zkpr-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("xdg")).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.join("xdg"), std::fs::Permissions::from_mode(0o700)).unwrap();
    chown(&dir, who);
    chown(&dir.join("xdg"), who);
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            // The pause process podman keeps for the user namespace, named in
            // its --tmpdir.
            let pause = self.0.join("tmp/pause.pid");
            if let Some(pid) = std::fs::read_to_string(pause).ok().and_then(|t| t.trim().parse::<i32>().ok())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&fixture().rootfs)
        .arg("-cf")
        .arg(dir.join("rootfs.tar"))
        .arg(".")
        .status();
    assert!(tar.unwrap().success());
    chown(&dir.join("rootfs.tar"), who);
    let podman = |args: &[&str]| -> Output {
        let mut command = Command::new("/usr/bin/setpriv");
        command.args([
            &format!("--reuid={RANGED_USER}"),
            &format!("--regid={RANGED_USER}"),
            "--init-groups",
            "--",
        ]);
        command.arg("/usr/bin/podman");
        command.arg("--root").arg(dir.join("storage")).arg("--runroot").arg(dir.join("runroot"));
        command.arg("--tmpdir").arg(dir.join("tmp")).arg("--runtime").arg(runtime_binary());
        command.args(["--cgroup-manager=cgroupfs", "--events-backend=file", "--storage-driver=vfs"]);
        command.args(args).env_clear().env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
        command.env("HOME", dir.join("xdg")).env("XDG_RUNTIME_DIR", dir.join("xdg"));
        command.current_dir(&dir).stdin(Stdio::null()).output().unwrap()
    };
    let out = podman(&["import", dir.join("rootfs.tar").to_str().unwrap(), "localhost/zk-busybox:1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = |extra: &[&str], command: &[&str]| -> Output {
        let mut args = vec!["run", "--network", "none"];
        args.extend_from_slice(extra);
        args.push("localhost/zk-busybox:1");
        args.extend_from_slice(command);
        podman(&args)
    };
    assert_eq!(ok(run(&["--rm"], &["sh", "-c", "id -u; echo ok"])), "0\nok\n");
    assert_eq!(run(&["--rm"], &["sh", "-c", "exit 7"]).status.code(), Some(7));
    // -it, on the test's terminal (handed to the user first).
    let mut it = Command::new("/usr/bin/setpriv");
    it.args([&format!("--reuid={RANGED_USER}"), &format!("--regid={RANGED_USER}"), "--init-groups", "--"]);
    it.arg("/usr/bin/podman");
    it.arg("--root").arg(dir.join("storage")).arg("--runroot").arg(dir.join("runroot"));
    it.arg("--tmpdir").arg(dir.join("tmp")).arg("--runtime").arg(runtime_binary());
    it.args(["--cgroup-manager=cgroupfs", "--events-backend=file", "--storage-driver=vfs"]);
    it.args(["run", "--rm", "-it", "--network", "none", "localhost/zk-busybox:1", "sh"]);
    it.env_clear().env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin").env("TERM", "xterm");
    it.env("HOME", dir.join("xdg")).env("XDG_RUNTIME_DIR", dir.join("xdg")).current_dir(&dir);
    let (seen, status) = on_a_terminal(it, b"tty; echo it-$((6*7)); exit 3\n");
    assert!(seen.contains("/dev/pts/0") && seen.contains("it-42"), "{seen}");
    assert_eq!(status.code(), Some(3), "{seen}");
    let out = run(&["--rm"], &["/no/such/program"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    ok(run(&["-d", "--name", "zk-r1"], &["sleep", "100"]));
    assert!(ok(podman(&["ps", "--format", "{{.Names}} {{.Status}}"])).contains("zk-r1 Up"));
    assert_eq!(ok(podman(&["exec", "zk-r1", "sh", "-c", "echo in; cat /proc/1/comm"])), "in\nsleep\n");
    assert_eq!(podman(&["exec", "zk-r1", "sh", "-c", "exit 5"]).status.code(), Some(5));
    let out = podman(&["exec", "zk-r1", "/no/such/program"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(podman(&["stop", "-t", "1", "zk-r1"]).status.success());
    let out = podman(&["rm", "zk-r1"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The containerd configuration docs/kubernetes.md gives (the CRI plugin's
/// runtime handler `zookeeper`), with `binary` as its BinaryName.
fn runtime_handler_config(binary: &Path) -> String {
    let doc = include_str!("../docs/kubernetes.md");
    let block = doc
        .split("```toml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .find(|block| block.contains("runtimes.zookeeper.options"))
        .expect("docs/kubernetes.md has a toml block with the zookeeper runtime handler");
    assert!(block.contains("BinaryName = \"/usr/local/bin/zookeeper-oci\""), "{block}");
    block.replace("/usr/local/bin/zookeeper-oci", binary.to_str().unwrap())
}

/// Debian's containerd (1.6) started by the test on a private socket and
/// state, with the CRI plugin configured as docs/kubernetes.md says (a
/// runtime handler whose BinaryName is zookeeper-oci), and its runc v2 shim
/// told to use zookeeper-oci as that handler's options do (`ctr run
/// --runtime io.containerd.runc.v2 --runc-binary`: ctr does not go through
/// the CRI plugin, whose clients are the kubelet and crictl, which Debian 12
/// does not ship), with a private runtime root; stopped by its pid after.
/// The shim passes `--root --log --log-format json` before every verb and
/// deletes twice after every exit.
#[test]
fn containerd_runs_containers_through_zookeeper_oci() {
    assert!(
        Path::new("/usr/bin/containerd").exists() && Path::new("/usr/bin/ctr").exists(),
        "containerd or ctr is missing: run scripts/setup.sh as root first"
    );
    let dir = PathBuf::from(format!("/tmp/zkctr-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The shim's sockets go to /run/containerd/s whatever the config says:
    // removed after only if this test made it.
    let run_dir_existed = Path::new("/run/containerd").exists();
    let d = dir.to_str().unwrap();
    // The CRI plugin's stream server on loopback, on a port of the
    // kernel's choosing; no CNI configuration (it looks, and finds none).
    let config = format!(
        "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
         [grpc]\n  address = \"{d}/c.sock\"\n[ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n\
         [debug]\n  address = \"{d}/debug.sock\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\"]\n  stream_server_address = \"127.0.0.1\"\n\
         stream_server_port = \"0\"\n  [plugins.\"io.containerd.grpc.v1.cri\".cni]\n\
         conf_dir = \"{d}/cni\"\n{}",
        runtime_handler_config(runtime_binary())
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
    let daemon = Command::new("/usr/bin/containerd")
        .arg("--config")
        .arg(dir.join("config.toml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    struct Stop {
        daemon: std::process::Child,
        dir: PathBuf,
        run_dir_existed: bool,
    }
    impl Drop for Stop {
        fn drop(&mut self) {
            let pid = nix::unistd::Pid::from_raw(self.daemon.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = self.daemon.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
            if !self.run_dir_existed {
                let _ = std::fs::remove_dir_all("/run/containerd");
            }
        }
    }
    let _stop = Stop { daemon, dir: dir.clone(), run_dir_existed };
    wait_for("containerd's socket", || dir.join("c.sock").exists());
    // The CRI plugin took the configuration: a handler it cannot use (a
    // default runtime missing from the table, a bad runtime_type) leaves it
    // in "error".
    let plugins = ok(Command::new("/usr/bin/ctr")
        .arg("-a")
        .arg(dir.join("c.sock"))
        .args(["plugins", "ls"])
        .output()
        .unwrap());
    let cri = plugins.lines().find(|l| l.split_whitespace().take(2).eq(["io.containerd.grpc.v1", "cri"]));
    assert!(cri.is_some_and(|l| l.split_whitespace().last() == Some("ok")), "{plugins}");
    let rootfs = dir.join("rootfs");
    assert!(Command::new("cp").arg("-a").arg(&fixture().rootfs).arg(&rootfs).status().unwrap().success());
    let ctr = |args: &[&str]| -> Output {
        let mut command = Command::new("/usr/bin/ctr");
        command.arg("-a").arg(dir.join("c.sock")).args(args).stdin(Stdio::null());
        command.output().unwrap()
    };
    let with_runtime = |verb: &str, rest: &[&str]| -> Output {
        let mut args = vec![
            "run",
            "--runtime",
            "io.containerd.runc.v2",
            "--runc-binary",
            runtime_binary().to_str().unwrap(),
        ];
        let (runc_root, fifo_dir) = (dir.join("runc"), dir.join("fifo"));
        let (runc_root, fifo_dir) =
            (runc_root.to_str().unwrap().to_string(), fifo_dir.to_str().unwrap().to_string());
        args.extend(["--runc-root", &runc_root, "--fifo-dir", &fifo_dir]);
        if !verb.is_empty() {
            args.push(verb);
        }
        args.extend(["--rootfs", rootfs.to_str().unwrap()]);
        args.extend_from_slice(rest);
        ctr(&args)
    };
    let out = with_runtime("--rm", &["c1", "/bin/sh", "-c", "echo ok; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "ok\n");
    let out = with_runtime("-d", &["c2", "/bin/sleep", "100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ok(ctr(&["task", "ls"])).contains("RUNNING"));
    // The shim's `ps --format json`.
    let listed = ok(ctr(&["task", "ps", "c2"]));
    assert!(listed.lines().count() >= 2, "{listed}");
    // The shim runs `exec --process F --detach --pid-file P ID` and waits for the pid.
    assert_eq!(
        ok(ctr(&["task", "exec", "--exec-id", "e1", "c2", "sh", "-c", "echo in; cat /proc/1/comm"])),
        "in\nsleep\n"
    );
    assert_eq!(ctr(&["task", "exec", "--exec-id", "e2", "c2", "sh", "-c", "exit 5"]).status.code(), Some(5));
    assert!(ctr(&["task", "kill", "-s", "KILL", "c2"]).status.success());
    wait_for("the task to stop", || stdout(&ctr(&["task", "ls"])).contains("STOPPED"));
    let out = ctr(&["task", "rm", "c2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ctr(&["container", "rm", "c2"]).status.success());
    // Nothing left in the runtime's root.
    let left: Vec<_> =
        std::fs::read_dir(dir.join("runc/default")).map_or(Vec::new(), |d| d.flatten().collect());
    assert!(left.is_empty(), "{left:?}");
}

/// Rootless podman runs its runtime as root of a user namespace of its own,
/// with a config that has no user namespace: there the host's root, which
/// owns `/tmp` and the directories above a rootfs, shows as an unmapped
/// owner (65534), and setgroups may be denied. `unshare -r -m`, run by the
/// test user, makes such a namespace.
#[test]
fn runs_as_root_of_a_callers_user_namespace_as_rootless_podman_runs_it() {
    let who = As::User(RANGED_USER);
    let world = World::new("callers-userns", who, &["sh", "-c", "id -u; echo inside > /out/file"]);
    // What podman's config for a rootless container looks like: no user
    // namespace, no resources (no cgroup to make).
    world.edit_config(|config| {
        let linux = config["linux"].as_object_mut().unwrap();
        linux.remove("uidMappings");
        linux.remove("gidMappings");
        linux.remove("resources");
        linux["namespaces"].as_array_mut().unwrap().retain(|ns| ns["type"] != "user");
    });
    // podman writes it as the user, root of its namespace.
    chown(&world.bundle.join("config.json"), who);
    std::fs::create_dir_all(&world.root).unwrap();
    chown(&world.root, who);
    let script = format!(
        "cd {} && exec {} --root {} run --bundle {} podman-like",
        world.bundle.display(),
        runtime_binary().display(),
        world.root.join("inner").display(),
        world.bundle.display()
    );
    let out = Command::new("/usr/bin/setpriv")
        .args([&format!("--reuid={RANGED_USER}"), &format!("--regid={RANGED_USER}"), "--init-groups", "--"])
        .args(["unshare", "-r", "-m", "sh", "-c", &script])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}: {}", out.status, stderr(&out));
    assert_eq!(stdout(&out), "0\n");
    assert_eq!(std::fs::read_to_string(world.out.join("file")).unwrap(), "inside\n");
}

/// A running container for `exec`: the config's process with a seccomp
/// profile of its own (runc's spec has none), created and started.
fn running_for_exec(name: &str, who: As, id: &str) -> (World, i32) {
    let world = World::new(name, who, &["sleep", "1000"]);
    world.edit_config(|config| {
        config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}],
        });
    });
    std::fs::write(world.bundle.join("rootfs/only-in-the-container"), "here\n").unwrap();
    let out = world.create(id);
    assert!(out.status.success(), "{who:?}: {}", stderr(&out));
    let out = world.oci(&["start", id]);
    assert!(out.status.success(), "{who:?}: {}", stderr(&out));
    let pid = world.pid();
    wait_for("the command to run", || {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "sleep\n")
    });
    (world, pid)
}

/// The status lines of /proc/PID/status that say how a process is confined.
fn confinement_lines(status: &str) -> Vec<String> {
    status
        .lines()
        .filter(|l| {
            ["CapBnd:", "CapEff:", "CapPrm:", "NoNewPrivs:", "Seccomp:"].iter().any(|k| l.starts_with(k))
        })
        .map(String::from)
        .collect()
}

#[test]
fn exec_joins_the_running_container_and_its_confinement() {
    for who in BOTH {
        let id = format!("ex-{}", who_name(who));
        let (world, pid) = running_for_exec("exec", who, &id);
        // A bundle changed after create changes nothing: exec's process
        // comes from the config create kept.
        world.edit_config(|config| {
            config["linux"]["seccomp"] = Value::Null;
            config["process"]["noNewPrivileges"] = json!(false);
        });
        let script = "hostname; cat /proc/1/cmdline; echo; cat /only-in-the-container; \
                      echo $$; cat /proc/self/status";
        let out = world.oci(&["exec", &id, "sh", "-c", script]);
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "runc", "{who:?}: the container's hostname: {text}");
        assert_eq!(lines[1], "sleep\u{0}1000\u{0}", "{who:?}: pid 1 is the container's: {text}");
        assert_eq!(lines[2], "here", "{who:?}: the container's mount namespace: {text}");
        let own: i32 = lines[3].parse().unwrap();
        assert!(own > 1 && own < 100, "{who:?}: a pid of the container's namespace: {own}");
        let host = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let expected = confinement_lines(&host);
        assert!(expected.iter().any(|l| l.starts_with("Seccomp:") && l.ends_with('2')), "{expected:?}");
        assert!(expected.iter().any(|l| l.starts_with("NoNewPrivs:") && l.ends_with('1')), "{expected:?}");
        assert_eq!(confinement_lines(&text), expected, "{who:?}");
        // The caller's environment stays out: the config's is the process's.
        let out = world.oci(&["exec", "--env", "EXTRA=1", "--cwd", "/tmp", &id, "sh", "-c", "env; pwd"]);
        let text = ok(out);
        assert!(text.contains("EXTRA=1\n") && text.contains("TERM=xterm\n"), "{who:?}: {text}");
        assert!(!text.contains("/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"), "{who:?}: {text}");
        assert!(text.ends_with("/tmp\n"), "{who:?}: {text}");
        // Its exit status is exec's.
        assert_eq!(world.oci(&["exec", &id, "sh", "-c", "exit 7"]).status.code(), Some(7), "{who:?}");
        let out = world.oci(&["exec", &id, "no-such-command"]);
        oci_fails_with(&out, 127, "not found");
        // Detached: the pid file names it, in the container.
        let pid_file = world.pid_file.with_file_name("exec-pid");
        let out = detached_output(oci(
            who,
            &[
                "--root",
                world.root.to_str().unwrap(),
                "exec",
                "--detach",
                "--pid-file",
                pid_file.to_str().unwrap(),
                &id,
                "sleep",
                "999",
            ],
        ));
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        let exec_pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
        assert!(alive(exec_pid), "{who:?}");
        assert_eq!(fds_of(exec_pid), ["0", "1", "2"], "{who:?}: only stdio");
        let ns = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
        assert_eq!(ns(exec_pid), ns(pid), "{who:?}");
        let cgroup = |p: i32| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
        assert_eq!(cgroup(exec_pid), cgroup(pid), "{who:?}");
        let pids: Vec<i32> = serde_json::from_str(&ok(world.oci(&["ps", "--format", "json", &id]))).unwrap();
        assert!(pids.contains(&exec_pid), "{who:?}: {pids:?}");
        // Stopped, then gone: runc's words.
        assert!(world.oci(&["kill", "--all", &id, "KILL"]).status.success());
        wait_for("the container to stop", || world.status(&id) == "stopped");
        oci_fails_with(&world.oci(&["exec", &id, "true"]), 1, "cannot exec in a stopped container");
        assert!(world.oci(&["delete", "--force", &id]).status.success());
        oci_fails_with(&world.oci(&["exec", &id, "true"]), 1, "container does not exist");
    }
}

/// CVE-2019-5736: while zookeeper's code runs in the container (held there
/// by the debug build's ZOOKEEPER_TEST_STALL_MS, just before exec), the
/// exec'd process is non-dumpable: nothing in the container can read its
/// /proc/PID/exe (the host's binary) nor its environment.
#[test]
fn an_execd_process_is_not_dumpable_before_it_execs() {
    for who in BOTH {
        let id = format!("exd-{}", who_name(who));
        let (world, pid) = running_for_exec("exec-dump", who, &id);
        let mut stalled = oci(who, &["--root", world.root.to_str().unwrap(), "exec", &id, "true"]);
        let log = world.root.with_file_name("stalled.err");
        stalled.env("ZOOKEEPER_TEST_STALL_MS", "3000").stdout(Stdio::null());
        stalled.stderr(std::fs::File::create(&log).unwrap());
        let mut stalled = stalled.spawn().unwrap();
        let ns = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        let host_pid = loop {
            // Found as root: the user's ps cannot see a non-dumpable
            // process's namespaces (that is the point).
            let pids = std::fs::read_dir("/proc")
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok());
            if let Some(p) =
                pids.into_iter().find(|p: &i32| *p != pid && ns(*p).is_some() && ns(*p) == ns(pid))
            {
                break p;
            }
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(Instant::now() < deadline, "{who:?}: no exec'd process: {log}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let status = std::fs::read_to_string(format!("/proc/{host_pid}/status")).unwrap();
        let ns_pid =
            status.lines().find(|l| l.starts_with("NSpid:")).unwrap().split_whitespace().last().unwrap();
        for file in ["exe", "environ"] {
            let path = format!("/proc/{ns_pid}/{file}");
            let out = world.oci(&["exec", &id, "sh", "-c", &format!("cat {path} > /dev/null && echo READ")]);
            assert!(!stdout(&out).contains("READ"), "{who:?}: {path} was readable from the container");
        }
        assert!(stalled.wait().unwrap().success(), "{who:?}");
        assert!(world.oci(&["delete", "--force", &id]).status.success());
    }
}

/// `exec --process FILE` runs that process (its args, env, user), and
/// `--tty` with `--console-socket` hands its pty's master over as create does.
#[test]
fn exec_with_a_process_file_and_with_a_terminal() {
    let (world, _) = running_for_exec("exec-proc", As::Root, "exp");
    let process = world.root.with_file_name("process.json");
    let config: Value =
        serde_json::from_slice(&std::fs::read(world.bundle.join("config.json")).unwrap()).unwrap();
    let spec = json!({
        "capabilities": config["process"]["capabilities"],
        "args": ["sh", "-c", "id -u; id -g; echo $ONLY"],
        "env": ["PATH=/bin", "ONLY=from-the-file"],
        "cwd": "/",
        "user": {"uid": 1000, "gid": 1000},
        "terminal": false,
    });
    std::fs::write(&process, serde_json::to_vec(&spec).unwrap()).unwrap();
    let text = ok(world.oci(&["exec", "--process", process.to_str().unwrap(), "exp"]));
    assert_eq!(text, "1000\n1000\nfrom-the-file\n");
    // A process file without capabilities runs with none, as under runc
    // (youki's contest, exec_env: it failed with capset EPERM).
    let bare = json!({"args": ["grep", "^CapEff", "/proc/self/status"], "env": ["PATH=/bin"], "cwd": "/",
        "user": {"uid": 0, "gid": 0}});
    std::fs::write(&process, serde_json::to_vec(&bare).unwrap()).unwrap();
    let text = ok(world.oci(&["exec", "--process", process.to_str().unwrap(), "exp"]));
    assert_eq!(text, "CapEff:\t0000000000000000\n");
    assert_eq!(ok(world.oci(&["exec", "--user", "7:8", "exp", "sh", "-c", "id -u; id -g"])), "7\n8\n");
    // Bad command lines: one line each.
    oci_fails_with(&world.oci(&["exec", "exp"]), 1, "a command is needed");
    oci_fails_with(&world.oci(&["exec", "--user", "me", "exp", "true"]), 1, "UID[:GID]");
    oci_fails_with(&world.oci(&["exec", "--env", "NOEQUALS", "exp", "true"]), 1, "KEY=VALUE");
    oci_fails_with(&world.oci(&["exec", "-p", process.to_str().unwrap(), "exp", "true"]), 1, "exclude");
    // A terminal without a console socket is refused.
    oci_fails_with(&world.oci(&["exec", "--tty", "exp", "true"]), 1, "--console-socket");
    let socket = world.root.with_file_name("exec-console.sock");
    let receiver = console_socket(&socket);
    let root = world.root.to_str().unwrap();
    let mut exec = oci(As::Root, &["--root", root, "exec", "--tty", "--detach", "--console-socket"]);
    exec.arg(&socket).args(["exp", "sh", "-c", "tty; echo via-exec-pty; sleep 2"]);
    let out = detached_output(exec);
    assert!(out.status.success(), "{}", stderr(&out));
    let master = std::fs::File::from(receiver.join().unwrap());
    let mut text = String::new();
    let mut reader = std::io::BufReader::new(master);
    while !text.contains("via-exec-pty") {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) == 0 {
            break;
        }
        text.push_str(&line);
    }
    assert!(text.starts_with("/dev/pts/"), "{text:?}");
    assert!(text.contains("via-exec-pty"), "{text:?}");
    assert!(world.oci(&["delete", "--force", "exp"]).status.success());
}

/// The descriptors a process holds, by number.
fn fds_of(pid: i32) -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    fds.sort();
    fds
}

/// CVE-2024-21626: a directory of the host's that the caller leaks to
/// zookeeper-oci (fd 7 here) and the caller's working directory do not
/// reach the exec'd process: it holds 0-2 only, its cwd and root are the
/// container's root.
#[test]
fn a_leaked_host_directory_does_not_reach_an_execd_process() {
    for who in BOTH {
        let id = format!("exl-{}", who_name(who));
        let (world, pid) = running_for_exec("exec-leak", who, &id);
        let pid_file = world.pid_file.with_file_name("leak-pid");
        let script = format!(
            "exec 7< /; cd /etc; exec {} --root {} exec --detach --pid-file {} {id} sleep 999",
            runtime_binary().display(),
            world.root.display(),
            pid_file.display()
        );
        let mut command = match who {
            As::Root => Command::new("/bin/sh"),
            As::User(user) => {
                let mut c = Command::new("/usr/bin/setpriv");
                c.args([
                    &format!("--reuid={user}"),
                    &format!("--regid={user}"),
                    "--init-groups",
                    "--",
                    "/bin/sh",
                ]);
                c
            }
        };
        command.args(["-c", &script]).env_clear().env("PATH", "/usr/bin:/bin");
        let out = detached_output(command);
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        let exec_pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
        assert_eq!(fds_of(exec_pid), ["0", "1", "2"], "{who:?}");
        let link = |p: i32, what: &str| std::fs::read_link(format!("/proc/{p}/{what}")).unwrap();
        assert_eq!(link(exec_pid, "root"), link(pid, "root"), "{who:?}");
        assert_eq!(link(exec_pid, "cwd"), link(pid, "root"), "{who:?}");
        assert!(world.oci(&["delete", "--force", &id]).status.success());
    }
}

/// A world whose config is `edit`ed before create, created and started.
fn running_with(name: &str, who: As, id: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> World {
    let world = World::new(name, who, args);
    world.edit_config(edit);
    let out = world.create(id);
    assert!(out.status.success(), "{who:?}: {}", stderr(&out));
    let out = world.oci(&["start", id]);
    assert!(out.status.success(), "{who:?}: {}", stderr(&out));
    world
}

/// A capability set's line of /proc/PID/status, as bits.
fn cap_bits(status: &str, key: &str) -> u64 {
    let line = status.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("{key} in {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

/// runc's exec options, given after the id as youki's contest gives them:
/// --cap, --additional-gids, --no-new-privs, --apparmor and
/// --process-label (refused but for empty), --ignore-paused; each seen from
/// inside the exec'd process.
#[test]
fn exec_options_after_the_id_take_effect_inside() {
    const CAP_NET_ADMIN: u64 = 1 << 12;
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    for who in BOTH {
        let id = format!("exo-{}", who_name(who));
        // runc's config sets no_new_privs; this one leaves it to --no-new-privs.
        let world = running_with("exec-opts", who, &id, &["sleep", "1000"], |config| {
            config["process"]["noNewPrivileges"] = json!(false);
        });
        let status = |extra: &[&str]| {
            let mut args = vec!["exec", id.as_str()];
            args.extend_from_slice(extra);
            args.extend(["cat", "/proc/self/status"]);
            ok(world.oci(&args))
        };
        let plain = status(&[]);
        for key in ["CapEff:", "CapBnd:", "CapPrm:"] {
            assert_eq!(cap_bits(&plain, key) & (CAP_NET_ADMIN | CAP_SYS_ADMIN), 0, "{who:?}: {plain}");
        }
        assert!(plain.contains("NoNewPrivs:\t0\n"), "{who:?}: {plain}");
        let added =
            status(&["--cap", "CAP_SYS_ADMIN", "-c", "CAP_NET_ADMIN", "--no-new-privs", "--ignore-paused"]);
        for key in ["CapEff:", "CapBnd:", "CapPrm:"] {
            let bits = cap_bits(&added, key);
            assert_eq!(bits, cap_bits(&plain, key) | CAP_NET_ADMIN | CAP_SYS_ADMIN, "{who:?}: {key} {added}");
        }
        assert!(added.contains("NoNewPrivs:\t1\n"), "{who:?}: {added}");
        // runc's config has no inheritable set, so nothing ambient either.
        assert_eq!(cap_bits(&added, "CapAmb:"), 0, "{who:?}: {added}");
        let groups = world.oci(&[
            "exec",
            &id,
            "-g",
            "10",
            "--additional-gids=20",
            "grep",
            "^Groups",
            "/proc/self/status",
        ]);
        match who {
            As::Root => assert_eq!(ok(groups), "Groups:\t10 20 \n"),
            // runc spec --rootless maps one id: the kernel denies setgroups.
            As::User(_) => oci_fails_with(&groups, 1, "supplementary groups need a gid map"),
        }
        // An empty profile or label is no profile; a named one cannot be had.
        assert_eq!(ok(world.oci(&["exec", &id, "--apparmor", "", "--process-label=", "echo", "x"])), "x\n");
        oci_fails_with(&world.oci(&["exec", &id, "--apparmor", "docker-default", "true"]), 1, "AppArmor");
        oci_fails_with(&world.oci(&["exec", &id, "--process-label", "a:b:c:s0", "true"]), 1, "SELinux");
        oci_fails_with(&world.oci(&["exec", &id, "-g", "ten", "true"]), 1, "a group number expected");
        oci_fails_with(&world.oci(&["exec", &id, "--cap", "CAP_NOPE", "true"]), 1, "CAP_NOPE");
        assert!(world.oci(&["delete", "--force", &id]).status.success());
    }
}

/// `--preserve-fds N` hands descriptors 3..3+N of the caller's to the
/// exec'd process and to the container's first process (create), and
/// nothing else; a descriptor that is not open is a one-line refusal.
#[test]
fn preserve_fds_hands_descriptors_on() {
    for who in BOTH {
        let id = format!("exf-{}", who_name(who));
        let world = World::new(
            "exec-fds",
            who,
            &["sh", "-c", "cat <&3 > /out/first; ls /proc/self/fd > /out/first-fds; exec sleep 1000"],
        );
        let (one, two) = (world.out.with_file_name("one"), world.out.with_file_name("two"));
        std::fs::write(&one, "one\n").unwrap();
        std::fs::write(&two, "two\n").unwrap();
        let runtime = runtime_binary().display().to_string();
        let root = world.root.display().to_string();
        // Through a shell of who's, which opens 3 (and 4) for it.
        let via_shell = |script: String| {
            let mut command = match who {
                As::Root => Command::new("/bin/sh"),
                As::User(user) => {
                    let mut c = Command::new("/usr/bin/setpriv");
                    c.args([
                        &format!("--reuid={user}"),
                        &format!("--regid={user}"),
                        "--init-groups",
                        "--",
                        "/bin/sh",
                    ]);
                    c
                }
            };
            command
                .args(["-c", &script])
                .current_dir(&fixture().dir)
                .env_clear()
                .env("PATH", "/usr/bin:/bin");
            detached_output(command)
        };
        world.ids.borrow_mut().push(id.clone());
        let out = via_shell(format!(
            "exec 3< {}; exec {runtime} --root {root} create --preserve-fds 1 --bundle {} --pid-file {} {id}",
            one.display(),
            world.bundle.display(),
            world.pid_file.display()
        ));
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        assert!(world.oci(&["start", &id]).status.success());
        let first = world.out.join("first-fds");
        wait_for("the first process to write", || {
            std::fs::read_to_string(&first).is_ok_and(|t| !t.is_empty())
        });
        assert_eq!(std::fs::read_to_string(world.out.join("first")).unwrap(), "one\n", "{who:?}");
        // 0-2, 3, and the directory ls reads.
        let fds = std::fs::read_to_string(&first).unwrap();
        assert_eq!(fds.lines().count(), 5, "{who:?}: {fds}");
        let out = via_shell(format!(
            "exec 3< {} 4< {}; exec {runtime} --root {root} exec {id} --preserve-fds 2 sh -c 'cat <&3; cat <&4; ls /proc/self/fd'",
            one.display(),
            two.display()
        ));
        assert!(out.status.success(), "{who:?}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.starts_with("one\ntwo\n"), "{who:?}: {text}");
        // 0-4 and ls's directory.
        assert_eq!(text.lines().count(), 2 + 6, "{who:?}: {text}");
        let out = via_shell(format!(
            "exec 3< {}; exec {runtime} --root {root} exec --preserve-fds 2 {id} true",
            one.display()
        ));
        oci_fails_with(&out, 1, "descriptor 4 is not open");
        oci_fails_with(&world.oci(&["exec", "--preserve-fds", "x", &id, "true"]), 1, "--preserve-fds");
        assert!(world.oci(&["delete", "--force", &id]).status.success());
    }
}

/// `exec --cgroup CONTROLLER:PATH` puts the process in an existing
/// sub-cgroup of the container's (runc's cgroup v1 form; a bare PATH
/// names it in every hierarchy); delete removes the sub-cgroup too.
#[test]
fn exec_joins_a_sub_cgroup() {
    let id = "exg";
    let (world, _) = running_for_exec("exec-cgroup", As::Root, id);
    let saved: Value =
        serde_json::from_slice(&std::fs::read(world.root.join(id).join("state.json")).unwrap()).unwrap();
    let dirs: Vec<PathBuf> =
        saved["cgroupDirs"].as_array().unwrap().iter().map(|d| PathBuf::from(d.as_str().unwrap())).collect();
    assert!(!dirs.is_empty(), "a root container has cgroups: {saved}");
    let controller = dirs[0].strip_prefix("/sys/fs/cgroup").unwrap().iter().next().unwrap().to_str().unwrap();
    let sub = dirs[0].join("sub");
    std::fs::create_dir(&sub).unwrap();
    let arg = format!("{controller}:sub");
    let text = ok(world.oci(&["exec", id, "--cgroup", &arg, "cat", "/proc/self/cgroup"]));
    let line = text.lines().find(|l| l.split(':').nth(1) == Some(controller)).unwrap();
    assert!(line.ends_with("/sub"), "{line}: {text}");
    for other in text.lines().filter(|l| l.split(':').nth(1) != Some(controller)) {
        assert!(!other.ends_with("/sub"), "{other}");
    }
    if dirs.len() > 1 {
        oci_fails_with(&world.oci(&["exec", "--cgroup", "sub", id, "true"]), 1, "no such cgroup");
    }
    oci_fails_with(
        &world.oci(&["exec", "--cgroup", "nope:sub", id, "true"]),
        1,
        "no cgroup of controller nope",
    );
    oci_fails_with(&world.oci(&["exec", "--cgroup", &format!("{controller}:../x"), id, "true"]), 1, "below");
    assert!(world.oci(&["delete", "--force", id]).status.success());
    assert!(!dirs[0].exists(), "{} is left", dirs[0].display());
    // A user's container on cgroup v1 has no cgroup to go below.
    let (world, _) = running_for_exec("exec-cgroup", USER, "exg-user");
    oci_fails_with(&world.oci(&["exec", "--cgroup", "sub", "exg-user", "true"]), 1, "no cgroup of its own");
}

/// containerd's shim, podman and the kubelet may drive one container at
/// once: concurrent deletes, kills and execs each give a clear result, one
/// delete wins, and nothing of the container is left.
#[test]
fn concurrent_deletes_kills_and_execs_are_serialised() {
    // What each verb said, over all rounds: shown with --nocapture, so a
    // run can be seen to have raced (execs both before and after deletes).
    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    for who in BOTH {
        for round in 0..8 {
            let id = format!("race-{}-{round}", who_name(who));
            let world = running_with("race-all", who, &id, &["sleep", "1000"], |_| {});
            let pid = world.pid();
            let saved: Value =
                serde_json::from_slice(&std::fs::read(world.root.join(&id).join("state.json")).unwrap())
                    .unwrap();
            let root = world.root.to_str().unwrap().to_string();
            let verbs: [&[&str]; 6] = [
                &["exec", &id, "sh", "-c", "echo in"],
                &["delete", "--force", &id],
                &["kill", &id, "KILL"],
                &["exec", &id, "true"],
                &["delete", "--force", &id],
                &["kill", &id, "9"],
            ];
            let running: Vec<_> = verbs
                .iter()
                .map(|args| {
                    let mut all = vec!["--root", root.as_str()];
                    all.extend_from_slice(args);
                    let mut command = oci(who, &all);
                    command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
                })
                .collect();
            let outs: Vec<Output> = running.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
            let mut deleted = 0;
            for (args, out) in verbs.iter().zip(&outs) {
                let err = stderr(out);
                let said = |words: &[&str]| err.lines().count() == 1 && words.iter().any(|w| err.contains(w));
                let fine = match (args[0], out.status.code()) {
                    ("delete", Some(0)) => {
                        deleted += 1;
                        true
                    }
                    ("kill", Some(0)) => true,
                    // Its process ran, or a delete killed it.
                    ("exec", Some(0 | 137)) => true,
                    (_, Some(1)) => said(&[
                        "container does not exist",
                        "container not running",
                        "cannot exec in a stopped container",
                    ]),
                    ("exec", Some(125)) => said(&["cannot exec in a stopped container"]),
                    _ => false,
                };
                assert!(fine, "{who:?} round {round}: {args:?}: {:?} {err:?}", out.status);
                let word = err.rsplit("error: ").next().unwrap_or("").split(':').next().unwrap_or("").trim();
                *seen.entry(format!("{} {:?} {word}", args[0], out.status.code())).or_default() += 1;
            }
            assert_eq!(deleted, 1, "{who:?} round {round}: {outs:?}");
            assert_gone(&world, &id);
            wait_for("the container's process to go", || !alive(pid));
            for dir in saved["cgroupDirs"].as_array().unwrap() {
                assert!(!Path::new(dir.as_str().unwrap()).exists(), "{who:?}: {dir} is left");
            }
            assert!(!world.root.join(&id).exists(), "{who:?}: the state directory is left");
        }
    }
    eprintln!("outcomes: {seen:#?}");
}

/// process.ioPriority, process.scheduler and linux.memoryPolicy reach the
/// container's first process and an exec'd one; process.execCPUAffinity
/// only the exec'd one (initial, then final once in the cgroup); without
/// one (or an empty one) the exec'd process may run on every CPU, whatever
/// zookeeper-oci's caller was pinned to, as under runc.
#[test]
fn process_scheduling_fields_reach_the_processes() {
    let cpus = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    assert_eq!(cpus.trim(), "0-1", "this test needs a host with CPUs 0 and 1 exactly online, not {cpus}");
    let report = "grep -E '^(policy|prio) ' /proc/self/sched; zoo-probe ioprio; zoo-probe mempolicy; \
                  grep Cpus_allowed_list /proc/self/status";
    let normal = |text: &str| -> Vec<String> {
        text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
    };
    for who in BOTH {
        let id = format!("sched-{}", who_name(who));
        let script = format!("({report}) > /out/first.tmp; mv /out/first.tmp /out/first; exec sleep 1000");
        let world = running_with("sched", who, &id, &["sh", "-c", &script], |config| {
            config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
            config["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
            config["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "1"});
            config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
        });
        let first = world.out.join("first");
        wait_for("the first process's report", || first.exists());
        let expected = |cpus: &str| {
            vec![
                "policy : 3".to_string(),
                "prio : 125".to_string(),
                "class 2 level 6".to_string(),
                "mode 2 nodes 0x1".to_string(),
                format!("Cpus_allowed_list: {cpus}"),
            ]
        };
        assert_eq!(normal(&std::fs::read_to_string(&first).unwrap()), expected("0-1"), "{who:?}");
        let text = ok(world.oci(&["exec", &id, "sh", "-c", report]));
        assert_eq!(normal(&text), expected("1"), "{who:?}");
        // A process file of its own: its scheduling, none of the others.
        let process = world.root.with_file_name("process.json");
        let spec = json!({"args": ["sh", "-c", report], "env": ["PATH=/bin"], "cwd": "/",
            "user": {"uid": 0, "gid": 0}, "execCPUAffinity": {}, "scheduler": {"policy": "SCHED_IDLE"}});
        std::fs::write(&process, serde_json::to_vec(&spec).unwrap()).unwrap();
        let text = ok(world.oci(&["exec", "--process", process.to_str().unwrap(), &id]));
        let lines = normal(&text);
        assert_eq!(lines[0], "policy : 5", "{who:?}: {text}");
        assert_eq!(lines[2], "class 0 level 0", "{who:?}: no I/O priority of its own: {text}");
        // linux.memoryPolicy is the container's: exec'd processes get it too.
        assert_eq!(lines[3], "mode 2 nodes 0x1", "{who:?}: {text}");
        assert_eq!(lines[4], "Cpus_allowed_list: 0-1", "{who:?}: {text}");
        // Nor does it inherit a caller's pinning, as under runc; with an
        // initial affinity only, it keeps that one.
        let pinned = |spec: Value| {
            std::fs::write(&process, serde_json::to_vec(&spec).unwrap()).unwrap();
            let command = oci(who, &[]);
            let program = command.get_program().to_owned();
            let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
            let mut command = Command::new("taskset");
            command.args(["-c", "0"]).arg(program).args(args);
            command.args([
                "--root",
                world.root.to_str().unwrap(),
                "exec",
                "-p",
                process.to_str().unwrap(),
                &id,
            ]);
            command.current_dir(&fixture().dir).env_clear().env("PATH", "/usr/bin:/bin").stdin(Stdio::null());
            normal(&ok(command.output().unwrap()))[4].clone()
        };
        let bare = json!({"args": ["sh", "-c", report], "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}});
        assert_eq!(pinned(bare.clone()), "Cpus_allowed_list: 0-1", "{who:?}");
        let mut initial = bare;
        initial["execCPUAffinity"] = json!({"initial": "1"});
        assert_eq!(pinned(initial), "Cpus_allowed_list: 1", "{who:?}");
        assert!(world.oci(&["delete", "--force", &id]).status.success());
    }
}

/// containerd and podman exec as soon as start returns, while the first
/// process may still be between the gate and its command (zookeeper's
/// code, non-dumpable: a user cannot open its namespaces yet): exec waits
/// for it. Before start a user's exec is refused in one line; root's joins.
#[test]
fn exec_right_after_start_and_before_it() {
    for who in BOTH {
        let world = World::new("exec-early", who, &["sleep", "1000"]);
        for round in 0..5 {
            let id = format!("early-{}-{round}", who_name(who));
            assert!(world.create(&id).status.success());
            assert!(world.oci(&["start", &id]).status.success());
            assert_eq!(ok(world.oci(&["exec", &id, "echo", "in"])), "in\n", "{who:?} round {round}");
            assert!(world.oci(&["delete", "--force", &id]).status.success());
        }
        let id = format!("early-{}-created", who_name(who));
        assert!(world.create(&id).status.success());
        let out = world.oci(&["exec", &id, "echo", "in"]);
        match who {
            As::Root => assert_eq!(ok(out), "in\n"),
            As::User(_) => oci_fails_with(&out, 1, "can be joined only by root until start"),
        }
        assert!(world.oci(&["delete", "--force", &id]).status.success());
    }
}

/// A Kubernetes pod as containerd's CRI plugin makes it (docs/kubernetes.md):
/// the sandbox (the pause container) has the pod's hostname in a uts
/// namespace of its own; each container of the pod joins the sandbox's uts,
/// ipc and network namespaces by path, names no hostname, and has the pod's
/// /etc/hostname bound in. The container sees the pod's name and that file
/// (not one of zookeeper's); a container that names another hostname is
/// refused, and the pod keeps its name.
#[test]
fn a_pods_container_joins_its_sandboxs_namespaces_and_keeps_the_pods_etc_files() {
    let edit = |world: &World, change: &dyn Fn(&mut Value)| world.edit_config(change);
    let sandbox = World::new("pod-sandbox", As::Root, &["sleep", "1000"]);
    edit(&sandbox, &|c| c["hostname"] = json!("zk-pod"));
    assert!(sandbox.create("sandbox").status.success());
    assert!(sandbox.oci(&["start", "sandbox"]).status.success());
    let pid = sandbox.pid();
    let ns = |p: &str, kind: &str| std::fs::read_link(format!("/proc/{p}/ns/{kind}")).unwrap();

    let script = "hostname; cat /etc/hostname; for n in uts ipc net; do readlink /proc/self/ns/$n; done";
    let app = World::new("pod-app", As::Root, &["sh", "-c", script]);
    let pod_file = app.bundle.with_file_name("hostname");
    std::fs::write(&pod_file, "the-pod's-file\n").unwrap();
    let joined = |c: &mut Value| {
        c.as_object_mut().unwrap().remove("hostname");
        let namespaces = c["linux"]["namespaces"].as_array_mut().unwrap();
        for ns in namespaces.iter_mut() {
            if let Some(kind @ ("uts" | "ipc" | "network")) = ns["type"].as_str() {
                let file = if kind == "network" { "net" } else { kind };
                ns["path"] = json!(format!("/proc/{pid}/ns/{file}"));
            }
        }
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/etc/hostname", "type": "bind",
            "source": pod_file.to_str().unwrap(), "options": ["rbind", "rprivate", "rw"]}));
    };
    edit(&app, &joined);
    let out = app.oci(&["run", "--bundle", app.bundle.to_str().unwrap(), "app"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected: Vec<String> = ["zk-pod".to_string(), "the-pod's-file".to_string()]
        .into_iter()
        .chain(["uts", "ipc", "net"].map(|kind| ns(&pid.to_string(), kind).to_string_lossy().into_owned()))
        .collect();
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), expected);

    // Another name would rename the pod (and every container in it).
    edit(&app, &|c| c["hostname"] = json!("other"));
    let out = app.oci(&["run", "--bundle", app.bundle.to_str().unwrap(), "app2"]);
    oci_fails_with(&out, 1, "would rename every process in that namespace");
    assert_eq!(ok(sandbox.oci(&["exec", "sandbox", "hostname"])), "zk-pod\n");
    // The same name is no change: accepted.
    edit(&app, &|c| c["hostname"] = json!("zk-pod"));
    let out = app.oci(&["run", "--bundle", app.bundle.to_str().unwrap(), "app3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(sandbox.oci(&["delete", "--force", "sandbox"]).status.success());
}

/// Kubernetes' pause image holds nothing but `/pause`: with no user
/// namespace in the config (containerd's, podman's), the missing /proc and
/// /dev are made in the rootfs, as runc makes them; under the container's
/// own user namespace (`runc spec --rootless`) they are refused, as for
/// `zookeeper -r`, and nothing is made.
#[test]
fn a_rootfs_without_proc_and_dev_gets_them_only_without_a_user_namespace() {
    for who in BOTH {
        let world = World::new("bare", who, &["/bin/sh", "-c", "cat /proc/self/comm; ls /dev/null"]);
        let rootfs = world.bundle.join("rootfs");
        for dir in ["proc", "dev", "sys"] {
            std::fs::remove_dir_all(rootfs.join(dir)).unwrap();
        }
        let id = format!("bare-{}", who_name(who));
        let out = world.oci(&["run", "--bundle", world.bundle.to_str().unwrap(), &id]);
        match who {
            As::Root => {
                assert!(out.status.success(), "{}", stderr(&out));
                assert_eq!(stdout(&out), "cat\n/dev/null\n");
                for dir in ["proc", "dev"] {
                    let meta = std::fs::symlink_metadata(rootfs.join(dir)).unwrap();
                    assert!(meta.is_dir(), "{dir}");
                }
            }
            As::User(_) => {
                oci_fails_with(&out, 1, "the container's root has no /proc directory");
                assert!(!rootfs.join("proc").exists() && !rootfs.join("dev").exists());
            }
        }
    }
}
