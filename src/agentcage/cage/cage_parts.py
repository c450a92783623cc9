"""What every part of the `Cages` facade (lifecycle.py) works with.

The facade is split by job (deploy.py, control.py, statuses.py, destroy.py); each part is
a mixin over these attributes, so the cli keeps one object and one set of names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from agentcage.cage.podman import PodmanHost
from agentcage.cage.state import StateStore

if TYPE_CHECKING:  # `cage destroy` builds no image and skips the builder's imports
    from agentcage.cage.images import ImageBuilder

Progress = Callable[[str], None]


class CageParts:
    store: StateStore
    host: PodmanHost
    builder: ImageBuilder
    progress: Progress
    # Cage -> its agent's ActiveState right after this object deployed it (create, update).
    deployed_states: dict[str, str]
