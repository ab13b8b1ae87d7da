"""loop.sendfile (file -> transport) and loop.sock_sendfile over TCP and Unix
stream sockets: bytes, offset/count, return value, file position, fallback.

uvloop does not implement loop.sendfile / loop.sock_sendfile at all
(asyncio.AbstractEventLoop's NotImplementedError): those cases are xfailed
before they start (``uvloop_xfail`` fixture).  Running them would only
fail, and on 3.11.7 formatting those failures' tracebacks can crash pytest
("SystemError: AST constructor recursion depth mismatch").
"""

import asyncio
import io
import os
import zlib

import pytest

from tests.support import TIMEOUT, Recorder, close_transport, run, socketpair, tcp_pair

NO_SENDFILE = "loop.sendfile is not implemented (NotImplementedError)"
NO_SOCK_SENDFILE = "loop.sock_sendfile is not implemented (NotImplementedError)"
SIZE = 4 * 1024 * 1024 + 123


@pytest.fixture
def data_file(tmp_path):
    data = os.urandom(SIZE)
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    return path, data


async def _read(loop, sock, n):
    chunks, got = [], 0
    while got < n:
        chunk = await loop.sock_recv(sock, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


async def _transport_over(loop, sock):
    return await loop.create_connection(Recorder, sock=sock)


@pytest.fixture
def uvloop_xfail(request, loop_impl):
    """xfail at once on uvloop, with the reason of the test's xfail_uvloop mark."""
    mark = request.node.get_closest_marker("xfail_uvloop")
    if loop_impl.kind == "uvloop" and mark is not None:
        pytest.xfail("uvloop: " + mark.args[0])


PAIRS = [pytest.param(tcp_pair, id="tcp"), pytest.param(socketpair, id="unix")]


@pytest.mark.xfail_uvloop(NO_SENDFILE)
@pytest.mark.usefixtures("uvloop_xfail")
@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("offset, count", [(0, None), (1000, None), (12345, 100000),
                                           (SIZE - 10, 1000)],
                         ids=["all", "offset", "offset-count", "count-past-end"])
def test_sendfile(loop, data_file, pair, offset, count):
    path, data = data_file
    expected = data[offset:offset + count if count else None]

    async def main():
        with pair() as (a, b), open(path, "rb") as f:
            if pair is socketpair:
                tr, proto = await loop.connect_accepted_socket(Recorder, a)
            else:
                tr, proto = await _transport_over(loop, a)
            try:
                reader = loop.create_task(_read(loop, b, len(expected)))
                sent = await loop.sendfile(tr, f, offset, count)
                assert sent == len(expected)
                assert f.tell() == offset + sent
                assert await asyncio.wait_for(reader, TIMEOUT) == expected
                # The transport works as before.
                tr.write(b"after")
                assert await _read(loop, b, 5) == b"after"
                await loop.sock_sendall(b, b"reading resumed")
                assert await proto.received(15) == b"reading resumed"
            finally:
                await close_transport(tr, proto)

    run(loop, main(), timeout=30)


@pytest.mark.xfail_uvloop(NO_SENDFILE)
@pytest.mark.usefixtures("uvloop_xfail")
def test_sendfile_then_writes_keep_order(loop, data_file):
    path, data = data_file

    async def main():
        with tcp_pair() as (a, b), open(path, "rb") as f:
            tr, proto = await _transport_over(loop, a)
            try:
                reader = loop.create_task(_read(loop, b, 6 + SIZE + 5))
                tr.write(b"before")
                sent = await loop.sendfile(tr, f)
                tr.write(b"after")
                assert sent == SIZE
                assert await asyncio.wait_for(reader, TIMEOUT) == b"before" + data + b"after"
            finally:
                await close_transport(tr, proto)

    run(loop, main(), timeout=30)


@pytest.mark.xfail_uvloop(NO_SENDFILE)
@pytest.mark.usefixtures("uvloop_xfail")
def test_write_during_sendfile_raises(loop, data_file):
    path, data = data_file

    async def main():
        with tcp_pair() as (a, b), open(path, "rb") as f:
            tr, proto = await _transport_over(loop, a)
            try:
                task = loop.create_task(loop.sendfile(tr, f))
                try:
                    await asyncio.sleep(0.05)  # the peer does not read: still sending
                    assert not task.done()
                    with pytest.raises(RuntimeError, match="sendfile is in progress"):
                        tr.write(b"no")
                    got = await _read(loop, b, SIZE)
                    assert await asyncio.wait_for(task, TIMEOUT) == SIZE
                    assert zlib.crc32(got) == zlib.crc32(data)
                finally:
                    task.cancel()
                    await asyncio.wait([task])
                    if not task.cancelled():
                        task.exception()  # retrieved: no "never retrieved" log
            finally:
                await close_transport(tr, proto)

    run(loop, main(), timeout=30)


@pytest.mark.xfail_uvloop(NO_SENDFILE)
@pytest.mark.usefixtures("uvloop_xfail")
def test_sendfile_not_a_regular_file(loop):
    payload = os.urandom(100000)

    async def main():
        with tcp_pair() as (a, b):
            tr, proto = await _transport_over(loop, a)
            try:
                # No zero-copy from a BytesIO: without fallback it fails...
                with pytest.raises(asyncio.SendfileNotAvailableError):
                    await loop.sendfile(tr, io.BytesIO(payload), fallback=False)
                assert not tr.is_closing()
                # ...with it, asyncio reads and writes the data itself.
                f = io.BytesIO(payload)
                reader = loop.create_task(_read(loop, b, len(payload) - 10))
                assert await loop.sendfile(tr, f, 10) == len(payload) - 10
                assert f.tell() == len(payload)
                assert await asyncio.wait_for(reader, TIMEOUT) == payload[10:]
            finally:
                await close_transport(tr, proto)

    run(loop, main())


@pytest.mark.xfail_uvloop(NO_SENDFILE)
@pytest.mark.usefixtures("uvloop_xfail")
def test_sendfile_bad_arguments(loop, data_file):
    path, _ = data_file

    async def main():
        with tcp_pair() as (a, b), open(path, "rb") as f, open(path, "r") as text:
            tr, proto = await _transport_over(loop, a)
            try:
                with pytest.raises(ValueError, match="binary mode"):
                    await loop.sendfile(tr, text)
                with pytest.raises(ValueError, match="offset must be a non-negative integer"):
                    await loop.sendfile(tr, f, -1)
                with pytest.raises(ValueError, match="count must be a positive integer"):
                    await loop.sendfile(tr, f, 0, 0)
                with pytest.raises(TypeError, match="count must be a positive integer"):
                    await loop.sendfile(tr, f, 0, "1")
                assert not tr.is_closing()
            finally:
                await close_transport(tr, proto)
            with pytest.raises(RuntimeError, match="Transport is closing"):
                await loop.sendfile(tr, f)

    run(loop, main())


@pytest.mark.xfail_uvloop(NO_SENDFILE)
@pytest.mark.usefixtures("uvloop_xfail")
def test_sendfile_on_datagram_transport_unsupported(loop, data_file):
    path, _ = data_file

    async def main():
        tr, proto = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                        local_addr=("127.0.0.1", 0))
        try:
            with open(path, "rb") as f:
                with pytest.raises(RuntimeError, match="sendfile is not supported for transport"):
                    await loop.sendfile(tr, f)
        finally:
            tr.close()
            await asyncio.sleep(0)

    run(loop, main())


@pytest.mark.xfail_uvloop(NO_SOCK_SENDFILE)
@pytest.mark.usefixtures("uvloop_xfail")
@pytest.mark.parametrize("pair", PAIRS)
def test_sock_sendfile(loop, data_file, pair):
    path, data = data_file

    async def main():
        with pair() as (a, b), open(path, "rb") as f:
            reader = loop.create_task(_read(loop, b, SIZE - 7))
            sent = await loop.sock_sendfile(a, f, 7)
            assert sent == SIZE - 7
            assert f.tell() == SIZE
            assert await asyncio.wait_for(reader, TIMEOUT) == data[7:]

    run(loop, main(), timeout=30)


@pytest.mark.xfail_uvloop(NO_SOCK_SENDFILE)
@pytest.mark.usefixtures("uvloop_xfail")
def test_sock_sendfile_no_fallback_for_bytesio(loop):
    async def main():
        with tcp_pair() as (a, b):
            with pytest.raises(asyncio.SendfileNotAvailableError):
                await loop.sock_sendfile(a, io.BytesIO(b"data"), fallback=False)
            assert await loop.sock_sendfile(a, io.BytesIO(b"data")) == 4
            assert await _read(loop, b, 4) == b"data"

    run(loop, main())


@pytest.mark.xfail_uvloop(NO_SENDFILE)
@pytest.mark.usefixtures("uvloop_xfail")
def test_tls_transport_sendfile_needs_fallback(loop, loop_impl, data_file):
    # A TLS transport cannot use zero-copy sendfile: fallback=False is refused.
    if loop_impl.is_ringloop:
        pytest.skip("TLS: later issue")
    from tests.test_transport_connect import CERT, _tls_contexts

    if CERT is None:
        pytest.skip("CPython's test certificates are not installed")
    path, data = data_file

    async def main():
        server_ctx, client_ctx = _tls_contexts()
        accepted = []

        def factory():
            accepted.append(Recorder())
            return accepted[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0, ssl=server_ctx)
        try:
            tr, proto = await loop.create_connection(
                Recorder, *server.sockets[0].getsockname(), ssl=client_ctx,
                server_hostname="localhost")
            try:
                with open(path, "rb") as f:
                    with pytest.raises(RuntimeError, match="fallback is disabled"):
                        await loop.sendfile(tr, f, fallback=False)
                    assert await loop.sendfile(tr, f, 0, 100000) == 100000
                while not accepted:
                    await asyncio.sleep(0.005)
                assert await accepted[0].received(100000) == data[:100000]
                await close_transport(accepted[0].transport, accepted[0])
            finally:
                await close_transport(tr, proto)
        finally:
            server.close()
            await server.wait_closed()

    run(loop, main(), timeout=30)
