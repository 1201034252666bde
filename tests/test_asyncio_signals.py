"""``add_signal_handler`` / ``remove_signal_handler`` of the asyncio face, each
scenario on mioloop and on asyncio's own loop with the same expectations
(RELIABILITY.md 40)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from typing import Any

import pytest

import mioloop


def run_until(loop: asyncio.AbstractEventLoop, done: Any, timeout: float = 5.0) -> None:
    async def wait() -> None:
        while not done():
            await asyncio.sleep(0.001)

    loop.run_until_complete(asyncio.wait_for(wait(), timeout))


def test_a_handler_runs_on_the_loop_with_its_args(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[tuple[str, bool]] = []
    loop.add_signal_handler(signal.SIGUSR1, lambda tag: calls.append((tag, loop.is_running())), "usr1")
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        run_until(loop, lambda: calls)
        os.kill(os.getpid(), signal.SIGUSR1)
        run_until(loop, lambda: len(calls) == 2)
    finally:
        assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert calls == [("usr1", True), ("usr1", True)]
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_a_signal_wakes_an_idle_loop(loop: asyncio.AbstractEventLoop) -> None:
    got: list[int] = []
    loop.add_signal_handler(signal.SIGUSR2, got.append, 1)
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR2))
    try:
        timer.start()
        start = loop.time()
        run_until(loop, lambda: got)
        assert loop.time() - start < 1.0
    finally:
        timer.join()
        loop.remove_signal_handler(signal.SIGUSR2)


def test_bad_signals_and_callbacks_are_refused(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(RuntimeError):
        loop.add_signal_handler(signal.SIGKILL, print)
    with pytest.raises(ValueError):
        loop.add_signal_handler(100000, print)
    with pytest.raises(TypeError):
        loop.add_signal_handler("SIGUSR1", print)  # type: ignore[arg-type]

    async def coroutine_function() -> None:
        pass

    with pytest.raises(TypeError):
        loop.add_signal_handler(signal.SIGUSR1, coroutine_function)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_only_the_main_thread_may_add_handlers(loop: asyncio.AbstractEventLoop) -> None:
    errors: list[BaseException] = []

    def add() -> None:
        try:
            loop.add_signal_handler(signal.SIGUSR1, print)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=add)
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_a_raising_handler_is_reported_and_the_loop_goes_on(loop: asyncio.AbstractEventLoop) -> None:
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))

    def bad() -> None:
        raise ValueError("handler failed")

    loop.add_signal_handler(signal.SIGUSR1, bad)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        run_until(loop, lambda: reported)
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
    assert isinstance(reported[0]["exception"], ValueError)
    assert loop.run_until_complete(asyncio.sleep(0, "alive")) == "alive"


def test_close_restores_the_signals_and_the_wakeup_fd(loop: asyncio.AbstractEventLoop) -> None:
    a, b = os.pipe()
    os.set_blocking(a, False)
    os.set_blocking(b, False)
    previous = signal.set_wakeup_fd(b)
    try:
        loop.add_signal_handler(signal.SIGUSR1, print)
        loop.add_signal_handler(signal.SIGUSR2, print)
        assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, None)
        loop.close()
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
        restored = signal.set_wakeup_fd(previous)
        if isinstance(loop, mioloop.EventLoop):
            # asyncio sets -1 here, forgetting the fd that was there before.
            assert restored == b
    finally:
        os.close(a)
        os.close(b)
