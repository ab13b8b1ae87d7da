"""Unix stream sockets: create_unix_server / create_unix_connection on
filesystem paths and Linux abstract names, sock=, stale socket files, the
socket file's removal on close, connect_accepted_socket on Unix sockets."""

import asyncio
import errno
import os
import pathlib
import socket
import stat
import sys
import uuid

import pytest

from tests.support import (TIMEOUT, Accepted, Recorder, close_transport, run, short_tmpdir,
                           socketpair)

PY313 = sys.version_info >= (3, 13)


@pytest.fixture
def sock_dir():
    with short_tmpdir() as d:
        yield d


@pytest.fixture
def path(sock_dir):
    return os.path.join(sock_dir, "s.sock")


def _abstract_name():
    return "\0ringloop-test-" + uuid.uuid4().hex[:12]


async def _roundtrip(loop, address, payload=b"unix payload"):
    tr, proto = await loop.create_unix_connection(Recorder, address)
    try:
        tr.write(payload)
        return await proto.received(len(payload))
    finally:
        await close_transport(tr, proto)


async def _closed(server):
    server.close()
    await asyncio.wait_for(server.wait_closed(), TIMEOUT)


# --------------------------------------------------------- filesystem ----

def test_unix_server_and_connection(loop, path):
    async def main():
        accepted = Accepted(echo=True)
        server = await loop.create_unix_server(accepted, path)
        try:
            assert server.is_serving()
            [sock] = server.sockets
            assert sock.family == socket.AF_UNIX
            assert sock.getsockname() == path
            assert stat.S_ISSOCK(os.stat(path).st_mode)

            tr, proto = await loop.create_unix_connection(Recorder, path)
            try:
                assert tr.get_extra_info("peername") == path
                assert tr.get_extra_info("socket").family == socket.AF_UNIX
                tr.write(b"over a unix socket" * 1000)
                assert await proto.received(18000) == b"over a unix socket" * 1000
                sproto = await accepted.wait(1)
                assert sproto.transport.get_extra_info("sockname") == path
                assert tr.can_write_eof()
                tr.write_eof()
                await asyncio.wait_for(sproto.eof, TIMEOUT)
                assert await asyncio.wait_for(proto.lost, TIMEOUT) is None
                assert await asyncio.wait_for(sproto.lost, TIMEOUT) is None
            finally:
                await close_transport(tr, proto)
        finally:
            await _closed(server)

    run(loop, main())


def test_unix_path_like(loop, sock_dir):
    path = pathlib.Path(sock_dir) / "p.sock"

    async def main():
        server = await loop.create_unix_server(lambda: Recorder(echo=True), path)
        try:
            assert server.sockets[0].getsockname() == str(path)
            assert await _roundtrip(loop, path) == b"unix payload"
        finally:
            await _closed(server)

    run(loop, main())


def test_unix_server_replaces_stale_socket_file(loop, path):
    with socket.socket(socket.AF_UNIX) as old:
        old.bind(path)  # left behind once closed, as a crashed server would
    assert stat.S_ISSOCK(os.stat(path).st_mode)

    async def main():
        server = await loop.create_unix_server(lambda: Recorder(echo=True), path)
        try:
            assert await _roundtrip(loop, path) == b"unix payload"
        finally:
            await _closed(server)

    run(loop, main())


def test_unix_server_refuses_to_replace_other_files(loop, path):
    with open(path, "w") as f:
        f.write("not a socket")

    async def main():
        with pytest.raises(OSError) as info:
            await loop.create_unix_server(Recorder, path)
        assert info.value.errno == errno.EADDRINUSE
        assert path in str(info.value)

    run(loop, main())
    with open(path) as f:
        assert f.read() == "not a socket"


def test_unix_socket_file_removed_on_close(loop, loop_impl, path):
    # asyncio removes the socket file since 3.13; ringloop on every version.
    async def main():
        server = await loop.create_unix_server(Recorder, path)
        assert os.path.exists(path)
        await _closed(server)

    run(loop, main())
    assert os.path.exists(path) == (not (PY313 or loop_impl.is_ringloop))


@pytest.mark.ringloop_only
@pytest.mark.skipif(PY313, reason="3.13's asyncio records the socket file itself")
def test_unix_server_serves_when_its_socket_file_cannot_be_stat(loop, path, monkeypatch):
    # Before 3.13 ringloop stats the new socket file itself, to remove it on
    # close; if that fails (EACCES...) the server, already listening, is
    # returned and serves, and the file is left, as asyncio leaves it.
    import ringloop._network as net

    seen = []

    def cannot_stat(p):
        seen.append(p)
        return None

    monkeypatch.setattr(net, "unix_socket_inode", cannot_stat)

    async def main():
        server = await loop.create_unix_server(lambda: Recorder(echo=True), path)
        assert server.is_serving()
        assert await _roundtrip(loop, path) == b"unix payload"
        await _closed(server)

    run(loop, main())
    assert seen == [path]
    assert stat.S_ISSOCK(os.stat(path).st_mode)


@pytest.mark.ringloop_only
@pytest.mark.skipif(PY313, reason="3.13's asyncio records the socket file itself")
def test_unix_server_closed_when_its_socket_file_check_raises(loop, path, monkeypatch):
    # Not an OSError: it reaches the caller, who gets no server, and nothing
    # is left listening.
    import ringloop._network as net

    class Detector(RuntimeError):
        pass

    def check_raises(p):
        raise Detector("no stat here")

    monkeypatch.setattr(net, "unix_socket_inode", check_raises)

    async def main():
        with pytest.raises(Detector):
            await loop.create_unix_server(Recorder, path)
        with socket.socket(socket.AF_UNIX) as c, pytest.raises(ConnectionRefusedError):
            c.connect(path)

    run(loop, main())


class BlockingCall(Exception):
    pass


def _detector(real, name):
    """What blockbuster does to os.stat/os.unlink: with a loop running, a
    call is an error unless asyncio's own unix_events.py code makes it."""

    def wrapper(*args, **kwargs):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return real(*args, **kwargs)
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename.replace("\\", "/").endswith("asyncio/unix_events.py"):
                return real(*args, **kwargs)
            frame = frame.f_back
        raise BlockingCall(f"blocking call to {name}")

    return wrapper


@pytest.mark.ringloop_only
def test_unix_server_socket_file_is_handled_without_os_calls_a_detector_sees(
        loop, path, monkeypatch):
    # blockbuster (aiohttp's test suite uses it) allows os.stat/os.unlink only
    # inside asyncio's create_unix_server and _stop_serving: ringloop's own
    # record of the socket file and its removal on close (on every version)
    # make those calls in C, which no such detector reports.
    monkeypatch.setattr(os, "stat", _detector(os.stat, "os.stat"))
    monkeypatch.setattr(os, "unlink", _detector(os.unlink, "os.unlink"))
    monkeypatch.setattr(os, "remove", _detector(os.remove, "os.remove"))
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    async def main():
        server = await loop.create_unix_server(lambda: Recorder(echo=True), path)
        assert await _roundtrip(loop, path) == b"unix payload"
        server.close()
        await server.wait_closed()

    run(loop, main())
    monkeypatch.undo()
    assert errors == []
    assert not os.path.exists(path)


@pytest.mark.ringloop_only
def test_unix_socket_file_cleanup_error_is_logged_and_close_completes(loop, path, caplog,
                                                                       monkeypatch):
    # A socket file that cannot be removed (EACCES, a read-only file system)
    # is logged as asyncio 3.13 logs it, and the server still closes.
    import ringloop._network as net

    def cannot_unlink(p, ino):
        raise PermissionError(errno.EACCES, "Permission denied", p)

    monkeypatch.setattr(net, "unlink_unix_socket", cannot_unlink)

    async def main():
        server = await loop.create_unix_server(Recorder, path)
        await _closed(server)
        assert not server.is_serving()

    with caplog.at_level("ERROR", logger="asyncio"):
        run(loop, main())
    assert any("Unable to clean up listening UNIX socket" in r.getMessage()
               and "Permission denied" in r.getMessage() for r in caplog.records)
    with socket.socket(socket.AF_UNIX) as c, pytest.raises(ConnectionRefusedError):
        c.connect(path)


@pytest.mark.ringloop_only
def test_unix_socket_file_helpers(loop, sock_dir):
    # The C stat()/unlink() pair: the inode recorded, the file removed only
    # while it is still that socket.
    from ringloop.transports.stream import unlink_unix_socket, unix_socket_inode

    a = os.path.join(sock_dir, "a.sock")

    async def main():
        server = await loop.create_unix_server(Recorder, a)
        ino = unix_socket_inode(a)
        assert ino == os.stat(a).st_ino
        assert unlink_unix_socket(a, ino + 1) is False       # another file now
        assert os.path.exists(a)
        await _closed(server)

    run(loop, main())
    assert not os.path.exists(a)
    assert unlink_unix_socket(a, 1) is False                 # gone: not an error
    assert unix_socket_inode(a) is None
    with open(a, "w") as f:
        f.write("x")
    assert unlink_unix_socket(a, os.stat(a).st_ino) is False  # not a socket
    assert os.path.exists(a)
    assert unix_socket_inode("bad\0name") is None
    assert unlink_unix_socket("bad\0name", 1) is False
    with pytest.raises(OSError) as info:
        unlink_unix_socket(os.path.join(a, "x"), 1)           # ENOTDIR
    assert info.value.errno == errno.ENOTDIR


@pytest.mark.skipif(not PY313, reason="cleanup_socket is new in 3.13")
def test_unix_socket_file_kept_with_cleanup_socket_false(loop, path):
    async def main():
        server = await loop.create_unix_server(Recorder, path, cleanup_socket=False)
        await _closed(server)

    run(loop, main())
    assert os.path.exists(path)


@pytest.mark.skipif(not PY313, reason="socket files are removed on close since 3.13")
def test_unix_socket_file_replaced_is_not_removed(loop, path):
    # The file is removed only if it is still the server's own socket.
    async def main():
        server = await loop.create_unix_server(Recorder, path)
        os.unlink(path)
        with open(path, "w") as f:
            f.write("someone else's")
        await _closed(server)

    run(loop, main())
    assert os.path.exists(path)


def test_unix_connection_missing_path(loop, path):
    with pytest.raises(FileNotFoundError):
        run(loop, loop.create_unix_connection(Recorder, path))


def test_unix_connection_refused(loop, path):
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(path)  # bound, not listening
        with pytest.raises(ConnectionRefusedError):
            run(loop, loop.create_unix_connection(Recorder, path))


def test_unix_server_start_serving_false(loop, path):
    async def main():
        server = await loop.create_unix_server(lambda: Recorder(echo=True), path,
                                               start_serving=False)
        try:
            assert not server.is_serving()
            await server.start_serving()
            assert server.is_serving()
            assert await _roundtrip(loop, path) == b"unix payload"
        finally:
            await _closed(server)

    run(loop, main())


def test_unix_server_async_with_and_serve_forever(loop, path):
    async def main():
        async with await loop.create_unix_server(lambda: Recorder(echo=True), path) as server:
            task = loop.create_task(server.serve_forever())
            await asyncio.sleep(0)
            assert await _roundtrip(loop, path) == b"unix payload"
            task.cancel()
            await asyncio.wait([task], timeout=2)
            assert task.cancelled()
            assert not server.is_serving()
        assert not server.is_serving()

    run(loop, main())


# ----------------------------------------------------------- abstract ----

def test_unix_abstract_server(loop):
    name = _abstract_name()

    async def main():
        server = await loop.create_unix_server(lambda: Recorder(echo=True), name)
        try:
            assert server.sockets[0].getsockname() == name.encode()
            with socket.socket(socket.AF_UNIX) as cli:
                cli.setblocking(False)
                await loop.sock_connect(cli, name)
                await loop.sock_sendall(cli, b"abstract")
                got = b""
                while len(got) < 8:
                    got += await loop.sock_recv(cli, 10)
                assert got == b"abstract"
        finally:
            await _closed(server)
        # Closed: the name is free again.
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(name)

    run(loop, main())


@pytest.mark.xfail_uvloop("create_unix_connection() to an abstract name fails with EINVAL")
def test_unix_abstract_connection(loop):
    name = _abstract_name()

    async def main():
        with socket.socket(socket.AF_UNIX) as lsock:
            lsock.bind(name)
            lsock.listen(1)
            lsock.setblocking(False)
            tr, proto = await loop.create_unix_connection(Recorder, name)
            try:
                assert tr.get_extra_info("peername") == name.encode()
                conn, _ = await loop.sock_accept(lsock)
                with conn:
                    await loop.sock_sendall(conn, b"abstract")
                    assert await proto.received(8) == b"abstract"
            finally:
                await close_transport(tr, proto)

    run(loop, main())


def test_unix_abstract_name_in_use(loop):
    name = _abstract_name()
    with socket.socket(socket.AF_UNIX) as taken:
        taken.bind(name)
        with pytest.raises(OSError) as info:
            run(loop, loop.create_unix_server(Recorder, name))
        assert info.value.errno == errno.EADDRINUSE


# -------------------------------------------------------------- sock= ----

def test_unix_server_and_connection_sock(loop, path):
    async def main():
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(path)
        server = await loop.create_unix_server(lambda: Recorder(echo=True), sock=lsock)
        try:
            assert server.sockets[0].fileno() == lsock.fileno()
            csock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            csock.connect(path)
            tr, proto = await loop.create_unix_connection(Recorder, sock=csock)
            try:
                assert csock.getblocking() is False
                tr.write(b"via sock=")
                assert await proto.received(9) == b"via sock="
            finally:
                await close_transport(tr, proto)
            assert csock.fileno() == -1
        finally:
            await _closed(server)
        assert lsock.fileno() == -1

    run(loop, main())


def test_unix_bad_arguments(loop, path):
    async def main():
        with socket.socket(socket.AF_UNIX) as usock, socket.socket() as tcp, \
                socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as udg:
            with pytest.raises(ValueError, match="path and sock can not be specified"):
                await loop.create_unix_connection(Recorder, path, sock=usock)
            with pytest.raises(ValueError, match="no path and sock were specified"):
                await loop.create_unix_connection(Recorder)
            with pytest.raises(ValueError, match="A UNIX Domain Stream Socket was expected"):
                await loop.create_unix_connection(Recorder, sock=tcp)
            with pytest.raises(ValueError, match="A UNIX Domain Stream Socket was expected"):
                await loop.create_unix_connection(Recorder, sock=udg)
            with pytest.raises(ValueError, match="path and sock can not be specified"):
                await loop.create_unix_server(Recorder, path, sock=usock)
            with pytest.raises(ValueError, match="path was not specified, and no sock specified"):
                await loop.create_unix_server(Recorder)
            with pytest.raises(ValueError, match="A UNIX Domain Stream Socket was expected"):
                await loop.create_unix_server(Recorder, sock=tcp)
            with pytest.raises(ValueError, match="server_hostname is only meaningful with ssl"):
                await loop.create_unix_connection(Recorder, path, server_hostname="x")
            assert not os.path.exists(path)

    run(loop, main())


# ----------------------------------------------- connect_accepted_socket ----

def test_connect_accepted_socket_unix_pair(loop):
    async def main():
        with socketpair() as (a, b):
            tr, proto = await loop.connect_accepted_socket(Recorder, a)
            try:
                assert proto.events == ["connection_made"]
                assert tr.get_extra_info("socket").family == socket.AF_UNIX
                tr.write(b"to b")
                got = b""
                while len(got) < 4:
                    got += await loop.sock_recv(b, 10)
                assert got == b"to b"
                await loop.sock_sendall(b, b"to a")
                assert await proto.received(4) == b"to a"
                b.shutdown(socket.SHUT_WR)
                assert await asyncio.wait_for(proto.lost, TIMEOUT) is None
                assert proto.events[-2:] == ["eof_received", "connection_lost"]
            finally:
                await close_transport(tr, proto)

    run(loop, main())


def test_connect_accepted_socket_unix_server_side(loop, path):
    async def main():
        with socket.socket(socket.AF_UNIX) as lsock:
            lsock.bind(path)
            lsock.listen(1)
            lsock.setblocking(False)
            tr, proto = await loop.create_unix_connection(Recorder, path)
            try:
                conn, _ = await loop.sock_accept(lsock)
                str_, sproto = await loop.connect_accepted_socket(
                    lambda: Recorder(echo=True), conn)
                tr.write(b"echo me")
                assert await proto.received(7) == b"echo me"
                await close_transport(str_, sproto)
            finally:
                await close_transport(tr, proto)

    run(loop, main())
