"""Split a `multipart/form-data` body into parts, so each is judged by its own type.

A file upload (`Content-Type: application/octet-stream` part) is dense by nature;
a text field next to it is not. Judging the body as a whole would either block
every upload or let encrypted text ride along with one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

MAX_PARTS = 1000  # more than any real form; beyond it the rest is judged as one part
_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,200})"|([^\s;,]{1,200}))', re.IGNORECASE)
_HEADER_END = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    content_type: str  # lower-case media type without parameters; "" if not given
    data: bytes


def boundary_of(content_type_header: str) -> str | None:
    match = _BOUNDARY.search(content_type_header)
    return (match.group(1) or match.group(2)) if match else None


def parts(body: bytes, boundary: str) -> Iterator[Part]:
    """Parts in order; malformed stretches come back as one part of unknown type."""
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    chunks = body.split(delimiter, MAX_PARTS + 1)
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            return  # the closing delimiter
        chunk = chunk.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, sep, data = chunk.partition(_HEADER_END)
        if not sep:
            yield Part("", "", chunk)
            continue
        yield Part(_name(head), _content_type(head), data)


def _content_type(head: bytes) -> str:
    for line in head.split(b"\r\n"):
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-type":
            return value.decode("latin-1").split(";")[0].strip().lower()
    return ""


def _name(head: bytes) -> str:
    match = re.search(rb'name="([^"]{0,100})"', head)
    return match.group(1).decode("utf-8", "replace") if match else ""
