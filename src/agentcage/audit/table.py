"""The audit viewer's table: one row per decision, with the status its exchange ended with.

A request's decision line (`kind: http`) is written before it is forwarded, and its
`response` line (status, or the error) when the exchange ends. `StatusJoin` holds
each row until its response line arrives, so the row can show the status, and lets
rows out in the order they were decided: once answered, when the joiner holds too
many rows, or (following a live log) after `hold_seconds`. A `response` line that
blocks (a response refused on the way back) is a decision of its own and gets a row.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentcage.audit.reading import Line, Record
from agentcage.audit.selection import Selection, record_time

COLUMNS = ("TIME", "VERDICT", "INSPECTOR", "METHOD", "HOST", "PATH", "STATUS", "REASON")
# The last column (the reason) is never cut: it is what the table is read for.
WIDTHS = (25, 7, 16, 8, 28, 30, 9)
HOLD_ROWS = 10_000


@dataclass(slots=True)
class _Held:
    record: Record
    since: float
    waiting: bool  # for its response line
    status: str = ""


class StatusJoin:
    def __init__(self, selection: Selection, *, hold_rows: int = HOLD_ROWS) -> None:
        self._selection = selection
        self._hold_rows = hold_rows
        self._queue: deque[_Held] = deque()
        self._waiting: dict[str, _Held] = {}

    def add(self, line: Line, now: float = 0.0) -> None:
        record = line.record
        if record.get("kind") == "response":
            held = self._waiting.pop(str(record.get("flow_id", "")), None)
            if held is not None:
                held.status, held.waiting = status_of(record), False
            if record.get("verdict") != "block":
                return
        if not self._selection.matches(record):
            return
        flow = str(record.get("flow_id", ""))
        waiting = record.get("kind") == "http" and record.get("verdict") != "block" and bool(flow)
        held = _Held(record, now, waiting)
        self._queue.append(held)
        if waiting:
            self._waiting[flow] = held

    def ready(self, now: float | None = None, hold_seconds: float = 1.0) -> list[Record]:
        """Rows that may go out now, in order, each with its `status` filled in when known.

        `now` None: only rows answered (or past the row limit). Otherwise also rows
        waiting `hold_seconds` or longer.
        """
        out = []
        while self._queue:
            head = self._queue[0]
            expired = now is not None and now - head.since >= hold_seconds
            if head.waiting and not expired and len(self._queue) <= self._hold_rows:
                break
            out.append(self._release())
        return out

    def rest(self) -> list[Record]:
        """Every row still held (at the end of the logs)."""
        return [self._release() for _ in range(len(self._queue))]

    def _release(self) -> Record:
        held = self._queue.popleft()
        if held.waiting:
            self._waiting.pop(str(held.record.get("flow_id", "")), None)
        return {**held.record, "status": held.status}


def status_of(response: Record) -> str:
    extra = response.get("extra") or {}
    if not isinstance(extra, dict):
        return ""
    if "status" in extra:
        return str(extra["status"])
    return "error" if extra.get("error") else ""


def cells(row: Record) -> list[str]:
    """The table's cells for a row from `StatusJoin` (a record plus its `status`)."""
    kind = row.get("kind")
    extra: dict[str, Any] = row.get("extra") if isinstance(row.get("extra"), dict) else {}  # type: ignore[assignment]
    when = record_time(row)
    # Local time for the reader, with its offset so lines stay unambiguous across zones.
    time = when.astimezone().isoformat(" ", "seconds") if when else str(row.get("time", ""))
    host, status = str(row.get("host", "")), str(row.get("status", ""))
    method = str(row.get("method", ""))
    if kind == "dns":
        method, host = f"dns/{row.get('qtype', '')}", str(row.get("qname", ""))
        forwarded = row.get("verdict") != "block"
        status = str(extra.get("rcode", "")) or ("forwarded" if forwarded else "")
    elif kind == "websocket":
        arrow = ">" if extra.get("direction") == "to_server" else "<"
        method = f"ws{arrow}" + (f" {extra['frame']}" if "frame" in extra else "")
    elif kind == "connection":
        method, host = "conn", host or str(row.get("client", ""))
    elif kind == "flow":  # a refused flow (tcp/udp), or a summary of those left out
        method, host = str(row.get("scheme", "")) or "flow", host or str(row.get("client", ""))
    port = row.get("port")
    if host and port and (row.get("scheme"), port) not in (("https", 443), ("http", 80)):
        host = f"{host}:{port}"
    return [
        time,
        str(row.get("verdict", "")),
        str(row.get("inspector", "")),
        method,
        host,
        str(row.get("path", "")),
        status,
        str(row.get("reason", "")),
    ]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_row(values: list[str], style: Callable[[str, str], str] | None = None) -> str:
    """One line of the table; `style(text, verdict)` may colour it (a terminal)."""
    parts = [_cut(value, width).ljust(width) for value, width in zip(values, WIDTHS, strict=False)]
    line = "  ".join([*parts, values[len(WIDTHS)]]).rstrip()
    return style(line, values[1]) if style is not None else line


def header() -> str:
    return format_row(list(COLUMNS))
