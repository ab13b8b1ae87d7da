"""Error messages shared with asyncio, kept in one place so they cannot drift."""

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
