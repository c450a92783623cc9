"""Machine specs shared by the microVM tests."""

from __future__ import annotations

from pathlib import Path

from agentcage.cage.vm.machine import (
    ROOT_LABEL,
    SECRETS_LABEL,
    AgentChannel,
    Drive,
    MachineSpec,
    Network,
    Nic,
    TapNetwork,
)


def spec(
    tmp: Path,
    kind: str = "vsock",
    network: Network | None = None,
    secrets: bool = True,
) -> MachineSpec:
    return MachineSpec(
        name="cage-a",
        vcpus=2,
        mem_mib=512,
        kernel=tmp / "vmlinuz",
        initrd=tmp / "initrd.img",
        root=Drive("root", tmp / "root.ext4", read_only=True, label=ROOT_LABEL),
        secrets=Drive("secrets", tmp / "secrets.ext4", True, SECRETS_LABEL) if secrets else None,
        channel=AgentChannel("vsock" if kind == "vsock" else "serial", tmp / "agent.sock"),
        nics=(
            Nic("eth0", "02:ac:00:00:00:01", network or TapNetwork("tap-cage-a"), "10.9.0.2/30"),
        ),
    )
