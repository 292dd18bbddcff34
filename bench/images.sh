#!/usr/bin/env bash
# The image measures of issue 16, side by side with podman and skopeo, in one
# run. As root on a machine prepared by scripts/setup.sh. Prints tables and
# writes them to bench/results-images.md (BENCHMARKS.md quotes a run of it).
#
# The image: the Debian bookworm minbase rootfs the tests use
# (scripts/debian-rootfs.sh), packed by umoci as one gzip layer and pushed
# by skopeo to Debian's docker-registry, started here on a loopback port
# with its own config and storage (as tests/images.rs does).
#
# 1. pull + unpack from the registry, every run from an empty store:
#    `zookeeper --image-pull` vs `podman pull` (its default overlay storage)
#    vs `skopeo copy` to an oci: layout (no unpack), and as root GNU tar
#    extracting the layer's blob alone (one extraction, for scale); as root
#    and rootless (zootest); alternating run by run (bench/alternate.py
#    --before empties every store and syncs the disk, untimed);
# 2. start -> /bin/true -> torn down of a pulled image: `zookeeper --image`
#    vs `zookeeper -r LAYER -P` (the same rootfs: the image's unpacked layer
#    in the store, so the difference is the image's look-up and the
#    overlay) and `-r LAYER -P --overlay` (RUNS runs); then `zookeeper
#    --image` vs `podman run --rm --network none` (PODMAN_RUNS runs);
#    rootless and as root, each table alternating, after a warm-up;
# 3. disk use of ten containers running from the image: zookeeper's store
#    (and its layer directories) before and while they run, and podman's
#    storage the same way.
# All in a private mount namespace (see below). Every process started here
# is stopped by its pid (podman's containers by
# `podman rm`, its rootless pause process by the pid it records).
set -euo pipefail
cd "$(dirname "$0")/.."
# crun (podman's runtime here) refuses this hybrid cgroup host while the
# cgroup2 mount lists controllers: the whole run, zookeeper's side too, is
# in a private mount namespace with /sys/fs/cgroup/unified unmounted, as
# bench/run.sh and bench/oci.sh do for crun.
if [ -z "${ZK_BENCH_PRIVATE_MOUNTS:-}" ]; then
    exec unshare --mount --propagation private env ZK_BENCH_PRIVATE_MOUNTS=1 "$0" "$@"
fi
umount /sys/fs/cgroup/unified 2>/dev/null || true
RUNS=${RUNS:-200}
WARMUP=${WARMUP:-20}
PULL_RUNS=${PULL_RUNS:-5}
PODMAN_RUNS=${PODMAN_RUNS:-20}
CONTAINERS=${CONTAINERS:-10}
# Which measures (all by default; the results file needs all three).
PARTS=${PARTS:-pull start disk}
user=zootest
py=/usr/bin/python3

export DEBIAN_FRONTEND=noninteractive
for pkg in podman skopeo umoci docker-registry busybox-static; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
        apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
done
cargo build --release --quiet --bin zookeeper
if ! rootfs=$(scripts/debian-rootfs.sh); then
    echo "images.sh: no Debian rootfs (scripts/debian-rootfs.sh failed): nothing to measure" >&2
    exit 1
fi

# Short: podman refuses a run directory longer than 50 characters.
work=$(mktemp -d /tmp/zkbi.XXXXXX)
chmod 755 "$work"
registry_pid=
pids=()
cleanup() {
    set +e
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    for dir in "$work"/pm-*; do
        [ -d "$dir" ] || continue
        podman_in "$dir" rm -a -f -t 0 >/dev/null 2>&1
        pause=$(cat "$dir/tmp/pause.pid" 2>/dev/null)
        [ -n "$pause" ] && kill -KILL "$pause" 2>/dev/null
    done
    [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
    # podman as root leaves its storage's mounts (in this namespace only).
    unmount_under "$work"
    rm -rf "$work"
}
# unmount_under DIR: every mount beneath DIR, deepest first.
unmount_under() {
    awk -v dir="$1/" 'index($5, dir) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
}
trap cleanup EXIT
cp target/x86_64-unknown-linux-gnu/release/zookeeper "$work/zookeeper"
cp bench/alternate.py "$work/"
zk=$work/zookeeper

as_user() { setpriv --reuid=$user --regid=$user --init-groups -- env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME="$work/home" "$@"; }
mkdir -m 700 "$work/home" && chown $user: "$work/home"

# podman_in DIR ARGS: podman on its own storage and run directories in DIR,
# as DIR's owner (pm-root-* for root, pm-user-* for zootest). cgroupfs and
# file events: this machine has no systemd. The overlay driver, named: a
# rootless podman 4.3 without a storage.conf of the user's picks vfs here,
# which copies the whole image for every container (2.9 s a start, 215 MB
# a container, in a trial run); overlay is its best case.
podman_in() {
    local dir=$1
    shift
    local args=(/usr/bin/podman --root "$dir/storage" --runroot "$dir/run" --tmpdir "$dir/tmp"
        --cgroup-manager=cgroupfs --events-backend=file --storage-driver=overlay)
    case $dir in
    */pm-user-*) setpriv --reuid=$user --regid=$user --init-groups -- env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin \
        HOME="$dir/home" XDG_RUNTIME_DIR="$dir/home" "${args[@]}" "$@" ;;
    *) env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME="$dir/home" "${args[@]}" "$@" ;;
    esac
}
# podman_cmd DIR: the same as one command line for alternate.py, run by
# DIR's owner (alternate.py runs as root for the pulls, as WHO for the starts).
podman_cmd() {
    local dir=$1
    echo "env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME=$dir/home XDG_RUNTIME_DIR=$dir/home /usr/bin/podman --root $dir/storage --runroot $dir/run --tmpdir $dir/tmp --cgroup-manager=cgroupfs --events-backend=file --storage-driver=overlay"
}
# new_podman_dir NAME OWNER: an empty podman directory.
new_podman_dir() {
    local dir=$work/$1
    mkdir -p "$dir"/{storage,run,tmp,home}
    chmod 700 "$dir/home"
    chown -R "$2:" "$dir"
    echo "$dir"
}

echo "== a registry on loopback, and the Debian minbase image in it"
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
host=127.0.0.1:$port
mkdir "$work/registry"
cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry/storage
http:
  addr: $host
EOF
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
registry_pid=$!
for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done
image=$work/image
umoci init --layout "$image/oci"
umoci new --image "$image/oci:12"
umoci unpack --image "$image/oci:12" "$image/bundle" >/dev/null
cp -a "$rootfs/." "$image/bundle/rootfs"
umoci repack --image "$image/oci:12" "$image/bundle" >/dev/null
umoci config --image "$image/oci:12" --config.cmd /bin/bash
ref=$host/zk/debian:12
skopeo copy --quiet --dest-tls-verify=false "oci:$image/oci:12" "docker://$ref"
rm -rf "$image/bundle"
layer_blob=$($py - "$image/oci" <<'PY'
import json, sys
layout = sys.argv[1]
index = json.load(open(f"{layout}/index.json"))
digest = index["manifests"][0]["digest"].split(":")[1]
manifest = json.load(open(f"{layout}/blobs/sha256/{digest}"))
print(f"{layout}/blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1])
PY
)
chmod -R a+rX "$work/image"
layer_size=$(stat -c %s "$layer_blob")
entries=$(find "$rootfs" | wc -l)
rootfs_size=$(du -sx -B1 "$rootfs" | cut -f1)
echo "$ref: one gzip layer of $layer_size bytes; the rootfs $rootfs_size bytes, $entries entries"
mkdir -m 1777 "$work/out"

echo "== pull + unpack, every run from an empty store"
# pull_table WHO: the alternating table; the stores are in $work/pull-WHO.
pull_table() {
    local who=$1 p=$work/pull-$1 owner=root wrap=""
    if [ "$who" = user ]; then
        owner=$user
        wrap="setpriv --reuid=$user --regid=$user --init-groups -- env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME=$work/home XDG_RUNTIME_DIR=$work/home"
    fi
    mkdir -p "$p"
    local pm=$p/pm-$who-pull
    # Empty stores, fresh directories, and the previous run's writes on
    # disk, before every run (untimed). The rootless podman's pause process
    # goes too: each podman pull starts from nothing, as zookeeper's does.
    local before="set -e; pause=\$(cat $pm/tmp/pause.pid 2>/dev/null || true); [ -z \"\$pause\" ] || kill -KILL \$pause 2>/dev/null || true;
        awk -v dir=$p/ 'index(\$5, dir) == 1 {print \$5}' /proc/self/mountinfo | sort -r | xargs -r umount -l;
        rm -rf $p/zk $p/skopeo $p/tar $pm; mkdir -p $p/zk $p/skopeo $p/tar $pm/storage $pm/run $pm/tmp $pm/home;
        chmod 700 $pm/home; chown -R $owner: $p; sync"
    local commands=(
        "zookeeper --image-pull=$wrap $zk --store $p/zk/store --image-pull $ref"
        "podman pull=${wrap:+setpriv --reuid=$user --regid=$user --init-groups -- }$(podman_cmd "$pm") pull --quiet --tls-verify=false $ref"
        "skopeo copy (no unpack)=$wrap skopeo copy --quiet --src-tls-verify=false docker://$ref oci:$p/skopeo/layout:12"
    )
    if [ "$who" = root ]; then
        commands+=("tar -xzf of the blob alone=tar -xzf $layer_blob -C $p/tar")
    fi
    $py "$work/alternate.py" --warmup 1 --runs "$PULL_RUNS" --json "$work/out/pull-$who.json" --before "$before" "${commands[@]}"
    bash -c "$before"
    unmount_under "$p"
    local pause
    pause=$(cat "$pm/tmp/pause.pid" 2>/dev/null || true)
    [ -z "$pause" ] || kill -KILL "$pause" 2>/dev/null || true
    rm -rf "$p"
}
if [[ " $PARTS " == *" pull "* ]]; then
    echo "-- as root"
    pull_table root
    echo "-- rootless ($user)"
    pull_table user
fi

echo "== start -> /bin/true -> torn down, of a pulled image"
# start_table WHO: pulls the image into a zookeeper store and a podman
# storage of WHO's, then the alternating table, run as WHO.
start_table() {
    local who=$1 owner=root run=()
    [ "$who" = user ] && owner=$user && run=(setpriv --reuid=$user --regid=$user --init-groups -- env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME=$work/home)
    local s=$work/start-$who
    mkdir -p "$s" && chown "$owner:" "$s"
    "${run[@]}" "$zk" --store "$s/store" --image-pull "$ref" 2>/dev/null
    local layer
    layer=$(ls -d "$s"/store/layers/*)
    local pm
    pm=$(new_podman_dir "pm-$who-start" "$owner")
    podman_in "$pm" pull --quiet --tls-verify=false "$ref" >/dev/null
    # podman's default rlimits need CAP_SYS_RESOURCE, which this machine's
    # sandbox lacks (tests/oci_runtime.rs): its limits are given.
    local podman_run="$(podman_cmd "$pm") run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
    "${run[@]}" $py "$work/alternate.py" --warmup "$WARMUP" --runs "$RUNS" --json "$work/out/start-$who.json" \
        "zookeeper --image=$zk --store $s/store --image $ref /bin/true" \
        "zookeeper -r LAYER -P=$zk -r $layer -P /bin/true" \
        "zookeeper -r LAYER -P --overlay=$zk -r $layer -P --overlay /bin/true"
    # podman takes hundreds of times longer: a table of its own, fewer runs.
    "${run[@]}" $py "$work/alternate.py" --warmup 2 --runs "$PODMAN_RUNS" --json "$work/out/podman-$who.json" \
        "zookeeper --image=$zk --store $s/store --image $ref /bin/true" \
        "podman run --rm=$podman_run $ref /bin/true"
}
if [[ " $PARTS " == *" start "* || " $PARTS " == *" disk "* ]]; then
    echo "-- rootless ($user)"
    start_table user
    echo "-- as root"
    start_table root
fi

echo "== disk use of $CONTAINERS containers running from the image"
# disk WHO: zookeeper's store and podman's storage before and while
# $CONTAINERS containers run `sleep`; each container's writes would go to
# its own writable layer.
disk() {
    local who=$1 owner=root run=()
    [ "$who" = user ] && owner=$user && run=(setpriv --reuid=$user --regid=$user --init-groups -- env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME=$work/home)
    local s=$work/start-$who pm=$work/pm-$who-start out=$work/out/disk-$who
    mkdir -p "$out" && chmod 777 "$out"
    local zk_before pm_before zk_during pm_during layers_before layers_during
    sync
    zk_before=$(du -sx -B1 "$s/store" | cut -f1)
    layers_before=$(ls "$s/store/layers" | wc -l)
    pm_before=$(du -sx -B1 "$pm/storage" | cut -f1)
    local started=()
    for i in $(seq "$CONTAINERS"); do
        # As pid 1, sh ignores SIGTERM unless it traps it: the trap lets
        # zookeeper's forwarded SIGTERM end the container at once.
        "${run[@]}" "$zk" --store "$s/store" --image "$ref" sh -c 'trap "exit 0" TERM; echo up; sleep 120 & wait' >"$out/zk-$i" 2>&1 &
        started+=($!)
        pids+=($!)
        podman_in "$pm" run -d --name "zk-disk-$i" --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
            "$ref" sleep 120 >/dev/null
    done
    for i in $(seq "$CONTAINERS"); do
        for _ in $(seq 200); do grep -q up "$out/zk-$i" && break; sleep 0.05; done
        grep -q up "$out/zk-$i" || { echo "container $i did not start: $(cat "$out/zk-$i")" >&2; return 1; }
    done
    sync
    zk_during=$(du -sx -B1 "$s/store" | cut -f1)
    layers_during=$(ls "$s/store/layers" | wc -l)
    pm_during=$(du -sx -B1 "$pm/storage" | cut -f1)
    local pm_running
    pm_running=$(podman_in "$pm" ps -q | wc -l)
    for pid in "${started[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; done
    podman_in "$pm" rm -a -f -t 0 >/dev/null
    echo "$who $zk_before $zk_during $layers_before $layers_during $pm_before $pm_during $pm_running" | tee "$out.txt"
}
if [[ " $PARTS " == *" disk "* ]]; then
    disk user
    disk root
fi
if [[ " $PARTS " != *" pull "* || " $PARTS " != *" start "* || " $PARTS " != *" disk "* ]]; then
    echo "images.sh: PARTS=$PARTS: not all measures taken, bench/results-images.md left as it was"
    exit 0
fi

size=$(stat -c %s target/x86_64-unknown-linux-gnu/release/zookeeper)
load=$(cut -d' ' -f1-3 /proc/loadavg)
$py - "$work" "$ref" "$layer_size" "$rootfs_size" "$entries" "$CONTAINERS" "$size" "$load" <<'PY' | tee bench/results-images.md
import json, os, platform, sys
work, ref, layer, rootfs, entries, containers, size, load = sys.argv[1:]
layer, rootfs, entries, containers = int(layer), int(rootfs), int(entries), int(containers)
mb = lambda b: f"{b / 1e6:.1f} MB"
print(f"Machine: {os.cpu_count()} CPUs, kernel {platform.release()}; load average at the end {load}.\n")
print(f"The image: Debian bookworm minbase (scripts/debian-rootfs.sh), one gzip layer of {mb(layer)}, "
      f"{mb(rootfs)} and {entries} entries unpacked, from docker-registry on loopback ({ref.split('/')[0]}).\n")
def table(name, title, unit, scale):
    results = json.load(open(f"{work}/out/{name}.json"))["results"]
    ref = results[0]
    print(f"### {title}\n\n| command | median ({unit}) | mean ± σ ({unit}) | CPU ({unit}) | ratio to {ref['command']} |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['command']} | {r['median']*scale:.2f} | {r['mean']*scale:.2f} ± {r['stddev']*scale:.2f} | "
              f"{r['cpu_mean']*scale:.2f} | {r['median']/ref['median']:.2f} |")
    print(f"\n{ref['runs']} runs each, alternating.\n")
table("pull-root", "Pull + unpack from an empty store, as root", "s", 1)
table("pull-user", "Pull + unpack from an empty store, rootless (zootest)", "s", 1)
table("start-user", "Start -> /bin/true -> torn down, rootless (zootest)", "ms", 1e3)
table("start-root", "Start -> /bin/true -> torn down, as root", "ms", 1e3)
table("podman-user", "Start -> /bin/true -> torn down against podman, rootless (zootest)", "ms", 1e3)
table("podman-root", "Start -> /bin/true -> torn down against podman, as root", "ms", 1e3)
print(f"### Disk use of {containers} containers running from the image\n")
print("| who | zookeeper's store before | while they run | layer directories | podman's storage before | while they run | podman containers |\n|---|---|---|---|---|---|---|")
for who in ["user", "root"]:
    f = open(f"{work}/out/disk-{who}.txt").read().split()
    zb, zd, lb, ld, pb, pd, pr = (int(x) for x in f[1:])
    print(f"| {'rootless (zootest)' if who == 'user' else 'root'} | {mb(zb)} | {mb(zd)} (+{zd - zb} B) | {lb} -> {ld} | "
          f"{mb(pb)} | {mb(pd)} (+{pd - pb} B) | {pr} |")
print(f"\nzookeeper's containers each write to a private tmpfs (the overlay's upper layer, in the container's own mount namespace), "
      f"nothing in the store. Release binary: {int(size)/1024:.0f} KiB.")
PY
