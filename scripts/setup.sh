#!/usr/bin/env bash
# Prepares a Debian 12 machine for zookeeper and its test suite. Run as root;
# idempotent. What it does:
#  - installs the Debian packages zookeeper uses (newuidmap/newgidmap,
#    slirp4netns, pasta) and the ones its tests use (busybox-static for the
#    test rootfs, gcc and libc6-dev for the static probe program, valgrind,
#    docker-registry, skopeo, umoci and openssl for the image tests);
#  - creates the unprivileged test users: zootest, with a subordinate id
#    range, and zoonorange, without one (for the single-id fallback);
#  - makes /dev/net/tun and /dev/fuse usable by everyone (0666), as on a
#    normal distribution (udev's rules; a machine without udev has 0600).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: run me as root (I install packages and create test users)" >&2
    exit 1
fi

packages=(
    uidmap slirp4netns passt iproute2 util-linux procps
    busybox-static gcc libc6-dev pkg-config libseccomp-dev valgrind debootstrap
    # tests/bundle.rs: `runc spec` writes the configs the bundle tests run;
    # tests/oci_runtime.rs: podman and containerd drive zookeeper-oci (the
    # tests start and stop them themselves).
    runc podman containerd
    # tests/images.rs: a local registry, and the tools that build and push
    # the test images to it; openssl makes and uses the key of the token
    # server the token-auth registry trusts.
    docker-registry skopeo umoci openssl
    # An image with more layers than overlayfs stacks runs under
    # fuse-overlayfs (tests/images.rs).
    fuse-overlayfs
)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # No daemon starts at install time (docker-registry ships an init
    # script): the tests start what they need themselves and stop it by pid.
    # Debian's policy-rc.d hook, only while installing, and only if the
    # machine has none of its own.
    policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ -n "$policy" ]; then
        rm -f "$policy"
        trap - EXIT
    fi
fi

# A user with a subordinate range: the main rootless path.
if ! id zootest >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash zootest
fi
if ! grep -q '^zootest:' /etc/subuid 2>/dev/null; then
    usermod --add-subuids 300000-365535 zootest
fi
if ! grep -q '^zootest:' /etc/subgid 2>/dev/null; then
    usermod --add-subgids 300000-365535 zootest
fi

# A user without one: zookeeper must fall back to mapping root alone.
if ! id zoonorange >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash zoonorange
fi
for file in /etc/subuid /etc/subgid; do
    if grep -q '^zoonorange:' "$file" 2>/dev/null; then
        sed -i '/^zoonorange:/d' "$file"
    fi
done

# fuse-overlayfs's daemon opens /dev/fuse as container root.
if [ -c /dev/fuse ]; then
    chmod 0666 /dev/fuse
fi
# slirp4netns and pasta open /dev/net/tun inside the container's namespaces.
if [ -c /dev/net/tun ]; then
    chmod 0666 /dev/net/tun
fi

echo "setup.sh: ready (test users zootest and zoonorange; $(command -v newuidmap), $(command -v slirp4netns), $(command -v pasta))"
