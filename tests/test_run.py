"""Runners: asyncio.Runner / asyncio.run with each loop, and ringloop.run."""

import asyncio
import contextvars
import re
import sys
import threading

import pytest

RINGLOOP_DEFAULT = pytest.mark.loops("ringloop-epoll", "ringloop-portable")


class Probe:
    """A main() that leaves things behind for the runner to clean up."""

    def __init__(self):
        self.events = []
        self.loop = None
        self.executor_thread = None
        self.debug = None

    async def main(self, result="result"):
        self.loop = asyncio.get_running_loop()
        self.debug = self.loop.get_debug()

        async def agen():
            try:
                yield 1
                yield 2
            finally:
                self.events.append("agen-finalized")

        async def lingering():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.events.append("task-cancelled")
                raise

        self.agen = agen()
        await self.agen.__anext__()  # left suspended
        self.task = asyncio.get_running_loop().create_task(lingering())
        self.executor_thread = await self.loop.run_in_executor(None, threading.current_thread)
        await asyncio.sleep(0)
        return result

    def check_cleanup(self):
        assert "agen-finalized" in self.events
        assert "task-cancelled" in self.events
        assert self.task.cancelled()
        assert self.loop.is_closed()
        # shutdown_default_executor() joined the pool's threads
        self.executor_thread.join(5)
        assert not self.executor_thread.is_alive()


def test_runner_with_loop_factory(loop_factory):
    probe = Probe()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        lp = runner.get_loop()
        assert runner.run(probe.main("a")) == "a"
        assert probe.loop is lp
        assert runner.run(asyncio.sleep(0, "b")) == "b"
    probe.check_cleanup()


def test_runner_debug(loop_factory):
    probe = Probe()
    with asyncio.Runner(loop_factory=loop_factory, debug=True) as runner:
        runner.run(probe.main())
    assert probe.debug is True
    probe.check_cleanup()


def test_runner_context(loop_factory):
    var = contextvars.ContextVar("v", default="unset")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "runner-ctx")

    async def main():
        return var.get()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        assert runner.run(main(), context=ctx) == "runner-ctx"


def test_runner_exception_propagates_and_cleans_up(loop_factory):
    probe = Probe()

    async def main():
        await probe.main()
        raise LookupError("from main")

    with pytest.raises(LookupError, match="from main"):
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(main())
    probe.check_cleanup()


def test_runner_reports_errors_during_shutdown(loop_factory):
    contexts = []

    async def stubborn():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise ValueError("raised while being cancelled")

    async def main():
        asyncio.get_running_loop().set_exception_handler(lambda lp, c: contexts.append(c))
        asyncio.get_running_loop().create_task(stubborn())
        await asyncio.sleep(0)

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())
    assert [c["message"] for c in contexts] == [
        "unhandled exception during asyncio.run() shutdown"]
    assert isinstance(contexts[0]["exception"], ValueError)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is 3.12+")
def test_asyncio_run_loop_factory(loop_factory):
    probe = Probe()
    assert asyncio.run(probe.main("x"), loop_factory=loop_factory) == "x"
    probe.check_cleanup()


# ------------------------------------------------------------ ringloop.run ----

@RINGLOOP_DEFAULT
def test_ringloop_run_cleans_up_like_asyncio_run(ringloop_module):
    probe = Probe()
    assert ringloop_module.run(probe.main("rl")) == "rl"
    assert type(probe.loop).__module__.split(".")[0] == "ringloop"
    assert probe.debug is False
    probe.check_cleanup()
    assert asyncio._get_running_loop() is None


@RINGLOOP_DEFAULT
def test_ringloop_run_sets_the_current_loop_like_asyncio_run(ringloop_module):
    # asyncio.run() makes its loop the policy's current one while it runs and
    # unsets it after: the policy's get_event_loop() answers the same.
    async def main():
        policy_loop = asyncio.get_event_loop_policy().get_event_loop()
        return policy_loop is asyncio.get_running_loop()

    for runner in (asyncio.run, ringloop_module.run):
        assert runner(main()) is True
        with pytest.raises(RuntimeError, match="There is no current event loop"):
            asyncio.get_event_loop_policy().get_event_loop()


@RINGLOOP_DEFAULT
def test_ringloop_run_debug(ringloop_module):
    probe = Probe()
    ringloop_module.run(probe.main(), debug=True)
    assert probe.debug is True
    probe.check_cleanup()


@RINGLOOP_DEFAULT
def test_ringloop_run_exception(ringloop_module):
    probe = Probe()

    async def main():
        await probe.main()
        raise KeyError("k")

    with pytest.raises(KeyError):
        ringloop_module.run(main())
    probe.check_cleanup()


@RINGLOOP_DEFAULT
def test_ringloop_run_rejects_non_coroutine(ringloop_module):
    async def main():
        pass

    with pytest.raises(ValueError) as exp:
        asyncio.run(main)  # the reference
    with pytest.raises(ValueError) as got:
        ringloop_module.run(main)
    assert str(got.value) == str(exp.value)


@RINGLOOP_DEFAULT
def test_ringloop_run_inside_running_loop(ringloop_module):
    errors = []

    async def inner():
        pass

    async def main():
        c = inner()
        try:
            ringloop_module.run(c)
        except RuntimeError as exc:
            errors.append(str(exc))
        finally:
            c.close()

    ringloop_module.run(main())
    assert len(errors) == 1
    assert re.search(r"cannot be called from a running event loop", errors[0])


@RINGLOOP_DEFAULT
def test_ringloop_run_new_loop_each_time(ringloop_module):
    loops = []

    async def main():
        loops.append(asyncio.get_running_loop())

    ringloop_module.run(main())
    ringloop_module.run(main())
    assert loops[0] is not loops[1]
    assert all(lp.is_closed() for lp in loops)


@RINGLOOP_DEFAULT
def test_ringloop_runner_loop_factory(ringloop_module):
    probe = Probe()
    with asyncio.Runner(loop_factory=ringloop_module.new_event_loop) as runner:
        assert runner.run(probe.main(7)) == 7
    assert type(probe.loop).__module__.split(".")[0] == "ringloop"
    probe.check_cleanup()


@RINGLOOP_DEFAULT
@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is 3.12+")
def test_asyncio_run_with_ringloop_factory(ringloop_module):
    probe = Probe()
    assert asyncio.run(probe.main(8), loop_factory=ringloop_module.new_event_loop) == 8
    assert type(probe.loop).__module__.split(".")[0] == "ringloop"
    probe.check_cleanup()


@RINGLOOP_DEFAULT
def test_ringloop_version(ringloop_module):
    v = ringloop_module.__version__
    assert isinstance(v, str)
    assert re.match(r"^\d+\.\d+(\.\d+)?", v), v


@RINGLOOP_DEFAULT
def test_ringloop_selector_event_loop_default_and_explicit(ringloop_module):
    import selectors

    lp = ringloop_module.SelectorEventLoop()
    try:
        assert isinstance(lp, asyncio.AbstractEventLoop)
        assert lp.run_until_complete(asyncio.sleep(0, 1)) == 1
    finally:
        lp.close()
    sel = selectors.PollSelector()
    lp = ringloop_module.SelectorEventLoop(sel)
    try:
        assert lp.run_until_complete(asyncio.sleep(0, 2)) == 2
    finally:
        lp.close()
