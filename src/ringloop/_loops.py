"""The public loop classes: compiled core + asyncio.AbstractEventLoop."""

from __future__ import annotations

import asyncio
import selectors
import warnings

from ringloop.core.loop import CoreLoop

__all__ = ["SelectorEventLoop"]


class SelectorEventLoop(CoreLoop, asyncio.AbstractEventLoop):
    """Readiness-based event loop.

    ``SelectorEventLoop()`` uses the native epoll driver (or, where epoll does
    not exist or ``RINGLOOP_PORTABLE=1`` is set, ``selectors.DefaultSelector``).
    ``SelectorEventLoop(selector)`` uses the given ``selectors`` selector, as
    asyncio's SelectorEventLoop does.
    """

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        CoreLoop.__init__(self, selector)

    def __del__(self, _warn=warnings.warn) -> None:
        if not self.is_closed():
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    if hasattr(asyncio.AbstractEventLoop, "shutdown_default_executor"):
        import sys as _sys

        if _sys.version_info >= (3, 12):

            async def shutdown_default_executor(self, timeout: float | None = None) -> None:
                """Shut the default executor down, waiting at most timeout s."""
                await self._shutdown_default_executor(timeout)

        else:

            async def shutdown_default_executor(self) -> None:  # type: ignore[override]
                """Shut the default executor down and wait for its threads."""
                await self._shutdown_default_executor(None)

        del _sys
