"""One home and one name per concept in the engine and the schema.

Two modules or two classes with one name make a reader (and an import) guess
which is meant; every built-in inspector sits in `policy/inspectors/`, named for
it; modules stay small enough to read in one go.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from tests.unit.policy.helpers import policy

SRC = Path(__file__).resolve().parents[3] / "src" / "agentcage"
MINE = sorted([*(SRC / "policy").rglob("*.py"), *(SRC / "config").rglob("*.py")])
MAX_LINES = 400


def _classes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    return [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]


def _functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]


def test_no_two_modules_share_a_name() -> None:
    names = Counter(path.name for path in MINE if path.name != "__init__.py")
    assert [name for name, count in names.items() if count > 1] == []


def test_no_two_classes_share_a_name() -> None:
    names = Counter(name for path in MINE for name in _classes(path))
    assert [name for name, count in names.items() if count > 1] == []


def test_every_built_in_inspector_lives_in_policy_inspectors() -> None:
    engine = policy(
        rate_limit={"requests_per_second": 1, "burst": 1},
        max_request_body="1MiB",
        secret_injection=[{"env": "API_KEY", "inject_to": ["example.com"]}],
    )
    homes = {i.name: type(i).__module__ for i in engine.chain.inspectors}
    assert len(homes) == 11
    misplaced = {n: m for n, m in homes.items() if not m.startswith("agentcage.policy.inspectors.")}
    assert misplaced == {}


def test_entropy_is_defined_once() -> None:
    defined = [
        f"{path.relative_to(SRC)}:{name}"
        for path in sorted(SRC.rglob("*.py"))
        for name in _functions(path)
        if "entropy" in name
    ]
    assert defined == [
        "policy/shannon.py:shannon_entropy",
        "policy/shannon.py:python_entropy",
        "policy/shannon.py:sampled_entropy",
    ]


def test_modules_stay_small() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in MINE
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
