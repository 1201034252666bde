"""The benchmark tools work: each workload runs on mioloop, and the load generator
drives the echo servers (sizes tiny: this checks behaviour, not speed)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

BENCHES = Path(__file__).resolve().parent.parent / "benches"
NATIVE = BENCHES / "native"
WORKLOADS = [
    "callbacks_chain",
    "callbacks_burst",
    "burst_before_start",
    "timers",
    "timers_cancelled",
    "wakeups",
    "fd_pingpong",
    "protocol_pingpong",
]


def run_json(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_workload_runs_on_mioloop(workload: str) -> None:
    result = run_json([sys.executable, str(BENCHES / "workloads.py"), workload, "mioloop", "--n", "2000"])
    assert result["loop"] == "mioloop"
    assert result["rate"] > 0
    assert result["maxrss_kib"] > 0


@pytest.mark.parametrize("floor", ["floor-call", "floor-link"])
def test_call_floors_run(floor: str) -> None:
    result = run_json([sys.executable, str(BENCHES / "floors.py"), floor, "--n", "1000"])
    assert result["rate"] > 0


@pytest.fixture(scope="module")
def native_bin() -> Path:
    cargo = shutil.which("cargo")
    assert cargo, "cargo is needed to build benches/native"
    subprocess.run(
        [cargo, "build", "--release", "--quiet", "--manifest-path", str(NATIVE / "Cargo.toml")],
        check=True,
        timeout=600,
    )
    return NATIVE / "target" / "release"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: The first test that needs the native tools builds them (a fat-LTO build can take
#: minutes on 2 cores): only the test itself is timed, not that fixture.
needs_native = pytest.mark.timeout(60, func_only=True)


def serve_and_load(server: list[str], native_bin: Path, port: int, extra: list[str]) -> dict:
    proc = subprocess.Popen(server, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        return run_json(
            [
                str(native_bin / "loadgen"),
                "--port",
                str(port),
                "--conns",
                "2",
                "--duration",
                "0.3",
                "--server-pid",
                str(proc.pid),
                *extra,
            ]
        )
    finally:
        proc.kill()
        proc.communicate()


@needs_native
@pytest.mark.parametrize("size", ["100", "102400"])
def test_loadgen_drives_the_mioloop_echo_server(native_bin: Path, size: str) -> None:
    port = free_port()
    server = [sys.executable, str(BENCHES / "servers" / "echo_server.py"), "mioloop", str(port)]
    result = serve_and_load(server, native_bin, port, ["--size", size])
    assert result["requests"] > 0
    assert result["p50_us"] <= result["p99_us"]
    assert result["server_cpu_s"] is not None


@needs_native
def test_native_echo_and_micro_run(native_bin: Path) -> None:
    port = free_port()
    result = serve_and_load([str(native_bin / "native-echo"), str(port)], native_bin, port, ["--size", "1024"])
    assert result["requests"] > 0
    micro = run_json([str(native_bin / "native-micro"), "timers_cancelled", "--n", "1000"])
    assert micro["loop"] == "rust-native" and micro["rate"] > 0


@needs_native
def test_loadgen_refuses_bad_arguments(native_bin: Path) -> None:
    proc = subprocess.run([str(native_bin / "loadgen"), "--size", "0"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "must be positive" in proc.stderr
