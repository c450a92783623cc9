"""Fixtures for the end-to-end tests: the systemd harness, the fake internet and a cage."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from ruamel.yaml import YAML

from agentcage.cage.images import ImageBuilder
from tests.e2e.fake_internet import NAMES
from tests.e2e.harness import REPO, Harness

INTERNET_NETWORK = "agentcage-e2e-internet"
INTERNET_SUBNET = "10.250.0.0/24"
INTERNET_IP = "10.250.0.10"
REAL_KEY = "sk-ant-api03-e2eREALvalue0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.timeout(900))


@pytest.fixture(scope="session")
def harness() -> Iterator[Harness]:
    workdir = Path(tempfile.mkdtemp(prefix="agentcage-e2e-"))
    h = Harness(name=f"agentcage-e2e-{os.getpid()}", workdir=workdir)
    h.start()
    try:
        yield h
    finally:
        h.stop()


class Internet:
    """The fake internet's address and what arrived there."""

    def __init__(self, log_dir: Path, ca_pem: Path) -> None:
        self.log_dir = log_dir
        self.ca_pem = ca_pem
        self.ip = INTERNET_IP

    def _read(self, name: str) -> list[dict[str, object]]:
        path = self.log_dir / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def http(self) -> list[dict[str, object]]:
        return self._read("http.jsonl")

    def dns(self) -> list[dict[str, object]]:
        return self._read("dns.jsonl")


@pytest.fixture(scope="session")
def internet(harness: Harness) -> Internet:
    ca = trustme.CA()
    cert = ca.issue_cert(*NAMES)
    files = harness.shared / "internet-tls"
    files.mkdir(parents=True)
    cert.private_key_and_cert_chain_pem.write_to_path(str(files / "server.pem"))
    cert.private_key_pem.write_to_path(str(files / "key.pem"))
    ca.cert_pem.write_to_path(str(files / "ca.pem"))
    log_dir = harness.shared / "internet-log"
    log_dir.mkdir()
    base = ImageBuilder().base("debian")
    harness.exec("podman", "network", "create", "--subnet", INTERNET_SUBNET, INTERNET_NETWORK)
    python = Path(os.sys.base_prefix).resolve()  # type: ignore[attr-defined]
    harness.exec(
        "podman", "run", "-d", "--name", "fake-internet", "--pull=never",
        f"--network={INTERNET_NETWORK}:ip={INTERNET_IP}",
        "-v", f"{REPO}:{REPO}:ro", "-v", f"{python}:{python}:ro",
        "-v", f"{harness.shared}:{harness.shared}", "-w", str(REPO),
        base, str(REPO / ".venv/bin/python"), "-m", "tests.e2e.fake_internet",
        "--address", INTERNET_IP, "--cert", str(files / "server.pem"),
        "--key", str(files / "key.pem"), "--log-dir", str(log_dir),
    )  # fmt: skip
    probe = f"import socket; socket.create_connection(('{INTERNET_IP}', 443), 2)"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = harness.exec(
            "podman", "exec", "fake-internet", str(REPO / ".venv/bin/python"), "-c", probe,
            check=False,
        )  # fmt: skip
        if (log_dir / "ready").exists() and "Error" not in out:
            ok = harness.exec(
                "podman", "exec", "fake-internet", str(REPO / ".venv/bin/python"), "-c",
                probe + "; print('up')", check=False,
            )  # fmt: skip
            if "up" in ok:
                return Internet(log_dir, files / "ca.pem")
        time.sleep(0.3)
    logs = harness.exec("podman", "logs", "fake-internet", check=False)
    raise AssertionError(f"the fake internet did not come up:\n{logs}")


def e2e_config(harness: Harness, command: list[str]) -> Path:
    """examples/basic/config.yaml, pointed at the fake internet, with test mounts added."""
    yaml = YAML(typ="safe")
    data = yaml.load((REPO / "examples/basic/config.yaml").read_text())
    container = data["container"]
    container["command"] = command
    container["volumes"] = [
        f"{REPO}/examples/basic/agent:/app:ro",
        f"{REPO}/tests/e2e:/e2e:ro",
        f"{REPO}/.venv/lib/python3.11/site-packages:/e2e-site:ro",
    ]
    data["dns_servers"] = [INTERNET_IP]
    data["network"] = {"allow_cidrs": [INTERNET_SUBNET]}
    path = harness.shared / "basic.yaml"
    path.write_text(json.dumps(data, indent=2))
    return path


# The agent idles so tests can exec their scenarios in it; it stops cleanly on SIGTERM.
IDLE = [
    "python3",
    "-c",
    "import signal, time; signal.signal(signal.SIGTERM, lambda *a: exit(0)); time.sleep(86400)",
]


@pytest.fixture(scope="session")
def cage(harness: Harness, internet: Internet) -> Iterator[str]:
    config = e2e_config(harness, IDLE)
    result = harness.agentcage(
        "cage", "create", "-c", str(config), "--upstream-ca", str(internet.ca_pem)
    )
    assert result.returncode == 0, result.stderr
    result = harness.agentcage("secret", "set", "basic", "ANTHROPIC_API_KEY", input=REAL_KEY)
    assert result.returncode == 0, result.stderr
    yield "basic"
    harness.agentcage("cage", "destroy", "basic", "-y")
