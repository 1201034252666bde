"""A "hello world" ``tornado.web.Application`` under each loop (the HTTP workload).

    python benches/servers/http_server.py KIND PORT

Prints ``ready`` once listening; ``skip: reason`` and exit code 3 if it cannot run.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workloads import Unavailable, make_loop

#: ``mioloop``: a mioloop loop, on which Tornado's IOLoop is ``mioloop.TornadoIOLoop``;
#: ``mioloop-asyncio``: Tornado's own asyncio glue (``AsyncIOMainLoop``, made before
#: Tornado asks) over mioloop's asyncio loop.
KINDS = ["mioloop", "mioloop-asyncio", "asyncio", "uvloop", "rloop"]


def main() -> int:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind not in KINDS:
        print(f"skip: unknown kind {kind}", flush=True)
        return 3
    try:
        import tornado.web
        from tornado.platform.asyncio import AsyncIOMainLoop

        loop = make_loop("mioloop-asyncio" if kind.startswith("mioloop") else kind)
    except (ImportError, Unavailable) as e:
        print(f"skip: {e}", flush=True)
        return 3

    class Hello(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write("Hello, world")

    async def serve() -> None:
        app = tornado.web.Application([(r"/", Hello)])
        app.listen(port, "127.0.0.1", xheaders=False)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.set_event_loop(loop)
    if kind == "mioloop-asyncio":
        AsyncIOMainLoop()  # Tornado's glue, mapped to this loop before Tornado asks
    loop.run_until_complete(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
