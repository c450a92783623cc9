"""`agentcage completion`: scripts that really complete, in bash, from the click tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from agentcage.cli.main import cli

BIN = Path(sys.executable).parent


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="agentcage")


def _complete_in_bash(*words: str) -> list[str]:
    """What bash offers after `agentcage WORDS` with the script sourced, as a user has it."""
    index = len(words)
    program = (
        "source <(agentcage completion bash)\n"
        f"COMP_WORDS=(agentcage {' '.join(repr(w) for w in words)}); COMP_CWORD={index}\n"
        "_agentcage_completion agentcage\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-c", program], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    return done.stdout.split()


def test_bash_completes_commands_options_and_choices() -> None:
    assert _complete_in_bash("au") == ["audit"]
    assert _complete_in_bash("policy", "") == ["replay"]
    assert _complete_in_bash("audit", "--bl") == ["--blocked"]
    assert _complete_in_bash("completion", "") == ["bash", "zsh", "fish"]


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o nosort -F _agentcage_completion agentcage"),
     ("zsh", "compdef _agentcage_completion agentcage"),
     ("fish", "complete --no-files --command agentcage")],
)  # fmt: skip
def test_each_shell_gets_its_script(shell: str, marker: str) -> None:
    script = _run("completion", shell).output
    assert marker in script
    assert "_AGENTCAGE_COMPLETE" in script


def test_an_unknown_shell_is_a_usage_error() -> None:
    done = _run("completion", "tcsh")
    assert done.exit_code == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in done.output
