"""Run the real `agentcage proxy run` as a subprocess for integration tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support.audit_lines import whole_records

READY = re.compile(r"listening on (\S+):(\d+)")


def agentcage_command() -> list[str]:
    """The installed `agentcage` script next to this interpreter (a missing one fails)."""
    script = Path(sys.executable).with_name("agentcage")
    if not script.exists():
        raise RuntimeError(f"{script} not found; run `uv sync` to install the package")
    return [str(script)]


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`agentcage ARGS...` to its end, output captured; `env` adds to this environment."""
    return subprocess.run(
        [*agentcage_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


class ProxyProcess:
    """`agentcage proxy run` on 127.0.0.1:<free port>, its stderr captured, audit to a file.

    `url` is the proxy URL for clients; `ca_cert` the CA file they must trust;
    `audit()` parses every audit line written so far.
    """

    def __init__(
        self,
        config: Path,
        workdir: Path,
        *,
        upstream_ca: Path | None = None,
        env: Mapping[str, str] | None = None,
        secrets_dir: Path | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.config = config
        self.ca_dir = workdir / "ca"
        self.audit_path = workdir / "audit.jsonl"
        args = [
            *agentcage_command(),
            "proxy",
            "run",
            "-c",
            str(config),
            "--listen",
            "127.0.0.1:0",
            "--ca-dir",
            str(self.ca_dir),
            "--audit-log",
            str(self.audit_path),
        ]
        if upstream_ca:
            args += ["--upstream-ca", str(upstream_ca)]
        if secrets_dir:
            args += ["--secrets-dir", str(secrets_dir)]
        self.args = args + list(extra_args or [])
        self.env = {**_clean_env(), **(env or {})}
        self.port = 0
        self.stderr_lines: list[str] = []
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ca_cert(self) -> Path:
        return self.ca_dir / "mitmproxy-ca-cert.pem"

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 30) -> ProxyProcess:
        self._proc = subprocess.Popen(
            self.args,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = threading.Event()
        threading.Thread(target=self._drain, args=(ready,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"proxy did not start:\n{self.stderr}")
        return self

    def _drain(self, ready: threading.Event) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self.stderr_lines.append(line.rstrip("\n"))
            match = READY.search(line)
            if match and not ready.is_set():
                self.port = int(match.group(2))
                ready.set()

    def signal(self, signum: int) -> None:
        assert self._proc is not None
        self._proc.send_signal(signum)

    def stop(self, timeout: float = 10) -> int:
        if self._proc is None:
            return 0
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        return self._proc.returncode

    def __enter__(self) -> ProxyProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def audit(self) -> list[dict[str, Any]]:
        if not self.audit_path.exists():
            return []
        return whole_records(self.audit_path.read_text())

    def audit_text(self) -> str:
        return self.audit_path.read_text() if self.audit_path.exists() else ""

    def wait_for_audit(self, predicate: Any, timeout: float = 5) -> dict[str, Any]:
        """The first audit line matching `predicate`, waiting for it to be written."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.audit():
                if predicate(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching audit line in:\n{self.audit_text()}")
            time.sleep(0.05)


def _clean_env() -> dict[str, str]:
    # The proxy must not inherit a developer's proxy settings.
    drop = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    return {k: v for k, v in os.environ.items() if k.lower() not in drop}
