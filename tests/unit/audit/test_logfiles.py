"""Rotation: whole lines in exactly one file each, the newest `keep` files kept."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from agentcage.audit.logfiles import Rotation, generations, rotate, rotated
from agentcage.audit.record import AuditRecord
from agentcage.audit.writer import AuditWriter


def _lines(files: list[Path]) -> list[str]:
    return [line for path in files for line in path.read_text().splitlines()]


def test_generations_are_oldest_first_and_ignore_other_names(tmp_path: Path) -> None:
    log = tmp_path / "proxy.jsonl"
    for name in ("proxy.jsonl.2", "proxy.jsonl.10", "proxy.jsonl.1", "proxy.jsonl"):
        (tmp_path / name).write_text(name + "\n")
    for other in ("proxy.jsonl.0", "proxy.jsonl.x", "proxy.jsonl.1.gz", "dns.jsonl.1"):
        (tmp_path / other).write_text("")
    assert [p.name for p in generations(log)] == [
        "proxy.jsonl.10",
        "proxy.jsonl.2",
        "proxy.jsonl.1",
        "proxy.jsonl",
    ]
    assert generations(tmp_path / "missing" / "proxy.jsonl") == []


def test_rotate_shifts_and_drops_what_passes_keep(tmp_path: Path) -> None:
    log = tmp_path / "a.jsonl"
    for generation in (0, 1, 2, 3, 7):
        rotated(log, generation).write_text(f"{generation}\n")
    rotate(log, keep=3)
    # .7 was past keep (a larger keep left it), .3 would become .4: both gone.
    assert {p.name: p.read_text() for p in generations(log)} == {
        "a.jsonl.3": "2\n",
        "a.jsonl.2": "1\n",
        "a.jsonl.1": "0\n",
    }


@pytest.mark.parametrize(
    ("size", "adding", "due"),
    [(0, 500, False), (90, 10, False), (90, 11, True), (1, 5000, True)],
)
def test_rotation_is_due_before_a_line_would_pass_the_size(
    size: int, adding: int, due: bool
) -> None:
    assert Rotation(max_bytes=100, keep=2).due(size, adding) is due
    assert Rotation(max_bytes=0, keep=2).due(size, adding) is False


def test_concurrent_writers_lose_and_split_no_line_across_rotations(tmp_path: Path) -> None:
    log = tmp_path / "proxy.jsonl"
    writer = AuditWriter(log, rotation=Rotation(max_bytes=4096, keep=1000))
    threads, per_thread = 8, 400

    def hammer(n: int) -> None:
        for i in range(per_thread):
            writer.write(AuditRecord(kind="http", verdict="allow", host=f"t{n}.example", port=i))

    workers = [threading.Thread(target=hammer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    writer.close()
    files = generations(log)
    assert len(files) > 100  # it really rotated, many times
    assert all(path.stat().st_size <= 4096 for path in files)
    seen = [json.loads(line) for line in _lines(files)]  # a torn line would not parse
    assert sorted((r["host"], r["port"]) for r in seen) == sorted(
        (f"t{n}.example", i) for n in range(threads) for i in range(per_thread)
    )


def test_a_failed_rotation_keeps_writing_and_stops_rotating_until_reopen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "proxy.jsonl"
    writer = AuditWriter(log, rotation=Rotation(max_bytes=200, keep=1))
    writer.write(AuditRecord(kind="http", verdict="allow", host="first.example"))

    def refuse(*_: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("agentcage.audit.logfiles.os.rename", refuse)
    with caplog.at_level("ERROR", logger="agentcage.audit.writer"):
        for n in range(5):
            writer.write(AuditRecord(kind="http", verdict="allow", host=f"n{n}.example"))
    assert [r.getMessage() for r in caplog.records] == [
        f"cannot rotate the audit log {log} ([Errno 13] Permission denied); "
        "it grows until the log is reopened (SIGHUP)"
    ]
    assert len(log.read_text().splitlines()) == 6
    monkeypatch.undo()
    writer.reopen()
    writer.write(AuditRecord(kind="http", verdict="allow", host="after.example"))
    writer.close()
    assert [json.loads(x)["host"] for x in _lines(generations(log))][-2:] == [
        "n4.example",
        "after.example",
    ]
    assert len(generations(log)) == 2
