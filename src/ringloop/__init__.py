"""ringloop: a fast, drop-in asyncio event loop on epoll and io_uring."""

from __future__ import annotations

import sys as _sys

if _sys.version_info < (3, 11) or _sys.version_info >= (3, 14):  # pragma: no cover
    raise ImportError(
        "ringloop supports CPython 3.11-3.13, not "
        f"{_sys.version.split()[0]}; use asyncio's own event loop here."
    )
if getattr(_sys, "_is_gil_enabled", lambda: True)() is False:  # pragma: no cover
    raise ImportError(
        "ringloop does not support free-threaded CPython yet; "
        "use a standard build or asyncio's own event loop."
    )

import asyncio as _asyncio

from ringloop._version import __version__
from ringloop._loops import (
    ProactorEventLoop,
    SelectorEventLoop,
    UringUnavailable,
    new_event_loop,
)
from ringloop._policy import EventLoopPolicy, install
from ringloop._runner import run

__all__ = [
    "EventLoopPolicy",
    "Loop",
    "ProactorEventLoop",
    "SelectorEventLoop",
    "UringUnavailable",
    "__version__",
    "install",
    "new_event_loop",
    "run",
]

#: The default loop class (SelectorEventLoop until the io_uring proactor
#: proves faster on the benchmark suite).
Loop = SelectorEventLoop
