"""The README's quickstart, literally, on each kind of host: the host matrix (issue 12).

Each case copies this checkout (what a clone has, plus uncommitted work), runs the
Quickstart's first block in it (`./scripts/bootstrap` with the distribution's Python:
PATH holds only system directories and uv, which installs from its cache alone, then
`config validate`), `agentcage host check`, then the block that deploys a cage, line by
line, from README.md itself (tests/e2e/readme_quickstart.py):

  podman5     a host with systemd as PID 1 and Podman 5: the trixie harness container
  debian12    Debian 12, systemd 252, Debian's own Podman 4.3.1 (plain services, no quadlet)
  host-start  this machine, without systemd as PID 1: the README's "Hosts without systemd"
              block (`host start --share "$PWD"`, ... `host stop --forget`) around it;
              the README names no container, so this one is `agentcage-host`, and the
              case fails (without touching it) while another host container of that name runs

What the test adds, all for the hermetic fake internet (tests/e2e/fake_internet.py, on a
network the test makes in the host): examples/basic's config in the copy names the fake
internet as DNS server and reachable range; `cage create` gets `--upstream-ca` (the fake
internet's CA); AGENTCAGE_IMAGE_BASE=debian stands for the README's `--base debian`; `secret
set` and `destroy`'s question read stdin. After `cage destroy` nothing of the cage may be
left; after `host stop --forget`, nothing of the host container either.

`scripts/test` runs the host-start case, the one users without systemd hit (the other two
hosts run the same cage commands in test_lifecycle.py and test_podman43.py).
`AGENTCAGE_HOST_MATRIX=all` runs all three; a comma-separated list runs those.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from agentcage.cage.host_target import DEFAULT_NAME
from tests.e2e.conftest import REAL_KEY
from tests.e2e.harness import (
    INTERNET_IP,
    INTERNET_SUBNET,
    REPO,
    Harness,
    Internet,
    key_arrived,
    nothing_left,
    start_internet,
)
from tests.e2e.host_start import HostStartHarness
from tests.e2e.podman43 import Podman43Harness
from tests.e2e.readme_quickstart import DISTRIBUTION_PATH, Quickstart, Shell, copy_checkout, uv_dir

MATRIX_ENV = "AGENTCAGE_HOST_MATRIX"
CASES: dict[str, type[Harness]] = {
    "podman5": Harness,
    "debian12": Podman43Harness,
    "host-start": HostStartHarness,
}
CI_CASE = "host-start"


def _selected() -> list[str]:
    wanted = os.environ.get(MATRIX_ENV, CI_CASE)
    names = list(CASES) if wanted == "all" else [n.strip() for n in wanted.split(",") if n]
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        raise ValueError(f"{MATRIX_ENV}: unknown cases {unknown}; known: all, {', '.join(CASES)}")
    return names


def _ok(line: str, result: subprocess.CompletedProcess[str]) -> str:
    said = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, f"`{line}` exit {result.returncode}:\n{said}"
    return result.stdout


def _hermetic_config(checkout: Path) -> None:
    """examples/basic/config.yaml, resolving and reaching only the fake internet."""
    path = checkout / "examples" / "basic" / "config.yaml"
    data = YAML(typ="safe").load(path.read_text())
    data["dns_servers"] = [INTERNET_IP]
    data["network"] = {"allow_cidrs": [INTERNET_SUBNET]}
    path.write_text(json.dumps(data, indent=2) + "\n")


def _environment(harness: Harness, workdir: Path) -> dict[str, str]:
    """The host's environment for agentcage, with a distribution's PATH and no venv."""
    env = dict(harness.env())
    for key in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "AGENTCAGE_PYTHON"):
        env.pop(key, None)
    env["PATH"] = f"{uv_dir(workdir)}:{DISTRIBUTION_PATH}"
    env["UV_OFFLINE"] = "1"  # bootstrap installs from uv's cache: no network
    return env


def _deploy(shell: Shell, quick: Quickstart, harness: Harness, internet: Internet) -> None:
    """The README's cage block, line by line; then nothing of the cage is left."""
    for line in quick.cage:
        seen = len(internet.http())
        command, given = line, None
        if line.startswith("agentcage cage create "):
            command = f"{line} --upstream-ca {internet.ca_pem}"
        elif line.startswith("agentcage secret set "):
            given = REAL_KEY
        elif line.startswith("agentcage cage destroy "):
            given = "y\n"
        out = _ok(line, shell(command, input=given))
        if re.match(r"agentcage cage (update|start) ", line):
            assert key_arrived(internet, seen, REAL_KEY), f"no agent round after `{line}`"
        elif line.startswith("agentcage cage logs "):
            assert "agent sees ANTHROPIC_API_KEY='{{ANTHROPIC_API_KEY}}'" in out
    nothing_left(harness, "basic")
    assert not list((harness.config_home / "agentcage" / "deployments").iterdir())


@pytest.mark.parametrize("case", _selected())
def test_readme_quickstart(case: str) -> None:
    quick = Quickstart.from_readme((REPO / "README.md").read_text())
    workdir = Path(tempfile.mkdtemp(prefix=f"agentcage-matrix-{case}-"))
    name = DEFAULT_NAME if case == "host-start" else f"agentcage-matrix-{case}-{os.getpid()}"
    harness = CASES[case](name=name, workdir=workdir)
    # A host with systemd sees this machine's files; the harness standing in for one sees
    # its shared directory. Through `host start`, only the README's --share shows it.
    place = workdir if case == "host-start" else harness.shared
    checkout = copy_checkout(place / "checkout")
    _hermetic_config(checkout)
    shell = Shell(checkout, _environment(harness, workdir))
    for line in quick.setup:
        out = _ok(line, shell(line))
        if line.startswith("agentcage config validate "):
            assert out.strip() == quick.validated
    base = subprocess.run(
        [str(checkout / ".venv/bin/python"), "-c", "import sys; print(sys.base_prefix)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert base == "/usr", f"bootstrap used {base}, not the distribution's Python"

    harness.start()
    try:
        if isinstance(harness, HostStartHarness):
            _host_start_case(shell, quick, harness)
        else:
            internet = start_internet(harness)
            check = next(line for line in quick.host if line == "agentcage host check")
            _ok(check, shell(check))
            _deploy(shell, quick, harness, internet)
    finally:
        harness.stop()


def _host_start_case(shell: Shell, quick: Quickstart, harness: HostStartHarness) -> None:
    # harness.start() ran `host start` with what the fake internet needs shared (this
    # checkout and Python, read-only); stopped, the record keeps those shares for the
    # README's own `host start`, as shares only grow.
    _ok("host stop", harness.agentcage("host", "stop"))
    before, after = quick.host_around_create()
    for line in before:
        out = _ok(line, shell(line))
        if line == "agentcage host check":
            assert f"systemd is PID 1 in the host container {DEFAULT_NAME}" in out
    internet = start_internet(harness)
    _deploy(shell, quick, harness, internet)
    for line in after:
        _ok(line, shell(line))
    gone = subprocess.run(["podman", "container", "exists", DEFAULT_NAME], check=False)
    assert gone.returncode == 1, "the host container is still there"
    assert not harness.record.exists()
    assert not (harness.data_home / "agentcage" / "host" / DEFAULT_NAME).exists()
