"""The ways into mioloop, with no asyncio policy (``mioloop.run``,
``loop_factory=mioloop.new_event_loop`` for asyncio, uvicorn, pytest-asyncio and
anyio), what Tornado code finds through each (``TornadoIOLoop``), and the legacy
route through policies (``install``, ``EventLoopPolicy``): silent before Python 3.14,
a warning naming the replacement on 3.14 and 3.15, an error on 3.16.

Each program runs in a fresh interpreter under ``-X dev -W error``: a warning
anywhere fails it, as it fails users who run with warnings as errors."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
from tornado.ioloop import IOLoop

import mioloop

PYTHON = [sys.executable, "-X", "dev", "-W", "error"]


def run_python(code: str, *args: str, cwd: Path | None = None) -> str:
    """Runs ``code`` in a fresh interpreter with warnings as errors; returns what it
    printed, and fails if it failed or wrote anything to stderr."""
    result = subprocess.run(
        [*PYTHON, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_importing_mioloop_is_silent_and_touches_no_policy() -> None:
    out = run_python(
        """
        import asyncio.events
        import mioloop
        from mioloop import *
        print(asyncio.events._event_loop_policy is None)
        """
    )
    assert out.split() == ["True"]


# Tornado code through each front door gets TornadoIOLoop

TORNADO_MAIN = """
    import asyncio, sys
    import mioloop
    if sys.argv[2] == "before":
        import tornado.ioloop

    async def main():
        # Tornado imported here, on the running loop, when not before.
        import tornado.httpclient, tornado.httpserver, tornado.netutil, tornado.web
        from tornado.ioloop import IOLoop

        class Hello(tornado.web.RequestHandler):
            def get(self):
                self.write("hello")

        [sock] = tornado.netutil.bind_sockets(0, "127.0.0.1")
        server = tornado.httpserver.HTTPServer(tornado.web.Application([("/", Hello)]))
        server.add_sockets([sock])
        client = tornado.httpclient.AsyncHTTPClient()
        response = await client.fetch(f"http://127.0.0.1:{sock.getsockname()[1]}/")
        server.stop()
        await server.close_all_connections()
        client.close()
        io_loop = IOLoop.current()
        same = io_loop.asyncio_loop is asyncio.get_running_loop()
        return f"{type(io_loop).__module__}.{type(io_loop).__name__} {same} {response.body.decode()}"

    door = sys.argv[1]
    if door == "run":
        print(mioloop.run(main()))
    elif door == "runner":
        with asyncio.Runner(loop_factory=mioloop.new_event_loop) as runner:
            print(runner.run(main()))
    else:
        print(asyncio.run(main(), loop_factory=mioloop.new_event_loop))
"""


@pytest.mark.parametrize("tornado_imported", ["before", "inside"])
@pytest.mark.parametrize(
    "door",
    [
        "run",
        pytest.param(
            "runner", marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner is new in 3.11")
        ),
        pytest.param(
            "asyncio_run",
            marks=pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is new in 3.12"),
        ),
    ],
)
def test_tornado_code_on_a_mioloop_loop_gets_a_tornado_ioloop(door: str, tornado_imported: str) -> None:
    out = run_python(TORNADO_MAIN, door, tornado_imported)
    assert out.split() == ["mioloop._tornado.TornadoIOLoop", "True", "hello"]


def test_tornado_code_on_another_loop_keeps_tornados_own_glue() -> None:
    out = run_python(
        """
        import asyncio, mioloop
        from tornado.ioloop import IOLoop
        mioloop.new_event_loop().close()   # Tornado's map is now mioloop's

        async def main():
            return type(IOLoop.current()).__name__

        print(asyncio.run(main()))
        """
    )
    assert out.split() == ["AsyncIOMainLoop"]


def test_tornado_imported_after_a_loop_was_made_keeps_its_own_loader() -> None:
    # The import hook that swaps Tornado's map hands the module its real loader back
    # (tracebacks read source through it) and leaves sys.meta_path.
    out = run_python(
        """
        import importlib.machinery, inspect, sys
        import mioloop
        mioloop.new_event_loop().close()
        import tornado.ioloop
        print(type(tornado.ioloop.__loader__) is importlib.machinery.SourceFileLoader)
        print(tornado.ioloop.__spec__.loader is tornado.ioloop.__loader__)
        print("def current" in inspect.getsource(tornado.ioloop))
        print(any(type(f).__module__.startswith("mioloop") for f in sys.meta_path))
        print(type(tornado.ioloop.IOLoop._ioloop_for_asyncio).__name__)
        """
    )
    assert out.split() == ["True", "True", "True", "False", "IOLoopsOfAsyncioLoops"]


def test_the_classic_tornado_style_runs_on_a_tornado_ioloop_made_directly() -> None:
    io_loop = mioloop.TornadoIOLoop()  # current from now on, as Tornado's IOLoop()
    try:
        assert IOLoop.current() is io_loop
        ran: list[str] = []
        io_loop.add_callback(ran.append, "callback")
        io_loop.call_later(0.01, io_loop.stop)
        io_loop.start()
        assert ran == ["callback"]
    finally:
        io_loop.close()
    assert io_loop.asyncio_loop.is_closed()


def test_a_mioloop_loop_set_as_current_gives_ioloop_current_a_tornado_ioloop() -> None:
    loop = mioloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        io_loop = IOLoop.current()
        assert isinstance(io_loop, mioloop.TornadoIOLoop)
        assert io_loop.asyncio_loop is loop
        assert io_loop.run_sync(lambda: asyncio.sleep(0, "done")) == "done"
    finally:
        asyncio.set_event_loop(None)
        io_loop.close()
    assert loop.is_closed()


# Servers and test runners that take a loop factory


def test_uvicorn_runs_an_app_on_the_loop_named_by_its_loop_option(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        textwrap.dedent(
            """
            import asyncio
            from tornado.ioloop import IOLoop

            async def app(scope, receive, send):
                if scope["type"] != "http":
                    return
                loop = type(asyncio.get_running_loop())
                body = f"{loop.__module__}.{loop.__name__} {type(IOLoop.current()).__name__}".encode()
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
            """
        )
    )
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = subprocess.Popen(
        [
            *PYTHON,
            "-m",
            "uvicorn",
            "app:app",
            "--fd",
            str(listener.fileno()),
            "--loop",
            "mioloop:new_event_loop",
            "--http",
            "h11",
            "--log-level",
            "warning",
            "--lifespan",
            "off",
        ],
        cwd=tmp_path,
        pass_fds=[listener.fileno()],
        stderr=subprocess.PIPE,
        text=True,
    )
    listener.close()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            body = response.read().decode()
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert body == "mioloop.eventloop.EventLoop TornadoIOLoop"
    assert "Warning" not in stderr and "Traceback" not in stderr, stderr


def test_pytest_asyncio_runs_tests_on_the_loop_its_hook_names(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import mioloop

            def pytest_asyncio_loop_factories(config, item):
                return {"mioloop": mioloop.new_event_loop}
            """
        )
    )
    (tmp_path / "test_it.py").write_text(
        textwrap.dedent(
            """
            import asyncio
            import pytest
            import mioloop

            @pytest.mark.asyncio
            async def test_on_mioloop():
                assert isinstance(asyncio.get_running_loop(), mioloop.EventLoop)
                await asyncio.sleep(0)
            """
        )
    )
    result = _pytest_in(
        tmp_path, "-p", "asyncio", "-p", "no:anyio", "-o", "asyncio_default_fixture_loop_scope=function"
    )
    assert "1 passed" in result.stdout, result.stdout + result.stderr


def test_anyio_runs_tests_on_the_loop_its_backend_options_name(tmp_path: Path) -> None:
    (tmp_path / "test_it.py").write_text(
        textwrap.dedent(
            """
            import asyncio
            import anyio
            import pytest
            import mioloop

            @pytest.fixture
            def anyio_backend():
                return ("asyncio", {"loop_factory": mioloop.new_event_loop})

            @pytest.mark.anyio
            async def test_on_mioloop():
                assert isinstance(asyncio.get_running_loop(), mioloop.EventLoop)
                await anyio.sleep(0)
            """
        )
    )
    result = _pytest_in(tmp_path, "-p", "anyio", "-p", "no:asyncio")
    assert "1 passed" in result.stdout, result.stdout + result.stderr


def _pytest_in(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run(
        [*PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", *args, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=path,
        env=env,
    )


# The legacy route through asyncio's policies

LEGACY = """
    import asyncio, warnings
    import mioloop
    from tornado.ioloop import IOLoop

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        policy_class = mioloop.EventLoopPolicy
        mioloop.install()
    for warning in caught:
        print("warned:", warning.category.__name__, "mioloop.run(main())" in str(warning.message))

    async def main():
        return type(asyncio.get_running_loop()).__name__

    made = policy_class().new_event_loop()
    print("loop:", asyncio.run(main()), isinstance(made, mioloop.EventLoop))
    made.close()
    io_loop = IOLoop(make_current=False)
    print("IOLoop():", type(io_loop).__name__)
    io_loop.close()
"""


def test_install_is_a_silent_legacy_route_where_asyncio_has_policies_undeprecated() -> None:
    if sys.version_info >= (3, 14):
        pytest.skip("asyncio deprecates its policies from 3.14 (the next test)")
    out = run_python(LEGACY)
    assert out.splitlines() == ["loop: EventLoop True", "IOLoop(): TornadoIOLoop"]


def test_install_and_the_policy_warn_with_the_replacement_where_asyncio_deprecates_policies() -> None:
    if sys.version_info < (3, 14):
        pytest.skip("asyncio deprecates its policies from 3.14")
    out = run_python(LEGACY)
    # One warning each, mioloop's own (naming what to use), none of asyncio's.
    assert out.splitlines() == [
        "warned: DeprecationWarning True",
        "warned: DeprecationWarning True",
        "loop: EventLoop True",
        "IOLoop(): TornadoIOLoop",
    ]


def test_without_policies_install_and_the_policy_raise_errors_naming_the_replacement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Python 3.16's asyncio, which has no policies.
    monkeypatch.setattr(mioloop.policy, "POLICIES", False)
    with pytest.raises(RuntimeError, match=r"mioloop\.run\(main\(\)\).*loop_factory=mioloop\.new_event_loop"):
        mioloop.install()
    with pytest.raises(AttributeError, match=r"mioloop\.run\(main\(\)\)"):
        mioloop.EventLoopPolicy  # noqa: B018
    assert not hasattr(mioloop, "EventLoopPolicy")
