"""Reviewed skip list for running CPython's test_asyncio on ringloop.

Maps a test id (``module.Class.test``, classes as bound by
``tests/cpython/binding.py``) to the reason it cannot pass on ringloop today.
A reason is one of:

* ``waits for <work> (issue N)``: ringloop does not implement that part yet
  (TLS). These
  entries go away as the work lands; the conformance test warns when a
  listed test starts passing.
* ``stdlib-private: <name>``: the test reads, patches or mocks a private name
  of the stdlib's own loop (``loop._run_once``, ``loop._selector``,
  ``srv._sockets``...). ringloop does not imitate those internals without
  need, so such a test can never be a conformance check.

Every entry was added after reading the failure on ringloop and the test's
source. Anything else failing on ringloop is a ringloop bug: fix it, do not
list it. Ids absent from the running Python version are ignored.

The list applies to the loops whose preset sets ``apply_skips``
(``ringloop``, ``ringloop-poll``, ``ringloop-proactor``).
"""

from __future__ import annotations

__all__ = ["SKIPS", "WAITS_FOR", "STDLIB_PRIVATE", "check_reason", "for_module"]

WAITS_FOR = "waits for "
STDLIB_PRIVATE = "stdlib-private: "

# Reasons shared by many entries.
MOCKS_SOCKET = ("stdlib-private: mocks asyncio.base_events.socket (mock socket objects, "
                "getaddrinfo) and expects the readiness connect of asyncio's selector loop")
SENDFILE_IMPL = ("stdlib-private: calls loop._sock_sendfile_native_impl or patches "
                 "asyncio.unix_events.os")
TLS = "waits for TLS"
MOCKS_UNIX_SIGNAL = "stdlib-private: mocks asyncio.unix_events.signal"

#: test id -> reason (see the module docstring for the two kinds of reason).
SKIPS: dict[str, str] = {
    # test_sock_lowlevel
    # test_events
    "test_events.EventLoopTests.test_create_server_ssl": TLS,
    "test_events.EventLoopTests.test_create_server_ssl_match_failed": TLS,
    "test_events.EventLoopTests.test_create_server_ssl_verified": TLS,
    "test_events.EventLoopTests.test_create_server_ssl_verify_failed": TLS,
    "test_events.EventLoopTests.test_create_ssl_connection": TLS,
    "test_events.EventLoopTests.test_create_ssl_unix_connection": TLS,
    "test_events.EventLoopTests.test_create_unix_server_ssl": TLS,
    "test_events.EventLoopTests.test_create_unix_server_ssl_verified": TLS,
    "test_events.EventLoopTests.test_create_unix_server_ssl_verify_failed": TLS,
    "test_events.EventLoopTests.test_ssl_connect_accepted_socket": TLS,
    "test_events.EventLoopTests.test_timeout_rounding":
        "stdlib-private: loop._run_once (wrapped to count loop iterations)",
    # test_streams
    "test_streams.StreamTests.test_open_connection_no_loop_ssl": TLS,
    "test_streams.StreamTests.test_open_unix_connection_no_loop_ssl": TLS,
    "test_streams.StreamTests.test_start_tls": TLS,
    # test_server
    # test_sendfile
    "test_sendfile.EventLoopTests.test_sendfile_ssl": TLS,
    "test_sendfile.EventLoopTests.test_sendfile_ssl_close_peer_after_receiving":
        TLS,
    "test_sendfile.EventLoopTests.test_sendfile_ssl_partial": TLS,
    "test_sendfile.EventLoopTests.test_sendfile_ssl_pre_and_post_data": TLS,
    # test_buffered_proto
    # test_base_events
    "test_base_events.BaseEventLoopWithSelectorTests.test_accept_connection_exception":
        "stdlib-private: loop._accept_connection",
    "test_base_events.BaseEventLoopWithSelectorTests.test_accept_connection_retry":
        "stdlib-private: loop._accept_connection",
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_bluetooth":
        "stdlib-private: mocks asyncio.base_events.socket (the stdlib loop's module global)",
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_ssl_server_hostname_default":
        TLS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_ssl_server_hostname_errors":
        TLS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_no_addrinfo":
        MOCKS_SOCKET,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_server_soreuseport_only_defined":
        MOCKS_SOCKET,
    "test_base_events.BaseEventLoopWithSelectorTests.test_log_slow_callbacks":
        "stdlib-private: mocks asyncio.base_events.logger",
    # test_unix_events
    "test_unix_events.SelectorEventLoopSignalTests.test_add_signal_handler":
        "stdlib-private: mocks asyncio.unix_events.signal, reads loop._signal_handlers",
    "test_unix_events.SelectorEventLoopSignalTests.test_add_signal_handler_install_error":
        MOCKS_UNIX_SIGNAL,
    "test_unix_events.SelectorEventLoopSignalTests.test_add_signal_handler_install_error2":
        "stdlib-private: mocks asyncio.unix_events.signal and asyncio.base_events.logger",
    "test_unix_events.SelectorEventLoopSignalTests.test_add_signal_handler_install_error3":
        "stdlib-private: mocks asyncio.unix_events.signal and asyncio.base_events.logger",
    "test_unix_events.SelectorEventLoopSignalTests.test_add_signal_handler_setup_error":
        MOCKS_UNIX_SIGNAL,
    "test_unix_events.SelectorEventLoopSignalTests.test_close": MOCKS_UNIX_SIGNAL,
    "test_unix_events.SelectorEventLoopSignalTests.test_close_on_finalizing":
        "stdlib-private: mocks asyncio.unix_events.signal and asyncio.unix_events.sys",
    "test_unix_events.SelectorEventLoopSignalTests.test_remove_signal_handler": MOCKS_UNIX_SIGNAL,
    "test_unix_events.SelectorEventLoopSignalTests.test_remove_signal_handler_2":
        MOCKS_UNIX_SIGNAL,
    "test_unix_events.SelectorEventLoopSignalTests.test_remove_signal_handler_error":
        MOCKS_UNIX_SIGNAL,
    "test_unix_events.SelectorEventLoopSignalTests.test_remove_signal_handler_error2":
        MOCKS_UNIX_SIGNAL,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_blocking_error":
        SENDFILE_IMPL,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_cancel1":
        SENDFILE_IMPL,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_cancel2":
        SENDFILE_IMPL,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_exception":
        SENDFILE_IMPL,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_not_available":
        SENDFILE_IMPL,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_os_error_first_call":
        SENDFILE_IMPL,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_os_error_next_call":
        SENDFILE_IMPL,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_connection_ssl_noserverhost":
        TLS,
    # test_subprocess
    "test_subprocess.GenericWatcherTests.test_create_subprocess_fails_with_inactive_watcher":
        "stdlib-private: the selector loop's use of asyncio's child watchers (deprecated "
        "in 3.12, gone in 3.14); ringloop watches each child with a pidfd and never "
        "asks a watcher (docs/compatibility.md)",
    # test_sslproto
    "test_sslproto.StartTLSTests.test_create_connection_memory_leak": TLS,
    "test_sslproto.StartTLSTests.test_create_connection_ssl_failed_certificate":
        TLS,
    "test_sslproto.StartTLSTests.test_create_connection_ssl_slow_handshake": TLS,
    "test_sslproto.StartTLSTests.test_handshake_timeout": TLS,
    "test_sslproto.StartTLSTests.test_start_tls_client_buf_proto_1": TLS,
    "test_sslproto.StartTLSTests.test_start_tls_client_corrupted_ssl": TLS,
    "test_sslproto.StartTLSTests.test_start_tls_client_reg_proto_1": TLS,
    "test_sslproto.StartTLSTests.test_start_tls_server_1": TLS,
    "test_sslproto.StartTLSTests.test_start_tls_slow_client_cancel": TLS,
    "test_sslproto.StartTLSTests.test_start_tls_wrong_args": TLS,
}


def check_reason(reason: str) -> bool:
    """True if ``reason`` is of one of the two accepted kinds."""
    return reason.startswith(WAITS_FOR) or reason.startswith(STDLIB_PRIVATE)


def for_module(module: str) -> dict[str, str]:
    """The entries whose test id belongs to ``module`` (e.g. "test_tasks")."""
    prefix = module + "."
    return {tid: why for tid, why in SKIPS.items() if tid.startswith(prefix)}
