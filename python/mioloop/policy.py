"""The legacy route: :func:`install` and ``EventLoopPolicy``, through asyncio's
event-loop policies.

asyncio deprecates its policies in Python 3.14 and removes them in 3.16; the way in
that needs none is :func:`mioloop.run`, or ``loop_factory=mioloop.new_event_loop``
(``asyncio.run`` on 3.12+, ``asyncio.Runner`` on 3.11+). Nothing here touches a
policy until it is used, so ``import mioloop`` stays silent under ``-W error``.
Where asyncio warns about policies (3.14, 3.15), mioloop warns instead, naming the
replacement; where asyncio has none (3.16+), both raise.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import sys
import warnings
from typing import Any

from .eventloop import EventLoop, new_event_loop

__all__ = ["install", "policy_class"]

#: asyncio has event-loop policies (removed in Python 3.16).
POLICIES = sys.version_info < (3, 16)
#: asyncio warns when they are used (Python 3.14 and 3.15).
POLICIES_DEPRECATED = sys.version_info >= (3, 14)

REPLACEMENT = (
    "use mioloop.run(main()), or asyncio.run(main(), loop_factory=mioloop.new_event_loop) "
    "(asyncio.Runner(loop_factory=mioloop.new_event_loop) on 3.11): "
    "Tornado code finds mioloop.TornadoIOLoop either way"
)


def policy_class() -> type[Any]:
    """``mioloop.EventLoopPolicy``, built on first use: asyncio's default policy,
    making mioloop loops::

        asyncio.set_event_loop_policy(mioloop.EventLoopPolicy())
        asyncio.run(main())   # runs on mioloop
    """
    if not POLICIES:
        raise AttributeError(
            f"mioloop.EventLoopPolicy does not exist on Python 3.16+, as asyncio's policies: {REPLACEMENT}"
        )
    if POLICIES_DEPRECATED:
        _warn("mioloop.EventLoopPolicy")
    return _build()


@functools.cache
def _build() -> type[Any]:
    if sys.version_info >= (3, 14):
        # The class asyncio.DefaultEventLoopPolicy names, without asyncio's warning on
        # top of mioloop's own.
        from asyncio.unix_events import _DefaultEventLoopPolicy as default_policy
    else:
        default_policy = asyncio.DefaultEventLoopPolicy

    class EventLoopPolicy(default_policy):  # type: ignore[misc,valid-type]
        """asyncio's default policy, making mioloop loops (the legacy route: see
        :func:`mioloop.run`)."""

        def new_event_loop(self) -> EventLoop:
            """Creates a new :class:`~mioloop.EventLoop`."""
            return new_event_loop()

    EventLoopPolicy.__module__ = "mioloop"
    EventLoopPolicy.__qualname__ = "EventLoopPolicy"
    return EventLoopPolicy


def install() -> None:
    """Makes mioloop the event loop of every ``asyncio.run``, ``asyncio.Runner`` and
    ``asyncio.new_event_loop()`` that follows, by installing ``EventLoopPolicy``;
    with Tornado installed, also makes ``IOLoop()`` create a
    :class:`mioloop.TornadoIOLoop`.

    The legacy route: asyncio deprecates policies in Python 3.14 (this then warns)
    and removes them in 3.16 (this then raises ``RuntimeError``). Prefer
    :func:`mioloop.run` or ``loop_factory=mioloop.new_event_loop``, which need no
    policy and give Tornado code a ``TornadoIOLoop`` too.
    """
    if not POLICIES:
        raise RuntimeError(f"mioloop.install() needs asyncio's event-loop policies, gone in Python 3.16: {REPLACEMENT}")
    if POLICIES_DEPRECATED:
        _warn("mioloop.install()", stacklevel=3)
        # asyncio's own setter would warn a second time.
        set_policy = asyncio.events._set_event_loop_policy  # type: ignore[attr-defined]
    else:
        set_policy = asyncio.set_event_loop_policy
    set_policy(_build()())
    if importlib.util.find_spec("tornado") is not None:
        from . import _tornado

        _tornado.install()


def _warn(what: str, stacklevel: int = 4) -> None:
    warnings.warn(
        f"{what} is deprecated, as asyncio's event-loop policies are (removed in Python 3.16): {REPLACEMENT}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
