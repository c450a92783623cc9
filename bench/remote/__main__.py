"""What a cage on an SSH host target costs: commands, image copies, create and destroy.

Run (it starts a container, so under the e2e lock):

    flock /work/e2e.lock .venv/bin/python -m bench.remote

Starts the e2e tests' SSH-only host (tests/e2e/ssh_host.py) and reports:

* one command (`true`) over SSH, 20 times: with the shared master connection
  (ControlMaster, what agentcage uses) and with a new connection each time;
* copying the proxy, DNS and runtime images there (`podman save | ssh podman load`),
  cold, then again when the target has them (compared by ID: nothing travels);
* `cage create --host` (images already there) and `cage destroy` of a small cage.

Speed is reported, not asserted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from tests.e2e.harness import BUILD_ENV, IDLE, e2e_config, running, start_internet
from tests.e2e.ssh_host import TARGET, SshHarness

from agentcage.cage.host_files import RemoteFiles
from agentcage.cage.images import ImageBuilder
from agentcage.cage.podman import SubprocessRunner
from agentcage.cage.remote_hosts import RemoteHosts
from agentcage.cage.ssh_target import socket_dir
from agentcage.cage.state import StateStore


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.0f} ms"


def measure(harness: SshHarness) -> None:
    hosts = RemoteHosts(harness.config_home / "agentcage")
    shared = hosts.runner(hosts.get(TARGET))
    shared.run(["true"])  # the master connection is up
    fresh = list(shared.prefix)
    fresh[fresh.index("ControlMaster=auto")] = "ControlMaster=no"
    fresh[fresh.index(f"ControlPath={socket_dir()}/%C")] = "ControlPath=none"
    local = SubprocessRunner()
    print(
        "command over ssh, shared connection:",
        ms([timed(lambda: shared.run(["true"])) for _ in range(20)]),
    )
    print(
        "command over ssh, new connection:   ",
        ms([timed(lambda: local.run([*fresh, "true"])) for _ in range(20)]),
    )
    sidecars = ImageBuilder(SubprocessRunner(env=BUILD_ENV)).sidecar_images("debian")
    refs = [sidecars.proxy, sidecars.dns, sidecars.runtime]
    files = RemoteFiles(shared, StateStore(harness.config_home / "agentcage").deployments)
    print(f"copy 3 images (cold): {timed(lambda: files.provide_images(refs)):.1f} s")
    print(f"copy 3 images (there already): {timed(lambda: files.provide_images(refs)):.1f} s")
    internet = start_internet(harness)
    config = e2e_config(harness, IDLE)
    ca = str(internet.ca_pem)
    create = timed(
        lambda: harness.agentcage("cage", "create", "-c", str(config), "--upstream-ca", ca)
    )
    print(f"cage create --host (sidecar images there, agent image copied): {create:.1f} s")
    destroy = timed(lambda: harness.agentcage("cage", "destroy", "basic", "-y"))
    print(f"cage destroy: {destroy:.1f} s")


def main() -> None:
    for harness in running(SshHarness, "bench-ssh"):
        assert isinstance(harness, SshHarness)
        measure(harness)


if __name__ == "__main__":
    main()
