"""How asyncio describes a handle: its ``repr`` (``<Handle func(1) at file.py:3>``)
and what debug messages name ("Executing <Task ...> took 0.2 seconds"). The
engine's ``Handle`` and ``TimerHandle`` call these with what they hold.
"""

from __future__ import annotations

import asyncio
import inspect
from asyncio import format_helpers
from typing import Any

__all__ = ["callback_source", "culprit", "handle_repr"]

# asyncio's formatter takes debug= (full argument reprs) from Python 3.13.
_TAKES_DEBUG = "debug" in inspect.signature(format_helpers._format_callback_source).parameters


def callback_source(func: Any, args: tuple[Any, ...] | None, debug: bool = False) -> str:
    """``func(args) at file.py:line``, as asyncio's messages name a callback."""
    if _TAKES_DEBUG:
        return format_helpers._format_callback_source(func, args or (), debug=debug)  # type: ignore[call-arg]
    return format_helpers._format_callback_source(func, args or ())


def handle_repr(
    name: str,
    cancelled: bool,
    when: float | None,
    func: Any,
    args: tuple[Any, ...] | None,
    source_traceback: Any,
) -> str:
    """The repr of a handle: its class, whether cancelled, when it is due (a
    timer), its callback while it has one (a cancelled handle outside debug mode
    has let go of it), and where it was made (debug mode)."""
    debug = source_traceback is not None
    info = [name]
    if cancelled:
        info.append("cancelled")
    if when is not None:
        info.append(f"when={when}")
    if func is not None and (debug or not cancelled):
        info.append(callback_source(func, args, debug))
    if source_traceback:
        frame = source_traceback[-1]
        info.append(f"created at {frame[0]}:{frame[1]}")
    return "<{}>".format(" ".join(info))


def culprit(func: Any, args: tuple[Any, ...] | None, handle: Any, debug: bool) -> str:
    """What a slow callback is called in "Executing ... took ... seconds": the Task
    whose step it is, else its handle (which has let go of the callback by then:
    it is named from ``func`` and ``args``)."""
    owner = getattr(func, "__self__", None)
    if isinstance(owner, asyncio.Task):
        return repr(owner)
    source_traceback = getattr(handle, "_source_traceback", None) if debug else None
    return handle_repr("Handle", False, None, func, args, source_traceback)
