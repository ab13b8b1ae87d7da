"""Event loop policies: ringloop.EventLoopPolicy against asyncio's, and install()."""

import asyncio
import sys
import threading
import warnings

import pytest

from tests.support import run

RINGLOOP_DEFAULT = pytest.mark.loops("ringloop-epoll", "ringloop-portable")


def _get_event_loop(policy):
    """policy.get_event_loop(), recording warnings (always from this one line)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = policy.get_event_loop()
        except Exception as exc:  # compared by the caller
            result = exc
    return result, [(w.category, str(w.message), w.filename, w.lineno) for w in caught]


def _in_thread(fn, name="policy-worker"):
    out = []
    t = threading.Thread(target=lambda: out.append(fn()), name=name)
    t.start()
    t.join(30)
    assert not t.is_alive()
    return out[0]


def _close_policy_loop(policy):
    lp = policy._local._loop if hasattr(policy, "_local") else None
    policy.set_event_loop(None)
    if lp is not None:
        lp.close()


# ------------------------------------------------ any loop, asyncio policy ----

def test_set_event_loop_with_asyncio_policy(loop):
    asyncio.set_event_loop(loop)
    try:
        assert asyncio.get_event_loop() is loop
        assert asyncio.get_event_loop_policy().get_event_loop() is loop
    finally:
        asyncio.set_event_loop(None)


def test_get_event_loop_inside_running_loop_ignores_policy(loop):
    async def main():
        return asyncio.get_event_loop()

    assert run(loop, main()) is loop


# ---------------------------------------------------------------- ringloop ----

@RINGLOOP_DEFAULT
def test_policy_new_event_loop_is_ringloop(ringloop_module):
    policy = ringloop_module.EventLoopPolicy()
    assert isinstance(policy, asyncio.AbstractEventLoopPolicy)
    lp = policy.new_event_loop()
    try:
        assert isinstance(lp, asyncio.AbstractEventLoop)
        assert type(lp).__module__.split(".")[0] == "ringloop"
        other = policy.new_event_loop()
        assert other is not lp
        other.close()
        assert run(lp, asyncio.sleep(0, "ok")) == "ok"
    finally:
        lp.close()


@RINGLOOP_DEFAULT
def test_policy_main_thread_get_event_loop_matches_asyncio(ringloop_module):
    ours = ringloop_module.EventLoopPolicy()
    ref = asyncio.DefaultEventLoopPolicy()
    try:
        got, got_warn = _get_event_loop(ours)
        exp, exp_warn = _get_event_loop(ref)
        assert isinstance(got, asyncio.AbstractEventLoop), got
        assert type(got).__module__.split(".")[0] == "ringloop"
        # same warnings (category, text, and attributed to the same caller line)
        assert got_warn == exp_warn
        if sys.version_info >= (3, 12):
            assert [w[:2] for w in exp_warn] == [(DeprecationWarning, "There is no current event loop")]
        # the created loop is now the current one
        again, again_warn = _get_event_loop(ours)
        assert again is got
        assert again_warn == []
    finally:
        _close_policy_loop(ours)
        _close_policy_loop(ref)


@RINGLOOP_DEFAULT
def test_policy_other_thread_without_set_event_loop(ringloop_module):
    ours = ringloop_module.EventLoopPolicy()
    ref = asyncio.DefaultEventLoopPolicy()
    got, got_warn = _in_thread(lambda: _get_event_loop(ours))
    exp, exp_warn = _in_thread(lambda: _get_event_loop(ref))
    assert isinstance(exp, RuntimeError)
    assert type(got) is RuntimeError
    assert str(got) == str(exp) == "There is no current event loop in thread 'policy-worker'."
    assert got_warn == exp_warn == []


@RINGLOOP_DEFAULT
def test_policy_after_set_event_loop_none_main_thread(ringloop_module):
    ours = ringloop_module.EventLoopPolicy()
    ref = asyncio.DefaultEventLoopPolicy()
    ours.set_event_loop(None)
    ref.set_event_loop(None)
    got, got_warn = _get_event_loop(ours)
    exp, exp_warn = _get_event_loop(ref)
    assert isinstance(exp, RuntimeError)
    assert type(got) is RuntimeError and str(got) == str(exp)
    assert got_warn == exp_warn


@RINGLOOP_DEFAULT
def test_policy_per_thread_loops(ringloop_module):
    policy = ringloop_module.EventLoopPolicy()

    def worker():
        lp = policy.new_event_loop()
        policy.set_event_loop(lp)
        try:
            got = policy.get_event_loop()
            return lp, got
        finally:
            policy.set_event_loop(None)
            lp.close()

    lp1, got1 = _in_thread(worker)
    lp2, got2 = _in_thread(worker)
    assert got1 is lp1 and got2 is lp2 and lp1 is not lp2
    main_lp = policy.new_event_loop()
    try:
        policy.set_event_loop(main_lp)
        assert policy.get_event_loop() is main_lp
        # another thread does not see the main thread's loop
        res, _ = _in_thread(lambda: _get_event_loop(policy))
        assert isinstance(res, RuntimeError)
    finally:
        policy.set_event_loop(None)
        main_lp.close()


@RINGLOOP_DEFAULT
@pytest.mark.parametrize("bad", [1, "loop", object()])
def test_policy_set_event_loop_type_error(ringloop_module, bad):
    ours = ringloop_module.EventLoopPolicy()
    ref = asyncio.DefaultEventLoopPolicy()
    with pytest.raises(TypeError) as exp:
        ref.set_event_loop(bad)
    with pytest.raises(TypeError) as got:
        ours.set_event_loop(bad)
    assert str(got.value) == str(exp.value)


@RINGLOOP_DEFAULT
def test_policy_accepts_foreign_loops(ringloop_module):
    # set_event_loop takes any AbstractEventLoop, as asyncio's policy does
    policy = ringloop_module.EventLoopPolicy()
    lp = asyncio.SelectorEventLoop()
    try:
        policy.set_event_loop(lp)
        assert policy.get_event_loop() is lp
    finally:
        policy.set_event_loop(None)
        lp.close()


@RINGLOOP_DEFAULT
def test_policy_subclass_super_get_event_loop(ringloop_module):
    class Counting(ringloop_module.EventLoopPolicy):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def get_event_loop(self):
            self.calls += 1
            return super().get_event_loop()

        def new_event_loop(self):
            lp = super().new_event_loop()
            lp.tagged = True
            return lp

    policy = Counting()
    lp = policy.new_event_loop()
    try:
        assert lp.tagged
        policy.set_event_loop(lp)
        assert policy.get_event_loop() is lp
        assert policy.calls == 1
    finally:
        policy.set_event_loop(None)
        lp.close()


@RINGLOOP_DEFAULT
def test_install(ringloop_module):
    old = asyncio.get_event_loop_policy()
    try:
        ret = ringloop_module.install()
        policy = asyncio.get_event_loop_policy()
        assert isinstance(policy, ringloop_module.EventLoopPolicy)
        assert ret is None or ret is policy
        lp = asyncio.new_event_loop()
        try:
            assert type(lp).__module__.split(".")[0] == "ringloop"
            assert lp.run_until_complete(asyncio.sleep(0, 5)) == 5
        finally:
            lp.close()

        # asyncio.run() (no loop_factory) now runs on ringloop
        async def main():
            return type(asyncio.get_running_loop()).__module__.split(".")[0]

        assert asyncio.run(main()) == "ringloop"
    finally:
        asyncio.set_event_loop_policy(old)


@RINGLOOP_DEFAULT
@pytest.mark.parametrize("kind", ["selector", "proactor"])
def test_install_with_a_kind_makes_loops_of_that_kind(ringloop_module, kind, monkeypatch):
    if kind == "proactor":
        try:
            ringloop_module.ProactorEventLoop().close()
        except ringloop_module.UringUnavailable as exc:
            pytest.skip(f"io_uring unavailable here: {exc}")
    # The argument wins over RINGLOOP_LOOP.
    monkeypatch.setenv("RINGLOOP_LOOP", "selector" if kind == "proactor" else "proactor")
    expected = {"selector": ringloop_module.SelectorEventLoop,
                "proactor": ringloop_module.ProactorEventLoop}[kind]
    old = asyncio.get_event_loop_policy()
    try:
        ringloop_module.install(kind)
        policy = asyncio.get_event_loop_policy()
        assert repr(policy) == f"<EventLoopPolicy kind={kind!r}>"

        async def main():
            return type(asyncio.get_running_loop())

        assert asyncio.run(main()) is expected
    finally:
        asyncio.set_event_loop_policy(old)


@RINGLOOP_DEFAULT
def test_policy_without_a_kind_reads_ringloop_loop_when_it_makes_a_loop(ringloop_module, monkeypatch):
    policy = ringloop_module.EventLoopPolicy()
    assert repr(policy) == "<EventLoopPolicy>"
    monkeypatch.setenv("RINGLOOP_LOOP", "selector")
    lp = policy.new_event_loop()
    lp.close()
    assert type(lp) is ringloop_module.SelectorEventLoop
    monkeypatch.setenv("RINGLOOP_LOOP", "nonsense")
    with pytest.raises(ValueError, match="unknown ringloop loop kind 'nonsense'"):
        policy.new_event_loop()


@RINGLOOP_DEFAULT
def test_unknown_kind_is_refused_before_anything_changes(ringloop_module):
    with pytest.raises(ValueError, match="unknown ringloop loop kind 'epoll': use one of selector, proactor"):
        ringloop_module.EventLoopPolicy("epoll")
    old = asyncio.get_event_loop_policy()
    with pytest.raises(ValueError, match="unknown ringloop loop kind 'epoll'"):
        ringloop_module.install("epoll")
    assert asyncio.get_event_loop_policy() is old


@RINGLOOP_DEFAULT
def test_event_loop_policy_loop_factory_is_ringloop(ringloop_module):
    # new_event_loop() through the policy and ringloop.new_event_loop() agree
    policy = ringloop_module.EventLoopPolicy()
    a = policy.new_event_loop()
    b = ringloop_module.new_event_loop()
    try:
        assert type(a) is type(b)
    finally:
        a.close()
        b.close()


@RINGLOOP_DEFAULT
@pytest.mark.skipif(sys.version_info >= (3, 14), reason="child watchers are gone in 3.14")
def test_child_watcher_get_and_set_through_the_policy(ringloop_module):
    # Code written for asyncio's policy may ask for the child watcher: it
    # gets asyncio's (with asyncio's deprecation warnings on 3.12+), and
    # setting one changes nothing for ringloop loops, which watch their own
    # children.
    old = asyncio.get_event_loop_policy()
    deprecated = sys.version_info >= (3, 12)
    try:
        ringloop_module.install()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            watcher = asyncio.get_child_watcher()
            assert isinstance(watcher, asyncio.AbstractChildWatcher)
            assert asyncio.get_child_watcher() is watcher
            asyncio.set_child_watcher(None)
            assert asyncio.get_child_watcher() is not watcher
            asyncio.set_child_watcher(None)
        kinds = {w.category for w in caught}
        assert (DeprecationWarning in kinds) == deprecated, caught
        # Attributed as asyncio's policy's are: to asyncio's module functions
        # that called the policy, never to ringloop's own module.
        assert not [w for w in caught if "ringloop" in w.filename], caught

        async def main():
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
            return await proc.wait()

        assert asyncio.run(main()) == 0
    finally:
        asyncio.set_event_loop_policy(old)
