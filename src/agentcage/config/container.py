"""The `container:` section: the agent's image, mounts, environment and hardening."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from agentcage.config.base import Model
from agentcage.config.context import context_of, expand_vars
from agentcage.config.fields import EnvName, Seconds, Text

_CAPABILITY = r"^(CAP_)?[A-Z_]{2,32}$"
_CTR_PATH = re.compile(r"^/[^\x00-\x1f\x7f:]*$")
_MOUNT_OPT = re.compile(r"^[a-zA-Z0-9_=.,+-]+$")
_VOLUME_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$"

RestartPolicy = Literal[
    "no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always"
]


class BindMount(NamedTuple):
    host: str
    container: str
    options: str


class PortMapping(NamedTuple):
    bind: str
    host: int
    container: int


def _number(value: object) -> object:
    # 0.3.x wrote `cpus: "2.0"`; accept numeric strings, keep everything else for pydantic.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number of CPUs (e.g. 2 or 0.5)") from None
    return value


def _container_path(value: str, what: str) -> str:
    if not _CTR_PATH.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be an absolute path inside the container")
    return value


def _options(value: str) -> str:
    if value and not _MOUNT_OPT.fullmatch(value):
        raise ValueError(f"mount options {value!r} may hold only letters, digits and ,=.+-_")
    return value


def _target(spec: str, what: str) -> None:
    """`PATH[:OPTIONS]` inside the container (named volumes, tmpfs)."""
    path, _, options = spec.partition(":")
    _container_path(path, what)
    _options(options)


def parse_port(spec: str) -> PortMapping:
    """`[bind:]host:ctr`; the bind defaults to 127.0.0.1 so nothing is exposed by accident."""
    bracketed = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+):(\d+)", spec)
    if bracketed:
        bind, host, ctr = bracketed.groups()
    else:
        parts = spec.split(":")
        if len(parts) == 2:
            bind, (host, ctr) = "127.0.0.1", parts
        elif len(parts) == 3:
            bind, host, ctr = parts
        else:
            raise ValueError(f"port {spec!r} must look like 'HOST:CTR' or 'BIND:HOST:CTR'")
    try:
        ipaddress.ip_address(bind)
    except ValueError as exc:
        raise ValueError(f"port {spec!r}: bind address {bind!r} is not an IP address") from exc
    numbers = []
    for text in (host, ctr):
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            raise ValueError(f"port {spec!r}: {text!r} is not a port number (1-65535)")
        numbers.append(int(text))
    return PortMapping(bind, numbers[0], numbers[1])


class ContainerConfig(Model):
    """The agent's container. Hardening is on unless you turn it off."""

    image: Text | None = Field(
        None, description="Image for the agent. Required unless `containerfile` is given."
    )
    containerfile: Text | None = Field(
        None, description="Containerfile to build the agent image from (relative to the config)."
    )
    command: list[Text] | None = Field(None, description="Command (argv list) for the agent.")
    volumes: list[Text] = Field(
        default_factory=list,
        description="Bind mounts `host:container[:options]`; `${VAR}` is expanded and the host "
        "path must exist (relative paths are resolved against the config file). With "
        "`isolation: firecracker`, read-only (`:ro`) ones only.",
    )
    named_volumes: dict[str, Text] = Field(
        default_factory=dict,
        description="Named volumes: `name: /container/path[:options]`. Podman volumes; with "
        "`isolation: firecracker`, an ext4 drive each in the cage's state (docs/microvm.md). "
        "`cage destroy` removes them.",
    )
    tmpfs: list[Text] = Field(
        default_factory=list,
        description="Writable tmpfs mounts on the read-only root: `/path[:options]`.",
    )
    ports: list[Text] = Field(
        default_factory=list,
        description="Published ports `[bind:]host:container`; bind defaults to 127.0.0.1.",
    )
    podman_secrets: list[EnvName] = Field(
        default_factory=list,
        description="Podman secrets given to the agent as environment variables (for secrets "
        "used inside the cage only; API keys belong in `secret_injection`).",
    )
    env: dict[EnvName, Text] = Field(
        default_factory=dict, description="Environment for the agent; `${VAR}` is expanded."
    )
    user: Text = Field(
        "1000:1000", pattern=r"^([0-9]+(:[0-9]+)?)?$", description="`UID:GID`; '' = image default."
    )
    memory: Text | None = Field(
        None, pattern=r"^[0-9]+[bkmgBKMG]?$", description="Memory limit, e.g. `4g`."
    )
    cpus: Annotated[float, BeforeValidator(_number)] | None = Field(
        None, gt=0, le=1024, description="CPU limit, e.g. `2.0`."
    )
    read_only: bool = Field(True, description="Read-only root filesystem.")
    drop_capabilities: Literal["ALL"] | list[str] = Field(
        "ALL", description="Capabilities to drop: `ALL` or a list."
    )
    add_capabilities: list[str] = Field(
        default_factory=list, description="Capabilities to add back, e.g. `[NET_BIND_SERVICE]`."
    )
    no_new_privileges: bool = Field(True, description="Forbid privilege escalation (setuid).")
    security_label_disable: bool = Field(True, description="Disable SELinux labelling.")
    restart: RestartPolicy = Field("on-failure", description="systemd `Restart=` policy.")
    restart_sec: Seconds = Field(10, description="systemd `RestartSec=`.")
    timeout_start_sec: Seconds = Field(120, description="systemd `TimeoutStartSec=`.")
    timeout_stop_sec: Seconds = Field(30, description="systemd `TimeoutStopSec=`.")

    @field_validator("drop_capabilities", "add_capabilities", mode="after")
    @classmethod
    def _capabilities(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str):
            return value
        for cap in value:
            if not re.fullmatch(_CAPABILITY, cap):
                raise ValueError(f"{cap!r} is not a capability name (e.g. NET_BIND_SERVICE)")
        return [cap.removeprefix("CAP_") for cap in value]

    @field_validator("volumes", mode="after")
    @classmethod
    def _volumes(cls, value: list[str], info: ValidationInfo) -> list[str]:
        ctx = context_of(info)
        out = []
        for spec in value:
            expanded = expand_vars(spec, ctx.environ)
            parts = expanded.split(":")
            if len(parts) not in (2, 3) or not parts[0]:
                raise ValueError(f"volume {spec!r} must look like 'HOST:CONTAINER[:OPTIONS]'")
            host = Path(parts[0]).expanduser()
            if not host.is_absolute():
                host = ctx.base_dir / host
            host = Path(str(host.resolve()) if ctx.check_paths else str(host))
            if ctx.check_paths and not host.exists():
                raise ValueError(
                    f"volume {spec!r}: host path {str(host)!r} does not exist; create it first"
                )
            _container_path(parts[1], "volume target")
            options = _options(parts[2] if len(parts) == 3 else "")
            out.append(":".join(p for p in (str(host), parts[1], options) if p))
        return out

    @field_validator("named_volumes", mode="after")
    @classmethod
    def _named_volumes(cls, value: dict[str, str]) -> dict[str, str]:
        for name, spec in value.items():
            if not re.fullmatch(_VOLUME_NAME, name):
                raise ValueError(f"volume name {name!r} may hold only letters, digits and _.-")
            _target(spec, "volume target")
        return value

    @field_validator("tmpfs", mode="after")
    @classmethod
    def _tmpfs(cls, value: list[str]) -> list[str]:
        for spec in value:
            _target(spec, "tmpfs target")
        return value

    @field_validator("ports", mode="after")
    @classmethod
    def _ports(cls, value: list[str]) -> list[str]:
        normalized = []
        for spec in value:
            port = parse_port(spec)
            bind = f"[{port.bind}]" if ":" in port.bind else port.bind
            normalized.append(f"{bind}:{port.host}:{port.container}")
        return normalized

    @field_validator("env", mode="after")
    @classmethod
    def _env(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        environ = context_of(info).environ
        return {key: expand_vars(val, environ) for key, val in value.items()}

    @model_validator(mode="after")
    def _image_source(self) -> ContainerConfig:
        if self.image is None and self.containerfile is None:
            raise ValueError("give `image` (e.g. 'debian:bookworm-slim') or `containerfile`")
        return self

    @property
    def bind_mounts(self) -> list[BindMount]:
        mounts = []
        for spec in self.volumes:
            host, ctr, *rest = spec.split(":")
            mounts.append(BindMount(host, ctr, rest[0] if rest else ""))
        return mounts

    @property
    def port_mappings(self) -> list[PortMapping]:
        return [parse_port(spec) for spec in self.ports]
