"""Reviewed skip list for running CPython's test_asyncio on ringloop.

Maps a test id (``module.Class.test``, classes as bound by
``tests/cpython/binding.py``) to the reason it cannot pass on ringloop today.
A reason is one of:

* ``waits for <work> (issue N)``: ringloop does not implement that part yet
  (transports, servers, TLS, subprocess, signals, pipes, io_uring). These
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
TRANSPORTS = "waits for transports (issue 4)"
TRANSPORTS_THEN_TLS = "waits for transports (issue 4), then TLS"
TLS = "waits for TLS"
SUBPROCESS = "waits for subprocess"
PIPES = "waits for pipes"
MOCKS_UNIX_SIGNAL = "stdlib-private: mocks asyncio.unix_events.signal"

#: test id -> reason (see the module docstring for the two kinds of reason).
SKIPS: dict[str, str] = {
    # test_sock_lowlevel
    "test_sock_lowlevel.EventLoopTests.test_create_connection_sock": TRANSPORTS,
    # test_events
    "test_events.EventLoopTests.test_bidirectional_pty": PIPES,
    "test_events.EventLoopTests.test_connect_accepted_socket": TRANSPORTS,
    "test_events.EventLoopTests.test_connect_accepted_socket_ssl_timeout_for_plain_socket":
        TRANSPORTS_THEN_TLS,
    "test_events.EventLoopTests.test_create_connection": TRANSPORTS,
    "test_events.EventLoopTests.test_create_connection_local_addr": TRANSPORTS,
    "test_events.EventLoopTests.test_create_connection_local_addr_in_use": TRANSPORTS,
    "test_events.EventLoopTests.test_create_connection_local_addr_nomatch_family": TRANSPORTS,
    "test_events.EventLoopTests.test_create_connection_local_addr_skip_different_family":
        TRANSPORTS,
    "test_events.EventLoopTests.test_create_datagram_endpoint": TRANSPORTS,
    "test_events.EventLoopTests.test_create_datagram_endpoint_ipv6": TRANSPORTS,
    "test_events.EventLoopTests.test_create_datagram_endpoint_sock": TRANSPORTS,
    "test_events.EventLoopTests.test_create_server": TRANSPORTS,
    "test_events.EventLoopTests.test_create_server_addr_in_use": TRANSPORTS,
    "test_events.EventLoopTests.test_create_server_dual_stack": TRANSPORTS,
    "test_events.EventLoopTests.test_create_server_multiple_hosts_ipv4": TRANSPORTS,
    "test_events.EventLoopTests.test_create_server_multiple_hosts_ipv6": TRANSPORTS,
    "test_events.EventLoopTests.test_create_server_reuse_port": TRANSPORTS,
    "test_events.EventLoopTests.test_create_server_sock": TRANSPORTS,
    "test_events.EventLoopTests.test_create_server_ssl": TRANSPORTS_THEN_TLS,
    "test_events.EventLoopTests.test_create_server_ssl_match_failed": TRANSPORTS_THEN_TLS,
    "test_events.EventLoopTests.test_create_server_ssl_verified": TRANSPORTS_THEN_TLS,
    "test_events.EventLoopTests.test_create_server_ssl_verify_failed": TRANSPORTS_THEN_TLS,
    "test_events.EventLoopTests.test_create_server_trsock": TRANSPORTS,
    "test_events.EventLoopTests.test_create_ssl_connection": TRANSPORTS_THEN_TLS,
    "test_events.EventLoopTests.test_create_ssl_unix_connection": TRANSPORTS_THEN_TLS,
    "test_events.EventLoopTests.test_create_unix_connection": TRANSPORTS,
    "test_events.EventLoopTests.test_create_unix_server": TRANSPORTS,
    "test_events.EventLoopTests.test_create_unix_server_path_socket_error": TRANSPORTS,
    "test_events.EventLoopTests.test_create_unix_server_ssl": TRANSPORTS_THEN_TLS,
    "test_events.EventLoopTests.test_create_unix_server_ssl_verified": TRANSPORTS_THEN_TLS,
    "test_events.EventLoopTests.test_create_unix_server_ssl_verify_failed": TRANSPORTS_THEN_TLS,
    "test_events.EventLoopTests.test_datagram_send_to_non_listening_address": TRANSPORTS,
    "test_events.EventLoopTests.test_prompt_cancellation": "stdlib-private: loop._stop_serving",
    "test_events.EventLoopTests.test_read_pipe": PIPES,
    "test_events.EventLoopTests.test_read_pty_output": PIPES,
    "test_events.EventLoopTests.test_server_close": TRANSPORTS,
    "test_events.EventLoopTests.test_ssl_connect_accepted_socket": TRANSPORTS_THEN_TLS,
    "test_events.EventLoopTests.test_subprocess_close_after_finish": SUBPROCESS,
    "test_events.EventLoopTests.test_subprocess_close_client_stream": SUBPROCESS,
    "test_events.EventLoopTests.test_subprocess_exec": SUBPROCESS,
    "test_events.EventLoopTests.test_subprocess_exec_invalid_args": SUBPROCESS,
    "test_events.EventLoopTests.test_subprocess_exitcode": SUBPROCESS,
    "test_events.EventLoopTests.test_subprocess_interactive": SUBPROCESS,
    "test_events.EventLoopTests.test_subprocess_kill": SUBPROCESS,
    "test_events.EventLoopTests.test_subprocess_send_signal": SUBPROCESS,
    "test_events.EventLoopTests.test_subprocess_shell": SUBPROCESS,
    "test_events.EventLoopTests.test_subprocess_shell_invalid_args": SUBPROCESS,
    "test_events.EventLoopTests.test_subprocess_stderr": SUBPROCESS,
    "test_events.EventLoopTests.test_subprocess_stderr_redirect_to_stdout": SUBPROCESS,
    "test_events.EventLoopTests.test_subprocess_terminate": SUBPROCESS,
    "test_events.EventLoopTests.test_subprocess_wait_no_same_group": SUBPROCESS,
    "test_events.EventLoopTests.test_timeout_rounding":
        "stdlib-private: loop._run_once (wrapped to count loop iterations)",
    "test_events.EventLoopTests.test_unclosed_pipe_transport": PIPES,
    "test_events.EventLoopTests.test_write_pipe": PIPES,
    "test_events.EventLoopTests.test_write_pipe_disconnect_on_close": PIPES,
    "test_events.EventLoopTests.test_write_pty": PIPES,
    "test_events.TestServer.test_get_loop": TRANSPORTS,
    # test_streams
    "test_streams.StreamTests.test_async_writer_api": TRANSPORTS,
    "test_streams.StreamTests.test_async_writer_api_exception_after_close": TRANSPORTS,
    "test_streams.StreamTests.test_drain_raises": TRANSPORTS,
    "test_streams.StreamTests.test_eof_feed_when_closing_writer": TRANSPORTS,
    "test_streams.StreamTests.test_open_connection": TRANSPORTS,
    "test_streams.StreamTests.test_open_connection_error": TRANSPORTS,
    "test_streams.StreamTests.test_open_connection_no_loop_ssl": TRANSPORTS_THEN_TLS,
    "test_streams.StreamTests.test_open_unix_connection": TRANSPORTS,
    "test_streams.StreamTests.test_open_unix_connection_error": TRANSPORTS,
    "test_streams.StreamTests.test_open_unix_connection_no_loop_ssl": TRANSPORTS_THEN_TLS,
    "test_streams.StreamTests.test_read_all_from_pipe_reader": PIPES,
    "test_streams.StreamTests.test_start_server": TRANSPORTS,
    "test_streams.StreamTests.test_start_tls": TRANSPORTS_THEN_TLS,
    "test_streams.StreamTests.test_start_unix_server": TRANSPORTS,
    "test_streams.StreamTests.test_unclosed_resource_warnings": TRANSPORTS,
    "test_streams.StreamTests.test_unclosed_server_resource_warnings": TRANSPORTS,
    "test_streams.StreamTests.test_unhandled_cancel": TRANSPORTS,
    "test_streams.StreamTests.test_unhandled_exception": TRANSPORTS,
    "test_streams.StreamTests.test_unhandled_exceptions": TRANSPORTS,
    "test_streams.StreamTests.test_wait_closed_on_close": TRANSPORTS,
    "test_streams.StreamTests.test_wait_closed_on_close_with_unread_data": TRANSPORTS,
    # test_server
    "test_server.StartServerTests.test_start_server_1": TRANSPORTS,
    "test_server.StartServerTests.test_start_unix_server_1": TRANSPORTS,
    "test_server.TestServer2.test_abort_clients": TRANSPORTS,
    "test_server.TestServer2.test_close_clients": TRANSPORTS,
    "test_server.TestServer2.test_wait_closed_basic": TRANSPORTS,
    "test_server.TestServer2.test_wait_closed_race": TRANSPORTS,
    "test_server.UnixServerCleanupTests.test_unix_server_addr_cleanup": TRANSPORTS,
    "test_server.UnixServerCleanupTests.test_unix_server_cleanup_gone": TRANSPORTS,
    "test_server.UnixServerCleanupTests.test_unix_server_cleanup_prevented": TRANSPORTS,
    "test_server.UnixServerCleanupTests.test_unix_server_cleanup_replaced": TRANSPORTS,
    "test_server.UnixServerCleanupTests.test_unix_server_sock_cleanup": TRANSPORTS,
    # test_sendfile
    "test_sendfile.EventLoopTests.test_sendfile": TRANSPORTS,
    "test_sendfile.EventLoopTests.test_sendfile_close_peer_after_receiving": TRANSPORTS,
    "test_sendfile.EventLoopTests.test_sendfile_close_peer_in_the_middle_of_receiving": TRANSPORTS,
    "test_sendfile.EventLoopTests.test_sendfile_fallback_close_peer_in_the_middle_of_receiving":
        TRANSPORTS,
    "test_sendfile.EventLoopTests.test_sendfile_for_closing_transp": TRANSPORTS,
    "test_sendfile.EventLoopTests.test_sendfile_force_fallback": TRANSPORTS,
    "test_sendfile.EventLoopTests.test_sendfile_force_unsupported_native": TRANSPORTS,
    "test_sendfile.EventLoopTests.test_sendfile_no_fallback_for_fallback_transport": TRANSPORTS,
    "test_sendfile.EventLoopTests.test_sendfile_not_supported": TRANSPORTS,
    "test_sendfile.EventLoopTests.test_sendfile_partial": TRANSPORTS,
    "test_sendfile.EventLoopTests.test_sendfile_pre_and_post_data": TRANSPORTS,
    "test_sendfile.EventLoopTests.test_sendfile_prevents_bare_write": TRANSPORTS,
    "test_sendfile.EventLoopTests.test_sendfile_ssl": TRANSPORTS_THEN_TLS,
    "test_sendfile.EventLoopTests.test_sendfile_ssl_close_peer_after_receiving":
        TRANSPORTS_THEN_TLS,
    "test_sendfile.EventLoopTests.test_sendfile_ssl_partial": TRANSPORTS_THEN_TLS,
    "test_sendfile.EventLoopTests.test_sendfile_ssl_pre_and_post_data": TRANSPORTS_THEN_TLS,
    "test_sendfile.EventLoopTests.test_sock_sendfile_mix_with_regular_send": TRANSPORTS,
    "test_sendfile.EventLoopTests.test_sock_sendfile_success": TRANSPORTS,
    "test_sendfile.EventLoopTests.test_sock_sendfile_with_offset_and_count": TRANSPORTS,
    "test_sendfile.EventLoopTests.test_sock_sendfile_zero_size": TRANSPORTS,
    # test_buffered_proto
    "test_buffered_proto.BufferedProtocolTests.test_buffered_proto_create_connection": TRANSPORTS,
    # test_base_events
    "test_base_events.BaseEventLoopWithSelectorTests.test_accept_connection_exception":
        "stdlib-private: loop._accept_connection",
    "test_base_events.BaseEventLoopWithSelectorTests.test_accept_connection_retry":
        "stdlib-private: loop._accept_connection",
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_bluetooth":
        "stdlib-private: mocks asyncio.base_events.socket (the stdlib loop's module global)",
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_connect_err":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_host_port_sock":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_ip_addr": TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_ipv6_scope":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_multiple": TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_multiple_errors":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_multiple_errors_local_addr":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_no_getaddrinfo":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_no_host_port_sock":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_no_inet_pton":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_no_local_addr":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_no_ssl_server_hostname_errors":
        TRANSPORTS_THEN_TLS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_service_name":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_ssl_server_hostname_default":
        TRANSPORTS_THEN_TLS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_ssl_server_hostname_errors":
        TRANSPORTS_THEN_TLS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_ssl_timeout_for_plain_socket":
        TRANSPORTS_THEN_TLS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_timeout": TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_connection_wrong_sock":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_addr_error":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_allow_broadcast":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_cant_bind":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_connect_err":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_existing_sock_unix":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_ip_addr":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_no_addrinfo":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_no_matching_family":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_noaddr_nofamily":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_nosoreuseport":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_setblk_err":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_sock":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_sock_sockopts":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_sock_unix":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_socket_err":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_sockopts":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_datagram_endpoint_wrong_sock":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_server_cant_bind": TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_server_empty_host": TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_server_host_port_sock":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_server_ipv6": TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_server_no_getaddrinfo":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_server_no_host_port_sock":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_server_nosoreuseport": TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_server_soreuseport_only_defined":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_server_ssl_timeout_for_plain_socket":
        TRANSPORTS_THEN_TLS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_server_stream_bittype":
        TRANSPORTS,
    "test_base_events.BaseEventLoopWithSelectorTests.test_create_server_wrong_sock": TRANSPORTS,
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
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_cancel1":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_cancel2":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_exception":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_iobuffer":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_not_a_file":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_not_available":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_not_regular_file":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_os_error_first_call":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_os_error_next_call":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_connection_nopath_nosock":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_connection_nossl_serverhost":
        TRANSPORTS_THEN_TLS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_connection_path_inetsock":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_connection_path_sock":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_connection_pathlib":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_connection_pathlike":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_connection_ssl_noserverhost":
        TRANSPORTS_THEN_TLS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_connection_ssl_timeout_with_plain_sock":
        TRANSPORTS_THEN_TLS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_server_bind_error":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_server_existing_path_nonsock":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_server_existing_path_sock":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_server_nopath_nosock":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_server_path_dgram":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_server_path_inetsock":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_server_path_stream_bittype":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_server_pathlib":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_server_pathlike":
        TRANSPORTS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_server_ssl_bool":
        TRANSPORTS_THEN_TLS,
    "test_unix_events.SelectorEventLoopUnixSocketTests.test_create_unix_server_ssl_timeout_with_plain_sock":
        TRANSPORTS_THEN_TLS,
    "test_unix_events.TestFork.test_fork_asyncio_subprocess": SUBPROCESS,
    "test_unix_events.TestFunctional.test_add_reader_or_writer_transport_fd": TRANSPORTS,
    # test_subprocess
    "test_subprocess.GenericWatcherTests.test_create_subprocess_fails_with_inactive_watcher":
        "waits for subprocess (and a decision on honouring asyncio's deprecated child watchers)",
    "test_subprocess.GenericWatcherTests.test_create_subprocess_with_pidfd": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_cancel_make_subprocess_transport_exec": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_cancel_post_init": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_cancel_process_wait": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_close_dont_kill_finished": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_close_kill_running": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_communicate": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_communicate_ignore_broken_pipe": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_communicate_none_input": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_create_subprocess_env_exec": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_create_subprocess_env_shell": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_create_subprocess_exec_text_mode_fails": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_create_subprocess_exec_with_path": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_create_subprocess_shell_text_mode_fails": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_devnull_error": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_devnull_input": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_devnull_output": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_devstdin_input": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_empty_input": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_kill": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_kill_issue43884": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_pause_reading": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_popen_error": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_popen_error_with_stdin_pipe": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_read_stdout_after_process_exit": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_send_signal": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_shell": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_start_new_session": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_stdin_broken_pipe": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_stdin_not_inheritable": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_stdin_stdout": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_subprocess_communicate_stdout": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_subprocess_concurrent_wait": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_subprocess_protocol_events": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_subprocess_send_signal_race": SUBPROCESS,
    "test_subprocess.SubprocessTests.test_terminate": SUBPROCESS,
    # test_sslproto
    "test_sslproto.StartTLSTests.test_create_connection_memory_leak": TRANSPORTS,
    "test_sslproto.StartTLSTests.test_create_connection_ssl_failed_certificate":
        TRANSPORTS_THEN_TLS,
    "test_sslproto.StartTLSTests.test_create_connection_ssl_slow_handshake": TRANSPORTS_THEN_TLS,
    "test_sslproto.StartTLSTests.test_handshake_timeout": TRANSPORTS,
    "test_sslproto.StartTLSTests.test_start_tls_client_buf_proto_1": TRANSPORTS_THEN_TLS,
    "test_sslproto.StartTLSTests.test_start_tls_client_corrupted_ssl": TRANSPORTS_THEN_TLS,
    "test_sslproto.StartTLSTests.test_start_tls_client_reg_proto_1": TRANSPORTS_THEN_TLS,
    "test_sslproto.StartTLSTests.test_start_tls_server_1": TRANSPORTS_THEN_TLS,
    "test_sslproto.StartTLSTests.test_start_tls_slow_client_cancel": TRANSPORTS_THEN_TLS,
    "test_sslproto.StartTLSTests.test_start_tls_wrong_args": TLS,
}


def check_reason(reason: str) -> bool:
    """True if ``reason`` is of one of the two accepted kinds."""
    return reason.startswith(WAITS_FOR) or reason.startswith(STDLIB_PRIVATE)


def for_module(module: str) -> dict[str, str]:
    """The entries whose test id belongs to ``module`` (e.g. "test_tasks")."""
    prefix = module + "."
    return {tid: why for tid, why in SKIPS.items() if tid.startswith(prefix)}
