"""What `cage create` asks where the cages run before it needs the answers.

A create's first questions there (the host's fingerprint, host_ready.py, and the list of
Podman secrets its units mount) depend on nothing the config says. Each is a round trip
(a `podman exec`, an `ssh`): asked in threads before the facade's modules load and the
config is validated (0.15 s of the CLI's start here), both are answered by the time
`create` needs them, instead of one after the other after that start. Only reads are
asked early: the host check still passes before anything is written, and the answers
are used by one create only (remote_hosts.facade starts them for `cage create`).

The third is this machine's Podman's: which of the images the cage needs exist
(`ImageBuilder.look_ahead_usual`), for the refs no config decides: the sidecars on the
chosen base and the Debian agent image. It went out after the config's validation
(+0.37 to +0.47 s of the CLI's start here) and now goes out beside the other two (+0.08
to +0.15 s, after the refs' source digest); a config naming another image has that one
asked when it is read (`ImageBuilder.look_ahead`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, TypeVar

from agentcage.cage import host_ready
from agentcage.cage.cage_parts import list_secrets
from agentcage.cage.contract import secrets_in
from agentcage.cage.podman import PodmanHost

if TYPE_CHECKING:
    from agentcage.cage.images import ImageBuilder

T = TypeVar("T")


class AskedAhead:
    """The questions, asked at once the moment this is made; `result` raises as the
    question itself would have.

    `base` (as `choose_base` gives it): ask about the images too, with `builder` (made
    here with `progress` when not given), which `create` then builds with; `images` is
    done once it has looked (None: not asked)."""

    def __init__(
        self,
        host: PodmanHost,
        base: str | None = None,
        builder: ImageBuilder | None = None,
        progress: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.fingerprint: Future[str] = _asked(host_ready.fingerprint, host)
        self.secrets: Future[str] = _asked(list_secrets, host)
        self.builder = builder
        self.images: Future[None] | None = None
        if base is not None:
            if builder is None:
                from agentcage.cage.images import ImageBuilder  # not for other commands

                builder = self.builder = ImageBuilder(progress=progress)
            self.images = _asked(lambda _: builder.look_ahead_usual(base), host)

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
