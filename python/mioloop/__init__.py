"""mioloop: a Python event loop whose engine is Rust (mio).

Two faces drive one engine:

- :class:`IOLoop`, Tornado's classic IOLoop API (``start``, ``stop``,
  ``add_handler``, ``add_timeout``, ``add_callback`` ...), usable without Tornado;
- :class:`EventLoop`, an :class:`asyncio.AbstractEventLoop`, so that asyncio's own
  ``Future`` and ``Task`` (and so ``async def`` code) run on the engine.
"""

from ._mioloop import Handle, TimerHandle
from .eventloop import EventLoop, new_event_loop
from .ioloop import IOLoop, PeriodicCallback

__all__ = [
    "EventLoop",
    "Handle",
    "IOLoop",
    "PeriodicCallback",
    "TimerHandle",
    "new_event_loop",
]
