"""The suite's own leak check fails tests that leak (checked, not assumed)."""

import os
import shutil
import subprocess
import sys
import textwrap

from tests.support import TESTS_DIR

LEAKY = '''
import asyncio, os, socket, threading, time
import pytest

_keep = []

def test_clean(loop):
    loop.run_until_complete(asyncio.sleep(0))

def test_fd_leak(loop):
    _keep.append(socket.socket())

def test_thread_leak(loop):
    ev = threading.Event()
    _keep.append(ev)
    t = threading.Thread(target=ev.wait, args=(30,), daemon=True)
    t.start()

def test_unclosed_factory_loop(loop_factory):
    _keep.append(loop_factory())

def test_running_loop_left_set(loop):
    asyncio._set_running_loop(loop)

def test_policy_left_changed(loop):
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())

def test_current_loop_left_set(loop):
    asyncio.set_event_loop(loop)

def test_signal_handler_left(loop):
    import signal
    signal.signal(signal.SIGUSR1, lambda *a: None)

def test_zz_release():
    for x in _keep:
        if isinstance(x, threading.Event):
            x.set()
'''


def test_leak_check_fails_leaky_tests(tmp_path):
    pkg = tmp_path / "tests"
    pkg.mkdir()
    for name in ("__init__.py", "conftest.py", "support.py"):
        shutil.copy(os.path.join(TESTS_DIR, name), pkg / name)
    (pkg / "test_leaky.py").write_text(textwrap.dedent(LEAKY))
    env = dict(os.environ, RINGLOOP_TEST_LOOPS="asyncio")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rE",
         "-o", "addopts=", str(pkg)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    errored = {line.split("::")[1].split("[")[0] for line in out.splitlines()
               if line.startswith("ERROR ") and "::" in line}
    assert errored == {
        "test_fd_leak", "test_thread_leak", "test_unclosed_factory_loop",
        "test_running_loop_left_set", "test_policy_left_changed",
        "test_current_loop_left_set", "test_signal_handler_left",
    }, out
    assert "leak check failed" in out
    assert "fds left open" in out
    assert "threads left alive" in out
    assert "loop left open" in out
    assert proc.returncode == 1, out
