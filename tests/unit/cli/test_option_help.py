"""Every option of every command says what it does (docs/cli.md is made from these)."""

from __future__ import annotations

from collections.abc import Iterator

import click

from agentcage.cli.main import cli


def _commands(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}")


def test_every_option_has_help_text() -> None:
    missing = [
        f"{path} {'/'.join(param.opts)}"
        for path, command in _commands(cli, "agentcage")
        for param in command.params
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert not missing, "options without help: " + ", ".join(missing)


def test_every_command_has_a_summary() -> None:
    bare = [path for path, command in _commands(cli, "agentcage") if not command.help]
    assert not bare, "commands without help: " + ", ".join(bare)


def test_the_walk_reaches_nested_commands() -> None:
    paths = {path for path, _ in _commands(cli, "agentcage")}
    assert {"agentcage cage status", "agentcage secret list", "agentcage host check"} <= paths
