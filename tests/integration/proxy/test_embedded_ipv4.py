"""A permitted name answering an IPv6 address that embeds an internal IPv4 is refused.

NAT64 (64:ff9b::a9fe:a9fe reaches 169.254.169.254 through a gateway), its local-use
prefix, IPv4-compatible, IPv4-translated, 6to4 and site-local answers. The proxy runs
inside its own network namespace, so a regression finds no route instead of sending
packets to these addresses.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.proxy.embedded_ipv4_probe import ATTACKS, CONTROL
from tests.support.netns import isolated

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
PROBE = "tests.integration.proxy.embedded_ipv4_probe"
# What each refusal must say the address is.
MEANS = {
    "nat64.internal.example": "embeds 169.254.169.254 (NAT64), a cloud metadata address",
    "nat64-local.internal.example": "embeds 10.0.0.1 (local-use NAT64), a private address",
    "compatible.internal.example": "embeds 169.254.169.254 (IPv4-compatible)",
    "translated.internal.example": "embeds 169.254.169.254 (IPv4-translated)",
    "sixtofour.internal.example": "embeds 169.254.169.254 (6to4)",
    "site-local.internal.example": "is a deprecated site-local address",
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("embedded") / "report.json"
    done = subprocess.run(
        isolated([sys.executable, "-m", PROBE, str(out)]),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def test_every_attack_is_checked() -> None:
    assert sorted(MEANS) == sorted(ATTACKS)


def test_the_control_request_arrives(report: dict[str, object]) -> None:
    answers = report["answers"]
    assert isinstance(answers, dict)
    assert answers[CONTROL]["status"] == 200
    assert report["exit_code"] == 0, report["stderr"]


@pytest.mark.parametrize(("name", "address"), sorted(ATTACKS.items()))
def test_embedded_ipv4_answer_is_refused_before_connect(
    report: dict[str, object], name: str, address: str
) -> None:
    answers = report["answers"]
    assert isinstance(answers, dict)
    assert answers[name]["status"] == 403, answers[name]
    body = json.loads(answers[name]["text"])
    assert body["inspector"] == "egress"
    assert f"{address} {MEANS[name]}" in body["reason"]
    assert "network.allow_cidrs" in body["reason"]
    assert [name, "AAAA"] in report["queries"]  # type: ignore[operator]
    audit = report["audit"]
    assert isinstance(audit, list)
    lines = [line for line in audit if line.get("path") == f"/{name}"]
    assert [(line["verdict"], line["inspector"]) for line in lines] == [("block", "egress")]
    assert lines[0]["reason"] == body["reason"]
    received = report["received"]
    assert isinstance(received, list)
    assert received == [f"/{CONTROL}"]
