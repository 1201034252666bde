"""pytest-benchmark view of the micro workloads (not collected by the test suite)::

    pytest benches/test_micro.py --benchmark-only

Each benchmark runs one workload on one loop in this process; ``benches/run.py`` is
the side-by-side runner with fresh processes and ratios.
"""

from __future__ import annotations

import pytest

from workloads import LOOPS, WORKLOADS, Face, Unavailable

SIZES = {name: n // 10 for name, (_, n, _) in WORKLOADS.items()}


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_workload(benchmark, workload: str, loop: str) -> None:
    func = WORKLOADS[workload][0]

    def once() -> float:
        try:
            face = Face(loop)
        except Unavailable as e:
            pytest.skip(str(e))
        try:
            return func(face, SIZES[workload])
        except NotImplementedError:
            pytest.skip(f"{loop} has no {workload} API yet")
        finally:
            face.close()

    rate = benchmark.pedantic(once, rounds=3, iterations=1)
    assert rate > 0
