"""Block notices: what `agentcage cage logs NAME -s proxy` shows of refused requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcage.audit.record import AuditRecord
from agentcage.errors import ConfigError
from agentcage.proxy.blocknotices import (
    QUIET_SECONDS,
    AuditAlarm,
    BlockNotices,
    NoticingAuditWriter,
)

REASON = "more than 1 requests/s ...; raise rate_limit.reads.per_second or .burst"


def _refusal(path: str, host: str = "registry.npmjs.org") -> AuditRecord:
    return AuditRecord(
        kind="http",
        verdict="block",
        method="GET",
        host=host,
        path=path,
        inspector="rate-limit",
        reason=REASON,
        rules=("rate-limit:reads",),
    )


def test_blocks_are_told_once_per_kind_per_window_and_every_one_is_audited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [100.0]
    log = NoticingAuditWriter(
        tmp_path / "proxy.jsonl",
        error=ConfigError,
        hint="",
        notices=BlockNotices(clock=lambda: now[0]),
    )
    with caplog.at_level("WARNING", logger="agentcage.proxy.blocknotices"):
        log.write(AuditRecord(kind="http", verdict="allow", host="allowed.example"))
        for n in range(5):
            log.write(_refusal(f"/pkg-{n}"))
        log.write(_refusal("/other", host="pypi.org"))
        now[0] += QUIET_SECONDS
        log.write(_refusal("/pkg-9"))
    assert [r.getMessage() for r in caplog.records] == [
        f"blocked GET registry.npmjs.org/pkg-0 (rate-limit): {REASON}",
        f"blocked GET pypi.org/other (rate-limit): {REASON}",
        f"blocked GET registry.npmjs.org/pkg-9 (rate-limit): {REASON} "
        "(and 4 more like it since the last such line)",
    ]
    assert len((tmp_path / "proxy.jsonl").read_text().splitlines()) == 8


def test_a_failed_audit_write_raises_an_alarm_once_per_window_then_an_all_clear(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [100.0]
    target = tmp_path / "proxy.jsonl"
    target.symlink_to("/dev/full")
    log = NoticingAuditWriter(
        target, error=ConfigError, hint="", alarm=AuditAlarm(clock=lambda: now[0])
    )
    with caplog.at_level("WARNING", logger="agentcage.proxy.blocknotices"):
        for _ in range(3):
            with pytest.raises(OSError):
                log.write(AuditRecord(kind="http", verdict="allow", host="a.example"))
        now[0] += QUIET_SECONDS
        with pytest.raises(OSError):
            log.write(AuditRecord(kind="http", verdict="allow", host="a.example"))
        target.unlink()  # room again
        log.reopen()
        log.write(AuditRecord(kind="http", verdict="allow", host="b.example"))
        log.write(AuditRecord(kind="http", verdict="allow", host="c.example"))
    refused = "requests are refused until it can be written"
    assert [r.getMessage() for r in caplog.records] == [
        f"ALERT: cannot write the audit log {target}: No space left on device; {refused}",
        f"ALERT: cannot write the audit log {target}: No space left on device; {refused} "
        "(2 more failed writes since the last such line)",
        "the audit log is written again, after 4 failed writes",
    ]
