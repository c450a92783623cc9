"""The DNS sidecar's checked plan: the schema's values, read back strictly."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from agentcage.config import load_config, policy_version
from agentcage.dns.plan import DnsPlan, checked_plan, plan_json, read_plan
from agentcage.errors import ConfigError, DnsError
from tests.unit.dns.builders import cage_config

CONFIG = """\
name: plan
container: {image: docker.io/library/python:3.12-slim}
domains: {enforcement: learn, allow: [allowed.example, 10.0.0.0/8]}
dns_servers: ["127.0.0.1:5300", "[2001:db8::53]:5353"]
network: {allow_cidrs: [10.9.0.0/24, "fd00::/64"]}
dns: {tunnel_action: block, random_run_entropy: 4.5, max_blocked_zones: 7}
logging: {dns_queries: all, audit_max_bytes: 1MB, audit_keep: 3}
"""


def _plan_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(plan_json("v1", DnsPlan.of(cage_config())))
    return data


def test_a_plan_keeps_every_value_the_sidecar_reads(tmp_path: Path) -> None:
    path = tmp_path / "cage.yaml"
    path.write_text(CONFIG)
    config = load_config(path)
    version, plan = read_plan(plan_json("v1", DnsPlan.of(config)))
    assert (version, plan) == ("v1", DnsPlan.of(config))
    assert plan.name == "plan"
    assert (plan.domains.mode, plan.domains.learning) == ("allowlist", True)
    assert plan.domains.learn_notice == config.domains.learn_notice != ""
    assert plan.domains.entries == tuple(config.domains.entries)
    assert plan.network.allow_cidrs == (
        ipaddress.ip_network("10.9.0.0/24"),
        ipaddress.ip_network("fd00::/64"),
    )
    assert plan.dns == DnsPlan.of(config).dns
    assert (plan.dns.tunnel_action, plan.dns.random_run_entropy) == ("block", 4.5)
    assert plan.dns.max_blocked_zones == 7
    assert (plan.logging.dns_queries, plan.logging.audit_keep) == ("all", 3)
    assert plan.logging.audit_max_bytes == config.logging.audit_max_bytes
    assert plan.effective_dns_servers() == ["127.0.0.1:5300", "[2001:db8::53]:5353"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.update(version=2), "version 2"),
        (lambda d: d.pop("policy_version"), "exactly the keys"),
        (lambda d: d.update(policy_version=1), "policy_version is not str"),
        (lambda d: d["plan"].pop("servers"), "exactly the keys"),
        (lambda d: d["plan"]["dns"].pop("unique_window"), "plan.dns does not have exactly"),
        (lambda d: d["plan"].update(extra=1), "exactly the keys"),
        (lambda d: d["plan"]["dns"].update(unique_window="60"), "dns.unique_window is not int"),
        (lambda d: d["plan"]["dns"].update(max_blocked_zones=True), "max_blocked_zones"),
        (lambda d: d["plan"]["dns"].update(random_run_entropy="4"), "is not int or float"),
        (lambda d: d["plan"]["domains"].update(entries=[1]), "entries holds"),
        (lambda d: d["plan"]["network"].update(allow_cidrs=["10.0.0.1/8"]), "host bits"),
        (lambda d: d["plan"].update(logging=[]), "plan.logging is not dict"),
    ],
)
def test_a_damaged_plan_is_refused(change: Any, words: str) -> None:
    data = _plan_json()
    change(data)
    with pytest.raises(DnsError) as err:
        read_plan(json.dumps(data))
    assert words in err.value.message


def test_not_json_is_refused() -> None:
    with pytest.raises(DnsError, match="cannot be read"):
        read_plan("{")


def test_the_check_answers_what_load_config_does(tmp_path: Path) -> None:
    path = tmp_path / "cage.yaml"
    path.write_text(CONFIG)
    version, plan = checked_plan(path)
    assert version == policy_version(path)
    assert plan == DnsPlan.of(load_config(path))


@pytest.mark.parametrize(
    "text",
    [
        "name: x\ncontainer: {image: a}\ndomains: {allow: ['evil.com/path']}\n",
        "name: x\n  bad: [indent\n",
        None,  # a missing file
    ],
)
def test_a_refused_config_gives_the_same_words_and_exit_code(
    tmp_path: Path, text: str | None
) -> None:
    path = tmp_path / "bad.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError) as expected:
        load_config(path)
    with pytest.raises(ConfigError) as got:
        checked_plan(path)
    assert got.value.diagnostics() == expected.value.diagnostics()
    assert got.value.exit_code == expected.value.exit_code == 2


def test_a_check_that_cannot_answer_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cage.yaml"
    path.write_text(CONFIG)
    monkeypatch.setattr("agentcage.dns.plan.CHECK_MODULE", "agentcage.no_such_module")
    with pytest.raises(DnsError, match=r"failed \(exit status 1\).*No module named"):
        checked_plan(path)
