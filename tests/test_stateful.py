"""Hypothesis state machine: handlers and timeouts against a plain-Python model, plus
arbitrary arguments that must never crash the process or raise PanicException."""

from __future__ import annotations

import math
import socket

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mioloop import IOLoop

SETTINGS = settings(
    max_examples=40, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


class LoopModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = IOLoop(make_current=False)
        self.socks = [socket.socketpair() for _ in range(3)]
        for a, b in self.socks:
            a.setblocking(False)
            b.setblocking(False)
        self.by_fd = {a.fileno(): a for a, _ in self.socks}
        self.handlers: dict[int, int] = {}  # fd -> events
        self.fired: list[int] = []
        self.pending: dict[int, object] = {}  # timer id -> handle
        self.removed: set[int] = set()
        self.next_id = 0
        self.events_seen: list[tuple[int, int]] = []

    def teardown(self) -> None:
        self.loop.close()
        for a, b in self.socks:
            a.close()
            b.close()

    def _on_event(self, fd: int, events: int) -> None:
        self.events_seen.append((fd, events))
        if events & IOLoop.READ:
            self.by_fd[fd].recv(100)

    @rule(i=st.integers(0, 2), events=st.sampled_from([1, 4, 5, 8, 0]))
    def add_handler(self, i: int, events: int) -> None:
        fd = self.socks[i][0].fileno()
        try:
            self.loop.add_handler(fd, self._on_event, events)
        except ValueError:
            assert fd in self.handlers
        else:
            assert fd not in self.handlers
            self.handlers[fd] = events

    @rule(i=st.integers(0, 2), events=st.sampled_from([1, 4, 5, 0]))
    def update_handler(self, i: int, events: int) -> None:
        fd = self.socks[i][0].fileno()
        try:
            self.loop.update_handler(fd, events)
        except ValueError:
            assert fd not in self.handlers
        else:
            self.handlers[fd] = events

    @rule(i=st.integers(0, 2))
    def remove_handler(self, i: int) -> None:
        fd = self.socks[i][0].fileno()
        self.loop.remove_handler(fd)
        self.handlers.pop(fd, None)

    @rule(i=st.integers(0, 2))
    def peer_writes(self, i: int) -> None:
        self.socks[i][1].send(b"x")

    @rule(delay=st.floats(-1, 0.002) | st.sampled_from([math.inf, 2.0**55]))
    def add_timeout(self, delay: float) -> None:
        tid = self.next_id
        self.next_id += 1
        self.pending[tid] = self.loop.add_timeout(self.loop.time() + delay, self.fired.append, tid)

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def remove_timeout(self, data: st.DataObject) -> None:
        tid = data.draw(st.sampled_from(sorted(self.pending)))
        self.loop.remove_timeout(self.pending.pop(tid))
        self.removed.add(tid)

    @rule()
    def run_briefly(self) -> None:
        self.events_seen.clear()
        self.loop.add_timeout(self.loop.time() + 0.005, self.loop.stop)
        self.loop.start()
        for fd, events in self.events_seen:
            assert fd in self.handlers
            registered = self.handlers[fd]
            assert events & ~(registered | IOLoop.ERROR) == 0
        for tid in self.fired:
            self.pending.pop(tid, None)

    @invariant()
    def removed_timers_never_fire(self) -> None:
        assert not self.removed & set(self.fired)

    @invariant()
    def engine_counts_match_the_model(self) -> None:
        stats = self.loop._stats()
        assert stats["handlers"] == len(self.handlers)
        # Exactly the timers the model still expects: a leaked (or lost) one shows.
        assert stats["timers"] == len([t for t in self.pending if t not in self.fired])


LoopModel.TestCase.settings = SETTINGS
TestLoopModel = LoopModel.TestCase


arbitrary = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.just(object()),
)


@settings(max_examples=300, deadline=None)
@given(
    args=st.lists(arbitrary, max_size=4),
    method=st.sampled_from(
        [
            "add_handler",
            "update_handler",
            "remove_handler",
            "add_timeout",
            "call_later",
            "call_at",
            "remove_timeout",
            "add_callback",
            "call_soon",
            "call_soon_threadsafe",
        ]
    ),
)
def test_arbitrary_arguments_raise_python_errors_only(args: list[object], method: str) -> None:
    loop = IOLoop(make_current=False)
    try:
        getattr(loop, method)(*args)
    except Exception:
        pass  # any ordinary exception is fine; PanicException is a BaseException
    finally:
        loop.close()
