"""A running microVM: start, wait for the guest agent, stop cleanly or kill.

Stop is the guest's own shutdown first (under QEMU asked over the agent channel; the guest
syncs and reboots, which ends QEMU because it runs with `-no-reboot`; under Firecracker,
firecracker_machine.py, by `SendCtrlAltDel`), then, if the process is still there after
the timeout, SIGKILL. Whatever happens, the VM's sockets and the secrets image go with it.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentcage.cage.vm.agent_channel import AgentChannelClient
from agentcage.cage.vm.hypervisor import Hypervisor
from agentcage.cage.vm.machine import MachineSpec
from agentcage.cage.vm.qemu_argv import qemu_argv
from agentcage.errors import VmmError


@dataclass
class StopReport:
    clean: bool  # the guest shut itself down within the timeout
    returncode: int
    seconds: float


class GuestMachine:
    """What both monitors' machines share once their process runs."""

    monitor = "the monitor"
    vsock_port: int | None = None  # Firecracker's hybrid vsock handshake, when set

    def __init__(self, spec: MachineSpec, stderr: Path) -> None:
        self.spec = spec
        self.process: subprocess.Popen[bytes] | None = None
        self.channel: AgentChannelClient | None = None
        self._stderr = stderr

    def start(self) -> None:
        raise NotImplementedError

    def can_ask_shutdown(self) -> bool:
        """Whether there is a way to ask; without one, stop kills at once."""
        return self.channel is not None

    def request_shutdown(self, timeout: float) -> None:
        """Ask the guest to shut down; a `VmmError` if it could not be asked."""
        if self.channel is None:
            raise VmmError("the guest agent is not connected")
        self.channel.request("shutdown", timeout)

    def leftovers(self) -> tuple[Path, ...]:
        return (self.spec.channel.socket, self._stderr)

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """The guest agent's first status: the guest booted and its agent answers."""
        deadline = time.monotonic() + timeout
        try:
            path = self.spec.channel.socket
            self.channel = AgentChannelClient(path, deadline, self.vsock_port)
            return self.channel.request("status", max(deadline - time.monotonic(), 0.1))
        except VmmError as exc:
            raise VmmError(f"{exc}{self._exit_note()}", hint=self._console_hint()) from exc

    def status(self, timeout: float = 10) -> dict[str, Any]:
        if self.channel is None:
            raise VmmError("the guest agent is not connected")
        return self.channel.request("status", timeout)

    def connect(
        self, address: str, port: int, timeout: float = 5, send: str = ""
    ) -> dict[str, Any]:
        """Open a TCP connection from inside the guest, send `send`; what came back first."""
        return self.ask(
            "connect", timeout + 5, address=address, port=port, timeout=timeout, send=send
        )

    def ask(self, op: str, wait: float = 10, **arguments: object) -> dict[str, Any]:
        """Any guest agent request (guest_agent.py lists them)."""
        if self.channel is None:
            raise VmmError("the guest agent is not connected")
        return self.channel.request(op, wait, **arguments)

    def stop(self, timeout: float) -> StopReport:
        process = self.process
        if process is None:
            raise VmmError("the machine was never started")
        began = time.monotonic()
        clean = False
        if process.poll() is None and self.can_ask_shutdown():
            with contextlib.suppress(VmmError):
                self.request_shutdown(timeout)
            try:
                process.wait(timeout=max(timeout - (time.monotonic() - began), 0.1))
                clean = True
            except subprocess.TimeoutExpired:
                pass
        if process.poll() is None:
            process.kill()
            process.wait()
        if self.channel is not None:
            self.channel.close()
        for leftover in self.leftovers():
            leftover.unlink(missing_ok=True)
        if self.spec.secrets is not None:
            self.spec.secrets.path.unlink(missing_ok=True)
        return StopReport(clean, process.returncode, time.monotonic() - began)

    def _exit_note(self) -> str:
        if self.process is None:
            return ""
        # A broken channel usually means the monitor is on its way out; let it say so.
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=2)
        if self.process.poll() is not None:
            err = self._stderr.read_text(errors="replace").strip()[-400:]
            return f" ({self.monitor} exited {self.process.returncode}: {err or 'no message'})"
        return ""

    def _console_hint(self) -> str | None:
        log = self.spec.console_log
        return f"the guest's console is in {log}" if log else None


class QemuMachine(GuestMachine):
    monitor = "QEMU"

    def __init__(self, spec: MachineSpec, hypervisor: Hypervisor) -> None:
        if hypervisor.kind != "qemu":
            raise VmmError(f"QemuMachine cannot run a {hypervisor.kind} machine")
        if spec.channel.kind != "serial":
            raise VmmError("the QEMU runner reaches the guest over virtio-serial only, for now")
        super().__init__(spec, spec.channel.socket.with_suffix(".qemu-stderr"))
        self.argv = qemu_argv(spec, hypervisor.binary, hypervisor.accel)

    def start(self) -> None:
        with self._stderr.open("wb") as stderr:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
            )
