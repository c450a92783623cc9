"""One name per concept: no module or class in src shares its name with another."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src" / "agentcage"


def _classes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    return [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]


def test_module_names_are_unique() -> None:
    counts = Counter(p.name for p in SRC.rglob("*.py") if p.name != "__init__.py")
    assert sorted(name for name, n in counts.items() if n > 1) == []


def test_class_names_are_unique() -> None:
    counts = Counter(name for path in SRC.rglob("*.py") for name in _classes(path))
    assert sorted(name for name, n in counts.items() if n > 1) == []
