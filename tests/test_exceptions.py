"""Exception handler API and the default handler's logging."""

import asyncio
import logging

import pytest

from tests.support import run, run_child


class Boom(Exception):
    pass


def _asyncio_records(caplog):
    return [r for r in caplog.records if r.name == "asyncio"]


def test_callback_exception_reported_and_loop_continues(loop, loop_name, caplog):
    calls = []

    def bad():
        raise Boom("in callback")

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop.call_soon(bad)
        loop.call_soon(calls.append, "after")
        loop.call_later(0.001, bad)
        loop.call_later(0.002, calls.append, "timer-after")
        run(loop, asyncio.sleep(0.02))
    if loop_name == "uvloop":
        # libuv runs due timers before the ready queue, so when the machine
        # stalls more than 2 ms before the first iteration uvloop runs the
        # timer first; asyncio (and ringloop) always drain the ready queue
        # scheduled before the run ahead of a timer.
        assert sorted(calls) == ["after", "timer-after"]
    else:
        assert calls == ["after", "timer-after"]
    errors = [r for r in _asyncio_records(caplog) if r.levelno == logging.ERROR]
    assert len(errors) == 2
    for rec in errors:
        assert rec.getMessage().startswith("Exception in callback ")
        assert "bad" in rec.getMessage()
        assert rec.exc_info is not None
        assert rec.exc_info[0] is Boom


def test_exception_handler_receives_context(loop):
    contexts = []

    def handler(lp, ctx):
        contexts.append((lp, ctx))

    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler

    def bad():
        raise Boom("x")

    h = loop.call_soon(bad)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(contexts) == 1
    lp, ctx = contexts[0]
    assert lp is loop
    assert ctx["message"].startswith("Exception in callback")
    assert isinstance(ctx["exception"], Boom)
    assert ctx["handle"] is h


def test_set_exception_handler_none_restores_default(loop, caplog):
    loop.set_exception_handler(lambda lp, ctx: None)
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "back to default"})
    assert [r.getMessage() for r in _asyncio_records(caplog)] == ["back to default"]


@pytest.mark.parametrize("bad", [1, "handler", object()])
def test_set_exception_handler_type_error(loop, bad):
    with pytest.raises(TypeError, match="A callable object or None is expected, got "):
        loop.set_exception_handler(bad)
    assert loop.get_exception_handler() is None


def test_call_exception_handler_default_logs(loop, caplog):
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop.call_exception_handler({"message": "plain message"})
        try:
            raise Boom("with exc")
        except Boom as exc:
            loop.call_exception_handler({
                "message": "has exception",
                "exception": exc,
                "extra_key": 12345,
            })
    recs = _asyncio_records(caplog)
    assert len(recs) == 2
    assert all(r.levelno == logging.ERROR for r in recs)
    assert recs[0].getMessage() == "plain message"
    assert not (recs[0].exc_info and recs[0].exc_info[0])
    msg = recs[1].getMessage()
    assert msg.splitlines()[0] == "has exception"
    assert "extra_key: 12345" in msg.splitlines()
    assert recs[1].exc_info[0] is Boom


def test_call_exception_handler_without_message(loop, caplog):
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"exception": Boom("no message")})
    recs = _asyncio_records(caplog)
    assert len(recs) == 1
    assert recs[0].getMessage().splitlines()[0] == "Unhandled exception in event loop"


def test_default_exception_handler_method(loop, caplog):
    seen = []

    def handler(lp, ctx):
        seen.append(ctx["message"])
        lp.default_exception_handler(ctx)

    loop.set_exception_handler(handler)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "via custom"})
    assert seen == ["via custom"]
    assert [r.getMessage() for r in _asyncio_records(caplog)] == ["via custom"]


def test_exception_handler_that_raises(loop, caplog):
    calls = []

    def handler(lp, ctx):
        calls.append(ctx["message"])
        raise RuntimeError("handler broke")

    loop.set_exception_handler(handler)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_soon(lambda: 1 / 0)
        loop.call_soon(calls.append, "loop-continued")
        loop.call_soon(loop.stop)
        loop.run_forever()
    assert calls[0].startswith("Exception in callback")
    assert calls[1] == "loop-continued"
    recs = _asyncio_records(caplog)
    assert len(recs) == 1
    assert recs[0].getMessage().startswith("Unhandled error in exception handler")
    assert recs[0].exc_info[0] is RuntimeError


def test_exception_handler_called_in_loop_for_timer_and_reader(loop):
    import socket

    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    a, b = socket.socketpair()
    try:
        a.setblocking(False)

        def bad_reader():
            loop.remove_reader(a)
            raise Boom("reader")

        loop.add_reader(a, bad_reader)
        b.send(b"x")
        loop.call_later(0.001, lambda: (_ for _ in ()).throw(Boom("timer")))
        run(loop, asyncio.sleep(0.05))
    finally:
        loop.remove_reader(a)
        a.close()
        b.close()
    got = sorted(str(c["exception"]) for c in contexts)
    assert got == ["reader", "timer"]
    for c in contexts:
        assert c["message"].startswith("Exception in callback")


def test_base_exception_subclass_in_callback_is_reported(loop):
    # Handle._run only lets SystemExit and KeyboardInterrupt escape; other
    # BaseExceptions go to the exception handler.
    class MyBase(BaseException):
        pass

    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def bad():
        raise MyBase()

    loop.call_soon(bad)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], MyBase)


def test_exception_handler_runs_while_the_exception_is_handled(loop):
    # asyncio calls the handler from inside Handle._run's `except` clause:
    # sys.exc_info() there is the callback's exception (logging.exception()
    # in a handler relies on it), and the traceback reaches the callback.
    import sys
    seen = []

    def handler(lp, ctx):
        seen.append((sys.exc_info()[1], ctx["exception"]))

    loop.set_exception_handler(handler)

    def bad():
        raise Boom("handled")

    loop.call_soon(bad)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(seen) == 1
    current, reported = seen[0]
    assert current is reported
    assert isinstance(reported, Boom)
    tb = reported.__traceback__
    names = []
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert names[-1] == "bad"
    assert sys.exc_info() == (None, None, None)


def test_callback_that_cancels_its_own_handle(loop):
    # Cancelling a handle drops its callback and arguments; the callback
    # that does so while it runs must still finish safely, in its context.
    import contextvars
    var = contextvars.ContextVar("var", default="outer")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "inner")
    box = {}
    seen = []

    class Payload:
        pass

    def callback(payload):
        box["handle"].cancel()
        seen.append((var.get(), type(payload).__name__))

    box["handle"] = loop.call_soon(callback, Payload(), context=ctx)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [("inner", "Payload")]
    assert var.get() == "outer"


def test_callback_raising_in_its_context_leaves_it(loop):
    # After a callback raised, its context has been exited: the same
    # context runs the next callback, and the loop's own context is intact.
    import contextvars
    var = contextvars.ContextVar("var", default="outer")
    ctx = contextvars.copy_context()
    contexts = []
    seen = []
    loop.set_exception_handler(lambda lp, c: contexts.append(c))

    def bad():
        var.set("changed")
        raise Boom()

    loop.call_soon(bad, context=ctx)
    loop.call_soon(lambda: seen.append(var.get()), context=ctx)
    loop.call_soon(lambda: seen.append(var.get()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(contexts) == 1
    assert seen == ["changed", "outer"]
    assert var.get() == "outer"


FOREIGN_CONTEXT_CHILD = """
import ctypes
import contextvars
enter = ctypes.pythonapi.PyContext_Enter
leave = ctypes.pythonapi.PyContext_Exit
enter.argtypes = leave.argtypes = [ctypes.py_object]
foreign = contextvars.Context()
lp = make_loop(sys.argv[1])
contexts = []
seen = []
lp.set_exception_handler(lambda l, c: contexts.append(c))
lp.call_soon(enter, foreign)
lp.call_soon(seen.append, "next")
lp.call_soon(lp.stop)
try:
    lp.run_forever()
finally:
    assert leave(foreign) == 0      # the thread's own context again
lp.close()
print(seen)
for c in contexts:
    print(type(c["exception"]).__name__, str(c["exception"])[:40])
"""


@pytest.mark.xfail_uvloop("uvloop crashes the interpreter when the context cannot be left",
                         run=False)
def test_callback_leaving_another_context_entered_is_reported(loop_name):
    # C code in a callback that enters a context and does not leave it:
    # leaving the callback's own context then fails, which asyncio's
    # Context.run() reports as the callback's error; the loop goes on.
    # On 3.12+ asyncio runs the exception handler in the handle's context,
    # which is still entered: the handler cannot run and the failure is
    # logged ("Unhandled error in exception handler") on every loop.
    import sys
    proc = run_child(FOREIGN_CONTEXT_CHILD, args=(loop_name,))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "['next']", proc.stdout
    if sys.version_info >= (3, 12):
        assert lines[1:] == [], proc.stdout
        assert "Unhandled error in exception handler" in proc.stderr, proc.stderr
        assert "cannot exit context" in proc.stderr, proc.stderr
    else:
        assert len(lines) == 2, proc.stdout
        assert lines[1].startswith("RuntimeError cannot exit context"), proc.stdout


@pytest.mark.ringloop_only
def test_interrupt_while_run_forever_starts_leaves_loop_usable(loop):
    # A Ctrl-C landing in the Python code run_forever() runs before its
    # first iteration (here: threading.main_thread(), raising from a trace
    # function) must undo the start: the loop is not left "running".
    import sys
    fired = []

    def tracer(frame, event, arg):
        if (event == "call" and frame.f_code.co_name == "main_thread"
                and not fired):
            fired.append(True)
            raise KeyboardInterrupt
        return None

    loop.call_soon(loop.stop)
    sys.settrace(tracer)
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_forever()
    finally:
        sys.settrace(None)
    assert fired
    assert not loop.is_running()
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    ran = []
    loop.call_soon(ran.append, 1)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert ran == [1]


def test_system_exit_in_callback_propagates(loop):
    def bad():
        raise SystemExit(5)

    calls = []
    loop.call_soon(bad)
    loop.call_soon(calls.append, 1)
    with pytest.raises(SystemExit):
        loop.run_forever()
    assert not loop.is_running()
    # The remaining callback is still queued and runs on the next run.
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == [1]


def test_exception_in_task_is_not_sent_to_handler_when_retrieved(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def bad():
        raise Boom

    async def main():
        with pytest.raises(Boom):
            await loop.create_task(bad())

    run(loop, main())
    assert contexts == []
