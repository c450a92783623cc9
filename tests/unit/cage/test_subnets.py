"""The subnet plan: at least 1,000 cages per host, configurable pools, clear when full."""

from __future__ import annotations

import ipaddress
import itertools
import json
from pathlib import Path

import pytest

from agentcage.cage import subnets, topology
from agentcage.cage.state import StateStore
from agentcage.errors import StateError
from tests.unit.cage.fakes import FakeSystemdPodman, make_cages, write_config


def _pools(text: str) -> tuple[subnets.SubnetPool, ...]:
    return subnets.pools({subnets.POOLS_ENV: text})


def test_the_default_pool_holds_over_a_thousand_cages_without_overlap() -> None:
    # Two /24s per cage from 10.213.0.0/16 held 128 cages.
    (pool,) = subnets.pools({}, rootless=False)
    assert pool.capacity == 2048
    held = [str(net) for pair in itertools.islice(pool.pairs(), 1500) for net in pair]
    networks = {ipaddress.ip_network(n) for n in held}
    assert len(networks) == 3000
    assert all(n.prefixlen == 28 and n.subnet_of(pool.network) for n in networks)  # type: ignore[arg-type]
    assert not any(a.overlaps(b) for a, b in itertools.pairwise(sorted(networks)))  # type: ignore[type-var]
    # The 1,501st cage gets the next two free networks.
    assert subnets.allocate_pair((pool,), held, 4) == ("10.213.187.128/28", "10.213.187.144/28")


def test_a_full_pool_is_named_in_the_error() -> None:
    chosen = _pools("10.9.0.0/26")  # four /28s: two cages
    held: list[str] = []
    for _ in range(2):
        held += subnets.allocate_pair(chosen, held, 4)
    with pytest.raises(StateError, match=r"subnet pool 10\.9\.0\.0/26 is full") as raised:
        subnets.allocate_pair(chosen, held, 4)
    assert subnets.POOLS_ENV in (raised.value.hint or "")


def test_pools_are_used_in_order_and_networks_cages_hold_are_skipped() -> None:
    chosen = _pools("10.9.0.0/26, 10.8.0.0/16")
    # A cage from before the plan holds a /24 that covers the first pool.
    assert subnets.allocate_pair(chosen, ["10.9.0.0/24"], 4) == ("10.8.0.0/28", "10.8.0.16/28")
    # One holding a single /28 blocks only the pair it sits in.
    assert subnets.allocate_pair(chosen, ["10.9.0.16/28"], 4) == ("10.9.0.32/28", "10.9.0.48/28")


def test_ipv6_pools_are_refused_while_units_attach_only_ipv4() -> None:
    with pytest.raises(StateError, match="fd00:ac:ce::/48 is an IPv6 pool") as raised:
        _pools("10.213.0.0/16,fd00:ac:ce::/48")
    assert "IPv4 CIDRs only" in (raised.value.hint or "")


def test_rootful_and_rootless_cages_draw_from_disjoint_default_pools() -> None:
    # Each user's cages are in that user's own state: neither sees the other's networks.
    (rootful,) = subnets.pools({}, rootless=False)
    (rootless,) = subnets.pools({}, rootless=True)
    assert not rootful.network.overlaps(rootless.network)  # type: ignore[arg-type]
    assert rootless.capacity == rootful.capacity == 2048
    both = _pools("10.9.0.0/16")
    assert subnets.pools({subnets.POOLS_ENV: "10.9.0.0/16"}, rootless=True) == both


@pytest.mark.parametrize(
    ("text", "message"),
    [("10.213.0.0/33", "is not a network"), ("10.0.0.0/28", "too small"), ("fd00::/48", "IPv6")],
)
def test_unusable_pools_are_refused(text: str, message: str) -> None:
    with pytest.raises(StateError, match=message):
        _pools(text)


def test_cages_get_small_networks_and_keep_their_old_ones(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    # A cage made before the plan: two /24s, agent at .100.
    old = {"cage": "old", "index": 0, "internal_subnet": "10.213.0.0/24",
           "external_subnet": "10.213.1.0/24"}  # fmt: skip
    store.write("old", topology.TOPOLOGY_FILE, json.dumps(old))
    assert topology.allocate(store, "old").agent_ip == "10.213.0.100"
    chosen = _pools("10.213.0.0/16")
    new = topology.allocate(store, "new", chosen)
    assert (new.internal_subnet, new.external_subnet) == ("10.213.2.0/28", "10.213.2.16/28")
    assert (new.dns_ip, new.proxy_ip, new.agent_ip) == ("10.213.2.2", "10.213.2.3", "10.213.2.14")
    assert new.internal_subnet6 == new.external_subnet6 == ""  # no IPv6 is attached
    assert topology.allocate(store, "new") == new  # stored, so an update keeps it


def test_create_in_a_full_pool_names_it_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(subnets.POOLS_ENV, "10.9.0.0/27")  # one cage
    cages, _ = make_cages(tmp_path, FakeSystemdPodman())
    cages.create(write_config(tmp_path, "one"), base="debian")
    with pytest.raises(StateError, match=r"subnet pool 10\.9\.0\.0/27 is full"):
        cages.create(write_config(tmp_path, "two"), base="debian")
    assert cages.store.names() == ["one"]
