"""EventLoopPolicy: per-thread ringloop loops, as asyncio's default policy."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from ringloop._loops import _resolve_kind, new_event_loop

__all__ = ["EventLoopPolicy", "install"]


class EventLoopPolicy(asyncio.events.BaseDefaultEventLoopPolicy):
    """Per-thread event loops, as ``asyncio.DefaultEventLoopPolicy``.

    A loop is created on demand in the main thread; other threads get
    RuntimeError until set_event_loop() is called. On 3.12+ the implicit
    creation emits asyncio's DeprecationWarning, exactly as asyncio does
    (the behaviour is inherited from asyncio's own base policy).
    """

    _kind: str | None = None     # (a subclass's __init__ may skip ours)

    def __init__(self, kind: str | None = None) -> None:
        """``kind``: "selector" or "proactor", the kind of every loop the
        policy makes; by default (None) ``ringloop.new_event_loop()``'s,
        the RINGLOOP_LOOP environment variable read when a loop is made."""
        super().__init__()
        if kind is not None:
            _resolve_kind(kind)      # an unknown kind fails here, not later
        self._kind = kind

    def _loop_factory(self) -> asyncio.AbstractEventLoop:
        return new_event_loop(self._kind)

    def __repr__(self) -> str:
        if self._kind is None:
            return f"<{type(self).__name__}>"
        return f"<{type(self).__name__} kind={self._kind!r}>"

    if sys.platform != "win32" and sys.version_info < (3, 14):
        # Child watchers (deprecated in 3.12, removed in 3.14): ringloop
        # loops never use them (each watches its own children through a
        # pidfd), but code written for asyncio's policy may still get or set
        # one.  Both work as on asyncio's policy, deprecation warnings
        # included, through a private asyncio policy that holds the watcher.
        _child_watchers: Any = None

        def _watcher_policy(self) -> Any:
            if self._child_watchers is None:
                self._child_watchers = asyncio.unix_events._UnixDefaultEventLoopPolicy()
            return self._child_watchers

        def get_child_watcher(self) -> Any:
            """asyncio's child watcher; ringloop loops do not use it."""
            with _warnings_from_caller():
                return self._watcher_policy().get_child_watcher()

        def set_child_watcher(self, watcher: Any) -> None:
            """Set asyncio's child watcher; no effect on ringloop loops."""
            with _warnings_from_caller():
                self._watcher_policy().set_child_watcher(watcher)


@contextlib.contextmanager
def _warnings_from_caller() -> Iterator[None]:
    # The private policy's warnings (3.12+'s deprecations) re-emitted so that
    # they name the caller of our method, as asyncio's policy's name its own
    # caller, not this module.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=4)


def install(kind: str | None = None) -> None:
    """Make ringloop the loop asyncio creates: sets EventLoopPolicy(kind)
    ("selector" or "proactor"; by default RINGLOOP_LOOP, else "selector")."""
    asyncio.set_event_loop_policy(EventLoopPolicy(kind))
