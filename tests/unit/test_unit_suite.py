"""The unit suite stays quick: what starts real processes lives under tests/integration."""

from __future__ import annotations

import ast
from pathlib import Path

UNIT = Path(__file__).resolve().parent
# Importing one of these means starting `agentcage proxy run` or a fake internet.
PROCESS_STARTERS = {"tests.support.proxy", "bench.exfil.runners"}


def _slow(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import) and {a.name for a in node.names} & PROCESS_STARTERS:
            return True
        if isinstance(node, ast.ImportFrom) and node.module in PROCESS_STARTERS:
            return True
        if isinstance(node, ast.Attribute) and node.attr == "integration":
            return True  # `pytest.mark.integration`
    return False


def test_no_unit_test_starts_a_proxy_or_is_marked_integration() -> None:
    slow = [str(path.relative_to(UNIT)) for path in sorted(UNIT.rglob("test_*.py")) if _slow(path)]
    assert slow == []
