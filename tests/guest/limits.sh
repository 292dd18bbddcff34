#!/bin/sh
# Resource limits on cgroup v2, run inside the ../shared/vm guest by
# tests/guest.rs: the assignment's 5.4 experiments, rootless or as root.
# Prints a line per check and "N passed, N failed"; exits 1 on a failure.
# With the argument "scope", zookeeper must go through the user's systemd:
# it runs in zookeeper-<pid>.scope, which is gone once zookeeper is.
cd "$(dirname "$0")" || exit 1
ZK=$PWD/zookeeper
ROOTFS=$PWD/rootfs
pass=0
fail=0
check() { # name, expected output (a shell pattern), command...
	name=$1 want=$2
	shift 2
	got=$("$@" 2>&1)
	rc=$?
	case "$got rc=$rc" in
	$want) pass=$((pass + 1)); echo "ok   $name" ;;
	*) fail=$((fail + 1)); echo "FAIL $name: got '$got rc=$rc', want '$want'" ;;
	esac
}
zoo_cgroups() { find /sys/fs/cgroup -name 'zoo-*' -type d 2>/dev/null | wc -l; }
scopes() { find /sys/fs/cgroup -name 'zookeeper-*.scope' -type d 2>/dev/null | wc -l; }
scopes_settled() { # systemd removes an empty scope on its own, soon after
	i=0
	while [ "$(scopes)" != "$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	scopes
}
scopes_before=$(scopes)

check "--check finds nothing missing" "*ok       cgroups: v2* rc=0" "$ZK" --check
before=$(zoo_cgroups)
check "memory: 96M under -m 32M is OOM-killed, and zookeeper says so" \
	"zookeeper: killed: memory limit 32M reached rc=137" \
	"$ZK" -r "$ROOTFS" -m 32M zoo-probe alloc 96
check "memory: 64M under -m 128M runs" "allocated rc=0" \
	"$ZK" -r "$ROOTFS" -m 128M zoo-probe alloc 64
check "pids: -p 10 lets pid 1 start 9 more" "9 rc=0" \
	"$ZK" -r "$ROOTFS" -p 10 zoo-probe forks 50
cpu=$("$ZK" -r "$ROOTFS" -c 20 zoo-probe spin 2000)
check "cpu: -c 20 gives about 20% (got ${cpu} ms of 2000)" "yes rc=0" \
	sh -c "test '$cpu' -ge 200 && test '$cpu' -le 800 && echo yes"
check "the container's cgroup is its cgroup namespace's root" "0::/ rc=0" \
	"$ZK" -r "$ROOTFS" -P -m 64M -c 50 -p 20 cat /proc/self/cgroup
# The container's zoo-* cgroup once it has one (a fixed sleep lost the race
# when the host was loaded): up to 10 s, then whatever find says.
running_zoo_cgroup() {
	i=0
	while [ $i -lt 100 ]; do
		dir=$(find /sys/fs/cgroup -name 'zoo-*' -type d | head -1)
		# (A cgroup file's size is always 0: read it.)
		[ -n "$dir" ] && [ -n "$(cat "$dir/cgroup.procs" 2>/dev/null)" ] && break
		i=$((i + 1))
		sleep 0.1
	done
	echo "$dir"
}
limits_of_running_container() {
	"$ZK" -r "$ROOTFS" -m 64M -c 50 -p 20 sleep 2 &
	dir=$(running_zoo_cgroup)
	echo $(cat "$dir/memory.max" "$dir/cpu.max" "$dir/pids.max" "$dir/memory.swap.max")
	supervisor_cgroup=$(cut -d: -f3 "/proc/$!/cgroup")
	wait
}
limits_of_running_container >/tmp/zk-limits 2>&1
check "the limits are the ones asked for" "67108864 50000 100000 20 0 rc=0" cat /tmp/zk-limits
swap_of_running_container() { # --memory-swap's value
	"$ZK" -r "$ROOTFS" -m 64M --memory-swap "$1" sleep 2 &
	dir=$(running_zoo_cgroup)
	cat "$dir/memory.swap.max"
	wait
}
check "--memory-swap 96M over -m 64M is 32M of swap" "33554432 rc=0" swap_of_running_container 96M
check "--memory-swap -1 is unlimited swap" "max rc=0" swap_of_running_container -1
check "no zoo-* cgroup is left behind" "$before rc=0" zoo_cgroups
if [ "${1-}" = scope ]; then
	check "zookeeper ran in its delegated scope" "*/user.slice/zookeeper-*.scope rc=0" echo "$supervisor_cgroup"
	check "no zookeeper-*.scope is left behind" "$scopes_before rc=0" scopes_settled "$scopes_before"
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
