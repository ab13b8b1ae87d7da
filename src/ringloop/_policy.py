"""EventLoopPolicy: per-thread ringloop loops, as asyncio's default policy."""

from __future__ import annotations

import asyncio

from ringloop._loops import SelectorEventLoop

__all__ = ["EventLoopPolicy", "install"]


class EventLoopPolicy(asyncio.events.BaseDefaultEventLoopPolicy):
    """Per-thread event loops, as ``asyncio.DefaultEventLoopPolicy``.

    A loop is created on demand in the main thread; other threads get
    RuntimeError until set_event_loop() is called. On 3.12+ the implicit
    creation emits asyncio's DeprecationWarning, exactly as asyncio does
    (the behaviour is inherited from asyncio's own base policy).
    """

    def _loop_factory(self) -> asyncio.AbstractEventLoop:
        from ringloop import new_event_loop

        return new_event_loop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def install() -> None:
    """Make ringloop the loop asyncio creates: sets EventLoopPolicy()."""
    asyncio.set_event_loop_policy(EventLoopPolicy())
