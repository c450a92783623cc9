"""Click options several commands share, defined once so their names, types and help agree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from agentcage.cage.run_options import CONFIG_OPTION, METRICS_OPTION, METRICS_SOCKET_MODE_OPTION
from agentcage.metrics.exposition import HELP, SOCKET_MODE_HELP, SOCKET_MODES, MetricsEndpoint

F = TypeVar("F", bound=Callable[..., object])


def config_file_option(help_text: str = "The cage's config file.") -> Callable[[F], F]:
    """`-c/--config FILE` (parameter `config_file`) of `proxy run`, `dns run|render` and
    `kube render|apply`; only the help differs, kept as each command has always said it."""
    return click.option(
        "-c",
        CONFIG_OPTION,
        "config_file",
        required=True,
        type=click.Path(path_type=Path, dir_okay=False),
        help=help_text,
    )


# `kube render|apply`; None means the config's kubernetes.namespace.
namespace_option = click.option(
    "--namespace", "-n", default=None, help="Namespace (default: kubernetes.namespace)."
)


def metrics_options(command: F) -> F:
    """Adds `--metrics` and `--metrics-socket-mode` (parameters `metrics` and
    `metrics_socket_mode`) to `command`: `proxy run` and `dns run` take them alike."""
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
