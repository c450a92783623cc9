"""The deployment state store: `$XDG_CONFIG_HOME/agentcage/deployments/<name>/`.

Each deployment keeps the config it was deployed from (the user's file as given
and the validated, normalized form) plus whatever later layers record. Files are
written atomically (temp file, fsync, rename) with 0600 permissions inside 0700
directories, because they name secrets and sit next to a CA key.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentcage.atomicfile import write_atomic, write_atomic_all
from agentcage.config.cage_name import NAME_PATTERN
from agentcage.errors import StateError

if TYPE_CHECKING:
    from agentcage.config.schema import CageConfig

CONFIG_SOURCE = "config.yaml"
CONFIG_NORMALIZED = "config.json"
__all__ = [
    "StateStore",
    "config_home",
    "config_json",
    "data_home",
    "write_atomic",
    "write_atomic_all",
]


def config_home(environ: Mapping[str, str] | None = None) -> Path:
    return _xdg_dir(environ, "XDG_CONFIG_HOME", ".config")


def data_home(environ: Mapping[str, str] | None = None) -> Path:
    """Bulky data that is not configuration: the host container's Podman storage."""
    return _xdg_dir(environ, "XDG_DATA_HOME", ".local/share")


def _xdg_dir(environ: Mapping[str, str] | None, variable: str, default: str) -> Path:
    env = os.environ if environ is None else environ
    xdg = env.get(variable, "")
    # The XDG spec says a relative value is invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "agentcage"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / default / "agentcage"


class StateStore:
    """All deployments of one user."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else config_home()
        self.deployments = self.root / "deployments"

    def path(self, name: str) -> Path:
        if not re.fullmatch(NAME_PATTERN, name):
            raise StateError(f"{name!r} is not a cage name (lower-case letters, digits, '-')")
        return self.deployments / name

    def exists(self, name: str) -> bool:
        return (self.path(name) / CONFIG_NORMALIZED).is_file()

    def names(self) -> list[str]:
        if not self.deployments.is_dir():
            return []
        return sorted(
            p.name for p in self.deployments.iterdir() if (p / CONFIG_NORMALIZED).is_file()
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def directory(self, name: str) -> Path:
        """The deployment's directory, created 0700 (parents too) if missing."""
        path = self.path(name)
        for directory in (self.root, self.deployments, path):
            directory.mkdir(mode=0o700, exist_ok=True, parents=True)
            os.chmod(directory, 0o700)
        return path

    def save_config(self, config: CageConfig, source_text: str) -> Path:
        directory = self.directory(config.name)
        write_atomic_all(
            [
                (directory / CONFIG_SOURCE, source_text, 0o600),
                (directory / CONFIG_NORMALIZED, config_json(config), 0o600),
            ]
        )
        return directory

    def load_config(self, name: str) -> CageConfig:
        path = self.path(name) / CONFIG_NORMALIZED
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise StateError(
                f"no cage named {name!r}", hint="`agentcage cage list` shows the cages you have"
            ) from exc
        except (OSError, ValueError) as exc:
            raise StateError(f"{path}: damaged state ({exc}); re-create the cage") from exc
        # Here, not at the top: reading state by name (`cage destroy`) needs no pydantic.
        from agentcage.config.context import LoadContext
        from agentcage.config.schema import CageConfig

        ctx = LoadContext(base_dir=self.path(name), environ={}, check_paths=False)
        return CageConfig.model_validate(data, context=ctx, strict=False)

    def write(self, name: str, filename: str, data: bytes | str, mode: int = 0o600) -> Path:
        if "/" in filename or filename.startswith("."):
            raise StateError(f"{filename!r} is not a plain file name")
        target = self.directory(name) / filename
        write_atomic(target, data, mode)
        return target

    def read_json(self, name: str, filename: str) -> Any:
        try:
            return json.loads((self.path(name) / filename).read_text())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise StateError(f"{name}/{filename}: damaged state ({exc})") from exc

    def remove(self, name: str) -> None:
        shutil.rmtree(self.path(name), ignore_errors=True)


def config_json(config: CageConfig) -> str:
    """The normalized config, re-loadable with `CageConfig.model_validate`."""
    return (
        json.dumps(config.model_dump(mode="json", by_alias=True), indent=2, sort_keys=True) + "\n"
    )
