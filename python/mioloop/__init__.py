"""mioloop: a Python event loop whose engine is Rust (mio).

Two faces drive one engine:

- :class:`IOLoop`, Tornado's classic IOLoop API (``start``, ``stop``,
  ``add_handler``, ``add_timeout``, ``add_callback`` ...), usable without Tornado;
- :class:`EventLoop`, an :class:`asyncio.AbstractEventLoop`: ``mioloop.run(main())``
  runs a coroutine on it as ``asyncio.run`` does, and ``mioloop.install()`` makes it
  the loop of every ``asyncio.run`` that follows.

With Tornado installed, ``mioloop.install()`` also makes ``mioloop.TornadoIOLoop``
(a ``tornado.ioloop.IOLoop`` on the same engine) Tornado's ``IOLoop``.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import TYPE_CHECKING

from ._mioloop import Handle, TimerHandle
from .eventloop import EventLoop, new_event_loop
from .ioloop import IOLoop, PeriodicCallback
from .policy import EventLoopPolicy, install, run

if TYPE_CHECKING:  # at run time, imported on first use (it imports Tornado)
    from ._tornado import TornadoIOLoop as TornadoIOLoop

try:
    __version__ = _version("mioloop")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "EventLoop",
    "EventLoopPolicy",
    "Handle",
    "IOLoop",
    "PeriodicCallback",
    "TimerHandle",
    "install",
    "new_event_loop",
    "run",
]


def __getattr__(name: str) -> object:
    # TornadoIOLoop imports Tornado: only when asked for.
    if name == "TornadoIOLoop":
        from ._tornado import TornadoIOLoop

        return TornadoIOLoop
    raise AttributeError(f"module 'mioloop' has no attribute {name!r}")
