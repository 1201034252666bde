"""Soak: Tornado's HTTP server under keep-alive load for minutes, on each loop side by side.

Tornado's HTTP server sets a 3600 s timeout per request and cancels it; a loop that
keeps cancelled timers alive grows under it without bound. Every peer's server runs
for the whole soak; the load generator turns from one to the next in windows of a
few seconds (A B C A B C ...), so all of them see the same machine at the same time.
After each window the server's RSS is sampled with the window's p99 latency.

    python benches/soak.py                 # 10 minutes
    python benches/soak.py --quick         # 3 minutes

The bar, per peer: RSS and p99 flat, the last minute's median within 10% of the
second minute's. Results go to ``benches/results/soak.json``, ``soak.md`` and
``soak.png``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from run import HTTP_PEERS, NATIVE_BIN, build_native, free_port, machine, run_json, start_server, stop_server

HERE = Path(__file__).resolve().parent

#: How far the last minute may drift from the second one.
FLAT = 0.10


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def soak(peers: list[str], minutes: float, window: float) -> dict[str, Any]:
    servers: dict[str, Any] = {}
    samples: dict[str, list[dict[str, float]]] = {p: [] for p in peers}
    skipped: dict[str, str] = {}
    try:
        for peer in peers:
            port = free_port()
            proc, reason = start_server([sys.executable, str(HERE / "servers" / "http_server.py"), peer, str(port)])
            if proc is None:
                skipped[peer] = reason
            else:
                servers[peer] = (proc, port)
        started = time.monotonic()
        while time.monotonic() - started < minutes * 60:
            for peer, (proc, port) in servers.items():
                load = [str(NATIVE_BIN / "loadgen"), "--port", str(port), "--conns", "10", "--size", "1"]
                result = run_json([*load, "--duration", str(window), "--http"], timeout=window + 60)
                if "error" in result:
                    skipped[peer] = result["error"]
                    continue
                samples[peer].append(
                    {
                        "t": time.monotonic() - started,
                        "rss_mib": rss_mib(proc.pid),
                        "p99_us": result["p99_us"],
                        "rps": result["rps"],
                    }
                )
            print(f"{time.monotonic() - started:5.0f} s", file=sys.stderr, flush=True)
    finally:
        for proc, _ in servers.values():
            stop_server(proc)
    return {"samples": samples, "skipped": skipped}


def verdicts(samples: dict[str, list[dict[str, float]]], minutes: float) -> dict[str, dict[str, Any]]:
    """Per peer: the second minute's and the last minute's medians, and whether the
    last is within ``FLAT`` of the second."""
    out: dict[str, dict[str, Any]] = {}
    end = minutes * 60
    for peer, rows in samples.items():
        second = [r for r in rows if 60 <= r["t"] < 120]
        last = [r for r in rows if r["t"] >= end - 60]
        if not second or not last:
            continue
        cell: dict[str, Any] = {}
        for key in ("rss_mib", "p99_us"):
            early = statistics.median(r[key] for r in second)
            late = statistics.median(r[key] for r in last)
            cell[key] = {"second_minute": early, "last_minute": late, "drift": late / early - 1}
        cell["flat"] = all(abs(cell[k]["drift"]) <= FLAT for k in ("rss_mib", "p99_us"))
        out[peer] = cell
    return out


def render_md(result: dict[str, Any]) -> str:
    lines = [
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}. {result['minutes']} min, load windows of {result['window']} s in turn.",
        "",
        "| server | RSS 2nd min MiB | RSS last min MiB | drift | p99 2nd min µs | p99 last min µs | drift | flat |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for peer, cell in result["verdicts"].items():
        rss, p99 = cell["rss_mib"], cell["p99_us"]
        lines.append(
            f"| {peer} | {rss['second_minute']:.1f} | {rss['last_minute']:.1f} | {rss['drift']:+.1%} "
            f"| {p99['second_minute']:.0f} | {p99['last_minute']:.0f} | {p99['drift']:+.1%} "
            f"| {'yes' if cell['flat'] else 'NO'} |"
        )
    for peer, reason in result["skipped"].items():
        lines.append(f"| {peer} | skipped: {reason} | | | | | | |")
    return "\n".join(lines) + "\n"


def render_chart(result: dict[str, Any], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed"
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for peer, rows in result["samples"].items():
        if rows:
            ts = [r["t"] / 60 for r in rows]
            top.plot(ts, [r["rss_mib"] for r in rows], label=peer, linewidth=1)
            bottom.plot(ts, [r["p99_us"] for r in rows], label=peer, linewidth=1)
    top.set_ylabel("server RSS, MiB")
    top.set_title("Tornado HTTP under keep-alive load: memory and tail latency over time")
    bottom.set_ylabel("p99 latency per window, µs")
    bottom.set_xlabel("minutes")
    top.legend(fontsize=8)
    fig.suptitle(result["machine"], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="3 minutes")
    parser.add_argument("--window", type=float, default=3.0, help="seconds of load per peer in turn")
    parser.add_argument("--peers", nargs="+", default=HTTP_PEERS, choices=HTTP_PEERS)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    minutes = 3.0 if args.quick else args.minutes
    if minutes < 2:
        parser.error("the verdict compares the second minute with the last: run at least 2 minutes")
    error = build_native()
    if error:
        print(f"cannot build the load generator: {error}", file=sys.stderr)
        return 1
    result: dict[str, Any] = {
        "command": ("python benches/soak.py " + " ".join(sys.argv[1:])).strip(),
        "machine": machine(),
        "minutes": minutes,
        "window": args.window,
        **soak(args.peers, minutes, args.window),
    }
    result["verdicts"] = verdicts(result["samples"], minutes)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(result, indent=1) + "\n")
    md = render_md(result)
    (args.out / "soak.md").write_text(md)
    chart_error = render_chart(result, args.out / "soak.png")
    print(md)
    if chart_error:
        print(f"no chart: {chart_error}", file=sys.stderr)
    print(f"Wrote {args.out}/soak.json, soak.md" + ("" if chart_error else ", soak.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
