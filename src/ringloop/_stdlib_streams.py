"""Which asyncio streams code the stream transports may run in C.

A read on a transport whose protocol is asyncio's own
``StreamReaderProtocol`` (``asyncio.start_server``, ``open_connection`` and
their Unix forms make one per connection) ends, in asyncio, in four small
Python functions of ``asyncio/streams.py``::

    StreamReaderProtocol.data_received(data)
        reader = self._stream_reader            # a property: the weakref's referent
        if reader is not None:
            reader.feed_data(data)              # assert not _eof; _buffer.extend(data);
                                                # _wakeup_waiter(); pause past 2 * _limit

ringloop's stream transports run the same steps in C (transports/stream.pyx,
``_feed_stream_reader``), in the same order and through the same attributes,
appending the bytes read to the reader's ``_buffer`` without making a
``bytes`` object first.  That is about a tenth of the user-space work of a
streams echo request (docs/performance.md).

It may do so only while those four functions are exactly the code it
mirrors.  This module checks that once, at import: the four code objects
must match a fingerprint recorded here for the running Python version
(3.11, 3.12 and 3.13, each with and without ``-O``, which removes
``feed_data``'s assert, and ``-OO``).  A Python whose streams.py differs
gets ``None`` from ``stdlib_stream_functions()``, and every read then calls
``data_received()`` as on any protocol: the C steps are never a guess.
Per read, the transport also checks that the lookups still resolve to these
functions (nothing patched on the class or the instance), that the types
are exactly asyncio's, and that no trace or profile function is set and
the loop is not in debug mode; otherwise it calls ``data_received()``.

To record a new version's fingerprint, print it (and again with ``-O``
and ``-OO``): ``python -c "import ringloop._stdlib_streams as s; s.report()"``.
"""

from __future__ import annotations

import sys
import zlib
from asyncio import streams
from types import CodeType, FunctionType
from typing import NamedTuple

# (major, minor, sys.flags.optimize) -> fingerprint of the four code objects.
_KNOWN: dict[tuple[int, int, int], int] = {
    (3, 11, 0): 0x6A241A14,
    (3, 11, 1): 0x022770EF,
    (3, 11, 2): 0x3B6B3098,
    (3, 12, 0): 0x4304E2C4,
    (3, 12, 1): 0x464A26DA,
    (3, 12, 2): 0xA40FCF56,
    (3, 13, 0): 0xB41C1189,
    (3, 13, 1): 0x09A5388A,
    (3, 13, 2): 0x52B4A0CE,
}


class StdlibStreamFunctions(NamedTuple):
    protocol_type: type            # asyncio.StreamReaderProtocol
    reader_type: type              # asyncio.StreamReader
    data_received: FunctionType    # StreamReaderProtocol.data_received
    stream_reader: property        # StreamReaderProtocol._stream_reader
    feed_data: FunctionType        # StreamReader.feed_data
    wakeup_waiter: FunctionType    # StreamReader._wakeup_waiter
    asserts: bool                  # feed_data's assert is compiled in (no -O)


def _functions() -> tuple[FunctionType, property, FunctionType, FunctionType] | None:
    srp = streams.StreamReaderProtocol.__dict__
    sr = streams.StreamReader.__dict__
    found = (srp.get("data_received"), srp.get("_stream_reader"),
             sr.get("feed_data"), sr.get("_wakeup_waiter"))
    data_received, stream_reader, feed_data, wakeup_waiter = found
    if not (type(data_received) is FunctionType and type(stream_reader) is property
            and type(stream_reader.fget) is FunctionType
            and type(feed_data) is FunctionType and type(wakeup_waiter) is FunctionType):
        return None
    return data_received, stream_reader, feed_data, wakeup_waiter


def fingerprint(found: tuple[FunctionType, property, FunctionType, FunctionType] | None = None,
                ) -> int | None:
    """The fingerprint of the running Python's four functions (None: not found as such)."""
    if found is None:
        found = _functions()
    if found is None:
        return None
    data_received, stream_reader, feed_data, wakeup_waiter = found
    codes: list[CodeType] = [data_received.__code__, stream_reader.fget.__code__,
                             feed_data.__code__, wakeup_waiter.__code__]
    key = repr([(c.co_code, c.co_consts, c.co_names, c.co_varnames, c.co_argcount,
                 c.co_flags) for c in codes])
    return zlib.crc32(key.encode())


def stdlib_stream_functions() -> StdlibStreamFunctions | None:
    """asyncio's stream functions, when they are the code the C steps mirror; else None."""
    found = _functions()
    want = _KNOWN.get((sys.version_info[0], sys.version_info[1], min(sys.flags.optimize, 2)))
    if found is None or want is None or fingerprint(found) != want:
        return None
    data_received, stream_reader, feed_data, wakeup_waiter = found
    return StdlibStreamFunctions(streams.StreamReaderProtocol, streams.StreamReader,
                                 data_received, stream_reader, feed_data, wakeup_waiter,
                                 sys.flags.optimize == 0)


def report() -> None:
    """Print the running Python's key and fingerprint, and what is recorded for it."""
    fp = fingerprint()
    key = (sys.version_info[0], sys.version_info[1], min(sys.flags.optimize, 2))
    print(f"{key}: {'not found' if fp is None else f'0x{fp:08X}'}"
          f" (recorded: {'none' if key not in _KNOWN else f'0x{_KNOWN[key]:08X}'})")
