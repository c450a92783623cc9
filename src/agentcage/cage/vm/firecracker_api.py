"""The Firecracker backend: a `MachineSpec` as calls to Firecracker's HTTP API.

Firecracker takes its configuration over HTTP/1.1 on a unix socket (`--api-sock`): each
pre-boot PUT answers 204 or 400 with `{"fault_message": "..."}`, then `InstanceStart` boots
the guest and `SendCtrlAltDel` asks it to shut down. `api_calls` is pure (the order and
bodies are the contract tests/support/fake_firecracker.py checks); `FirecrackerClient`
sends them and turns a fault into a `VmmError` carrying Firecracker's own message.
This backend has not run against a real Firecracker on the machines the project is tested
on (no binary, no usable KVM); see docs/microvm.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentcage.cage.vm.machine import MachineSpec, StreamNetwork
from agentcage.cage.vm.virtiofs import WRITABLE_BIND_HINT
from agentcage.errors import VmmError
from agentcage.metrics.unix_http import UnixHTTPConnection

JsonBody = dict[str, Any]


@dataclass(frozen=True)
class ApiCall:
    method: str
    path: str
    body: JsonBody


def launch_argv(binary: str, api_socket: Path, spec: MachineSpec) -> list[str]:
    """The monitor process; it waits on `api_socket` for `api_calls(spec)`."""
    return [binary, "--api-sock", str(api_socket), "--id", spec.name]


def api_calls(spec: MachineSpec) -> list[ApiCall]:
    """Everything before `InstanceStart`, in the order Firecracker's guide uses."""
    if spec.channel.kind != "vsock":
        raise VmmError(
            "Firecracker has no virtio-serial device; its guest agent channel is vsock",
            hint="use `firecracker.hypervisor: qemu` on a host without vsock",
        )
    if spec.shares:
        raise VmmError(
            "Firecracker has no shared-filesystem device, so it cannot give the agent a "
            "writable bind mount",
            hint=WRITABLE_BIND_HINT,
        )
    calls = [
        ApiCall(
            "PUT",
            "/machine-config",
            {"vcpu_count": spec.vcpus, "mem_size_mib": spec.mem_mib, "smt": False},
        ),
        ApiCall(
            "PUT",
            "/boot-source",
            {
                "kernel_image_path": str(spec.kernel),
                "initrd_path": str(spec.initrd),
                "boot_args": spec.cmdline(console="ttyS0", reboot="k"),
            },
        ),
    ]
    for drive in spec.drives:
        calls.append(
            ApiCall(
                "PUT",
                f"/drives/{drive.drive_id}",
                {
                    "drive_id": drive.drive_id,
                    "path_on_host": str(drive.path),
                    # The initramfs mounts the root by label, not the kernel by `root=`.
                    "is_root_device": False,
                    "is_read_only": drive.read_only,
                },
            )
        )
    for nic in spec.nics:
        if isinstance(nic.network, StreamNetwork):
            raise VmmError(
                "Firecracker attaches a guest network interface to a TAP device only",
                hint="use `firecracker.hypervisor: qemu` for rootless (passt) networking",
            )
        calls.append(
            ApiCall(
                "PUT",
                f"/network-interfaces/{nic.nic_id}",
                {"iface_id": nic.nic_id, "guest_mac": nic.mac, "host_dev_name": nic.network.device},
            )
        )
    calls.append(
        ApiCall(
            "PUT",
            "/vsock",
            {"guest_cid": spec.channel.guest_cid, "uds_path": str(spec.channel.socket)},
        )
    )
    return calls


START = ApiCall("PUT", "/actions", {"action_type": "InstanceStart"})
CTRL_ALT_DEL = ApiCall("PUT", "/actions", {"action_type": "SendCtrlAltDel"})


def check_kernel_format(kernel: Path) -> None:
    """Firecracker on x86_64 boots an uncompressed ELF `vmlinux`; say so before it fails.

    Distribution packages ship a compressed bzImage (`vmlinuz`, "HdrS" at 0x202), which
    Firecracker would refuse only once asked to start, with a less direct message.
    """
    try:
        with kernel.open("rb") as handle:
            head = handle.read(0x206)
    except OSError as exc:
        raise VmmError(f"cannot read the guest kernel {kernel}: {exc}") from exc
    if head[:4] == b"\x7fELF":
        return
    kind = "a compressed bzImage (vmlinuz)" if head[0x202:0x206] == b"HdrS" else "not ELF"
    raise VmmError(
        f"Firecracker needs an uncompressed ELF kernel (vmlinux); {kernel} is {kind}",
        hint="set `firecracker.kernel` to a vmlinux, or use `firecracker.hypervisor: qemu`",
    )


class FirecrackerClient:
    """One Firecracker process's API socket."""

    def __init__(self, api_socket: Path, timeout: float = 5.0) -> None:
        self.api_socket = api_socket
        self.timeout = timeout

    def send(self, call: ApiCall) -> None:
        conn = UnixHTTPConnection(self.api_socket, self.timeout)
        try:
            conn.request(
                call.method,
                call.path,
                body=json.dumps(call.body),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
            response = conn.getresponse()
            payload = response.read()
        except OSError as exc:
            raise VmmError(
                f"Firecracker's API socket {self.api_socket} did not answer "
                f"{call.method} {call.path}: {exc}",
                hint="is the firecracker process running?",
            ) from exc
        finally:
            conn.close()
        if response.status == 204:
            return
        raise VmmError(
            f"Firecracker refused {call.method} {call.path} ({response.status}): {_fault(payload)}"
        )

    def boot(self, spec: MachineSpec) -> None:
        check_kernel_format(spec.kernel)
        for call in api_calls(spec):
            self.send(call)
        self.send(START)

    def request_shutdown(self) -> None:
        self.send(CTRL_ALT_DEL)


def _fault(payload: bytes) -> str:
    try:
        message = json.loads(payload)["fault_message"]
    except (ValueError, KeyError, TypeError):
        return payload.decode("utf-8", "replace")[:200] or "(no body)"
    return str(message)
