"""A Debian VM under QEMU as a remote host: systemd, Podman 5 and sshd, reached over SSH.

Made from distribution packages with the microVM work's parts: the pinned Debian kernel
(cage/vm/debian_parts.py), its initramfs builder with a stage that boots systemd on a
writable root (cage/vm/initramfs.py), ext4 images without root (cage/vm/rootfs.py), and
the host container's package list and Podman configuration (cage/host_image.py) plus
openssh-server and the kernel's modules. QEMU's user-mode network is restricted (the guest
reaches nothing outside) and forwards a loopback port to the guest's sshd. Under TCG (no
usable KVM here) it is slow, so CI runs one representative case on it, which shares nothing
else of this machine (tests/e2e/test_remote_vm.py); `VmHost` makes it test_remote.py's
target for the whole suite (AGENTCAGE_REMOTE_VM_FULL=1), with virtiofs shares.
"""

from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from agentcage.cage.host_image import HOST_PACKAGES, HOST_SUITE, HostImageRecipe
from agentcage.cage.images import digest
from agentcage.cage.vm import initramfs, rootfs
from agentcage.cage.vm.debian_parts import BUSYBOX, KERNEL, KERNEL_RELEASE, run_tool, unpack
from agentcage.cage.vm.qemu_argv import tcg_clock
from tests.e2e.harness import REPO, run
from tests.e2e.ssh_host import SshHarness, free_port

LABEL = "agentcage-e2e-vm"
CACHE = Path.home() / ".cache" / "agentcage" / "e2e-vm"
# udev: systemd-networkd leaves a link "pending" until udev has seen it, whenever /sys is
# writable (a VM, not a container); without udevd eth0 stayed down and sshd unreachable.
VM_PACKAGES = (*HOST_PACKAGES, "openssh-server", "kmod", "iproute2", "udev")
# The stage that hands over to systemd: the guest agent's /init mounts read-only instead.
SYSTEMD_INIT = f"""#!/bin/sh
export PATH=/bin
mount -t proc proc /proc && mount -t sysfs sysfs /sys && mount -t devtmpfs devtmpfs /dev || exit 1
for module in $(cat /etc/agentcage-modules); do insmod "/lib/modules/$module" || exit 1; done
tries=0
until device=$(findfs "LABEL={LABEL}" 2>/dev/null); do
    tries=$((tries + 1)); [ "$tries" -lt 200 ] || exit 1; sleep 0.05
done
mount -t ext4 -o rw "$device" /root || exit 1
for fs in dev proc sys; do mount --move "/$fs" "/root/$fs" || exit 1; done
exec switch_root /root /sbin/init
"""
MEMORY = "4096M"
# QEMU's own virtiofsd (qemu-system-common, which scripts/setup-host installs); needs root.
VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
# QEMU's user network: the guest is 10.0.2.15, QEMU itself 10.0.2.2. Static, so that
# nothing waits for DHCP under emulation. Matched by driver: `Type=ether` also matched the
# host ends of Podman's veth pairs, and networkd gave each the guest's address and route.
NETWORK = "[Match]\nDriver=virtio_net\n\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\n"


@dataclass
class VmImage:
    kernel: Path
    initrd: Path
    root: Path


def build_vm(work: Path, public_key: str) -> VmImage:
    """Kernel, initramfs and a writable root image with room for a cage's images."""
    CACHE.mkdir(parents=True, exist_ok=True)
    parts = CACHE / "parts"
    kernel = unpack(KERNEL, parts)
    busybox = unpack(BUSYBOX, parts)
    modules = kernel / "lib" / "modules" / KERNEL_RELEASE
    (work / "initrd.img").write_bytes(
        initramfs.build_initramfs(busybox / "bin/busybox", modules, SYSTEMD_INIT)
    )
    shutil.copyfile(kernel / "boot" / f"vmlinuz-{KERNEL_RELEASE}", work / "vmlinuz")
    recipe = HostImageRecipe.for_this_machine()
    extra = [
        '--customize-hook=mkdir -p "$1/usr/lib/modules"',
        f'--customize-hook=cp -a {modules} "$1/usr/lib/modules/"',
        f'--customize-hook=chroot "$1" depmod {KERNEL_RELEASE}',
        '--customize-hook=chroot "$1" systemctl enable systemd-networkd ssh',
    ]
    # Keyed on what goes in, so that a changed package list or hook builds a new tree.
    tree = CACHE / f"tree-{digest(recipe.ref(), *VM_PACKAGES, *extra)}"
    if not tree.is_dir():
        staging = Path(tempfile.mkdtemp(prefix="agentcage-vm-staging-"))
        hooks = [*recipe.hooks(staging), *extra]
        partial = CACHE / "tree.partial"
        shutil.rmtree(partial, ignore_errors=True)
        run_tool(
            ["mmdebstrap", "--quiet", "--variant=minbase", "--include=" + ",".join(VM_PACKAGES),
             *hooks, HOST_SUITE, str(partial)],
            timeout=1800,
        )  # fmt: skip
        partial.rename(tree)
        shutil.rmtree(staging, ignore_errors=True)
    (tree / "etc/systemd/network/10-e.network").write_text(NETWORK)
    ssh_dir = tree / "root" / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(public_key)
    (ssh_dir / "authorized_keys").chmod(0o600)
    # Room for a cage's images and containers (sparse: only what is written takes space).
    rootfs.ext4_image(tree, work / "root.ext4", LABEL, slack_mib=6144, slack_inodes=400_000)
    return VmImage(work / "vmlinuz", work / "initrd.img", work / "root.ext4")


@dataclass
class DebianVm:
    """The VM; `shares` maps a virtiofs tag to a directory here and its mount options."""

    image: VmImage
    console: Path
    shares: dict[str, tuple[Path, str]] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    daemons: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def socket(self, tag: str) -> Path:
        return self.console.with_name(f"virtiofs-{tag}.sock")

    def argv(self) -> list[str]:
        words = ("console=ttyS0", "reboot=t", "panic=-1", "systemd.journald.forward_to_console=1")
        cmdline = " ".join((*words, *tcg_clock()))
        machine = "microvm,acpi=on,isa-serial=on,auto-kernel-cmdline=off"
        shared: list[str] = []
        if self.shares:
            # vhost-user reads the guest's memory, so it must be a shareable memfd.
            # virtiofsd refuses microvm's default legacy virtio-mmio (version 1).
            machine += ",memory-backend=mem"
            shared = ["-object", f"memory-backend-memfd,id=mem,size={MEMORY},share=on",
                      "-global", "virtio-mmio.force-legacy=false"]  # fmt: skip
        for tag in self.shares:
            shared += [
                "-chardev", f"socket,id={tag},path={self.socket(tag)}",
                "-device", f"vhost-user-fs-device,chardev={tag},tag={tag}",
            ]  # fmt: skip
        return [
            "qemu-system-x86_64", "-M", machine, *shared,
            "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", MEMORY,
            "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
            "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd),
            "-append", cmdline,
            "-chardev", f"file,id=console,path={self.console}", "-serial", "chardev:console",
            "-drive", f"id=root,file={self.image.root},format=raw,if=none",
            "-device", "virtio-blk-device,drive=root",
            "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{self.port}-:22",
            "-device", "virtio-net-device,netdev=n0",
        ]  # fmt: skip

    def start(self) -> None:
        for tag, (directory, _) in self.shares.items():
            options = f"source={directory},cache=auto,sandbox=chroot"
            argv = [VIRTIOFSD, f"--socket-path={self.socket(tag)}", "-o", options]
            self.daemons.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL))
        for tag in self.shares:
            deadline = time.monotonic() + 30
            while not self.socket(tag).exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        self.process = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL)

    def mount_shares(self, key: Path) -> None:
        """Mount each share in the guest at the path it has here (root only: virtiofsd)."""
        steps = ["modprobe virtiofs"]
        for tag, (directory, options) in self.shares.items():
            steps.append(
                f"mkdir -p {directory} && mount -t virtiofs -o {options} {tag} {directory}"
            )
        subprocess.run([*self.ssh_argv(key), " && ".join(steps)], check=True, timeout=120)

    def stop(self) -> None:
        for process in (self.process, *self.daemons):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def ssh_argv(self, key: Path) -> list[str]:
        """`ssh` to the guest's root, ready for one remote command line."""
        return [
            "ssh", "-p", str(self.port), "-i", str(key), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "root@127.0.0.1",
        ]  # fmt: skip

    def wait_for_ssh(self, key: Path, timeout: float = 600) -> float:
        """Seconds until `ssh root@127.0.0.1 -p PORT true` works."""
        started = time.monotonic()
        argv = [*self.ssh_argv(key), "true"]
        while time.monotonic() - started < timeout:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the VM ended:\n{self.console.read_text()[-3000:]}")
            if subprocess.run(argv, capture_output=True).returncode == 0:
                return time.monotonic() - started
            time.sleep(2)
        raise AssertionError(f"no sshd in the VM:\n{self.console.read_text()[-3000:]}")


@dataclass
class VmHost(SshHarness):
    """test_remote.py's target as this VM (AGENTCAGE_REMOTE_VM_FULL=1, docs/remote.md).

    Like the container target, the guest sees the repository and this Python read-only
    and the shared directory read-write at the same paths (virtiofs), which the fake
    internet and the cage's test mounts need; everything else travels over SSH.
    """

    vm: DebianVm | None = None

    def ssh(self) -> list[str]:
        assert self.vm is not None, "the VM has not started"
        return self.vm.ssh_argv(self.key)

    def shell(self, command: str) -> list[str]:
        return [*self.ssh(), command]

    def exec(self, *argv: str, check: bool = True, timeout: float = 600) -> str:
        return run(self.shell(shlex.join(argv)), check=check, timeout=timeout)

    def boot(self) -> None:
        image = build_vm(self.workdir, self.key.with_suffix(".pub").read_text())
        python = Path(sys.base_prefix).resolve()
        shares = {"repo": (REPO, "ro"), "python": (python, "ro"), "shared": (self.shared, "rw")}
        self.vm = DebianVm(image, self.workdir / "console.log", shares)
        self.port = self.vm.port
        self.vm.start()
        try:
            self.vm.wait_for_ssh(self.key)
            self.vm.mount_shares(self.key)
        except BaseException:
            self.stop()  # `running` stops only a harness that started
            raise

    def freeze(self) -> None:
        """QEMU stopped: the guest and its user network (in QEMU) answer nothing."""
        assert self.vm is not None and self.vm.process is not None
        self.vm.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.vm is not None and self.vm.process is not None
        self.vm.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.close_connection()
        if self.vm is not None:
            self.vm.stop()
        run(["rm", "-rf", str(self.workdir)], check=False)
