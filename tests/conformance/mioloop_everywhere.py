"""A pytest plugin that makes every loop asyncio's policy makes a mioloop loop
(``asyncio.new_event_loop()``, ``asyncio.run()`` and ``asyncio.Runner()`` without a
``loop_factory``, so anyio's and uvicorn's asyncio backend and aiohttp's ``loop``
fixture), for running other projects' test suites on mioloop:

    python -m pytest -p tests.conformance.mioloop_everywhere ...

At the end of the session it says how many mioloop loops were made, so a run that
never reached mioloop shows.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import mioloop
from mioloop import policy

made = [0]


def _counting_factory() -> Any:
    made[0] += 1
    return mioloop.new_event_loop()


def pytest_configure(config: Any) -> None:
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
