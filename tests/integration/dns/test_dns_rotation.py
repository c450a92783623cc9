"""The DNS sidecar's audit log rotates by size, every query's line in exactly one file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.dns_sidecar import RunningSidecar, rcode, write_config
from tests.support.fake_dns import FakeDns

from agentcage.audit.logfiles import generations

pytestmark = pytest.mark.integration


def test_the_dns_audit_log_rotates_by_size(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Callable[..., RunningSidecar]
) -> None:
    config = write_config(
        tmp_path / "cage.yaml",
        upstream,
        logging={"dns_queries": "all", "audit_max_bytes": 2048, "audit_keep": 100},
    )
    sidecar = start_sidecar(config)
    names = [f"host{n}.allowed.example" for n in range(30)] + ["evil.example"]
    answers = [rcode(sidecar.ask(name)) for name in names]
    code, err = sidecar.stop()
    assert code == 0, err
    assert answers == ["NOERROR"] * 31  # the blocked name is sinkholed
    files = generations(sidecar.audit_log)
    assert len(files) > 3
    assert all(path.stat().st_size <= 2048 for path in files)
    records = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    assert sorted(r["qname"] for r in records) == sorted(names)
    assert [r["qname"] for r in records if r["verdict"] == "block"] == ["evil.example"]
