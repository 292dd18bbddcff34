//! The container description: what to run and how to confine it.
//!
//! Modelled on the OCI runtime specification's concepts (process, root,
//! resources, network) so that a future OCI front end can build the same
//! description the command line builds today.

use std::ffi::OsString;
use std::path::PathBuf;

/// The hostname every container gets (the assignment's "zoo").
pub const HOSTNAME: &str = "zoo";

/// PATH for the container's command when the caller sets none with `--env`.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything needed to start one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    pub process: Process,
    /// The directory that becomes `/`; `None` keeps the host's view.
    pub root: Option<PathBuf>,
    /// Mount a fresh /proc for the container's pid namespace.
    pub mount_proc: bool,
    pub resources: Resources,
    pub network: Network,
    /// Host ports forwarded into the container (with a network).
    pub publish: Vec<PortMapping>,
    /// The container interface's MTU; `None`: the backend's default
    /// (65521 for slirp4netns, the assignment's).
    pub mtu: Option<u32>,
    /// Run a minimal init as pid 1, with the command as its child.
    pub init: bool,
    /// After a stop signal, how long the container may take to end before
    /// it is killed.
    pub stop_timeout: std::time::Duration,
}

/// The default for [`ContainerSpec::stop_timeout`], docker's.
pub const DEFAULT_STOP_TIMEOUT_SECS: u64 = 10;

/// The program the container runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// argv; `args[0]` is looked up in the container's PATH when it has no `/`.
    pub args: Vec<OsString>,
    /// The complete environment, as `KEY=VALUE` strings.
    pub env: Vec<OsString>,
    /// Give the command a pty of its own, relayed to zookeeper's terminal.
    pub terminal: bool,
}

/// cgroup limits; `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub memory_bytes: Option<u64>,
    /// Percent of one CPU: 50 is half a CPU, 250 two and a half.
    pub cpu_percent: Option<u32>,
    pub pids: Option<u32>,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        self.memory_bytes.is_none() && self.cpu_percent.is_none() && self.pids.is_none()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Network {
    /// Only loopback, brought up.
    #[default]
    LoopbackOnly,
    /// A user-space stack (slirp4netns) behind eth0.
    Slirp4netns,
    /// pasta (from passt): a faster user-space stack, the host's addresses.
    Pasta,
}

/// `--publish [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    pub host_ip: std::net::IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub udp: bool,
}

impl std::fmt::Display for PortMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = if self.udp { "udp" } else { "tcp" };
        let (ip, port) = (self.host_ip, self.host_port);
        match ip {
            // As it is written on the command line: an IPv6 address's colons
            // would run into the ports'.
            std::net::IpAddr::V6(_) => write!(f, "[{ip}]:{port}:{}/{proto}", self.container_port),
            std::net::IpAddr::V4(_) => write!(f, "{ip}:{port}:{}/{proto}", self.container_port),
        }
    }
}

impl Process {
    /// The environment a container starts with: a clean one, as docker and
    /// podman give, not the caller's (whose HOME, XDG_* and the like name host
    /// paths). TERM is kept so that terminal programs work.
    pub fn default_env(term: Option<OsString>) -> Vec<OsString> {
        let mut env: Vec<OsString> = vec![
            format!("PATH={DEFAULT_PATH}").into(),
            "HOME=/root".into(),
            format!("HOSTNAME={HOSTNAME}").into(),
        ];
        if let Some(term) = term {
            let mut entry = OsString::from("TERM=");
            entry.push(term);
            env.push(entry);
        }
        env
    }
}
