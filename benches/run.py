"""Runs the benchmark suites side by side and prints tables of ratios.

Every measurement runs in a fresh process; the peers are interleaved (A B C A B C ...)
and repeated; tables show the median, the min-max, and the ratio of medians to asyncio
and to uvloop measured in the same invocation::

    python benches/run.py --quick                 # every suite, about two minutes
    python benches/run.py                         # full sizes and repeats
    python benches/run.py --suite echo --repeat 5

Suites: ``micro`` (BENCHMARKS.md workloads 1-4, with the Rust-native ceiling and the
Python call floors), ``echo`` (5: TCP echo through the Rust load generator) and
``http`` (6: a "hello world" of Tornado, of uvicorn with httptools and Starlette, and of
aiohttp, under each loop). Results go to
``benches/results/`` as ``results.json``, ``results.md`` and ``chart.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
NATIVE = HERE / "native"
NATIVE_BIN = NATIVE / "target" / "release"
sys.path.insert(0, str(HERE))

from workloads import LOOPS, WORKLOADS  # noqa: E402

MICRO_PEERS = [*LOOPS, "rust-native", "floor-call", "floor-link"]
_ASYNCIO_API = ["mioloop-asyncio", "asyncio", "uvloop", "rloop"]
ECHO_PEERS = [
    "mioloop",
    *_ASYNCIO_API,
    *(f"{loop}/buffered" for loop in _ASYNCIO_API),
    *(f"{loop}/streams" for loop in _ASYNCIO_API),
    "tornado-mioloop",
    "tornado-asyncio",
    "tornado-uvloop",
    "node",
    "rust-native",
]
#: --quick keeps the rows the README's claims rest on.
QUICK_ECHO_PEERS = [
    "mioloop",
    "mioloop-asyncio",
    "mioloop-asyncio/buffered",
    "mioloop-asyncio/streams",
    "asyncio",
    "uvloop",
    "uvloop/buffered",
    "uvloop/streams",
    "rloop",
    "tornado-mioloop",
    "tornado-uvloop",
    "node",
    "rust-native",
]
#: The loops under each HTTP framework (the IOLoop face serves Tornado only).
HTTP_PEERS = {
    "tornado": ["mioloop", *_ASYNCIO_API],
    "uvicorn": _ASYNCIO_API,
    "aiohttp": _ASYNCIO_API,
}
ECHO_SIZES = [1024, 10 * 1024, 100 * 1024]
HTTP_SIZE = 1  # the load generator's size argument; in HTTP mode it sends a fixed GET


class Progress:
    def __init__(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.monotonic()

    def step(self, what: str) -> None:
        self.done += 1
        end = "\r" if sys.stderr.isatty() else "\n"
        elapsed = time.monotonic() - self.started
        print(f"[{self.done}/{self.total}] {what:<48} {elapsed:5.0f} s", end=end, file=sys.stderr, flush=True)


def build_native() -> str | None:
    """Builds the load generator and the Rust-native tools; returns why not, if not."""
    if shutil.which("cargo") is None:
        return "cargo is not installed"
    print("building benches/native (release) ...", file=sys.stderr, flush=True)
    proc = subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--manifest-path", str(NATIVE / "Cargo.toml")],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        return "cargo build failed: " + proc.stderr.strip().splitlines()[-1]
    return None


def machine() -> str:
    """The machine and interpreter, for the tables' header."""
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, CPython {platform.python_version()}"
    )


def run_json(cmd: list[str], timeout: float) -> dict[str, Any]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit code {proc.returncode}"}
    return json.loads(proc.stdout)


def summarize(values: list[float]) -> dict[str, float | None]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# Micro workloads


def micro_cmd(workload: str, peer: str, n: int) -> list[str] | str:
    if peer == "rust-native":
        return [str(NATIVE_BIN / "native-micro"), workload, "--n", str(n)]
    if peer.startswith("floor-"):
        if not workload.startswith("callbacks"):
            return "the call floors apply to the callback workloads"
        return [sys.executable, str(HERE / "floors.py"), peer, "--n", str(n), "--workload", workload]
    return [sys.executable, str(HERE / "workloads.py"), workload, peer, "--n", str(n)]


def run_micro(args: argparse.Namespace, progress: Progress, native_error: str | None) -> dict[str, Any]:
    scale = 0.2 if args.quick else 1.0
    out: dict[str, Any] = {}
    for workload in args.workloads:
        n = max(1000, int(WORKLOADS[workload][1] * scale))
        samples: dict[str, list[dict[str, Any]]] = {p: [] for p in args.micro_peers}
        skipped: dict[str, str] = {}
        if native_error and "rust-native" in samples:
            skipped["rust-native"] = native_error
        for _ in range(args.repeat):
            for peer in args.micro_peers:
                progress.step(f"micro {workload} {peer}")
                if peer in skipped:
                    continue
                cmd = micro_cmd(workload, peer, n)
                result = {"skipped": cmd} if isinstance(cmd, str) else run_json(cmd, timeout=180)
                if "skipped" in result or "error" in result:
                    skipped[peer] = result.get("skipped") or result["error"]
                else:
                    samples[peer].append(result)
        cells: dict[str, Any] = {}
        for peer in args.micro_peers:
            if peer in skipped:
                cells[peer] = {"skipped": skipped[peer]}
            elif samples[peer]:
                cell = summarize([s["rate"] for s in samples[peer]])
                cell["maxrss_kib"] = statistics.median(s["maxrss_kib"] for s in samples[peer])
                cell.update(n=n, unit=samples[peer][0]["unit"])
                cells[peer] = cell
        out[workload] = cells
    return out


# Servers under the load generator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(cmd: list[str]) -> tuple[subprocess.Popen[str] | None, str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line == "ready":
        return proc, ""
    proc.kill()
    _, err = proc.communicate()
    reason = line[len("skip: ") :] if line.startswith("skip: ") else (err.strip().splitlines() or ["no output"])[-1]
    return None, reason


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.communicate()


def server_cmd(suite: str, group: str, peer: str, port: int) -> list[str] | str:
    if suite == "http":
        return [sys.executable, str(HERE / "servers" / "http_server.py"), group, peer, str(port)]
    if peer == "node":
        node = shutil.which("node")
        return [node, str(HERE / "servers" / "echo_server.js"), str(port)] if node else "node is not installed"
    if peer == "rust-native":
        return [str(NATIVE_BIN / "native-echo"), str(port)]
    return [sys.executable, str(HERE / "servers" / "echo_server.py"), peer, str(port)]


def run_load(suite: str, group: str, peer: str, duration: float) -> dict[str, Any]:
    """One load run against a fresh server; ``group`` is the echo's message size, or
    the HTTP framework (whose request is a fixed GET)."""
    port = free_port()
    cmd = server_cmd(suite, group, peer, port)
    size = int(group) if suite == "echo" else HTTP_SIZE
    if isinstance(cmd, str):
        return {"skipped": cmd}
    proc, reason = start_server(cmd)
    if proc is None:
        return {"skipped": reason}
    try:
        load = [
            str(NATIVE_BIN / "loadgen"),
            "--port",
            str(port),
            "--conns",
            "10",
            "--size",
            str(size),
            "--duration",
            str(duration),
            "--server-pid",
            str(proc.pid),
        ]
        if suite == "http":
            load.append("--http")
        return run_json(load, timeout=duration + 60)
    finally:
        stop_server(proc)


def run_servers(
    suite: str,
    groups: dict[str, list[str]],
    args: argparse.Namespace,
    progress: Progress,
    native_error: str | None,
) -> dict[str, Any]:
    """Each group's peers (the echo's sizes, the HTTP frameworks), interleaved."""
    duration = 1.0 if args.quick else 4.0
    out: dict[str, Any] = {}
    for group, peers in groups.items():
        samples: dict[str, list[dict[str, Any]]] = {p: [] for p in peers}
        skipped: dict[str, str] = {}
        if native_error:
            skipped.update({p: "load generator: " + native_error for p in peers})
        for _ in range(args.repeat):
            for peer in peers:
                progress.step(f"{suite} {group_label(group)} {peer}")
                if peer in skipped:
                    continue
                result = run_load(suite, group, peer, duration)
                if "skipped" in result or "error" in result:
                    skipped[peer] = result.get("skipped") or result["error"]
                else:
                    samples[peer].append(result)
        cells: dict[str, Any] = {}
        for peer in peers:
            if peer in skipped:
                cells[peer] = {"skipped": skipped[peer]}
            elif samples[peer]:
                runs = samples[peer]
                cell = summarize([r["rps"] for r in runs])
                cell["mib_s"] = statistics.median(r["mib_s"] for r in runs)
                cell["p50_us"] = statistics.median(r["p50_us"] for r in runs)
                cell["p99_us"] = statistics.median(r["p99_us"] for r in runs)
                cell["client_cpu_share"] = statistics.median(r["client_cpu_s"] / r["seconds"] for r in runs)
                per_k = [1000 * r["server_cpu_s"] / r["requests"] for r in runs if r["server_cpu_s"] is not None]
                cell["server_cpu_ms_per_1k"] = 1000 * statistics.median(per_k) if per_k else None
                cells[peer] = cell
        out[group] = cells
    return out


def group_label(group: str) -> str:
    """A size in KiB, or the framework's name."""
    return f"{int(group) // 1024} KiB" if group.isdigit() else group


# Rendering


def fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def ratio(value: float, ref: float | None) -> str:
    return f"{value / ref:.2f}" if ref else "–"


def render_micro(micro: dict[str, Any], peers: list[str]) -> list[str]:
    lines = [
        "### Micro workloads (BENCHMARKS.md 1-4)",
        "",
        "| workload | loop | rate /s | min–max | × asyncio | × uvloop | peak RSS MiB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for workload, cells in micro.items():
        ref = {k: cells.get(k, {}).get("median") for k in ("asyncio", "uvloop")}
        for peer in peers:
            cell = cells.get(peer)
            if cell is None:
                continue
            if "skipped" in cell:
                if not peer.startswith("floor-"):  # the floors only apply to callbacks
                    lines.append(f"| {workload} | {peer} | skipped: {cell['skipped']} | | | | |")
                continue
            lines.append(
                f"| {workload} | {peer} | {fmt_rate(cell['median'])} | {fmt_rate(cell['min'])}–{fmt_rate(cell['max'])}"
                f" | {ratio(cell['median'], ref['asyncio'])} | {ratio(cell['median'], ref['uvloop'])}"
                f" | {cell['maxrss_kib'] / 1024:.0f} |"
            )
    lines += [
        "",
        "`rust-native`: the same engine driven by Rust closures (the ceiling). `floor-call`: native code "
        "calling a no-op Python function; `floor-link`: the least a chain link costs, one native→Python "
        "call plus one Python→native call.",
    ]
    return lines


def render_servers(
    title: str, data: dict[str, Any], peers: list[str], refs: list[str], what: str = "size"
) -> list[str]:
    head = " | ".join(f"× {r}" for r in refs)
    lines = [
        title,
        "",
        f"| {what} | server | req/s | min–max | MiB/s | p50 µs | p99 µs | server CPU ms / 1k msg"
        f" | client CPU | {head} |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |" + " ---: |" * len(refs),
    ]
    for group, cells in data.items():
        label = group_label(group)
        ref = {r: cells.get(r, {}).get("median") for r in refs}
        for peer in peers:
            cell = cells.get(peer)
            if cell is None:
                continue
            if "skipped" in cell:
                lines.append(f"| {label} | {peer} | skipped: {cell['skipped']} |" + " |" * (7 + len(refs)))
                continue
            cpu = cell["server_cpu_ms_per_1k"]
            ratios = " | ".join(ratio(cell["median"], ref[r]) for r in refs)
            lines.append(
                f"| {label} | {peer} | {fmt_rate(cell['median'])} | {fmt_rate(cell['min'])}–{fmt_rate(cell['max'])}"
                f" | {cell['mib_s']:.1f} | {cell['p50_us']:.0f} | {cell['p99_us']:.0f}"
                f" | {cpu:.1f} | {100 * cell['client_cpu_share']:.0f}% | {ratios} |"
                if cpu is not None
                else f"| {label} | {peer} | {fmt_rate(cell['median'])} | | | | | | | {ratios} |"
            )
    return lines


def render(results: dict[str, Any]) -> str:
    lines = [
        f"Command: `{results['command']}`  ",
        f"Machine: {results['machine']}. {results['repeat']} run(s) per cell, each in a fresh process, "
        "peers interleaved; median and min–max; ratios are of medians from this run.",
        "",
    ]
    if "micro" in results:
        lines += render_micro(results["micro"], results["micro_peers"]) + [""]
    if "echo" in results:
        lines += render_servers(
            "### TCP echo (BENCHMARKS.md 5): 10 connections, Rust load generator",
            results["echo"],
            ECHO_PEERS,
            ["asyncio", "uvloop", "tornado-uvloop"],
        ) + [
            "",
            "`client CPU`: the load generator's share of one core; `server CPU ms / 1k msg` separates "
            "the servers once the client's core is saturated.",
            "",
        ]
    if "http" in results:
        lines += render_servers(
            "### HTTP (BENCHMARKS.md 6): hello world, keep-alive, 10 connections",
            results["http"],
            HTTP_PEERS["tornado"],
            ["asyncio", "uvloop"],
            what="framework",
        ) + [
            "",
            "Tornado's `mioloop` row is its IOLoop face (`mioloop.TornadoIOLoop`); every other "
            "`mioloop-asyncio` row is mioloop's asyncio loop under the framework's own asyncio code.",
            "",
        ]
    return "\n".join(lines)


def chart(results: dict[str, Any], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed"
    # (suite, what is plotted): rates as ratios to asyncio with min-max error bars,
    # and for echo also the server's CPU per 1,000 messages (what separates servers
    # once the load generator's core is saturated).
    panels = [(k, "rate") for k in ("micro", "echo", "http") if k in results]
    if "echo" in results:
        panels.insert([p for p, _ in panels].index("echo") + 1, ("echo", "cpu"))
    every_peer = list(dict.fromkeys([*MICRO_PEERS, *ECHO_PEERS, *HTTP_PEERS["tornado"]]))
    palette = plt.get_cmap("tab20")
    colors = {peer: palette(i % 20) for i, peer in enumerate(every_peer)}
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 4.2 * len(panels)), squeeze=False)
    titles = {"micro": "Micro workloads", "echo": "TCP echo, req/s", "http": "HTTP hello world, req/s"}
    for ax, (panel, measure) in zip(axes[:, 0], panels, strict=True):
        data = results[panel]
        groups = list(data)
        peers = [
            p
            for p in (
                results["micro_peers"] if panel == "micro" else ECHO_PEERS if panel == "echo" else HTTP_PEERS["tornado"]
            )
            if any("median" in data[g].get(p, {}) for g in groups)
        ]
        width = 0.8 / max(1, len(peers))
        for i, peer in enumerate(peers):
            xs, ys, low, high = [], [], [], []
            for j, group in enumerate(groups):
                cell = data[group].get(peer, {})
                if measure == "cpu":
                    if cell.get("server_cpu_ms_per_1k") is not None:
                        xs.append(j + i * width)
                        ys.append(cell["server_cpu_ms_per_1k"])
                        low.append(0.0)
                        high.append(0.0)
                    continue
                base = data[group].get("asyncio", {}).get("median")
                if base and "median" in cell:
                    xs.append(j + i * width)
                    ys.append(cell["median"] / base)
                    low.append((cell["median"] - cell["min"]) / base)
                    high.append((cell["max"] - cell["median"]) / base)
            yerr = None if measure == "cpu" else [low, high]
            ax.bar(xs, ys, width, yerr=yerr, label=peer, color=colors[peer], error_kw={"elinewidth": 0.6, "capsize": 1})
        labels = groups if panel == "micro" else [group_label(g) for g in groups]
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(groups))], labels)
        if measure == "cpu":
            ax.set_yscale("log")  # one broken peer (rloop's BufferedProtocol) is 50x the rest
            ax.set_ylabel("server CPU ms / 1,000 messages (log)")
            ax.set_title("TCP echo, server CPU per message (lower is better)")
        else:
            if panel == "micro":
                ax.set_yscale("log")
                ax.set_ylabel("× asyncio (log scale)")
            else:
                ax.set_ylabel("× asyncio")
            ax.axhline(1.0, color="black", linewidth=0.8)
            ax.set_title(titles[panel] + " (bars: median; whiskers: min–max)")
        if peers:
            # Beside the plot, not over the bars: the echo panel has many rows.
            ax.legend(fontsize=7, ncol=1 if len(peers) > 12 else 2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            ax.text(0.5, 0.5, "no peer ran", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"mioloop benchmarks — {results['machine']}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, two per cell, fewer echo rows (~3 min)")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--suite", nargs="+", default=["micro", "echo", "http"], choices=["micro", "echo", "http"])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--micro-peers", nargs="+", default=MICRO_PEERS, choices=MICRO_PEERS)
    parser.add_argument(
        "--echo-peers", nargs="+", default=None, choices=ECHO_PEERS, help="default: all (--quick: fewer)"
    )
    parser.add_argument("--frameworks", nargs="+", default=list(HTTP_PEERS), choices=list(HTTP_PEERS))
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results.json/.md and chart.png go")
    parser.add_argument("--render-only", action="store_true", help="redraw results.md and chart.png from results.json")
    args = parser.parse_args()
    if args.render_only:
        saved = json.loads((RESULTS / "results.json").read_text())
        (RESULTS / "results.md").write_text(render(saved))
        problem = chart(saved, RESULTS / "chart.png")
        print(render(saved) + (f"\nno chart: {problem}" if problem else ""))
        return 0
    args.repeat = args.repeat or (2 if args.quick else 3)
    args.echo_peers = args.echo_peers or (QUICK_ECHO_PEERS if args.quick else ECHO_PEERS)
    native_error = build_native()
    results: dict[str, Any] = {
        "command": ("python benches/run.py " + " ".join(sys.argv[1:])).strip(),
        "machine": machine(),
        "repeat": args.repeat,
        "micro_peers": args.micro_peers,
    }
    total = args.repeat * (
        ("micro" in args.suite) * len(args.workloads) * len(args.micro_peers)
        + ("echo" in args.suite) * len(ECHO_SIZES) * len(args.echo_peers)
        + ("http" in args.suite) * sum(len(HTTP_PEERS[f]) for f in args.frameworks)
    )
    progress = Progress(total)
    if "micro" in args.suite:
        results["micro"] = run_micro(args, progress, native_error)
    if "echo" in args.suite:
        echo = {str(size): args.echo_peers for size in ECHO_SIZES}
        results["echo"] = run_servers("echo", echo, args, progress, native_error)
    if "http" in args.suite:
        http = {f: HTTP_PEERS[f] for f in args.frameworks}
        results["http"] = run_servers("http", http, args, progress, native_error)
    print(file=sys.stderr)
    args.out.mkdir(exist_ok=True, parents=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = render(results)
    (args.out / "results.md").write_text(table)
    problem = chart(results, args.out / "chart.png")
    print(table)
    print(f"\nWrote {args.out / 'results.json'}, results.md" + (f"; no chart: {problem}" if problem else ", chart.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
