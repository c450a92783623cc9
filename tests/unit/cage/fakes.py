"""Fakes for the cage layer: runners that record commands, a builder that builds nothing.

`RecordingRunner` answers from a script. `FakeSystemdPodman` also keeps what systemd and Podman
would hold (units and their states, containers, networks, volumes, secrets), so a removal
shows in the next listing and a host can be made unreachable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agentcage.cage.images import BuiltImages, ImageBuilder
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
        best = self.answer(key)
        if isinstance(best, PodmanError):
            if check:
                raise best
            return Completed(key, 1, "", best.message)
        result = best if best is not None else self.unscripted(key, input)
        if check and not result.ok:
            raise failure(result)
        return result

    def unscripted(self, argv: tuple[str, ...], input: str | None) -> Completed:
        """The answer to a command no scripted answer matches."""
        return Completed(argv, 0, "", "")

    def answer(self, key: tuple[str, ...]) -> Completed | PodmanError | None:
        best: Completed | PodmanError | None = None
        best_len = -1
        for prefix, answer in self.answers.items():
            if key[: len(prefix)] == prefix and len(prefix) > best_len:
                best, best_len = answer, len(prefix)
        return best

    def commands(self, *prefix: str) -> list[tuple[str, ...]]:
        return [c for c in self.calls if c[: len(prefix)] == prefix]

    def stream(self, argv: Sequence[str], on_line: Callable[[str], None]) -> None:
        result = self.run(argv, check=False)
        for line in (result.stdout + result.stderr).splitlines():
            on_line(line)
        if not result.ok:
            raise failure(result)


NO_SYSTEMD = (
    "System has not been booted with systemd as init system (PID 1). Can't operate.\n"
    "Failed to connect to bus: Host is down"
)
_AGENT_UNIT = re.compile(r"^agentcage-(.+)-agent\.service$")


@dataclass
class FakeSystemdPodman(RecordingRunner):
    """systemd + Podman as far as lifecycle needs them; scripted answers still win.

    Starting a cage's agent unit brings up its three containers and two networks (and
    their units), as quadlet would.
    """

    units: dict[str, str] = field(default_factory=dict)  # unit -> ActiveState
    containers: dict[str, str] = field(default_factory=dict)  # name -> cage label
    networks: set[str] = field(default_factory=set)
    volumes: dict[str, str] = field(default_factory=dict)  # name -> cage label
    secrets: dict[str, str] = field(default_factory=dict)  # name -> value
    systemd_reachable: bool = True
    podman_reachable: bool = True

    def unscripted(self, argv: tuple[str, ...], input: str | None) -> Completed:
        if argv[0] == "systemctl":
            result = self._systemctl([a for a in argv[1:] if a != "--user"])
        elif argv[0] == "podman":
            result = self._podman(argv[1:], input)
        else:
            result = Completed(argv, 0, "", "")
        return Completed(argv, result.returncode, result.stdout, result.stderr)

    def _systemctl(self, args: list[str]) -> Completed:
        if not self.systemd_reachable:
            return Completed((), 1, "", NO_SYSTEMD)
        verb, names = args[0], [a for a in args[1:] if not a.startswith("-")]
        if verb in ("start", "restart"):
            for unit in names:
                self.units[unit] = "active"
                if match := _AGENT_UNIT.match(unit):
                    self._bring_up(match.group(1))
        elif verb == "stop":
            for unit in names:
                self.units[unit] = "inactive"
                # The unit's ExecStop= removes its container (`podman rm -f --cidfile`).
                self.containers.pop(unit.removesuffix(".service"), None)
        elif verb == "is-active":
            state = self.units.get(names[0], "inactive")
            return Completed((), 0 if state == "active" else 3, state + "\n", "")
        elif verb == "show":
            blocks = []
            for unit in names:
                state = self.units.get(unit, "inactive")
                load = "loaded" if unit in self.units else "not-found"
                # 2026-12-05T09:00:00Z for every unit that runs (`--timestamp=unix`)
                since = "@1796461200" if state == "active" else "n/a"
                blocks.append(
                    f"Id={unit}\nLoadState={load}\nActiveState={state}\nResult=success\n"
                    f"ActiveEnterTimestamp={since}"
                )
            return Completed((), 0, "\n\n".join(blocks) + "\n", "")
        elif verb == "reset-failed":
            for unit in names:
                if self.units.get(unit) in ("inactive", "failed"):
                    del self.units[unit]
        return Completed((), 0, "", "")

    def _bring_up(self, cage: str) -> None:
        for role in ("dns", "proxy", "agent"):
            self.containers[f"agentcage-{cage}-{role}"] = cage
            self.units[f"agentcage-{cage}-{role}.service"] = "active"
        for net in ("int", "ext"):
            self.networks.add(f"agentcage-{cage}-{net}")
            self.units[f"agentcage-{cage}-{net}-network.service"] = "active"

    def _podman(self, args: tuple[str, ...], input: str | None) -> Completed:
        if not self.podman_reachable:
            return Completed((), 125, "", "Error: cannot connect to Podman")
        words = [a for a in args if not a.startswith("-") and "{{" not in a]
        label = next((a.split("=", 2)[2] for a in args if a.startswith("label=")), None)

        def listing(items: dict[str, str] | set[str]) -> Completed:
            if isinstance(items, dict) and label is not None:
                names = [name for name, cage in items.items() if cage == label]
            else:
                names = list(items)
            return Completed((), 0, "".join(f"{n}\n" for n in names), "")

        match words[:2]:
            case ["ps", *_]:
                return listing(self.containers)
            case ["rm", *_]:
                for name in words[1:]:
                    self.containers.pop(name, None)
            case ["network", "ls"]:
                return listing(self.networks)
            case ["network", "rm"]:
                self.networks -= set(words[2:])
            case ["volume", "ls"]:
                return listing(self.volumes)
            case ["volume", "rm"]:
                for name in words[2:]:
                    self.volumes.pop(name, None)
            case ["secret", "ls"]:
                return listing(set(self.secrets))
            case ["secret", "create"]:
                self.secrets[words[2]] = input or ""
            case ["secret", "rm"]:
                missing = [w for w in words[2:] if self.secrets.pop(w, None) is None]
                if missing:
                    return Completed((), 125, "", f"Error: no secret with name {missing[0]}")
        return Completed((), 0, "", "")


class FakeBuilder(ImageBuilder):
    def __init__(self) -> None:
        super().__init__(runner=RecordingRunner())
        self.built: list[str] = []

    def sidecar_images(self, kind: str) -> BuiltImages:
        self.built.append(kind)
        return BuiltImages(proxy="localhost/agentcage-proxy:t", dns="localhost/agentcage-dns:t")

    def agent_image(self, config: CageConfig, config_dir: Path, kind: str) -> str:
        return config.container.image or "localhost/agent:t"


def ok(stdout: str = "") -> Completed:
    return Completed((), 0, stdout, "")


# What a host that can run cages answers to `host check` (cage/host_check.py), which
# `create` and `update` run first.
HEALTHY_HOST: dict[tuple[str, ...], Completed | PodmanError] = {
    ("cat", "--", "/proc/1/comm"): Completed((), 0, "systemd\n", ""),
    ("systemctl", "is-system-running"): Completed((), 0, "running\n", ""),
    ("podman", "version"): Completed((), 0, "5.4.2\n", ""),
    ("cat", "--", "/sys/fs/cgroup/cgroup.controllers"): Completed((), 0, "cpu memory pids\n", ""),
    ("podman", "info"): Completed((), 0, "5.4.2|netavark|/var/lib/containers\n", ""),
    ("stat", "-f"): Completed((), 0, "10000000 4096\n", ""),
    # HostProbe's "find an executable" scripts: the generator, aardvark-dns, newuidmap.
    ("sh", "-c"): Completed((), 0, "/usr/libexec/podman/found\n", ""),
}


def make_cages(
    tmp_path: Path, runner: RecordingRunner | None = None
) -> tuple[Cages, RecordingRunner]:
    runner = runner or RecordingRunner()
    for argv, answer in HEALTHY_HOST.items():
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
