"""The `agentcage` entry point and the one place errors become exit codes."""

from __future__ import annotations

import sys
from typing import Any

import click

from agentcage import __version__
from agentcage.errors import AgentcageError


class AgentcageGroup(click.Group):
    """Turns `AgentcageError` into `error: ...` on stderr and its exit code.

    Anything else is a bug and keeps its traceback.
    """

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


def _register() -> None:
    from agentcage.cli import config_cmd

    cli.add_command(config_cmd.config)
    from agentcage.cli import dns_cmd

    cli.add_command(dns_cmd.dns)
    from agentcage.cli import proxy_cmd

    cli.add_command(proxy_cmd.proxy)
    from agentcage.cli import cage_cmd, domain_cmd, secret_cmd

    for group in (cage_cmd.cage, domain_cmd.domain, secret_cmd.secret):
        cli.add_command(group)
    from agentcage.cli import host_cmd

    cli.add_command(host_cmd.host)
    from agentcage.cli import audit_cmd, completion_cmd, deps_cmd, policy_cmd

    cli.add_command(audit_cmd.audit)
    cli.add_command(deps_cmd.deps)
    cli.add_command(policy_cmd.policy)
    cli.add_command(completion_cmd.completion)


_register()


def main(args: list[str] | None = None) -> None:
    cli.main(args=args, prog_name="agentcage")
