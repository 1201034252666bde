"""Instructions per operation (BENCHMARKS.md 12): each micro workload under
callgrind at two sizes, in fresh processes; the difference divided by the extra
operations cancels start-up, imports and teardown, leaving the cost of one more
operation. Repeatable on a noisy machine where wall time moves by 15%: the figure
for the loop's own cost, and for comparing two variants of a hot path.

    python benches/instructions.py                       # every workload and loop
    python benches/instructions.py --workloads callbacks_chain --loops mioloop rloop

Needs valgrind. Prints a Markdown table and writes benches/results/instructions.json
and .md (``--no-save`` to skip). ``PYTHONHASHSEED=0`` keeps dict layouts, and so
the counts, the same from run to run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCHES = Path(__file__).resolve().parent
RESULTS = BENCHES / "results"

#: Workload -> (smaller size, what one operation is). The larger size is twice it.
WORKLOADS = {
    "callbacks_chain": (50_000, "link"),
    "callbacks_burst": (50_000, "callback"),
    "burst_before_start": (50_000, "callback"),
    "timers": (20_000, "timer"),
    "timers_cancelled": (20_000, "timer"),
    "wakeups": (20_000, "wake-up"),
    "fd_pingpong": (10_000, "round trip"),
    "task_steps": (20_000, "step"),
    "future_wakeups": (20_000, "wake-up"),
    "protocol_pingpong": (5_000, "round trip"),
}
LOOPS = ["mioloop", "mioloop-asyncio", "rloop", "uvloop", "asyncio"]
#: The IOLoop face runs the Tornado-style API; the task workloads use asyncio's.
REFERENCE = "rloop"


def collected(workload: str, loop: str, n: int) -> int | None:
    """Instructions callgrind counts for one run, or None if the loop is missing."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/out",
                sys.executable,
                str(BENCHES / "workloads.py"),
                workload,
                loop,
                "--n",
                str(n),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            timeout=3600,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"{workload} on {loop} failed:\n{proc.stderr[-2000:]}")
    if '"skipped"' in proc.stdout:
        return None
    match = re.search(r"Collected : (\d+)", proc.stderr)
    if match is None:
        raise RuntimeError(f"no count from callgrind for {workload} on {loop}:\n{proc.stderr[-2000:]}")
    return int(match.group(1))


def per_operation(workload: str, loop: str) -> float | None:
    n, _ = WORKLOADS[workload]
    small = collected(workload, loop, n)
    if small is None:
        return None
    large = collected(workload, loop, 2 * n)
    assert large is not None
    return (large - small) / n


def render(results: dict[str, dict[str, float | None]], loops: list[str]) -> str:
    head = "| workload | per | " + " | ".join(loops) + " |"
    rule = "| --- | --- | " + " | ".join("---:" for _ in loops) + " |"
    lines = [head, rule]
    for workload, by_loop in results.items():
        reference = by_loop.get(REFERENCE)
        cells = []
        for loop in loops:
            value = by_loop.get(loop)
            if value is None:
                cells.append("—")
            elif reference and loop != REFERENCE:
                cells.append(f"{value:,.0f} ({value / reference:.2f}×)")
            else:
                cells.append(f"{value:,.0f}")
        lines.append(f"| {workload} | {WORKLOADS[workload][1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--loops", nargs="+", default=LOOPS)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 1
    cells = [(w, loop) for w in args.workloads for loop in args.loops]
    with ThreadPoolExecutor(args.jobs) as pool:
        counts = dict(zip(cells, pool.map(lambda cell: per_operation(*cell), cells), strict=True))
    results = {w: {loop: counts[(w, loop)] for loop in args.loops} for w in args.workloads}
    command = "python benches/instructions.py " + " ".join(sys.argv[1:])
    header = (
        f"Command: `{command.strip()}`  \n"
        f"Instructions per operation (callgrind, the difference between runs of n and 2n "
        f"operations, divided by n; PYTHONHASHSEED=0), CPython {platform.python_version()}, "
        f"{platform.machine()}; in brackets, the ratio to {REFERENCE}."
    )
    table = render(results, args.loops)
    print(header + "\n\n" + table)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "instructions.json").write_text(json.dumps({"command": command, "results": results}, indent=1))
        (RESULTS / "instructions.md").write_text(header + "\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
