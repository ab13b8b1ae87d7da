"""asyncio's own methods, run on ringloop's loops and looked up at each use.

ringloop's loops are not subclasses of ``asyncio.BaseEventLoop`` (their
compiled core replaces most of it), but the cold parts of the network and
subprocess API are asyncio's code: ``create_connection``, ``create_server``,
``create_datagram_endpoint``, ``subprocess_exec``... (see ``_network.py`` and
``_process.py``).  They are found on asyncio's Unix selector loop class
(``asyncio.SelectorEventLoop`` on POSIX, whose methods come from
``asyncio.BaseEventLoop``) every time they are used, not copied once: a
patch of ``asyncio.BaseEventLoop.create_connection`` or
``asyncio.SelectorEventLoop.create_connection`` (test suites make them)
reaches ringloop's loops as it reaches asyncio's.  The lookup is compiled
(``AsyncioMethod`` in ``core/loop.pyx``): client connections pass through
two of these per connect.
"""

from __future__ import annotations

import functools
from asyncio import unix_events as _ue
from typing import Any, Callable

from ringloop.core.loop import AsyncioMethod, asyncio_method_of

__all__ = ["OWNER", "FromAsyncio", "asyncio_method", "wraps_asyncio"]

#: the asyncio class whose methods ringloop's loops borrow
OWNER = _ue._UnixSelectorEventLoop


def FromAsyncio(name: str) -> Any:
    """A class attribute that is asyncio's method `name`, looked up on OWNER
    at each access."""
    return AsyncioMethod(OWNER, name)


def asyncio_method(obj: Any, name: str) -> Any:
    """asyncio's method `name`, found on OWNER now, bound to obj."""
    return asyncio_method_of(OWNER, name, obj)


def wraps_asyncio(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """functools.wraps with asyncio's method `name` (its signature and doc)."""
    return functools.wraps(getattr(OWNER, name))
