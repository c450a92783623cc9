"""Fakes for the cage layer: a Host on a RecordingRunner, an image builder that builds nothing."""

from __future__ import annotations

from pathlib import Path

from agentcage.cage.images import BaseKind, BuiltImages, ImageBuilder
from agentcage.cage.lifecycle import Cages
from agentcage.cage.podman import Completed, Host, RecordingRunner
from agentcage.cage.state import StateStore
from agentcage.config.schema import CageConfig


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


def make_cages(
    tmp_path: Path, runner: RecordingRunner | None = None
) -> tuple[Cages, RecordingRunner]:
    runner = runner or RecordingRunner()
    host = Host(quadlet_dir=tmp_path / "quadlet", rootless=False, runner=runner)
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
