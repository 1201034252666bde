"""A pytest plugin that makes every loop asyncio's policy makes a mioloop loop
(``asyncio.new_event_loop()``, ``asyncio.run()`` and ``asyncio.Runner()`` without a
``loop_factory``, so anyio's and uvicorn's asyncio backend and aiohttp's ``loop``
fixture), for running other projects' test suites on mioloop:

    python -m pytest -p tests.conformance.mioloop_everywhere ...

At the end of the session it says how many mioloop loops were made, so a run that
never reached mioloop shows.

Suites that run blockbuster (anyio's, aiohttp's) flag blocking calls made on a running
loop, except in functions of asyncio's own files it lists (``Popen``'s exec-status read
in ``subprocess_exec``, ``os.sendfile`` in ``sendfile``...). mioloop's methods of the
same names make the same calls from its own files: the plugin lists them beside
asyncio's.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import mioloop
from mioloop import policy

made = [0]


def _counting_factory() -> Any:
    made[0] += 1
    return mioloop.new_event_loop()


#: Where mioloop does what asyncio does in a function of another name.
_SAME_AS = {"_stop_serving": ["close", "_remove_socket_files"]}


def _allow_what_asyncio_is_allowed() -> None:
    try:
        from blockbuster import blockbuster as bb  # type: ignore[import-not-found]
    except ImportError:
        return
    ours = [f"mioloop/{path.name}" for path in Path(mioloop.__file__).parent.glob("*.py")]
    original = bb.BlockBuster.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        for function in self.functions.values():
            for filename, names in list(function.can_block_functions):
                if filename.startswith("asyncio/"):
                    same = {*names, *(alias for name in names for alias in _SAME_AS.get(name, ()))}
                    for mine in ours:
                        function.can_block_in(mine, same)

    bb.BlockBuster.__init__ = init


def pytest_configure(config: Any) -> None:
    _allow_what_asyncio_is_allowed()
    base = policy._build()

    class Everywhere(base):  # type: ignore[misc,valid-type]
        def new_event_loop(self) -> Any:
            return _counting_factory()

    if sys.version_info >= (3, 14):
        asyncio.events._set_event_loop_policy(Everywhere())  # type: ignore[attr-defined]
    else:
        asyncio.set_event_loop_policy(Everywhere())


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(f"mioloop loops made: {made[0]}")
