"""APIs of later milestones fail clearly: NotImplementedError naming the
method and pointing at asyncio's own loop, never a silent fallback."""

import pytest

from tests.support import run

pytestmark = pytest.mark.ringloop_only

PENDING = [
    ("create_connection", (None, "127.0.0.1", 1)),
    ("create_server", (None, "127.0.0.1", 0)),
    ("create_unix_connection", (None, "/nonexistent")),
    ("create_unix_server", (None, "/nonexistent")),
    ("create_datagram_endpoint", (None,)),
    ("connect_accepted_socket", (None, None)),
    ("sendfile", (None, None)),
    ("start_tls", (None, None, None)),
    ("connect_read_pipe", (None, None)),
    ("connect_write_pipe", (None, None)),
    ("subprocess_exec", (None, "true")),
    ("subprocess_shell", (None, "true")),
]


@pytest.mark.parametrize("name,args", PENDING, ids=[p[0] for p in PENDING])
def test_pending_api_raises_clear_error(loop, name, args):
    with pytest.raises(NotImplementedError) as info:
        run(loop, getattr(loop, name)(*args))
    text = str(info.value)
    assert f"loop.{name}()" in text
    assert "asyncio.new_event_loop()" in text
