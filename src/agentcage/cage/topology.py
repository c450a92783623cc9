"""Where a cage's parts sit on the network: names, subnets and fixed addresses.

Each cage gets two small networks from the subnet plan (subnets.py): an internal network
(no gateway, no Podman DNS) that holds the agent and one leg of each sidecar, and an
external network that gives only the sidecars a way out. The allocation is stored in the
cage's state directory, so several cages coexist and an update keeps its addresses.
Topologies recorded with IPv6 networks (`internal_subnet6`, `external_subnet6`; an earlier
plan allocated them from IPv6 pools) still load and keep those networks taken; new cages
get none, as their units attach IPv4 networks only.
"""

from __future__ import annotations

import fcntl
import ipaddress
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from agentcage.cage import subnets
from agentcage.cage.state import StateStore
from agentcage.errors import StateError

TOPOLOGY_FILE = "topology.json"
PROXY_PORT = 8080
DNS_PORT = 53
# Host part of each sidecar on both networks; .1 is left to Podman's gateway bookkeeping.
_DNS_HOST = 2
_PROXY_HOST = 3
_PORTS_HOST = 4
_AGENT_HOST = 100  # in the /24s of cages made before the subnet plan; else the last host


def prefix(cage: str) -> str:
    """What the names of a cage's units, containers, networks and volumes start with."""
    return f"agentcage-{cage}"


@dataclass(frozen=True)
class Topology:
    cage: str
    index: int
    internal_subnet: str
    external_subnet: str
    internal_subnet6: str = ""  # only in topologies an earlier plan wrote
    external_subnet6: str = ""

    @property
    def prefix(self) -> str:
        return prefix(self.cage)

    @property
    def internal_network(self) -> str:
        return f"{self.prefix}-int"

    @property
    def external_network(self) -> str:
        return f"{self.prefix}-ext"

    def container(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def _host(self, subnet: str, host: int) -> str:
        return str(ipaddress.IPv4Network(subnet)[host])

    @property
    def dns_ip(self) -> str:
        return self._host(self.internal_subnet, _DNS_HOST)

    @property
    def proxy_ip(self) -> str:
        return self._host(self.internal_subnet, _PROXY_HOST)

    @property
    def dns_external_ip(self) -> str:
        return self._host(self.external_subnet, _DNS_HOST)

    @property
    def proxy_external_ip(self) -> str:
        return self._host(self.external_subnet, _PROXY_HOST)

    @property
    def agent_ip(self) -> str:
        size = ipaddress.IPv4Network(self.internal_subnet).num_addresses
        return self._host(self.internal_subnet, _AGENT_HOST if size > _AGENT_HOST + 1 else size - 2)

    @property
    def ports_ip(self) -> str:
        return self._host(self.internal_subnet, _PORTS_HOST)

    @property
    def ports_external_ip(self) -> str:
        return self._host(self.external_subnet, _PORTS_HOST)

    @property
    def proxy_url(self) -> str:
        return f"http://{self.proxy_ip}:{PROXY_PORT}"


def mac_address(ip: str) -> str:
    """The fixed MAC of a cage address: locally administered `02:00:`, then the IPv4 bytes.

    Podman gives a re-created container a new random MAC. Netavark before 1.6 (Debian 12
    has 1.4) announces no change, so a peer that cached the old MAC (the agent, for its
    proxy) cannot reach the new container until its ARP entry times out, up to a minute.
    A MAC that follows the address keeps every cached entry right across restarts.
    """
    return "02:00:" + ":".join(f"{byte:02x}" for byte in ipaddress.IPv4Address(ip).packed)


def subnets_for(index: int) -> tuple[str, str]:
    """The `index`-th pair of IPv4 networks of the default pool (for tests and examples)."""
    pool = subnets.pools({}, rootless=False)[0]
    internal, external = next(itertools.islice(pool.pairs(), index, None))
    return str(internal), str(external)


@contextmanager
def _allocation_lock(store: StateStore) -> Iterator[None]:
    store.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(store.root / ".allocation.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load(store: StateStore, cage: str) -> Topology | None:
    data = store.read_json(cage, TOPOLOGY_FILE)
    if data is None:
        return None
    try:
        return Topology(**data)
    except TypeError as exc:
        raise StateError(f"{cage}/{TOPOLOGY_FILE}: damaged state ({exc})") from exc


def _others(store: StateStore, cage: str) -> tuple[set[int], list[str]]:
    """The indexes and networks every other cage holds."""
    indexes, networks = set(), []
    if store.deployments.is_dir():
        for path in store.deployments.iterdir():
            other = load(store, path.name) if (path / TOPOLOGY_FILE).is_file() else None
            if other is not None and other.cage != cage:
                indexes.add(other.index)
                networks += [other.internal_subnet, other.external_subnet]
                networks += [n for n in (other.internal_subnet6, other.external_subnet6) if n]
    return indexes, networks


def _plan(store: StateStore, cage: str, pools: tuple[subnets.SubnetPool, ...] | None) -> Topology:
    chosen = subnets.pools() if pools is None else pools
    indexes, held = _others(store, cage)
    index = next(i for i in range(len(indexes) + 1) if i not in indexes)
    internal, external = subnets.allocate_pair(chosen, held, 4)
    return Topology(cage, index, internal, external)


def preview(
    store: StateStore, cage: str, pools: tuple[subnets.SubnetPool, ...] | None = None
) -> Topology:
    """The topology the cage has, or would get now; nothing is written."""
    return load(store, cage) or _plan(store, cage, pools)


def allocate(
    store: StateStore, cage: str, pools: tuple[subnets.SubnetPool, ...] | None = None
) -> Topology:
    """The cage's topology, allocating the lowest free networks the first time."""
    with _allocation_lock(store):
        existing = load(store, cage)
        if existing is not None:
            return existing
        topology = _plan(store, cage, pools)
        store.write(cage, TOPOLOGY_FILE, json.dumps(asdict(topology), indent=2) + "\n")
        return topology
