"""Coverage-guided fuzzing of both Python faces with atheris: the input drives a
sequence of calls on a ``mioloop.IOLoop`` and a ``mioloop.EventLoop`` (handlers,
readers, timers, callbacks with bad arguments, callbacks that raise, short runs,
close and start over). Bad input may raise any ordinary exception; what the fuzzer
reports is a crash, a hang (``-timeout``) or a ``PanicException`` (a
``BaseException``, so nothing here catches it).

    pip install atheris==3.0.0
    python tests/fuzz/atheris_faces.py -max_total_time=120 -timeout=10
"""

from __future__ import annotations

import logging
import math
import socket
import sys
from typing import Any

import atheris

with atheris.instrument_imports():
    import mioloop

FLOATS = [0.0, -1.0, 1e-4, 1e-3, math.inf, -math.inf, math.nan, 2.0**63, -(2.0**63), 1e300]


class Raises(Exception):
    pass


def make_callable(fdp: atheris.FuzzedDataProvider) -> Any:
    choice = fdp.ConsumeIntInRange(0, 4)
    if choice == 0:
        return lambda *a, **k: None
    if choice == 1:

        def fails(*a: object, **k: object) -> None:
            raise Raises("from a callback")

        return fails
    if choice == 2:

        def interrupts(*a: object, **k: object) -> None:
            raise KeyboardInterrupt

        return interrupts
    if choice == 3:

        async def coroutine(*a: object, **k: object) -> None:
            raise Raises("from a coroutine")

        return coroutine
    return fdp.PickValueInList([None, 3, "text", b"bytes", object()])


def make_number(fdp: atheris.FuzzedDataProvider) -> Any:
    if fdp.ConsumeBool():
        return fdp.PickValueInList(FLOATS)
    return fdp.ConsumeIntInRange(-(2**40), 2**40)


class Faces:
    def __init__(self) -> None:
        self.pairs = [socket.socketpair() for _ in range(3)]
        for a, b in self.pairs:
            a.setblocking(False)
            b.setblocking(False)
        self.ioloop = mioloop.IOLoop(make_current=False)
        self.aloop = mioloop.new_event_loop()
        self.handles: list[Any] = []

    def fd(self, fdp: atheris.FuzzedDataProvider) -> Any:
        a, _ = self.pairs[fdp.ConsumeIntInRange(0, len(self.pairs) - 1)]
        return fdp.PickValueInList([a, a.fileno(), -1, 2**31, "fd"])

    def step(self, fdp: atheris.FuzzedDataProvider) -> None:
        op = fdp.ConsumeIntInRange(0, 16)
        io, aio = self.ioloop, self.aloop
        if op == 0:
            io.add_handler(self.fd(fdp), make_callable(fdp), fdp.ConsumeIntInRange(-1, 0x3F))
        elif op == 1:
            io.update_handler(self.fd(fdp), fdp.ConsumeIntInRange(-1, 0x3F))
        elif op == 2:
            io.remove_handler(self.fd(fdp))
        elif op == 3:
            self.handles.append(io.add_timeout(io.time() + make_number(fdp), make_callable(fdp)))
        elif op == 4:
            self.handles.append(io.call_later(make_number(fdp), make_callable(fdp), make_number(fdp)))
        elif op == 5 and self.handles:
            io.remove_timeout(fdp.PickValueInList(self.handles))
        elif op == 6:
            io.add_callback(make_callable(fdp), make_number(fdp), key=make_number(fdp))
        elif op == 7:
            fd = self.fd(fdp)
            aio.add_reader(fd, make_callable(fdp))
        elif op == 8:
            aio.remove_reader(self.fd(fdp))
        elif op == 9:
            aio.add_writer(self.fd(fdp), make_callable(fdp))
        elif op == 10:
            self.handles.append(aio.call_later(make_number(fdp), make_callable(fdp)))
        elif op == 11:
            self.handles.append(aio.call_soon_threadsafe(make_callable(fdp)))
        elif op == 12:
            _, peer = self.pairs[fdp.ConsumeIntInRange(0, len(self.pairs) - 1)]
            peer.send(b"x")
        elif op == 13:
            io.call_later(0.001, io.stop)
            io.start()
        elif op == 14:
            aio.call_later(0.001, aio.stop)
            aio.run_forever()
        elif op == 15:
            # Any shape of arguments for the scheduling methods' own parser.
            face, methods = fdp.PickValueInList(
                [
                    (io, ["add_callback", "add_timeout", "call_later", "call_at", "spawn_callback"]),
                    (aio, ["call_soon", "call_soon_threadsafe", "call_later", "call_at"]),
                ]
            )
            method = fdp.PickValueInList(methods)
            args = [
                fdp.PickValueInList([make_callable(fdp), make_number(fdp), None])
                for _ in range(fdp.ConsumeIntInRange(0, 3))
            ]
            names = ["callback", "deadline", "delay", "when", "key", "context"]
            kwargs = {fdp.PickValueInList(names): make_callable(fdp) for _ in range(fdp.ConsumeIntInRange(0, 3))}
            getattr(face, method)(*args, **kwargs)
        else:
            io.close(all_fds=False)
            aio.close()
            self.ioloop = mioloop.IOLoop(make_current=False)
            self.aloop = mioloop.new_event_loop()
            self.handles.clear()

    def close(self) -> None:
        self.ioloop.close()
        self.aloop.close()
        for a, b in self.pairs:
            a.close()
            b.close()


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    faces = Faces()
    try:
        for _ in range(fdp.ConsumeIntInRange(0, 40)):
            try:
                faces.step(fdp)
            except (Exception, KeyboardInterrupt):
                pass  # bad input gets an ordinary exception; a PanicException is not one
    finally:
        faces.close()


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)  # the callbacks' errors are expected: keep the output to the fuzzer's
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
