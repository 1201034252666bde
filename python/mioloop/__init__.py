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

from typing import TYPE_CHECKING

from ._mioloop import Handle, TimerHandle
from .eventloop import EventLoop, new_event_loop
from .ioloop import IOLoop, PeriodicCallback
from .policy import EventLoopPolicy, install, run

if TYPE_CHECKING:  # at run time, imported on first use (it imports Tornado)
    from ._tornado import TornadoIOLoop as TornadoIOLoop

    __version__: str

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
    # Both on first use: TornadoIOLoop imports Tornado, and the version comes from
    # importlib.metadata, whose imports (email, zipfile, pathlib...) cost a plain
    # `import mioloop` 12 ms and a few MB.
    if name == "TornadoIOLoop":
        from ._tornado import TornadoIOLoop

        return TornadoIOLoop
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("mioloop")
        except PackageNotFoundError:  # imported from a source tree never installed
            found = "0+unknown"
        globals()["__version__"] = found
        return found
    raise AttributeError(f"module 'mioloop' has no attribute {name!r}")
