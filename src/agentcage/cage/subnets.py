"""The subnet plan: which networks a cage gets, from pools the host may configure.

Each cage needs two small networks (internal and external), each holding at most four
sidecar addresses and the agent's: an IPv4 /28 (14 hosts) is enough, so a /16 pool holds
2,048 cages. Rootful cages draw from 10.213.0.0/16, rootless ones from 10.214.0.0/16:
each user's cages are recorded in that user's own state, which no other user can read,
so disjoint defaults keep a rootful and a rootless cage on one host from taking the same
networks. `$AGENTCAGE_SUBNET_POOLS` replaces the default with a comma-separated list of
IPv4 CIDRs (`10.213.0.0/16,10.215.0.0/16`), used in the order given. IPv6 pools are
refused: the units attach IPv4 networks only, so an IPv6 allocation would be a promise
nothing keeps. A network any cage holds is never handed out again, whatever its size
(cages made before this plan hold /24s).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from agentcage.errors import StateError

POOLS_ENV = "AGENTCAGE_SUBNET_POOLS"
DEFAULT_POOLS = {False: "10.213.0.0/16", True: "10.214.0.0/16"}  # rootless -> pool
PREFIX = {4: 28, 6: 64}  # the size of one cage network, per IP version
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class SubnetPool:
    """One pool: a range cut into pairs of cage networks, lowest first."""

    network: Network

    @property
    def prefix(self) -> int:
        return PREFIX[self.network.version]

    @property
    def capacity(self) -> int:
        """How many cages (pairs of networks) the pool holds."""
        return int(2 ** (self.prefix - self.network.prefixlen) // 2)

    @property
    def _size(self) -> int:
        return int(2 ** (self.network.max_prefixlen - self.prefix))

    def slot(self, number: int) -> Network:
        """The pool's `number`-th cage-sized network; a cage holds slots 2k and 2k+1."""
        return ipaddress.ip_network(
            (int(self.network.network_address) + number * self._size, self.prefix)
        )

    def pairs(self) -> Iterator[tuple[Network, Network]]:
        for slot in range(0, 2 * self.capacity, 2):
            yield self.slot(slot), self.slot(slot + 1)

    def blocked_slots(self, held: Iterable[Network]) -> set[int]:
        """The slots any of `held` (of any size) overlaps."""
        base, last = int(self.network.network_address), int(self.network.broadcast_address)
        blocked: set[int] = set()
        for net in held:
            start = max(int(net.network_address), base)
            end = min(int(net.broadcast_address), last)
            if start <= end:
                blocked.update(range((start - base) // self._size, (end - base) // self._size + 1))
        return blocked


def pools(
    environ: Mapping[str, str] | None = None, rootless: bool | None = None
) -> tuple[SubnetPool, ...]:
    """The configured pools; a `StateError` naming the entry that is not a usable one.

    `rootless` picks the default pool (None: whether this process runs as root).
    """
    env = os.environ if environ is None else environ
    rootless = os.geteuid() != 0 if rootless is None else rootless
    text = env.get(POOLS_ENV, "").strip() or DEFAULT_POOLS[rootless]
    found = []
    for entry in (part.strip() for part in text.split(",")):
        try:
            network = ipaddress.ip_network(entry)
        except ValueError as exc:
            raise StateError(
                f"${POOLS_ENV}: {entry!r} is not a network ({exc})",
                hint="write IPv4 CIDRs separated by commas, e.g. 10.213.0.0/16,10.215.0.0/16",
            ) from exc
        if network.version == 6:
            raise StateError(
                f"${POOLS_ENV}: {entry} is an IPv6 pool; cages get IPv4 networks only "
                "(their units attach no IPv6 network yet)",
                hint="list IPv4 CIDRs only, e.g. 10.213.0.0/16,10.215.0.0/16",
            )
        if network.prefixlen > PREFIX[network.version] - 1:
            raise StateError(
                f"${POOLS_ENV}: {entry} is too small for even one cage "
                f"(two /{PREFIX[network.version]} networks)"
            )
        found.append(SubnetPool(network))
    return tuple(found)


def describe(chosen: Iterable[SubnetPool]) -> str:
    return ", ".join(str(pool.network) for pool in chosen)


def allocate_pair(
    chosen: Iterable[SubnetPool], taken: Iterable[str], version: int
) -> tuple[str, str]:
    """The first pair of free networks of `version` in `chosen`; none may overlap `taken`.

    A `StateError` naming the pools when every pair is taken.
    """
    candidates = [pool for pool in chosen if pool.network.version == version]
    held = [net for net in map(ipaddress.ip_network, taken) if net.version == version]
    for pool in candidates:
        blocked = pool.blocked_slots(held)
        for slot in range(0, 2 * pool.capacity, 2):
            if slot not in blocked and slot + 1 not in blocked:
                return str(pool.slot(slot)), str(pool.slot(slot + 1))
    total = sum(pool.capacity for pool in candidates)
    raise StateError(
        f"the subnet pool {describe(candidates)} is full: it holds {total} cages "
        f"(two /{PREFIX[version]} networks each) and every one is taken",
        hint=f"destroy cages you no longer need (`agentcage cage list`), or add a pool to "
        f"${POOLS_ENV} (now {describe(candidates)})",
    )
