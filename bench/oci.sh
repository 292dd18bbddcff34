#!/usr/bin/env bash
# The OCI runtime's lifecycle benchmark: zookeeper-oci side by side with
# runc and crun, in one run, as root on a machine prepared by
# scripts/setup.sh. Prints tables and writes them to bench/results-oci.md
# (BENCHMARKS.md quotes a run of it).
#
# The same bundle for the three: a busybox rootfs, read-only, running
# /bin/true, with the config `runc spec` writes (as root) or `runc spec
# --rootless` (as the test user zootest, who owns that bundle). Two
# measures, each a table whose commands alternate run by run
# (bench/alternate.py), after a warm-up:
#   run:       `RUNTIME --root DIR run --bundle B ID` (create, start, wait, delete
#              in one process of the runtime's);
#   lifecycle: create, start, wait for the container's exit, delete, each
#              verb a process of its own, as conmon and containerd's shim
#              call them (bench/lifecycle.c, a subreaper as they are).
# As root, crun 1.8.1 refuses this hybrid cgroup host (the cgroup2 mount
# lists hugetlb): its refusal is shown, then the root tables run in a private
# mount namespace with /sys/fs/cgroup/unified unmounted, for all three alike,
# as bench/run.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-300}
WARMUP=${WARMUP:-30}

export DEBIAN_FRONTEND=noninteractive
for pkg in crun runc busybox-static; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
        apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
done
cargo build --release --quiet --bin zookeeper-oci

work=$(mktemp -d /tmp/zookeeper-bench-oci.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
cp target/x86_64-unknown-linux-gnu/release/zookeeper-oci "$work/zookeeper-oci"
cp bench/alternate.py "$work/"
gcc -O2 -o "$work/lifecycle" bench/lifecycle.c
user=zootest

# bundle DIR [--rootless]: a busybox rootfs and runc's config for /bin/true.
bundle() {
    mkdir -p "$1/rootfs"/{bin,proc,dev,sys,tmp}
    cp /bin/busybox "$1/rootfs/bin/"
    for applet in sh true; do ln -s busybox "$1/rootfs/bin/$applet"; done
    (cd "$1" && runc spec "${@:2}" && python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
c["root"]["readonly"] = True
json.dump(c, open("config.json", "w"))
PY
    )
}
bundle "$work/bundle"
mkdir -m 755 "$work/user"
chown "$user:" "$work/user"
as_user() { setpriv --reuid="$user" --regid="$user" --init-groups -- env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin "$@"; }
as_user bash -c "$(declare -f bundle); bundle $work/user/bundle --rootless"
chmod -R a+rX "$work"
mkdir -m 1777 "$work/out"

# table NAME BUNDLE STATE-DIR: the run and lifecycle tables of the three
# runtimes, as whoever calls it.
table() {
    local name=$1 b=$2 s=$3
    mkdir -p "$s"/{zk,crun,runc}
    echo "== $name: run"
    python3 "$work/alternate.py" --warmup "$WARMUP" --runs "$RUNS" --json "$work/out/$name-run.json" \
        "zookeeper-oci=$work/zookeeper-oci --root $s/zk run --bundle $b zk" \
        "crun=crun --root $s/crun run --bundle $b crun" \
        "runc=runc --root $s/runc run --bundle $b runc"
    echo "== $name: create, start, wait, delete"
    python3 "$work/alternate.py" --warmup "$WARMUP" --runs "$RUNS" --json "$work/out/$name-lifecycle.json" \
        "zookeeper-oci=$work/lifecycle $work/zookeeper-oci $s/zk $b zk" \
        "crun=$work/lifecycle crun $s/crun $b crun" \
        "runc=$work/lifecycle runc $s/runc $b runc"
}

echo "== crun on this hybrid host as it is (as root, then as $user)"
mkdir -p "$work/root"
crun_refusal=$(crun --root "$work/root/crun-refused" run --bundle "$work/bundle" refused 2>&1 || true)
echo "${crun_refusal:-crun ran}" | tee "$work/out/crun-refusal.txt"
crun_refusal=$(as_user crun --root "$work/user/crun-refused" run --bundle "$work/user/bundle" refused 2>&1 || true)
echo "${crun_refusal:-crun ran}" | tee "$work/out/crun-refusal-rootless.txt"
# Both tables in one private mount namespace without the cgroup2 mount;
# the user's from there, with setpriv.
export -f table as_user
export work RUNS WARMUP user
unshare -m bash -c 'umount /sys/fs/cgroup/unified 2>/dev/null
    table root "$work/bundle" "$work/root"
    echo "== rootless ($user, runc spec --rootless)"
    as_user env work="$work" RUNS="$RUNS" WARMUP="$WARMUP" bash -c "$(declare -f table); table rootless $work/user/bundle $work/user"'

python3 - "$work" <<'PY' | tee bench/results-oci.md
import json, sys, platform, os
work = sys.argv[1]
print(f"Machine: {os.cpu_count()} CPUs, kernel {platform.release()}\n")
refusal = open(f"{work}/out/crun-refusal.txt").read().strip()
rootless = open(f"{work}/out/crun-refusal-rootless.txt").read().strip()
print(f"crun on this host as it is, as root: `{refusal}`; as zootest: `{rootless}`. All the tables run in a private mount namespace with /sys/fs/cgroup/unified unmounted, the three runtimes alike.\n")
for who, title in [("root", "As root (runc spec)"), ("rootless", "Rootless, zootest (runc spec --rootless)")]:
    for measure, what in [("run", "`run` of /bin/true"), ("lifecycle", "create, start, wait for exit, delete")]:
        results = json.load(open(f"{work}/out/{who}-{measure}.json"))["results"]
        ref = results[0]
        print(f"### {title}: {what}\n\n| runtime | median (ms) | mean ± σ (ms) | CPU (ms) | ratio to zookeeper-oci |\n|---|---|---|---|---|")
        for r in results:
            print(f"| {r['command']} | {r['median']*1e3:.2f} | {r['mean']*1e3:.2f} ± {r['stddev']*1e3:.2f} | {r['cpu_mean']*1e3:.2f} | {r['median']/ref['median']:.2f} |")
        print()
PY
