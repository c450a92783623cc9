"""`agentcage dns run|render`: the DNS sidecar."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from agentcage.cage.run_options import (
    AUDIT_LOG_OPTION,
    BLOCKED_ZONES_OPTION,
    LISTEN_OPTION,
    NAME_FINGERPRINTS_OPTION,
    STEER_OPTION,
)
from agentcage.cli.options import config_file_option, endpoint, metrics_options
from agentcage.dns import Listen, render_checked
from agentcage.dns.front import bind_front
from agentcage.dns.plan import checked_plan
from agentcage.held_reload import HeldReload
from agentcage.quick_exit import exit_at_once
from agentcage.sdnotify import notify_ready

_LISTEN = click.option(
    LISTEN_OPTION,
    default="127.0.0.1:53",
    show_default=True,
    help="Address and port to answer on, e.g. 0.0.0.0:53 or [::1]:5353.",
)


@click.group()
def dns() -> None:
    """The DNS sidecar: answers only the cage's allowed names, dnsmasq behind it."""


@dns.command()
@config_file_option()
@_LISTEN
@click.option(
    AUDIT_LOG_OPTION,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Append audit lines to this file (default: standard output).",
)
@click.option(
    BLOCKED_ZONES_OPTION,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Keep the zones tunnel detection blocks in this file, and block them again "
    "when starting (default: forget them on exit).",
)
@click.option(
    NAME_FINGERPRINTS_OPTION,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Refuse names carrying a protected value, using the fingerprints `agentcage "
    "proxy run --name-fingerprints` writes to this file (SERVFAIL while it is missing).",
)
@metrics_options
@click.option(
    STEER_OPTION,
    "steer_to",
    metavar="IPV4",
    help="Answer A questions for allowed names with this address (the proxy's transparent "
    "listeners) instead of asking upstream; AAAA, HTTPS and SVCB get an empty answer.",
)
def run(
    config_file: Path,
    listen: str,
    audit_log: Path | None,
    blocked_zones: Path | None,
    name_fingerprints: Path | None,
    metrics: str | None,
    metrics_socket_mode: str | None,
    steer_to: str | None,
) -> None:
    """Answer DNS for the cage in FILE until SIGTERM, dnsmasq behind on loopback.

    Every query is judged, and its audit line written, before anything leaves.
    Prints `listening on HOST:PORT` to stderr when ready; audit lines go to
    --audit-log or stdout. SIGHUP re-reads the config file (for `agentcage domain
    add|rm`) and reopens the audit log. Exits non-zero if dnsmasq dies or a line
    cannot be written: the cage then has no DNS rather than unchecked DNS.
    """
    # READY=1 once the config is valid and the sockets are bound, before the query engine
    # (dnspython, the leak detector, metrics) loads: the agent may start meanwhile, and its
    # first queries wait in the kernel until they are judged (front.py).
    # The config is checked in a child process: the schema's memory leaves with it. A fork
    # of this one: nothing here runs a thread yet (child_check.py). None where `cage
    # create` stored the answer for these bytes (checked_ahead.py).
    address = Listen.parse(listen)
    checked = checked_plan(config_file, fork=True, ahead=True)
    steer = _ipv4(steer_to) if steer_to is not None else None
    served = endpoint(metrics, metrics_socket_mode)
    bound = bind_front(address)
    held = HeldReload()  # a SIGHUP after READY=1 waits for the sidecar's own handler
    notified = notify_ready()
    from agentcage.dns.sidecar import Sidecar

    code = Sidecar(
        config_file,
        address,
        audit_log,
        blocked_zones=blocked_zones,
        name_fingerprints=name_fingerprints,
        metrics=served,
        steer_to=steer,
        bound=bound,
        notified=notified,
        held=held,
        checked=checked,
    ).run()
    exit_at_once(code)  # dnsmasq stopped, the audit log closed: nothing else is pending


def _ipv4(value: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an IPv4 address", param_hint=STEER_OPTION
        ) from None


@dns.command("render")
@config_file_option()
@_LISTEN
def render_cmd(config_file: Path, listen: str) -> None:
    """Print the dnsmasq configuration for FILE (checked with `dnsmasq --test`)."""
    from agentcage.config import load_config

    rendered = render_checked(load_config(config_file), Listen.parse(listen))
    click.echo(rendered.main, nl=False)
    click.echo("# --- servers file ---")
    click.echo(rendered.servers, nl=False)
