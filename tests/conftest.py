"""Behaviour suite wiring: one registry of loop implementations, one case per behaviour.

Every test that takes the ``loop`` (or ``loop_factory`` / ``loop_impl``)
fixture runs once per registered loop implementation.  asyncio's own
``SelectorEventLoop`` is the reference: a ringloop result that differs from
it is a ringloop bug unless documented.

Registry: ``LOOPS`` below.  Add a ``LoopImpl`` to run the whole suite on a
new implementation (e.g. a ProactorEventLoop on io_uring).

Markers understood here (registered in ``pytest_configure``):

* ``ringloop_only``       run only on the ringloop variants (ringloop-only API)
* ``many_fds``            opens fds that may be >= 1024: skipped on SelectSelector
* ``xfail_uvloop(reason, condition=True)``  uvloop differs from asyncio here:
                          xfail (non strict) on uvloop when condition holds;
                          also on one ``pytest.param`` of a test's own values
* ``loops(*names)``       run only on the named implementations

Environment:

* ``RINGLOOP_TEST_LOOPS=asyncio,uvloop``  restrict the implementations
  (comma separated names; default: all of them).

After every test an autouse fixture checks for leaks and *fails* the test
on any: loops left open, new fds, new live threads, a running loop left set,
the asyncio policy (or its current loop) left changed, signal handlers or
the signal wakeup fd left changed.
"""

import asyncio
import gc
import io
import os
import selectors
import signal
import socket
import threading
import time

import pytest

# Started in the background (CI), this process inherited SIGINT as ignored:
# give it Python's usual KeyboardInterrupt handler, as in a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------
# Registry of loop implementations
# --------------------------------------------------------------------------

_env_lock = threading.Lock()


def _ringloop():
    # A missing or broken ringloop is an error, never a skip: the suite
    # exists to test it.
    import ringloop

    return ringloop


def _make_asyncio():
    return asyncio.SelectorEventLoop()


def _make_uvloop():
    import uvloop

    return uvloop.new_event_loop()


def _make_ringloop_epoll():
    return _ringloop().SelectorEventLoop()


def _make_ringloop_poll():
    rl = _ringloop()
    return rl.SelectorEventLoop(selectors.PollSelector())


def _make_ringloop_select():
    rl = _ringloop()
    return rl.SelectorEventLoop(selectors.SelectSelector())


def _make_ringloop_portable():
    rl = _ringloop()
    # The variable matters only while the loop is created.  A lock because
    # loops are also created from worker threads in some tests.
    with _env_lock, pytest.MonkeyPatch.context() as mp:
        mp.setenv("RINGLOOP_PORTABLE", "1")
        return rl.SelectorEventLoop()


def _make_ringloop_proactor():
    return _ringloop().ProactorEventLoop()


def _probe_uring():
    rl = _ringloop()
    try:
        rl.ProactorEventLoop().close()
    except rl.UringUnavailable as exc:
        return False, f"io_uring unavailable here: {exc}"
    return True, ""


class LoopImpl:
    """One loop implementation the suite runs on."""

    def __init__(self, name, factory, *, kind, requires=None, probe=None,
                 fd_limit=None, driver_hint=None):
        self.name = name
        self.factory = factory
        self.kind = kind              # "asyncio", "uvloop" or "ringloop"
        self.requires = requires      # optional module: skip when absent
        # optional callable -> (ok, reason): skip when the platform cannot
        # run this implementation (e.g. io_uring refused by the kernel)
        self.probe = probe
        self.fd_limit = fd_limit      # fds >= fd_limit unusable (select())
        self.driver_hint = driver_hint  # substring of statistics()["driver"]

    @property
    def is_ringloop(self):
        return self.kind == "ringloop"

    def available(self):
        if self.requires is not None:
            try:
                __import__(self.requires)
            except ImportError as exc:
                return False, f"{self.requires} is not importable: {exc}"
        if self.probe is not None:
            return self.probe()
        return True, ""

    def __repr__(self):
        return f"<LoopImpl {self.name}>"


LOOPS = {
    impl.name: impl
    for impl in [
        LoopImpl("asyncio", _make_asyncio, kind="asyncio"),
        LoopImpl("uvloop", _make_uvloop, kind="uvloop", requires="uvloop"),
        LoopImpl("ringloop-epoll", _make_ringloop_epoll, kind="ringloop",
                 driver_hint="epoll"),
        LoopImpl("ringloop-poll", _make_ringloop_poll, kind="ringloop",
                 driver_hint="PollSelector"),
        LoopImpl("ringloop-select", _make_ringloop_select, kind="ringloop",
                 fd_limit=1024, driver_hint="SelectSelector"),
        LoopImpl("ringloop-portable", _make_ringloop_portable, kind="ringloop",
                 driver_hint=selectors.DefaultSelector.__name__),
        LoopImpl("ringloop-proactor", _make_ringloop_proactor, kind="ringloop",
                 probe=_probe_uring, driver_hint="io_uring"),
    ]
}


def make_loop(name):
    """Create a fresh loop of the named implementation (also for child processes)."""
    return LOOPS[name].factory()


def selected_loops():
    names = os.environ.get("RINGLOOP_TEST_LOOPS", "").strip()
    if not names:
        return list(LOOPS.values())
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in LOOPS]
    if unknown:
        raise pytest.UsageError(
            f"RINGLOOP_TEST_LOOPS names unknown loops {unknown}; known: {list(LOOPS)}")
    return [LOOPS[n] for n in wanted]


# --------------------------------------------------------------------------
# Parametrization
# --------------------------------------------------------------------------

def pytest_configure(config):
    for line in (
        "ringloop_only: run only on the ringloop loop implementations",
        "many_fds: opens many fds (>= 1024); skipped on SelectSelector",
        "xfail_uvloop(reason, run=True): uvloop differs from asyncio in this case; "
        "run=False when its known failure is a wait for the test's timeout (or "
        "a crash): reported xfailed without running (as pytest's xfail(run=False))",
        "loops(*names): run only on these loop implementations",
        "documented_difference(reason): ringloop differs from asyncio on purpose, "
        "as docs/compatibility.md says (strict xfail on ringloop)",
    ):
        config.addinivalue_line("markers", line)


def pytest_generate_tests(metafunc):
    if "loop_impl" not in metafunc.fixturenames:
        return
    impls = selected_loops()
    node = metafunc.definition
    if node.get_closest_marker("ringloop_only"):
        impls = [i for i in impls if i.is_ringloop]
    only = node.get_closest_marker("loops")
    if only:
        impls = [i for i in impls if i.name in only.args]
    many_fds = node.get_closest_marker("many_fds")
    documented = node.get_closest_marker("documented_difference")
    params = []
    for impl in impls:
        marks = []
        ok, why = impl.available()
        if not ok:
            marks.append(pytest.mark.skip(reason=why))
        if many_fds and impl.fd_limit is not None:
            marks.append(pytest.mark.skip(
                reason=f"{impl.name} cannot watch fds >= {impl.fd_limit}"))
        if documented and impl.is_ringloop:
            marks.append(pytest.mark.xfail(
                reason="documented in docs/compatibility.md: " + documented.args[0],
                strict=True))
        params.append(pytest.param(impl, id=impl.name, marks=marks))
    if not params:
        params = [pytest.param(None, id="no-loop",
                               marks=pytest.mark.skip(reason="no selected loop fits"))]
    metafunc.parametrize("loop_impl", params)


def pytest_collection_modifyitems(config, items):
    # xfail_uvloop is read here, not in pytest_generate_tests, so that it can
    # also sit on one pytest.param of a test's own parametrization.
    for item in items:
        mark = item.get_closest_marker("xfail_uvloop")
        callspec = getattr(item, "callspec", None)
        impl = callspec.params.get("loop_impl") if callspec else None
        if (mark is None or impl is None or impl.kind != "uvloop"
                or not mark.kwargs.get("condition", True)):
            continue
        reason = mark.args[0] if mark.args else mark.kwargs["reason"]
        item.add_marker(pytest.mark.xfail(reason="uvloop: " + reason, strict=False,
                                          run=mark.kwargs.get("run", True)))


# --------------------------------------------------------------------------
# Leak checks
# --------------------------------------------------------------------------

def _open_fds():
    """Map fd -> link target of this process's open fds."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass  # the directory fd listdir itself used, now closed
    return fds


class _Tracker:
    def __init__(self):
        self.loops = []


def _policy_current_loop(policy):
    local = getattr(policy, "_local", None)
    return getattr(local, "_loop", None)


@pytest.fixture(scope="session")
def _warm_up():
    """Create, run and close one loop of each implementation before any checks.

    Some implementations keep process-wide state made on first use (uvloop
    opens a pipe once per process); that is not a per-loop leak.  Errors
    are ignored here: the tests themselves report them.
    """
    for impl in selected_loops():
        if not impl.available()[0]:
            continue
        try:
            lp = impl.factory()
        except Exception:
            continue
        try:
            lp.run_until_complete(asyncio.sleep(0))
        except Exception:
            pass
        finally:
            lp.close()


_WATCHED_SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1,
                    signal.SIGUSR2, signal.SIGCHLD, signal.SIGALRM]


def _signal_state():
    handlers = {sig: signal.getsignal(sig) for sig in _WATCHED_SIGNALS}
    wakeup = signal.set_wakeup_fd(-1)
    if wakeup != -1:
        signal.set_wakeup_fd(wakeup)
    return handlers, wakeup


def _restore_signal_state(state):
    handlers, wakeup = state
    for sig, h in handlers.items():
        signal.signal(sig, h)
    signal.set_wakeup_fd(wakeup)


@pytest.fixture(autouse=True)
def _leak_check(request, _warm_up):
    tracker = _Tracker()
    signals_before = _signal_state()
    fds_before = _open_fds()
    threads_before = set(threading.enumerate())
    policy_before = asyncio.get_event_loop_policy()
    policy_loop_before = _policy_current_loop(policy_before)
    yield tracker

    problems = []

    for lp in tracker.loops:
        if not lp.is_closed():
            problems.append(f"loop left open: {lp!r}")
            try:
                if not lp.is_running():
                    lp.close()
            except Exception as exc:  # pragma: no cover - report, keep checking
                problems.append(f"closing leaked loop {lp!r} failed: {exc!r}")

    running = asyncio._get_running_loop()
    if running is not None:
        problems.append(f"running loop left set: {running!r}")
        asyncio._set_running_loop(None)

    policy_after = asyncio.get_event_loop_policy()
    if policy_after is not policy_before:
        problems.append(f"event loop policy left changed: {policy_after!r}")
        asyncio.set_event_loop_policy(policy_before)
    current = _policy_current_loop(policy_before)
    if current is not policy_loop_before:
        problems.append(f"policy's current loop left set: {current!r}")
        policy_before._local._loop = policy_loop_before
        if current is not None and not current.is_closed():
            current.close()

    signals_after = _signal_state()
    if signals_after != signals_before:
        _restore_signal_state(signals_before)
        impl = request.node.callspec.params.get("loop_impl") if hasattr(request.node, "callspec") else None
        if impl is not None and impl.kind == "uvloop":
            pass  # uvloop keeps its own Python-level handlers installed (xfailed where tested)
        else:
            problems.append(f"signal handlers / wakeup fd left changed: {signals_after!r}, "
                            f"before: {signals_before!r}")

    # Threads that are finishing (executor workers after loop.close()) get a
    # short grace period to end; still alive after that is a leak.
    deadline = time.monotonic() + 3.0
    leaked_threads = []
    for t in threading.enumerate():
        if t in threads_before or t is threading.current_thread():
            continue
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            leaked_threads.append(t)
    if leaked_threads:
        problems.append(f"threads left alive: {leaked_threads!r}")

    fds_after = _open_fds()
    new = {fd: tgt for fd, tgt in fds_after.items()
           if fd not in fds_before or fds_before[fd] != tgt}
    if new:
        problems.append(f"fds left open: {new!r}")

    if problems:
        # Close leaked fds so one leak does not cascade into every later test.
        _close_leaked_fds(new)
        pytest.fail("leak check failed:\n  " + "\n  ".join(problems), pytrace=False)


def _close_leaked_fds(fds):
    """Close the fds a test left open, through the objects that own them.

    A leaked fd usually belongs to a socket or file object still alive in a
    reference cycle.  Closing the number underneath it leaves the object
    holding a stale fd, and when the GC later finalizes it, it closes
    whatever file has that number by then: a later test's pipe or socket
    (that is how test_subprocess lost a child's stdout pipe, many tests
    after the leak).  So the owners are closed first; only fds nobody owns
    are closed by number.
    """
    gc.collect()
    left = set(fds) & set(_open_fds())
    if left:
        for obj in gc.get_objects():
            if isinstance(obj, (socket.socket, io.FileIO)):
                try:
                    fd = obj.fileno()
                except (OSError, ValueError):
                    continue
                if fd in left:
                    obj.close()
                    left.discard(fd)
    for fd in left:
        try:
            os.close(fd)
        except OSError:
            pass


# --------------------------------------------------------------------------
# Loop fixtures
# --------------------------------------------------------------------------

@pytest.fixture
def loop_name(loop_impl):
    return loop_impl.name


@pytest.fixture
def loop_factory(loop_impl, _leak_check):
    """Create fresh loops of the parametrized implementation.

    Every loop made here must be closed by the test (checked afterwards).
    Safe to call from other threads.
    """
    lock = threading.Lock()

    def factory():
        lp = loop_impl.factory()
        with lock:
            _leak_check.loops.append(lp)
        return lp

    factory.impl = loop_impl
    return factory


@pytest.fixture
def loop(loop_factory):
    """A fresh loop of the parametrized implementation, closed after the test."""
    lp = loop_factory()
    yield lp
    if lp.is_running():  # pragma: no cover - a test bug
        pytest.fail("loop still running at teardown")
    if not lp.is_closed():
        # Finish what the test left behind the way asyncio.run() would.
        try:
            _cancel_all_tasks(lp)
            lp.run_until_complete(lp.shutdown_asyncgens())
        finally:
            lp.close()
    assert lp.is_closed()


@pytest.fixture
def ringloop_module(loop_impl, monkeypatch):
    """The ringloop module, for tests of its own API (run, install, policy...).

    Use with ``@pytest.mark.loops("ringloop-epoll", "ringloop-portable")``:
    loops that ringloop creates itself during the test are then native or
    portable ones (RINGLOOP_PORTABLE is set for the whole test).
    """
    if not loop_impl.is_ringloop:
        pytest.fail(f"ringloop_module used with {loop_impl.name}")
    if loop_impl.name == "ringloop-portable":
        monkeypatch.setenv("RINGLOOP_PORTABLE", "1")
    return _ringloop()


def _cancel_all_tasks(lp):
    tasks = [t for t in asyncio.all_tasks(lp) if not t.done()]
    if not tasks:
        return
    for t in tasks:
        t.cancel()
    lp.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
