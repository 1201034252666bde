"""Memory per idle connection (BENCHMARKS.md 10): a server per loop, N idle TCP
connections to it, the server's RSS before and after.

    python benches/idle_connections.py --conns 10000

Each server is ``benches/servers/echo_server.py`` (an ``asyncio.Protocol`` echo
server on the loop named), in a process of its own; the connections are plain
sockets of this process that send nothing once the server has accepted them. Loops
are measured in turn, ``--repeat`` times each, interleaved; the median is reported.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import free_port, start_server, stop_server  # noqa: E402

PEERS = ["mioloop-asyncio", "asyncio", "uvloop", "rloop"]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def measure(peer: str, conns: int) -> dict[str, float] | str:
    port = free_port()
    proc, reason = start_server([sys.executable, str(HERE / "servers" / "echo_server.py"), peer, str(port)])
    if proc is None:
        return reason
    clients: list[socket.socket] = []
    try:
        time.sleep(0.2)
        fds_before, rss_before = open_fds(proc.pid), rss_kib(proc.pid)
        for _ in range(conns):
            clients.append(socket.create_connection(("127.0.0.1", port)))
        # One round trip on the last connection: the server has accepted them all.
        deadline = time.monotonic() + 60
        while open_fds(proc.pid) < fds_before + conns and time.monotonic() < deadline:
            time.sleep(0.05)
        accepted = open_fds(proc.pid) - fds_before
        time.sleep(0.5)
        rss_after = rss_kib(proc.pid)
        return {
            "accepted": accepted,
            "rss_before_kib": rss_before,
            "rss_after_kib": rss_after,
            "bytes_per_conn": (rss_after - rss_before) * 1024 / max(accepted, 1),
        }
    finally:
        for c in clients:
            c.close()
        stop_server(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peers", nargs="+", default=PEERS)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    samples: dict[str, list[dict[str, float]]] = {p: [] for p in args.peers}
    skipped: dict[str, str] = {}
    for _ in range(args.repeat):
        for peer in args.peers:
            if peer in skipped:
                continue
            result = measure(peer, args.conns)
            if isinstance(result, str):
                skipped[peer] = result
            else:
                samples[peer].append(result)
                print(f"{peer}: {result['bytes_per_conn']:.0f} B/conn", file=sys.stderr)
    print(f"{args.conns} idle TCP connections, median of {args.repeat}; `python benches/idle_connections.py`\n")
    print("| server | accepted | RSS before MiB | RSS after MiB | bytes per connection | × uvloop |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    per_conn = {p: statistics.median(s["bytes_per_conn"] for s in runs) for p, runs in samples.items() if runs}
    for peer in args.peers:
        if peer in skipped:
            print(f"| {peer} | skipped: {skipped[peer]} | | | | |")
            continue
        runs = samples[peer]
        ref = per_conn.get("uvloop")
        print(
            f"| {peer} | {statistics.median(r['accepted'] for r in runs):.0f}"
            f" | {statistics.median(r['rss_before_kib'] for r in runs) / 1024:.1f}"
            f" | {statistics.median(r['rss_after_kib'] for r in runs) / 1024:.1f}"
            f" | {per_conn[peer]:.0f} | {per_conn[peer] / ref:.2f} |"
            if ref
            else f"| {peer} | | | | {per_conn[peer]:.0f} | – |"
        )
    if args.json:
        args.json.write_text(json.dumps({"conns": args.conns, "samples": samples, "skipped": skipped}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
