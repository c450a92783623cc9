"""`agentcage config validate|schema`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from agentcage.config import InvalidConfig, check_config
from agentcage.config.schema import CageConfig


@click.group()
def config() -> None:
    """Check config files and print the config schema."""


@config.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON for tools.")
def validate(file: Path, as_json: bool) -> None:
    """Validate FILE; exit 0 when valid, 2 with every problem located as file:line.

    Warnings (valid but risky settings) are printed too; they do not fail validation.
    """
    try:
        cfg, warnings = check_config(file)
    except InvalidConfig as exc:
        if not as_json:
            raise
        problems = [p.as_dict() for p in exc.problems]
        click.echo(json.dumps({"valid": False, "problems": problems, "warnings": []}))
        raise SystemExit(exc.exit_code) from None
    if as_json:
        found = [w.as_dict() for w in warnings]
        click.echo(json.dumps({"valid": True, "name": cfg.name, "problems": [], "warnings": found}))
    else:
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
        mode: str = cfg.domains.mode
        if cfg.domains.learning:
            mode = f"LEARN MODE (not enforced) {mode}"
        click.echo(
            f"{file}: valid (cage {cfg.name!r}, {mode} of {len(cfg.domains.entries)} entries, "
            f"{len(cfg.secret_injection)} injected secrets)"
        )


@config.command()
def schema() -> None:
    """Print the JSON Schema of the config file (for editors and linters)."""
    document = CageConfig.model_json_schema(by_alias=True, mode="validation")
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "agentcage cage configuration"
    click.echo(json.dumps(document, indent=2, sort_keys=True))
