"""Pipes (``connect_read_pipe``, ``connect_write_pipe``) and subprocesses
(``subprocess_exec``, ``subprocess_shell``, asyncio's ``create_subprocess_*``),
each scenario run on mioloop and on asyncio's own loop with the same
expectations."""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

import pytest

from .conftest import open_fds, run


@pytest.fixture
def loop(loop: asyncio.AbstractEventLoop):  # type: ignore[no-untyped-def]
    # asyncio's own loop needs its child watcher attached on 3.10/3.11.
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)


class PipeRecorder(asyncio.Protocol):
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.data = bytearray()
        self.transport: Any = None
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        if self.events[-1] != "data":
            self.events.append("data")
        self.data += data

    def eof_received(self) -> None:
        self.events.append("eof")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


def test_a_read_pipe_delivers_data_then_eof_then_closes(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> PipeRecorder:
        r, w = os.pipe()
        pipe = open(r, "rb", buffering=0)
        transport, rec = await loop.connect_read_pipe(PipeRecorder, pipe)
        assert transport.get_extra_info("pipe") is pipe
        os.write(w, b"through the pipe")
        os.close(w)
        assert await rec.lost is None
        assert pipe.closed
        return rec

    rec = run(loop, main())
    assert rec.events == ["made", "data", "eof", "lost"]
    assert rec.data == b"through the pipe"


def test_pause_reading_holds_a_read_pipe_back(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        r, w = os.pipe()
        transport, rec = await loop.connect_read_pipe(PipeRecorder, open(r, "rb", buffering=0))
        transport.pause_reading()
        os.write(w, b"held")
        await asyncio.sleep(0.05)
        assert rec.data == b""
        transport.resume_reading()
        await asyncio.sleep(0.05)
        assert rec.data == b"held"
        os.close(w)
        await rec.lost

    run(loop, main())


def test_a_write_pipe_writes_and_write_eof_closes_it(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> bytes:
        r, w = os.pipe()
        transport, rec = await loop.connect_write_pipe(PipeRecorder, open(w, "wb", buffering=0))
        assert transport.can_write_eof()
        transport.write(b"one ")
        transport.writelines([b"two ", bytearray(b"three")])
        with pytest.raises(NotImplementedError):  # it only writes
            transport.pause_reading()  # type: ignore[attr-defined]
        transport.write_eof()
        transport.write_eof()  # once more: nothing happens
        assert await rec.lost is None
        with open(r, "rb") as reader:
            return reader.read()

    assert run(loop, main()) == b"one two three"


def test_a_write_pipe_whose_reader_goes_away_is_closed(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[BaseException | None, BaseException | None]:
        results = []
        for pending in (False, True):
            r, w = os.pipe()
            transport, rec = await loop.connect_write_pipe(PipeRecorder, open(w, "wb", buffering=0))
            if pending:
                # More than the pipe holds: the rest waits in the transport.
                transport.write(b"x" * (4 << 20))
                assert transport.get_write_buffer_size() > 0
            os.close(r)
            results.append(await rec.lost)
        return results[0], results[1]

    idle, busy = run(loop, main())
    assert idle is None
    assert isinstance(busy, BrokenPipeError)


def test_a_pty_is_read_until_its_other_side_closes(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[bytes, BaseException | None]:
        master, slave = os.openpty()
        transport, rec = await loop.connect_read_pipe(PipeRecorder, open(master, "rb", buffering=0))
        os.write(slave, b"from the terminal\n")
        while b"\n" not in rec.data:
            await asyncio.sleep(0.01)
        os.close(slave)
        return bytes(rec.data), await rec.lost

    data, lost = run(loop, main())
    assert data == b"from the terminal\r\n"
    assert isinstance(lost, OSError) and lost.errno == errno.EIO


def test_a_regular_file_is_not_a_pipe(loop: asyncio.AbstractEventLoop) -> None:
    with tempfile.TemporaryFile() as file:
        with pytest.raises(ValueError, match="Pipe transport is for pipes/sockets only"):
            run(loop, loop.connect_read_pipe(asyncio.Protocol, file))
        with pytest.raises(ValueError, match="Pipe transport is only for pipes, sockets and character devices"):
            run(loop, loop.connect_write_pipe(asyncio.Protocol, file))
    assert run(loop, asyncio.sleep(0, "usable")) == "usable"


# Subprocesses


def test_communicate_round_trips_through_the_child(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[bytes, bytes, int | None]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; data = sys.stdin.buffer.read(); "
            "sys.stdout.buffer.write(data.upper()); sys.stderr.write('err')",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await proc.communicate(b"x" * 200_000 + b"end")
        return out, err, proc.returncode

    out, err, code = run(loop, main())
    assert out == b"X" * 200_000 + b"END"
    assert err == b"err"
    assert code == 0


def test_exit_codes_and_signals_reach_the_caller(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> list[int]:
        codes = []
        proc = await asyncio.create_subprocess_shell("exit 7")
        codes.append(await proc.wait())
        for stop in ("terminate", "kill", "send_signal"):
            proc = await asyncio.create_subprocess_exec("sleep", "30")
            if stop == "send_signal":
                proc.send_signal(signal.SIGUSR1)
            else:
                getattr(proc, stop)()
            codes.append(await proc.wait())
        return codes

    assert run(loop, main()) == [7, -signal.SIGTERM, -signal.SIGKILL, -signal.SIGUSR1]


def test_stderr_can_be_merged_into_stdout(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> bytes:
        # The leak check preloads a sanitizer that makes the shell warn on stderr.
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        proc = await asyncio.create_subprocess_shell(
            "echo out; echo err 1>&2", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        out, err = await proc.communicate()
        assert err is None
        return out

    assert sorted(run(loop, main()).split()) == [b"err", b"out"]


def test_the_transport_describes_its_child(loop: asyncio.AbstractEventLoop) -> None:
    class Proto(asyncio.SubprocessProtocol):
        def __init__(self) -> None:
            self.exited = asyncio.get_running_loop().create_future()
            self.output = bytearray()

        def pipe_data_received(self, fd: int, data: bytes | str) -> None:
            assert fd == 1
            self.output += data  # type: ignore[arg-type]

        def process_exited(self) -> None:
            self.exited.set_result(None)

    async def main() -> None:
        transport, proto = await loop.subprocess_exec(Proto, "cat")
        assert transport.get_pid() > 0
        assert transport.get_returncode() is None
        stdin = transport.get_pipe_transport(0)
        assert transport.get_pipe_transport(1) is not None
        stdin.write(b"meow")
        stdin.close()
        await proto.exited
        assert transport.get_returncode() == 0
        assert proto.output == b"meow"
        transport.close()

    run(loop, main())


def test_no_zombie_and_no_fd_is_left_behind(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> list[int]:
        pids = []
        for _ in range(30):
            proc = await asyncio.create_subprocess_exec("/bin/true", stdout=subprocess.PIPE)
            await proc.communicate()
            pids.append(proc.pid)
        return pids

    run(loop, asyncio.sleep(0))
    before = open_fds()
    pids = run(loop, main())
    run(loop, asyncio.sleep(0.05))
    assert open_fds() == before
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_a_child_that_never_exits_can_be_waited_for_with_a_timeout(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> int:
        proc = await asyncio.create_subprocess_exec("sleep", "30")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.2)
        assert proc.returncode is None
        proc.kill()
        return await proc.wait()

    assert run(loop, main()) == -signal.SIGKILL


def test_a_program_that_does_not_exist_raises_and_leaks_nothing(loop: asyncio.AbstractEventLoop) -> None:
    run(loop, asyncio.sleep(0))
    before = open_fds()
    with pytest.raises(FileNotFoundError):
        run(loop, asyncio.create_subprocess_exec("/nonexistent/program", stdout=subprocess.PIPE))
    run(loop, asyncio.sleep(0.05))
    assert open_fds() == before
    assert run(loop, asyncio.sleep(0, "usable")) == "usable"


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "message"),
    [
        ("subprocess_exec", ("true",), {"shell": True}, "shell must be False"),
        ("subprocess_shell", ("true",), {"shell": False}, "shell must be True"),
        ("subprocess_shell", (["true"],), {}, "cmd must be a string"),
        ("subprocess_exec", ("true",), {"universal_newlines": True}, "universal_newlines must be False"),
        ("subprocess_exec", ("true",), {"bufsize": 1}, "bufsize must be 0"),
        ("subprocess_exec", ("true",), {"text": True}, "text must be False"),
        ("subprocess_exec", ("true",), {"encoding": "utf-8"}, "encoding must be None"),
        ("subprocess_exec", ("true",), {"errors": "strict"}, "errors must be None"),
    ],
)
def test_bad_subprocess_arguments_are_refused(
    loop: asyncio.AbstractEventLoop, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run(loop, getattr(loop, method)(asyncio.SubprocessProtocol, *args, **kwargs))
    assert run(loop, asyncio.sleep(0, "usable")) == "usable"


def test_a_fifo_carries_data_between_a_write_and_a_read_pipe(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "fifo")
            os.mkfifo(path)
            reader_fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            writer_fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            _, rec = await loop.connect_read_pipe(PipeRecorder, open(reader_fd, "rb", buffering=0))
            writing, lost = await loop.connect_write_pipe(PipeRecorder, open(writer_fd, "wb", buffering=0))
            writing.write(b"named pipe")
            writing.close()
            assert await lost.lost is None
            assert await rec.lost is None
            return bytes(rec.data)

    assert run(loop, main()) == b"named pipe"


@pytest.mark.parametrize("no_pidfd", ["macos", "old-linux"])
@pytest.mark.parametrize("loop", ["mioloop"], indirect=True)
def test_without_pidfd_a_thread_notices_the_childs_exit(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch, no_pidfd: str
) -> None:
    """macOS has no os.pidfd_open, and Linux before 5.3 refuses it: mioloop's
    fallback waits in a thread."""

    def refused(pid: int, flags: int = 0) -> int:
        raise OSError(errno.ENOSYS, "Function not implemented")

    if no_pidfd == "macos":
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    else:
        monkeypatch.setattr(os, "pidfd_open", refused)

    async def main() -> tuple[int, int]:
        proc = await asyncio.create_subprocess_shell("exit 5")
        code = await proc.wait()
        with pytest.raises(ChildProcessError):
            os.waitpid(proc.pid, os.WNOHANG)
        proc = await asyncio.create_subprocess_exec("sleep", "30")
        proc.terminate()
        return code, await proc.wait()

    assert run(loop, main()) == (5, -signal.SIGTERM)


@pytest.mark.parametrize("loop", ["mioloop"], indirect=True)
def test_closing_the_loop_with_a_child_running_warns_after_releasing_everything(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """With warnings as errors, close() raises the ResourceWarning, but only once
    the loop is closed; the child is still reaped when it exits."""

    async def spawn() -> Any:
        return await asyncio.create_subprocess_exec("sleep", "0.2")

    proc = run(loop, spawn())
    with pytest.raises(ResourceWarning, match=f"child process {proc.pid} still running"):
        loop.close()
    assert loop.is_closed()
    os.kill(proc.pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(proc.pid, 0)  # still there (a zombie would be too)
        except ProcessLookupError:
            break
        time.sleep(0.01)
    else:
        pytest.fail("the child was not reaped")
    # The transport was never closed: asyncio's own __del__ warns of it.
    with pytest.warns(ResourceWarning):
        del proc
        gc.collect()
