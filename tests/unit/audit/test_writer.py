"""The audit writer: whole lines appended, rotation followed, nothing written after close."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from agentcage.audit.record import AuditRecord
from agentcage.audit.writer import AuditWriter
from agentcage.errors import AgentcageError, ConfigError


def _record(host: str) -> AuditRecord:
    return AuditRecord(kind="http", verdict="allow", host=host)


def test_lines_are_appended_and_rotation_is_followed(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "proxy.jsonl"
    path.parent.mkdir()
    path.write_text('{"earlier": true}\n')
    log = AuditWriter(path)
    log.write(_record("a.example"))
    path.rename(tmp_path / "logs" / "proxy.jsonl.1")  # what logrotate does
    log.reopen()
    log.write(_record("b.example"))
    log.close()
    rotated = (tmp_path / "logs" / "proxy.jsonl.1").read_text().splitlines()
    assert [json.loads(line).get("host") for line in rotated] == [None, "a.example"]
    assert json.loads(path.read_text())["host"] == "b.example"


def test_nothing_is_written_after_close(tmp_path: Path) -> None:
    log = AuditWriter(tmp_path / "proxy.jsonl")
    log.close()
    with pytest.raises(ValueError, match="closed"):
        log.write(_record("late.example"))
    assert (tmp_path / "proxy.jsonl").read_text() == ""


def test_a_short_write_is_completed_and_a_full_disk_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditWriter(tmp_path / "proxy.jsonl")
    real_write = os.write

    def short(fd: int, data: bytes) -> int:
        return real_write(fd, data[:7])  # as a signal or a nearly full disk may

    monkeypatch.setattr(os, "write", short)
    log.write(_record("short.example"))
    monkeypatch.setattr(os, "write", real_write)
    assert json.loads((tmp_path / "proxy.jsonl").read_text())["host"] == "short.example"
    full = AuditWriter(Path("/dev/full"))
    with pytest.raises(OSError) as err:
        full.write(_record("lost.example"))
    assert err.value.errno == errno.ENOSPC
    full.close()
    log.close()


def test_an_unopenable_log_raises_the_callers_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(AgentcageError, match="cannot open the audit log") as plain:
        AuditWriter(tmp_path / "file" / "audit.jsonl")
    assert plain.value.hint == "check that its directory exists and is writable"
    with pytest.raises(ConfigError, match=r"^cannot open the proxy log \S*audit\.jsonl: ") as own:
        AuditWriter(
            tmp_path / "file" / "audit.jsonl", title="proxy log", error=ConfigError, hint="h"
        )
    assert own.value.hint == "h"
