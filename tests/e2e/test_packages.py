"""Everyday package managers through a real cage, against registries served by the test.

npm, pip, uv, apt and git run inside a cage whose config is a user's: the default
inspection chain, an allowlist of the registries' real names and the test's CA. Each run
must install (or clone and push) completely, with zero blocks, flags and 429s in the
audit log, every request that reached a registry audited, and every request the run needs
answered by the registry. CI runs one representative run per tool;
`AGENTCAGE_E2E_PACKAGES=full` adds the rest of tests/e2e/package_runs.py.

The last tests force a refusal (a tiny `reads` budget, a registry removed from the
allowlist) and check that the audit line and `agentcage cage logs` name the fix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e import registries
from tests.e2e.harness import Harness, Internet
from tests.e2e.package_cage import CAGE, Window, cage_config, deploy, in_agent
from tests.e2e.package_runs import FULL_RUNS, PIP, REPRESENTATIVE, PackageRun
from tests.e2e.registries import gitrepo, pypi

RUNS = FULL_RUNS if registries.FULL else REPRESENTATIVE


@pytest.fixture(scope="module")
def pkg_cage(harness: Harness, internet: Internet) -> Iterator[str]:
    deploy(harness, internet, "create", cage_config(internet))
    try:
        yield CAGE
    finally:
        harness.agentcage("cage", "destroy", CAGE, "-y")


@pytest.mark.parametrize("run", RUNS, ids=[r.id for r in RUNS])
def test_package_manager_runs_through_the_cage_untouched(
    harness: Harness, internet: Internet, pkg_cage: str, run: PackageRun
) -> None:
    window = Window(harness, internet)
    result = in_agent(harness, f"{run.script}\necho RUN-DONE", run.user)
    records = [r for r in window.audit() if r["kind"] in ("http", "response", "websocket")]
    everything = [*window.audit(), *window.audit("dns")]
    # A tool that fails on a refusal prints only the status (git: "HTTP 403"): the
    # audit's lines (or the registry's own answers) say who refused, so a failure that
    # does not recur still says why.
    assert result.rstrip().endswith("RUN-DONE"), (
        f"{run.id} failed:\n{result[-4000:]}\n"
        f"audit, not allowed: {[r for r in everything if r.get('verdict') != 'allow'][:5]}\n"
        f"registries, not 2xx: {[r for r in window.received() if int(r['status']) >= 300][:5]}"
    )
    refused = [f"{r['method']} {r['host']}{r['path']}: {r['reason']}" for r in records
               if r["verdict"] == "block"]  # fmt: skip
    assert not refused, f"{run.id}: {len(refused)} refused, e.g. {refused[:5]}"
    flagged = [f"{r['host']}{r['path']}: {r['reason']}" for r in records if r["verdict"] == "flag"]
    assert not flagged, f"{run.id}: {len(flagged)} flagged, e.g. {flagged[:5]}"
    too_many = [r for r in records if r.get("extra", {}).get("status") == 429]
    assert not too_many, too_many[:3]
    dns_blocks = [r for r in window.audit("dns") if r["verdict"] == "block"]
    assert not dns_blocks, dns_blocks[:3]
    received = window.received()
    answered = {(r["host"], r["path"]) for r in received if 200 <= int(r["status"]) < 300}
    missing = run.expected(internet.registries) - answered
    assert not missing, f"{run.id}: {len(missing)} never answered, e.g. {sorted(missing)[:5]}"
    # Every request that reached a registry was audited first, and nothing else went out.
    arrived = Counter(r["host"] for r in received)
    audited = Counter(r["host"] for r in records if r["kind"] == "http")
    assert arrived == audited, (arrived, audited)
    assert set(arrived) <= set(run.hosts), arrived
    if run.id == "git":  # the remote holds the agent's commit
        pushed = result.split("pushed ")[-1].split()[0]
        assert gitrepo.head(internet.registries.git) == pushed


def refused(harness: Harness, window: Window, run: PackageRun) -> tuple[str, list[dict[str, Any]]]:
    """Run a package manager the cage refuses something; its output and the audit's blocks."""
    out = in_agent(harness, run.script)
    return out, [r for r in window.audit() if r["verdict"] == "block"]


def proxy_log(harness: Harness) -> str:
    logs = harness.agentcage("cage", "logs", CAGE, "-s", "proxy")
    assert logs.returncode == 0, logs.stderr
    return logs.stdout


def test_a_registry_missing_from_the_allowlist_is_named_with_the_fix(
    harness: Harness, internet: Internet, pkg_cage: str
) -> None:
    removed = harness.agentcage("domain", "rm", CAGE, pypi.FILES_HOST)
    assert removed.returncode == 0, removed.stderr
    try:
        window = Window(harness, internet)
        out, blocks = refused(harness, window, PIP)
    finally:
        added = harness.agentcage("domain", "add", CAGE, pypi.FILES_HOST)
        assert added.returncode == 0, added.stderr
    assert "403" in out, out[-2000:]
    assert blocks and {(r["host"], r["inspector"]) for r in blocks} == {(pypi.FILES_HOST, "domain")}
    assert "add it to domains.allow (`agentcage domain add`)" in blocks[0]["reason"]
    assert not [r for r in window.received() if r["host"] == pypi.FILES_HOST]
    told = [line for line in proxy_log(harness).splitlines() if f"GET {pypi.FILES_HOST}/" in line]
    assert told and "(domain): " in told[-1] and "domains.allow" in told[-1], told


def test_a_429_names_the_budget_and_the_key_to_raise(
    harness: Harness, internet: Internet, pkg_cage: str
) -> None:
    # Last in the module: the cage is redeployed with a `reads` budget pip cannot fit in.
    tight = cage_config(internet, rate_limit={"reads": {"per_second": 5, "burst": 10}})
    deploy(harness, internet, "update", tight)
    window = Window(harness, internet)
    out, blocks = refused(harness, window, PIP)
    hosts = {pypi.INDEX_HOST, pypi.FILES_HOST}  # one budget each
    assert blocks and {r["host"] for r in blocks} <= hosts
    assert {tuple(r["rules"]) for r in blocks} == {("rate-limit:reads",)}
    for block in blocks:
        assert f"(burst 10) to {block['host']}; " in block["reason"]
        assert "raise rate_limit.reads.per_second or .burst" in block["reason"]
    told = [line for line in proxy_log(harness).splitlines() if "(rate-limit): " in line]
    assert told and "raise rate_limit.reads.per_second" in told[0], told
    # No refused request reached the index, and pip (urllib3) honoured Retry-After:
    # it waited and asked again, so the install still completed, only slower.
    allowed = [r for r in window.audit() if r["kind"] == "http" and r["verdict"] == "allow"]
    assert Counter(r["host"] for r in window.received()) == Counter(r["host"] for r in allowed)
    assert "Successfully installed" in out, out[-2000:]
