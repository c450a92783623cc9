"""A running microVM under Firecracker: its process, its API calls, its hybrid vsock.

`firecracker --api-sock` waits for its configuration on that socket; `start` sends the
spec's calls and `InstanceStart` (firecracker_api.py). The guest's serial console is the
process's stdout, written to the console log. The guest agent answers on vsock port
`AGENT_VSOCK_PORT`, reached through Firecracker's unix socket with its `CONNECT` line
(agent_channel.py). Stop is `SendCtrlAltDel`: the guest agent, as PID 1, takes it as a
clean shutdown, and the guest's reboot (`reboot=k`) ends Firecracker; then SIGKILL.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from agentcage.cage.vm.firecracker_api import FirecrackerClient, check_kernel_format, launch_argv
from agentcage.cage.vm.machine import AGENT_VSOCK_PORT, MachineSpec
from agentcage.cage.vm.vm_process import GuestMachine
from agentcage.errors import VmmError

API_SECONDS = 10.0


class FirecrackerMachine(GuestMachine):
    monitor = "Firecracker"
    vsock_port = AGENT_VSOCK_PORT

    def __init__(self, spec: MachineSpec, binary: str, api_socket: Path) -> None:
        if spec.channel.kind != "vsock":
            raise VmmError("the Firecracker runner reaches the guest over vsock only")
        super().__init__(spec, api_socket.with_suffix(".stderr"))
        self.api_socket = api_socket
        self.argv = launch_argv(binary, api_socket, spec)
        self.client = FirecrackerClient(api_socket)

    def start(self) -> None:
        check_kernel_format(self.spec.kernel)
        for stale in (self.api_socket, self.spec.channel.socket):
            stale.unlink(missing_ok=True)
        console = self.spec.console_log or Path("/dev/null")
        with self._stderr.open("wb") as stderr, console.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=stderr
            )
        try:
            self._wait_api()
            self.client.boot(self.spec)
        except VmmError as exc:
            # Nothing boots half-configured; `stop` then removes what the VM left.
            assert self.process is not None
            self.process.kill()
            self.process.wait()
            raise VmmError(f"{exc}{self._exit_note()}", hint=exc.hint) from exc

    def _wait_api(self) -> None:
        deadline = time.monotonic() + API_SECONDS
        while not self.api_socket.exists():
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise VmmError(f"Firecracker did not open its API socket {self.api_socket}")
            time.sleep(0.02)

    def can_ask_shutdown(self) -> bool:
        return True  # the API socket, whether or not the guest agent ever answered

    def request_shutdown(self, timeout: float) -> None:
        self.client.timeout = min(timeout, self.client.timeout)
        self.client.request_shutdown()

    def leftovers(self) -> tuple[Path, ...]:
        return (*super().leftovers(), self.api_socket)
