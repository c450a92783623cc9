"""The blocked-zones file: round trip, and refusal of anything it cannot trust."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.dns.blocklog import BlockedZonesFile
from agentcage.errors import DnsError


def test_missing_file_means_no_zones_and_saving_round_trips(tmp_path: Path) -> None:
    kept = BlockedZonesFile(tmp_path / "state" / "zones.json")
    assert kept.load() == set()
    kept.save({"evil.workers.dev", "t.attacker.example"})
    assert kept.load() == {"evil.workers.dev", "t.attacker.example"}
    assert not list((tmp_path / "state").glob(".*"))  # no temp file left behind


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "is not a blocked-zones file"),
        ('{"v": 2, "zones": []}', "expected a version 1 object"),
        ('{"v": 1}', "is not a blocked-zones file ('zones')"),
        ('{"v": 1, "zones": "evil.example"}', "'zones' must be a list of names"),
        ('{"v": 1, "zones": ["bad name.example"]}', "is not a domain name"),
    ],
)
def test_a_file_that_cannot_be_trusted_stops_dns(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "zones.json"
    path.write_text(text)
    with pytest.raises(DnsError, match="not starting DNS") as caught:
        BlockedZonesFile(path).load()
    assert problem in caught.value.message
    assert caught.value.hint == "fix the file, or delete it to unblock every zone"


def test_a_file_that_cannot_be_written_stops_dns(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(DnsError, match="fail closed"):
        BlockedZonesFile(blocker / "zones.json").save({"evil.example"})
