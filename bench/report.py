"""Tables, targets and chart of the echo, HTTP and subprocess/pipe results; the suite's one-page
report."""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import OURS_PREFIX, PEERS, RESULTS, fmt_ops, fmt_ratio, stamp

C_SERVER = "c-server"  # as echo.py names it
C_LABEL = "C server (limit)"

MODE_TITLES = {
    "protocol": "protocol mode: asyncio.Protocol via loop.create_server",
    "streams": "streams mode: asyncio.start_server, read / write / drain",
    "sock": "sock mode: loop.sock_accept / sock_recv / sock_sendall",
}

# The targets, for the faster ringloop kind of each row:
# (mode, size, conns or None for every connection count measured, what, needed).
# what: "uvloop" = ratio to uvloop, "c" = ratio to the C server.
ECHO_TARGETS = (
    ("protocol", 1024, 100, "uvloop", 1.15),
    ("protocol", 1024, 100, "c", 0.95),
    ("protocol", 102400, None, "uvloop", 1.10),
    ("streams", 1024, None, "uvloop", 1.30),
)
HTTP_TARGET = 1.10


# --------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------


def fmt_size(size: int) -> str:
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


def fmt_ms(us: float | None) -> str:
    """Microseconds as milliseconds, 3 significant digits."""
    if us is None or us < 0:
        return "-"
    ms = us / 1000
    if ms < 10:
        return f"{ms:.2f}"
    if ms < 100:
        return f"{ms:.1f}"
    return f"{ms:.0f}"


def fmt_ms_unit(us: float | None) -> str:
    return "-" if us is None or us < 0 else f"{fmt_ms(us)} ms"


def fmt_pct(value: float | None) -> str:
    return f"{value * 100:.0f}%" if value is not None else "-"


def label(loop: str) -> str:
    return C_LABEL if loop == C_SERVER else loop


def ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num and den else None


class Notes:
    """Numbered notes under a table; the same text gets the same number."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def ref(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"

    def lines(self) -> list[str]:
        return [f"[{i}] {t}" for i, t in enumerate(self.texts, 1)]


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(r) + " |" for r in rows])


# --------------------------------------------------------------------------
# Echo
# --------------------------------------------------------------------------


class EchoResults:
    """The cells of an echo.py results document, by (mode, size, conns, loop)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        s = doc["settings"]
        self.modes: list[str] = s["modes"]
        self.sizes: list[int] = s["sizes"]
        self.conns: list[int] = s["conns"]
        self.loops: list[str] = s["loops"]  # as asked, unavailable ones included
        self.has_c = bool(s.get("c_server"))
        self.unavailable = {n: i["error"] for n, i in doc["loops"].items() if "error" in i}
        self.cells = {(c["mode"], c["size"], c["conns"], c["loop"]): c for c in doc["cells"]}
        self.ours = [n for n in self.loops if n.startswith(OURS_PREFIX)]
        self.peers = [n for n in PEERS if n in self.loops]

    def rows(self) -> list[tuple[str, int, int]]:
        return [(m, s, c) for m in self.modes for s in self.sizes for c in self.conns]

    def get(self, mode: str | None, size: int, conns: int, loop: str) -> dict[str, Any] | None:
        if loop == C_SERVER:
            mode = None
        return self.cells.get((mode, size, conns, loop))

    def rps(self, mode: str | None, size: int, conns: int, loop: str) -> float | None:
        cell = self.get(mode, size, conns, loop)
        return cell["median_rps"] if cell else None

    def best_peer(self, mode: str, size: int, conns: int) -> float | None:
        vals = [v for p in self.peers if (v := self.rps(mode, size, conns, p))]
        return max(vals) if vals else None

    def columns(self) -> list[str]:
        return self.loops + ([C_SERVER] if self.has_c else [])

    def cell_text(self, mode: str | None, size: int, conns: int, loop: str, notes: Notes,
                  value: Callable[[dict[str, Any]], str]) -> str:
        """A loop's cell: value(cell), or why there is none, with a note reference."""
        if loop in self.unavailable:
            return "unavailable " + notes.ref(f"{loop}: not measured, the loop cannot be "
                                              f"created here: {self.unavailable[loop]}")
        cell = self.get(mode, size, conns, loop)
        if cell is None:
            return "-"
        ref = ""
        if cell["errors"]:
            where = "C server" if loop == C_SERVER else f"{loop}, {mode} mode"
            ref = " " + notes.ref(f"{where}: " + " | ".join(dict.fromkeys(cell["errors"])))
        if not cell["counted"]:
            return "failed" + ref
        return value(cell) + ref


def echo_markdown(doc: dict[str, Any]) -> tuple[str, str]:
    """The summary tables (one row per mode, size, conns) and the per-cell details."""
    r = EchoResults(doc)
    s = doc["settings"]
    notes = Notes()
    cols = r.columns()
    keys = ["mode", "size", "conns"]

    def key(m: str, size: int, c: int) -> list[str]:
        return [m, fmt_size(size), str(c)]

    # 1. Requests per second, with ringloop's ratios.
    uv = "uvloop" in r.loops
    best_name = f"best({','.join(r.peers)})"
    ratio_cols = []
    for ours in r.ours:
        if uv:
            ratio_cols.append((ours, "uvloop"))
        if len(r.peers) > 1:
            ratio_cols.append((ours, best_name))
    header = keys + [label(c) for c in cols] + [f"{o} vs {p}" for o, p in ratio_cols]
    rows = []
    for m, size, c in r.rows():
        row = key(m, size, c)
        row += [r.cell_text(m, size, c, n, notes, lambda x: fmt_ops(x["median_rps"]))
                for n in cols]
        for ours, peer in ratio_cols:
            den = r.rps(m, size, c, "uvloop") if peer == "uvloop" else r.best_peer(m, size, c)
            row.append(fmt_ratio(r.rps(m, size, c, ours), den))
        rows.append(row)
    out = ["### TCP echo: requests per second (median), ringloop's ratios", ""]
    out += md_table(header, rows)

    # 2. Every loop against the C server.
    if r.has_c:
        rows = []
        for m, size, c in r.rows():
            c_rps = r.rps(None, size, c, C_SERVER)
            rows.append(key(m, size, c) + [fmt_ratio(r.rps(m, size, c, n), c_rps)
                                           for n in r.loops])
        out += ["", "### TCP echo: each loop's req/s over the C server's (limit = 1.00x)", ""]
        out += md_table(keys + r.loops, rows)

    # 3. Latency.
    rows = [key(m, size, c) + [r.cell_text(m, size, c, n, notes, lambda x: (
        f"{fmt_ms(x['median_p50_us'])} / {fmt_ms(x['median_p99_us'])}")) for n in cols]
        for m, size, c in r.rows()]
    out += ["", "### TCP echo: round-trip latency p50 / p99 (ms, medians of the runs)", ""]
    out += md_table(keys + [label(c) for c in cols], rows)

    # 4. Spread and runs.
    rows = [key(m, size, c) + [r.cell_text(m, size, c, n, notes, lambda x: (
        f"{fmt_pct(x['spread'])} {x['counted']}/{x['runs']}")) for n in cols]
        for m, size, c in r.rows()]
    out += ["", "### TCP echo: spread of req/s ((max-min)/median) and runs counted/made", ""]
    out += md_table(keys + [label(c) for c in cols], rows)

    out += ["", (f"Each cell: the median of {s['reps']} interleaved runs ({s['warmup']:g} s "
            f"warm-up + {s['duration']:g} s measured), a fresh server per run pinned to CPU "
            f"{s['server_cpu']}, native load generator (bench/loadgen.c) on CPU "
            f"{s['client_cpu']}, N connections each in ping-pong with one message of the "
            "size. Ratios are ratios of medians; a ratio closer to 1.00x than the spread of "
            "its cells is not a result. The C server (bench/cecho.c, single-core epoll) does "
            "not depend on the mode: its number is the same on the rows of every mode.")]
    all_cells = list(r.cells.values())
    busy = [c for c in all_cells if (c["median_client_cpu"] or 0) > 0.9]
    if busy:
        out.append(f"The client used over 90% of its core in {len(busy)} cell(s) (up to "
                   f"{max(c['median_client_cpu'] for c in busy) * 100:.0f}%): there the "
                   "client may set the pace, not the server.")
    waits = [c["median_server_cpu_wait"] for c in all_cells
             if c["median_server_cpu_wait"] is not None]
    if waits:
        out.append(f"The server waited for its CPU (other processes had it) {fmt_pct(statistics.median(waits))} "
                   f"of a run in the median cell, {fmt_pct(max(waits))} at worst: near 0% on a "
                   "quiet machine; the more, the more the machine set the pace.")
    if notes.texts:
        out += [""] + notes.lines()
    return "\n".join(out), echo_details(r)


def echo_details(r: EchoResults) -> str:
    """One line per cell, everything measured."""
    header = ["mode", "size", "conns", "loop", "req/s", "vs uvloop", "vs C", "p50", "p99",
              "spread", "server CPU", "req/CPU-s (vs uvloop)", "peak RSS",
              "CPU wait server/client", "client CPU", "runs"]
    rows = []
    notes = Notes()
    for m, size, c in r.rows():
        for n in r.columns():
            if n == C_SERVER and m != r.modes[0]:
                continue  # once per (size, conns)
            cell = r.get(m, size, c, n)
            if n in r.unavailable or cell is None or not cell["counted"]:
                rows.append([m if n != C_SERVER else "-", fmt_size(size), str(c), label(n),
                             r.cell_text(m, size, c, n, notes, lambda x: "")]
                            + [""] * (len(header) - 5))
                continue
            uv = r.get(m, size, c, "uvloop")
            uv_eff = uv["median_req_per_cpu_s"] if uv else None
            eff = cell["median_req_per_cpu_s"]
            rss = cell["median_peak_rss_kib"]
            sw, cw = cell["median_server_cpu_wait"], cell["median_client_cpu_wait"]
            rows.append([
                m if n != C_SERVER else "-", fmt_size(size), str(c), label(n),
                fmt_ops(cell["median_rps"]) + (" " + notes.ref(
                    " | ".join(dict.fromkeys(cell["errors"]))) if cell["errors"] else ""),
                fmt_ratio(cell["median_rps"], r.rps(m, size, c, "uvloop")),
                fmt_ratio(cell["median_rps"], r.rps(None, size, c, C_SERVER)),
                fmt_ms_unit(cell["median_p50_us"]), fmt_ms_unit(cell["median_p99_us"]),
                fmt_pct(cell["spread"]),
                f"{cell['median_server_cpu']:.2f}" if cell["median_server_cpu"] else "-",
                f"{fmt_ops(eff)} ({fmt_ratio(eff, uv_eff)})" if eff else "-",
                f"{rss / 1024:.0f} MiB" if rss else "-",
                f"{fmt_pct(sw)} / {fmt_pct(cw)}",
                fmt_pct(cell["median_client_cpu"]),
                f"{cell['counted']}/{cell['runs']}",
            ])
    out = ["### TCP echo: every cell in detail", ""] + md_table(header, rows)
    out += ["", ("server CPU: cores the server used during the load (below 1.00: other "
            "processes took its CPU, or it waited); req/CPU-s: requests per second of server "
            "CPU time, with its ratio to uvloop's (discounts CPU other processes took); peak "
            "RSS: the server's VmHWM; CPU wait: share of the run the server / the client was "
            "runnable but another process had its CPU; client CPU: share of its core the load "
            "generator used (near 100%: the client may be the limit).")]
    if notes.texts:
        out += [""] + notes.lines()
    return "\n".join(out)


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------


CLIENT_TITLES = {"wrk": "loaded with wrk", "native": "loaded with the suite's native client"}
CLIENT_NAMES = {"wrk": "wrk", "native": "native client"}


def http_clients(doc: dict[str, Any]) -> list[str]:
    """The load generators of an httpbench document (older ones ran wrk only)."""
    clients: list[str] = doc.get("settings", {}).get("clients") or ["wrk"]
    return clients


def http_cells(doc: dict[str, Any], client: str) -> dict[str, dict[str, Any]]:
    return {c["loop"]: c for c in doc.get("cells", []) if c.get("client", "wrk") == client}


def http_markdown(doc: dict[str, Any]) -> str:
    if doc.get("skipped"):
        return "\n".join(["### HTTP/1.1 keep-alive (httptools on asyncio.Protocol)", "",
                          f"Skipped: {doc['skipped']}"])
    parts = [http_client_markdown(doc, client) for client in http_clients(doc)]
    for client, why in doc.get("clients_skipped", {}).items():
        parts.append(f"### HTTP/1.1 keep-alive, {CLIENT_TITLES.get(client, client)}\n\n"
                     f"Skipped: {why}")
    return "\n\n".join(parts)


def http_client_markdown(doc: dict[str, Any], client: str) -> str:
    out = [f"### HTTP/1.1 keep-alive (httptools on asyncio.Protocol), "
           f"{CLIENT_TITLES.get(client, client)}", ""]
    s = doc["settings"]
    cells = http_cells(doc, client)
    who = CLIENT_NAMES.get(client, client)
    unavailable = {n: i["error"] for n, i in doc["loops"].items() if "error" in i}
    loops: list[str] = s["loops"]
    peers = [p for p in PEERS if p in cells and cells[p]["median_rps"]]
    best = max((cells[p]["median_rps"] for p in peers), default=None)
    uv = cells["uvloop"]["median_rps"] if "uvloop" in cells else None
    header = ["loop", "req/s", "vs uvloop"]
    if len(peers) > 1:
        header.append(f"vs best({','.join(peers)})")
    header += ["p50", "p99", "spread", "server CPU", f"client CPU ({who})", "runs"]
    notes = Notes()
    rows = []
    for name in loops:
        if name in unavailable:
            rows.append([name, "unavailable " + notes.ref(
                f"{name}: the loop cannot be created here: {unavailable[name]}")]
                + [""] * (len(header) - 2))
            continue
        cell = cells.get(name)
        if cell is None:
            continue
        ref = (" " + notes.ref(f"{name}: " + " | ".join(dict.fromkeys(cell["errors"])))
               if cell["errors"] else "")
        rps = cell["median_rps"]
        row = [name, (fmt_ops(rps) if rps else "failed") + ref, fmt_ratio(rps, uv)]
        if len(peers) > 1:
            row.append(fmt_ratio(rps, best) if name.startswith(OURS_PREFIX) else "")
        cpu = cell.get("median_server_cpu")
        row += [fmt_ms_unit(cell["median_p50_us"]), fmt_ms_unit(cell["median_p99_us"]),
                fmt_pct(cell["spread"]), f"{cpu:.2f}" if cpu else "-",
                fmt_pct(cell.get("median_client_cpu")), f"{cell['counted']}/{cell['runs']}"]
        rows.append(row)
    out += md_table(header, rows)
    pinning = (f"the client pinned to CPU {s['client_cpu']}, the server to CPU "
               f"{s['server_cpu']}; response: 200 \"Hello, World!\" with Content-Length, "
               f"keep-alive. Medians of {s['reps']} interleaved runs")
    if client == "native":
        warm = f" after {s['warmup']} s of unmeasured load" if s["warmup"] else ""
        out += ["", (f"bench/loadgen.c -H: {s['conns']} connections, each sending one GET and "
                f"reading the whole answer before the next, {s['duration']} s measured{warm}, "
                f"{pinning}; p50/p99 from its 1 us histogram. Every answer must be "
                "byte-identical to the first (an HTTP/1.1 200); a run with a connection error "
                "or a stalled connection does not count.")]
    else:
        warm = (f" (after an unmeasured {s['warmup']} s wrk run on the same server)"
                if s["warmup"] else "")
        out += ["", (f"wrk -t1 -c{s['conns']} -d{s['duration']}s --latency against "
                f"http://127.0.0.1:PORT/{warm}, {pinning}; p50/p99 from wrk's latency "
                "distribution. A run with socket errors or non-2xx responses does not count.")]
    waits = [c["median_server_cpu_wait"] for c in cells.values()
             if c.get("median_server_cpu_wait") is not None]
    if waits:
        out.append(f"The server waited for its CPU (other processes had it) up to "
                   f"{fmt_pct(max(waits))} of a run (median per loop): near 0% on a quiet "
                   "machine.")
    busy = [c["median_client_cpu"] for c in cells.values() if c.get("median_client_cpu")]
    if busy and max(busy) > 0.9:
        out.append(f"The client ({who}) used up to {max(busy) * 100:.0f}% of its core: for the "
                   f"fastest "
                   f"loops the client may set the pace, not the server (their server CPU then "
                   "stays below 1.00).")
    if notes.texts:
        out += [""] + notes.lines()
    return "\n".join(out)


# --------------------------------------------------------------------------
# Subprocesses and pipes
# --------------------------------------------------------------------------


def fmt_rate(value: float | None) -> str:
    """spawns/s or MiB/s: whole numbers (these are not in the millions)."""
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def proc_markdown(doc: dict[str, Any]) -> str:
    """procbench.py's table: one row per variant, one column per loop (median, and its
    ratio to uvloop's in brackets), each ringloop kind against the best peer; then the
    spread and runs of every cell, what each variant does, and the notes."""
    out = ["### Subprocesses and pipes: spawns/s and pipe MiB/s (median), ratio to uvloop", ""]
    s = doc["settings"]
    loops: list[str] = s["loops"]  # as asked, unavailable ones included
    benches: list[str] = s["benches"]
    unavailable = {n: i["error"] for n, i in doc["loops"].items() if "error" in i}
    cells = {(c["bench"], c["loop"]): c for c in doc["cells"]}
    ours = [n for n in loops if n.startswith(OURS_PREFIX)]
    peers = [p for p in PEERS if p in loops and p not in unavailable]
    notes = Notes()

    def median(bench: str, loop: str) -> float | None:
        cell = cells.get((bench, loop))
        return cell["median"] if cell else None

    def cell_text(bench: str, loop: str, value: Callable[[dict[str, Any]], str]) -> str:
        if loop in unavailable:
            return "unavailable " + notes.ref(f"{loop}: not measured, the loop cannot be "
                                              f"created here: {unavailable[loop]}")
        cell = cells.get((bench, loop))
        if cell is None:
            return "-"
        refs = ""
        if cell["errors"]:
            refs += " " + notes.ref(f"{loop}, {bench}: " + " | ".join(
                dict.fromkeys(cell["errors"])))
        if cell.get("partial"):
            refs += " " + notes.ref(f"{loop}, {bench}: {cell['partial']} of {cell['counted']} "
                                    f"runs reached --time-limit ({s['time_limit']:g} s) "
                                    "before the end of their work; the rate of what they "
                                    "did counts")
        if cell.get("unsupported") and not cell["counted"]:
            # One note per message: the same missing API on every row and kind.
            return "unsupported " + notes.ref(f"unsupported: {cell['unsupported']}") + refs
        if not cell["counted"]:
            return "failed" + refs
        return value(cell) + refs

    uv = "uvloop" in loops
    best_cols = len(peers) > 1 and bool(ours)
    header = ["benchmark", "unit"] + loops
    if best_cols:
        header += [f"{o} vs best({','.join(peers)})" for o in ours]
    rows = []
    for bench in benches:
        unit = next((c["unit"] for c in doc["cells"] if c["bench"] == bench), "")
        row = [bench, unit]
        for name in loops:
            def value(cell: dict[str, Any], name: str = name, bench: str = bench) -> str:
                text = fmt_rate(cell["median"])
                if uv and name != "uvloop":
                    r = fmt_ratio(cell["median"], median(bench, "uvloop"))
                    if r != "-":
                        text += f" ({r})"
                return text
            row.append(cell_text(bench, name, value))
        if best_cols:
            known = [v for p in peers if (v := median(bench, p))]
            best = max(known) if known else None
            row += [fmt_ratio(median(bench, o), best) for o in ours]
        rows.append(row)
    out += md_table(header, rows)

    rows = [[bench] + [cell_text(bench, n, lambda c: (
        f"{fmt_pct(c['spread'])} {c['counted']}/{c['runs']}")) for n in loops]
        for bench in benches]
    out += ["", "Spread ((max-min)/median) and runs counted/made:", ""]
    out += md_table(["benchmark"] + loops, rows)

    variants = s.get("variants", {})
    out += [""] + [f"- `{b}`: {variants[b]['what']}" for b in benches if b in variants]
    cpu = (f"pinned to CPU {s['cpu']} (the spawned children inherit it)" if s["cpu"] >= 0
           else "not pinned")
    child = (f"the pipe rows' child (wc, dd) moved to CPU {s['child_cpu']}"
             if s["child_cpu"] >= 0 else "the pipe rows' child not pinned")
    out += ["", (f"Each cell: the median of {s['reps']} interleaved runs, each a fresh "
            f"process with a fresh loop, {cpu}; {child}. A spawn run: "
            f"{s['spawn_warmup']} unmeasured subprocesses, then {s['spawns']} timed. A pipe "
            f"run: {s['warmup_mib']} MiB unmeasured, then {s['mib']} MiB timed, through the "
            "kernel's default pipe size, the writer awaiting the drain whenever the transport "
            "calls pause_writing(). Ratios are ratios of medians (uvloop = 1.00x; above: "
            "faster); a ratio closer to 1.00x than the spread of its cells is not a result. "
            "`unsupported`: the loop raised NotImplementedError for an API the variant needs.")]
    if notes.texts:
        out += [""] + notes.lines()
    return "\n".join(out)


# --------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------


def kind_status(cell: dict[str, Any] | None, unavailable: str | None) -> str:
    """Why a ringloop kind has no number in a cell."""
    if unavailable is not None:
        return "unavailable"
    if cell is None:
        return "not run"
    return "failed" if not cell["counted"] else "measured"


def rps_by_rep(runs: Sequence[dict[str, Any]], **match: Any) -> dict[int, float]:
    """The req/s of each repetition's counted run of one cell (the runs matching `match`)."""
    return {r["rep"]: r["result"]["rps"] for r in runs
            if all(r.get(k) == v for k, v in match.items())
            and "error" not in r["result"] and r["result"].get("rps")}


def paired_ratio(num: dict[int, float], den: dict[int, float]) -> float | None:
    """The median of the per-repetition ratios num/den, over the repetitions where both
    counted: the two runs of one repetition are minutes closer in time than the
    repetitions are to each other, so a change of the host's pace between repetitions
    moves this figure less than the ratio of medians."""
    ratios = [num[k] / den[k] for k in num.keys() & den.keys()]
    return statistics.median(ratios) if ratios else None


def targets(echo: dict[str, Any] | None = None,
            http: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Each target of the issue: the faster ringloop kind's ratio, and whether it is met."""
    found: list[dict[str, Any]] = []

    def verdict(what: str, need: float, den_name: str, den: dict[str, Any] | None,
                kinds: list[tuple[str, dict[str, Any] | None, str | None]],
                by_rep: Callable[[str], dict[int, float]] = lambda name: {}) -> None:
        # kinds: (ringloop kind, its cell, why it is unavailable) for each kind asked for;
        # by_rep(loop): that loop's req/s per repetition in this row.
        den_rps = den["median_rps"] if den else None
        have = [(k, v, cell) for k, cell, _ in kinds
                if (v := ratio(cell["median_rps"] if cell else None, den_rps)) is not None]
        if not have:
            if not kinds:
                why = "no ringloop kind in this run"
            elif not den_rps:
                why = f"{label(den_name)} {kind_status(den, None)}"
            else:
                why = ", ".join(f"{k} {kind_status(cell, un)}" for k, cell, un in kinds)
            found.append({"target": what, "need": need, "kind": None, "ratio": None,
                          "met": None, "why": why})
            return
        kind, value, cell = max(have, key=lambda t: t[1])
        spreads = "/".join(fmt_pct(x["spread"]) for x in (cell, den) if x)
        found.append({"target": what, "need": need, "kind": kind, "ratio": value,
                      "met": value >= need, "spreads": spreads,
                      "paired": paired_ratio(by_rep(kind), by_rep(den_name))})

    if echo is not None and echo.get("cells"):
        r = EchoResults(echo)
        for mode, size, conns, what, need in ECHO_TARGETS:
            for c in ([conns] if conns else r.conns):
                name = (f"{mode} echo {fmt_size(size)}, {c} conns: "
                        + ("vs uvloop" if what == "uvloop" else "vs the C server"))
                if mode not in r.modes or size not in r.sizes or c not in r.conns:
                    if conns is not None:
                        found.append({"target": name, "need": need, "kind": None,
                                      "ratio": None, "met": None,
                                      "why": "not in this run's matrix"})
                    continue
                den_name = "uvloop" if what == "uvloop" else C_SERVER
                verdict(name, need, den_name, r.get(mode, size, c, den_name),
                        [(k, r.get(mode, size, c, k), r.unavailable.get(k)) for k in r.ours],
                        lambda loop, mode=mode, size=size, c=c: rps_by_rep(
                            echo.get("runs", []), loop=loop, size=size, conns=c,
                            mode=None if loop == C_SERVER else mode))
    if http is not None:
        if http.get("skipped"):
            found.append({"target": "HTTP keep-alive: vs uvloop", "need": HTTP_TARGET,
                          "kind": None, "ratio": None, "met": None,
                          "why": "HTTP skipped, see above"})
        else:
            unavailable = {n: i["error"] for n, i in http["loops"].items() if "error" in i}
            for client in http_clients(http):
                cells = http_cells(http, client)
                verdict(f"HTTP keep-alive ({CLIENT_NAMES.get(client, client)}): vs uvloop",
                        HTTP_TARGET, "uvloop", cells.get("uvloop"),
                        [(k, cells.get(k), unavailable.get(k))
                         for k in http["settings"]["loops"] if k.startswith(OURS_PREFIX)],
                        lambda loop, client=client: rps_by_rep(
                            http.get("runs", []), loop=loop, client=client))
    return found


def targets_markdown(echo: dict[str, Any] | None = None,
                     http: dict[str, Any] | None = None) -> str:
    # Without any ringloop kind in the run there is nothing to check.
    found = [t for t in targets(echo, http) if t.get("why") != "no ringloop kind in this run"]
    if not found:
        return ""
    rows = []
    for t in found:
        if t["ratio"] is None:
            rows.append([t["target"], f">= {t['need']:.2f}x", "-", f"not measured ({t['why']})",
                         "-"])
            continue
        paired = t.get("paired")
        rows.append([t["target"], f">= {t['need']:.2f}x", t["kind"],
                     f"{t['ratio']:.2f}x (spread {t['spreads']})",
                     f"{paired:.2f}x" if paired is not None else "-",
                     "yes" if t["met"] else "no"])
    out = ["### Targets (the faster ringloop kind of each row)", ""]
    out += md_table(["target", "needs", "kind", "measured", "paired", "met"], rows)
    out += ["", ("Measured: the ratio of medians, which decides \"met\"; with a spread wider "
                 "than the margin, a yes or no is not settled by this run. Paired: the median "
                 "of the per-repetition ratios (the two loops' runs of one repetition are "
                 "close in time), less moved by a change of the host's pace during the run; "
                 "when the two disagree, the host changed pace.")]
    return "\n".join(out)


# --------------------------------------------------------------------------
# Chart
# --------------------------------------------------------------------------

COLORS = {"asyncio": "#9e9e9e", "uvloop": "#7b1fa2", "rloop": "#ef6c00", "ringloop": "#1565c0",
          "ringloop-proactor": "#2e7d32", C_SERVER: "#212121"}
EXTRA_COLORS = ["#00838f", "#ad1457", "#6d4c41", "#827717"]


def chart(path: str | Path, echo: dict[str, Any] | None = None,
          http: dict[str, Any] | None = None) -> str | None:
    """Grouped bars of each loop's req/s over uvloop's, one panel per echo mode (rows:
    size x conns) and one for HTTP. Returns why no chart was drawn, or None."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib is not installed ({exc}); pip install matplotlib"

    # panels: (title, [group labels], {series: [ratio or nan per group]})
    panels: list[tuple[str, list[str], dict[str, list[float]]]] = []
    if echo is not None and echo.get("cells"):
        r = EchoResults(echo)
        if "uvloop" in r.loops:
            series = [n for n in r.loops if n != "uvloop"] + ([C_SERVER] if r.has_c else [])
            for m in r.modes:
                rows = [(s, c) for s in r.sizes for c in r.conns]
                data = {n: [ratio(r.rps(m, s, c, n), r.rps(m, s, c, "uvloop")) or math.nan
                            for s, c in rows] for n in series}
                panels.append((f"TCP echo, {MODE_TITLES.get(m, m)}",
                               [f"{fmt_size(s)}\n{c} conns" for s, c in rows], data))
    if http is not None and not http.get("skipped") and http.get("cells"):
        groups = []
        data = {n: [] for n in http["settings"]["loops"] if n != "uvloop"}
        for client in http_clients(http):
            cells = http_cells(http, client)
            uv = cells.get("uvloop", {}).get("median_rps")
            if not uv:
                continue
            groups.append(CLIENT_NAMES.get(client, client))
            for n, values in data.items():
                values.append(ratio(cells[n]["median_rps"] if n in cells else None, uv)
                              or math.nan)
        if groups:
            title = f"HTTP/1.1 keep-alive (httptools), {http['settings']['conns']} connections"
            panels.append((title, groups, data))
    if not panels:
        return "nothing to draw (no row with uvloop measured)"

    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    widest = max(len(p[1]) for p in panels)
    height = 2.9 * len(panels) + 0.6
    fig, axes = plt.subplots(len(panels), 1, squeeze=False,
                             figsize=(max(9.0, 1.2 * widest + 3.5), height))
    extra = iter(EXTRA_COLORS * 4)
    colors: dict[str, str] = {}
    values = [v for _, _, data in panels for vals in data.values() for v in vals
              if not math.isnan(v)]
    # A log scale around uvloop = 1: bars grow up from 1.00 for a faster loop,
    # down for a slower one, and 2x faster looks as big as 2x slower.
    lo = min([0.5, *values]) / 1.25
    hi = max([2.0, *values]) * 1.35
    ticks = [t for t in (0.0625, 0.125, 0.25, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0)
             if lo <= t <= hi]
    for ax, (title, groups, data) in zip(axes[:, 0], panels, strict=True):
        names = list(data)
        width = 0.8 / max(4, len(names))  # not one fat bar where a panel has few
        for i, name in enumerate(names):
            color = colors.setdefault(name, COLORS.get(name) or next(extra))
            xs = [g + (i - (len(names) - 1) / 2) * width for g in range(len(groups))]
            vals = data[name]
            ax.bar(xs, [0 if math.isnan(v) else v - 1.0 for v in vals], width, bottom=1.0,
                   color=color, label=label(name))
            for x, v in zip(xs, vals, strict=True):
                if math.isnan(v):
                    ax.text(x, 1.0, "x", ha="center", va="center", color=color, fontsize=9,
                            fontweight="bold")
                elif name.startswith(OURS_PREFIX) or name == C_SERVER:
                    ax.text(x, v * (1.04 if v >= 1 else 0.96), f"{v:.2f}", ha="center",
                            va="bottom" if v >= 1 else "top", fontsize=6, rotation=90)
        ax.axhline(1.0, color=COLORS["uvloop"], linestyle="--", linewidth=1)
        ax.set_yscale("log", base=2)
        ax.set_ylim(lo, hi)
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}x"))
        ax.set_xticks(range(len(groups)), groups, fontsize=8)
        ax.set_xlim(-0.6, len(groups) - 0.4)
        ax.set_ylabel("req/s vs uvloop")
        ax.set_title(title, fontsize=9, loc="left")
        ax.grid(axis="y", alpha=0.3)
    handles, labels = [], []
    for ax in axes[:, 0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    handles.append(Line2D([0], [0], color=COLORS["uvloop"], linestyle="--"))
    labels.append("uvloop (1.00x)")
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    doc = echo or http or {}
    reps = doc.get("settings", {}).get("reps", "?")
    fig.suptitle(f"Median req/s over uvloop's: higher is better, log scale, x = failed or "
                 f"unavailable\n{reps} interleaved runs per cell, Python "
                 f"{str(doc.get('python', '?')).split()[0]}, server on one core, native "
                 "client on the other", fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# --------------------------------------------------------------------------
# The suite's report
# --------------------------------------------------------------------------


def newest(pattern: str) -> Path | None:
    found = sorted(RESULTS.glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def load(path: Path | None, what: str) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
        return doc
    except (OSError, ValueError) as exc:
        print(f"report.py: cannot read the {what} results {path}: {exc}", file=sys.stderr)
        return None


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--echo", default=None, metavar="PATH",
                        help="echo.py's JSON (default: the newest bench/results/echo-*.json)")
    parser.add_argument("--http", default=None, metavar="PATH",
                        help="httpbench.py's JSON (default: the newest bench/results/http-*.json)")
    parser.add_argument("--proc", default=None, metavar="PATH",
                        help="procbench.py's JSON (default: the newest "
                             "bench/results/proc-*.json)")
    parser.add_argument("--out", default=None, metavar="PREFIX",
                        help="write PREFIX.md and PREFIX.png (default "
                             "bench/results/suite-<time>)")
    args = parser.parse_args(argv)
    echo_path = Path(args.echo) if args.echo else newest("echo-*.json")
    http_path = Path(args.http) if args.http else newest("http-*.json")
    proc_path = Path(args.proc) if args.proc else newest("proc-*.json")
    echo, http = load(echo_path, "echo"), load(http_path, "HTTP")
    proc = load(proc_path, "subprocess and pipe")
    if echo is None and http is None and proc is None:
        print("report.py: no echo, HTTP or subprocess/pipe results to report on",
              file=sys.stderr)
        return 1
    prefix = Path(args.out) if args.out else RESULTS / f"suite-{stamp()}"
    png = prefix.with_name(prefix.name + ".png")
    why_not = chart(png, echo=echo, http=http)
    sections = ["## ringloop benchmark suite", ""]
    sources = (([f"echo: {echo_path}"] if echo else []) + ([f"HTTP: {http_path}"] if http else [])
               + ([f"subprocesses and pipes: {proc_path}"] if proc else []))
    sections.append("Results from " + "; ".join(sources) + ".")
    if why_not:
        sections.append(f"No chart: {why_not}.")
        print(f"report.py: no chart: {why_not}", file=sys.stderr)
    else:
        sections.append(f"Chart: {png.name}")
    body = ["\n".join(sections)]
    if echo and echo.get("cells"):
        body.append(echo_markdown(echo)[0])
    if http:
        body.append(http_markdown(http))
    if proc and proc.get("cells") is not None:
        body.append(proc_markdown(proc))
    tm = targets_markdown(echo=echo, http=http)
    if tm:
        body.append(tm)
    text = "\n\n".join(body)
    md = prefix.with_name(prefix.name + ".md")
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(text + "\n")
    print(text)
    print(f"\nsuite report: {md}" + ("" if why_not else f", chart: {png}"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
