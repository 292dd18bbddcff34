//! OCI bundles: `zookeeper --bundle DIR` runs DIR/config.json (the OCI
//! runtime specification, 1.0 to 1.2) as `runc run` would, in the
//! foreground, with zookeeper's supervision.
//!
//! config.json is read as a hostile file (not through a symbolic link,
//! never blocking, a regular file, at most [`CONFIG_LIMIT`] bytes), parsed
//! into the `oci-spec` crate's types, and converted once into a
//! [`ContainerSpec`], field by field. What the engine cannot do yet, or
//! what would give the container something else than the config asks for,
//! is refused with one line naming the field; what runc ignores is ignored;
//! the mounts every runtime's config lists (/proc, /dev, /sys, ...) are the
//! ones zookeeper's profile makes itself. `docs/oci.md` has the table: every
//! field, and how it maps onto the kernel or why it is refused.

use std::collections::HashSet;
use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::{Mode, SFlag, fstat};
use oci_spec::runtime as oci;

use crate::error::errno_text;
use crate::idmap::{IdMapPlan, IdRange};
use crate::spec::{
    Atime, CapSet, Capabilities, Clock, ContainerSpec, CpuAffinity, Device, DeviceNode, DeviceRule, Hook,
    Hooks, IdMaps, Identity, MemoryPolicy, Mount, MountKind, MountOptions, Namespace, Namespaces, Network,
    NodeKind, Propagation, PropagationKind, RecursiveFlags, Rlimit, Scheduler, Seccomp, TimeOffset, User,
};

/// The most of config.json zookeeper reads: real ones are a few KiB (a
/// seccomp profile makes them 20 to 30), so more is a mistake or an attack.
pub const CONFIG_LIMIT: u64 = 4 << 20;

/// Why a bundle cannot run. Every variant is zookeeper's own failure: exit
/// status 125, one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleError {
    /// DIR, or DIR/config.json, cannot be read as a bundle.
    Read { dir: PathBuf, reason: String },
    /// config.json is not JSON of the runtime spec's shape; `field` is where
    /// (`process.capabilities.bounding[2]`), `.` for the whole document.
    Parse { field: String, reason: String },
    /// config.json asks for something zookeeper refuses or cannot do yet.
    Field { field: String, reason: String },
}

impl BundleError {
    /// The config.json field the error is about, if it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            BundleError::Read { .. } => None,
            BundleError::Parse { field, .. } | BundleError::Field { field, .. } => Some(field),
        }
    }

    pub fn exit_code(&self) -> i32 {
        125
    }
}

impl std::fmt::Display for BundleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Control characters from a hostile file must not break the line.
        let clean = |text: &str| text.replace(|c: char| c.is_control(), "?");
        match self {
            BundleError::Read { dir, reason } => {
                write!(f, "--bundle {}: {}", clean(&dir.to_string_lossy()), clean(reason))
            }
            BundleError::Parse { field, reason } | BundleError::Field { field, reason } if field == "." => {
                write!(f, "config.json: {}", clean(reason))
            }
            BundleError::Parse { field, reason } | BundleError::Field { field, reason } => {
                write!(f, "config.json: {}: {}", clean(field), clean(reason))
            }
        }
    }
}

impl std::error::Error for BundleError {}

impl From<BundleError> for crate::Error {
    fn from(err: BundleError) -> crate::Error {
        crate::Error::Setup(anyhow::Error::new(err))
    }
}

fn refuse(field: impl Into<String>, reason: impl Into<String>) -> BundleError {
    BundleError::Field { field: field.into(), reason: reason.into() }
}

/// What the conversion needs to know about this host and caller.
#[derive(Debug, Clone)]
pub struct Host {
    /// The caller's uid and gid, where zookeeper runs.
    pub uid: u32,
    pub gid: u32,
    /// The id maps zookeeper installs for this caller when a config gives
    /// none (README "Id maps"); for a user, also what newuidmap and
    /// newgidmap would grant.
    pub ids: IdMapPlan,
    /// The host's hostname: what a new UTS namespace starts with, and so
    /// what a config without `hostname` gets (as under runc).
    pub hostname: String,
    /// SELinux is enabled (then `linux.mountLabel` cannot be ignored).
    pub selinux: bool,
    /// `/sys/fs/cgroup` is cgroup v2 (otherwise v1 hierarchies, or a
    /// hybrid's): what a cgroup mount and the resources can be.
    pub cgroup2: bool,
    /// The host's device node of a type and number, for a container that
    /// cannot mknod (`linux.devices` in a user namespace): given the
    /// config's path, where it usually is.
    pub find_device: fn(NodeKind, u32, u32, &Path) -> Option<PathBuf>,
}

impl Host {
    pub fn current() -> Host {
        let hostname =
            nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
        Host {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            ids: IdMapPlan::for_current_caller(),
            hostname,
            selinux: Path::new("/sys/fs/selinux/enforce").exists(),
            cgroup2: nix::sys::statfs::statfs("/sys/fs/cgroup")
                .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC),
            find_device: find_host_device,
        }
    }
}

/// The host's node of this type and number: `preferred` if it is one (the
/// config's path, `/dev/fuse`, is where the host has it too), else the
/// first one found under `/dev`, links not followed, a few levels deep
/// (`/dev/net/tun`, `/dev/dri/card0`, `/dev/snd/...`).
pub fn find_host_device(kind: NodeKind, major: u32, minor: u32, preferred: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let wanted = nix::sys::stat::makedev(major.into(), minor.into());
    let is_it = |meta: &std::fs::Metadata| {
        let kind_matches = match kind {
            NodeKind::Char => meta.file_type().is_char_device(),
            NodeKind::Block => meta.file_type().is_block_device(),
            NodeKind::Fifo => false,
        };
        kind_matches && meta.rdev() == wanted
    };
    // The ptys are the host's sessions' terminals, not devices to hand out.
    let pty = |path: &Path| path.starts_with("/dev/pts");
    if preferred.starts_with("/dev")
        && !pty(preferred)
        && std::fs::symlink_metadata(preferred).is_ok_and(|m| is_it(&m))
    {
        return Some(preferred.to_path_buf());
    }
    let mut pending = vec![(PathBuf::from("/dev"), 0)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut entries: Vec<_> = entries.flatten().collect();
        // The same answer every time: the first by name.
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
            if is_it(&meta) {
                return Some(entry.path());
            }
            if meta.is_dir() && depth < 3 && !pty(&entry.path()) {
                pending.push((entry.path(), depth + 1));
            }
        }
    }
    None
}

/// Reads, parses, validates and converts DIR/config.json.
pub fn load_bundle(dir: &Path) -> Result<ContainerSpec, BundleError> {
    let bytes = read_config(dir)?;
    let config = parse_config(&bytes)?;
    // Relative paths in the config are relative to the bundle, whatever
    // directory zookeeper later works in.
    let bundle = match dir.is_absolute() {
        true => dir.to_path_buf(),
        false => std::env::current_dir()
            .map_err(|err| BundleError::Read {
                dir: dir.into(),
                reason: format!("the current directory: {err}"),
            })?
            .join(dir),
    };
    convert(&config, &bundle, &Host::current())
}

/// DIR/config.json's bytes, read as a hostile file: not through a symbolic
/// link, without blocking (a FIFO), only a regular file, at most
/// [`CONFIG_LIMIT`] bytes.
pub fn read_config(dir: &Path) -> Result<Vec<u8>, BundleError> {
    let fail = |reason: String| BundleError::Read { dir: dir.into(), reason };
    let dir_fd = open(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map_err(
        |errno| match errno {
            Errno::ENOENT => fail("no such directory".into()),
            Errno::ENOTDIR => fail("not a directory".into()),
            errno => fail(errno_text(errno)),
        },
    )?;
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let file = openat(&dir_fd, "config.json", flags, Mode::empty()).map_err(|errno| match errno {
        Errno::ENOENT => fail("no config.json in it".into()),
        Errno::ELOOP => fail("config.json is a symbolic link; refusing to follow it".into()),
        errno => fail(format!("config.json: {}", errno_text(errno))),
    })?;
    let stat = fstat(&file).map_err(|errno| fail(format!("config.json: {}", errno_text(errno))))?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(fail("config.json is not a regular file".into()));
    }
    // As for a rootfs (README, "The filesystem"): whoever can change
    // config.json chooses what runs and what of the caller's is bound in.
    let caller = nix::unistd::geteuid().as_raw();
    if stat.st_uid != caller && stat.st_uid != 0 {
        return Err(fail(format!(
            "config.json belongs to uid {}, neither you nor root: refusing another user's container",
            stat.st_uid
        )));
    }
    if stat.st_mode & 0o022 != 0 {
        return Err(fail(format!(
            "config.json is writable by group or others (mode {:04o}): refusing what others could change (chmod go-w it)",
            stat.st_mode & 0o7777
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(stat.st_size).unwrap_or(0).min(CONFIG_LIMIT as usize));
    std::fs::File::from(file)
        .take(CONFIG_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| fail(format!("config.json: {}", err.to_string().to_lowercase())))?;
    if bytes.len() as u64 > CONFIG_LIMIT {
        return Err(fail(format!("config.json is larger than {} MiB", CONFIG_LIMIT >> 20)));
    }
    Ok(bytes)
}

/// config.json's bytes into the runtime spec's types. Unknown fields are
/// ignored, as runc ignores them; a field of the wrong shape is named.
pub fn parse_config(bytes: &[u8]) -> Result<oci::Spec, BundleError> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let spec: oci::Spec = serde_path_to_error::deserialize(&mut json).map_err(|err| {
        // serde_path_to_error says "?" where no field was reached yet.
        let field = match err.path().to_string() {
            path if path == "?" || path.is_empty() => ".".to_string(),
            path => path,
        };
        let mut reason = err.inner().to_string();
        // oci-spec's words for a capability it does not know.
        if field.starts_with("process.capabilities.")
            && let Some(rest) = reason.strip_prefix("no variant for ")
        {
            let name = rest.split(" (converted").next().unwrap_or(rest);
            reason = format!("unknown capability {}", shown(name));
        }
        // serde quotes the offending value: a hostile one may be long.
        if let Some((cut, _)) = reason.char_indices().nth(240) {
            reason.truncate(cut);
            reason.push_str("...");
        }
        BundleError::Parse { field, reason }
    })?;
    json.end().map_err(|err| BundleError::Parse { field: ".".into(), reason: err.to_string() })?;
    Ok(spec)
}

/// The runtime-spec versions zookeeper reads: 1.0.x to 1.2.x (runtime-spec
/// keeps fields compatible within a major version; 1.3 may add fields that
/// change what a container gets, which zookeeper would silently ignore).
fn check_version(version: &str) -> Result<(), BundleError> {
    let field = "ociVersion";
    if version.is_empty() {
        return Err(refuse(field, "missing"));
    }
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let number = |text: &str| {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse::<u64>().ok())
            .flatten()
    };
    match parts.as_slice() {
        [major, minor, patch] => match (number(major), number(minor), number(patch)) {
            (Some(1), Some(0..=2), Some(_)) => Ok(()),
            (Some(_), Some(_), Some(_)) => Err(refuse(
                field,
                format!("{} is not supported (zookeeper reads 1.0.x to 1.2.x)", shown(version)),
            )),
            _ => Err(refuse(field, format!("{} is not a version", shown(version)))),
        },
        _ => Err(refuse(field, format!("{} is not a version", shown(version)))),
    }
}

/// The whole conversion: a validated config into zookeeper's description.
/// `bundle` is the bundle directory (absolute), which relative paths are
/// relative to.
pub fn convert(config: &oci::Spec, bundle: &Path, host: &Host) -> Result<ContainerSpec, BundleError> {
    check_version(config.version())?;

    let root = config.root().as_ref().ok_or_else(|| refuse("root", "missing"))?;
    if root.path().as_os_str().is_empty() {
        return Err(refuse("root.path", "empty"));
    }
    check_no_nul("root.path", &root.path().to_string_lossy())?;

    let linux = config
        .linux()
        .as_ref()
        .ok_or_else(|| refuse("linux", "missing (zookeeper needs the mount and pid namespaces it lists)"))?;
    let (namespaces, id_maps, ids_inside) = convert_namespaces(linux, host)?;

    let process = config.process().as_ref().ok_or_else(|| refuse("process", "missing"))?;
    let args = match process.args() {
        Some(args) if !args.is_empty() => args,
        _ => return Err(refuse("process.args", "missing: there is no command to run")),
    };
    if args[0].is_empty() {
        return Err(refuse("process.args[0]", "the command is an empty string"));
    }
    for (i, arg) in args.iter().enumerate() {
        check_no_nul(&format!("process.args[{i}]"), arg)?;
    }
    let env = process.env().clone().unwrap_or_default();
    for (i, entry) in env.iter().enumerate() {
        let field = format!("process.env[{i}]");
        check_no_nul(&field, entry)?;
        match entry.split_once('=') {
            None => return Err(refuse(field, format!("{} is not KEY=VALUE", shown(entry)))),
            Some(("", _)) => return Err(refuse(field, "the variable name is empty")),
            Some(_) => {}
        }
    }

    let mut spec =
        ContainerSpec::new(args.iter().map(Into::into).collect(), env.iter().map(Into::into).collect());
    spec.root = Some(bundle.join(root.path()));
    spec.root_readonly = root.readonly().unwrap_or(false);
    spec.process.terminal = process.terminal().unwrap_or(false);
    // zookeeper's pty takes the caller's terminal size, and follows it.
    let _ = process.console_size();
    // process.commandLine and process.user.username are Windows' (runc
    // ignores them too).

    let cwd = process.cwd().to_string_lossy().into_owned();
    check_no_nul("process.cwd", &cwd)?;
    if !cwd.starts_with('/') {
        return Err(refuse("process.cwd", format!("{} is not an absolute path", shown(&cwd))));
    }
    spec.process.cwd = cwd;
    spec.namespaces = namespaces;
    spec.id_maps = id_maps;
    spec.process.user = convert_user(process.user(), &ids_inside)?;
    spec.process.capabilities = convert_capabilities(process.capabilities().as_ref())?;
    // Absent, as under runc: no_new_privs is not set.
    spec.process.no_new_privileges = process.no_new_privileges().unwrap_or(false);
    spec.process.rlimits = convert_rlimits(process.rlimits().as_deref().unwrap_or_default())?;
    if let Some(adj) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(refuse("process.oomScoreAdj", format!("{adj} is outside -1000..1000")));
        }
        spec.process.oom_score_adj = Some(adj);
    }
    if process.apparmor_profile().as_deref().is_some_and(|p| !p.is_empty()) {
        return Err(refuse(
            "process.apparmorProfile",
            "AppArmor profiles are not supported (runc too fails when the host has no AppArmor)",
        ));
    }
    if process.selinux_label().as_deref().is_some_and(|l| !l.is_empty()) {
        return Err(refuse(
            "process.selinuxLabel",
            "SELinux labels are not supported (runc too refuses one when SELinux is disabled)",
        ));
    }
    if let Some(priority) = process.io_priority() {
        spec.process.io_priority = Some(convert_io_priority(priority)?);
    }
    if let Some(scheduler) = process.scheduler() {
        spec.process.scheduler = Some(convert_scheduler(scheduler)?);
    }
    if let Some(affinity) = process.exec_cpu_affinity() {
        let list = |field: &str, text: &Option<String>| -> Result<Option<Vec<u32>>, BundleError> {
            text.as_deref().map(|text| number_list(field, text, CPU_SETSIZE)).transpose()
        };
        spec.process.exec_cpu_affinity = Some(CpuAffinity {
            initial: list("process.execCPUAffinity.initial", affinity.initial())?,
            last: list("process.execCPUAffinity.final", affinity.cpu_affinity_final())?,
        });
    }

    spec.hostname = match config.hostname().as_deref() {
        // A new UTS namespace starts with the host's name, and runc leaves it.
        None | Some("") if spec.namespaces.uts == Namespace::New => host.hostname.clone(),
        // A joined one (a Kubernetes pod's sandbox's) keeps its own.
        None | Some("") => String::new(),
        Some(name) => {
            check_no_nul("hostname", name)?;
            // HOST_NAME_MAX.
            if name.len() > 64 {
                return Err(refuse("hostname", "longer than 64 bytes"));
            }
            name.into()
        }
    };
    if let Some(domain) = config.domainname().as_deref().filter(|d| !d.is_empty()) {
        check_no_nul("domainname", domain)?;
        // The kernel's __NEW_UTS_LEN.
        if domain.len() > 64 {
            return Err(refuse("domainname", "longer than 64 bytes"));
        }
        // setdomainname(2) in a uts namespace that is not the container's
        // would name the host (or another container).
        if spec.namespaces.uts != Namespace::New {
            return Err(refuse(
                "domainname",
                "needs the container's own uts namespace (linux.namespaces lists none)",
            ));
        }
        spec.domainname = domain.into();
    }

    // The config's mounts in its order, the standard ones among them; /dev
    // (with devpts and shm) first when it lists none, as zookeeper's /dev
    // is where the devices and /dev/null masks go. /etc is the caller's.
    spec.mounts.clear();
    spec.etc_files = false;
    for (i, mount) in config.mounts().as_deref().unwrap_or_default().iter().enumerate() {
        let mount = match convert_mount(i, mount, bundle, &spec.namespaces, host)? {
            Converted::Profile(Standard::Proc) => Mount::standard(MountKind::Proc),
            Converted::Profile(Standard::Sys) => Mount::standard(MountKind::Sysfs),
            Converted::Profile(Standard::Dev) => Mount::standard(MountKind::Dev),
            // Part of zookeeper's /dev.
            Converted::Profile(Standard::DevPts | Standard::DevShm) => continue,
            Converted::Mount(mount) => mount,
        };
        // A second /proc, /sys or /dev would stack one more of the same.
        if !(mount.is_standard() && spec.mounts.iter().any(|m| m.kind == mount.kind)) {
            spec.mounts.push(mount);
        }
    }
    if !spec.mounts.iter().any(|m| m.kind == MountKind::Dev) {
        spec.mounts.insert(0, Mount::standard(MountKind::Dev));
    }

    if let Some(hooks) = config.hooks() {
        spec.hooks = convert_hooks(hooks)?;
    }
    // What a hook reads about the container (its state): the bundle and the
    // annotations, which are otherwise metadata, as under runc.
    let mut annotations: Vec<(String, String)> =
        config.annotations().clone().unwrap_or_default().into_iter().collect();
    annotations.sort();
    spec.identity = Identity { id: String::new(), bundle: bundle.to_path_buf(), annotations };
    // solaris, windows, vm, zos: other platforms' sections, ignored as runc
    // ignores them.

    convert_linux(linux, host, &ids_inside, &mut spec)?;
    // A network namespace of the container's own has loopback, brought up;
    // -n, --network and --publish add a user-space stack from the command line.
    spec.network = Network::LoopbackOnly;
    Ok(spec)
}

/// A value from config.json quoted in a message: at most 64 characters.
fn shown(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// A path from config.json in a message, unquoted unless it is long.
fn shown_path(path: &str) -> String {
    match path.chars().count() > 64 || path.contains(|c: char| c.is_control()) {
        true => shown(path),
        false => path.to_string(),
    }
}

fn check_no_nul(field: &str, text: &str) -> Result<(), BundleError> {
    match text.contains('\0') {
        true => Err(refuse(field, "contains a NUL byte")),
        false => Ok(()),
    }
}

/// Whether container id `id` is mapped.
fn is_mapped(ranges: &[IdRange], id: u32) -> bool {
    ranges.iter().any(|r| id >= r.inside && u64::from(id - r.inside) < u64::from(r.count))
}

/// The config's hook lists, by their names in config.json.
fn hook_lists(hooks: &oci::Hooks) -> [(&'static str, &[oci::Hook]); 6] {
    fn list(list: &Option<Vec<oci::Hook>>) -> &[oci::Hook] {
        list.as_deref().unwrap_or_default()
    }
    [
        ("prestart", list(hooks.prestart())),
        ("createRuntime", list(hooks.create_runtime())),
        ("createContainer", list(hooks.create_container())),
        ("startContainer", list(hooks.start_container())),
        ("poststart", list(hooks.poststart())),
        ("poststop", list(hooks.poststop())),
    ]
}

/// The hooks, checked (an absolute path, a positive timeout, KEY=VALUE
/// environment), by when they run. prestart, deprecated, runs where runc
/// runs it: with createRuntime, before those.
fn convert_hooks(hooks: &oci::Hooks) -> Result<Hooks, BundleError> {
    let mut out = Hooks::default();
    for (name, list) in hook_lists(hooks) {
        let converted = list
            .iter()
            .enumerate()
            .map(|(i, hook)| {
                let field = format!("hooks.{name}[{i}]");
                let path = hook.path().to_string_lossy();
                check_no_nul(&format!("{field}.path"), &path)?;
                if !hook.path().is_absolute() {
                    return Err(refuse(
                        format!("{field}.path"),
                        format!("{} is not an absolute path", shown(&path)),
                    ));
                }
                let args = hook.args().clone().unwrap_or_default();
                for (j, arg) in args.iter().enumerate() {
                    check_no_nul(&format!("{field}.args[{j}]"), arg)?;
                }
                let env = hook.env().clone().unwrap_or_default();
                for (j, entry) in env.iter().enumerate() {
                    check_no_nul(&format!("{field}.env[{j}]"), entry)?;
                    if entry.split_once('=').is_none_or(|(key, _)| key.is_empty()) {
                        return Err(refuse(
                            format!("{field}.env[{j}]"),
                            format!("{} is not KEY=VALUE", shown(entry)),
                        ));
                    }
                }
                let timeout = match hook.timeout() {
                    None => None,
                    Some(secs @ 1..=0xffff_ffff) => Some(secs as u32),
                    // The runtime spec: greater than zero.
                    Some(secs) => {
                        return Err(refuse(
                            format!("{field}.timeout"),
                            format!("{secs} is not a positive number of seconds"),
                        ));
                    }
                };
                Ok(Hook { path: hook.path().clone(), args, env, timeout })
            })
            .collect::<Result<Vec<Hook>, BundleError>>()?;
        match name {
            "prestart" | "createRuntime" => out.create_runtime.extend(converted),
            "createContainer" => out.create_container = converted,
            "startContainer" => out.start_container = converted,
            "poststart" => out.poststart = converted,
            _ => out.poststop = converted,
        }
    }
    Ok(out)
}

/// Which ids exist in the container, for checking `process.user`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum IdsInside {
    /// No user namespace: the host's ids, all of them.
    Host,
    /// These maps; `setgroups`: whether the kernel lets the container set
    /// supplementary groups (not when an unprivileged caller wrote the gid
    /// map itself).
    Mapped { uid: Vec<IdRange>, gid: Vec<IdRange>, setgroups: bool },
}

fn convert_user(user: &oci::User, inside: &IdsInside) -> Result<User, BundleError> {
    let additional_gids = user.additional_gids().clone().unwrap_or_default();
    if let IdsInside::Mapped { uid, gid, setgroups } = inside {
        let unmapped = |field: &str, id: u32, kind: &str, map: &[IdRange]| {
            refuse(
                field,
                format!(
                    "{kind} {id} is not mapped in the container (its map: {}; see 'Id maps' in the README)",
                    map_text(map)
                ),
            )
        };
        if !is_mapped(uid, user.uid()) {
            return Err(unmapped("process.user.uid", user.uid(), "uid", uid));
        }
        if !is_mapped(gid, user.gid()) {
            return Err(unmapped("process.user.gid", user.gid(), "gid", gid));
        }
        if !additional_gids.is_empty() && !setgroups {
            return Err(refuse(
                "process.user.additionalGids",
                "supplementary groups need a gid map newgidmap installs (the kernel denies setgroups when the caller writes its own)",
            ));
        }
        for (i, id) in additional_gids.iter().enumerate() {
            if !is_mapped(gid, *id) {
                return Err(unmapped(&format!("process.user.additionalGids[{i}]"), *id, "gid", gid));
            }
        }
    }
    if let Some(umask) = user.umask()
        && umask > 0o777
    {
        return Err(refuse(
            "process.user.umask",
            format!("{umask:#o} is not a file mode mask (at most 0o777)"),
        ));
    }
    Ok(User { uid: user.uid(), gid: user.gid(), additional_gids, umask: user.umask() })
}

/// A capability as the kernel knows it, from the runtime spec's name.
fn capability(field: &str, cap: &oci::Capability) -> Result<caps::Capability, BundleError> {
    // The spec's name ("CAP_CHOWN") is how oci-spec writes it out.
    let name = serde_json::to_value(cap).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    name.parse().map_err(|_| refuse(field, format!("unknown capability {name:?}")))
}

fn cap_set(field: &str, set: Option<&oci::Capabilities>) -> Result<CapSet, BundleError> {
    let mut bits = CapSet(0);
    for cap in set.into_iter().flatten() {
        bits = bits.with(capability(field, cap)?);
    }
    Ok(bits)
}

fn convert_capabilities(caps: Option<&oci::LinuxCapabilities>) -> Result<Capabilities, BundleError> {
    let Some(caps) = caps else {
        // runc leaves the capabilities alone: container root keeps all of
        // them (over its own namespaces), with no inheritable or ambient.
        let all = CapSet::all();
        return Ok(Capabilities {
            bounding: all,
            effective: all,
            permitted: all,
            inheritable: CapSet(0),
            ambient: CapSet(0),
        });
    };
    let bounding = cap_set("process.capabilities.bounding", caps.bounding().as_ref())?;
    let effective = cap_set("process.capabilities.effective", caps.effective().as_ref())?;
    let permitted = cap_set("process.capabilities.permitted", caps.permitted().as_ref())?;
    let inheritable = cap_set("process.capabilities.inheritable", caps.inheritable().as_ref())?;
    let ambient = cap_set("process.capabilities.ambient", caps.ambient().as_ref())?;
    // capset(2) refuses an effective set beyond the permitted one (runc
    // fails the same way).
    if let Some(cap) = effective.iter().find(|cap| !permitted.contains(*cap)) {
        return Err(refuse("process.capabilities.effective", format!("{cap} is not in the permitted set")));
    }
    // The kernel raises an ambient capability only if it is permitted and
    // inheritable; runc warns and goes on without the others (`runc spec`
    // lists ambient ones and no inheritable ones), and so does zookeeper.
    let ambient = CapSet(ambient.0 & permitted.0 & inheritable.0);
    Ok(Capabilities { bounding, effective, permitted, inheritable, ambient })
}

fn rlimit_resource(typ: oci::PosixRlimitType) -> u32 {
    use oci::PosixRlimitType as T;
    match typ {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

fn convert_rlimits(rlimits: &[oci::PosixRlimit]) -> Result<Vec<Rlimit>, BundleError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, limit) in rlimits.iter().enumerate() {
        let field = format!("process.rlimits[{i}]");
        let resource = rlimit_resource(limit.typ());
        // The runtime spec: a runtime MUST refuse a duplicate type.
        if !seen.insert(resource) {
            return Err(refuse(field, format!("{} is set twice", limit.typ())));
        }
        if limit.soft() > limit.hard() {
            return Err(refuse(
                field,
                format!("the soft limit {} is above the hard limit {}", limit.soft(), limit.hard()),
            ));
        }
        out.push(Rlimit { resource, soft: limit.soft(), hard: limit.hard() });
    }
    Ok(out)
}

/// The mounts zookeeper's profile makes itself, which a runtime's config
/// lists because a runtime makes nothing it is not told to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standard {
    Proc,
    Dev,
    DevPts,
    DevShm,
    Sys,
}

enum Converted {
    Profile(Standard),
    Mount(Mount),
}

/// `path` without `.` components, repeated or trailing slashes; `None` when
/// it is relative or has a `..`.
fn clean_absolute(path: &Path) -> Option<String> {
    if !path.is_absolute() {
        return None;
    }
    let mut out = String::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => {
                out.push('/');
                out.push_str(&name.to_string_lossy());
            }
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(if out.is_empty() { "/".into() } else { out })
}

fn standard_mount(
    target: &str,
    typ: &str,
    source: Option<&Path>,
    is_bind: bool,
    namespaces: &Namespaces,
) -> Option<Standard> {
    Some(match (target, typ) {
        ("/proc", "proc") => Standard::Proc,
        ("/dev", "tmpfs") => Standard::Dev,
        ("/dev/pts", "devpts") => Standard::DevPts,
        ("/dev/shm", "tmpfs") => Standard::DevShm,
        ("/sys", "sysfs") => Standard::Sys,
        // `runc spec --rootless` binds the host's /sys, which a rootless
        // runtime could not mount: where the container owns its network
        // namespace it gets a sysfs of its own; otherwise the kernel
        // refuses one, and the bind is made as the config says.
        ("/sys", _)
            if is_bind && source == Some(Path::new("/sys")) && namespaces.network == Namespace::New =>
        {
            Standard::Sys
        }
        _ => return None,
    })
}

fn convert_mount(
    i: usize,
    mount: &oci::Mount,
    bundle: &Path,
    namespaces: &Namespaces,
    host: &Host,
) -> Result<Converted, BundleError> {
    let field = format!("mounts[{i}]");
    let destination = mount.destination();
    check_no_nul(&format!("{field}.destination"), &destination.to_string_lossy())?;
    let Some(target) = clean_absolute(destination) else {
        return Err(refuse(
            format!("{field}.destination"),
            format!("{} is not an absolute path without '..'", shown(&destination.to_string_lossy())),
        ));
    };
    let here = |reason: String| refuse(field.clone(), format!("{}: {reason}", shown_path(&target)));
    if target == "/" {
        return Err(here("mounting over the root is not supported (root.path is the root)".into()));
    }
    if mount.uid_mappings().is_some() || mount.gid_mappings().is_some() {
        return Err(here("id-mapped mounts (uidMappings, gidMappings) are not supported yet".into()));
    }
    let typ = mount.typ().as_deref().unwrap_or("");
    let options = mount.options().as_deref().unwrap_or_default();
    check_no_nul(&format!("{field}.type"), typ)?;
    for (j, option) in options.iter().enumerate() {
        check_no_nul(&format!("{field}.options[{j}]"), option)?;
    }
    // As runc: a "bind" or "rbind" option makes a bind mount whatever the
    // type says; the type "bind" alone is one too (as crun has it).
    let is_bind = typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
    if let Some(standard) = standard_mount(&target, typ, mount.source().as_deref(), is_bind, namespaces) {
        // The profile's own mount, with the profile's options (README, "The
        // filesystem"): docs/oci.md says where they differ.
        return Ok(Converted::Profile(standard));
    }
    let kind = if is_bind {
        let source = mount.source().as_ref().filter(|s| !s.as_os_str().is_empty()).ok_or_else(|| {
            refuse(format!("{field}.source"), format!("{target}: a bind mount needs a source"))
        })?;
        check_no_nul(&format!("{field}.source"), &source.to_string_lossy())?;
        let recursive = options.iter().any(|o| o == "rbind");
        MountKind::Bind { source: bundle.join(source), recursive }
    } else if typ == "tmpfs" {
        MountKind::Tmpfs
    } else if typ == "mqueue" {
        // The kernel mounts the queues of the mounter's ipc namespace, and
        // refuses a user namespace the host's. (Without a user namespace,
        // root gets the host's queues, which sharing the host's ipc
        // namespace gives it anyway, as under runc.)
        if namespaces.ipc == Namespace::Host && namespaces.user != Namespace::Host {
            return Err(here(
                "an mqueue mount needs the container's own ipc namespace (linux.namespaces lists none, and the kernel refuses a user namespace the host's queues)".into(),
            ));
        }
        MountKind::Mqueue
    } else if typ == "cgroup" || typ == "cgroup2" {
        // Whichever the config names, the host's kind (runc's way).
        MountKind::Cgroup
    } else if typ.is_empty() {
        return Err(here("no type, and not a bind mount".into()));
    } else {
        return Err(here(format!("mount type {} is not supported yet (bind and tmpfs are)", shown(typ))));
    };
    let cgroup = kind == MountKind::Cgroup;
    let mut out = Mount {
        kind,
        target: target.clone(),
        // The cgroup file system is read-only unless the config says rw.
        readonly: cgroup,
        nosuid: false,
        nodev: false,
        noexec: false,
        data: None,
        // Made where the target is missing, as runc makes it; but
        // /sys/fs/cgroup only where sysfs has it (a container without a
        // sysfs of its own has no /sys/fs/cgroup, as it has no /sys).
        if_present: cgroup && target == "/sys/fs/cgroup",
        options: MountOptions::default(),
    };
    let mut data = Vec::new();
    for option in options {
        if let Some(propagation) = propagation(option) {
            // After the mount is made (as runc applies them). Shared is
            // shared within the container: its mounts came to it as slaves
            // of the host's or private, so nothing reaches the host.
            out.options.propagation = Some(propagation);
            continue;
        }
        match option.as_str() {
            "bind" | "rbind" if is_bind => {}
            flag if out.set_flag(flag) => {}
            "defaults" => {}
            "strictatime" => out.options.atime = Some(Atime::Strict),
            "relatime" => out.options.atime = Some(Atime::Relative),
            "noatime" => out.options.atime = Some(Atime::Never),
            "nodiratime" => out.options.nodiratime = Some(true),
            "diratime" => out.options.nodiratime = Some(false),
            recursive if set_recursive(&mut out.options.recursive, recursive) => {}
            // A bind takes no file system data: the kernel ignores what
            // runc passes along (runtime-tools' mounts give binds tmpfs's
            // size= and mode=).
            data if is_bind && data.contains('=') => {}
            "idmap" | "ridmap" => {
                return Err(here(format!(
                    "option {}: id-mapped mounts are not supported yet",
                    shown(option)
                )));
            }
            size if matches!(out.kind, MountKind::Tmpfs) && size.starts_with("size=") => {
                if !tmpfs_size_ok(&size[5..]) {
                    return Err(here(format!(
                        "option {}: not a size (bytes, with k, m, g or %)",
                        shown(size)
                    )));
                }
                data.push(size.to_string())
            }
            mode if matches!(out.kind, MountKind::Tmpfs) && mode.starts_with("mode=") => {
                if !tmpfs_mode_ok(&mode[5..]) {
                    return Err(here(format!("option {}: not an octal mode", shown(mode))));
                }
                data.push(mode.to_string())
            }
            tmpfs if matches!(out.kind, MountKind::Tmpfs) && tmpfs_option_ok(tmpfs) => {
                data.push(tmpfs.to_string())
            }
            other => return Err(here(format!("option {} is not supported yet", shown(other)))),
        }
    }
    out.data = (!data.is_empty()).then(|| data.join(","));
    if cgroup && !out.readonly && !host.cgroup2 {
        return Err(here(
            "rw: this host runs cgroup v1, whose hierarchies a container gets only bound read-only".into(),
        ));
    }
    Ok(Converted::Mount(out))
}

/// `linux.timeOffsets`: the monotonic and boot-time clocks' shift in a
/// time namespace of the container's own (the kernel takes them only
/// before anything has entered it, so never for a joined one).
fn convert_time_offsets(linux: &oci::Linux, namespaces: &Namespaces) -> Result<Vec<TimeOffset>, BundleError> {
    let Some(offsets) = linux.time_offsets().as_ref().filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    if namespaces.time != Namespace::New {
        return Err(refuse(
            "linux.timeOffsets",
            "needs a time namespace of the container's own in linux.namespaces",
        ));
    }
    let mut out = Vec::new();
    let mut names: Vec<&String> = offsets.keys().collect();
    names.sort();
    for name in names {
        let field = format!("linux.timeOffsets.{name}");
        let clock = match name.as_str() {
            "monotonic" => Clock::Monotonic,
            "boottime" => Clock::Boottime,
            _ => return Err(refuse(field, "a time namespace shifts only monotonic and boottime")),
        };
        let offset = &offsets[name];
        let nanosecs = offset.nanosecs().unwrap_or(0);
        if nanosecs >= 1_000_000_000 {
            return Err(refuse(format!("{field}.nanosecs"), format!("{nanosecs} is a second or more")));
        }
        out.push(TimeOffset { clock, secs: offset.secs().unwrap_or(0), nanosecs });
    }
    Ok(out)
}

/// runc's recursive options (mount_setattr(2) with AT_RECURSIVE), as mount(8)
/// names their plain forms; false if `option` is none of them.
fn set_recursive(flags: &mut RecursiveFlags, option: &str) -> bool {
    let (field, on) = match option {
        "rro" => (&mut flags.readonly, true),
        "rrw" => (&mut flags.readonly, false),
        "rnosuid" => (&mut flags.nosuid, true),
        "rsuid" => (&mut flags.nosuid, false),
        "rnodev" => (&mut flags.nodev, true),
        "rdev" => (&mut flags.nodev, false),
        "rnoexec" => (&mut flags.noexec, true),
        "rexec" => (&mut flags.noexec, false),
        "rnosymfollow" => (&mut flags.nosymfollow, true),
        "rsymfollow" => (&mut flags.nosymfollow, false),
        "rnodiratime" => (&mut flags.nodiratime, true),
        "rdiratime" => (&mut flags.nodiratime, false),
        _ => {
            // mount(8): atime and nostrictatime are the kernel's default
            // (relatime); norelatime updates on every access.
            flags.atime = Some(match option {
                "rnoatime" => Atime::Never,
                "rstrictatime" | "rnorelatime" => Atime::Strict,
                "rrelatime" | "ratime" | "rnostrictatime" => Atime::Relative,
                _ => return false,
            });
            return true;
        }
    };
    *field = Some(on);
    true
}

/// tmpfs(5)'s options beyond size= and mode= that a container may ask for:
/// its inode and block counts, its root's owner, huge pages.
fn tmpfs_option_ok(option: &str) -> bool {
    let Some((key, value)) = option.split_once('=') else { return false };
    let number = || !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    match key {
        "nr_inodes" | "nr_blocks" => tmpfs_size_ok(value),
        "uid" | "gid" => number(),
        "huge" => matches!(value, "never" | "always" | "within_size" | "advise"),
        _ => false,
    }
}

/// `linux.cgroupsPath`, as runc's cgroupfs driver takes it: absolute from
/// the hierarchy's root, or relative to zookeeper's own cgroup (v1) or its
/// parent (v2). Nothing that climbs out (`..`); the systemd driver's
/// `slice:prefix:name` is not this driver's. Where zookeeper may create
/// cgroups at all is the engine's to check (a rootless v2 container only in
/// its delegated subtree).
fn cgroups_path(path: &str, host: &Host) -> Result<String, BundleError> {
    let field = "linux.cgroupsPath";
    check_no_nul(field, path)?;
    if path.contains(':') {
        return Err(refuse(
            field,
            format!(
                "{}: the systemd driver's slice:prefix:name is not supported (zookeeper makes cgroups in the file system, as runc's cgroupfs driver)",
                shown(path)
            ),
        ));
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.contains(&"..") {
        return Err(refuse(
            field,
            format!("{}: '..' would leave where the container's cgroup may go", shown(path)),
        ));
    }
    if parts.is_empty() {
        return Err(refuse(field, format!("{}: the root cgroup cannot be a container's", shown(path))));
    }
    if !host.cgroup2 && host.uid != 0 {
        return Err(refuse(
            field,
            "a rootless container gets no cgroup on this cgroup v1 host (cgroup v2 delegates one to a user)",
        ));
    }
    let lead = if path.starts_with('/') { "/" } else { "" };
    Ok(format!("{lead}{}", parts.join("/")))
}

/// A cpuset list as the kernel takes it: `0-3,7`.
fn cpu_list_ok(list: &str) -> bool {
    let number = |n: &str| !n.is_empty() && n.len() <= 5 && n.bytes().all(|b| b.is_ascii_digit());
    list.split(',').all(|item| match item.split_once('-') {
        Some((low, high)) => {
            number(low) && number(high) && low.parse::<u32>().ok() <= high.parse::<u32>().ok()
        }
        None => number(item),
    })
}

/// A propagation option (`rslave`), as mount(8) and the runtime spec name them.
fn propagation(option: &str) -> Option<Propagation> {
    let (recursive, kind) = match option.strip_prefix('r') {
        Some(rest) => (true, rest),
        None => (false, option),
    };
    let kind = match kind {
        "private" => PropagationKind::Private,
        "slave" => PropagationKind::Slave,
        "shared" => PropagationKind::Shared,
        "unbindable" => PropagationKind::Unbindable,
        _ => return None,
    };
    Some(Propagation { kind, recursive })
}

/// tmpfs's `size=`: bytes, with a k/m/g/t/p/e suffix or `%` (checked here
/// so that the kernel is not handed garbage).
fn tmpfs_size_ok(size: &str) -> bool {
    let digits = size.strip_suffix(|c: char| "kKmMgGtTpPeE%".contains(c)).unwrap_or(size);
    !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// tmpfs's `mode=`: octal, at most 07777.
fn tmpfs_mode_ok(mode: &str) -> bool {
    (1..=5).contains(&mode.len())
        && mode.bytes().all(|b| (b'0'..=b'7').contains(&b))
        && u32::from_str_radix(mode, 8).is_ok_and(|m| m <= 0o7777)
}

/// The device nodes zookeeper's /dev has (bound from the host, read-only):
/// runc's default set, which a config may list.
const DEFAULT_DEVICES: [(&str, i64, i64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn convert_linux(
    linux: &oci::Linux,
    host: &Host,
    ids: &IdsInside,
    spec: &mut ContainerSpec,
) -> Result<(), BundleError> {
    spec.time_offsets = convert_time_offsets(linux, &spec.namespaces)?;
    let listed = convert_devices(linux.devices().as_deref().unwrap_or_default(), host, ids, spec)?;
    let rules = linux.resources().as_ref().and_then(|r| r.devices().as_deref()).unwrap_or_default();
    convert_device_rules(rules, host, &listed, spec)?;
    if let Some(resources) = linux.resources() {
        convert_resources(resources, spec)?;
    }
    if let Some(path) = linux.cgroups_path().as_ref().filter(|p| !p.as_os_str().is_empty()) {
        spec.resources.cgroup_path = Some(cgroups_path(&path.to_string_lossy(), host)?);
    }
    // Sorted, so that the same config writes them in the same order. The
    // engine refuses, naming it, one that is not a parameter of a namespace
    // the container has of its own (runc's rule).
    let mut sysctl: Vec<(String, String)> = linux.sysctl().clone().unwrap_or_default().into_iter().collect();
    sysctl.sort();
    for (name, value) in &sysctl {
        let field = format!("linux.sysctl.{name}");
        check_no_nul(&field, name)?;
        check_no_nul(&field, value)?;
        if name.is_empty()
            || name.contains('/')
            || name.split('.').any(|part| part.is_empty() || part == "..")
        {
            return Err(refuse("linux.sysctl", format!("{} is not a kernel parameter's name", shown(name))));
        }
    }
    spec.sysctl = sysctl;
    // private and rprivate are what the container's mounts are anyway.
    spec.root_propagation = match linux.rootfs_propagation().as_deref() {
        None | Some("" | "private" | "rprivate") => None,
        Some(value) => match propagation(value) {
            // runc's rshared without a user namespace sends the container's
            // mounts (its /proc, its /dev) to the host's; zookeeper never
            // does. In a user namespace the kernel keeps them from the host.
            Some(Propagation { kind: PropagationKind::Shared, .. })
                if spec.namespaces.user == Namespace::Host =>
            {
                return Err(refuse(
                    "linux.rootfsPropagation",
                    format!(
                        "{}: without a user namespace the container's mounts would propagate to the host's; not supported",
                        shown(value)
                    ),
                ));
            }
            Some(propagation) => Some(propagation),
            None => {
                return Err(refuse(
                    "linux.rootfsPropagation",
                    format!("{} is not a propagation", shown(value)),
                ));
            }
        },
    };
    // Absent: zookeeper's defaults (docker's lists). runc would mask
    // nothing, which leaves /proc/sysrq-trigger writable by a container
    // whose root is host root.
    if let Some(paths) = linux.masked_paths() {
        spec.masked_paths = check_paths("linux.maskedPaths", paths)?;
    }
    if let Some(paths) = linux.readonly_paths() {
        spec.readonly_paths = check_paths("linux.readonlyPaths", paths)?;
    }
    spec.seccomp = match linux.seccomp() {
        // As runc: a config without a profile runs without a filter.
        None => Seccomp::Unconfined,
        Some(profile) => compile_seccomp(profile)?,
    };
    if linux.mount_label().as_deref().is_some_and(|l| !l.is_empty()) && host.selinux {
        return Err(refuse("linux.mountLabel", "SELinux mount labels are not supported"));
    }
    if linux.intel_rdt().is_some() {
        return Err(refuse("linux.intelRdt", "Intel RDT is not supported"));
    }
    if let Some(personality) = linux.personality() {
        if personality.domain() != oci::LinuxPersonalityDomain::PerLinux {
            return Err(refuse("linux.personality.domain", "only LINUX (the default) is supported yet"));
        }
        if personality.flags().as_ref().is_some_and(|f| !f.is_empty()) {
            return Err(refuse("linux.personality.flags", "not supported"));
        }
    }
    if let Some(policy) = linux.memory_policy() {
        spec.memory_policy = Some(convert_memory_policy(policy)?);
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(refuse("linux.netDevices", "not supported yet"));
    }
    Ok(())
}

/// The kernel's cpu_set_t holds CPUs 0..1024; set_mempolicy here takes
/// as many nodes.
const CPU_SETSIZE: u32 = 1024;
const MAX_NODES: u32 = 1024;

/// `0-3,7`: the numbers of a kernel list (cpuset.cpus's syntax), each
/// below `limit`, sorted without repeats.
fn number_list(field: &str, text: &str, limit: u32) -> Result<Vec<u32>, BundleError> {
    let bad = || refuse(field, format!("{} is not a list like 0-3,7", shown(text)));
    let mut numbers = Vec::new();
    if text.is_empty() {
        return Ok(numbers);
    }
    for part in text.split(',') {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let first: u32 = first.parse().map_err(|_| bad())?;
        let last: u32 = last.parse().map_err(|_| bad())?;
        if first > last {
            return Err(bad());
        }
        if last >= limit {
            return Err(refuse(field, format!("{last} is beyond the kernel's limit of {limit}")));
        }
        numbers.extend(first..=last);
    }
    numbers.sort_unstable();
    numbers.dedup();
    Ok(numbers)
}

/// ioprio_set's value, runc's checks (level 0..7).
fn convert_io_priority(priority: &oci::LinuxIOPriority) -> Result<u16, BundleError> {
    let class: u16 = match priority.class() {
        oci::IOPriorityClass::IoprioClassRt => 1,
        oci::IOPriorityClass::IoprioClassBe => 2,
        oci::IOPriorityClass::IoprioClassIdle => 3,
    };
    let level = priority.priority();
    if !(0..=7).contains(&level) {
        return Err(refuse("process.ioPriority.priority", format!("{level} is outside 0..7")));
    }
    Ok(class << 13 | level as u16)
}

/// sched_setattr's attributes, with runc's checks of which field goes
/// with which policy.
fn convert_scheduler(scheduler: &oci::Scheduler) -> Result<Scheduler, BundleError> {
    use oci::LinuxSchedulerPolicy as P;
    let policy = *scheduler.policy();
    let number = match policy {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => 4,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    let nice = scheduler.nice().unwrap_or(0);
    if matches!(policy, P::SchedOther | P::SchedBatch) && !(-20..=19).contains(&nice) {
        return Err(refuse("process.scheduler.nice", format!("{nice} is outside -20..19")));
    }
    let priority = scheduler.priority().unwrap_or(0);
    if priority != 0 && !matches!(policy, P::SchedFifo | P::SchedRr) {
        return Err(refuse("process.scheduler.priority", "only SCHED_FIFO and SCHED_RR take one"));
    }
    let priority = u32::try_from(priority)
        .map_err(|_| refuse("process.scheduler.priority", format!("{priority} is negative")))?;
    let (runtime, deadline, period) = (
        scheduler.runtime().unwrap_or(0),
        scheduler.deadline().unwrap_or(0),
        scheduler.period().unwrap_or(0),
    );
    if policy != P::SchedDeadline && (runtime, deadline, period) != (0, 0, 0) {
        return Err(refuse("process.scheduler", "runtime, deadline and period are SCHED_DEADLINE's only"));
    }
    let mut flags = 0;
    for flag in scheduler.flags().as_deref().unwrap_or_default() {
        use oci::LinuxSchedulerFlag as F;
        flags |= match flag {
            F::SchedResetOnFork => 0x01,
            F::SchedFlagReclaim => 0x02,
            F::SchedFlagDLOverrun => 0x04,
            F::SchedFlagKeepPolicy => 0x08,
            F::SchedFlagKeepParams => 0x10,
            F::SchedFlagUtilClampMin => 0x20,
            F::SchedFlagUtilClampMax => 0x40,
        };
    }
    Ok(Scheduler { policy: number, flags, nice, priority, runtime, deadline, period })
}

/// set_mempolicy's mode and nodes, with runc's checks of how many nodes
/// each mode takes.
fn convert_memory_policy(policy: &oci::LinuxMemoryPolicy) -> Result<MemoryPolicy, BundleError> {
    use oci::MemoryPolicyModeType as M;
    let nodes = number_list("linux.memoryPolicy.nodes", policy.nodes().as_deref().unwrap_or(""), MAX_NODES)?;
    let mode = policy.mode();
    let number = match mode {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    match mode {
        M::MpolDefault | M::MpolLocal if !nodes.is_empty() => {
            return Err(refuse("linux.memoryPolicy.nodes", format!("{mode} takes no nodes")));
        }
        M::MpolBind | M::MpolInterleave | M::MpolPreferredMany | M::MpolWeightedInterleave
            if nodes.is_empty() =>
        {
            return Err(refuse("linux.memoryPolicy.nodes", format!("{mode} needs at least one node")));
        }
        _ => {}
    }
    let mut flags = 0;
    for flag in policy.flags().as_deref().unwrap_or_default() {
        use oci::MemoryPolicyFlagType as F;
        flags |= match flag {
            F::MpolFNumaBalancing => 1 << 13,
            F::MpolFRelativeNodes => 1 << 14,
            F::MpolFStaticNodes => 1 << 15,
        };
    }
    Ok(MemoryPolicy { mode: number | flags, nodes })
}

/// An OCI seccomp profile, compiled for this container (src/seccomp_oci.rs,
/// whose errors name the field in the profile).
fn compile_seccomp(profile: &oci::LinuxSeccomp) -> Result<Seccomp, BundleError> {
    crate::seccomp_oci::compile(profile).map(Seccomp::Program).map_err(|err| {
        let text = format!("{err:#}");
        match text.split_once(": ") {
            Some((field, reason)) if field.starts_with("linux.seccomp") && !field.contains(' ') => {
                refuse(field, reason)
            }
            _ => refuse("linux.seccomp", text),
        }
    })
}

/// The container's namespaces and id maps, and so which ids exist in it.
///
/// The runtime spec: a namespace the config does not list is the runtime's
/// own (the host's), and a listed one with a `path` is joined. zookeeper
/// always makes new mount and pid namespaces; a caller that is not root
/// cannot go without a user namespace, and gets one (runc would refuse).
fn convert_namespaces(
    linux: &oci::Linux,
    host: &Host,
) -> Result<(Namespaces, IdMaps, IdsInside), BundleError> {
    use oci::LinuxNamespaceType as T;
    let listed = linux.namespaces().as_deref().unwrap_or_default();
    let mut seen = HashSet::new();
    let mut namespaces = Namespaces {
        user: if host.uid == 0 { Namespace::Host } else { Namespace::New },
        network: Namespace::Host,
        ipc: Namespace::Host,
        uts: Namespace::Host,
        cgroup: Namespace::Host,
        time: Namespace::Host,
        pid: Namespace::New,
    };
    for (i, ns) in listed.iter().enumerate() {
        let field = format!("linux.namespaces[{i}]");
        let name = namespace_name(ns.typ());
        if !seen.insert(name) {
            return Err(refuse(field, format!("the {name} namespace is listed twice")));
        }
        let path = ns.path().as_ref().filter(|p| !p.as_os_str().is_empty());
        if let Some(path) = path {
            check_no_nul(&format!("{field}.path"), &path.to_string_lossy())?;
            if !path.is_absolute() {
                return Err(refuse(
                    format!("{field}.path"),
                    format!("{} is not an absolute path", shown(&path.to_string_lossy())),
                ));
            }
        }
        let wanted = match path {
            Some(path) => Namespace::Join(path.clone()),
            None => Namespace::New,
        };
        let slot = match ns.typ() {
            T::User => &mut namespaces.user,
            T::Network => &mut namespaces.network,
            T::Ipc => &mut namespaces.ipc,
            T::Uts => &mut namespaces.uts,
            T::Cgroup => &mut namespaces.cgroup,
            T::Pid => &mut namespaces.pid,
            T::Mount if path.is_some() => {
                return Err(refuse(
                    field,
                    "joining a mount namespace is not supported (the container's is always new)",
                ));
            }
            T::Mount => continue,
            T::Time => &mut namespaces.time,
        };
        if ns.typ() == T::User && path.is_some() {
            return Err(refuse(field, "joining a user namespace by path is not supported yet"));
        }
        *slot = wanted;
    }
    for needed in [T::Mount, T::Pid] {
        if !listed.iter().any(|ns| ns.typ() == needed) {
            return Err(refuse(
                "linux.namespaces",
                format!("no {} namespace: sharing the host's is not supported", namespace_name(needed)),
            ));
        }
    }

    let uid_rows = linux.uid_mappings().as_deref().unwrap_or_default();
    let gid_rows = linux.gid_mappings().as_deref().unwrap_or_default();
    if namespaces.user != Namespace::New {
        for (name, rows) in [("uidMappings", uid_rows), ("gidMappings", gid_rows)] {
            if !rows.is_empty() {
                // As runc.
                return Err(refuse(
                    format!("linux.{name}"),
                    "given without a user namespace in linux.namespaces",
                ));
            }
        }
        return Ok((namespaces, IdMaps::Auto, IdsInside::Host));
    }
    match (uid_rows.is_empty(), gid_rows.is_empty()) {
        // None: zookeeper's own maps for this caller.
        (true, true) => {
            let ids = &host.ids;
            let inside = IdsInside::Mapped {
                uid: ids.uid.ranges.clone(),
                gid: ids.gid.ranges.clone(),
                setgroups: ids.setgroups_allowed,
            };
            Ok((namespaces, IdMaps::Auto, inside))
        }
        (false, true) => Err(refuse("linux.gidMappings", "missing while linux.uidMappings is given")),
        (true, false) => Err(refuse("linux.uidMappings", "missing while linux.gidMappings is given")),
        (false, false) => {
            let uid = id_ranges("uidMappings", uid_rows, host, &host.ids.uid.ranges)?;
            let gid = id_ranges("gidMappings", gid_rows, host, &host.ids.gid.ranges)?;
            // As IdMapPlan::explicit: root writes any map; a user hands it to
            // newgidmap (then setgroups is allowed) unless it maps only the
            // user's own gid, which the kernel lets the user write, denying
            // setgroups.
            let own_only = gid.len() == 1 && gid[0].outside == host.gid && gid[0].count == 1;
            let setgroups = host.uid == 0 || !own_only;
            let inside = IdsInside::Mapped { uid: uid.clone(), gid: gid.clone(), setgroups };
            Ok((namespaces, IdMaps::Explicit { uid, gid }, inside))
        }
    }
}

/// A config's id map, checked: rows the kernel takes (at most 340, none
/// empty or past 2^32, none overlapping another inside or outside), and,
/// for a caller that is not root, only ids newuidmap and newgidmap grant
/// it (its own and its subordinate ranges: zookeeper's own map for it).
fn id_ranges(
    name: &str,
    rows: &[oci::LinuxIdMapping],
    host: &Host,
    grantable: &[IdRange],
) -> Result<Vec<IdRange>, BundleError> {
    const MAX_ROWS: usize = 340;
    if rows.len() > MAX_ROWS {
        return Err(refuse(
            format!("linux.{name}"),
            format!("{} rows, more than the kernel's {MAX_ROWS}", rows.len()),
        ));
    }
    let mut ranges: Vec<IdRange> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let field = format!("linux.{name}[{i}]");
        let range = IdRange { inside: row.container_id(), outside: row.host_id(), count: row.size() };
        let end = |start: u32| u64::from(start) + u64::from(range.count);
        if range.count == 0 {
            return Err(refuse(field, "size 0"));
        }
        if end(range.inside) > 1 << 32 || end(range.outside) > 1 << 32 {
            return Err(refuse(field, "runs past the last id (4294967295)"));
        }
        let overlaps = |a: u32, b: u32, other: &IdRange| {
            let (a, b) = (u64::from(a), u64::from(b));
            a < b + u64::from(other.count) && b < a + u64::from(range.count)
        };
        if let Some(j) = ranges.iter().position(|r| overlaps(range.inside, r.inside, r)) {
            return Err(refuse(field, format!("its container ids overlap row {j}'s")));
        }
        if let Some(j) = ranges.iter().position(|r| overlaps(range.outside, r.outside, r)) {
            return Err(refuse(field, format!("its host ids overlap row {j}'s")));
        }
        if host.uid != 0 && !within(&range, grantable) {
            return Err(refuse(
                field,
                format!(
                    "{}->{}x{} is not yours to map: newuidmap and newgidmap grant your own id and your subordinate ranges ({}; see 'Id maps' in the README)",
                    range.inside,
                    range.outside,
                    range.count,
                    map_text(grantable)
                ),
            ));
        }
        ranges.push(range);
    }
    Ok(ranges)
}

/// Whether `range` maps ids as one row of `map` does.
fn within(range: &IdRange, map: &[IdRange]) -> bool {
    let (inside, outside, count) =
        (u64::from(range.inside), u64::from(range.outside), u64::from(range.count));
    map.iter().any(|r| {
        let (r_inside, r_outside, r_count) = (u64::from(r.inside), u64::from(r.outside), u64::from(r.count));
        r_inside <= inside
            && inside + count <= r_inside + r_count
            && outside == r_outside + (inside - r_inside)
    })
}

fn namespace_name(typ: oci::LinuxNamespaceType) -> &'static str {
    use oci::LinuxNamespaceType as T;
    match typ {
        T::Mount => "mount",
        T::Cgroup => "cgroup",
        T::Uts => "uts",
        T::Ipc => "ipc",
        T::User => "user",
        T::Pid => "pid",
        T::Network => "network",
        T::Time => "time",
    }
}

/// A map as messages show it: `container->host x count` rows.
fn map_text(map: &[IdRange]) -> String {
    map.iter().map(|r| format!("{}->{}x{}", r.inside, r.outside, r.count)).collect::<Vec<_>>().join(" ")
}

fn check_paths(field: &str, paths: &[String]) -> Result<Vec<String>, BundleError> {
    paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let field = format!("{field}[{i}]");
            check_no_nul(&field, path)?;
            clean_absolute(Path::new(path))
                .filter(|p| p != "/")
                .ok_or_else(|| refuse(field, format!("{} is not an absolute path without '..'", shown(path))))
        })
        .collect()
}

/// `linux.devices`: beyond the profile's six (its /dev has them, bound
/// from the host), each made as runc makes it where the kernel lets the
/// container do so, and bound from the host where it does not:
/// - a FIFO: mknod, anywhere;
/// - a device node where container root is host root (no user namespace):
///   mknod, with the config's mode, uid and gid;
/// - a device node in a user namespace, where no one may mknod one: the
///   host's node of that type and number, bound read-only (as `--device`),
///   so with the host node's mode and owner; none on the host: refused.
///
/// Returns the type and numbers of the device nodes listed, which device
/// cgroup rules may allow.
fn convert_devices(
    devices: &[oci::LinuxDevice],
    host: &Host,
    ids: &IdsInside,
    spec: &mut ContainerSpec,
) -> Result<Vec<(NodeKind, u32, u32)>, BundleError> {
    let mut listed = Vec::new();
    for (i, device) in devices.iter().enumerate() {
        let field = format!("linux.devices[{i}]");
        let path = device.path().to_string_lossy();
        check_no_nul(&format!("{field}.path"), &path)?;
        let Some(target) = clean_absolute(device.path()).filter(|p| p != "/") else {
            return Err(refuse(
                format!("{field}.path"),
                format!("{} is not an absolute path without '..'", shown(&path)),
            ));
        };
        let kind = match device.typ() {
            oci::LinuxDeviceType::C | oci::LinuxDeviceType::U => NodeKind::Char,
            oci::LinuxDeviceType::B => NodeKind::Block,
            oci::LinuxDeviceType::P => NodeKind::Fifo,
            oci::LinuxDeviceType::A => {
                return Err(refuse(
                    format!("{field}.type"),
                    "\"a\" is a device cgroup rule's type, not a node's",
                ));
            }
        };
        let number = |n: i64, what: &str| {
            u32::try_from(n)
                .map_err(|_| refuse(format!("{field}.{what}"), format!("{n} is not a device number")))
        };
        let (major, minor) = (number(device.major(), "major")?, number(device.minor(), "minor")?);
        if let Some((_, ma, mi)) = DEFAULT_DEVICES.iter().find(|(p, ..)| *p == target) {
            if kind == NodeKind::Char && (i64::from(major), i64::from(minor)) == (*ma, *mi) {
                continue;
            }
            return Err(refuse(
                field,
                format!("{target}: the profile's /dev has it as c {ma}:{mi}; it cannot be another device"),
            ));
        }
        // runc's defaults; the type bits are mknod's.
        let mode = device.file_mode().unwrap_or(0o666) & 0o7777;
        let (uid, gid) = (device.uid().unwrap_or(0), device.gid().unwrap_or(0));
        let in_user_namespace = spec.namespaces.user != Namespace::Host;
        if kind == NodeKind::Fifo || !in_user_namespace {
            if let IdsInside::Mapped { uid: uids, gid: gids, .. } = ids
                && (!is_mapped(uids, uid) || !is_mapped(gids, gid))
            {
                return Err(refuse(
                    field,
                    format!("{target}: owner {uid}:{gid} is not mapped in the container"),
                ));
            }
            spec.device_nodes.push(DeviceNode { target, kind, major, minor, mode, uid, gid });
        } else {
            let Some(source) = (host.find_device)(kind, major, minor, Path::new(&target)) else {
                let letter = if kind == NodeKind::Char { 'c' } else { 'b' };
                return Err(refuse(
                    field,
                    format!(
                        "{target}: the host has no {letter} {major}:{minor} node under /dev to bind (in a user namespace no one may make one)"
                    ),
                ));
            };
            spec.devices.push(Device { source, target });
        }
        if kind != NodeKind::Fifo {
            listed.push((kind, major, minor));
        }
    }
    Ok(listed)
}

/// The profile's nodes (the default six, the pty master and the ptys),
/// which a device cgroup always allows, after the config's rules (as runc
/// appends its own).
fn profile_device_rules() -> Vec<DeviceRule> {
    let allow = |major: u32, minor: Option<u32>| DeviceRule {
        allow: true,
        kind: 'c',
        major: Some(major),
        minor,
        access: "rwm".into(),
    };
    let mut rules: Vec<DeviceRule> =
        DEFAULT_DEVICES.iter().map(|(_, major, minor)| allow(*major as u32, Some(*minor as u32))).collect();
    rules.push(allow(5, Some(2)));
    rules.push(allow(136, None));
    rules
}

/// `linux.resources.devices`, the device cgroup's rules.
///
/// Where container root is host root (no user namespace) it could open any
/// device node it makes: on a cgroup v1 host the rules go to a devices
/// cgroup, in order, followed by the profile's nodes and mknod (`m`) of
/// the listed ones, which the container's first process makes once in its
/// cgroup. Elsewhere there is no device cgroup (a user namespace cannot
/// make a device node, so the nodes it has are all it gets; cgroup v2's
/// device controller is a BPF program zookeeper does not load yet): a
/// denial holds by that, and an allowance is accepted only for what the
/// container has (the profile's nodes and ptys, the listed devices) or for
/// mknod alone.
fn convert_device_rules(
    rules: &[oci::LinuxDeviceCgroup],
    host: &Host,
    listed: &[(NodeKind, u32, u32)],
    spec: &mut ContainerSpec,
) -> Result<(), BundleError> {
    let mut converted = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        converted.push(device_rule(&format!("linux.resources.devices[{i}]"), rule)?);
    }
    let cgroup = spec.namespaces.user == Namespace::Host && !host.cgroup2;
    if cgroup && !converted.is_empty() {
        converted.extend(profile_device_rules());
        for (kind, major, minor) in listed {
            let kind = if *kind == NodeKind::Char { 'c' } else { 'b' };
            let m = DeviceRule {
                allow: true,
                kind,
                major: Some(*major),
                minor: Some(*minor),
                access: "m".into(),
            };
            converted.push(m);
        }
        if let Err((i, reason)) = check_v1_device_rules(&converted) {
            let field = match i < rules.len() {
                true => format!("linux.resources.devices[{i}]"),
                false => "linux.resources.devices".to_string(),
            };
            return Err(refuse(field, reason));
        }
        spec.resources.devices = converted;
        return Ok(());
    }
    for (i, rule) in converted.iter().enumerate() {
        let profile = profile_device_rules();
        let has = |rule: &DeviceRule| {
            profile.iter().any(|p| (p.kind, p.major, p.minor) == (rule.kind, rule.major, rule.minor))
                || listed.iter().any(|(kind, major, minor)| {
                    let kind = if *kind == NodeKind::Char { 'c' } else { 'b' };
                    (kind, Some(*major), Some(*minor)) == (rule.kind, rule.major, rule.minor)
                })
        };
        if !rule.allow || rule.access == "m" || has(rule) {
            continue;
        }
        let why = match spec.namespaces.user {
            Namespace::Host => {
                "that takes a device cgroup, which zookeeper makes on cgroup v1 only (cgroup v2's is a BPF program, not supported yet)"
            }
            _ => {
                "in a user namespace the container has the profile's nodes and those linux.devices lists, and no one there may make another"
            }
        };
        return Err(refuse(
            format!("linux.resources.devices[{i}]"),
            format!("allowing {}: {why}", rule.line()),
        ));
    }
    Ok(())
}

/// One device cgroup rule, checked: a type of `a`, `c` or `b`, numbers or
/// wildcards (absent or -1), access some of `rwm` (runc refuses none).
fn device_rule(field: &str, rule: &oci::LinuxDeviceCgroup) -> Result<DeviceRule, BundleError> {
    let kind = match rule.typ() {
        None | Some(oci::LinuxDeviceType::A) => 'a',
        Some(oci::LinuxDeviceType::C | oci::LinuxDeviceType::U) => 'c',
        Some(oci::LinuxDeviceType::B) => 'b',
        Some(oci::LinuxDeviceType::P) => {
            return Err(refuse(format!("{field}.type"), "a FIFO is not a device of a device cgroup"));
        }
    };
    let number = |n: Option<i64>, what: &str| match n {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| refuse(format!("{field}.{what}"), format!("{n} is not a device number"))),
    };
    let access = rule.access().clone().unwrap_or_default();
    if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(refuse(
            format!("{field}.access"),
            format!("{} is not some of r, w and m", shown(&access)),
        ));
    }
    let access: String = "rwm".chars().filter(|c| access.contains(*c)).collect();
    Ok(DeviceRule {
        allow: rule.allow(),
        kind,
        major: number(rule.major(), "major")?,
        minor: number(rule.minor(), "minor")?,
        access,
    })
}

/// Whether cgroup v1's devices controller takes `rules`, in order, as the
/// runtime spec means them. Its model is a default (allow or deny) and
/// exceptions: a rule for all devices (`a`) sets the default for r, w and m
/// at once and clears the exceptions; a rule against the default adds an
/// exception; a rule with the default removes an exception only if it is
/// the very same device, so it cannot carve a part out of a broader earlier
/// one. Such a rule, or an `a` rule for less than rwm, is refused
/// (`(index, reason)`).
fn check_v1_device_rules(rules: &[DeviceRule]) -> Result<(), (usize, String)> {
    let mut default_allow = true;
    let mut exceptions: Vec<&DeviceRule> = Vec::new();
    let overlaps = |a: Option<u32>, b: Option<u32>| a.is_none() || b.is_none() || a == b;
    for (i, rule) in rules.iter().enumerate() {
        if rule.kind == 'a' {
            if rule.major.is_some() || rule.minor.is_some() || rule.access != "rwm" {
                return Err((
                    i,
                    format!(
                        "{}: cgroup v1 applies a rule for all devices to all of them, for r, w and m",
                        rule.line()
                    ),
                ));
            }
            default_allow = rule.allow;
            exceptions.clear();
            continue;
        }
        if rule.allow != default_allow {
            exceptions.push(rule);
            continue;
        }
        let partly = exceptions.iter().find(|e| {
            e.kind == rule.kind
                && overlaps(e.major, rule.major)
                && overlaps(e.minor, rule.minor)
                && (e.major, e.minor) != (rule.major, rule.minor)
        });
        if let Some(earlier) = partly {
            let verb = if rule.allow { "allow" } else { "deny" };
            return Err((
                i,
                format!("{}: cgroup v1 cannot {verb} part of what {} did", rule.line(), earlier.line()),
            ));
        }
    }
    Ok(())
}

fn convert_resources(resources: &oci::LinuxResources, spec: &mut ContainerSpec) -> Result<(), BundleError> {
    if let Some(memory) = resources.memory() {
        let field = "linux.resources.memory";
        spec.resources.memory_bytes = match memory.limit() {
            None | Some(0 | -1) => None,
            Some(limit) if limit < 0 => {
                return Err(refuse(format!("{field}.limit"), format!("{limit} is negative")));
            }
            // As -m: below a few pages the kernel cannot even start the command.
            Some(limit) if limit < 1 << 20 => {
                return Err(refuse(format!("{field}.limit"), format!("{limit} is below 1 MiB")));
            }
            Some(limit) => Some(limit as u64),
        };
        // The runtime spec's swap is memory and swap together (docker's
        // --memory-swap): equal to the limit, no swap; -1, unlimited swap.
        // Absent, zookeeper gives a memory-limited container no swap.
        spec.resources.memory_swap_bytes = match (memory.swap(), spec.resources.memory_bytes) {
            // 0 is unset, as runc takes it.
            (None | Some(0), _) => None,
            (Some(swap), _) if swap < -1 => {
                return Err(refuse(format!("{field}.swap"), format!("{swap} is negative")));
            }
            // Unlimited memory: swap is not limited either.
            (Some(-1), None) => None,
            (Some(swap), None) => {
                return Err(refuse(
                    format!("{field}.swap"),
                    format!(
                        "{swap}: a swap limit needs a memory limit (swap counts memory and swap together)"
                    ),
                ));
            }
            (Some(-1), Some(_)) => Some(-1),
            // No swap: zookeeper's default, which needs no swap accounting.
            (Some(swap), Some(limit)) if swap as u64 == limit => None,
            (Some(swap), Some(limit)) if (swap as u64) < limit => {
                return Err(refuse(
                    format!("{field}.swap"),
                    format!("{swap} is below the memory limit {limit}: it counts memory and swap together"),
                ));
            }
            (Some(swap), Some(_)) => Some(swap),
        };
        spec.resources.memory_reservation_bytes = match memory.reservation() {
            None | Some(0 | -1) => None,
            Some(bytes) if bytes < 0 => {
                return Err(refuse(format!("{field}.reservation"), format!("{bytes} is negative")));
            }
            Some(bytes) => Some(bytes as u64),
        };
        spec.resources.memory_swappiness = match memory.swappiness() {
            None => None,
            Some(value) if value > 100 => {
                return Err(refuse(format!("{field}.swappiness"), format!("{value} is above 100")));
            }
            Some(value) => Some(value as u8),
        };
        // kernel, kernelTCP: ignored, as runc 1.1 ignores them: the kernel
        // counts kernel memory in the memory limit and has no separate one
        // any more (v1's kmem limits went in Linux 6.1).
        let refused = [
            ("disableOOMKiller", memory.disable_oom_killer().is_some()),
            ("useHierarchy", memory.use_hierarchy().is_some()),
            ("checkBeforeUpdate", memory.check_before_update().is_some()),
        ];
        if let Some((name, _)) = refused.iter().find(|(_, set)| *set) {
            return Err(refuse(format!("{field}.{name}"), "not supported yet"));
        }
    }
    if let Some(cpu) = resources.cpu() {
        let field = "linux.resources.cpu";
        match cpu.quota() {
            None | Some(0 | -1) => {}
            Some(quota) if quota < 0 => {
                return Err(refuse(format!("{field}.quota"), format!("{quota} is negative")));
            }
            Some(quota) => {
                // cgroup v2's default period, and runc's.
                let period = cpu.period().unwrap_or(100_000);
                if !(1_000..=1_000_000).contains(&period) {
                    return Err(refuse(
                        format!("{field}.period"),
                        format!("{period} is outside 1000..1000000 microseconds"),
                    ));
                }
                if quota < 1_000 {
                    return Err(refuse(
                        format!("{field}.quota"),
                        format!("{quota} is below 1000 microseconds"),
                    ));
                }
                // Percent of one CPU, rounded up: never less CPU than asked.
                let percent = (quota as u64 * 100).div_ceil(period);
                const MAXIMUM: u64 = 100 * 4096;
                if percent > MAXIMUM {
                    return Err(refuse(format!("{field}.quota"), "more than 4096 CPUs".to_string()));
                }
                spec.resources.cpu_percent = Some(percent as u32);
                spec.resources.cpu_quota_period = Some((quota as u64, period));
            }
        }
        // A period without a quota limits nothing: accepted.
        spec.resources.cpu_shares = match cpu.shares() {
            // 0 is unset, as runc takes it.
            None | Some(0) => None,
            // The kernel's range; it would clamp anything else silently.
            Some(shares @ 2..=262_144) => Some(shares),
            Some(shares) => {
                return Err(refuse(format!("{field}.shares"), format!("{shares} is outside 2..262144")));
            }
        };
        for (name, list, slot) in [
            ("cpus", cpu.cpus(), &mut spec.resources.cpuset_cpus),
            ("mems", cpu.mems(), &mut spec.resources.cpuset_mems),
        ] {
            let Some(list) = list.as_deref().filter(|l| !l.is_empty()) else { continue };
            if !cpu_list_ok(list) {
                return Err(refuse(
                    format!("{field}.{name}"),
                    format!("{} is not a list of numbers and ranges (0-3,7)", shown(list)),
                ));
            }
            *slot = Some(list.to_string());
        }
        let refused = [
            ("realtimeRuntime", cpu.realtime_runtime().is_some()),
            ("realtimePeriod", cpu.realtime_period().is_some()),
            ("idle", cpu.idle().is_some()),
            ("burst", cpu.burst().is_some()),
        ];
        if let Some((name, _)) = refused.iter().find(|(_, set)| *set) {
            return Err(refuse(format!("{field}.{name}"), "not supported yet"));
        }
    }
    if let Some(pids) = resources.pids() {
        const PID_MAX_LIMIT: i64 = 4 * 1024 * 1024;
        spec.resources.pids = match pids.limit() {
            // As runc: 0 is unset, -1 is unlimited.
            0 | -1 => None,
            limit @ 1..=PID_MAX_LIMIT => Some(limit as u32),
            limit => {
                return Err(refuse(
                    "linux.resources.pids.limit",
                    format!("{limit} is outside 1..{PID_MAX_LIMIT}"),
                ));
            }
        };
    }
    if let Some(io) = resources.block_io() {
        let field = "linux.resources.blockIO";
        spec.resources.blkio_weight = match io.weight() {
            None | Some(0) => None,
            // blkio.weight's range (runc converts it for v2's io.weight).
            Some(weight @ 10..=1000) => Some(weight),
            Some(weight) => {
                return Err(refuse(format!("{field}.weight"), format!("{weight} is outside 10..1000")));
            }
        };
        let refused = [
            ("leafWeight", io.leaf_weight().is_some()),
            ("weightDevice", io.weight_device().as_ref().is_some_and(|d| !d.is_empty())),
            ("throttleReadBpsDevice", io.throttle_read_bps_device().as_ref().is_some_and(|d| !d.is_empty())),
            (
                "throttleWriteBpsDevice",
                io.throttle_write_bps_device().as_ref().is_some_and(|d| !d.is_empty()),
            ),
            (
                "throttleReadIOPSDevice",
                io.throttle_read_iops_device().as_ref().is_some_and(|d| !d.is_empty()),
            ),
            (
                "throttleWriteIOPSDevice",
                io.throttle_write_iops_device().as_ref().is_some_and(|d| !d.is_empty()),
            ),
        ];
        if let Some((name, _)) = refused.iter().find(|(_, set)| *set) {
            return Err(refuse(format!("{field}.{name}"), "not supported yet"));
        }
    }
    let refused = [
        ("hugepageLimits", resources.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())),
        ("network", resources.network().is_some()),
        ("rdma", resources.rdma().as_ref().is_some_and(|r| !r.is_empty())),
        ("unified", resources.unified().as_ref().is_some_and(|u| !u.is_empty())),
    ];
    if let Some((name, _)) = refused.iter().find(|(_, set)| *set) {
        return Err(refuse(format!("linux.resources.{name}"), "not supported yet"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idmap::{Caller, plan};
    use serde_json::{Value, json};

    const RUNC: &str = include_str!("../tests/data/oci/runc-spec.json");
    const RUNC_ROOTLESS: &str = include_str!("../tests/data/oci/runc-spec-rootless.json");
    const PODMAN: &str = include_str!("../tests/data/oci/podman-create.json");
    const PODMAN_ROOTLESS: &str = include_str!("../tests/data/oci/podman-create-rootless.json");
    const CTR: &str = include_str!("../tests/data/oci/ctr-oci-spec.json");

    fn host(caller: Caller, subids: &str, helpers: bool) -> Host {
        let ids = plan(&caller, subids, subids, |name| helpers.then(|| PathBuf::from("/usr/bin").join(name)));
        Host {
            uid: caller.uid,
            gid: caller.gid,
            ids,
            hostname: "thehost".into(),
            selinux: false,
            cgroup2: false,
            find_device: fake_host_device,
        }
    }

    /// The test host's only device beyond the profile's: /dev/fuse, c 10:229.
    fn fake_host_device(kind: NodeKind, major: u32, minor: u32, _: &Path) -> Option<PathBuf> {
        (kind == NodeKind::Char && (major, minor) == (10, 229)).then(|| "/dev/fuse".into())
    }

    /// Root without a subordinate range: the identity map.
    fn root() -> Host {
        host(Caller { uid: 0, gid: 0, name: Some("root".into()) }, "", false)
    }

    /// A user with a range and the helpers: 0 -> 1000, 1.. -> 100000...
    fn alice() -> Host {
        host(Caller { uid: 1000, gid: 1000, name: Some("alice".into()) }, "alice:100000:65536\n", true)
    }

    /// A user without a range: only root is mapped, setgroups denied.
    fn bob() -> Host {
        host(Caller { uid: 1001, gid: 1001, name: Some("bob".into()) }, "", true)
    }

    fn value(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn convert_value(config: &Value, host: &Host) -> Result<ContainerSpec, BundleError> {
        let bytes = serde_json::to_vec(config).unwrap();
        convert(&parse_config(&bytes)?, Path::new("/bundle"), host)
    }

    /// `runc spec` with a command, which every refusal below starts from.
    fn base() -> Value {
        let mut config = value(RUNC);
        config["process"]["args"] = json!(["/bin/true"]);
        config
    }

    /// Sets `pointer` (a JSON pointer) in `config`, creating objects on the way.
    fn set(config: &mut Value, pointer: &str, new: Value) {
        let mut at = config;
        for key in pointer.trim_start_matches('/').split('/') {
            at = match at {
                Value::Array(items) => {
                    let i = key.parse::<usize>().unwrap();
                    if i == items.len() {
                        items.push(Value::Null);
                    }
                    &mut items[i]
                }
                other => {
                    if !other.is_object() {
                        *other = json!({});
                    }
                    other.as_object_mut().unwrap().entry(key).or_insert(Value::Null)
                }
            };
        }
        *at = new;
    }

    fn remove(config: &mut Value, pointer: &str) {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = config.pointer_mut(parent).unwrap();
        match parent {
            Value::Object(map) => {
                map.remove(key);
            }
            Value::Array(items) => {
                items.remove(key.parse::<usize>().unwrap());
            }
            _ => panic!("{pointer}"),
        }
    }

    fn caps(names: &[caps::Capability]) -> CapSet {
        names.iter().fold(CapSet(0), |set, cap| set.with(*cap))
    }

    #[track_caller]
    fn refused(config: &Value, host: &Host, field: &str) -> String {
        let err = convert_value(config, host).expect_err(&format!("{field} should be refused"));
        let text = err.to_string();
        eprintln!("MSG {text}");
        assert_eq!(err.field(), Some(field), "{text}");
        assert!(text.starts_with(&format!("config.json: {field}: ")), "{text}");
        assert!(!text.contains('\n'), "{text}");
        assert_eq!(err.exit_code(), 125);
        text
    }

    #[test]
    fn runc_spec_converts() {
        use caps::Capability::*;
        for host in [root(), alice(), bob()] {
            let spec = convert_value(&base(), &host).unwrap();
            assert_eq!(spec.process.args, ["/bin/true"]);
            assert_eq!(
                spec.process.env,
                ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]
            );
            assert!(spec.process.terminal);
            assert_eq!(spec.process.cwd, "/");
            assert_eq!(spec.process.user, User::default());
            let three = caps(&[CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE]);
            assert_eq!(
                spec.process.capabilities,
                // Ambient without inheritable: nothing the kernel can raise.
                Capabilities {
                    bounding: three,
                    effective: three,
                    permitted: three,
                    inheritable: CapSet(0),
                    ambient: CapSet(0)
                }
            );
            assert!(spec.process.no_new_privileges);
            assert_eq!(
                spec.process.rlimits,
                [Rlimit { resource: libc::RLIMIT_NOFILE, soft: 1024, hard: 1024 }]
            );
            assert_eq!(spec.process.oom_score_adj, None);
            assert_eq!(spec.root, Some(PathBuf::from("/bundle/rootfs")));
            assert!(spec.root_readonly);
            assert_eq!(spec.hostname, "runc");
            assert!(spec.mounts_proc());
            // Every mount of runc's is one zookeeper's profile makes, but
            // for /dev/mqueue and the cgroup file system.
            assert_eq!(own(&spec), [runc_mqueue(), runc_cgroup()]);
            // All in the config's order (its /dev/pts and /dev/shm are part
            // of zookeeper's /dev), and /etc left alone.
            let kinds: Vec<&MountKind> = spec.mounts.iter().map(|m| &m.kind).collect();
            let standard =
                [MountKind::Proc, MountKind::Dev, MountKind::Mqueue, MountKind::Sysfs, MountKind::Cgroup];
            assert_eq!(kinds, standard.iter().collect::<Vec<_>>());
            assert!(!spec.etc_files);
            assert_eq!(spec.masked_paths.len(), 10);
            assert!(spec.masked_paths.contains(&"/proc/kcore".to_string()));
            assert_eq!(spec.readonly_paths, READONLY);
            assert_eq!(spec.seccomp, Seccomp::Unconfined);
            // Its device rules (deny all): a device cgroup on this cgroup v1
            // test host for root, whose container root is host root.
            let mut resources = crate::spec::Resources::default();
            if host.uid == 0 {
                resources.devices = [deny_all()].into_iter().chain(profile_device_rules()).collect();
            }
            assert_eq!(spec.resources, resources);
            assert_eq!(spec.network, Network::LoopbackOnly);
            // runc's lists no user or cgroup namespace: root goes without a
            // user namespace, as under runc; a user cannot, and gets one.
            let user = match host.uid {
                0 => Namespace::Host,
                _ => Namespace::New,
            };
            let new = Namespace::New;
            assert_eq!(
                spec.namespaces,
                Namespaces {
                    user,
                    network: new.clone(),
                    ipc: new.clone(),
                    uts: new,
                    cgroup: Namespace::Host,
                    time: Namespace::Host,
                    pid: Namespace::New
                }
            );
            assert_eq!(spec.id_maps, IdMaps::Auto);
            assert_eq!(spec.sysctl, []);
        }
    }

    /// The spec's mounts but the standard ones (/proc, /sys, /dev).
    fn own(spec: &ContainerSpec) -> Vec<Mount> {
        spec.mounts.iter().filter(|m| !m.is_standard()).cloned().collect()
    }

    /// runc's /dev/mqueue, converted.
    fn runc_mqueue() -> Mount {
        Mount {
            kind: MountKind::Mqueue,
            target: "/dev/mqueue".into(),
            readonly: false,
            nosuid: true,
            nodev: true,
            noexec: true,
            data: None,
            if_present: false,
            options: MountOptions::default(),
        }
    }

    /// runc's /sys/fs/cgroup: read-only, where sysfs has it, relatime.
    fn runc_cgroup() -> Mount {
        Mount {
            kind: MountKind::Cgroup,
            target: "/sys/fs/cgroup".into(),
            readonly: true,
            if_present: true,
            options: MountOptions { atime: Some(Atime::Relative), ..MountOptions::default() },
            ..runc_mqueue()
        }
    }

    const READONLY: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    #[test]
    fn runc_spec_rootless_maps_are_explicit() {
        let r = |inside, outside, count| IdRange { inside, outside, count };
        let mut config = value(RUNC_ROOTLESS);
        config["process"]["args"] = json!(["sh"]);
        // Generated as root: container root is host uid 0; root writes any map.
        let spec = convert_value(&config, &root()).unwrap();
        assert!(spec.mounts_proc());
        // It shares the host's network namespace, where the kernel refuses
        // a sysfs: its bind of the host's /sys is made as it says.
        let bound_sys = Mount {
            kind: MountKind::Bind { source: "/sys".into(), recursive: true },
            target: "/sys".into(),
            readonly: true,
            nosuid: true,
            nodev: true,
            noexec: true,
            data: None,
            if_present: false,
            options: MountOptions::default(),
        };
        assert_eq!(own(&spec), [runc_mqueue(), bound_sys, runc_cgroup()]);
        // With a network namespace of its own, the container's own sysfs.
        let mut with_network = config.clone();
        with_network["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "network"}));
        let spec_with_network = convert_value(&with_network, &root()).unwrap();
        assert_eq!(own(&spec_with_network), [runc_mqueue(), runc_cgroup()]);
        assert!(spec_with_network.mounts.contains(&Mount::standard(MountKind::Sysfs)));
        assert_eq!(spec.id_maps, IdMaps::Explicit { uid: vec![r(0, 0, 1)], gid: vec![r(0, 0, 1)] });
        assert_eq!(spec.namespaces.user, Namespace::New);
        assert_eq!(
            spec.namespaces.network,
            Namespace::Host,
            "runc's rootless config shares the host's network"
        );
        // A user's: host uid 0 is not theirs.
        let text = refused(&config, &alice(), "linux.uidMappings[0]");
        assert!(text.contains("0->0x1 is not yours to map"), "{text}");
        assert!(text.contains("0->1000x1 1->100000x65536"), "{text}");
        // As `runc spec --rootless` writes it for alice: her root-only row.
        for (pointer, id) in [("/linux/uidMappings/0/hostID", 1000), ("/linux/gidMappings/0/hostID", 1000)] {
            set(&mut config, pointer, json!(id));
        }
        let spec = convert_value(&config, &alice()).unwrap();
        assert_eq!(spec.id_maps, IdMaps::Explicit { uid: vec![r(0, 1000, 1)], gid: vec![r(0, 1000, 1)] });
        convert_value(&config, &host(Caller { uid: 1000, gid: 1000, name: None }, "", false)).unwrap();
        // Her own gid alone: written by her, so no setgroups.
        set(&mut config, "/process/user/additionalGids", json!([0]));
        refused(&config, &alice(), "process.user.additionalGids");
        remove(&mut config, "/process/user/additionalGids");
        // Only mapped ids may run the command.
        set(&mut config, "/process/user/uid", json!(1));
        refused(&config, &alice(), "process.user.uid");
        set(&mut config, "/process/user/uid", json!(0));
        // Her whole map is hers too; a range that is not hers is not.
        for map in ["uidMappings", "gidMappings"] {
            set(
                &mut config,
                &format!("/linux/{map}/1"),
                json!({"containerID": 1, "hostID": 100000, "size": 65536}),
            );
        }
        let spec = convert_value(&config, &alice()).unwrap();
        assert_eq!(
            spec.id_maps,
            IdMaps::Explicit {
                uid: vec![r(0, 1000, 1), r(1, 100000, 65536)],
                gid: vec![r(0, 1000, 1), r(1, 100000, 65536)]
            }
        );
        set(&mut config, "/process/user", json!({"uid": 65536, "gid": 5, "additionalGids": [7]}));
        convert_value(&config, &alice()).unwrap();
        set(&mut config, "/process/user", json!({"uid": 0, "gid": 0}));
        let bad: [(Value, &str); 6] = [
            (json!({"containerID": 1, "hostID": 200000, "size": 10}), "is not yours to map"),
            (json!({"containerID": 1, "hostID": 100000, "size": 65537}), "is not yours to map"),
            (json!({"containerID": 1, "hostID": 100000, "size": 0}), "size 0"),
            (json!({"containerID": 0, "hostID": 100000, "size": 5}), "overlap row 0"),
            (json!({"containerID": 4294967295u32, "hostID": 100000, "size": 2}), "past the last id"),
            (json!({"containerID": 1, "hostID": 1000, "size": 1}), "host ids overlap row 0"),
        ];
        for (row, needle) in bad {
            let mut config = config.clone();
            set(&mut config, "/linux/uidMappings/1", row.clone());
            let host = if needle.contains("yours") { alice() } else { root() };
            let text = refused(&config, &host, "linux.uidMappings[1]");
            assert!(text.contains(needle), "{row}: {text}");
        }
        set(&mut config, "/linux/uidMappings/1", json!({"containerID": 5, "hostID": 100004, "size": 10}));
        convert_value(&config, &alice()).unwrap();
        set(&mut config, "/linux/gidMappings/0/hostID", json!(0));
        refused(&config, &alice(), "linux.gidMappings[0]");
        // One map without the other.
        let mut only_gid = config.clone();
        remove(&mut config, "/linux/gidMappings");
        refused(&config, &root(), "linux.gidMappings");
        remove(&mut only_gid, "/linux/uidMappings");
        refused(&only_gid, &root(), "linux.uidMappings");
        // More rows than the kernel takes.
        let rows: Vec<Value> = (0..341).map(|i| json!({"containerID": i, "hostID": i, "size": 1})).collect();
        set(&mut only_gid, "/linux/uidMappings", json!(rows));
        let text = refused(&only_gid, &root(), "linux.uidMappings");
        assert!(text.contains("341 rows, more than the kernel's 340"), "{text}");
    }

    #[test]
    fn podman_config_converts() {
        use caps::Capability::*;
        let config = value(PODMAN);
        let spec = convert_value(&config, &root()).unwrap();
        assert_eq!(
            spec.resources.cgroup_path.as_deref(),
            Some("/libpod_parent/libpod-2ed21bff588c9077f29dc9454e0fe0cc7d648629bc9467dc517a617a00ea1029")
        );
        // podman joins the network namespace it made (netavark's), and runs
        // its root containers without a user namespace.
        assert_eq!(
            spec.namespaces,
            Namespaces {
                user: Namespace::Host,
                network: Namespace::Join("/run/netns/netns-9684cdbe-37bc-a59c-4ee5-019d541edc41".into()),
                ipc: Namespace::New,
                uts: Namespace::New,
                cgroup: Namespace::Host,
                time: Namespace::Host,
                pid: Namespace::New,
            }
        );
        assert_eq!(spec.sysctl, [("net.ipv4.ping_group_range".to_string(), "0 0".to_string())]);
        let Seccomp::Program(program) = &spec.seccomp else { panic!("{:?}", spec.seccomp) };
        assert!(program.len() > 1000 * 8, "podman's profile, compiled: {} bytes", program.len());
        assert_eq!(spec.process.args, ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(spec.process.user.umask, Some(0o022));
        assert_eq!(spec.hostname, "2ed21bff588c");
        let eleven = caps(&[
            CAP_CHOWN,
            CAP_DAC_OVERRIDE,
            CAP_FOWNER,
            CAP_FSETID,
            CAP_KILL,
            CAP_NET_BIND_SERVICE,
            CAP_SETFCAP,
            CAP_SETGID,
            CAP_SETPCAP,
            CAP_SETUID,
            CAP_SYS_CHROOT,
        ]);
        assert_eq!(spec.process.capabilities.bounding, eleven);
        assert_eq!(spec.process.capabilities.inheritable, CapSet(0));
        assert!(!spec.process.no_new_privileges, "podman's config does not ask for it");
        assert_eq!(
            spec.process.rlimits,
            [
                Rlimit { resource: libc::RLIMIT_NOFILE, soft: 1048576, hard: 1048576 },
                Rlimit { resource: libc::RLIMIT_NPROC, soft: 32768, hard: 32768 }
            ]
        );
        assert!(!spec.root_readonly);
        assert!(spec.root.as_ref().unwrap().starts_with("/tmp/zkb-podman/root/vfs/dir/"));
        // Its binds: the files it made for the container, and its /dev/shm.
        let own_mounts = own(&spec);
        let targets: Vec<&str> = own_mounts.iter().map(|m| m.target.as_str()).collect();
        assert_eq!(
            targets,
            [
                "/dev/mqueue",
                "/etc/resolv.conf",
                "/etc/hosts",
                "/dev/shm",
                "/run/.containerenv",
                "/etc/hostname",
                "/sys/fs/cgroup"
            ]
        );
        let shm = &own_mounts[3];
        assert!(
            matches!(&shm.kind, MountKind::Bind { recursive: false, source } if source.ends_with("userdata/shm"))
        );
        assert!(shm.nosuid && shm.nodev && shm.noexec && !shm.readonly);
        assert_eq!(spec.resources.pids, Some(2048));
        // podman's own lists.
        assert!(spec.masked_paths.contains(&"/sys/fs/selinux".to_string()));
        assert!(spec.readonly_paths.contains(&"/proc/sysrq-trigger".to_string()));
    }

    #[test]
    fn podman_rootless_config_converts() {
        let config = value(PODMAN_ROOTLESS);
        // Rootless podman runs the runtime in its own user namespace, where
        // it is root, and lists none: there it would go without one. Run by
        // a user, zookeeper makes one, with its map.
        let spec = convert_value(&config, &alice()).unwrap();
        assert_eq!((&spec.namespaces.user, &spec.id_maps), (&Namespace::New, &IdMaps::Auto));
        assert!(
            matches!(&spec.namespaces.network, Namespace::Join(path) if path.starts_with("/tmp/zkb-podman-u/xdg/netns/"))
        );
        assert_eq!(
            spec.process.rlimits[0],
            Rlimit { resource: libc::RLIMIT_NOFILE, soft: 20000, hard: 20000 }
        );
        assert!(spec.resources.is_empty());
    }

    #[test]
    fn ctr_default_spec_converts_once_it_has_a_command() {
        let mut config = value(CTR);
        refused(&config, &root(), "process.args");
        config["process"]["args"] = json!(["sh"]);
        let spec = convert_value(&config, &root()).unwrap();
        assert_eq!(spec.resources.cgroup_path.as_deref(), Some("/default"));
        assert_eq!(spec.hostname, "thehost", "no hostname: the new UTS namespace keeps the host's");
        assert!(!spec.process.terminal);
        assert!(!spec.root_readonly);
        assert_eq!(own(&spec)[0], runc_mqueue());
        let run = &own(&spec)[1];
        assert_eq!((run.target.as_str(), &run.kind), ("/run", &MountKind::Tmpfs));
        assert_eq!(run.data.as_deref(), Some("mode=755,size=65536k"));
        assert!(run.nosuid && !run.nodev && !run.noexec && !run.readonly);
        // Its /run tmpfs asks for strictatime.
        assert_eq!(run.options, MountOptions { atime: Some(Atime::Strict), ..MountOptions::default() });
        assert!(spec.process.capabilities.bounding.contains(caps::Capability::CAP_MKNOD));
    }

    #[test]
    fn a_pid_namespace_is_joined_by_path() {
        let mut config = base();
        set(&mut config, "/linux/namespaces/0/path", json!("/proc/4242/ns/pid"));
        let spec = convert_value(&config, &root()).unwrap();
        assert_eq!(spec.namespaces.pid, Namespace::Join("/proc/4242/ns/pid".into()));
        assert_eq!(convert_value(&base(), &root()).unwrap().namespaces.pid, Namespace::New);
    }

    #[test]
    fn time_namespaces_and_their_offsets() {
        use crate::spec::{Clock, TimeOffset};
        let mut config = base();
        set(&mut config, "/linux/namespaces/5", json!({"type": "time"}));
        set(
            &mut config,
            "/linux/timeOffsets",
            json!({"monotonic": {"secs": -5}, "boottime": {"secs": 3, "nanosecs": 9}}),
        );
        let spec = convert_value(&config, &alice()).unwrap();
        assert_eq!(spec.namespaces.time, Namespace::New);
        assert_eq!(
            spec.time_offsets,
            [
                TimeOffset { clock: Clock::Boottime, secs: 3, nanosecs: 9 },
                TimeOffset { clock: Clock::Monotonic, secs: -5, nanosecs: 0 }
            ]
        );
        set(&mut config, "/linux/timeOffsets", json!({"realtime": {"secs": 1}}));
        refused(&config, &alice(), "linux.timeOffsets.realtime");
        set(&mut config, "/linux/timeOffsets", json!({"boottime": {"nanosecs": 1000000000u64}}));
        refused(&config, &alice(), "linux.timeOffsets.boottime.nanosecs");
        // Joined, offsets cannot be given (the kernel takes them only for a
        // namespace nothing has entered).
        set(&mut config, "/linux/namespaces/5", json!({"type": "time", "path": "/proc/1/ns/time"}));
        set(&mut config, "/linux/timeOffsets", json!({"boottime": {"secs": 1}}));
        refused(&config, &alice(), "linux.timeOffsets");
        // The profile keeps the host's clocks.
        assert_eq!(ContainerSpec::new(Vec::new(), Vec::new()).namespaces.time, Namespace::Host);
    }

    #[test]
    fn mounts_binds_and_tmpfs() {
        let mut config = base();
        let mounts = config["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/data/ro", "type": "bind", "source": "data", "options": ["rbind", "ro", "nosuid", "nodev", "noexec", "rprivate", "rro", "rdev", "rnosymfollow", "rnoatime", "ratime", "size=1k", "mode=755"]}));
        mounts
            .push(json!({"destination": "/data/rw//", "source": "/srv/x", "options": ["bind", "ro", "rw"]}));
        mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1777", "noexec", "defaults", "strictatime", "nodiratime", "unbindable", "nr_inodes=10k", "huge=never", "uid=0"]}));
        mounts
            .push(json!({"destination": "/weird", "type": "tmpfs", "options": ["bind", "noatime", "relatime", "diratime", "rshared", "slave"], "source": "./rel"}));
        let spec = convert_value(&config, &alice()).unwrap();
        let propagation = |kind, recursive| Some(Propagation { kind, recursive });
        let expected = [
            runc_mqueue(),
            runc_cgroup(),
            Mount {
                kind: MountKind::Bind { source: "/bundle/data".into(), recursive: true },
                target: "/data/ro".into(),
                readonly: true,
                nosuid: true,
                nodev: true,
                noexec: true,
                data: None,
                if_present: false,
                // A bind's data (size=, mode=) goes, as the kernel drops it
                // under runc; the recursive options are kept, the last
                // atime one winning.
                options: MountOptions {
                    propagation: propagation(PropagationKind::Private, true),
                    recursive: RecursiveFlags {
                        readonly: Some(true),
                        nodev: Some(false),
                        nosymfollow: Some(true),
                        atime: Some(Atime::Relative),
                        ..RecursiveFlags::default()
                    },
                    ..MountOptions::default()
                },
            },
            Mount {
                kind: MountKind::Bind { source: "/srv/x".into(), recursive: false },
                target: "/data/rw".into(),
                readonly: false,
                nosuid: false,
                nodev: false,
                noexec: false,
                data: None,
                if_present: false,
                options: MountOptions::default(),
            },
            Mount {
                kind: MountKind::Tmpfs,
                target: "/scratch".into(),
                readonly: false,
                nosuid: false,
                nodev: false,
                noexec: true,
                data: Some("size=1m,mode=1777,nr_inodes=10k,huge=never,uid=0".into()),
                if_present: false,
                options: MountOptions {
                    propagation: propagation(PropagationKind::Unbindable, false),
                    atime: Some(Atime::Strict),
                    nodiratime: Some(true),
                    ..MountOptions::default()
                },
            },
            // A bind option makes a bind mount whatever the type (as runc).
            Mount {
                kind: MountKind::Bind { source: "/bundle/./rel".into(), recursive: false },
                target: "/weird".into(),
                readonly: false,
                nosuid: false,
                nodev: false,
                noexec: false,
                data: None,
                if_present: false,
                // The last of each kind wins.
                options: MountOptions {
                    propagation: propagation(PropagationKind::Slave, false),
                    atime: Some(Atime::Relative),
                    nodiratime: Some(false),
                    ..MountOptions::default()
                },
            },
        ];
        assert_eq!(own(&spec), expected);
        // Without /proc in the list, no /proc.
        let mut config = base();
        remove(&mut config, "/mounts/0");
        assert!(!convert_value(&config, &root()).unwrap().mounts_proc());
    }

    fn deny_all() -> DeviceRule {
        DeviceRule { allow: false, kind: 'a', major: None, minor: None, access: "rwm".into() }
    }

    fn rule(allow: bool, kind: char, major: u32, minor: Option<u32>, access: &str) -> DeviceRule {
        DeviceRule { allow, kind, major: Some(major), minor, access: access.into() }
    }

    #[test]
    fn devices_made_bound_or_refused() {
        let mut config = base();
        set(
            &mut config,
            "/linux/devices",
            json!([
                {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
                {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o20660, "uid": 0, "gid": 5},
                {"path": "/run/fifo", "type": "p", "fileMode": 0o600},
                {"path": "/dev/xvda", "type": "b", "major": 202, "minor": 0}
            ]),
        );
        set(
            &mut config,
            "/linux/resources/devices",
            json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"},
                {"allow": true, "type": "c", "access": "m"}
            ]),
        );
        // Root without a user namespace: mknod with the config's mode and
        // owner (the type bits dropped), and, on cgroup v1, a device cgroup:
        // the config's rules, the profile's nodes, mknod of the listed ones.
        let spec = convert_value(&config, &root()).unwrap();
        let node = |target: &str, kind, major, minor, mode, gid| DeviceNode {
            target: target.into(),
            kind,
            major,
            minor,
            mode,
            uid: 0,
            gid,
        };
        assert_eq!(
            spec.device_nodes,
            [
                node("/dev/fuse", NodeKind::Char, 10, 229, 0o660, 5),
                node("/run/fifo", NodeKind::Fifo, 0, 0, 0o600, 0),
                node("/dev/xvda", NodeKind::Block, 202, 0, 0o666, 0)
            ]
        );
        assert_eq!(spec.devices, []);
        let mut rules = vec![deny_all(), rule(true, 'c', 10, Some(229), "rw")];
        rules.push(DeviceRule { allow: true, kind: 'c', major: None, minor: None, access: "m".into() });
        rules.extend(profile_device_rules());
        rules.push(rule(true, 'c', 10, Some(229), "m"));
        rules.push(rule(true, 'b', 202, Some(0), "m"));
        assert_eq!(spec.resources.devices, rules);
        assert_eq!(spec.resources.devices[0].line(), "a *:* rwm");
        assert_eq!(spec.resources.devices[1].line(), "c 10:229 rw");
        // On cgroup v2: no device cgroup; what the container has may be allowed.
        let mut v2 = root();
        v2.cgroup2 = true;
        let spec = convert_value(&config, &v2).unwrap();
        assert_eq!((spec.device_nodes.len(), spec.resources.devices.len()), (3, 0));
        let mut more = config.clone();
        set(
            &mut more,
            "/linux/resources/devices/3",
            json!({"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}),
        );
        let text = refused(&more, &v2, "linux.resources.devices[3]");
        assert!(text.contains("allowing c 10:200 rwm: that takes a device cgroup"), "{text}");
        convert_value(&more, &root()).unwrap();
        // In a user namespace: the host's node bound (mode and owner the
        // host's), a FIFO made; a device the host lacks refused.
        let text = refused(&config, &alice(), "linux.devices[3]");
        assert!(text.contains("/dev/xvda: the host has no b 202:0 node under /dev to bind"), "{text}");
        remove(&mut config, "/linux/devices/3");
        remove(&mut more, "/linux/devices/3");
        let spec = convert_value(&config, &alice()).unwrap();
        assert_eq!(spec.devices, [Device { source: "/dev/fuse".into(), target: "/dev/fuse".into() }]);
        assert_eq!(spec.device_nodes, [node("/run/fifo", NodeKind::Fifo, 0, 0, 0o600, 0)]);
        assert!(spec.resources.devices.is_empty());
        let text = refused(&more, &alice(), "linux.resources.devices[3]");
        assert!(text.contains("allowing c 10:200 rwm: in a user namespace"), "{text}");
        // A FIFO's owner must exist in the container.
        set(&mut config, "/linux/devices/2/uid", json!(70000));
        refused(&config, &alice(), "linux.devices[2]");
        // What cgroup v1 cannot say.
        let carve = [deny_all(), rule(true, 'c', 10, None, "rwm"), rule(false, 'c', 10, Some(200), "rwm")];
        let (i, reason) = check_v1_device_rules(&carve).unwrap_err();
        assert_eq!(
            (i, reason.as_str()),
            (2, "c 10:200 rwm: cgroup v1 cannot deny part of what c 10:* rwm did")
        );
        let exact = [deny_all(), rule(true, 'c', 10, Some(200), "rwm"), rule(false, 'c', 10, Some(200), "w")];
        assert_eq!(check_v1_device_rules(&exact), Ok(()));
        let open = [rule(false, 'b', 8, None, "rwm"), rule(true, 'b', 8, Some(1), "r")];
        assert!(check_v1_device_rules(&open).is_err());
    }

    #[test]
    fn domainname_and_cgroups_path() {
        let mut config = base();
        set(&mut config, "/domainname", json!("example.org"));
        set(&mut config, "/linux/cgroupsPath", json!("zk//./test/"));
        let spec = convert_value(&config, &root()).unwrap();
        assert_eq!(spec.domainname, "example.org");
        assert_eq!(spec.resources.cgroup_path.as_deref(), Some("zk/test"));
        assert!(!spec.resources.is_empty(), "a cgroupsPath makes a cgroup");
        set(&mut config, "/linux/cgroupsPath", json!("/abs/x"));
        assert_eq!(convert_value(&config, &root()).unwrap().resources.cgroup_path.as_deref(), Some("/abs/x"));
        // A rootless container gets a cgroup on cgroup v2 only.
        let text = refused(&config, &alice(), "linux.cgroupsPath");
        assert!(text.contains("a rootless container gets no cgroup on this cgroup v1 host"), "{text}");
        let mut v2 = alice();
        v2.cgroup2 = true;
        convert_value(&config, &v2).unwrap();
        // The host's uts namespace: its domain name is the host's to set.
        remove(&mut config, "/linux/namespaces/3");
        let text = refused(&config, &root(), "domainname");
        assert!(text.contains("needs the container's own uts namespace"), "{text}");
    }

    #[test]
    fn mqueue_and_the_cgroup_file_system() {
        // runc's cgroup mount says ro; without it, read-only all the same.
        let mut config = base();
        set(&mut config, "/mounts/6/options", json!(["nosuid"]));
        set(
            &mut config,
            "/mounts/7",
            json!({"destination": "/cgroup", "type": "cgroup2", "source": "cgroup"}),
        );
        let spec = convert_value(&config, &root()).unwrap();
        let options = MountOptions::default();
        assert_eq!(own(&spec)[1], Mount { nodev: false, noexec: false, options, ..runc_cgroup() });
        // Elsewhere than /sys/fs/cgroup, made like any mount point.
        let elsewhere = &own(&spec)[2];
        assert_eq!(
            (elsewhere.kind.clone(), elsewhere.readonly, elsewhere.if_present),
            (MountKind::Cgroup, true, false)
        );
        // rw: cgroup v2's own hierarchy may be writable; v1's hierarchies
        // are the host's, bound read-only.
        set(&mut config, "/mounts/6/options", json!(["rw"]));
        let mut v2 = root();
        v2.cgroup2 = true;
        assert!(!own(&convert_value(&config, &v2).unwrap())[1].readonly);
        let text = refused(&config, &root(), "mounts[6]");
        assert!(text.contains("/sys/fs/cgroup: rw: this host runs cgroup v1"), "{text}");
        // mqueue without an ipc namespace of the container's own: refused in
        // a user namespace (the kernel would), the host's for root without.
        let mut config = base();
        remove(&mut config, "/linux/namespaces/2");
        assert_eq!(own(&convert_value(&config, &root()).unwrap())[0], runc_mqueue());
        let text = refused(&config, &alice(), "mounts[4]");
        assert!(
            text.contains("/dev/mqueue: an mqueue mount needs the container's own ipc namespace"),
            "{text}"
        );
        // Joined: the kernel decides.
        set(&mut config, "/linux/namespaces/4", json!({"type": "ipc", "path": "/proc/1/ns/ipc"}));
        convert_value(&config, &alice()).unwrap();
    }

    #[test]
    fn resources_map_onto_the_cgroup_limits() {
        let limits = |resources: Value| {
            let mut config = base();
            config["linux"]["resources"] = resources;
            convert_value(&config, &alice()).map(|spec| spec.resources)
        };
        let r = limits(json!({"memory": {"limit": 268435456, "swap": 268435456}, "cpu": {"quota": 50000, "period": 100000}, "pids": {"limit": 64}})).unwrap();
        assert_eq!((r.memory_bytes, r.cpu_percent, r.pids), (Some(256 << 20), Some(50), Some(64)));
        // Swappiness is kept; kernel memory is ignored, as runc 1.1 does.
        let r =
            limits(json!({"memory": {"swappiness": 0, "kernel": 1 << 20, "kernelTCP": 1 << 20}})).unwrap();
        assert_eq!(r, crate::spec::Resources { memory_swappiness: Some(0), ..limits(json!({})).unwrap() });
        let cpu = |quota: i64, period: Option<u64>| {
            let mut cpu = json!({"quota": quota});
            if let Some(period) = period {
                cpu["period"] = json!(period);
            }
            limits(json!({"cpu": cpu})).map(|r| r.cpu_percent)
        };
        assert_eq!(cpu(33333, Some(100000)), Ok(Some(34)), "rounded up");
        assert_eq!(cpu(150000, None), Ok(Some(150)), "runc's period, 100000");
        assert_eq!(cpu(1000, Some(1_000_000)), Ok(Some(1)));
        assert_eq!(cpu(-1, Some(100000)), Ok(None));
        assert_eq!(limits(json!({"pids": {"limit": -1}})).unwrap().pids, None);
        assert_eq!(limits(json!({"pids": {"limit": 0}})).unwrap().pids, None);
        assert_eq!(limits(json!({"memory": {"limit": -1}})).unwrap().memory_bytes, None);
        assert_eq!(limits(json!({})).unwrap(), crate::spec::Resources::default());
        // The others: reservation, swap (memory and swap together), shares,
        // cpuset, the block I/O weight.
        let r = limits(json!({
            "memory": {"limit": 268435456, "reservation": 134217728, "swap": 536870912},
            "cpu": {"shares": 512, "cpus": "0-1,3", "mems": "0"},
            "blockIO": {"weight": 300}
        }))
        .unwrap();
        assert_eq!(
            (r.memory_reservation_bytes, r.memory_swap_bytes, r.cpu_shares, r.blkio_weight),
            (Some(128 << 20), Some(512 << 20), Some(512), Some(300))
        );
        assert_eq!((r.cpuset_cpus.as_deref(), r.cpuset_mems.as_deref()), (Some("0-1,3"), Some("0")));
        let swap = |memory: Value| limits(json!({"memory": memory})).map(|r| r.memory_swap_bytes);
        assert_eq!(swap(json!({"limit": 268435456, "swap": -1})), Ok(Some(-1)), "unlimited swap");
        assert_eq!(swap(json!({"limit": 268435456, "swap": 268435456})), Ok(None), "no swap: the default");
        assert_eq!(swap(json!({"limit": 268435456, "swap": 0})), Ok(None), "0 is unset");
        assert_eq!(swap(json!({"swap": -1})), Ok(None), "no limit at all");
        assert_eq!(
            limits(json!({"cpu": {"shares": 0, "cpus": ""}})).unwrap(),
            crate::spec::Resources::default()
        );
        // runc's and podman's device rules: deny all, then the defaults.
        let rules = json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": false, "type": "b", "major": 8, "minor": 0, "access": "r"}
        ]});
        assert!(limits(rules).unwrap().is_empty());
    }

    #[test]
    fn process_fields() {
        use caps::Capability::*;
        let mut config = base();
        set(
            &mut config,
            "/process/user",
            json!({"uid": 1000, "gid": 100, "additionalGids": [10, 20], "umask": 63, "username": "ignored"}),
        );
        set(&mut config, "/process/cwd", json!("/srv/app/"));
        set(&mut config, "/process/oomScoreAdj", json!(-500));
        set(&mut config, "/process/noNewPrivileges", json!(false));
        set(&mut config, "/process/terminal", json!(false));
        set(&mut config, "/process/consoleSize", json!({"height": 10, "width": 20}));
        set(
            &mut config,
            "/process/rlimits",
            json!([{"type": "RLIMIT_NOFILE", "soft": 64, "hard": 128}, {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}, {"type": "RLIMIT_RTTIME", "soft": 1, "hard": 18446744073709551615u64}]),
        );
        set(
            &mut config,
            "/process/capabilities",
            json!({"bounding": ["CAP_CHOWN", "CAP_NET_RAW", "CAP_KILL"], "permitted": ["CAP_CHOWN", "cap_kill"], "effective": ["CAP_CHOWN"], "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL", "CAP_CHOWN"]}),
        );
        set(&mut config, "/process/apparmorProfile", json!(""));
        set(&mut config, "/process/ioPriority", json!({"class": "IOPRIO_CLASS_BE", "priority": 6}));
        set(
            &mut config,
            "/process/scheduler",
            json!({"policy": "SCHED_BATCH", "nice": 7, "flags": ["SCHED_RESET_ON_FORK"]}),
        );
        set(&mut config, "/process/execCPUAffinity", json!({"initial": "0-2,1,5", "final": "3"}));
        set(
            &mut config,
            "/linux/memoryPolicy",
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0,2", "flags": ["MPOL_F_STATIC_NODES"]}),
        );
        let spec = convert_value(&config, &alice()).unwrap();
        let p = &spec.process;
        assert_eq!(p.io_priority, Some(2 << 13 | 6));
        assert_eq!(p.scheduler, Some(Scheduler { policy: 3, flags: 1, nice: 7, ..Default::default() }));
        assert_eq!(
            p.exec_cpu_affinity,
            Some(CpuAffinity { initial: Some(vec![0, 1, 2, 5]), last: Some(vec![3]) })
        );
        assert_eq!(spec.memory_policy, Some(MemoryPolicy { mode: 3 | 1 << 15, nodes: vec![0, 2] }));
        // An empty affinity: the process keeps the one it has.
        set(&mut config, "/process/execCPUAffinity", json!({}));
        let spec = convert_value(&config, &alice()).unwrap();
        assert_eq!(spec.process.exec_cpu_affinity, Some(CpuAffinity::default()));
        let p = &convert_value(&config, &alice()).unwrap().process;
        assert_eq!(p.user, User { uid: 1000, gid: 100, additional_gids: vec![10, 20], umask: Some(0o77) });
        assert_eq!(p.cwd, "/srv/app/");
        assert_eq!(p.oom_score_adj, Some(-500));
        assert!(!p.no_new_privileges && !p.terminal);
        assert_eq!(
            p.rlimits,
            [
                Rlimit { resource: libc::RLIMIT_NOFILE, soft: 64, hard: 128 },
                Rlimit { resource: libc::RLIMIT_CORE, soft: 0, hard: 0 },
                Rlimit { resource: libc::RLIMIT_RTTIME, soft: 1, hard: u64::MAX },
            ]
        );
        assert_eq!(
            p.capabilities,
            Capabilities {
                bounding: caps(&[CAP_CHOWN, CAP_NET_RAW, CAP_KILL]),
                effective: caps(&[CAP_CHOWN]),
                permitted: caps(&[CAP_CHOWN, CAP_KILL]),
                inheritable: caps(&[CAP_KILL]),
                ambient: caps(&[CAP_KILL]),
            }
        );
        // No capabilities object: runc leaves container root all of them.
        remove(&mut config, "/process/capabilities");
        let all = convert_value(&config, &alice()).unwrap().process.capabilities;
        assert_eq!(
            (all.bounding, all.effective, all.permitted),
            (CapSet::all(), CapSet::all(), CapSet::all())
        );
        assert_eq!((all.inheritable, all.ambient), (CapSet(0), CapSet(0)));
        // No env: an empty environment, as runc gives.
        remove(&mut config, "/process/env");
        assert_eq!(convert_value(&config, &alice()).unwrap().process.env, Vec::<std::ffi::OsString>::new());
        // Every capability oci-spec knows is one zookeeper knows.
        for cap in caps::all() {
            let mut config = base();
            set(&mut config, "/process/capabilities/bounding", json!([cap.to_string()]));
            let spec = convert_value(&config, &root()).unwrap();
            assert_eq!(spec.process.capabilities.bounding, caps(&[cap]), "{cap}");
        }
    }

    #[test]
    fn hooks_convert_by_when_they_run() {
        let hooks: oci::Hooks = serde_json::from_value(json!({
            "createRuntime": [{"path": "/b", "args": ["b", "-x"], "env": ["K=V"], "timeout": 5}],
            "prestart": [{"path": "/a"}],
            "createContainer": [{"path": "/c"}],
            "startContainer": [{"path": "/d"}],
            "poststart": [{"path": "/e"}],
            "poststop": [{"path": "/f"}, {"path": "/g"}]
        }))
        .unwrap();
        let hook = |path: &str| Hook { path: path.into(), args: vec![], env: vec![], timeout: None };
        let b = Hook {
            path: "/b".into(),
            args: vec!["b".into(), "-x".into()],
            env: vec!["K=V".into()],
            timeout: Some(5),
        };
        assert_eq!(
            convert_hooks(&hooks).unwrap(),
            Hooks {
                // prestart first, as runc runs it.
                create_runtime: vec![hook("/a"), b],
                create_container: vec![hook("/c")],
                start_container: vec![hook("/d")],
                poststart: vec![hook("/e")],
                poststop: vec![hook("/f"), hook("/g")],
            }
        );
        // In a config.
        let mut config = base();
        set(&mut config, "/hooks", serde_json::to_value(&hooks).unwrap());
        assert_eq!(convert_value(&config, &root()).unwrap().hooks.poststop.len(), 2);
        // Empty lists are no hooks.
        let mut config = base();
        set(&mut config, "/hooks", json!({"prestart": [], "poststop": []}));
        set(&mut config, "/annotations", json!({"b": "2", "a": "1"}));
        let spec = convert_value(&config, &root()).unwrap();
        assert!(spec.hooks.is_empty());
        assert_eq!(
            spec.identity,
            Identity {
                id: String::new(),
                bundle: "/bundle".into(),
                annotations: vec![("a".into(), "1".into()), ("b".into(), "2".into())]
            }
        );
    }

    #[test]
    fn paths_and_namespaces() {
        let mut config = base();
        set(&mut config, "/linux/maskedPaths", json!(["/proc/kcore", "/sys/firmware/"]));
        set(&mut config, "/linux/readonlyPaths", json!([]));
        set(&mut config, "/linux/rootfsPropagation", json!("rprivate"));
        set(&mut config, "/linux/personality", json!({"domain": "LINUX"}));
        set(&mut config, "/linux/mountLabel", json!("system_u:object_r:container_file_t:s0"));
        set(&mut config, "/annotations", json!({"org.example.key": "value"}));
        set(
            &mut config,
            "/linux/devices",
            json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}]),
        );
        set(&mut config, "/linux/namespaces/5", json!({"type": "cgroup"}));
        set(&mut config, "/linux/namespaces/6", json!({"type": "user"}));
        set(&mut config, "/somethingNew", json!({"unknown": "ignored as runc ignores it"}));
        let spec = convert_value(&config, &root()).unwrap();
        assert_eq!(spec.root_propagation, None, "rprivate: what the container's mounts are anyway");
        assert_eq!(spec.masked_paths, ["/proc/kcore", "/sys/firmware"]);
        for (value, host, kind, recursive) in [
            ("rslave", root(), PropagationKind::Slave, true),
            ("slave", root(), PropagationKind::Slave, false),
            ("runbindable", root(), PropagationKind::Unbindable, true),
            // In a user namespace the kernel keeps shared from the host.
            ("rshared", alice(), PropagationKind::Shared, true),
        ] {
            let mut config = config.clone();
            set(&mut config, "/linux/rootfsPropagation", json!(value));
            let spec = convert_value(&config, &host).unwrap();
            assert_eq!(spec.root_propagation, Some(Propagation { kind, recursive }), "{value}");
        }
        assert_eq!(spec.readonly_paths, Vec::<String>::new());
        // Absent: docker's defaults, not runc's nothing.
        remove(&mut config, "/linux/maskedPaths");
        remove(&mut config, "/linux/readonlyPaths");
        let spec = convert_value(&config, &root()).unwrap();
        assert_eq!(spec.masked_paths, crate::spec::MASKED_PATHS);
        assert_eq!(spec.readonly_paths, READONLY);
    }

    #[test]
    fn every_refused_field_is_named() {
        let mut selinux = root();
        selinux.selinux = true;
        let cases: Vec<(&str, Value, &str)> = vec![
            ("/ociVersion", json!(""), "ociVersion"),
            ("/ociVersion", json!("1.3.0"), "ociVersion"),
            ("/ociVersion", json!("2.0.0"), "ociVersion"),
            ("/ociVersion", json!("1.2"), "ociVersion"),
            ("/ociVersion", json!("x.y.z"), "ociVersion"),
            ("/root/path", json!(""), "root.path"),
            ("/process/args", json!([]), "process.args"),
            ("/process/args", json!(["", "x"]), "process.args[0]"),
            ("/process/args", json!(["sh", "a\u{0}b"]), "process.args[1]"),
            ("/process/env/1", json!("NOEQUALS"), "process.env[1]"),
            ("/process/env/0", json!("=value"), "process.env[0]"),
            ("/process/cwd", json!("relative/dir"), "process.cwd"),
            ("/process/user/uid", json!(65536 + 1), "process.user.uid"),
            ("/process/user/gid", json!(70000), "process.user.gid"),
            ("/process/user/additionalGids", json!([1, 99999]), "process.user.additionalGids[1]"),
            ("/process/user/umask", json!(0o1000), "process.user.umask"),
            ("/process/user/uid", json!(-1), "process.user.uid"),
            ("/process/capabilities/bounding/1", json!("CAP_NO_SUCH"), "process.capabilities.bounding[1]"),
            ("/process/capabilities/effective/1", json!("CAP_SYS_ADMIN"), "process.capabilities.effective"),
            (
                "/process/rlimits/1",
                json!({"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}),
                "process.rlimits[1]",
            ),
            ("/process/rlimits/0/soft", json!(2048), "process.rlimits[0]"),
            ("/process/rlimits/0/type", json!("RLIMIT_NOPE"), "process.rlimits[0].type"),
            ("/process/oomScoreAdj", json!(1001), "process.oomScoreAdj"),
            ("/process/apparmorProfile", json!("docker-default"), "process.apparmorProfile"),
            ("/process/selinuxLabel", json!("system_u:system_r:container_t:s0"), "process.selinuxLabel"),
            (
                "/process/ioPriority",
                json!({"class": "IOPRIO_CLASS_IDLE", "priority": 8}),
                "process.ioPriority.priority",
            ),
            ("/process/scheduler", json!({"policy": "SCHED_BATCH", "nice": 20}), "process.scheduler.nice"),
            (
                "/process/scheduler",
                json!({"policy": "SCHED_BATCH", "priority": 1}),
                "process.scheduler.priority",
            ),
            ("/process/scheduler", json!({"policy": "SCHED_RR", "runtime": 1}), "process.scheduler"),
            (
                "/process/execCPUAffinity",
                json!({"initial": "0", "final": "3-1"}),
                "process.execCPUAffinity.final",
            ),
            ("/process/execCPUAffinity", json!({"initial": "1024"}), "process.execCPUAffinity.initial"),
            ("/hostname", json!("h".repeat(65)), "hostname"),
            ("/domainname", json!("d".repeat(65)), "domainname"),
            ("/domainname", json!("a\u{0}b"), "domainname"),
            (
                "/mounts/7",
                json!({"destination": "data", "type": "bind", "source": "/x", "options": ["bind"]}),
                "mounts[7].destination",
            ),
            (
                "/mounts/7",
                json!({"destination": "/a/../etc", "type": "bind", "source": "/x"}),
                "mounts[7].destination",
            ),
            ("/mounts/7", json!({"destination": "/", "type": "bind", "source": "/x"}), "mounts[7]"),
            (
                "/mounts/7",
                json!({"destination": "/x", "type": "bind", "source": "/x", "uidMappings": [{"containerID": 0, "hostID": 0, "size": 1}]}),
                "mounts[7]",
            ),
            ("/mounts/7", json!({"destination": "/x", "type": "overlay", "source": "overlay"}), "mounts[7]"),
            ("/mounts/7", json!({"destination": "/x", "source": "/x"}), "mounts[7]"),
            ("/mounts/7", json!({"destination": "/x", "type": "bind"}), "mounts[7].source"),
            (
                "/mounts/7",
                json!({"destination": "/x", "type": "bind", "source": "/x", "options": ["rbind", "idmap"]}),
                "mounts[7]",
            ),
            (
                "/mounts/7",
                json!({"destination": "/x", "type": "bind", "source": "/x", "options": ["bind", "rnotathing"]}),
                "mounts[7]",
            ),
            (
                "/mounts/7",
                json!({"destination": "/x", "type": "tmpfs", "options": ["tmpcopyup"]}),
                "mounts[7]",
            ),
            (
                "/mounts/7",
                json!({"destination": "/x", "type": "tmpfs", "options": ["uid=root"]}),
                "mounts[7]",
            ),
            (
                "/mounts/7",
                json!({"destination": "/x", "type": "tmpfs", "options": ["mpol=bind:0"]}),
                "mounts[7]",
            ),
            (
                "/mounts/7",
                json!({"destination": "/x", "type": "tmpfs", "options": ["size=lots"]}),
                "mounts[7]",
            ),
            (
                "/mounts/7",
                json!({"destination": "/x", "type": "tmpfs", "options": ["mode=999"]}),
                "mounts[7]",
            ),
            (
                "/mounts/7",
                json!({"destination": "/x", "type": "tmpfs", "options": ["nr_inodes=lots"]}),
                "mounts[7]",
            ),
            ("/mounts/0/type", json!("sysfs"), "mounts[0]"),
            ("/hooks/prestart", json!([{"path": "bin/true"}]), "hooks.prestart[0].path"),
            (
                "/hooks/poststop",
                json!([{"path": "/x"}, {"path": "/x", "timeout": 0}]),
                "hooks.poststop[1].timeout",
            ),
            ("/hooks/poststart", json!([{"path": "/x", "env": ["NOVALUE"]}]), "hooks.poststart[0].env[0]"),
            (
                "/hooks/startContainer",
                json!([{"path": "/x", "args": ["x\u{0}"]}]),
                "hooks.startContainer[0].args[0]",
            ),
            ("/linux/namespaces/4/path", json!("/proc/1/ns/mnt"), "linux.namespaces[4]"),
            ("/linux/namespaces/1/path", json!("net"), "linux.namespaces[1].path"),
            (
                "/linux/namespaces/5",
                json!({"type": "user", "path": "/proc/1/ns/user"}),
                "linux.namespaces[5]",
            ),
            ("/linux/namespaces/5", json!({"type": "time", "path": "time"}), "linux.namespaces[5].path"),
            ("/linux/namespaces/5", json!({"type": "ipc"}), "linux.namespaces[5]"),
            ("/linux/namespaces/0", json!({"type": "cgroup"}), "linux.namespaces"),
            ("/linux/namespaces/4", json!({"type": "cgroup"}), "linux.namespaces"),
            ("/linux/namespaces/0/type", json!("bogus"), "linux.namespaces[0].type"),
            ("/linux/uidMappings", json!([{"containerID": 0, "hostID": 0, "size": 1}]), "linux.uidMappings"),
            (
                "/linux/devices",
                json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 5}]),
                "linux.devices[0]",
            ),
            (
                "/linux/devices",
                json!([{"path": "dev/x", "type": "c", "major": 1, "minor": 5}]),
                "linux.devices[0].path",
            ),
            ("/linux/devices", json!([{"path": "/dev/x", "type": "a"}]), "linux.devices[0].type"),
            (
                "/linux/devices",
                json!([{"path": "/dev/x", "type": "c", "major": -1}]),
                "linux.devices[0].major",
            ),
            (
                "/linux/resources/devices/1",
                json!({"allow": true, "type": "a", "access": "r"}),
                "linux.resources.devices[1]",
            ),
            (
                "/linux/resources/devices/1",
                json!({"allow": false, "type": "c", "access": ""}),
                "linux.resources.devices[1].access",
            ),
            (
                "/linux/resources/devices/1",
                json!({"allow": false, "type": "p", "access": "r"}),
                "linux.resources.devices[1].type",
            ),
            (
                "/linux/resources/devices/1",
                json!({"allow": true, "type": "b", "major": 8, "minor": 4294967296u64, "access": "r"}),
                "linux.resources.devices[1].minor",
            ),
            ("/linux/resources/memory", json!({"limit": 4096}), "linux.resources.memory.limit"),
            ("/linux/resources/memory", json!({"limit": -2}), "linux.resources.memory.limit"),
            (
                "/linux/resources/memory",
                json!({"limit": 1073741824, "swap": 536870912}),
                "linux.resources.memory.swap",
            ),
            ("/linux/resources/memory", json!({"swap": 536870912}), "linux.resources.memory.swap"),
            (
                "/linux/resources/memory",
                json!({"limit": 1073741824, "swap": -2}),
                "linux.resources.memory.swap",
            ),
            ("/linux/resources/memory", json!({"reservation": -2}), "linux.resources.memory.reservation"),
            ("/linux/resources/memory", json!({"swappiness": 101}), "linux.resources.memory.swappiness"),
            (
                "/linux/resources/memory",
                json!({"disableOOMKiller": true}),
                "linux.resources.memory.disableOOMKiller",
            ),
            ("/linux/resources/memory", json!({"useHierarchy": true}), "linux.resources.memory.useHierarchy"),
            (
                "/linux/resources/memory",
                json!({"checkBeforeUpdate": true}),
                "linux.resources.memory.checkBeforeUpdate",
            ),
            ("/linux/resources/cpu", json!({"realtimeRuntime": 1}), "linux.resources.cpu.realtimeRuntime"),
            ("/linux/resources/cpu", json!({"realtimePeriod": 1}), "linux.resources.cpu.realtimePeriod"),
            ("/linux/resources/cpu", json!({"mems": "0,"}), "linux.resources.cpu.mems"),
            ("/linux/resources/cpu", json!({"idle": 1}), "linux.resources.cpu.idle"),
            ("/linux/resources/cpu", json!({"burst": 1}), "linux.resources.cpu.burst"),
            ("/linux/resources/cpu", json!({"quota": -5}), "linux.resources.cpu.quota"),
            ("/linux/resources/cpu", json!({"shares": 1}), "linux.resources.cpu.shares"),
            ("/linux/resources/cpu", json!({"shares": 262145}), "linux.resources.cpu.shares"),
            ("/linux/resources/cpu", json!({"cpus": "1-0"}), "linux.resources.cpu.cpus"),
            ("/linux/resources/cpu", json!({"cpus": "all"}), "linux.resources.cpu.cpus"),
            ("/linux/resources/cpu", json!({"quota": 50000, "period": 10}), "linux.resources.cpu.period"),
            ("/linux/resources/cpu", json!({"quota": 10, "period": 100000}), "linux.resources.cpu.quota"),
            (
                "/linux/resources/cpu",
                json!({"quota": 1000000000000i64, "period": 1000}),
                "linux.resources.cpu.quota",
            ),
            ("/linux/resources/pids", json!({"limit": 5000000}), "linux.resources.pids.limit"),
            ("/linux/resources/pids", json!({"limit": -7}), "linux.resources.pids.limit"),
            ("/linux/resources/blockIO", json!({"weight": 5}), "linux.resources.blockIO.weight"),
            ("/linux/resources/blockIO", json!({"leafWeight": 10}), "linux.resources.blockIO.leafWeight"),
            (
                "/linux/resources/blockIO",
                json!({"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]}),
                "linux.resources.blockIO.throttleReadBpsDevice",
            ),
            (
                "/linux/resources/hugepageLimits",
                json!([{"pageSize": "2MB", "limit": 1}]),
                "linux.resources.hugepageLimits",
            ),
            ("/linux/resources/network", json!({"classID": 1}), "linux.resources.network"),
            ("/linux/resources/rdma", json!({"mlx5_1": {"hcaHandles": 3}}), "linux.resources.rdma"),
            ("/linux/resources/unified", json!({"memory.high": "1G"}), "linux.resources.unified"),
            ("/linux/cgroupsPath", json!("/mine/../../etc"), "linux.cgroupsPath"),
            ("/linux/cgroupsPath", json!("machine.slice:libpod:abc"), "linux.cgroupsPath"),
            ("/linux/cgroupsPath", json!("/./"), "linux.cgroupsPath"),
            ("/linux/sysctl", json!({"net..ipv4": "1"}), "linux.sysctl"),
            ("/linux/sysctl", json!({"../../etc/passwd": "x"}), "linux.sysctl"),
            ("/linux/sysctl", json!({"net.ipv4.ip_forward": "1\u{0}"}), "linux.sysctl.net.ipv4.ip_forward"),
            ("/linux/rootfsPropagation", json!("rshared"), "linux.rootfsPropagation"),
            ("/linux/rootfsPropagation", json!("sideways"), "linux.rootfsPropagation"),
            ("/linux/maskedPaths/3", json!("proc/keys"), "linux.maskedPaths[3]"),
            ("/linux/readonlyPaths/0", json!("/proc/../etc"), "linux.readonlyPaths[0]"),
            ("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_NOTIFY"}), "linux.seccomp.defaultAction"),
            (
                "/linux/seccomp",
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}),
                "linux.seccomp.syscalls[0].names",
            ),
            ("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_BOGUS"}), "linux.seccomp.defaultAction"),
            ("/linux/intelRdt", json!({"closID": "x"}), "linux.intelRdt"),
            ("/linux/personality", json!({"domain": "LINUX32"}), "linux.personality.domain"),
            ("/linux/personality", json!({"domain": "LINUX", "flags": ["x"]}), "linux.personality.flags"),
            ("/linux/memoryPolicy", json!({"mode": "MPOL_BIND"}), "linux.memoryPolicy.nodes"),
            ("/linux/memoryPolicy", json!({"mode": "MPOL_LOCAL", "nodes": "0"}), "linux.memoryPolicy.nodes"),
            ("/linux/memoryPolicy", json!({"mode": "MPOL_BIND", "nodes": "0-x"}), "linux.memoryPolicy.nodes"),
            ("/linux/timeOffsets", json!({"monotonic": {"secs": 1}}), "linux.timeOffsets"),
            ("/linux/netDevices", json!({"eth1": {}}), "linux.netDevices"),
        ];
        for (pointer, new, field) in cases {
            let mut config = base();
            set(&mut config, pointer, new);
            let host = match field {
                "process.user.uid" | "process.user.gid" | "process.user.additionalGids[1]" => alice(),
                _ => root(),
            };
            refused(&config, &host, field);
        }
        // Whole sections.
        for (pointer, field) in [("/root", "root"), ("/process", "process"), ("/linux", "linux")] {
            let mut config = base();
            remove(&mut config, pointer);
            refused(&config, &root(), field);
        }
        let mut config = base();
        remove(&mut config, "/process/cwd");
        refused(&config, &root(), "process");
        // Supplementary groups without a range (setgroups denied).
        let mut config = base();
        set(&mut config, "/process/user/additionalGids", json!([0]));
        refused(&config, &bob(), "process.user.additionalGids");
        // SELinux mount labels, where SELinux is on.
        let mut config = base();
        set(&mut config, "/linux/mountLabel", json!("system_u:object_r:container_file_t:s0"));
        refused(&config, &selinux, "linux.mountLabel");
        // A missing namespace zookeeper cannot leave shared.
        for i in [0, 4] {
            let mut config = base();
            remove(&mut config, &format!("/linux/namespaces/{i}"));
            let text = refused(&config, &root(), "linux.namespaces");
            assert!(text.contains("sharing the host's is not supported"), "{text}");
        }
        // The others, left out, are the host's (the runtime spec's rule).
        let mut config = base();
        for i in [3, 2, 1] {
            remove(&mut config, &format!("/linux/namespaces/{i}"));
        }
        let spec = convert_value(&config, &root()).unwrap();
        let host = Namespace::Host;
        assert_eq!(
            spec.namespaces,
            Namespaces {
                user: host.clone(),
                network: host.clone(),
                ipc: host.clone(),
                uts: host.clone(),
                cgroup: host.clone(),
                time: host,
                pid: Namespace::New
            }
        );
    }

    #[test]
    fn messages_stay_short_and_on_one_line() {
        let mut config = base();
        set(&mut config, "/process/env/0", json!(format!("{}\n\u{1b}[2J", "X".repeat(10_000))));
        let text = convert_value(&config, &root()).unwrap_err().to_string();
        assert!(text.len() < 200 && !text.contains('\n') && !text.contains('\u{1b}'), "{text}");
        let mut config = base();
        set(&mut config, "/process/capabilities/bounding/0", json!("Y".repeat(10_000)));
        let text = convert_value(&config, &root()).unwrap_err().to_string();
        assert!(text.len() < 400 && !text.contains('\n'), "{text}");
        assert!(text.contains("unknown capability"), "{text}");
        for bad in ["", "{", "[]", "null", "{\"ociVersion\": 1}", "{} {}", "\u{feff}{}"] {
            // ("[]" is a Spec to serde, every field defaulted.)
            let err = parse_config(bad.as_bytes())
                .and_then(|config| convert(&config, Path::new("/b"), &root()))
                .map(|_| ())
                .expect_err(bad);
            assert!(!err.to_string().contains('\n'), "{err}");
        }
        assert_eq!(
            parse_config(b"{").unwrap_err().to_string(),
            "config.json: EOF while parsing an object at line 1 column 1"
        );
        // Parsed, but not a runtime spec.
        let empty = parse_config(b"{}").unwrap();
        assert_eq!(convert(&empty, Path::new("/b"), &root()).unwrap_err().field(), Some("ociVersion"));
    }

    /// DIR/config.json, mode 0644 whatever the umask (read_config refuses
    /// one that group or others may write).
    fn write_config(dir: &Path, config: &Value) {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("config.json");
        std::fs::write(&path, serde_json::to_vec(config).unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    /// A fresh private directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zookeeper-oci-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn config_json_is_read_as_a_hostile_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("read");
        let reason = |dir: &Path| match read_config(dir) {
            Err(BundleError::Read { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(&dir.join("missing")), "no such directory");
        assert_eq!(reason(&dir), "no config.json in it");
        std::fs::write(dir.join("file"), "x").unwrap();
        assert_eq!(reason(&dir.join("file")), "not a directory");
        std::os::unix::fs::symlink("/etc/passwd", dir.join("config.json")).unwrap();
        assert_eq!(reason(&dir), "config.json is a symbolic link; refusing to follow it");
        std::fs::remove_file(dir.join("config.json")).unwrap();
        // A FIFO nobody writes to: refused at once, not waited on.
        nix::unistd::mkfifo(&dir.join("config.json"), Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(reason(&dir), "config.json is not a regular file");
        std::fs::remove_file(dir.join("config.json")).unwrap();
        std::fs::create_dir(dir.join("config.json")).unwrap();
        assert_eq!(reason(&dir), "config.json is not a regular file");
        std::fs::remove_dir(dir.join("config.json")).unwrap();
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        std::fs::set_permissions(dir.join("config.json"), std::fs::Permissions::from_mode(0o664)).unwrap();
        assert_eq!(
            reason(&dir),
            "config.json is writable by group or others (mode 0664): refusing what others could change (chmod go-w it)"
        );
        std::fs::set_permissions(dir.join("config.json"), std::fs::Permissions::from_mode(0o644)).unwrap();
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(dir.join("config.json"), Some(65534), None).unwrap();
            assert_eq!(
                reason(&dir),
                "config.json belongs to uid 65534, neither you nor root: refusing another user's container"
            );
        }
        std::fs::remove_file(dir.join("config.json")).unwrap();
        std::fs::write(dir.join("config.json"), vec![b' '; CONFIG_LIMIT as usize + 1]).unwrap();
        assert_eq!(reason(&dir), "config.json is larger than 4 MiB");
        std::fs::write(dir.join("config.json"), vec![b' '; CONFIG_LIMIT as usize]).unwrap();
        assert_eq!(read_config(&dir).unwrap().len(), CONFIG_LIMIT as usize);
        // A whole bundle, relative paths resolved against it.
        let mut config = base();
        set(&mut config, "/process/user", json!({"uid": 0, "gid": 0}));
        write_config(&dir, &config);
        let spec = load_bundle(&dir).unwrap();
        assert_eq!(spec.root, Some(dir.join("rootfs")));
        let err = BundleError::Read { dir: "/b\nx".into(), reason: "no such directory".into() };
        assert_eq!(err.to_string(), "--bundle /b?x: no such directory");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_command_line_front_door() {
        use crate::cli::{Invocation, parse};
        let dir = scratch("cli");
        let mut config = base();
        set(&mut config, "/linux/resources", json!({"pids": {"limit": 50}, "memory": {"limit": 1073741824}}));
        write_config(&dir, &config);
        let shown = dir.to_str().unwrap();
        let run = |extra: &[&str], on_terminal: bool| {
            let argv = ["zookeeper", "--bundle", shown].into_iter().chain(extra.iter().copied());
            match parse(argv, |key| (key == "FROMHOST").then(|| "host".into()), on_terminal) {
                Ok(Invocation::Run(spec)) => Ok(*spec),
                Ok(other) => panic!("{other:?}"),
                Err(err) => Err(err.0),
            }
        };
        let loaded = load_bundle(&dir).unwrap();
        // config.json's terminal (true, runc's), on a terminal or not.
        assert_eq!(run(&[], false).unwrap(), ContainerSpec { etc_files: true, ..loaded.clone() });
        assert_eq!(run(&[], true).unwrap(), ContainerSpec { etc_files: true, ..loaded.clone() });
        assert!(!run(&["--no-tty"], true).unwrap().process.terminal);
        set(&mut config, "/process/terminal", json!(false));
        write_config(&dir, &config);
        assert!(!run(&[], true).unwrap().process.terminal, "config.json says no terminal");
        assert!(run(&["--tty"], false).unwrap().process.terminal);
        // Options add to the config.
        let spec =
            run(&["-m", "64M", "--init", "--env", "A=1", "--env", "FROMHOST", "--stop-timeout", "3"], false)
                .unwrap();
        assert_eq!((spec.resources.memory_bytes, spec.resources.pids), (Some(64 << 20), Some(50)));
        assert!(spec.init);
        assert_eq!(spec.stop_timeout.as_secs(), 3);
        let env: Vec<&str> = spec.process.env.iter().map(|e| e.to_str().unwrap()).collect();
        assert_eq!(env[2..], ["A=1", "FROMHOST=host"]);
        assert_eq!(spec.process.args, ["/bin/true"]);
        // runc's config lists a network namespace: -n puts slirp4netns in it.
        assert_eq!(run(&["-n"], false).unwrap().network, Network::Slirp4netns);
        // Errors: one line each.
        let cases: [(&[&str], &str); 5] = [
            (&["sh", "-c", "true"], "--bundle runs config.json's process.args; no command"),
            (&["-r", "/x"], "cannot be used with"),
            (&["-P"], "cannot be used with"),
            (&["--", "sh"], "--bundle runs config.json's process.args; no command"),
            (&["--bundle", "/no/such"], "cannot be used multiple times"),
        ];
        for (extra, needle) in cases {
            let err = run(extra, false).unwrap_err();
            assert!(err.contains(needle) && !err.contains('\n'), "{extra:?}: {err}");
        }
        let missing = parse(["zookeeper", "--bundle", "/no/such/bundle"], |_| None, false).unwrap_err();
        assert_eq!(missing.0, "--bundle /no/such/bundle: no such directory");
        // A config that shares the host's network: no backend can go there.
        remove(&mut config, "/linux/namespaces/1");
        write_config(&dir, &config);
        let err = run(&["--publish", "8080:80"], false).unwrap_err();
        assert!(err.contains("need a network namespace of the container's own"), "{err}");
        assert_eq!(run(&[], false).unwrap().namespaces.network, Namespace::Host);
        set(&mut config, "/process/cwd", json!("relative"));
        write_config(&dir, &config);
        assert_eq!(
            run(&[], false).unwrap_err(),
            "config.json: process.cwd: \"relative\" is not an absolute path"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        /// Every place in `config` a value could be replaced, as JSON pointers.
        fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
            match value {
                Value::Object(map) => map.iter().for_each(|(k, v)| pointers(v, format!("{at}/{k}"), out)),
                Value::Array(items) => {
                    items.iter().enumerate().for_each(|(i, v)| pointers(v, format!("{at}/{i}"), out))
                }
                _ => {}
            }
            out.push(at);
        }

        fn weird() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                Just(json!(-1)),
                Just(json!(0)),
                Just(json!(u64::MAX)),
                Just(json!(i64::MIN)),
                Just(json!(1.5)),
                Just(json!(true)),
                Just(json!("")),
                Just(json!("..")),
                Just(json!("/")),
                Just(json!("a\u{0}b")),
                Just(json!([])),
                Just(json!({})),
                Just(json!(["bind", "ro"])),
                ".{0,16}".prop_map(Value::String),
                any::<i64>().prop_map(|n| json!(n)),
            ]
        }

        proptest! {
            #[test]
            fn garbage_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                if let Ok(config) = parse_config(&bytes) {
                    let _ = convert(&config, Path::new("/b"), &root());
                }
            }

            #[test]
            fn any_field_replaced_converts_or_fails_in_one_line(
                picks in proptest::collection::vec((any::<prop::sample::Index>(), weird()), 1..4),
                podman in any::<bool>(),
            ) {
                let mut config = if podman { value(PODMAN) } else { base() };
                for (index, new) in picks {
                    let mut all = Vec::new();
                    pointers(&config, String::new(), &mut all);
                    let pointer = index.get(&all).clone();
                    match config.pointer_mut(&pointer) {
                        Some(slot) => *slot = new,
                        None => config = new,
                    }
                }
                for host in [root(), alice(), bob()] {
                    if let Err(err) = convert_value(&config, &host) {
                        let text = err.to_string();
                        prop_assert!(!text.contains('\n') && text.len() < 600, "{}", text);
                    }
                }
            }
        }
    }
}
