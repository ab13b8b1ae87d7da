"""Patches of asyncio's loop classes reach the methods ringloop borrows.

ringloop's loops are not ``asyncio.BaseEventLoop`` subclasses, but the cold
network and subprocess methods are asyncio's own code.  Test suites patch
them on asyncio's classes (asyncssh's ``test_connect_timeout_exceeded``
patches ``asyncio.BaseEventLoop.create_connection``); the patch must be seen
by ringloop's loops as by asyncio's, and be gone once undone.
"""

import asyncio
import inspect
from unittest import mock

import pytest

from tests.support import run, tcp_listener

UVLOOP_MISSES_PATCHES = pytest.mark.xfail_uvloop(
    "uvloop compiles these methods: asyncio's patches miss it")

# Methods asyncio's Unix selector loop inherits from BaseEventLoop (patched
# there), and those it defines itself (patched on asyncio.SelectorEventLoop).
FROM_BASE = ["create_connection", "create_server", "connect_accepted_socket",
             "create_datagram_endpoint", "sendfile", "subprocess_exec",
             "subprocess_shell", "connect_read_pipe", "connect_write_pipe"]
FROM_UNIX = ["create_unix_connection", "create_unix_server"]


def _owner(name):
    return asyncio.BaseEventLoop if name in FROM_BASE else asyncio.SelectorEventLoop


@UVLOOP_MISSES_PATCHES
@pytest.mark.parametrize("name", FROM_BASE + FROM_UNIX)
def test_a_patched_asyncio_method_is_called_with_the_loop(loop, name):
    seen = []

    async def fake(self, *args, **kwargs):
        seen.append((self, args, kwargs))
        return "patched"

    async def main():
        with mock.patch.object(_owner(name), name, fake):
            return await getattr(loop, name)(1, 2, key=3)

    assert run(loop, main()) == "patched"
    assert seen == [(loop, (1, 2), {"key": 3})]


@UVLOOP_MISSES_PATCHES
def test_patch_on_selector_event_loop_class_reaches_create_connection(loop):
    async def fake(self, *args, **kwargs):
        return "patched"

    async def main():
        with mock.patch.object(asyncio.SelectorEventLoop, "create_connection", fake):
            return await loop.create_connection(asyncio.Protocol, "127.0.0.1", 1)

    assert run(loop, main()) == "patched"


@UVLOOP_MISSES_PATCHES
def test_a_patch_that_slows_create_connection_makes_wait_for_time_out(loop):
    # asyncssh's connect_timeout tests, in small.
    async def slow(*args, **kwargs):
        await asyncio.sleep(30)

    async def main():
        with mock.patch("asyncio.BaseEventLoop.create_connection", slow):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(
                    loop.create_connection(asyncio.Protocol, "127.0.0.1", 1), 0.05)

    run(loop, main())


def test_undone_patch_leaves_the_real_method(loop):
    async def fake(self, *args, **kwargs):
        raise AssertionError("the patch outlived its block")

    async def main():
        with mock.patch.object(asyncio.BaseEventLoop, "create_connection", fake):
            pass
        with tcp_listener() as srv:
            tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1",
                                                 srv.getsockname()[1])
            try:
                assert tr.get_extra_info("peername") == srv.getsockname()
            finally:
                tr.close()
            await asyncio.sleep(0)

    run(loop, main())


@UVLOOP_MISSES_PATCHES
def test_borrowed_methods_keep_asyncio_signatures(loop):
    # What a user's help() or inspect sees: asyncio's own signatures, bound.
    reference = asyncio.SelectorEventLoop()
    try:
        for name in FROM_BASE + FROM_UNIX:
            assert (inspect.signature(getattr(loop, name))
                    == inspect.signature(getattr(reference, name))), name
    finally:
        reference.close()


def test_the_loop_is_not_a_base_event_loop_instance(loop, loop_impl):
    # Documented difference (docs/compatibility.md): isinstance() against
    # asyncio.BaseEventLoop is False, as for uvloop.
    if loop_impl.kind == "asyncio":
        assert isinstance(loop, asyncio.BaseEventLoop)
    else:
        assert not isinstance(loop, asyncio.BaseEventLoop)
    assert isinstance(loop, asyncio.AbstractEventLoop)
