"""The audit record: one JSON line per decision, shared by the proxy and the DNS sidecar.

Schema version 1. Keys are stable; new keys may be added with a version bump.
A record never holds a secret value or a whole body: only names of matched rules,
sizes and a path truncated to `MAX_PATH` characters.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, fields
from json.encoder import encode_basestring_ascii as _quoted
from typing import Any, Literal

SCHEMA_VERSION = 1
MAX_PATH = 512

Kind = Literal["http", "response", "websocket", "dns", "connection", "flow", "lifecycle"]
# The `learn` value of a decision that learn mode let through although the domain
# list refuses it (`domains.enforcement: learn`).
WOULD_BLOCK = "would-block"
# The DNS sidecar's inspector when learn mode refuses an answer holding an internal
# address: such a name is not one the agent could use, so it is never suggested.
ANSWER_REFUSED = "dns-answer"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    kind: Kind
    verdict: str  # "allow" | "flag" | "block"
    cage: str = ""
    flow_id: str = ""
    client: str = ""
    method: str = ""
    scheme: str = ""
    host: str = ""
    port: int = 0
    path: str = ""
    inspector: str = ""
    reason: str = ""
    rules: tuple[str, ...] = ()
    severity: str = ""
    bytes_in: int = 0  # from upstream to the agent
    bytes_out: int = 0  # from the agent to upstream
    duration_ms: float = 0.0
    # DNS only
    qname: str = ""
    qtype: str = ""
    answers: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    learn: str = ""  # WOULD_BLOCK, or empty (and then left out of the line)
    time: str = field(default_factory=lambda: now_iso())

    def to_json(self) -> str:
        if self.kind != "dns":
            line = self._spelled()
            if line is not None:
                return line
        return self.encoded()

    def encoded(self) -> str:
        """The line's definition: `json.dumps` of the fields, keys sorted, no spaces."""
        # Field by field rather than `asdict`, whose deep copy was most of the cost of
        # a line; `extra` is the only nested value, and json.dumps copies nothing.
        keys = _ALL_KEYS if self.kind == "dns" else _HTTP_KEYS
        data: dict[str, Any] = {key: getattr(self, key) for key in keys}
        data["v"] = SCHEMA_VERSION
        data["path"] = self.path[:MAX_PATH]
        if self.extra:
            data["extra"] = self.extra
        if self.learn:
            data["learn"] = self.learn
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    def _spelled(self) -> str | None:
        """The same text as `encoded` for an HTTP-side line, written out in key order.

        Each string is quoted by the json module's own C function, so only the frame
        is ours: a quarter of json.dumps' time, which builds, sorts and walks a dict
        of 20 keys (7.7 to 2.8-3.7 us a line in-process; 33 to 16 us in the running proxy).
        None when a value is not of its declared type (a bool or NaN says something
        else in JSON than its repr), and `encoded` writes the line.
        """
        numbers = (self.bytes_in, self.bytes_out, self.port)
        if (
            type(self.duration_ms) not in _NUMBERS
            or not math.isfinite(self.duration_ms)
            or any(type(number) is not int for number in numbers)
            or type(self.rules) is not tuple
        ):
            return None
        try:
            rules = ",".join([_quoted(rule) for rule in self.rules])
            extra = f'"extra":{_spelled_extra(self.extra)},' if self.extra else ""
            learn = f'"learn":{_quoted(self.learn)},' if self.learn else ""
            return (
                f'{{"bytes_in":{self.bytes_in},"bytes_out":{self.bytes_out},'
                f'"cage":{_quoted(self.cage)},"client":{_quoted(self.client)},'
                f'"duration_ms":{self.duration_ms!r},{extra}'
                f'"flow_id":{_quoted(self.flow_id)},"host":{_quoted(self.host)},'
                f'"inspector":{_quoted(self.inspector)},"kind":{_quoted(self.kind)},{learn}'
                f'"method":{_quoted(self.method)},"path":{_quoted(self.path[:MAX_PATH])},'
                f'"port":{self.port},"reason":{_quoted(self.reason)},"rules":[{rules}],'
                f'"scheme":{_quoted(self.scheme)},"severity":{_quoted(self.severity)},'
                f'"time":{_quoted(self.time)},"v":{SCHEMA_VERSION},'
                f'"verdict":{_quoted(self.verdict)}}}'
            )
        except TypeError:  # a string field holding something else
            return None


_ALL_KEYS = tuple(f.name for f in fields(AuditRecord) if f.name not in ("extra", "learn"))
_HTTP_KEYS = tuple(k for k in _ALL_KEYS if k not in ("qname", "qtype", "answers"))
_NUMBERS = (int, float)
# `extra` as json.dumps writes it inside the line (nested keys sorted too).
_EXTRA = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


def _spelled_extra(extra: dict[str, Any]) -> str:
    """`extra` as json.dumps writes it in the line: flat ones (a status, an error)
    written out here, anything else by the json module."""
    if type(extra) is not dict:
        return _EXTRA.encode(extra)
    parts = []
    for key, value in sorted(extra.items()):
        if type(key) is not str:
            return _EXTRA.encode(extra)
        if type(value) is str:
            parts.append(f"{_quoted(key)}:{_quoted(value)}")
        elif type(value) is int:
            parts.append(f"{_quoted(key)}:{value}")
        else:
            return _EXTRA.encode(extra)
    return "{" + ",".join(parts) + "}"


# (second since the epoch, its "YYYY-MM-DDTHH:MM:SS" in UTC): lines come many a
# second, and formatting the date was a fifth of building one. Replaced whole, so a
# thread reads either the old pair or the new one.
_second: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """The time now in UTC to the millisecond, as `datetime.isoformat` writes it, with Z."""
    global _second
    seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    second = _second
    if second[0] != seconds:
        second = _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{second[1]}.{nanoseconds // 1_000_000:03d}Z"
