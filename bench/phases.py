#!/usr/bin/env python3
"""zookeeper's start-up, step by step, from its own tracing (ZOOKEEPER_TRACE=1):
the median time of each step since zookeeper was spawned, and since the
step before, over many runs. `P` steps are the supervisor's, `C` the
container's first process's (they overlap).

    phases.py [--runs N] ZOOKEEPER_COMMAND...
"""
import collections, os, statistics, sys, time

runs = 200
argv = sys.argv[1:]
if argv[:1] == ["--runs"]:
    runs, argv = int(argv[1]), argv[2:]
env = dict(os.environ, ZOOKEEPER_TRACE="1")
devnull = os.open(os.devnull, os.O_RDWR)
offsets = collections.defaultdict(list)
order = []
for i in range(runs + 10):
    read_end, write_end = os.pipe()
    spawned = time.clock_gettime(time.CLOCK_MONOTONIC)
    pid = os.posix_spawnp(argv[0], argv, env,
                          file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, write_end, 2)])
    os.close(write_end)
    with os.fdopen(read_end, "rb") as stderr:
        text = stderr.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    ended = time.clock_gettime(time.CLOCK_MONOTONIC)
    if status != 0:
        sys.exit(f"phases.py: {' '.join(argv)} failed: {text}")
    if i < 10:
        continue  # warm-up
    for line in text.splitlines():
        # zookeeper: trace <pid> <µs> <step>
        fields = line.split(None, 4)
        if len(fields) < 5 or fields[1] != "trace" or not fields[3].isdigit():
            continue
        step = ("C " if fields[2] == "1" else "P ") + fields[4]
        if step not in offsets:
            order.append(step)
        offsets[step].append(int(fields[3]) - spawned * 1e6)
    offsets["P zookeeper has exited"].append((ended - spawned) * 1e6)
order.append("P zookeeper has exited")
medians = [(step, statistics.median(offsets[step])) for step in order]
medians.sort(key=lambda item: item[1])
previous = 0.0
print(f"| since spawn (µs) | step (µs) | step |\n|---|---|---|")
for step, at in medians:
    print(f"| {at:.0f} | {at - previous:.0f} | {step} |")
    previous = at
