"""The README's quickstart as tests/e2e/test_host_matrix.py reads it: caught here when it drifts.

The host matrix runs these lines on real hosts; this checks without Podman that the
README still holds every step of issue 12's list, in order, and that what it shows
`config validate` printing is what the command prints.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from agentcage.cli.main import cli
from tests.e2e.readme_quickstart import Quickstart

REPO = Path(__file__).resolve().parents[2]


def _quickstart() -> Quickstart:
    return Quickstart.from_readme((REPO / "README.md").read_text())


def test_the_quickstart_holds_every_step_in_order() -> None:
    quick = _quickstart()
    assert quick.setup[0] == "./scripts/bootstrap"
    steps = [
        "cage create",
        "secret set",
        "cage verify",
        "domain add",
        "cage update",
        "cage stop",
        "cage start",
        "cage destroy",
    ]
    found = [next(i for i, line in enumerate(quick.cage) if step in line) for step in steps]
    assert found == sorted(found)
    before, after = quick.host_around_create()
    assert [line.split()[:3] for line in before] == [
        ["agentcage", "host", "start"],
        ["agentcage", "host", "check"],
    ]
    assert after[-1] == "agentcage host stop --forget"


def test_what_the_readme_shows_config_validate_print_is_what_it_prints() -> None:
    quick = _quickstart()
    (line,) = [line for line in quick.setup if line.startswith("agentcage config validate")]
    result = CliRunner().invoke(cli, line.split()[1:], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output.strip() == quick.validated


def test_comments_and_blank_lines_are_not_commands() -> None:
    text = (
        "# x\n\n## Quickstart\n\n```sh\n./scripts/bootstrap   # a note\n\n"
        'export PATH="$PWD/.venv/bin:$PATH"\n# out: fine\n```\n\n'
        "```sh\nagentcage cage create -c c.yaml   # x # y\n```\n\n"
        '```sh\nagentcage host start --share "$PWD"\nagentcage cage create -c c.yaml\n'
        "agentcage host stop\n```\n\n## Next\n\n```sh\nignored\n```\n"
    )
    quick = Quickstart.from_readme(text)
    assert quick.setup == ("./scripts/bootstrap", 'export PATH="$PWD/.venv/bin:$PATH"')
    assert quick.validated == "out: fine"
    assert quick.cage == ("agentcage cage create -c c.yaml",)
    assert quick.host_around_create() == (
        ['agentcage host start --share "$PWD"'],
        ["agentcage host stop"],
    )
