#!/usr/bin/env python3
"""Times commands side by side: round-robin (A, B, C, A, B, C, ...), so that
whatever else the machine does falls on all of them alike, after a warm-up.

    alternate.py [--runs N] [--warmup N] [--json FILE] [--before SHELL] NAME=COMMAND ...

Each COMMAND is split like a shell would (no expansion), run with stdout on
/dev/null, and must exit 0. Prints, per command, the median and mean wall
time and the CPU time of the command and its descendants (getrusage), and
the ratio of medians to the first command. --json writes the same figures
(seconds) in hyperfine's layout: {"results": [{"command", "median", ...}]}.
--before runs a shell command, untimed, before every run of every command
(bench/images.sh empties the stores and syncs the disk with it).
"""
import argparse, json, os, shlex, statistics, subprocess, sys, time

parser = argparse.ArgumentParser()
parser.add_argument("--runs", type=int, default=300)
parser.add_argument("--warmup", type=int, default=30)
parser.add_argument("--json")
parser.add_argument("--before")
parser.add_argument("commands", nargs="+", metavar="NAME=COMMAND")
args = parser.parse_args()

commands = []
for item in args.commands:
    name, _, command = item.partition("=")
    argv = shlex.split(command)
    if not argv:
        sys.exit(f"alternate.py: {item!r}: no command")
    commands.append((name, argv))

devnull = os.open(os.devnull, os.O_RDWR)
wall = {name: [] for name, _ in commands}
cpu = {name: [] for name, _ in commands}
for round_ in range(args.warmup + args.runs):
    for name, argv in commands:
        if args.before and subprocess.run(args.before, shell=True).returncode != 0:
            sys.exit(f"alternate.py: --before {args.before!r} failed")
        start = time.perf_counter()
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
        _, status, usage = os.wait4(pid, 0)
        elapsed = time.perf_counter() - start
        if status != 0:
            sys.exit(f"alternate.py: {name}: {shlex.join(argv)} failed (wait status {status})")
        if round_ >= args.warmup:
            wall[name].append(elapsed)
            cpu[name].append(usage.ru_utime + usage.ru_stime)

results = []
for name, argv in commands:
    w = wall[name]
    results.append({
        "command": name,
        "median": statistics.median(w),
        "mean": statistics.mean(w),
        "stddev": statistics.stdev(w) if len(w) > 1 else 0.0,
        "cpu_mean": statistics.mean(cpu[name]),
        "runs": len(w),
    })
base = results[0]["median"]
print(f"{'command':<28} {'median ms':>10} {'mean ± σ ms':>16} {'cpu ms':>8} {'ratio':>6}")
for r in results:
    print(f"{r['command']:<28} {r['median']*1e3:10.2f} {r['mean']*1e3:9.2f} ± {r['stddev']*1e3:4.2f} "
          f"{r['cpu_mean']*1e3:8.2f} {r['median']/base:6.2f}")
if args.json:
    with open(args.json, "w") as out:
        json.dump({"results": results}, out, indent=1)
