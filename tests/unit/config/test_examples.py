from pathlib import Path

import pytest

from agentcage.config import LoadContext, load_config

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("example", ["basic", "openclaw"])
def test_examples_validate(example: str, tmp_path: Path) -> None:
    (tmp_path / "openclaw-workspace").mkdir()
    path = ROOT / "examples" / example / "config.yaml"
    ctx = LoadContext(base_dir=path.parent, environ={"HOME": str(tmp_path)})
    cfg = load_config(path, context=ctx)
    assert cfg.name == example
    assert cfg.domains.mode == "allowlist"
    assert cfg.secret_injection[0].env == "ANTHROPIC_API_KEY"
