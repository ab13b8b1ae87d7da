"""Parent side of the CPython conformance harness: run, restart, count, compare.

``run_module`` runs one test module against one loop in a worker subprocess
(``tests.cpython.worker``) and reads back the events it streamed. When a test
hangs (the worker's faulthandler watchdog exits it), the worker crashes, or
the hard per-run limit kills it, the test that was running is recorded as an
error and the rest of the module is run again in a fresh worker, without the
tests already done. ``compare`` lines a target's results up against the
stdlib loop's.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Iterable

from . import skips as skip_list
from .presets import LoopSpec

__all__ = [
    "REQUIRED_MODULES",
    "REPORTED_MODULES",
    "DEFAULT_MODULES",
    "ModuleResult",
    "TestRecord",
    "Comparison",
    "compare",
    "run_module",
    "run_modules",
]

#: Modules that must pass on ringloop except for the skip list.
REQUIRED_MODULES: tuple[str, ...] = (
    "test_tasks",
    "test_locks",
    "test_queues",
    "test_runners",
    "test_taskgroups",
    "test_timeouts",
    "test_waitfor",
    "test_threads",
    "test_context",
    "test_futures2",
    "test_sock_lowlevel",
    "test_events",
    "test_streams",
    "test_server",
    "test_sendfile",
    "test_buffered_proto",
    "test_subprocess",
    "test_unix_events",
    "test_base_events",
)
#: Modules whose counts are reported, without a pass requirement (yet).
REPORTED_MODULES: tuple[str, ...] = (
    "test_futures",
    "test_pep492",
    "test_sslproto",
)
DEFAULT_MODULES: tuple[str, ...] = REQUIRED_MODULES + REPORTED_MODULES

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PASSING = ("passed", "xfail")
FAILING = ("failed", "xpass")
ERRORING = ("error", "timeout", "crash")


@dataclasses.dataclass
class TestRecord:
    """Outcome of one test (or one class/module fixture) on one loop."""

    outcome: str
    #: Loops of the loop under test the test built (0: it never used it).
    used: int = 0
    #: The test is in the skip list applied to this run.
    listed: bool = False
    detail: str = ""
    where: str = ""
    traceback: str = ""
    time: float = 0.0

    @property
    def passed(self) -> bool:
        return self.outcome in PASSING

    @property
    def category(self) -> str:
        """Column of the report this test counts in."""
        if self.listed:
            return "skip_list"
        if self.outcome in PASSING:
            return "passed"
        if self.outcome in FAILING:
            return "failed"
        if self.outcome == "skipped":
            return "skip_suite"
        return "errors"


@dataclasses.dataclass
class ModuleResult:
    """All outcomes of one module on one loop."""

    module: str
    loop: str
    #: ok | absent | unavailable | module_skipped | import_error | broken
    status: str = "ok"
    reason: str = ""
    tests: dict[str, TestRecord] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
    duration: float = 0.0
    #: Worker processes started (1 + restarts after hangs or crashes).
    workers: int = 0

    def counts(self) -> dict[str, int]:
        """passed / failed / errors / skip_list / skip_suite / used / total."""
        out = dict.fromkeys(
            ("passed", "failed", "errors", "skip_list", "skip_suite", "used", "total"), 0
        )
        for record in self.tests.values():
            out[record.category] += 1
            out["total"] += 1
            if record.used:
                out["used"] += 1
        return out

    def stale_skips(self) -> list[str]:
        """Skip-listed tests that passed (they were run in skip mode "run")."""
        return sorted(t for t, r in self.tests.items() if r.listed and r.passed)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["counts"] = self.counts()
        return data


def applicable_skips(spec: LoopSpec, module: str) -> dict[str, str]:
    """Skip-list entries for ``module`` that apply to the loop ``spec``."""
    if not spec.apply_skips:
        return {}
    return skip_list.for_module(module)


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    parts = [REPO_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.setdefault("PYTHONFAULTHANDLER", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _tail(path: str, limit: int = 4000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _stack_key_line(log: str) -> str:
    """The innermost frame of the first thread in a faulthandler dump."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("Current thread", "Thread 0x")) and i + 1 < len(lines):
            return lines[i + 1].strip()
    return ""


def run_module(
    spec: LoopSpec,
    module: str,
    *,
    python: str = sys.executable,
    timeout: float = 60.0,
    listed_timeout: float = 20.0,
    run_timeout: float = 1200.0,
    skip_mode: str = "run",
    max_workers: int = 25,
    log_dir: str | None = None,
) -> ModuleResult:
    """Run ``module`` against ``spec`` in worker subprocesses.

    ``timeout`` bounds each test (the worker's watchdog), ``listed_timeout``
    each skip-listed test, ``run_timeout`` each worker process as a whole.
    ``skip_mode`` "run" runs skip-listed tests (to find stale entries) and
    files them under skip_list whatever their outcome; "skip" does not run them.
    """
    result = ModuleResult(module=module, loop=spec.name)
    listed = applicable_skips(spec, module)
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix=f"ringloop-cpy-{spec.name}-{module}-")
    exclude: set[str] = set()
    try:
        while result.workers < max_workers:
            n = result.workers
            result.workers += 1
            events_path = os.path.join(workdir, f"events{n}.jsonl")
            log_path = os.path.join(log_dir or workdir, f"{spec.name}-{module}-{n}.log")
            config = {
                "spec": spec.to_json(),
                "module": module,
                "events": events_path,
                "exclude": sorted(exclude),
                "listed": listed,
                "skip_mode": skip_mode,
                "timeout": timeout,
                "listed_timeout": min(listed_timeout, timeout),
            }
            config_path = os.path.join(workdir, f"config{n}.json")
            with open(config_path, "w", encoding="utf-8") as fh:
                json.dump(config, fh)
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    [python, "-m", "tests.cpython.worker", config_path],
                    cwd=REPO_ROOT,
                    env=_worker_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                killed = False
                try:
                    rc = proc.wait(timeout=run_timeout)
                except subprocess.TimeoutExpired:
                    killed = True
                    os.killpg(proc.pid, signal.SIGKILL)
                    rc = proc.wait()
            finished = _read_events(result, events_path, exclude, listed)
            if finished or result.status != "ok":
                break
            # The worker died: blame the test that was running, go on without it.
            log_text = _tail(log_path)
            running = _running_test(events_path)
            if killed:
                how = f"timeout: worker killed after {run_timeout:.0f}s"
            elif "Timeout (" in log_text:
                limit = min(listed_timeout, timeout) if running in listed else timeout
                how = f"timeout: no result after {limit:g}s"
            else:
                how = f"crash: worker exited with status {rc}"
            if running is None:
                result.status = "broken"
                result.reason = f"{how} outside any test"
                result.notes.append(log_text[-1500:])
                break
            result.tests[running] = TestRecord(
                outcome="timeout" if how.startswith("timeout") else "crash",
                listed=running in listed,
                detail=how,
                where=_stack_key_line(log_text),
                traceback=log_text[-3000:],
            )
            exclude.add(running)  # each restart leaves one more test out
        else:
            result.status = "broken"
            result.reason = f"gave up after {max_workers} worker restarts"
    finally:
        result.duration = round(time.monotonic() - started, 2)
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _running_test(events_path: str) -> str | None:
    """Id of the test started but not ended in an events file."""
    running: str | None = None
    for event in _events(events_path):
        if event["event"] == "start":
            running = event["id"]
        elif event["event"] == "end" and event["id"] == running:
            running = None
    return running


def _events(path: str) -> Iterable[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except OSError:
        return []
    out = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by the process dying
    return out


def _read_events(
    result: ModuleResult, path: str, exclude: set[str], listed: dict[str, str]
) -> bool:
    """Fold one worker's events into ``result``; True if the worker finished."""
    finished = False
    for event in _events(path):
        kind = event["event"]
        if kind == "end":
            tid = event["id"]
            result.tests[tid] = TestRecord(
                outcome=event["outcome"],
                used=int(event.get("used", 0)),
                listed=bool(event.get("listed")) or tid in listed,
                detail=event.get("detail", ""),
                where=event.get("where", ""),
                traceback=event.get("traceback", ""),
                time=float(event.get("time", 0.0)),
            )
            if not event.get("fixture"):
                exclude.add(tid)
        elif kind == "note":
            if event["text"] not in result.notes:
                result.notes.append(event["text"])
        elif kind in ("absent", "unavailable", "module_skipped"):
            result.status = kind
            result.reason = event.get("reason", "")
        elif kind == "import_error":
            result.status = kind
            result.reason = event.get("detail", "")
            result.notes.append(event.get("traceback", ""))
        elif kind == "done":
            finished = True
    return finished


def run_modules(
    spec: LoopSpec,
    modules: Iterable[str],
    *,
    jobs: int = 1,
    progress: Any = None,
    **kwargs: Any,
) -> dict[str, ModuleResult]:
    """``run_module`` over several modules, ``jobs`` at a time, in order."""
    modules = list(modules)
    results: dict[str, ModuleResult] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(run_module, spec, m, **kwargs): m for m in modules}
        for future in concurrent.futures.as_completed(futures):
            res = future.result()
            results[res.module] = res
            if progress is not None:
                progress(res)
    return {m: results[m] for m in modules}


@dataclasses.dataclass
class Comparison:
    """A target's results next to the stdlib loop's, per test id."""

    #: Pass on the baseline; fail, error, time out or crash on the target.
    regressions: dict[str, TestRecord] = dataclasses.field(default_factory=dict)
    #: Pass on the baseline; skipped by the suite itself on the target.
    suite_skipped: dict[str, TestRecord] = dataclasses.field(default_factory=dict)
    #: Pass on the baseline; never ran on the target (module absent...).
    missing: list[str] = dataclasses.field(default_factory=list)
    #: Pass on both, built a loop on the baseline, none on the target:
    #: a routing hole in the binding, the target was never exercised.
    unrouted: list[str] = dataclasses.field(default_factory=list)
    #: Skip-listed on the target, and passed there anyway.
    stale_skips: list[str] = dataclasses.field(default_factory=list)
    #: Pass on the target, not on the baseline (informative).
    improvements: list[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "regressions": {
                k: {"outcome": v.outcome, "detail": v.detail, "where": v.where}
                for k, v in self.regressions.items()
            },
            "suite_skipped": {k: v.detail for k, v in self.suite_skipped.items()},
            "missing": self.missing,
            "unrouted": self.unrouted,
            "stale_skips": self.stale_skips,
            "improvements": self.improvements,
        }


def compare(baseline: ModuleResult, target: ModuleResult) -> Comparison:
    """Line ``target`` up against ``baseline`` (the stdlib loop's results)."""
    comp = Comparison()
    for tid, base in sorted(baseline.tests.items()):
        got = target.tests.get(tid)
        if not base.passed:
            if got is not None and got.passed and not got.listed:
                comp.improvements.append(tid)
            continue
        if got is None:
            if target.status == "ok":
                comp.missing.append(tid)
            continue
        if got.listed:
            continue
        if got.outcome == "skipped":
            comp.suite_skipped[tid] = got
        elif not got.passed:
            comp.regressions[tid] = got
        elif base.used and not got.used:
            comp.unrouted.append(tid)
    comp.stale_skips = target.stale_skips()
    return comp
