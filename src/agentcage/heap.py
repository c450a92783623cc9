"""Giving a sidecar's start-up garbage back to the system once it serves.

Starting `proxy run` builds and drops a lot: the config's validation, the policy's
compilation, mitmproxy's imports. glibc's allocator keeps the freed pages between
live objects for later use, and an idle sidecar never asks for them again: about
3 MiB of the proxy's anonymous memory, in every cage. `malloc_trim(0)` returns them
(measured on `proxy run` alone: 56.6 to 53.6 MiB anonymous PSS). A C library without
it (musl) keeps them; nothing else changes. It takes under a millisecond; a full
`gc.collect()` first took 46 ms and gave back nothing more. Standard library only.

Before that, the source lines `linecache` read from files are dropped: pyparsing
(mitmproxy's command grammar) looks at its own call stack while mitmproxy loads, which
reads all of its 6,000-line `core.py` into the cache, about 0.5 MiB that nothing
reads again. A traceback reads a file again when it needs it; the sources registered
for generated code (attrs' methods), which exist in no file, are kept.
"""

from __future__ import annotations

import ctypes
import linecache


def give_back_free_memory() -> bool:
    """Return the allocator's free pages to the system; False if it cannot."""
    forget_read_sources()
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library this process runs on
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
    return True


def forget_read_sources() -> None:
    """Drop the cached lines of source files on disk (linecache reads them again)."""
    for name in [n for n in linecache.cache if not n.startswith("<")]:
        linecache.cache.pop(name, None)
