"""ringloop.run(): asyncio.run() on a ringloop loop, on every supported version."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from ringloop import _messages as msg

__all__ = ["run"]

_T = TypeVar("_T")


def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None) -> _T:
    """Run a coroutine on a new ringloop loop and close it, with the cleanup
    of asyncio.run(): remaining tasks cancelled, async generators and the
    default executor shut down; Ctrl-C cancels the main task first."""
    from ringloop import new_event_loop

    if asyncio.events._get_running_loop() is not None:
        raise RuntimeError(msg.RUN_IN_RUNNING_LOOP)

    # asyncio.run() without a loop_factory makes its loop the current one
    # (asyncio.set_event_loop(), through the policy) and unsets it once the
    # loop is closed; a Runner given a loop_factory does neither.  So that
    # the policy's get_event_loop() answers as under asyncio.run(), do both.
    def factory() -> asyncio.AbstractEventLoop:
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        return loop

    try:
        if sys.version_info >= (3, 12):
            return asyncio.run(main, debug=debug, loop_factory=factory)
        # 3.11: asyncio.run() has no loop_factory, but its Runner does, and
        # asyncio.run() is "with Runner(debug=debug) as r: r.run(main)".
        with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
            return runner.run(main)
    finally:
        asyncio.set_event_loop(None)
