//! The container's network.

use anyhow::{Context, Result};

/// Brings up `lo` in the current (new) network namespace, which the kernel
/// creates down, so that localhost works inside every container.
pub fn bring_up_loopback() -> Result<()> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    use std::os::fd::AsRawFd;

    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .context("bringing up loopback: socket")?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    request.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads an ifreq that outlives the call.
    let ret = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &request) };
    if ret == -1 {
        return Err(std::io::Error::last_os_error()).context("bringing up loopback");
    }
    Ok(())
}

/// slirp4netns's DNS forwarder, on its default 10.0.2.0/24 network.
pub const SLIRP4NETNS_DNS: &str = "10.0.2.3";

/// The address pasta is told to forward DNS from (`--dns-forward`) to the
/// host's first resolver, as podman does: link-local, so it is nobody's
/// real server and its packets take the default route, to pasta.
pub const PASTA_DNS: &str = "169.254.1.1";

/// The DNS forwarder the container's network backend offers, if any.
pub fn dns_forwarder(network: crate::spec::Network) -> Option<&'static str> {
    match network {
        crate::spec::Network::Slirp4netns => Some(SLIRP4NETNS_DNS),
        crate::spec::Network::Pasta => Some(PASTA_DNS),
        crate::spec::Network::LoopbackOnly => None,
    }
}

/// slirp4netns, the user-space network stack behind the container's eth0
/// (SPEC.md 3.7). Stopped and reaped on drop, on every path.
pub struct Slirp4netns {
    /// Taken when it is killed.
    child: Option<std::process::Child>,
    /// Where slirp4netns says "1" once eth0 is configured.
    ready: std::os::fd::OwnedFd,
    /// Its stderr, quoted if it fails.
    log: std::os::fd::OwnedFd,
    /// Its API socket, for --publish; removed on drop.
    api_socket: Option<std::path::PathBuf>,
    /// The forwards `add_hostfwd` made, by the ids it gave them.
    forwards: Vec<u64>,
    /// Closing this makes slirp4netns exit by itself, even if zookeeper is
    /// killed and cannot stop it (its --exit-fd).
    _exit_signal: std::os::fd::OwnedFd,
}

impl Slirp4netns {
    /// Starts slirp4netns for the container `pid` with the assignment's
    /// arguments. Wait for [`Self::ready_fd`], then call [`Self::confirm_ready`].
    pub fn start(pid: i32, mtu: Option<u32>, api_socket: Option<&std::path::Path>) -> Result<Slirp4netns> {
        use nix::fcntl::OFlag;
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;

        let program = crate::idmap::find_in_path("slirp4netns").context(
            "networking (-n) needs slirp4netns, which is not installed (Debian: apt install slirp4netns)",
        )?;
        let (ready_read, ready_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating a pipe")?;
        let (exit_read, exit_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating a pipe")?;
        // Its complaints, kept out of the user's terminal and read on failure.
        let log = nix::sys::memfd::memfd_create("slirp4netns-log", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .context("creating a log for slirp4netns")?;
        // The container's namespaces, opened here while its first process
        // is still dumpable, and handed on as descriptors: slirp4netns joins
        // them while that process may already be non-dumpable (it sets
        // itself up meanwhile), which would refuse their /proc/PID/ns links.
        let open_ns = |kind: &str| {
            nix::fcntl::open(
                format!("/proc/{pid}/ns/{kind}").as_str(),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .with_context(|| format!("opening the container's {kind} namespace for slirp4netns"))
        };
        let (userns, netns) = (open_ns("user")?, open_ns("net")?);
        let (ready_fd, exit_fd) = (ready_write.as_raw_fd(), exit_read.as_raw_fd());
        let (userns_fd, netns_fd) = (userns.as_raw_fd(), netns.as_raw_fd());
        let mut command = std::process::Command::new(&program);
        command
            .arg("--disable-host-loopback")
            .arg(format!("--mtu={}", mtu.unwrap_or(65521)))
            .args(["--enable-seccomp", "--enable-ipv6"])
            .arg(format!("--ready-fd={ready_fd}"))
            .arg(format!("--exit-fd={exit_fd}"))
            .args(api_socket.map(|path| format!("--api-socket={}", path.display())))
            .arg(format!("--userns-path=/proc/self/fd/{userns_fd}"))
            .args(["--netns-type=path", "-c", &format!("/proc/self/fd/{netns_fd}"), "eth0"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::from(log.try_clone().context("duplicating the log")?));
        // SAFETY: between fork and exec this only clears close-on-exec on four
        // descriptors, with fcntl, which is async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                for fd in [ready_fd, exit_fd, userns_fd, netns_fd] {
                    if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = command.spawn().with_context(|| format!("starting {}", program.display()))?;
        drop((ready_write, exit_read, userns, netns));
        let api_socket = api_socket.map(std::path::Path::to_path_buf);
        Ok(Slirp4netns {
            child: Some(child),
            ready: ready_read,
            log,
            api_socket,
            forwards: Vec::new(),
            _exit_signal: exit_write,
        })
    }

    /// slirp4netns's pid.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |child| child.id() as i32)
    }

    /// Readable once slirp4netns is ready, or has failed.
    pub fn ready_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.ready.as_fd()
    }

    /// After [`Self::ready_fd`] became readable: ready, or why not.
    pub fn confirm_ready(&self) -> Result<()> {
        use std::io::{Read, Seek};
        let mut ready = [0u8; 1];
        let mut file = std::fs::File::from(self.ready.try_clone()?);
        if file.read(&mut ready).unwrap_or(0) == 1 && ready[0] == b'1' {
            return Ok(());
        }
        let mut log = std::fs::File::from(self.log.try_clone()?);
        let mut text = String::new();
        let _ = log.rewind().and_then(|_| log.read_to_string(&mut text).map(|_| ()));
        let reason = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("it exited early").trim();
        anyhow::bail!("slirp4netns could not set up the network: {reason}")
    }
}

impl Slirp4netns {
    /// Forwards `mapping` from the host into the container, through
    /// slirp4netns's API (its `add_hostfwd` command).
    pub fn publish(&mut self, mapping: &crate::spec::PortMapping) -> Result<()> {
        let request = format!(
            "{{\"execute\": \"add_hostfwd\", \"arguments\": {{\"proto\": \"{}\", \"host_addr\": \"{}\", \"host_port\": {}, \"guest_port\": {}}}}}\n",
            if mapping.udp { "udp" } else { "tcp" },
            mapping.host_ip,
            mapping.host_port,
            mapping.container_port
        );
        let answer = self.ask(&request).with_context(|| format!("--publish {mapping}"))?;
        // {"return": {"id": 1}}
        if answer.contains("\"return\"") {
            let id = answer.split("\"id\"").nth(1).and_then(|rest| {
                rest.trim_start_matches([' ', ':'])
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<u64>()
                    .ok()
            });
            self.forwards.extend(id);
            return Ok(());
        }
        // {"error": {"desc": "..."}}
        let reason = answer.split("\"desc\"").nth(1).map_or(answer.trim(), |rest| {
            rest.trim_start_matches([' ', ':', '"']).split('"').next().unwrap_or("")
        });
        anyhow::bail!("--publish {mapping}: {reason}")
    }

    /// One request on the API socket, one line of answer.
    fn ask(&self, request: &str) -> Result<String> {
        use std::io::{BufRead, Write};
        let socket = self.api_socket.as_ref().context("slirp4netns was started without its API socket")?;
        let mut stream = std::os::unix::net::UnixStream::connect(socket)
            .context("connecting to slirp4netns's API socket")?;
        stream.write_all(request.as_bytes()).context("asking slirp4netns")?;
        let mut answer = String::new();
        std::io::BufReader::new(stream).read_line(&mut answer).context("reading slirp4netns's answer")?;
        Ok(answer)
    }
}

/// slirp4netns processes killed and not yet gone (the kernel tears their
/// tap device down, some 20 ms): reaped by a later container of this
/// process, or by init once it has gone.
static DYING: std::sync::Mutex<Vec<std::process::Child>> = std::sync::Mutex::new(Vec::new());

/// Reaps the slirp4netns processes earlier containers left dying.
pub fn reap_dying() {
    if let Ok(mut dying) = DYING.lock() {
        dying.retain_mut(|child| matches!(child.try_wait(), Ok(None)));
    }
}

/// The end of the network: the published ports are closed first, through
/// the API (each forward's listening socket goes at once, so the port is
/// free when zookeeper returns), then slirp4netns is killed and not waited
/// for: its exit waits for the kernel to take its tap device down, some
/// 20 ms, four times the rest of a container's life. It is reaped later
/// ([`reap_dying`]) or, once zookeeper has returned, by init.
impl Drop for Slirp4netns {
    fn drop(&mut self) {
        for id in std::mem::take(&mut self.forwards) {
            let request = format!("{{\"execute\": \"remove_hostfwd\", \"arguments\": {{\"id\": {id}}}}}\n");
            let _ = self.ask(&request);
        }
        if let Some(socket) = &self.api_socket {
            let _ = std::fs::remove_file(socket);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            if matches!(child.try_wait(), Ok(None))
                && let Ok(mut dying) = DYING.lock()
            {
                dying.push(child);
            }
        }
    }
}

/// pasta (from passt), the faster user-space stack (SPEC.md section 4).
/// It configures the container's interface like the host's and forwards
/// only the ports asked for. It goes into the background once the network
/// is up: that exit is its ready signal, and its pid file names the daemon,
/// which zookeeper holds by a pidfd and kills on drop.
pub struct Pasta {
    daemon: Option<std::os::fd::OwnedFd>,
    pid_file: std::path::PathBuf,
    /// The host ports it listens on, which must be free again at the end.
    published: Vec<crate::spec::PortMapping>,
}

impl Pasta {
    pub fn start(
        pid: i32,
        mtu: Option<u32>,
        publish: &[crate::spec::PortMapping],
        pid_file: &std::path::Path,
    ) -> Result<Pasta> {
        let program = crate::idmap::find_in_path("pasta")
            .context("--network pasta needs pasta, which is not installed (Debian: apt install passt)")?;
        let mut command = std::process::Command::new(&program);
        command.args(["--config-net", "--quiet", "-T", "none", "-U", "none"]);
        // pasta otherwise maps the gateway's address to the host's
        // loopback: the container could reach services bound to 127.0.0.1
        // on the host (slirp4netns gets --disable-host-loopback for this).
        command.arg("--no-map-gw");
        // Queries to this address (UDP, port 53) go to the host's resolver,
        // which the container could not reach itself when it is a loopback
        // one (systemd-resolved's 127.0.0.53).
        command.args(["--dns-forward", PASTA_DNS]);
        if let Some(mtu) = mtu {
            command.arg("--mtu").arg(mtu.to_string());
        }
        if nix::unistd::geteuid().is_root() {
            // pasta drops root for nobody, who may not enter the container.
            command.args(["--runas", "0"]);
        }
        let (tcp, udp): (Vec<&crate::spec::PortMapping>, Vec<_>) = publish.iter().partition(|m| !m.udp);
        for (flag, mappings) in [("-t", tcp), ("-u", udp)] {
            if mappings.is_empty() {
                command.args([flag, "none"]);
            }
            for m in mappings {
                command.arg(flag).arg(format!("{}/{}:{}", m.host_ip, m.host_port, m.container_port));
            }
        }
        let output = command
            .arg("--pid")
            .arg(pid_file)
            .arg(pid.to_string())
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("starting {}", program.display()))?;
        let mut pasta = Pasta { daemon: None, pid_file: pid_file.to_path_buf(), published: publish.to_vec() };
        if !output.status.success() {
            let text = String::from_utf8_lossy(&output.stderr);
            let reason =
                text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("it failed").trim().to_string();
            anyhow::bail!("pasta could not set up the network: {reason}");
        }
        // This pasta (Debian 12's) goes into the background before the
        // interface is configured, and has no other ready signal: wait
        // until the container's network namespace has its default route.
        let routes = format!("/proc/{pid}/net/route");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !std::fs::read_to_string(&routes)
            .is_ok_and(|table| table.lines().skip(1).any(|l| l.split_whitespace().nth(1) == Some("00000000")))
        {
            if std::time::Instant::now() > deadline {
                anyhow::bail!("pasta did not configure the container's network in time");
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        let daemon: i32 = read_pid_file(pid_file).context("pasta wrote no pid file")?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, daemon, 0) };
        if fd >= 0 {
            // SAFETY: the kernel just returned this descriptor to us.
            pasta.daemon = Some(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) });
        }
        Ok(pasta)
    }
}

/// A pid file in zookeeper's own directory, read as any file zookeeper did
/// not write itself: no link followed, never blocking, a few bytes at most.
fn read_pid_file(path: &std::path::Path) -> Option<i32> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Killed and not waited for (it is not zookeeper's child: init reaps
/// it): its exit waits for the kernel to take its tap device down. Only
/// the published ports are waited for, until each can be bound again, so
/// that they are free when zookeeper returns.
impl Drop for Pasta {
    fn drop(&mut self) {
        if let Some(daemon) = &self.daemon {
            use std::os::fd::AsRawFd;
            // SAFETY: a signal to the process the pidfd holds; no memory is passed.
            // SIGKILL: pasta keeps no state, and lets SIGTERM wait for its own
            // once-a-second check that the namespace is gone.
            unsafe { libc::syscall(libc::SYS_pidfd_send_signal, daemon.as_raw_fd(), libc::SIGKILL, 0, 0) };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            for mapping in &self.published {
                while !port_is_free(mapping) && std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_micros(500));
                }
            }
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// Whether the host side of `mapping` can be bound (and is let go at once).
fn port_is_free(mapping: &crate::spec::PortMapping) -> bool {
    let address = std::net::SocketAddr::new(mapping.host_ip, mapping.host_port);
    match mapping.udp {
        true => std::net::UdpSocket::bind(address).is_ok(),
        // std's listener sets SO_REUSEADDR: a closed listener's connections
        // in TIME_WAIT do not count, as they do not for pasta's next bind.
        false => std::net::TcpListener::bind(address).is_ok(),
    }
}
