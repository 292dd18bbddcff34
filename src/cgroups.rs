//! Resource limits (SPEC.md 3.6): a cgroup `zoo-<pid>` for the container,
//! its limits written before the container runs, removed when it ends.
//!
//! Where the cgroup goes:
//! - cgroup v2 (the unified hierarchy at /sys/fs/cgroup): beside
//!   zookeeper's own cgroup, in its parent, as the assignment places it
//!   beside `zookeeper-<pid>.scope`. The parent must be writable (root, or a
//!   subtree delegated to the user) and hand the controllers down
//!   (`cgroup.subtree_control`); zookeeper enables them there if it may.
//!   zookeeper's own cgroup cannot be used: the kernel forbids a non-root
//!   cgroup to hold processes and hand controllers to children at once.
//! - cgroup v1 (this project's development host): as root, in zookeeper's
//!   own cgroup of each hierarchy it needs (memory, cpu, pids).
//!
//! A limit that cannot be applied is an error that says why, never a limit
//! silently dropped.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::spec::Resources;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// cpu.max and cpu.cfs_period_us: 100 ms, the kernel's default period.
const CPU_PERIOD_US: u64 = 100_000;

/// The container's cgroup directories; killed off and removed on drop.
#[derive(Debug)]
pub struct ContainerCgroup {
    /// The container's cgroup in each hierarchy.
    dirs: Vec<PathBuf>,
    /// The directories on the way to a cgroupsPath that zookeeper made,
    /// outermost first: removed after `dirs`, where nothing else came to
    /// live in them meanwhile.
    made_parents: Vec<PathBuf>,
    v2: bool,
    /// The directory with the memory controller's files, with -m.
    memory: Option<PathBuf>,
}

/// Before the container exists: makes sure zookeeper stands where a
/// sibling cgroup can be created, asking the user's systemd for a delegated
/// scope when its current parent is not writable (a rootless login session).
pub fn prepare(limits: &Resources) -> Result<()> {
    if limits.is_empty() || !is_cgroup2(Path::new(CGROUP_ROOT)) {
        return Ok(());
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
    let parent = v2_parent(&own)?;
    let writable = nix::unistd::access(&parent.join("cgroup.procs"), nix::unistd::AccessFlags::W_OK).is_ok();
    if writable || nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    crate::systemd::move_into_scope().with_context(|| {
        format!(
            "resource limits need a writable cgroup: {} is not, and the user's systemd could not delegate one",
            parent.display()
        )
    })?;
    Ok(())
}

/// The parent of zookeeper's own v2 cgroup, where the container's goes.
fn v2_parent(proc_self_cgroup: &str) -> Result<PathBuf> {
    let own = own_path(proc_self_cgroup, "").context("no cgroup v2 line in /proc/self/cgroup")?;
    let own_dir = Path::new(CGROUP_ROOT).join(own.trim_start_matches('/'));
    Ok(if own == "/" { own_dir } else { own_dir.parent().context("cgroup path")?.to_path_buf() })
}

impl ContainerCgroup {
    /// Creates `zoo-<pid>` with `limits` and moves the process `pid` into it.
    /// `None` when no limit is asked for.
    pub fn create(limits: &Resources, pid: i32) -> Result<Option<ContainerCgroup>> {
        if limits.is_empty() {
            return Ok(None);
        }
        let own = std::fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
        let name = format!("zoo-{pid}");
        let cgroup = if is_cgroup2(Path::new(CGROUP_ROOT)) {
            create_v2(limits, &own, &name)?
        } else if nix::unistd::geteuid().is_root() {
            create_v1(limits, &own, &name)?
        } else if limits.cgroup_path.is_some() {
            bail!("linux.cgroupsPath: a rootless container gets no cgroup on this cgroup v1 host");
        } else {
            bail!(
                "resource limits (-m, -c, -p) need cgroup v2 for a rootless container, and this host \
                 runs cgroup v1 for its controllers; run zookeeper as root, or boot the host with \
                 systemd.unified_cgroup_hierarchy=1"
            );
        };
        for dir in &cgroup.dirs {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(Some(cgroup))
    }
}

/// `/sys/fs/cgroup` is cgroup v2's single hierarchy.
pub fn is_v2_root() -> bool {
    is_cgroup2(Path::new(CGROUP_ROOT))
}

fn is_cgroup2(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// The controllers `limits` needs, by their cgroup names.
fn controllers(limits: &Resources) -> Vec<&'static str> {
    let mut needed = Vec::new();
    // A cgroupsPath places the container in each hierarchy zookeeper uses
    // (on cgroup v2 its directory is made with or without controllers).
    let placed = limits.cgroup_path.is_some() && !is_cgroup2(Path::new(CGROUP_ROOT));
    if limits.memory_bytes.is_some()
        || limits.memory_reservation_bytes.is_some()
        || limits.memory_swappiness.is_some()
        || placed
    {
        needed.push("memory");
    }
    if limits.cpu_percent.is_some() || limits.cpu_shares.is_some() || placed {
        needed.push("cpu");
    }
    if limits.pids.is_some() || placed {
        needed.push("pids");
    }
    if limits.cpuset_cpus.is_some() || limits.cpuset_mems.is_some() {
        needed.push("cpuset");
    }
    // (cgroup v2 calls it io.)
    if limits.blkio_weight.is_some() {
        needed.push("blkio");
    }
    if !limits.devices.is_empty() {
        needed.push("devices");
    }
    needed
}

/// Our cgroup's path in the hierarchy whose /proc/self/cgroup line
/// matches `hierarchy` ("" for the v2 line `0::/path`).
fn own_path<'a>(proc_self_cgroup: &'a str, hierarchy: &str) -> Option<&'a str> {
    proc_self_cgroup.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_id, list, path) = (fields.next()?, fields.next()?, fields.next()?);
        let matches =
            if hierarchy.is_empty() { list.is_empty() } else { list.split(',').any(|c| c == hierarchy) };
        matches.then_some(path)
    })
}

fn create_v2(limits: &Resources, own: &str, name: &str) -> Result<ContainerCgroup> {
    if !limits.devices.is_empty() {
        bail!(
            "device rules need cgroup v1's devices controller; cgroup v2's (a BPF program) is not supported yet"
        );
    }
    let parent = v2_parent(own)?;
    let needed: Vec<&str> =
        controllers(limits).into_iter().map(|c| if c == "blkio" { "io" } else { c }).collect();
    let mut cgroup = ContainerCgroup { dirs: Vec::new(), made_parents: Vec::new(), v2: true, memory: None };
    let dir = match &limits.cgroup_path {
        None => {
            enable_v2_controllers(&parent, &needed)?;
            let dir = parent.join(name);
            create_dir(&dir)?;
            cgroup.dirs.push(dir.clone());
            dir
        }
        Some(path) => {
            let dir = placed(Path::new(CGROUP_ROOT), &parent, path);
            // A user may make cgroups only in the subtree delegated to it.
            if !nix::unistd::geteuid().is_root() && !dir.starts_with(&parent) {
                bail!(
                    "linux.cgroupsPath {path}: {} is outside {}, where this user may make cgroups",
                    dir.display(),
                    parent.display()
                );
            }
            // Each level hands the controllers down to the next.
            make_placed(&mut cgroup, &dir, |made| {
                enable_v2_controllers(made.parent().context("a cgroup path")?, &needed)
            })?;
            dir
        }
    };
    cgroup.memory = limits.memory_bytes.map(|_| dir.clone());
    if limits.memory_swappiness.is_some() {
        // runc refuses it there too.
        bail!("memory swappiness: cgroup v2 has no such setting (memory.swappiness is cgroup v1's)");
    }
    if let Some(bytes) = limits.memory_bytes {
        write(&dir.join("memory.max"), &bytes.to_string())?;
        // Without a swap limit the memory limit only pushes the excess to
        // swap: none unless --memory-swap asks for some.
        let swap = match limits.memory_swap_bytes {
            None => "0".to_string(),
            Some(-1) => "max".to_string(),
            Some(total) => (total as u64).saturating_sub(bytes).to_string(),
        };
        let file = dir.join("memory.swap.max");
        if file.exists() {
            write(&file, &swap)?;
        } else if limits.memory_swap_bytes.is_some() {
            bail!(
                "a swap limit (--memory-swap, memory.swap): this kernel does not account swap ({} is missing)",
                file.display()
            );
        }
    }
    if let Some(bytes) = limits.memory_reservation_bytes {
        write(&dir.join("memory.low"), &bytes.to_string())?;
    }
    if let Some(percent) = limits.cpu_percent {
        let (quota, period) = quota_and_period(limits, percent);
        write(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
    }
    if let Some(shares) = limits.cpu_shares {
        write(&dir.join("cpu.weight"), &cpu_weight(shares).to_string())?;
    }
    // Empty in a new cgroup: the parent's.
    if let Some(cpus) = &limits.cpuset_cpus {
        write(&dir.join("cpuset.cpus"), cpus)?;
    }
    if let Some(mems) = &limits.cpuset_mems {
        write(&dir.join("cpuset.mems"), mems)?;
    }
    if let Some(weight) = limits.blkio_weight {
        // BFQ's own weight takes blkio's range; io.weight its own (runc's way).
        if dir.join("io.bfq.weight").exists() {
            write(&dir.join("io.bfq.weight"), &weight.to_string())?;
        } else if dir.join("io.weight").exists() {
            write(&dir.join("io.weight"), &format!("default {}", io_weight(weight)))?;
        } else {
            bail!("block I/O weight: {} has neither io.bfq.weight nor io.weight", dir.display());
        }
    }
    if let Some(pids) = limits.pids {
        write(&dir.join("pids.max"), &pids.to_string())?;
    }
    Ok(cgroup)
}

/// cgroup v1's cpu.shares as cgroup v2's cpu.weight, runc's conversion: a
/// quadratic in log2(shares) through the ends of both ranges (2 -> 1,
/// 262144 -> 10000) and their defaults (1024 -> 100).
pub fn cpu_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262_144.. => 10_000,
        _ => {
            let l = (shares as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

/// blkio.weight (10..1000) as io.weight (1..10000), runc's conversion.
pub fn io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// A new cpuset cgroup on v1 has no CPUs and no memory nodes, and takes no
/// process until it has both: `dir` gets its parent's.
fn inherit_cpuset(dir: &Path) -> Result<()> {
    let parent = dir.parent().context("a cgroup path")?;
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let value = read(&parent.join(file))?;
        write(&dir.join(file), value.trim())?;
    }
    Ok(())
}

/// Lets `parent`'s children have `controllers` (cgroup v2's
/// `cgroup.subtree_control`), where it may.
fn enable_v2_controllers(parent: &Path, controllers: &[&str]) -> Result<()> {
    if controllers.is_empty() {
        return Ok(());
    }
    let available = read(&parent.join("cgroup.controllers"))?;
    let enabled = read(&parent.join("cgroup.subtree_control"))?;
    for controller in controllers {
        if !available.split_whitespace().any(|c| c == *controller) {
            bail!(
                "the {controller} controller is not available in {} (it is not delegated to this user); \
                 with systemd, set Delegate=yes on user@.service",
                parent.display()
            );
        }
        if !enabled.split_whitespace().any(|c| c == *controller) {
            write(&parent.join("cgroup.subtree_control"), &format!("+{controller}")).with_context(|| {
                format!("the {controller} controller is not enabled for {}'s children", parent.display())
            })?;
        }
    }
    Ok(())
}

/// A cgroupsPath in a hierarchy: absolute from its `root`, relative from
/// `base` (checked for `..` when the config was read).
fn placed(root: &Path, base: &Path, path: &str) -> PathBuf {
    match path.strip_prefix('/') {
        Some(absolute) => root.join(absolute),
        None => base.join(path),
    }
}

/// Makes the cgroup `leaf` of a cgroupsPath and the directories on the way
/// that are missing (remembered in `cgroup`, so that they go with it);
/// `made` runs on each new directory, the leaf too. A leaf already there is
/// not zookeeper's to put a container in (nor to remove after).
fn make_placed(
    cgroup: &mut ContainerCgroup,
    leaf: &Path,
    mut made: impl FnMut(&Path) -> Result<()>,
) -> Result<()> {
    let mut missing = Vec::new();
    let mut at = leaf.parent();
    while let Some(dir) = at.filter(|dir| !dir.exists()) {
        missing.push(dir.to_path_buf());
        at = dir.parent();
    }
    for dir in missing.iter().rev() {
        match std::fs::create_dir(dir) {
            Ok(()) => {
                cgroup.made_parents.push(dir.clone());
                made(dir)?;
            }
            // Made meanwhile by someone else: theirs.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err).with_context(|| format!("creating cgroup {}", dir.display())),
        }
    }
    match std::fs::create_dir(leaf) {
        Ok(()) => {
            cgroup.dirs.push(leaf.to_path_buf());
            made(leaf)
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "linux.cgroupsPath: {} exists already; zookeeper puts a container only in a cgroup it makes, and removes",
            leaf.display()
        ),
        Err(err) => Err(err).with_context(|| format!("creating cgroup {}", leaf.display())),
    }
}

fn create_v1(limits: &Resources, own: &str, name: &str) -> Result<ContainerCgroup> {
    let mut cgroup = ContainerCgroup { dirs: Vec::new(), made_parents: Vec::new(), v2: false, memory: None };
    for controller in controllers(limits) {
        let mount = Path::new(CGROUP_ROOT).join(controller);
        let within = own_path(own, controller)
            .with_context(|| format!("the {controller} cgroup controller is not mounted (cgroup v1)"))?;
        let own_dir = mount.join(within.trim_start_matches('/'));
        let dir = match &limits.cgroup_path {
            None => {
                let dir = own_dir.join(name);
                create_dir(&dir)?;
                cgroup.dirs.push(dir.clone());
                dir
            }
            Some(path) => {
                let dir = placed(&mount, &own_dir, path);
                make_placed(&mut cgroup, &dir, |made| match controller {
                    "cpuset" => inherit_cpuset(made),
                    _ => Ok(()),
                })?;
                dir
            }
        };
        if controller == "cpuset" && limits.cgroup_path.is_none() {
            inherit_cpuset(&dir)?;
        }
        match controller {
            "memory" => {
                if let Some(bytes) = limits.memory_reservation_bytes {
                    write(&dir.join("memory.soft_limit_in_bytes"), &bytes.to_string())?;
                }
                if let Some(swappiness) = limits.memory_swappiness {
                    write(&dir.join("memory.swappiness"), &swappiness.to_string())?;
                }
                let Some(bytes) = limits.memory_bytes else { continue };
                cgroup.memory = Some(dir.clone());
                write(&dir.join("memory.limit_in_bytes"), &bytes.to_string())?;
                // v1 counts memory and swap together, as docker's
                // --memory-swap does; equal to the memory limit: no swap.
                let total = match limits.memory_swap_bytes {
                    None => bytes.to_string(),
                    Some(total) => total.to_string(),
                };
                let memsw = dir.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    write(&memsw, &total)?;
                } else if limits.memory_swap_bytes.is_some() {
                    bail!(
                        "a swap limit (--memory-swap, memory.swap): this kernel does not account swap ({} is missing; boot with swapaccount=1)",
                        memsw.display()
                    );
                }
            }
            "cpu" => {
                if let Some(shares) = limits.cpu_shares {
                    write(&dir.join("cpu.shares"), &shares.to_string())?;
                }
                let Some(percent) = limits.cpu_percent else { continue };
                let (quota, period) = quota_and_period(limits, percent);
                write(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
                write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
            "cpuset" => {
                // Before any process comes in: both must be set by then.
                if let Some(cpus) = &limits.cpuset_cpus {
                    write(&dir.join("cpuset.cpus"), cpus)?;
                }
                if let Some(mems) = &limits.cpuset_mems {
                    write(&dir.join("cpuset.mems"), mems)?;
                }
            }
            "blkio" => {
                let Some(weight) = limits.blkio_weight else { continue };
                // CFQ's file, or BFQ's (Linux 5.0 on: CFQ is gone).
                let file = ["blkio.weight", "blkio.bfq.weight"]
                    .into_iter()
                    .map(|f| dir.join(f))
                    .find(|f| f.exists());
                let Some(file) = file else {
                    bail!(
                        "block I/O weight: {} has neither blkio.weight nor blkio.bfq.weight (the kernel's I/O scheduler has no weights)",
                        dir.display()
                    );
                };
                write(&file, &weight.to_string())?;
            }
            "pids" => {
                let Some(pids) = limits.pids else { continue };
                write(&dir.join("pids.max"), &pids.to_string())?;
            }
            _ => {
                // In order, as the kernel applies them: the first usually
                // denies everything (`a`), the rest allow.
                for rule in &limits.devices {
                    let file = if rule.allow { "devices.allow" } else { "devices.deny" };
                    write(&dir.join(file), &rule.line())?;
                }
            }
        }
    }
    Ok(cgroup)
}

/// Creates the container's cgroup directory `zoo-<pid>`. One already there
/// is a dead container's that nothing removed (its zookeeper was killed):
/// the pid in its name is this container's now, so the container that had
/// it is gone. Empty, it is removed and made anew. One that holds
/// processes (a container in another pid namespace, whose pids may repeat
/// ours) is left alone: the kernel refuses to remove it (EBUSY), which is
/// the test, since `cgroup.procs` does not list processes outside the
/// reader's pid namespace.
fn create_dir(dir: &Path) -> Result<()> {
    let failed = |what: &str, err: std::io::Error| {
        let reason = err.raw_os_error().map_or_else(
            || err.to_string(),
            |errno| crate::error::errno_text(nix::errno::Errno::from_raw(errno)),
        );
        anyhow::anyhow!("{what} {}: {reason}", dir.display())
    };
    match std::fs::create_dir(dir) {
        Ok(()) => return Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(failed("creating cgroup", err)),
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => {}
        Err(err) if err.raw_os_error() == Some(libc::EBUSY) => bail!(
            "creating cgroup {}: it already exists and holds processes of another container; \
             not touching it",
            dir.display()
        ),
        Err(err) => return Err(failed("removing the stale cgroup", err)),
    }
    std::fs::create_dir(dir).map_err(|err| failed("creating cgroup", err))
}

/// `--cleanup`: removes the `zoo-<pid>` cgroups that killed zookeepers left
/// where this zookeeper would create them: empty, and their container
/// process gone. Returns the paths removed.
pub fn remove_stale() -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let Ok(own) = std::fs::read_to_string("/proc/self/cgroup") else { return (Vec::new(), Vec::new()) };
    let mut parents = Vec::new();
    if is_cgroup2(Path::new(CGROUP_ROOT)) {
        parents.extend(v2_parent(&own).ok());
        // Where the systemd path puts them: beside zookeeper-<pid>.scope.
        let uid = nix::unistd::geteuid().as_raw();
        parents.push(PathBuf::from(format!(
            "{CGROUP_ROOT}/user.slice/user-{uid}.slice/user@{uid}.service/user.slice"
        )));
    } else {
        for controller in ["memory", "cpu", "pids", "devices", "cpuset", "blkio"] {
            if let Some(within) = own_path(&own, controller) {
                parents.push(Path::new(CGROUP_ROOT).join(controller).join(within.trim_start_matches('/')));
            }
        }
    }
    let (mut removed, mut failed) = (Vec::new(), Vec::new());
    for parent in parents {
        let Ok(entries) = std::fs::read_dir(&parent) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix("zoo-").and_then(|p| p.parse::<u32>().ok()) else { continue };
            // Only the caller's own: another user's (root's, in a shared
            // parent) may be between its container's end and its
            // zookeeper's removal of it, and is not the caller's to judge.
            let owner =
                std::fs::symlink_metadata(entry.path()).map(|m| std::os::unix::fs::MetadataExt::uid(&m));
            if owner.ok() != Some(nix::unistd::geteuid().as_raw()) {
                continue;
            }
            let empty = read(&entry.path().join("cgroup.procs")).is_ok_and(|procs| procs.trim().is_empty());
            let gone = !Path::new(&format!("/proc/{pid}")).exists();
            if !(empty && gone) {
                continue;
            }
            // A stale one that stays is said, as a stale directory is.
            match std::fs::remove_dir(entry.path()) {
                Ok(()) => removed.push(entry.path()),
                Err(err) => failed.push((entry.path(), err.to_string())),
            }
        }
    }
    (removed, failed)
}

impl ContainerCgroup {
    /// How many processes the kernel killed in the container for its memory
    /// limit: `oom_kill` of memory.events (v2) or of memory.oom_control (v1,
    /// Linux 4.13 and later). Read before the cgroup is removed.
    pub fn oom_kills(&self) -> u64 {
        let Some(dir) = &self.memory else { return 0 };
        let file = if self.v2 { "memory.events" } else { "memory.oom_control" };
        read(&dir.join(file)).map_or(0, |text| oom_kill_count(&text))
    }
}

fn oom_kill_count(events: &str) -> u64 {
    events.lines().find_map(|line| line.strip_prefix("oom_kill ")?.trim().parse().ok()).unwrap_or(0)
}

/// The host's cgroup file systems as a container's `/sys/fs/cgroup` shows
/// them (src/rootfs.rs mounts it), read from `/proc/self/mountinfo` and
/// `/proc/self/cgroup` while those still show the host's paths: before the
/// container's first process enters its cgroup namespace, and after the
/// parent has moved it into its cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupView {
    /// `/sys/fs/cgroup` is cgroup2 itself (the unified hierarchy alone).
    pub unified: bool,
    /// Each hierarchy mounted there.
    pub hierarchies: Vec<Hierarchy>,
    /// The host's symbolic links beside them (`cpu -> cpu,cpuacct`), as
    /// (name, target).
    pub links: Vec<(String, String)>,
}

/// One cgroup hierarchy the host mounts under `/sys/fs/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Its directory's name there (`memory`, `cpu,cpuacct`, `unified`);
    /// empty for the unified hierarchy mounted on `/sys/fs/cgroup` itself.
    pub name: String,
    pub v2: bool,
    /// The host's directory of the calling process's cgroup in it.
    pub own: PathBuf,
}

impl CgroupView {
    pub fn capture() -> Result<CgroupView> {
        let mountinfo = read(Path::new("/proc/self/mountinfo"))?;
        let own = read(Path::new("/proc/self/cgroup"))?;
        let mut view = parse_view(&mountinfo, &own);
        if !view.unified
            && let Ok(entries) = std::fs::read_dir(CGROUP_ROOT)
        {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(target) = std::fs::read_link(entry.path()) else { continue };
                let target = target.to_string_lossy().into_owned();
                // Only a link to a hierarchy beside it (the host's /sys/fs/cgroup
                // is trusted, but a link elsewhere means nothing in a container).
                if view.hierarchies.iter().any(|h| h.name == target) {
                    view.links.push((name, target));
                }
            }
            view.links.sort();
        }
        Ok(view)
    }
}

/// [`CgroupView`] from the text of `/proc/self/mountinfo` and
/// `/proc/self/cgroup` (without the links).
fn parse_view(mountinfo: &str, proc_self_cgroup: &str) -> CgroupView {
    let mut view = CgroupView::default();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(mountpoint), Some(fstype), Some(options)) =
            (left.get(3), left.get(4), right.first(), right.get(2))
        else {
            continue;
        };
        let v2 = match *fstype {
            "cgroup2" => true,
            "cgroup" => false,
            _ => {
                // Something mounted over /sys/fs/cgroup (the tmpfs of a
                // hybrid host) hides what was there before it.
                if *mountpoint == CGROUP_ROOT {
                    view = CgroupView::default();
                }
                continue;
            }
        };
        let name = match mountpoint.strip_prefix(CGROUP_ROOT) {
            Some("") => "",
            Some(rest) => match rest.strip_prefix('/') {
                // (mountinfo escapes spaces and the like: no such name is a hierarchy's.)
                Some(name) if !name.is_empty() && !name.contains(['/', '\\']) => name,
                _ => continue,
            },
            None => continue,
        };
        // The process's cgroup in this hierarchy: the v2 line, or the v1
        // line whose controllers the mount has.
        let options: Vec<&str> = options.split(',').collect();
        let path = proc_self_cgroup.lines().find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_id, list, path) = (fields.next()?, fields.next()?, fields.next()?);
            let matches = match v2 {
                true => list.is_empty(),
                false => !list.is_empty() && list.split(',').all(|c| options.contains(&c)),
            };
            matches.then_some(path)
        });
        // A cgroup outside what the mount shows (its root) is not in it.
        let Some(within) = path.and_then(|path| match *root {
            "/" => Some(path),
            root => path.strip_prefix(root).filter(|rest| rest.is_empty() || rest.starts_with('/')),
        }) else {
            continue;
        };
        let own = Path::new(mountpoint).join(within.trim_start_matches('/'));
        if name.is_empty() {
            view = CgroupView { unified: v2, hierarchies: Vec::new(), links: Vec::new() };
        }
        // A later mount on the same place hides the earlier one.
        view.hierarchies.retain(|h| h.name != name);
        view.hierarchies.push(Hierarchy { name: name.to_string(), v2, own });
    }
    view
}

/// A size as `-m` takes it, in its largest whole unit: `32M`, `1G`, `1536K`.
pub fn human_size(bytes: u64) -> String {
    for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// Quota per period for `percent` of one CPU.
/// The quota and period to write: an OCI config's own, or the percent's
/// over zookeeper's 100 ms period.
fn quota_and_period(limits: &Resources, percent: u32) -> (u64, u64) {
    limits.cpu_quota_period.unwrap_or((cpu_quota_us(percent), CPU_PERIOD_US))
}

pub fn cpu_quota_us(percent: u32) -> u64 {
    u64::from(percent) * CPU_PERIOD_US / 100
}

/// A cgroup left in place by [`ContainerCgroup::keep`] for the OCI
/// runtime's `delete`: its directories, and those made on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    pub dirs: Vec<PathBuf>,
    pub made_parents: Vec<PathBuf>,
}

impl ContainerCgroup {
    /// The container's cgroup in each hierarchy.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Leaves the directories in place (the OCI runtime's `create`, whose
    /// `delete` removes them with [`remove_kept`]).
    pub fn keep(self) -> Kept {
        let mut this = std::mem::ManuallyDrop::new(self);
        Kept { dirs: std::mem::take(&mut this.dirs), made_parents: std::mem::take(&mut this.made_parents) }
    }
}

/// Kills what is left in a cgroup that [`ContainerCgroup::keep`] left and
/// removes it, with the directories made on the way where nothing else
/// lives in them.
pub fn remove_kept(kept: &Kept) -> Result<()> {
    let v2 = is_cgroup2(Path::new(CGROUP_ROOT));
    for dir in kept.dirs.iter().rev() {
        remove(dir, v2).with_context(|| format!("removing cgroup {}", dir.display()))?;
    }
    for dir in kept.made_parents.iter().rev() {
        match std::fs::remove_dir(dir) {
            Ok(()) => {}
            Err(err) if matches!(err.raw_os_error(), Some(libc::EBUSY | libc::ENOENT | libc::ENOTEMPTY)) => {}
            Err(err) => return Err(err).with_context(|| format!("removing cgroup {}", dir.display())),
        }
    }
    Ok(())
}

impl Drop for ContainerCgroup {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            if let Err(err) = remove(dir, self.v2) {
                eprintln!("zookeeper: removing cgroup {}: {err:#}", dir.display());
            }
        }
        // Another container's cgroup may have come to live in one meanwhile
        // (EBUSY): then it is that one's to keep.
        for dir in self.made_parents.iter().rev() {
            match std::fs::remove_dir(dir) {
                Ok(()) => {}
                Err(err)
                    if matches!(err.raw_os_error(), Some(libc::EBUSY | libc::ENOENT | libc::ENOTEMPTY)) => {}
                Err(err) => eprintln!("zookeeper: removing cgroup {}: {err}", dir.display()),
            }
        }
    }
}

/// Kills whatever is left in `dir` and removes it. The container's pid
/// namespace is normally empty by now: its init's death killed the rest.
fn remove(dir: &Path, v2: bool) -> Result<()> {
    // Sub-cgroups first (ones the container made, or exec --cgroup's):
    // a cgroup with children stays busy.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove(&entry.path(), v2)?;
            }
        }
    }
    for _ in 0..200 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) => {
                let kill = dir.join("cgroup.kill");
                if v2 && kill.exists() {
                    let _ = std::fs::write(&kill, "1");
                } else {
                    for pid in read(&dir.join("cgroup.procs"))?.split_whitespace() {
                        if let Ok(pid) = pid.parse() {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::SIGKILL,
                            );
                        }
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(err) => return Err(err.into()),
        }
    }
    bail!("it stayed busy")
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).with_context(|| format!("writing {value} to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_paths_per_hierarchy() {
        let text = "9:name=systemd:/\n4:memory:/a/b\n2:cpu,cpuacct:/c\n0::/user.slice/x.scope\n";
        assert_eq!(own_path(text, ""), Some("/user.slice/x.scope"));
        assert_eq!(own_path(text, "memory"), Some("/a/b"));
        assert_eq!(own_path(text, "cpu"), Some("/c"));
        assert_eq!(own_path(text, "pids"), None);
    }

    #[test]
    fn oom_kills_and_sizes() {
        assert_eq!(oom_kill_count("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"), 2);
        assert_eq!(oom_kill_count("low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n"), 1);
        assert_eq!(oom_kill_count("oom_kill_disable 0\n"), 0);
        assert_eq!(human_size(32 << 20), "32M");
        assert_eq!(human_size(1 << 30), "1G");
        assert_eq!(human_size(1536 << 10), "1536K");
        assert_eq!(human_size(1_000_001), "1000001");
    }

    #[test]
    fn the_hosts_hierarchies_as_a_container_sees_them() {
        // This project's hybrid host: v1 hierarchies on a tmpfs, v2 at unified.
        let mountinfo = "\
25 1 0:23 / /sys rw,nosuid - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct
33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 /sub /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
36 1 0:32 / /mnt/other rw - cgroup cgroup rw,freezer
";
        let own =
            "5:pids:/elsewhere\n4:memory:/a/zoo-7\n3:name=systemd:/user\n2:cpu,cpuacct:/\n0::/x.scope\n";
        let view = parse_view(mountinfo, own);
        let h = |name: &str, v2: bool, own: &str| Hierarchy { name: name.into(), v2, own: own.into() };
        assert_eq!(
            view,
            CgroupView {
                unified: false,
                hierarchies: vec![
                    h("unified", true, "/sys/fs/cgroup/unified/x.scope"),
                    h("cpu,cpuacct", false, "/sys/fs/cgroup/cpu,cpuacct"),
                    h("memory", false, "/sys/fs/cgroup/memory/a/zoo-7"),
                    h("systemd", false, "/sys/fs/cgroup/systemd/user"),
                ],
                links: vec![],
            }
        );
        // A cgroup v2 host.
        let view = parse_view("40 25 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n", own);
        assert_eq!(view.hierarchies, [h("", true, "/sys/fs/cgroup/x.scope")]);
        assert!(view.unified);
        // A tmpfs mounted over it hides it.
        let hidden = "40 25 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n41 40 0:5 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n";
        assert_eq!(parse_view(hidden, own), CgroupView::default());
    }

    #[test]
    fn weights_as_runc_converts_them() {
        let weights: Vec<u64> = [0, 2, 3, 10, 100, 512, 1024, 2048, 4096, 100_000, 262_143, 262_144, 300_000]
            .into_iter()
            .map(cpu_weight)
            .collect();
        assert_eq!(weights, [0, 1, 2, 4, 17, 59, 100, 174, 303, 4340, 10000, 10000, 10000]);
        assert_eq!((io_weight(10), io_weight(500), io_weight(1000)), (1, 4950, 10000));
    }

    #[test]
    fn cpu_quota() {
        assert_eq!(cpu_quota_us(50), 50_000);
        assert_eq!(cpu_quota_us(250), 250_000);
        assert_eq!(cpu_quota_us(1), 1_000);
    }
}
