"""The QEMU backend: a `MachineSpec` as a `qemu-system-x86_64 -M microvm` command line.

`microvm` is QEMU's minimal x86 machine: no PCI, no firmware, virtio-mmio devices that its
ACPI tables describe to the guest (Debian's kernels lack the command-line way to declare
them). With KVM it is fast; without (TCG, software emulation) it is slow but still a
separate kernel. The command line is built as an argv list and every value that lands in
a comma-separated option is checked first, so a path cannot add an option of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from agentcage.cage.vm.machine import AGENT_PORT_NAME, MachineSpec, StreamNetwork, TapNetwork
from agentcage.errors import VmmError

Accel = Literal["kvm", "tcg"]


def _value(what: str, text: str | Path) -> str:
    """A value for QEMU's `key=value,...` syntax, where a comma would start a new key."""
    text = str(text)
    if "," in text or "\n" in text or not text:
        raise VmmError(f"QEMU cannot take the {what} {text!r}: empty, or a comma or newline in it")
    return text


def tcg_clock(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, ...]:
    """Kernel words that let Linux boot under TCG on `microvm`.

    With no KVM clock, Linux calibrates the TSC against the PIT through the PC speaker
    port, which `microvm` lacks; the calibration fails and the boot hangs (seen with
    Debian's 6.1 cloud kernel on QEMU 7.2). Under TCG the guest reads the host's TSC, so
    the host's frequency is the right answer to hand it.
    """
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("cpu MHz"):
            khz = round(float(line.split(":")[1]) * 1000)
            return (f"tsc_early_khz={khz}", "tsc=reliable")
    raise VmmError("cannot read the host's CPU frequency from /proc/cpuinfo for a TCG guest")


def qemu_argv(spec: MachineSpec, binary: str, accel: Accel) -> list[str]:
    machine = "microvm,acpi=on,isa-serial=on,auto-kernel-cmdline=off"
    if spec.shares:
        # vhost-user: virtiofsd reads and writes the guest's memory itself, so that memory
        # must be a file it can map (a memfd, shared), not QEMU's private anonymous memory.
        machine += ",memory-backend=mem"
    argv = [
        binary,
        "-M",
        machine,
        "-accel",
        accel,
        # TCG offers `max`, every feature it emulates; KVM passes the host's CPU through.
        "-cpu",
        "host" if accel == "kvm" else "max",
        "-smp",
        str(spec.vcpus),
        "-m",
        f"{spec.mem_mib}M",
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        # A guest reboot (its shutdown, or a panic) ends the process instead of restarting.
        "-no-reboot",
        "-kernel",
        _value("kernel", spec.kernel),
        "-initrd",
        _value("initrd", spec.initrd),
        "-append",
        spec.cmdline(console="ttyS0", reboot="t", tuning=tcg_clock() if accel == "tcg" else ()),
    ]
    if spec.console_log is not None:
        argv += ["-chardev", f"file,id=console,path={_value('console log', spec.console_log)}"]
    else:
        argv += ["-chardev", "null,id=console"]
    argv += ["-serial", "chardev:console"]
    if spec.shares:
        argv += ["-object", f"memory-backend-memfd,id=mem,size={spec.mem_mib}M,share=on"]
    for number, share in enumerate(spec.shares):
        socket_path = _value("virtiofsd socket", share.socket)
        argv += ["-chardev", f"socket,id=fs{number},path={socket_path}"]
        argv += ["-device", f"vhost-user-fs-device,chardev=fs{number},tag={share.tag}"]
    for drive in spec.drives:
        options = [
            f"id={drive.drive_id}",
            f"file={_value('drive image', drive.path)}",
            "format=raw",
            "if=none",
        ]
        if drive.read_only:
            options.append("readonly=on")
        argv += ["-drive", ",".join(options)]
        argv += ["-device", f"virtio-blk-device,drive={drive.drive_id}"]
    for nic in spec.nics:
        if isinstance(nic.network, TapNetwork):
            netdev = f"tap,id={nic.nic_id},ifname={_value('TAP device', nic.network.device)}"
            netdev += ",script=no,downscript=no"
        elif isinstance(nic.network, StreamNetwork):
            path = _value("network socket", nic.network.socket)
            netdev = f"stream,id={nic.nic_id},server=off,addr.type=unix,addr.path={path}"
        argv += ["-netdev", netdev]
        argv += ["-device", f"virtio-net-device,netdev={nic.nic_id},mac={nic.mac}"]
    channel = spec.channel
    socket_path = _value("agent socket", channel.socket)
    if channel.kind == "serial":
        argv += [
            "-chardev",
            f"socket,id=agent,path={socket_path},server=on,wait=off",
            "-device",
            "virtio-serial-device",
            "-device",
            f"virtserialport,chardev=agent,name={AGENT_PORT_NAME}",
        ]
    else:
        # vhost-vsock needs the host kernel's /dev/vhost-vsock; the host side is then
        # AF_VSOCK to `guest_cid`, not a unix socket.
        argv += ["-device", f"vhost-vsock-device,guest-cid={channel.guest_cid}"]
    return argv
