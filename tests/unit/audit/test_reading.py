"""Reading logs back: generations in order, merged by time, followed across rotations."""

from __future__ import annotations

import json
from pathlib import Path

from agentcage.audit.logfiles import Rotation, rotated
from agentcage.audit.reading import AuditLogs
from agentcage.audit.record import AuditRecord
from agentcage.audit.writer import AuditWriter


def _write(writer: AuditWriter, n: int, time: str = "") -> None:
    extra = {"time": time} if time else {}
    writer.write(AuditRecord(kind="http", verdict="allow", path=f"/{n}", **extra))  # type: ignore[arg-type]


def _paths(lines: object) -> list[str]:
    return [line.record["path"] for line in lines]  # type: ignore[attr-defined]


def test_existing_lines_come_oldest_file_first_and_logs_merge_by_time(tmp_path: Path) -> None:
    proxy = AuditWriter(tmp_path / "proxy.jsonl", rotation=Rotation(max_bytes=300, keep=50))
    dns = AuditWriter(tmp_path / "dns.jsonl")
    for n in range(10):
        _write(proxy, n, f"2026-01-01T00:00:{2 * n:02d}.000Z")
        _write(dns, 100 + n, f"2026-01-01T00:00:{2 * n + 1:02d}.000Z")
    (tmp_path / "proxy.jsonl").open("a").write('{"torn": ')  # a line still being written
    assert rotated(tmp_path / "proxy.jsonl", 5).exists()
    logs = AuditLogs([tmp_path / "proxy.jsonl", tmp_path / "dns.jsonl"])
    assert _paths(logs.existing()) == [f"/{p}" for n in range(10) for p in (n, 100 + n)]


def _following(path: Path, keep: int) -> tuple[AuditWriter, AuditLogs]:
    """A writer rotating after every line, and a follower that has read the first one."""
    writer = AuditWriter(path, rotation=Rotation(max_bytes=400, keep=keep))
    _write(writer, 0)
    logs = AuditLogs([path])
    assert _paths(logs.existing()) == ["/0"]
    return writer, logs


def test_following_catches_up_on_several_rotations_between_polls(tmp_path: Path) -> None:
    writer, logs = _following(tmp_path / "proxy.jsonl", keep=50)
    for n in range(1, 30):  # a line a file: 29 rotations before the next poll
        _write(writer, n)
    assert _paths(logs.poll()) == [f"/{n}" for n in range(1, 30)]
    assert logs.poll() == []
    _write(writer, 30)
    assert _paths(logs.poll()) == ["/30"]


def test_following_a_log_that_does_not_exist_yet_and_a_line_written_in_two_parts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "later" / "dns.jsonl"
    logs = AuditLogs([path])
    assert list(logs.existing()) == [] and logs.poll() == []
    path.parent.mkdir()
    line = json.dumps({"kind": "dns", "qname": "a.example", "time": "x"})
    path.write_text(line[:10])
    assert logs.poll() == []
    with path.open("a") as handle:
        handle.write(line[10:] + "\n")
    assert [x.record["qname"] for x in logs.poll()] == ["a.example"]
    logs.close()


def test_following_past_the_keep_count_reads_what_is_left_once(tmp_path: Path) -> None:
    writer, logs = _following(tmp_path / "proxy.jsonl", keep=3)
    for n in range(1, 10):  # our file and the next five are removed before the poll
        _write(writer, n)
    assert _paths(logs.poll()) == ["/6", "/7", "/8", "/9"]
    _write(writer, 10)
    assert _paths(logs.poll()) == ["/10"]


def test_a_handed_off_log_says_how_much_was_read_and_is_no_longer_followed(
    tmp_path: Path,
) -> None:
    proxy, dns = tmp_path / "proxy.jsonl", tmp_path / "dns.jsonl"
    whole = b'{"time": "1", "path": "/1"}\n{"time": "2", "path": "/2"}\n'
    proxy.write_bytes(whole + b'{"time": "3", "pa')  # copied while /3 was written
    logs = AuditLogs([proxy, dns])
    assert _paths(logs.existing()) == ["/1", "/2"]
    assert logs.hand_off([proxy]) == [len(whole)]  # the torn line is read again there
    with proxy.open("ab") as handle:
        handle.write(b'th": "/3"}\n')
    dns.write_bytes(b'{"time": "4", "path": "/4"}\n')
    assert _paths(logs.poll()) == ["/4"]  # only the log still followed here
    logs.close()
