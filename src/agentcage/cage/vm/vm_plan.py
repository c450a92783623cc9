"""What the microVM's container needs to bring the cage up, written by `cage create`.

The host renders everything (the roles from the cage's units, the guest's address, the
drives) and writes it as `vm/plan.json` in the cage's state directory; the container
(vm_run.py) only executes it, so it needs neither Podman nor the image store. Pure data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from agentcage.cage.topology import Topology
from agentcage.cage.vm.guest_roles import GuestRole
from agentcage.cage.vm.qemu_argv import Accel

PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class VmPlan:
    name: str
    vcpus: int
    mem_mib: int
    qemu: str
    accel: Accel
    kernel: Path
    initrd: Path
    root: Path
    agent_drive: Path
    # The guest's one NIC: passt copies the container's own address and gateway.
    address: str
    gateway: str
    topology: Topology
    state_dir: Path
    run_dir: Path
    resolvers: tuple[str, ...]
    roles: tuple[GuestRole, ...]
    # "firecracker": `firecracker` runs the guest (the host's binary, mounted read-only at
    # this path), its NIC a TAP (tap_uplink.py); "qemu": `qemu` and `accel` above, passt.
    monitor: Literal["firecracker", "qemu"] = "qemu"
    firecracker: str = ""

    @property
    def control(self) -> Path:
        return self.run_dir / "control.sock"

    def as_json(self) -> str:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = str(value)
        return json.dumps(data, default=str, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> VmPlan:
        data: dict[str, Any] = json.loads(text)
        for key in ("kernel", "initrd", "root", "agent_drive", "state_dir", "run_dir"):
            data[key] = Path(data[key])
        data["topology"] = Topology(**data["topology"])
        data["resolvers"] = tuple(data["resolvers"])
        data["roles"] = tuple(_role(role) for role in data["roles"])
        return cls(**data)


def _role(data: dict[str, Any]) -> GuestRole:
    return GuestRole(
        name=data["name"],
        argv=tuple(data["argv"]),
        env=dict(data["env"]),
        uid=int(data["uid"]),
        gid=int(data["gid"]),
        sandbox=data["sandbox"],
        state_dirs=tuple((Path(path), bool(writable)) for path, writable in data["state_dirs"]),
        sysctls=tuple((k, v) for k, v in data["sysctls"]),
        files=tuple((k, v) for k, v in data["files"]),
        steering=tuple(data.get("steering", ())),  # absent from plans written before it
        volumes=tuple(data.get("volumes", ())),
        shares=tuple(data.get("shares", ())),
    )


def load_plan(run_dir: Path) -> VmPlan:
    return VmPlan.from_json((run_dir / PLAN_FILE).read_text(encoding="utf-8"))
