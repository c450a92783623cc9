"""Podman 5's own quadlet generator accepts every unit set we render.

`scripts/setup-host` installs the generator; a missing one fails this test (no skip).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agentcage.cage.agent_started import NAME as STARTED
from agentcage.cage.layout import HostPaths, Images
from agentcage.cage.quadlet import CageSpec, build_units
from agentcage.cage.topology import Topology, subnets_for
from agentcage.config import LoadContext, load_config

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
QUADLET = Path(os.environ.get("AGENTCAGE_QUADLET", "/usr/local/libexec/agentcage/quadlet"))
IMAGES = Images("localhost/agentcage-proxy:p", "localhost/agentcage-dns:d", "localhost/agent:a")

HOSTILE = """\
name: hostile
container:
  image: localhost/x:1
  command: ["sh", "-c", "echo \\"$HOME\\" 100% ; exit 0 \\\\", "[Service]"]
  env:
    A: 'spaces and "quotes" and $$VAR and %h'
  named_volumes:
    data: /data:rw
  ports: ["127.0.0.1:8000:8000"]
  memory: 1g
  cpus: 0.5
  add_capabilities: [NET_BIND_SERVICE]
secret_injection:
  - env: API_KEY
    inject_to: [api.example.com]
domains: {allow: [example.com, 10.0.0.0/8]}
"""


def _config(name: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    if name == "hostile":
        path = tmp_path / "hostile.yaml"
        path.write_text(HOSTILE)
    else:
        path = REPO / "examples" / name / "config.yaml"
    ctx = LoadContext(base_dir=path.parent, environ={"HOME": "/home/u"}, check_paths=False)
    return load_config(path, context=ctx)


@pytest.mark.parametrize("name", ["basic", "openclaw", "hostile"])
@pytest.mark.parametrize("rootless", [False, True])
def test_quadlet_generator_accepts_our_units(name: str, rootless: bool, tmp_path: Path) -> None:
    _check(name, rootless, tmp_path, cgroups=True)


def test_quadlet_generator_accepts_units_without_cgroups(tmp_path: Path) -> None:
    out = _check("openclaw", True, tmp_path, cgroups=False)
    assert out.count("--cgroups disabled") == 4  # openclaw publishes a port: 4 containers


def _check(name: str, rootless: bool, tmp_path: Path, cgroups: bool) -> str:
    assert QUADLET.is_file(), f"{QUADLET} missing: run `sudo scripts/setup-host`"
    config = _config(name, tmp_path)
    topology = Topology(config.name, 3, *subnets_for(3))
    secrets = tuple(rule.env for rule in config.secret_injection)
    units = build_units(
        CageSpec(
            config,
            topology,
            IMAGES,
            HostPaths.under(tmp_path / "state"),
            secrets,
            wanted_by="default.target" if rootless else "multi-user.target",
            upstream_ca=True,
            cgroups=cgroups,
        )
    )
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    for filename, text in units.rendered().items():
        (unit_dir / filename).write_text(text)
    argv = [str(QUADLET), "-dryrun", *(["-user"] if rootless else [])]
    result = subprocess.run(
        argv,
        env={"QUADLET_UNIT_DIRS": str(unit_dir), "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "converting" not in result.stderr, result.stderr  # quadlet's per-file errors
    out = result.stdout
    prefix = f"agentcage-{config.name}"
    for service in ("agent", "proxy", "dns"):
        assert f"---{prefix}-{service}.service---" in out
    assert "--internal" in out and "--disable-dns" in out
    assert "--sdnotify=container" in out  # the sidecars say READY=1 themselves
    containers = sum(name.endswith(".container") for name in units.files)
    assert containers == (4 if config.container.ports else 3)
    runs = "\n".join(line for line in out.splitlines() if line.startswith("ExecStart="))
    assert runs.count("--read-only") == containers
    assert runs.count("--cap-drop all") == containers
    # Default deny's setup (steering_entry.py, nsenter), in the proxy's and agent's services.
    # The agent's last step waits for its command to run (agent_started.py).
    for role in ("proxy", "agent"):
        post, *rest = [
            line
            for line in _service(out, f"{prefix}-{role}").splitlines()
            if line.startswith("ExecStartPost=")
        ]
        assert "nsenter" in post and "podman run" not in post
        assert f" {prefix}-proxy {prefix}-{role} -m agentcage.cage.steering {role} " in post
        assert [line.endswith(f" {STARTED}") for line in rest] == (
            [True] if role == "agent" else []
        )
    # The fingerprint volume: the proxy writes it, the DNS sidecar only reads it.
    shared = f"{tmp_path / 'state' / 'fingerprints'}:/var/lib/agentcage/fingerprints"
    assert f"{shared}:ro" in _service(out, f"{prefix}-dns")
    assert f"{shared}:rw,U" in _service(out, f"{prefix}-proxy")
    assert shutil.which("podman") is not None  # setup-host installed the runtime as well
    return out


def _service(out: str, name: str) -> str:
    """The part of the dry-run output that is `name`'s service."""
    return out.split(f"---{name}.service---", 1)[1].split("\n---", 1)[0]
