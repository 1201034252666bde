"""Runs the reference test suites of asyncio's behaviour against mioloop, and the
same tests against asyncio's own loop, and prints the counts side by side.

    python tests/conformance/reference_suites.py              # CPython's and Tornado's
    python tests/conformance/reference_suites.py --suite cpython --verbose

- CPython's ``test.test_asyncio``: the epoll/selector classes of ``test_events``,
  ``test_sock_lowlevel``, ``test_server``, ``test_buffered_proto``, ``test_sendfile``,
  ``test_sslproto`` (start_tls), and ``test_streams``, ``test_subprocess`` (with
  asyncio's threaded child watcher installed, which mioloop does not need) and
  ``test_ssl`` (which take their loop from the policy), each once with the loop
  factory swapped for ``mioloop.new_event_loop`` and once as it is.
- Tornado's own suite (``tornado.test.runtests``) with ``mioloop.install()`` (its
  ``TornadoIOLoop``), with Tornado's asyncio glue over mioloop's loop, on asyncio and
  on uvloop.

Each suite runs in a child process of its own, with a time limit per test, so one
that hangs is reported instead of stopping the run. Not part of the pytest run: it
takes minutes, and its figures go in the closing notes and the README.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CPYTHON_CLASSES = {
    "test_events": ["EPollEventLoopTests"],
    "test_sock_lowlevel": ["EPollEventLoopTests"],
    "test_server": ["SelectorStartServerTests"],
    "test_buffered_proto": ["BufferedProtocolSelectorTests"],
    "test_sendfile": ["EPollEventLoopTests"],
    "test_streams": ["StreamTests"],
    "test_subprocess": ["SubprocessThreadedWatcherTests"],
    "test_ssl": ["TestSSL"],
    "test_sslproto": ["SelectorStartTLSTests"],
}

#: How Tornado's suite runs: with ``mioloop.install()`` (TornadoIOLoop), with
#: Tornado's asyncio glue over mioloop's loop, on asyncio, on uvloop.
TORNADO_KINDS = ["mioloop", "mioloop-asyncio", "asyncio", "uvloop"]

#: Seconds a single test may take before it counts as hung.
PER_TEST_TIMEOUT = 30

CHILD = r"""
import asyncio, importlib, json, signal, sys, unittest, traceback
kind, module_name, class_names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
import mioloop
if kind == "mioloop":
    asyncio.set_event_loop_policy(mioloop.EventLoopPolicy())
module = importlib.import_module("test.test_asyncio." + module_name)

class Hung(Exception):
    pass

def alarm(signum, frame):
    raise Hung(f"no result within {PER_TEST_TIMEOUT} s")

signal.signal(signal.SIGALRM, alarm)

class Timed(unittest.TextTestResult):
    def startTest(self, test):
        signal.alarm(PER_TEST_TIMEOUT)
        super().startTest(test)
    def stopTest(self, test):
        signal.alarm(0)
        super().stopTest(test)

suite = unittest.TestSuite()
loader = unittest.TestLoader()
for name in class_names:
    cls = getattr(module, name)
    if kind == "mioloop":
        cls = type(name + "OnMioloop", (cls,), {
            "create_event_loop": lambda self: mioloop.new_event_loop(),
            "new_loop": lambda self: mioloop.new_event_loop(),
        })
    suite.addTests(loader.loadTestsFromTestCase(cls))
runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=VERBOSITY, resultclass=Timed)
result = runner.run(suite)
def names(pairs):
    return [[str(t), tb.strip().splitlines()[-1] if tb.strip() else ""] for t, tb in pairs]
print(json.dumps({
    "run": result.testsRun, "failures": names(result.failures), "errors": names(result.errors),
    "skipped": len(result.skipped),
}))
"""

TORNADO_CHILD = r"""
import asyncio, sys
kind = sys.argv[1]
if kind == "mioloop":
    # The one-line switch: mioloop's asyncio loop and Tornado's IOLoop on the engine.
    import mioloop
    mioloop.install()
elif kind == "mioloop-asyncio":
    # Tornado's own asyncio glue (AsyncIOLoop) over mioloop's asyncio loop.
    import mioloop
    asyncio.set_event_loop_policy(mioloop.EventLoopPolicy())
elif kind == "uvloop":
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
import runpy
sys.argv = ["runtests"]
runpy.run_module("tornado.test.runtests", run_name="__main__", alter_sys=True)
"""


def run_cpython(kind: str, module: str, classes: list[str], verbose: bool) -> dict:
    code = CHILD.replace("PER_TEST_TIMEOUT", str(PER_TEST_TIMEOUT)).replace("VERBOSITY", "2" if verbose else "0")
    proc = subprocess.run(
        [sys.executable, "-c", code, kind, module, ",".join(classes)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if verbose:
        sys.stderr.write(proc.stderr)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"crashed": proc.returncode, "stderr": proc.stderr[-2000:]}


def run_tornado(kind: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", TORNADO_CHILD, kind], capture_output=True, text=True, timeout=1800)
    # unittest's summary: "Ran N tests in Xs" then "OK (skipped=K)" or "FAILED (failures=F, errors=E, skipped=K)".
    tail = proc.stderr.strip().splitlines()
    ran = next((line for line in reversed(tail) if line.startswith("Ran ")), "Ran ? tests")
    verdict = next((line for line in reversed(tail) if line.startswith(("OK", "FAILED"))), "no verdict")
    failed = [line for line in tail if line.startswith(("FAIL:", "ERROR:"))]
    return {"summary": f"{ran.split(' in ')[0]}; {verdict}", "failed": failed, "returncode": proc.returncode}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=["cpython", "tornado", "all"], default="all")
    parser.add_argument("--modules", nargs="+", default=list(CPYTHON_CLASSES), choices=list(CPYTHON_CLASSES))
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    report: dict = {"python": sys.version.split()[0]}
    if args.suite in ("cpython", "all"):
        print(f"CPython {report['python']} test.test_asyncio | tests | mioloop pass | asyncio pass")
        for module in args.modules:
            classes = CPYTHON_CLASSES[module]
            counts = {kind: run_cpython(kind, module, classes, args.verbose) for kind in ("mioloop", "asyncio")}
            report[module] = counts
            cells = []
            for kind in ("mioloop", "asyncio"):
                c = counts[kind]
                if "crashed" in c:
                    cells.append(f"crashed ({c['crashed']})")
                    continue
                # A test can fail and then error in its tear-down: count it once.
                bad = len({test for test, _ in c["failures"] + c["errors"]})
                cells.append(f"{c['run'] - bad - c['skipped']} (fail {bad}, skip {c['skipped']})")
            run = counts["asyncio"].get("run", "?")
            print(f"{module} | {run} | {cells[0]} | {cells[1]}")
            mine = counts["mioloop"]
            for test, last in mine.get("failures", []) + mine.get("errors", []):
                print(f"    mioloop: {test}: {last}")
    if args.suite in ("tornado", "all"):
        for kind in TORNADO_KINDS:
            result = run_tornado(kind)
            report[f"tornado-{kind}"] = result
            print(f"Tornado suite on {kind}: {result['summary']}")
            for line in result["failed"]:
                print(f"    {line}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
