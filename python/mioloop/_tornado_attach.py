"""How Tornado finds :class:`mioloop.TornadoIOLoop` on a mioloop loop, however that
loop was made (``mioloop.run``, ``asyncio.run(..., loop_factory=...)``,
``asyncio.Runner``, uvicorn's ``--loop``), with no asyncio policy involved.

Tornado keeps a map from asyncio loops to their IOLoops
(``IOLoop._ioloop_for_asyncio``) and makes an ``AsyncIOMainLoop`` for a loop it has
not seen. :func:`attach` swaps that map for one that makes a ``TornadoIOLoop``
instead when the loop is a :class:`mioloop.EventLoop` (other loops are left to
Tornado). Every new mioloop loop calls :func:`attach`: at once if Tornado is
imported, else when ``tornado.ioloop`` is, through a one-shot import hook.

This module imports nothing of Tornado, and the map imports ``mioloop._tornado``
(which does) only when Tornado asks it for an IOLoop.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any

__all__ = ["attach"]

_IOLOOP_MODULE = "tornado.ioloop"


class IOLoopsOfAsyncioLoops(dict):  # type: ignore[type-arg]
    """Tornado's map from asyncio loops to their IOLoops, which gives a mioloop loop
    that has none a :class:`mioloop.TornadoIOLoop` (where Tornado would make an
    ``AsyncIOMainLoop``)."""

    def __missing__(self, loop: object) -> Any:
        from .eventloop import EventLoop

        if isinstance(loop, EventLoop) and not loop.is_closed():
            from ._tornado import TornadoIOLoop

            return TornadoIOLoop(asyncio_loop=loop)
        raise KeyError(loop)


def attach() -> None:
    """Makes Tornado give mioloop loops a ``TornadoIOLoop``: now if
    ``tornado.ioloop`` is imported, else as soon as it is."""
    module = sys.modules.get(_IOLOOP_MODULE)
    if module is not None and hasattr(module, "IOLoop"):
        _swap_map(module)
    elif not any(isinstance(finder, _AfterTornadoImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterTornadoImport())


def _swap_map(module: ModuleType) -> None:
    ioloop_class = module.IOLoop
    if not isinstance(ioloop_class._ioloop_for_asyncio, IOLoopsOfAsyncioLoops):
        ioloop_class._ioloop_for_asyncio = IOLoopsOfAsyncioLoops(ioloop_class._ioloop_for_asyncio)


class _AfterTornadoImport(importlib.abc.MetaPathFinder):
    """Finds ``tornado.ioloop`` through the finders after it, and has the map
    swapped once the module has run; then leaves ``sys.meta_path``."""

    def find_spec(
        self, fullname: str, path: Any, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _IOLOOP_MODULE:
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec.loader = _SwapMapAfter(spec.loader)
        return spec


class _SwapMapAfter(importlib.abc.Loader):
    """Runs the real loader, gives the module its own loader back, then swaps the
    map."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _swap_map(module)
