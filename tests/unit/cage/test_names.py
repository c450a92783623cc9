"""One name per concept: no cage or cli module or class shares its name with another in src."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[3] / "src" / "agentcage"
OURS = ("cage", "cli")


def _classes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    return [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]


@pytest.mark.parametrize("layer", OURS)
def test_module_names_are_unique(layer: str) -> None:
    counts = Counter(p.name for p in SRC.rglob("*.py") if p.name != "__init__.py")
    clashes = [p.name for p in (SRC / layer).glob("*.py") if counts[p.name] > 1]
    assert clashes == []


@pytest.mark.parametrize("layer", OURS)
def test_class_names_are_unique(layer: str) -> None:
    counts = Counter(name for path in SRC.rglob("*.py") for name in _classes(path))
    clashes = [n for p in (SRC / layer).glob("*.py") for n in _classes(p) if counts[n] > 1]
    assert clashes == []
