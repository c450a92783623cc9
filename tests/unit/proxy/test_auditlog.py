"""The audit sink: whole lines appended, rotation followed, nothing written after close."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentcage.policy.audit import AuditRecord
from agentcage.proxy.auditlog import AuditLog


def _record(host: str) -> AuditRecord:
    return AuditRecord(kind="http", verdict="allow", host=host)


def test_lines_are_appended_and_rotation_is_followed(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "proxy.jsonl"
    path.parent.mkdir()
    path.write_text('{"earlier": true}\n')
    log = AuditLog(path)
    log.write(_record("a.example"))
    path.rename(tmp_path / "logs" / "proxy.jsonl.1")  # what logrotate does
    log.reopen()
    log.write(_record("b.example"))
    log.close()
    rotated = (tmp_path / "logs" / "proxy.jsonl.1").read_text().splitlines()
    assert [json.loads(line).get("host") for line in rotated] == [None, "a.example"]
    assert json.loads(path.read_text())["host"] == "b.example"


def test_nothing_is_written_after_close(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "proxy.jsonl")
    log.close()
    with pytest.raises(ValueError, match="closed"):
        log.write(_record("late.example"))
    assert (tmp_path / "proxy.jsonl").read_text() == ""
