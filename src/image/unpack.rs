//! A layer unpacked into a directory in overlay's format, as hostile input:
//! every name is resolved beneath the layer's directory (openat2 with
//! RESOLVE_IN_ROOT: a symlinked parent stays inside), absolute names and
//! `..` are refused, nothing is ever followed at the last component.
//! Whiteouts (`.wh.NAME`) become 0:0 character devices and opaque markers
//! (`.wh..wh..opq`) the `user.overlay.opaque` attribute, which overlay reads
//! when mounted with `userxattr` in a user namespace; hard links are made
//! inside the layer; owners, modes (set-id included), mtimes and extended
//! attributes are kept; device nodes are skipped and counted. The
//! uncompressed stream's digest must be the config's diff_id.
//!
//! Runs inside the layer helper's user namespace (userns.rs), as container
//! root: owners land on the host ids containers see them as.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::stat::Mode;

use super::store::Hashing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub entries: u64,
    pub devices_skipped: u64,
    pub xattrs_skipped: u64,
}

/// Unpacks the layer `blob` into `dest` (created here), checking the
/// uncompressed digest against `diff_id`. `lower` are the image's layers
/// below this one, uppermost first, already unpacked: a hard link to a
/// file only they have is copied up from them. On error `dest` may hold a
/// part: the caller removes it.
pub fn unpack(
    blob: &Path,
    compression: Compression,
    dest: &Path,
    diff_id: &str,
    lower: &[std::path::PathBuf],
) -> Result<Outcome> {
    let file = std::fs::File::open(blob).with_context(|| format!("opening {}", blob.display()))?;
    let buffered = std::io::BufReader::with_capacity(256 << 10, file);
    let stream: Box<dyn Read> = match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(buffered).context("starting zstd")?)
        }
    };
    nix::unistd::mkdir(dest, Mode::from_bits_truncate(0o755))
        .with_context(|| format!("creating {}", dest.display()))?;
    let root = nix::fcntl::open(
        dest,
        nix::fcntl::OFlag::O_RDONLY
            | nix::fcntl::OFlag::O_DIRECTORY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", dest.display()))?;
    let mut layer = Layer {
        root,
        dir_times: Vec::new(),
        outcome: Outcome::default(),
        lower: lower.to_vec(),
        lower_roots: None,
        copied_up: std::collections::HashMap::new(),
    };
    let mut hashing = Hashing::new(stream);
    {
        let mut archive = tar::Archive::new(&mut hashing);
        let entries = archive.entries().context("reading the layer (tar)")?;
        for entry in entries {
            let mut entry = entry.context("reading the layer (tar)")?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            layer.add(&mut entry).with_context(|| format!("'{name}'"))?;
        }
    }
    // The zeros after the archive's end count in the diff_id too.
    std::io::copy(&mut hashing, &mut std::io::sink()).context("reading the layer to its end")?;
    let got = hashing.digest();
    if got != diff_id {
        bail!("the uncompressed layer hashes to {got}, the image's config says {diff_id}");
    }
    layer.finish()?;
    Ok(layer.outcome)
}

struct Layer {
    root: OwnedFd,
    /// Directories' mtimes, set last (adding entries changes them).
    dir_times: Vec<(Vec<Vec<u8>>, i64)>,
    outcome: Outcome,
    /// The layers below, uppermost first, opened at the first hard link
    /// that needs them.
    lower: Vec<std::path::PathBuf>,
    lower_roots: Option<Vec<OwnedFd>>,
    /// A lower file a hard link was copied up for, by its name: the name
    /// in this layer that has its copy, which later links to it share.
    copied_up: std::collections::HashMap<Vec<Vec<u8>>, Vec<Vec<u8>>>,
}

/// The components of an entry's name: `./a//b/` is `a`, `b`.
fn components(raw: &[u8]) -> Result<Vec<Vec<u8>>> {
    if raw.starts_with(b"/") {
        bail!("an absolute name, which a layer must not have");
    }
    let mut out = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => bail!("a name with '..', which could reach out of the layer"),
            _ => out.push(part.to_vec()),
        }
    }
    Ok(out)
}

fn cstring(bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).context("a name with a NUL byte")
}

const RESOLVE_FLAGS: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV;

/// openat2 beneath `root`.
fn open_in(root: &OwnedFd, path: &[u8], flags: i32) -> Result<OwnedFd, Errno> {
    let path = if path.is_empty() { b".".as_slice() } else { path };
    let path = CString::new(path).map_err(|_| Errno::EINVAL)?;
    let mut how: libc::open_how = {
        // SAFETY: open_how is a plain C struct of integers; all-zero is its
        // "no flags" value.
        unsafe { std::mem::zeroed() }
    };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = RESOLVE_FLAGS;
    loop {
        // SAFETY: openat2 reads `path` (NUL-terminated, alive for the call)
        // and `how` (sized as passed); it returns a new descriptor or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel just gave this process the descriptor.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
        match Errno::last() {
            Errno::EINTR | Errno::EAGAIN => continue,
            errno => return Err(errno),
        }
    }
}

fn join(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.join(&b'/')
}

fn shown(parts: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&join(parts)).into_owned()
}

impl Layer {
    /// The directory `parts`, made (0755, container root's) where missing.
    fn dir(&self, parts: &[Vec<u8>]) -> Result<OwnedFd> {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY;
        match open_in(&self.root, &join(parts), flags) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(Errno::ENOTDIR) => bail!("the parent {} is not a directory", shown(parts)),
            Err(errno) => bail!("opening the parent {}: {}", shown(parts), crate::error::errno_text(errno)),
        }
        let mut dir =
            open_in(&self.root, b"", flags).map_err(|e| anyhow::anyhow!("opening the layer: {e}"))?;
        for (at, part) in parts.iter().enumerate() {
            dir = match open_in(&self.root, &join(&parts[..=at]), flags) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    nix::sys::stat::mkdirat(
                        dir.as_fd(),
                        cstring(part)?.as_c_str(),
                        Mode::from_bits_truncate(0o755),
                    )
                    .with_context(|| format!("creating the directory {}", shown(&parts[..=at])))?;
                    open_in(&self.root, &join(&parts[..=at]), flags)
                        .map_err(|e| anyhow::anyhow!("opening {}: {e}", shown(&parts[..=at])))?
                }
                Err(Errno::ENOTDIR) => bail!("the parent {} is not a directory", shown(&parts[..=at])),
                Err(errno) => bail!("opening {}: {}", shown(&parts[..=at]), crate::error::errno_text(errno)),
            };
        }
        Ok(dir)
    }

    fn add<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        use tar::EntryType as T;
        self.outcome.entries += 1;
        let parts = components(&entry.path_bytes())?;
        let header = entry.header().clone();
        let kind = header.entry_type();
        let uid = u32::try_from(header.uid().context("the owner")?).context("an owner beyond 32 bits")?;
        let gid = u32::try_from(header.gid().context("the group")?).context("a group beyond 32 bits")?;
        let mode = header.mode().context("the mode")? & 0o7777;
        let mtime = header.mtime().context("the mtime")? as i64;
        let xattrs = xattrs_of(entry)?;
        let Some((name, parents)) = parts.split_last() else {
            // `./`: the layer's own directory. Nobody else may write it
            // (zookeeper checks the top layer as it checks a rootfs).
            if kind == T::Directory {
                self.set_owner(&self.root, None, uid, gid, &parts)?;
                nix::sys::stat::fchmod(&self.root, Mode::from_bits_truncate(mode & !0o022))
                    .context("chmod")?;
                self.dir_times.push((Vec::new(), mtime));
            }
            return Ok(());
        };
        if let Some(target) = name.strip_prefix(b".wh.") {
            let parent = self.dir(parents)?;
            if target == b".wh..opq" {
                return set_xattr(&parent, None, b"user.overlay.opaque", b"y")
                    .context("marking the directory opaque");
            }
            if target.is_empty() || target == b"." || target == b".." {
                bail!("a whiteout of nothing");
            }
            let target = cstring(target)?;
            remove_existing(&parent, &target, false)?;
            mknodat(&parent, &target, libc::S_IFCHR, 0)
                .context("making a whiteout (a 0:0 character device)")?;
            return Ok(());
        }
        let parent = self.dir(parents)?;
        let cname = cstring(name)?;
        match kind {
            T::Directory => {
                if !remove_existing(&parent, &cname, true)? {
                    nix::sys::stat::mkdirat(
                        parent.as_fd(),
                        cname.as_c_str(),
                        Mode::from_bits_truncate(0o700),
                    )
                    .context("mkdir")?;
                }
                let fd = openat_nofollow(&parent, &cname, libc::O_RDONLY | libc::O_DIRECTORY)?;
                self.set_owner(&fd, None, uid, gid, &parts)?;
                nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(mode)).context("chmod")?;
                self.set_xattrs(&fd, &xattrs)?;
                self.dir_times.push((parts.clone(), mtime));
            }
            // (tar expands a GNU sparse file as it is read.)
            T::Regular | T::Continuous | T::GNUSparse => {
                remove_existing(&parent, &cname, false)?;
                let fd = openat_nofollow(&parent, &cname, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL)?;
                let mut file = std::fs::File::from(fd);
                std::io::copy(entry, &mut file).context("writing the file")?;
                let fd = OwnedFd::from(file);
                self.set_owner(&fd, None, uid, gid, &parts)?;
                nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(mode)).context("chmod")?;
                self.set_xattrs(&fd, &xattrs)?;
                set_times(&fd, None, mtime)?;
            }
            T::Symlink => {
                let target = entry.link_name_bytes().context("a symlink without a target")?;
                remove_existing(&parent, &cname, false)?;
                let target = cstring(&target)?;
                // SAFETY: symlinkat reads two NUL-terminated strings alive for the call.
                if unsafe { libc::symlinkat(target.as_ptr(), parent.as_raw_fd(), cname.as_ptr()) } != 0 {
                    return Err(std::io::Error::last_os_error()).context("symlink");
                }
                self.set_owner(&parent, Some(&cname), uid, gid, &parts)?;
                set_times(&parent, Some(&cname), mtime)?;
            }
            T::Link => {
                let target = entry.link_name_bytes().context("a hard link without a target")?;
                let target_parts = components(&target).context("the hard link's target")?;
                if target_parts.is_empty() {
                    bail!("a hard link to the layer's root");
                }
                remove_existing(&parent, &cname, false)?;
                let missing = || {
                    anyhow::anyhow!(
                        "a hard link to {}, which neither this layer nor those below it have",
                        shown(&target_parts)
                    )
                };
                let in_layer = match look(&self.root, &target_parts)? {
                    Look::Found => Some(target_parts.clone()),
                    Look::Hidden => return Err(missing()),
                    Look::Absent { opaque } => match self.copied_up.get(&target_parts) {
                        Some(copy) => Some(copy.clone()),
                        None if opaque => return Err(missing()),
                        None => None,
                    },
                };
                match in_layer {
                    Some(target) => {
                        if !link_in(&self.root, &target, &parent, &cname)? {
                            return Err(missing());
                        }
                    }
                    // Not in this layer: image-spec lets a link name a file
                    // of the layers below, which overlay cannot share across
                    // layers. A copy of it here is what the link names (and
                    // the layer's further links to it share that copy).
                    None => {
                        self.copy_up(&target_parts, &parent, &cname, &parts)?;
                        self.copied_up.insert(target_parts, parts.clone());
                    }
                }
            }
            T::Fifo => {
                remove_existing(&parent, &cname, false)?;
                mknodat(&parent, &cname, libc::S_IFIFO | mode, 0).context("mkfifo")?;
                self.set_owner(&parent, Some(&cname), uid, gid, &parts)?;
                let fd = openat_nofollow(&parent, &cname, libc::O_PATH)?;
                chmod_path(&fd, mode)?;
                set_times(&parent, Some(&cname), mtime)?;
            }
            T::Char | T::Block => self.outcome.devices_skipped += 1,
            // Headers the tar reader already applied, or kinds with no file.
            _ => {}
        }
        Ok(())
    }

    /// chown, or the one clear error for an owner the map lacks.
    fn set_owner(
        &self,
        fd: &OwnedFd,
        name: Option<&CString>,
        uid: u32,
        gid: u32,
        parts: &[Vec<u8>],
    ) -> Result<()> {
        let empty = CString::default();
        let (name, flags) = match name {
            Some(name) => (name, libc::AT_SYMLINK_NOFOLLOW),
            None => (&empty, libc::AT_EMPTY_PATH),
        };
        // SAFETY: fchownat reads a NUL-terminated name alive for the call.
        let ret = unsafe { libc::fchownat(fd.as_raw_fd(), name.as_ptr(), uid, gid, flags) };
        if ret == 0 {
            return Ok(());
        }
        match Errno::last() {
            Errno::EINVAL => bail!(
                "/{} is owned by {uid}:{gid}, outside the ids this user's containers map ({}); \
                 give the user a larger subordinate range (/etc/subuid, /etc/subgid)",
                shown(parts),
                super::userns::mapped_range()
            ),
            errno => bail!("chown: {}", crate::error::errno_text(errno)),
        }
    }

    fn set_xattrs(&mut self, fd: &OwnedFd, xattrs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        for (key, value) in xattrs {
            // overlay's own marks come from zookeeper alone: a layer that set
            // them could redirect lookups across layers.
            if key.starts_with(b"user.overlay.") || key.starts_with(b"trusted.overlay.") {
                self.outcome.xattrs_skipped += 1;
                continue;
            }
            if set_xattr(fd, None, key, value).is_err() {
                // trusted.* needs the host's root; an unsupported name is not fatal.
                self.outcome.xattrs_skipped += 1;
            }
        }
        Ok(())
    }

    /// The file `target` of the layers below (overlay's view of them:
    /// the uppermost that has it, a whiteout or an opaque directory on
    /// its way hides what lies under) copied to `name` in `parent`, with
    /// its owner, mode, attributes and mtime.
    fn copy_up(
        &mut self,
        target: &[Vec<u8>],
        parent: &OwnedFd,
        name: &CString,
        parts: &[Vec<u8>],
    ) -> Result<()> {
        let missing = || {
            anyhow::anyhow!(
                "a hard link to {}, which neither this layer nor those below it have",
                shown(target)
            )
        };
        if self.lower_roots.is_none() {
            let mut roots = Vec::new();
            for dir in &self.lower {
                let fd = nix::fcntl::open(
                    dir,
                    nix::fcntl::OFlag::O_RDONLY
                        | nix::fcntl::OFlag::O_DIRECTORY
                        | nix::fcntl::OFlag::O_NOFOLLOW
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .with_context(|| format!("opening the lower layer {}", dir.display()))?;
                roots.push(fd);
            }
            self.lower_roots = Some(roots);
        }
        let roots = self.lower_roots.as_ref().map_or(&[][..], |r| r.as_slice());
        let source = find_below(roots, target)?.ok_or_else(missing)?;
        let stat = nix::sys::stat::fstat(&source).context("stat of the linked file")?;
        if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
            bail!("a hard link to {}, which is not a regular file in the layers below", shown(target));
        }
        let fd = openat_nofollow(parent, name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL)?;
        let (mut from, mut to) = (std::fs::File::from(source), std::fs::File::from(fd));
        std::io::copy(&mut from, &mut to).context("copying the linked file up")?;
        let (source, fd) = (OwnedFd::from(from), OwnedFd::from(to));
        self.set_owner(&fd, None, stat.st_uid, stat.st_gid, parts)?;
        nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(stat.st_mode & 0o7777)).context("chmod")?;
        let xattrs = list_xattrs(&source);
        self.set_xattrs(&fd, &xattrs)?;
        set_times(&fd, None, stat.st_mtime)
    }

    fn finish(&mut self) -> Result<()> {
        // Deepest first does not matter: setting a directory's times does
        // not change its parent's.
        for (parts, mtime) in std::mem::take(&mut self.dir_times) {
            if let Ok(fd) =
                open_in(&self.root, &join(&parts), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW)
            {
                set_times(&fd, None, mtime)?;
            }
        }
        Ok(())
    }
}

/// Links `name` in `parent` to `target` of the layer `root`; false when
/// the layer has no `target`.
fn link_in(root: &OwnedFd, target: &[Vec<u8>], parent: &OwnedFd, name: &CString) -> Result<bool> {
    let Some((target_name, target_parents)) = target.split_last() else {
        bail!("a hard link to the layer's root");
    };
    let target_dir = match open_in(root, &join(target_parents), libc::O_RDONLY | libc::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(false),
        Err(errno) => bail!("hard link to {}: {}", shown(target), crate::error::errno_text(errno)),
    };
    let target_name = cstring(target_name)?;
    // SAFETY: linkat reads two NUL-terminated names alive for the call;
    // flags 0: the target itself, never followed.
    let ret = unsafe {
        libc::linkat(target_dir.as_raw_fd(), target_name.as_ptr(), parent.as_raw_fd(), name.as_ptr(), 0)
    };
    if ret != 0 {
        let errno = Errno::last();
        if errno == Errno::ENOENT {
            return Ok(false);
        }
        bail!("hard link to {}: {}", shown(target), crate::error::errno_text(errno));
    }
    Ok(true)
}

/// What one layer says of `target`, as overlay reads it.
enum Look {
    /// It has it.
    Found,
    /// It hides it: a whiteout of it or of a directory on its way, or
    /// something else than a directory on its way.
    Hidden,
    /// It does not have it; `opaque`: an opaque directory on its way hides
    /// the layers beneath.
    Absent { opaque: bool },
}

fn look(layer: &OwnedFd, target: &[Vec<u8>]) -> Result<Look> {
    let mut opaque = false;
    for depth in 1..=target.len() {
        let path = join(&target[..depth]);
        let fd = match open_in(layer, &path, libc::O_PATH | libc::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(Look::Absent { opaque }),
            Err(errno) => bail!("looking for {}: {}", shown(target), crate::error::errno_text(errno)),
        };
        let stat = nix::sys::stat::fstat(&fd).context("stat in a layer")?;
        let kind = stat.st_mode & libc::S_IFMT;
        if kind == libc::S_IFCHR && stat.st_rdev == 0 {
            return Ok(Look::Hidden);
        }
        if depth == target.len() {
            return Ok(Look::Found);
        }
        if kind != libc::S_IFDIR {
            return Ok(Look::Hidden);
        }
        let dir = open_in(layer, &path, libc::O_RDONLY | libc::O_DIRECTORY)
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", shown(&target[..depth])))?;
        opaque |= is_opaque(dir.as_fd());
    }
    Ok(Look::Absent { opaque })
}

/// `target` in the uppermost of `layers` (uppermost first) that has it,
/// opened for reading, unless a layer above it hides it ([`look`]). Each
/// layer is resolved beneath its own root.
fn find_below(layers: &[OwnedFd], target: &[Vec<u8>]) -> Result<Option<OwnedFd>> {
    for layer in layers {
        match look(layer, target)? {
            Look::Found => {
                let path = join(target);
                return match open_in(layer, &path, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK) {
                    Ok(fd) => Ok(Some(fd)),
                    Err(errno) => {
                        bail!("opening {} below: {}", shown(target), crate::error::errno_text(errno))
                    }
                };
            }
            Look::Hidden | Look::Absent { opaque: true } => return Ok(None),
            Look::Absent { opaque: false } => {}
        }
    }
    Ok(None)
}

/// A file's extended attributes (names and values), as far as they read.
fn list_xattrs(fd: &OwnedFd) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut names = vec![0u8; 64 << 10];
    // SAFETY: flistxattr writes at most names.len() bytes into names.
    let len = unsafe { libc::flistxattr(fd.as_raw_fd(), names.as_mut_ptr().cast(), names.len()) };
    if len <= 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut value = vec![0u8; 64 << 10];
    for name in names[..len as usize].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(key) = CString::new(name) else { continue };
        // SAFETY: fgetxattr writes at most value.len() bytes into value.
        let size =
            unsafe { libc::fgetxattr(fd.as_raw_fd(), key.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
        if size >= 0 {
            out.push((name.to_vec(), value[..size as usize].to_vec()));
        }
    }
    out
}

fn xattrs_of<R: Read>(entry: &mut tar::Entry<R>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(extensions) = entry.pax_extensions().context("the entry's PAX headers")? {
        for extension in extensions {
            let extension = extension.context("a PAX header")?;
            if let Some(key) = extension.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                out.push((key.to_vec(), extension.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

fn openat_nofollow(dir: &OwnedFd, name: &CString, flags: i32) -> Result<OwnedFd> {
    // SAFETY: openat reads a NUL-terminated name alive for the call.
    let fd = unsafe {
        libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0o600)
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("open");
    }
    // SAFETY: the kernel just gave this process the descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn mknodat(dir: &OwnedFd, name: &CString, mode: u32, dev: u64) -> Result<()> {
    // SAFETY: mknodat reads a NUL-terminated name alive for the call.
    if unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, dev) } != 0 {
        return Err(std::io::Error::last_os_error()).context("mknod");
    }
    Ok(())
}

/// Makes room for an entry: what is there goes, unless both are
/// directories (a directory entry updates one). True: a directory stays.
fn remove_existing(dir: &OwnedFd, name: &CString, keep_directory: bool) -> Result<bool> {
    let stat = match nix::sys::stat::fstatat(dir, name.as_c_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::ENOENT) => return Ok(false),
        Err(errno) => bail!("looking at what is there: {}", crate::error::errno_text(errno)),
    };
    let is_dir = stat.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if is_dir && keep_directory {
        return Ok(true);
    }
    if is_dir {
        // Under /proc/self/fd/N: std's remove_dir_all never follows links
        // below the name it is given.
        let path = Path::new("/proc/self/fd")
            .join(dir.as_raw_fd().to_string())
            .join(std::ffi::OsStr::from_bytes(name.as_bytes()));
        std::fs::remove_dir_all(&path).context("removing the directory an entry replaces")?;
    } else {
        nix::unistd::unlinkat(dir, name.as_c_str(), nix::unistd::UnlinkatFlags::NoRemoveDir)
            .context("removing the file an entry replaces")?;
    }
    Ok(false)
}

fn set_xattr(fd: &OwnedFd, name: Option<&CString>, key: &[u8], value: &[u8]) -> Result<()> {
    let key = cstring(key)?;
    let ret = match name {
        // SAFETY: fsetxattr reads the key (NUL-terminated) and `value`
        // (with its length), both alive for the call.
        None => unsafe {
            libc::fsetxattr(fd.as_raw_fd(), key.as_ptr(), value.as_ptr().cast(), value.len(), 0)
        },
        Some(_) => bail!("extended attributes by name are not set"),
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error()).context("setxattr");
    }
    Ok(())
}

fn chmod_path(fd: &OwnedFd, mode: u32) -> Result<()> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        path.as_str(),
        Mode::from_bits_truncate(mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .context("chmod")
}

fn set_times(fd: &OwnedFd, name: Option<&CString>, mtime: i64) -> Result<()> {
    let time = libc::timespec { tv_sec: mtime, tv_nsec: 0 };
    let times = [time, time];
    let empty = CString::default();
    let (name, flags) = match name {
        Some(name) => (name, libc::AT_SYMLINK_NOFOLLOW),
        None => (&empty, 0),
    };
    let ret = if name.as_bytes().is_empty() {
        // SAFETY: futimens reads two timespecs from `times`, alive for the call.
        unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) }
    } else {
        // SAFETY: utimensat reads a NUL-terminated name and two timespecs,
        // all alive for the call.
        unsafe { libc::utimensat(fd.as_raw_fd(), name.as_ptr(), times.as_ptr(), flags) }
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error()).context("setting the modification time");
    }
    Ok(())
}

/// Whether the directory is marked opaque in overlay's rootless format
/// (`user.overlay.opaque` = `y`): what the layers below it had is hidden.
pub(crate) fn is_opaque(dir: std::os::fd::BorrowedFd) -> bool {
    let mut value = [0u8; 2];
    // SAFETY: fgetxattr writes at most value.len() bytes into value.
    let size = unsafe {
        libc::fgetxattr(
            dir.as_raw_fd(),
            c"user.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    size == 1 && value[0] == b'y'
}

#[cfg(test)]
mod tests {
    use super::components;

    #[test]
    fn names() {
        assert_eq!(components(b"./a//b/").unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
        assert!(components(b"./").unwrap().is_empty());
        assert!(components(b"/etc/passwd").is_err());
        assert!(components(b"a/../../x").is_err());
        assert!(components(b"..").is_err());
    }
}
