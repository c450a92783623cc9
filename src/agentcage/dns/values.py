"""The proxy's fingerprints of protected values, as the DNS sidecar reads them.

`agentcage dns run --name-fingerprints FILE` refuses names carrying a protected value
(`policy.leaks.fingerprints`). The file is the proxy's: it may not exist yet, or be
replaced at any time. So it is looked at before each check (one `stat`), re-read when
it changed, and while it is missing or unreadable the check fails (`ValuesUnavailable`)
and the sidecar answers SERVFAIL rather than forward unchecked (fail closed).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from agentcage.policy.leaks.fingerprints import NameFingerprints


class ValuesUnavailable(Exception):
    """The fingerprints cannot be used right now; the message says why."""


class NameValues:
    def __init__(self, path: Path, note: Callable[[str], None]) -> None:
        self.path = path
        self._note = note
        self._stamp: tuple[int, int, int] | None = None
        self._fingerprints: NameFingerprints | None = None
        self._problem = "not read yet"

    def match(self, name: str) -> str | None:
        """The rule of the protected value `name` carries, if any; `ValuesUnavailable`."""
        self.refresh()
        if self._fingerprints is None:
            raise ValuesUnavailable(f"{self.path} {self._problem}")
        return self._fingerprints.match(name)

    def refresh(self, *, force: bool = False) -> None:
        try:
            info = os.stat(self.path)
        except OSError as exc:
            self._fail(f"cannot be read ({exc.strerror})", None)
            return
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp == self._stamp and not force:
            return
        try:
            fingerprints = NameFingerprints.from_json(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            self._fail(f"cannot be read ({exc.strerror})", stamp)
            return
        except (ValueError, UnicodeDecodeError) as exc:
            self._fail(f"is not a fingerprint file ({exc})", stamp)
            return
        if self._fingerprints is None:
            self._note(f"name fingerprints loaded from {self.path}")
        self._stamp, self._fingerprints = stamp, fingerprints

    def _fail(self, problem: str, stamp: tuple[int, int, int] | None) -> None:
        if self._fingerprints is not None or problem != self._problem:
            self._note(
                f"name fingerprints {self.path} {problem}: answering SERVFAIL for "
                "names that would leave (fail closed)"
            )
        self._stamp, self._fingerprints, self._problem = stamp, None, problem
