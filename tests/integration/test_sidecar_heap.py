"""Both sidecars give their start-up garbage back once they serve (heap.py).

The real `proxy run` and `dns run`, with `give_back_free_memory` wrapped to say when it
ran: after the `listening on` line, and with the C library's answer (glibc: it did).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.dns_sidecar import free_port

pytestmark = pytest.mark.integration

_REPORTING = """
import sys
import agentcage.heap as heap
real = heap.give_back_free_memory
def reported():
    given = real()
    print(f"gave back free memory: {given}", file=sys.stderr, flush=True)
    return given
heap.give_back_free_memory = reported
from agentcage.cli.main import main
sys.argv = ["agentcage", *sys.argv[1:]]
main()
"""
_CONFIG = {
    "name": "heap",
    "container": {"image": "x"},
    "domains": {"allow": ["a.example"]},
    "dns_servers": ["127.0.0.1"],
}


@pytest.mark.parametrize("sidecar", ["proxy", "dns"])
def test_a_sidecar_gives_back_its_free_memory_once_it_listens(tmp_path: Path, sidecar: str) -> None:
    config = tmp_path / "sidecar.json"
    config.write_text(json.dumps(_CONFIG))
    args = ["-c", str(config), "--audit-log", str(tmp_path / "audit.jsonl")]
    if sidecar == "proxy":
        args += ["--listen", "127.0.0.1:0", "--ca-dir", str(tmp_path / "ca")]
    else:
        args += ["--listen", f"127.0.0.1:{free_port()}"]
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _REPORTING, sidecar, "run", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        lines = _stderr_until(proc, "gave back free memory", timeout=60)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    listening = next(i for i, line in enumerate(lines) if "listening on" in line)
    assert lines.index("gave back free memory: True") > listening


def _stderr_until(proc: subprocess.Popen[bytes], marker: str, timeout: float) -> list[str]:
    assert proc.stderr is not None
    fd, seen = proc.stderr.fileno(), b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        chunk = os.read(fd, 65536) if ready else b""
        seen += chunk
        lines = seen.decode(errors="replace").splitlines()
        if any(line.startswith(marker) for line in lines):
            return lines
        if ready and not chunk:
            break
    raise AssertionError(f"no {marker!r} line: {seen.decode(errors='replace')}")
