"""asyncio streams on the loop under test: start_server / open_connection and
start_unix_server / open_unix_connection (readline, readexactly, read,
write/drain, write_eof, close/wait_closed)."""

import asyncio
import os
import socket

import pytest

from tests.support import TIMEOUT, has_ipv6, run, short_tmpdir

IPV6 = pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback")
FAMILIES = [pytest.param(socket.AF_INET, id="ipv4"),
            pytest.param(socket.AF_INET6, id="ipv6", marks=IPV6)]
HOST = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}


class LineServer:
    """Handler: answers each line with its upper-case form, then echoes a
    length-prefixed blob, then everything up to EOF reversed."""

    def __init__(self):
        self.done = asyncio.get_running_loop().create_future()
        self.peernames = []

    async def __call__(self, reader, writer):
        try:
            self.peernames.append(writer.get_extra_info("peername"))
            while True:
                line = await reader.readline()
                if line in (b"", b"blob\n"):
                    break
                writer.write(line.upper())
                await writer.drain()
            if line == b"blob\n":
                size = int(await reader.readexactly(8))
                blob = await reader.readexactly(size)
                writer.write(b"%08d" % len(blob))
                writer.write(blob)
                await writer.drain()
                rest = await reader.read()
                writer.write(rest[::-1])
                await writer.drain()
            writer.close()
            await writer.wait_closed()
            self.done.set_result(None)
        except Exception as exc:  # reported to the test
            self.done.set_exception(exc)
            writer.close()


async def _converse(reader, writer):
    writer.write(b"hello\n")
    writer.writelines([b"second ", b"line\n"])
    await writer.drain()
    assert await reader.readline() == b"HELLO\n"
    assert await reader.readline() == b"SECOND LINE\n"

    blob = os.urandom(3 * 1024 * 1024)
    writer.write(b"blob\n" + b"%08d" % len(blob))
    writer.write(blob)
    await writer.drain()
    assert int(await reader.readexactly(8)) == len(blob)
    assert await reader.readexactly(len(blob)) == blob

    assert writer.can_write_eof()
    writer.write(b"tail of the stream")
    writer.write_eof()
    assert await reader.read() == b"tail of the stream"[::-1]
    assert reader.at_eof()
    with pytest.raises(asyncio.IncompleteReadError) as info:
        await reader.readexactly(1)
    assert info.value.partial == b""
    writer.close()
    await asyncio.wait_for(writer.wait_closed(), TIMEOUT)
    assert writer.is_closing()


@pytest.mark.parametrize("family", FAMILIES)
def test_tcp_streams(loop, family):
    async def main():
        handler = LineServer()
        server = await asyncio.start_server(handler, HOST[family], 0)
        try:
            assert server.get_loop() is loop
            addr = server.sockets[0].getsockname()[:2]
            reader, writer = await asyncio.open_connection(*addr)
            assert writer.get_extra_info("peername")[:2] == addr
            assert writer.transport.get_extra_info("sockname")[:2] == \
                (await asyncio.wait_for(_first_peername(handler), TIMEOUT))[:2]
            await _converse(reader, writer)
            await asyncio.wait_for(handler.done, TIMEOUT)
        finally:
            server.close()
            await server.wait_closed()

    run(loop, main(), timeout=30)


async def _first_peername(handler):
    while not handler.peernames:
        await asyncio.sleep(0.005)
    return handler.peernames[0]


def test_unix_streams(loop):
    async def main():
        with short_tmpdir() as d:
            path = os.path.join(d, "streams.sock")
            handler = LineServer()
            server = await asyncio.start_unix_server(handler, path)
            try:
                reader, writer = await asyncio.open_unix_connection(path)
                assert writer.get_extra_info("peername") == path
                await _converse(reader, writer)
                await asyncio.wait_for(handler.done, TIMEOUT)
            finally:
                server.close()
                await server.wait_closed()

    run(loop, main(), timeout=30)


def test_readexactly_incomplete_and_readuntil(loop):
    async def main():
        async def handler(reader, writer):
            writer.write(b"part one|part two|tail")
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
            try:
                assert await reader.readuntil(b"|") == b"part one|"
                assert await reader.readuntil(b"|") == b"part two|"
                with pytest.raises(asyncio.IncompleteReadError) as info:
                    await reader.readexactly(100)
                assert info.value.partial == b"tail"
                assert info.value.expected == 100
            finally:
                writer.close()
                await writer.wait_closed()
        finally:
            server.close()
            await server.wait_closed()

    run(loop, main())


def test_stream_readline_limit(loop):
    async def main():
        async def handler(reader, writer):
            writer.write(b"x" * 100 + b"\nshort\n")
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname(),
                                                           limit=50)
            try:
                with pytest.raises(ValueError):
                    await reader.readline()  # LimitOverrunError -> ValueError
                assert await reader.readline() == b"short\n"
            finally:
                writer.close()
                await writer.wait_closed()
        finally:
            server.close()
            await server.wait_closed()

    run(loop, main())


def test_drain_waits_for_slow_reader(loop):
    # A reader that does not read makes drain() wait (flow control through
    # the transport's pause_writing); it returns once the peer catches up.
    async def main():
        release = asyncio.Event()
        received = loop.create_future()

        async def handler(reader, writer):
            await release.wait()
            total = 0
            while chunk := await reader.read(1 << 20):
                total += len(chunk)
            received.set_result(total)
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
            try:
                chunk = b"d" * (1 << 20)
                drained = None
                total = 0
                for _ in range(64):
                    writer.write(chunk)
                    total += len(chunk)
                    drained = loop.create_task(writer.drain())
                    await asyncio.sleep(0.01)
                    if not drained.done():
                        break
                    await drained
                assert not drained.done(), "drain() never had to wait"
                release.set()
                await asyncio.wait_for(drained, TIMEOUT)
                writer.write_eof()
                assert await asyncio.wait_for(received, TIMEOUT) == total
            finally:
                writer.close()
                await writer.wait_closed()
        finally:
            server.close()
            await server.wait_closed()

    run(loop, main(), timeout=30)


def test_open_connection_refused(loop):
    async def main():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))  # bound, not listening
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection(*s.getsockname())

    run(loop, main())
