"""The guest's audit lines reach the host's file once each, whole lines only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentcage.cage.vm.audit_follow import AuditFollower
from agentcage.errors import VmmError


class Guest:
    """The guest agent's `read` over an in-memory file, as guest_agent.read_file answers."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def ask(self, op: str, wait: float = 10, **arguments: Any) -> dict[str, Any]:
        assert op == "read"
        if arguments["path"] not in self.files:
            raise VmmError("no such file")
        data = self.files[arguments["path"]]
        offset = min(int(arguments.get("offset", 0)), len(data))
        return {"ok": True, "content": data[offset:].decode(), "size": len(data)}


def test_whole_lines_are_appended_once_and_a_torn_line_waits(tmp_path: Path) -> None:
    guest = Guest()
    host = tmp_path / "proxy.jsonl"
    follower = AuditFollower(guest.ask, {"state/audit/proxy/proxy.jsonl": host})
    follower.poll()  # not written yet: nothing, no error
    guest.files["state/audit/proxy/proxy.jsonl"] = b'{"a": 1}\n{"b": "\xc3\xa9"}\n{"c"'
    follower.poll()
    follower.poll()
    assert host.read_text() == '{"a": 1}\n{"b": "\u00e9"}\n'
    guest.files["state/audit/proxy/proxy.jsonl"] += b": 3}\n"
    follower.poll()
    assert host.read_text().splitlines() == ['{"a": 1}', '{"b": "\u00e9"}', '{"c": 3}']


def test_a_restarted_cage_does_not_copy_its_old_lines_again(tmp_path: Path) -> None:
    host = tmp_path / "dns.jsonl"
    host.write_text('{"old": 1}\n')
    guest = Guest()
    # The guest starts with a copy of the host's file (guest_cage.copy_state).
    guest.files["state/audit/dns/dns.jsonl"] = b'{"old": 1}\n{"new": 2}\n'
    follower = AuditFollower(guest.ask, {"state/audit/dns/dns.jsonl": host})
    follower.poll()
    assert host.read_text() == '{"old": 1}\n{"new": 2}\n'


def test_stopping_a_follower_that_never_started_asks_nothing(tmp_path: Path) -> None:
    # A cage that failed before it was up: `vm run`'s cleanup must not raise here, or the
    # cage's own error is hidden behind "cannot join thread before it is started".
    asked: list[str] = []
    follower = AuditFollower(lambda op, **_: asked.append(op) or {}, {"a": tmp_path / "a"})
    follower.stop()
    assert asked == []
