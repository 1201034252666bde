"""Running a coroutine on mioloop, with no asyncio policy: :func:`run`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from .eventloop import EventLoop, new_event_loop

_T = TypeVar("_T")

__all__ = ["run"]


def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None) -> _T:
    """Runs the coroutine ``main`` on a new mioloop loop and returns its result, as
    ``asyncio.run`` does: the loop is closed afterwards, after the tasks left over are
    cancelled, the asynchronous generators finalized and the default executor shut
    down.

    ::

        async def main():
            await asyncio.sleep(0.1)
            return 42

        assert mioloop.run(main()) == 42

    The same on every Python, with no asyncio policy: it is
    ``asyncio.Runner(loop_factory=mioloop.new_event_loop)`` on 3.11 and later, and
    ``asyncio.run(main(), loop_factory=mioloop.new_event_loop)`` on 3.12 and later
    does the same. Tornado code in ``main`` finds :class:`mioloop.TornadoIOLoop` as
    its ``IOLoop``.
    """
    if asyncio.events._get_running_loop() is not None:
        raise RuntimeError("mioloop.run() cannot be called from a running event loop")
    if sys.version_info >= (3, 11):
        with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
            return runner.run(main)
    return _run_310(main, debug)


def _run_310(main: Coroutine[Any, Any, _T], debug: bool | None) -> _T:
    """``asyncio.run`` for Python 3.10, which has no ``loop_factory``."""
    if not asyncio.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    loop = new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all_tasks(loop: EventLoop) -> None:
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not pending:
        return
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    for task in pending:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during mioloop.run() shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
