"""One representative case against a Debian VM under QEMU (TCG), reached only over SSH.

Runs with the other end-to-end tests (CI included), 4 to 6 minutes under TCG; alone:
`flock /work/e2e.lock .venv/bin/pytest -s tests/e2e/test_remote_vm.py`. The guest
reaches sshd 20 to 25 s after QEMU starts under TCG (docs/remote.md#tests).

The VM (tests/e2e/debian_vm.py) is built from Debian packages and boots systemd with
Podman 5 and sshd; QEMU's user network is restricted (no way out of the guest) and
forwards a loopback port to sshd. agentcage adds it as a host target, checks it, makes a
cage there (the images travel over SSH), sets a secret, and destroys the cage; then the
VM holds nothing of it. The timings of each step are printed (`pytest -s`). The full cage
suite over SSH runs against a container target (test_remote.py); under TCG every step
is many times slower, so this case stays alone.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.debian_vm import DebianVm, build_vm
from tests.e2e.harness import BUILD_ENV, REPO, run

CONFIG = """\
name: vmcage
container:
  image: localhost/agentcage-agent-debian:bookworm
  command: ["sleep", "infinity"]
secret_injection:
  - env: API_KEY
    inject_to: [api.example.com]
domains:
  allow: [api.example.com]
dns_servers: [10.0.2.3]
"""
SECRET = "vm-secret-value-0123456789"
# Under TCG: building, booting, loading ~330 MB of images and starting Python sidecars.
pytestmark = pytest.mark.timeout(2400)


class Vm:
    def __init__(self, workdir: Path, vm: DebianVm, key: Path) -> None:
        self.workdir, self.vm, self.key = workdir, vm, key
        self.timings: dict[str, float] = {}

    def agentcage(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            **BUILD_ENV,
            "XDG_CONFIG_HOME": str(self.workdir / "config"),
            "AGENTCAGE_IMAGE_BASE": "debian",
        }
        env.pop("AGENTCAGE_SYSTEMD_EXEC", None)
        started = time.monotonic()
        result = subprocess.run(
            [str(REPO / ".venv/bin/agentcage"), *args],
            capture_output=True, text=True, env=env, input=input, timeout=3600,
        )  # fmt: skip
        self.timings[" ".join(args[:2])] = time.monotonic() - started
        return result

    def ssh(self, command: str) -> str:
        return run([*self.vm.ssh_argv(self.key), command])


@pytest.fixture(scope="module")
def vm() -> Iterator[Vm]:
    workdir = Path(tempfile.mkdtemp(prefix="agentcage-e2e-vm-"))
    key = workdir / "id_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    started = time.monotonic()
    image = build_vm(workdir, key.with_suffix(".pub").read_text())
    built = time.monotonic() - started
    machine = DebianVm(image, workdir / "console.log")
    machine.start()
    try:
        booted = machine.wait_for_ssh(key)
        handle = Vm(workdir, machine, key)
        handle.timings.update({"build VM image": built, "boot to sshd": booted})
        yield handle
        print("\nDebian VM under TCG, seconds:", json.dumps(handle.timings, indent=1))
    finally:
        machine.stop()
        run(["rm", "-rf", str(workdir)], check=False)


def test_a_cage_on_a_debian_vm_over_ssh(vm: Vm) -> None:
    address = f"ssh://root@127.0.0.1:{vm.vm.port}"
    added = vm.agentcage("host", "add", "vm", address, "--identity", str(vm.key))
    assert added.returncode == 0, added.stderr
    checked = vm.agentcage("host", "check", "--host", "vm")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = vm.workdir / "vmcage.yaml"
    config.write_text(CONFIG)
    created = vm.agentcage("cage", "create", "-c", str(config), "--host", "vm")
    assert created.returncode == 0, created.stderr[-3000:]
    listed = vm.agentcage("cage", "list", "--json")
    (row,) = json.loads(listed.stdout)
    assert row["state"] == "active", listed.stdout
    stored = vm.agentcage("secret", "set", "vmcage", "API_KEY", input=SECRET)
    assert stored.returncode == 0, stored.stderr
    assert "agentcage-vmcage-API_KEY" in vm.ssh("podman secret ls --format '{{.Name}}'")
    destroyed = vm.agentcage("cage", "destroy", "vmcage", "-y")
    assert destroyed.returncode == 0, destroyed.stderr
    assert not vm.ssh("podman ps -aq --filter label=agentcage.cage=vmcage").strip()
    # Podman's package ships /etc/containers/systemd/users/: only the cage's units count.
    assert not vm.ssh("find /etc/containers/systemd -name 'agentcage-*'").strip()
    assert not vm.ssh("ls -A /root/.local/share/agentcage/cages").strip()
    assert "agentcage-vmcage" not in vm.ssh("podman secret ls; podman network ls")
