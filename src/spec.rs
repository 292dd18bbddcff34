//! The container description: what to run and how to confine it.
//!
//! Everything the engine does to a container is data here, shaped after
//! the OCI runtime specification (process, root, hostname, mounts, masked
//! and read-only paths, capabilities, seccomp, resources). The command
//! line builds it with [`ContainerSpec::new`], whose values are today's
//! behaviour: the default profile. Other front ends (an OCI bundle's
//! config.json) fill in the same fields.

use std::ffi::OsString;
use std::path::PathBuf;

/// The hostname every container gets by default (the assignment's "zoo").
pub const HOSTNAME: &str = "zoo";

/// PATH for the container's command when the caller sets none with `--env`.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything needed to start one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    pub process: Process,
    /// The directory that becomes `/`; `None` keeps the host's view.
    pub root: Option<PathBuf>,
    /// The root mounted read-only (the default root always is).
    pub root_readonly: bool,
    /// `--overlay`: `root` is not written to; it is the top read-only layer
    /// of an overlay whose writable layer lives and dies with the
    /// container.
    pub overlay: Option<Overlay>,
    pub hostname: String,
    /// The NIS domain name (setdomainname(2)) in the container's own uts
    /// namespace; empty: left as the new namespace has it (the host's).
    pub domainname: String,
    /// Which namespaces are the container's own, joined, or the host's.
    pub namespaces: Namespaces,
    /// A new time namespace's clock offsets (an OCI config's
    /// `linux.timeOffsets`).
    pub time_offsets: Vec<TimeOffset>,
    /// Who the container's ids are on the host.
    pub id_maps: IdMaps,
    /// A user named as docker's `-u` takes it (`name`, `uid`, `name:group`,
    /// `uid:gid`), resolved against the container's /etc/passwd and
    /// /etc/group when it starts, into `process.user` (with the user's
    /// supplementary groups) and, if the environment has none, HOME.
    pub user_lookup: Option<String>,
    /// Every mount, made in this order: the profile's are /sys and /dev
    /// ([`MountKind::Sysfs`], [`MountKind::Dev`]), with -P /proc before
    /// them; an OCI config's come in the config's order (runtime-spec:
    /// "MUST be mounted in the order listed").
    pub mounts: Vec<Mount>,
    /// The container's /etc/hostname, /etc/hosts and /etc/resolv.conf
    /// written and bound over the root's (the profile's); an OCI runtime
    /// leaves /etc to its caller, who lists such binds among `mounts`.
    pub etc_files: bool,
    /// How the container's mounts propagate (an OCI config's
    /// `linux.rootfsPropagation`): `None`, today's, makes them all private;
    /// slave or shared receive the host's mounts (never send the
    /// container's back: a user namespace's kernel forbids it, and without
    /// one zookeeper refuses shared), then apply to the container's `/`.
    pub root_propagation: Option<Propagation>,
    /// Host devices bound into the container (`--device`), after `mounts`.
    pub devices: Vec<Device>,
    /// Device nodes and FIFOs made in the container (an OCI config's
    /// `linux.devices`), after `devices`. A device node needs container
    /// root to be host root (no user namespace: the kernel lets no other
    /// root mknod one); elsewhere a config's devices are `devices`, binds.
    pub device_nodes: Vec<DeviceNode>,
    /// Paths hidden from the container: a directory under an empty
    /// read-only tmpfs, a file under /dev/null. Absent ones are skipped.
    pub masked_paths: Vec<String>,
    /// Paths made read-only. Absent ones are skipped.
    pub readonly_paths: Vec<String>,
    pub seccomp: Seccomp,
    /// Namespaced kernel parameters (`net.ipv4.ip_forward`, `kernel.shmmax`),
    /// written before anything of the container runs.
    pub sysctl: Vec<(String, String)>,
    pub resources: Resources,
    /// `linux.memoryPolicy`: the container's processes', exec'd ones too.
    pub memory_policy: Option<MemoryPolicy>,
    /// Programs run at the OCI life-cycle points (runtime-spec config.md,
    /// "POSIX-platform Hooks"), each given the container's state on stdin.
    pub hooks: Hooks,
    /// Who the container is to hooks: its id, its bundle, its annotations.
    pub identity: Identity,
    pub network: Network,
    /// Host ports forwarded into the container (with a network).
    pub publish: Vec<PortMapping>,
    /// `--dns`: the servers the container's /etc/resolv.conf names
    /// (otherwise the network backend's forwarder, or the root's own).
    pub dns_servers: Vec<std::net::IpAddr>,
    /// `--add-host`: more (name, address) lines for its /etc/hosts.
    pub extra_hosts: Vec<(String, std::net::IpAddr)>,
    /// The container interface's MTU; `None`: the backend's default
    /// (65521 for slirp4netns, the assignment's).
    pub mtu: Option<u32>,
    /// Run a minimal init as pid 1, with the command as its child.
    pub init: bool,
    /// A rootless container with a subordinate range gets its user
    /// namespace inside the caller's kept one (src/keeper.rs) rather than
    /// having newuidmap and newgidmap map it: the same ids, faster.
    pub keeper: bool,
    /// After a stop signal, how long the container may take to end before
    /// it is killed.
    pub stop_timeout: std::time::Duration,
    /// What the container gets when zookeeper gets SIGTERM (an image's
    /// StopSignal); `None`: SIGTERM itself.
    pub stop_signal: Option<nix::sys::signal::Signal>,
}

impl ContainerSpec {
    /// Whether the container gets a /proc of its own.
    pub fn mounts_proc(&self) -> bool {
        self.mounts.iter().any(|m| m.kind == MountKind::Proc)
    }

    /// The default profile: what `zookeeper COMMAND` runs. Root is the
    /// secure default root, the user container root, the working directory
    /// `/`, docker's masked and read-only paths, SPEC.md 3.5's
    /// capabilities dropped, no_new_privs, the built-in seccomp filter.
    pub fn new(args: Vec<OsString>, env: Vec<OsString>) -> ContainerSpec {
        ContainerSpec {
            process: Process {
                args,
                env,
                terminal: false,
                cwd: "/".into(),
                user: User::default(),
                capabilities: Capabilities::default_profile(),
                no_new_privileges: true,
                rlimits: Vec::new(),
                oom_score_adj: None,
                io_priority: None,
                scheduler: None,
                exec_cpu_affinity: None,
                preserve_fds: 0,
            },
            memory_policy: None,
            root: None,
            root_readonly: false,
            overlay: None,
            hostname: HOSTNAME.into(),
            domainname: String::new(),
            namespaces: Namespaces::default(),
            time_offsets: Vec::new(),
            id_maps: IdMaps::Auto,
            user_lookup: None,
            mounts: vec![Mount::standard(MountKind::Sysfs), Mount::standard(MountKind::Dev)],
            etc_files: true,
            root_propagation: None,
            devices: Vec::new(),
            device_nodes: Vec::new(),
            masked_paths: MASKED_PATHS.iter().map(|p| p.to_string()).collect(),
            readonly_paths: READONLY_PATHS.iter().map(|p| p.to_string()).collect(),
            seccomp: Seccomp::Builtin,
            sysctl: Vec::new(),
            resources: Resources::default(),
            hooks: Hooks::default(),
            identity: Identity::default(),
            network: Network::LoopbackOnly,
            publish: Vec::new(),
            mtu: None,
            dns_servers: Vec::new(),
            extra_hosts: Vec::new(),
            init: false,
            keeper: true,
            stop_timeout: std::time::Duration::from_secs(DEFAULT_STOP_TIMEOUT_SECS),
            stop_signal: None,
        }
    }
}

/// A program run at a point of the container's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub path: PathBuf,
    /// argv, `args[0]` included (execv's semantics); empty: just the path.
    pub args: Vec<String>,
    /// Its whole environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// Killed, and the start failed, after this many seconds.
    pub timeout: Option<u32>,
}

/// The hooks, by when they run (prestart is runc's old name for what runs
/// with createRuntime).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// In zookeeper's namespaces, once the container's exist, before it is
    /// set up further.
    pub create_runtime: Vec<Hook>,
    /// In the container's namespaces, its mounts made, before pivot_root
    /// (the path is the host's).
    pub create_container: Vec<Hook>,
    /// In the container, just before the command (the path is the
    /// container's).
    pub start_container: Vec<Hook>,
    /// In zookeeper's namespaces, once the command runs; a failure is a
    /// warning.
    pub poststart: Vec<Hook>,
    /// In zookeeper's namespaces, once the container is gone; a failure is
    /// a warning.
    pub poststop: Vec<Hook>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self == &Hooks::default()
    }
}

/// The container's identity in the OCI state hooks read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Empty: zookeeper names it `zoo-<pid>`.
    pub id: String,
    pub bundle: PathBuf,
    pub annotations: Vec<(String, String)>,
}

/// A namespace of the container (the mount and pid namespaces are always
/// its own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Namespace {
    /// A new one, the container's own.
    #[default]
    New,
    /// An existing one, joined by path (`/proc/PID/ns/net`,
    /// `/run/netns/NAME`).
    Join(PathBuf),
    /// zookeeper's own (the host's, or a caller's such as podman's).
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespaces {
    /// `Host`: no user namespace at all, for a caller that is root where it
    /// stands (root podman and containerd run runtimes so): container root
    /// is then that root, with the capabilities the spec leaves it.
    pub user: Namespace,
    pub network: Namespace,
    pub ipc: Namespace,
    pub uts: Namespace,
    pub cgroup: Namespace,
    /// The clocks' view: a new one starts with [`ContainerSpec::time_offsets`]
    /// added to CLOCK_MONOTONIC and CLOCK_BOOTTIME (time_namespaces(7));
    /// the profile keeps the host's.
    pub time: Namespace,
    /// New (the container's first process is its pid 1), or joined by
    /// path (a pod's shared one); never the host's.
    pub pid: Namespace,
}

impl Default for Namespaces {
    /// The profile's: every namespace the container's own but time's
    /// (which shifts nothing without offsets).
    fn default() -> Namespaces {
        Namespaces {
            user: Namespace::New,
            network: Namespace::New,
            ipc: Namespace::New,
            uts: Namespace::New,
            cgroup: Namespace::New,
            time: Namespace::Host,
            pid: Namespace::New,
        }
    }
}

/// A clock a time namespace shifts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    Monotonic,
    Boottime,
}

/// How far a new time namespace moves one clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOffset {
    pub clock: Clock,
    pub secs: i64,
    /// Below 1 000 000 000.
    pub nanosecs: u32,
}

/// The container's id maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMaps {
    /// zookeeper's plan (README "Id maps"): the caller and its subordinate
    /// ranges, or root's.
    Auto,
    /// Exactly these (an OCI config's uidMappings and gidMappings): written
    /// directly by root, by newuidmap/newgidmap (which check them against
    /// /etc/subuid and /etc/subgid) for anyone else.
    Explicit { uid: Vec<crate::idmap::IdRange>, gid: Vec<crate::idmap::IdRange> },
}

/// docker's masked paths, and /sys's firmware and power-capping interfaces.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// docker's read-only paths.
pub const READONLY_PATHS: [&str; 5] =
    ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// The program the container runs, and as whom.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Process {
    /// argv; `args[0]` is looked up in the container's PATH when it has no `/`.
    pub args: Vec<OsString>,
    /// The complete environment, as `KEY=VALUE` strings.
    pub env: Vec<OsString>,
    /// Give the command a pty of its own, relayed to zookeeper's terminal.
    pub terminal: bool,
    /// The working directory, absolute in the container; created (as
    /// container root) if missing, as docker's `--workdir`.
    pub cwd: String,
    pub user: User,
    pub capabilities: Capabilities,
    pub no_new_privileges: bool,
    pub rlimits: Vec<Rlimit>,
    pub oom_score_adj: Option<i32>,
    /// ioprio_set(2)'s value for the process: class << 13 | level.
    pub io_priority: Option<u16>,
    pub scheduler: Option<Scheduler>,
    /// Where an exec'd process runs (never the container's first one):
    /// `initial` before it joins the container's cgroup, `final` after.
    pub exec_cpu_affinity: Option<CpuAffinity>,
    /// Descriptors 3..3+N the caller hands on (`--preserve-fds N`).
    pub preserve_fds: u32,
}

/// sched_setattr(2)'s attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scheduler {
    /// SCHED_OTHER (0) .. SCHED_DEADLINE (6).
    pub policy: u32,
    /// SCHED_FLAG_* bits.
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// Two CPU lists of an exec'd process; `None` leaves the affinity it has.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CpuAffinity {
    pub initial: Option<Vec<u32>>,
    pub last: Option<Vec<u32>>,
}

/// set_mempolicy(2)'s arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemoryPolicy {
    /// MPOL_* with the MPOL_F_* flags or'ed in.
    pub mode: i32,
    /// The NUMA nodes, by number.
    pub nodes: Vec<u32>,
}

/// Who the command runs as, in the container's ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
}

/// A set of capabilities, as the kernel numbers them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CapSet(pub u64);

impl CapSet {
    pub fn all() -> CapSet {
        CapSet(caps::all().iter().fold(0, |bits, cap| bits | 1 << cap.index()))
    }

    pub fn contains(self, cap: caps::Capability) -> bool {
        self.0 & (1 << cap.index()) != 0
    }

    pub fn with(self, cap: caps::Capability) -> CapSet {
        CapSet(self.0 | 1 << cap.index())
    }

    pub fn without(self, cap: caps::Capability) -> CapSet {
        CapSet(self.0 & !(1 << cap.index()))
    }

    /// The capabilities in the set, as the caps crate names them.
    pub fn iter(self) -> impl Iterator<Item = caps::Capability> {
        let mut all: Vec<caps::Capability> =
            caps::all().into_iter().filter(|cap| self.contains(*cap)).collect();
        all.sort_by_key(|cap| cap.index());
        all.into_iter()
    }
}

/// The five capability sets of the command (capabilities(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Capabilities {
    pub bounding: CapSet,
    pub effective: CapSet,
    pub permitted: CapSet,
    pub inheritable: CapSet,
    pub ambient: CapSet,
}

impl Capabilities {
    /// Container root's full set without SPEC.md 3.5's list, bounding,
    /// effective and permitted; nothing inheritable or ambient (what the
    /// caller's clone child holds, as docker gives).
    pub fn default_profile() -> Capabilities {
        let kept = crate::capabilities::DROPPED.iter().fold(CapSet::all(), |set, cap| set.without(*cap));
        Capabilities {
            bounding: kept,
            effective: kept,
            permitted: kept,
            inheritable: CapSet(0),
            ambient: CapSet(0),
        }
    }
}

/// One resource limit (setrlimit(2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rlimit {
    /// libc's RLIMIT_* number.
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

/// The root as an overlay: `root` and [`Overlay::lower`] read-only below,
/// a private writable layer on top, on a tmpfs in the container's own
/// mount namespace (so it goes with the container, even one whose
/// zookeeper was SIGKILLed, and what is written there is charged to the
/// container's memory cgroup).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overlay {
    /// Read-only layers under `root`, uppermost first: an image's layers
    /// (issue 16) stack here, `root` being the uppermost of all. Empty for
    /// `-r DIR --overlay`.
    pub lower: Vec<PathBuf>,
    /// The writable layer's tmpfs size in bytes; `None`: the kernel's
    /// tmpfs default, half of the RAM.
    pub size: Option<u64>,
    /// Where overlayfs refuses the layers, run on a merged copy of them in
    /// the writable layer's tmpfs rather than fail (an image's layers).
    pub fallback: bool,
    /// fuse-overlayfs, where overlayfs cannot stack the layers (more than
    /// 500) and the caller has it: zookeeper starts it for the container
    /// (src/image/fuse.rs) and the child finds it mounted.
    pub fuse: Option<PathBuf>,
}

/// A host device node the container gets, bound (a rootless container
/// cannot mknod), read-only so that container root cannot chmod, chown or
/// touch the host's node; reading and writing the device works all the
/// same (the kernel does not ask a device's mount for write access).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// On the host; must be a character or block device.
    pub source: PathBuf,
    /// Absolute in the container; made if missing, without following links.
    pub target: String,
}

/// A node made with mknod(2) in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Absolute in the container; the directories on the way are made,
    /// without following links.
    pub target: String,
    pub kind: NodeKind,
    /// Ignored for a FIFO.
    pub major: u32,
    pub minor: u32,
    /// Permission bits (runc's default: 0666).
    pub mode: u32,
    /// Its owner, in the container's ids.
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Char,
    Block,
    Fifo,
}

/// One rule of a device cgroup (cgroup v1's `devices.allow` and
/// `devices.deny`), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    /// `a` (all devices), `c` or `b`.
    pub kind: char,
    /// `None`: any.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Some of `rwm`.
    pub access: String,
}

impl DeviceRule {
    /// As cgroup v1's files take it: `c 1:3 rwm`, `a *:* rwm`.
    pub fn line(&self) -> String {
        let number = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        format!("{} {}:{} {}", self.kind, number(self.major), number(self.minor), self.access)
    }
}

/// A mount the spec asks for, beyond the profile's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountKind,
    /// Absolute in the container. Missing directories on the way are
    /// created, without following symlinks.
    pub target: String,
    pub readonly: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
    /// File system options, as mount(8) takes them (`size=64m,mode=1777`).
    pub data: Option<String>,
    /// Made only where the target already exists (never created): the
    /// writable /tmp and /run of `--read-only`.
    pub if_present: bool,
    /// Propagation and access times, as an OCI config's options ask.
    pub options: MountOptions,
}

impl Mount {
    /// One of the file systems every container has (/proc, /sys, /dev),
    /// at its usual place, with the profile's flags.
    pub fn standard(kind: MountKind) -> Mount {
        let target = match kind {
            MountKind::Proc => "/proc",
            MountKind::Sysfs => "/sys",
            _ => "/dev",
        };
        Mount::new(kind, target)
    }

    /// `kind` at `target` with no flags, no data, made wherever the
    /// target is missing.
    pub fn new(kind: MountKind, target: &str) -> Mount {
        Mount {
            kind,
            target: target.into(),
            readonly: false,
            nosuid: false,
            nodev: false,
            noexec: false,
            data: None,
            if_present: false,
            options: MountOptions::default(),
        }
    }

    /// Whether it is one of [`Mount::standard`]'s.
    pub fn is_standard(&self) -> bool {
        matches!(self.kind, MountKind::Proc | MountKind::Sysfs | MountKind::Dev)
    }

    /// Applies one of mount(8)'s flag options (`ro`, `rw`, `nosuid`,
    /// `suid`, `nodev`, `dev`, `noexec`, `exec`); false if `option` is none
    /// of them.
    pub fn set_flag(&mut self, option: &str) -> bool {
        let (field, on) = match option {
            "ro" => (&mut self.readonly, true),
            "rw" => (&mut self.readonly, false),
            "nosuid" => (&mut self.nosuid, true),
            "suid" => (&mut self.nosuid, false),
            "nodev" => (&mut self.nodev, true),
            "dev" => (&mut self.nodev, false),
            "noexec" => (&mut self.noexec, true),
            "exec" => (&mut self.noexec, false),
            _ => return false,
        };
        *field = on;
        true
    }
}

/// What a mount's options ask beyond the flags of [`Mount`] (the OCI
/// runtime spec's propagation and access-time options); the default is
/// what every mount had before: private, the kernel's access times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// Applied once it is mounted; `None`: as the mounts around it
    /// (private, unless [`ContainerSpec::root_propagation`] says otherwise).
    pub propagation: Option<Propagation>,
    /// `None`: a new file system's default (relatime), a bind's source's.
    pub atime: Option<Atime>,
    /// `Some(true)`: nodiratime; `Some(false)`: diratime (a bind's
    /// source's nodiratime dropped); `None`: as `atime` leaves it.
    pub nodiratime: Option<bool>,
    /// Flags for the mount and every mount under it, applied last.
    pub recursive: RecursiveFlags,
}

/// mount_setattr(2)'s flags for a mount and every mount under it (an OCI
/// config's `rro`, `rnosuid`, `rnoatime`, ...): `Some(true)` sets one,
/// `Some(false)` clears it, `None` leaves each mount's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecursiveFlags {
    pub readonly: Option<bool>,
    pub nosuid: Option<bool>,
    pub nodev: Option<bool>,
    pub noexec: Option<bool>,
    /// Symbolic links not followed on it (MOUNT_ATTR_NOSYMFOLLOW).
    pub nosymfollow: Option<bool>,
    pub atime: Option<Atime>,
    pub nodiratime: Option<bool>,
}

impl RecursiveFlags {
    pub fn is_empty(&self) -> bool {
        *self == RecursiveFlags::default()
    }
}

/// mount(2)'s propagation types (mount_namespaces(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagation {
    pub kind: PropagationKind,
    /// For the mounts under it too.
    pub recursive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropagationKind {
    Private,
    /// Receives the mounts its master gets (the host's), sends none.
    Slave,
    /// Sends its mounts to its peers and receives theirs.
    Shared,
    Unbindable,
}

/// When reading a file updates its access time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Atime {
    /// strictatime: every access.
    Strict,
    /// relatime: when it is older than the last change, or a day old.
    Relative,
    /// noatime: never.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A host file or directory, bound (recursively unless asked not to).
    Bind {
        source: PathBuf,
        recursive: bool,
    },
    Tmpfs,
    /// The POSIX message queue file system of the container's ipc
    /// namespace (`/dev/mqueue`), which must be its own: the host's would
    /// show the host's queues. `mq_open` works without it; the mount
    /// lists the queues as files.
    Mqueue,
    /// The cgroup file system (`/sys/fs/cgroup`), made only where the
    /// target exists (sysfs has the directory). On a cgroup v2 host:
    /// cgroup2 mounted in the container's own cgroup namespace (its
    /// cgroup as the root), or, without one, its cgroup's directory
    /// bound. On a cgroup v1 host, where a user namespace may not mount a
    /// v1 hierarchy: a tmpfs with each of the host's hierarchies, the
    /// container's cgroup in it, bound read-only, as rootless runc does;
    /// never writable (`readonly` false is refused there).
    Cgroup,
    /// A fresh proc for the container's pid namespace, with the masked
    /// and read-only paths under /proc applied at once. The root must
    /// have /proc (the default root makes it).
    Proc,
    /// A read-only sysfs where the kernel lets the container have one (it
    /// owns its network namespace), with the paths under /sys protected
    /// at once; otherwise /sys stays as the root has it. Only where the
    /// root has /sys.
    Sysfs,
    /// A tmpfs /dev with the usual device files (bound read-only from the
    /// host's), its own devpts at /dev/pts, a tmpfs at /dev/shm, and the
    /// usual links (ptmx, fd, stdin, stdout, stderr).
    Dev,
}

/// The seccomp filter the command runs under.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Seccomp {
    /// zookeeper's deny list, compiled when zookeeper was built.
    Builtin,
    /// The same without its set-id rules, for package managers; refused
    /// where container root is host root.
    BuiltinAllowingSetid,
    /// A program compiled for this container (from an OCI profile), in the
    /// kernel's layout.
    Program(Vec<u8>),
    /// None at all (asked for explicitly).
    Unconfined,
}

/// The default for [`ContainerSpec::stop_timeout`], docker's.
pub const DEFAULT_STOP_TIMEOUT_SECS: u64 = 10;

/// cgroup limits; `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub memory_bytes: Option<u64>,
    /// Memory and swap together, as docker's `--memory-swap` and the OCI
    /// spec's `memory.swap`: equal to `memory_bytes` for no swap, -1 for
    /// unlimited swap. `None`: no swap (zookeeper's default, so that the
    /// memory limit is real; docker's gives as much swap as memory).
    pub memory_swap_bytes: Option<i64>,
    /// A soft limit the kernel reclaims the container's memory down to when
    /// the host runs short (v1 `memory.soft_limit_in_bytes`, v2
    /// `memory.low`).
    pub memory_reservation_bytes: Option<u64>,
    /// Percent of one CPU: 50 is half a CPU, 250 two and a half.
    pub cpu_percent: Option<u32>,
    /// An OCI config's own quota and period (microseconds), written as
    /// they are in place of the percent, which stands for them elsewhere.
    pub cpu_quota_period: Option<(u64, u64)>,
    /// The CPU's relative weight against other cgroups, 2 to 262144 (v1
    /// `cpu.shares`, default 1024; v2 `cpu.weight`, runc's conversion).
    pub cpu_shares: Option<u64>,
    /// The CPUs and memory nodes it may use (`0-3,7`); `None`: its
    /// parent's (the cpuset controller).
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// Block I/O weight, 10 to 1000 (v1 `blkio.weight` or
    /// `blkio.bfq.weight`; v2 `io.bfq.weight`, or `io.weight` converted).
    pub blkio_weight: Option<u16>,
    /// How readily the kernel swaps the container's memory out, 0 to 100
    /// (v1 `memory.swappiness`; cgroup v2 has none, and refuses it at
    /// start).
    pub memory_swappiness: Option<u8>,
    pub pids: Option<u32>,
    /// A device cgroup's rules, written in order after the cgroup is made
    /// (cgroup v1's devices controller); empty: no device cgroup. For a
    /// container whose root is host root, which could otherwise open any
    /// device node it makes.
    pub devices: Vec<DeviceRule>,
    /// Where the container's cgroup is (an OCI config's
    /// `linux.cgroupsPath`, as runc's cgroupfs driver places it): absolute,
    /// from the hierarchy's root; relative, under zookeeper's own cgroup
    /// (cgroup v1) or its parent (v2, which allows no processes beside
    /// child cgroups). Made with the directories on the way, and removed
    /// with those it made, when the container ends. `None`: `zoo-<pid>`
    /// (README, "Resource limits"), only when there is a limit to apply.
    pub cgroup_path: Option<String>,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        self.memory_bytes.is_none()
            && self.memory_reservation_bytes.is_none()
            && self.cpu_percent.is_none()
            && self.cpu_shares.is_none()
            && self.cpuset_cpus.is_none()
            && self.cpuset_mems.is_none()
            && self.blkio_weight.is_none()
            && self.memory_swappiness.is_none()
            && self.pids.is_none()
            && self.devices.is_empty()
            && self.cgroup_path.is_none()
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
