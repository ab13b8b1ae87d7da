"""Behaviour the loop's fast paths must keep: every callable kind, the
callback errors asyncio reports, call_soon overridden or patched, and tasks
created with and without names and contexts."""

import asyncio
import contextvars
import functools
import gc
import inspect
import threading
import time
import warnings
import weakref
from unittest import mock

import pytest

from tests.support import run


class CallableObject:
    """A callable whose type has tp_call but no vectorcall."""

    def __init__(self, out):
        self.out = out

    def __call__(self, *args):
        self.out.append(("obj", args))


class Raiser:
    def __call__(self):
        raise ValueError("from __call__")


def _run_callbacks(loop, *scheduled):
    for cb, args in scheduled:
        loop.call_soon(cb, *args)
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_every_kind_of_callable_runs(loop):
    out = []

    class K:
        def method(self, *a):
            out.append(("method", a))

    _run_callbacks(
        loop,
        (CallableObject(out), ()),
        (CallableObject(out), (1, 2)),
        (functools.partial(out.append, ("partial", ())), ()),
        (lambda: out.append(("lambda", ())), ()),
        (K().method, ()),
        (out.append, (("builtin", ()),)),
        (type(out), ()),          # a type: called, result dropped
    )
    assert out == [("obj", ()), ("obj", (1, 2)), ("partial", ()), ("lambda", ()),
                   ("method", ()), ("builtin", ())]


def test_error_from_a_tp_call_callable_is_reported(loop):
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
    cb = Raiser()
    _run_callbacks(loop, (cb, ()))
    assert len(seen) == 1
    assert isinstance(seen[0]["exception"], ValueError)
    assert str(seen[0]["exception"]) == "from __call__"
    assert seen[0]["message"].startswith("Exception in callback ")


@pytest.mark.xfail_uvloop("uvloop's message omits the '()' after the callback")
def test_non_callable_is_reported_when_it_runs(loop):
    # Outside debug mode asyncio accepts any object and reports the
    # TypeError of calling it, with the handle, when it runs.
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
    loop.set_debug(False)
    _run_callbacks(loop, (42, ()))
    assert len(seen) == 1
    exc = seen[0]["exception"]
    assert isinstance(exc, TypeError)
    assert "'int' object is not callable" in str(exc)
    assert seen[0]["message"] == "Exception in callback 42()"


def test_deep_recursion_in_a_tp_call_callable_is_a_recursion_error(loop):
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))

    class Deep:
        def __call__(self):
            return self()

    _run_callbacks(loop, (Deep(), ()))
    assert len(seen) == 1
    assert isinstance(seen[0]["exception"], RecursionError)


@pytest.mark.ringloop_only
@pytest.mark.parametrize("kind", ["SelectorEventLoop", "ProactorEventLoop"])
def test_subclass_override_of_call_soon_is_used_by_tasks(kind):
    import ringloop

    cls = getattr(ringloop, kind)
    calls = []

    class Counting(cls):
        def call_soon(self, callback, *args, context=None):
            calls.append(callback)
            return super().call_soon(callback, *args, context=context)

    try:
        loop = Counting()
    except ringloop.UringUnavailable as exc:  # pragma: no cover
        pytest.skip(str(exc))
    try:
        async def main():
            await asyncio.sleep(0)
            return 7

        assert loop.run_until_complete(main()) == 7
        assert "call_soon" not in vars(loop)
        assert len(calls) >= 2          # the first step and the one after sleep(0)
    finally:
        loop.close()


def test_patched_call_soon_is_used_and_restored(loop):
    with mock.patch.object(loop, "call_soon", wraps=loop.call_soon) as patched:
        async def main():
            await asyncio.sleep(0)

        run(loop, main())
        assert patched.call_count >= 2
    # After the patch, the loop's own call_soon works again.
    out = []
    _run_callbacks(loop, (out.append, (1,)))
    assert out == [1]


def test_call_soon_after_close_raises(loop):
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon(lambda: None)


def test_call_soon_looked_up_on_a_loop_is_its_bound_method(loop):
    # What code sees of loop.call_soon and loop.call_soon_threadsafe, idle
    # and running: a bound method of this loop, equal to itself, with the
    # method's name and parameters, and nothing in the instance dict.
    seen = []

    def look():
        for name in ("call_soon", "call_soon_threadsafe"):
            meth = getattr(loop, name)
            seen.append((
                meth.__self__ is loop,
                meth.__name__,
                meth == getattr(loop, name),
                hash(meth) == hash(getattr(loop, name)),
                name in repr(meth),
                list(inspect.signature(meth).parameters)[-1],
                name in vars(loop),
            ))

    look()
    _run_callbacks(loop, (look, ()))
    look()
    for name in ("call_soon", "call_soon_threadsafe"):
        assert name in type(loop).__dict__ or any(
            name in vars(k) for k in type(loop).__mro__)
    assert seen == [(True, "call_soon", True, True, True, "context", False),
                    (True, "call_soon_threadsafe", True, True, True, "context",
                     False)] * 3


def test_assigned_call_soon_shadows_the_method_until_deleted(loop):
    calls = []
    real = loop.call_soon

    def mine(callback, *args, context=None):
        calls.append(callback)
        return real(callback, *args, context=context)

    loop.call_soon = mine
    assert loop.call_soon is mine
    assert vars(loop)["call_soon"] is mine
    loop.run_until_complete(asyncio.sleep(0))   # the Task's steps go through it
    assert calls
    del loop.call_soon
    assert "call_soon" not in vars(loop)
    assert loop.call_soon == real
    with pytest.raises(AttributeError):
        del loop.call_soon
    n = len(calls)
    loop.run_until_complete(asyncio.sleep(0))
    assert len(calls) == n


def test_call_soon_patched_while_running_is_used_at_once(loop):
    # Patching inside a running loop (after the loop's own call_soon was
    # looked up many times) takes effect for the very next task step, and
    # restoring it takes effect as promptly.
    async def main():
        for _ in range(3):
            await asyncio.sleep(0)
        with mock.patch.object(loop, "call_soon", wraps=loop.call_soon) as p:
            await asyncio.sleep(0)
            during = p.call_count
        await asyncio.sleep(0)
        return during, p.call_count

    during, after = loop.run_until_complete(main())
    assert during >= 1
    assert after == during


def test_call_soon_threadsafe_patched_is_used_from_another_thread(loop):
    async def main():
        with mock.patch.object(loop, "call_soon_threadsafe",
                               wraps=loop.call_soon_threadsafe) as p:
            fut = loop.create_future()
            t = threading.Thread(
                target=lambda: loop.call_soon_threadsafe(fut.set_result, 5))
            t.start()
            result = await asyncio.wait_for(fut, 10)
            t.join()
            return result, p.call_count

    assert loop.run_until_complete(main()) == (5, 1)
    assert "call_soon_threadsafe" not in vars(loop)


@pytest.mark.ringloop_only
def test_loops_running_in_two_threads_schedule_on_their_own(loop):
    # Each loop's call_soon schedules on that loop, while another loop runs
    # in another thread and both keep looking call_soon up.
    other = type(loop)()
    results = {}

    async def count(lp, key):
        n = 0
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            fut = lp.create_future()
            lp.call_soon(fut.set_result, asyncio.get_running_loop() is lp)
            n += await fut
            await asyncio.sleep(0)
        results[key] = n

    t = threading.Thread(target=other.run_until_complete,
                         args=(count(other, "other"),))
    t.start()
    try:
        loop.run_until_complete(count(loop, "main"))
    finally:
        t.join(10)
        other.close()
    assert results["main"] > 0 and results["other"] > 0


@pytest.mark.ringloop_only
def test_a_loop_that_ran_is_freed_by_reference_counting(loop_impl):
    # While it runs, a loop keeps its bound call_soon (and that keeps the
    # loop); when run_forever() returns nothing of it is left, so a loop
    # that ran is freed as soon as the last reference goes, closed or not.
    gc.disable()
    try:
        for close in (True, False):
            lp = loop_impl.factory()

            async def main():
                # Looked up while running: kept by the loop until it stops.
                assert lp.call_soon is lp.call_soon
                assert lp.call_soon_threadsafe is lp.call_soon_threadsafe
                await asyncio.sleep(0)

            lp.run_until_complete(main())
            ref = weakref.ref(lp)
            if close:
                lp.close()
                del lp
            else:
                with warnings.catch_warnings(record=True) as rec:
                    warnings.simplefilter("always")
                    del lp
                    # __del__ ran at once (the warning keeps its source).
                    assert [str(w.message)[:20] for w in rec] == [
                        "unclosed event loop "]
                del rec
            assert ref() is None
    finally:
        gc.enable()


@pytest.mark.parametrize("with_name", [False, True])
@pytest.mark.parametrize("with_context", [False, True])
def test_create_task_name_and_context(loop, with_name, with_context):
    var = contextvars.ContextVar("v", default="outer")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "inner")
    kwargs = {}
    if with_name:
        kwargs["name"] = "job-1"
    if with_context:
        kwargs["context"] = ctx

    async def job():
        return var.get()

    async def main():
        task = loop.create_task(job(), **kwargs)
        if with_name:
            assert task.get_name() == "job-1"
        else:
            assert task.get_name().startswith("Task-")
        return await task

    assert run(loop, main()) == ("inner" if with_context else "outer")


@pytest.mark.parametrize("debug", [True, False])
def test_create_task_source_traceback(loop, debug):
    loop.set_debug(debug)

    async def job():
        pass

    async def main():
        task = loop.create_task(job())
        tb = task._source_traceback
        await task
        return tb

    tb = run(loop, main())
    if debug:
        # The last frame is the caller's create_task() line, not the loop's.
        assert tb and tb[-1].name == "main"
    else:
        assert tb is None


def test_a_handle_the_user_keeps_is_never_reused(loop):
    # ringloop recycles handles nobody else holds; one the user keeps must
    # stay what it was while many more callbacks come and go.
    def f(i):
        pass

    kept = [loop.call_soon(f, i) for i in range(300)]
    _run_callbacks(loop)
    fresh = []
    for _ in range(3):
        fresh += [loop.call_soon(lambda: None) for _ in range(600)]
        _run_callbacks(loop)
    assert not {id(h) for h in kept} & {id(h) for h in fresh}
    assert not any(h.cancelled() for h in kept)
    if hasattr(kept[0], "_args"):       # uvloop's handles do not expose it
        assert all(h._args == (i,) for i, h in enumerate(kept))


def test_handles_made_in_debug_mode_leave_nothing_behind(loop):
    loop.set_debug(True)
    for _ in range(50):
        loop.call_soon(lambda: None)
    cancelled = loop.call_soon(lambda: None)
    cancelled.cancel()
    del cancelled
    _run_callbacks(loop)
    loop.set_debug(False)
    hs = [loop.call_soon(lambda: None) for _ in range(60)]
    assert all(h._source_traceback is None for h in hs)
    assert not any(h.cancelled() for h in hs)
    assert all("cancelled" not in repr(h) for h in hs)
    _run_callbacks(loop)


def test_futures_and_tasks_belong_to_their_loop_whichever_runs(loop, loop_factory):
    # create_future/create_task leave out loop= when their loop is the
    # running one; any other way they must still bind to their own loop.
    other = loop_factory()
    try:
        async def job():
            return "done"

        assert loop.create_future().get_loop() is loop     # nothing running
        t0 = loop.create_task(job())
        assert t0.get_loop() is loop

        async def main():
            assert loop.create_future().get_loop() is loop
            assert (await loop.create_task(job())) == "done"
            fut = other.create_future()                      # another loop runs
            task = other.create_task(job())
            return fut, task

        fut, task = run(loop, main())
        assert loop.run_until_complete(t0) == "done"
        assert fut.get_loop() is other and task.get_loop() is other
        assert other.run_until_complete(task) == "done"
        fut.cancel()
    finally:
        other.close()


def test_assignment_holds_when_a_finalizer_looks_call_soon_up(loop):
    # The value replaced by an assignment may run code (its __del__) that
    # looks loop.call_soon up while the assignment is under way; afterwards
    # the new value is what the loop's call_soon is.
    looked_up = []

    class Old:
        def __call__(self, *args, **kwargs):   # pragma: no cover - never called
            raise AssertionError

        def __del__(self):
            looked_up.append(loop.call_soon)

    def patched(callback, *args, context=None):
        return real(callback, *args, context=context)

    async def main():
        vars(loop)["call_soon"] = Old()   # left there directly (vars().update...)
        loop.call_soon = patched          # the Old instance dies here
        return loop.call_soon is patched

    real = loop.call_soon
    try:
        assert loop.run_until_complete(main())
        assert loop.call_soon is patched
        assert len(looked_up) == 1
    finally:
        del loop.call_soon


def test_weakref_and_copies_of_a_bound_call_soon(loop):
    import copy
    meth = loop.call_soon
    ref = weakref.ref(meth)
    assert ref() is meth
    assert copy.copy(loop.call_soon) == loop.call_soon


@pytest.mark.ringloop_only
def test_deepcopy_of_a_bound_call_soon_keeps_it(loop):
    # As for any builtin bound method: deepcopy returns the object itself
    # (the loop is not copied).
    import copy
    meth = loop.call_soon
    assert copy.deepcopy(meth) is meth
    assert copy.deepcopy({"cb": meth})["cb"] is meth


@pytest.mark.ringloop_only
def test_call_soon_descriptor_refuses_foreign_objects(loop):
    descr = None
    for klass in type(loop).__mro__:
        if "call_soon" in vars(klass):
            descr = vars(klass)["call_soon"]
            break

    class Other:
        pass

    with pytest.raises(TypeError, match="doesn't apply to a 'Other' object"):
        descr.__set__(Other(), "x")
    with pytest.raises(TypeError, match="doesn't apply to a 'Other' object"):
        descr.__delete__(Other())
