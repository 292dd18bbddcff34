//! User and group id maps: who the container's ids are on the host.
//!
//! Rootless (SPEC.md 3.2): container root is the caller, container ids 1..N
//! are the caller's /etc/subuid and /etc/subgid ranges, installed by the
//! set-id helpers newuidmap/newgidmap. Without a range or the helpers, only
//! root is mapped (written directly; setgroups must then be denied).
//! Real root: its own subordinate range when it has one, so container root is
//! not host root; otherwise the identity map, as rootful docker and podman.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// `inside..inside+count` in the container is `outside..outside+count` on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    User,
    Group,
}

impl IdKind {
    fn helper(self) -> &'static str {
        match self {
            IdKind::User => "newuidmap",
            IdKind::Group => "newgidmap",
        }
    }
    fn proc_file(self) -> &'static str {
        match self {
            IdKind::User => "uid_map",
            IdKind::Group => "gid_map",
        }
    }
    fn subid_file(self) -> &'static str {
        match self {
            IdKind::User => "/etc/subuid",
            IdKind::Group => "/etc/subgid",
        }
    }
}

/// One map (uid or gid) and how it gets installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    pub kind: IdKind,
    pub ranges: Vec<IdRange>,
    /// The set-id helper to run, or `None` to write /proc/PID/*_map directly.
    pub helper: Option<PathBuf>,
}

/// Both maps for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMapPlan {
    pub uid: Map,
    pub gid: Map,
    /// Said once on stderr when the container gets less than a full range.
    pub notice: Option<String>,
    /// The kernel refuses setgroups(2) in a user namespace whose gid map an
    /// unprivileged process wrote itself; the container must then keep its
    /// (unmapped) supplementary groups.
    pub setgroups_allowed: bool,
}

/// Who runs zookeeper.
#[derive(Debug, Clone)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub name: Option<String>,
}

impl Caller {
    pub fn current() -> Caller {
        let uid = nix::unistd::getuid();
        // Not the name service (getpwuid): zookeeper is linked statically,
        // and a static glibc cannot load the name service's modules. Local
        // users, the ones /etc/subuid names, are in /etc/passwd; for others
        // (a directory service's), the login name the session was given.
        // That name only chooses which range to ask newuidmap for, and
        // newuidmap grants a range only to its owner.
        let name = std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|passwd| name_in_passwd(&passwd, uid.as_raw()))
            .or_else(|| {
                ["LOGNAME", "USER"]
                    .into_iter()
                    .filter_map(|key| std::env::var(key).ok())
                    .find(|name| !name.is_empty() && !name.contains([':', '\n']))
            });
        Caller { uid: uid.as_raw(), gid: nix::unistd::getgid().as_raw(), name }
    }
}

/// The login name of `uid` in `/etc/passwd`-format `text`: the first entry,
/// as the name service's "files" source answers.
pub fn name_in_passwd(text: &str, uid: u32) -> Option<String> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let entry_uid = fields.nth(1)?.parse::<u32>().ok()?;
        (entry_uid == uid && !name.is_empty() && !name.starts_with(['+', '-', '#'])).then(|| name.to_owned())
    })
}

/// Where the subordinate-id files are. Tests point root at a range without
/// editing the host's files; the set-id helpers always check the real files,
/// so this grants a rootless caller nothing. Debug builds only: a release
/// build takes nothing from its caller's environment that decides whose
/// ids a container has (a privileged wrapper that passes its user's
/// environment on would otherwise let that user choose root's map).
pub fn subid_path(kind: IdKind) -> PathBuf {
    #[cfg(debug_assertions)]
    {
        let var = match kind {
            IdKind::User => "ZOOKEEPER_SUBUID_FILE",
            IdKind::Group => "ZOOKEEPER_SUBGID_FILE",
        };
        if let Some(path) = std::env::var_os(var) {
            return PathBuf::from(path);
        }
    }
    kind.subid_file().into()
}

/// The ranges of `/etc/subuid`-format `text` that belong to the caller, who
/// may be named by login name or by number (subuid(5)).
pub fn parse_subids(text: &str, name: Option<&str>, id: u32) -> Vec<(u32, u32)> {
    let id = id.to_string();
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split(':');
            let (owner, start, count) = (fields.next()?, fields.next()?, fields.next()?);
            if fields.next().is_some() || !(Some(owner) == name || owner == id) {
                return None;
            }
            let (start, count) = (start.parse::<u32>().ok()?, count.parse::<u32>().ok()?);
            (count > 0 && start.checked_add(count - 1).is_some()).then_some((start, count))
        })
        .collect()
}

/// Lays `subids` out one after the other from container id `first`.
fn stack_ranges(first: u32, subids: &[(u32, u32)]) -> Vec<IdRange> {
    let mut inside = first;
    let mut ranges = Vec::new();
    for &(outside, count) in subids {
        let room = u32::MAX - inside;
        let count = count.min(room);
        if count == 0 {
            break;
        }
        ranges.push(IdRange { inside, outside, count });
        inside += count;
    }
    ranges
}

/// Decides both maps. Pure: the subordinate-id files' texts and the helper
/// look-up are passed in.
pub fn plan(
    caller: &Caller,
    subuid_text: &str,
    subgid_text: &str,
    find_helper: impl Fn(&str) -> Option<PathBuf>,
) -> IdMapPlan {
    let name = caller.name.as_deref();
    let mut missing = Vec::new();
    let mut map_for = |kind: IdKind, own: u32, text: &str| -> Map {
        let subids = parse_subids(text, name, caller.uid);
        if caller.uid == 0 {
            // Root may write any map itself; no helper needed.
            let ranges = if subids.is_empty() {
                vec![IdRange { inside: 0, outside: 0, count: u32::MAX }]
            } else {
                stack_ranges(0, &subids)
            };
            return Map { kind, ranges, helper: None };
        }
        let root_only = vec![IdRange { inside: 0, outside: own, count: 1 }];
        if subids.is_empty() {
            missing.push(format!("no range for {} in {}", name.unwrap_or("this user"), kind.subid_file()));
            return Map { kind, ranges: root_only, helper: None };
        }
        match find_helper(kind.helper()) {
            Some(helper) => {
                let mut ranges = root_only;
                ranges.extend(stack_ranges(1, &subids));
                Map { kind, ranges, helper: Some(helper) }
            }
            None => {
                missing.push(format!("{} is not installed", kind.helper()));
                Map { kind, ranges: root_only, helper: None }
            }
        }
    };
    let uid = map_for(IdKind::User, caller.uid, subuid_text);
    let gid = map_for(IdKind::Group, caller.gid, subgid_text);
    let notice = (!missing.is_empty()).then(|| {
        format!(
            "note: only root is mapped in the container ({}); see 'Id maps' in the README",
            missing.join(", ")
        )
    });
    let setgroups_allowed = caller.uid == 0 || gid.helper.is_some();
    IdMapPlan { uid, gid, notice, setgroups_allowed }
}

/// podman's `--userns keep-id` for one kind of id: the caller's own id `own`
/// is the same id in the container, and the subordinate ids fill every
/// other id from 0 up (container root included), so container root is not
/// the caller. `None` without a subordinate range to do it with.
pub fn keep_id_ranges(own: u32, subids: &[(u32, u32)]) -> Option<Vec<IdRange>> {
    let total: u64 = subids.iter().map(|(_, count)| u64::from(*count)).sum();
    if total <= u64::from(own) {
        // The subordinate ids must reach past `own` to give the container
        // every id below it, root first.
        return None;
    }
    let mut ranges = vec![IdRange { inside: own, outside: own, count: 1 }];
    let mut inside: u32 = 0;
    for &(first, count) in subids {
        let (mut outside, mut left) = (first, count);
        while left > 0 {
            if inside == own {
                inside += 1;
            }
            // Up to `own` while below it, then to the end of the id space.
            let room = if inside < own { own - inside } else { u32::MAX - inside };
            if room == 0 {
                break;
            }
            let chunk = left.min(room);
            ranges.push(IdRange { inside, outside, count: chunk });
            (inside, outside, left) = (inside + chunk, outside + chunk, left - chunk);
        }
    }
    ranges.sort_by_key(|r| r.inside);
    Some(ranges)
}

impl IdMapPlan {
    /// The maps of `--userns keep-id` for the current caller (see
    /// [`keep_id_ranges`]), from the host's subordinate-id files.
    pub fn keep_id() -> Result<(Vec<IdRange>, Vec<IdRange>)> {
        let caller = Caller::current();
        if caller.uid == 0 {
            bail!("--userns keep-id is for a user: root's own id is container root already");
        }
        let name = caller.name.as_deref();
        let ranges = |kind: IdKind, own: u32| -> Result<Vec<IdRange>> {
            let text = std::fs::read_to_string(subid_path(kind)).unwrap_or_default();
            keep_id_ranges(own, &parse_subids(&text, name, caller.uid)).with_context(|| {
                format!(
                    "--userns keep-id needs a subordinate range in {} larger than your id {own}",
                    kind.subid_file()
                )
            })
        };
        Ok((ranges(IdKind::User, caller.uid)?, ranges(IdKind::Group, caller.gid)?))
    }

    /// Works out the plan for the current caller from the host's files.
    pub fn for_current_caller() -> IdMapPlan {
        let read = |kind| std::fs::read_to_string(subid_path(kind)).unwrap_or_default();
        plan(&Caller::current(), &read(IdKind::User), &read(IdKind::Group), find_in_path)
    }

    /// The plan for maps given whole (an OCI config's): root writes them
    /// itself; anyone else hands them to newuidmap/newgidmap, which grant
    /// only the caller's own id and subordinate ranges, unless they map
    /// nothing but the caller's own id, which the kernel lets it write.
    pub fn explicit(uid: Vec<IdRange>, gid: Vec<IdRange>) -> Result<IdMapPlan> {
        let caller = Caller::current();
        let map = |kind: IdKind, ranges: Vec<IdRange>, own: u32| -> Result<Map> {
            if ranges.is_empty() {
                bail!("the {} map is empty", kind.proc_file());
            }
            let own_only = ranges.len() == 1 && ranges[0].outside == own && ranges[0].count == 1;
            let helper = match caller.uid == 0 || own_only {
                true => None,
                false => Some(find_in_path(kind.helper()).with_context(|| {
                    format!("mapping more than your own id needs {}, which is not installed", kind.helper())
                })?),
            };
            Ok(Map { kind, ranges, helper })
        };
        let uid = map(IdKind::User, uid, caller.uid)?;
        let gid = map(IdKind::Group, gid, caller.gid)?;
        let setgroups_allowed = caller.uid == 0 || gid.helper.is_some();
        Ok(IdMapPlan { uid, gid, notice: None, setgroups_allowed })
    }

    /// Starts installing both maps for the process `pid`: the set-id
    /// helpers run in parallel, and zookeeper may do other set-up while they
    /// do; [`Installing::finish`] waits for them.
    pub fn start_install(&self, pid: i32) -> Result<Installing<'_>> {
        let uid_helper = self.uid.spawn_helper(pid)?;
        let gid_helper = self.gid.spawn_helper(pid);
        Ok(Installing { plan: self, pid, uid_helper, gid_helper })
    }
}

/// Id maps on their way in; the helpers are running.
pub struct Installing<'a> {
    plan: &'a IdMapPlan,
    pid: i32,
    uid_helper: Option<std::process::Child>,
    gid_helper: Result<Option<std::process::Child>>,
}

impl Installing<'_> {
    /// Waits for the helpers (or writes the maps that need none); both
    /// helpers are waited for even when one fails.
    pub fn finish(self) -> Result<()> {
        let Installing { plan, pid, uid_helper, gid_helper } = self;
        let uid_result = match uid_helper {
            Some(child) => plan.uid.finish_helper(child),
            None => plan.uid.write_directly(pid, !plan.setgroups_allowed),
        };
        let gid_result = match gid_helper {
            Ok(Some(child)) => plan.gid.finish_helper(child),
            Ok(None) => plan.gid.write_directly(pid, !plan.setgroups_allowed),
            Err(err) => Err(err),
        };
        uid_result.and(gid_result)
    }
}

impl Map {
    /// The text the kernel's uid_map/gid_map file takes.
    pub fn proc_text(&self) -> String {
        self.ranges.iter().fold(String::new(), |mut text, r| {
            let _ = writeln!(text, "{} {} {}", r.inside, r.outside, r.count);
            text
        })
    }

    fn spawn_helper(&self, pid: i32) -> Result<Option<std::process::Child>> {
        let Some(helper) = &self.helper else {
            return Ok(None);
        };
        let mut command = Command::new(helper);
        command.arg(pid.to_string());
        for r in &self.ranges {
            command.args([r.inside.to_string(), r.outside.to_string(), r.count.to_string()]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}", helper.display()))?;
        Ok(Some(child))
    }

    fn finish_helper(&self, mut child: std::process::Child) -> Result<()> {
        let mut complaint = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = stderr.read_to_string(&mut complaint);
        }
        let status = child.wait().with_context(|| format!("waiting for {}", self.kind.helper()))?;
        if !status.success() {
            let complaint = complaint.lines().last().unwrap_or("").trim();
            bail!(
                "{} failed ({status}){}{}; check {} for this user",
                self.kind.helper(),
                if complaint.is_empty() { "" } else { ": " },
                complaint,
                self.kind.subid_file()
            );
        }
        Ok(())
    }

    fn write_directly(&self, pid: i32, deny_setgroups: bool) -> Result<()> {
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        if self.kind == IdKind::Group && deny_setgroups {
            write_proc(&proc_dir.join("setgroups"), "deny")?;
        }
        write_proc(&proc_dir.join(self.kind.proc_file()), &self.proc_text())
    }
}

fn write_proc(path: &Path, text: &str) -> Result<()> {
    // One write(2): the kernel takes an id map only whole.
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Looks `program` up in the caller's PATH, as a shell would.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| {
        candidate.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_passwd_lines() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n+nis::::::\n#x:x:1001:1\nzootest:x:1001:1001::/home/zootest:/bin/sh\nother:x:1001:1::/:/bin/sh\nbad:x:notanumber:1::/:/bin/sh\n";
        assert_eq!(name_in_passwd(passwd, 0).as_deref(), Some("root"));
        assert_eq!(name_in_passwd(passwd, 1001).as_deref(), Some("zootest"));
        assert_eq!(name_in_passwd(passwd, 1002), None);
        assert_eq!(name_in_passwd("", 0), None);
    }

    fn alice() -> Caller {
        Caller { uid: 1000, gid: 1001, name: Some("alice".into()) }
    }
    fn helpers(name: &str) -> Option<PathBuf> {
        Some(PathBuf::from(format!("/usr/bin/{name}")))
    }
    fn r(inside: u32, outside: u32, count: u32) -> IdRange {
        IdRange { inside, outside, count }
    }

    #[test]
    fn subid_lines_match_by_name_or_number() {
        let text =
            "# comment\nbob:1:2\nalice:100000:65536\n\n1000:300000:10\nalice:bad:1\nalice:5:0\nalice:1:2:3\n";
        assert_eq!(parse_subids(text, Some("alice"), 1000), [(100000, 65536), (300000, 10)]);
        assert_eq!(parse_subids(text, None, 1000), [(300000, 10)]);
        assert!(parse_subids(text, Some("carol"), 7).is_empty());
        assert!(parse_subids("alice:4294967295:2", Some("alice"), 1).is_empty());
    }

    #[test]
    fn rootless_with_ranges_maps_root_then_the_ranges() {
        let plan = plan(&alice(), "alice:100000:65536\nalice:300000:10", "alice:200000:65536", helpers);
        assert_eq!(plan.uid.ranges, [r(0, 1000, 1), r(1, 100000, 65536), r(65537, 300000, 10)]);
        assert_eq!(plan.gid.ranges, [r(0, 1001, 1), r(1, 200000, 65536)]);
        assert_eq!(plan.uid.helper, Some("/usr/bin/newuidmap".into()));
        assert_eq!(plan.uid.proc_text(), "0 1000 1\n1 100000 65536\n65537 300000 10\n");
        assert_eq!(plan.notice, None);
    }

    #[test]
    fn rootless_without_range_or_helper_maps_root_alone_and_says_so() {
        let plan1 = plan(&alice(), "", "alice:200000:10", helpers);
        assert_eq!(plan1.uid, Map { kind: IdKind::User, ranges: vec![r(0, 1000, 1)], helper: None });
        assert!(plan1.gid.helper.is_some());
        assert!(plan1.notice.unwrap().contains("no range for alice in /etc/subuid"));

        let plan2 = plan(&alice(), "alice:1:2", "alice:1:2", |_| None);
        assert!(plan2.uid.helper.is_none() && plan2.gid.helper.is_none());
        let notice = plan2.notice.unwrap();
        assert!(notice.contains("newuidmap is not installed") && notice.contains("newgidmap"), "{notice}");
        assert!(!notice.contains('\n'));
        assert!(!plan2.setgroups_allowed);
    }

    #[test]
    fn root_uses_its_range_or_the_identity() {
        let root = Caller { uid: 0, gid: 0, name: Some("root".into()) };
        let with = plan(&root, "root:500000:65536", "0:600000:1000", |_| None);
        assert_eq!(with.uid.ranges, [r(0, 500000, 65536)]);
        assert_eq!(with.gid.ranges, [r(0, 600000, 1000)]);
        let without = plan(&root, "", "", helpers);
        assert_eq!(without.uid.ranges, [r(0, 0, u32::MAX)]);
        assert!(without.uid.helper.is_none() && without.notice.is_none());
    }

    #[test]
    fn stacked_ranges_never_overflow() {
        let ranges = stack_ranges(1, &[(10, u32::MAX - 10), (5, 5)]);
        assert_eq!(ranges, [r(1, 10, u32::MAX - 10), r(u32::MAX - 9, 5, 5)]);
        assert_eq!(stack_ranges(u32::MAX, &[(1, 1)]), []);
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_subid_file_yields_only_the_callers_valid_ranges(text in "([a-z0-9]{0,6}:[0-9]{0,11}:[0-9]{0,11}\n|.{0,20}\n){0,12}") {
            for (start, count) in parse_subids(&text, Some("alice"), 1000) {
                prop_assert!(count > 0);
                prop_assert!(start.checked_add(count - 1).is_some());
                let line = format!("{start}:{count}");
                prop_assert!(text.lines().any(|l| (l.starts_with("alice:") || l.starts_with("1000:")) && l.ends_with(&line)));
            }
        }

        #[test]
        fn plans_never_overlap_inside(ranges in proptest::collection::vec((1u32..u32::MAX, 1u32..u32::MAX), 0..5)) {
            let text: String = ranges.iter().map(|(s, c)| format!("alice:{s}:{c}\n")).collect();
            let caller = Caller { uid: 1000, gid: 1000, name: Some("alice".into()) };
            let plan = plan(&caller, &text, &text, |n| Some(PathBuf::from(n)));
            let mut next = 0u64;
            for r in &plan.uid.ranges {
                prop_assert_eq!(u64::from(r.inside), next);
                next += u64::from(r.count);
                prop_assert!(next <= u64::from(u32::MAX));
            }
        }
    }
}

#[cfg(test)]
mod keep_id_tests {
    use super::{IdRange, keep_id_ranges};

    #[test]
    fn own_id_kept_and_the_rest_filled_from_zero() {
        let r = |inside, outside, count| IdRange { inside, outside, count };
        assert_eq!(
            keep_id_ranges(1000, &[(100000, 65536)]).unwrap(),
            vec![r(0, 100000, 1000), r(1000, 1000, 1), r(1001, 101000, 64536)]
        );
        // Two ranges, the split inside the second.
        assert_eq!(
            keep_id_ranges(5, &[(100, 3), (200, 10)]).unwrap(),
            vec![r(0, 100, 3), r(3, 200, 2), r(5, 5, 1), r(6, 202, 8)]
        );
        assert_eq!(keep_id_ranges(1000, &[(100000, 1000)]), None);
        assert_eq!(keep_id_ranges(1000, &[]), None);
    }
}
