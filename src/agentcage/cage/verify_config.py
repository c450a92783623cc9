"""What `cage verify` needs of a cage's stored config, read as JSON: no pydantic.

Loading the config schema (pydantic and every section's model) and validating the stored
config with it was most of verify's start, 0.1 to 0.2 s before its first question on the
2-core test machine, and the facade validated it a second time to ask whether the cage is
a microVM. The stored `config.json` was validated when it was written (create, update);
verify reads the few fields its checks compare against. Anything missing or of the wrong
type is a damaged state, an error, never a default: a verify of a config it could not
read would check the wrong walls.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, TypeVar

from agentcage.cage.state import CONFIG_NORMALIZED, StateStore
from agentcage.config.constants import WEB_PORTS
from agentcage.errors import StateError

T = TypeVar("T")


@dataclass(frozen=True)
class VerifyConfig:
    name: str
    microvm: bool  # isolation: firecracker
    transparent: bool
    # The proxy's transparent listeners (NetworkConfig.listener_ports): 80, 443 and each
    # listed port; none when transparent mode is off.
    listener_ports: tuple[int, ...]
    placeholders: tuple[tuple[str, str], ...]  # (env name, what the agent sees)
    # The first allowlisted domain name, for the "allowlisted host reachable" check.
    allowed_host: str | None


def load(store: StateStore, name: str) -> VerifyConfig:
    path = store.path(name) / CONFIG_NORMALIZED
    if not path.exists():
        raise StateError(
            f"no cage named {name!r}", hint="`agentcage cage list` shows the cages you have"
        )
    data = store.read_json(name, CONFIG_NORMALIZED)
    try:
        return _parse(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"{path}: damaged state ({exc!r}); re-create the cage") from exc


def _parse(data: Any) -> VerifyConfig:
    network, domains = _mapping(data["network"]), _mapping(data["domains"])
    transparent = _typed(network["transparent"], bool)
    ports = {_typed(_mapping(rule)["port"], int) for rule in _sequence(network["ports"])}
    placeholders = tuple(
        (_typed(rule["env"], str), _typed(rule["placeholder"], str))
        for rule in map(_mapping, _sequence(data["secret_injection"]))
    )
    allowed = None
    if _typed(domains["mode"], str) == "allowlist":
        allowed = next(
            (entry for entry in map(str, _sequence(domains["list"])) if not _is_network(entry)),
            None,
        )
    return VerifyConfig(
        name=_typed(data["name"], str),
        microvm=_typed(data["isolation"], str) == "firecracker",
        transparent=transparent,
        listener_ports=tuple(sorted({*WEB_PORTS, *ports})) if transparent else (),
        placeholders=placeholders,
        allowed_host=allowed,
    )


def _is_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry)
    except ValueError:
        return False
    return True


def _mapping(value: Any) -> dict[str, Any]:
    return _typed(value, dict)


def _sequence(value: Any) -> list[Any]:
    return _typed(value, list)


def _typed(value: Any, kind: type[T]) -> T:
    # bool is an int: a port of `true` is as damaged as a port of "80".
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{value!r} is not {kind.__name__}")
    return value
