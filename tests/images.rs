//! `--image`: images pulled from a real registry (Debian's docker-registry,
//! started here on a loopback port and stopped by pid) into a store, run
//! rootless and as root on an overlay of their layers with their
//! configuration; and a hostile registry (a small HTTP server in this
//! file) for what a real one does not do: wrong digests, truncated blobs,
//! layers that climb out with `../`, schema 1, token challenges,
//! redirects, 429.
//!
//! The images are built with umoci from the fixture's busybox rootfs and
//! pushed with skopeo (scripts/setup.sh installs both).

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::Digest;

const USER: As = As::User(RANGED_USER);
const WHO: [As; 2] = [USER, As::Root];

/// The registry's pid, killed when the test binary exits.
static REGISTRY_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn stop_registry() {
    let pid = REGISTRY_PID.load(Ordering::SeqCst);
    if pid > 0 {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = nix::sys::wait::waitpid(pid, None);
    }
}

struct Registry {
    /// `127.0.0.1:PORT`
    host: String,
}

fn tool(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program} ({e}): run scripts/setup.sh as root first"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A docker-registry on loopback with the test images pushed:
/// `zk/busybox:1` (OCI manifest, gzip, two layers: the second removes
/// /bin/ps (a whiteout), adds /etc/motd and replaces /opq (opaque)),
/// `:2` (the same layers, another Cmd), `:v2s2` (Docker schema 2), `:zstd`.
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(start_registry)
}

fn start_registry() -> Registry {
    let work = fixture().dir.join("registry");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let port = free_port();
    let host = format!("127.0.0.1:{port}");
    let config = work.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            work.join("storage").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(work.join("registry.log")).unwrap();
    // Waited for by stop_registry, at exit.
    #[allow(clippy::zombie_processes)]
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("docker-registry is missing: run scripts/setup.sh as root first");
    REGISTRY_PID.store(child.id() as i32, Ordering::SeqCst);
    // SAFETY: registering a plain extern "C" function with atexit.
    unsafe { libc::atexit(stop_registry) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while TcpStream::connect(&host).is_err() {
        assert!(std::time::Instant::now() < deadline, "docker-registry did not listen on {host}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    build_and_push(&work, &host);
    Registry { host }
}

fn build_and_push(work: &Path, host: &str) {
    let layout = work.join("oci");
    let image = format!("{}:bb", layout.display());
    tool("umoci", &["init", "--layout", layout.to_str().unwrap()]);
    tool("umoci", &["new", "--image", &image]);
    let b1 = work.join("b1");
    tool("umoci", &["unpack", "--image", &image, b1.to_str().unwrap()]);
    let rootfs = b1.join("rootfs");
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", fixture().rootfs.display()))
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\napp:x:1000:\nstaff:x:50:app\n").unwrap();
    std::fs::create_dir_all(rootfs.join("home/app")).unwrap();
    std::os::unix::fs::chown(rootfs.join("home/app"), Some(1000), Some(1000)).unwrap();
    std::fs::create_dir_all(rootfs.join("opq")).unwrap();
    std::fs::write(rootfs.join("opq/old"), "old\n").unwrap();
    std::fs::write(rootfs.join("bin/suid"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(rootfs.join("bin/suid"), std::os::unix::fs::PermissionsExt::from_mode(0o4755))
        .unwrap();
    std::fs::hard_link(rootfs.join("etc/group"), rootfs.join("etc/group-hardlink")).unwrap();
    tool("umoci", &["repack", "--image", &image, b1.to_str().unwrap()]);
    tool(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--config.cmd",
            "/bin/sh",
            "--config.env",
            "PATH=/bin",
            "--config.env",
            "GREETING=hello",
            "--config.workingdir",
            "/home/app",
            "--config.user",
            "app",
        ],
    );
    let b2 = work.join("b2");
    tool("umoci", &["unpack", "--image", &image, b2.to_str().unwrap()]);
    let rootfs = b2.join("rootfs");
    std::fs::remove_file(rootfs.join("bin/ps")).unwrap();
    std::fs::write(rootfs.join("etc/motd"), "motd of layer two\n").unwrap();
    std::fs::remove_dir_all(rootfs.join("opq")).unwrap();
    std::fs::create_dir(rootfs.join("opq")).unwrap();
    std::fs::write(rootfs.join("opq/new"), "new\n").unwrap();
    tool("umoci", &["repack", "--image", &image, b2.to_str().unwrap()]);
    let skopeo = |args: &[&str]| {
        let mut all = vec!["copy", "--quiet", "--dest-tls-verify=false"];
        all.extend_from_slice(args);
        tool("skopeo", &all);
    };
    let oci = format!("oci:{image}");
    skopeo(&[&oci, &format!("docker://{host}/zk/busybox:1")]);
    skopeo(&["--format", "v2s2", &oci, &format!("docker://{host}/zk/busybox:v2s2")]);
    // zstd: recompressed into a layout first (a push straight to the
    // registry would reuse the gzip blobs it has).
    let zstd = format!("oci:{}:bb", work.join("zstd").display());
    skopeo(&["--dest-compress", "--dest-compress-format", "zstd", &oci, &zstd]);
    skopeo(&[&zstd, &format!("docker://{host}/zk/busybox:zstd")]);
    tool("umoci", &["config", "--image", &image, "--config.cmd", "cat", "--config.cmd", "/etc/motd"]);
    skopeo(&[&oci, &format!("docker://{host}/zk/busybox:2")]);
    tool("umoci", &["config", "--image", &image, "--config.stopsignal", "SIGUSR1"]);
    skopeo(&[&oci, &format!("docker://{host}/zk/busybox:stop")]);
}

/// A fresh store that `who` owns.
fn fresh_store(name: &str, who: As) -> PathBuf {
    let tag = if who == As::Root { "root" } else { "user" };
    let parent = fixture().dir.join(format!("store-{name}-{tag}"));
    if parent.exists() {
        // A rootless store holds files of the user's subordinate ids.
        assert!(Command::new("rm").arg("-rf").arg(&parent).status().unwrap().success());
    }
    std::fs::create_dir(&parent).unwrap();
    if let As::User(user) = who {
        let (uid, gid) = ids_of(user);
        std::os::unix::fs::chown(&parent, Some(uid), Some(gid)).unwrap();
    }
    parent.join("store")
}

fn zk(who: As, store: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--store", store.to_str().unwrap()];
    all.extend_from_slice(args);
    zookeeper(who, &all).output().unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(read) => read.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

#[test]
fn pull_and_run_an_image_with_its_configuration() {
    let reg = registry();
    for who in WHO {
        let store = fresh_store("run", who);
        let image = format!("{}/zk/busybox:1", reg.host);
        let script = "id -u; id -g; id -G; pwd; echo $GREETING; echo $HOME; cat /etc/motd; ls /opq; \
                      test -e /bin/ps && echo ps-present || echo ps-gone; ls -l /bin/suid | cut -c1-10; \
                      ls /proc/self >/dev/null && echo proc";
        let output = zk(who, &store, &["--image", &image, "sh", "-c", script]);
        let out = ok(output.clone());
        assert_eq!(
            out,
            "1000\n1000\n1000 50\n/home/app\nhello\n/home/app\nmotd of layer two\nnew\nps-gone\n-rwsr-xr-x\nproc\n",
            "{who:?}"
        );
        let err = stderr(&output);
        assert_eq!(err.lines().filter(|l| l.contains("fetched, unpacked")).count(), 2, "{who:?}: {err}");

        // The same layers under another tag: reused, and the image's Cmd
        // runs when no command is given.
        let output = zk(who, &store, &["--image", &format!("{}/zk/busybox:2", reg.host)]);
        assert_eq!(ok(output.clone()), "motd of layer two\n");
        let err = stderr(&output);
        assert_eq!(err.lines().filter(|l| l.ends_with("already in the store")).count(), 2, "{who:?}: {err}");
        assert_eq!(entries(&store.join("layers")).len(), 2);

        // Present: no pull at all; the caller's options win over the image's.
        let output = zk(
            who,
            &store,
            &[
                "--image",
                &image,
                "-u",
                "root",
                "-w",
                "/tmp",
                "-e",
                "GREETING=bye",
                "sh",
                "-c",
                "id -u; pwd; echo $GREETING $HOME",
            ],
        );
        assert_eq!(stderr(&output), "");
        assert_eq!(ok(output), "0\n/tmp\nbye /root\n");
        // A hard link of the layer is one inode with two names.
        let out = ok(zk(
            who,
            &store,
            &["--image", &image, "stat", "-c", "%h %i", "/etc/group", "/etc/group-hardlink"],
        ));
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() == 2 && lines[0] == lines[1] && lines[0].starts_with("2 "), "{who:?}: {out}");
        // --pull always asks the registry again (and finds the layers it
        // has); --pull never refuses an image the store lacks.
        let output = zk(who, &store, &["--image", &image, "--pull", "always", "true"]);
        assert!(output.status.success(), "{who:?}: {}", stderr(&output));
        assert_eq!(stderr(&output).lines().filter(|l| l.ends_with("already in the store")).count(), 2);
        let missing = format!("{}/zk/busybox:v2s2", reg.host);
        fails_with(&zk(who, &store, &["--image", &missing, "--pull", "never", "true"]), 125, "--pull never");
        // --entrypoint replaces the Entrypoint and drops the Cmd.
        let output = zk(
            who,
            &store,
            &["--image", &format!("{}/zk/busybox:2", reg.host), "--entrypoint", "/bin/hostname"],
        );
        assert_eq!(ok(output), "zoo\n");

        // Owners land on the ids the containers see: rootless, app's 1000
        // is the subordinate range's 1000th id.
        let home = entries(&store.join("layers"))
            .iter()
            .map(|l| store.join("layers").join(l).join("home/app"))
            .find(|p| p.exists())
            .expect("home/app in a layer");
        let expected = match who {
            As::Root => 1000,
            As::User(user) => subid_range("/etc/subuid", user).unwrap().0 + 999,
        };
        assert_eq!(std::fs::metadata(&home).unwrap().uid(), expected, "{who:?}");
        assert!(
            entries(&store.join("tmp")).is_empty(),
            "tmp/ is left with {:?}",
            entries(&store.join("tmp"))
        );
        // The images' set-id programs are no other user's to reach.
        assert_eq!(std::fs::metadata(&store).unwrap().mode() & 0o777, 0o700);
        // The store is an OCI layout that skopeo reads.
        tool("skopeo", &["inspect", "--raw", &format!("oci:{}:{image}", store.display())]);
    }
}

#[test]
fn docker_schema_2_and_zstd_layers() {
    let reg = registry();
    for who in WHO {
        let store = fresh_store("formats", who);
        for tag in ["v2s2", "zstd"] {
            let image = format!("{}/zk/busybox:{tag}", reg.host);
            let output = zk(who, &store, &["--image-pull", &image]);
            assert!(output.status.success(), "{who:?} {tag}: {}", stderr(&output));
            let output = zk(who, &store, &["--image", &image, "cat", "/etc/motd", "/opq/new"]);
            assert_eq!(ok(output), "motd of layer two\nnew\n", "{who:?} {tag}");
        }
    }
}

// ---- a hostile registry ----

#[derive(Clone)]
struct Served {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Claim this Content-Length, whatever the body is (a truncated blob).
    length: Option<usize>,
}

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Served {
    Served { status, headers: vec![("Content-Type".into(), content_type.into())], body, length: None }
}

/// What a request asked: its path and its headers (lower-case names).
struct Request {
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

type Handler = Arc<dyn Fn(&Request) -> Served + Send + Sync>;

/// A one-request-per-connection HTTP server on a loopback port, for the
/// life of the test binary; every request's path and headers are kept.
struct Mock {
    host: String,
    seen: Seen,
}

/// Each request's path and headers.
type Seen = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

fn mock(handler: Handler) -> Mock {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut headers = Vec::new();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = header.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let request = Request { path: path.clone(), headers: headers.clone() };
            log.lock().unwrap().push((path, headers));
            let served = handler(&request);
            let mut head = format!(
                "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                served.status,
                served.length.unwrap_or(served.body.len())
            );
            for (k, v) in &served.headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&served.body);
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    });
    Mock { host, seen }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

/// An uncompressed layer whose entries' names are written as given (the
/// tar crate's own setters refuse `..`).
fn raw_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let entries: Vec<Entry> =
        files.iter().map(|(name, data)| Entry { name, data, ..Entry::default() }).collect();
    tar_of(&entries)
}

/// One tar entry: a regular file unless `link` is set (a symlink to it).
#[derive(Default)]
struct Entry<'a> {
    name: &'a str,
    data: &'a [u8],
    link: Option<&'a str>,
    uid: u64,
}

fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        header.set_size(entry.data.len() as u64);
        header.set_mode(0o644);
        header.set_uid(entry.uid);
        header.set_gid(entry.uid);
        header.set_mtime(1_700_000_000);
        match entry.link {
            Some(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
            }
            None => header.set_entry_type(tar::EntryType::Regular),
        }
        header.as_old_mut().name[..entry.name.len()].copy_from_slice(entry.name.as_bytes());
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(entry.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A one-layer image: (manifest, config, layer), the layer uncompressed.
fn image_of(layer: &[u8], manifest_type: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]}
    })
    .to_string()
    .into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": manifest_type,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(layer), "size": layer.len()}]
    })
    .to_string()
    .into_bytes();
    (manifest, config, layer.to_vec())
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Serves one image at `zk/bad:1`, with `fault` deciding each blob's answer.
fn serve_image(manifest: Vec<u8>, blobs: Vec<(String, Vec<u8>)>, fault: fn(&str, Vec<u8>) -> Served) -> Mock {
    mock(Arc::new(move |request: &Request| {
        if request.path == "/v2/zk/bad/manifests/1" {
            return reply(200, OCI_MANIFEST, manifest.clone());
        }
        for (digest, bytes) in &blobs {
            if request.path == format!("/v2/zk/bad/blobs/{digest}") {
                return fault(digest, bytes.clone());
            }
        }
        reply(404, "application/json", br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#.to_vec())
    }))
}

/// The store holds no layer, no temporary file, no blob but verified ones.
fn assert_store_clean(store: &Path, context: &str) {
    assert!(
        entries(&store.join("layers")).is_empty(),
        "{context}: layers {:?}",
        entries(&store.join("layers"))
    );
    assert!(entries(&store.join("tmp")).is_empty(), "{context}: tmp {:?}", entries(&store.join("tmp")));
    for blob in entries(&store.join("blobs/sha256")) {
        let bytes = std::fs::read(store.join("blobs/sha256").join(&blob)).unwrap();
        assert_eq!(sha256(&bytes), format!("sha256:{blob}"), "{context}: a blob that is not its digest");
    }
}

#[test]
fn bad_images_and_registries_are_one_line_and_leave_nothing() {
    let reg = registry();
    let good = raw_tar(&[("hello", b"hi\n")]);
    let (manifest, config, layer) = image_of(&good, OCI_MANIFEST);
    let blobs = vec![(sha256(&config), config.clone()), (sha256(&layer), layer.clone())];
    let wrong_digest = serve_image(manifest.clone(), blobs.clone(), |_, mut bytes| {
        bytes[0] ^= 1;
        reply(200, "application/octet-stream", bytes)
    });
    let truncated = serve_image(manifest.clone(), blobs.clone(), |_, bytes| Served {
        length: Some(bytes.len()),
        body: bytes[..bytes.len() / 2].to_vec(),
        ..reply(200, "application/octet-stream", Vec::new())
    });
    let escape = fixture().dir.join("escaped-by-a-layer");
    let _ = std::fs::remove_file(&escape);
    let climbing = raw_tar(&[("../../../../escaped-by-a-layer", b"out\n")]);
    let (climb_manifest, climb_config, climb_layer) = image_of(&climbing, OCI_MANIFEST);
    let climber = serve_image(
        climb_manifest,
        vec![(sha256(&climb_config), climb_config), (sha256(&climb_layer), climb_layer)],
        |_, bytes| reply(200, "application/octet-stream", bytes),
    );
    let schema1 = mock(Arc::new(|_: &Request| {
        reply(
            200,
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            br#"{"schemaVersion":1,"name":"zk/bad","tag":"1","fsLayers":[]}"#.to_vec(),
        )
    }));
    let closed = format!("127.0.0.1:{}", free_port());
    let cases: Vec<(String, &str)> = vec![
        (format!("{}/zk/nothing:1", reg.host), "manifest unknown"),
        (format!("{closed}/zk/busybox:1"), "connection refused"),
        (format!("{}/zk/bad:1", wrong_digest.host), "does not match its digest"),
        (format!("{}/zk/bad:1", truncated.host), "truncated"),
        (format!("{}/zk/bad:1", climber.host), "'..'"),
        (format!("{}/zk/bad:1", schema1.host), "schema 1"),
        ("Not/A/Reference".to_string(), "image reference"),
    ];
    // A file of uid 70000: beyond the test user's 65536 subordinate ids.
    let far = tar_of(&[Entry { name: "far", data: b"x", uid: 70000, ..Entry::default() }]);
    let (far_manifest, far_config, far_layer) = image_of(&far, OCI_MANIFEST);
    let far_owner = serve_image(
        far_manifest,
        vec![(sha256(&far_config), far_config), (sha256(&far_layer), far_layer)],
        |_, bytes| reply(200, "application/octet-stream", bytes),
    );
    for who in WHO {
        let store = fresh_store("bad", who);
        let mut cases = cases.clone();
        if who == USER {
            cases.push((
                format!("{}/zk/bad:1", far_owner.host),
                "/far is owned by 70000:70000, outside the ids this user's containers map (0-65536)",
            ));
        }
        for (image, needle) in &cases {
            let output = zk(who, &store, &["--image", image, "true"]);
            fails_with(&output, 125, needle);
            assert_store_clean(&store, &format!("{who:?} {image}"));
            assert!(!escape.exists(), "{who:?}: a layer wrote {}", escape.display());
        }
    }
}

#[test]
fn token_challenge_redirect_and_retry() {
    let layer = raw_tar(&[("hello", b"hi\n")]);
    let (manifest, config, layer) = image_of(&layer, OCI_MANIFEST);
    // The blob store a redirect sends layers to: it must never see the
    // registry's token.
    let cdn_layer = layer.clone();
    let cdn = mock(Arc::new(move |_: &Request| reply(200, "application/octet-stream", cdn_layer.clone())));
    let cdn_host = cdn.host.clone();
    let throttled = Arc::new(Mutex::new(false));
    // (tokens issued, uses of the latest)
    let tokens = Arc::new(Mutex::new((0u32, 0u32)));
    let tokens_served = tokens.clone();
    let layer_digest = sha256(&layer);
    let config_digest = sha256(&config);
    let registry = mock(Arc::new(move |request: &Request| {
        if request.path.starts_with("/token?") {
            assert!(
                request.path.contains("scope=repository%3Azk%2Fauth%3Apull")
                    || request.path.contains("scope=repository:zk/auth:pull"),
                "{}",
                request.path
            );
            let mut issued = tokens_served.lock().unwrap();
            *issued = (issued.0 + 1, 0);
            return reply(
                200,
                "application/json",
                format!(r#"{{"token":"tok-{}","expires_in":300}}"#, issued.0).into_bytes(),
            );
        }
        // A token serves two requests, then expires: the client must ask
        // for a new one.
        let valid = {
            let mut issued = tokens_served.lock().unwrap();
            let valid = issued.0 > 0
                && issued.1 < 2
                && request.header("authorization") == Some(format!("Bearer tok-{}", issued.0).as_str());
            if valid {
                issued.1 += 1;
            }
            valid
        };
        if !valid {
            let mut served = reply(401, "application/json", b"{}".to_vec());
            let realm = format!("http://{}/token", request.header("host").unwrap_or("127.0.0.1"));
            served.headers.push((
                "WWW-Authenticate".into(),
                format!(r#"Bearer realm="{realm}",service="zk-mock",scope="repository:zk/auth:pull""#),
            ));
            return served;
        }
        if request.path == "/v2/zk/auth/manifests/1" {
            return reply(200, OCI_MANIFEST, manifest.clone());
        }
        if request.path == format!("/v2/zk/auth/blobs/{config_digest}") {
            let mut once = throttled.lock().unwrap();
            if !*once {
                *once = true;
                let mut served = reply(429, "application/json", b"{}".to_vec());
                served.headers.push(("Retry-After".into(), "1".into()));
                return served;
            }
            return reply(200, "application/octet-stream", config.clone());
        }
        if request.path == format!("/v2/zk/auth/blobs/{layer_digest}") {
            let mut served = reply(307, "text/plain", Vec::new());
            served.headers.push(("Location".into(), format!("http://{cdn_host}/blob")));
            return served;
        }
        reply(404, "application/json", b"{}".to_vec())
    }));
    for who in WHO {
        let store = fresh_store("auth", who);
        let output = zk(who, &store, &["--image-pull", &format!("{}/zk/auth:1", registry.host)]);
        assert!(output.status.success(), "{who:?}: {}", stderr(&output));
        let layers = entries(&store.join("layers"));
        assert_eq!(layers.len(), 1);
        assert_eq!(
            std::fs::read_to_string(store.join("layers").join(&layers[0]).join("hello")).unwrap(),
            "hi\n"
        );
    }
    let seen = cdn.seen.lock().unwrap();
    assert!(!seen.is_empty(), "the redirect was not followed");
    for (path, headers) in seen.iter() {
        assert!(!headers.iter().any(|(k, _)| k == "authorization"), "{path}: the token went to another host");
    }
    // Each pull: a first token, and another once it expired.
    assert!(tokens.lock().unwrap().0 >= 4, "tokens issued: {}", tokens.lock().unwrap().0);
}

/// An index (Docker's manifest list) whose first entries are an attestation
/// (`unknown/unknown`) and another architecture: zookeeper fetches only
/// this machine's manifest, by digest.
#[test]
fn an_index_resolves_to_this_machines_platform() {
    let layer = raw_tar(&[("hello", b"hi\n")]);
    let (manifest, config, layer) = image_of(&layer, "application/vnd.docker.distribution.manifest.v2+json");
    let bogus = format!("sha256:{}", "f".repeat(64));
    let other = format!("sha256:{}", "e".repeat(64));
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": bogus, "size": 10, "platform": {"architecture": "unknown", "os": "unknown"}},
            {"mediaType": OCI_MANIFEST, "digest": other, "size": 10, "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": sha256(&manifest), "size": manifest.len(), "platform": {"architecture": "amd64", "os": "linux"}}
        ]
    })
    .to_string()
    .into_bytes();
    let digest = sha256(&manifest);
    let blobs = [(sha256(&config), config), (sha256(&layer), layer)];
    let registry = mock(Arc::new(move |request: &Request| {
        match request.path.as_str() {
            "/v2/zk/multi/manifests/1" => {
                return reply(200, "application/vnd.docker.distribution.manifest.list.v2+json", list.clone());
            }
            path if path == format!("/v2/zk/multi/manifests/{digest}") => {
                return reply(200, "application/vnd.docker.distribution.manifest.v2+json", manifest.clone());
            }
            _ => {}
        }
        for (digest, bytes) in &blobs {
            if request.path == format!("/v2/zk/multi/blobs/{digest}") {
                return reply(200, "application/octet-stream", bytes.clone());
            }
        }
        reply(404, "application/json", b"{}".to_vec())
    }));
    assert_eq!(std::env::consts::ARCH, "x86_64", "this test's index offers amd64 as the machine's platform");
    for who in WHO {
        let store = fresh_store("multi", who);
        let output = zk(who, &store, &["--image-pull", &format!("{}/zk/multi:1", registry.host)]);
        assert!(output.status.success(), "{who:?}: {}", stderr(&output));
        assert_eq!(entries(&store.join("layers")).len(), 1);
    }
    let seen = registry.seen.lock().unwrap();
    for (path, _) in seen.iter() {
        assert!(!path.contains(&"f".repeat(64)) && !path.contains(&"e".repeat(64)), "fetched {path}");
    }
}

#[test]
fn list_remove_prune_and_disk_use() {
    let reg = registry();
    let one = format!("{}/zk/busybox:1", reg.host);
    let two = format!("{}/zk/busybox:2", reg.host);
    for who in WHO {
        let store = fresh_store("manage", who);
        for image in [&one, &two] {
            let output = zk(who, &store, &["--image-pull", image]);
            assert!(output.status.success(), "{who:?}: {}", stderr(&output));
        }
        let list = ok(zk(who, &store, &["--images"]));
        let lines: Vec<&str> = list.lines().collect();
        assert_eq!(lines.len(), 3, "{list}");
        assert!(lines[0].starts_with("REPOSITORY"), "{list}");
        for tag in ["1", "2"] {
            assert!(
                lines.iter().any(|l| l
                    .split_whitespace()
                    .take(2)
                    .eq([format!("{}/zk/busybox", reg.host).as_str(), tag])),
                "{list}"
            );
        }
        let df = ok(zk(who, &store, &["--image-df"]));
        assert!(df.contains("2 images") && df.contains("of 2 unpacked layers"), "{df}");

        // Removal waits for no container: it refuses while one runs.
        let mut running =
            zookeeper(who, &["--store", store.to_str().unwrap(), "--image", &two, "sleep", "3"])
                .spawn()
                .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(700));
        fails_with(&zk(who, &store, &["--image-rm", &one]), 125, "in use");
        // A pull does not wait for running containers.
        let output = zk(who, &store, &["--image-pull", &format!("{}/zk/busybox:v2s2", reg.host)]);
        assert!(output.status.success(), "{who:?}: {}", stderr(&output));
        assert!(running.try_wait().unwrap().is_none(), "the pull waited for the running container");
        assert!(running.wait().unwrap().success());
        ok(zk(who, &store, &["--image-rm", &format!("{}/zk/busybox:v2s2", reg.host)]));

        // :1 shares its layers with :2: only its manifest and config go.
        let out = ok(zk(who, &store, &["--image-rm", &one]));
        assert!(out.contains("0 layers and 2 blobs"), "{out}");
        assert_eq!(entries(&store.join("layers")).len(), 2);
        assert_eq!(entries(&store.join("blobs/sha256")).len(), 4, "manifest, config, two layers of :2");
        let output = zk(who, &store, &["--image", &two, "--entrypoint", "cat", "/opq/new"]);
        assert_eq!(ok(output), "new\n");

        let out = ok(zk(who, &store, &["--image-rm", &two]));
        assert!(out.contains("2 layers and 4 blobs"), "{out}");
        assert!(entries(&store.join("layers")).is_empty());
        assert!(entries(&store.join("blobs/sha256")).is_empty());
        assert!(entries(&store.join("tmp")).is_empty(), "{:?}", entries(&store.join("tmp")));
        fails_with(&zk(who, &store, &["--image-rm", &two]), 125, "no image");

        // What no image references (a pull killed midway) goes with a prune.
        let stray = store.join("blobs/sha256").join("0".repeat(64));
        std::fs::write(&stray, "stray").unwrap();
        assert_eq!(ok(zk(who, &store, &["--image-prune"])), "removed 0 layers and 1 blobs\n");
        assert!(!stray.exists());
    }
}

/// Every entry of a tree: relative path -> (mode, uid, gid, size of a
/// regular file, link target, mtime).
type Tree = std::collections::BTreeMap<String, (u32, u32, u32, u64, Option<PathBuf>, i64)>;

fn tree(root: &Path) -> Tree {
    let mut out = Tree::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let link = meta.file_type().is_symlink().then(|| std::fs::read_link(&path).unwrap());
            let size = if meta.is_file() { meta.size() } else { 0 };
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            out.insert(relative, (meta.mode(), meta.uid(), meta.gid(), size, link, meta.mtime()));
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

/// Issue 16: a Debian minbase image (debootstrap's rootfs, packed by umoci,
/// pushed by skopeo) pulled rootless and as root unpacks file by file as
/// `umoci unpack` unpacks it as root (mode with set-id bits, owner shifted
/// by the user's map, size, link target, mtime), but for the device nodes,
/// which zookeeper skips and counts; and it runs.
#[test]
fn a_debian_image_unpacks_as_umoci_unpacks_it() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/debian-rootfs.sh");
    let out = Command::new(&script).output().unwrap();
    if out.status.code() == Some(3) {
        eprintln!("SKIPPED: no Debian rootfs could be built: {}", stderr(&out));
        return;
    }
    let rootfs = ok(out).trim().to_string();
    let reg = registry();
    let work = fixture().dir.join("debian-image");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir(&work).unwrap();
    let image = format!("{}:12", work.join("oci").display());
    let bundle = work.join("bundle");
    tool("umoci", &["init", "--layout", work.join("oci").to_str().unwrap()]);
    tool("umoci", &["new", "--image", &image]);
    tool("umoci", &["unpack", "--image", &image, bundle.to_str().unwrap()]);
    let copied =
        Command::new("cp").arg("-a").arg(format!("{rootfs}/.")).arg(bundle.join("rootfs")).status().unwrap();
    assert!(copied.success());
    tool("umoci", &["repack", "--image", &image, bundle.to_str().unwrap()]);
    tool("umoci", &["config", "--image", &image, "--config.cmd", "/bin/bash"]);
    let reference = format!("{}/zk/debian:12", reg.host);
    tool(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            &format!("oci:{image}"),
            &format!("docker://{reference}"),
        ],
    );
    let expected_dir = work.join("umoci");
    tool("umoci", &["unpack", "--image", &image, expected_dir.to_str().unwrap()]);
    let expected = tree(&expected_dir.join("rootfs"));
    let devices: Vec<&String> = expected
        .iter()
        .filter(|(_, m)| matches!(m.0 & libc::S_IFMT, libc::S_IFCHR | libc::S_IFBLK))
        .map(|(k, _)| k)
        .collect();
    assert!(!devices.is_empty(), "debootstrap's rootfs has device nodes in /dev");
    for who in WHO {
        let store = fresh_store("debian", who);
        let output = zk(who, &store, &["--image-pull", &reference]);
        let err = stderr(&output);
        assert!(output.status.success(), "{who:?}: {err}");
        assert!(err.contains(&format!("({} device nodes skipped)", devices.len())), "{who:?}: {err}");
        let layers = entries(&store.join("layers"));
        assert_eq!(layers.len(), 1);
        let got = tree(&store.join("layers").join(&layers[0]));
        let (uid_base, gid_base) = match who {
            As::Root => (None, None),
            As::User(user) => (subid_range("/etc/subuid", user), subid_range("/etc/subgid", user)),
        };
        let (own_uid, own_gid) = match who {
            As::Root => (0, 0),
            As::User(user) => ids_of(user),
        };
        let shift = |id: u32, own: u32, base: Option<(u32, u32)>| match (id, base) {
            (_, None) => id,
            (0, Some(_)) => own,
            (id, Some((first, _))) => first + id - 1,
        };
        let mut differing = Vec::new();
        for (path, (mode, uid, gid, size, link, mtime)) in &expected {
            if devices.contains(&path) {
                assert!(!got.contains_key(path), "{who:?}: device node {path} was made");
                continue;
            }
            let want = (
                *mode,
                shift(*uid, own_uid, uid_base),
                shift(*gid, own_gid, gid_base),
                *size,
                link.clone(),
                *mtime,
            );
            if got.get(path) != Some(&want) {
                differing.push(format!("{path}: ours {:?}, umoci's {want:?}", got.get(path)));
            }
        }
        let extra: Vec<&String> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
        assert!(differing.is_empty() && extra.is_empty(), "{who:?}: {differing:?} {extra:?}");
        let output = zk(
            who,
            &store,
            &[
                "--image",
                &reference,
                "bash",
                "-c",
                "cat /etc/debian_version; stat -c %U:%G:%a /etc/shadow /usr/bin/passwd",
            ],
        );
        let out = ok(output);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("12."), "{out}");
        assert_eq!(lines[1..], ["root:shadow:640", "root:root:4755"], "{who:?}");
    }
}

/// A container's writes go to its own writable layer, gone when it ends:
/// the next container from the image sees none of them, and the store's
/// layers are unchanged, entry by entry.
#[test]
fn writes_stay_in_the_containers_own_layer() {
    let reg = registry();
    let image = format!("{}/zk/busybox:1", reg.host);
    for who in WHO {
        let store = fresh_store("writes", who);
        let output = zk(who, &store, &["--image-pull", &image]);
        assert!(output.status.success(), "{who:?}: {}", stderr(&output));
        let before = tree(&store.join("layers"));
        let script = "echo a > /tmp/mark && rm /etc/motd && rm -r /opq && echo x > /home/app/f && chmod 700 /bin && echo wrote";
        assert_eq!(ok(zk(who, &store, &["--image", &image, "-u", "root", "sh", "-c", script])), "wrote\n");
        let check = "ls /tmp/mark /home/app/f 2>&1; cat /etc/motd /opq/new; stat -c %a /bin";
        let out = stdout(&zk(who, &store, &["--image", &image, "-u", "root", "sh", "-c", check]));
        assert_eq!(
            out,
            "ls: /tmp/mark: No such file or directory\nls: /home/app/f: No such file or directory\nmotd of layer two\nnew\n755\n",
            "{who:?}"
        );
        assert_eq!(tree(&store.join("layers")), before, "{who:?}: a container changed the store's layers");
    }
}

/// A layer whose symlink points out of it (`up -> ../../../..`, `abs ->
/// /`) and whose next entries go through it: they land inside the layer,
/// resolved beneath it, never beside the store.
#[test]
fn symlinked_parents_stay_inside_the_layer() {
    let outside = fixture().dir.join("reached-through-a-symlink");
    let _ = std::fs::remove_file(&outside);
    let layer = tar_of(&[
        Entry { name: "up", link: Some("../../../../.."), ..Entry::default() },
        Entry { name: "up/reached-through-a-symlink", data: b"in\n", ..Entry::default() },
        Entry { name: "abs", link: Some("/"), ..Entry::default() },
        Entry { name: "abs/via-abs", data: b"in\n", ..Entry::default() },
    ]);
    let (manifest, config, layer) = image_of(&layer, OCI_MANIFEST);
    let registry =
        serve_image(manifest, vec![(sha256(&config), config), (sha256(&layer), layer)], |_, bytes| {
            reply(200, "application/octet-stream", bytes)
        });
    for who in WHO {
        let store = fresh_store("symlinks", who);
        let output = zk(who, &store, &["--image-pull", &format!("{}/zk/bad:1", registry.host)]);
        assert!(output.status.success(), "{who:?}: {}", stderr(&output));
        let layers = entries(&store.join("layers"));
        assert_eq!(layers.len(), 1);
        let root = store.join("layers").join(&layers[0]);
        assert_eq!(entries(&root), ["abs", "reached-through-a-symlink", "up", "via-abs"], "{who:?}");
        assert!(!outside.exists(), "{who:?}: a layer wrote {}", outside.display());
    }
}

/// The image's StopSignal is what the container gets when zookeeper is
/// asked to stop (SIGTERM), as `docker stop` sends it.
#[test]
fn the_images_stop_signal_replaces_sigterm() {
    let reg = registry();
    let image = format!("{}/zk/busybox:stop", reg.host);
    for who in WHO {
        let store = fresh_store("stop", who);
        let output = zk(who, &store, &["--image-pull", &image]);
        assert!(output.status.success(), "{who:?}: {}", stderr(&output));
        let script = "trap 'echo got-usr1; exit 7' USR1; trap 'echo got-term; exit 8' TERM; echo ready; while :; do sleep 0.05; done";
        let mut child =
            zookeeper(who, &["--store", store.to_str().unwrap(), "--image", &image, "sh", "-c", script])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        // As root the test runs zookeeper itself; as the user, setpriv
        // execs it, so the pid is zookeeper's either way.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        assert_eq!(lines.next().unwrap().unwrap(), "got-usr1", "{who:?}");
        assert_eq!(child.wait().unwrap().code(), Some(7), "{who:?}");
    }
}

// ---- token authentication against the real registry ----

fn base64(bytes: &[u8], url: bool) -> String {
    let table: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(table[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

const TOKEN_USER: &str = "zkuser";
const TOKEN_PASSWORD: &str = "zk-secret";

/// A docker-registry (distribution 2.8) that wants tokens (`auth: token:`
/// in its config: realm, service, issuer, rootcertbundle), and the token
/// server it sends clients to: a mock here that signs RS256 JWTs with a key
/// made by the openssl CLI, the certificate in the token's `x5c` header and
/// in the registry's root bundle. It grants `TOKEN_USER` what it asks;
/// anyone pull of `public/*`, nothing else (an anonymous token with no
/// access, as Docker Hub gives for a private repository); wrong
/// credentials get 401. Holds `zk/private:1` and `public/busybox:1`.
struct TokenRegistry {
    host: String,
    /// (Authorization header or "", scope) of each token request.
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

fn token_registry() -> &'static TokenRegistry {
    static REGISTRY: OnceLock<TokenRegistry> = OnceLock::new();
    REGISTRY.get_or_init(start_token_registry)
}

fn start_token_registry() -> TokenRegistry {
    // The plain registry's build leaves the OCI layout this one is fed from.
    registry();
    let work = fixture().dir.join("token-registry");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let (key, cert) = (work.join("key.pem"), work.join("cert.pem"));
    tool(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=zk-token-issuer",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    let der = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in", cert.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(der.status.success());
    let x5c = base64(&der.stdout, false);
    let requests: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    let good = format!("Basic {}", base64(format!("{TOKEN_USER}:{TOKEN_PASSWORD}").as_bytes(), false));
    let sign_key = key.clone();
    let server = mock(Arc::new(move |request: &Request| {
        let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
        if path != "/token" {
            return reply(404, "application/json", b"{}".to_vec());
        }
        let params: Vec<(String, String)> = query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (percent_decode(k), percent_decode(v)))
            .collect();
        let authorization = request.header("authorization").unwrap_or("").to_string();
        let scopes: Vec<&String> = params.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v).collect();
        log.lock()
            .unwrap()
            .push((authorization.clone(), scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")));
        let user = match authorization.as_str() {
            "" => None,
            given if given == good => Some(TOKEN_USER),
            _ => return reply(401, "application/json", br#"{"details":"wrong credentials"}"#.to_vec()),
        };
        let mut access = Vec::new();
        for scope in scopes {
            // repository:NAME:ACTIONS
            let mut parts = scope.rsplitn(2, ':');
            let (Some(actions), Some(resource)) = (parts.next(), parts.next()) else { continue };
            let Some(name) = resource.strip_prefix("repository:") else { continue };
            let granted: Vec<&str> = actions
                .split(',')
                .filter(|a| user.is_some() || (*a == "pull" && name.starts_with("public/")))
                .collect();
            if !granted.is_empty() {
                access.push(serde_json::json!({"type": "repository", "name": name, "actions": granted}));
            }
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
        let claims = serde_json::json!({
            "iss": "zk-token-issuer", "sub": user.unwrap_or(""), "aud": "zk-registry",
            "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("zk-{now}-{}", access.len()),
            "access": access,
        });
        let signed = format!(
            "{}.{}",
            base64(header.to_string().as_bytes(), true),
            base64(claims.to_string().as_bytes(), true)
        );
        let mut openssl = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign", sign_key.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        openssl.stdin.take().unwrap().write_all(signed.as_bytes()).unwrap();
        let signature = openssl.wait_with_output().unwrap();
        assert!(signature.status.success());
        let token = format!("{signed}.{}", base64(&signature.stdout, true));
        reply(
            200,
            "application/json",
            serde_json::json!({"token": token, "access_token": token, "expires_in": 300})
                .to_string()
                .into_bytes(),
        )
    }));
    let port = free_port();
    let host = format!("127.0.0.1:{port}");
    let config = work.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n\
             auth:\n  token:\n    realm: http://{}/token\n    service: zk-registry\n    issuer: zk-token-issuer\n    rootcertbundle: {}\n",
            work.join("storage").display(),
            server.host,
            cert.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(work.join("registry.log")).unwrap();
    // Waited for by stop_token_registry, at exit.
    #[allow(clippy::zombie_processes)]
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("docker-registry is missing: run scripts/setup.sh as root first");
    TOKEN_REGISTRY_PID.store(child.id() as i32, Ordering::SeqCst);
    // SAFETY: registering a plain extern "C" function with atexit.
    unsafe { libc::atexit(stop_token_registry) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while TcpStream::connect(&host).is_err() {
        assert!(std::time::Instant::now() < deadline, "docker-registry did not listen on {host}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let layout = format!("oci:{}:bb", fixture().dir.join("registry/oci").display());
    let creds = format!("{TOKEN_USER}:{TOKEN_PASSWORD}");
    for name in ["zk/private:1", "public/busybox:1"] {
        tool(
            "skopeo",
            &[
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--dest-creds",
                &creds,
                &layout,
                &format!("docker://{host}/{name}"),
            ],
        );
    }
    // The pushes asked for tokens too; the tests count their own.
    requests.lock().unwrap().clear();
    TokenRegistry { host, requests }
}

static TOKEN_REGISTRY_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn stop_token_registry() {
    let pid = TOKEN_REGISTRY_PID.load(Ordering::SeqCst);
    if pid > 0 {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = nix::sys::wait::waitpid(pid, None);
    }
}

/// A directory for `$XDG_RUNTIME_DIR` that `who` owns, holding
/// `containers/auth.json` with `auth` for `registry` if given.
fn runtime_dir(name: &str, who: As, registry: &str, auth: Option<&str>) -> PathBuf {
    let tag = if who == As::Root { "root" } else { "user" };
    let dir = fixture().dir.join(format!("xdg-{name}-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("containers")).unwrap();
    if let Some(auth) = auth {
        std::fs::write(
            dir.join("containers/auth.json"),
            serde_json::json!({"auths": {registry: {"auth": auth}}}).to_string(),
        )
        .unwrap();
    }
    if let As::User(user) = who {
        let status =
            Command::new("chown").args(["-R", &format!("{user}:{user}")]).arg(&dir).status().unwrap();
        assert!(status.success());
    }
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    dir
}

/// Issue 16: token authentication against Debian's docker-registry with
/// its `auth: token:` config: a pull with the credentials of
/// `$XDG_RUNTIME_DIR/containers/auth.json` succeeds (Basic to the token
/// server only, the signed token to the registry); wrong credentials, and
/// none for a repository that needs them, are one line, status 125, and
/// nothing in the store; the anonymous token the server grants for a
/// public repository pulls it without credentials.
#[test]
fn token_auth_against_the_real_registry() {
    let reg = token_registry();
    let private = format!("{}/zk/private:1", reg.host);
    let public = format!("{}/public/busybox:1", reg.host);
    let good = base64(format!("{TOKEN_USER}:{TOKEN_PASSWORD}").as_bytes(), false);
    let wrong = base64(format!("{TOKEN_USER}:not-the-password").as_bytes(), false);
    let pull = |who: As, store: &Path, xdg: &Path, image: &str| {
        zookeeper(who, &["--store", store.to_str().unwrap(), "--image", image, "cat", "/etc/motd"])
            .env("XDG_RUNTIME_DIR", xdg)
            .output()
            .unwrap()
    };
    for who in WHO {
        // The right credentials: pulled and run.
        reg.requests.lock().unwrap().clear();
        let store = fresh_store("token-good", who);
        let xdg = runtime_dir("good", who, &reg.host, Some(&good));
        let output = pull(who, &store, &xdg, &private);
        assert_eq!(ok(output), "motd of layer two\n", "{who:?}");
        let requests = reg.requests.lock().unwrap().clone();
        assert!(!requests.is_empty(), "{who:?}: no token was asked for");
        for (authorization, scope) in &requests {
            assert_eq!(authorization, &format!("Basic {good}"), "{who:?}");
            assert_eq!(scope, "repository:zk/private:pull", "{who:?}");
        }

        // Wrong credentials: the token server refuses them.
        let store = fresh_store("token-wrong", who);
        let xdg = runtime_dir("wrong", who, &reg.host, Some(&wrong));
        let output = pull(who, &store, &xdg, &private);
        fails_with(&output, 125, "refused the credentials stored for");
        assert_store_clean(&store, &format!("{who:?} wrong credentials"));
        assert!(entries(&store.join("blobs/sha256")).is_empty(), "{who:?}");

        // None: an anonymous token with no access, and the registry's 401.
        let store = fresh_store("token-none", who);
        let xdg = runtime_dir("none", who, &reg.host, None);
        let output = pull(who, &store, &xdg, &private);
        fails_with(&output, 125, "access denied (401)");
        assert!(stderr(&output).contains("none are stored for"), "{who:?}: {}", stderr(&output));
        assert_store_clean(&store, &format!("{who:?} no credentials"));
        assert!(entries(&store.join("blobs/sha256")).is_empty(), "{who:?}");

        // A public repository: the anonymous token is enough.
        reg.requests.lock().unwrap().clear();
        let output = pull(who, &store, &xdg, &public);
        assert_eq!(ok(output), "motd of layer two\n", "{who:?}");
        let requests = reg.requests.lock().unwrap().clone();
        assert!(!requests.is_empty() && requests.iter().all(|(a, _)| a.is_empty()), "{who:?}: {requests:?}");
    }
}

// ---- progress, --platform, --image-inspect and ExposedPorts ----

/// `len` bytes that gzip cannot shrink (a layer that takes a while).
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// What zookeeper writes on stderr when stderr is a pty the test owns (the
/// pty's other end read until zookeeper and its children close it).
fn stderr_on_a_pty(mut command: Command) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let nix::pty::OpenptyResult { master, slave } = nix::pty::openpty(
        Some(&nix::pty::Winsize { ws_row: 30, ws_col: 120, ws_xpixel: 0, ws_ypixel: 0 }),
        None,
    )
    .unwrap();
    for fd in [&master, &slave] {
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).unwrap();
    }
    command.env("TERM", "xterm").stdout(std::process::Stdio::null()).stderr(slave);
    let mut child = command.spawn().unwrap();
    // The test's copy of the slave goes with the command: end of output is
    // then EIO on the master.
    drop(command);
    let mut seen = Vec::new();
    let mut master = std::fs::File::from(master);
    let mut buffer = [0u8; 4096];
    while let Ok(n) = master.read(&mut buffer) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buffer[..n]);
    }
    (child.wait().unwrap(), String::from_utf8_lossy(&seen).into_owned())
}

/// A pull on a terminal draws a progress bar per layer (indicatif) and
/// leaves the layer's line in its place; without a terminal it writes the
/// line alone, nothing else.
#[test]
fn a_progress_bar_on_a_terminal_and_one_line_per_layer_otherwise() {
    let layer = raw_tar(&[("noise", &noise(6 << 20))]);
    let (manifest, config, layer) = image_of(&layer, OCI_MANIFEST);
    let short = sha256(&layer)["sha256:".len()..][..12].to_string();
    let registry =
        serve_image(manifest, vec![(sha256(&config), config), (sha256(&layer), layer)], |_, bytes| {
            reply(200, "application/octet-stream", bytes)
        });
    let image = format!("{}/zk/bad:1", registry.host);
    let line = format!("zookeeper: layer 1/1 {short}: 6.0 MB fetched, unpacked");
    for who in WHO {
        let store = fresh_store("progress-tty", who);
        let (status, seen) =
            stderr_on_a_pty(zookeeper(who, &["--store", store.to_str().unwrap(), "--image-pull", &image]));
        assert!(status.success(), "{who:?}: {seen}");
        assert!(seen.contains(&format!("zookeeper: layer 1/1 {short}: [")), "{who:?}: no bar in {seen:?}");
        assert!(seen.contains("=") && seen.contains("MiB"), "{who:?}: {seen:?}");
        // The bar is cleared (indicatif erases its line) and the layer's line stays.
        assert!(seen.contains("\x1b[") || seen.contains('\r'), "{who:?}: {seen:?}");
        assert!(seen.trim_end().ends_with(&line), "{who:?}: {seen:?}");

        let store = fresh_store("progress-pipe", who);
        let output = zk(who, &store, &["--image-pull", &image]);
        assert!(output.status.success(), "{who:?}: {}", stderr(&output));
        assert_eq!(stderr(&output), format!("{line}\n"), "{who:?}");
    }
}

/// One image for amd64 (busybox and /arch) and one for arm64/v8 (/arch
/// alone) behind an OCI index that also lists an attestation: `--platform`
/// chooses, for `--image-pull` and `--image`; an image in the store of
/// another platform counts as missing; a platform the index lacks, one a
/// single image is not, and a bad spelling are one line and status 125.
#[test]
fn platform_chooses_from_a_two_platform_index() {
    let mut amd64_layer = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    let busybox = std::fs::read("/bin/busybox").unwrap();
    header.set_size(busybox.len() as u64);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header.set_entry_type(tar::EntryType::Regular);
    amd64_layer.append_data(&mut header, "busybox", busybox.as_slice()).unwrap();
    // What zookeeper mounts over or binds into.
    for dir in ["proc", "dev", "sys", "etc", "tmp"] {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(0);
        amd64_layer.append_data(&mut header, dir, &b""[..]).unwrap();
    }
    let mut header = tar::Header::new_ustar();
    header.set_size(6);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    amd64_layer.append_data(&mut header, "arch", &b"amd64\n"[..]).unwrap();
    let amd64_layer = amd64_layer.into_inner().unwrap();
    let arm64_layer = raw_tar(&[("arch", b"arm64\n")]);
    let image = |layer: &[u8], arch: &str, variant: Option<&str>| {
        let mut config = serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": {"Entrypoint": ["/busybox"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]}
        });
        if let Some(variant) = variant {
            config["variant"] = variant.into();
        }
        let config = config.to_string().into_bytes();
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(layer), "size": layer.len()}]
        })
        .to_string()
        .into_bytes();
        (manifest, config)
    };
    let (amd64_manifest, amd64_config) = image(&amd64_layer, "amd64", None);
    let (arm64_manifest, arm64_config) = image(&arm64_layer, "arm64", Some("v8"));
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": format!("sha256:{}", "f".repeat(64)), "size": 10, "platform": {"architecture": "unknown", "os": "unknown"}},
            {"mediaType": OCI_MANIFEST, "digest": sha256(&arm64_manifest), "size": arm64_manifest.len(), "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": OCI_MANIFEST, "digest": sha256(&amd64_manifest), "size": amd64_manifest.len(), "platform": {"architecture": "amd64", "os": "linux"}}
        ]
    })
    .to_string()
    .into_bytes();
    let blobs: Vec<(String, Vec<u8>, &str)> = vec![
        (sha256(&amd64_manifest), amd64_manifest, OCI_MANIFEST),
        (sha256(&arm64_manifest), arm64_manifest, OCI_MANIFEST),
        (sha256(&amd64_config), amd64_config, "application/octet-stream"),
        (sha256(&arm64_config), arm64_config, "application/octet-stream"),
        (sha256(&amd64_layer), amd64_layer.clone(), "application/octet-stream"),
        (sha256(&arm64_layer), arm64_layer.clone(), "application/octet-stream"),
    ];
    let multi = mock(Arc::new(move |request: &Request| {
        if request.path == "/v2/zk/multi/manifests/1" {
            return reply(200, "application/vnd.oci.image.index.v1+json", index.clone());
        }
        for (digest, bytes, kind) in &blobs {
            if request.path == format!("/v2/zk/multi/manifests/{digest}")
                || request.path == format!("/v2/zk/multi/blobs/{digest}")
            {
                return reply(200, kind, bytes.clone());
            }
        }
        reply(404, "application/json", b"{}".to_vec())
    }));
    let reference = format!("{}/zk/multi:1", multi.host);
    let arch_of = |store: &Path| -> Vec<String> {
        entries(&store.join("layers"))
            .iter()
            .filter_map(|l| std::fs::read_to_string(store.join("layers").join(l).join("arch")).ok())
            .collect()
    };
    let plain = format!("{}/zk/busybox:1", registry().host);
    for who in WHO {
        let store = fresh_store("platform", who);
        let output = zk(who, &store, &["--image-pull", &reference, "--platform", "linux/arm64/v8"]);
        assert!(output.status.success(), "{who:?}: {}", stderr(&output));
        assert_eq!(arch_of(&store), ["arm64\n"], "{who:?}");
        // The store's image is arm64: for linux/amd64 it is missing.
        fails_with(
            &zk(
                who,
                &store,
                &["--image", &reference, "--platform", "linux/amd64", "--pull", "never", "cat", "/arch"],
            ),
            125,
            "not in the store for linux/amd64",
        );
        let output = zk(who, &store, &["--image", &reference, "--platform", "linux/amd64", "cat", "/arch"]);
        assert!(stderr(&output).contains("fetched, unpacked"), "{who:?}: {}", stderr(&output));
        assert_eq!(ok(output), "amd64\n", "{who:?}");
        // Now present for amd64: no pull.
        let output = zk(who, &store, &["--image", &reference, "--platform", "linux/amd64", "cat", "/arch"]);
        assert_eq!(stderr(&output), "", "{who:?}");
        assert_eq!(ok(output), "amd64\n", "{who:?}");
        // The machine's platform is the default.
        let store = fresh_store("platform-default", who);
        let output = zk(who, &store, &["--image", &reference, "cat", "/arch"]);
        assert_eq!(ok(output), "amd64\n", "{who:?}");

        let store = fresh_store("platform-bad", who);
        fails_with(
            &zk(who, &store, &["--image-pull", &reference, "--platform", "linux/s390x"]),
            125,
            "no linux/s390x variant (it has: linux/arm64/v8, linux/amd64)",
        );
        assert_store_clean(&store, &format!("{who:?} s390x"));
        fails_with(
            &zk(who, &store, &["--image-pull", &plain, "--platform", "linux/arm64"]),
            125,
            "the image is linux/amd64, not the linux/arm64 --platform asks for",
        );
        assert_store_clean(&store, &format!("{who:?} single image"));
        fails_with(&zk(who, &store, &["--image-pull", &reference, "--platform", "linux"]), 125, "OS/ARCH");
        fails_with(&zk(who, &store, &["--images", "--platform", "linux/amd64"]), 125, "--platform");
    }
    assert_eq!(std::env::consts::ARCH, "x86_64", "this test's index offers amd64 as the machine's platform");
}

/// `--image-inspect` lists an image's configuration, its ExposedPorts
/// among it; running the image with a network (-n) publishes none of them
/// (the port the image exposes, listened on inside, is closed on the host),
/// and `--publish` does publish one (so the listener was real).
#[test]
fn exposed_ports_are_listed_and_never_published_without_publish() {
    let reg = registry();
    let port = free_port();
    let work = fixture().dir.join("ports-image");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir(&work).unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(fixture().dir.join("registry/oci"))
        .arg(work.join("oci"))
        .status()
        .unwrap();
    assert!(copied.success());
    let layout = format!("{}:bb", work.join("oci").display());
    tool(
        "umoci",
        &[
            "config",
            "--image",
            &layout,
            "--tag",
            "ports",
            "--config.exposedports",
            &format!("{port}/tcp"),
            "--config.label",
            "zk.test=ports",
        ],
    );
    let image = format!("{}/zk/ports:1", reg.host);
    tool(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            &format!("oci:{}:ports", work.join("oci").display()),
            &format!("docker://{image}"),
        ],
    );
    let listening_on_host = |port: u16| {
        let wanted = format!(":{port:04X} ");
        ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|file| {
            std::fs::read_to_string(file).unwrap_or_default().lines().skip(1).any(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                fields.len() > 3 && format!("{} ", fields[1]).ends_with(&wanted) && fields[3] == "0A"
            })
        })
    };
    for who in WHO {
        let store = fresh_store("ports", who);
        fails_with(&zk(who, &store, &["--image-inspect", &image]), 125, "no image");
        assert!(zk(who, &store, &["--image-pull", &image]).status.success());
        let out = ok(zk(who, &store, &["--image-inspect", &image]));
        for line in [
            format!("reference:      {image}"),
            format!("exposed ports:  {port}/tcp"),
            "platform:       linux/amd64".to_string(),
            "cmd:            [\"cat\",\"/etc/motd\"]".to_string(),
            "user:           app".to_string(),
            "working dir:    /home/app".to_string(),
            "stop signal:    SIGUSR1".to_string(),
            "env:            GREETING=hello".to_string(),
            "label:          zk.test=ports".to_string(),
        ] {
            assert!(out.lines().any(|l| l == line), "{who:?}: no line {line:?} in\n{out}");
        }

        // Listening inside on the exposed port, with a network: not on the host.
        let script = format!(
            "nc -ll -p {port} -e echo hi & for i in $(seq 100); do netstat -ltn | grep -q ':{port} ' && break; sleep 0.05; done; \
             echo listening; sleep 3"
        );
        let publish = free_port();
        let published = format!("{publish}:{port}");
        for extra in [vec!["-n"], vec!["--publish", published.as_str()]] {
            let mut args = vec!["--store", store.to_str().unwrap(), "--image", &image, "-u", "root"];
            args.extend(extra.iter().copied());
            args.extend(["sh", "-c", &script]);
            let mut child = zookeeper(who, &args).stdout(std::process::Stdio::piped()).spawn().unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            assert_eq!(lines.next().unwrap().unwrap(), "listening", "{who:?} {extra:?}");
            assert!(!listening_on_host(port), "{who:?} {extra:?}: port {port} listens on the host");
            assert!(
                TcpStream::connect(("127.0.0.1", port)).is_err(),
                "{who:?} {extra:?}: port {port} answers on the host"
            );
            if extra[0] == "--publish" {
                let mut answer = String::new();
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while answer.is_empty() && std::time::Instant::now() < deadline {
                    if let Ok(stream) = TcpStream::connect(("127.0.0.1", publish)) {
                        let _ = BufReader::new(stream).read_line(&mut answer);
                    }
                    if answer.is_empty() {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
                assert_eq!(answer, "hi\n", "{who:?}: --publish {publish}:{port} did not reach the listener");
            }
            assert!(child.wait().unwrap().success(), "{who:?} {extra:?}");
        }
    }
}

/// A zookeeper SIGKILLed while an image container runs: its container goes
/// (parent-death signal), and with its last process its mount namespace,
/// the only holder of the tmpfs with the writable layer (`upper`, `work`):
/// nothing of it reaches the store or the disk. The store's shared lock
/// goes with the process, so the image can be removed at once. What the
/// kernel cannot take along, the `/tmp/zoo.*` directory (kept by the
/// network helper's socket) and the `zoo-<pid>` cgroup, stays until
/// `--cleanup`, which removes it.
#[test]
fn a_killed_image_container_leaves_nothing_after_cleanup() {
    let reg = registry();
    let image = format!("{}/zk/busybox:1", reg.host);
    let v1_limits = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
    for who in WHO {
        let store = fresh_store("kill", who);
        let output = zk(who, &store, &["--image-pull", &image]);
        assert!(output.status.success(), "{who:?}: {}", stderr(&output));
        let layers_before = tree(&store.join("layers"));
        let mut args = vec!["--store", store.to_str().unwrap(), "--image", &image, "-u", "root", "-n"];
        // Root's memory limit makes a cgroup (v1 hierarchies are root's).
        if who == As::Root && v1_limits {
            args.extend(["-m", "64M"]);
        }
        let script = "dd if=/dev/zero of=/big bs=1k count=1024 2>/dev/null; echo x >> /etc/passwd; \
                      echo ready; exec sleep 100";
        args.extend(["sh", "-c", script]);
        let mut child = zookeeper(who, &args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n", "{who:?}");
        let zk_pid = child.id();
        // The container (and slirp4netns beside it).
        let helpers = children_of(zk_pid);
        assert_eq!(helpers.len(), 2, "{who:?}: the container and slirp4netns: {helpers:?}");
        // Its mountpoint directory, which zookeeper holds open and locked.
        let zoo_dir = std::fs::read_dir(format!("/proc/{zk_pid}/fd"))
            .unwrap()
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .find(|target| target.to_string_lossy().starts_with("/tmp/zoo."))
            .expect("zookeeper holds its /tmp/zoo.* directory");
        // The cgroup is named after the container's first process.
        let cgroups: Vec<String> = helpers.iter().map(|pid| format!("/zoo-{pid}")).collect();
        let has_cgroup = || zoo_cgroups().iter().any(|c| cgroups.iter().any(|name| c.ends_with(name)));
        if who == As::Root && v1_limits {
            assert!(has_cgroup(), "{who:?}: no cgroup {cgroups:?} while the container runs");
        }
        // A running container holds the store: it cannot be removed.
        fails_with(&zk(who, &store, &["--image-rm", &image]), 125, "in use");

        nix::sys::signal::kill(nix::unistd::Pid::from_raw(zk_pid as i32), nix::sys::signal::SIGKILL).unwrap();
        child.wait().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while helpers.iter().any(|pid| Path::new(&format!("/proc/{pid}")).exists()) {
            assert!(std::time::Instant::now() < deadline, "{who:?}: the container outlived zookeeper");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // Nothing of the writable layer is on disk: not in the store, not
        // in its tmp/, not in the mountpoint directory.
        assert_eq!(tree(&store.join("layers")), layers_before, "{who:?}: the store's layers changed");
        assert!(
            entries(&store.join("tmp")).is_empty(),
            "{who:?}: tmp/ holds {:?}",
            entries(&store.join("tmp"))
        );
        assert!(zoo_dir.is_dir(), "{who:?}: {} went before --cleanup", zoo_dir.display());
        if who == As::Root && v1_limits {
            assert!(has_cgroup(), "{who:?}: the cgroup {cgroups:?} went before --cleanup");
        }
        let dirs: Vec<String> = entries(&zoo_dir).into_iter().filter(|n| zoo_dir.join(n).is_dir()).collect();
        assert!(dirs.is_empty(), "{who:?}: directories in {}: {dirs:?}", zoo_dir.display());
        // The lock went with the process: the image can go at once.
        let output = zk(who, &store, &["--image-rm", &image]);
        assert!(output.status.success(), "{who:?}: {}", stderr(&output));
        assert!(entries(&store.join("layers")).is_empty(), "{who:?}");

        let report = ok(zookeeper(who, &["--cleanup"]).output().unwrap());
        assert!(!zoo_dir.exists(), "{who:?}: --cleanup left {}: {report}", zoo_dir.display());
        assert!(!has_cgroup(), "{who:?}: --cleanup left the cgroup {cgroups:?}: {report}");
    }
}

// ---- many layers ----

/// One tar entry of [`layer_tar`]: a directory when `data` is `None`.
fn layer_tar(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        match data {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, name, std::io::empty()).unwrap();
            }
            Some(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(bytes.len() as u64);
                builder.append_data(&mut header, name, *bytes).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

/// An image of `count` layers served at `zk/many:1`: the busybox rootfs,
/// then `count - 2` tiny layers that each add `/stack/N` and replace
/// `/stack/top` (the first of them also adds `/stack/gone` and `/opq/old`),
/// then a top layer that writes `/stack/top` once more, whites out
/// `/stack/gone` and makes `/opq` opaque with `/opq/new` in it.
fn serve_many_layers(count: usize) -> Mock {
    let mut base = tar::Builder::new(Vec::new());
    base.follow_symlinks(false);
    base.append_dir_all(".", &fixture().rootfs).unwrap();
    let mut layers = vec![base.into_inner().unwrap()];
    for i in 1..count - 1 {
        let (number, top) = (format!("stack/{i}"), i.to_string().into_bytes());
        let mut entries: Vec<(&str, Option<&[u8]>)> =
            vec![("stack", None), (&number, Some(b"")), ("stack/top", Some(&top))];
        if i == 1 {
            entries.extend([
                ("stack/gone", Some(&b"gone\n"[..])),
                ("opq", None),
                ("opq/old", Some(b"old\n")),
            ]);
        }
        layers.push(layer_tar(&entries));
    }
    layers.push(layer_tar(&[
        ("stack", None),
        ("stack/top", Some(b"top")),
        ("stack/.wh.gone", Some(b"")),
        ("opq", None),
        ("opq/.wh..wh..opq", Some(b"")),
        ("opq/new", Some(b"new\n")),
    ]));
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    })
    .to_string()
    .into_bytes();
    let descriptors: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(l), "size": l.len()})
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": descriptors
    })
    .to_string()
    .into_bytes();
    let mut blobs: std::collections::HashMap<String, Vec<u8>> =
        layers.into_iter().map(|l| (format!("/v2/zk/many/blobs/{}", sha256(&l)), l)).collect();
    blobs.insert(format!("/v2/zk/many/blobs/{}", sha256(&config)), config);
    mock(Arc::new(move |request: &Request| {
        if request.path == "/v2/zk/many/manifests/1" {
            return reply(200, OCI_MANIFEST, manifest.clone());
        }
        match blobs.get(&request.path) {
            Some(bytes) => reply(200, "application/octet-stream", bytes.clone()),
            None => reply(404, "application/json", br#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#.to_vec()),
        }
    }))
}

/// What a container of [`serve_many_layers`]' image sees, and what it
/// should see.
const MANY_CHECK: &str = "cat /stack/top; echo; ls /stack | wc -l; ls /opq; test -e /stack/gone || echo gone-is-gone; \
                          touch /stack/written && echo writable";

fn many_expected(count: usize) -> String {
    // stack/1 .. stack/(count - 2) and top.
    format!("top\n{}\nnew\ngone-is-gone\nwritable\n", count - 1)
}

/// 300 layers: more than the mount options' one page holds as
/// `/proc/self/fd/N` names, fewer than overlayfs's 500. The new mount API
/// stacks them one `lowerdir+` at a time: native overlay, no note; the top
/// layer's files, whiteout and opaque directory win.
#[test]
fn three_hundred_layers_stack_natively() {
    let registry = serve_many_layers(300);
    let image = format!("{}/zk/many:1", registry.host);
    for who in WHO {
        let store = fresh_store("many", who);
        let output = zk(who, &store, &["--image-pull", &image]);
        assert!(output.status.success(), "{who:?}: {}", stderr(&output));
        assert_eq!(entries(&store.join("layers")).len(), 300, "{who:?}");
        let output = zk(who, &store, &["--image", &image, "-u", "root", "sh", "-c", MANY_CHECK]);
        assert_eq!(stderr(&output), "", "{who:?}: no note, no fallback");
        assert_eq!(ok(output), many_expected(300), "{who:?}");
        // And natively: the root is an overlay.
        let out = ok(zk(
            who,
            &store,
            &["--image", &image, "sh", "-c", "grep -c ' / / .* - overlay ' /proc/self/mountinfo"],
        ));
        assert_eq!(out, "1\n", "{who:?}");
    }
}

/// fuse-overlayfs processes on the host.
fn fuse_daemons() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "fuse-overlayfs\n")
        })
        .collect()
}

/// 510 layers: more than overlayfs stacks (500), which the kernel refuses
/// for real. With fuse-overlayfs on the caller's PATH (Debian's package,
/// scripts/setup.sh) the container runs on it; with a PATH that lacks it,
/// on a merged copy of the layers in its writable tmpfs. Either way one
/// note says which, the container sees what an overlay would show
/// (the top layer's files, whiteout, opaque directory), its writes are its
/// own, and nothing is left behind: no daemon, no mount, no directory.
#[test]
fn more_layers_than_overlayfs_stacks_run_under_fuse_overlayfs_or_a_copy() {
    let registry = serve_many_layers(510);
    let image = format!("{}/zk/many:1", registry.host);
    // A PATH with the id-map helpers and no fuse-overlayfs.
    let bare = fixture().dir.join("path-without-fuse-overlayfs");
    if !bare.exists() {
        std::fs::create_dir(&bare).unwrap();
        for helper in ["newuidmap", "newgidmap"] {
            std::os::unix::fs::symlink(format!("/usr/bin/{helper}"), bare.join(helper)).unwrap();
        }
    }
    assert!(
        Path::new("/usr/bin/fuse-overlayfs").exists(),
        "fuse-overlayfs is missing: run scripts/setup.sh as root first"
    );
    for who in WHO {
        let store = fresh_store("too-many", who);
        let output = zk(who, &store, &["--image-pull", &image]);
        assert!(output.status.success(), "{who:?}: {}", stderr(&output));
        for (path, way) in [(None, "fuse-overlayfs"), (Some(&bare), "copy")] {
            let tmp_before = zoo_tmp_dirs();
            let run = |args: &[&str]| {
                let mut all = vec!["--store", store.to_str().unwrap()];
                all.extend_from_slice(args);
                let mut command = zookeeper(who, &all);
                if let Some(path) = path {
                    command.env("PATH", path);
                }
                command.output().unwrap()
            };
            let started = std::time::Instant::now();
            let output = run(&["--image", &image, "-u", "root", "sh", "-c", MANY_CHECK]);
            let took = started.elapsed();
            let err = stderr(&output);
            let notes: Vec<&str> = err.lines().collect();
            assert_eq!(notes.len(), 1, "{who:?} {way}: one note: {err}");
            assert!(
                notes[0].starts_with("zookeeper: note: ") && notes[0].contains(way),
                "{who:?} {way}: {err}"
            );
            assert_eq!(ok(output), many_expected(510), "{who:?} {way}");
            eprintln!("{who:?}: 510 layers on {way}: {took:?}");
            // Each container has its own writable layer: the first one's
            // write is not here; the image's own user reads the root.
            let out = ok(run(&[
                "--image",
                &image,
                "sh",
                "-c",
                "ls /stack/written 2>&1; stat -c %a /opq; su -s /bin/sh nobody -c 'cat /stack/top'",
            ]));
            assert_eq!(out, "ls: /stack/written: No such file or directory\n755\ntop", "{who:?} {way}");
            assert_eq!(
                fuse_daemons(),
                Vec::<u32>::new(),
                "{who:?} {way}: a fuse-overlayfs outlived its container"
            );
            assert_no_zoo_tmp_dir_left(&tmp_before, &format!("{who:?} {way}"));
            assert!(entries(&store.join("tmp")).is_empty(), "{who:?} {way}");
        }
    }
}

/// Serves a two-layer image at `zk/links:1`: the busybox rootfs with
/// `/data/orig` (0640, mtime 1600000000) and `/data/hidden`, then a layer
/// whose hard links `/data/a` and `/data/b` name `/data/orig`, a file only
/// the layer below has; with `bad`, `/data/c` names `/data/hidden`, which
/// the same layer whited out first.
fn serve_links(bad: bool) -> Mock {
    let mut base = tar::Builder::new(Vec::new());
    base.follow_symlinks(false);
    base.append_dir_all(".", &fixture().rootfs).unwrap();
    for (name, data) in [("data/orig", &b"from the layer below\n"[..]), ("data/hidden", b"hidden\n")] {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o640);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_600_000_000);
        header.set_size(data.len() as u64);
        base.append_data(&mut header, name, data).unwrap();
    }
    let base = base.into_inner().unwrap();
    let mut top = tar::Builder::new(Vec::new());
    let mut links = vec![("data/a", "data/orig"), ("data/b", "data/orig")];
    if bad {
        let mut whiteout = tar::Header::new_ustar();
        whiteout.set_entry_type(tar::EntryType::Regular);
        whiteout.set_mode(0o644);
        whiteout.set_uid(0);
        whiteout.set_gid(0);
        whiteout.set_mtime(1_600_000_000);
        whiteout.set_size(0);
        top.append_data(&mut whiteout, "data/.wh.hidden", std::io::empty()).unwrap();
        links.push(("data/c", "data/hidden"));
    }
    for (name, target) in links {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Link);
        header.set_mode(0o640);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(0);
        header.set_mtime(1_600_000_000);
        top.append_link(&mut header, name, target).unwrap();
    }
    let top = top.into_inner().unwrap();
    let layers = [base, top];
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| sha256(l)).collect::<Vec<_>>()}
    })
    .to_string()
    .into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": layers.iter().map(|l| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(l), "size": l.len()})).collect::<Vec<_>>()
    })
    .to_string()
    .into_bytes();
    let mut blobs: Vec<(String, Vec<u8>)> = layers.into_iter().map(|l| (sha256(&l), l)).collect();
    blobs.push((sha256(&config), config));
    mock(Arc::new(move |request: &Request| {
        if request.path == "/v2/zk/links/manifests/1" {
            return reply(200, OCI_MANIFEST, manifest.clone());
        }
        match blobs.iter().find(|(digest, _)| request.path == format!("/v2/zk/links/blobs/{digest}")) {
            Some((_, bytes)) => reply(200, "application/octet-stream", bytes.clone()),
            None => reply(404, "application/json", br#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#.to_vec()),
        }
    }))
}

/// Hard links in a layer to a file of the layer below (image-spec allows
/// them; overlay cannot share an inode across layers): the layer gets a
/// copy of the file, with its owner, mode and mtime, which its links share;
/// the lower file is unchanged (and a write to one name copies it up
/// apart from the other, as overlay does with any hard link), and a link
/// to a file the layer whited out is one clear error that leaves nothing
/// in the store.
#[test]
fn hard_links_into_the_layer_below_are_copied_up() {
    let registry = serve_links(true);
    let image = format!("{}/zk/links:1", registry.host);
    for who in WHO {
        let store = fresh_store("links", who);
        let output = zk(who, &store, &["--image-pull", &image]);
        // The link to the whited-out /data/hidden names nothing: one
        // error line, after the lower layer's progress line.
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(125), "{who:?}: {err}");
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.contains("a hard link to data/hidden, which neither this layer nor those below it have"),
            "{who:?}: {err}"
        );
        assert_eq!(err.lines().count(), 2, "{who:?}: {err}");
        assert!(entries(&store.join("tmp")).is_empty(), "{who:?}: tmp {:?}", entries(&store.join("tmp")));
        assert_eq!(entries(&store.join("layers")).len(), 1, "{who:?}: only the complete lower layer");
    }
    // Without the bad link: a second image whose top layer has only the
    // good ones.
    let registry = serve_links(false);
    let image = format!("{}/zk/links:1", registry.host);
    for who in WHO {
        let store = fresh_store("links-ok", who);
        let output = zk(who, &store, &["--image-pull", &image]);
        assert!(output.status.success(), "{who:?}: {}", stderr(&output));
        let script = "cat /data/a /data/b; stat -c '%a %u %Y %h' /data/a /data/orig; \
                      test $(stat -c %i /data/a) = $(stat -c %i /data/b) && echo a-and-b-one-inode; \
                      test $(stat -c %i /data/a) != $(stat -c %i /data/orig) && echo orig-apart; \
                      echo changed > /data/a; cat /data/a /data/b /data/orig";
        let out = ok(zk(who, &store, &["--image", &image, "-u", "root", "sh", "-c", script]));
        assert_eq!(
            out,
            "from the layer below\nfrom the layer below\n640 0 1600000000 2\n640 0 1600000000 1\n\
             a-and-b-one-inode\norig-apart\nchanged\nfrom the layer below\nfrom the layer below\n",
            "{who:?}"
        );
    }
}
