"""The proxy's current policy, built from config + secrets, swapped whole on reload."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agentcage.errors import ConfigError, PolicyError
from agentcage.policy.engine import Policy
from agentcage.proxy.checked_config import ConfigCheck
from agentcage.proxy.egress import AddressGuard, Resolver
from agentcage.proxy.secret_values import load_secrets

if TYPE_CHECKING:
    from agentcage.config.schema import CageConfig


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """Everything one decision needs; immutable, so a reload never mixes two configs."""

    config: CageConfig
    policy: Policy
    guard: AddressGuard
    resolver: Resolver
    secret_values: tuple[str, ...] = ()  # for streaming scrub windows; never logged
    version: str = ""  # `policy_version` of the config file loaded

    @property
    def cage(self) -> str:
        return self.config.name

    @property
    def max_body(self) -> int | None:
        return self.config.max_request_body or None


@dataclass(frozen=True)
class Sources:
    """Where a runtime is built from: read again on every reload."""

    config_path: Path
    secrets_dir: Path | None = None


def build_runtime(
    sources: Sources,
    check: ConfigCheck | None = None,
    resolver_later: bool = False,
    warm_later: bool = False,
) -> Runtime:
    """Load config and secrets and compile the policy; ConfigError on any problem.

    `check`: the config's check, if one was started already (`proxy run` starts it first).
    `resolver_later`: the caller loads the resolver (`Resolver.load`) itself, unless
    loading it could fail on the config (no `dns_servers`): then it is loaded here.
    `warm_later`: the caller warms the policy (`Policy.warm`) itself.
    """
    checked = (check or ConfigCheck(sources.config_path)).result()
    config, version = checked.config, checked.version
    for warning in checked.warnings:
        logger.warning("%s", warning)
    secrets, missing = load_secrets(config, secrets_dir=sources.secrets_dir)
    if missing:
        where = "the environment" + (f" or {sources.secrets_dir}" if sources.secrets_dir else "")
        logger.warning(
            "secret value not found in %s: %s; requests carrying its placeholder are blocked",
            where,
            ", ".join(missing),
        )
    try:
        policy = Policy.from_config(config, secrets, base_dir=sources.config_path.resolve().parent)
    except PolicyError as exc:
        raise ConfigError(f"{sources.config_path}: {exc.message}", hint=exc.hint) from exc
    if not warm_later:
        policy.warm()
    resolver = Resolver(config.dns_servers)
    if not resolver_later or resolver.reads_system_config:
        resolver.load()
    return Runtime(
        config=config,
        policy=policy,
        guard=AddressGuard(config.network.allow_cidrs),
        resolver=resolver,
        secret_values=tuple(secrets.values()),
        version=version,
    )


class RuntimeHolder:
    """Hands the current runtime to the addons; `reload` replaces it atomically."""

    def __init__(self, sources: Sources, runtime: Runtime) -> None:
        self._sources = sources
        self._runtime = runtime

    @property
    def current(self) -> Runtime:
        return self._runtime

    def reload(self, check: ConfigCheck | None = None) -> bool:
        """Rebuild from the sources (the config as `check` found it, if given); on error
        keep the running policy and say why."""
        try:
            runtime = build_runtime(self._sources, check)
        except ConfigError as exc:
            logger.error("reload failed, keeping the previous policy: %s", exc.diagnostics())
            return False
        self._runtime = runtime
        return True
