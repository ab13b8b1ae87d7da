"""The public loop classes: compiled core + asyncio.AbstractEventLoop."""

from __future__ import annotations

import asyncio
import selectors
import warnings

from ringloop._version import __version__
from ringloop.core.loop import CoreLoop

__all__ = ["SelectorEventLoop"]

# APIs that arrive with later milestones.  Until then each raises a
# NotImplementedError that names what is missing and what to use instead,
# never AbstractEventLoop's bare one.
_PENDING = {
    "create_connection": "transports",
    "create_server": "transports",
    "create_unix_connection": "transports",
    "create_unix_server": "transports",
    "create_datagram_endpoint": "transports",
    "connect_accepted_socket": "transports",
    "sendfile": "transports",
    "start_tls": "TLS",
    "connect_read_pipe": "pipes",
    "connect_write_pipe": "pipes",
    "subprocess_exec": "subprocesses",
    "subprocess_shell": "subprocesses",
}


def _pending(name: str, feature: str):
    async def method(self, *args, **kwargs):
        raise NotImplementedError(
            f"ringloop {__version__} does not implement loop.{name}() yet "
            f"({feature} arrive in a later release); use asyncio's own event "
            f"loop (asyncio.new_event_loop()) for code that needs it"
        )

    method.__name__ = name
    method.__qualname__ = f"SelectorEventLoop.{name}"
    return method


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


for _name, _feature in _PENDING.items():
    setattr(SelectorEventLoop, _name, _pending(_name, _feature))
del _name, _feature
