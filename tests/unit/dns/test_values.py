"""The sidecar's view of the proxy's fingerprint file: loaded, followed, failing closed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentcage.atomicfile import write_atomic
from agentcage.dns.values import NameValues, ValuesUnavailable
from agentcage.policy.leaks.fingerprints import fingerprint_values
from agentcage.policy.leaks.protected import Protected

FIRST = Protected("A", b"Q7vX2mR9kLp4Tz8Wc1Nb6Hy3Jd5Fs0Ga", "injected")
SECOND = Protected("B", b"Zr4Yq8Mn2Wx6Vb0Ct3Ks7Lg1Hp5Jd9Fe", "known")


def _publish(path: Path, *values: Protected) -> None:
    write_atomic(path, fingerprint_values(values).to_json())


def test_missing_then_present_then_replaced(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    notes: list[str] = []
    values = NameValues(path, notes.append)
    with pytest.raises(ValuesUnavailable, match="cannot be read"):
        values.match("x.example")
    assert notes == [
        f"name fingerprints {path} cannot be read (No such file or directory): "
        "answering SERVFAIL for names that would leave (fail closed)"
    ]
    with pytest.raises(ValuesUnavailable):
        values.match("x.example")
    assert len(notes) == 1
    _publish(path, FIRST)
    assert values.match(f"{FIRST.value.decode().lower()}.example") == "injected:A"
    assert values.match(f"{SECOND.value.decode().lower()}.example") is None
    _publish(path, SECOND)  # a new file (inode) each time: seen without a signal
    assert values.match(f"{SECOND.value.decode().lower()}.example") == "known:B"
    assert notes[-1] == f"name fingerprints loaded from {path}"


def test_a_damaged_file_fails_closed_until_fixed(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    _publish(path, FIRST)
    notes: list[str] = []
    values = NameValues(path, notes.append)
    assert values.match("plain.example") is None
    path.write_text('{"v": 1}')
    with pytest.raises(ValuesUnavailable, match="is not a fingerprint file"):
        values.match("plain.example")
    os.unlink(path)
    with pytest.raises(ValuesUnavailable, match="cannot be read"):
        values.match("plain.example")
    _publish(path, FIRST)
    assert values.match("plain.example") is None
