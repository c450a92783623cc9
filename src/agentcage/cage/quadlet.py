"""The quadlet files of one cage: two networks, named volumes and three containers.

    agent ──(internal net, no gateway)──┬── dns sidecar ──(external net)── resolvers
                                        └── proxy sidecar ──(external net)── internet

The agent sits only on the internal network, resolves through the DNS sidecar and
reaches anything else only through the proxy. Both sidecars become "started" only once
they tell systemd they listen (`Notify=true`, READY=1 from the sidecar itself), and the
agent `Requires=` and is `After=` both, so it never starts against a proxy that is not
yet listening.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from agentcage.cage.agent_started import started_step
from agentcage.cage.contract import (
    AGENT_CA,
    AUDIT_DIR,
    CA_DIR,
    CANARY_SEED_ENV,
    CONFIG_DIR,
    FINGERPRINTS_DIR,
    METRICS_DIR,
    PYTHON,
    SECRETS_DIR,
    SIDECAR_USER,
    UPSTREAM_CA,
    agent_environment,
    dns_run,
    probe_argv,
    proxy_run,
    relay_args,
    secret_id,
    service_name,
)
from agentcage.cage.layout import HostPaths, Images
from agentcage.cage.steering_entry import pid_file, steering_command
from agentcage.cage.topology import DNS_PORT, PROXY_PORT, Topology, mac_address
from agentcage.cage.unit import Entry, UnitFile
from agentcage.config.schema import CageConfig

# Each check is a `podman healthcheck run` (a Podman process and an exec in the sidecar),
# about 50 ms of CPU: every 30 s, 10 idle cages took 4.8% of two cores (bench/cages).
HEALTH_INTERVAL = "5m"


@dataclass(frozen=True)
class CageSpec:
    """Everything one cage's units are rendered from.

    `secret_names` are the cage's secrets that exist (each is mounted into the proxy).
    `canary_seed` (the cage's private seed for `secrets.canaries`) goes to the proxy,
    and the decoys derived from it to the agent: both sides compute the same values,
    and nobody who knows only the cage's name can tell a decoy from a real key.
    `cgroups=False` is for rootless Podman on cgroup v1, which cannot create cgroups:
    limits are dropped (Podman could not enforce them) and the containers run without.
    """

    config: CageConfig
    topology: Topology
    images: Images
    paths: HostPaths
    secret_names: tuple[str, ...] = ()
    wanted_by: str = "multi-user.target"
    upstream_ca: bool = False
    cgroups: bool = True
    canary_seed: str | None = None


@dataclass(frozen=True)
class CageUnits:
    """File name -> unit, for one cage."""

    files: dict[str, UnitFile]

    def rendered(self) -> dict[str, str]:
        return {name: unit.render() for name, unit in self.files.items()}


def build_units(spec: CageSpec) -> CageUnits:
    """All quadlet files of the cage."""
    topology = spec.topology
    files: dict[str, UnitFile] = {
        f"{topology.internal_network}.network": _internal_network(topology),
        f"{topology.external_network}.network": external_network(topology),
    }
    for name in spec.config.container.named_volumes:
        files[f"{topology.prefix}-{name}.volume"] = _volume(topology, name)
    files[f"{topology.container('dns')}.container"] = _dns(spec)
    files[f"{topology.container('proxy')}.container"] = _proxy(spec)
    files[f"{topology.container('agent')}.container"] = _agent(spec)
    if spec.config.container.ports:
        files[f"{topology.container('ports')}.container"] = _ports(spec)
    if not spec.cgroups:
        for name, unit in files.items():
            if name.endswith(".container"):
                without_cgroups(unit)
    return CageUnits(files)


def without_cgroups(unit: UnitFile) -> None:
    entries = []
    for entry in unit.sections.get("Container", []):
        if entry.key == "PidsLimit":
            continue
        if entry.key == "PodmanArgs" and isinstance(entry.value, tuple):
            kept = tuple(w for w in entry.value if not w.startswith(("--memory=", "--cpus=")))
            if not kept:
                continue
            entry = Entry(entry.key, kept)
        entries.append(entry)
    unit.sections["Container"] = entries
    unit.add("Container", "CgroupsMode", "disabled")


def labels(unit: UnitFile, topology: Topology, role: str) -> None:
    unit.add("Container", "Label", (f"agentcage.cage={topology.cage}", f"agentcage.role={role}"))


def _internal_network(topology: Topology) -> UnitFile:
    unit = UnitFile()
    unit.add("Unit", "Description", f"agentcage {topology.cage}: internal network (no route out)")
    unit.add("Network", "NetworkName", topology.internal_network)
    unit.add("Network", "Internal", True)
    unit.add("Network", "DisableDNS", True)
    unit.add("Network", "Subnet", topology.internal_subnet)
    unit.add("Network", "Label", (f"agentcage.cage={topology.cage}",))
    return unit


def external_network(topology: Topology) -> UnitFile:
    unit = UnitFile()
    unit.add("Unit", "Description", f"agentcage {topology.cage}: sidecars' way out")
    unit.add("Network", "NetworkName", topology.external_network)
    unit.add("Network", "Subnet", topology.external_subnet)
    unit.add("Network", "Label", (f"agentcage.cage={topology.cage}",))
    return unit


def _volume(topology: Topology, name: str) -> UnitFile:
    unit = UnitFile()
    unit.add("Unit", "Description", f"agentcage {topology.cage}: volume {name}")
    unit.add("Volume", "VolumeName", f"{topology.prefix}-{name}")
    unit.add("Volume", "Label", (f"agentcage.cage={topology.cage}",))
    return unit


def attach(network: str, ip: str) -> str:
    """`Network=` of a container: its fixed address, and a MAC that follows it."""
    return f"{network}.network:ip={ip},mac={mac_address(ip)}"


def _networks(unit: UnitFile, topology: Topology, internal_ip: str, external_ip: str) -> None:
    unit.add("Container", "Network", attach(topology.internal_network, internal_ip))
    unit.add("Container", "Network", attach(topology.external_network, external_ip))


def hardening(unit: UnitFile, user: str, memory: str, pids: int) -> None:
    unit.add("Container", "ReadOnly", True)
    unit.add("Container", "DropCapability", "ALL")
    unit.add("Container", "NoNewPrivileges", True)
    unit.add("Container", "User", user)
    unit.add("Container", "Group", user)
    unit.add("Container", "PidsLimit", pids)
    unit.add("Container", "PodmanArgs", (f"--memory={memory}",))
    unit.add("Container", "Tmpfs", "/tmp:rw,noexec,nosuid,nodev,size=16m")
    unit.add("Container", "SecurityLabelDisable", True)


def _ready_and_alive(unit: UnitFile, liveness: list[str]) -> None:
    # Ready is the sidecar's own word: READY=1 the moment it listens (agentcage/sdnotify.py),
    # so the agent starts milliseconds later instead of after a polled check. The health
    # check is for liveness only. HealthCmd goes to `sh -c`; quadlet mangles embedded
    # quotes, so the probe takes only plain words (addresses and ports).
    unit.add("Container", "Notify", True)
    unit.add("Container", "HealthCmd", shlex.join(liveness))
    unit.add("Container", "HealthInterval", HEALTH_INTERVAL)


def _service(unit: UnitFile, wanted_by: str, timeout_start: int = 120) -> None:
    unit.add("Service", "Restart", "on-failure")
    unit.add("Service", "RestartSec", 2)
    unit.add("Service", "TimeoutStartSec", timeout_start)
    stopped_is_success(unit)
    unit.add("Install", "WantedBy", wanted_by)


def stopped_is_success(unit: UnitFile) -> None:
    # A stop SIGTERMs the container; conmon reports a process that died of it as exit
    # 143 (128 + 15), which would leave every stopped cage "failed". systemd counts a
    # SIGTERM death as clean for its own services; this says the same for ours.
    unit.add("Service", "SuccessExitStatus", 143)


def _dns(spec: CageSpec) -> UnitFile:
    topology, paths = spec.topology, spec.paths
    unit = UnitFile()
    unit.add("Unit", "Description", f"agentcage {topology.cage}: DNS sidecar (allowlist)")
    unit.add("Container", "Image", spec.images.dns)
    unit.add("Container", "Pull", "never")
    unit.add("Container", "ContainerName", topology.container("dns"))
    labels(unit, topology, "dns")
    _networks(unit, topology, topology.dns_ip, topology.dns_external_ip)
    hardening(unit, SIDECAR_USER, "128m", 64)
    # Port 53 without any capability: lower the unprivileged-port floor in the container's
    # own network namespace instead of granting NET_BIND_SERVICE.
    unit.add("Container", "Sysctl", f"net.ipv4.ip_unprivileged_port_start={DNS_PORT}")
    unit.add("Container", "Volume", f"{paths.sidecar_config_dir}:{CONFIG_DIR}:ro")
    unit.add("Container", "Volume", f"{paths.dns_audit_dir}:{AUDIT_DIR}:rw,U")
    # Read-only, and fingerprints only: the DNS container never sees a secret value.
    unit.add("Container", "Volume", f"{paths.fingerprints_dir}:{FINGERPRINTS_DIR}:ro")
    unit.add("Container", "Volume", f"{paths.dns_metrics_dir}:{METRICS_DIR}:rw,U")
    unit.add("Container", "Exec", dns_run(topology, spec.config.network.transparent).argv())
    # A silent TCP check: a probe query would put a line in the audit log every time.
    _ready_and_alive(unit, probe_argv("tcp", topology.dns_ip, DNS_PORT))
    _service(unit, spec.wanted_by)
    return unit


def proxy_secrets(unit: UnitFile, spec: CageSpec) -> None:
    """The cage's secrets as files for the proxy (or the microVM's, which hands them on)."""
    for name in spec.secret_names:
        unit.add(
            "Container",
            "Secret",
            f"{secret_id(spec.topology.cage, name)},type=mount,target={SECRETS_DIR}/{name},"
            f"uid={SIDECAR_USER},gid={SIDECAR_USER},mode=0400",
        )


def _proxy(spec: CageSpec) -> UnitFile:
    topology, paths = spec.topology, spec.paths
    unit = UnitFile()
    unit.add("Unit", "Description", f"agentcage {topology.cage}: inspecting proxy")
    unit.add("Container", "Image", spec.images.proxy)
    unit.add("Container", "Pull", "never")
    unit.add("Container", "ContainerName", topology.container("proxy"))
    labels(unit, topology, "proxy")
    _networks(unit, topology, topology.proxy_ip, topology.proxy_external_ip)
    hardening(unit, SIDECAR_USER, "512m", 256)
    unit.add("Container", "Environment", ("HOME=/tmp", "PYTHONDONTWRITEBYTECODE=1"))
    if spec.config.secrets.canaries and spec.canary_seed:
        unit.add("Container", "Environment", (f"{CANARY_SEED_ENV}={spec.canary_seed}",))
    unit.add("Container", "Volume", f"{paths.sidecar_config_dir}:{CONFIG_DIR}:ro")
    unit.add("Container", "Volume", f"{paths.ca_dir}:{CA_DIR}:rw,U")
    unit.add("Container", "Volume", f"{paths.proxy_audit_dir}:{AUDIT_DIR}:rw,U")
    unit.add("Container", "Volume", f"{paths.fingerprints_dir}:{FINGERPRINTS_DIR}:rw,U")
    unit.add("Container", "Volume", f"{paths.proxy_metrics_dir}:{METRICS_DIR}:rw,U")
    proxy_secrets(unit, spec)
    if spec.upstream_ca:
        unit.add("Container", "Volume", f"{paths.upstream_ca}:{UPSTREAM_CA}:ro")
    transparent = spec.config.network.transparent
    if transparent:
        # The transparent listeners (80, 443, network.ports) without a capability, as
        # for the DNS sidecar's port 53.
        lowest = min(spec.config.network.listener_ports())
        unit.add("Container", "Sysctl", f"net.ipv4.ip_unprivileged_port_start={lowest}")
        # The agent's default route leads here: this namespace must never route onward.
        unit.add("Container", "Sysctl", "net.ipv4.ip_forward=0")
    unit.add("Container", "Exec", proxy_run(topology, spec.upstream_ca, transparent).argv())
    _ready_and_alive(unit, probe_argv("tcp", topology.proxy_ip, PROXY_PORT))
    if transparent:
        own = (PROXY_PORT, *spec.config.network.listener_ports())
        _steering(unit, topology.container("proxy"), steering_command(topology, "proxy", own))
    _service(unit, spec.wanted_by)
    return unit


def _steering(unit: UnitFile, container: str, argv: tuple[str, ...]) -> None:
    # The setup reads the container's PID (and the proxy's) from these files instead of
    # asking Podman (steering_entry.py).
    unit.add("Container", "PodmanArgs", (pid_file(container),))
    # `-`: a failed setup leaves the cage closed (no route, or a namespace that does not
    # forward) but unaudited; `cage verify` says so. A fatal one would stop every cage on
    # a host whose kernel lacks an nftables module (docs/transparent.md).
    _post_step(unit, argv)


def _post_step(unit: UnitFile, argv: tuple[str, ...]) -> None:
    """An `ExecStartPost=` whose failure does not fail the unit (`-`)."""
    unit.add("Service", "ExecStartPost", (f"-{argv[0]}", *argv[1:]))


def _agent(spec: CageSpec) -> UnitFile:
    config, topology, paths = spec.config, spec.topology, spec.paths
    ctr = config.container
    unit = UnitFile()
    sidecars = (service_name(topology, "dns"), service_name(topology, "proxy"))
    unit.add("Unit", "Description", f"agentcage {topology.cage}: the agent")
    unit.extend("Unit", "Requires", sidecars)
    unit.extend("Unit", "After", sidecars)
    unit.add("Container", "Image", spec.images.agent)
    unit.add("Container", "Pull", "never")
    unit.add("Container", "ContainerName", topology.container("agent"))
    # An init as PID 1 forwards SIGTERM (a process that is PID 1 ignores it unless it set
    # a handler, so stopping would wait for the kill timeout) and reaps zombies.
    unit.add("Container", "RunInit", True)
    labels(unit, topology, "agent")
    unit.add("Container", "Network", attach(topology.internal_network, topology.agent_ip))
    unit.add("Container", "DNS", topology.dns_ip)
    env = agent_environment(config, topology, spec.canary_seed)
    unit.add("Container", "Environment", tuple(f"{k}={v}" for k, v in env.items()))
    unit.add("Container", "Volume", f"{paths.ca_public_cert}:{AGENT_CA}:ro")
    for mount in ctr.bind_mounts:
        volume = f"{mount.host}:{mount.container}"
        unit.add("Container", "Volume", f"{volume}:{mount.options}" if mount.options else volume)
    for name, target in ctr.named_volumes.items():
        unit.add("Container", "Volume", f"{topology.prefix}-{name}.volume:{target}")
    unit.extend("Container", "Tmpfs", ctr.tmpfs)
    unit.add("Container", "ReadOnly", ctr.read_only)
    drop = ["ALL"] if ctr.drop_capabilities == "ALL" else list(ctr.drop_capabilities)
    unit.extend("Container", "DropCapability", drop)
    unit.extend("Container", "AddCapability", ctr.add_capabilities)
    unit.add("Container", "NoNewPrivileges", ctr.no_new_privileges)
    if ctr.user:
        uid, _, gid = ctr.user.partition(":")
        unit.add("Container", "User", uid)
        if gid:
            unit.add("Container", "Group", gid)
    unit.add("Container", "SecurityLabelDisable", ctr.security_label_disable)
    unit.add("Container", "PidsLimit", 1024)
    args = []
    if ctr.memory:
        args.append(f"--memory={ctr.memory}")
    if ctr.cpus:
        args.append(f"--cpus={ctr.cpus:g}")
    if args:
        unit.add("Container", "PodmanArgs", tuple(args))
    unit.extend(
        "Container", "Secret", [f"{name},type=env,target={name}" for name in ctr.podman_secrets]
    )
    if ctr.command:
        unit.add("Container", "Exec", tuple(ctr.command))
    if config.network.transparent:
        _steering(unit, topology.container("agent"), steering_command(topology, "agent", ()))
    # Last, so default deny is in place first: the start ends once the command runs.
    _post_step(unit, started_step())
    unit.add("Service", "Restart", ctr.restart)
    unit.add("Service", "RestartSec", ctr.restart_sec)
    unit.add("Service", "TimeoutStartSec", ctr.timeout_start_sec)
    unit.add("Service", "TimeoutStopSec", ctr.timeout_stop_sec)
    stopped_is_success(unit)
    unit.add("Install", "WantedBy", spec.wanted_by)
    return unit


def _ports(spec: CageSpec) -> UnitFile:
    """Publishes `container.ports`: the agent's internal network cannot publish ports."""
    config, topology = spec.config, spec.topology
    mappings = config.container.port_mappings
    unit = UnitFile()
    agent = service_name(topology, "agent")
    unit.add("Unit", "Description", f"agentcage {topology.cage}: published ports of the agent")
    unit.add("Unit", "Requires", agent)
    unit.add("Unit", "After", agent)
    unit.add("Container", "Image", spec.images.proxy)
    unit.add("Container", "Pull", "never")
    unit.add("Container", "ContainerName", topology.container("ports"))
    unit.add("Container", "RunInit", True)
    labels(unit, topology, "ports")
    _networks(unit, topology, topology.ports_ip, topology.ports_external_ip)
    hardening(unit, SIDECAR_USER, "64m", 64)
    lowest = min(m.container for m in mappings)
    if lowest < 1024:
        unit.add("Container", "Sysctl", f"net.ipv4.ip_unprivileged_port_start={lowest}")
    unit.extend("Container", "PublishPort", config.container.ports)
    unit.add("Container", "Entrypoint", PYTHON)
    ports = sorted({str(m.container) for m in mappings})
    unit.add("Container", "Exec", relay_args(topology, ports))
    _service(unit, spec.wanted_by)
    return unit
