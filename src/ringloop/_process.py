"""Subprocesses and pipes on both loop kinds, with pidfd child exit detection.

The cold half is asyncio's own code from the running Python (referenced,
never copied): ``subprocess_exec``/``subprocess_shell`` (argument checks and
their messages), ``connect_read_pipe``/``connect_write_pipe``, and the
subprocess transport (``asyncio.unix_events._UnixSubprocessTransport``, which
starts the child with ``subprocess.Popen`` and connects its pipes through our
pipe transports).  Ours: the pipe transports (``ringloop.transports.stream``)
and how a child's exit is noticed.

Child exit, without a child watcher to configure:

* pidfd (Linux 5.3+): ``os.pidfd_open(pid)`` right after the child starts;
  the loop watches it for readability (epoll, a ``selectors`` selector, or
  io_uring POLL_ADD), which the kernel signals when the child exits; then
  ``waitpid(pid, WNOHANG)`` reaps exactly that child.  One fd per running
  child, no thread, no SIGCHLD handler, so it works from a loop in any thread
  and never reaps children that are not ours.
* Fallback, where there is no pidfd (other POSIX systems, kernels before
  5.3, seccomp refusing pidfd_open) or in portable mode
  (``RINGLOOP_PORTABLE=1``): a short-lived thread per child blocks in
  ``waitpid(pid, 0)`` and hands the status to the loop with
  ``call_soon_threadsafe``, as asyncio's ThreadedChildWatcher does.

A child still running when its loop closes is left running (as asyncio
leaves it) but never left a zombie: a daemon thread reaps it when it exits.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
from asyncio import unix_events as _ue
from asyncio.log import logger
from typing import Any

from ringloop._borrowed import FromAsyncio
from ringloop.transports.stream import make_pipe_transport

__all__ = ["ProcessMixin", "pidfd_supported"]

_SubprocessTransport = _ue._UnixSubprocessTransport

_pidfd_status: str | None = None    # not probed yet; "": works; else why not


def _probe_pidfd() -> str | None:
    if not hasattr(os, "pidfd_open"):
        return "os.pidfd_open() does not exist on this platform"
    try:
        fd = os.pidfd_open(os.getpid())
    except OSError as exc:
        return f"pidfd_open() failed: {exc}"
    os.close(fd)
    return None


def pidfd_supported() -> tuple[bool, str]:
    """(True, "") when child exits can be watched with pidfds here, else
    (False, why not)."""
    global _pidfd_status
    if _pidfd_status is None:
        _pidfd_status = _probe_pidfd() or ""
    return (not _pidfd_status, _pidfd_status)


def _reap_later(pid: int) -> None:
    """Reap a child whose loop closed before it exited (no zombie)."""

    def wait() -> None:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    threading.Thread(target=wait, name=f"ringloop-reaper-{pid}", daemon=True).start()


class _ChildWatch:
    """One running child of a loop: its pidfd (or waiter thread) and transport."""

    __slots__ = ("pid", "pidfd", "transport", "thread")

    def __init__(self, pid: int, transport: Any) -> None:
        self.pid = pid
        self.transport = transport
        self.pidfd = -1
        self.thread: threading.Thread | None = None


class ProcessMixin:
    """Subprocess and pipe methods shared by SelectorEventLoop and ProactorEventLoop."""

    # -- asyncio's own logic (cold) ----------------------------------------
    subprocess_exec = FromAsyncio("subprocess_exec")
    subprocess_shell = FromAsyncio("subprocess_shell")
    connect_read_pipe = FromAsyncio("connect_read_pipe")
    connect_write_pipe = FromAsyncio("connect_write_pipe")
    _log_subprocess = FromAsyncio("_log_subprocess")

    # -- pipes ---------------------------------------------------------------

    def _make_read_pipe_transport(self, pipe, protocol, waiter=None, extra=None):
        return make_pipe_transport(self, pipe, protocol, waiter, extra, False)

    def _make_write_pipe_transport(self, pipe, protocol, waiter=None, extra=None):
        return make_pipe_transport(self, pipe, protocol, waiter, extra, True)

    # -- subprocesses ----------------------------------------------------------

    async def _make_subprocess_transport(self, protocol, args, shell,
                                         stdin, stdout, stderr, bufsize,
                                         extra=None, **kwargs):
        waiter = self.create_future()
        transp = _SubprocessTransport(self, protocol, args, shell,
                                      stdin, stdout, stderr, bufsize,
                                      waiter=waiter, extra=extra, **kwargs)
        try:
            self._watch_child(transp.get_pid(), transp)
        except BaseException:
            transp.close()
            raise
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transp.close()
            await transp._wait()
            raise
        return transp

    def _child_watches(self) -> dict[int, _ChildWatch]:
        try:
            return self.__dict__["_rl_children"]
        except KeyError:
            return self.__dict__.setdefault("_rl_children", {})

    def _watch_child(self, pid: int, transp: Any) -> None:
        watch = _ChildWatch(pid, transp)
        pidfd = -1
        if not self._portable_mode() and pidfd_supported()[0]:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError as exc:
                if exc.errno != errno.ESRCH:
                    raise
                # (ESRCH: already reaped, e.g. by a stray waitpid(-1))
        self._child_watches()[pid] = watch
        if pidfd >= 0:
            watch.pidfd = pidfd
            try:
                self.add_reader(pidfd, self._pidfd_ready, watch)
            except BaseException:
                del self._child_watches()[pid]
                os.close(pidfd)
                raise
        else:
            thread = threading.Thread(target=self._wait_in_thread, args=(watch,),
                                      name=f"ringloop-waitpid-{pid}", daemon=True)
            watch.thread = thread
            thread.start()

    def _pidfd_ready(self, watch: _ChildWatch) -> None:
        try:
            wpid, status = os.waitpid(watch.pid, os.WNOHANG)
        except ChildProcessError:
            returncode = None          # reaped elsewhere (Popen.poll()...)
        else:
            if wpid == 0:
                return                 # not exited after all: keep watching
            returncode = os.waitstatus_to_exitcode(status)
        self.remove_reader(watch.pidfd)
        os.close(watch.pidfd)
        watch.pidfd = -1
        self._child_exited(watch, returncode)

    def _wait_in_thread(self, watch: _ChildWatch) -> None:
        try:
            _, status = os.waitpid(watch.pid, 0)
        except ChildProcessError:
            returncode = None
        else:
            returncode = os.waitstatus_to_exitcode(status)
        try:
            self.call_soon_threadsafe(self._child_exited, watch, returncode)
        except RuntimeError:
            pass                       # the loop closed meanwhile: reaped anyway

    def _child_exited(self, watch: _ChildWatch, returncode: int | None) -> None:
        if self._child_watches().pop(watch.pid, None) is not watch:
            return
        transp = watch.transport
        watch.transport = None
        if transp._returncode is not None:
            return
        if returncode is None:
            returncode = transp._proc.returncode
        if returncode is None:
            # Someone else reaped it (a waitpid(-1) of the program's own)
            # and nothing kept its status: asyncio's watchers' words.
            if watch.thread is None:
                logger.warning("child process pid %d exit status already read: "
                               " will report returncode 255", watch.pid)
            else:
                logger.warning("Unknown child process pid %d, will report "
                               "returncode 255", watch.pid)
            returncode = 255
        elif self.get_debug() and (sys.version_info < (3, 12) or watch.thread is not None):
            # As asyncio's watchers: 3.11's threaded one logs every exit,
            # 3.12's pidfd one none (its threaded fallback still does).
            logger.debug('process %s exited with returncode %s', watch.pid, returncode)
        transp._process_exited(returncode)

    def _forget_children(self) -> None:
        # The loop is closing: release the pidfds; children still running
        # are reaped by a daemon thread once they exit (no zombie).
        watches = self.__dict__.pop("_rl_children", None)
        if not watches:
            return
        for watch in watches.values():
            watch.transport = None
            if watch.pidfd >= 0:
                os.close(watch.pidfd)
                watch.pidfd = -1
                try:
                    wpid, _ = os.waitpid(watch.pid, os.WNOHANG)
                except ChildProcessError:
                    continue
                if wpid == 0:
                    _reap_later(watch.pid)
            # (a waiter thread reaps its child by itself)

    def close(self) -> None:
        """Close the loop (see CoreLoop.close); running children's watches
        are released and the children reaped once they exit."""
        super().close()
        self._forget_children()

