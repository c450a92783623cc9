"""The audit record: one JSON line per decision, shared by the proxy and the DNS sidecar.

Schema version 1. Keys are stable; new keys may be added with a version bump.
A record never holds a secret value or a whole body: only names of matched rules,
sizes and a path truncated to `MAX_PATH` characters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
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


_ALL_KEYS = tuple(f.name for f in fields(AuditRecord) if f.name not in ("extra", "learn"))
_HTTP_KEYS = tuple(k for k in _ALL_KEYS if k not in ("qname", "qtype", "answers"))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
