"""The `agentcage` entry point and the one place errors become exit codes."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from agentcage import __version__
from agentcage.errors import AgentcageError

# Each command group's module is imported only when that group runs: `cage list` need
# not load the inspection engine, the DNS sidecar or the proxy (over a second at start).
_GROUPS = {
    "audit": "agentcage.cli.audit_cmd",
    "cage": "agentcage.cli.cage_cmd",
    "completion": "agentcage.cli.completion_cmd",
    "config": "agentcage.cli.config_cmd",
    "deps": "agentcage.cli.deps_cmd",
    "dns": "agentcage.cli.dns_cmd",
    "domain": "agentcage.cli.domain_cmd",
    "host": "agentcage.cli.host_cmd",
    "kube": "agentcage.cli.kube_cmd",
    "policy": "agentcage.cli.policy_cmd",
    "proxy": "agentcage.cli.proxy_cmd",
    "secret": "agentcage.cli.secret_cmd",
    "vm": "agentcage.cli.vm_cmd",
}


class AgentcageGroup(click.Group):
    """Loads command groups on first use; turns `AgentcageError` into `error: ...` on
    stderr and its exit code.

    Anything else is a bug and keeps its traceback.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_GROUPS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _GROUPS and cmd_name not in self.commands:
            group = getattr(importlib.import_module(_GROUPS[cmd_name]), cmd_name)
            self.add_command(group, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AgentcageError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"error: {exc.diagnostics()}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=AgentcageGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="agentcage")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of short error messages.")
def cli(debug: bool) -> None:
    """Run AI agents in a cage whose only way out is an inspecting proxy."""


def main(args: list[str] | None = None) -> None:
    cli.main(args=args, prog_name="agentcage")
