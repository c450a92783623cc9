"""A small real microVM for tests and bench/microvm: the guest image, one NIC, no cage yet."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from agentcage.cage.contract import SIDECAR_USER, DnsRunArgs, ProxyRunArgs
from agentcage.cage.vm.guest_image import GuestImage
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
from agentcage.cage.vm.rootfs import VENV, secrets_image
from agentcage.cage.vm.vm_process import QemuMachine

RUN = "/run/agentcage"
GUEST_PROXY_PORT = 8080
GUEST_DNS_PORT = 5353  # unprivileged: the role runs as the sidecar user
PROXY_CONFIG = """\
name: vmtest
container:
  image: localhost/none:latest
domains: {allow: [example.com]}
"""
TCG = Hypervisor("qemu", "qemu-system-x86_64", "tcg", "this machine has no usable KVM")
NIC_ADDRESS = "10.0.2.15/24"


def network_end(path: Path) -> socket.socket:
    """The far end of the guest's NIC: a unix socket the caller owns, which forwards nothing."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    return listener


def secrets_drive(workdir: Path, secrets: dict[str, str]) -> Drive:
    secrets_image(secrets, workdir / "secrets.ext4")
    return Drive("secrets", workdir / "secrets.ext4", True, SECRETS_LABEL)


def small_machine(
    guest: GuestImage,
    workdir: Path,
    network: Path,
    secrets: Drive | None = None,
    extra: tuple[str, ...] = (),
    mem_mib: int = 256,
    address: str = NIC_ADDRESS,
    gateway: str | None = None,
    drives: tuple[Drive, ...] = (),
) -> MachineSpec:
    return MachineSpec(
        name="boot-test",
        vcpus=1,
        mem_mib=mem_mib,
        kernel=guest.kernel,
        initrd=guest.initrd,
        root=Drive("root", guest.root, read_only=True, label=ROOT_LABEL),
        secrets=secrets,
        channel=AgentChannel("serial", workdir / "agent.sock"),
        nics=(Nic("eth0", "02:ac:00:00:00:02", StreamNetwork(network), address, gateway),),
        console_log=workdir / "console.log",
        extra_cmdline=extra,
        extra_drives=drives,
    )


def prepare_guest_roles(vm: QemuMachine, config: str = PROXY_CONFIG) -> None:
    """The sidecars' directories and config under the guest's /run, through its agent."""
    uid = int(SIDECAR_USER)
    for directory, owner, mode in (
        ("etc", 0, 0o755),
        ("ca", uid, 0o700),
        ("audit", uid, 0o700),
        ("fingerprints", uid, 0o700),
        ("secrets", uid, 0o500),
    ):
        vm.ask("mkdir", path=directory, uid=owner, mode=mode)
    vm.ask("write", path="etc/config.yaml", content=config, mode=0o644, uid=0)


def start_guest_role(
    vm: QemuMachine, name: str, words: tuple[str, ...], port: int, deadline: float
) -> float:
    """`agentcage WORDS...` as the sidecar user in the guest; seconds until `port` accepts."""
    argv = [f"{VENV}/bin/agentcage", *words]
    env = {
        "PATH": f"{VENV}/bin:/usr/sbin:/usr/bin:/bin",
        "HOME": f"{RUN}/ca",
        "PYTHONUNBUFFERED": "1",
    }
    started = time.monotonic()
    vm.ask("start", name=name, argv=argv, uid=int(SIDECAR_USER), env=env)
    while not vm.connect("127.0.0.1", port, timeout=2)["connected"]:
        code = vm.status()["roles"][name]
        log = vm.ask("read", path=f"logs/{name}.log")["content"][-2000:]
        if code is not None:
            raise AssertionError(f"{name} exited {code} in the guest: {log}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} is not listening in the guest yet: {log}")
        time.sleep(1)
    return time.monotonic() - started


def _shared(role: str, port: int) -> dict[str, str]:
    """The options both sidecars take, at their places under the guest's /run."""
    return {
        "config_file": f"{RUN}/etc/config.yaml",
        "listen": f"127.0.0.1:{port}",
        "audit_log": f"{RUN}/audit/{role}.jsonl",
        "name_fingerprints": f"{RUN}/fingerprints/names.json",
    }


def start_guest_proxy(vm: QemuMachine, deadline: float, config: str = PROXY_CONFIG) -> float:
    """`agentcage proxy run` in the guest, as the proxy container runs it; seconds to listen.

    The argv is the one `ProxyRunArgs` renders for the container, with the paths under
    the guest's /run.
    """
    prepare_guest_roles(vm, config)
    args = ProxyRunArgs(
        **_shared("proxy", GUEST_PROXY_PORT), ca_dir=f"{RUN}/ca", secrets_dir=f"{RUN}/secrets"
    )
    return start_guest_role(vm, "proxy", args.argv(), GUEST_PROXY_PORT, deadline)


def start_guest_dns(vm: QemuMachine, deadline: float) -> float:
    """`agentcage dns run` in the guest beside the proxy (it reads the proxy's fingerprints)."""
    args = DnsRunArgs(
        **_shared("dns", GUEST_DNS_PORT), blocked_zones=f"{RUN}/audit/dns-blocked-zones.json"
    )
    return start_guest_role(vm, "dns", args.argv(), GUEST_DNS_PORT, deadline)
