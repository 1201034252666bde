"""A "hello world" ``tornado.web.Application`` under each loop (the HTTP workload).

    python benches/servers/http_server.py KIND PORT

Prints ``ready`` once listening; ``skip: reason`` and exit code 3 if it cannot run.
"""

from __future__ import annotations

import asyncio
import sys

KINDS = ["mioloop", "asyncio", "uvloop", "rloop"]


def main() -> int:
    kind, port = sys.argv[1], int(sys.argv[2])
    try:
        import tornado.web

        if kind == "asyncio":
            loop: asyncio.AbstractEventLoop = asyncio.SelectorEventLoop()
        elif kind == "uvloop":
            import uvloop

            loop = uvloop.new_event_loop()
        elif kind == "rloop":
            import rloop

            loop = rloop.new_event_loop()
        elif kind == "mioloop":
            # Tornado's IOLoop on mioloop's asyncio face (add_reader / add_writer).
            import mioloop

            loop = mioloop.new_event_loop()
        else:
            print(f"skip: unknown kind {kind}", flush=True)
            return 3
    except ImportError as e:
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
    loop.run_until_complete(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
