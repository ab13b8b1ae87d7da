"""The public loop classes: compiled core + asyncio.AbstractEventLoop."""

from __future__ import annotations

import asyncio
import logging
import os
import selectors
import sys
import warnings

from ringloop._network import NetworkMixin
from ringloop._process import ProcessMixin
from ringloop._version import __version__
from ringloop.core.loop import CoreLoop
from ringloop.core.proactor import ProactorCore
from ringloop.drivers.uring import UringUnavailable

__all__ = ["ProactorEventLoop", "SelectorEventLoop", "UringUnavailable", "new_event_loop"]

# APIs that arrive with later milestones.  Until then each raises a
# NotImplementedError that names what is missing and what to use instead,
# never AbstractEventLoop's bare one.
_PENDING = {
    "start_tls": "TLS",
}


def _pending(name: str, feature: str):
    async def method(self, *args, **kwargs):
        raise NotImplementedError(
            f"ringloop {__version__} does not implement loop.{name}() yet "
            f"(support for {feature} comes in a later release); use asyncio's "
            f"own event loop (asyncio.new_event_loop()) for code that needs it"
        )

    method.__name__ = name
    method.__qualname__ = f"SelectorEventLoop.{name}"
    return method


class _LoopMixin:
    """Methods shared by the public loop classes (plain Python, cold)."""

    def __del__(self, _warn=warnings.warn) -> None:
        if not self.is_closed():
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    if sys.version_info >= (3, 12):

        async def shutdown_default_executor(self, timeout: float | None = None) -> None:
            """Shut the default executor down, waiting at most timeout s."""
            await self._shutdown_default_executor(timeout)

    else:

        async def shutdown_default_executor(self) -> None:  # type: ignore[misc]
            """Shut the default executor down and wait for its threads."""
            await self._shutdown_default_executor(None)

    async def shutdown_asyncgens(self) -> None:
        """Close every asynchronous generator still open (asyncio.run and
        asyncio.Runner call it before closing the loop)."""
        await CoreLoop.shutdown_asyncgens(self)

    # asyncio's names: a coroutine left un-awaited (Runner.close() on a loop
    # closed behind its back) warns "coroutine 'BaseEventLoop.<name>' was
    # never awaited", and warnings filters match that text (pytest-asyncio
    # ignores it by that name).
    shutdown_asyncgens.__qualname__ = "BaseEventLoop.shutdown_asyncgens"
    shutdown_default_executor.__qualname__ = "BaseEventLoop.shutdown_default_executor"


class SelectorEventLoop(ProcessMixin, CoreLoop, NetworkMixin, asyncio.AbstractEventLoop):
    """Readiness-based event loop.

    ``SelectorEventLoop()`` uses the native epoll driver (or, where epoll does
    not exist or ``RINGLOOP_PORTABLE=1`` is set, ``selectors.DefaultSelector``).
    ``SelectorEventLoop(selector)`` uses the given ``selectors`` selector, as
    asyncio's SelectorEventLoop does.
    """

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        CoreLoop.__init__(self, selector)
        # asyncio logs the selector it uses; the native driver has no
        # selectors class, so its name is given as statistics() gives it
        # (built only when the message is logged).
        if asyncio.log.logger.isEnabledFor(logging.DEBUG):
            driver = self.statistics()["driver"]
            asyncio.log.logger.debug(
                "Using selector: %s",
                driver.rpartition(".")[2] if driver.startswith("selectors.")
                else f"{driver} (native)")

    def close(self) -> None:
        """Close the loop: pending callbacks are dropped, the executor is
        shut down without waiting, and the driver's resources are released.
        A running loop cannot be closed (RuntimeError)."""
        ProcessMixin.close(self)
        # A server left open lets go of its listening sockets with the loop
        # closed, as asyncio's selector does: they belong to the Server and
        # are freed (and closed) with it, not kept while the loop lives.
        self.__dict__.pop("_accepting_cores", None)

    __del__ = _LoopMixin.__del__
    shutdown_asyncgens = _LoopMixin.shutdown_asyncgens
    shutdown_default_executor = _LoopMixin.shutdown_default_executor


class ProactorEventLoop(ProcessMixin, ProactorCore, NetworkMixin, asyncio.AbstractEventLoop):
    """Completion-based event loop on io_uring (Linux).

    Socket operations (``sock_recv``, ``sock_sendall``, ``sock_accept``...)
    are io_uring operations; ``add_reader``/``add_writer`` work too (POLL_ADD),
    unlike asyncio's own proactor.  Where io_uring cannot run (old kernel,
    seccomp, ``kernel.io_uring_disabled``, RLIMIT_MEMLOCK), the constructor
    raises :class:`UringUnavailable`, which names the cause; use
    SelectorEventLoop there.

    ``entries`` and ``cq_entries`` size the ring's submission and completion
    queues (ringloop's own keywords; the kernel rounds them up to powers of
    two).  Without CAP_IPC_LOCK a ring's memory counts against the user's
    RLIMIT_MEMLOCK: ~36 KiB at the default 256/1024; where many loops must
    coexist under a low limit, smaller rings fit more of them.  A burst of
    more completions than ``cq_entries`` is not lost (the kernel keeps them
    until the loop takes them), only slower.
    """

    def __init__(self, *, entries: int = 256, cq_entries: int = 1024) -> None:
        ProactorCore.__init__(self, entries=entries, cq_entries=cq_entries)
        asyncio.log.logger.debug("Using proactor: io_uring")

    close = SelectorEventLoop.close

    __del__ = _LoopMixin.__del__
    shutdown_asyncgens = _LoopMixin.shutdown_asyncgens
    shutdown_default_executor = _LoopMixin.shutdown_default_executor


for _cls in (SelectorEventLoop, ProactorEventLoop):
    for _name, _feature in _PENDING.items():
        setattr(_cls, _name, _pending(_name, _feature))
del _cls, _name, _feature


# ---------------------------------------------------------------------------
# Choosing the default kind

KINDS = ("selector", "proactor")
#: The kind new_event_loop() makes when neither its argument nor the
#: RINGLOOP_LOOP environment variable names one.  SelectorEventLoop: the
#: benchmark suite shows it ahead on protocol transports and level on streams
#: and HTTP; the proactor wins on sock_* code (README, docs/performance.md).
DEFAULT_KIND = "selector"

_fallback_warned = False


def _resolve_kind(kind: str | None) -> str:
    if kind is None:
        kind = os.environ.get("RINGLOOP_LOOP", "").strip().lower() or DEFAULT_KIND
    if kind not in KINDS:
        raise ValueError(
            f"unknown ringloop loop kind {kind!r}: use one of {', '.join(KINDS)}"
        )
    return kind


def new_event_loop(kind: str | None = None) -> asyncio.AbstractEventLoop:
    """Return a new ringloop event loop (usable as an asyncio loop_factory).

    ``kind`` is "selector" or "proactor"; by default the RINGLOOP_LOOP
    environment variable, else SelectorEventLoop.  When the proactor is asked
    for this way and io_uring cannot run here, the loop is a
    SelectorEventLoop instead: one RuntimeWarning per process names the cause,
    and ``loop.statistics()["fallback"]`` says so.  (Construct
    ``ProactorEventLoop()`` directly to get the error instead.)
    """
    global _fallback_warned
    if _resolve_kind(kind) == "selector":
        return SelectorEventLoop()
    try:
        return ProactorEventLoop()
    except UringUnavailable as exc:
        reason = f"io_uring unavailable, using epoll: {exc}"
        if not _fallback_warned:
            _fallback_warned = True
            warnings.warn(
                f"ringloop: ProactorEventLoop cannot run here ({exc}); "
                "using SelectorEventLoop (epoll) instead",
                RuntimeWarning,
                stacklevel=2,
            )
        loop = SelectorEventLoop()
        loop._fallback_reason = reason
        return loop
