"""Destroy a cage in one pass: units, containers, networks, volumes, secrets, then state.

The state goes last, once nothing of the cage is left on its host (teardown.py).
"""

from __future__ import annotations

from agentcage.cage import teardown
from agentcage.cage.cage_parts import CageParts
from agentcage.cage.kube.kube_record import refuse_kube
from agentcage.cage.state import CONFIG_NORMALIZED
from agentcage.errors import PodmanError, StateError, UnreachableError


class CageDestroy(CageParts):
    def destroy(self, name: str, missing_ok: bool = False) -> bool:
        """Remove NAME's units, containers, networks, volumes and secrets, then its state.

        The state goes only once an inventory finds nothing of the cage left; a host that
        cannot be asked raises `UnreachableError` with everything kept. Returns False
        (`missing_ok`) or raises "no cage named" when there is neither state nor a trace.
        """
        known = self.store.path(name).exists()  # validates the name too
        # Forgetting a cage that runs on a cluster would leave it running unmanaged.
        refuse_kube(self.store, name)
        volumes = self._volume_names(name)
        try:
            # With state, the containers go while the rest is listed (the listing is the
            # slow part of a destroy on a busy host): `inventory`'s `remove_first`.
            found = teardown.inventory(self.host, name, volumes, remove_first=known)
        except UnreachableError:
            if known:
                raise
            found = teardown.Remains()  # no state and nothing to look at: no cage
        if not known and found.empty:
            if missing_ok:
                return False
            raise StateError(
                f"no cage named {name!r}", hint="`agentcage cage list` shows the cages you have"
            )
        if not known:
            self.progress(f"no state for cage {name!r}, but the host still has parts of it:")
            for line in found.lines():
                self.progress(f"  {line}")
        problems, left = teardown.remove(self.host, name, found, volumes)
        if not left.empty:
            raise PodmanError(
                f"cage {name!r} was only partly removed; its state is kept:\n  "
                + "\n  ".join([*problems, *(f"left: {line}" for line in left.lines())]),
                hint=f"fix the cause and run `agentcage cage destroy {name}` again",
            )
        self._remove_state(name)
        return True

    def _volume_names(self, name: str) -> tuple[str, ...]:
        """The named volumes in the stored config, read as JSON: no schema (pydantic) to load.

        The normalized config was validated when it was stored; a damaged one gives none
        (the inventory still finds the cage's volumes by their label).
        """
        try:
            data = self.store.read_json(name, CONFIG_NORMALIZED)
        except StateError:
            return ()
        container = data.get("container") if isinstance(data, dict) else None
        volumes = container.get("named_volumes") if isinstance(container, dict) else None
        return tuple(str(v) for v in volumes) if isinstance(volumes, dict) else ()

    def _forget(self, name: str) -> None:
        """Undo a create that never reached systemd: only its files exist."""
        self.host.files.unlink(teardown.host_unit_files(self.host, name))
        self._remove_state(name)

    def _remove_state(self, name: str) -> None:
        directory = self.store.path(name)
        self.host.files.drop(directory)
        self.store.remove(name)
        if directory.exists() and self.host.rootless:
            # Rootless `:U` mounts chowned the CA and audit directories to the containers'
            # sub-UIDs; only the user namespace can delete them.
            self.host.podman("unshare", "rm", "-rf", str(directory), check=False)
        if directory.exists():
            raise StateError(f"could not remove {directory}; remove it by hand")
