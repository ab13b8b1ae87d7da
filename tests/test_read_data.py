"""The bytes a stream transport hands to data_received(): each read's data
is intact and stays intact whatever the protocol does with it (keeps it,
keeps a view or a slice of it, hashes it, drops it), on sockets and pipes.

ringloop refills the bytes object of the previous read when the protocol
kept no reference to it (a libc allocation saved per read), and a socket
whose reads come in large has them written straight into the bytes object
(a copy saved), cut to size afterwards; these tests are what that must
never show."""

import asyncio
import os
import socket

import pytest

from tests.support import run

# Same-size messages (so that a refill can happen), then sizes around them,
# larger and smaller, then tiny ones; then large ones (a socket's reads of
# 32 KiB and more go straight into the bytes object: same-size ones, some
# that fill the 128 KiB read buffer, sizes in between and small ones again).
PAYLOAD_SIZES = ([1024] * 12 + [1000, 1024, 900, 1100, 4000, 3900, 600, 2, 1, 1024]
                 + [100_000] * 4 + [131_072] * 3 + [200_000, 70_000, 20_000, 40_000,
                                                    5_000, 100_000, 17_000, 131_000,
                                                    1024, 50_000, 3])


def payloads():
    return [os.urandom(n) for n in PAYLOAD_SIZES]


class Recorder(asyncio.Protocol):
    """Calls `on_data(data)` for each read; wakes the test per byte count."""

    def __init__(self, on_data):
        self.on_data = on_data
        self.received = 0
        self.waiter = None
        self.want = 0
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.on_data(data)
        self.received += len(data)
        if self.waiter is not None and self.received >= self.want:
            if not self.waiter.done():
                self.waiter.set_result(None)

    def connection_lost(self, exc):
        pass

    async def until(self, total):
        self.want = total
        if self.received < total:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter


async def _write_all(write, m):
    # Non-blocking: a message larger than the socket's or pipe's buffer
    # goes out as the loop (same thread) reads it.
    view = memoryview(m)
    while view:
        try:
            view = view[write(view):]
        except BlockingIOError:
            await asyncio.sleep(0.001)


async def _exchange_socket(loop, on_data, messages):
    a, b = socket.socketpair()
    b.setblocking(False)
    try:
        tr, proto = await loop.connect_accepted_socket(lambda: Recorder(on_data), a)
        total = 0
        for m in messages:
            await _write_all(b.send, m)
            total += len(m)
            await proto.until(total)       # one message in flight at a time
        tr.close()
        await asyncio.sleep(0)
    finally:
        b.close()


async def _exchange_pipe(loop, on_data, messages):
    rfd, wfd = os.pipe()
    rfile = os.fdopen(rfd, "rb", buffering=0)
    os.set_blocking(wfd, False)
    try:
        tr, proto = await loop.connect_read_pipe(lambda: Recorder(on_data), rfile)
        total = 0
        for m in messages:
            await _write_all(lambda v: os.write(wfd, v), m)
            total += len(m)
            await proto.until(total)
        tr.close()
        await asyncio.sleep(0)
    finally:
        os.close(wfd)


EXCHANGES = {"socket": _exchange_socket, "pipe": _exchange_pipe}


@pytest.fixture(params=sorted(EXCHANGES))
def exchange(request):
    return EXCHANGES[request.param]


def test_data_kept_by_the_protocol_stays_intact(loop, exchange):
    msgs = payloads()
    kept = []
    run(loop, exchange(loop, kept.append, msgs))
    assert b"".join(kept) == b"".join(msgs)
    # Every kept object is its own: none was refilled under the protocol.
    assert len({id(d) for d in kept}) == len(kept)


def test_views_and_slices_kept_by_the_protocol_stay_intact(loop, exchange):
    msgs = payloads()
    views, heads, lengths = [], [], []

    def on_data(data):
        views.append(memoryview(data))
        heads.append(data[:7])           # a new object: data itself is dropped
        lengths.append(len(data))

    run(loop, exchange(loop, on_data, msgs))
    assert b"".join(v.tobytes() for v in views) == b"".join(msgs)
    assert [len(v) for v in views] == lengths
    pos = 0
    stream = b"".join(msgs)
    for head, n in zip(heads, lengths):
        assert head == stream[pos:pos + min(7, n)]
        pos += n


def test_dropped_data_hashes_and_compares_by_its_own_contents(loop, exchange):
    # A protocol that hashes each read (a dict key, a set member) and drops
    # it: the next read's object, even if it is the same one refilled, must
    # hash and compare by its new contents.
    msgs = payloads()
    copies, checks, ids = [], [], []

    def on_data(data):
        ids.append(id(data))
        copy = bytes(bytearray(data))
        copies.append(copy)
        table = {data: "x"}
        checks.append((
            hash(data) == hash(copy),
            copy in table,
            data == copy,
            len(data) == len(copy),
            bytes(data) == copy,
            data.hex() == copy.hex(),
        ))

    run(loop, exchange(loop, on_data, msgs))
    assert b"".join(copies) == b"".join(msgs)
    assert all(all(c) for c in checks), checks


@pytest.mark.ringloop_only
def test_a_dropped_read_object_is_refilled_for_the_next_read(loop, exchange):
    # The mechanism the tests above guard: with same-size reads and a
    # protocol that keeps nothing, the loop reuses one object.
    ids = []
    run(loop, exchange(loop, lambda d: ids.append(id(d)), payloads()[:12]))
    assert len(set(ids)) < len(ids)


@pytest.mark.ringloop_only
def test_large_reads_kept_by_the_protocol_waste_little_memory():
    # A protocol that keeps every large read (a list of chunks): the objects
    # written straight into are cut to their data, so what they hold is at
    # most 1/8 more than the data (plus the object headers).
    import tracemalloc
    import ringloop

    sizes = [100_000, 90_000, 120_000, 70_000, 40_000, 131_072, 60_000, 33_000] * 8
    msgs = [os.urandom(n) for n in sizes]
    kept = []
    loop = ringloop.SelectorEventLoop()
    try:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            run(loop, _exchange_socket(loop, kept.append, msgs))
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    finally:
        loop.close()
    data = sum(map(len, kept))
    assert b"".join(kept) == b"".join(msgs)
    assert data <= held <= data * 9 // 8 + 64 * 1024 + len(kept) * 64, (held, data)
