//! Images: pulled from a registry (distribution-spec v2), kept in a
//! content-addressed store shared by every container, run on an overlay of
//! their layers with their configuration applied (image-spec's
//! conversion.md).
//!
//! - [`reference`]: names as docker normalises them;
//! - `registry`, `auth`: the HTTP client, challenges and stored credentials;
//! - `store`: the OCI layout, blobs, unpacked layers, the lock;
//! - `userns`, `unpack`: layers unpacked as container root in a user
//!   namespace mapped as the containers are, hostile-safe.
//!
//! The command line uses [`pull`] (`--image-pull`) and [`prepare`]
//! (`--image`), which fills a [`ContainerSpec`] and returns the store's
//! shared lock, held while the container runs.

pub mod platform;
pub mod reference;

mod auth;
pub mod fuse;
mod inspect;
pub(crate) mod merge;
mod progress;
mod registry;
mod store;
mod unpack;
mod userns;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::spec::ContainerSpec;
pub use inspect::inspect;
// `--platform`; the index entries' own platform is `Platform` below.
use platform::Platform as Wanted;
use reference::Reference;
use store::{Access, Descriptor, Store, sha256_of};

/// What `--image` asks for, beside the container's description.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRun {
    pub reference: String,
    /// `--store DIR`; default: the caller's (store.rs).
    pub store: Option<PathBuf>,
    /// `--entrypoint`: replaces the image's Entrypoint and drops its Cmd.
    pub entrypoint: Option<String>,
    /// A command was given: it replaces the image's Cmd.
    pub command_given: bool,
    /// `-w` was given: the image's WorkingDir gives way.
    pub workdir_given: bool,
    /// Variables set with `--env`/`--env-file`: the image's give way.
    pub env_given: Vec<String>,
    /// HOME was set with `--env`.
    pub home_given: bool,
    /// `--pull`: when to ask the registry.
    pub pull: Pull,
    /// `--platform`: which of an index's images; default the machine's.
    /// Given, an image in the store of another platform counts as missing.
    pub platform: Option<Wanted>,
}

/// `--pull`, docker's: pull when the store lacks the image (the default),
/// every time (a tag may have moved), or never.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pull {
    #[default]
    Missing,
    Always,
    Never,
}

impl std::str::FromStr for Pull {
    type Err = String;
    fn from_str(text: &str) -> Result<Pull, String> {
        match text {
            "missing" => Ok(Pull::Missing),
            "always" => Ok(Pull::Always),
            "never" => Ok(Pull::Never),
            other => Err(format!("'{other}' is not missing, always or never")),
        }
    }
}

/// The store's shared lock, held while a container runs on its layers.
pub struct InUse {
    _store: Store,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

#[derive(Debug, Deserialize)]
struct IndexEntry {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    config: Option<RunConfig>,
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Debug, Default, Deserialize)]
struct RunConfig {
    #[serde(rename = "User", default)]
    user: Option<String>,
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    working_dir: Option<String>,
    #[serde(rename = "StopSignal", default)]
    stop_signal: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RootFs {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    diff_ids: Vec<String>,
}

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const CONFIG_LIMIT: u64 = 16 << 20;
/// The most lower layers Linux's overlayfs stacks (OVL_MAX_STACK).
const OVERLAY_MAX_LAYERS: usize = 500;

fn store_root(explicit: Option<&Path>) -> Result<PathBuf> {
    match explicit {
        Some(dir) => Ok(dir.to_path_buf()),
        None => store::default_root(),
    }
}

/// `--image-pull REF`: pulls (again) and says what it did on stderr.
pub fn pull(reference: &str, store: Option<&Path>, platform: Option<&Wanted>) -> Result<()> {
    let reference = Reference::parse(reference)?;
    let store = Store::open(&store_root(store)?, Access::Write)?;
    pull_into(&store, &reference, platform).with_context(|| format!("pulling {reference}"))?;
    Ok(())
}

/// The blobs (hex) and layers (diff_id hex) the images of index.json use.
fn referenced(
    store: &Store,
) -> Result<(std::collections::BTreeSet<String>, std::collections::BTreeSet<String>)> {
    let (mut blobs, mut layers) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
    for entry in store.read_index()?.manifests {
        let hex = |digest: &str| digest.strip_prefix("sha256:").unwrap_or(digest).to_string();
        blobs.insert(hex(&entry.digest));
        let Ok(bytes) = store.read_blob(&entry.digest, registry::MANIFEST_LIMIT) else { continue };
        let Ok(manifest) = serde_json::from_slice::<Manifest>(&bytes) else { continue };
        for layer in &manifest.layers {
            blobs.insert(hex(&layer.digest));
        }
        let Some(config) = manifest.config else { continue };
        blobs.insert(hex(&config.digest));
        let Ok(bytes) = store.read_blob(&config.digest, CONFIG_LIMIT) else { continue };
        let Ok(config) = serde_json::from_slice::<ImageConfig>(&bytes) else { continue };
        for diff_id in config.rootfs.iter().flat_map(|r| &r.diff_ids) {
            layers.insert(hex(diff_id));
        }
    }
    Ok((blobs, layers))
}

/// `--images`: one line per image: REPOSITORY, TAG, IMAGE ID (the config's
/// digest, as docker's), CREATED, SIZE (the compressed layers').
pub fn list(store: Option<&Path>) -> Result<String> {
    let store = Store::open(&store_root(store)?, Access::Read)?;
    let mut rows =
        vec![["REPOSITORY".to_string(), "TAG".into(), "IMAGE ID".into(), "CREATED".into(), "SIZE".into()]];
    for entry in store.read_index()?.manifests {
        let Some(name) = entry.annotations.get(store::REF_ANNOTATION) else { continue };
        let (repository, tag) = match Reference::parse(name) {
            Ok(r) => (
                format!("{}/{}", r.domain, r.repository),
                r.tag.or(r.digest.map(|d| format!("@{}", short(&d)))).unwrap_or_default(),
            ),
            Err(_) => (name.clone(), String::new()),
        };
        let manifest: Option<Manifest> = store
            .read_blob(&entry.digest, registry::MANIFEST_LIMIT)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let (id, created, bytes) = match &manifest {
            Some(m) => {
                let config = m.config.as_ref();
                let created = config
                    .and_then(|c| store.read_blob(&c.digest, CONFIG_LIMIT).ok())
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| {
                        v.get("created")?
                            .as_str()
                            .map(|s| s.chars().take(19).collect::<String>().replace('T', " "))
                    })
                    .unwrap_or_else(|| "-".into());
                (
                    config.map_or("-".into(), |c| short(&c.digest).to_string()),
                    created,
                    m.layers.iter().map(|l| l.size).sum::<u64>(),
                )
            }
            None => ("-".into(), "-".into(), 0),
        };
        rows.push([repository, tag, id, created, size(bytes)]);
    }
    let widths: Vec<usize> = (0..5).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
    let mut text = String::new();
    for row in &rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        text.push_str(line.join("   ").trim_end());
        text.push('\n');
    }
    Ok(text)
}

/// `--image-rm REF`: the name goes, and with it what no other image uses.
pub fn remove(reference: &str, store: Option<&Path>) -> Result<String> {
    let reference = Reference::parse(reference)?;
    let store = Store::open(&store_root(store)?, Access::Remove)?;
    let mut index = store.read_index()?;
    let name = reference.to_string();
    let before = index.manifests.len();
    index.manifests.retain(|d| d.annotations.get(store::REF_ANNOTATION) != Some(&name));
    if index.manifests.len() == before {
        bail!("no image {name} in the store");
    }
    store.write_index(&index)?;
    let (blobs, layers) = referenced(&store)?;
    let (gone_blobs, gone_layers) = store.collect_garbage(&blobs, &layers)?;
    Ok(format!("removed {name} ({gone_layers} layers and {gone_blobs} blobs no other image uses)\n"))
}

/// `--image-prune`: blobs and layers no image uses (a pull killed midway
/// leaves such).
pub fn prune(store: Option<&Path>) -> Result<String> {
    let store = Store::open(&store_root(store)?, Access::Remove)?;
    let (blobs, layers) = referenced(&store)?;
    let (gone_blobs, gone_layers) = store.collect_garbage(&blobs, &layers)?;
    Ok(format!("removed {gone_layers} layers and {gone_blobs} blobs\n"))
}

/// `--image-df`: what the store takes on disk, each file once (hard links
/// within a layer counted once).
pub fn disk_use(store: Option<&Path>) -> Result<String> {
    use std::os::unix::fs::MetadataExt as _;
    let root = store_root(store)?;
    let store = Store::open(&root, Access::Read)?;
    let mut seen = std::collections::HashSet::new();
    let mut usage = |dir: &Path| -> u64 {
        let mut total = 0;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(path) = stack.pop() {
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if seen.insert((meta.dev(), meta.ino())) {
                total += meta.blocks() * 512;
            }
            if meta.is_dir()
                && let Ok(entries) = std::fs::read_dir(&path)
            {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
        total
    };
    let images = store.read_index()?.manifests.len();
    let blobs = usage(&root.join("blobs"));
    let layers = usage(&root.join("layers"));
    let count = std::fs::read_dir(root.join("layers")).map_or(0, |d| d.count());
    Ok(format!(
        "{}: {images} images; {} of blobs (compressed layers, manifests, configs); {} of {count} unpacked layers; {} in all\n",
        root.display(),
        size(blobs),
        size(layers),
        size(blobs + layers)
    ))
}

/// `--image REF`: the image pulled if the store lacks it, its layers as
/// the container's overlay root, its configuration applied to `spec`.
pub fn prepare(run: &ImageRun, spec: &mut ContainerSpec) -> Result<InUse> {
    let reference = Reference::parse(&run.reference)?;
    let root = store_root(run.store.as_deref())?;
    // In use from here: no removal takes the layers away while the
    // container runs (a pull does not wait for that lock).
    let store = Store::open(&root, Access::Use)?;
    let present = match run.pull {
        Pull::Always => None,
        Pull::Missing | Pull::Never => local(&store, &reference)?.filter(|l| of_platform(l, run)),
    };
    let found = match (present, run.pull) {
        (Some(found), _) => found,
        (None, Pull::Never) => bail!(
            "{reference} is not in the store{}, and --pull never forbids pulling it",
            run.platform.as_ref().map(|p| format!(" for {p}")).unwrap_or_default()
        ),
        (None, _) => {
            store.begin_write()?;
            // Another pull may have finished while we waited for the lock.
            let again = match run.pull {
                Pull::Always => None,
                _ => local(&store, &reference)?.filter(|l| of_platform(l, run)),
            };
            let found = match again {
                Some(found) => found,
                None => {
                    pull_into(&store, &reference, run.platform.as_ref())
                        .with_context(|| format!("pulling {reference}"))?;
                    local(&store, &reference)?
                        .with_context(|| format!("{reference}: not in the store after its pull"))?
                }
            };
            store.end_write()?;
            found
        }
    };
    apply(run, &found, spec)?;
    Ok(InUse { _store: store })
}

/// Whether an image in the store is of the `--platform` asked for; without
/// one, whatever the store has under the name runs (as docker's).
fn of_platform(image: &Local, run: &ImageRun) -> bool {
    let config = &image.config;
    run.platform
        .as_ref()
        .is_none_or(|p| p.matches(&config.os, &config.architecture, config.variant.as_deref()))
}

/// An image in the store: its config and layer directories, uppermost first.
struct Local {
    config: ImageConfig,
    layers: Vec<PathBuf>,
}

fn local(store: &Store, reference: &Reference) -> Result<Option<Local>> {
    let Some(descriptor) = store.lookup(&reference.to_string())? else { return Ok(None) };
    if !store.has_blob(&descriptor.digest) {
        return Ok(None);
    }
    let manifest: Manifest =
        serde_json::from_slice(&store.read_blob(&descriptor.digest, registry::MANIFEST_LIMIT)?)
            .context("the stored manifest")?;
    let config_descriptor = manifest.config.context("the stored manifest has no config")?;
    let config: ImageConfig =
        serde_json::from_slice(&store.read_blob(&config_descriptor.digest, CONFIG_LIMIT)?)
            .context("the stored image config")?;
    let diff_ids = config.rootfs.as_ref().map(|r| r.diff_ids.clone()).unwrap_or_default();
    let mut layers = Vec::new();
    for diff_id in diff_ids.iter().rev() {
        let path = store.layer_path(diff_id)?;
        if !path.is_dir() {
            return Ok(None);
        }
        layers.push(path);
    }
    Ok(Some(Local { config, layers }))
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} kB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

fn base_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// `platform`: `--platform`, which chooses among an index's images and
/// which a single image must be; `None`: the machine's, from an index.
fn pull_into(store: &Store, reference: &Reference, platform: Option<&Wanted>) -> Result<()> {
    let host = Wanted::host();
    let mut registry = registry::Registry::new(reference);
    let (content_type, bytes) = registry.manifest(reference.manifest_ref())?.with_context(|| {
        format!("the registry {} has no image {reference} (manifest unknown)", reference.domain)
    })?;
    if let Some(digest) = &reference.digest
        && sha256_of(&bytes) != *digest
    {
        bail!("the registry's manifest does not match the digest {digest}");
    }
    let (mut media_type, mut bytes) = (kind_of(content_type.as_deref(), &bytes)?, bytes);
    if media_type == OCI_INDEX || media_type == DOCKER_LIST {
        let index: Manifest = serde_json::from_slice(&bytes).context("the image index is not valid JSON")?;
        let entry = choose_platform(&index.manifests, platform.unwrap_or(&host))?;
        let (content_type, chosen) = registry
            .manifest(&entry.digest)?
            .with_context(|| format!("the registry lacks the manifest {} its index names", entry.digest))?;
        if sha256_of(&chosen) != entry.digest || chosen.len() as u64 != entry.size {
            bail!("the manifest {} does not match its digest and size in the index", entry.digest);
        }
        media_type = kind_of(content_type.as_deref().or(Some(entry.media_type.as_str())), &chosen)?;
        bytes = chosen;
        if media_type == OCI_INDEX || media_type == DOCKER_LIST {
            bail!("an index inside an index is not supported");
        }
    }
    let manifest: Manifest = serde_json::from_slice(&bytes).context("the manifest is not valid JSON")?;
    let config_descriptor = manifest.config.as_ref().context("the manifest has no config")?;
    if config_descriptor.size > CONFIG_LIMIT {
        bail!("the image config is {} bytes, more than zookeeper reads", config_descriptor.size);
    }
    let mut progress = progress::Progress::new();
    if !store.has_blob(&config_descriptor.digest) {
        let mut body = registry.blob(&config_descriptor.digest).context("the image config")?;
        store
            .put_blob_stream(&config_descriptor.digest, config_descriptor.size, &mut body, &mut |_| {})
            .context("the image config")?;
    }
    let config: ImageConfig =
        serde_json::from_slice(&store.read_blob(&config_descriptor.digest, CONFIG_LIMIT)?)
            .context("the image config")?;
    if !config.os.is_empty() && config.os != "linux" {
        bail!("the image is for {}, not linux", config.os);
    }
    if let Some(platform) = platform
        && !platform.matches(&config.os, &config.architecture, config.variant.as_deref())
    {
        bail!(
            "the image is {}/{}{}, not the {platform} --platform asks for",
            config.os,
            config.architecture,
            config.variant.as_deref().map(|v| format!("/{v}")).unwrap_or_default()
        );
    }
    let rootfs = config.rootfs.as_ref().context("the image config has no rootfs")?;
    if rootfs.kind != "layers" || rootfs.diff_ids.len() != manifest.layers.len() {
        bail!(
            "the image config's rootfs ({} diff_ids) does not match the manifest's {} layers",
            rootfs.diff_ids.len(),
            manifest.layers.len()
        );
    }
    let count = manifest.layers.len();
    for (at, (layer, diff_id)) in manifest.layers.iter().zip(&rootfs.diff_ids).enumerate() {
        let label = format!("layer {}/{count} {}", at + 1, short(&layer.digest));
        let dest = store.layer_path(diff_id)?;
        if dest.is_dir() {
            progress.line(&label, "already in the store");
            continue;
        }
        let compression = compression_of(&layer.media_type)?;
        let fetched = !store.has_blob(&layer.digest);
        if fetched {
            let mut body = registry.blob(&layer.digest).with_context(|| format!("layer {}", layer.digest))?;
            store
                .put_blob_stream(&layer.digest, layer.size, &mut body, &mut |done| {
                    progress.update(&label, done, layer.size)
                })
                .with_context(|| format!("layer {}", layer.digest))?;
        }
        let lower =
            rootfs.diff_ids[..at].iter().rev().map(|d| store.layer_path(d)).collect::<Result<Vec<_>>>()?;
        let unpacked = unpack_layer(store, &layer.digest, compression, diff_id, &dest, lower);
        let outcome = match unpacked {
            Ok(outcome) => outcome,
            Err(err) => {
                if fetched && let Ok(blob) = store.blob_path(&layer.digest) {
                    let _ = std::fs::remove_file(blob);
                }
                return Err(err.context(format!("layer {}", layer.digest)));
            }
        };
        let mut text =
            format!("{}{}", size(layer.size), if fetched { " fetched, unpacked" } else { " unpacked" });
        if outcome.1 > 0 {
            text.push_str(&format!(" ({} device nodes skipped)", outcome.1));
        }
        progress.line(&label, &text);
    }
    let digest = sha256_of(&bytes);
    store.put_blob(&digest, &bytes)?;
    let descriptor =
        Descriptor { media_type, digest, size: bytes.len() as u64, annotations: Default::default() };
    store.tag(&reference.to_string(), &descriptor)
}

/// Unpacks in the layer helper; `(entries, devices skipped)`.
fn unpack_layer(
    store: &Store,
    digest: &str,
    compression: unpack::Compression,
    diff_id: &str,
    dest: &Path,
    lower: Vec<PathBuf>,
) -> Result<(u64, u64)> {
    let blob = store.blob_path(digest)?;
    let tmp = store.tmp_path("layer");
    let diff_id = diff_id.to_string();
    let dest = dest.to_path_buf();
    let answer = userns::run(move || {
        let result = unpack::unpack(&blob, compression, &tmp, &diff_id, &lower).and_then(|outcome| {
            // Renamed here: a directory moves only with write access to
            // itself, which its container owner has, not always the caller.
            std::fs::rename(&tmp, &dest).with_context(|| format!("renaming into {}", dest.display()))?;
            Ok(outcome)
        });
        match result {
            Ok(outcome) => Ok(format!("{} {}", outcome.entries, outcome.devices_skipped)),
            Err(err) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(err)
            }
        }
    })?;
    let mut numbers = answer.split_whitespace().map(|n| n.parse::<u64>().unwrap_or(0));
    Ok((numbers.next().unwrap_or(0), numbers.next().unwrap_or(0)))
}

/// The manifest's media type: the Content-Type, or its own mediaType;
/// schema 1 is refused.
fn kind_of(content_type: Option<&str>, bytes: &[u8]) -> Result<String> {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(rename = "schemaVersion", default)]
        schema_version: u32,
        #[serde(rename = "mediaType", default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let peek: Peek = serde_json::from_slice(bytes).context("the manifest is not valid JSON")?;
    let declared = content_type.map(base_type).filter(|t| t.starts_with("application/vnd."));
    let kind =
        declared.map(str::to_string).or(peek.media_type.clone()).unwrap_or_else(|| match peek.manifests {
            Some(_) => OCI_INDEX.to_string(),
            None => "application/vnd.oci.image.manifest.v1+json".to_string(),
        });
    if peek.schema_version == 1 || kind.contains("distribution.manifest.v1") {
        bail!(
            "the image has a Docker schema 1 manifest, which zookeeper does not run (push it again with a current tool)"
        );
    }
    let known = registry::MANIFEST_TYPES.contains(&kind.as_str());
    if !known {
        bail!("the manifest's type {kind} is not one zookeeper knows");
    }
    Ok(kind)
}

fn choose_platform<'a>(entries: &'a [IndexEntry], wanted: &Wanted) -> Result<&'a IndexEntry> {
    let mut seen = Vec::new();
    for entry in entries {
        let Some(platform) = &entry.platform else { continue };
        // BuildKit's attestation manifests.
        if platform.os == "unknown" && platform.architecture == "unknown" {
            continue;
        }
        seen.push(format!(
            "{}/{}{}",
            platform.os,
            platform.architecture,
            platform.variant.as_deref().map(|v| format!("/{v}")).unwrap_or_default()
        ));
        if wanted.matches(&platform.os, &platform.architecture, platform.variant.as_deref()) {
            return Ok(entry);
        }
    }
    bail!(
        "the image has no {wanted} variant (it has: {})",
        if seen.is_empty() { "none".into() } else { seen.join(", ") }
    )
}

fn compression_of(media_type: &str) -> Result<unpack::Compression> {
    use unpack::Compression as C;
    Ok(match media_type {
        "application/vnd.oci.image.layer.v1.tar" | "application/vnd.docker.image.rootfs.diff.tar" => C::None,
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip" => C::Gzip,
        "application/vnd.oci.image.layer.v1.tar+zstd" => C::Zstd,
        other => bail!("a layer of type {other}, which zookeeper does not unpack"),
    })
}

/// The image configuration applied as image-spec's conversion.md says.
fn apply(run: &ImageRun, image: &Local, spec: &mut ContainerSpec) -> Result<()> {
    let Some(top) = image.layers.first() else { bail!("the image has no layers") };
    let empty = RunConfig::default();
    let config = image.config.config.as_ref().unwrap_or(&empty);
    let (entrypoint, cmd): (Vec<String>, Vec<String>) = match &run.entrypoint {
        Some(entrypoint) if entrypoint.is_empty() => (Vec::new(), Vec::new()),
        Some(entrypoint) => (vec![entrypoint.clone()], Vec::new()),
        None => (config.entrypoint.clone().unwrap_or_default(), config.cmd.clone().unwrap_or_default()),
    };
    let mut args: Vec<std::ffi::OsString> = entrypoint.into_iter().map(Into::into).collect();
    if run.command_given {
        args.append(&mut spec.process.args);
    } else {
        args.extend(cmd.into_iter().map(Into::into));
    }
    if args.is_empty() || args[0].is_empty() {
        bail!("the image {} names no command (no Entrypoint or Cmd): give one", run.reference);
    }
    spec.process.args = args;
    for entry in config.env.iter().flatten() {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        if key.is_empty() || run.env_given.iter().any(|given| given == key) {
            continue;
        }
        let prefix = format!("{key}=");
        spec.process.env.retain(|e| !e.to_string_lossy().starts_with(&prefix));
        spec.process.env.push(entry.into());
    }
    if !run.workdir_given
        && let Some(dir) = config.working_dir.as_deref().filter(|d| !d.is_empty())
    {
        if !dir.starts_with('/') {
            bail!("the image's WorkingDir '{dir}' is not absolute");
        }
        spec.process.cwd = dir.to_string();
    }
    if spec.user_lookup.is_none()
        && let Some(user) = config.user.as_deref().filter(|u| !u.is_empty())
    {
        spec.user_lookup = Some(user.to_string());
        if !run.home_given {
            spec.process.env.retain(|e| !e.as_encoded_bytes().starts_with(b"HOME="));
        }
    }
    if let Some(request) = spec.user_lookup.take() {
        let text = |name: &str| {
            String::from_utf8_lossy(&read_image_file(&image.layers, name).unwrap_or_default()).into_owned()
        };
        let ((uid, gid, groups), home) =
            crate::users::lookup(&request, &text("etc/passwd"), &text("etc/group"))
                .map_err(|err| anyhow::anyhow!("{}", err.to_string().replacen("--user", "user", 1)))?;
        spec.process.user.uid = uid;
        spec.process.user.gid = gid;
        spec.process.user.additional_gids = groups;
        if !spec.process.env.iter().any(|e| e.as_encoded_bytes().starts_with(b"HOME=")) {
            spec.process.env.push(format!("HOME={home}").into());
        }
    }
    if let Some(name) = config.stop_signal.as_deref().filter(|n| !n.is_empty()) {
        match stop_signal(name) {
            Some(signal) => spec.stop_signal = Some(signal),
            // systemd's images ask for SIGRTMIN+3, which nix cannot name.
            None => {
                let _ = writeln!(
                    std::io::stderr(),
                    "zookeeper: note: the image's StopSignal {name} is not one zookeeper sends; SIGTERM is forwarded as it comes"
                );
            }
        }
    }
    let size = spec.overlay.as_ref().and_then(|o| o.size);
    spec.root = Some(top.clone());
    // More layers than overlayfs stacks: fuse-overlayfs if the caller has
    // it; else the child finds overlayfs refusing them and copies them.
    let fuse = match image.layers.len() > OVERLAY_MAX_LAYERS {
        true => fuse::find_program(),
        false => None,
    };
    if let Some(program) = &fuse {
        eprintln!(
            "zookeeper: note: the image's {} layers are more than overlayfs stacks ({OVERLAY_MAX_LAYERS}); running them under {}",
            image.layers.len(),
            program.display()
        );
    }
    spec.overlay =
        Some(crate::spec::Overlay { lower: image.layers[1..].to_vec(), size, fallback: true, fuse });
    // As docker: an image's programs expect /proc.
    if !spec.mounts_proc() {
        spec.mounts.insert(0, crate::spec::Mount::standard(crate::spec::MountKind::Proc));
    }
    Ok(())
}

/// An image's StopSignal: `SIGQUIT`, `QUIT` or a number.
fn stop_signal(name: &str) -> Option<nix::sys::signal::Signal> {
    use std::str::FromStr as _;
    if let Ok(number) = name.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(number).ok();
    }
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    nix::sys::signal::Signal::from_str(&full).ok()
}

/// A file as the image's merged root shows it, read as hostile: found in
/// the uppermost layer that has it, stopped by a whiteout or an opaque
/// parent, never following a link out of a layer; at most 1 MiB.
fn read_image_file(layers: &[PathBuf], relative: &str) -> Option<Vec<u8>> {
    let parent = relative.rsplit_once('/').map_or("", |(p, _)| p);
    for layer in layers {
        let Ok(root) = nix::fcntl::open(
            layer,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) else {
            return None;
        };
        match open_beneath(
            &root,
            relative,
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW,
        ) {
            Ok(fd) => {
                let stat = nix::sys::stat::fstat(&fd).ok()?;
                if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
                    return None;
                }
                let mut bytes = Vec::new();
                std::fs::File::from(fd).take(1 << 20).read_to_end(&mut bytes).ok()?;
                return Some(bytes);
            }
            // A whiteout (a 0:0 device, opened with O_NONBLOCK fails or is no file).
            Err(nix::errno::Errno::ENXIO | nix::errno::Errno::ENODEV | nix::errno::Errno::ENOTDIR) => {
                return None;
            }
            Err(_) => {}
        }
        if let Ok(dir) = open_beneath(
            &root,
            if parent.is_empty() { "." } else { parent },
            libc::O_RDONLY | libc::O_DIRECTORY,
        ) {
            if unpack::is_opaque(std::os::fd::AsFd::as_fd(&dir)) {
                return None;
            }
        }
    }
    None
}

fn open_beneath(root: &OwnedFd, path: &str, flags: i32) -> Result<OwnedFd, nix::errno::Errno> {
    let path = std::ffi::CString::new(path).map_err(|_| nix::errno::Errno::EINVAL)?;
    // SAFETY: open_how is a plain C struct of integers; zero is "nothing".
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV;
    // SAFETY: openat2 reads `path` and `how`, both alive for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(nix::errno::Errno::last());
    }
    // SAFETY: the kernel just gave this process the descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let entries: Vec<IndexEntry> = serde_json::from_str(&format!(
            r#"[{{"mediaType":"m","digest":"a","size":1,"platform":{{"architecture":"unknown","os":"unknown"}}}},
               {{"mediaType":"m","digest":"b","size":1,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
               {{"mediaType":"m","digest":"c","size":1,"platform":{{"architecture":"{}","os":"linux"}}}}]"#,
            Wanted::host().architecture
        ))
        .unwrap();
        assert_eq!(choose_platform(&entries, &Wanted::host()).unwrap().digest, "c");
        let arm = "linux/arm64".parse().unwrap();
        assert_eq!(choose_platform(&entries, &arm).unwrap().digest, "b");
        let err = choose_platform(&entries[..2], &Wanted::host()).unwrap_err().to_string();
        assert!(err.contains("linux/arm64/v8") && !err.contains("unknown"), "{err}");
    }

    #[test]
    fn stop_signals() {
        use nix::sys::signal::Signal;
        assert_eq!(stop_signal("SIGQUIT"), Some(Signal::SIGQUIT));
        assert_eq!(stop_signal("usr1"), Some(Signal::SIGUSR1));
        assert_eq!(stop_signal("15"), Some(Signal::SIGTERM));
        assert_eq!(stop_signal("SIGRTMIN+3"), None);
        assert_eq!(stop_signal("NOPE"), None);
    }

    #[test]
    fn manifest_kinds() {
        assert!(
            kind_of(None, br#"{"schemaVersion":1,"name":"x"}"#).unwrap_err().to_string().contains("schema 1")
        );
        assert!(
            kind_of(
                Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
                br#"{"schemaVersion":2}"#
            )
            .is_err()
        );
        assert_eq!(
            kind_of(Some("application/vnd.docker.distribution.manifest.v2+json"), br#"{"schemaVersion":2}"#)
                .unwrap(),
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        assert_eq!(
            kind_of(Some("application/json"), br#"{"schemaVersion":2,"manifests":[]}"#).unwrap(),
            OCI_INDEX
        );
    }
}
