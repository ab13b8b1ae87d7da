"""Reference cycles through handles are collected, whatever the handle's state.

ringloop keeps loop-owned handles out of the cyclic GC while they are queued
and hands them back to it when the loop lets go; these cases pin down that
nothing the user still holds escapes the collector.
"""

import gc
import weakref

import pytest

from tests.support import run


class Holder:
    """An object that stores a handle whose callback is its own method."""

    def method(self):
        self.ran = True


def _collected(ref):
    for _ in range(3):
        gc.collect()
    return ref() is None


def test_cycle_through_run_handle_is_collected(loop):
    obj = Holder()
    obj.h = loop.call_soon(obj.method)
    ref = weakref.ref(obj)
    run(loop, _noop())
    assert obj.ran
    del obj
    assert _collected(ref)


def test_cycle_through_cancelled_timer_is_collected(loop):
    obj = Holder()
    obj.h = loop.call_later(3600, obj.method)
    obj.h.cancel()
    ref = weakref.ref(obj)
    run(loop, _noop())
    del obj
    assert _collected(ref)


def test_cycle_through_fired_timer_is_collected(loop):
    obj = Holder()
    obj.h = loop.call_later(0, obj.method)
    ref = weakref.ref(obj)

    async def wait():
        while not getattr(ref(), "ran", False):
            await _sleep0()

    run(loop, wait())
    del obj
    assert _collected(ref)


def test_cycle_through_pending_timer_collected_after_close(loop):
    obj = Holder()
    obj.h = loop.call_later(3600, obj.method)
    ref = weakref.ref(obj)
    loop.close()
    del obj
    assert _collected(ref)


def test_cycle_through_pending_callback_collected_after_close(loop):
    obj = Holder()
    obj.h = loop.call_soon(obj.method)
    ref = weakref.ref(obj)
    loop.close()
    del obj
    assert _collected(ref)


def test_kept_handle_is_tracked_after_it_ran(loop):
    h = loop.call_soon(lambda: None)
    run(loop, _noop())
    assert gc.is_tracked(h)


@pytest.mark.xfail_uvloop("uvloop's handles have no get_context()")
def test_kept_context_survives_its_handle(loop):
    import contextvars
    import sys

    if sys.version_info < (3, 12):
        pytest.skip("Handle.get_context() is 3.12+")
    var = contextvars.ContextVar("v")
    var.set("x")
    h = loop.call_soon(lambda: None)
    ctx = h.get_context()
    del h
    run(loop, _noop())
    assert ctx[var] == "x"
    assert gc.is_tracked(ctx)


async def _noop():
    await _sleep0()


async def _sleep0():
    import asyncio

    await asyncio.sleep(0)


def test_callback_freed_before_the_next_callback_runs(loop):
    class Payload:
        pass

    payload = Payload()
    ref = weakref.ref(payload)
    seen = []
    loop.call_soon(lambda p=payload: None)
    del payload
    loop.call_soon(lambda: seen.append(ref() is None))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [True]


def test_cycle_through_a_context_copy_is_collected(loop):
    # The copy of the current context made for call_soon() is kept out of
    # the GC with its handle while queued; once the loop lets go, a cycle
    # handle -> context copy -> variable value -> handle must be collectable.
    import contextvars

    var = contextvars.ContextVar("cycle")
    obj = Holder()
    ctx = contextvars.copy_context()

    def schedule():
        var.set(obj)                      # the copy made below holds obj
        obj.h = loop.call_soon(obj.method)

    ctx.run(schedule)
    ref = weakref.ref(obj)
    run(loop, _noop())
    assert obj.ran
    del obj, ctx
    assert _collected(ref)


def test_collections_while_thousands_of_copies_are_queued(loop):
    # Untracked context copies die tracked whatever path drops them: run,
    # cancelled, still queued at close(); and full collections in between
    # see a consistent heap (a copy dying untracked crashes the process).
    import contextvars

    var = contextvars.ContextVar("n")
    hits = []
    handles = []
    for i in range(5000):
        var.set(i)
        h = loop.call_soon(lambda: hits.append(var.get()))
        if i % 3 == 0:
            h.cancel()
        elif i % 3 == 1:
            handles.append(h)
        if i % 1000 == 0:
            loop.call_soon(gc.collect)
    for i in range(1000):
        loop.call_later(3600 + i, hits.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(hits) == 5000 - 1667
    assert hits == sorted(hits)
    gc.collect()
    del handles
    loop.close()
    gc.collect()


async def _echo_round_trip(loop):
    import asyncio
    import socket

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

    server = await loop.create_server(Echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping")
    assert await reader.readexactly(4) == b"ping"
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        b.setblocking(False)
        await loop.sock_sendall(a, b"x")
        assert await loop.sock_recv(b, 1) == b"x"
    assert await loop.run_in_executor(None, int, "7") == 7
    await loop.shutdown_default_executor()


@pytest.mark.parametrize("work", ["none", "io"])
def test_closed_loop_leaves_no_reference_cycles(loop_impl, work):
    # A loop that was closed (after running I/O, timers and the executor, or
    # after nothing at all) is freed by reference counting alone: none of its
    # internal objects are left in cycles for the GC (the proactor's watches
    # and their driver state were; found with tornado's circlerefs test).
    import signal
    import threading

    if not loop_impl.name.startswith("ringloop"):
        pytest.skip("asyncio's and uvloop's stream transports stay in cycles "
                    "with their protocols after close (the GC frees them)")
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        loop = loop_impl.factory()          # not loop_factory: it keeps its loops
        if work == "io":
            if threading.current_thread() is threading.main_thread():
                loop.add_signal_handler(signal.SIGUSR1, lambda: None)
            loop.call_later(3600, lambda: None)
            run(loop, _echo_round_trip(loop))
            if threading.current_thread() is threading.main_thread():
                loop.remove_signal_handler(signal.SIGUSR1)
        loop.close()
        ref = weakref.ref(loop) if _weakrefable(loop) else None
        del loop
        gc.collect()
        garbage = [o for o in gc.garbage
                   if type(o).__module__.partition(".")[0] in ("ringloop", "asyncio", "uvloop")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()
    assert garbage == []
    assert ref is None or ref() is None


def _weakrefable(obj):
    try:
        weakref.ref(obj)
    except TypeError:
        return False
    return True


UNCLOSED_LOOP_AT_EXIT_CHILD = """
import asyncio
import ringloop

class Policy(ringloop.EventLoopPolicy):  # as ringloop.install() sets, any loop
    def _loop_factory(self):
        return make_loop(sys.argv[1])

asyncio.set_event_loop_policy(Policy())
asyncio.set_event_loop(asyncio.new_event_loop())   # only the policy holds it
asyncio.get_event_loop().run_until_complete(asyncio.sleep(0.01))
print("ran")
"""


def test_unclosed_loop_is_closed_quietly_at_interpreter_exit(loop_name):
    # A loop still set for the main thread at exit (asyncio.get_event_loop()
    # style code never closes it) is closed when the interpreter frees it,
    # after module globals were cleared: nothing may be printed (it raised
    # AttributeError in _close_io before) and the process exits cleanly.
    from tests.support import run_child

    proc = run_child(UNCLOSED_LOOP_AT_EXIT_CHILD, args=(loop_name,), timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.strip() == "ran"
    assert proc.stderr == ""


def test_unclosed_loop_at_interpreter_exit_in_debug_mode(loop_name):
    # The same under -X dev (debug mode, ResourceWarnings shown): close()
    # logs in debug mode, and its logger was a module global already cleared
    # ("Exception ignored ... AttributeError: 'NoneType' object has no
    # attribute 'debug'", found with pytest-asyncio 0.21, which leaves a
    # loop set on the policy).  An "unclosed event loop" ResourceWarning
    # is what may be printed: the loop was never closed.
    from tests.support import run_child

    proc = run_child(UNCLOSED_LOOP_AT_EXIT_CHILD, args=(loop_name,), timeout=60,
                     python_args=("-X", "dev"))
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.strip() == "ran"
    assert "Exception ignored" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for line in proc.stderr.splitlines():
        assert ("ResourceWarning: unclosed event loop" in line
                or line.startswith("  ")), proc.stderr


def test_unclosed_stream_transport_warns_once(loop_impl):
    # A connected TCP transport dropped without close() (its protocol holds
    # it: a cycle) is collected by the GC: one "unclosed transport" warning,
    # not also one for its socket (found with asyncssh's suite, where
    # asyncio's loop warned once and ringloop's twice).
    import asyncio
    import warnings

    if not loop_impl.name.startswith("ringloop"):
        pytest.skip("asyncio's loop warns for the socket too when the GC happens "
                    "to finalize it before the transport (as in this test); "
                    "uvloop words its warning differently")

    class Holder(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

    async def main():
        server = await loop.create_server(Holder, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        await loop.create_connection(Holder, "127.0.0.1", port)
        await asyncio.sleep(0.05)
        server.close()
        await asyncio.sleep(0.05)

    loop = loop_impl.factory()          # closed here, before the collection
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            run(loop, main())
        finally:
            loop.close()
        for _ in range(3):
            gc.collect()
    messages = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert len(messages) == 2, messages            # client and server side
    assert all(m.startswith("unclosed transport") for m in messages), messages


@pytest.mark.parametrize("pending", ["call_soon", "call_soon_stop", "task", "sleeping_task"])
def test_loop_dropped_unclosed_with_pending_work_is_collected(loop_impl, pending):
    # A loop dropped without close() while its queue refers back to it (a
    # callback, a task not yet started, a task asleep in a timer) is a cycle:
    # asyncio's GC collects it, warns "unclosed event loop" and closes its
    # fds.  ringloop keeps queued call_soon handles out of the GC, which
    # made such a loop unreachable garbage the GC could not see (found with
    # Sanic's test fixtures: 2 fds per loop leaked, no warning).
    import asyncio
    import os
    import warnings

    if loop_impl.name == "uvloop":
        pytest.skip("uvloop does not collect such a loop either (5 fds left per loop "
                    "here, no warning)")

    async def forever():
        await asyncio.sleep(3600)

    def make():
        loop = loop_impl.factory()
        if pending == "call_soon":
            loop.call_soon(print)
        elif pending == "call_soon_stop":
            loop.call_soon(loop.stop)
        elif pending == "task":
            loop.set_exception_handler(lambda loop, ctx: None)
            loop.create_task(forever())
        else:
            loop.set_exception_handler(lambda loop, ctx: None)
            loop.create_task(forever())
            loop.run_until_complete(asyncio.sleep(0.001))
        return weakref.ref(loop) if _weakrefable(loop) else None

    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        refs = [make() for _ in range(5)]
        for _ in range(3):
            gc.collect()
        unclosed = [w for w in caught if issubclass(w.category, ResourceWarning)
                    and "unclosed event loop" in str(w.message)]
        del caught
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == before
    assert len(unclosed) == 5
    assert all(r is None or r() is None for r in refs)
