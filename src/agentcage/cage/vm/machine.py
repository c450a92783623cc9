"""What a microVM is, independent of the monitor that runs it.

A `MachineSpec` is built once from the cage (its kernel, its root filesystem, the drive that
carries its secrets, the channel its guest agent answers on, its one network interface) and
rendered by a backend: firecracker_api.py into Firecracker's API calls, qemu_argv.py into a
`qemu-system-x86_64 -M microvm` command line. Neither backend invents a device of its own,
so what the guest sees is the same under both, as far as each monitor can express it; what
one cannot express it refuses with a `VmmError` instead of dropping it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agentcage.errors import VmmError

# Device identifiers become Firecracker URL path segments and QEMU option values: a comma,
# slash or `=` in one would change what the other side parses.
_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
# A virtiofs tag is the guest's mount source and a QEMU option value (36 bytes at most).
_TAG = re.compile(r"^[a-z][a-z0-9-]{0,35}$")
# The guest finds its drives by filesystem label, never by probe order.
ROOT_LABEL = "agentcage-root"
SECRETS_LABEL = "agentcage-creds"  # ext4 labels hold 16 bytes
# The virtio-serial port name and the vsock port the guest agent answers on.
AGENT_PORT_NAME = "org.agentcage.agent"
AGENT_VSOCK_PORT = 1024


def check_id(kind: str, value: str) -> str:
    if not _ID.match(value):
        raise VmmError(f"{kind} id {value!r} is not a plain lower-case name ([a-z][a-z0-9_]*)")
    return value


@dataclass(frozen=True)
class Drive:
    """A virtio-blk disk backed by a raw image file on the host."""

    drive_id: str
    path: Path
    read_only: bool
    label: str

    def __post_init__(self) -> None:
        check_id("drive", self.drive_id)
        if not 0 < len(self.label.encode()) <= 16:
            # mkfs.ext4 would cut it short and the guest would look for the whole one.
            raise VmmError(f"drive label {self.label!r} is not 1 to 16 bytes (ext4's limit)")


@dataclass(frozen=True)
class Share:
    """A host directory the guest mounts writable, live: virtiofs, served by a `virtiofsd`
    on `socket` (virtiofs.py). QEMU only; Firecracker has no shared-filesystem device."""

    tag: str
    socket: Path

    def __post_init__(self) -> None:
        if not _TAG.match(self.tag):
            raise VmmError(f"virtiofs tag {self.tag!r} is not a plain name of 1 to 36 bytes")


@dataclass(frozen=True)
class TapNetwork:
    """A host TAP device (root, or a user namespace that owns it); both monitors support it."""

    device: str


@dataclass(frozen=True)
class StreamNetwork:
    """Ethernet frames over a unix stream socket: passt's protocol, QEMU's `-netdev stream`.

    Needs no root; Firecracker has no such backend and refuses it.
    """

    socket: Path


Network = TapNetwork | StreamNetwork


@dataclass(frozen=True)
class Nic:
    nic_id: str
    mac: str
    network: Network
    # Static addressing, handed to the guest on its command line: `agentcage.net=`.
    address: str  # "10.0.2.15/24"
    gateway: str | None = None

    def __post_init__(self) -> None:
        check_id("network interface", self.nic_id)
        if not _MAC.match(self.mac):
            raise VmmError(f"MAC address {self.mac!r} is not six lower-case hex pairs")


@dataclass(frozen=True)
class AgentChannel:
    """Where the host reaches the guest agent.

    `vsock` is Firecracker's (and QEMU's where /dev/vhost-vsock exists): the host side is a
    unix socket the monitor serves. `serial` is a virtio-serial port whose host side is a
    unix socket QEMU listens on; Firecracker has no virtio-console and refuses it.
    """

    kind: Literal["vsock", "serial"]
    socket: Path
    guest_cid: int = 3


@dataclass(frozen=True)
class MachineSpec:
    name: str
    vcpus: int
    mem_mib: int
    kernel: Path
    initrd: Path
    root: Drive
    channel: AgentChannel
    secrets: Drive | None = None
    nics: tuple[Nic, ...] = ()
    # The guest's console (kernel messages, the init's own log): a file on the host.
    console_log: Path | None = None
    extra_cmdline: tuple[str, ...] = field(default=())
    # More read-only drives the guest mounts by label on request (the agent's root).
    extra_drives: tuple[Drive, ...] = ()
    # The cage's named volumes (volume_drive.py): the only drives the guest may write, each
    # its own image that holds nothing but what the agent wrote there.
    volumes: tuple[Drive, ...] = ()
    # The agent's writable bind mounts, shared live with the host (virtiofs.py).
    shares: tuple[Share, ...] = ()

    def __post_init__(self) -> None:
        check_id("machine", self.name.replace("-", "_"))
        if not self.root.read_only:
            # One image serves every cage; a writable root would let one guest change it.
            raise VmmError(f"the root drive {self.root.drive_id!r} must be read-only")
        if self.secrets is not None and not self.secrets.read_only:
            raise VmmError(f"the secrets drive {self.secrets.drive_id!r} must be read-only")
        for drive in self.extra_drives:
            if not drive.read_only:
                raise VmmError(f"the drive {drive.drive_id!r} must be read-only")
        ids = [d.drive_id for d in self.drives]
        if len(set(ids)) != len(ids):
            raise VmmError(f"drive ids repeat: {ids}")
        tags = [share.tag for share in self.shares]
        if len(set(tags)) != len(tags):
            raise VmmError(f"virtiofs tags repeat: {tags}")
        if len(self.nics) > 1:
            raise VmmError("a cage's guest has one network interface, for the proxy and DNS")

    @property
    def drives(self) -> tuple[Drive, ...]:
        secrets = () if self.secrets is None else (self.secrets,)
        return (self.root, *secrets, *self.extra_drives, *self.volumes)

    def cmdline(self, console: str, reboot: str, tuning: tuple[str, ...] = ()) -> str:
        """The kernel command line both monitors pass: the boot contract with the guest.

        `reboot` is how the guest's reboot reaches its monitor (Firecracker: the keyboard
        controller, `k`; QEMU: a triple fault, `t`); `tuning` is what one monitor's guest
        needs to boot at all (clock settings under TCG).
        """
        words = [
            f"console={console}",
            f"reboot={reboot}",
            # Any panic (the init dying included) reboots at once, and both monitors are
            # run so that a guest reboot ends them: a failed guest leaves no VM behind.
            "panic=-1",
            "quiet",
            # The guest's only network is its one interface, IPv4 and static: no IPv6 link
            # routes or autoconfiguration appear beside it.
            "ipv6.disable=1",
            *tuning,
            f"agentcage.root={ROOT_LABEL}",
        ]
        if self.secrets is not None:
            words.append(f"agentcage.secrets={SECRETS_LABEL}")
        for nic in self.nics:
            net = f"agentcage.net={nic.mac},{nic.address}"
            words.append(net + (f",{nic.gateway}" if nic.gateway else ""))
        words.append(f"agentcage.channel={self.channel.kind}")
        words.extend(self.extra_cmdline)
        return " ".join(words)
