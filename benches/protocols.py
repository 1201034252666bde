"""TLS echo, UDP echo and subprocess spawning on the asyncio-API loops, side by
side (issue 7's speed figures).

    python benches/protocols.py [--repeat 3] [--seconds 3] [--loops mioloop-asyncio asyncio uvloop]

- ``tls-1k``, ``tls-10k``: a TLS 1.3 echo server (an ``asyncio.Protocol`` behind
  ``create_server(ssl=...)``) in its own process; 4 client threads in this process
  each send a message and wait for its echo, over and over. Reported: messages/s
  and the server's CPU time per message (``/proc/<pid>/stat``).
- ``udp``: a UDP echo server (``create_datagram_endpoint``); the Rust load
  generator ``benches/native/udp_loadgen.rs`` (built here with cargo) keeps 10
  sockets each sending a 64-byte datagram and waiting for its echo. Same figures.
- ``spawn``: 500 ``asyncio.create_subprocess_exec("/bin/true")`` + ``wait()`` in a
  row, in a fresh process per run: spawns/s.

Each cell is the median of ``--repeat`` runs, the loops interleaved; ratios are
against uvloop in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import NATIVE_BIN, build_native  # noqa: E402

from workloads import Unavailable, make_loop  # noqa: E402

CERTS = HERE.parent / "tests" / "certs"
KINDS = ["mioloop-asyncio", "asyncio", "uvloop"]
CLIENTS = 4
SPAWNS = 500
TICKS_PER_SEC = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SEC


# The servers (run in a child process)


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


class DatagramEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)  # type: ignore[attr-defined]


def serve(kind: str, what: str) -> None:
    loop = make_loop(kind)
    asyncio.set_event_loop(loop)
    if what == "tls":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(CERTS / "server.pem")
        server = loop.run_until_complete(loop.create_server(Echo, "127.0.0.1", 0, ssl=context))
        port = server.sockets[0].getsockname()[1]
    else:
        transport, _ = loop.run_until_complete(loop.create_datagram_endpoint(DatagramEcho, local_addr=("127.0.0.1", 0)))
        port = transport.get_extra_info("sockname")[1]
    print(port, flush=True)
    loop.run_forever()


def spawn(kind: str) -> None:
    loop = make_loop(kind)
    asyncio.set_event_loop(loop)

    async def main() -> float:
        start = time.perf_counter()
        for _ in range(SPAWNS):
            proc = await asyncio.create_subprocess_exec("/bin/true")
            await proc.wait()
        return time.perf_counter() - start

    print(json.dumps({"rate": SPAWNS / loop.run_until_complete(main())}), flush=True)


# The clients (this process)


def tls_client(port: int, size: int, stop: threading.Event, counts: list[int], me: int) -> None:
    context = ssl.create_default_context(cafile=str(CERTS / "ca.pem"))
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            payload = os.urandom(size)
            while not stop.is_set():
                sock.sendall(payload)
                got = 0
                while got < size:
                    got += len(sock.recv(size - got))
                counts[me] += 1


def udp_load(port: int, server_pid: int, seconds: float) -> dict[str, float]:
    """The Rust UDP load generator against the server on ``port``."""
    out = subprocess.run(
        [str(NATIVE_BIN / "udp-loadgen"), "--port", str(port), "--duration", str(seconds)]
        + ["--server-pid", str(server_pid)],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    )
    result = json.loads(out.stdout)
    messages = result["rps"] * result["seconds"]
    return {"rate": result["rps"], "cpu_us_per_msg": result["server_cpu"] / messages * 1e6}


def measure_server(kind: str, workload: str, seconds: float) -> dict[str, float] | None:
    what = "tls" if workload.startswith("tls") else "udp"
    proc = subprocess.Popen([sys.executable, __file__, "serve", kind, what], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line.strip().isdigit():
            return None
        port = int(line)
        if what == "udp":
            return udp_load(port, proc.pid, seconds)
        stop = threading.Event()
        # One counter per client thread, read while they run.
        counts = [0] * CLIENTS
        size = 1024 if workload == "tls-1k" else 10 * 1024
        threads = [threading.Thread(target=tls_client, args=(port, size, stop, counts, me)) for me in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(0.5)  # handshakes and warm-up
        cpu0, count0, start = cpu_seconds(proc.pid), sum(counts), time.perf_counter()
        time.sleep(seconds)
        cpu1, count1, end = cpu_seconds(proc.pid), sum(counts), time.perf_counter()
        stop.set()
        for t in threads:
            t.join()
        messages = count1 - count0
        return {"rate": messages / (end - start), "cpu_us_per_msg": (cpu1 - cpu0) / messages * 1e6}
    finally:
        proc.kill()
        proc.wait()


def measure_spawn(kind: str) -> dict[str, float] | None:
    out = subprocess.run(
        [sys.executable, __file__, "spawn", kind], capture_output=True, text=True, timeout=300, check=False
    )
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        return None
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "spawn":
        spawn(sys.argv[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--loops", nargs="+", default=KINDS)
    parser.add_argument("--workloads", nargs="+", default=["tls-1k", "tls-10k", "udp", "spawn"])
    args = parser.parse_args()
    if "udp" in args.workloads and (why := build_native()):
        print(f"udp needs the Rust load generator: {why}", file=sys.stderr)
        return 1
    loops = []
    for kind in args.loops:
        try:
            make_loop(kind).close()
            loops.append(kind)
        except Unavailable as e:
            print(f"skipping {kind}: {e}", file=sys.stderr)
    results: dict[str, dict[str, list[dict[str, float]]]] = {w: {k: [] for k in loops} for w in args.workloads}
    for _ in range(args.repeat):
        for workload in args.workloads:
            for kind in loops:
                cell = measure_spawn(kind) if workload == "spawn" else measure_server(kind, workload, args.seconds)
                if cell is not None:
                    results[workload][kind].append(cell)
    print(f"python {' '.join(sys.argv)}  ({args.repeat} runs per cell, median; ratios against uvloop)\n")
    print("| workload | loop | rate /s | vs uvloop | server CPU µs/msg | vs uvloop |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for workload, by_kind in results.items():
        medians = {
            kind: {key: statistics.median(c[key] for c in cells) for key in cells[0]}
            for kind, cells in by_kind.items()
            if cells
        }
        ref = medians.get("uvloop")
        for kind, cell in medians.items():
            rate_ratio = f"{cell['rate'] / ref['rate']:.2f}×" if ref else "-"
            cpu = cell.get("cpu_us_per_msg")
            cpu_text = f"{cpu:.1f}" if cpu is not None else "-"
            cpu_ratio = f"{cpu / ref['cpu_us_per_msg']:.2f}×" if ref and cpu is not None else "-"
            print(f"| {workload} | {kind} | {cell['rate']:,.0f} | {rate_ratio} | {cpu_text} | {cpu_ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
