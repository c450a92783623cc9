"""Create and update cages: state, images, CA, units, then the agent unit.

Creating a cage writes its state, builds images, renders and writes its quadlet units
(or, where systemd has no quadlet generator, the plain services the generator would have
made: service_units.py), makes its CA while systemd reloads, then starts the agent unit,
which pulls in the networks and both sidecars. If any step fails, everything made so far
is removed again (destroy.py).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from agentcage.cage import host_ready, layout, running, topology
from agentcage.cage.asked_ahead import AskedAhead
from agentcage.cage.base_choice import choose_base
from agentcage.cage.ca import ensure_ca
from agentcage.cage.contract import service_name
from agentcage.cage.destroy import CageDestroy
from agentcage.cage.host_check import require_config_ready, require_ready
from agentcage.cage.host_files import on_target
from agentcage.cage.images import BuiltImages
from agentcage.cage.kube.kube_record import refuse_kube
from agentcage.cage.layout import CreateOptions, Images
from agentcage.cage.podman_version import quadlet_available
from agentcage.cage.quadlet import CageSpec, CageUnits, build_units
from agentcage.cage.running import VM
from agentcage.cage.service_units import to_services
from agentcage.config import load_config
from agentcage.config.schema import CageConfig
from agentcage.errors import AgentcageError, PodmanError, StateError, UnreachableError

# The digest of the unit files systemd last read for the cage (after a daemon-reload).
UNITS_LOADED_FILE = "units-loaded.json"
_NO_QUADLET = "plain systemd services (no quadlet generator here; it came with Podman 4.4)"
RUNTIME_IMAGE = "localhost/agentcage-runtime:"
# Images agentcage builds and tags by content: the runtime, the sidecars, the microVM
# container's (vm_image.py), and each cage's own agent image
# (`localhost/agentcage-<cage>-agent`).
OUR_IMAGE = re.compile(r"^localhost/agentcage-(?:runtime|proxy|dns|vm|[a-z0-9][a-z0-9-]*-agent):")


class CageDeploy(CageDestroy):
    """Create and update (a failed create destroys what it made); units; secret names."""

    # The questions the next `create` asks first, already asked (remote_hosts.facade).
    asked_ahead: AskedAhead | None = None

    def create(
        self,
        config_path: Path,
        base: str = "registry",
        upstream_ca: Path | None = None,
        config: CageConfig | None = None,
    ) -> CageConfig:
        """`base` as `base_choice.choose_base` gives it; recorded for `update`. `config`:
        the file's, when the caller has validated it already (it is not validated twice)."""
        asked, self.asked_ahead = self.asked_ahead or AskedAhead(self.host), None
        config = config or load_config(config_path)
        if self.store.exists(config.name):
            raise StateError(
                f"cage {config.name!r} already exists",
                hint=f"`agentcage cage update {config.name} -c {config_path}` changes it",
            )
        with ThreadPoolExecutor(max_workers=1) as pool:
            # This machine's Podman looks at the images while the host is asked and the
            # cage's first files are made (`_deploy` waits for it before the images).
            looked = pool.submit(self._look_ahead, config, base, asked.images)
            self._require_ready(config, asked.fingerprint)
            try:
                self.store.save_config(config, config_path.read_text(encoding="utf-8"))
                layout.save_create_options(self.store, config.name, CreateOptions(base))
                if upstream_ca is not None:
                    layout.save_upstream_ca(self.store, config.name, upstream_ca)
                self._deploy(config, config_path.resolve().parent, base, asked=asked, looked=looked)
            except BaseException as exc:
                self.progress(f"create failed; removing everything made for {config.name!r}")
                try:
                    if isinstance(exc, UnreachableError):
                        # systemd was never reached, so it runs nothing of the cage: only
                        # files were made (and nothing could confirm otherwise).
                        self._forget(config.name)
                    else:
                        self.destroy(config.name, missing_ok=True)
                except AgentcageError as cleanup:
                    self.progress(f"cleanup also failed: {cleanup.message}")
                raise
        return config

    def update(
        self,
        name: str,
        config_path: Path | None = None,
        base: str | None = None,
        upstream_ca: Path | None = None,
    ) -> CageConfig:
        """Re-deploy; without `base`, the one `create` recorded (flags override records)."""
        old = self.store.load_config(name)
        refuse_kube(self.store, name)
        self._require_ready(load_config(config_path) if config_path else old)
        recorded = layout.load_create_options(self.store, name)
        base = base or (recorded.base if recorded else choose_base())
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
        layout.save_create_options(self.store, name, CreateOptions(base))
        return config

    def _look_ahead(self, config: CageConfig, base: str, early: Future[None] | None) -> None:
        """`ImageBuilder.look_ahead`, after the look asked before the config was read
        (asked_ahead.py), if any: only what that one did not find is asked again. A failed
        early look fails this one too (the images are asked again, and the error raised,
        where they are built)."""
        if early is not None:
            early.result()
        self.builder.look_ahead(config, base)

    def _require_ready(self, config: CageConfig, fingerprint: Future[str] | None = None) -> None:
        """`host_check.require_ready`, unless this host passed it minutes ago (host_ready.py);
        meanwhile, whether the host has quadlet (`_deploy` asks next, and each question is
        a round trip to where the cages run). `fingerprint`: the host's, already asked."""
        print_ = host_ready.fingerprint(self.host) if fingerprint is None else fingerprint.result()
        known = host_ready.recalled(self.store, print_)
        if known is not None:
            self.__dict__["quadlet"] = known.quadlet  # what the cached property would say
            for line in known.warnings:
                self.progress(line)
            require_config_ready(self.host, config, self.progress)
            return
        warnings: list[str] = []

        def report(line: str) -> None:
            warnings.append(line)
            self.progress(line)

        with ThreadPoolExecutor(max_workers=1) as pool:
            quadlet = pool.submit(lambda: self.quadlet)
            require_ready(self.host, config, report)
            quadlet.result()
        host_ready.remember(self.store, print_, warnings, self.quadlet)

    def _deploy(
        self,
        config: CageConfig,
        config_dir: Path,
        base: str,
        restart: bool = False,
        asked: AskedAhead | None = None,
        looked: Future[None] | None = None,
    ) -> None:
        """`asked`: the cage's secrets, listed already; `looked`: this machine's Podman's
        look at the images (`ImageBuilder.look_ahead`), perhaps still under way."""
        name = config.name
        if config.domains.learning:
            self.progress(
                f"warning: cage {name} runs in LEARN MODE: its domain list is not enforced; "
                "what the list refuses is let through and audited as would-block "
                f"(`agentcage domain suggest {name}`, then `enforcement: enforce`)"
            )
        # Before anything is built: Podman < 4.4 (Debian 12) gets plain systemd services.
        self.progress("units: " + ("quadlets" if self.quadlet else _NO_QUADLET))
        topo = topology.allocate(self.store, name)
        self.progress(
            f"cage {name}: internal {topo.internal_subnet}, proxy {topo.proxy_ip}, "
            f"dns {topo.dns_ip}"
        )
        paths = layout.host_paths(self.store, name)
        microvm = config.isolation == "firecracker"

        def make_ca() -> None:
            ensure_ca(name, paths.ca_dir, paths.ca_public_cert)

        if microvm:
            make_ca()  # before the guest's drives, as it always was
        with ThreadPoolExecutor(max_workers=1) as pool:
            # Asked where the cages run while this machine's Podman looks at the images.
            secrets = pool.submit(asked.secret_names if asked else self.secret_names, name)
            if looked is not None:
                wait([looked])  # not `result()`: a failed look is asked again, and raised, below
            self.progress("images:")
            if microvm:
                # Imported here: a container cage's create has no use for them (with
                # vm_control's, about half of the facade's imports beside the schema).
                from agentcage.cage.vm import vm_cage
                from agentcage.cage.vm.guest_image import build_guest
                from agentcage.cage.vm.vm_host_check import backend_line
                from agentcage.cage.vm.vm_image import vm_image

                facts = vm_cage.host_facts(config.firecracker)
                self.progress(backend_line(config.firecracker, facts))
                vm = vm_image(self.builder)
                agent = self.builder.agent_image(config, config_dir, base)
                images = vm_cage.images_of(vm, agent)
                # The container cages' current runtime stays tagged, as their own create
                # keeps it.
                sidecars = BuiltImages(vm, vm, self.builder.sidecar_refs(base)[0])
            else:
                sidecars, agent = self.builder.cage_images(config, config_dir, base)
                images = Images(proxy=sidecars.proxy, dns=sidecars.dns, agent=agent)
            layout.save_images(self.store, name, images)
            layout.write_sidecar_config(self.store, config, agent)
            layout.prepare_sidecar_dirs(self.store, name)
            if microvm:
                self.progress("guest image and drives (the guest's root, the agent's root):")
                spec = self.cage_spec(config, secrets.result())
                vm_cage.prepare(self.host, config, spec, self.store.path(name), build_guest())
            if not self.host.cgroups:
                self.progress(
                    "warning: rootless Podman on cgroup v1 cannot enforce memory, CPU or pids "
                    "limits; the cage runs without them (use cgroup v2 to get them)"
                )

            def meanwhile() -> None:
                # The units name the CA's paths, not its content: a container cage's CA
                # (cryptography's import and an EC key, 0.04 to 0.1 s here) is made while
                # systemd reloads, then everything the units mount goes to the target.
                if not microvm:
                    make_ca()
                self.host.files.publish(
                    self.store.path(name), (images.proxy, images.dns, images.agent)
                )

            self.apply_units(config, secrets.result(), meanwhile)
        ports = bool(config.container.ports)
        if microvm:
            unit = service_name(topo, VM)
            self.progress(f"starting {unit} (waits until the cage in the guest is up)")
            try:
                self.host.systemctl("restart" if restart else "start", unit)
            except PodmanError as exc:
                raise PodmanError(
                    f"{exc.message}\n{running.journal_tail(self.host, unit)}", hint=exc.hint
                ) from exc
            self.deployed_states[name] = running.unit_state(self.host, unit)
        elif restart:
            self.progress("restarting the sidecars and the agent")
            self.deployed_states[name] = running.restart(self.host, topo, ports)
        else:
            agent_unit = service_name(topo, "agent")
            self.progress(f"starting {agent_unit} (waits until proxy and DNS are healthy)")
            self.deployed_states[name] = running.start(self.host, topo, ports)
        # Last: the images this cage ran before are only now out of use. Only a build
        # makes tags stale (listing the images takes a second on a busy store).
        if self.builder.built_something:
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
        stale = [r for r in listed.stdout.split() if OUR_IMAGE.match(r) and r not in keep]
        stale.sort(key=lambda ref: ref.startswith(RUNTIME_IMAGE))
        removed = [ref for ref in stale if self.host.podman("rmi", ref, check=False).ok]
        if removed:
            self.progress(f"removed {len(removed)} image(s) no cage uses any more")

    def units(self, config: CageConfig, secrets: list[str] | None = None) -> CageUnits:
        """The units the cage deploys (a microVM cage's: vm_cage.deployed_units).

        `secrets`: the cage's Podman secrets, if the caller listed them already."""
        spec = self.cage_spec(config, secrets)
        if config.isolation == "firecracker":
            from agentcage.cage.vm import vm_cage

            return vm_cage.deployed_units(
                config, spec, self.store.path(config.name), self.host.rootless
            )
        return build_units(spec)

    def cage_spec(self, config: CageConfig, secrets: list[str] | None = None) -> CageSpec:
        topo = topology.load(self.store, config.name)
        if topo is None:
            raise StateError(f"cage {config.name!r} has no topology; re-create it")
        paths = layout.host_paths(self.store, config.name)
        return CageSpec(
            config,
            topo,
            layout.load_images(self.store, config.name),
            on_target(self.host.files, paths),
            tuple(self.secret_names(config.name) if secrets is None else secrets),
            wanted_by=self.host.wanted_by,
            upstream_ca=paths.upstream_ca.is_file(),
            cgroups=self.host.cgroups,
            canary_seed=(
                layout.canary_seed(self.store, config.name) if config.secrets.canaries else None
            ),
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

    def apply_units(
        self,
        config: CageConfig,
        secrets: list[str] | None = None,
        meanwhile: Callable[[], None] = lambda: None,
    ) -> None:
        """Write the cage's units; `daemon-reload` unless systemd already read these very
        files (a reload re-reads every unit on the host: 0.3 s here with one cage, seconds
        with fifty). What systemd read is recorded only after a reload succeeded.

        `meanwhile`: what needs no reload but must be done before a start, done while
        systemd reloads; if it fails, the reload is waited for before its error goes on
        (a rollback then finds the units as systemd has them)."""
        written = self.write_units(config, secrets)
        rendered = hashlib.sha256()
        for path in sorted(written):  # what was written, not read back: it may be remote
            rendered.update(path.name.encode() + b"\0" + written[path].encode() + b"\0")
        record = {"units": rendered.hexdigest()}
        if self.store.read_json(config.name, UNITS_LOADED_FILE) == record:
            meanwhile()
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            reloaded = pool.submit(self.host.systemctl, "daemon-reload")
            meanwhile()
            reloaded.result()
        self.store.write(config.name, UNITS_LOADED_FILE, json.dumps(record) + "\n")

    def write_units(self, config: CageConfig, secrets: list[str] | None = None) -> dict[Path, str]:
        """Write the cage's units where its host keeps them; returns path -> text."""
        quadlets = self.units(config, secrets)
        directory, units = self.deployable(quadlets)
        # After a Podman upgrade (or downgrade) the other form's files would shadow these.
        if self.quadlet:
            other = self.host.systemd_dir
            stale = to_services(quadlets, rootless=self.host.rootless).files
        else:
            other, stale = self.host.quadlet_dir, quadlets.files
        self.host.files.unlink([other / name for name in stale])
        written = {directory / filename: text for filename, text in units.rendered().items()}
        self.host.files.write_all(written, 0o644)
        return written
