"""Helpers shared by the behaviour suite (no fixtures here: see conftest.py)."""

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import textwrap

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT_DIR = os.path.dirname(TESTS_DIR)

# Upper bound for any single awaited step in a test: generous, only there so
# a broken loop fails a test instead of hanging the suite.
TIMEOUT = 10.0


def run(loop, coro, timeout=TIMEOUT):
    """Run ``coro`` to completion on ``loop``, bounded by ``timeout`` seconds."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def has_ipv6():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@contextlib.contextmanager
def tcp_listener(family=socket.AF_INET, backlog=16):
    """A non-blocking listening TCP socket on loopback."""
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    srv = socket.socket(family, socket.SOCK_STREAM)
    try:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((host, 0))
        srv.listen(backlog)
        srv.setblocking(False)
        yield srv
    finally:
        srv.close()


@contextlib.contextmanager
def tcp_pair(family=socket.AF_INET):
    """Two connected non-blocking TCP sockets over loopback."""
    with tcp_listener(family) as srv:
        cli = socket.socket(family, socket.SOCK_STREAM)
        try:
            cli.settimeout(TIMEOUT)
            cli.connect(srv.getsockname()[:2])
            srv.setblocking(True)
            srv.settimeout(TIMEOUT)
            conn, _ = srv.accept()
        except BaseException:
            cli.close()
            raise
    try:
        cli.setblocking(False)
        conn.setblocking(False)
        yield cli, conn
    finally:
        cli.close()
        conn.close()


@contextlib.contextmanager
def socketpair(*args):
    a, b = socket.socketpair(*args)
    try:
        a.setblocking(False)
        b.setblocking(False)
        yield a, b
    finally:
        a.close()
        b.close()


@contextlib.contextmanager
def pipe():
    r, w = os.pipe()
    try:
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        yield r, w
    finally:
        for fd in (r, w):
            try:
                os.close(fd)
            except OSError:
                pass


def child_env(**extra):
    """Environment for a child Python, without the debug switches of ours."""
    env = dict(os.environ)
    for key in ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE", "RINGLOOP_PORTABLE"):
        env.pop(key, None)
    env.update(extra)
    return env


def child_script(body):
    """Child source: this process's import path (even under -E), then ``body``.

    ``make_loop(name)`` (see conftest) is in scope for ``body``.
    """
    paths = [ROOT_DIR] + [p for p in sys.path if p]
    prelude = (
        "import sys, signal\n"
        # A process started in the background inherits SIGINT as ignored,
        # and Python then installs no KeyboardInterrupt handler: restore it
        # so Ctrl-C behaves as in a terminal.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        f"sys.path[:0] = {paths!r}\n"
        "from tests.conftest import make_loop\n"
    )
    return prelude + textwrap.dedent(body)


@contextlib.contextmanager
def child_process(body, *args, **popen_kwargs):
    """A child Python running ``body`` (see child_script; ``args`` are its
    sys.argv[1:]) with stdout and stderr piped, as a Popen.

    On exit it is killed if still running, reaped, and its pipes closed.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", child_script(body), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=child_env(), cwd=ROOT_DIR, **popen_kwargs)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def run_in_child_with_ringloop_run(main, loop_name):
    """For child scripts: ringloop.run(main) on the kind of loop ``loop_name``
    names (RINGLOOP_PORTABLE=1 for "ringloop-portable")."""
    import ringloop

    if loop_name == "ringloop-portable":
        os.environ["RINGLOOP_PORTABLE"] = "1"
    return ringloop.run(main)


def report_keyboard_interrupt(fn):
    """For child scripts: call ``fn()``; print "KeyboardInterrupt" and exit
    with status 3 if it raised KeyboardInterrupt, else print "no interrupt"."""
    try:
        fn()
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
        sys.exit(3)
    print("no interrupt", flush=True)


def run_child(body, *, args=(), env=None, timeout=30, python_args=()):
    """Run ``body`` (python source; ``make_loop(name)`` is in scope) in a child."""
    proc = subprocess.run(
        [sys.executable, *python_args, "-c", child_script(body), *args],
        env=child_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT_DIR,
    )
    return proc


# ------------------------------------------------------------ transports --

class Recorder(asyncio.Protocol):
    """A protocol that records what its transport does to it.

    ``made`` / ``eof`` / ``lost`` are futures (``lost`` holds the argument
    of ``connection_lost``); ``await received(n)`` waits until ``n`` bytes
    arrived in total and returns them, or raises ``EOFError`` if the
    connection ended first.  ``echo=True`` writes every chunk back;
    ``keep_open`` is what ``eof_received`` returns.  Create it while the
    loop runs (protocol factories are called from the loop).
    """

    def __init__(self, *, echo=False, keep_open=None):
        loop = asyncio.get_running_loop()
        self.echo = echo
        self.keep_open = keep_open
        self.transport = None
        self.events = []        # callback names in order (runs of data_received folded)
        self.data = bytearray()
        self.pauses = 0
        self.resumes = 0
        self.made = loop.create_future()
        self.eof = loop.create_future()
        self.lost = loop.create_future()
        self._waiters = []

    def _event(self, name):
        if not (name == "data_received" and self.events and self.events[-1] == name):
            self.events.append(name)

    def connection_made(self, transport):
        self._event("connection_made")
        self.transport = transport
        self.made.set_result(transport)

    def data_received(self, data):
        self._event("data_received")
        self.data += data
        if self.echo:
            self.transport.write(data)
        self._wake()

    def eof_received(self):
        self._event("eof_received")
        if not self.eof.done():
            self.eof.set_result(None)
        self._wake()
        return self.keep_open

    def connection_lost(self, exc):
        self._event("connection_lost")
        self.lost.set_result(exc)
        self._wake()

    def pause_writing(self):
        self._event("pause_writing")
        self.pauses += 1

    def resume_writing(self):
        self._event("resume_writing")
        self.resumes += 1

    def _ended(self):
        return self.eof.done() or self.lost.done()

    def _wake(self):
        for n, fut in self._waiters:
            if fut.done():
                continue
            if len(self.data) >= n:
                fut.set_result(None)
            elif self._ended():
                fut.set_exception(EOFError(
                    f"connection ended after {len(self.data)} of {n} bytes"))
        self._waiters = [w for w in self._waiters if not w[1].done()]

    async def received(self, n):
        if len(self.data) < n:
            if self._ended():
                raise EOFError(f"connection ended after {len(self.data)} of {n} bytes")
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append((n, fut))
            await fut
        return bytes(self.data)


class Accepted:
    """Protocol factory that keeps every server-side protocol it made."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.protocols = []
        self._new = None

    def __call__(self):
        proto = Recorder(**self.kwargs)
        self.protocols.append(proto)
        if self._new is not None and not self._new.done():
            self._new.set_result(None)
        return proto

    async def wait(self, n):
        """Wait until ``n`` connections were accepted; return the n-th protocol."""
        while len(self.protocols) < n:
            self._new = asyncio.get_running_loop().create_future()
            await self._new
        proto = self.protocols[n - 1]
        await proto.made
        return proto


class FlowRecorder(Recorder):
    """A Recorder that also records the write buffer size seen in each
    flow-control call: ``sizes`` is a list of ("pause" | "resume", size)."""

    def __init__(self):
        super().__init__()
        self.sizes = []

    def pause_writing(self):
        super().pause_writing()
        self.sizes.append(("pause", self.transport.get_write_buffer_size()))

    def resume_writing(self):
        super().resume_writing()
        self.sizes.append(("resume", self.transport.get_write_buffer_size()))


def no_flow(events):
    """``events`` (a Recorder's) without pause_writing/resume_writing."""
    return [e for e in events if e not in ("pause_writing", "resume_writing")]


def check_write_buffer_limit_rules(tr):
    """How set_write_buffer_limits() derives the missing limit (low = high / 4,
    high = 4 * low), takes zeros, and rejects high < low (asyncio's rules for
    every write transport).  Leaves the limits at (0, 0)."""
    tr.set_write_buffer_limits(high=1000)
    assert tr.get_write_buffer_limits() == (250, 1000)
    tr.set_write_buffer_limits(low=100)
    assert tr.get_write_buffer_limits() == (100, 400)
    tr.set_write_buffer_limits(high=300, low=200)
    assert tr.get_write_buffer_limits() == (200, 300)
    tr.set_write_buffer_limits(high=0, low=0)
    assert tr.get_write_buffer_limits() == (0, 0)
    with pytest.raises(ValueError, match=r"high \(1\) must be >= low \(2\) must be >= 0"):
        tr.set_write_buffer_limits(high=1, low=2)


async def check_pause_resume_reading(tr, proto, send, send_eof):
    """pause_reading()/resume_reading() on a read transport fresh from its
    connection (``proto`` a Recorder): while paused neither data nor EOF
    reach the protocol, resuming delivers them, and a second pause or
    resume is a no-op.

    ``send(data)`` writes to the other end, ``send_eof()`` ends it.  Returns
    once reading resumed after the EOF was sent: the caller waits for the end.
    """
    assert tr.is_reading()
    tr.pause_reading()
    assert not tr.is_reading()
    tr.pause_reading()  # again: no-op
    send(b"held back")
    await asyncio.sleep(0.05)
    assert proto.data == b""
    tr.resume_reading()
    assert tr.is_reading()
    tr.resume_reading()  # again: no-op
    assert await proto.received(9) == b"held back"
    # EOF is held back too while paused
    tr.pause_reading()
    send_eof()
    await asyncio.sleep(0.05)
    assert not proto.eof.done() and not proto.lost.done()
    tr.resume_reading()


async def close_transport(transport, protocol=None, timeout=TIMEOUT):
    """Close ``transport`` and wait (bounded) for its ``connection_lost``."""
    transport.close()
    if protocol is not None:
        await asyncio.wait_for(asyncio.shield(protocol.lost), timeout)


@contextlib.contextmanager
def short_tmpdir():
    """A fresh directory under /tmp with a short name (AF_UNIX paths < 108 bytes)."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="rl-", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def refusing_address(family=socket.AF_INET):
    """A loopback (host, port) where connections are refused.

    The port stays bound (not listening) while the block runs, so nobody
    else can start listening there.
    """
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        yield s.getsockname()[:2]


# ------------------------------------------------------------- children --

def child_pids():
    """Pids of this process's children, running or zombie (from /proc)."""
    me = os.getpid()
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = stat[stat.rindex(b")") + 2:].split()
        if int(fields[1]) == me:
            pids.append(int(name))
    return pids


def assert_reaped(pid):
    """``pid`` was this process's child and has been waited for (no zombie)."""
    try:
        got = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return
    raise AssertionError(f"child {pid} not reaped: waitpid gave {got}")
