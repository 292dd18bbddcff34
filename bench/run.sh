#!/usr/bin/env bash
# zookeeper's benchmarks, side by side with its peers, in one run. As root on
# a machine prepared by scripts/setup.sh. Prints tables and writes them to
# bench/results.md (BENCHMARKS.md quotes a run of it).
#
# 1. start -> /bin/true -> torn down, busybox rootfs, all namespaces, /proc:
#    rootless with the subordinate range (zookeeper, through the user's kept
#    user namespace and with --no-keeper, vs the floor; then the first start,
#    which starts the keeper, against the second), rootless
#    with a one-id map (zookeeper vs bubblewrap vs unshare), and as root
#    (zookeeper vs crun vs runc); each group alternating, run by run
#    (bench/alternate.py), after a warm-up;
#    The floors (bench/floor.c: the bare container; bench/floor-same-work.c:
#    zookeeper's container, all its isolation, in the least C) tell how far
#    zookeeper is from the physical limit and what of it is its own overhead.
# 2. zookeeper's start-up step by step, from its own tracing (bench/phases.py);
# 3. the start-up cost of -n (slirp4netns, pasta) and the throughput through
#    a published port;
# 4. the supervisor's peak RSS, and the binary's size.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-300}
WARMUP=${WARMUP:-30}

export DEBIAN_FRONTEND=noninteractive
for pkg in crun runc bubblewrap iperf3; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
        apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
done
cargo build --release --quiet
# The seccomp program build.rs compiled, for the same-work floor.
bpf=$(cargo build --release --quiet --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "build-script-executed" and "#zookeeper@" in m["package_id"]:
        print(m["out_dir"] + "/seccomp.bpf")')

work=$(mktemp -d /tmp/zookeeper-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
cp target/x86_64-unknown-linux-gnu/release/zookeeper "$work/zookeeper"
cp bench/alternate.py bench/phases.py bench/first-run.py "$work/"
gcc -O2 -o "$work/floor" bench/floor.c
gcc -O2 -o "$work/floor-same-work" bench/floor-same-work.c
cp "$bpf" "$work/seccomp.bpf"
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,proc,dev,sys,tmp}
cp /bin/busybox "$rootfs/bin/"
for applet in sh true sleep; do ln -s busybox "$rootfs/bin/$applet"; done
mkdir "$work/bundle"
(cd "$work/bundle" && runc spec && python3 - "$rootfs" <<'PY'
import json, sys
c = json.load(open("config.json"))
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
c["root"] = {"path": sys.argv[1], "readonly": True}
json.dump(c, open("config.json", "w"))
PY
)
chmod -R a+rX "$work"
mkdir -m 1777 "$work/out"

user=zootest
uid=$(id -u $user) gid=$(id -g $user)
subuid=$(awk -F: -v u=$user '$1==u{print $2" "$3; exit}' /etc/subuid)
subgid=$(awk -F: -v u=$user '$1==u{print $2" "$3; exit}' /etc/subgid)
as() { setpriv --reuid="$1" --regid="$1" --init-groups -- "${@:2}"; }
bwrap_cmd="bwrap --unshare-all --uid 0 --gid 0 --bind $rootfs / --proc /proc --dev /dev /bin/true"

echo "== rootless, subordinate range ($user)"
as $user /usr/bin/python3 "$work/alternate.py" --warmup "$WARMUP" --runs "$RUNS" --json "$work/out/ranged.json" \
    "zookeeper=$work/zookeeper -r $rootfs -P /bin/true" \
    "zookeeper --no-keeper=$work/zookeeper --no-keeper -r $rootfs -P /bin/true" \
    "floor=$work/floor $rootfs 0 $uid 1 1 $subuid -- 0 $gid 1 1 $subgid" \
    "floor, same work=$work/floor-same-work $rootfs $work/seccomp.bpf 0 $uid 1 1 $subuid -- 0 $gid 1 1 $subgid"
echo "== rootless, subordinate range: the first start, which starts the keeper"
as $user /usr/bin/python3 "$work/first-run.py" --runs 50 "$work/zookeeper" -r "$rootfs" -P /bin/true | tee "$work/out/first-run.md"
echo "== rootless, one-id map (zoonorange)"
as zoonorange /usr/bin/python3 "$work/alternate.py" --warmup "$WARMUP" --runs "$RUNS" --json "$work/out/single.json" \
    "zookeeper=$work/zookeeper -r $rootfs -P /bin/true" \
    "bubblewrap=$bwrap_cmd" \
    "unshare -r=unshare -rmpinuC --fork /bin/true" 2>/dev/null
echo "== root (crun needs the hybrid host's cgroup2 mount out of its sight: a private mount namespace)"
unshare -m sh -c "umount /sys/fs/cgroup/unified 2>/dev/null; cd $work/bundle && \
    /usr/bin/python3 $work/alternate.py --warmup $WARMUP --runs $RUNS --json $work/out/root.json \
    'zookeeper=$work/zookeeper -r $rootfs -P /bin/true' \
    'crun=crun run zk-bench-crun' \
    'runc=runc run zk-bench-runc'"
echo "== zookeeper's start-up, step by step (rootless, subordinate range)"
as $user /usr/bin/python3 "$work/phases.py" --runs "$RUNS" "$work/zookeeper" -r "$rootfs" -P /bin/true | tee "$work/out/phases.md"
echo "== networking: slirp4netns and pasta against none"
as $user /usr/bin/python3 "$work/alternate.py" --warmup 10 --runs 50 --json "$work/out/net.json" \
    "zookeeper=$work/zookeeper -r $rootfs /bin/true" \
    "zookeeper -n=$work/zookeeper -r $rootfs -n /bin/true" \
    "zookeeper --network pasta=$work/zookeeper -r $rootfs --network pasta /bin/true"
echo "== when the network is up (rootless, subordinate range)"
as $user /usr/bin/python3 "$work/phases.py" --runs 50 "$work/zookeeper" -r "$rootfs" -n /bin/true | grep -E "cgroup ready|network ready|container ended|cleaned up|exited" | tee "$work/out/net-slirp.md"
as $user /usr/bin/python3 "$work/phases.py" --runs 30 "$work/zookeeper" -r "$rootfs" --network pasta /bin/true | grep -E "cgroup ready|network ready|container ended|cleaned up|exited" | tee "$work/out/net-pasta.md"

# Throughput through a published port, host loopback -> container, each backend.
throughput() { # backend -> Gbit/s
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as $user "$work/zookeeper" --network "$1" --publish "$port:5201" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
    local server=$! tries=0
    sleep 1 # the server's start; a client that comes too early is reset
    until as $user iperf3 -c 127.0.0.1 -p "$port" -t 3 -J >"$work/out/iperf-$1.json" 2>/dev/null; do
        tries=$((tries + 1)); [ $tries -lt 20 ] || break; sleep 0.5
    done
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' "$work/out/iperf-$1.json" 2>/dev/null || echo "n/a"
}
echo "== throughput through a published port (iperf3, 3 s)"
tp_slirp=$(throughput slirp4netns)
tp_pasta=$(throughput pasta)
echo "slirp4netns $tp_slirp Gbit/s, pasta $tp_pasta Gbit/s"

# The supervisor's peak RSS while a container runs.
as $user "$work/zookeeper" -r "$rootfs" sleep 1 &
sleep 0.5
zk=$(pgrep -n -f "$work/zookeeper -r $rootfs sleep 1")
rss=$(awk '/VmHWM/{print $2}' /proc/$zk/status)
wait
size=$(stat -c %s target/x86_64-unknown-linux-gnu/release/zookeeper)

python3 - "$work" "$rss" "$size" "$tp_slirp" "$tp_pasta" <<'PY' | tee bench/results.md
import json, sys, platform, os
work, rss, size, tp_slirp, tp_pasta = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
print(f"Machine: {os.cpu_count()} CPUs, kernel {platform.release()}\n")
def table(name, title, base):
    results = json.load(open(f"{work}/out/{name}.json"))["results"]
    ref = next(r for r in results if r["command"] == base)
    print(f"### {title}\n\n| command | median (ms) | mean ± σ (ms) | CPU (ms) | ratio to {base} |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['command']} | {r['median']*1e3:.2f} | {r['mean']*1e3:.2f} ± {r['stddev']*1e3:.2f} | {r['cpu_mean']*1e3:.2f} | {r['median']/ref['median']:.2f} |")
    print()
table("ranged", "Rootless, subordinate range: start -> /bin/true -> torn down", "floor")
table("single", "Rootless, one-id map", "zookeeper")
table("root", "As root", "zookeeper")
table("net", "Networking", "zookeeper")
print("### Rootless, subordinate range: the first start (the keeper's) and the next\n")
print(open(f"{work}/out/first-run.md").read())
for name, title in [("phases", "zookeeper's start-up, step by step (rootless, subordinate range; P = supervisor, C = the container's first process)"), ("net-slirp", "-n (slirp4netns): when the network is up"), ("net-pasta", "--network pasta: when the network is up")]:
    print(f"### {title}\n")
    if name != "phases":
        print("| since spawn (µs) | step (µs) | step |\n|---|---|---|")
    print(open(f"{work}/out/{name}.md").read())
print(f"Throughput through a published port (iperf3 from host loopback, 3 s, default root): slirp4netns {tp_slirp} Gbit/s, pasta {tp_pasta} Gbit/s.\n")
print(f"Supervisor peak RSS (VmHWM) while a container runs: {rss} KiB. Release binary: {size/1024:.0f} KiB.")
PY
