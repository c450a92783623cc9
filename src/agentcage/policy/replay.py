"""Policy replay: re-decide recorded requests (and, with dns/rejudge.py, DNS queries).

What an audit line holds is what can be re-decided: a request's method, scheme, host,
port and path (as the agent sent them, at most 512 characters), a DNS query's name
and type. Headers, bodies and WebSocket payloads are never logged, so:

- A request is re-run through the candidate's inspector chain with that line and no
  headers or body (`RequestRedecider`). Every check of the host and the URL takes
  part (`domain`, the URL parts of `secrets`, `entropy`, `leaks` and
  `secret-injection`, custom inspectors); `rate-limit` does not (its budgets depend
  on header sizes and on requests the log may not hold).
- A tighter verdict from the replay is always a real one (what caused it is in the
  line). A looser one is believed only when the recorded verdict came from a check
  that saw nothing but the line (each redecider's `redecidable`); a request blocked
  for its body stays blocked, counted as kept.
- Lines the proxy decided by its own checks (egress, host agreement, protocol, ...),
  `response` lines, WebSocket messages and connection lines are not replayed.
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agentcage.config import load_config
from agentcage.config.context import LoadContext
from agentcage.config.schema import CageConfig
from agentcage.errors import ConfigError, PolicyError
from agentcage.policy.engine import Policy
from agentcage.policy.inspectors import domain, rate_limit
from agentcage.policy.types import Request

Record = dict[str, Any]  # one parsed audit line
# The proxy's own checks (docs/audit-log.md): not the policy's, so not replayed.
PROXY_CHECKS = frozenset(
    {"host-agreement", "egress", "header-size", "protocol", "upstream", "scrub", "audit", "proxy"}
)
_SKIPPED_KINDS = {
    "response": "response lines (how an exchange ended)",
    "websocket": "WebSocket messages (payloads are not in the log)",
    "connection": "connection lines",
    "flow": "refused flows (the deny listener's)",
    "lifecycle": "lifecycle lines",
}
_RANK = {"allow": 0, "flag": 1, "block": 2}


class Redecider(Protocol):
    """Re-decides the audit lines of one kind (`http`, `dns`)."""

    # Recorded inspectors that saw nothing but the line: a looser re-decision is believed.
    redecidable: frozenset[str]

    def unreplayable(self, record: Record) -> str | None:
        """Why the line cannot be re-decided (a plural noun phrase), or None."""

    def decide(self, record: Record) -> tuple[str, str, str]:
        """(verdict, inspector, reason) under the candidate."""


@dataclass(frozen=True)
class Flip:
    """A recorded decision the candidate would make differently."""

    before: str
    after: str
    record: Record
    inspector: str  # the candidate's, for a tighter verdict; the recorded one otherwise
    reason: str

    @property
    def direction(self) -> str:
        return f"{self.before} -> {self.after}"

    @property
    def new_block(self) -> bool:
        return self.after == "block"


@dataclass
class ReplayResult:
    replayed: int = 0
    flips: list[Flip] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # why -> lines
    kept: Counter[str] = field(default_factory=Counter)  # inspector -> looser replays not believed

    @property
    def directions(self) -> Counter[str]:
        return Counter(flip.direction for flip in self.flips)

    @property
    def new_blocks(self) -> int:
        return sum(flip.new_block for flip in self.flips)


def load_candidate(path: Path) -> CageConfig:
    # Host paths (volumes, CA files) may be another machine's: only the policy matters.
    return load_config(path, context=LoadContext(base_dir=path.resolve().parent, check_paths=False))


class Replayer:
    """Re-decides audit records, in order, with one redecider per kind of line."""

    def __init__(self, redeciders: Mapping[str, Redecider]) -> None:
        self._redeciders = redeciders
        self.result = ReplayResult()

    def replay(self, records: Iterable[Record]) -> ReplayResult:
        for record in records:
            self.add(record)
        return self.result

    def add(self, record: Record) -> None:
        kind = str(record.get("kind", ""))
        before = str(record.get("verdict", ""))
        inspector = str(record.get("inspector", ""))
        redecider = self._redeciders.get(kind)
        if kind in _SKIPPED_KINDS:
            self.result.skipped[_SKIPPED_KINDS[kind]] += 1
            return
        if before not in _RANK or redecider is None:
            self.result.skipped["lines of an unknown kind or verdict"] += 1
            return
        why = redecider.unreplayable(record)
        if why is not None:
            self.result.skipped[why] += 1
            return
        after, new_inspector, reason = redecider.decide(record)
        self.result.replayed += 1
        if after == before:
            return
        tighter = _RANK[after] > _RANK[before]
        if not tighter and inspector not in redecider.redecidable:
            self.result.kept[inspector] += 1
            return
        self.result.flips.append(
            Flip(
                before,
                after,
                record,
                new_inspector if tighter else inspector,
                reason if tighter else str(record.get("reason", "")),
            )
        )


class RequestRedecider:
    """Re-runs a request line through the candidate's chain, without `rate-limit`.

    No secret value is in the log, so each secret gets a stand-in (random, matching
    nothing): a placeholder sent toward its hosts is allowed, as in the proxy.
    """

    redecidable = frozenset({domain.NAME})

    def __init__(self, config: CageConfig, base_dir: Path) -> None:
        names = [rule.env for rule in config.secret_injection]
        names += [spec.env for spec in config.secrets.extra_patterns if spec.env]
        stand_ins = {name: f"agentcage-replay-{secrets.token_hex(16)}" for name in names}
        environ = {**stand_ins, **os.environ}
        try:
            self._policy = Policy.from_config(config, stand_ins, environ=environ, base_dir=base_dir)
        except PolicyError as exc:
            raise ConfigError(
                f"the candidate's policy cannot be built: {exc.message}", hint=exc.hint
            ) from exc
        chain = self._policy.chain
        chain.inspectors = [i for i in chain.inspectors if i.name != rate_limit.NAME]

    def unreplayable(self, record: Record) -> str | None:
        inspector = str(record.get("inspector", ""))
        if record.get("verdict") != "allow" and inspector in PROXY_CHECKS:
            return f"decisions of the proxy's own checks ({inspector})"
        if not record.get("method") or not record.get("host"):
            return "requests without a recorded method or host"
        return None

    def decide(self, record: Record) -> tuple[str, str, str]:
        request = Request(
            method=str(record.get("method", "")),
            scheme=str(record.get("scheme", "") or "https"),
            host=str(record.get("host", "")),
            port=int(record.get("port", 0) or 443),
            path=str(record.get("path", "") or "/"),
        )
        decision = self._policy.check_request(request)
        return decision.verdict.value, decision.inspector, decision.reason
