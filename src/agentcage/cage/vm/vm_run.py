"""The microVM cage's container process: passt, QEMU, the guest's cage, the channel's owner.

Runs as the container's main process (`agentcage vm run RUN_DIR`, the cage's `vm` unit):
starts passt (the guest's NIC, user-mode, in this container's network namespace on the
cage's external network), makes the secrets drive from the secrets Podman mounted here
(in this container's memory, never on the host's disk), starts QEMU, waits for the guest
agent, brings the cage up (`guest_cage.start_cage`), then tells systemd the unit is ready
and serves the control socket (channel_owner.py) until SIGTERM, which is a clean guest
shutdown (then QEMU is killed after the timeout) and the end of passt. Fail closed: if
QEMU or passt dies, this process ends, the unit fails and `Restart=no` keeps it down.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import FrameType

from agentcage.cage.contract import DNS_AUDIT_LOG, PROXY_AUDIT_LOG, SECRETS_DIR
from agentcage.cage.layout import HostPaths
from agentcage.cage.topology import mac_address
from agentcage.cage.vm.audit_follow import AuditFollower
from agentcage.cage.vm.channel_owner import ChannelOwner
from agentcage.cage.vm.guest_cage import start_cage
from agentcage.cage.vm.guest_roles import AGENT_ROOT_LABEL
from agentcage.cage.vm.hypervisor import Hypervisor
from agentcage.cage.vm.machine import (
    ROOT_LABEL,
    SECRETS_LABEL,
    AgentChannel,
    Drive,
    MachineSpec,
    Nic,
    StreamNetwork,
)
from agentcage.cage.vm.rootfs import secrets_image
from agentcage.cage.vm.vm_plan import VmPlan, load_plan
from agentcage.cage.vm.vm_process import QemuMachine
from agentcage.errors import VmmError
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


def machine_spec(plan: VmPlan, passt_socket: Path, secrets: Drive) -> MachineSpec:
    return MachineSpec(
        name=plan.name,
        vcpus=plan.vcpus,
        mem_mib=plan.mem_mib,
        kernel=plan.kernel,
        initrd=plan.initrd,
        root=Drive("root", plan.root, read_only=True, label=ROOT_LABEL),
        secrets=secrets,
        channel=AgentChannel("serial", plan.run_dir / "agent.sock"),
        nics=(
            Nic(
                "eth0",
                mac_address(plan.address.split("/")[0]),
                StreamNetwork(passt_socket),
                plan.address,
                plan.gateway,
            ),
        ),
        console_log=plan.run_dir / "console.log",
        extra_drives=(Drive("agent", plan.agent_drive, True, AGENT_ROOT_LABEL),),
    )


def _passt(socket_path: Path) -> subprocess.Popen[bytes]:
    socket_path.unlink(missing_ok=True)
    argv = ["passt", "--foreground", "--quiet", "--socket", str(socket_path)]
    argv += ["--no-dhcp", "--no-dhcpv6", "--no-ndp", "--no-ra", "--no-map-gw"]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not socket_path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise VmmError(f"passt did not open {socket_path} (exit {process.poll()})")
        time.sleep(0.05)
    return process


def run(run_dir: Path) -> int:
    plan = load_plan(run_dir)
    MEMORY.mkdir(mode=0o700, exist_ok=True)
    stop = threading.Event()

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    passt = _passt(MEMORY / "passt.sock")
    secrets = MEMORY / "secrets.ext4"
    secrets_image(_secrets(Path(SECRETS_DIR)), secrets)
    spec = machine_spec(plan, MEMORY / "passt.sock", Drive("secrets", secrets, True, SECRETS_LABEL))
    vm = QemuMachine(spec, Hypervisor("qemu", plan.qemu, plan.accel, "chosen at create"))
    owner: ChannelOwner | None = None
    follower: AuditFollower | None = None
    try:
        began = time.monotonic()
        vm.start()
        vm.wait_ready(BOOT_SECONDS)
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
                print(f"QEMU exited {vm.process.returncode}", flush=True)
                return 1
            if passt.poll() is not None:
                print(f"passt exited {passt.returncode}", flush=True)
                return 1
        return 0
    finally:
        if follower is not None:
            follower.stop()
        if owner is not None:
            owner.close()
        if vm.process is not None:
            report = vm.stop(STOP_SECONDS)
            print(f"guest stopped ({'clean' if report.clean else 'killed'}, "
                  f"{report.seconds:.1f} s)", flush=True)  # fmt: skip
        with contextlib.suppress(OSError):
            passt.terminate()
            passt.wait(5)
        secrets.unlink(missing_ok=True)
        (MEMORY / "passt.sock").unlink(missing_ok=True)
