"""`--metrics` and `--metrics-socket-mode`, shared by `proxy run` and `dns run`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from agentcage.cage.contract import METRICS_OPTION, METRICS_SOCKET_MODE_OPTION
from agentcage.metrics.exposition import HELP, SOCKET_MODE_HELP, SOCKET_MODES, MetricsEndpoint

F = TypeVar("F", bound=Callable[..., object])


def metrics_options(command: F) -> F:
    """Adds the `metrics` and `metrics_socket_mode` parameters to `command`."""
    mode = click.option(
        METRICS_SOCKET_MODE_OPTION,
        "metrics_socket_mode",
        type=click.Choice(SOCKET_MODES),
        help=SOCKET_MODE_HELP,
    )
    endpoint = click.option(METRICS_OPTION, "metrics", metavar="ENDPOINT", help=HELP)
    return endpoint(mode(command))


def endpoint(metrics: str | None, socket_mode: str | None) -> MetricsEndpoint | None:
    return MetricsEndpoint.parse(metrics, socket_mode) if metrics else None
