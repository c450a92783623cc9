"""What `cage create` asks where the cages run before it needs the answers.

A create's first questions there (the host's fingerprint, host_ready.py, and the list of
Podman secrets its units mount) depend on nothing the config says. Each is a round trip
(a `podman exec`, an `ssh`): asked in threads before the facade's modules load and the
config is validated (0.15 s of the CLI's start here), both are answered by the time
`create` needs them, instead of one after the other after that start. Only reads are
asked early: the host check still passes before anything is written, and the answers
are used by one create only (remote_hosts.facade starts them for `cage create`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from agentcage.cage import host_ready
from agentcage.cage.cage_parts import list_secrets
from agentcage.cage.contract import secrets_in
from agentcage.cage.podman import PodmanHost

T = TypeVar("T")


class AskedAhead:
    """Both questions, asked at once the moment this is made; `result` raises as the
    question itself would have."""

    def __init__(self, host: PodmanHost) -> None:
        self.fingerprint: Future[str] = _asked(host_ready.fingerprint, host)
        self.secrets: Future[str] = _asked(list_secrets, host)

    def secret_names(self, cage: str) -> list[str]:
        """`cage`'s secrets among those listed (as `CageParts.secret_names` gives them)."""
        return secrets_in(cage, self.secrets.result())


def _asked(question: Callable[[PodmanHost], T], host: PodmanHost) -> Future[T]:
    """`question(host)` in a daemon thread: a create that stops before it needs the answer
    (an invalid config) exits at once, not after a slow host's answer (a pool's threads
    are waited for at exit)."""
    future: Future[T] = Future()

    def ask() -> None:
        future.set_running_or_notify_cancel()
        try:
            future.set_result(question(host))
        except BaseException as exc:  # handed to whoever takes the answer
            future.set_exception(exc)

    threading.Thread(target=ask, name="asked-ahead", daemon=True).start()
    return future
