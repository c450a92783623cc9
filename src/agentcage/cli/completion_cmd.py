"""`agentcage completion bash|zsh|fish`: the shell's completion script, from click."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")
# The variable click reads to answer completion requests from the script.
COMPLETE_VAR = "_AGENTCAGE_COMPLETE"


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash:  eval "$(agentcage completion bash)"        (in ~/.bashrc)
    zsh:   eval "$(agentcage completion zsh)"         (in ~/.zshrc)
    fish:  agentcage completion fish > ~/.config/fish/completions/agentcage.fish
    """
    root = ctx.find_root()
    script = get_completion_class(shell)
    assert script is not None  # every name in SHELLS has one in click
    click.echo(script(root.command, {}, "agentcage", COMPLETE_VAR).source())
