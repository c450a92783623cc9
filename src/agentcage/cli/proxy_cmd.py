"""`agentcage proxy run`: the inspecting proxy, on the host or inside the proxy container."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from agentcage.cage.run_options import (
    AUDIT_LOG_OPTION,
    CA_DIR_OPTION,
    DENY_FLOWS_OPTION,
    LISTEN_OPTION,
    NAME_FINGERPRINTS_OPTION,
    SECRETS_DIR_OPTION,
    TRANSPARENT_OPTION,
    UPSTREAM_CA_OPTION,
)
from agentcage.cli.options import config_file_option, endpoint, metrics_options
from agentcage.config.constants import DENY_PORT
from agentcage.errors import ConfigError


@click.group()
def proxy() -> None:
    """Run the inspecting egress proxy."""


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(
            f"--listen {value!r} is not HOST:PORT", hint="e.g. --listen 127.0.0.1:8080"
        )
    return (host.strip("[]") or "127.0.0.1"), int(port)


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        raise ConfigError(
            f"{TRANSPARENT_OPTION} {value!r} is not an IP address", hint="e.g. 10.213.0.3"
        ) from None


@proxy.command()
@config_file_option("The cage's config YAML.")
@click.option(LISTEN_OPTION, default="127.0.0.1:8080", show_default=True, help="HOST:PORT to bind.")
@click.option(
    CA_DIR_OPTION,
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("~/.mitmproxy"),
    show_default=True,
    help="Where the proxy's CA lives; the agent trusts DIR/mitmproxy-ca-cert.pem.",
)
@click.option(
    UPSTREAM_CA_OPTION,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Extra CA bundle to trust for upstream servers.",
)
@click.option(
    SECRETS_DIR_OPTION,
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory of files named by each secret's `env` (wins over the environment).",
)
@click.option(
    AUDIT_LOG_OPTION,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Append audit JSON lines here (default: stdout). mitmproxy's own log goes to stderr.",
)
@click.option(
    NAME_FINGERPRINTS_OPTION,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write keyed fingerprints of the protected values here (at start and on every "
    "reload) for `agentcage dns run --name-fingerprints`.",
)
@metrics_options
@click.option(
    TRANSPARENT_OPTION,
    metavar="ADDRESS",
    help="Also serve programs that ignore proxy settings on ADDRESS:443 and ADDRESS:80 (and "
    "the ports in network.ports), with the target taken from TLS SNI and Host.",
)
@click.option(
    DENY_FLOWS_OPTION,
    is_flag=True,
    help=f"With {TRANSPARENT_OPTION}: refuse and audit the flows the cage's steering "
    f"redirects to port {DENY_PORT} (TCP on ADDRESS, UDP on every address): one `flow` line "
    "each, rate-limited per client (docs/transparent.md).",
)
def run(
    config_file: Path,
    listen: str,
    ca_dir: Path,
    upstream_ca: Path | None,
    secrets_dir: Path | None,
    audit_log: Path | None,
    name_fingerprints: Path | None,
    metrics: str | None,
    metrics_socket_mode: str | None,
    transparent: str | None,
    deny_flows: bool,
) -> None:
    """Proxy the cage's traffic until SIGTERM; SIGHUP re-reads config and secrets."""
    from agentcage.proxy.checked_config import ConfigCheck
    from agentcage.proxy.lean_import import defer_unused_packages

    # A child checks it while the policy engine loads: a fork, before anything starts a
    # thread; or none, where `cage create` stored the answer for these bytes (checked_ahead.py).
    check = ConfigCheck(config_file, fork=True, ahead=True)
    defer_unused_packages()  # before anything imports them
    from agentcage.proxy.early_start import ProxySettings
    from agentcage.proxy.early_start import run as run_proxy
    from agentcage.proxy.runtime import Sources

    host, port = _listen(listen)
    if deny_flows and transparent is None:
        raise ConfigError(
            f"{DENY_FLOWS_OPTION} needs {TRANSPARENT_OPTION}",
            hint="the TCP deny listener serves on the transparent address",
        )
    run_proxy(
        ProxySettings(
            listen_host=host,
            listen_port=port,
            ca_dir=ca_dir.expanduser(),
            upstream_ca=upstream_ca,
            audit_log=audit_log,
            name_fingerprints=name_fingerprints,
            metrics=endpoint(metrics, metrics_socket_mode),
            transparent=_address(transparent) if transparent is not None else None,
            deny_flows=deny_flows,
        ),
        Sources(config_path=config_file, secrets_dir=secrets_dir),
        check,
    )
