"""The guest's audit lines, copied to the host's audit files as they are written.

The sidecars in the guest write their audit logs into the guest's memory. The channel's
owner (vm_run.py) follows each through the guest agent (`read` from an offset) and
appends the complete lines to the same files a container cage's sidecars write on the
host (`HostPaths.proxy_audit_dir`, `dns_audit_dir`), so `agentcage audit`, `domain
suggest` and `cage list`'s blocked count read a microVM cage as they read any other. A
line is copied only once it ends with a newline; a guest that stops loses at most the
lines of the last poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentcage.errors import VmmError

Ask = Callable[..., dict[str, Any]]
POLL_SECONDS = 2.0


class AuditFollower:
    def __init__(self, ask: Ask, files: dict[str, Path]) -> None:
        """`files`: the guest path (under /run/agentcage) -> the host file to append to."""
        self.ask = ask
        self.files = files
        # The guest starts with a copy of the host's file (guest_cage.copy_state): follow
        # from its end, so a restarted cage does not append its old lines again.
        self.offsets = {g: h.stat().st_size if h.exists() else 0 for g, h in files.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if not self._thread.is_alive() and self._thread.ident is None:
            # Never started: the cage failed before it was up, and its guest may be gone.
            return
        self._thread.join(timeout=POLL_SECONDS * 3)
        self.poll()  # the lines written since the last round

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self.poll()

    def poll(self) -> None:
        for guest, host in self.files.items():
            try:
                self._copy(guest, host)
            except VmmError:
                continue  # not written yet, or the guest is going: the next round retries

    def _copy(self, guest: str, host: Path) -> None:
        while True:
            reply = self.ask("read", path=guest, offset=self.offsets[guest])
            if int(reply["size"]) < self.offsets[guest]:
                self.offsets[guest] = 0  # the log was started again
                continue
            text = str(reply["content"])
            complete = text[: text.rfind("\n") + 1]
            if not complete:
                return
            with host.open("a", encoding="utf-8") as handle:
                handle.write(complete)
            self.offsets[guest] += len(complete.encode("utf-8"))
