"""Threads: call_soon_threadsafe wakeups, executors, async generator shutdown."""

import asyncio
import concurrent.futures
import gc
import os
import sys
import threading
import time
import warnings

import pytest

from tests.support import TIMEOUT, run


def test_call_soon_threadsafe_wakes_blocked_loop(loop):
    # The loop has nothing to do but a timer an hour away: only the
    # threadsafe wakeup can make it run the callback.
    far = loop.call_later(3600, lambda: None)
    fut = loop.create_future()

    def worker():
        time.sleep(0.05)  # let the loop block in its poll
        loop.call_soon_threadsafe(fut.set_result, threading.get_ident())

    t = threading.Thread(target=worker)
    t.start()
    try:
        tid = run(loop, fut)
    finally:
        t.join(TIMEOUT)
        far.cancel()
    assert tid == t.ident


def test_call_soon_threadsafe_repeated_wakeups(loop):
    # Many separate wakeups of a blocked loop (the wakeup must re-arm).
    far = loop.call_later(3600, lambda: None)
    got = []

    async def main():
        for i in range(50):
            fut = loop.create_future()
            t = threading.Thread(target=loop.call_soon_threadsafe,
                                 args=(fut.set_result, i))
            t.start()
            got.append(await fut)
            t.join()

    run(loop, main(), timeout=30)
    far.cancel()
    assert got == list(range(50))


def test_call_soon_threadsafe_many_threads_fifo_per_thread(loop):
    nthreads, per_thread = 4, 500
    seen = {i: [] for i in range(nthreads)}
    done = loop.create_future()
    remaining = [nthreads * per_thread]

    def record(tid, n):
        seen[tid].append(n)
        remaining[0] -= 1
        if remaining[0] == 0:
            done.set_result(None)

    barrier = threading.Barrier(nthreads)

    def worker(tid):
        barrier.wait()
        for n in range(per_thread):
            loop.call_soon_threadsafe(record, tid, n)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(nthreads)]
    for t in threads:
        t.start()
    try:
        run(loop, done, timeout=30)
    finally:
        for t in threads:
            t.join(TIMEOUT)
    for tid in range(nthreads):
        assert seen[tid] == list(range(per_thread))


def test_call_soon_threadsafe_returns_cancellable_handle(loop):
    calls = []
    h = loop.call_soon_threadsafe(calls.append, 1)
    assert isinstance(repr(h), str)
    h.cancel()
    assert h.cancelled()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == []


def test_run_in_executor_default(loop):
    def work(a, b):
        return a + b, threading.get_ident()

    result, tid = run(loop, loop.run_in_executor(None, work, 2, 3))
    assert result == 5
    assert tid != threading.get_ident()


def test_run_in_executor_exception(loop):
    def work():
        raise KeyError("k")

    with pytest.raises(KeyError):
        run(loop, loop.run_in_executor(None, work))


def test_run_in_executor_returns_asyncio_future(loop):
    async def main():
        f = loop.run_in_executor(None, lambda: 1)
        assert isinstance(f, asyncio.Future)
        assert f.get_loop() is loop
        return await f

    assert run(loop, main()) == 1


def test_run_in_executor_custom_executor(loop):
    with concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="custom-ex") as ex:
        name = run(loop, loop.run_in_executor(ex, lambda: threading.current_thread().name))
    assert name.startswith("custom-ex")


def test_to_thread(loop):
    async def main():
        return await asyncio.to_thread(lambda x: x * 2, 21)

    assert run(loop, main()) == 42


@pytest.fixture
def long_switch_interval():
    # A thread waiting for the GIL forces a switch only after the switch
    # interval: make that 2 s, so that a loop which never lets go of the GIL
    # while busy starves its worker threads for seconds, not milliseconds.
    old = sys.getswitchinterval()
    sys.setswitchinterval(2.0)
    yield
    sys.setswitchinterval(old)


def test_executor_jobs_progress_while_callbacks_keep_the_loop_busy(
        loop, long_switch_interval):
    # A task yielding with sleep(0) keeps callbacks ready, so no poll blocks;
    # the loop must still hand the GIL to the worker threads every iteration
    # (as asyncio's select() does), not only at the switch interval.
    async def main():
        done = 0
        deadline = time.monotonic() + 10

        async def jobs():
            nonlocal done
            while done < 20 and time.monotonic() < deadline:
                await loop.run_in_executor(None, sum, range(100))
                done += 1

        async def spinner(job):
            while not job.done():
                await asyncio.sleep(0)

        job = asyncio.ensure_future(jobs())
        await asyncio.gather(job, spinner(job))
        return done, time.monotonic() - (deadline - 10)

    done, took = run(loop, main(), timeout=30)
    # Starved, each job would wait the whole 2 s interval for the GIL.
    assert done == 20 and took < 8, (done, took)


def test_woken_thread_gets_the_gil_while_the_loop_is_busy(
        loop, long_switch_interval):
    # A plain thread blocked on a lock is released by the loop, then needs
    # the GIL to run: it must get it while the loop spins.
    async def main():
        waits = []
        for _ in range(5):
            ready, go, woke = (threading.Event() for _ in range(3))

            def worker():
                ready.set()
                go.wait()
                woke.set()

            t = threading.Thread(target=worker)
            t.start()
            ready.wait(TIMEOUT)
            t0 = time.monotonic()
            go.set()
            while not woke.is_set() and time.monotonic() - t0 < 10:
                await asyncio.sleep(0)
            waits.append(time.monotonic() - t0)
            t.join(TIMEOUT)
        return waits

    waits = run(loop, main(), timeout=60)
    assert max(waits) < 1.5, waits


def test_busy_loop_keeps_running_beside_a_cpu_bound_thread(loop):
    # The other side of the hand-off: a thread that always wants the GIL
    # must not get it for a whole switch interval at every iteration (a
    # hand-off that yields the CPU, or waits for the other thread to take
    # the GIL, makes each iteration cost one interval).  asyncio runs
    # tens of thousands of iterations a second here.
    stop = threading.Event()

    def burner():
        while not stop.is_set():
            sum(range(100))

    async def main():
        t0 = time.monotonic()
        n = 0
        while n < 1000 and time.monotonic() - t0 < 20:
            await asyncio.sleep(0)
            n += 1
        return n, time.monotonic() - t0

    # On one CPU (the thread inherits it), so that a hand-off that yields
    # the CPU always hands it to the burner.
    old_cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(old_cpus)})
    try:
        t = threading.Thread(target=burner)
        t.start()
        try:
            n, took = run(loop, main(), timeout=60)
        finally:
            stop.set()
            t.join(TIMEOUT)
    finally:
        os.sched_setaffinity(0, old_cpus)
    # 1,000 switch intervals would be 5 s.
    assert n == 1000 and took < 4, (n, took)


@pytest.mark.xfail_uvloop("a producer thread outruns the loop: timers fire "
                          "late and the backlog grows")
@pytest.mark.parametrize("producers", [1, 4])
def test_threadsafe_producer_is_paced_to_the_loop(loop, producers):
    # A thread feeding a task through call_soon_threadsafe(queue.put_nowait)
    # as fast as it can (a queue bridge).  asyncio's self-pipe write
    # releases the GIL at every call, which paces the producer; a loop that
    # lets it keep the GIL for whole switch intervals falls behind without
    # bound: its backlog grows by hundreds of thousands of callbacks a
    # second and a 10 ms timer fires seconds late.
    stop = threading.Event()
    lock = threading.Lock()
    produced = [0]
    consumed = 0

    async def main():
        q = asyncio.Queue()

        def producer():
            n = 0
            while not stop.is_set():
                loop.call_soon_threadsafe(q.put_nowait, n)
                n += 1
            with lock:
                produced[0] += n

        async def consumer():
            nonlocal consumed
            while True:
                await q.get()
                consumed += 1

        c = asyncio.ensure_future(consumer())
        threads = [threading.Thread(target=producer) for _ in range(producers)]
        for t in threads:
            t.start()
        worst = 0.0
        try:
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                t0 = time.monotonic()
                await asyncio.sleep(0.01)
                worst = max(worst, time.monotonic() - t0 - 0.01)
        finally:
            stop.set()
            for t in threads:
                t.join(TIMEOUT)
        backlog = produced[0] - consumed
        while consumed < produced[0]:
            await asyncio.sleep(0.01)
        c.cancel()
        return worst, backlog

    worst, backlog = run(loop, main(), timeout=60)
    # Measured (1.5 s, 4 producers): ringloop 1-6 ms, asyncio 7-20 ms; a
    # loop that only paces producers once it is busy (not while it is
    # waking from a blocking poll): 0.2-0.7 s.
    assert worst < 0.2 and backlog < 100_000, (worst, backlog)


def test_threadsafe_producer_is_not_paced_while_the_loop_is_blocked(loop):
    # The loop's thread sits in a callback that blocks without the GIL (a
    # synchronous client, a join) while another thread queues far more
    # than the pacing threshold: pacing cannot help the loop then, and must
    # not cost each call a wait (a reviewer measured 0.3-0.9 ms per call:
    # 15-45 s for these 50,000; ~25 ms now).  The callback waits for the
    # producer, bounded.
    n = 50_000
    done = threading.Event()
    ran = []

    def produce():
        for i in range(n):
            loop.call_soon_threadsafe(ran.append, i)
        done.set()

    def blocking_callback():
        t = threading.Thread(target=produce)
        t.start()
        finished = done.wait(5)
        t.join(TIMEOUT)
        results.append(finished)

    results = []

    async def main():
        loop.call_soon(blocking_callback)
        while len(ran) < n and not (results and not results[0]):
            await asyncio.sleep(0.01)

    run(loop, main(), timeout=60)
    assert results == [True], "the producer was held up while the loop was blocked"
    assert ran == list(range(n))


def test_set_default_executor(loop):
    ex = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dflt-ex")
    try:
        loop.set_default_executor(ex)
        name = run(loop, loop.run_in_executor(None, lambda: threading.current_thread().name))
        assert name.startswith("dflt-ex")
    finally:
        ex.shutdown(wait=True)


@pytest.mark.xfail_uvloop("accepts any concurrent.futures.Executor")
def test_set_default_executor_rejects_non_thread_pool(loop):
    class MyExecutor(concurrent.futures.Executor):
        pass

    with pytest.raises(TypeError, match="executor must be ThreadPoolExecutor instance"):
        loop.set_default_executor(MyExecutor())
    with pytest.raises(TypeError, match="executor must be ThreadPoolExecutor instance"):
        loop.set_default_executor(None)


def test_shutdown_default_executor(loop):
    async def main():
        name = await loop.run_in_executor(None, lambda: threading.current_thread())
        await loop.shutdown_default_executor()
        return name

    worker = run(loop, main())
    # shutdown waited for the pool's threads
    worker.join(TIMEOUT)
    assert not worker.is_alive()
    with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
        loop.run_in_executor(None, lambda: None)


def test_shutdown_default_executor_without_executor(loop):
    run(loop, loop.shutdown_default_executor())
    with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
        loop.run_in_executor(None, lambda: None)


def test_shutdown_default_executor_custom_still_allowed(loop):
    run(loop, loop.shutdown_default_executor())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as ex:
        assert run(loop, loop.run_in_executor(ex, lambda: 9)) == 9


@pytest.mark.skipif(sys.version_info < (3, 12), reason="timeout= is 3.12+")
def test_shutdown_default_executor_timeout_param(loop):
    async def main():
        await loop.run_in_executor(None, lambda: None)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            await loop.shutdown_default_executor(timeout=TIMEOUT)

    run(loop, main())


@pytest.mark.xfail_uvloop("the timeout cancels the wait instead of warning")
@pytest.mark.skipif(sys.version_info < (3, 13),
                    reason="before 3.13 the timeout does not bound a blocked worker")
def test_shutdown_default_executor_timeout_expires(loop):
    release = threading.Event()

    async def main():
        started = threading.Event()

        def blocked():
            started.set()
            release.wait(TIMEOUT)

        fut = loop.run_in_executor(None, blocked)
        while not started.is_set():
            await asyncio.sleep(0.001)
        with pytest.warns(RuntimeWarning,
                          match="The executor did not finishing joining its threads "
                                "within 0.05 seconds."):
            await loop.shutdown_default_executor(timeout=0.05)
        release.set()
        await fut

    try:
        run(loop, main())
    finally:
        release.set()


# What shutdown_default_executor(timeout=) bounds in the running asyncio: the
# wait for the executor's jobs (3.13, and 3.12 from gh-111358's fix) or only
# the join of its threads after they finished (3.12.0-3.12.2).
_TIMEOUT_BOUNDS_WAIT = ("timeouts" in asyncio.base_events.BaseEventLoop
                        .shutdown_default_executor.__code__.co_names)


@pytest.mark.xfail_uvloop("the timeout cancels the wait instead of warning",
                          condition=_TIMEOUT_BOUNDS_WAIT)
@pytest.mark.skipif(sys.version_info < (3, 12), reason="timeout= is 3.12+")
def test_shutdown_default_executor_timeout_as_the_running_asyncio(loop):
    # What the timeout bounds follows the running asyncio (above).  The
    # warning points at the caller's line, as asyncio's does.
    bounds_wait = _TIMEOUT_BOUNDS_WAIT
    done = threading.Event()

    def job():
        time.sleep(0.3)
        done.set()

    async def main():
        fut = loop.run_in_executor(None, job)
        await asyncio.sleep(0.02)
        t0 = time.monotonic()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            await loop.shutdown_default_executor(timeout=0.05); line = sys._getframe().f_lineno
        took = time.monotonic() - t0
        caught = [w for w in caught if issubclass(w.category, RuntimeWarning)]
        if bounds_wait:
            assert took < 0.25 and not done.is_set()
            assert [str(w.message) for w in caught] == [
                "The executor did not finishing joining its threads within 0.05 seconds."]
            assert (caught[0].filename, caught[0].lineno) == (__file__, line)
        else:
            assert took >= 0.2 and done.is_set()
            assert caught == []
        await fut

    run(loop, main())


def test_close_does_not_wait_for_executor(loop):
    release = threading.Event()
    try:
        async def main():
            loop.run_in_executor(None, release.wait, TIMEOUT)
            await asyncio.sleep(0.01)

        run(loop, main())
        t0 = time.monotonic()
        loop.close()
        # close() shuts the executor down without waiting (asyncio does
        # shutdown(wait=False)); the blocked worker is released below.
        assert time.monotonic() - t0 < TIMEOUT / 2
    finally:
        release.set()


def test_shutdown_asyncgens(loop):
    events = []

    async def agen():
        try:
            for i in range(10):
                yield i
        finally:
            events.append("finalized")

    async def main():
        g = agen()
        assert await g.__anext__() == 0
        return g

    g = loop.run_until_complete(main())
    assert events == []
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert events == ["finalized"]
    del g


@pytest.mark.xfail_uvloop("its coroutines are named Loop.shutdown_asyncgens...")
def test_unawaited_shutdown_coroutines_warn_under_asyncios_names(loop):
    # asyncio.Runner.close() on a loop closed behind its back leaves
    # shutdown_asyncgens() un-awaited; pytest-asyncio silences the warning
    # with a filter on asyncio's name, which must match here too.
    names = ["shutdown_asyncgens", "shutdown_default_executor"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings(
            "ignore", ".*BaseEventLoop.shutdown_asyncgens.*", RuntimeWarning)
        qualnames = []
        for name in names:
            coro = getattr(loop, name)()
            qualnames.append(coro.__qualname__)
            del coro
            gc.collect()
    assert qualnames == [f"BaseEventLoop.{name}" for name in names]
    left = [str(w.message) for w in caught]
    assert left == ["coroutine 'BaseEventLoop.shutdown_default_executor' "
                    "was never awaited"], left


def test_shutdown_asyncgens_error_is_reported(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def agen():
        try:
            yield 1
        finally:
            raise ValueError("in finally")

    async def main():
        g = agen()
        await g.__anext__()
        return g

    g = loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert len(contexts) == 1
    assert "an error occurred during closing of asynchronous generator" in contexts[0]["message"]
    assert isinstance(contexts[0]["exception"], ValueError)
    assert contexts[0]["asyncgen"] is g


def test_asyncgen_finalized_when_collected_while_running(loop):
    events = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            events.append(asyncio.get_running_loop())

    async def main():
        g = agen()
        await g.__anext__()
        del g
        gc.collect()
        for _ in range(10):
            await asyncio.sleep(0)
            if events:
                break

    run(loop, main())
    assert events == [loop]


def test_asyncgen_first_iter_after_shutdown_warns(loop):
    async def agen():
        yield 1

    loop.run_until_complete(loop.shutdown_asyncgens())

    async def main():
        g = agen()
        with pytest.warns(ResourceWarning, match="was scheduled after loop.shutdown_asyncgens"):
            await g.__anext__()
        await g.aclose()

    run(loop, main())


def test_call_soon_threadsafe_racing_close(loop_factory):
    # A thread keeps scheduling while the loop runs, stops and closes: every
    # call either schedules or raises 'Event loop is closed'; nothing else.
    lp = loop_factory()
    errors = []
    stop = threading.Event()
    calls = [0]

    def hammer():
        while not stop.is_set():
            try:
                lp.call_soon_threadsafe(lambda: None)
                calls[0] += 1
            except RuntimeError as exc:
                if str(exc) != "Event loop is closed":
                    errors.append(exc)
                return
            except BaseException as exc:
                errors.append(exc)
                return

    t = threading.Thread(target=hammer)
    t.start()
    try:
        run(lp, asyncio.sleep(0.05))
        lp.close()
        t.join(TIMEOUT)
    finally:
        stop.set()
        t.join(TIMEOUT)
        lp.close()
    assert not t.is_alive()
    assert errors == []
    assert calls[0] > 0
