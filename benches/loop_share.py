"""The loop's own share of a real server's work: how much of an HTTP server's CPU a
faster loop could still take.

Each server of the HTTP suite (``benches/servers/http_server.py``) runs twice under
the Rust load generator (10 keep-alive connections, one "hello world" GET at a time
on each):

1. under callgrind, counters zeroed after a warm-up: user-space instructions per
   request, split by ELF object. The loop's own share is its extension's own
   instructions (mioloop's ``_mioloop``, uvloop's ``loop``, rloop's ``_rloop``) plus
   what the extension itself calls in libc (allocation, copies);
2. under cProfile: the loop package's Python functions that run per request (their
   cost is in libpython's instructions above, so they are listed by name).

::

    python benches/loop_share.py                          # every framework, mioloop and uvloop
    python benches/loop_share.py --frameworks uvicorn --loops mioloop-asyncio uvloop rloop

Needs valgrind and the load generator (built from ``benches/native`` on first use).
It prints a Markdown table; nothing is saved.
"""

from __future__ import annotations

import argparse
import collections
import os
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import HTTP_PEERS, NATIVE_BIN, build_native, free_port  # noqa: E402

SERVER = HERE / "servers" / "http_server.py"
#: Each loop's extension, by a part of its file name, and its Python package's folder.
EXTENSIONS = {
    "mioloop": ("mioloop/_mioloop.", "mioloop"),
    "mioloop-asyncio": ("mioloop/_mioloop.", "mioloop"),
    "uvloop": ("uvloop/loop.", "uvloop"),
    "rloop": ("rloop/_rloop.", "rloop"),
}
#: A Python function called at least this often per request is listed (start-up
#: calls fall far below it).
PER_REQUEST = 0.05
PROFILED = """
import cProfile, os, runpy, sys, threading
out, sys.argv = sys.argv[1], sys.argv[2:]
profile = cProfile.Profile()

def dump_when_told():  # a line on stdin; no signal needed (not every loop checks them)
    sys.stdin.readline()
    profile.dump_stats(out)
    os._exit(0)

threading.Thread(target=dump_when_told, daemon=True).start()
profile.enable()
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def start(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{' '.join(cmd[-3:])}: {line or 'no output'}")
    return proc


def load(port: int, seconds: float) -> int:
    """Runs the load generator; returns how many requests were answered."""
    cmd = [str(NATIVE_BIN / "loadgen"), "--port", str(port), "--conns", "10", "--size", "1"]
    out = subprocess.run([*cmd, "--duration", str(seconds), "--http"], capture_output=True, text=True, check=True)
    match = re.search(r'"requests": (\d+)', out.stdout)
    if not match:
        raise RuntimeError(f"load generator: {out.stdout or out.stderr}")
    return int(match.group(1))


def instructions(framework: str, loop: str, seconds: float, tmp: Path) -> tuple[int, dict[str, int], int]:
    """Callgrind over ``seconds`` of load: (requests, self instructions by object,
    libc instructions the loop's extension called)."""
    out = tmp / f"{framework}.{loop}.callgrind"
    port = free_port()
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(SERVER)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = start([*cmd, framework, loop, str(port)], env)
    try:
        load(port, 2)  # warm-up: imports, caches, the first connections
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], capture_output=True, check=True)
        requests = load(port, seconds)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True, check=True)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    dumps = sorted(tmp.glob(f"{out.name}.*"), key=lambda p: p.stat().st_size)
    if not dumps:
        raise RuntimeError("callgrind wrote no dump")
    by_object, from_extension = parse_callgrind(dumps[-1], EXTENSIONS[loop][0])
    return requests, by_object, from_extension


def parse_callgrind(path: Path, extension: str) -> tuple[dict[str, int], int]:
    """Self instructions by object, and the inclusive cost of the extension's calls
    into libc and the dynamic loader."""
    names: dict[str, dict[str, str]] = {"ob": {}, "fn": {}}
    by_object: collections.Counter[str] = collections.Counter()
    from_extension = 0
    current = callee = ""
    in_call = False

    def name(kind: str, text: str) -> str:
        match = re.match(r"\((\d+)\)(?:\s+(.*))?", text)
        if not match:
            return text
        if match.group(2) is not None:
            names[kind][match.group(1)] = match.group(2)
        return names[kind].get(match.group(1), "?")

    with path.open() as lines:
        for line in lines:
            key, _, value = line.rstrip("\n").partition("=")
            if key == "ob":
                current, callee = name("ob", value), ""
            elif key == "cob":
                callee = name("ob", value)
            elif key in ("fn", "cfn"):
                name("fn", value)
            elif key == "calls":
                in_call = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                fields = line.split()
                if len(fields) < 2:
                    continue
                cost = int(fields[1])
                if in_call:
                    target = callee or current
                    if extension in current and ("libc." in target or "ld-linux" in target):
                        from_extension += cost
                    in_call, callee = False, ""
                else:
                    by_object[current] += cost
    return dict(by_object), from_extension


def python_frames(framework: str, loop: str, seconds: float, tmp: Path) -> dict[str, float]:
    """The loop package's Python functions called per request, by name."""
    out = tmp / f"{framework}.{loop}.pstats"
    port = free_port()
    proc = start([sys.executable, "-c", PROFILED, str(out), str(SERVER), framework, loop, str(port)])
    try:
        requests = load(port, seconds)
    finally:
        assert proc.stdin is not None
        proc.stdin.write("dump\n")
        proc.stdin.close()
        proc.wait(timeout=60)
    package = os.sep + EXTENSIONS[loop][1] + os.sep
    stats = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    frames = {}
    for (filename, line, function), (_, calls, *_) in stats.items():
        if package in filename and calls / requests >= PER_REQUEST:
            frames[f"{Path(filename).name}:{line} {function}"] = calls / requests
    return frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", nargs="+", default=list(HTTP_PEERS), choices=list(HTTP_PEERS))
    parser.add_argument("--loops", nargs="+", default=["mioloop", "mioloop-asyncio", "uvloop"], choices=EXTENSIONS)
    parser.add_argument("--seconds", type=float, default=10.0, help="load under callgrind (~50x slower)")
    args = parser.parse_args()
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    if missing:
        print(f"needs {' and '.join(missing)}", file=sys.stderr)
        return 2
    problem = build_native()
    if problem:
        print(f"load generator: {problem}", file=sys.stderr)
        return 2
    print(f"Command: `python benches/loop_share.py {' '.join(sys.argv[1:])}`".replace("  ", " "))
    print()
    print(
        "| framework | loop | instructions / request | loop's extension | libc from it | loop's share |"
        " loop's Python frames / request |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for framework in args.frameworks:
            for loop in args.loops:
                if loop not in HTTP_PEERS[framework]:
                    continue
                started = time.monotonic()
                try:
                    requests, by_object, from_ext = instructions(framework, loop, args.seconds, Path(tmp))
                    frames = python_frames(framework, loop, 3.0, Path(tmp))
                except (RuntimeError, subprocess.CalledProcessError) as e:
                    print(f"| {framework} | {loop} | failed: {e} | | | | |")
                    continue
                total = sum(by_object.values())
                own = sum(v for k, v in by_object.items() if EXTENSIONS[loop][0] in k)
                listed = ", ".join(f"{name} ({n:.2f})" for name, n in sorted(frames.items())) or "none"
                print(
                    f"| {framework} | {loop} | {total / requests:,.0f} | {own / requests:,.0f} |"
                    f" {from_ext / requests:,.0f} | {100 * (own + from_ext) / total:.2f}% | {listed} |",
                    flush=True,
                )
                print(f"  ({framework} {loop}: {time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
