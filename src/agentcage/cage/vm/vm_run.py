"""The microVM cage's container process: the uplink, the monitor, the guest's cage, the channel.

Runs as the container's main process (`agentcage vm run RUN_DIR`, the cage's `vm` unit):
makes the guest's NIC in this container's network namespace on the cage's external
network (QEMU: passt, user-mode; Firecracker: a TAP, NATed out, tap_uplink.py), makes the
secrets drive from the secrets Podman mounted here (in this container's memory, never on
the host's disk), starts the monitor, waits for the guest agent, brings the cage up
(`guest_cage.start_cage`), then tells systemd the unit is ready and serves the control
socket (channel_owner.py) until SIGTERM, which is a clean guest shutdown (then the monitor
is killed after the timeout) and the end of the uplink. Fail closed: if the monitor or the
uplink dies, this process ends, the unit fails and `Restart=no` keeps it down; if any step
before that fails, everything made so far goes and the unit fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType

from agentcage.cage.contract import DNS_AUDIT_LOG, PROXY_AUDIT_LOG, SECRETS_DIR
from agentcage.cage.layout import HostPaths
from agentcage.cage.topology import mac_address
from agentcage.cage.vm.audit_follow import AuditFollower
from agentcage.cage.vm.channel_owner import ChannelOwner
from agentcage.cage.vm.firecracker_machine import FirecrackerMachine
from agentcage.cage.vm.guest_cage import start_cage
from agentcage.cage.vm.guest_roles import AGENT_ROOT_LABEL
from agentcage.cage.vm.hypervisor import Hypervisor
from agentcage.cage.vm.machine import (
    ROOT_LABEL,
    SECRETS_LABEL,
    AgentChannel,
    Drive,
    MachineSpec,
    Network,
    Nic,
    Share,
    StreamNetwork,
)
from agentcage.cage.vm.rootfs import secrets_image
from agentcage.cage.vm.socket_daemon import SocketDaemon
from agentcage.cage.vm.tap_uplink import TapUplink
from agentcage.cage.vm.virtiofs import VirtiofsDaemon, share_tag
from agentcage.cage.vm.vm_plan import VmPlan, load_plan
from agentcage.cage.vm.vm_process import GuestMachine, QemuMachine
from agentcage.cage.vm.volume_drive import volume_drive
from agentcage.sdnotify import notify_ready

BOOT_SECONDS = 180.0
# Both sidecars' Python start under TCG on a loaded 2-core host took up to 40 s.
CAGE_SECONDS = 400.0
STOP_SECONDS = 20.0
MEMORY = Path("/tmp/agentcage-vm")  # in the container's /tmp tmpfs (quadlet._hardening)


def _secrets(directory: Path) -> dict[str, str]:
    if not directory.is_dir():
        return {}
    return {p.name: p.read_text() for p in sorted(directory.iterdir()) if p.is_file()}


def audit_files(state_dir: Path) -> dict[str, Path]:
    """Each sidecar's audit log in the guest -> the host file a container cage writes."""
    paths = HostPaths.under(state_dir)
    hosts = (paths.proxy_audit_dir / PROXY_AUDIT_LOG, paths.dns_audit_dir / DNS_AUDIT_LOG)
    return {f"state/{host.relative_to(state_dir)}": host for host in hosts}


def machine_spec(plan: VmPlan, network: Network, secrets: Drive, memory: Path) -> MachineSpec:
    channel = (
        AgentChannel("vsock", memory / "vsock.sock")
        if plan.monitor == "firecracker"
        else AgentChannel("serial", plan.run_dir / "agent.sock")
    )
    return MachineSpec(
        name=plan.name,
        vcpus=plan.vcpus,
        mem_mib=plan.mem_mib,
        kernel=plan.kernel,
        initrd=plan.initrd,
        root=Drive("root", plan.root, read_only=True, label=ROOT_LABEL),
        secrets=secrets,
        channel=channel,
        nics=(
            Nic(
                "eth0",
                mac_address(plan.address.split("/")[0]),
                network,
                plan.address,
                plan.gateway,
            ),
        ),
        console_log=plan.run_dir / "console.log",
        extra_drives=(Drive("agent", plan.agent_drive, True, AGENT_ROOT_LABEL),),
        volumes=tuple(
            volume_drive(plan.run_dir, name) for role in plan.roles for name in role.volumes
        ),
        shares=tuple(share for _, share, _ in shares(plan, memory)),
    )


def shares(plan: VmPlan, memory: Path) -> list[tuple[str, Share, tuple[int, int]]]:
    """Each writable bind mount: its host directory (mounted at the same path in this
    container), its virtiofs share, and the uid and gid of the role that mounts it."""
    found = []
    for role in plan.roles:
        for host in role.shares:
            tag = share_tag(host)
            found.append((host, Share(tag, memory / f"{tag}.sock"), (role.uid, role.gid)))
    return found


class PasstUplink(SocketDaemon):
    """passt: the guest's NIC for QEMU, user-mode, on a unix socket."""

    def __init__(self, socket_path: Path) -> None:
        argv = ["passt", "--foreground", "--quiet", "--socket", str(socket_path)]
        argv += ["--no-dhcp", "--no-dhcpv6", "--no-ndp", "--no-ra", "--no-map-gw"]
        super().__init__("passt", argv, socket_path, quiet=True)
        self.network = StreamNetwork(socket_path)


def _machine(plan: VmPlan, spec: MachineSpec, memory: Path) -> GuestMachine:
    if plan.monitor == "firecracker":
        return FirecrackerMachine(spec, plan.firecracker, memory / "firecracker.sock")
    return QemuMachine(spec, Hypervisor("qemu", plan.qemu, plan.accel, "chosen at create"))


def run(run_dir: Path, memory: Path = MEMORY, boot_seconds: float = BOOT_SECONDS) -> int:
    plan = load_plan(run_dir)
    memory.mkdir(mode=0o700, exist_ok=True)
    stop = threading.Event()

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    uplink: PasstUplink | TapUplink = (
        TapUplink() if plan.monitor == "firecracker" else PasstUplink(memory / "passt.sock")
    )
    uplink.open()
    secrets = memory / "secrets.ext4"
    daemons: list[VirtiofsDaemon] = []
    vm: GuestMachine | None = None
    owner: ChannelOwner | None = None
    follower: AuditFollower | None = None
    try:
        secrets_image(_secrets(Path(SECRETS_DIR)), secrets)
        drive = Drive("secrets", secrets, True, SECRETS_LABEL)
        # Each file virtiofsd creates is its own: this container's user, shown to the
        # guest as the role's (virtiofs.py).
        owner_ids = (os.getuid(), os.getgid())
        for host, share, ids in shares(plan, memory):
            daemons.append(VirtiofsDaemon(host, share, ids, owner_ids).open())
        vm = _machine(plan, machine_spec(plan, uplink.network, drive, memory), memory)
        began = time.monotonic()
        vm.start()
        vm.wait_ready(boot_seconds)
        print(f"guest agent answered after {time.monotonic() - began:.1f} s", flush=True)
        assert vm.channel is not None
        owner = ChannelOwner(vm.channel, plan.control)
        follower = AuditFollower(owner.ask, audit_files(plan.state_dir))
        seconds = start_cage(
            owner.ask,
            list(plan.roles),
            plan.topology,
            plan.state_dir,
            time.monotonic() + CAGE_SECONDS,
            list(plan.resolvers),
        )
        shown = ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items())
        print(f"cage up after {time.monotonic() - began:.1f} s (listening: {shown})", flush=True)
        owner.serve()
        follower.start()
        notify_ready()
        while not stop.wait(1):
            if vm.process is not None and vm.process.poll() is not None:
                print(f"{vm.monitor} exited {vm.process.returncode}", flush=True)
                return 1
            for part in (uplink, *daemons):
                if (gone := part.alive()) is not None:
                    print(gone, flush=True)
                    return 1
        return 0
    finally:
        # Each step runs even if one before it fails: a VM or a TAP must never outlive this.
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(secrets.unlink, missing_ok=True)
            cleanup.callback(uplink.close)
            for daemon in daemons:
                cleanup.callback(daemon.close)
            if vm is not None and vm.process is not None:
                cleanup.callback(_stop, vm)
            if owner is not None:
                cleanup.callback(owner.close)
            if follower is not None:
                cleanup.callback(follower.stop)


def _stop(vm: GuestMachine) -> None:
    report = vm.stop(STOP_SECONDS)
    print(f"guest stopped ({'clean' if report.clean else 'killed'}, "
          f"{report.seconds:.1f} s)", flush=True)  # fmt: skip
