"""Subprocesses on the asyncio face: ``subprocess_exec``, ``subprocess_shell``
(and so ``asyncio.create_subprocess_exec/shell``).

The child's pipes are the loop's pipe transports. Its exit is noticed without
polling and without a child watcher: the loop watches a pidfd of the child
(Linux 5.3+), readable once it exits, then reaps it. Where the kernel has no
pidfd, a thread per child waits for it. A child still running when the loop
closes is reaped by a thread, so none is left a zombie.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import subprocess
import threading
import warnings
from asyncio import base_subprocess
from collections.abc import Callable
from typing import Any

__all__ = ["SubprocessMethods"]

_logger = logging.getLogger("asyncio")


class SubprocessTransport(base_subprocess.BaseSubprocessTransport):
    """asyncio's subprocess transport (``get_pid``, ``get_returncode``,
    ``get_pipe_transport``, ``send_signal``, ``terminate``, ``kill``, ``close``)
    over a ``subprocess.Popen`` child."""

    def _start(  # type: ignore[override]
        self, args: Any, shell: bool, stdin: Any, stdout: Any, stderr: Any, bufsize: int, **kwargs: Any
    ) -> None:
        self._proc = subprocess.Popen(
            args,
            shell=shell,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            universal_newlines=False,
            bufsize=bufsize,
            **kwargs,
        )


def _pid(transport: SubprocessTransport) -> int:
    pid = transport.get_pid()
    assert pid is not None  # set once the child started
    return pid


def _check_popen_args(universal_newlines: bool, bufsize: int, text: Any, encoding: Any, errors: Any) -> None:
    """The loop's pipes carry bytes, unbuffered: refuse what would change that."""
    if universal_newlines:
        raise ValueError("universal_newlines must be False")
    if bufsize != 0:
        raise ValueError("bufsize must be 0")
    if text:
        raise ValueError("text must be False")
    if encoding is not None:
        raise ValueError("encoding must be None")
    if errors is not None:
        raise ValueError("errors must be None")


def _exit_code(pid: int, proc: subprocess.Popen[Any]) -> int:
    """Reaps the exited child ``pid``; its exit code (``-signal`` if killed)."""
    try:
        reaped, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        reaped, status = 0, 0
    if reaped == pid:
        return os.waitstatus_to_exitcode(status)
    if proc.returncode is not None:
        # Reaped already, by Popen (the transport's close() polls it).
        return proc.returncode
    _logger.warning("Unknown child process pid %d, will report returncode 255", pid)
    return 255


def _reap_in_thread(pid: int, done: Callable[[int], object] | None) -> None:
    """Waits for ``pid`` in a daemon thread; ``done(returncode)`` after, if given."""

    def wait() -> None:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return
        if done is not None:
            done(os.waitstatus_to_exitcode(status))

    threading.Thread(target=wait, name=f"mioloop-waitpid-{pid}", daemon=True).start()


class SubprocessMethods:
    """The subprocess methods of :class:`~mioloop.EventLoop`."""

    add_reader: Callable[..., None]
    remove_reader: Callable[[Any], bool]
    call_soon_threadsafe: Callable[..., Any]
    create_future: Callable[[], asyncio.Future[Any]]
    is_closed: Callable[[], bool]
    #: The pidfd of each child being waited for, with its transport.
    _children: dict[int, SubprocessTransport]

    async def subprocess_exec(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.SubprocessProtocol],
        program: Any,
        *args: Any,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = False,
        bufsize: int = 0,
        encoding: Any = None,
        errors: Any = None,
        text: Any = None,
        **kwargs: Any,
    ) -> tuple[SubprocessTransport, asyncio.SubprocessProtocol]:
        """Runs ``program`` with ``args`` in a child process; returns its
        transport and ``protocol_factory()``'s protocol once its pipes are
        connected."""
        if shell:
            raise ValueError("shell must be False")
        _check_popen_args(universal_newlines, bufsize, text, encoding, errors)
        protocol = protocol_factory()
        transport = await self._spawn(protocol, (program, *args), False, stdin, stdout, stderr, bufsize, kwargs)
        return transport, protocol

    async def subprocess_shell(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.SubprocessProtocol],
        cmd: str | bytes,
        *,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = True,
        bufsize: int = 0,
        encoding: Any = None,
        errors: Any = None,
        text: Any = None,
        **kwargs: Any,
    ) -> tuple[SubprocessTransport, asyncio.SubprocessProtocol]:
        """Runs the shell command ``cmd`` in a child process; returns its
        transport and ``protocol_factory()``'s protocol once its pipes are
        connected."""
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        if not shell:
            raise ValueError("shell must be True")
        _check_popen_args(universal_newlines, bufsize, text, encoding, errors)
        protocol = protocol_factory()
        transport = await self._spawn(protocol, cmd, True, stdin, stdout, stderr, bufsize, kwargs)
        return transport, protocol

    async def _spawn(
        self,
        protocol: asyncio.SubprocessProtocol,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        kwargs: dict[str, Any],
    ) -> SubprocessTransport:
        waiter = self.create_future()
        transport = SubprocessTransport(
            self,  # type: ignore[arg-type]
            protocol,
            args,
            shell,
            stdin,
            stdout,
            stderr,
            bufsize,
            waiter=waiter,
            **kwargs,
        )
        self._watch_child(transport)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transport.close()
            await transport._wait()
            waiter = None  # type: ignore[assignment]  # no cycle through the error's traceback
            raise
        return transport

    def _watch_child(self, transport: SubprocessTransport) -> None:
        pid = _pid(transport)
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            # No pidfd (Linux < 5.3): a thread waits for the child.
            # The exit is reported in the context the child was started in, as
            # the pidfd's reader would be (it copies the context it is added in).
            context = contextvars.copy_context()

            def exited(returncode: int) -> None:
                if not self.is_closed():
                    self.call_soon_threadsafe(transport._process_exited, returncode, context=context)

            _reap_in_thread(pid, exited)
            return
        self._children[pidfd] = transport
        self.add_reader(pidfd, self._child_exited, pidfd)

    def _child_exited(self, pidfd: int) -> None:
        transport = self._children.pop(pidfd)
        self.remove_reader(pidfd)
        os.close(pidfd)
        assert transport._proc is not None  # started: _start() set it
        returncode = _exit_code(_pid(transport), transport._proc)
        transport._process_exited(returncode)

    def _forget_children(self) -> list[int]:
        """On close: stops watching the children; a thread reaps each when it
        exits. Returns the pids of those still running, for the caller to warn of
        once everything is released."""
        children, self._children = self._children, {}
        running = []
        for pidfd, transport in children.items():
            self.remove_reader(pidfd)
            os.close(pidfd)
            if transport.get_returncode() is None:
                running.append(_pid(transport))
            _reap_in_thread(_pid(transport), None)
        return running


def warn_running_children(pids: list[int]) -> None:
    """Warns (``ResourceWarning``) of children a closed loop left running."""
    for pid in pids:
        warnings.warn(f"loop closed with child process {pid} still running", ResourceWarning, stacklevel=4)
