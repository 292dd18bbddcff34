//! Networking (SPEC.md 3.7): loopback in every container; with -n,
//! slirp4netns behind eth0, ready before the command starts and gone after.
//! Only loopback and the container's own namespace carry traffic here.

mod common;

use common::*;
use std::time::{Duration, Instant};

const USER: As = As::User(RANGED_USER);

/// The tests that start slirp4netns take turns, so that counting its
/// processes sees only one test's.
static SLIRP: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SLIRP.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Live (not zombie) slirp4netns processes on the host (any owner): none may
/// outlive zookeeper by more than its dying. zookeeper kills it and does not
/// wait for the kernel to take its tap device down (src/network.rs); a
/// zombie is init's to reap once zookeeper has gone (this machine's init
/// reaps its orphans within about two seconds).
fn slirp_processes() -> Vec<u32> {
    helper_processes(&["slirp4netns"])
        .into_iter()
        .filter(|(_, zombie, _)| !zombie)
        .map(|(pid, ..)| pid)
        .collect()
}

/// Processes named one of `names`: (pid, whether a zombie, parent pid).
fn helper_processes(names: &[&str]) -> Vec<(u32, bool, u32)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (open, close) = (stat.find('(')?, stat.rfind(')')?);
            let mut rest = stat[close + 1..].split_whitespace();
            let (state, parent) = (rest.next()?, rest.next()?.parse().ok()?);
            names.contains(&&stat[open + 1..close]).then_some((pid, state == "Z", parent))
        })
        .collect()
}

/// Whether every live slirp4netns is one of `before` (which may include one
/// an earlier test's zookeeper left dying, gone since).
fn none_but(before: &[u32]) -> bool {
    slirp_processes().iter().all(|pid| before.contains(pid))
}

/// Waits up to a second for `done`: what a helper may take to die.
fn within_a_second(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(1);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn eth0_is_configured_when_the_command_starts() {
    let _turn = one_at_a_time();
    // The very first thing the command does is look: no sleep, no retry.
    for who in [USER, As::Root] {
        let out = ok(run_in_rootfs(
            who,
            &["-n", "sh", "-c", "ip -o -4 addr show eth0; ip route show default; ip -o link show eth0"],
        ));
        assert!(out.contains("inet 10.0.2.100/24"), "{out}");
        assert!(out.contains("default via 10.0.2.2 dev eth0"), "{out}");
        assert!(out.contains("mtu 65521"), "{out}");
        assert!(out.contains("state UP") || out.contains(",UP"), "{out}");
    }
}

#[test]
fn loopback_is_up_in_every_mode() {
    let _turn = one_at_a_time();
    for extra in [&[][..], &["-n"][..]] {
        let mut args = extra.to_vec();
        args.extend(["ip", "-o", "link", "show", "lo"]);
        let out = ok(run_in_rootfs(USER, &args));
        assert!(out.contains("LOOPBACK,UP"), "{extra:?}: {out}");
    }
    // A service on localhost inside the container answers.
    // The client tries until the listener is up (a fixed sleep lost the race
    // on a loaded machine).
    let script = "d=$(mktemp -d); nc -l -p 5000 > $d/got & i=0; \
        until echo hello-lo | nc 127.0.0.1 5000 2>/dev/null || [ $i -ge 200 ]; do i=$((i+1)); sleep 0.05; done; \
        wait; cat $d/got";
    assert_eq!(ok(run_in_rootfs(USER, &["sh", "-c", script])), "hello-lo\n");
}

#[test]
fn without_n_there_is_no_way_out() {
    let out = ok(run_in_rootfs(USER, &["sh", "-c", "ip -o link | wc -l; ip route | wc -l"]));
    assert_eq!(out, "1\n0\n", "only lo, no routes");
}

#[test]
fn slirp4netns_never_outlives_zookeeper() {
    let _turn = one_at_a_time();
    let before = slirp_processes();
    assert!(ok(run_in_rootfs(USER, &["-n", "true"])).is_empty());
    assert_eq!(run_in_rootfs(USER, &["-n", "sh", "-c", "exit 5"]).status.code(), Some(5));
    fails_with(&run_in_rootfs(USER, &["-n", "no-such-command"]), 127, "not found");
    within_a_second("slirp4netns outlived zookeeper", || none_but(&before));

    // SIGTERM to zookeeper: forwarded, the container ends, slirp4netns goes.
    let fx = fixture();
    let mut child = zookeeper(
        USER,
        &[
            "-r",
            fx.rootfs.to_str().unwrap(),
            "-n",
            "sh",
            "-c",
            "trap 'exit 9' TERM; echo up; while :; do sleep 0.05; done",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut up = [0u8; 3];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut up).unwrap();
    assert!(!none_but(&before), "slirp4netns should be running");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(9));
    within_a_second("slirp4netns outlived zookeeper's SIGTERM", || none_but(&before));

    // SIGKILL to zookeeper: it cannot clean up, yet slirp4netns (its exit
    // fd closed) and the container (its parent-death signal) still go.
    let mut child =
        zookeeper(USER, &["-r", fx.rootfs.to_str().unwrap(), "-n", "sh", "-c", "echo up; sleep 100"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut up).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !none_but(&before) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(none_but(&before), "slirp4netns survived zookeeper's SIGKILL");
    // What only zookeeper could remove: its /tmp/zoo.* directory.
    let removed = ok(zookeeper(USER, &["--cleanup"]).output().unwrap());
    assert_eq!(removed.lines().filter(|l| l.starts_with("removed /tmp/zoo.")).count(), 1, "{removed}");
}

#[test]
fn a_missing_slirp4netns_is_one_clear_line() {
    let fx = fixture();
    let out = zookeeper(As::Root, &["-r", fx.rootfs.to_str().unwrap(), "-n", "true"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    fails_with(&out, 125, "networking (-n) needs slirp4netns, which is not installed");
}

#[test]
fn names_resolve_to_the_container_and_dns_to_the_forwarder() {
    let _turn = one_at_a_time();
    let fx = fixture();
    let script = "cat /etc/hostname; grep -w zoo /etc/hosts; cat /etc/resolv.conf";
    let out = ok(run_in_rootfs(USER, &["-n", "sh", "-c", script]));
    assert_eq!(out, "zoo\n10.0.2.100\tzoo\nnameserver 10.0.2.3\n");
    let out = ok(run_in_rootfs(USER, &["sh", "-c", script]));
    assert_eq!(out, "zoo\n127.0.1.1\tzoo\n", "no network: no DNS server");
    for name in ["resolv.conf", "hosts", "hostname"] {
        assert_eq!(
            std::fs::read_to_string(fx.rootfs.join("etc").join(name)).unwrap(),
            "",
            "the rootfs's {name} changed"
        );
    }
    // The default root keeps the host's resolv.conf when it names a server
    // the container can reach (no loopback address), and replaces it when not.
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let reachable = host
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .any(|a| a.trim().parse::<std::net::IpAddr>().is_ok_and(|ip| !ip.is_loopback()));
    let inside = ok(zookeeper(USER, &["-n", "cat", "/etc/resolv.conf"]).output().unwrap());
    if reachable {
        assert_eq!(inside, host);
    } else {
        assert_eq!(inside, "nameserver 10.0.2.3\n");
    }
}

/// What a server in the container says to a client on the host's loopback
/// that connects to `port`, retried until the server listens.
fn fetch_through(port: u16) -> String {
    fetch_through_at("127.0.0.1", port)
}

/// [`fetch_through`] from the host address `ip`.
fn fetch_through_at(ip: &str, port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = std::net::TcpStream::connect((ip, port)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut reply = String::new();
            std::io::Read::read_to_string(&mut s, &mut reply)?;
            Ok(reply)
        });
        match attempt {
            Ok(reply) if !reply.is_empty() => return reply,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("no answer through published port {port}: {other:?}"),
        }
    }
}

fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }
}

#[test]
fn published_ports_reach_the_container_from_host_loopback() {
    let _turn = one_at_a_time();
    let fx = fixture();
    let rootfs = fx.rootfs.to_str().unwrap();
    // TCP: a server in the container answers a client on the host's 127.0.0.1.
    let port = free_port(false);
    let publish = format!("{port}:80");
    let server =
        zookeeper(USER, &["-r", rootfs, "--publish", &publish, "sh", "-c", "echo hello-tcp | nc -l -p 80"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
    let reply = fetch_through(port);
    assert_eq!(reply, "hello-tcp\n");
    assert!(server.wait_with_output().unwrap().status.success());

    // UDP: datagrams sent to the host port arrive in the container.
    let port = free_port(true);
    let publish = format!("127.0.0.1:{port}:5353/udp");
    let mut receiver =
        zookeeper(USER, &["-r", rootfs, "--publish", &publish, "zoo-probe", "udp-recv", "5353"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let mut listening = [0u8; 10];
    std::io::Read::read_exact(receiver.stdout.as_mut().unwrap(), &mut listening).unwrap();
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().send_to(b"hello-udp\n", ("127.0.0.1", port)).unwrap();
    let out = receiver.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "hello-udp\n");
    assert!(out.status.success());
}

#[test]
fn a_port_that_cannot_be_published_is_one_clear_line() {
    let _turn = one_at_a_time();
    let fx = fixture();
    // 192.0.2.1 (TEST-NET-1) is no address of this host: binding it fails, nothing is sent.
    let out = run_in_rootfs(USER, &["--publish", "192.0.2.1:18081:80", "true"]);
    fails_with(
        &out,
        125,
        "--publish 192.0.2.1:18081:80/tcp: bad request: add_hostfwd: slirp_add_hostfwd failed",
    );
    let _ = fx;
}

fn pasta_processes() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        // pasta re-executes itself as passt.avx2 where the CPU has AVX2.
        // Zombies (its helpers, handed to init) are gone, just not reaped yet.
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { return false };
            let comm = &stat[open + 1..close];
            let state = stat[close + 1..].split_whitespace().next().unwrap_or("");
            matches!(comm, "pasta" | "passt" | "pasta.avx2" | "passt.avx2") && state != "Z"
        })
        .count()
}

#[test]
fn pasta_configures_the_network_publishes_ports_and_goes_away() {
    let _turn = one_at_a_time();
    let fx = fixture();
    let rootfs = fx.rootfs.to_str().unwrap();
    let before = pasta_processes();
    for who in [USER, As::Root] {
        let out = ok(run_in_rootfs(
            who,
            &["--network", "pasta", "sh", "-c", "ip -o -4 addr show scope global; ip route show default"],
        ));
        assert!(out.contains("inet ") && out.contains("default via"), "as {who:?}: {out}");
        assert!(
            ok(run_in_rootfs(who, &["--network", "pasta", "ip", "-o", "link", "show", "lo"]))
                .contains("LOOPBACK,UP")
        );
    }
    let port = free_port(false);
    let publish = format!("{port}:80");
    let server = zookeeper(
        USER,
        &[
            "-r",
            rootfs,
            "--network",
            "pasta",
            "--publish",
            &publish,
            "sh",
            "-c",
            "echo hello-pasta | nc -l -p 80",
        ],
    )
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let reply = fetch_through(port);
    assert_eq!(reply, "hello-pasta\n");
    assert!(server.wait_with_output().unwrap().status.success());
    // (At most as many as before: one that was ending then may be gone now.)
    within_a_second("pasta outlived zookeeper", || pasta_processes() <= before);
    // A failing command and a bad option leave none either.
    fails_with(&run_in_rootfs(USER, &["--network", "pasta", "no-such-command"]), 127, "not found");
    fails_with(&run_in_rootfs(USER, &["--network", "none", "-n", "true"]), 125, "--network none contradicts");
    within_a_second("pasta outlived zookeeper", || pasta_processes() <= before);

    // pasta does not notice a SIGKILLed zookeeper; --cleanup stops it.
    let mut child = zookeeper(USER, &["-r", rootfs, "--network", "pasta", "sh", "-c", "echo up; sleep 100"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut up = [0u8; 3];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut up).unwrap();
    assert!(pasta_processes() > 0, "pasta runs");
    child.kill().unwrap();
    child.wait().unwrap();
    let removed = ok(zookeeper(USER, &["--cleanup"]).output().unwrap());
    assert!(removed.contains("/pasta.pid"), "{removed}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pasta_processes() > before {
        assert!(Instant::now() < deadline, "pasta survived --cleanup");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn mtu_is_what_was_asked_for_with_either_backend() {
    let _turn = one_at_a_time();
    for backend in ["slirp4netns", "pasta"] {
        let out = ok(run_in_rootfs(
            USER,
            &["--network", backend, "--mtu", "1400", "sh", "-c", "ip -o link | grep -v LOOPBACK"],
        ));
        assert!(out.contains("mtu 1400"), "{backend}: {out}");
    }
}

#[test]
fn pasta_publishes_udp_too() {
    let _turn = one_at_a_time();
    let fx = fixture();
    let port = free_port(true);
    let publish = format!("127.0.0.1:{port}:5353/udp");
    let mut receiver = zookeeper(
        USER,
        &[
            "-r",
            fx.rootfs.to_str().unwrap(),
            "--network",
            "pasta",
            "--publish",
            &publish,
            "zoo-probe",
            "udp-recv",
            "5353",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut listening = [0u8; 10];
    std::io::Read::read_exact(receiver.stdout.as_mut().unwrap(), &mut listening).unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // pasta may still be binding its side: send until the container has it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while receiver.try_wait().unwrap().is_none() && Instant::now() < deadline {
        socket.send_to(b"hello-udp\n", ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = receiver.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "hello-udp\n");
}

/// A killed slirp4netns leaves its API socket in the container's
/// /tmp/zoo.XXXXXX; --cleanup used to fail on that directory (not empty)
/// and say nothing (issue item 7). It removes both now, and says so.
#[test]
fn cleanup_removes_a_killed_slirp4netns_socket_and_its_directory() {
    let _turn = one_at_a_time();
    let fx = fixture();
    for who in [As::Root, USER] {
        let before = zoo_tmp_dirs();
        let publish = format!("{}:80", free_port(false));
        let mut child = zookeeper(
            who,
            &["-r", fx.rootfs.to_str().unwrap(), "--publish", &publish, "sh", "-c", "echo up; sleep 100"],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        let mut up = [0u8; 3];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut up).unwrap();
        let zk = child.id();
        let slirp: Vec<i32> = std::fs::read_to_string(format!("/proc/{zk}/task/{zk}/children"))
            .unwrap()
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "slirp4netns")
            })
            .collect();
        assert_eq!(slirp.len(), 1, "{who:?}: zookeeper's slirp4netns");
        let dirs: Vec<String> = zoo_tmp_dirs().difference(&before).cloned().collect();
        assert_eq!(dirs.len(), 1, "{who:?}: the container's /tmp/zoo.*: {dirs:?}");
        let dir = std::path::Path::new("/tmp").join(&dirs[0]);
        assert!(dir.join("slirp4netns.sock").exists(), "{who:?}");
        // Neither can clean up: slirp4netns first, so that its socket stays.
        let slirp_pid = nix::unistd::Pid::from_raw(slirp[0]);
        nix::sys::signal::kill(slirp_pid, nix::sys::signal::Signal::SIGKILL).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let out = zookeeper(who, &["--cleanup"]).output().unwrap();
        let report = ok(out);
        assert!(
            report.contains(&format!("removed {}/slirp4netns.sock\n", dir.display())),
            "{who:?}: {report:?}"
        );
        assert!(report.contains(&format!("removed {}\n", dir.display())), "{who:?}: {report:?}");
        assert!(!dir.exists(), "{who:?}: {} is still there", dir.display());
    }
}

/// A network namespace of the test's own that pasta takes for "the host":
/// loopback, and a veth pair (both ends here) with 192.0.2.2/24 and a
/// default route via 192.0.2.1, which nothing answers. Deleted on drop.
struct TestNetns {
    name: String,
}

impl TestNetns {
    fn new() -> TestNetns {
        let name = format!("zk-test-gw-{}", std::process::id());
        let ns = TestNetns { name: name.clone() };
        let ip = |args: &str| {
            let out = std::process::Command::new("ip").args(args.split_whitespace()).output().unwrap();
            assert!(out.status.success(), "ip {args}: {}", stderr(&out));
        };
        ip(&format!("netns add {name}"));
        ip(&format!("-n {name} link set lo up"));
        ip(&format!("-n {name} link add zk0 type veth peer name zk1"));
        ip(&format!("-n {name} addr add 192.0.2.2/24 dev zk0"));
        ip(&format!("-n {name} link set zk0 up"));
        ip(&format!("-n {name} link set zk1 up"));
        ip(&format!("-n {name} route add default via 192.0.2.1"));
        ns
    }

    /// A TCP listener on 127.0.0.1 in the namespace, answering each
    /// connection with a line, until `stop` is set; returns its port and
    /// how many connections it answered.
    fn loopback_listener(
        &self,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> (u16, std::thread::JoinHandle<usize>) {
        let netns = std::fs::File::open(format!("/run/netns/{}", self.name)).unwrap();
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let listener = std::thread::spawn(move || {
            // SAFETY: setns with a namespace descriptor; it moves only this thread.
            let entered = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&netns), libc::CLONE_NEWNET) };
            assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            let mut answered = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = std::io::Write::write_all(&mut conn, b"hello-host-loopback\n");
                        answered += 1;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            answered
        });
        (port_rx.recv().unwrap(), listener)
    }

    /// zookeeper as `who`, started inside the namespace.
    fn zookeeper(&self, who: As, args: &[&str]) -> std::process::Command {
        let fx = fixture();
        let mut command = std::process::Command::new("ip");
        command.args(["netns", "exec", &self.name]);
        if let As::User(user) = who {
            command.args([
                "/usr/bin/setpriv",
                &format!("--reuid={user}"),
                &format!("--regid={user}"),
                "--init-groups",
            ]);
        }
        command.arg(&fx.zookeeper).args(args);
        command.current_dir(&fx.dir).env_clear().env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
        command.stdin(std::process::Stdio::null());
        command
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["netns", "delete", &self.name]).status();
    }
}

/// pasta maps the gateway's address to the host's loopback unless told
/// not to (issue item 3): a container could reach what listens on the
/// host's 127.0.0.1. Tried for real against a listener on the loopback of
/// a namespace the test makes and runs zookeeper in.
#[test]
fn pasta_does_not_lead_the_container_to_the_hosts_loopback() {
    let _turn = one_at_a_time();
    let fx = fixture();
    let ns = TestNetns::new();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (port, listener) = ns.loopback_listener(stop.clone());
    // The listener is there: the namespace itself reaches it.
    let mut reach = std::process::Command::new("ip");
    reach.args(["netns", "exec", &ns.name, "busybox", "nc", "-w", "2", "127.0.0.1", &port.to_string()]);
    assert_eq!(stdout(&reach.output().unwrap()), "hello-host-loopback\n");

    // (timeout: a connection pasta accepted on the gateway's behalf may
    // never be closed.)
    let script = format!("ip route show default; timeout -s KILL 5 nc -w 2 192.0.2.1 {port}; true");
    for who in [As::Root, USER] {
        let out = ns
            .zookeeper(who, &["-r", fx.rootfs.to_str().unwrap(), "--network", "pasta", "sh", "-c", &script])
            .output()
            .unwrap();
        let text = ok(out);
        assert!(text.contains("default via 192.0.2.1"), "{who:?}: the container has no network: {text}");
        assert!(
            !text.contains("hello-host-loopback"),
            "{who:?} reached the host's loopback through the gateway"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(listener.join().unwrap(), 1, "only the namespace's own connection");
}

/// slirp4netns (1.2.0) cannot forward from an IPv6 host address: refused
/// before anything starts, pointing at pasta, which can (issue item 8).
#[test]
fn an_ipv6_host_address_is_published_by_pasta_and_refused_for_slirp4netns() {
    let _turn = one_at_a_time();
    let fx = fixture();
    let rootfs = fx.rootfs.to_str().unwrap();
    for who in [As::Root, USER] {
        let port = std::net::TcpListener::bind("[::1]:0").unwrap().local_addr().unwrap().port();
        let publish = format!("[::1]:{port}:80");
        let out = zookeeper(who, &["-r", rootfs, "--publish", &publish, "true"]).output().unwrap();
        fails_with(
            &out,
            125,
            &format!(
                "--publish [::1]:{port}:80/tcp: slirp4netns cannot forward from an IPv6 host address; use --network pasta"
            ),
        );
        let server = zookeeper(
            who,
            &[
                "-r",
                rootfs,
                "--network",
                "pasta",
                "--publish",
                &publish,
                "sh",
                "-c",
                "echo hello-ipv6 | nc -l -p 80",
            ],
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
        assert_eq!(fetch_through_at("::1", port), "hello-ipv6\n", "{who:?}");
        assert!(server.wait_with_output().unwrap().status.success(), "{who:?}");
    }
}

/// The host port a container published is free the moment zookeeper
/// returns: the test binds it at once, ten times, with either backend.
#[test]
fn a_published_port_is_free_when_zookeeper_returns() {
    let _turn = one_at_a_time();
    for backend in ["slirp4netns", "pasta"] {
        for round in 0..10 {
            let port = free_port(false);
            let publish = format!("127.0.0.1:{port}:80");
            ok(run_in_rootfs(USER, &["--network", backend, "--publish", &publish, "true"]));
            let bound = std::net::TcpListener::bind(("127.0.0.1", port));
            assert!(bound.is_ok(), "{backend}, round {round}: port {port} still taken: {bound:?}");
        }
    }
}

/// A hundred containers with a network, one after the other: a second
/// after the last, no slirp4netns or pasta is left alive, and none is left
/// to a zookeeper to reap (a zombie is init's, handed over when its
/// zookeeper returned).
#[test]
fn no_network_helper_is_left_a_second_after_a_hundred_runs() {
    let _turn = one_at_a_time();
    for (backend, names) in [
        ("slirp4netns", &["slirp4netns"][..]),
        ("pasta", &["pasta", "passt", "pasta.avx2", "passt.avx2"][..]),
    ] {
        let alive = || helper_processes(names).iter().filter(|(_, zombie, _)| !zombie).count();
        let before = alive();
        for round in 0..100 {
            let out = run_in_rootfs(USER, &["--network", backend, "true"]);
            assert!(out.status.success(), "{backend}, round {round}: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_secs(1));
        assert!(alive() <= before, "{backend}: {} alive a second later", alive() - before);
        for (pid, _, parent) in helper_processes(names) {
            let parent_name = std::fs::read_to_string(format!("/proc/{parent}/comm")).unwrap_or_default();
            assert_ne!(parent_name.trim(), "zookeeper", "{backend} {pid} is left to zookeeper {parent}");
        }
    }
}
