"""Error messages shared with asyncio, kept in one place so they cannot drift."""

import sys

LOOP_CLOSED = "Event loop is closed"
LOOP_RUNNING = "This event loop is already running"
OTHER_LOOP_RUNNING = "Cannot run the event loop while another loop is running"
CLOSE_RUNNING = "Cannot close a running event loop"
STOPPED_BEFORE_DONE = "Event loop stopped before Future completed."
NOT_THREADSAFE = (
    "Non-thread-safe operation invoked on an event loop other than the current one"
)
EXECUTOR_SHUTDOWN = "Executor shutdown has been called"
RUN_IN_RUNNING_LOOP = "asyncio.run() cannot be called from a running event loop"


def forked(owner_pid: int, pid: int) -> str:
    """ringloop's own: a loop used in a child made by os.fork()."""
    return (
        f"this event loop belongs to process {owner_pid} and cannot be used in "
        f"process {pid}, a child made by os.fork() (what it polls with, an epoll "
        f"set, io_uring ring or selector, is shared with the parent): create a new "
        f"event loop in the child "
        f"(asyncio.new_event_loop(), ringloop.new_event_loop() or asyncio.run())"
    )


def reraise_holding(*held: object) -> None:
    """Re-raise the exception being handled from a Python frame that holds
    ``held`` (called from an ``except`` block of compiled code).

    asyncio's ``create_task(coro)`` and ``run_until_complete(coro)`` raise
    from a Python frame whose locals hold the coroutine, so the exception's
    traceback keeps it alive while the error propagates: its "coroutine ...
    was never awaited" warning comes when the caller lets go of the error,
    not at the call.  A compiled method's traceback entry has no locals;
    this frame stands in for it.  (``raise`` alone would not put this frame
    in the traceback.)
    """
    raise sys.exc_info()[1]


def closed_holding(*held: object) -> None:
    """Raise asyncio's "Event loop is closed" from a Python frame that holds
    ``held`` (see ``reraise_holding``)."""
    raise RuntimeError(LOOP_CLOSED)
