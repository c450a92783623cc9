"""Per-zone budgets: a tunnel runs out of new names, a normal agent never does."""

from __future__ import annotations

from agentcage.config.schema import DnsConfig
from agentcage.dns.budget import MAX_TRACKED_ZONES, ZoneBudgets
from agentcage.dns.names import DomainSet, below
from tests.unit.dns.test_tunnel import NORMAL


def _admit(budgets: ZoneBudgets, zone: str, name: str, now: float = 0.0) -> str | None:
    labels = [label for label in below(name, zone).split(".") if label]
    return budgets.admit(zone, name, labels, now)


def test_a_busy_agent_resolving_normal_names_never_spends_a_budget() -> None:
    budgets = ZoneBudgets(DnsConfig())
    domains = DomainSet(entry for _, entry in NORMAL)
    for second in range(7200):  # two hours of every normal name, every second
        for qname, _ in NORMAL:
            zone = domains.match(qname)
            assert zone is not None and _admit(budgets, zone, qname, second) is None


def test_names_over_the_budget_are_refused_but_known_ones_go_on() -> None:
    budgets = ZoneBudgets(DnsConfig(max_unique_subdomains=10, unique_window=60))
    assert [_admit(budgets, "x.dev", f"n{i}.x.dev") for i in range(10)] == [None] * 10
    assert _admit(budgets, "x.dev", "n10.x.dev") == (
        "budget of 10 distinct names under x.dev within 60s spent"
    )
    assert _admit(budgets, "x.dev", "n3.x.dev") is None
    assert _admit(budgets, "y.dev", "n10.y.dev") is None  # another zone, another budget


def test_labels_have_their_own_budget() -> None:
    budgets = ZoneBudgets(DnsConfig(max_unique_labels=10))
    assert _admit(budgets, "x.dev", "a.b.c.d.e.x.dev") is None
    assert _admit(budgets, "x.dev", "a.b.c.d.e.f.x.dev") is None  # one new label: 6 of 10
    refused = _admit(budgets, "x.dev", "g.h.i.j.k.x.dev")  # five more would make 11
    assert refused == "budget of 10 distinct labels under x.dev within 3600s spent"
    assert _admit(budgets, "x.dev", "f.e.d.c.b.a.x.dev") is None  # old labels, new name


def test_the_window_slides() -> None:
    budgets = ZoneBudgets(DnsConfig(max_unique_subdomains=10, unique_window=60))
    for i in range(10):
        _admit(budgets, "x.dev", f"n{i}.x.dev", now=i)
    assert _admit(budgets, "x.dev", "late.x.dev", now=59.5) is not None
    assert _admit(budgets, "x.dev", "late.x.dev", now=60.5) is None  # n0 expired at 60
    assert _admit(budgets, "x.dev", "later.x.dev", now=60.6) is not None


def test_memory_is_bounded() -> None:
    budgets = ZoneBudgets(DnsConfig(max_unique_subdomains=10))
    for i in range(1000):
        _admit(budgets, "x.dev", f"n{i}.x.dev")
    assert len(budgets._zones["x.dev"].names.last) == 10
    for i in range(MAX_TRACKED_ZONES + 50):
        _admit(budgets, f"z{i}.dev", f"a.z{i}.dev")
    assert len(budgets._zones) == MAX_TRACKED_ZONES
