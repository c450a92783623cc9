"""The audit sink: whole lines appended, rotation followed, nothing written after close."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from agentcage.errors import ConfigError
from agentcage.policy.audit import AuditRecord
from agentcage.proxy.auditlog import QUIET_SECONDS, AuditLog


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


def test_a_short_write_is_completed_and_a_full_disk_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditLog(tmp_path / "proxy.jsonl")
    real_write = os.write

    def short(fd: int, data: bytes) -> int:
        return real_write(fd, data[:7])  # as a signal or a nearly full disk may

    monkeypatch.setattr(os, "write", short)
    log.write(_record("short.example"))
    monkeypatch.setattr(os, "write", real_write)
    assert json.loads((tmp_path / "proxy.jsonl").read_text())["host"] == "short.example"
    full = AuditLog(Path("/dev/full"))
    with pytest.raises(OSError) as err:
        full.write(_record("lost.example"))
    assert err.value.errno == errno.ENOSPC
    full.close()
    log.close()


def test_an_unopenable_log_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot open the audit log"):
        AuditLog(tmp_path / "file" / "proxy.jsonl")


def _refusal(path: str, host: str = "registry.npmjs.org") -> AuditRecord:
    reason = "more than 1 requests/s ...; raise rate_limit.reads.per_second or .burst"
    return AuditRecord(
        kind="http",
        verdict="block",
        method="GET",
        host=host,
        path=path,
        inspector="rate-limit",
        reason=reason,
        rules=("rate-limit:reads",),
    )


def test_blocks_are_told_on_stderr_once_per_kind_per_window(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [100.0]
    log = AuditLog(tmp_path / "proxy.jsonl", clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="agentcage.proxy.auditlog"):
        log.write(_record("allowed.example"))
        for n in range(5):
            log.write(_refusal(f"/pkg-{n}"))
        log.write(_refusal("/other", host="pypi.org"))
        now[0] += QUIET_SECONDS
        log.write(_refusal("/pkg-9"))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "blocked GET registry.npmjs.org/pkg-0 (rate-limit): more than 1 requests/s ...; "
        "raise rate_limit.reads.per_second or .burst",
        "blocked GET pypi.org/other (rate-limit): more than 1 requests/s ...; "
        "raise rate_limit.reads.per_second or .burst",
        "blocked GET registry.npmjs.org/pkg-9 (rate-limit): more than 1 requests/s ...; "
        "raise rate_limit.reads.per_second or .burst (and 4 more like it since the last "
        "such line)",
    ]
    assert len((tmp_path / "proxy.jsonl").read_text().splitlines()) == 8  # all audited
