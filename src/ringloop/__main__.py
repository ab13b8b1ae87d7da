"""Command line: ``python -m ringloop info`` or ``python -m ringloop run script.py``."""

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ringloop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print version, default loop and driver as JSON")
    run = sub.add_parser("run", help="run a Python script with ringloop installed as asyncio's loop")
    run.add_argument("script")
    run.add_argument("args", nargs=argparse.REMAINDER)
    ns = parser.parse_args(argv)
    if ns.command == "info":
        print(json.dumps(_info(), indent=2))
        return 0
    import os

    import ringloop

    # As `python script.py` does: a script that cannot be opened is one
    # line on stderr and exit status 2, not a traceback.
    try:
        with open(ns.script, "rb"):
            pass
    except OSError as exc:
        print(f"{parser.prog} run: can't open file {ns.script!r}: "
              f"[Errno {exc.errno}] {exc.strerror}", file=sys.stderr)
        return 2
    ringloop.install()
    # As `python script.py` does: the script's directory first on sys.path,
    # an absolute __file__.
    script = os.path.abspath(ns.script)
    sys.path.insert(0, os.path.dirname(script))
    sys.argv = [ns.script, *ns.args]
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
