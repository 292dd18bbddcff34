#!/usr/bin/env bash
# Builds (once) a Debian bookworm minbase rootfs for the tests that need a
# full distribution, from the host's own Debian mirror, and prints its path.
# Run as root. Cached in $ZK_DEBIAN_ROOTFS (default
# /var/cache/zookeeper/debian-bookworm); exits 3 if the mirror is
# unreachable, so tests can say why they skip.
set -euo pipefail

root=${ZK_DEBIAN_ROOTFS:-/var/cache/zookeeper/debian-bookworm}
if [ -f "$root.stamp" ]; then
    echo "$root"
    exit 0
fi
mirror=${ZK_DEBIAN_MIRROR:-$(
    awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep . ||
        awk '$1=="deb"{print ($2 ~ /^\[/) ? $3 : $2; exit}' /etc/apt/sources.list 2>/dev/null || true
)}
if [ -z "$mirror" ]; then
    echo "debian-rootfs.sh: no Debian mirror in the host's apt sources; set ZK_DEBIAN_MIRROR" >&2
    exit 3
fi
command -v debootstrap >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}
rm -rf "$root" && mkdir -p "$(dirname "$root")"
log=$(dirname "$root")/debootstrap.log
# In a private mount namespace: debootstrap's /proc and /sys mounts in the
# target must never show on the host.
if ! unshare --mount --propagation private \
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$log" 2>&1; then
    echo "debian-rootfs.sh: debootstrap from $mirror failed; see $log" >&2
    rm -rf "$root"
    exit 3
fi
touch "$root.stamp"
echo "$root"
