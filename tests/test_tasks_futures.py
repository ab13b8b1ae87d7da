"""create_future / create_task / task factories / running-loop accessors."""

import asyncio
import contextvars
import gc
import sys

import pytest

from tests.support import run

var = contextvars.ContextVar("var", default="unset")


def test_create_future(loop):
    fut = loop.create_future()
    assert isinstance(fut, asyncio.Future)
    assert fut.get_loop() is loop
    assert not fut.done()
    loop.call_soon(fut.set_result, 7)
    assert loop.run_until_complete(fut) == 7


def test_futures_and_tasks_made_before_during_and_after_running(loop):
    # Futures and tasks are asyncio's own types, bound to the loop, whether
    # the loop is idle, running (ringloop then reuses one keyword dict for
    # loop=) or closed.
    made = [("idle", loop.create_future())]

    async def main():
        made.append(("running", loop.create_future()))
        made.append(("running", asyncio.get_running_loop().create_future()))
        task = loop.create_task(asyncio.sleep(0, "t"))
        assert type(task) is asyncio.Task and task.get_loop() is loop
        return await task

    assert loop.run_until_complete(main()) == "t"
    made.append(("stopped", loop.create_future()))
    loop.close()
    made.append(("closed", loop.create_future()))
    for when, fut in made:
        assert type(fut) is asyncio.Future, when
        assert fut.get_loop() is loop, when
    for when, fut in made:
        fut.set_result(when)
        assert fut.result() == when


@pytest.mark.ringloop_only
def test_loop_that_made_futures_is_freed_by_reference_counting(loop_name):
    # The keyword dict ({'loop': loop}) a running loop keeps for its futures
    # and tasks is dropped when the run ends: a closed loop goes with its
    # last reference, not at the next cyclic collection.
    import weakref

    from tests.conftest import make_loop

    lp = make_loop(loop_name)

    async def main(loop):
        fut = loop.create_future()
        loop.call_soon(fut.set_result, 1)
        await fut
        await loop.create_task(asyncio.sleep(0))

    lp.run_until_complete(main(lp))
    lp.close()
    ref = weakref.ref(lp)
    gc.disable()
    try:
        del lp
        assert ref() is None
    finally:
        gc.enable()


def test_future_done_callbacks_run_via_loop(loop):
    fut = loop.create_future()
    calls = []
    fut.add_done_callback(lambda f: calls.append(("cb", f.result())))
    fut.set_result(1)
    assert calls == []  # callbacks are scheduled, not run inline
    run(loop, asyncio.sleep(0))
    assert calls == [("cb", 1)]


def test_future_done_callback_context(loop):
    fut = loop.create_future()
    ctx = contextvars.copy_context()
    ctx.run(var.set, "ctx")
    seen = []
    fut.add_done_callback(lambda f: seen.append(var.get()), context=ctx)
    fut.set_result(None)
    run(loop, asyncio.sleep(0))
    assert seen == ["ctx"]


def test_create_task_basic(loop):
    async def coro():
        await asyncio.sleep(0)
        return "r"

    task = loop.create_task(coro())
    assert isinstance(task, asyncio.Task)
    assert task.get_loop() is loop
    assert loop.run_until_complete(task) == "r"


def test_create_task_name(loop):
    async def coro():
        return asyncio.current_task().get_name()

    task = loop.create_task(coro(), name="my-task")
    assert task.get_name() == "my-task"
    assert loop.run_until_complete(task) == "my-task"
    t2 = loop.create_task(coro())
    assert t2.get_name().startswith("Task-")
    loop.run_until_complete(t2)


def test_create_task_context(loop):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "task-ctx")

    async def coro():
        before = var.get()
        var.set("changed-in-task")
        await asyncio.sleep(0)
        return before, var.get()

    task = loop.create_task(coro(), context=ctx)
    assert loop.run_until_complete(task) == ("task-ctx", "changed-in-task")
    assert ctx[var] == "changed-in-task"
    assert var.get() == "unset"


def test_create_task_copies_current_context(loop):
    async def child():
        return var.get()

    async def main():
        var.set("parent")
        t = loop.create_task(child())
        var.set("parent-later")
        return await t

    assert run(loop, main()) == "parent"


def test_task_factory(loop):
    created = []

    def factory(lp, coro, **kwargs):
        t = asyncio.Task(coro, loop=lp, **kwargs)
        created.append(t)
        return t

    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def coro():
        return 1

    t = loop.create_task(coro(), name="via-factory")
    assert created == [t]
    assert t.get_name() == "via-factory"
    assert loop.run_until_complete(t) == 1

    # asyncio.ensure_future and run_until_complete(coro) go through it too
    assert loop.run_until_complete(coro()) == 1
    assert len(created) == 2

    ctx = contextvars.copy_context()
    t3 = loop.create_task(coro(), context=ctx)
    assert created[-1] is t3
    loop.run_until_complete(t3)

    loop.set_task_factory(None)
    assert loop.get_task_factory() is None
    loop.run_until_complete(loop.create_task(coro()))
    assert len(created) == 3


def test_task_factory_must_be_callable(loop):
    with pytest.raises(TypeError, match="task factory must be a callable or None"):
        loop.set_task_factory(1)
    assert loop.get_task_factory() is None


@pytest.mark.xfail_uvloop("passes eager_start= to the task factory, which eager_task_factory "
                          "rejects on 3.13", condition=sys.version_info >= (3, 13))
@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager_task_factory is 3.12+")
def test_eager_task_factory(loop):
    steps = []

    async def no_suspend():
        steps.append("ran")
        return 5

    async def suspends():
        steps.append("start")
        await asyncio.sleep(0)
        steps.append("end")
        return 6

    async def main():
        t = asyncio.create_task(no_suspend())
        # ran eagerly, to completion, inside create_task
        assert steps == ["ran"]
        assert t.done() and t.result() == 5
        t2 = asyncio.create_task(suspends())
        assert steps == ["ran", "start"]
        assert not t2.done()
        assert await t2 == 6
        return asyncio.current_task() is not None

    main_task = loop.create_task(main())  # created before the factory is set
    loop.set_task_factory(asyncio.eager_task_factory)
    try:
        assert loop.get_task_factory() is asyncio.eager_task_factory
        assert run(loop, main_task)
    finally:
        loop.set_task_factory(None)
    assert steps == ["ran", "start", "end"]


@pytest.mark.xfail_uvloop("passes eager_start= to the task factory, which eager_task_factory "
                          "rejects on 3.13", condition=sys.version_info >= (3, 13))
@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are 3.12+")
def test_eager_task_current_task(loop):
    seen = []

    async def child():
        seen.append(asyncio.current_task())

    async def main():
        t = loop.create_task(child())
        seen.append(t)
        await t

    main_task = loop.create_task(main())
    loop.set_task_factory(asyncio.eager_task_factory)
    try:
        run(loop, main_task)
    finally:
        loop.set_task_factory(None)
    assert len(seen) == 2 and seen[0] is seen[1]


def test_running_loop_accessors(loop):
    async def main():
        return (asyncio.get_running_loop(), asyncio.get_event_loop(),
                asyncio.current_task())

    task = loop.create_task(main())
    running, event_loop, current = loop.run_until_complete(task)
    assert running is loop
    assert event_loop is loop
    assert current is task


def test_get_running_loop_outside_is_error(loop):
    with pytest.raises(RuntimeError, match="no running event loop"):
        asyncio.get_running_loop()
    with pytest.raises(RuntimeError, match="no running event loop"):
        asyncio.current_task()


def test_current_task_in_plain_callback_is_none(loop):
    seen = []
    loop.call_soon(lambda: seen.append(asyncio.current_task()))
    loop.call_soon(lambda: seen.append(asyncio.current_task(loop)))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [None, None]


def test_all_tasks(loop):
    async def sleeper():
        await asyncio.sleep(3600)

    async def main():
        ts = [loop.create_task(sleeper()) for _ in range(3)]
        await asyncio.sleep(0)
        found = asyncio.all_tasks()
        assert set(ts) <= found
        assert asyncio.current_task() in found
        for t in ts:
            t.cancel()
        await asyncio.gather(*ts, return_exceptions=True)
        remaining = asyncio.all_tasks(loop)
        assert not (set(ts) & remaining)
        assert asyncio.current_task() in remaining
        return remaining

    remaining = run(loop, main())
    # all_tasks() returns only pending tasks: main() and run()'s wait_for
    assert 1 <= len(remaining) <= 2
    assert asyncio.all_tasks(loop) == set()


def test_task_cancel_and_cancelled_error(loop):
    reached = []

    async def worker():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            reached.append("cancelled")
            raise
        finally:
            reached.append("finally")

    async def main():
        t = loop.create_task(worker())
        await asyncio.sleep(0)
        t.cancel("why")
        with pytest.raises(asyncio.CancelledError):
            await t
        assert t.cancelled()

    run(loop, main())
    assert reached == ["cancelled", "finally"]


def test_gather_and_wait(loop):
    async def value(x, d):
        await asyncio.sleep(d)
        return x

    async def main():
        r = await asyncio.gather(value(1, 0.01), value(2, 0), value(3, 0.005))
        done, pending = await asyncio.wait(
            [loop.create_task(value(i, 0.001 * i)) for i in range(5)])
        assert not pending
        return r, sorted(t.result() for t in done)

    assert run(loop, main()) == ([1, 2, 3], [0, 1, 2, 3, 4])


def test_task_group(loop):
    async def child(i):
        await asyncio.sleep(0.001)
        return i

    async def main():
        async with asyncio.TaskGroup() as tg:
            ts = [tg.create_task(child(i)) for i in range(10)]
        return [t.result() for t in ts]

    assert run(loop, main()) == list(range(10))


def test_pending_task_destroyed_is_reported(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def forever():
        await loop.create_future()

    loop.create_task(forever())
    run(loop, asyncio.sleep(0))
    loop.close()  # the task is still pending
    gc.collect()
    # asyncio reports "Task was destroyed but it is pending!" once the task
    # is collected; on loop.close() the ready queue is dropped.
    for _ in range(3):
        gc.collect()
    msgs = [c.get("message") for c in contexts]
    assert "Task was destroyed but it is pending!" in msgs


def test_future_exception_never_retrieved_is_reported(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def boom():
        raise ZeroDivisionError

    t = loop.create_task(boom())
    run(loop, asyncio.sleep(0.01))
    assert t.done()
    del t
    gc.collect()
    msgs = [c.get("message") for c in contexts]
    assert "Task exception was never retrieved" in msgs
    ctx = contexts[msgs.index("Task exception was never retrieved")]
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert isinstance(ctx["future"], asyncio.Task)


def test_ensure_future_and_wrap_future(loop):
    import concurrent.futures

    async def coro():
        return 3

    t = asyncio.ensure_future(coro(), loop=loop)
    assert t.get_loop() is loop
    assert loop.run_until_complete(t) == 3

    cf = concurrent.futures.Future()
    af = asyncio.wrap_future(cf, loop=loop)
    assert af.get_loop() is loop
    cf.set_result("x")
    assert run(loop, af) == "x"


def test_shield_and_wait_for_cancellation(loop):
    async def inner():
        await asyncio.sleep(0.02)
        return "inner"

    async def main():
        t = loop.create_task(inner())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(t), 0.001)
        return await t

    assert run(loop, main()) == "inner"
