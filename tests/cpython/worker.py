"""Run one ``test.test_asyncio`` module against a loop under test, in this process.

Started by ``tests.cpython.harness`` as ``python -m tests.cpython.worker
CONFIG.json``; never imported by the parent. It installs the binding
(``binding.install``), imports the module from the running interpreter,
collapses its loop-variant classes (``binding.rebind_module``), and runs it
with a result object that streams one JSON line per event to the events file
named in the config, flushed as it goes, so that the parent still knows what
ran when a test hangs (faulthandler then dumps every thread's stack and exits)
or crashes the process.

Events: ``{"event": "start", "id": ...}`` and ``{"event": "end", "id": ...,
"outcome": ..., "used": N, ...}`` per test; ``note``, ``absent``,
``unavailable``, ``module_skipped``, ``import_error`` and ``done`` once.
Outcomes: passed, failed, error, skipped, xfail, xpass.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import faulthandler
import gc
import importlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
import types
import unittest
import warnings
from typing import Any, Iterator

#: Prefix of the reason of a test skipped by our skip list (skip mode "skip").
SKIP_LIST_MARK = "[skip-list] "
#: Prefix every test id drops: ids read "test_tasks.CTask_CFuture_Tests.test_x".
ID_PREFIX = "test.test_asyncio."
#: Longest traceback text kept per test.
MAX_TRACEBACK = 6000

ExcInfo = tuple[type[BaseException], BaseException, types.TracebackType | None]


class EventWriter:
    """Appends JSON lines to the events file, each one written and flushed at once."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def emit(self, event: str, **fields: Any) -> None:
        fields["event"] = event
        line = json.dumps(fields, default=str) + "\n"
        os.write(self._fd, line.encode("utf-8", "replace"))

    def close(self) -> None:
        os.close(self._fd)


def short_id(test_id: str) -> str:
    """A unittest id without the ``test.test_asyncio.`` package prefix."""
    if test_id.startswith(ID_PREFIX):
        return test_id[len(ID_PREFIX):]
    return test_id


def fixture_id(description: str) -> str:
    """Id of a class/module fixture error: 'setUpClass (test.test_asyncio.m.C)'."""
    return description.replace(ID_PREFIX, "")


def describe_error(err: ExcInfo) -> dict[str, str]:
    """The key line of an exception, the deepest frame, and the traceback."""
    exc_type, exc_value, tb = err
    detail = traceback.format_exception_only(exc_type, exc_value)[-1].strip()
    where = ""
    frames = traceback.extract_tb(tb) if tb is not None else []
    if frames:
        last = frames[-1]
        where = f"{last.filename}:{last.lineno} in {last.name}"
    text = "".join(traceback.format_exception(exc_type, exc_value, tb))
    if len(text) > MAX_TRACEBACK:
        text = "...\n" + text[-MAX_TRACEBACK:]
    return {"detail": detail, "where": where, "traceback": text}


class StreamingResult(unittest.TestResult):
    """Records each test's outcome, whether it built a loop under test,
    re-arms the per-test watchdog, and resets loop state before each test."""

    def __init__(
        self,
        writer: EventWriter,
        binding: Any,
        listed: dict[str, str],
        timeout: float,
        listed_timeout: float,
    ) -> None:
        super().__init__()
        self._writer = writer
        self._binding = binding
        self._listed = listed
        self._timeout = timeout
        self._listed_timeout = listed_timeout
        self._current: dict[str, Any] | None = None
        self._created_at_start = 0
        self._started_at = 0.0

    # -- lifecycle -------------------------------------------------------

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        tid = short_id(test.id())
        listed = tid in self._listed
        faulthandler.dump_traceback_later(
            self._listed_timeout if listed else self._timeout, exit=True
        )
        reset_loop_state()
        self._created_at_start = self._binding.created
        self._started_at = time.monotonic()
        self._current = {"id": tid, "outcome": None, "listed": listed}
        self._writer.emit("start", id=tid)

    def stopTest(self, test: unittest.TestCase) -> None:
        super().stopTest(test)
        state = self._current
        self._current = None
        # Keep a watchdog over class/module fixtures between tests too.
        faulthandler.dump_traceback_later(self._timeout, exit=True)
        if state is None:
            return
        if state["outcome"] is None:
            state["outcome"] = "passed"  # only subtest successes were seen
        if state["listed"] and state["outcome"] != "passed":
            # A skip-listed test that failed (it runs only to find stale
            # entries) may leave open transports and sockets behind: collect
            # them now, silently, so that their ResourceWarnings do not land
            # in the next test (test_streams counts warnings around its own
            # gc.collect()).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gc.collect()
        state["used"] = self._binding.created - self._created_at_start
        state["time"] = round(time.monotonic() - self._started_at, 3)
        tid = state.pop("id")
        self._writer.emit("end", id=tid, **state)

    # -- outcomes --------------------------------------------------------

    def _record(self, test: Any, outcome: str, **fields: Any) -> None:
        state = self._current
        if state is None or not isinstance(test, unittest.TestCase) or short_id(
            test.id()
        ) != state["id"]:
            # Class or module fixture error (an _ErrorHolder): no start/stop.
            desc = fixture_id(str(getattr(test, "description", test)))
            self._writer.emit(
                "end", id=desc, outcome=outcome, used=0, listed=False, time=0.0,
                fixture=True, **fields,
            )
            return
        # The first bad outcome wins (a failing subtest, then a cleanup error).
        if state["outcome"] in (None, "passed"):
            state["outcome"] = outcome
            state.update(fields)

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self._record(test, "failed", **describe_error(err))

    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)
        self._record(test, "error", **describe_error(err))

    def addSkip(self, test: Any, reason: str) -> None:
        super().addSkip(test, reason)
        self._record(test, "skipped", detail=reason)

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._record(test, "xfail")

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        super().addUnexpectedSuccess(test)
        self._record(test, "xpass", detail="unexpected success")

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is None:
            return
        parent = getattr(subtest, "test_case", test)
        kind = "failed" if issubclass(err[0], test.failureException) else "error"
        info = describe_error(err)
        info["detail"] = f"{subtest._subDescription()}: {info['detail']}"
        self._record(parent, kind, **info)


def reset_loop_state() -> None:
    """Forget any running loop and policy a previous test left behind.

    The fresh default policy is then told "no current loop"
    (``set_event_loop(None)``), the state nearly every suite test leaves
    behind (test_utils.TestCase does it in setUp and tearDown): without it,
    ``get_event_loop()`` would create a loop implicitly in some tests and not
    in others depending on what ran before them.
    """
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop_policy(None)
    asyncio.set_event_loop(None)


def iter_tests(suite: unittest.TestSuite) -> Iterator[unittest.TestCase]:
    """Every test case of a (nested) suite, in run order."""
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from iter_tests(item)
        else:
            yield item


def mark_skipped(test: unittest.TestCase, reason: str) -> None:
    """Skip one test instance (not its class) with our skip-list reason."""
    method = getattr(test, test._testMethodName)

    @unittest.skip(SKIP_LIST_MARK + reason)
    def skipped(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("unreachable")  # pragma: no cover

    skipped.__name__ = getattr(method, "__name__", test._testMethodName)
    setattr(test, test._testMethodName, skipped)


def add_src_path(target: str) -> None:
    """Make an in-place build of the repo's own package importable.

    Appended, not prepended: an installed ringloop wins over the source tree.
    """
    module = target.partition(":")[0].partition(".")[0]
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "src")
    if os.path.isdir(os.path.join(src, module)) and src not in sys.path:
        sys.path.append(src)


def run(config: dict[str, Any]) -> int:
    """Run one module as described by ``config``; returns the exit status."""
    from .binding import install, rebind_module
    from .presets import LoopSpec, LoopUnavailable

    writer = EventWriter(config["events"])
    spec = LoopSpec.from_json(config["spec"])
    module_name: str = config["module"]
    exclude = set(config.get("exclude", ()))
    listed: dict[str, str] = config.get("listed", {})
    skip_mode: str = config.get("skip_mode", "run")
    timeout = float(config.get("timeout", 60.0))
    listed_timeout = float(config.get("listed_timeout", timeout))

    # Background processes inherit SIGINT as ignored: the suite's interrupt
    # tests need Python's default handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    faulthandler.enable(all_threads=True)
    faulthandler.dump_traceback_later(timeout, exit=True)

    add_src_path(spec.target)
    try:
        binding = install(spec)
    except LoopUnavailable as exc:
        writer.emit("unavailable", reason=str(exc))
        return 0

    writer.emit("note", text=f"{spec.name} builds {binding.description}")

    try:
        module = importlib.import_module(ID_PREFIX + module_name)
    except unittest.SkipTest as exc:
        writer.emit("module_skipped", reason=str(exc))
        return 0
    except ModuleNotFoundError as exc:
        if exc.name == ID_PREFIX + module_name:
            writer.emit("absent", reason=f"no module {exc.name} in Python "
                        f"{sys.version.split()[0]}")
            return 0
        writer.emit("import_error", **describe_error(sys.exc_info()))  # type: ignore[arg-type]
        return 0
    except Exception:
        writer.emit("import_error", **describe_error(sys.exc_info()))  # type: ignore[arg-type]
        return 0

    hidden, notes = rebind_module(module, binding)
    for note in notes:
        writer.emit("note", text=note)

    loaded = unittest.defaultTestLoader.loadTestsFromModule(module)
    tests = [
        t for t in iter_tests(loaded)
        if type(t) not in hidden and short_id(t.id()) not in exclude
    ]
    for test in tests:
        reason = listed.get(short_id(test.id()))
        if reason is not None and skip_mode == "skip":
            mark_skipped(test, reason)
    suite = unittest.TestSuite(tests)

    result = StreamingResult(writer, binding, listed, timeout, listed_timeout)
    reset_loop_state()
    suite.run(result)
    faulthandler.cancel_dump_traceback_later()
    writer.emit("done", tests_run=result.testsRun,
                ignored_selectors=binding.ignored_selectors)
    return 0


def main(argv: list[str]) -> int:
    """Entry point: ``python -m tests.cpython.worker CONFIG.json``."""
    if len(argv) != 2:
        print("usage: python -m tests.cpython.worker CONFIG.json", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as fh:
        config = json.load(fh)
    # TESTFN and friends are created in the current directory: use a private one.
    workdir = tempfile.mkdtemp(prefix="ringloop-cpython-")
    os.chdir(workdir)
    try:
        return run(config)
    finally:
        os.chdir(tempfile.gettempdir())
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    # os._exit: skip interpreter teardown, where leftovers of a failed test
    # (threads, loops) can hang; all results are already on disk.
    status = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
