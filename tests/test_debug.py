"""Debug mode: switches, environment, slow callbacks, thread checks, origin tracking."""

import asyncio
import gc
import logging
import re
import sys
import threading
import time
import warnings

import pytest

from tests.support import run, run_child


def test_set_get_debug(loop):
    assert loop.get_debug() is False
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.set_debug(False)
    assert loop.get_debug() is False


def test_slow_callback_duration_default_and_settable(loop):
    assert loop.slow_callback_duration == 0.1
    loop.slow_callback_duration = 0.5
    assert loop.slow_callback_duration == 0.5


DEBUG_CHILD = """
name = sys.argv[1]
lp = make_loop(name)
try:
    print("debug=%s" % lp.get_debug())
finally:
    lp.close()
"""


@pytest.mark.parametrize(
    "env, pyargs, expected",
    [
        ({}, (), False),
        ({"PYTHONASYNCIODEBUG": "1"}, (), True),
        ({}, ("-X", "dev"), True),
        ({"PYTHONDEVMODE": "1"}, (), True),
        # -E: the environment variable is ignored, as asyncio does
        ({"PYTHONASYNCIODEBUG": "1"}, ("-E",), False),
    ],
    ids=["default", "PYTHONASYNCIODEBUG", "X-dev", "PYTHONDEVMODE", "E-ignores-env"],
)
def test_debug_from_environment(loop_name, env, pyargs, expected):
    proc = run_child(DEBUG_CHILD, args=(loop_name,), env=env, python_args=pyargs)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"debug={expected}"


def test_slow_callback_warning(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01

    def slow():
        time.sleep(0.05)

    def fast():
        pass

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.call_soon(slow)
        loop.call_soon(fast)
        loop.call_soon(loop.stop)
        loop.run_forever()
    msgs = [r.getMessage() for r in caplog.records
            if r.name == "asyncio" and r.levelno == logging.WARNING]
    slow_msgs = [m for m in msgs if re.match(r"Executing .* took \d+\.\d{3} seconds$", m)]
    assert len(slow_msgs) == 1, msgs
    assert "slow" in slow_msgs[0]
    took = float(re.search(r"took (\d+\.\d+) seconds", slow_msgs[0]).group(1))
    assert took >= 0.04


def test_no_slow_callback_warning_without_debug(loop, caplog):
    loop.slow_callback_duration = 0.001
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop.call_soon(time.sleep, 0.01)
        loop.call_soon(loop.stop)
        loop.run_forever()
    assert not [r for r in caplog.records if "Executing" in r.getMessage()]


def test_slow_task_step_warning(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01

    async def slow_coro():
        time.sleep(0.03)

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_until_complete(slow_coro())
    msgs = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert any(re.match(r"Executing <Task.*slow_coro.* took \d+\.\d{3} seconds", m, re.S)
               for m in msgs), msgs


@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at"])
def test_non_thread_safe_call_from_other_thread_in_debug(loop, method):
    loop.set_debug(True)
    errors = []
    done = threading.Event()

    def other_thread():
        try:
            if method == "call_soon":
                h = loop.call_soon(lambda: None)
            elif method == "call_later":
                h = loop.call_later(1, lambda: None)
            else:
                h = loop.call_at(loop.time() + 1, lambda: None)
            h.cancel()
            errors.append(None)
        except RuntimeError as exc:
            errors.append(str(exc))
        finally:
            loop.call_soon_threadsafe(done.set)

    async def main():
        t = threading.Thread(target=other_thread)
        t.start()
        while not done.is_set():
            await asyncio.sleep(0.001)
        t.join()

    run(loop, main())
    assert errors == ["Non-thread-safe operation invoked on an event loop "
                      "other than the current one"]


def test_call_from_other_thread_allowed_when_not_running(loop):
    loop.set_debug(True)
    handles = []
    t = threading.Thread(target=lambda: handles.append(loop.call_soon(lambda: None)))
    t.start()
    t.join()
    assert len(handles) == 1
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_call_soon_threadsafe_from_other_thread_in_debug(loop):
    loop.set_debug(True)
    got = []

    async def main():
        fut = loop.create_future()
        t = threading.Thread(target=lambda: loop.call_soon_threadsafe(fut.set_result, "ok"))
        t.start()
        got.append(await fut)
        t.join()

    run(loop, main())
    assert got == ["ok"]


def test_coroutine_origin_tracking_in_debug(loop):
    before = sys.get_coroutine_origin_tracking_depth()
    loop.set_debug(True)
    seen = []

    async def main():
        seen.append(sys.get_coroutine_origin_tracking_depth())

    loop.run_until_complete(main())
    assert seen[0] > 0
    assert sys.get_coroutine_origin_tracking_depth() == before


def test_no_origin_tracking_without_debug(loop):
    seen = []

    async def main():
        seen.append(sys.get_coroutine_origin_tracking_depth())

    loop.run_until_complete(main())
    assert seen == [sys.get_coroutine_origin_tracking_depth()]


def test_never_awaited_coroutine_warning_in_debug(loop):
    loop.set_debug(True)

    async def never():
        pass

    async def main():
        never()  # created, never awaited
        gc.collect()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop.run_until_complete(main())
        gc.collect()
    msgs = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    matching = [m for m in msgs if "coroutine" in m and "never" in m and "was never awaited" in m]
    assert matching, msgs
    # debug mode records where the coroutine was created
    assert any("Coroutine created at" in m for m in matching), matching


def test_debug_handle_repr_has_origin(loop):
    loop.set_debug(True)
    h = loop.call_soon(lambda: None)
    assert "created at" in repr(h)
    h.cancel()


def test_debug_exception_context_has_source_traceback(loop, caplog):
    loop.set_debug(True)
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def bad():
        raise ValueError("x")

    loop.call_soon(bad)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(contexts) == 1
    tb = contexts[0].get("source_traceback")
    assert tb, contexts[0]
    # the frames name this test as the place the callback was scheduled
    assert any("test_debug_exception_context_has_source_traceback" in str(f) for f in tb)


def test_debug_reader_and_signal_handles_record_their_origin(loop):
    # add_reader()'s and add_signal_handler()'s handles, like call_soon()'s,
    # record where they were made in debug mode: their repr says "created
    # at", an error in their callback carries the source traceback.
    import os
    import signal
    loop.set_debug(True)
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    r, w = os.pipe()

    def bad_reader():
        os.read(r, 1)
        raise ValueError("reader")

    def bad_signal():
        raise ValueError("signal")

    async def main():
        loop.add_reader(r, bad_reader)
        loop.add_signal_handler(signal.SIGUSR1, bad_signal)
        os.write(w, b"x")
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(50):
            if len(contexts) >= 2:
                break
            await asyncio.sleep(0.01)
        loop.remove_reader(r)
        loop.remove_signal_handler(signal.SIGUSR1)

    try:
        run(loop, main())
    finally:
        os.close(r)
        os.close(w)
    assert sorted(str(c["exception"]) for c in contexts) == ["reader", "signal"]
    for ctx in contexts:
        assert "created at" in repr(ctx["handle"]), ctx
        tb = ctx.get("source_traceback")
        assert tb and any("main" == f.name for f in tb), ctx


@pytest.mark.xfail_uvloop("its log has no handle_traceback")
def test_debug_transport_read_error_log_says_where_its_handle_was_made(loop, caplog):
    # A protocol error in data_received, reported by the default handler in
    # debug mode: asyncio adds the I/O handle's origin (handle_traceback).
    import socket

    class Bad(asyncio.Protocol):
        def data_received(self, data):
            raise ValueError("protocol")

    async def main():
        loop.set_debug(True)
        a, b = socket.socketpair()
        try:
            tr, _ = await loop.connect_accepted_socket(Bad, a)
            b.sendall(b"x")
            for _ in range(50):
                if tr.is_closing():
                    break
                await asyncio.sleep(0.01)
            tr.close()
        finally:
            b.close()

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        run(loop, main())
    logged = [r.getMessage() for r in caplog.records if "data_received" in r.getMessage()]
    assert logged and "handle_traceback: Handle created at" in logged[0], logged


def test_set_debug_while_running_enables_tracking(loop):
    seen = []

    async def main():
        seen.append(sys.get_coroutine_origin_tracking_depth())
        loop.set_debug(True)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        seen.append(sys.get_coroutine_origin_tracking_depth())

    before = sys.get_coroutine_origin_tracking_depth()
    loop.run_until_complete(main())
    assert seen[0] == before
    assert seen[1] > 0
    assert sys.get_coroutine_origin_tracking_depth() == before


ASYNCGEN_FINALIZER_CHILD = """
import asyncio
name = sys.argv[1]
lp = make_loop(name)
lp.set_debug(True)
try:
    async def agen():
        yield 1

    async def inner():
        g = agen()
        await g.__anext__()     # left unfinished: finalized when inner ends

    async def main():
        await asyncio.gather(*[inner() for _ in range(100)])

    lp.run_until_complete(main())
    lp.run_until_complete(lp.shutdown_asyncgens())
    print("ok")
finally:
    lp.close()
"""


@pytest.mark.xfail_uvloop("uvloop walks the dying frame too (a crash on 3.12, errors on 3.13)",
                          condition=sys.version_info >= (3, 12))
def test_debug_call_soon_from_a_finalizing_frame(loop_name):
    # The loop's async-generator finalizer calls call_soon_threadsafe from C
    # while a coroutine's frame is being torn down.  In debug mode the
    # handle's origin is the stack of complete frames (3.12 crashed, 3.13
    # printed errors when the dying frame was walked).
    proc = run_child(ASYNCGEN_FINALIZER_CHILD, args=(loop_name,), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "ok"
    assert "Exception ignored" not in proc.stderr, proc.stderr


@pytest.mark.xfail_uvloop("uvloop logs nothing when a loop is created")
def test_loop_creation_logs_its_selector(loop_factory, loop_impl, caplog):
    # asyncio logs "Using selector: EpollSelector" (DEBUG) for each new loop.
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop_factory().close()
    messages = [r.getMessage() for r in caplog.records]
    prefix = "Using proactor: " if "proactor" in loop_impl.name else "Using selector: "
    assert any(m.startswith(prefix) for m in messages), messages


PENDING_TASK_AT_EXIT_CHILD = """
import asyncio, threading, time, types
lp = make_loop(sys.argv[1])
# A module kept alive past the first shutdown GC passes (tornado keeps its
# pending tasks in a class attribute of tornado.ioloop this way).
keeper = types.ModuleType("keeper")
exec("class Keeper:\\n    pending = set()\\n", keeper.__dict__)
sys.modules["keeper"] = keeper
threading.Thread(target=lambda mod: time.sleep(1000), args=(keeper,), daemon=True).start()

async def f():
    await asyncio.sleep(0.01)
    lp.stop()
    await asyncio.sleep(10)      # never finishes: the task stays pending

t = lp.create_task(f())
keeper.Keeper.pending.add(t)
del t, keeper
lp.run_forever()
lp.close()
print("closed")
"""


def test_pending_task_collected_at_interpreter_exit(loop_name):
    # The task is collected by the interpreter's last GC passes, when
    # _asyncio's repr function may be freed: the loop's exception handler
    # ("Task was destroyed but it is pending!") must not crash there
    # (ringloop did on 3.11, SIGSEGV; found with tornado's suite).
    proc = run_child(PENDING_TASK_AT_EXIT_CHILD, args=(loop_name,), timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.strip().splitlines()[-1] == "closed"
