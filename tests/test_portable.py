"""RINGLOOP_PORTABLE=1: a loop that behaves as on a non-Linux POSIX system."""

import asyncio
import os
import threading

import pytest

from tests.support import run

pytestmark = pytest.mark.ringloop_only


def _fd_targets():
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass
    return out


def _fds_of_new_loop(factory):
    before = _fd_targets()
    lp = factory()
    try:
        # exercise the wakeup path so lazily made fds exist
        t = threading.Thread(target=lambda: lp.call_soon_threadsafe(lambda: None))
        t.start()
        t.join()
        run(lp, asyncio.sleep(0.001))
        after = _fd_targets()
        stats = lp.statistics()
    finally:
        lp.close()
    new = [tgt for fd, tgt in after.items() if before.get(fd) != tgt]
    return new, stats


@pytest.mark.loops("ringloop-portable")
def test_portable_uses_self_pipe_and_default_selector(loop_factory):
    import selectors

    new, stats = _fds_of_new_loop(loop_factory)
    assert not any("eventfd" in t for t in new), new
    # a self-pipe (pipe or socketpair) instead of eventfd
    assert any(t.startswith(("pipe:", "socket:")) for t in new), new
    assert selectors.DefaultSelector.__name__ in stats["driver"]


@pytest.mark.loops("ringloop-epoll")
def test_native_uses_epoll(loop_factory):
    new, stats = _fds_of_new_loop(loop_factory)
    assert any("eventpoll" in t for t in new), new
    assert "epoll" in stats["driver"]
    assert "Selector" not in stats["driver"]


@pytest.mark.loops("ringloop-epoll")
def test_portable_env_read_at_creation_only(loop_factory, monkeypatch):
    import ringloop

    monkeypatch.setenv("RINGLOOP_PORTABLE", "1")
    portable = ringloop.SelectorEventLoop()
    monkeypatch.delenv("RINGLOOP_PORTABLE")
    native = ringloop.SelectorEventLoop()
    try:
        p_driver = portable.statistics()["driver"]
        n_driver = native.statistics()["driver"]
        assert p_driver != n_driver
        assert "Selector" in p_driver
        # a loop keeps the kind it was made with
        monkeypatch.setenv("RINGLOOP_PORTABLE", "1")
        assert native.statistics()["driver"] == n_driver
        assert run(native, asyncio.sleep(0, "n")) == "n"
        assert run(portable, asyncio.sleep(0, "p")) == "p"
    finally:
        portable.close()
        native.close()


@pytest.mark.loops("ringloop-portable")
def test_portable_explicit_selector_still_honoured(loop_impl, monkeypatch):
    import selectors

    import ringloop

    monkeypatch.setenv("RINGLOOP_PORTABLE", "1")
    lp = ringloop.SelectorEventLoop(selectors.PollSelector())
    try:
        assert "PollSelector" in lp.statistics()["driver"]
        assert run(lp, asyncio.sleep(0.001, 1)) == 1
    finally:
        lp.close()
