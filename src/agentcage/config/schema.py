"""The whole config file as one pydantic model: the only parser of user config.

Accepts the 0.3.x format (including its legacy spellings) and adds our own keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from agentcage.config.base import Model
from agentcage.config.cage_name import NAME_PATTERN
from agentcage.config.container import ContainerConfig
from agentcage.config.domain_list import DomainsConfig
from agentcage.config.fields import ByteSize, Text
from agentcage.config.host import host_resolvers, parse_server
from agentcage.config.inspection import (
    BUILTIN_INSPECTORS,
    ContentTypeConfig,
    EntropyConfig,
    InspectorSpec,
    RateLimitConfig,
    SecretInjection,
    SecretsConfig,
    UrlDataConfig,
)
from agentcage.config.kubernetes import KubernetesConfig
from agentcage.config.network import NetworkConfig

DEFAULT_MAX_REQUEST_BODY = 10 * 1024 * 1024
DEFAULT_AUDIT_MAX_BYTES = 100 * 1024 * 1024


class LoggingConfig(Model):
    """What goes to the audit log besides blocked and flagged decisions (always logged)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    allowed_requests: bool = Field(True, description="Log allowed requests too.")
    dns_queries: Literal["all", "blocked", "none"] = Field(
        "blocked", description="DNS queries to log: `all`, `blocked` (default) or `none`."
    )
    proxy_connections: bool = Field(False, description="Log each client connection.")
    audit_max_bytes: ByteSize = Field(
        DEFAULT_AUDIT_MAX_BYTES,
        description="Size at which the proxy and the DNS sidecar each start a new audit file "
        "(`proxy.jsonl` becomes `proxy.jsonl.1`, and so on); `0` never rotates (leave it to "
        "logrotate and SIGHUP).",
    )
    audit_keep: int = Field(
        10,
        ge=1,
        le=1000,
        description="Rotated audit files kept beside the live one; the oldest is removed.",
    )

    @field_validator("dns_queries", mode="before")
    @classmethod
    def _bool_shorthand(cls, value: Any) -> Any:
        if value is True:
            return "all"
        if value is False:
            return "none"
        return value


class FirecrackerConfig(Model):
    """MicroVM settings, used when `isolation: firecracker`."""

    vcpus: int = Field(2, ge=1, le=64)
    mem_mb: int = Field(2048, ge=256, le=1024 * 1024)
    kernel: Text | None = Field(None, description="Guest kernel image (default: bundled).")
    firecracker_bin: Text | None = Field(
        None, description="Path of the `firecracker` binary (default: found on PATH)."
    )
    hypervisor: Literal["auto", "firecracker", "qemu"] = Field(
        "auto",
        description="The virtual machine monitor: `firecracker` needs its binary (1.8.0 or "
        "later, mounted read-only into the cage's VM container) and a usable /dev/kvm; "
        "`qemu` runs `qemu-system-x86_64 -M microvm`, with KVM when usable and "
        "software emulation (TCG) otherwise; `auto` takes Firecracker when it can run, else "
        "QEMU. A choice that cannot run is refused, never replaced (docs/microvm.md).",
    )
    accel: Literal["auto", "kvm", "tcg"] = Field(
        "auto",
        description="QEMU's accelerator: `auto` uses KVM when /dev/kvm opens and the CPU "
        "offers hardware virtualisation (vmx/svm), TCG otherwise.",
    )
    qemu_bin: Text | None = Field(
        None, description="Path of `qemu-system-x86_64` (default: found on PATH)."
    )


class DnsConfig(Model):
    """The DNS sidecar's tunnel detection and budgets in forwarded zones (see docs/dns.md)."""

    tunnel_action: Literal["flag", "block"] = Field(
        "flag",
        description="What to do with a query that looks like DNS tunnelling: `flag` it in the "
        "audit log, or `block` (refuse) its zone from then on.",
    )
    max_subdomain_length: int = Field(
        100,
        ge=16,
        le=253,
        description="Longest name part below a zone (e.g. the `a.b` of `a.b.x.example.com`) "
        "before a query is flagged; tunnels pack data into long names.",
    )
    random_run_length: int = Field(
        33,
        ge=12,
        le=63,
        description="A label with a hyphen-free run at least this long is checked for "
        "randomness (encoded data); shorter runs (CDN ids, hashes, UUID parts) never are.",
    )
    random_run_entropy: float = Field(
        4.2,
        ge=3.0,
        le=6.0,
        description="Shannon entropy (bits per character) at which such a run counts as "
        "encoded data.",
    )
    random_run_digits: float = Field(
        0.3,
        gt=0.0,
        le=1.0,
        description="Share of digits at which such a run counts as encoded data (hex).",
    )
    max_unique_subdomains: int = Field(
        100,
        ge=10,
        description="Budget of distinct names under one zone (a domain-list entry; in "
        "blocklist mode the last two labels) within `unique_window`: once spent, new "
        "names there are refused; names already seen keep resolving.",
    )
    max_unique_labels: int = Field(
        200,
        ge=10,
        description="Budget of distinct labels below one zone within `unique_window`, spent "
        "and enforced like `max_unique_subdomains`.",
    )
    unique_window: int = Field(
        3600,
        ge=1,
        le=86400,
        description="Window of both budgets, in seconds: a name or label not asked for "
        "this long no longer counts.",
    )
    max_blocked_zones: int = Field(
        256,
        ge=1,
        le=65536,
        description="With `tunnel_action: block`: zones that may be blocked before the sidecar "
        "stops answering altogether (fail closed).",
    )


class CageConfig(Model):
    """One cage: the agent container and the policy its traffic is held to."""

    name: str = Field(pattern=NAME_PATTERN, description="Cage name: lower-case, digits, `-`.")
    isolation: Literal["container", "firecracker"] = Field(
        "container",
        description="`container` (Podman). `firecracker`: the same three roles inside a "
        "microVM with its own kernel (Firecracker where it and KVM are usable, else QEMU's "
        "microvm machine; with KVM when usable, else software emulation, which is slow; "
        "`firecracker.hypervisor` chooses). See docs/microvm.md for what it refuses.",
    )
    container: ContainerConfig = Field(description="The agent's container.")
    secret_injection: list[SecretInjection] = Field(
        default_factory=list, description="Secrets the agent sees only as placeholders."
    )
    domains: DomainsConfig = Field(
        default_factory=DomainsConfig,
        description="Reachable hosts. Default: an empty allowlist, so nothing is reachable.",
    )
    secrets: SecretsConfig = Field(default_factory=SecretsConfig, description="Secret scanner.")
    max_request_body: ByteSize = Field(
        DEFAULT_MAX_REQUEST_BODY, description="Largest request body in bytes; 0 disables."
    )
    entropy: EntropyConfig | Literal[False] = Field(
        default_factory=EntropyConfig, description="Entropy checks, or `false` to disable."
    )
    content_type: ContentTypeConfig | Literal[False] = Field(
        default_factory=ContentTypeConfig, description="Content-type checks, or `false`."
    )
    url_data: UrlDataConfig | Literal[False] = Field(
        default_factory=UrlDataConfig,
        description="Data in host names and URLs (encoded labels, random tokens), or `false`.",
    )
    inspectors: list[InspectorSpec] = Field(
        default_factory=list, description="Custom inspectors, run after the built-in ones."
    )
    rate_limit: RateLimitConfig | Literal[False] = Field(
        default_factory=RateLimitConfig,
        description="Budgets on requests and uploaded bytes (429 past one), or `false`.",
    )
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Audit logging.")
    dns_servers: list[Text] | None = Field(
        None, description="Upstream resolvers (`host` or `host:port`); default: the host's."
    )
    firecracker: FirecrackerConfig = Field(
        default_factory=FirecrackerConfig, description="MicroVM settings."
    )
    network: NetworkConfig = Field(
        default_factory=NetworkConfig, description="Egress address rules."
    )
    dns: DnsConfig = Field(default_factory=DnsConfig, description="DNS sidecar settings.")
    kubernetes: KubernetesConfig = Field(
        default_factory=KubernetesConfig,
        description="Deploying to a Kubernetes cluster with `agentcage kube` (docs/kubernetes.md).",
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_spellings(cls, data: Any) -> Any:
        """Fold 0.3.x spellings into ours so the rest of the code sees one shape."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "log_allowed" in data:
            log = dict(data.get("logging") or {})
            log.setdefault("allowed_requests", data.pop("log_allowed"))
            data["logging"] = log
        for key in ("entropy", "content_type", "rate_limit"):
            if data.get(key) is True:
                data[key] = {}
        specs = data.get("inspectors")
        if isinstance(specs, list):
            for spec in specs:
                _fold_builtin(spec, data)
        return data

    @field_validator("dns_servers", mode="after")
    @classmethod
    def _dns_servers(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            for server in value:
                parse_server(server)
        return value

    @field_validator("secret_injection", mode="after")
    @classmethod
    def _unique_injections(cls, rules: list[SecretInjection]) -> list[SecretInjection]:
        seen_env: set[str] = set()
        seen_placeholder: set[str] = set()
        for rule in rules:
            if rule.env in seen_env:
                raise ValueError(f"{rule.env} is listed twice")
            if rule.token in seen_placeholder:
                raise ValueError(f"placeholder {rule.token!r} is used twice")
            seen_env.add(rule.env)
            seen_placeholder.add(rule.token)
        return rules

    @model_validator(mode="after")
    def _microvm_mounts(self) -> CageConfig:
        """What a microVM cage cannot give the agent, refused before anything is built."""
        if self.isolation != "firecracker":
            return self
        for mount in self.container.bind_mounts:
            if "ro" in mount.options.split(","):
                continue  # copied onto the agent's root drive when the cage is made
            where = (
                f"isolation: firecracker: the writable bind mount {mount.host}:{mount.container}"
            )
            if self.firecracker.hypervisor == "firecracker":
                raise ValueError(
                    f"{where} needs a shared filesystem, which Firecracker does not have; "
                    "use `firecracker.hypervisor: qemu` (virtiofs, live), mark it `:ro` (a "
                    "snapshot copied in when the cage is made), or keep what the agent writes "
                    "in a named volume (`container.named_volumes`); see docs/microvm.md, Volumes"
                )
            if not Path(mount.host).expanduser().is_dir():
                raise ValueError(
                    f"{where} is shared with the guest through virtiofs, which shares "
                    "directories only; mount its directory, or mark it `:ro` (copied in)"
                )
        if self.container.ports:
            raise ValueError("isolation: firecracker cannot publish `container.ports` yet")
        return self

    @property
    def custom_inspectors(self) -> list[InspectorSpec]:
        """`inspectors` entries that name a plugin (built-in names only carry settings)."""
        return [spec for spec in self.inspectors if spec.name not in BUILTIN_INSPECTORS]

    def effective_dns_servers(self) -> list[str]:
        """`dns_servers`, or the host's own non-loopback resolvers."""
        return list(self.dns_servers) if self.dns_servers is not None else host_resolvers()


def _fold_builtin(spec: Any, data: dict[str, Any]) -> None:
    """Copy `inspectors: [{name: entropy, config: {...}}]` into the top-level section."""
    if not isinstance(spec, dict) or spec.get("name") not in BUILTIN_INSPECTORS:
        return
    name, config = spec["name"], spec.get("config") or {}
    if not isinstance(config, dict):
        return  # InspectorSpec reports the bad type with its location
    if name == "body-size":
        if "max_bytes" in config:
            data["max_request_body"] = config["max_bytes"]
        return
    key = {"content-type": "content_type", "rate-limit": "rate_limit"}.get(name, name)
    if key in ("entropy", "content_type", "rate_limit"):
        current = data.get(key)
        base = current if isinstance(current, dict) else {}
        data[key] = {**base, **config}
