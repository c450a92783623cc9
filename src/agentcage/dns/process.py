"""One dnsmasq child in the foreground, its messages read line by line from a pipe."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import selectors
import signal
import subprocess
import time
from pathlib import Path

from agentcage.dns.files import RunAs
from agentcage.errors import DnsError

_PREFIX = re.compile(r"^(?:\S+ +\d+ \d\d:\d\d:\d\d )?dnsmasq(?:\[\d+\])?: ")
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # If the sidecar process dies, dnsmasq must not keep answering unsupervised:
    # without us nobody audits or enforces tunnel blocks.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Dnsmasq:
    def __init__(self, binary: str, conf_file: Path, run_as: RunAs | None = None) -> None:
        self._argv = [binary, "--keep-in-foreground", f"--conf-file={conf_file}"]
        self._run_as = run_as
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self.closed = False

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def fileno(self) -> int | None:
        """The pipe dnsmasq writes its messages to, while it runs."""
        if self._proc is None or self._proc.stderr is None:
            return None
        return self._proc.stderr.fileno()

    def start(self) -> list[str]:
        """Start dnsmasq and wait until it serves; the log lines read meanwhile."""
        self._proc = subprocess.Popen(
            self._argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # signals reach it only through us
            # The account is set before `preexec_fn` runs, so the parent-death signal is
            # set as that account and kept across exec (files.RunAs says why).
            preexec_fn=_die_with_parent,
            **({} if self._run_as is None else self._run_as.popen_account()),
        )
        assert self._proc.stderr is not None
        os.set_blocking(self._proc.stderr.fileno(), False)
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._proc.stderr, selectors.EVENT_READ)
        seen: list[str] = []
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            lines = self.read_lines(0.1)
            seen.extend(lines)
            if any(": started, version" in line for line in lines):
                return seen
            if self.exited():
                seen.extend(self.read_lines(0))
                raise DnsError(
                    f"dnsmasq exited with status {self._proc.returncode} at startup: "
                    + ("; ".join(_messages(seen)) or "no output"),
                    hint="is the address in use or not on this host?",
                )
        self.stop()
        raise DnsError(f"dnsmasq did not start within {READY_TIMEOUT:.0f}s")

    def read_lines(self, timeout: float) -> list[str]:
        """Complete log lines available within `timeout` seconds."""
        if self._proc is None or self._proc.stderr is None:
            return []
        chunks: list[bytes] = []
        for _key, _events in self._selector.select(timeout):
            with contextlib.suppress(BlockingIOError):
                while chunk := os.read(self._proc.stderr.fileno(), 65536):
                    chunks.append(chunk)
                self.closed = True  # read returned b"": dnsmasq closed its end
        if not chunks:
            return []
        data = self._buffer + b"".join(chunks)
        *complete, self._buffer = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in complete]

    def exited(self) -> bool:
        return self._proc is not None and self._proc.poll() is not None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    def reload(self) -> None:
        """SIGHUP: dnsmasq re-reads its servers file and clears its cache."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGHUP)

    def stop(self) -> list[str]:
        """SIGTERM, then SIGKILL after a grace period; the last log lines."""
        if self._proc is None or self._proc.stderr is None:
            return []
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        lines = self.read_lines(0)
        if self._buffer:
            lines.append(self._buffer.decode("utf-8", "replace"))
            self._buffer = b""
        self._selector.close()
        self._proc.stderr.close()
        self._proc.stderr = None  # stopped: a second stop() is a no-op
        return lines


def message(line: str) -> str:
    """A log line without its `dnsmasq[pid]: ` prefix."""
    return _PREFIX.sub("", line.rstrip("\n"), count=1)


def _messages(lines: list[str]) -> list[str]:
    return [message(line) for line in lines if line.strip()][-5:]
