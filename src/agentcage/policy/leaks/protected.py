"""What we protect: real secrets, placeholders and canaries, and where each may go."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agentcage.policy.leaks.encodings import Variant, canonical, variants
from agentcage.policy.types import Severity

# injected: real value the proxy swaps in; known: a value named sensitive in config;
# placeholder: what the agent sees instead of an injected value; canary: a decoy.
Role = Literal["injected", "known", "placeholder", "canary"]

SEVERITY: dict[Role, Severity] = {
    "injected": "high",
    "known": "high",
    "placeholder": "high",
    "canary": "critical",
}


@dataclass(frozen=True, slots=True)
class Protected:
    """One value that must not leave except to `allowed_hosts` (and their subdomains).

    `name` is what audit records show (an env name); the value itself never is.
    """

    name: str
    value: bytes
    role: Role
    allowed_hosts: tuple[str, ...] = ()

    def __repr__(self) -> str:  # keep values out of tracebacks and logs
        return f"Protected({self.name!r}, role={self.role!r}, {len(self.value)} bytes)"

    def allowed_to(self, host: str) -> bool:
        if self.role == "canary":
            return False  # a decoy is never legitimately used anywhere
        host = host.lower().rstrip(".")
        return any(host == d or host.endswith("." + d) for d in self.allowed_hosts)

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.role]

    @property
    def rule(self) -> str:
        """The audit rule name: role and env name, e.g. `canary:OPENAI_API_KEY`."""
        return f"{self.role}:{self.name}"

    def variants(self) -> list[Variant]:
        return variants(self.value)


def long_enough(value: bytes, min_length: int) -> bool:
    """Too short a value would match ordinary traffic; it is not matched at all."""
    return len(canonical(value)) >= min_length
