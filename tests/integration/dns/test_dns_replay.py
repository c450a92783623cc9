"""`agentcage policy replay` on what a real `dns run` decided: names re-judged in order."""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from tests.support.dns_sidecar import RunningSidecar, write_config
from tests.support.fake_dns import FakeDns

pytestmark = pytest.mark.integration


def _tunnel_name(zone: str) -> str:
    return f"{base64.b32encode(random.Random(3).randbytes(38)).decode().lower().rstrip('=')}.{zone}"


def test_dns_queries_are_re_judged_by_the_candidate(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Callable[..., RunningSidecar]
) -> None:
    config = write_config(tmp_path / "cage.yaml", upstream)
    sidecar = start_sidecar(config)
    tunnel = _tunnel_name("workers.dev")
    for name in ("api.allowed.example", "evil.example", tunnel, "x.workers.dev"):
        sidecar.ask(name)
    code, err = sidecar.stop()
    assert code == 0, err
    assert [r["verdict"] for r in sidecar.records()] == ["allow", "block", "flag", "allow"]

    def replay(candidate: Path) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-c", "from agentcage.cli.main import main; main()", "policy",
             "replay", "-c", str(candidate), "--json", str(sidecar.audit_log)],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        result: dict[str, object] = json.loads(done.stdout)
        return result

    same = replay(config)
    assert (same["replayed"], same["changes"]) == (4, [])
    yaml = YAML()
    data = yaml.load(config.read_text())
    data["domains"] = {"allow": ["evil.example", "workers.dev"]}
    data["dns"] = {"tunnel_action": "block"}
    candidate = tmp_path / "candidate.yaml"
    with candidate.open("w") as handle:
        yaml.dump(data, handle)
    changed = replay(candidate)
    assert [(c["qname"], c["from"], c["to"], c["inspector"]) for c in changed["changes"]] == [  # type: ignore[union-attr, index]
        ("api.allowed.example", "allow", "block", "dns-domains"),
        ("evil.example", "block", "allow", "dns-domains"),
        (tunnel, "flag", "block", "dns-tunnel"),
        # The tunnel name blocked its zone, so later names there are refused too.
        ("x.workers.dev", "allow", "block", "dns-tunnel"),
    ]
