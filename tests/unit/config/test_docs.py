from pathlib import Path

from agentcage.config.docs import render

ROOT = Path(__file__).resolve().parents[3]


def test_configuration_reference_is_current() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == render(), (
        "docs/configuration.md is stale: run "
        "`.venv/bin/python -m agentcage.config.docs > docs/configuration.md`"
    )


def test_reference_documents_every_section() -> None:
    text = render()
    for heading in (
        "## `container`",
        "## `domains`",
        "## `secrets`",
        "## `entropy`",
        "## `rate_limit`",
        "## `logging`",
        "## `firecracker`",
        "## `network`",
    ):
        assert heading in text
