"""Create, update, list, start, stop, reload and destroy cages: the `Cages` facade.

Each job lives in its own module (deploy.py: create and update; control.py: start, stop,
reload, logs; statuses.py: list and status; destroy.py: removal); `Cages` joins them so
callers hold one object.
"""

from __future__ import annotations

from agentcage.cage.cage_parts import Progress
from agentcage.cage.control import CageControl
from agentcage.cage.deploy import CageDeploy
from agentcage.cage.images import ImageBuilder
from agentcage.cage.podman import PodmanHost
from agentcage.cage.state import StateStore
from agentcage.cage.statuses import CageStatus, CageStatuses

__all__ = ["CageStatus", "Cages", "Progress"]


class Cages(CageDeploy, CageControl, CageStatuses):
    def __init__(
        self,
        store: StateStore | None = None,
        host: PodmanHost | None = None,
        builder: ImageBuilder | None = None,
        progress: Progress = lambda _: None,
    ) -> None:
        super().__init__(store or StateStore(), host or PodmanHost.detect(), progress)
        self.builder = builder or ImageBuilder(progress=progress)
