"""Start, stop, restart, reload and read the logs of a deployed cage."""

from __future__ import annotations

from agentcage.cage import layout, running, topology
from agentcage.cage.cage_parts import CageParts
from agentcage.cage.contract import service_name
from agentcage.cage.kube.kube_record import refuse_kube
from agentcage.cage.running import VM
from agentcage.cage.vm import vm_control
from agentcage.config.schema import CageConfig
from agentcage.errors import StateError


class CageControl(CageParts):
    def deployed(self, name: str) -> tuple[CageConfig, topology.Topology]:
        config = self.store.load_config(name)  # "no cage named ..." if there is none
        refuse_kube(self.store, name)
        topo = topology.load(self.store, name)
        if topo is None or self.store.read_json(name, layout.IMAGES_FILE) is None:
            raise StateError(
                f"cage {name!r} was never deployed",
                hint=f"`agentcage cage update {name}` deploys it",
            )
        return config, topo

    def start(self, name: str) -> str:
        """Start the cage; returns the agent's state (`inactive` if it ran and finished)."""
        config, topo = self.deployed(name)
        if config.isolation == "firecracker":
            return self._vm_unit(topo, "start")
        return running.start(self.host, topo, bool(config.container.ports))

    def stop(self, name: str) -> None:
        config, topo = self.deployed(name)
        if config.isolation == "firecracker":
            self._vm_unit(topo, "stop")
            return
        running.stop(self.host, topo, bool(config.container.ports))

    def restart(self, name: str) -> str:
        config, topo = self.deployed(name)
        if config.isolation == "firecracker":
            return self._vm_unit(topo, "restart")
        return running.restart(self.host, topo, bool(config.container.ports))

    def _vm_unit(self, topo: topology.Topology, action: str) -> str:
        """A microVM cage is one unit; "started" once the cage in the guest is up."""
        unit = service_name(topo, VM)
        self.host.systemctl(action, unit)
        return running.unit_state(self.host, unit)

    def reload(self, name: str) -> list[str]:
        """Re-render the sidecars' config and SIGHUP those that run; returns their roles.

        Whether the agent runs does not matter: sidecars it left running still serve.
        A stopped sidecar reads the new config when it starts.
        """
        config, topo = self.deployed(name)
        if config.isolation == "firecracker":
            if running.unit_state(self.host, service_name(topo, VM)) != "active":
                layout.write_sidecar_config(
                    self.store, config, layout.load_images(self.store, name).agent
                )
                return []
            return vm_control.reload(self.store, config)
        layout.write_sidecar_config(self.store, config, layout.load_images(self.store, name).agent)
        self.host.files.publish(self.store.path(name), ())
        running_roles = [
            role
            for role in ("proxy", "dns")
            if running.unit_state(self.host, service_name(topo, role)) == "active"
        ]
        for role in running_roles:
            self.host.podman("kill", "--signal", "HUP", topo.container(role))
        return running_roles

    def vm_log(self, name: str, service: str) -> str | None:
        """A microVM cage's role log from its guest; None for a container cage."""
        config, _ = self.deployed(name)
        if config.isolation != "firecracker":
            return None
        return vm_control.log(self.store, name, service)

    def logs_argv(self, name: str, service: str, follow: bool) -> list[str]:
        """journalctl for the unit: it keeps the output of containers already removed."""
        _, topo = self.deployed(name)
        role = "agent" if service == "cage" else service
        scope = ["--user"] if self.host.rootless else []
        unit = service_name(topo, role)
        # journalctl prints nothing and exits 0 where systemd cannot be reached.
        running.unit_state(self.host, unit)
        return ["journalctl", *scope, "-u", unit, "-o", "cat", "--no-pager", *(["-f"] * follow)]
