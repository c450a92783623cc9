"""Domain allowlist / blocklist, with hosts reduced to one canonical spelling first."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from agentcage.policy.canonical_hosts import BadHost, CanonicalHost, HostSet, canonical_host
from agentcage.policy.interface import block
from agentcage.policy.types import Finding, Frame, Request

NAME = "domain"
# The rules of the list's own refusals: what learn mode lets through. An invalid host
# or an IP literal is refused whatever the mode (a raw address skips the DNS sidecar).
_LIST_REFUSALS = frozenset({("not-allowlisted",), ("blocklisted",)})


class DomainInspector:
    name = NAME

    def __init__(self, mode: Literal["allowlist", "blocklist"], entries: Iterable[str]) -> None:
        self.mode = mode
        self.hosts = HostSet(entries)

    def list_refusal(self, inspector: object, finding: Finding) -> bool:
        """Whether `finding` is this inspector refusing a name by its list (what learn
        mode observes instead of enforcing)."""
        return inspector is self and finding.rules in _LIST_REFUSALS

    def inspect_request(self, request: Request) -> Finding | None:
        return self.check(request.host)

    def inspect_frame(self, frame: Frame) -> Finding | None:
        # Re-checked per message so a domain removed at run time also cuts open sockets.
        return self.check(frame.host)

    def check(self, raw_host: str) -> Finding | None:
        try:
            host = canonical_host(raw_host)
        except BadHost as exc:
            return block(NAME, f"invalid host: {exc}", "invalid-host")
        if host.is_ip:
            return self._check_address(host)
        listed = host in self.hosts
        if self.mode == "allowlist" and not listed:
            return block(
                NAME,
                f"{host.name} is not in the domain allowlist; add it to domains.allow "
                "(`agentcage domain add`) if the agent needs it",
                "not-allowlisted",
            )
        if self.mode == "blocklist" and listed:
            return block(NAME, f"{host.name} is in the domain blocklist", "blocklisted")
        return None

    def _check_address(self, host: CanonicalHost) -> Finding | None:
        # Raw addresses bypass DNS, the sidecar's log and every name rule: refuse them
        # unless the user listed an IP or CIDR covering this one (allowlist mode only).
        if self.mode == "allowlist":
            if host in self.hosts:
                return None
            fix = "add it (or its CIDR) to the allowlist to permit it"
        else:
            fix = "blocklist mode refuses every IP address; use an allowlist to permit one"
        return block(NAME, f"{host.name} is an IP address; {fix}", "ip-literal")
