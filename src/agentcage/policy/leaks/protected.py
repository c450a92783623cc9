"""What we protect: real secrets, placeholders and canaries, and where each may go.

`protected_values` lists them for one cage from its config, its injected secrets and
the proxy's environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from agentcage.errors import PolicyError
from agentcage.policy.canaries import CANARY_SEED_ENV, canary_value
from agentcage.policy.leaks.encodings import Variant, canonical, variants
from agentcage.policy.types import Severity

if TYPE_CHECKING:  # the DNS sidecar uses `Protected` without the schema (dns/plan.py)
    from agentcage.config.inspection import KnownSecret
    from agentcage.config.schema import CageConfig

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


def protected_values(
    config: CageConfig,
    secrets: Mapping[str, str],
    environ: Mapping[str, str],
    base_dir: Path | None = None,
) -> list[Protected]:
    out: list[Protected] = []
    for rule in config.secret_injection:
        hosts = tuple(rule.inject_to)
        out.append(Protected(rule.env, rule.token.encode(), "placeholder", hosts))
        value = secrets.get(rule.env)
        if value:
            out.append(Protected(rule.env, value.encode(), "injected", hosts))
    for known in config.secrets.known:
        known_value = _known_value(known, secrets, environ, base_dir)
        out.append(Protected(known.label, known_value, "known", tuple(known.allow_to)))
    seed = (secrets.get(CANARY_SEED_ENV) or environ.get(CANARY_SEED_ENV) or config.name).encode()
    for canary in config.secrets.canaries:
        value = canary.value or canary_value(canary.kind, canary.env, seed)
        out.append(Protected(canary.env, value.encode(), "canary"))
    return out


def _known_value(
    known: KnownSecret,
    secrets: Mapping[str, str],
    environ: Mapping[str, str],
    base_dir: Path | None,
) -> bytes:
    if known.env is not None:
        text = secrets.get(known.env) or environ.get(known.env)
        if not text:
            raise PolicyError(
                f"secrets.known: {known.env} is not set, so it cannot be protected",
                hint=f"set {known.env} in the proxy's environment, use `file:` for a value "
                "kept in a file, or remove the entry",
            )
        return text.encode()
    assert known.file is not None
    path = Path(known.file)
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyError(
            f"secrets.known: cannot read {path}: {exc.strerror}",
            hint="point `file:` at a readable file holding the value, or remove the entry",
        ) from exc
    value = data.strip()
    if not value:
        raise PolicyError(f"secrets.known: {path} is empty", hint="put the value in the file")
    return value
