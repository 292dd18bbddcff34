#!/usr/bin/env python3
"""Times a rootless container's first start, the one that starts the user's
keeper (src/keeper.rs), against the starts after it: each round stops the
keeper (`zookeeper --cleanup`, untimed), then times the first run and one
more, alternating.

    first-run.py --runs N ZOOKEEPER ARGS...
"""
import argparse, os, statistics, subprocess, sys, time

parser = argparse.ArgumentParser()
parser.add_argument("--runs", type=int, default=50)
parser.add_argument("zookeeper")
parser.add_argument("args", nargs=argparse.REMAINDER)
args = parser.parse_args()

devnull = os.open(os.devnull, os.O_RDWR)
first, later = [], []
for _ in range(args.runs):
    subprocess.run([args.zookeeper, "--cleanup"], stdout=devnull, check=True)
    for times in (first, later):
        start = time.perf_counter()
        pid = os.posix_spawn(args.zookeeper, [args.zookeeper, *args.args], os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
        _, status, _ = os.wait4(pid, 0)
        times.append(time.perf_counter() - start)
        if status != 0:
            sys.exit(f"first-run.py: {args.args} failed (wait status {status})")
print("| start | median (ms) | mean ± σ (ms) |\n|---|---|---|")
for name, times in (("first (starts the keeper)", first), ("second (finds it)", later)):
    print(f"| {name} | {statistics.median(times)*1e3:.2f} | {statistics.mean(times)*1e3:.2f} ± {statistics.stdev(times)*1e3:.2f} |")
