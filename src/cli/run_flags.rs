//! The run flags a docker user reaches for: files in and out (`-v`,
//! `--mount`, `--tmpfs`, `--read-only`), who and where (`-u`, `-w`,
//! `--hostname`), confinement on purpose (`--cap-add`, `--cap-drop`,
//! `--security-opt`), limits (`--ulimit`), and docker habits that are
//! zookeeper's defaults anyway (`-i`, `--rm`). Each only fills in the
//! container's description (spec.rs).

use std::path::PathBuf;

use crate::spec::{CapSet, ContainerSpec, Device, Mount, MountKind, Overlay, Rlimit, Seccomp};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunFlags {
    /// The container's hostname (default: zoo)
    #[arg(long = "hostname", value_name = "NAME", value_parser = parse_hostname)]
    hostname: Option<String>,

    /// A DNS server for the container's /etc/resolv.conf (an IP address);
    /// repeatable
    #[arg(long = "dns", value_name = "IP", value_parser = parse_dns)]
    dns: Vec<std::net::IpAddr>,

    /// A line for the container's /etc/hosts; repeatable
    #[arg(long = "add-host", value_name = "NAME:IP", value_parser = parse_add_host)]
    add_hosts: Vec<(String, std::net::IpAddr)>,

    /// The command's working directory, an absolute path in the container;
    /// made if missing
    #[arg(short = 'w', long = "workdir", value_name = "DIR", value_parser = parse_container_path)]
    workdir: Option<String>,

    /// Run the command as USER (a name or uid from the container's
    /// /etc/passwd) and GROUP (name or gid); supplementary groups from its
    /// /etc/group
    #[arg(short = 'u', long = "user", value_name = "USER[:GROUP]", value_parser = parse_user)]
    user: Option<String>,

    /// Bind a host file or directory into the container (HOST must be an
    /// absolute path); repeatable
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro|rw]", value_parser = parse_volume)]
    volumes: Vec<Mount>,

    /// A bind or tmpfs mount, as docker's --mount:
    /// type=bind,source=HOST,target=DIR[,readonly] or
    /// type=tmpfs,target=DIR[,tmpfs-size=BYTES][,tmpfs-mode=OCTAL]; repeatable
    #[arg(long = "mount", value_name = "type=bind|tmpfs,...", value_parser = parse_mount)]
    mounts: Vec<Mount>,

    /// Mount a tmpfs at PATH (nosuid, nodev, noexec unless `exec`; options
    /// such as size=64m,mode=1777); repeatable
    #[arg(long = "tmpfs", value_name = "PATH[:OPTIONS]", value_parser = parse_tmpfs)]
    tmpfs: Vec<Mount>,

    /// With -r DIR: DIR becomes the read-only lower layer of an overlay, and
    /// the container's writes go to a private layer that is gone at exit
    #[arg(long = "overlay")]
    overlay: bool,

    /// The size of --overlay's writable layer (a tmpfs): bytes, or with k,
    /// m or g (default: the kernel's, half of the RAM)
    #[arg(long = "overlay-size", value_name = "SIZE", value_parser = crate::cli::parse_memory)]
    overlay_size: Option<u64>,

    /// Give the container a host device (a character or block device),
    /// bound; PERMISSIONS must allow read and write (rw, rwm), which is
    /// what a bound device gives; repeatable
    #[arg(long = "device", value_name = "HOST[:CONTAINER][:PERMISSIONS]", value_parser = parse_device)]
    devices: Vec<Device>,

    /// Mount the container's root read-only, with a writable tmpfs on /tmp
    /// and /run where the root has them (unless a mount of yours is there)
    #[arg(long = "read-only")]
    read_only: bool,

    /// Give the command a capability (CAP_NET_RAW or NET_RAW, any case);
    /// repeatable
    #[arg(long = "cap-add", value_name = "CAP", value_parser = parse_capability)]
    cap_add: Vec<Capability>,

    /// Take a capability away, or ALL of them; repeatable
    #[arg(long = "cap-drop", value_name = "CAP|ALL", value_parser = parse_capability)]
    cap_drop: Vec<Capability>,

    /// seccomp=unconfined, seccomp=PROFILE.json (an OCI linux.seccomp
    /// profile, instead of the built-in filter), allow-setid (the built-in
    /// filter lets package managers make set-id files; not where container
    /// root is host root), or no-new-privileges[=true|false]; repeatable
    #[arg(long = "security-opt", value_name = "OPTION", value_parser = parse_security_opt)]
    security_opt: Vec<SecurityOpt>,

    /// A resource limit for the command: nofile=1024:2048, core=0,
    /// nproc=unlimited; repeatable
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]", value_parser = parse_ulimit)]
    ulimits: Vec<Rlimit>,

    /// keep-id: your own uid and gid are the same inside, and the command
    /// runs as them (podman's); container root and every other id are your
    /// subordinate ids
    #[arg(long = "userns", value_name = "keep-id", value_parser = parse_userns)]
    userns: Option<KeepId>,

    /// Set a kernel parameter of the container's own namespaces
    /// (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*); repeatable
    #[arg(long = "sysctl", value_name = "NAME=VALUE", value_parser = parse_sysctl)]
    sysctls: Vec<(String, String)>,

    /// Accepted for docker's -i: zookeeper always passes its input on
    #[arg(short = 'i', long = "interactive")]
    interactive: bool,

    /// docker's --rm: a zookeeper container leaves nothing behind (with
    /// --detach: its state goes too when it ends)
    #[arg(long = "rm")]
    rm: bool,
}

/// `--userns keep-id`, the one mode zookeeper offers besides its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepId;

fn parse_userns(text: &str) -> Result<KeepId, String> {
    match text {
        "keep-id" => Ok(KeepId),
        "host" => Err("--userns host is not offered: without a user namespace container root would hold the host's capabilities; run as root with a bundle (--bundle) if you mean it".into()),
        _ => Err(format!("unknown user namespace mode '{text}' (keep-id)")),
    }
}

/// A capability named on the command line, or ALL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    One(caps::Capability),
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityOpt {
    SeccompUnconfined,
    /// The built-in filter without its set-id rules.
    AllowSetid,
    /// A profile file: compiled when the container starts.
    SeccompProfile(PathBuf),
    NoNewPrivileges(bool),
}

impl RunFlags {
    /// `--rm` given.
    pub fn remove(&self) -> bool {
        self.rm
    }

    pub fn workdir_given(&self) -> bool {
        self.workdir.is_some()
    }

    /// `--image`: the root is an overlay of the image's layers, whose files
    /// belong to the ids the default map gives.
    pub fn for_image(&mut self) -> Result<(), String> {
        if self.userns.is_some() {
            return Err(
                "--userns keep-id cannot run an image: its layers are unpacked for the default id map".into(),
            );
        }
        self.overlay = true;
        Ok(())
    }

    /// Fills the flags into `spec`. `home_given`: the caller set HOME with
    /// --env, which a user's home from /etc/passwd must not override.
    pub fn apply(self, spec: &mut ContainerSpec, home_given: bool) -> Result<(), String> {
        match (self.overlay, self.overlay_size) {
            (true, size) => {
                spec.overlay = Some(Overlay { lower: Vec::new(), size, fallback: false, fuse: None })
            }
            (false, Some(_)) => return Err("--overlay-size needs --overlay".into()),
            (false, None) => {}
        }
        if let Some(hostname) = self.hostname {
            spec.hostname = hostname;
        }
        spec.dns_servers = self.dns;
        spec.extra_hosts = self.add_hosts;
        if let Some(workdir) = self.workdir {
            spec.process.cwd = workdir;
        }
        if self.userns.is_some() {
            let (uid, gid) = crate::idmap::IdMapPlan::keep_id().map_err(|err| format!("{err:#}"))?;
            spec.id_maps = crate::spec::IdMaps::Explicit { uid, gid };
            if self.user.is_none() {
                // Resolved like -u: HOME and groups from the container's files.
                let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
                spec.user_lookup = Some(format!("{uid}:{gid}"));
                if !home_given {
                    spec.process.env.retain(|entry| !entry.as_encoded_bytes().starts_with(b"HOME="));
                }
            }
        }
        if let Some(user) = self.user {
            spec.user_lookup = Some(user);
            if !home_given {
                // The engine sets it from the user's /etc/passwd entry.
                spec.process.env.retain(|entry| !entry.as_encoded_bytes().starts_with(b"HOME="));
            }
        }
        let mut mounts: Vec<Mount> = self.volumes.into_iter().chain(self.mounts).chain(self.tmpfs).collect();
        if self.read_only {
            spec.root_readonly = true;
            for (target, mode) in [("/tmp", "1777"), ("/run", "755")] {
                if !mounts.iter().any(|m| m.target == target) {
                    let mut tmpfs = tmpfs_mount(target, Some(format!("mode={mode}")), true);
                    tmpfs.if_present = true;
                    mounts.push(tmpfs);
                }
            }
        }
        // Parents before children, whatever order they were given in, as
        // docker does: a mount under another's target lands inside it.
        mounts.sort_by_key(|m| m.target.matches('/').count());
        spec.mounts.extend(mounts);
        spec.devices.extend(self.devices);
        let caps = &mut spec.process.capabilities;
        for cap in self.cap_drop {
            let all = [&mut caps.bounding, &mut caps.effective, &mut caps.permitted, &mut caps.inheritable];
            for set in all {
                *set = match cap {
                    Capability::All => CapSet(0),
                    Capability::One(cap) => set.without(cap),
                };
            }
        }
        for cap in self.cap_add {
            for set in [&mut caps.bounding, &mut caps.effective, &mut caps.permitted] {
                *set = match cap {
                    Capability::All => CapSet::all(),
                    Capability::One(cap) => set.with(cap),
                };
            }
        }
        for opt in self.security_opt {
            match opt {
                SecurityOpt::SeccompUnconfined => spec.seccomp = Seccomp::Unconfined,
                SecurityOpt::AllowSetid => spec.seccomp = Seccomp::BuiltinAllowingSetid,
                SecurityOpt::SeccompProfile(path) => spec.seccomp = Seccomp::Program(compile_profile(&path)?),
                SecurityOpt::NoNewPrivileges(on) => spec.process.no_new_privileges = on,
            }
        }
        spec.process.rlimits.extend(self.ulimits);
        spec.sysctl.extend(self.sysctls);
        let _ = (self.interactive, self.rm);
        Ok(())
    }
}

/// An OCI seccomp profile (the runtime spec's `linux.seccomp` object),
/// read to at most 1 MiB and compiled now. docker's own format adds
/// `archMap` and per-call `includes`/`excludes` that decide which rules
/// apply: read as OCI those would be silently dropped, making the filter
/// looser than its author meant, so such a file is refused.
fn compile_profile(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let shown = path.display();
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(1 << 20).read_to_string(&mut text))
        .map_err(|err| format!("--security-opt seccomp={shown}: {err}"))?;
    let docker_only = ["\"archMap\"", "\"includes\"", "\"excludes\""];
    if let Some(key) = docker_only.iter().find(|key| text.contains(*key)) {
        return Err(format!(
            "--security-opt seccomp={shown}: {key} is docker's profile format, which zookeeper does not read; give an OCI linux.seccomp profile"
        ));
    }
    let profile = crate::seccomp_oci::from_json(&text)
        .map_err(|err| format!("--security-opt seccomp={shown}: {err:#}"))?;
    crate::seccomp_oci::compile(&profile).map_err(|err| format!("--security-opt seccomp={shown}: {err:#}"))
}

fn parse_sysctl(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or("expected NAME=VALUE")?;
    if name.is_empty() || name.contains('/') || name.split('.').any(|part| part.is_empty()) {
        return Err(format!("'{name}' is not a sysctl name (dot-separated, as net.ipv4.ip_forward)"));
    }
    Ok((name.into(), value.into()))
}

fn parse_hostname(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 64
        && text.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        return Err(
            "expected a hostname: letters, digits and '-', dot-separated, at most 64 characters".into()
        );
    }
    Ok(text.into())
}

fn parse_dns(text: &str) -> Result<std::net::IpAddr, String> {
    text.parse().map_err(|_| format!("'{text}' is not an IP address (a server's name would need DNS itself)"))
}

/// docker's `NAME:IP` (an IPv6 address after the first colon), or `NAME=IP`.
fn parse_add_host(text: &str) -> Result<(String, std::net::IpAddr), String> {
    let (name, address) = text.split_once('=').or_else(|| text.split_once(':')).ok_or("expected NAME:IP")?;
    if address == "host-gateway" {
        // docker's alias for the host: zookeeper keeps containers away
        // from the host's own addresses (--disable-host-loopback, --no-map-gw).
        return Err(
            "host-gateway is not offered: the container's network cannot reach the host's loopback".into()
        );
    }
    let name = parse_hostname(name)?;
    let address = address
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("'{address}' is not an IP address"))?;
    Ok((name, address))
}

/// An absolute path in the container, without `.` or `..` components.
fn parse_container_path(text: &str) -> Result<String, String> {
    let normal = text.starts_with('/')
        && text.split('/').skip(1).all(|c| c != "." && c != "..")
        && !text.contains('\0');
    if !normal {
        return Err(format!("'{text}' is not an absolute path in the container (no . or .. components)"));
    }
    let trimmed = text.trim_end_matches('/');
    let collapsed: Vec<&str> = trimmed.split('/').filter(|c| !c.is_empty()).collect();
    Ok(format!("/{}", collapsed.join("/")))
}

fn parse_user(text: &str) -> Result<String, String> {
    let (user, group) = text.split_once(':').map_or((text, None), |(u, g)| (u, Some(g)));
    if user.is_empty() || group.is_some_and(str::is_empty) || text.contains(['\n', '\0']) {
        return Err("expected USER[:GROUP], each a name or a number".into());
    }
    Ok(text.into())
}

/// `HOST:CONTAINER[:ro|rw]`, docker's -v for a host path.
fn parse_volume(text: &str) -> Result<Mount, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (host, target, mode) = match parts.as_slice() {
        [host, target] => (*host, *target, None),
        [host, target, mode] => (*host, *target, Some(*mode)),
        _ => return Err("expected HOST:CONTAINER[:ro|rw]".into()),
    };
    if !host.starts_with('/') {
        // docker takes a name without a slash as a named volume, which
        // zookeeper does not keep: say so rather than guess a directory.
        return Err(format!(
            "'{host}' is not an absolute host path (zookeeper has no named volumes; for a directory here, write $PWD/{host})"
        ));
    }
    let readonly = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(other) => return Err(format!("unknown volume option '{other}' (use ro or rw)")),
    };
    let mut mount = bind_mount(host, &parse_container_path(target)?);
    mount.readonly = readonly;
    Ok(mount)
}

fn bind_mount(source: &str, target: &str) -> Mount {
    Mount {
        kind: MountKind::Bind { source: PathBuf::from(source), recursive: true },
        target: target.into(),
        readonly: false,
        nosuid: false,
        nodev: false,
        noexec: false,
        data: None,
        if_present: false,
        options: Default::default(),
    }
}

fn tmpfs_mount(target: &str, data: Option<String>, noexec: bool) -> Mount {
    Mount { nosuid: true, nodev: true, noexec, data, ..Mount::new(MountKind::Tmpfs, target) }
}

/// docker's `HOST[:CONTAINER][:PERMISSIONS]`. A bind cannot withhold
/// reading or writing a device (its I/O does not ask the mount; that takes
/// a device cgroup, which a rootless container cannot have), so a
/// PERMISSIONS without `r` or `w` is refused rather than ignored; `m`
/// (mknod) is docker's default and accepted, but nothing in a container
/// can make device nodes (CAP_MKNOD is dropped).
fn parse_device(text: &str) -> Result<Device, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let is_permissions = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
    let (host, target, permissions) = match parts.as_slice() {
        [host] => (*host, *host, None),
        [host, last] if !last.starts_with('/') && is_permissions(last) => (*host, *host, Some(*last)),
        [host, target] => (*host, *target, None),
        [host, target, permissions] => (*host, *target, Some(*permissions)),
        _ => return Err("expected HOST[:CONTAINER][:PERMISSIONS]".into()),
    };
    if !host.starts_with('/') {
        return Err(format!("'{host}' is not an absolute host path"));
    }
    match permissions {
        Some(p) if !is_permissions(p) => {
            return Err(format!("unknown device permissions '{p}' (r, w and m)"));
        }
        Some(p) if !(p.contains('r') && p.contains('w')) => {
            return Err(format!(
                "'{p}': a bound device cannot be limited to reading or writing (that needs a device cgroup); use rw or rwm"
            ));
        }
        _ => {}
    }
    Ok(Device { source: PathBuf::from(host), target: parse_container_path(target)? })
}

/// docker's --mount for the bind and tmpfs types.
fn parse_mount(text: &str) -> Result<Mount, String> {
    let mut kind = None;
    let (mut source, mut target, mut readonly) = (None, None, false);
    let (mut size, mut mode) = (None, None);
    for field in text.split(',') {
        let (key, value) = field.split_once('=').map_or((field, None), |(k, v)| (k, Some(v)));
        match (key, value) {
            ("type", Some(value)) => kind = Some(value),
            ("source" | "src", Some(value)) => source = Some(value),
            ("target" | "destination" | "dst", Some(value)) => target = Some(value),
            ("readonly" | "ro", None | Some("true" | "1")) => readonly = true,
            ("readonly" | "ro", Some("false" | "0")) => readonly = false,
            ("tmpfs-size", Some(value)) => size = Some(crate::cli::parse_memory(value)?),
            ("tmpfs-mode", Some(value)) => {
                mode = Some(
                    u32::from_str_radix(value, 8)
                        .map_err(|_| format!("tmpfs-mode '{value}' is not octal"))?,
                )
            }
            _ => return Err(format!("unknown or incomplete --mount field '{field}'")),
        }
    }
    let target = parse_container_path(target.ok_or("--mount needs target=")?)?;
    let mut mount = match kind {
        Some("bind") => {
            let source = source.ok_or("type=bind needs source=")?;
            if !source.starts_with('/') {
                return Err(format!("source '{source}' is not an absolute host path"));
            }
            bind_mount(source, &target)
        }
        Some("tmpfs") => {
            if source.is_some() {
                return Err("type=tmpfs takes no source".into());
            }
            let mut data = Vec::new();
            if let Some(size) = size {
                data.push(format!("size={size}"));
            }
            if let Some(mode) = mode {
                data.push(format!("mode={mode:o}"));
            }
            tmpfs_mount(&target, (!data.is_empty()).then(|| data.join(",")), true)
        }
        Some(other) => return Err(format!("type={other} is not supported (bind or tmpfs)")),
        None => return Err("--mount needs type=bind or type=tmpfs".into()),
    };
    mount.readonly = readonly;
    Ok(mount)
}

/// `PATH[:OPTIONS]`: tmpfs options as mount(8) takes them, plus ro, exec,
/// suid, dev to lift the nosuid, nodev, noexec defaults.
fn parse_tmpfs(text: &str) -> Result<Mount, String> {
    let (path, options) = text.split_once(':').map_or((text, None), |(p, o)| (p, Some(o)));
    let mut mount = tmpfs_mount(&parse_container_path(path)?, None, true);
    let mut data = Vec::new();
    for option in options.into_iter().flat_map(|o| o.split(',')) {
        match option {
            _ if mount.set_flag(option) => {}
            _ if ["size=", "mode=", "nr_inodes=", "uid=", "gid="].iter().any(|p| option.starts_with(p)) => {
                data.push(option.to_string())
            }
            _ => return Err(format!("unknown tmpfs option '{option}'")),
        }
    }
    mount.data = (!data.is_empty()).then(|| data.join(","));
    Ok(mount)
}

fn parse_capability(text: &str) -> Result<Capability, String> {
    if text.eq_ignore_ascii_case("all") {
        return Ok(Capability::All);
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
    name.parse::<caps::Capability>()
        .map(Capability::One)
        .map_err(|_| format!("unknown capability '{text}' (see capabilities(7): CHOWN, NET_RAW, ...)"))
}

fn parse_security_opt(text: &str) -> Result<SecurityOpt, String> {
    match text {
        "seccomp=unconfined" | "seccomp:unconfined" => Ok(SecurityOpt::SeccompUnconfined),
        "allow-setid" => Ok(SecurityOpt::AllowSetid),
        "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true" => {
            Ok(SecurityOpt::NoNewPrivileges(true))
        }
        "no-new-privileges=false" | "no-new-privileges:false" => Ok(SecurityOpt::NoNewPrivileges(false)),
        _ if text.starts_with("seccomp=") || text.starts_with("seccomp:") => {
            Ok(SecurityOpt::SeccompProfile(PathBuf::from(&text["seccomp=".len()..])))
        }
        _ if text.starts_with("apparmor") || text.starts_with("label") => {
            Err(format!("'{text}': zookeeper uses neither AppArmor nor SELinux labels"))
        }
        _ => Err(format!("unknown security option '{text}' (seccomp=unconfined, no-new-privileges[=false])")),
    }
}

/// docker's --ulimit names, and the kernel's resource numbers.
const ULIMITS: [(&str, u32); 16] = [
    ("as", libc::RLIMIT_AS),
    ("core", libc::RLIMIT_CORE),
    ("cpu", libc::RLIMIT_CPU),
    ("data", libc::RLIMIT_DATA),
    ("fsize", libc::RLIMIT_FSIZE),
    ("locks", libc::RLIMIT_LOCKS),
    ("memlock", libc::RLIMIT_MEMLOCK),
    ("msgqueue", libc::RLIMIT_MSGQUEUE),
    ("nice", libc::RLIMIT_NICE),
    ("nofile", libc::RLIMIT_NOFILE),
    ("nproc", libc::RLIMIT_NPROC),
    ("rss", libc::RLIMIT_RSS),
    ("rtprio", libc::RLIMIT_RTPRIO),
    ("rttime", libc::RLIMIT_RTTIME),
    ("sigpending", libc::RLIMIT_SIGPENDING),
    ("stack", libc::RLIMIT_STACK),
];

fn parse_ulimit(text: &str) -> Result<Rlimit, String> {
    let (name, values) = text.split_once('=').ok_or("expected NAME=SOFT[:HARD]")?;
    let resource = ULIMITS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, resource)| *resource)
        .ok_or_else(|| format!("unknown limit '{name}' (nofile, nproc, core, stack, ...)"))?;
    let value = |text: &str| -> Result<u64, String> {
        match text {
            "unlimited" | "-1" => Ok(libc::RLIM_INFINITY),
            _ => text.parse().map_err(|_| format!("'{text}' is not a number or 'unlimited'")),
        }
    };
    let (soft, hard) = match values.split_once(':') {
        Some((soft, hard)) => (value(soft)?, value(hard)?),
        None => (value(values)?, value(values)?),
    };
    if soft > hard {
        return Err(format!("the soft limit of {name} is above its hard limit"));
    }
    Ok(Rlimit { resource, soft, hard })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes() {
        let m = parse_volume("/srv/data:/data:ro").unwrap();
        assert_eq!(m.target, "/data");
        assert!(m.readonly);
        assert!(
            matches!(m.kind, MountKind::Bind { ref source, recursive: true } if source == &PathBuf::from("/srv/data"))
        );
        assert!(parse_volume("data:/data").unwrap_err().contains("not an absolute host path"));
        assert!(parse_volume("/a:b").unwrap_err().contains("not an absolute path in the container"));
        assert!(parse_volume("/a:/b:z").unwrap_err().contains("unknown volume option"));
        assert!(parse_volume("/a:/../b").is_err());
        assert_eq!(parse_volume("/a:/b//c/").unwrap().target, "/b/c");
    }

    #[test]
    fn mounts_and_tmpfs() {
        let m = parse_mount("type=tmpfs,target=/cache,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        assert_eq!(m.data.as_deref(), Some("size=67108864,mode=1770"));
        assert!(m.noexec && m.nosuid && m.nodev);
        let m = parse_mount("type=bind,source=/x,target=/y,readonly").unwrap();
        assert!(m.readonly);
        assert!(parse_mount("type=volume,target=/y").unwrap_err().contains("not supported"));
        assert!(parse_mount("type=bind,target=/y").unwrap_err().contains("source="));
        let t = parse_tmpfs("/run:size=1m,mode=755,exec").unwrap();
        assert_eq!(t.data.as_deref(), Some("size=1m,mode=755"));
        assert!(!t.noexec);
        assert!(parse_tmpfs("/run:bogus").unwrap_err().contains("unknown tmpfs option"));
    }

    #[test]
    fn capabilities_and_options() {
        assert_eq!(parse_capability("net_raw"), Ok(Capability::One(caps::Capability::CAP_NET_RAW)));
        assert_eq!(parse_capability("CAP_SYS_ADMIN"), Ok(Capability::One(caps::Capability::CAP_SYS_ADMIN)));
        assert_eq!(parse_capability("all"), Ok(Capability::All));
        assert!(parse_capability("FLY").unwrap_err().contains("unknown capability"));
        assert_eq!(parse_security_opt("no-new-privileges=false"), Ok(SecurityOpt::NoNewPrivileges(false)));
        assert_eq!(parse_security_opt("seccomp=/x.json"), Ok(SecurityOpt::SeccompProfile("/x.json".into())));
    }

    #[test]
    fn ulimits() {
        assert_eq!(
            parse_ulimit("nofile=100:200"),
            Ok(Rlimit { resource: libc::RLIMIT_NOFILE, soft: 100, hard: 200 })
        );
        assert_eq!(parse_ulimit("core=0").unwrap().hard, 0);
        assert_eq!(parse_ulimit("nproc=unlimited").unwrap().soft, libc::RLIM_INFINITY);
        assert!(parse_ulimit("nofile=2:1").unwrap_err().contains("above its hard limit"));
        assert!(parse_ulimit("bogus=1").unwrap_err().contains("unknown limit"));
    }

    #[test]
    fn devices() {
        let d = parse_device("/dev/zero").unwrap();
        assert_eq!((d.source.to_str().unwrap(), d.target.as_str()), ("/dev/zero", "/dev/zero"));
        assert_eq!(parse_device("/dev/zero:rwm").unwrap().target, "/dev/zero");
        assert_eq!(parse_device("/dev/zero:/dev/z").unwrap().target, "/dev/z");
        assert_eq!(parse_device("/dev/zero:/dev/z:rw").unwrap().target, "/dev/z");
        assert!(parse_device("/dev/zero:/dev/z:r").unwrap_err().contains("use rw or rwm"));
        assert!(parse_device("/dev/zero:w").unwrap_err().contains("use rw or rwm"));
        assert!(parse_device("/dev/zero:/dev/z:x").unwrap_err().contains("unknown device permissions"));
        assert!(parse_device("zero").unwrap_err().contains("not an absolute host path"));
        assert!(parse_device("/dev/zero:z").unwrap_err().contains("not an absolute path in the container"));
        assert!(parse_device("/a:/b:rw:x").is_err());
    }

    #[test]
    fn dns_and_hosts() {
        assert_eq!(parse_dns("192.0.2.53"), Ok([192, 0, 2, 53].into()));
        assert!(parse_dns("dns.example").is_err());
        let (name, ip) = parse_add_host("db:10.1.2.3").unwrap();
        assert_eq!((name.as_str(), ip.to_string().as_str()), ("db", "10.1.2.3"));
        assert_eq!(parse_add_host("v6:::1").unwrap().1.to_string(), "::1");
        assert_eq!(parse_add_host("v6=[2001:db8::1]").unwrap().1.to_string(), "2001:db8::1");
        assert!(parse_add_host("db").is_err());
        assert!(parse_add_host("db:nowhere").is_err());
        assert!(parse_add_host("-bad:1.2.3.4").is_err());
        assert!(parse_add_host("h:host-gateway").unwrap_err().contains("host-gateway"));
    }

    #[test]
    fn hostnames_and_paths() {
        assert!(parse_hostname("web-1.local").is_ok());
        assert!(parse_hostname("-x").is_err());
        assert!(parse_hostname("").is_err());
        assert_eq!(parse_container_path("/srv/"), Ok("/srv".into()));
        assert!(parse_container_path("srv").is_err());
    }
}
