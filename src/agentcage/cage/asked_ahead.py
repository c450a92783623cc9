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

from concurrent.futures import Future, ThreadPoolExecutor

from agentcage.cage import host_ready
from agentcage.cage.cage_parts import list_secrets
from agentcage.cage.contract import secrets_in
from agentcage.cage.podman import PodmanHost


class AskedAhead:
    """Both questions, asked at once the moment this is made; `result` raises as the
    question itself would have."""

    def __init__(self, host: PodmanHost) -> None:
        # Not a `with`: the point is not to wait here. Threads of a shut-down pool still
        # finish their task, and the interpreter waits for them at exit.
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="asked-ahead")
        self.fingerprint: Future[str] = pool.submit(host_ready.fingerprint, host)
        self.secrets: Future[str] = pool.submit(list_secrets, host)
        pool.shutdown(wait=False)

    def secret_names(self, cage: str) -> list[str]:
        """`cage`'s secrets among those listed (as `CageParts.secret_names` gives them)."""
        return secrets_in(cage, self.secrets.result())
