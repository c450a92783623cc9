"""The `domains` section: which hosts the agent may reach, and whether that is enforced."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from agentcage.config.base import Model
from agentcage.config.fields import HostEntry


class DomainsConfig(Model):
    """Which hosts the agent may reach. `example.com` also matches every subdomain."""

    mode: Literal["allowlist", "blocklist"] = Field(
        "allowlist", description="`allowlist`: only listed hosts; `blocklist`: all but listed."
    )
    entries: list[HostEntry] = Field(
        default_factory=list,
        alias="list",
        description="Domains (matching their subdomains too), IP addresses or CIDR blocks.",
    )
    enforcement: Literal["enforce", "learn"] = Field(
        "enforce",
        description="`enforce`: a host the list refuses is blocked. `learn`: it is let through "
        "and audited as `would-block` (the proxy's requests and the DNS sidecar's queries), "
        "so `agentcage domain suggest` can list what the agent needs; every other check "
        "(secrets, leaks, egress addresses, rate limits, protocol hygiene, DNS tunnels, IP "
        "literals) still blocks. For a trial run only: `config validate` warns.",
    )

    @property
    def learning(self) -> bool:
        return self.enforcement == "learn"

    @property
    def learn_notice(self) -> str:
        """What the proxy's and the DNS sidecar's status lines add in learn mode."""
        if not self.learning:
            return ""
        return (
            "; LEARN MODE: the domain list is NOT enforced, what it refuses is let through "
            "and audited as would-block"
        )

    def warnings(self) -> list[tuple[str, str]]:
        if not self.learning:
            return []
        return [
            (
                "enforcement",
                "LEARN MODE: the domain list is not enforced; the agent can reach any public "
                "host, and each one the list would refuse is only audited as `would-block`. "
                "Secrets, leaks, egress addresses and rate limits are still enforced. Run "
                "`agentcage domain suggest` and set `enforcement: enforce` before real use",
            )
        ]

    @model_validator(mode="before")
    @classmethod
    def _allow_block_shorthand(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not ({"allow", "block"} & data.keys()):
            return data
        if "allow" in data and "block" in data:
            raise ValueError("give either `allow` or `block`, not both")
        if {"mode", "list"} & data.keys():
            raise ValueError("use either `allow:`/`block:` or `mode:` + `list:`, not both")
        rest = {k: v for k, v in data.items() if k not in ("allow", "block")}
        if "allow" in data:
            return {**rest, "mode": "allowlist", "list": data["allow"]}
        return {**rest, "mode": "blocklist", "list": data["block"]}
