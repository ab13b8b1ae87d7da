"""Helpers shared by the behaviour suite (no fixtures here: see conftest.py)."""

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import textwrap

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
