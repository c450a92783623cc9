"""The command reference: generated from the click tree, current, and every option explained."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click

from agentcage.cli.main import cli
from agentcage.cli.reference import render

ROOT = Path(__file__).resolve().parents[3]


def _walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            yield from _walk(sub, f"{path} {name}")


def test_every_command_and_option_has_help_text() -> None:
    missing = []
    for path, command in _walk(cli, "agentcage"):
        if not (command.help or "").strip():
            missing.append(path)
        missing += [
            f"{path} {'/'.join(param.opts)}"
            for param in command.params
            if isinstance(param, click.Option)
            and not param.hidden
            and not (param.help or "").strip()
        ]
    assert missing == []


def test_the_walk_sees_the_whole_tree() -> None:
    paths = {path for path, _ in _walk(cli, "agentcage")}
    assert {"agentcage audit", "agentcage policy replay", "agentcage completion"} <= paths
    assert {"agentcage proxy run", "agentcage dns run", "agentcage cage create"} <= paths


def test_the_command_reference_is_current() -> None:
    committed = (ROOT / "docs" / "cli.md").read_text()
    assert committed == render(cli), (
        "docs/cli.md is stale: run `.venv/bin/python -m agentcage.cli.reference > docs/cli.md`"
    )


def test_the_reference_has_every_command_usage_and_the_exit_codes() -> None:
    text = render(cli)
    for path, _ in _walk(cli, "agentcage"):
        assert f"## `{path}`\n" in text
    assert "```\nagentcage policy replay [OPTIONS] LOGS...\n```" in text
    assert "| 2 | `ConfigError`: " in text and "| 3 | `PodmanError`: " in text
    assert "| `-f, --follow` | Then keep printing new records" in text
