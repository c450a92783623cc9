"""What the DNS sidecar needs of a cage's config, without the config's schema.

The schema (pydantic and every model of every section) costs the sidecar about 8 MiB
that it would hold for its whole life to use a dozen values. So `dns run` validates the
config in a short-lived child process (`agentcage.dns.config_check`, the same
`load_config` and the same error messages as before) that prints a `DnsPlan`; the
serving process reads it back here and never imports the schema (docs/cages.md).

The modules that judge, render and audit take a `DnsView`: the schema's `CageConfig`
fits it as well as `DnsPlan` does, so the CLI (`dns render`, `policy replay`) and the
tests still pass a validated config.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Protocol, get_type_hints

from agentcage.child_check import finish_check, raised_error, start_check
from agentcage.errors import DnsError

PLAN_VERSION = 1
CHECK_MODULE = "agentcage.dns.config_check"
_CHECK_TIMEOUT = 120.0  # the whole schema's import and a config of up to 1 MiB, on a busy host
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class DnsLimitsView(Protocol):
    """The `dns` section: tunnel detection and the zones' budgets."""

    @property
    def tunnel_action(self) -> str: ...
    @property
    def max_subdomain_length(self) -> int: ...
    @property
    def random_run_length(self) -> int: ...
    @property
    def random_run_entropy(self) -> float: ...
    @property
    def random_run_digits(self) -> float: ...
    @property
    def max_unique_subdomains(self) -> int: ...
    @property
    def max_unique_labels(self) -> int: ...
    @property
    def unique_window(self) -> int: ...
    @property
    def max_blocked_zones(self) -> int: ...


class DomainsView(Protocol):
    @property
    def mode(self) -> str: ...
    @property
    def entries(self) -> Sequence[str]: ...
    @property
    def learning(self) -> bool: ...
    @property
    def learn_notice(self) -> str: ...


class AddressesView(Protocol):
    @property
    def allow_cidrs(self) -> Sequence[_Network]: ...


class DnsLoggingView(Protocol):
    @property
    def dns_queries(self) -> str: ...
    @property
    def audit_max_bytes(self) -> int: ...
    @property
    def audit_keep(self) -> int: ...


class DnsView(Protocol):
    """What judging, rendering and auditing DNS read of a cage's config."""

    @property
    def name(self) -> str: ...
    @property
    def domains(self) -> DomainsView: ...
    @property
    def network(self) -> AddressesView: ...
    @property
    def dns(self) -> DnsLimitsView: ...
    @property
    def logging(self) -> DnsLoggingView: ...
    def effective_dns_servers(self) -> list[str]: ...


@dataclass(frozen=True)
class DnsLimits:
    tunnel_action: str
    max_subdomain_length: int
    random_run_length: int
    random_run_entropy: float
    random_run_digits: float
    max_unique_subdomains: int
    max_unique_labels: int
    unique_window: int
    max_blocked_zones: int


@dataclass(frozen=True)
class PlanDomains:
    mode: str
    entries: tuple[str, ...]
    learning: bool
    learn_notice: str


@dataclass(frozen=True)
class PlanAddresses:
    allow_cidrs: tuple[_Network, ...]


@dataclass(frozen=True)
class PlanLogging:
    dns_queries: str
    audit_max_bytes: int
    audit_keep: int


@dataclass(frozen=True)
class DnsPlan:
    """A validated config's DNS share; `servers` is `effective_dns_servers()` as the
    check saw it (the host's resolvers when the config names none)."""

    name: str
    domains: PlanDomains
    network: PlanAddresses
    dns: DnsLimits
    logging: PlanLogging
    servers: tuple[str, ...]

    def effective_dns_servers(self) -> list[str]:
        return list(self.servers)

    @classmethod
    def of(cls, config: DnsView) -> DnsPlan:
        d, limits, log = config.domains, config.dns, config.logging
        return cls(
            name=config.name,
            domains=PlanDomains(d.mode, tuple(d.entries), d.learning, d.learn_notice),
            network=PlanAddresses(tuple(config.network.allow_cidrs)),
            dns=DnsLimits(**{f.name: getattr(limits, f.name) for f in fields(DnsLimits)}),
            logging=PlanLogging(log.dns_queries, log.audit_max_bytes, log.audit_keep),
            servers=tuple(config.effective_dns_servers()),
        )


def plan_json(policy_version: str, plan: DnsPlan) -> str:
    """What the config check prints for a valid config: one object, one version."""
    data = asdict(plan)
    data["network"]["allow_cidrs"] = [str(n) for n in plan.network.allow_cidrs]
    return json.dumps(
        {"version": PLAN_VERSION, "policy_version": policy_version, "plan": data},
        sort_keys=True,
    )


def read_plan(text: str) -> tuple[str, DnsPlan]:
    """`plan_json`'s policy version and plan, read strictly: every key present with its
    type, nothing else; else `DnsError`."""
    try:
        outer = _checked(json.loads(text), _OUTER, "plan file")
        if outer["version"] != PLAN_VERSION:
            raise ValueError(f"version {outer['version']}, expected {PLAN_VERSION}")
        return outer["policy_version"], _read(DnsPlan, outer["plan"], "plan")
    except (ValueError, TypeError) as exc:  # json's errors are ValueErrors
        raise DnsError(
            f"the DNS sidecar's checked config cannot be read: {exc}",
            hint="the config check and the sidecar must be the same agentcage",
        ) from None


_OUTER: dict[str, type | tuple[type, ...]] = {"version": int, "policy_version": str, "plan": dict}
# A plan's field types as they travel in JSON; nested plan classes travel as objects.
_WIRE: dict[Any, type | tuple[type, ...]] = {
    str: str,
    int: int,
    bool: bool,
    float: (int, float),
    tuple[str, ...]: list,
    tuple[_Network, ...]: list,
}


def _read(cls: Any, value: Any, where: str) -> Any:
    """An instance of the plan dataclass `cls` from its JSON object, checked against the
    dataclass's own fields, so a field added to a class is read (and required) at once."""
    hints = get_type_hints(cls)
    types = {
        f.name: dict if is_dataclass(hints[f.name]) else _WIRE[hints[f.name]] for f in fields(cls)
    }
    found = _checked(value, types, where)
    values: dict[str, Any] = {}
    for name, hint in ((f.name, hints[f.name]) for f in fields(cls)):
        item, at = found[name], f"{where}.{name}"
        if is_dataclass(hint):
            values[name] = _read(hint, item, at)
        elif hint == tuple[_Network, ...]:
            values[name] = tuple(ipaddress.ip_network(c) for c in _strings(item, at))
        elif hint == tuple[str, ...]:
            values[name] = _strings(item, at)
        else:
            values[name] = item
    return cls(**values)


def _checked(value: Any, types: dict[str, type | tuple[type, ...]], where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != set(types):
        raise ValueError(f"{where} does not have exactly the keys {sorted(types)}")
    for key, kind in types.items():
        # bool is an int: a count given as true is as wrong as one given as "1".
        if not isinstance(value[key], kind) or (kind is not bool and isinstance(value[key], bool)):
            raise ValueError(f"{where}.{key} is not {_kind(kind)}")
    return value


def _kind(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))


def _strings(value: list[Any], where: str) -> tuple[str, ...]:
    if not all(isinstance(item, str) for item in value):
        raise ValueError(f"{where} holds something other than strings")
    return tuple(value)


def _readable(out: bytes) -> bool:
    """Whether `out` is an answer `checked_plan` reads: a plan or a check's error."""
    try:
        found = json.loads(out)
        if isinstance(found, dict) and isinstance(found.get("error"), dict):
            return True
        read_plan(out.decode())
    except (ValueError, DnsError):  # not UTF-8 or not JSON: ValueErrors too
        return False
    return True


def checked_plan(path: Path, *, fork: bool = False, ahead: bool = False) -> tuple[str, DnsPlan]:
    """The policy version of `path` and its `DnsPlan`, checked by `load_config` in a child
    (a fork of this process with `fork`, if it has one thread: child_check.py), or, with
    `ahead`, the answer stored ahead for the same bytes by the same code (checked_ahead.py).

    A config `load_config` refuses raises the same error with the same words; a check
    that cannot run or answers nonsense raises `DnsError` (fail closed either way).
    """
    try:
        returncode, out, err = finish_check(
            start_check(CHECK_MODULE, path, fork=fork, ahead=_readable if ahead else None),
            _CHECK_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DnsError(f"the config check of {path} could not run: {exc}") from None
    stdout = out.decode(errors="replace")
    try:
        answer = json.loads(stdout) if returncode == 0 else None
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        raise raised_error(answer["error"], DnsError)
    if not isinstance(answer, dict) or "plan" not in answer:
        tail = (err.strip().splitlines() or ["no output"])[-1]
        raise DnsError(
            f"the config check of {path} failed (exit status {returncode}): {tail}",
            hint="DNS stays down until the config can be checked (fail closed)",
        )
    return read_plan(stdout)
