"""A unix socket path longer than the kernel takes (107 bytes), bound or connected to.

A cage's socket lives under the user's state directory, `.../deployments/NAME/metrics/
proxy/proxy.sock`: with a long home and a 63-character cage name that is past the limit
of `sockaddr_un`. Binding or connecting to `/proc/self/fd/N/proxy.sock`, N an `O_PATH`
descriptor of the directory, reaches the same file with a short name (Linux only, as
cages are). The client that connects so is `unix_http.py`: the sidecars, which only
bind, need not load `http.client`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

MAX_BYTES = 107  # sizeof(sun_path) - 1 on Linux


@contextlib.contextmanager
def addressable(path: Path) -> Iterator[str]:
    """A name for `path` that fits a socket address, valid inside the `with`."""
    if len(os.fsencode(path)) <= MAX_BYTES:
        yield str(path)
        return
    directory = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{directory}/{path.name}"
    finally:
        os.close(directory)
