"""Ctrl-C (SIGINT) handling in child processes, and loop.add_signal_handler."""

import asyncio
import os
import selectors
import signal
import subprocess
import threading
import time

import pytest

from tests.support import TIMEOUT, child_process, run

CTRLC_CHILD = r"""
import asyncio, threading, time
from tests.support import report_keyboard_interrupt, run_in_child_with_ringloop_run
name, mode = sys.argv[1], sys.argv[2]
release = threading.Event()

async def main():
    loop = asyncio.get_running_loop()
    try:
        if mode.endswith("+executor"):
            # an executor thread stays alive while the loop blocks in poll
            loop.run_in_executor(None, release.wait, 60)
        print("ready", flush=True)
        await loop.create_future()  # forever: no timer, the loop blocks in poll
    except asyncio.CancelledError:
        print("cancelled", flush=True)
        raise
    finally:
        release.set()
        print("finally", flush=True)

def start():
    if mode.startswith("ringloop.run"):
        run_in_child_with_ringloop_run(main(), name)
    elif mode.startswith("runner"):
        with asyncio.Runner(loop_factory=lambda: make_loop(name)) as runner:
            runner.run(main())
    elif mode == "run_until_complete":
        loop = make_loop(name)
        task = loop.create_task(main())
        try:
            loop.run_until_complete(task)
        except KeyboardInterrupt:
            print("KeyboardInterrupt-from-loop running=%s" % loop.is_running(), flush=True)
            # the loop survives: finish the task on it and close
            task.cancel()
            try:
                loop.run_until_complete(task)
            except asyncio.CancelledError:
                pass
            loop.close()
            raise
    else:
        raise SystemExit("unknown mode " + mode)

report_keyboard_interrupt(start)
"""


def _run_ctrlc_child(loop_name, mode, delay=0.2):
    with child_process(CTRLC_CHILD, loop_name, mode, text=True) as proc:
        try:
            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ)
            ready = sel.select(30)
            sel.close()
            line = proc.stdout.readline() if ready else ""
            if line.strip() != "ready":
                proc.kill()
                out, err = proc.communicate(timeout=TIMEOUT)
                pytest.fail(f"child did not get ready: {line!r}{out!r}\n{err}")
            time.sleep(delay)  # let it block in poll
            t0 = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=TIMEOUT)
            elapsed = time.monotonic() - t0
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"child did not exit after SIGINT\nstdout: {out}\nstderr: {err}")
    return proc.returncode, out.splitlines(), err, elapsed


def test_ctrlc_runner(loop_name):
    rc, lines, err, _ = _run_ctrlc_child(loop_name, "runner")
    # as asyncio.run: the main task is cancelled, its finally runs, then
    # KeyboardInterrupt is raised
    assert lines == ["cancelled", "finally", "KeyboardInterrupt"], err
    assert rc == 3, err


def test_ctrlc_runner_with_executor_thread(loop_name):
    rc, lines, err, _ = _run_ctrlc_child(loop_name, "runner+executor")
    assert lines == ["cancelled", "finally", "KeyboardInterrupt"], err
    assert rc == 3, err


def test_ctrlc_run_until_complete(loop_name):
    rc, lines, err, _ = _run_ctrlc_child(loop_name, "run_until_complete")
    # no runner: KeyboardInterrupt comes straight out of the blocked poll
    assert lines[0] == "KeyboardInterrupt-from-loop running=False", err
    assert lines[1:] == ["cancelled", "finally", "KeyboardInterrupt"], err
    assert rc == 3, err


@pytest.mark.loops("ringloop-epoll", "ringloop-portable")
def test_ctrlc_ringloop_run(loop_name):
    rc, lines, err, _ = _run_ctrlc_child(loop_name, "ringloop.run")
    assert lines == ["cancelled", "finally", "KeyboardInterrupt"], err
    assert rc == 3, err


@pytest.mark.loops("ringloop-epoll", "ringloop-portable")
def test_ctrlc_ringloop_run_with_executor_thread(loop_name):
    rc, lines, err, _ = _run_ctrlc_child(loop_name, "ringloop.run+executor")
    assert lines == ["cancelled", "finally", "KeyboardInterrupt"], err
    assert rc == 3, err


# --------------------------------------------------- add_signal_handler ----

def test_add_signal_handler(loop):
    got = []

    async def main():
        fut = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, lambda *a: (got.append(a), fut.set_result(None)),
                                "arg")
        os.kill(os.getpid(), signal.SIGUSR1)
        await fut

    try:
        run(loop, main())
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
    assert got == [("arg",)]


@pytest.mark.xfail_uvloop("leaves its own Python-level handler installed")
def test_remove_signal_handler_restores_sig_dfl(loop):
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    assert signal.getsignal(signal.SIGUSR1) != signal.SIG_DFL
    loop.remove_signal_handler(signal.SIGUSR1)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_signal_from_other_thread_wakes_loop(loop):
    far = loop.call_later(3600, lambda: None)
    fut = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR2, lambda: fut.set_result("sig"))
    t = threading.Thread(target=lambda: (time.sleep(0.05), os.kill(os.getpid(), signal.SIGUSR2)))
    t.start()
    try:
        assert run(loop, fut) == "sig"
    finally:
        t.join(TIMEOUT)
        far.cancel()
        loop.remove_signal_handler(signal.SIGUSR2)


@pytest.mark.xfail_uvloop("remove_signal_handler returns False for a handler added before the loop ran")
def test_remove_signal_handler_return_values(loop):
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert loop.remove_signal_handler(signal.SIGUSR1) is False


@pytest.mark.xfail_uvloop("remove_signal_handler returns False for a handler added before the loop ran")
def test_remove_sigint_handler_restores_default_int_handler(loop):
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    assert loop.remove_signal_handler(signal.SIGINT) is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.xfail_uvloop("leaves its own Python-level handler installed")
def test_close_removes_signal_handlers(loop):
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    loop.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_add_signal_handler_coroutine_rejected(loop):
    async def coro():
        pass

    with pytest.raises(TypeError, match=r"coroutines cannot be used with add_signal_handler\(\)"):
        loop.add_signal_handler(signal.SIGUSR1, coro)


def _check_bad_signal(loop, sig):
    ref = asyncio.SelectorEventLoop()
    try:
        with pytest.raises((ValueError, RuntimeError)) as exp:
            ref.add_signal_handler(sig, lambda: None)
    finally:
        ref.close()
    with pytest.raises(type(exp.value)) as got:
        loop.add_signal_handler(sig, lambda: None)
    assert str(got.value) == str(exp.value)


@pytest.mark.xfail_uvloop("different message for out-of-range signals")
@pytest.mark.parametrize("sig", [0, 4096])
def test_add_signal_handler_out_of_range(loop, sig):
    _check_bad_signal(loop, sig)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_add_signal_handler_uncatchable(loop, sig):
    _check_bad_signal(loop, sig)


def test_add_signal_handler_not_main_thread(loop):
    errors = []

    def worker():
        try:
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        except Exception as exc:
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join(TIMEOUT)
    assert len(errors) == 1
    assert isinstance(errors[0], (ValueError, RuntimeError))
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_signal_handler_exception_reported(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def main():
        def bad():
            raise ValueError("in signal handler")

        loop.add_signal_handler(signal.SIGUSR1, bad)
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(100):
            await asyncio.sleep(0.001)
            if contexts:
                break

    try:
        run(loop, main())
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
    assert isinstance(contexts[0]["exception"], ValueError)
