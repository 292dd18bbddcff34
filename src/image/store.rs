//! The image store: an OCI image layout at its root (`oci-layout`,
//! `index.json`, `blobs/sha256/`), so skopeo and umoci can read it, plus
//! `layers/<diff_id hex>/`, each layer unpacked once in overlay's format and
//! shared by every image that has it, and `tmp/` for what is being written.
//! Everything lands by rename from `tmp/`; two lock files (flock, see
//! [`Access`]) keep writers apart and removals off running containers' layers.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const REF_ANNOTATION: &str = "org.opencontainers.image.ref.name";

pub struct Store {
    pub root: PathBuf,
    lock: File,
    in_use: File,
}

/// The caller's home: $HOME, else /etc/passwd's entry (tests and sudo
/// clear the environment).
pub fn home_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Some(home.into());
    }
    let uid = nix::unistd::getuid().as_raw();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 7 && fields[2].parse() == Ok(uid) && !fields[5].is_empty()).then(|| fields[5].into())
    })
}

/// Where the store is: root's in /var/lib/zookeeper, a user's in
/// $XDG_DATA_HOME/zookeeper (default ~/.local/share/zookeeper).
pub fn default_root() -> Result<PathBuf> {
    if nix::unistd::geteuid().is_root() {
        return Ok("/var/lib/zookeeper".into());
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|d| Path::new(d).is_absolute()) {
        return Ok(PathBuf::from(data).join("zookeeper"));
    }
    let home =
        home_dir().context("finding the image store: no HOME and no /etc/passwd entry for this user")?;
    Ok(home.join(".local/share/zookeeper"))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// Checks `sha256:<64 lower hex>` and gives the hex.
pub fn digest_hex(digest: &str) -> Result<&str> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(hex)
        }
        _ => bail!("'{digest}' is not a sha256 digest"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// A reader that hashes what goes through it.
pub struct Hashing<R> {
    pub inner: R,
    pub hasher: Sha256,
    pub count: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Hashing<R> {
        Hashing { inner, hasher: Sha256::new(), count: 0 }
    }
    pub fn digest(self) -> String {
        format!("sha256:{}", hex(&self.hasher.finalize()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// What a caller does with the store, which decides its locks. Two lock
/// files: `lock`, held exclusive by whoever writes (a pull, a removal), and
/// `in-use`, held shared by every container running on the store's layers
/// and taken exclusive, without waiting, by a removal. So pulls never wait
/// for running containers, and removals never pull layers from under one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading the index (listing, disk use): writes are atomic renames.
    Read,
    /// Running a container on its layers.
    Use,
    /// Pulling.
    Write,
    /// Removing images or garbage: refused at once while a container runs.
    Remove,
}

fn flock(file: &File, op: libc::c_int) -> Result<()> {
    loop {
        // SAFETY: flock on a descriptor this File owns; no memory is involved.
        let ret = unsafe { libc::flock(file.as_raw_fd(), op) };
        if ret == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() == std::io::ErrorKind::WouldBlock {
            bail!("the image store is in use by a running container; try again once it ends");
        }
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("locking the image store");
        }
    }
}

fn lock_file(root: &Path, name: &str) -> Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(root.join(name))
        .with_context(|| format!("opening the image store's lock {}/{name}", root.display()))
}

impl Store {
    /// Opens (creating) the store at `root` with the locks `access` needs.
    pub fn open(root: &Path, access: Access) -> Result<Store> {
        let shown = root.display();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(root)
            .with_context(|| format!("creating the image store {shown}"))?;
        // The caller's alone: the layers hold the images' set-id programs,
        // set-id on the host as the ids that own them (container root is
        // the caller rootless, host root as root), which no other user may
        // reach.
        let meta =
            std::fs::symlink_metadata(root).with_context(|| format!("looking at the image store {shown}"))?;
        if !meta.is_dir() {
            bail!("the image store {shown} is not a directory");
        }
        if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0 {
            std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .with_context(|| format!("making the image store {shown} private (mode 0700)"))?;
        }
        let store = Store {
            root: root.to_path_buf(),
            lock: lock_file(root, "lock")?,
            in_use: lock_file(root, "in-use")?,
        };
        match access {
            Access::Read => {}
            Access::Use => flock(&store.in_use, libc::LOCK_SH)?,
            Access::Write => store.begin_write()?,
            Access::Remove => {
                store.begin_write()?;
                flock(&store.in_use, libc::LOCK_EX | libc::LOCK_NB)?;
            }
        }
        Ok(store)
    }

    /// Takes the writers' lock (waiting for another pull or removal).
    pub fn begin_write(&self) -> Result<()> {
        flock(&self.lock, libc::LOCK_EX)?;
        self.init()
    }

    pub fn end_write(&self) -> Result<()> {
        flock(&self.lock, libc::LOCK_UN)
    }

    /// With the exclusive lock: the layout's skeleton, and whatever a
    /// killed pull left in tmp/ removed.
    fn init(&self) -> Result<()> {
        for dir in ["blobs/sha256", "layers", "tmp"] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(self.root.join(dir))
                .with_context(|| format!("creating {}/{dir}", self.root.display()))?;
        }
        if !self.root.join("oci-layout").exists() {
            self.write_atomic(&self.root.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if !self.root.join("index.json").exists() {
            self.write_index(&Index {
                schema_version: 2,
                media_type: Some(INDEX_TYPE.into()),
                manifests: Vec::new(),
            })?;
        }
        let leftovers: Vec<PathBuf> = std::fs::read_dir(self.tmp())
            .with_context(|| format!("reading {}", self.tmp().display()))?
            .flatten()
            .map(|e| e.path())
            .collect();
        if !leftovers.is_empty() {
            // A layer half unpacked holds files of the container's ids:
            // removed where those ids are ours.
            super::userns::remove_trees(&leftovers)?;
        }
        Ok(())
    }

    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A fresh name in tmp/.
    pub fn tmp_path(&self, what: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.tmp().join(format!("{what}-{}-{nanos:x}-{n}", std::process::id()))
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.root.join("blobs/sha256").join(digest_hex(digest)?))
    }

    pub fn layer_path(&self, diff_id: &str) -> Result<PathBuf> {
        Ok(self.root.join("layers").join(digest_hex(diff_id)?))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.is_file())
    }

    /// A blob read back, at most `limit` bytes (manifests, configs).
    pub fn read_blob(&self, digest: &str, limit: u64) -> Result<Vec<u8>> {
        let path = self.blob_path(digest)?;
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
            .with_context(|| format!("reading {}", path.display()))?;
        if bytes.len() as u64 > limit {
            bail!("{} is larger than {limit} bytes", path.display());
        }
        if sha256_of(&bytes) != digest {
            bail!("the store's blob {digest} does not match its digest; remove the image and pull it again");
        }
        Ok(bytes)
    }

    /// Writes bytes whose digest is known into blobs/.
    pub fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        if sha256_of(bytes) != digest {
            bail!("content does not match its digest {digest}");
        }
        if self.has_blob(digest) {
            return Ok(());
        }
        self.write_atomic(&self.blob_path(digest)?, bytes)
    }

    /// Streams `reader` into blobs/ as `digest`, checking size and digest
    /// before the rename: a wrong or short blob never lands there.
    pub fn put_blob_stream(
        &self,
        digest: &str,
        size: u64,
        reader: &mut dyn Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        let target = self.blob_path(digest)?;
        let tmp = self.tmp_path("blob");
        let result = (|| -> Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            // One byte more than announced: a longer blob is as wrong as a shorter one.
            let mut hashing = Hashing::new(reader.take(size + 1));
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let n = match hashing.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(err) => {
                        let count = hashing.count;
                        return Err(err).with_context(|| {
                            format!("downloading the blob {digest}: truncated after {count} of {size} bytes")
                        });
                    }
                };
                file.write_all(&buf[..n]).with_context(|| format!("writing {}", tmp.display()))?;
                progress(hashing.count);
            }
            if hashing.count != size {
                bail!(
                    "the blob {digest} is {} bytes{}, its manifest says {size}",
                    hashing.count,
                    if hashing.count < size { " (truncated)" } else { " or more" }
                );
            }
            let got = hashing.digest();
            if got != digest {
                bail!("the blob {digest} does not match its digest (its content hashes to {got})");
            }
            file.sync_all().with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &target).with_context(|| format!("renaming into {}", target.display()))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    pub fn write_atomic(&self, target: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = self.tmp_path("file");
        let result = (|| -> Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            file.write_all(bytes)
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, target).with_context(|| format!("renaming into {}", target.display()))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    pub fn read_index(&self) -> Result<Index> {
        let path = self.root.join("index.json");
        let mut text = Vec::new();
        match std::fs::File::open(&path) {
            Ok(file) => {
                file.take(64 << 20)
                    .read_to_end(&mut text)
                    .with_context(|| format!("reading {}", path.display()))?;
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Index {
                    schema_version: 2,
                    media_type: Some(INDEX_TYPE.into()),
                    manifests: Vec::new(),
                });
            }
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        }
        serde_json::from_slice(&text).with_context(|| format!("{} is not an OCI index", path.display()))
    }

    pub fn write_index(&self, index: &Index) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(index).context("encoding index.json")?;
        self.write_atomic(&self.root.join("index.json"), &bytes)
    }

    /// The manifest descriptor stored for `name`, the full reference.
    pub fn lookup(&self, name: &str) -> Result<Option<Descriptor>> {
        Ok(self
            .read_index()?
            .manifests
            .into_iter()
            .find(|d| d.annotations.get(REF_ANNOTATION).map(String::as_str) == Some(name)))
    }

    /// Points `name` at `manifest` (replacing what it named).
    pub fn tag(&self, name: &str, manifest: &Descriptor) -> Result<()> {
        let mut index = self.read_index()?;
        index.manifests.retain(|d| d.annotations.get(REF_ANNOTATION).map(String::as_str) != Some(name));
        let mut entry = manifest.clone();
        entry.annotations.insert(REF_ANNOTATION.into(), name.into());
        index.manifests.push(entry);
        self.write_index(&index)
    }
}

pub const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";

impl Store {
    /// Removes the blobs and layers no image of index.json references;
    /// `(blobs, layers)` removed. Needs the exclusive lock.
    pub fn collect_garbage(
        &self,
        referenced_blobs: &std::collections::BTreeSet<String>,
        referenced_layers: &std::collections::BTreeSet<String>,
    ) -> Result<(usize, usize)> {
        let mut blobs = 0;
        let blob_dir = self.root.join("blobs/sha256");
        for entry in
            std::fs::read_dir(&blob_dir).with_context(|| format!("reading {}", blob_dir.display()))?.flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !referenced_blobs.contains(&name) {
                std::fs::remove_file(entry.path())
                    .with_context(|| format!("removing {}", entry.path().display()))?;
                blobs += 1;
            }
        }
        let layer_dir = self.root.join("layers");
        let unused: Vec<PathBuf> = std::fs::read_dir(&layer_dir)
            .with_context(|| format!("reading {}", layer_dir.display()))?
            .flatten()
            .filter(|e| !referenced_layers.contains(&e.file_name().to_string_lossy().into_owned()))
            .map(|e| e.path())
            .collect();
        if !unused.is_empty() {
            // Moved aside first: a layer half removed is never taken for whole.
            let mut doomed = Vec::new();
            for path in &unused {
                let aside = self.tmp_path("removed");
                std::fs::rename(path, &aside).with_context(|| format!("moving {} aside", path.display()))?;
                doomed.push(aside);
            }
            super::userns::remove_trees(&doomed)?;
        }
        Ok((blobs, unused.len()))
    }
}
