"""Runs the micro workloads side by side and prints a table of ratios.

Each measurement runs in a fresh process; the loops are interleaved (A B C A B C ...)
and repeated; the table shows the median, the min-max, and the ratio of medians to
asyncio and to uvloop measured in the same invocation::

    python benches/run.py --quick          # about two minutes
    python benches/run.py                  # full sizes, 5 repeats

Results go to ``benches/results/micro.json`` and ``benches/results/micro.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workloads import LOOPS, WORKLOADS  # noqa: E402

RESULTS = HERE / "results"


def run_one(workload: str, loop: str, n: int, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "workloads.py"), workload, loop, "--n", str(n)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit code {proc.returncode}"}
    return json.loads(proc.stdout)


def summarize(rates: list[float]) -> dict[str, float]:
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.0f} k"
    return f"{x:.0f}"


def render(results: dict[str, Any]) -> str:
    loops: list[str] = results["loops"]
    lines = [
        f"Command: `{results['command']}`  ",
        f"Machine: {results['machine']}; {results['repeat']} runs per cell, fresh process each, "
        "loops interleaved; median (min-max); ratios are of medians.",
        "",
        "| workload | loop | rate /s | min-max | × asyncio | × uvloop | peak RSS MiB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for workload, per_loop in results["workloads"].items():
        ref = {k: per_loop.get(k, {}).get("median") for k in ("asyncio", "uvloop")}
        for loop in loops:
            cell = per_loop.get(loop)
            if cell is None:
                continue
            if "skipped" in cell:
                lines.append(f"| {workload} | {loop} | skipped: {cell['skipped']} | | | | |")
                continue
            med = cell["median"]
            ratios = [f"{med / ref[k]:.2f}" if ref[k] else "–" for k in ("asyncio", "uvloop")]
            lines.append(
                f"| {workload} | {loop} | {fmt_rate(med)} | {fmt_rate(cell['min'])}–{fmt_rate(cell['max'])}"
                f" | {ratios[0]} | {ratios[1]} | {cell['maxrss_kib'] / 1024:.0f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 repeats (~2 min)")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--loops", nargs="+", default=LOOPS, choices=LOOPS)
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 5)
    scale = 0.2 if args.quick else 1.0
    command = "python benches/run.py " + " ".join(sys.argv[1:])
    results: dict[str, Any] = {
        "command": command.strip(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"CPython {platform.python_version()}",
        "repeat": repeat,
        "loops": args.loops,
        "workloads": {},
    }
    total = len(args.workloads) * repeat * len(args.loops)
    done = 0
    started = time.monotonic()
    for workload in args.workloads:
        n = max(1000, int(WORKLOADS[workload][1] * scale))
        samples: dict[str, list[dict[str, Any]]] = {loop: [] for loop in args.loops}
        skipped: dict[str, str] = {}
        for _ in range(repeat):
            for loop in args.loops:
                done += 1
                if loop in skipped:
                    continue
                result = run_one(workload, loop, n, timeout=120)
                if "skipped" in result or "error" in result:
                    skipped[loop] = result.get("skipped") or result["error"]
                else:
                    samples[loop].append(result)
                elapsed = time.monotonic() - started
                end = "\r" if sys.stderr.isatty() else "\n"
                print(
                    f"[{done}/{total}] {workload:<17} {loop:<16} {elapsed:5.0f} s",
                    end=end,
                    file=sys.stderr,
                    flush=True,
                )
        per_loop: dict[str, Any] = {}
        for loop in args.loops:
            if loop in skipped:
                per_loop[loop] = {"skipped": skipped[loop]}
            elif samples[loop]:
                cell = summarize([s["rate"] for s in samples[loop]])
                cell["maxrss_kib"] = statistics.median(s["maxrss_kib"] for s in samples[loop])
                cell["n"] = n
                cell["unit"] = samples[loop][0]["unit"]
                per_loop[loop] = cell
        results["workloads"][workload] = per_loop
    print(file=sys.stderr)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "micro.json").write_text(json.dumps(results, indent=2) + "\n")
    table = render(results)
    (RESULTS / "micro.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
