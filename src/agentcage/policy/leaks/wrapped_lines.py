"""Base64 wrapped in lines (a MIME part, a PEM body), put back together.

A value cut by a line break is two token runs; `WrappedLines` joins the runs of one
block (lines of a MIME or PEM length, separated by a bare line break), so the
`Unwrapper` decodes the value whole.
"""

from __future__ import annotations

MIME_LINES = (64, 76)  # base64 line lengths of PEM and MIME (`base64.encodebytes`)


class WrappedLines:
    """Base64 wrapped in lines (a MIME part, a PEM body): the token runs of one
    block, joined, so a value cut by a line break is decoded whole."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._lines: list[tuple[int, int]] = []

    def add(self, start: int, end: int) -> bytes | None:
        """The run at start:end; the previous block joined, when this run ends it."""
        if self._lines:
            last_start, last_end = self._lines[-1]
            if last_end - last_start in MIME_LINES and self._data[last_end:start] in (
                b"\n",
                b"\r\n",
            ):
                self._lines.append((start, end))
                return None
        joined = self.end()
        self._lines = [(start, end)]
        return joined

    def end(self) -> bytes | None:
        lines, self._lines = self._lines, []
        if len(lines) < 2:
            return None
        return b"".join(self._data[a:b] for a, b in lines)
