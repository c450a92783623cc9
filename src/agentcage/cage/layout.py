"""What a deployed cage keeps in its state directory, and writing it.

deployments/<name>/
  config.yaml, config.json    the config (StateStore)
  topology.json               subnets and addresses (topology.py)
  images.json                 the image references the units use
  create-options.json         what `create` was told (the base), reused by `update`
  sidecar/config.yaml         what the proxy and DNS sidecars read (mounted read-only)
  sidecar/config.yaml.*.answer  each sidecar check's answer for it (checked_ahead.py)
  ca/                         CA key + certificate, mounted into the proxy only
  ca-public/ca.pem            the CA certificate, mounted into the agent
  audit/proxy/, audit/dns/    the sidecars' audit logs
  metrics/proxy/, metrics/dns/  each sidecar's metrics socket (proxy.sock, dns.sock)
  fingerprints/               the proxy's fingerprints of protected values, for the DNS sidecar
  canary-seed                 private seed of the cage's decoy credentials (0600)
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from agentcage.cage.contract import (
    CONFIG_FILE,
    DNS_AUDIT_LOG,
    DNS_METRICS_SOCKET,
    PROXY_AUDIT_LOG,
    PROXY_METRICS_SOCKET,
    SIDECAR_CONFIG_NAME,
)
from agentcage.cage.state import StateStore, config_json, write_atomic, write_atomic_all
from agentcage.checked_ahead import answer_file, code_identity
from agentcage.errors import StateError

if TYPE_CHECKING:  # `cage verify` reads the paths here without the schema (pydantic)
    from agentcage.config.schema import CageConfig

IMAGES_FILE = "images.json"
CREATE_OPTIONS_FILE = "create-options.json"
CANARY_SEED_FILE = "canary-seed"


@dataclass(frozen=True)
class HostPaths:
    """Host directories the containers mount, all inside the cage's state directory."""

    sidecar_config_dir: Path  # the config the sidecars read, ro
    ca_dir: Path  # CA key + cert, proxy only
    ca_public_cert: Path  # CA certificate only, for the agent
    proxy_audit_dir: Path
    dns_audit_dir: Path
    upstream_ca: Path  # optional extra CA bundle the proxy trusts upstream
    fingerprints_dir: Path  # proxy rw, DNS ro: value fingerprints, never values
    proxy_metrics_dir: Path  # the proxy's metrics socket, proxy only
    dns_metrics_dir: Path  # the DNS sidecar's metrics socket, DNS only

    @classmethod
    def under(cls, directory: Path) -> HostPaths:
        return cls(
            sidecar_config_dir=directory / "sidecar",
            ca_dir=directory / "ca",
            ca_public_cert=directory / "ca-public" / "ca.pem",
            proxy_audit_dir=directory / "audit" / "proxy",
            dns_audit_dir=directory / "audit" / "dns",
            upstream_ca=directory / "upstream-ca" / "ca.pem",
            fingerprints_dir=directory / "fingerprints",
            proxy_metrics_dir=directory / "metrics" / "proxy",
            dns_metrics_dir=directory / "metrics" / "dns",
        )

    def metrics_sockets(self) -> dict[str, Path]:
        """Role -> the host path of its metrics socket."""
        return {
            "proxy": self.proxy_metrics_dir / PROXY_METRICS_SOCKET,
            "dns": self.dns_metrics_dir / DNS_METRICS_SOCKET,
        }


@dataclass(frozen=True)
class Images:
    """The image references a cage's units use (`images.json`)."""

    proxy: str
    dns: str
    agent: str


@dataclass(frozen=True)
class CreateOptions:
    """What `cage create` was told besides the config; `update` reuses it unless overridden.

    `base` is `choose_base`'s answer. An `--upstream-ca` is kept as a copy in the state
    directory (`HostPaths.upstream_ca`), which the units use whenever it is there.
    """

    base: str


def save_create_options(store: StateStore, name: str, options: CreateOptions) -> None:
    store.write(name, CREATE_OPTIONS_FILE, json.dumps(asdict(options), indent=2) + "\n")


def load_create_options(store: StateStore, name: str) -> CreateOptions | None:
    """None for a cage created before options were recorded."""
    data = store.read_json(name, CREATE_OPTIONS_FILE)
    if not isinstance(data, dict) or not isinstance(data.get("base"), str):
        return None
    return CreateOptions(base=data["base"])


def host_paths(store: StateStore, name: str) -> HostPaths:
    return HostPaths.under(store.path(name))


def canary_seed(store: StateStore, name: str) -> str:
    """The cage's decoy seed, made once: decoys stay stable across updates and restarts."""
    path = store.path(name) / CANARY_SEED_FILE
    try:
        seed = path.read_text().strip()
    except FileNotFoundError:
        seed = ""
    if not seed:
        seed = secrets.token_hex(32)
        store.write(name, CANARY_SEED_FILE, seed + "\n")
    return seed


def sidecar_config(config: CageConfig, agent_image: str) -> str:
    """The config the sidecars load: everything but the agent container's host details.

    Host paths in `container.volumes` do not exist inside the sidecars (and are none of
    their business), so only the image is kept to satisfy the schema.
    """
    data = json.loads(config_json(config))
    data["container"] = {"image": agent_image}
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_sidecar_config(store: StateStore, config: CageConfig, agent_image: str) -> Path:
    paths = host_paths(store, config.name)
    directory = paths.sidecar_config_dir
    directory.mkdir(parents=True, exist_ok=True)
    # Readable by the sidecars' non-root user; it holds policy, never secret values.
    directory.chmod(0o755)
    target = directory / SIDECAR_CONFIG_NAME
    write_atomic(target, sidecar_config(config, agent_image), 0o644)
    store_check_answers(target, Path(CONFIG_FILE))
    return target


def store_check_answers(path: Path, shown_as: Path) -> list[str]:
    """Store, beside the sidecars' config `path`, what each sidecar's config check would
    answer for it where the sidecar reads it (`shown_as`); the check modules stored for.

    The answers are made here, by the code the sidecars run (checked_ahead.py). Validating
    reads nothing outside the file but for `container.volumes` and `container.env` (the
    environment, the file system) and, for the DNS plan of a config without `dns_servers`,
    this machine's resolvers: a config whose container section is not `sidecar_config`'s
    image alone gets no answers (the sidecars then check it themselves), and a DNS answer
    made with the resolvers carries them, to be used only where they are the same.
    """
    from agentcage.config.host import host_resolvers
    from agentcage.dns import config_check, plan
    from agentcage.proxy import checked_config

    data = path.read_bytes()
    try:
        tree = json.loads(data)
    except ValueError:
        return []
    if not isinstance(tree, dict):
        return []
    container = tree.get("container")
    if not (isinstance(container, dict) and set(container) <= {"image"}):
        return []
    resolvers = host_resolvers() if tree.get("dns_servers") is None else None
    identity = code_identity()
    stored, files = [], []
    for module, answer, used in (
        (checked_config.CHECK_MODULE, checked_config.answer, None),
        (plan.CHECK_MODULE, config_check.answer, resolvers),
    ):
        made = partial(answer, path, shown_as=shown_as)
        file = answer_file(path, data, module, made, identity=identity, resolvers=used)
        if file is not None:
            stored.append(module)
            files.append(file)
    write_atomic_all(files)
    return stored


def save_upstream_ca(store: StateStore, name: str, source: Path) -> None:
    """Keep a copy of an extra CA bundle the proxy should trust for upstream servers."""
    try:
        pem = source.read_bytes()
    except OSError as exc:
        raise StateError(f"--upstream-ca {source}: {exc.strerror}") from exc
    if b"-----BEGIN CERTIFICATE-----" not in pem or b"PRIVATE KEY" in pem:
        raise StateError(f"--upstream-ca {source}: expected PEM certificates only")
    target = host_paths(store, name).upstream_ca
    target.parent.mkdir(parents=True, exist_ok=True)
    target.parent.chmod(0o755)
    write_atomic(target, pem, 0o644)


def prepare_sidecar_dirs(store: StateStore, name: str) -> None:
    """The directories the sidecars write to, created before they are mounted."""
    paths = host_paths(store, name)
    for directory in (paths.proxy_audit_dir, paths.dns_audit_dir, paths.fingerprints_dir):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for directory in (paths.proxy_metrics_dir, paths.dns_metrics_dir):
        if directory.is_dir():
            continue  # mounted before (`:U`): a rootless cage's sub-UID owns it, not us
        directory.mkdir(parents=True)
        # The host user, outside the container's user namespace once `:U` chowned it,
        # still passes through to the socket (mode METRICS_SOCKET_MODE).
        directory.chmod(0o711)


def save_images(store: StateStore, name: str, images: Images) -> None:
    store.write(name, IMAGES_FILE, json.dumps(asdict(images), indent=2) + "\n")


def load_images(store: StateStore, name: str) -> Images:
    data = store.read_json(name, IMAGES_FILE)
    if not isinstance(data, dict):
        raise StateError(f"cage {name!r} has no recorded images; run `agentcage cage update`")
    return Images(**data)


def audit_logs(store: StateStore, name: str) -> list[Path]:
    paths = host_paths(store, name)
    return [paths.proxy_audit_dir / PROXY_AUDIT_LOG, paths.dns_audit_dir / DNS_AUDIT_LOG]


# Names and paths our own health checks and `cage verify` use; their (deliberately
# blocked) requests stay in the audit log but are not the agent's doing.
SELF_TEST_NAMES = frozenset({"agentcage-probe.invalid", "agentcage-verify.invalid-zone.example"})
SELF_TEST_PATH = "/agentcage-verify"


def is_self_test(record: dict[str, object]) -> bool:
    names = {record.get("qname"), record.get("host")}
    return bool(names & SELF_TEST_NAMES) or str(record.get("path", "")).startswith(SELF_TEST_PATH)


def count_blocked(store: StateStore, name: str) -> int:
    """Blocked decisions of the agent in the cage's audit logs (proxy and DNS)."""
    total = 0
    for path in audit_logs(store, name):
        try:
            handle = path.open("rb")
        except OSError:
            continue
        with handle:
            for line in handle:
                if b'"verdict":"block"' not in line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("verdict") == "block":
                    total += not is_self_test(record)
    return total
