"""Sort a ``run.py --compare asyncio --json`` report's failures for skip-list review.

    python -m tests.cpython.triage report.json [--loop ringloop]

Failures whose error says the loop does not implement a method yet (ringloop
raises ``NotImplementedError("... does not implement loop.X() yet ...")``)
are printed as candidate ``skips.py`` lines with the matching "waits for"
reason. Everything else is printed with its key traceback line, to be read
one by one: a stdlib-private name gets a ``stdlib-private:`` entry written by
hand, anything else is a bug in the loop. Nothing here edits skips.py.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any, Sequence

#: Loop method named in a NotImplementedError -> the work it waits for.
WAITS_FOR: dict[str, str] = {
    "create_connection": "transports (issue 4)",
    "create_server": "transports (issue 4)",
    "create_unix_connection": "transports (issue 4)",
    "create_unix_server": "transports (issue 4)",
    "create_datagram_endpoint": "transports (issue 4)",
    "connect_accepted_socket": "transports (issue 4)",
    "sendfile": "transports (issue 4)",
    "start_tls": "TLS",
    "subprocess_exec": "subprocess",
    "subprocess_shell": "subprocess",
    "connect_read_pipe": "pipes",
    "connect_write_pipe": "pipes",
    "add_signal_handler": "signals",
    "remove_signal_handler": "signals",
}

_MISSING = re.compile(r"does not implement loop\.(\w+)\(\)")


def reason_for(test_id: str, detail: str) -> str | None:
    """The "waits for ..." reason for a not-implemented failure, else None."""
    match = _MISSING.search(detail)
    if match is None or match.group(1) not in WAITS_FOR:
        return None
    work = WAITS_FOR[match.group(1)]
    name = test_id.rpartition(".")[2].lower()
    if work.startswith("transports") and ("ssl" in name or "tls" in name):
        work += ", then TLS"
    return f"waits for {work}"


def main(argv: Sequence[str] | None = None) -> int:
    """Print candidate skip-list lines and the failures left to investigate."""
    parser = argparse.ArgumentParser(prog="python -m tests.cpython.triage")
    parser.add_argument("report", help="JSON written by run.py --compare ... --json")
    args = parser.parse_args(argv)
    with open(args.report, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    comparison = data.get("comparison")
    if not comparison:
        print("the report has no comparison: run with --compare asyncio", file=sys.stderr)
        return 2
    target = data["loops"][comparison["target"]]["modules"]
    candidates: list[str] = []
    investigate: list[str] = []
    for module, comp in comparison["modules"].items():
        for tid, info in sorted(comp["regressions"].items()):
            reason = reason_for(tid, info["detail"])
            if reason is not None:
                candidates.append(f"    {tid!r}: {reason!r},")
                continue
            where = target[module]["tests"].get(tid, {}).get("where", "")
            investigate.append(f"{tid}\n    {info['detail'][:200]}\n    at {where}")
    print(f"# {len(candidates)} candidate entries (not implemented yet):")
    print("\n".join(candidates))
    print(f"\n# {len(investigate)} failures to investigate by hand:")
    print("\n".join(investigate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
