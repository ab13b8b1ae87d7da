"""ringloop's loop.statistics(): keys, driver name, counters that move."""

import asyncio
import numbers
import socket

import pytest

from tests.support import run

pytestmark = pytest.mark.ringloop_only

NUMERIC_KEYS = ("iterations", "callbacks", "io_events", "poll_time")


def test_statistics_keys_and_types(loop):
    stats = loop.statistics()
    assert isinstance(stats, dict)
    assert isinstance(stats["driver"], str) and stats["driver"]
    for key in NUMERIC_KEYS:
        assert isinstance(stats[key], numbers.Real), (key, stats[key])
        assert not isinstance(stats[key], bool)
        assert stats[key] >= 0


def test_statistics_driver_names_backend(loop, loop_impl):
    assert loop_impl.driver_hint in loop.statistics()["driver"]


def test_statistics_is_a_snapshot(loop):
    stats = loop.statistics()
    stats["iterations"] = -1
    stats["driver"] = "changed"
    again = loop.statistics()
    assert again["iterations"] >= 0
    assert again["driver"] != "changed"


def test_statistics_count_callbacks_and_iterations(loop):
    before = loop.statistics()
    for _ in range(25):
        loop.call_soon(lambda: None)
    loop.call_soon(loop.stop)
    loop.run_forever()
    after = loop.statistics()
    assert after["callbacks"] - before["callbacks"] >= 26
    assert after["iterations"] > before["iterations"]
    # iterations count loop turns, not callbacks
    loop.call_soon(lambda: None)
    loop.call_soon(lambda: None)
    loop.call_soon(loop.stop)
    loop.run_forever()
    third = loop.statistics()
    assert third["iterations"] - after["iterations"] < third["callbacks"] - after["callbacks"]


def test_statistics_count_io_events(loop):
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        before = loop.statistics()
        got = []

        def on_read():
            got.append(a.recv(10))
            loop.remove_reader(a)

        loop.add_reader(a, on_read)

        async def main():
            b.send(b"x")
            while not got:
                await asyncio.sleep(0.001)

        run(loop, main())
        after = loop.statistics()
    finally:
        a.close()
        b.close()
    assert got == [b"x"]
    assert after["io_events"] - before["io_events"] >= 1


def test_statistics_poll_time_grows_when_idle(loop):
    before = loop.statistics()
    run(loop, asyncio.sleep(0.05))
    after = loop.statistics()
    assert after["poll_time"] > before["poll_time"]
    # seconds (a 50 ms sleep), not milli- or nanoseconds
    assert after["poll_time"] - before["poll_time"] < 5


def test_statistics_counters_never_decrease(loop):
    prev = loop.statistics()
    for _ in range(5):
        run(loop, asyncio.sleep(0.001))
        cur = loop.statistics()
        for key in NUMERIC_KEYS:
            assert cur[key] >= prev[key], key
        prev = cur


def test_statistics_after_close(loop):
    run(loop, asyncio.sleep(0))
    loop.close()
    stats = loop.statistics()
    assert isinstance(stats, dict)
    assert stats["iterations"] >= 1
