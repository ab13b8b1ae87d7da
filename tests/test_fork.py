"""os.fork() and a running loop.

Every loop: a child forked while the parent's loop runs (or sits idle) can
make and run a NEW loop from the same factory; the parent's loop keeps
working afterwards (timers, call_soon_threadsafe from a thread, add_reader);
a multiprocessing 'fork' Process can run asyncio.run-style code.

ringloop only (docs/compatibility.md: "the loop used in a forked child:
RuntimeError naming the fork"): in the child the PARENT's loop object
refuses run_until_complete/add_reader with a RuntimeError mentioning
"fork", and closing it in the child leaves the parent's loop intact.

Children always end with os._exit (never return into pytest) and report
through a pipe; the parent always reaps them.
"""

import asyncio
import json
import multiprocessing
import os
import signal
import socket
import threading
import time
import traceback

import pytest

from tests.support import TIMEOUT, run, socketpair


# ------------------------------------------------------------- helpers ----

def fork_child(body):
    """Fork; the child runs ``body()`` (returns a JSON-able value) and exits.

    Returns (pid, read fd of the report pipe).  The child writes
    ``{"ok": value}`` or ``{"error": traceback}`` there and ends with
    os._exit (status 0 or 1) whatever happens.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 1
        try:
            os.close(r)
            try:
                report = {"ok": body()}
                status = 0
            except BaseException:
                report = {"error": traceback.format_exc()}
            data = json.dumps(report).encode()
            while data:
                data = data[os.write(w, data):]
        finally:
            os._exit(status)
    os.close(w)
    return pid, r


def _collect(pid, r, status):
    try:
        chunks = []
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
    raw = b"".join(chunks)
    report = json.loads(raw) if raw else {"error": "no report"}
    assert "error" not in report, f"child failed:\n{report['error']}"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    return report["ok"]


def _kill_and_reap(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def _exit_status(pid, r, started, timeout):
    """The child's wait status if it has exited (it is reaped then), else None.

    Past ``timeout`` seconds from ``started`` (time.monotonic()) the child is
    killed and reaped, the report pipe ``r`` closed, and the test fails.
    """
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        return status
    if time.monotonic() - started > timeout:
        _kill_and_reap(pid)
        os.close(r)
        pytest.fail(f"child {pid} did not exit within {timeout} s")
    return None


def wait_child(pid, r, timeout=TIMEOUT):
    """Reap the child (blocking; bounded) and return its report."""
    started = time.monotonic()
    while (status := _exit_status(pid, r, started, timeout)) is None:
        time.sleep(0.005)
    return _collect(pid, r, status)


async def wait_child_async(pid, r, timeout=TIMEOUT):
    """Reap the child while the loop keeps running; return its report."""
    started = time.monotonic()
    while (status := _exit_status(pid, r, started, timeout)) is None:
        await asyncio.sleep(0.005)
    return _collect(pid, r, status)


async def small_workload():
    """A timer and a socketpair read on the running loop; returns what it saw."""
    loop = asyncio.get_running_loop()
    fired = loop.create_future()
    t0 = loop.time()
    loop.call_later(0.02, fired.set_result, "timer")
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        b.setblocking(False)
        loop.call_later(0.01, b.send, b"ping")
        data = await asyncio.wait_for(loop.sock_recv(a, 10), 5)
        got = [await asyncio.wait_for(fired, 5), data.decode()]
        got.append(loop.time() - t0 >= 0.015)
        return got
    finally:
        a.close()
        b.close()


def run_on_new_loop(factory, coro_fn):
    lp = factory()
    try:
        return lp.run_until_complete(asyncio.wait_for(coro_fn(), 5))
    finally:
        lp.close()


async def parent_loop_works(loop):
    """The parent's loop after a fork: timers, a thread's call_soon_threadsafe
    waking it from poll, and add_reader."""
    assert await small_workload() == ["timer", "ping", True]

    fut = loop.create_future()

    def wake():
        time.sleep(0.05)
        loop.call_soon_threadsafe(fut.set_result, time.monotonic())

    t = threading.Thread(target=wake)
    t.start()
    try:
        # No timer is due for 3 s: only the wake-up can end the poll before.
        # (A deaf loop still gets there when the wait_for timer fires, with
        # the callback queued: hence the check on the delay.)
        sent = await asyncio.wait_for(fut, 3)
        delay = time.monotonic() - sent
        assert delay < 1.0, f"call_soon_threadsafe took {delay:.2f} s to wake the loop"
    finally:
        t.join(TIMEOUT)

    with socketpair() as (a, b):
        got = loop.create_future()
        loop.add_reader(a, lambda: got.done() or got.set_result(a.recv(100)))
        try:
            b.send(b"readable")
            assert await asyncio.wait_for(got, 5) == b"readable"
        finally:
            loop.remove_reader(a)


# ----------------------------------------------------------- all loops ----

def test_fork_in_running_loop_child_uses_new_loop(loop, loop_impl):
    async def main():
        await asyncio.sleep(0.01)
        pid, r = fork_child(lambda: run_on_new_loop(loop_impl.factory, small_workload))
        assert await wait_child_async(pid, r) == ["timer", "ping", True]
        await parent_loop_works(loop)

    run(loop, main())


def test_fork_with_idle_loop_child_uses_new_loop(loop, loop_impl):
    run(loop, asyncio.sleep(0.01))
    with socketpair() as (a, b):
        loop.add_reader(a, lambda: None)  # something registered at fork time
        try:
            pid, r = fork_child(lambda: run_on_new_loop(loop_impl.factory, small_workload))
            assert wait_child(pid, r) == ["timer", "ping", True]
        finally:
            loop.remove_reader(a)
    run(loop, parent_loop_works(loop))


def test_fork_child_asyncio_runner(loop, loop_impl):
    # asyncio.run-style code in the child: a Runner with the loop factory
    def body():
        with asyncio.Runner(loop_factory=loop_impl.factory) as runner:
            return runner.run(small_workload())

    async def main():
        pid, r = fork_child(body)
        assert await wait_child_async(pid, r) == ["timer", "ping", True]
        await parent_loop_works(loop)

    run(loop, main())


def _mp_target(factory, w):
    async def amain():
        got = await small_workload()
        await asyncio.sleep(0)
        return got

    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(amain())
    os.write(w, json.dumps(result).encode())
    os.close(w)


def test_multiprocessing_fork_process(loop, loop_impl):
    ctx = multiprocessing.get_context("fork")

    async def main():
        r, w = os.pipe()
        try:
            p = ctx.Process(target=_mp_target, args=(loop_impl.factory, w))
            p.start()  # forks while this loop runs
            os.close(w)
            w = -1
            # the process's sentinel becomes readable when it ends
            ended = loop.create_future()
            loop.add_reader(p.sentinel, lambda: ended.done() or ended.set_result(None))
            try:
                await asyncio.wait_for(ended, TIMEOUT)
            finally:
                loop.remove_reader(p.sentinel)
                p.join(TIMEOUT)
                if p.exitcode is None:
                    p.kill()
                    p.join()
            assert p.exitcode == 0
            p.close()
            assert json.loads(os.read(r, 1000)) == ["timer", "ping", True]
        finally:
            os.close(r)
            if w != -1:
                os.close(w)
        await parent_loop_works(loop)

    run(loop, main())


# ------------------------------------------------------- ringloop only ----

def _refused_with_fork_message(fn):
    """Run ``fn()`` in the child: report how it failed (or that it did not)."""
    try:
        fn()
    except RuntimeError as exc:
        return {"type": "RuntimeError", "message": str(exc)}
    except BaseException as exc:
        return {"type": type(exc).__name__, "message": str(exc)}
    return {"type": None, "message": "no error"}


def _assert_fork_refusal(report):
    assert report["type"] == "RuntimeError", report
    assert "fork" in report["message"].lower(), report


@pytest.mark.ringloop_only
def test_parent_loop_refuses_run_in_forked_child(loop):
    run(loop, asyncio.sleep(0.01))
    pid, r = fork_child(lambda: _refused_with_fork_message(
        lambda: loop.run_until_complete(asyncio.sleep(0))))
    _assert_fork_refusal(wait_child(pid, r))
    run(loop, parent_loop_works(loop))


@pytest.mark.ringloop_only
def test_parent_loop_refuses_add_reader_in_forked_child_idle(loop):
    run(loop, asyncio.sleep(0.01))
    with socketpair() as (a, b):
        pid, r = fork_child(lambda: _refused_with_fork_message(
            lambda: loop.add_reader(a, lambda: None)))
        _assert_fork_refusal(wait_child(pid, r))
    run(loop, parent_loop_works(loop))


@pytest.mark.ringloop_only
def test_parent_loop_refuses_add_reader_in_child_forked_while_running(loop):
    # forked from a callback of the running loop: the child is still inside
    # the parent's run_until_complete, and must not touch its ring/poller
    async def main():
        with socketpair() as (a, b):
            pid, r = fork_child(lambda: _refused_with_fork_message(
                lambda: loop.add_reader(a, lambda: None)))
            _assert_fork_refusal(await wait_child_async(pid, r))
        await parent_loop_works(loop)

    run(loop, main())


@pytest.mark.ringloop_only
def test_close_parent_loop_in_child_leaves_parent_intact(loop):
    run(loop, asyncio.sleep(0.01))
    with socketpair() as (a, b):
        got = []
        ready = asyncio.Event()

        def on_readable():
            got.append(a.recv(100))
            ready.set()

        # registered before the fork: a child that tore it down in a shared
        # poller (epoll, io_uring) would leave the parent deaf to it
        loop.add_reader(a, on_readable)
        try:
            def body():
                try:
                    loop.close()
                except RuntimeError as exc:  # refusing is fine too
                    return "refused: " + str(exc)
                return "closed"

            pid, r = fork_child(body)
            report = wait_child(pid, r)
            assert report == "closed" or "fork" in report.lower(), report
            assert not loop.is_closed()

            async def after():
                b.send(b"after the child closed")
                await asyncio.wait_for(ready.wait(), 5)
                assert got == [b"after the child closed"]
                await parent_loop_works(loop)

            run(loop, after())
        finally:
            loop.remove_reader(a)
