"""More signal handling: a signal that arrives while the loop is stopped (or
before it first ran) is delivered once it runs; a second Ctrl-C while
asyncio.run()/ringloop.run() is cleaning up interrupts that cleanup at once.

add_signal_handler from a non-main thread is covered by
test_signals_ctrlc.py::test_add_signal_handler_not_main_thread.
"""

import asyncio
import os
import selectors
import signal
import socket
import subprocess
import threading
import time

import pytest

from tests.support import TIMEOUT, child_process, run


# ------------------------------------------ signals while not running ----

def _deliver_later(loop, run_first):
    got = []
    loop.add_signal_handler(signal.SIGUSR1, got.append, "usr1")
    try:
        if run_first:
            run(loop, asyncio.sleep(0.01))
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.05)  # delivered to the process; the loop is not running
        assert got == []

        async def wait():
            while not got:
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)  # and only once

        run(loop, wait(), timeout=2)
        assert got == ["usr1"]
        # nothing left behind to deliver once more
        run(loop, asyncio.sleep(0.05))
        assert got == ["usr1"]
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)


@pytest.mark.xfail_uvloop("a signal that arrives while the loop is stopped is lost")
def test_signal_while_stopped_delivered_on_next_run(loop):
    _deliver_later(loop, run_first=True)


@pytest.mark.xfail_uvloop("a signal that arrives before the loop first runs is lost")
def test_signal_before_first_run_delivered(loop):
    _deliver_later(loop, run_first=False)


async def _until(got):
    while not got:
        await asyncio.sleep(0.005)


@pytest.mark.xfail_uvloop("uvloop drops signals it has no handler for", run=False)
@pytest.mark.parametrize("other_runs", ["later", "in_a_thread"])
def test_signal_for_another_loops_handler_is_not_swallowed(loop, other_runs):
    # Another loop (asyncio's own here) has a handler for SIGUSR1; this loop
    # has none and runs in the main thread when SIGUSR1 arrives.  asyncio's
    # loop leaves the wake-up fd alone, so the other loop's handler runs;
    # a loop that takes the fd while it runs must pass such signals on.
    other = asyncio.SelectorEventLoop()
    got = []
    try:
        other.add_signal_handler(signal.SIGUSR1, got.append, "usr1")
        if other_runs == "in_a_thread":
            started = threading.Event()

            def serve():
                asyncio.set_event_loop(None)
                other.call_soon(started.set)
                other.run_forever()

            th = threading.Thread(target=serve)
            th.start()
            assert started.wait(TIMEOUT)

        async def main():
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(20):
                await asyncio.sleep(0.005)

        run(loop, main())
        if other_runs == "in_a_thread":
            deadline = time.monotonic() + TIMEOUT
            while not got and time.monotonic() < deadline:
                time.sleep(0.005)
            other.call_soon_threadsafe(other.stop)
            th.join(TIMEOUT)
        else:
            run(other, _until(got), timeout=2)
        assert got == ["usr1"]
    finally:
        other.remove_signal_handler(signal.SIGUSR1)
        other.close()


@pytest.mark.xfail_uvloop("uvloop restores the wake-up fd it found when its run began")
def test_a_handler_added_by_another_loop_during_a_run_keeps_working(loop):
    # While this loop runs, another loop (asyncio's own) gets a signal
    # handler, which points the wake-up fd at its socket.  When this loop
    # stops it must leave that alone: asyncio's loop never touches the fd
    # when it starts or stops.
    other = asyncio.SelectorEventLoop()
    got = []
    try:
        async def setup():
            other.add_signal_handler(signal.SIGUSR1, got.append, "usr1")

        run(loop, setup())
        other.call_later(0.02, os.kill, os.getpid(), signal.SIGUSR1)
        run(other, _until(got), timeout=2)
        assert got == ["usr1"]
    finally:
        other.remove_signal_handler(signal.SIGUSR1)
        other.close()


@pytest.mark.xfail_uvloop("uvloop restores the wake-up fd it found when its run began")
def test_a_wakeup_fd_set_during_a_run_is_kept(loop):
    # A library points the wake-up fd at its own pipe while the loop runs:
    # after the run it is still there (asyncio's loop leaves it alone).
    r, w = os.pipe()
    os.set_blocking(w, False)
    os.set_blocking(r, False)
    before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before)
    try:
        async def main():
            signal.set_wakeup_fd(w)
            await asyncio.sleep(0)

        run(loop, main())
        assert signal.set_wakeup_fd(w) == w
    finally:
        signal.set_wakeup_fd(before)
        os.close(r)
        os.close(w)


@pytest.mark.xfail_uvloop("uvloop restores the wake-up fd it found when its run began")
@pytest.mark.parametrize("reused", [False, True])
def test_a_wakeup_fd_closed_by_its_owner_during_a_run_is_not_put_back(loop, reused):
    # The wake-up fd this run replaced is unset and closed by its owner
    # during the run, its number perhaps reused by a new socket: it must not
    # be put back (a signal would then write into that socket), nor make
    # run_until_complete() fail.
    r, w = os.pipe()
    os.set_blocking(w, False)
    before = signal.set_wakeup_fd(w)
    old_handler = signal.signal(signal.SIGUSR1, lambda *args: None)
    pair = []
    dups = []
    try:
        async def main():
            signal.set_wakeup_fd(-1)
            os.close(w)
            if reused:
                x, y = socket.socketpair()
                if y.fileno() == w:
                    x, y = y, x
                pair.extend((x, y))
                if x.fileno() != w:
                    os.dup2(x.fileno(), w)  # the number now names x's socket
                    dups.append(w)
                y.setblocking(False)
            await asyncio.sleep(0)
            return "done"

        assert run(loop, main()) == "done"
        assert signal.set_wakeup_fd(-1) == -1
        if reused:
            signal.raise_signal(signal.SIGUSR1)
            with pytest.raises(BlockingIOError):
                pair[1].recv(10)            # nothing written through the old number
    finally:
        signal.set_wakeup_fd(before)
        signal.signal(signal.SIGUSR1, old_handler)
        os.close(r)
        for fd in dups:
            os.close(fd)
        for sock in pair:
            sock.close()


def test_signal_while_stopped_then_more_signals(loop):
    # signals sent while the loop runs, over several runs with stops between
    got = []
    loop.add_signal_handler(signal.SIGUSR2, got.append, "usr2")
    try:
        run(loop, asyncio.sleep(0.01))

        async def send_and_wait(n):
            os.kill(os.getpid(), signal.SIGUSR2)
            while len(got) < n:
                await asyncio.sleep(0.005)

        for n in (1, 2, 3):
            run(loop, send_and_wait(n), timeout=2)
        assert got == ["usr2"] * 3
    finally:
        loop.remove_signal_handler(signal.SIGUSR2)


# ----------------------------------------- second Ctrl-C during cleanup ----

SECOND_CTRLC_CHILD = r"""
import asyncio, sys
from tests.support import report_keyboard_interrupt, run_in_child_with_ringloop_run
name, mode, where = sys.argv[1], sys.argv[2], sys.argv[3]

async def stubborn():
    # a task that swallows its first cancellation and then takes long
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        print("task-cancelled", flush=True)
        await asyncio.sleep(30)
        print("task-cleanup-done", flush=True)

async def main():
    keep = None
    if where == "task":
        keep = asyncio.get_running_loop().create_task(stubborn())
    try:
        await asyncio.sleep(0)
        print("ready", flush=True)
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        print("main-cancelled", flush=True)
        if where == "main":
            # main's own cleanup takes long
            await asyncio.sleep(30)
            print("main-cleanup-done", flush=True)
        raise

def start():
    if mode == "asyncio.run":
        if name == "asyncio":
            asyncio.run(main())
        elif sys.version_info >= (3, 12):
            asyncio.run(main(), loop_factory=lambda: make_loop(name))
        else:  # 3.11: asyncio.run() is exactly this
            with asyncio.Runner(loop_factory=lambda: make_loop(name)) as runner:
                runner.run(main())
    elif mode == "ringloop.run":
        run_in_child_with_ringloop_run(main(), name)
    else:
        raise SystemExit("unknown mode " + mode)

report_keyboard_interrupt(start)
"""


class _Lines:
    """Lines from a child's unbuffered stdout pipe, each bounded in time.

    (select() on a buffered text stream misses lines that arrived together
    and sit in its buffer: read the fd ourselves.)
    """

    def __init__(self, pipe):
        self.fd = pipe.fileno()
        self.buf = b""
        self.eof = False

    def readline(self, timeout):
        """The next line without its newline; None on timeout, "" at EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if self.eof:
                return ""
            with selectors.DefaultSelector() as sel:
                sel.register(self.fd, selectors.EVENT_READ)
                if not sel.select(max(0.0, deadline - time.monotonic())):
                    return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                self.eof = True
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode().strip()

    def rest(self):
        """Everything after the lines read, once the child ended."""
        data = self.buf
        while True:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                break
            data += chunk
        self.buf = b""
        return data.decode().splitlines()


def _second_ctrlc(loop_name, mode, where):
    """Start the child, SIGINT it once, wait until its cleanup blocks, SIGINT
    again; return (returncode, stdout lines, stderr, seconds the child took
    to end after the second SIGINT)."""
    with child_process(SECOND_CTRLC_CHILD, loop_name, mode, where, bufsize=0) as proc:
        out = _Lines(proc.stdout)
        lines = []

        def fail(why):
            proc.kill()
            proc.wait()
            pytest.fail(f"{why}\nstdout: {lines + out.rest()!r}\n"
                        f"stderr: {proc.stderr.read().decode()}")

        line = out.readline(30)
        if line != "ready":
            fail("child did not get ready")
        lines.append(line)
        time.sleep(0.1)  # let it block in poll
        proc.send_signal(signal.SIGINT)
        blocked = "main-cancelled" if where == "main" else "task-cancelled"
        while not lines or lines[-1] != blocked:
            line = out.readline(TIMEOUT)
            if not line:
                fail("child did not start its cleanup")
            lines.append(line)
        time.sleep(0.2)  # let the cleanup block in poll
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            fail("child did not end after the second SIGINT")
        elapsed = time.monotonic() - t0
        lines += out.rest()
        err = proc.stderr.read().decode()
    return proc.returncode, lines, err, elapsed


def _check_second_ctrlc_ends_cleanup(loop_name, mode, where):
    """The second SIGINT (see _second_ctrlc) ends the child's blocked cleanup
    at once with KeyboardInterrupt (exit status 3)."""
    rc, lines, err, elapsed = _second_ctrlc(loop_name, mode, where)
    if where == "main":
        # main's except block is blocked; the second SIGINT raises
        # KeyboardInterrupt out of the loop (asyncio.Runner's SIGINT handler)
        assert lines == ["ready", "main-cancelled", "KeyboardInterrupt"], err
    else:
        # main ended; the runner's final task cancellation is blocked; the
        # second SIGINT (default handler again) interrupts it
        assert lines == ["ready", "main-cancelled", "task-cancelled", "KeyboardInterrupt"], err
    assert rc == 3, err
    assert elapsed < 5, f"took {elapsed:.1f} s after the second SIGINT"


@pytest.mark.parametrize("where", ["main", "task"])
def test_second_ctrlc_interrupts_asyncio_run_cleanup(loop_name, where):
    _check_second_ctrlc_ends_cleanup(loop_name, "asyncio.run", where)


@pytest.mark.loops("ringloop-epoll", "ringloop-portable")
@pytest.mark.parametrize("where", ["main", "task"])
def test_second_ctrlc_interrupts_ringloop_run_cleanup(loop_name, where):
    _check_second_ctrlc_ends_cleanup(loop_name, "ringloop.run", where)
