"""What the bench scripts share: the loop registry, loop probing, child processes, formatting."""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# The loops compared, as name -> "module:callable". The callable takes no
# argument and returns a new, not running event loop. Add a variant here (or
# with --add-loop NAME=MODULE:CALLABLE); a loop that cannot be imported or
# created is skipped with its reason printed. The classes are named, not
# new_event_loop(), so each name stays one loop kind whatever the defaults.
LOOPS: dict[str, str] = {
    "asyncio": "asyncio:SelectorEventLoop",
    "uvloop": "uvloop:new_event_loop",
    "rloop": "rloop:new_event_loop",
    "ringloop": "ringloop:SelectorEventLoop",
    "ringloop-proactor": "ringloop:ProactorEventLoop",
}

# Loops whose name starts with this are ours: the tables give their ratio to
# uvloop and to the best of PEERS.
OURS_PREFIX = "ringloop"
PEERS = ("uvloop", "rloop")

# A bound on one child process, on top of its requested work.
WORKER_SLACK_S = 60.0

# Child processes run in bench/: a relative PYTHONPATH (PYTHONPATH=src, as the
# README shows) must name the same directories there as here.
if os.environ.get("PYTHONPATH"):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        os.path.abspath(p) if p else p for p in os.environ["PYTHONPATH"].split(os.pathsep))


# --------------------------------------------------------------------------
# Loops
# --------------------------------------------------------------------------


def load_factory(spec: str) -> Callable[[], Any]:
    """Resolve "module:callable" to the callable."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"loop factory {spec!r} is not 'module:callable'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{spec} is not callable")
    factory: Callable[[], Any] = obj
    return factory


def pin(cpu: int | None) -> None:
    """Pin this process (and the threads it starts later) to one CPU."""
    if cpu is not None and cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def probe(spec: str) -> dict[str, Any]:
    """Import and create a loop once; say what it is."""
    import asyncio

    factory = load_factory(spec)
    loop = factory()
    if not isinstance(loop, asyncio.AbstractEventLoop):
        raise TypeError(f"{spec} returned {type(loop).__name__}, not an event loop")
    try:
        module = importlib.import_module(spec.partition(":")[0])
        return {
            "class": f"{type(loop).__module__}.{type(loop).__qualname__}",
            "version": str(getattr(module, "__version__", platform.python_version())),
            "file": str(getattr(module, "__file__", "")),
        }
    finally:
        loop.close()


def usable_loops(names: Sequence[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Probe each loop in a fresh interpreter; print why one is skipped.

    Returns the usable names and, for every name, what the probe said: class,
    version and file, or "error" for a loop that cannot be imported or created.
    """
    usable, info = [], {}
    for name in names:
        answer = run_child(Path(__file__), "--probe", LOOPS[name], timeout=WORKER_SLACK_S)
        if "error" in answer:
            print(f"skipping {name} ({LOOPS[name]}): {answer['error']}", file=sys.stderr)
            info[name] = {"factory": LOOPS[name], "error": answer["error"]}
            continue
        usable.append(name)
        info[name] = {"factory": LOOPS[name], **answer}
        print(f"loop {name}: {answer['class']} {answer['version']} ({answer['file']})",
              file=sys.stderr)
    return usable, info


def add_loop_arguments(parser: argparse.ArgumentParser) -> None:
    """--loops and --add-loop, as every bench script takes them."""
    parser.add_argument("--loops", default=None,
                        help=f"comma-separated subset of: {','.join(LOOPS)} (default: all)")
    parser.add_argument("--add-loop", action="append", default=[], metavar="NAME=MODULE:CALLABLE",
                        help="register another loop factory (repeatable)")


def resolve_loops(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Register --add-loop entries; turn args.loops into a checked list of names."""
    for item in args.add_loop:
        name, sep, spec = item.partition("=")
        if not sep or ":" not in spec:
            parser.error(f"--add-loop {item!r} is not NAME=MODULE:CALLABLE")
        LOOPS[name] = spec
    args.loops = [n for n in (args.loops.split(",") if args.loops else LOOPS) if n]
    unknown = [n for n in args.loops if n not in LOOPS]
    if unknown:
        parser.error(f"unknown loop(s) {unknown}; known: {list(LOOPS)} (or use --add-loop)")


def add_cpu_option(parser: argparse.ArgumentParser, flag: str, default: int, pinned: str) -> None:
    """An option naming one CPU, -1 for none; `pinned` says what goes there ("CPU " +
    `pinned`, e.g. "the server is pinned to")."""
    parser.add_argument(flag, type=int, default=default,
                        help=f"CPU {pinned}; -1: no pinning (default {default})")


def add_output_options(parser: argparse.ArgumentParser, kind: str, json_note: str = "",
                       tables: str = "table") -> None:
    """--json PATH (default bench/results/<kind>-<time>.json, as write_outputs() is given)
    and --markdown PATH (the markdown `tables` written there too)."""
    parser.add_argument("--json", default=None, metavar="PATH",
                        help=f"JSON results path (default bench/results/{kind}-<time>.json)"
                             + json_note)
    parser.add_argument("--markdown", default=None, metavar="PATH",
                        help=f"also write the markdown {tables} to PATH")


T = TypeVar("T")


def rotated(loops: Sequence[T], rep: int) -> list[T]:
    """Repetition `rep`'s loop order: rotated, so no loop always runs first or last."""
    k = rep % len(loops) if loops else 0
    return list(loops[k:]) + list(loops[:k])


# --------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------


def run_child(script: Path, mode: str, payload: dict[str, Any] | str,
              timeout: float) -> dict[str, Any]:
    """Run `script mode payload` in a fresh interpreter; its last stdout line as JSON,
    or {'error': ...} (the last stderr line) when it fails or takes too long."""
    arg = payload if isinstance(payload, str) else json.dumps(payload)
    cmd = [sys.executable, str(Path(script).resolve()), mode, arg]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return {"error": tail}
    try:
        answer: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return answer
    except (ValueError, IndexError):
        return {"error": f"unreadable worker output: {proc.stdout[-200:]!r}"}


# --------------------------------------------------------------------------
# Numbers and tables
# --------------------------------------------------------------------------


def fmt_ops(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.0f}k"
    return f"{value:.0f}"


def fmt_ratio(num: float | None, den: float | None) -> str:
    if not num or not den:
        return "-"
    return f"{num / den:.2f}x"


def median_or_none(vals: Sequence[float]) -> float | None:
    return statistics.median(vals) if vals else None


def spread(vals: Sequence[float]) -> float | None:
    """(max - min) / median of one cell's repetitions."""
    if len(vals) < 2:
        return None
    return (max(vals) - min(vals)) / statistics.median(vals)


# --------------------------------------------------------------------------
# Output files
# --------------------------------------------------------------------------


def stamp(when: datetime.datetime | None = None) -> str:
    return (when or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")


def environment() -> dict[str, Any]:
    """The machine and interpreter the numbers come from."""
    return {"python": sys.version, "platform": platform.platform(), "cpus": os.cpu_count()}


def write_outputs(document: dict[str, Any], json_path: str | Path | None, default_name: str,
                  markdown_path: str | Path | None, table: str) -> Path:
    """Write the JSON document (default bench/results/<default_name>) and, if asked,
    the markdown table; return the JSON path."""
    path = Path(json_path) if json_path else RESULTS / default_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nJSON results: {path}", file=sys.stderr)
    if markdown_path:
        Path(markdown_path).parent.mkdir(parents=True, exist_ok=True)
        Path(markdown_path).write_text(table + "\n")
    return path


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--probe":
        print(json.dumps(probe(sys.argv[2])))
    else:
        sys.exit(f"usage: {sys.argv[0]} --probe MODULE:CALLABLE")
