"""A helper process beside the monitor that serves it on a unix socket (passt, virtiofsd).

Started before the monitor, which connects to the socket at its own start; "up" means the
socket exists. `alive()` tells the VM container's main loop when one died (fail closed: the
cage goes down with it).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path
from typing import Self

from agentcage.errors import VmmError

SOCKET_SECONDS = 10.0


class SocketDaemon:
    def __init__(self, name: str, argv: list[str], socket_path: Path, quiet: bool = False) -> None:
        self.name = name
        self.argv = argv
        self.socket_path = socket_path
        self.quiet = quiet  # its stdout says nothing the container's log needs
        self.process: subprocess.Popen[bytes] | None = None

    def open(self) -> Self:
        self.socket_path.unlink(missing_ok=True)
        stdout = subprocess.DEVNULL if self.quiet else None
        process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=stdout)
        deadline = time.monotonic() + SOCKET_SECONDS
        while not self.socket_path.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise VmmError(
                    f"{self.name} did not open {self.socket_path} (exit {process.poll()})"
                )
            time.sleep(0.05)
        self.process = process
        return self

    def alive(self) -> str | None:
        code = None if self.process is None else self.process.poll()
        return None if code is None else f"{self.name} exited {code}"

    def close(self) -> None:
        if self.process is not None:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self.process.terminate()
                self.process.wait(5)
        self.socket_path.unlink(missing_ok=True)
