"""The Python call floors of the callback workloads.

    python benches/floors.py floor-call --n 1000000
    python benches/floors.py floor-link --n 1000000

``floor-call``: native code calling a no-op Python function, the least that running a
callback costs. ``floor-link``: native code calling a Python function that makes one
call back into native code, the least a link of a callback chain costs. Prints the same
JSON as ``workloads.py``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys

import mioloop
from mioloop import _mioloop


def noop() -> None:
    pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("floor", choices=["floor-call", "floor-link"])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--workload", default="callbacks_chain")
    args = parser.parse_args()
    if args.floor == "floor-call":
        func = noop
    else:
        loop = mioloop.new_event_loop()
        native = loop.is_closed  # a native method that does nearly nothing

        def func() -> None:
            native()

    seconds = _mioloop._bench_calls(func, args.n)
    if args.floor == "floor-link":
        loop.close()
    print(
        json.dumps(
            {
                "workload": args.workload,
                "loop": args.floor,
                "n": args.n,
                "rate": args.n / seconds,
                "unit": "calls/s",
                "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
