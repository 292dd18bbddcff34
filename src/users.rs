//! `-u USER[:GROUP]`: names and numbers resolved against the container's
//! own /etc/passwd and /etc/group, as docker and runc do, when the
//! container starts (the rootfs's files, read as hostile; the default root's
//! are the host's).

use anyhow::{Result, bail};

use crate::rootfs::CheckedRootfs;
use crate::spec::ContainerSpec;

/// uid, gid and the supplementary gids.
type Ids = (u32, u32, Vec<u32>);

/// A line of /etc/passwd that matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// Fills `spec.process.user` (and HOME, unless the environment has one)
/// from `spec.user_lookup`.
pub fn resolve(spec: &mut ContainerSpec, rootfs: Option<&CheckedRootfs>) -> Result<()> {
    let Some(request) = spec.user_lookup.clone() else { return Ok(()) };
    let text = |relative: &str| -> Result<String> {
        let bytes = crate::rootfs::read_container_file(rootfs, relative)?.unwrap_or_default();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let (passwd, group) = (text("etc/passwd")?, text("etc/group")?);
    let (user, home) = lookup(&request, &passwd, &group)?;
    spec.process.user.uid = user.0;
    spec.process.user.gid = user.1;
    spec.process.user.additional_gids = user.2;
    if !spec.process.env.iter().any(|e| e.as_encoded_bytes().starts_with(b"HOME=")) {
        spec.process.env.push(format!("HOME={home}").into());
    }
    Ok(())
}

/// (uid, gid, supplementary gids) and HOME for `request`, docker's rules:
/// a number need not be in /etc/passwd (then gid 0 and HOME /), a name
/// must; a group given replaces the user's primary one; the supplementary
/// groups are those /etc/group lists the user's name in.
pub(crate) fn lookup(request: &str, passwd: &str, group: &str) -> Result<(Ids, String)> {
    let (user_part, group_part) = request.split_once(':').map_or((request, None), |(u, g)| (u, Some(g)));
    let entries: Vec<Passwd> = passwd.lines().filter_map(parse_passwd).collect();
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => entries.iter().find(|e| e.uid == uid).cloned().ok_or(uid),
        Err(_) => match entries.iter().find(|e| e.name == user_part) {
            Some(entry) => Ok(entry.clone()),
            None => bail!("--user {request}: no user '{user_part}' in the container's /etc/passwd"),
        },
    };
    let (uid, mut gid, home, name) = match &entry {
        Ok(e) => (e.uid, e.gid, e.home.clone(), Some(e.name.as_str())),
        Err(uid) => (*uid, 0, "/".to_string(), None),
    };
    let groups: Vec<(String, u32, Vec<String>)> = group.lines().filter_map(parse_group).collect();
    if let Some(group_part) = group_part {
        gid = match group_part.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => match groups.iter().find(|g| g.0 == group_part) {
                Some(g) => g.1,
                None => bail!("--user {request}: no group '{group_part}' in the container's /etc/group"),
            },
        };
    }
    let mut additional: Vec<u32> = match name {
        Some(name) => groups.iter().filter(|g| g.2.iter().any(|m| m == name)).map(|g| g.1).collect(),
        None => Vec::new(),
    };
    additional.retain(|g| *g != gid);
    additional.dedup();
    Ok(((uid, gid, additional), if home.is_empty() { "/".into() } else { home }))
}

fn parse_passwd(line: &str) -> Option<Passwd> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 7 || fields[0].is_empty() || fields[0].starts_with(['#', '+', '-']) {
        return None;
    }
    Some(Passwd {
        name: fields[0].into(),
        uid: fields[2].parse().ok()?,
        gid: fields[3].parse().ok()?,
        home: fields[5].into(),
    })
}

fn parse_group(line: &str) -> Option<(String, u32, Vec<String>)> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 4 || fields[0].is_empty() || fields[0].starts_with(['#', '+', '-']) {
        return None;
    }
    let members = fields[3].split(',').filter(|m| !m.is_empty()).map(String::from).collect();
    Some((fields[0].into(), fields[2].parse().ok()?, members))
}

#[cfg(test)]
mod tests {
    use super::lookup;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\nbad line\nnobody:x:65534:65534::/nonexistent:/bin/false\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:\nstaff:x:50:www,other\naudio:x:29:www\n";

    #[test]
    fn names_numbers_and_groups() {
        assert_eq!(lookup("www", PASSWD, GROUP).unwrap(), ((33, 33, vec![50, 29]), "/var/www".into()));
        assert_eq!(lookup("33", PASSWD, GROUP).unwrap(), ((33, 33, vec![50, 29]), "/var/www".into()));
        assert_eq!(lookup("www:staff", PASSWD, GROUP).unwrap(), ((33, 50, vec![29]), "/var/www".into()));
        assert_eq!(lookup("1234", PASSWD, GROUP).unwrap(), ((1234, 0, vec![]), "/".into()));
        assert_eq!(lookup("1234:77", PASSWD, GROUP).unwrap(), ((1234, 77, vec![]), "/".into()));
        assert!(lookup("ghost", PASSWD, GROUP).unwrap_err().to_string().contains("no user 'ghost'"));
        assert!(lookup("www:ghosts", PASSWD, GROUP).unwrap_err().to_string().contains("no group 'ghosts'"));
        assert_eq!(lookup("0", "", "").unwrap(), ((0, 0, vec![]), "/".into()));
    }
}
