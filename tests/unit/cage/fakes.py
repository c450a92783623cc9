"""Fakes for the cage layer: a runner that records commands, a builder that builds nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agentcage.cage.images import BaseKind, BuiltImages, ImageBuilder
from agentcage.cage.lifecycle import Cages
from agentcage.cage.podman import DEFAULT_TIMEOUT, Completed, PodmanHost, failure
from agentcage.cage.state import StateStore
from agentcage.config.schema import CageConfig
from agentcage.errors import PodmanError


@dataclass
class RecordingRunner:
    """A fake runner: records argv lists; answers are looked up by argv prefix."""

    answers: dict[tuple[str, ...], Completed | PodmanError] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    inputs: list[str | None] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Completed:
        key = tuple(argv)
        self.calls.append(key)
        self.inputs.append(input)
        best: Completed | PodmanError | None = None
        best_len = -1
        for prefix, answer in self.answers.items():
            if key[: len(prefix)] == prefix and len(prefix) > best_len:
                best, best_len = answer, len(prefix)
        if isinstance(best, PodmanError):
            if check:
                raise best
            return Completed(key, 1, "", best.message)
        result = best if best is not None else Completed(key, 0, "", "")
        if check and not result.ok:
            raise failure(result)
        return result

    def commands(self, *prefix: str) -> list[tuple[str, ...]]:
        return [c for c in self.calls if c[: len(prefix)] == prefix]


class FakeBuilder(ImageBuilder):
    def __init__(self) -> None:
        super().__init__(runner=RecordingRunner())
        self.built: list[str] = []

    def sidecar_images(self, kind: BaseKind) -> BuiltImages:
        self.built.append(kind)
        return BuiltImages(proxy="localhost/agentcage-proxy:t", dns="localhost/agentcage-dns:t")

    def agent_image(self, config: CageConfig, config_dir: Path, kind: BaseKind) -> str:
        return config.container.image or "localhost/agent:t"


def ok(stdout: str = "") -> Completed:
    return Completed((), 0, stdout, "")


# A Podman with quadlet (cage/podman_version.py asks before anything is built).
QUADLET_HOST: dict[tuple[str, ...], Completed | PodmanError] = {
    ("podman", "version"): Completed((), 0, "5.4.2\n", ""),
    ("sh", "-c"): Completed(
        (), 0, "/usr/lib/systemd/system-generators/podman-system-generator\n", ""
    ),
}


def make_cages(
    tmp_path: Path, runner: RecordingRunner | None = None
) -> tuple[Cages, RecordingRunner]:
    runner = runner or RecordingRunner()
    for argv, answer in QUADLET_HOST.items():
        runner.answers.setdefault(argv, answer)
    host = PodmanHost(
        quadlet_dir=tmp_path / "quadlet",
        rootless=False,
        runner=runner,
        systemd_dir=tmp_path / "systemd",
    )
    cages = Cages(StateStore(tmp_path / "state"), host, FakeBuilder())
    return cages, runner


def write_config(tmp_path: Path, name: str = "demo", extra: str = "") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"name: {name}\n"
        "container:\n  image: localhost/agent:t\n  command: [sleep, '1000']\n"
        "secret_injection:\n  - env: API_KEY\n    inject_to: [api.example.com]\n"
        "domains:\n  allow: [api.example.com]\n" + extra
    )
    return path
