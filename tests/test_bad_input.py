"""Bad arguments: the same errors as asyncio, at the same moment."""

import asyncio
import socket

import pytest

from tests.support import run

SCHEDULERS = ["call_soon", "call_soon_threadsafe", "call_later", "call_at"]
# asyncio's debug check names the method it runs in: call_later goes through call_at
METHOD_NAME = {"call_soon": "call_soon", "call_soon_threadsafe": "call_soon_threadsafe",
               "call_later": "call_at", "call_at": "call_at"}


def _schedule(loop, method, cb, *args):
    if method == "call_soon":
        return loop.call_soon(cb, *args)
    if method == "call_soon_threadsafe":
        return loop.call_soon_threadsafe(cb, *args)
    if method == "call_later":
        return loop.call_later(0, cb, *args)
    return loop.call_at(loop.time(), cb, *args)


@pytest.mark.xfail_uvloop("no callback type check in debug mode")
@pytest.mark.parametrize("method", SCHEDULERS)
@pytest.mark.parametrize("bad", [None, 1, "str"], ids=["None", "int", "str"])
def test_non_callable_rejected_in_debug(loop, method, bad):
    loop.set_debug(True)
    with pytest.raises(TypeError) as info:
        _schedule(loop, method, bad)
    assert str(info.value) == (
        f"a callable object was expected by {METHOD_NAME[method]}(), got {bad!r}")


@pytest.mark.xfail_uvloop("no callback type check in debug mode")
@pytest.mark.parametrize("method", SCHEDULERS)
def test_coroutine_function_rejected_in_debug(loop, method):
    loop.set_debug(True)

    async def coro_fn():
        pass

    with pytest.raises(TypeError, match=rf"^coroutines cannot be used with {METHOD_NAME[method]}\(\)$"):
        _schedule(loop, method, coro_fn)
    c = coro_fn()
    try:
        with pytest.raises(TypeError, match=rf"^coroutines cannot be used with {METHOD_NAME[method]}\(\)$"):
            _schedule(loop, method, c)
    finally:
        c.close()


def test_run_in_executor_coroutine_function_rejected_in_debug(loop):
    loop.set_debug(True)

    async def coro_fn():
        pass

    with pytest.raises(TypeError, match=r"coroutines cannot be used with run_in_executor\(\)"):
        loop.run_in_executor(None, coro_fn)


@pytest.mark.parametrize("method", SCHEDULERS)
def test_non_callable_without_debug_fails_when_run(loop, method):
    # Without debug mode asyncio accepts the handle and the TypeError comes
    # out of the callback when it runs, through the exception handler; the
    # loop keeps going.
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    h = _schedule(loop, method, 42)
    after = []
    loop.call_soon(after.append, "ok")
    run(loop, asyncio.sleep(0.01))
    assert after == ["ok"]
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], TypeError)
    assert contexts[0]["handle"] is h


@pytest.mark.xfail_uvloop("TypeError message differs (comparison error)")
def test_call_later_none_delay(loop):
    with pytest.raises(TypeError, match="delay must not be None"):
        loop.call_later(None, print)


@pytest.mark.xfail_uvloop("TypeError message differs (comparison error)")
def test_call_at_none_when(loop):
    with pytest.raises(TypeError, match="when cannot be None"):
        loop.call_at(None, print)


@pytest.mark.parametrize("bad", ["soon", [], object()], ids=["str", "list", "object"])
def test_call_at_non_number_with_pending_timer(loop, bad):
    # With another timer pending, asyncio's heap comparison raises TypeError
    # at call time.  (asyncio's heap is left corrupted afterwards, so the
    # loop is closed without running it again.)
    loop.call_later(0.001, print)
    with pytest.raises(TypeError):
        loop.call_at(bad, print)
    loop.close()


@pytest.mark.parametrize("bad", ["soon", [], object()], ids=["str", "list", "object"])
def test_call_later_non_number(loop, bad):
    with pytest.raises(TypeError):
        loop.call_later(bad, print)


@pytest.mark.parametrize("bad", [1, "coro", lambda: None, None],
                         ids=["int", "str", "function", "None"])
def test_create_task_non_coroutine(loop, bad):
    with pytest.raises(TypeError) as exp:
        ref = asyncio.SelectorEventLoop()
        try:
            ref.create_task(bad)
        finally:
            ref.close()
    with pytest.raises(TypeError) as got:
        loop.create_task(bad)
    assert str(got.value) == str(exp.value)


def test_create_task_coroutine_function_not_called(loop):
    async def coro_fn():
        pass

    with pytest.raises(TypeError, match="a coroutine was expected, got"):
        loop.create_task(coro_fn)


@pytest.mark.parametrize("bad", [1, "x", None], ids=["int", "str", "None"])
def test_run_until_complete_non_awaitable(loop, bad):
    with pytest.raises(TypeError, match="An asyncio.Future, a coroutine or an awaitable is required"):
        loop.run_until_complete(bad)
    assert not loop.is_running()


def test_run_until_complete_closed_loop(loop):
    async def coro():
        pass

    loop.close()
    c = coro()
    try:
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            loop.run_until_complete(c)
    finally:
        c.close()


@pytest.mark.parametrize("bad", [-1, "fd", 1.5, None], ids=["negative", "str", "float", "None"])
def test_add_reader_bad_fd(loop, bad):
    ref = asyncio.SelectorEventLoop()
    try:
        with pytest.raises(ValueError) as exp:
            ref.add_reader(bad, print)
    finally:
        ref.close()
    for method in (loop.add_reader, loop.add_writer):
        with pytest.raises(ValueError) as got:
            method(bad, print)
        assert str(got.value) == str(exp.value)


def test_add_reader_object_without_fileno(loop):
    with pytest.raises(ValueError, match="Invalid file object"):
        loop.add_reader(object(), print)
    with pytest.raises(ValueError, match="Invalid file object"):
        loop.remove_reader(object())


@pytest.mark.loops("asyncio", "uvloop", "ringloop-epoll", "ringloop-portable")
def test_add_reader_closed_fd_epoll(loop):
    # epoll refuses a closed fd at registration time (EBADF); asyncio's
    # EpollSelector passes that OSError up.
    s = socket.socket()
    fd = s.fileno()
    s.close()
    with pytest.raises(OSError):
        loop.add_reader(fd, print)


def test_set_task_factory_non_callable(loop):
    with pytest.raises(TypeError, match="task factory must be a callable or None"):
        loop.set_task_factory("factory")


def test_run_in_executor_non_callable(loop):
    async def main():
        with pytest.raises(TypeError):
            await loop.run_in_executor(None, 42)

    run(loop, main())


@pytest.mark.xfail_uvloop("treats the int as an fd (OSError EBADF)")
def test_sock_recv_non_socket(loop):
    # asyncio calls sock.recv(): an int has no such attribute
    with pytest.raises(AttributeError):
        run(loop, loop.sock_recv(42, 10))


@pytest.mark.xfail_uvloop("reports the closed loop first")
def test_invalid_file_object_reported_before_closed_loop(loop):
    # asyncio checks the file object first: ValueError, even on a closed loop.
    loop.close()
    with pytest.raises(ValueError, match="Invalid file object"):
        loop.add_reader("not a file", lambda: None)
    with pytest.raises(ValueError, match="Invalid file object"):
        loop.remove_writer("not a file")


@pytest.mark.xfail_uvloop("uvloop's callback is positional-only")
@pytest.mark.parametrize("method", ["call_soon", "call_soon_threadsafe"])
def test_callback_may_be_passed_by_keyword(loop, method):
    # asyncio: def call_soon(self, callback, *args, context=None).
    out = []
    getattr(loop, method)(callback=lambda: out.append(1))
    getattr(loop, method)(context=None, callback=lambda: out.append(2))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == [1, 2]
    with pytest.raises(TypeError, match="multiple values for argument 'callback'"):
        getattr(loop, method)(print, callback=print)
    with pytest.raises(TypeError, match="unexpected keyword argument 'cb'"):
        getattr(loop, method)(cb=print)


def test_numeric_getaddrinfo_on_a_closed_loop_raises(loop, loop_name):
    if loop_name == "uvloop":
        pytest.skip("uvloop crashes (SIGSEGV) resolving on a closed loop")
    loop.close()
    coro = loop.getaddrinfo("127.0.0.1", 80)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        coro.send(None)
    coro.close()


@pytest.mark.xfail_uvloop("uvloop's resolver has its own message")
def test_getaddrinfo_flags_of_the_wrong_type(loop):
    # The socket module's error, as with asyncio's loop (not an operator
    # error from a numeric fast path).
    with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
        run(loop, loop.getaddrinfo("127.0.0.1", 80, flags="x"))
