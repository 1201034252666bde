"""The type stub of the native module matches what it exports."""

from __future__ import annotations

import subprocess
import sys


def test_native_module_stub_matches_the_runtime() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "mioloop._mioloop"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
