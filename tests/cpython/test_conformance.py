"""Conformance: what passes on asyncio's loop passes on ringloop's, module by module.

For each required module of CPython's installed ``test.test_asyncio`` and each
loop preset named in ``RINGLOOP_CONFORMANCE_LOOPS`` (comma-separated, default
"ringloop,ringloop-poll,ringloop-proactor"; the proactor is skipped where
io_uring cannot run), the module
is run on the stdlib loop (once per session) and on the preset, each in
worker subprocesses (see harness.py). The test fails if a test passing on the
stdlib loop does not pass on the preset and is not in ``skips.py``, or if a
test that built a stdlib loop built none of the preset's (a hole in the
binding). A skip-list entry whose test passes now is reported as a warning.

``RINGLOOP_CONFORMANCE_MODULES`` (comma-separated) narrows the modules;
``RINGLOOP_CONFORMANCE_TIMEOUT`` sets the per-test limit in seconds (60).
"""

from __future__ import annotations

import os
import warnings

import pytest

from .harness import REQUIRED_MODULES, ModuleResult, compare, run_module
from .presets import PRESETS, LoopSpec, parse_loop

LOOPS_ENV = "RINGLOOP_CONFORMANCE_LOOPS"
MODULES_ENV = "RINGLOOP_CONFORMANCE_MODULES"
TIMEOUT_ENV = "RINGLOOP_CONFORMANCE_TIMEOUT"
DEFAULT_LOOPS = "ringloop,ringloop-poll,ringloop-proactor"


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


LOOPS: list[str] = _split(os.environ.get(LOOPS_ENV, DEFAULT_LOOPS))
MODULES: list[str] = _split(os.environ.get(MODULES_ENV, "")) or list(REQUIRED_MODULES)
TIMEOUT = float(os.environ.get(TIMEOUT_ENV, "60"))

_baselines: dict[str, ModuleResult] = {}


class StaleSkipWarning(UserWarning):
    """A skip-listed test passes on the loop: remove its skips.py entry."""


def _baseline(module: str) -> ModuleResult:
    """The stdlib loop's results for ``module``, computed once per session."""
    if module not in _baselines:
        _baselines[module] = run_module(PRESETS["asyncio"], module, timeout=TIMEOUT)
    return _baselines[module]


def _spec(name: str) -> LoopSpec:
    try:
        return parse_loop(name)
    except ValueError as exc:
        pytest.fail(f"{LOOPS_ENV}: {exc}")
        raise  # unreachable: pytest.fail raises


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("loop", LOOPS)
def test_conformance(loop: str, module: str) -> None:
    """Every test passing on asyncio's loop passes on ``loop`` (skip list aside)."""
    spec = _spec(loop)
    target = run_module(spec, module, timeout=TIMEOUT)
    if target.status == "unavailable":
        if spec.optional:
            pytest.skip(f"{spec.describe()} unavailable: {target.reason}")
        pytest.fail(f"{spec.describe()} unavailable: {target.reason}")
    if target.status in ("absent", "module_skipped"):
        pytest.skip(f"{module}: {target.reason}")
    assert target.status == "ok", f"{module} on {loop}: {target.status}: {target.reason}"

    baseline = _baseline(module)
    assert baseline.status == "ok", (
        f"{module} on asyncio: {baseline.status}: {baseline.reason}"
    )
    comp = compare(baseline, target)

    for tid in comp.stale_skips:
        warnings.warn(
            StaleSkipWarning(
                f"{tid} passes on {loop}: remove it from tests/cpython/skips.py "
                f"({target.tests[tid].outcome})"
            ),
            stacklevel=1,
        )

    problems: list[str] = []
    for tid, rec in comp.regressions.items():
        where = f"\n      at {rec.where}" if rec.where else ""
        problems.append(f"  {tid}: [{rec.outcome}] {rec.detail}{where}")
    for tid in comp.missing:
        problems.append(f"  {tid}: passed on asyncio, never ran on {loop}")
    for tid in comp.unrouted:
        problems.append(f"  {tid}: built no {loop} loop (binding hole)")
    assert not problems, (
        f"{len(problems)} test(s) of {module} pass on asyncio's loop but not on "
        f"{spec.describe()}, and are not in tests/cpython/skips.py:\n"
        + "\n".join(problems)
    )
