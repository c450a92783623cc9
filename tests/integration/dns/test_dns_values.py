"""Protected values in query names: the proxy publishes fingerprints, `dns run` refuses.

Both sides are the real processes: `agentcage proxy run --name-fingerprints FILE` writes
the file from the values it holds, `agentcage dns run --name-fingerprints FILE` reads it.
"""

from __future__ import annotations

import base64
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.dns_sidecar import RunningSidecar, addresses, rcode, wait_for
from tests.support.fake_dns import ANY_V4, FakeDns
from tests.support.proxy import ProxyProcess

from agentcage.atomicfile import write_atomic
from agentcage.config import load_config
from agentcage.policy.canaries import CANARY_SEED_ENV, canary_env
from agentcage.policy.leaks.fingerprints import fingerprint_values
from agentcage.policy.leaks.protected import Protected

pytestmark = pytest.mark.integration

Start = Callable[..., RunningSidecar]
INJECTED = "sk-ant-api03-" + "Q7vX2mR9kLp4Tz8Wc1Nb6Hy3Jd5Fs0Ga" * 2 + "AA"
ROTATED = "sk-ant-api03-" + "Zr4Yq8Mn2Wx6Vb0Ct3Ks7Lg1Hp5Jd9Fe" * 2 + "AA"
KNOWN = "db-pass-9f3Kq27LmZx81VbTw04Rys"
SEED = "b7c1d2e3f4a5968778695a4b3c2d1e0f"


def _config(path: Path, upstream: FakeDns) -> Path:
    path.write_text(
        "name: values\n"
        "container: {image: 'docker.io/library/python:3.12-slim'}\n"
        "domains: {allow: [allowed.example, workers.dev, api.anthropic.com]}\n"
        f"dns_servers: ['{upstream.address}']\n"
        "logging: {dns_queries: all}\n"
        "secret_injection:\n"
        "  - {env: ANTHROPIC_API_KEY, inject_to: [api.anthropic.com]}\n"
        "secrets:\n"
        "  known: [{env: DB_PASSWORD}]\n"
        "  canaries: [{env: OPENAI_API_KEY, kind: openai}]\n"
    )
    return path


def _in_labels(text: str, zone: str) -> str:
    """`text` as DNS labels: lower case, label-safe characters only, 60 a label."""
    clean = re.sub(r"[^a-z0-9-]", "", text.lower())
    return ".".join([clean[i : i + 60] for i in range(0, len(clean), 60)] + [zone])


@pytest.fixture
def proxy(tmp_path: Path, upstream: FakeDns) -> ProxyProcess:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "ANTHROPIC_API_KEY").write_text(INJECTED)
    process = ProxyProcess(
        _config(tmp_path / "cage.yaml", upstream),
        tmp_path / "proxy",
        secrets_dir=secrets,
        env={"DB_PASSWORD": KNOWN, CANARY_SEED_ENV: SEED},
        extra_args=["--name-fingerprints", str(tmp_path / "shared" / "names.json")],
    )
    yield process.start()
    process.stop()


def test_protected_values_in_names_are_refused_and_never_leave(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start, proxy: ProxyProcess
) -> None:
    # Finding: the resolver knew no values, so these names were forwarded.
    fingerprints = tmp_path / "shared" / "names.json"
    sidecar = start_sidecar(proxy.config, args=("--name-fingerprints", str(fingerprints)))
    canary = canary_env(load_config(proxy.config), SEED)["OPENAI_API_KEY"]
    b32 = base64.b32encode(b"\x01" + INJECTED.encode()).decode().rstrip("=")
    cases = [
        ("canary:OPENAI_API_KEY", _in_labels(canary, "c.workers.dev")),
        ("known:DB_PASSWORD", _in_labels(KNOWN, "k.workers.dev")),
        ("injected:ANTHROPIC_API_KEY", _in_labels(INJECTED, "i.workers.dev")),
        ("injected:ANTHROPIC_API_KEY", _in_labels(INJECTED.encode().hex(), "h.workers.dev")),
        ("injected:ANTHROPIC_API_KEY", _in_labels(b32, "b.workers.dev")),
        ("known:DB_PASSWORD", _in_labels(KNOWN, "allowed.example")),
        ("canary:OPENAI_API_KEY", _in_labels(canary, "unlisted.example")),
    ]
    for _rule, name in cases:
        reply = sidecar.ask(name, "A")
        assert (name, rcode(reply), reply.answer) == (name, "REFUSED", [])
    records = wait_for(lambda: len(sidecar.records()) == len(cases) and sidecar.records())
    for (rule, name), record in zip(cases, records, strict=True):
        assert (record["inspector"], record["rules"]) == ("dns-values", [rule])
        role, _, env = rule.partition(":")
        assert record["reason"] == f"the name carries a protected value ({role} {env})"
        entry = "allowed.example" if name.endswith("allowed.example") else "workers.dev"
        entry = "" if name.endswith("unlisted.example") else "." + entry
        assert record["qname"] == "<redacted>" + entry  # the log never holds the value
    assert upstream.wires == []
    text = fingerprints.read_text() + sidecar.audit_log.read_text()
    for value in (canary, KNOWN, INJECTED):
        canon = re.sub(r"[^a-z0-9]", "", value.lower())
        assert not any(canon[i : i + 8] in text.lower() for i in range(len(canon) - 7))
    assert addresses(sidecar.ask("api.allowed.example")) == [ANY_V4]


def test_a_rotated_secret_is_refused_after_the_proxy_reloads(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start, proxy: ProxyProcess
) -> None:
    fingerprints = tmp_path / "shared" / "names.json"
    sidecar = start_sidecar(proxy.config, args=("--name-fingerprints", str(fingerprints)))
    rotated = _in_labels(ROTATED, "r.workers.dev")
    assert rcode(sidecar.ask(rotated, "TXT")) == "NOERROR"  # not a secret yet
    before = fingerprints.stat().st_mtime_ns
    (tmp_path / "secrets" / "ANTHROPIC_API_KEY").write_text(ROTATED)
    proxy.signal(signal.SIGHUP)
    wait_for(lambda: fingerprints.stat().st_mtime_ns != before)
    again = _in_labels(ROTATED, "r2.workers.dev")
    assert rcode(sidecar.ask(again, "TXT")) == "REFUSED"
    assert not upstream.saw("r2.workers.dev")


def test_without_fingerprints_names_that_would_leave_get_servfail(
    tmp_path: Path, upstream: FakeDns, start_sidecar: Start
) -> None:
    fingerprints = tmp_path / "shared" / "names.json"
    config = _config(tmp_path / "cage.yaml", upstream)
    sidecar = start_sidecar(config, args=("--name-fingerprints", str(fingerprints)))
    assert f"name fingerprints {fingerprints} cannot be read" in sidecar.stderr_text()
    assert rcode(sidecar.ask("early.allowed.example")) == "SERVFAIL"
    assert addresses(sidecar.ask("elsewhere.example")) == ["198.51.100.1"]  # never leaves anyway
    record = sidecar.record_for("early.allowed.example")
    assert (record["verdict"], record["inspector"]) == ("block", "dns-values")
    assert upstream.wires == []

    values = [Protected("DB_PASSWORD", KNOWN.encode(), "known")]
    write_atomic(fingerprints, fingerprint_values(values).to_json())
    assert addresses(sidecar.ask("late.allowed.example")) == [ANY_V4]
    assert rcode(sidecar.ask(_in_labels(KNOWN, "allowed.example"))) == "REFUSED"

    write_atomic(fingerprints, "{not json")
    assert rcode(sidecar.ask("broken.allowed.example")) == "SERVFAIL"
    os.unlink(fingerprints)
    assert rcode(sidecar.ask("gone.allowed.example")) == "SERVFAIL"
    assert not upstream.saw("broken.allowed.example") and not upstream.saw("gone.allowed.example")
