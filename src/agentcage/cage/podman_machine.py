"""A Podman machine (macOS, Windows) as a host target: the Linux VM `podman machine` runs.

`podman machine inspect` prints, per machine, the SSH port forwarded to the VM on this
machine's loopback, the user and the private key Podman made for it. That is all an
`SshTarget` needs; a rootful machine is reached as root with the same key (as Podman's
own `-root` connection does).
"""

from __future__ import annotations

import json
from pathlib import Path

from agentcage.cage.podman import Runner
from agentcage.cage.ssh_target import SshTarget
from agentcage.errors import HostError

LOOPBACK = "127.0.0.1"


def parse_inspect(target_name: str, text: str) -> SshTarget:
    """The first machine of `podman machine inspect` output, as an SSH target."""
    try:
        data = json.loads(text)
        machine = data[0] if isinstance(data, list) else data
        ssh = machine["SSHConfig"]
        name = str(machine["Name"])
        port = int(ssh["Port"])
        user = "root" if machine.get("Rootful") else str(ssh["RemoteUsername"])
        identity = Path(str(ssh["IdentityPath"]))
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise HostError(
            f"`podman machine inspect` printed something unexpected ({exc})",
            hint="add the machine as `agentcage host add NAME ssh://USER@127.0.0.1:PORT "
            "--identity KEY` with the values `podman system connection list` shows",
        ) from exc
    state = str(machine.get("State", "running"))
    if state != "running":
        raise HostError(
            f"the Podman machine {name} is {state}", hint=f"`podman machine start {name}`"
        )
    return SshTarget(target_name, user, LOOPBACK, port, identity, machine=name)


def inspect_machine(runner: Runner, target_name: str, machine: str | None) -> SshTarget:
    argv = ["podman", "machine", "inspect", *([machine] if machine else [])]
    result = runner.run(argv, check=False)
    if not result.ok:
        raise HostError(
            f"`{' '.join(argv)}` failed: {result.stderr.strip()[-500:]}",
            hint="`podman machine list` shows the machines; `podman machine init` makes one",
        )
    return parse_inspect(target_name, result.stdout)
