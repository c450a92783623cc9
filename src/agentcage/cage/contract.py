"""What the host and the cage's images agree on: paths, names, environment and argv.

The host side renders the units (quadlet.py) and keeps the state (layout.py); inside,
the images run `agentcage proxy run`, `agentcage dns run` and the probes. Neither side
spells a path, variable, unit or secret name or command line of its own: they come from
here. `ProxyRunArgs` and `DnsRunArgs` render the sidecars' command lines with the option
names cli/ declares its click options with, and their fields are the click parameters,
so tests/unit/cage/test_contract.py can parse each rendered line with the real command
and check that it means what the unit intends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from agentcage.cage.run_options import (
    AUDIT_LOG_OPTION,
    BLOCKED_ZONES_OPTION,
    CA_DIR_OPTION,
    CONFIG_OPTION,
    DENY_FLOWS_OPTION,
    LISTEN_OPTION,
    METRICS_OPTION,
    METRICS_SOCKET_MODE_OPTION,
    NAME_FINGERPRINTS_OPTION,
    SECRETS_DIR_OPTION,
    STEER_OPTION,
    TRANSPARENT_OPTION,
    UPSTREAM_CA_OPTION,
)
from agentcage.cage.topology import DNS_PORT, PROXY_PORT, Topology
from agentcage.policy.canaries import CANARY_SEED_ENV as CANARY_SEED_ENV
from agentcage.policy.canaries import canary_env

if TYPE_CHECKING:  # annotations only: `cage destroy` reaches this module without a config
    from agentcage.config.schema import CageConfig

# --- inside the images (images/runtime/Containerfile) ---------------------------------
PODMAN = "/usr/bin/podman"  # what the units run (quadlet's generator writes the same)
VENV_BIN = "/opt/agentcage/bin"
PYTHON = f"{VENV_BIN}/python"
SIDECAR_USER = "10000"  # the runtime image's `agentcage` user and group
# Standard-library-only modules run with `PYTHON -m` (names, not imports: the host need
# not load them, and forward.py would bring asyncio).
PROBE_MODULE = "agentcage.cage.probe"  # the sidecars' health checks
RELAY_MODULE = "agentcage.cage.forward"  # the published-ports relay
NETCHECK_MODULE = "agentcage.cage.netcheck"  # `cage verify`'s network checks
STEERING_MODULE = "agentcage.cage.steering"  # default deny: redirects and the agent's route

# --- inside the containers: where the units mount things ------------------------------
CONFIG_DIR = "/etc/agentcage"
SIDECAR_CONFIG_NAME = "config.yaml"  # layout.py writes it into the mounted directory
CONFIG_FILE = f"{CONFIG_DIR}/{SIDECAR_CONFIG_NAME}"
CA_DIR = "/var/lib/agentcage/ca"
AUDIT_DIR = "/var/log/agentcage"
PROXY_AUDIT_LOG = "proxy.jsonl"  # in AUDIT_DIR, and in the host's audit/proxy/
DNS_AUDIT_LOG = "dns.jsonl"  # in AUDIT_DIR, and in the host's audit/dns/
DNS_BLOCKED_ZONES = "dns-blocked-zones.json"
# Fingerprints of the protected values: written by the proxy, read by the DNS sidecar.
FINGERPRINTS_DIR = "/var/lib/agentcage/fingerprints"
NAME_FINGERPRINTS = f"{FINGERPRINTS_DIR}/name-fingerprints.json"
SECRETS_DIR = "/run/secrets/agentcage"
AGENT_CA = "/etc/agentcage-ca/ca.pem"
UPSTREAM_CA = "/etc/agentcage-upstream-ca/ca.pem"
# Each sidecar's metrics socket, in a host directory of the cage's state mounted into that
# sidecar alone: the agent has no path to it and no network route to it (docs/metrics.md).
METRICS_DIR = "/run/agentcage/metrics"
PROXY_METRICS_SOCKET = "proxy.sock"  # in METRICS_DIR, and in the host's metrics/proxy/
DNS_METRICS_SOCKET = "dns.sock"  # in METRICS_DIR, and in the host's metrics/dns/
# The socket belongs to the sidecar's user (a subordinate uid in a rootless cage), so it is
# opened to all and the host directory, inside the user's 0700 state, is the guard.
METRICS_SOCKET_MODE = "0666"

# --- the agent's environment -----------------------------------------------------------
# Where each client looks for extra CAs: OpenSSL and uv, Python requests (pip), Node (npm),
# curl, and git, whose libcurl-gnutls reads none of the others.
CA_VARIABLES = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
)
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
NO_PROXY = "localhost,127.0.0.1,::1"


def agent_environment(
    config: CageConfig, topology: Topology, canary_seed: str | None = None
) -> dict[str, str]:
    """The agent's environment: the user's, then decoys, placeholders, proxy and CA."""
    env = dict(config.container.env)
    env.update(canary_env(config, canary_seed))
    for rule in config.secret_injection:
        env[rule.env] = rule.token
    env.update(way_out_environment(topology))
    return env


def way_out_environment(topology: Topology) -> dict[str, str]:
    """The agent's proxy and CA variables: what `cage verify` expects to find set."""
    env = dict.fromkeys(PROXY_VARIABLES, topology.proxy_url)
    env["NO_PROXY"] = env["no_proxy"] = NO_PROXY
    env.update(dict.fromkeys(CA_VARIABLES, AGENT_CA))
    return env


# --- names -----------------------------------------------------------------------------


def service_name(topology: Topology, role: str) -> str:
    """The systemd service quadlet makes of the cage's `role` container."""
    return f"{topology.container(role)}.service"


# A secret's name is the agent's env name: no '-', so `agentcage-a-` never claims the
# secrets of a cage named `a-b`.
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def secret_id(cage: str, name: str) -> str:
    """The Podman secret holding a cage's secret `name`."""
    return f"agentcage-{cage}-{name}"


def secret_of(cage: str, ident: str) -> str | None:
    """The secret name if Podman secret `ident` is one of `cage`'s, else None."""
    prefix = secret_id(cage, "")
    name = ident[len(prefix) :] if ident.startswith(prefix) else ""
    return name if SECRET_NAME.match(name) else None


def secrets_in(cage: str, listing: str) -> list[str]:
    """`cage`'s secret names in `podman secret ls --format {{.Name}}`'s output, sorted."""
    return sorted(secret for ident in listing.split() if (secret := secret_of(cage, ident)))


# --- command lines ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProxyRunArgs:
    """`agentcage proxy run` as the proxy container runs it; fields are its click params."""

    config_file: str
    listen: str
    ca_dir: str
    secrets_dir: str
    audit_log: str
    name_fingerprints: str
    upstream_ca: str | None = None
    metrics: str | None = None
    transparent: str | None = None
    metrics_socket_mode: str | None = None
    deny_flows: bool = False

    COMMAND: ClassVar[tuple[str, ...]] = ("proxy", "run")

    def argv(self) -> tuple[str, ...]:
        """The words after the image's `agentcage` entrypoint."""
        words = (
            *self.COMMAND,
            CONFIG_OPTION, self.config_file,
            LISTEN_OPTION, self.listen,
            CA_DIR_OPTION, self.ca_dir,
            SECRETS_DIR_OPTION, self.secrets_dir,
            AUDIT_LOG_OPTION, self.audit_log,
            NAME_FINGERPRINTS_OPTION, self.name_fingerprints,
        )  # fmt: skip
        if self.upstream_ca is not None:
            words += (UPSTREAM_CA_OPTION, self.upstream_ca)
        words += _metrics_words(self.metrics, self.metrics_socket_mode)
        if self.transparent is not None:
            words += (TRANSPARENT_OPTION, self.transparent)
        if self.deny_flows:
            words += (DENY_FLOWS_OPTION,)
        return words


@dataclass(frozen=True)
class DnsRunArgs:
    """`agentcage dns run` as the DNS container runs it; fields are its click params."""

    config_file: str
    listen: str
    audit_log: str
    blocked_zones: str
    name_fingerprints: str
    metrics: str | None = None
    steer_to: str | None = None
    metrics_socket_mode: str | None = None

    COMMAND: ClassVar[tuple[str, ...]] = ("dns", "run")

    def argv(self) -> tuple[str, ...]:
        """The words after the image's `agentcage` entrypoint."""
        words = (
            *self.COMMAND,
            CONFIG_OPTION, self.config_file,
            LISTEN_OPTION, self.listen,
            AUDIT_LOG_OPTION, self.audit_log,
            BLOCKED_ZONES_OPTION, self.blocked_zones,
            NAME_FINGERPRINTS_OPTION, self.name_fingerprints,
        )  # fmt: skip
        words += _metrics_words(self.metrics, self.metrics_socket_mode)
        if self.steer_to is not None:
            words += (STEER_OPTION, self.steer_to)
        return words


def _metrics_words(metrics: str | None, mode: str | None) -> tuple[str, ...]:
    words: tuple[str, ...] = ()
    if metrics is not None:
        words += (METRICS_OPTION, metrics)
    if mode is not None:
        words += (METRICS_SOCKET_MODE_OPTION, mode)
    return words


def proxy_run(topology: Topology, upstream_ca: bool, transparent: bool = False) -> ProxyRunArgs:
    """`transparent`: also serve programs that ignore proxy settings (docs/transparent.md)."""
    return ProxyRunArgs(
        config_file=CONFIG_FILE,
        listen=f"{topology.proxy_ip}:{PROXY_PORT}",
        ca_dir=CA_DIR,
        secrets_dir=SECRETS_DIR,
        audit_log=f"{AUDIT_DIR}/{PROXY_AUDIT_LOG}",
        name_fingerprints=NAME_FINGERPRINTS,
        upstream_ca=UPSTREAM_CA if upstream_ca else None,
        transparent=topology.proxy_ip if transparent else None,
        deny_flows=transparent,
        metrics=f"unix:{METRICS_DIR}/{PROXY_METRICS_SOCKET}",
        metrics_socket_mode=METRICS_SOCKET_MODE,
    )


def dns_run(topology: Topology, transparent: bool = False) -> DnsRunArgs:
    """`transparent`: answer allowed names with the proxy's address (docs/transparent.md)."""
    return DnsRunArgs(
        config_file=CONFIG_FILE,
        listen=f"{topology.dns_ip}:{DNS_PORT}",
        audit_log=f"{AUDIT_DIR}/{DNS_AUDIT_LOG}",
        blocked_zones=f"{AUDIT_DIR}/{DNS_BLOCKED_ZONES}",
        name_fingerprints=NAME_FINGERPRINTS,
        steer_to=topology.proxy_ip if transparent else None,
        metrics=f"unix:{METRICS_DIR}/{DNS_METRICS_SOCKET}",
        metrics_socket_mode=METRICS_SOCKET_MODE,
    )


def probe_argv(kind: Literal["tcp", "dns"], address: str, port: int) -> list[str]:
    """A sidecar's health check: `python -m agentcage.cage.probe KIND ADDRESS PORT`."""
    return [PYTHON, "-m", PROBE_MODULE, kind, address, str(port)]


def relay_args(topology: Topology, ports: list[str]) -> tuple[str, ...]:
    """The port relay's arguments after its `PYTHON` entrypoint."""
    return ("-m", RELAY_MODULE, topology.agent_ip, *ports)
