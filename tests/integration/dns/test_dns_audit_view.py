"""`agentcage audit --file` on what a real `dns run` wrote: one row per query."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.dns_sidecar import RunningSidecar, write_config
from tests.support.fake_dns import FakeDns

pytestmark = pytest.mark.integration


def test_dns_decisions_are_rows_with_their_answer(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Callable[..., RunningSidecar]
) -> None:
    sidecar = start_sidecar(write_config(tmp_path / "cage.yaml", upstream))
    sidecar.ask("api.allowed.example")
    sidecar.ask("evil.example", "TXT")
    sidecar.ask("evil.example")
    code, err = sidecar.stop()
    assert code == 0, err
    shown = subprocess.run(
        [sys.executable, "-c", "from agentcage.cli.main import main; main()", "audit", "--file",
         str(sidecar.audit_log)],
        capture_output=True, text=True, timeout=30, check=True, env={**os.environ, "TZ": "UTC"},
    )  # fmt: skip
    rows = [line.split(None, 7) for line in shown.stdout.splitlines()[1:]]
    assert [row[2:] for row in rows] == [
        [
            "allow",
            "dns-domains",
            "dns/A",
            "api.allowed.example",
            "forwarded",
            "in allowlist (allowed.example)",
        ],
        ["block", "dns-domains", "dns/TXT", "evil.example", "REFUSED", "not in allowlist"],
        ["block", "dns-domains", "dns/A", "evil.example", "NOERROR", "not in allowlist"],
    ]
