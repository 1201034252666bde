"""Hypothesis state machine: handlers and timeouts against a plain-Python model, plus
arbitrary arguments that must never crash the process or raise PanicException."""

from __future__ import annotations

import functools
import math
import os
import socket
from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import mioloop
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
        self.generation: dict[int, int] = {}  # fd -> which registration of it is live
        self.next_generation = 0
        #: Registrations of fds closed without remove_handler: the engine may keep
        #: such an entry until it notices (the model cannot tell when).
        self.stale = 0
        #: Registrations closed while a dup kept the file open: each may be called
        #: once more (the README's "where it differs from Tornado").
        self.strays_allowed: dict[int, int] = {}  # generation -> calls left
        self.dups: list[int] = []
        self.fired: list[int] = []
        self.pending: dict[int, object] = {}  # timer id -> handle
        self.deadlines: dict[int, float] = {}  # timer id -> deadline
        self.unread: set[int] = set()  # fds whose peer wrote what nobody read yet
        self.removed: set[int] = set()
        self.next_id = 0
        self.events_seen: list[tuple[int, int]] = []

    def teardown(self) -> None:
        self.loop.close()
        for a, b in self.socks:
            a.close()
            b.close()
        for fd in self.dups:
            os.close(fd)

    def _handler(self, generation: int) -> Callable[[int, int], None]:
        return functools.partial(self._on_event, generation)

    def _on_event(self, generation: int, fd: int, events: int) -> None:
        if self.generation.get(fd) != generation:
            # An old registration's handler: only a stray call the rules allow.
            left = self.strays_allowed.get(generation, 0)
            assert left > 0, f"a closed registration of fd {fd} was called"
            self.strays_allowed[generation] = left - 1
            return
        self.events_seen.append((fd, events))
        if events & IOLoop.READ:
            try:
                self.by_fd[fd].recv(100)
            except BlockingIOError:
                pass
            self.unread.discard(fd)

    def _register(self, fd: int) -> int:
        self.next_generation += 1
        self.generation[fd] = self.next_generation
        return self.next_generation

    @rule(i=st.integers(0, 2), events=st.sampled_from([1, 4, 5, 8, 0]))
    def add_handler(self, i: int, events: int) -> None:
        fd = self.socks[i][0].fileno()
        if fd in self.handlers:
            with pytest.raises(ValueError):
                self.loop.add_handler(fd, self._handler(-1), events)
            return
        self.loop.add_handler(fd, self._handler(self.next_generation + 1), events)
        self._register(fd)
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

    @rule(i=st.integers(0, 2), dup=st.booleans())
    def close_the_fd_and_reuse_its_number(self, i: int, dup: bool) -> None:
        """Closes a registered socket without remove_handler (with ``dup``, while a
        dup keeps the file open), then puts a new socket at the same number."""
        old, peer = self.socks[i]
        fd = old.fileno()
        if dup:
            self.dups.append(os.dup(fd))
            if fd in self.handlers:
                self.strays_allowed[self.generation[fd]] = 1
        if fd in self.handlers:
            self.stale += 1
        new, new_peer = socket.socketpair()
        new.setblocking(False)
        new_peer.setblocking(False)
        old.close()
        peer.close()
        os.dup2(new.fileno(), fd)  # the old number now names the new socket
        new.close()
        reused = socket.socket(fileno=fd)
        self.socks[i] = (reused, new_peer)
        self.by_fd[fd] = reused
        self.handlers.pop(fd, None)
        self.generation.pop(fd, None)
        self.unread.discard(fd)

    @rule(i=st.integers(0, 2))
    def peer_writes(self, i: int) -> None:
        self.socks[i][1].send(b"x")
        self.unread.add(self.socks[i][0].fileno())

    @rule(delay=st.floats(-1, 0.002) | st.sampled_from([math.inf, 2.0**55]))
    def add_timeout(self, delay: float) -> None:
        tid = self.next_id
        self.next_id += 1
        self.deadlines[tid] = self.loop.time() + delay
        self.pending[tid] = self.loop.add_timeout(self.deadlines[tid], self.fired.append, tid)

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def remove_timeout(self, data: st.DataObject) -> None:
        tid = data.draw(st.sampled_from(sorted(self.pending)))
        self.loop.remove_timeout(self.pending.pop(tid))
        self.removed.add(tid)

    @rule()
    def run_briefly(self) -> None:
        self.events_seen.clear()
        stop_at = self.loop.time() + 0.005
        self.loop.add_timeout(stop_at, self.loop.stop)
        readable = {fd for fd in self.unread if self.handlers.get(fd, 0) & IOLoop.READ}
        self.loop.start()
        for fd, events in self.events_seen:
            assert fd in self.handlers
            registered = self.handlers[fd]
            assert events & ~(registered | IOLoop.ERROR) == 0
        for tid in self.fired:
            self.pending.pop(tid, None)
        # Liveness: every timer due before the stop fired, and every fd that had
        # data for a READ handler was served, within the 5 ms (many iterations).
        overdue = [tid for tid in self.pending if self.deadlines[tid] < stop_at]
        assert overdue == [], f"timers due but not fired: {overdue}"
        assert readable <= {fd for fd, events in self.events_seen if events & IOLoop.READ}

    @rule()
    def close_and_start_over(self) -> None:
        # Closing drops every handler and timer: none of them may run afterwards.
        self.loop.close()
        assert self.loop._stats()["handlers"] == 0
        self.removed.update(self.pending)
        self.pending.clear()
        self.handlers.clear()
        self.generation.clear()
        self.stale = 0
        self.loop = IOLoop(make_current=False)
        for a, _ in self.socks:
            while True:
                try:
                    a.recv(4096)
                except BlockingIOError:
                    break
        self.unread.clear()

    @invariant()
    def removed_timers_never_fire(self) -> None:
        assert not self.removed & set(self.fired)

    @invariant()
    def engine_counts_match_the_model(self) -> None:
        stats = self.loop._stats()
        # A closed fd's entry may linger until the engine notices it is stale.
        assert len(self.handlers) <= stats["handlers"] <= len(self.handlers) + self.stale
        # Exactly the timers the model still expects: a leaked (or lost) one shows.
        assert stats["timers"] == len([t for t in self.pending if t not in self.fired])


LoopModel.TestCase.settings = SETTINGS
TestLoopModel = LoopModel.TestCase


def _callable(*args: object, **kwargs: object) -> None:
    pass


arbitrary = st.one_of(
    st.just(_callable),
    st.just(print),
    st.none(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.just(object()),
)


#: What bad input may raise: Python's ordinary errors (a Rust panic would surface as
#: PanicException, a BaseException, and fail the test).
REFUSALS = (TypeError, ValueError, OSError, RuntimeError, OverflowError, KeyError, AttributeError)


def assert_still_usable(loop: Any) -> None:
    """The loop takes work after a refusal: a timer can be set and cancelled."""
    before = loop._stats()["timers"]
    handle = loop.call_later(3600, lambda: None)
    assert loop._stats()["timers"] == before + 1
    handle.cancel()
    assert loop._stats()["timers"] == before


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
    except REFUSALS:
        pass  # refused with a Python error, as bad input must be
    try:
        assert_still_usable(loop)
    finally:
        loop.close()


@settings(max_examples=300, deadline=None)
@given(
    args=st.lists(arbitrary, max_size=4),
    kwargs=st.dictionaries(st.sampled_from(["context", "delay", "when", "callback"]), arbitrary, max_size=2),
    method=st.sampled_from(
        [
            "call_soon",
            "call_soon_threadsafe",
            "call_later",
            "call_at",
            "add_reader",
            "add_writer",
            "remove_reader",
            "remove_writer",
            "add_signal_handler",
            "remove_signal_handler",
        ]
    ),
)
def test_arbitrary_arguments_to_the_asyncio_face_raise_python_errors_only(
    args: list[object], kwargs: dict[str, object], method: str
) -> None:
    loop = mioloop.new_event_loop()
    try:
        getattr(loop, method)(*args, **kwargs)
    except REFUSALS:
        pass  # as above; the loop never runs, so a registered callable is not called
    try:
        assert_still_usable(loop)
    finally:
        loop.close()
