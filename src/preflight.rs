//! `--check`: what this host lacks for rootless containers, and the fix.
//!
//! Each check prints `ok`, or `missing` with what it breaks and how to fix
//! it. zookeeper exits 0 only when nothing is missing.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::idmap::{Caller, IdKind, find_in_path, parse_subids, subid_path};

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    pub what: String,
    /// For a missing item: what breaks and how to fix it.
    pub fix: String,
}

fn ok(what: impl Into<String>) -> Finding {
    Finding { ok: true, what: what.into(), fix: String::new() }
}

fn missing(what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding { ok: false, what: what.into(), fix: fix.into() }
}

/// Runs every check for the calling user.
pub fn check() -> Vec<Finding> {
    let caller = Caller::current();
    let name = caller.name.clone().unwrap_or_else(|| caller.uid.to_string());
    let mut findings = vec![user_namespaces()];
    let read = |kind| std::fs::read_to_string(subid_path(kind)).unwrap_or_default();
    let proposal = match free_range(&[&read(IdKind::User), &read(IdKind::Group)]) {
        Some(start) => {
            let end = start + (SUBID_COUNT - 1);
            format!("fix: usermod --add-subuids {start}-{end} --add-subgids {start}-{end} {name}")
        }
        None => format!("fix: give {name} 65536 ids in /etc/subuid and /etc/subgid that no one else has"),
    };
    for kind in [IdKind::User, IdKind::Group] {
        let (file, helper) = match kind {
            IdKind::User => ("/etc/subuid", "newuidmap"),
            IdKind::Group => ("/etc/subgid", "newgidmap"),
        };
        let ranges = parse_subids(&read(kind), caller.name.as_deref(), caller.uid);
        findings.push(match ranges.first() {
            Some((start, count)) => ok(format!("{file}: {name} has {start}:{count}")),
            None if caller.uid == 0 => ok(format!("{file}: no range for root (container root is host root)")),
            None => missing(
                format!("{file}: no range for {name}"),
                format!("only root is mapped in containers; {proposal}"),
            ),
        });
        findings.push(set_id_helper(helper));
    }
    findings.push(cgroups(caller.uid));
    findings.push(tun());
    findings.push(match find_in_path("slirp4netns") {
        Some(path) => ok(format!("slirp4netns: {}", path.display())),
        None => missing("slirp4netns: not found", "-n needs it; fix: apt install slirp4netns"),
    });
    findings
}

/// Where useradd starts subordinate ids (login.defs' SUB_UID_MIN), and
/// how many it gives (SUB_UID_COUNT).
const SUBID_MIN: u32 = 100_000;
const SUBID_COUNT: u32 = 65_536;

/// The first block of [`SUBID_COUNT`] ids from [`SUBID_MIN`] up that no
/// range of anyone's in `files` (/etc/subuid and /etc/subgid, whose ids a
/// proposal must leave to their owners in both) overlaps: one number for
/// both files. `None` if the id space is full.
fn free_range(files: &[&str]) -> Option<u32> {
    let mut taken: Vec<(u64, u64)> = files
        .iter()
        .flat_map(|text| text.lines())
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let (_owner, start, count) = (fields.next()?, fields.next()?, fields.next()?);
            let (start, count) = (start.parse::<u64>().ok()?, count.parse::<u64>().ok()?);
            Some((start, start + count))
        })
        .collect();
    taken.sort();
    let mut start = u64::from(SUBID_MIN);
    for (from, to) in taken {
        if from >= start + u64::from(SUBID_COUNT) {
            break;
        }
        start = start.max(to);
    }
    let end = start + u64::from(SUBID_COUNT);
    // The largest id is u32::MAX - 1: (uid_t)-1 means "no id".
    (end <= u64::from(u32::MAX)).then_some(start as u32)
}

/// The report as text, and whether all is well.
pub fn report(findings: &[Finding]) -> (String, bool) {
    let mut text = String::new();
    for f in findings {
        if f.ok {
            text.push_str(&format!("ok       {}\n", f.what));
        } else {
            text.push_str(&format!("missing  {}: {}\n", f.what, f.fix));
        }
    }
    (text, findings.iter().all(|f| f.ok))
}

/// Tries it: a child process creates a user namespace. Whatever forbids it
/// (a sysctl, AppArmor's restriction, a container we run in) shows here.
fn user_namespaces() -> Finding {
    // SAFETY: zookeeper is single-threaded here; the child only calls
    // unshare and _exit.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let code = match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: leave the forked copy without running destructors.
            unsafe { libc::_exit(code) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => match nix::sys::wait::waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => {
                ok("user namespaces: an unprivileged process may create one")
            }
            _ => {
                let apparmor =
                    std::fs::read_to_string("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
                        .is_ok_and(|v| v.trim() == "1");
                let fix = if apparmor {
                    "AppArmor restricts them; fix: sysctl kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile with 'userns,' for zookeeper"
                } else {
                    "fix: sysctl user.max_user_namespaces=15000 (and kernel.unprivileged_userns_clone=1 where it exists)"
                };
                missing("user namespaces: this user may not create one", fix)
            }
        },
        Err(err) => missing(format!("user namespaces: could not test ({err})"), "fork failed"),
    }
}

/// newuidmap/newgidmap must be set-user-id root (or carry file capabilities).
fn set_id_helper(helper: &str) -> Finding {
    let Some(path) = find_in_path(helper) else {
        return missing(
            format!("{helper}: not found"),
            "only root is mapped in containers; fix: apt install uidmap",
        );
    };
    let Ok(meta) = path.metadata() else {
        return missing(format!("{helper}: unreadable"), "check its permissions");
    };
    let setuid_root = meta.permissions().mode() & 0o4000 != 0 && meta.uid() == 0;
    let has_caps = nix::sys::stat::stat(&path).is_ok() && has_file_capabilities(&path);
    if setuid_root || has_caps {
        ok(format!(
            "{helper}: {} ({})",
            path.display(),
            if setuid_root { "set-user-id root" } else { "file capabilities" }
        ))
    } else {
        missing(
            format!("{helper}: {} is neither set-user-id root nor capable", path.display()),
            "fix: apt install --reinstall uidmap",
        )
    }
}

fn has_file_capabilities(path: &Path) -> bool {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: a size query (null buffer, size 0) of one attribute by name.
    unsafe { libc::getxattr(c_path.as_ptr(), c"security.capability".as_ptr(), std::ptr::null_mut(), 0) > 0 }
}

fn cgroups(uid: u32) -> Finding {
    let v2 = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
    if !v2 {
        return if uid == 0 {
            ok("cgroups: v1; limits work as root")
        } else {
            missing(
                "cgroups: v1 for the controllers",
                "-m, -c and -p need cgroup v2 rootless; fix: boot with systemd.unified_cgroup_hierarchy=1",
            )
        };
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let path = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or("/");
    let parent = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let parent = if path == "/" { parent } else { parent.parent().map(Path::to_path_buf).unwrap_or(parent) };
    let controllers = std::fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
    let wanted = ["memory", "cpu", "pids"];
    let lacking: Vec<&str> =
        wanted.iter().copied().filter(|c| !controllers.split_whitespace().any(|x| x == *c)).collect();
    let writable = nix::unistd::access(&parent.join("cgroup.procs"), nix::unistd::AccessFlags::W_OK).is_ok();
    let session = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
        || std::env::var("XDG_RUNTIME_DIR").is_ok_and(|d| Path::new(&d).join("bus").exists());
    if writable && lacking.is_empty() {
        ok(format!("cgroups: v2, {} is delegated with memory, cpu and pids", parent.display()))
    } else if uid != 0 && session {
        ok("cgroups: v2, limits through the user's systemd (a delegated scope over D-Bus)")
    } else if !lacking.is_empty() && writable {
        missing(
            format!("cgroups: v2, {} lacks {}", parent.display(), lacking.join(" ")),
            "fix: delegate them (systemd: Delegate=yes on user@.service)",
        )
    } else {
        missing(
            "cgroups: v2, but no writable cgroup and no user session",
            "fix: log in through systemd (pam_systemd) or delegate a subtree",
        )
    }
}

fn tun() -> Finding {
    let usable =
        nix::unistd::access("/dev/net/tun", nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK)
            .is_ok();
    if usable {
        ok("/dev/net/tun: usable")
    } else {
        missing(
            "/dev/net/tun: not usable by this user",
            "-n needs it; fix: chmod 0666 /dev/net/tun (udev: a rule with MODE=\"0666\")",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::free_range;

    #[test]
    fn a_free_range_overlaps_no_one() {
        assert_eq!(free_range(&["", ""]), Some(100_000));
        assert_eq!(free_range(&["a:100000:65536\n", "a:100000:65536\n"]), Some(165_536));
        // Taken in either file; unsorted; a gap too small is skipped.
        let uids = "b:300000:10\na:100000:65536\n# comment\nbad line\n";
        let gids = "a:100000:65536\nc:170000:100000\n";
        assert_eq!(free_range(&[uids, gids]), Some(300_010));
        // A gap that fits is used.
        assert_eq!(free_range(&["a:100000:65536\nb:300000:65536\n", ""]), Some(165_536));
        // Ranges below the minimum do not matter.
        assert_eq!(free_range(&["a:1000:50000\n", ""]), Some(100_000));
        // Full.
        assert_eq!(free_range(&["a:100000:4294867295\n", ""]), None);
    }
}
