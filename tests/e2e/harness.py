"""A real systemd with Podman, in a privileged container, for end-to-end cage tests.

`Harness` stands for a machine with systemd as PID 1: it starts the container itself
(the image scripts/setup-host builds) and `agentcage` reaches it with
AGENTCAGE_SYSTEMD_EXEC="podman exec -i NAME" and AGENTCAGE_QUADLET_DIR. It reads the
host's images through an additional read-only image store; the repository, the cage
state directory and the quadlet directory are bind-mounted at the same paths. The Debian
12 host (podman43.py) and the host matrix's podman5 case use it; the session's host is a
`HostStartHarness` (host_start.py), made with `agentcage host start`. The fake internet,
the e2e config and the checks that nothing is left work with both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from ruamel.yaml import YAML

from agentcage.cage.images import ImageBuilder
from agentcage.cage.podman import SubprocessRunner
from tests.e2e.fake_internet import NAMES
from tests.e2e.registries import Registries
from tests.e2e.registries import build as build_registries
from tests.e2e.tools_image import tools_image
from tests.support.audit_lines import whole_records

IMAGE = "localhost/agentcage-harness:latest"
REPO = Path(__file__).resolve().parents[2]
# Captured at import, before the autouse fixture strips proxy/CA variables: image builds
# reach PyPI and Debian through this machine's own egress settings.
BUILD_ENV = dict(os.environ)
INTERNET_NETWORK = "agentcage-e2e-internet"
INTERNET_SUBNET = "10.250.0.0/24"
INTERNET_IP = "10.250.0.10"
# `test_remote.py` against the Debian VM under TCG instead of a container (docs/remote.md).
REMOTE_VM_FULL = os.environ.get("AGENTCAGE_REMOTE_VM_FULL") == "1"
# The one knob for slow targets: every e2e timeout and readiness wait is multiplied by it.
SLOWDOWN = 4 if REMOTE_VM_FULL else 1
# The agent serves its /app directory on AGENT_PORT, published on the harness's loopback.
AGENT_PORT = 8000
PUBLISHED_PORT = 18789


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 600, **kw: object) -> str:
    timeout *= SLOWDOWN
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    return str(proc.stdout)


@dataclass
class Harness:
    name: str
    workdir: Path
    image: str = IMAGE

    @property
    def config_home(self) -> Path:
        return self.workdir / "config"

    @property
    def quadlet_dir(self) -> Path:
        return self.workdir / "quadlet"

    @property
    def shared(self) -> Path:
        """Bind-mounted at the same path inside: logs, certificates, configs."""
        return self.workdir / "shared"

    def env(self) -> dict[str, str]:
        return {
            **BUILD_ENV,
            "XDG_CONFIG_HOME": str(self.config_home),
            "AGENTCAGE_SYSTEMD_EXEC": f"podman exec -i {self.name}",
            "AGENTCAGE_QUADLET_DIR": str(self.quadlet_dir),
            "AGENTCAGE_IMAGE_BASE": "debian",
        }

    def unreachable(self) -> dict[str, str | None]:
        """Changes to env() after which agentcage cannot reach this host's systemd."""
        return {"AGENTCAGE_SYSTEMD_EXEC": None}  # this machine has no systemd as PID 1

    def exec(self, *argv: str, check: bool = True, timeout: float = 600) -> str:
        return run(["podman", "exec", self.name, *argv], check=check, timeout=timeout)

    def agentcage(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(REPO / ".venv" / "bin" / "agentcage"), *args],
            capture_output=True,
            text=True,
            env=self.env(),
            input=input,
            timeout=900 * SLOWDOWN,
        )

    def unit_files(self, pattern: str) -> list[Path]:
        """The unit files agentcage wrote for this harness's systemd that match `pattern`."""
        return sorted(self.quadlet_dir.glob(pattern))

    def audit_text(self, cage: str, role: str) -> str:
        """Cage CAGE's audit log of `role` (proxy, dns) as written where the cage runs."""
        path = self.config_home / "agentcage/deployments" / cage / "audit" / role / f"{role}.jsonl"
        return path.read_text()

    def provide_image(self, ref: str) -> None:
        """Make an image built on this machine usable inside (it reads this machine's store)."""

    def unit_mounts(self) -> list[str]:
        """Where systemd inside reads the units agentcage writes on this side."""
        return ["-v", f"{self.quadlet_dir}:/etc/containers/systemd"]

    def start(self) -> None:
        if subprocess.run(["podman", "image", "exists", self.image]).returncode != 0:
            raise AssertionError(f"{self.image} is missing: run `sudo scripts/setup-host` first")
        for directory in (self.config_home, self.quadlet_dir, self.shared, self.workdir / "s"):
            directory.mkdir(parents=True, exist_ok=True)
        (self.workdir / "home").mkdir(exist_ok=True)
        self.shared.chmod(0o755)  # rootless users in the harness read configs from here
        python_prefix = Path(sys.base_prefix).resolve()
        run(
            [
                "podman", "run", "-d", "--name", self.name, "--privileged", "--systemd=always",
                "-e", "PODMAN_IGNORE_CGROUPSV1_WARNING=1",
                "-v", "/var/lib/containers/storage:/var/lib/shared:ro",
                "-v", f"{self.workdir / 's'}:/var/lib/containers",
                "-v", f"{REPO}:{REPO}:ro",
                "-v", f"{python_prefix}:{python_prefix}:ro",
                "-v", f"{self.config_home}:{self.config_home}",
                "-v", f"{self.shared}:{self.shared}",
                # Rootless overlay storage cannot sit on the harness's own overlay root.
                "-v", f"{self.workdir / 'home'}:/home",
                *self.unit_mounts(),
                self.image, "/usr/lib/systemd/systemd",
            ]
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = self.exec("systemctl", "is-system-running", check=False).strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.3)
        raise AssertionError(f"systemd in {self.name} did not boot: {state}")

    def add_user(self, name: str = "cage", uid: int = 1000) -> RootlessUser:
        """A user with subuids and a running `systemd --user`, for rootless cages.

        The harness has no D-Bus or logind, so two drop-ins stand in for what they would
        do: create /run/user/UID and set XDG_RUNTIME_DIR for the user manager.
        """
        self.exec("useradd", "-m", "-u", str(uid), "-s", "/bin/sh", name)
        # The host's Python (bind-mounted under /root) must be reachable for the user.
        self.exec("chmod", "o+x", "/root")
        runtime_dir = (
            "[Service]\nExecStart=\nExecStart=/bin/sh -c "
            '"mkdir -p /run/user/%%i && chown %%i:%%i /run/user/%%i && chmod 700 /run/user/%%i"'
            "\nExecStop=\nExecStop=/bin/true\n"
        )
        manager = (
            "[Service]\nEnvironment=XDG_RUNTIME_DIR=/run/user/%%i "
            "PODMAN_IGNORE_CGROUPSV1_WARNING=1\n"
        )
        for unit, text in (("user-runtime-dir@", runtime_dir), ("user@", manager)):
            directory = f"/etc/systemd/system/{unit}.service.d"
            self.exec(
                "sh", "-c", f"mkdir -p {directory} && printf '{text}' > {directory}/agentcage.conf"
            )
        self.exec("systemctl", "daemon-reload")
        user = RootlessUser(self, name, uid)
        # Without network-online in a container this waits ~90 s for nothing.
        user.exec("sh", "-c", "mkdir -p ~/.config/systemd/user && ln -sf /dev/null "
                  "~/.config/systemd/user/podman-user-wait-network-online.service")  # fmt: skip
        self.exec("systemctl", "start", f"user@{uid}.service")
        return user

    def stop(self) -> None:
        run(["podman", "rm", "-f", "-t", "0", self.name], check=False)
        # Root-owned files from nested containers: remove through podman's own view.
        run(["rm", "-rf", str(self.workdir)], check=False)


def remove_orphans(label: str) -> list[str]:
    """Remove harnesses of `label` whose pytest died before its teardown; return their names.

    A run killed by a timeout or a session's end leaves its harness running: a systemd,
    Podman and cages that nothing else would ever remove. A harness whose pytest is alive
    (another run beside this one) is kept.
    """
    listed = run(["podman", "ps", "-a", "--format", "{{.Names}}"], check=False).split()
    prefix = f"agentcage-{label}-"
    orphans = [
        name
        for name in listed
        if name.startswith(prefix)
        and name[len(prefix) :].isdigit()
        and int(name[len(prefix) :]) != os.getpid()
        and not Path(f"/proc/{name[len(prefix) :]}").exists()
    ]
    for name in orphans:
        run(["podman", "rm", "-f", "-t", "0", name], check=False)
    return orphans


def running(kind: type[Harness], label: str) -> Iterator[Harness]:
    """A fixture's body: a harness of `kind` named for this run, started, then removed."""
    remove_orphans(label)
    workdir = Path(tempfile.mkdtemp(prefix=f"agentcage-{label}-"))
    harness = kind(name=f"agentcage-{label}-{os.getpid()}", workdir=workdir)
    harness.start()
    try:
        yield harness
    finally:
        harness.stop()


@dataclass
class RootlessUser:
    """An unprivileged user inside the harness who runs agentcage and Podman rootless."""

    harness: Harness
    name: str
    uid: int
    env: dict[str, str] = field(default_factory=dict)  # more for its agentcage and Podman

    def _prefix(self) -> list[str]:
        extra = [word for key, value in self.env.items() for word in ("-e", f"{key}={value}")]
        return [
            "podman", "exec", "-i", "-u", self.name, "-w", f"/home/{self.name}",
            "-e", f"XDG_RUNTIME_DIR=/run/user/{self.uid}", "-e", f"HOME=/home/{self.name}",
            "-e", "AGENTCAGE_IMAGE_BASE=debian", "-e", "PODMAN_IGNORE_CGROUPSV1_WARNING=1",
            *extra, self.harness.name,
        ]  # fmt: skip

    def exec(self, *argv: str, check: bool = True) -> str:
        return run([*self._prefix(), *argv], check=check)

    def agentcage(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._prefix(), str(REPO / ".venv" / "bin" / "agentcage"), *args],
            capture_output=True,
            text=True,
            input=input,
            timeout=900,
        )

    def load_images(self, refs: Sequence[str]) -> None:
        """Copy images from the host's (root) store into the user's own."""
        archive = self.harness.shared / "rootless-images.tar"
        archive.unlink(missing_ok=True)
        run(["podman", "save", "-q", "-m", "-o", str(archive), *refs])
        archive.chmod(0o644)
        self.exec("podman", "load", "-q", "-i", str(archive))
        archive.unlink()

    def nothing_left(self, cage: str) -> None:
        """Nothing of cage CAGE remains in this user's Podman, systemd or state."""
        label = f"label=agentcage.cage={cage}"
        assert not self.exec("podman", "ps", "-aq", "--filter", label).strip()
        networks = self.exec("podman", "network", "ls", "--format", "{{.Name}}").split()
        assert not [n for n in networks if n.startswith(f"agentcage-{cage}-")]
        assert f"agentcage-{cage}-" not in self.exec("podman", "secret", "ls")
        # Quadlets, or plain services where Podman has no quadlet (test_podman43.py).
        for directory in ("containers/systemd", "systemd/user"):
            units = self.exec("sh", "-c", f"ls -A ~/.config/{directory} 2>/dev/null; true").split()
            assert not [u for u in units if u.startswith(f"agentcage-{cage}-")]
        deployments = self.exec("sh", "-c", "ls -A ~/.config/agentcage/deployments; true")
        assert cage not in deployments.split()


class Internet:
    """The fake internet's address and what arrived there."""

    def __init__(self, log_dir: Path, ca_pem: Path, registries: Registries, image: str) -> None:
        self.log_dir = log_dir
        self.ca_pem = ca_pem
        self.ip = INTERNET_IP
        self.registries = registries
        self.image = image  # images/agent-tools: package managers and git

    def _read(self, name: str) -> list[dict[str, object]]:
        path = self.log_dir / name
        if not path.exists():
            return []
        return whole_records(path.read_text())

    def http(self) -> list[dict[str, object]]:
        return self._read("http.jsonl")

    def dns(self) -> list[dict[str, object]]:
        return self._read("dns.jsonl")


def start_internet(harness: Harness) -> Internet:
    """Run the fake internet in the harness on a network of its own; wait until it answers."""
    ca = trustme.CA()
    cert = ca.issue_cert(*NAMES)
    files = harness.shared / "internet-tls"
    files.mkdir(parents=True)
    cert.private_key_and_cert_chain_pem.write_to_path(str(files / "server.pem"))
    cert.private_key_pem.write_to_path(str(files / "key.pem"))
    ca.cert_pem.write_to_path(str(files / "ca.pem"))
    log_dir = harness.shared / "internet-log"
    log_dir.mkdir()
    registries = build_registries(harness.shared / "site")
    image = tools_image(ImageBuilder(SubprocessRunner(env=BUILD_ENV)))
    harness.provide_image(image)
    harness.exec("podman", "network", "create", "--subnet", INTERNET_SUBNET, INTERNET_NETWORK)
    python = Path(sys.base_prefix).resolve()
    harness.exec(
        "podman", "run", "-d", "--name", "fake-internet", "--pull=never",
        f"--network={INTERNET_NETWORK}:ip={INTERNET_IP}",
        "-v", f"{REPO}:{REPO}:ro", "-v", f"{python}:{python}:ro",
        "-v", f"{harness.shared}:{harness.shared}", "-w", str(REPO),
        image, str(REPO / ".venv/bin/python"), "-m", "tests.e2e.fake_internet",
        "--address", INTERNET_IP, "--cert", str(files / "server.pem"),
        "--key", str(files / "key.pem"), "--log-dir", str(log_dir),
        "--site", str(registries.root),
    )  # fmt: skip
    probe = f"import socket; socket.create_connection(('{INTERNET_IP}', 443), 2)"
    deadline = time.monotonic() + 60 * SLOWDOWN
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
                return Internet(log_dir, files / "ca.pem", registries, image)
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
    # The scenarios check injection into WebSocket messages too (opt-in per secret).
    data["secret_injection"][0]["places"] = ["headers", "websocket"]
    data["dns_servers"] = [INTERNET_IP]
    data["network"] = {"allow_cidrs": [INTERNET_SUBNET]}
    container["ports"] = [f"127.0.0.1:{PUBLISHED_PORT}:{AGENT_PORT}"]
    path = harness.shared / "basic.yaml"
    path.write_text(json.dumps(data, indent=2))
    return path


def nothing_left(harness: Harness, name: str) -> None:
    """Nothing of cage NAME remains: containers, volumes, networks, secrets, units, state."""
    label = f"label=agentcage.cage={name}"
    assert not harness.exec("podman", "ps", "-a", "--filter", label, "-q").strip()
    assert not harness.exec("podman", "volume", "ls", "--filter", label, "-q").strip()
    networks = harness.exec("podman", "network", "ls", "--format", "{{.Name}}").split()
    assert not {f"agentcage-{name}-int", f"agentcage-{name}-ext"} & set(networks)
    secrets = harness.exec("podman", "secret", "ls", "--format", "{{.Name}}").split()
    assert not [s for s in secrets if s.startswith(f"agentcage-{name}-")]
    assert not harness.unit_files(f"agentcage-{name}-*")
    units = harness.exec("systemctl", "list-units", "--all", "--no-legend", f"agentcage-{name}-*")
    assert not units.strip()
    assert not (harness.config_home / "agentcage/deployments" / name).exists()


def key_arrived(internet: Internet, since: int, key: str, timeout: float = 60) -> bool:
    """Whether a /v1/messages request carrying `key` reached the fake internet."""
    deadline = time.monotonic() + timeout * SLOWDOWN
    while time.monotonic() < deadline:
        fresh = [r for r in internet.http()[since:] if r["path"] == "/v1/messages"]
        if any(r["headers"].get("x-api-key") == key for r in fresh):  # type: ignore[union-attr]
            return True
        time.sleep(1)
    return False


# The agent serves /app (so the published port has something to show) and waits for the
# tests to exec their scenarios in it; SIGTERM stops it.
IDLE = ["python3", "-m", "http.server", str(AGENT_PORT), "--directory", "/app"]
