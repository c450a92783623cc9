"""Create, update, list, reload and destroy cages.

Creating a cage writes its state, builds images, makes its CA, renders and writes its
quadlet units (or, where systemd has no quadlet generator, the plain services the
generator would have made: service_units.py), then starts the agent unit, which pulls in
the networks and both sidecars. If any step fails, everything made so far is removed again.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentcage.cage import layout, topology
from agentcage.cage.ca import ensure_ca
from agentcage.cage.contract import secret_id, service_name
from agentcage.cage.images import BaseKind, ImageBuilder
from agentcage.cage.layout import Images
from agentcage.cage.podman import PodmanHost
from agentcage.cage.podman_version import quadlet_available
from agentcage.cage.quadlet import CageSpec, CageUnits, build_units
from agentcage.cage.service_units import to_services
from agentcage.cage.state import StateStore, write_atomic
from agentcage.config import load_config
from agentcage.config.schema import CageConfig
from agentcage.errors import AgentcageError, PodmanError, StateError

ROLES = ("dns", "proxy", "agent")
_NO_QUADLET = "plain systemd services (no quadlet generator here; it came with Podman 4.4)"
_RUNTIME_IMAGE = "localhost/agentcage-runtime:"
# Images agentcage builds and tags by content: the runtime, the sidecars, and each
# cage's own agent image (`localhost/agentcage-<cage>-agent`).
_OUR_IMAGE = re.compile(r"^localhost/agentcage-(?:runtime|proxy|dns|[a-z0-9][a-z0-9-]*-agent):")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class CageStatus:
    name: str
    state: str  # systemd's ActiveState of the agent unit
    started_at: str
    uptime_s: float | None
    blocked: int


class Cages:
    def __init__(
        self,
        store: StateStore | None = None,
        host: PodmanHost | None = None,
        builder: ImageBuilder | None = None,
        progress: Progress = lambda _: None,
    ) -> None:
        self.store = store or StateStore()
        self.host = host or PodmanHost.detect()
        self.builder = builder or ImageBuilder(progress=progress)
        self.progress = progress

    # --- create / update -----------------------------------------------------------------

    def create(
        self, config_path: Path, base: BaseKind = "registry", upstream_ca: Path | None = None
    ) -> CageConfig:
        config = load_config(config_path)
        if self.store.exists(config.name):
            raise StateError(
                f"cage {config.name!r} already exists",
                hint=f"`agentcage cage update {config.name} -c {config_path}` changes it",
            )
        try:
            self.store.save_config(config, config_path.read_text(encoding="utf-8"))
            if upstream_ca is not None:
                layout.save_upstream_ca(self.store, config.name, upstream_ca)
            self._deploy(config, config_path.resolve().parent, base)
        except BaseException:
            self.progress(f"create failed; removing everything made for {config.name!r}")
            try:
                self.destroy(config.name)
            except AgentcageError as cleanup:
                self.progress(f"cleanup also failed: {cleanup.message}")
            raise
        return config

    def update(
        self,
        name: str,
        config_path: Path | None = None,
        base: BaseKind = "registry",
        upstream_ca: Path | None = None,
    ) -> CageConfig:
        old = self.store.load_config(name)
        if upstream_ca is not None:
            layout.save_upstream_ca(self.store, name, upstream_ca)
        if config_path is not None:
            config = load_config(config_path)
            if config.name != name:
                raise StateError(f"{config_path} describes cage {config.name!r}, not {name!r}")
            self.store.save_config(config, config_path.read_text(encoding="utf-8"))
            config_dir = config_path.resolve().parent
        else:
            config, config_dir = old, self.store.path(name)
        self._deploy(config, config_dir, base, restart=True)
        return config

    def _deploy(
        self, config: CageConfig, config_dir: Path, base: BaseKind, restart: bool = False
    ) -> None:
        name = config.name
        # Before anything is built: Podman < 4.4 (Debian 12) gets plain systemd services.
        self.progress("units: " + ("quadlets" if self.quadlet else _NO_QUADLET))
        topo = topology.allocate(self.store, name)
        self.progress(
            f"cage {name}: internal {topo.internal_subnet}, proxy {topo.proxy_ip}, "
            f"dns {topo.dns_ip}"
        )
        self.progress("images:")
        sidecars = self.builder.sidecar_images(base)
        agent = self.builder.agent_image(config, config_dir, base)
        images = Images(proxy=sidecars.proxy, dns=sidecars.dns, agent=agent)
        layout.save_images(self.store, name, images)
        paths = layout.host_paths(self.store, name)
        ensure_ca(name, paths.ca_dir, paths.ca_public_cert)
        layout.write_sidecar_config(self.store, config, agent)
        layout.prepare_sidecar_dirs(self.store, name)
        if not self.host.cgroups:
            self.progress(
                "warning: rootless Podman on cgroup v1 cannot enforce memory, CPU or pids "
                "limits; the cage runs without them (use cgroup v2 to get them)"
            )
        self.write_units(config)
        self.host.systemctl("daemon-reload")
        agent_unit = service_name(topo, "agent")
        if restart:
            self.progress("restarting the sidecars and the agent")
            # One job set: systemd orders the restarts (sidecars healthy, then the agent).
            roles = (*ROLES, "ports") if config.container.ports else ROLES
            self.host.systemctl("restart", *(service_name(topo, role) for role in roles))
        else:
            self.progress(f"starting {agent_unit} (waits until proxy and DNS are healthy)")
            extra = [service_name(topo, "ports")] if config.container.ports else []
            self.host.systemctl("start", agent_unit, *extra)
        shown = self.host.systemctl(
            "show", "--property=ActiveState,Result", agent_unit, check=False
        ).stdout
        props = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
        # An agent that already finished its work successfully is fine; a failed one is not.
        if props.get("Result", "success") != "success" or props.get("ActiveState") == "failed":
            raise PodmanError(
                f"{agent_unit} failed to start ({props.get('Result', 'unknown')})",
                hint=f"`agentcage cage logs {name}` shows why",
            )
        # Last: the images this cage ran before are only now out of use.
        self._prune_images(sidecars.runtime)

    def _prune_images(self, current_runtime: str) -> None:
        """Remove our image tags that no cage uses any more.

        Every source change builds new content-tagged images; without this, each
        upgrade would leave a few hundred MB behind. Only tags built over an hour ago
        go (a concurrent `create` may be about to use a fresh one), children before
        the runtime image they are built on, and an image a container still uses is
        refused by Podman and kept.
        """
        keep = {current_runtime}
        for name in self.store.names():
            with contextlib.suppress(StateError, TypeError):
                used = layout.load_images(self.store, name)
                keep |= {used.proxy, used.dns, used.agent}
        listed = self.host.podman(
            "images", "--filter", "until=1h", "--format", "{{.Repository}}:{{.Tag}}", check=False
        )
        stale = [r for r in listed.stdout.split() if _OUR_IMAGE.match(r) and r not in keep]
        stale.sort(key=lambda ref: ref.startswith(_RUNTIME_IMAGE))
        removed = [ref for ref in stale if self.host.podman("rmi", ref, check=False).ok]
        if removed:
            self.progress(f"removed {len(removed)} image(s) no cage uses any more")

    def units(self, config: CageConfig) -> CageUnits:
        topo = topology.load(self.store, config.name)
        if topo is None:
            raise StateError(f"cage {config.name!r} has no topology; re-create it")
        paths = layout.host_paths(self.store, config.name)
        return build_units(
            CageSpec(
                config,
                topo,
                layout.load_images(self.store, config.name),
                paths,
                tuple(self.secret_names(config.name)),
                wanted_by=self.host.wanted_by,
                upstream_ca=paths.upstream_ca.is_file(),
                cgroups=self.host.cgroups,
                canary_seed=(
                    layout.canary_seed(self.store, config.name) if config.secrets.canaries else None
                ),
            )
        )

    def preview_units(self, config_path: Path) -> CageUnits:
        """The units `create` would write for this config; builds, writes and starts nothing."""
        config = load_config(config_path)
        topo = topology.preview(self.store, config.name)
        agent = config.container.image or f"localhost/agentcage-{config.name}-agent:TAG"
        images = Images(
            proxy="localhost/agentcage-proxy:TAG", dns="localhost/agentcage-dns:TAG", agent=agent
        )
        return build_units(
            CageSpec(
                config,
                topo,
                images,
                layout.host_paths(self.store, config.name),
                tuple(rule.env for rule in config.secret_injection),
                wanted_by=self.host.wanted_by,
                cgroups=self.host.cgroups,
            )
        )

    @functools.cached_property
    def quadlet(self) -> bool:
        """Whether this host's systemd turns quadlet files into services (Podman >= 4.4)."""
        return quadlet_available(self.host.runner, rootless=self.host.rootless)

    def deployable(self, units: CageUnits) -> tuple[Path, CageUnits]:
        """Where the cage's units go on this host, and in which form."""
        if self.quadlet:
            return self.host.quadlet_dir, units
        return self.host.systemd_dir, to_services(units, rootless=self.host.rootless)

    def write_units(self, config: CageConfig) -> list[Path]:
        quadlets = self.units(config)
        directory, units = self.deployable(quadlets)
        # After a Podman upgrade (or downgrade) the other form's files would shadow these.
        if self.quadlet:
            other = self.host.systemd_dir
            stale = to_services(quadlets, rootless=self.host.rootless).files
        else:
            other, stale = self.host.quadlet_dir, quadlets.files
        for name in stale:
            (other / name).unlink(missing_ok=True)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for filename, text in units.rendered().items():
            target = directory / filename
            write_atomic(target, text, 0o644)
            written.append(target)
        return written

    # --- secrets (names only; values live in Podman) -----------------------------------

    def secret_names(self, name: str) -> list[str]:
        result = self.host.podman("secret", "ls", "--format", "{{.Name}}", check=False)
        prefix = secret_id(name, "")
        return sorted(
            line[len(prefix) :]
            for line in result.stdout.split()
            if line.startswith(prefix) and line[len(prefix) :]
        )

    # --- inspection ------------------------------------------------------------------------

    def status(self, name: str) -> CageStatus:
        topo = topology.load(self.store, name)
        state, started, uptime = "unknown", "", None
        if topo is not None:
            unit = service_name(topo, "agent")
            state = self.host.systemctl("is-active", unit, check=False).stdout.strip() or state
            if state == "active":
                started, uptime = self._started(topo.container("agent"))
        return CageStatus(name, state, started, uptime, layout.count_blocked(self.store, name))

    def _started(self, container: str) -> tuple[str, float | None]:
        result = self.host.podman(
            "inspect", "--format", "{{.State.StartedAt}}", container, check=False
        )
        text = result.stdout.strip()
        if not result.ok or not text:
            return "", None
        try:
            # Go's time format: "2026-11-27 06:10:00.123456789 +0000 UTC"
            stamp = datetime.datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(
                tzinfo=datetime.UTC
            )
        except ValueError:
            return text, None
        return text[:19], (datetime.datetime.now(datetime.UTC) - stamp).total_seconds()

    def statuses(self) -> list[CageStatus]:
        return [self.status(name) for name in self.store.names()]

    def is_running(self, name: str) -> bool:
        topo = topology.load(self.store, name)
        if topo is None:
            return False
        result = self.host.systemctl("is-active", service_name(topo, "agent"), check=False)
        return result.stdout.strip() == "active"

    # --- live changes ----------------------------------------------------------------------

    def reload(self, name: str) -> None:
        """Re-render the sidecars' config and SIGHUP them; the agent keeps running."""
        config = self.store.load_config(name)
        images = layout.load_images(self.store, name)
        layout.write_sidecar_config(self.store, config, images.agent)
        topo = topology.load(self.store, name)
        if topo is None:
            raise StateError(f"cage {name!r} has no topology; re-create it")
        for role in ("proxy", "dns"):
            self.host.podman("kill", "--signal", "HUP", topo.container(role))

    def logs_argv(self, name: str, service: str, follow: bool) -> list[str]:
        """journalctl for the unit: it keeps the output of containers already removed."""
        topo = topology.load(self.store, name)
        if topo is None:
            raise StateError(f"no cage named {name!r}")
        role = "agent" if service == "cage" else service
        scope = ["--user"] if self.host.rootless else []
        unit = service_name(topo, role)
        return ["journalctl", *scope, "-u", unit, "-o", "cat", "--no-pager", *(["-f"] * follow)]

    # --- destroy ---------------------------------------------------------------------------

    def destroy(self, name: str) -> None:
        """Stop and remove units, containers, networks, volumes, secrets and state."""
        self.store.path(name)  # validates the name
        topo = topology.load(self.store, name)
        problems: list[str] = []

        def attempt(what: str, argv: list[str]) -> None:
            result = self.host.runner.run(argv, check=False)
            # No systemd to talk to means no units loaded either: nothing left there.
            absent = "not been booted with systemd" in result.stderr
            if not result.ok and not absent:
                problems.append(f"{what}: {result.stderr.strip()[-300:]}")

        prefix = topo.prefix if topo else f"agentcage-{name}"
        units = [f"{prefix}-{role}.service" for role in ("ports", *reversed(ROLES))]
        units += [f"{prefix}-int-network.service", f"{prefix}-ext-network.service"]
        scope = ["--user"] if self.host.rootless else []
        self.host.runner.run(["systemctl", *scope, "stop", *units], check=False)
        removed = False
        for directory in (self.host.quadlet_dir, self.host.systemd_dir):
            for path in directory.glob(f"{prefix}-*") if directory.is_dir() else ():
                path.unlink()
                removed = True
        if removed:
            attempt("daemon-reload", ["systemctl", *scope, "daemon-reload"])
        self.host.runner.run(["systemctl", *scope, "reset-failed", *units], check=False)
        label = f"label=agentcage.cage={name}"
        ids = self.host.podman("ps", "-aq", "--filter", label, check=False).stdout.split()
        if ids:
            attempt("remove containers", ["podman", "rm", "-f", "-i", *ids])
        for network in (f"{prefix}-int", f"{prefix}-ext"):
            if self.host.podman("network", "exists", network, check=False).ok:
                attempt(f"remove network {network}", ["podman", "network", "rm", "-f", network])
        volumes = self.host.podman(
            "volume", "ls", "-q", "--filter", label, check=False
        ).stdout.split()
        if volumes:
            attempt("remove volumes", ["podman", "volume", "rm", "-f", *volumes])
        for secret in self.secret_names(name):
            attempt(f"remove secret {secret}", ["podman", "secret", "rm", secret_id(name, secret)])
        if problems:
            raise PodmanError(
                f"cage {name!r} was only partly removed:\n  " + "\n  ".join(problems),
                hint=f"fix the cause and run `agentcage cage destroy {name}` again",
            )
        self._remove_state(name)

    def _remove_state(self, name: str) -> None:
        directory = self.store.path(name)
        self.store.remove(name)
        if directory.exists() and self.host.rootless:
            # Rootless `:U` mounts chowned the CA and audit directories to the containers'
            # sub-UIDs; only the user namespace can delete them.
            self.host.podman("unshare", "rm", "-rf", str(directory), check=False)
        if directory.exists():
            raise StateError(f"could not remove {directory}; remove it by hand")
