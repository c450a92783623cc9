"""What every part of the `Cages` facade (lifecycle.py) works with.

The facade is split by job (deploy.py, control.py, statuses.py, destroy.py); each part is
a mixin over these attributes, so the cli keeps one object and one set of names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from agentcage.cage.contract import secrets_in
from agentcage.cage.podman import PodmanHost
from agentcage.cage.state import StateStore

if TYPE_CHECKING:  # `cage destroy` builds no image and skips the builder's imports
    from agentcage.cage.images import ImageBuilder

Progress = Callable[[str], None]


class CageParts:
    builder: ImageBuilder  # set by `Cages` only: `cage destroy` (CageDestroy alone) builds none

    def __init__(self, store: StateStore, host: PodmanHost, progress: Progress) -> None:
        self.store = store
        self.host = host
        self.progress = progress
        # Cage -> its agent's ActiveState right after this object deployed it (create, update).
        self.deployed_states: dict[str, str] = {}

    def secret_names(self, name: str) -> list[str]:
        """Cage NAME's secrets that exist as Podman secrets where it runs."""
        return secrets_in(name, list_secrets(self.host))


def list_secrets(host: PodmanHost) -> str:
    """Every Podman secret's name where `host`'s cages run, one a line."""
    return host.podman("secret", "ls", "--format", "{{.Name}}", check=False).stdout
