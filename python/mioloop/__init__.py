"""mioloop: a Python event loop whose engine is Rust (mio).

Two faces drive one engine:

- :class:`IOLoop`, Tornado's classic IOLoop API (``start``, ``stop``,
  ``add_handler``, ``add_timeout``, ``add_callback`` ...), usable without Tornado;
- :class:`EventLoop`, an :class:`asyncio.AbstractEventLoop`: ``mioloop.run(main())``
  runs a coroutine on it as ``asyncio.run`` does, and ``mioloop.new_event_loop`` is
  the ``loop_factory`` of ``asyncio.run``, ``asyncio.Runner`` and uvicorn's
  ``--loop``. No asyncio policy is involved.

Tornado code on a mioloop loop finds :class:`TornadoIOLoop` (Tornado's ``IOLoop`` on
the same engine) as its ``IOLoop``. ``install()`` and ``EventLoopPolicy``, the legacy
route through asyncio's policies, are built on first use: they warn on Python 3.14
and 3.15 and raise on 3.16, where asyncio has no policies.
"""

import sys
from typing import TYPE_CHECKING, Any

from ._mioloop import Handle, TimerHandle
from .eventloop import EventLoop, new_event_loop
from .ioloop import IOLoop, PeriodicCallback
from .policy import install
from .runner import run

if TYPE_CHECKING:  # at run time, each on first use
    from ._tornado import TornadoIOLoop as TornadoIOLoop  # it imports Tornado

    EventLoopPolicy: type[Any]  # it subclasses asyncio's policy
    __version__: str

__all__ = [
    "EventLoop",
    "Handle",
    "IOLoop",
    "PeriodicCallback",
    "TimerHandle",
    "install",
    "new_event_loop",
    "run",
]
if sys.version_info < (3, 14):  # beyond, star-imports would warn
    __all__ += ["EventLoopPolicy"]


def __getattr__(name: str) -> object:
    # All on first use: TornadoIOLoop imports Tornado; EventLoopPolicy subclasses
    # asyncio's deprecated policy; the version comes from importlib.metadata, whose
    # imports (email, zipfile, pathlib...) cost a plain `import mioloop` 12 ms and a
    # few MB.
    if name == "EventLoopPolicy":
        from .policy import policy_class

        return policy_class()
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
