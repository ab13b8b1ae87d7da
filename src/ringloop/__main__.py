"""Command line: ``python -m ringloop info``, ``python -m ringloop run [--loop KIND] script.py``
or ``python -m ringloop run [--loop KIND] -m module``."""

from __future__ import annotations

import argparse
import json
import runpy
import sys


def _info() -> dict[str, object]:
    import ringloop

    loop = ringloop.new_event_loop()
    try:
        stats = loop.statistics()
    finally:
        loop.close()
    return {
        "version": ringloop.__version__,
        "python": sys.version.split()[0],
        "default_loop": type(loop).__name__,
        "driver": stats["driver"],
        "wakeup": stats["wakeup"],
    }


RUN_USAGE = ("usage: python -m ringloop run [--loop selector|proactor] "
             "(script.py | -m module) [args ...]")


def _parse_run(argv: list[str]) -> tuple[str | None, str | None, str | None, list[str]]:
    """``run``'s arguments, parsed as the interpreter parses its own.

    Options end at the script path or at ``-m module``: what follows goes to
    the script or module untouched, even when it looks like an option
    (``run -m http.server --bind ::1``).  Returns (kind, script, module,
    args); an error message replaces the script when the line is wrong.
    """
    kind: str | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            return None, "-h", None, []
        if arg == "--loop" or arg.startswith("--loop="):
            if arg == "--loop":
                if i + 1 == len(argv):
                    return None, None, None, ["--loop needs a value: selector or proactor"]
                kind, i = argv[i + 1], i + 2
            else:
                kind, i = arg.split("=", 1)[1], i + 1
            continue
        if arg == "-m" or (arg.startswith("-m") and len(arg) > 2):
            module = arg[2:] if len(arg) > 2 else (argv[i + 1] if i + 1 < len(argv) else "")
            rest = argv[i + 1:] if len(arg) > 2 else argv[i + 2:]
            if not module:
                return None, None, None, ["-m needs a module name"]
            return kind, None, module, rest
        if arg == "--":
            i += 1
            if i == len(argv):
                break
            return kind, argv[i], None, argv[i + 1:]
        if arg.startswith("-"):
            return None, None, None, [f"unknown option {arg!r}"]
        return kind, arg, None, argv[i + 1:]
    return None, None, None, ["a script path or -m module is needed"]


def _run(argv: list[str]) -> int:
    import importlib.util
    import os

    kind, script, module, args = _parse_run(argv)
    if script == "-h":
        print(RUN_USAGE)
        print("\nRun a script, or a module as `python -m module` does, with ringloop\n"
              "installed as asyncio's loop (ringloop.install(kind)).")
        return 0
    if script is None and module is None:
        print(RUN_USAGE, file=sys.stderr)
        print(f"python -m ringloop run: error: {args[0]}", file=sys.stderr)
        return 2
    import ringloop

    try:
        ringloop.install(kind)
    except ValueError as exc:
        print(f"python -m ringloop run: error: {exc}", file=sys.stderr)
        return 2
    if module is not None:
        # As `python -m module`: the current directory first on sys.path, a
        # module that is not there is one line on stderr and status 1.
        sys.path.insert(0, os.getcwd())
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError) as exc:
            spec, why = None, str(exc)
        else:
            why = f"No module named {module!r}"
        if spec is None:
            print(f"python -m ringloop run: {why}", file=sys.stderr)
            return 1
        sys.argv = [module, *args]       # run_module puts the file's path in argv[0]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    assert script is not None
    # As `python script.py` does: a script that cannot be opened is one
    # line on stderr and exit status 2, not a traceback.
    try:
        with open(script, "rb"):
            pass
    except OSError as exc:
        print(f"python -m ringloop run: can't open file {script!r}: "
              f"[Errno {exc.errno}] {exc.strerror}", file=sys.stderr)
        return 2
    # As `python script.py` does: the script's directory first on sys.path,
    # an absolute __file__.
    path = os.path.abspath(script)
    sys.path.insert(0, os.path.dirname(path))
    sys.argv = [script, *args]
    runpy.run_path(path, run_name="__main__")
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "run":
        # Parsed by hand: what follows the script or module belongs to it.
        return _run(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m ringloop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print version, default loop and driver as JSON")
    sub.add_parser("run", help="run a script (or -m module) with ringloop installed "
                               "as asyncio's loop; --loop selector|proactor picks the kind",
                   usage=RUN_USAGE[len("usage: "):])
    ns = parser.parse_args(argv)
    if ns.command == "info":
        print(json.dumps(_info(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
