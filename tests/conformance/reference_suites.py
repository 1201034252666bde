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
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import project_suites
from project_suites import PROJECTS

#: Modules of test.test_asyncio whose loop classes are swapped for mioloop's: the
#: classes' ``create_event_loop``/``new_loop`` make mioloop loops.
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

#: Modules whose tests take their loop from asyncio's policy
#: (``asyncio.new_event_loop()``, ``asyncio.run()``, ``asyncio.Runner()``,
#: ``IsolatedAsyncioTestCase``): run whole, with mioloop's policy. Those a Python
#: lacks are left out. (test_base_events, test_selector_events, test_unix_events,
#: test_proactor_events test asyncio's own loop classes: no loop to swap.)
CPYTHON_MODULES = [
    "test_context",
    "test_eager_task_factory",
    "test_futures",
    "test_futures2",
    "test_graph",
    "test_locks",
    "test_pep492",
    "test_protocols",
    "test_queues",
    "test_runners",
    "test_staggered",
    "test_taskgroups",
    "test_tasks",
    "test_threads",
    "test_timeouts",
    "test_tools",
    "test_transports",
    "test_waitfor",
]

#: How Tornado's suite runs: with ``mioloop.install()`` (TornadoIOLoop), with
#: Tornado's asyncio glue over mioloop's loop, on asyncio, on uvloop.
TORNADO_KINDS = ["mioloop", "mioloop-asyncio", "asyncio", "uvloop"]

#: Seconds a single test may take before it counts as hung.
PER_TEST_TIMEOUT = 30

#: Tests that reach into a selector transport's or loop's own attributes and then hang
#: (a server thread of the test waits forever): not run on mioloop from the version
#: given, counted as skipped, each with why.
INTERNALS = {
    "test_events": {
        test: (
            (3, 10),
            "asserts the handle is asyncio's private events._ThreadSafeHandle; the failed"
            " assertion ends the other thread, and the loop waits for it forever",
        )
        for test in (
            "test_call_soon_threadsafe_handle_block_cancellation",
            "test_call_soon_threadsafe_handle_block_check_cancelled",
            "test_call_soon_threadsafe_handle_cancel_other_thread",
        )
    },
    "test_ssl": {
        "test_remote_shutdown_receives_trailing_data_on_slow_socket": (
            (3, 14),
            "patches the transport's _read_ready_cb and _sock; its server thread then never ends",
        ),
    },
}

CHILD = r"""
import asyncio, faulthandler, importlib, json, signal, sys, unittest, traceback
kind, module_name, class_names = sys.argv[1], sys.argv[2], sys.argv[3].split(",") if sys.argv[3] else []
internals = json.loads(sys.argv[4])
import mioloop
from mioloop import policy
if kind == "mioloop":
    # mioloop's policy, without the warnings asyncio 3.14+ gives for setting one
    # (the tests check warnings of their own).
    set_policy = getattr(asyncio.events, "_set_event_loop_policy", asyncio.set_event_loop_policy)
    set_policy(policy._build()())
module = importlib.import_module("test.test_asyncio." + module_name)

class Hung(Exception):
    pass

def alarm(signum, frame):
    raise Hung(f"no result within {PER_TEST_TIMEOUT} s")

signal.signal(signal.SIGALRM, alarm)

class Timed(unittest.TextTestResult):
    def startTest(self, test):
        signal.alarm(PER_TEST_TIMEOUT)
        # A test stuck where the alarm cannot reach it ends the run, saying where.
        faulthandler.dump_traceback_later(3 * PER_TEST_TIMEOUT, exit=True)
        super().startTest(test)
    def stopTest(self, test):
        signal.alarm(0)
        faulthandler.cancel_dump_traceback_later()
        super().stopTest(test)

suite = unittest.TestSuite()
loader = unittest.TestLoader()
if not class_names:
    suite.addTests(loader.loadTestsFromModule(module))
for name in class_names:
    cls = getattr(module, name)
    if kind == "mioloop":
        skipped = {
            test: unittest.skip(why)(getattr(cls, test))
            for test, (since, why) in internals.items()
            if sys.version_info >= tuple(since) and hasattr(cls, test)
        }
        cls = type(name + "OnMioloop", (cls,), {
            "create_event_loop": lambda self: mioloop.new_event_loop(),
            "new_loop": lambda self: mioloop.new_event_loop(),
            **skipped,
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
if kind.startswith("mioloop"):
    import mioloop
    from mioloop import _tornado_attach, policy
    set_policy = getattr(asyncio.events, "_set_event_loop_policy", asyncio.set_event_loop_policy)
    # mioloop loops wherever asyncio's policy makes one, without 3.14's warnings.
    set_policy(policy._build()())
    if kind == "mioloop":
        # What mioloop.install() does: IOLoop() makes a TornadoIOLoop too.
        from mioloop import _tornado
        _tornado.install()
    else:
        # Tornado's own asyncio glue (AsyncIOMainLoop) over mioloop's loop: mioloop
        # does not hand Tornado its TornadoIOLoop.
        _tornado_attach.attach = lambda: None
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
        [sys.executable, "-c", code, kind, module, ",".join(classes), json.dumps(INTERNALS.get(module, {}))],
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


def cell(counts: dict) -> str:
    """``passed (fail F, skip S)`` of one run; a test that fails and then errors in
    its tear-down counts once."""
    if "crashed" in counts:
        return f"crashed ({counts['crashed']})"
    bad = len({test for test, _ in counts["failures"] + counts["errors"]})
    return f"{counts['run'] - bad - counts['skipped']} (fail {bad}, skip {counts['skipped']})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--suite", nargs="+", choices=["cpython", "tornado", *PROJECTS, "all"], default=["cpython", "tornado"]
    )
    parser.add_argument("--modules", nargs="+", default=list(CPYTHON_CLASSES), choices=list(CPYTHON_CLASSES))
    parser.add_argument(
        "--all-modules", action="store_true", help="also every module whose tests take their loop from the policy"
    )
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    report: dict = {"python": sys.version.split()[0]}
    suites = set(args.suite) | ({"cpython", "tornado", *PROJECTS} if "all" in args.suite else set())
    if "cpython" in suites:
        print(f"CPython {report['python']} test.test_asyncio | tests | mioloop pass | asyncio pass")
        package = Path(importlib.util.find_spec("test.test_asyncio").origin).parent  # type: ignore[arg-type,union-attr]
        plan = [(m, CPYTHON_CLASSES[m]) for m in args.modules]
        plan += [(m, []) for m in CPYTHON_MODULES if args.all_modules and (package / f"{m}.py").exists()]
        for module, classes in plan:
            counts = {kind: run_cpython(kind, module, classes, args.verbose) for kind in ("mioloop", "asyncio")}
            report[module] = counts
            run = counts["asyncio"].get("run", "?")
            print(f"{module} | {run} | {cell(counts['mioloop'])} | {cell(counts['asyncio'])}")
            theirs = {test for test, _ in counts["asyncio"].get("failures", []) + counts["asyncio"].get("errors", [])}
            mine = counts["mioloop"]
            for test, last in mine.get("failures", []) + mine.get("errors", []):
                also = " (asyncio too)" if test.replace("OnMioloop", "") in theirs else ""
                print(f"    mioloop: {test}: {last}{also}")
    for name in PROJECTS:
        if name in suites:
            result = project_suites.run(PROJECTS[name])
            report[name] = result
            print(f"{name} suite: asyncio {result['asyncio']}, mioloop {result['mioloop']}")
            for test in result["fail_on_mioloop_only"]:
                print(f"    fails on mioloop only: {test}")
            for test in result["fail_on_asyncio_only"]:
                print(f"    fails on asyncio only: {test}")
    if "tornado" in suites:
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
