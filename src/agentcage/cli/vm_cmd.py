"""`agentcage vm run`: the process a microVM cage's container runs (cage/vm/vm_run.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group()
def vm() -> None:
    """A microVM cage's own process (`isolation: firecracker`); cages start it."""


@vm.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
def run(run_dir: Path) -> None:
    """Start passt and the guest, bring the cage up in it, own its agent channel."""
    from agentcage.cage.vm.vm_run import run as run_vm

    sys.exit(run_vm(run_dir))
