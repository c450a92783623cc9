"""`agentcage cage status` against a cage whose proxy and DNS sidecar really run.

The cage's state is made by `Cages.create` (systemd and Podman faked, their answers
canned); its sidecars are real `proxy run` and `dns run` processes serving metrics on
the sockets of the cage's state directory, exactly as the units start them.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentcage.cage import layout, remote_hosts
from agentcage.cage.contract import METRICS_SOCKET_MODE, SIDECAR_CONFIG_NAME
from agentcage.cage.lifecycle import Cages
from agentcage.cli.main import cli
from agentcage.config import policy_version
from tests.integration.proxy.conftest import agent_client
from tests.support.dns_sidecar import RunningSidecar, wait_for
from tests.support.fake_dns import FakeDns
from tests.support.plugin import fake_ca, fake_dns, upstream  # noqa: F401
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream
from tests.unit.cage.fakes import FakeSystemdPodman, make_cages, ok

pytestmark = pytest.mark.integration

DIGEST = "sha256:" + "d1" * 32


def _inspected(cage: str) -> str:
    """What `podman container inspect` says of the three containers (canned)."""
    rows = []
    for role in ("dns", "proxy", "agent"):
        rows.append(
            {
                "Name": f"agentcage-{cage}-{role}",
                "State": {
                    "Status": "running",
                    "StartedAt": "2026-12-05T09:00:00.123456789Z",
                    "Health": {"Status": "" if role == "agent" else "healthy"},
                },
                "ImageName": f"localhost/agentcage-{role}:t",
                "Image": "ab" * 32,
                "ImageDigest": DIGEST,
            }
        )
    return json.dumps(rows)


class Cage:
    def __init__(self, cages: Cages, runner: FakeSystemdPodman) -> None:
        self.cages = cages
        self.runner = runner
        self.paths = layout.host_paths(cages.store, "demo")
        self.config = self.paths.sidecar_config_dir / SIDECAR_CONFIG_NAME
        self.proxy: ProxyProcess
        self.dns: RunningSidecar

    def status(self, *args: str) -> str:
        result = CliRunner().invoke(cli, ["cage", "status", "demo", *args])
        assert result.exit_code == 0, result.output
        return result.output


@pytest.fixture
def cage(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_dns: FakeDns,  # noqa: F811
    upstream: Upstream,  # noqa: F811
) -> Iterator[Cage]:
    runner = FakeSystemdPodman()
    runner.answers[("podman", "container", "inspect")] = ok(_inspected("demo"))
    cages, _ = make_cages(tmp_path, runner)
    config = tmp_path / "demo.yaml"
    config.write_text(
        "name: demo\ncontainer: {image: localhost/agent:t}\n"
        "domains: {allow: [github.com]}\n"
        f'dns_servers: ["{fake_dns.address}"]\n'
        "network:\n  allow_cidrs: [127.0.0.1/32]\n"
        # Only 80 and 443 are open by default; the test server has a free port.
        f"  ports: [{{host: github.com, port: {upstream.tls_port}}}]\n"
    )
    cages.create(config)
    monkeypatch.setattr(remote_hosts, "facade", lambda *a, **k: cages)
    found = Cage(cages, runner)
    sockets = found.paths.metrics_sockets()
    proxy = ProxyProcess(
        found.config,
        tmp_path,
        upstream_ca=upstream.ca_pem,
        extra_args=[
            "--metrics", f"unix:{sockets['proxy']}", "--metrics-socket-mode", METRICS_SOCKET_MODE,
        ],
    ).start()  # fmt: skip
    dns = RunningSidecar(
        found.config,
        tmp_path / "dns.jsonl",
        args=["--metrics", f"unix:{sockets['dns']}", "--metrics-socket-mode", METRICS_SOCKET_MODE],
    )
    with agent_client(proxy) as http:
        assert http.get(f"https://github.com:{upstream.tls_port}/x").status_code == 200
        assert http.get(f"https://attacker.example:{upstream.tls_port}/x").status_code == 403
    dns.ask("github.com")
    dns.ask("evil.example")
    found.proxy, found.dns = proxy, dns
    yield found
    assert proxy.stop() == 0, proxy.stderr
    assert dns.stop()[0] == 0


def test_status_reports_services_images_policy_and_the_last_hour(cage: Cage) -> None:
    cage.runner.calls.clear()
    report = json.loads(cage.status("--json"))
    # One call to each of systemd and Podman, whatever the number of services.
    assert len(cage.runner.commands("systemctl")) == 1
    assert len(cage.runner.commands("podman")) == 1
    assert report["name"] == "demo" and report["state"] == "active"
    assert report["checked_at"].endswith("+00:00")
    services = {s["role"]: s for s in report["services"]}
    assert list(services) == ["dns", "proxy", "agent"]
    assert services["proxy"]["state"] == "active"
    assert services["proxy"]["health"] == "healthy"
    assert services["agent"]["health"] is None  # no health check: said, not invented
    assert services["dns"]["started_at"] == "2026-12-05T09:00:00+00:00"
    assert services["dns"]["image"] == "localhost/agentcage-dns:t"
    assert services["dns"]["image_digest"] == DIGEST
    version = policy_version(cage.config)
    assert report["policy"] == {"version": version, "current": True}
    proxy, dns = report["metrics"]["proxy"], report["metrics"]["dns"]
    assert proxy["error"] is None and proxy["policy_version"] == version
    assert proxy["last_hour"] == {"allow": 1, "flag": 0, "block": 1}
    assert dns["last_hour"]["allow"] == 1
    assert dns["last_hour"]["block"] >= 1
    # AGENTCAGE_SYSTEMD_EXEC is not set here; the config opens loopback to the proxy.
    assert report["weakened"] == [
        "the proxy may connect to special-purpose ranges 127.0.0.1/32 (network.allow_cidrs)"
    ]


def test_a_policy_not_yet_reloaded_shows_until_the_sidecars_reload(cage: Cage) -> None:
    cage.config.write_text(cage.config.read_text() + "\n")
    text = cage.status()
    assert "deployed; running: proxy " in text
    assert "`agentcage cage reload demo` loads it" in text
    cage.proxy.signal(signal.SIGHUP)
    cage.dns.hup()
    wait_for(lambda: json.loads(cage.status("--json"))["policy"]["current"], timeout=15)
    text = cage.status()
    assert f"policy: {policy_version(cage.config)}, loaded by proxy and dns" in text
    assert "WEAKENED:\n  - the proxy may connect" in text


def test_a_stopped_sidecar_is_reported_not_fatal(cage: Cage) -> None:
    assert cage.dns.stop()[0] == 0
    report = json.loads(cage.status("--json"))
    assert report["metrics"]["dns"]["last_hour"] is None
    assert "no metrics socket" in report["metrics"]["dns"]["error"]
    assert report["metrics"]["proxy"]["last_hour"]["block"] == 1
    assert report["policy"]["current"] is False
    assert "dns      metrics unreadable: no metrics socket" in cage.status()
