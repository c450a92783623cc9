"""Dependencies point one way: cli -> cage -> proxy/dns -> policy -> config; proxy and dns
also -> audit and metrics, which need nothing but errors; cli -> deps, which needs errors.

A layer reaching upward means the design is wrong; this test names the offending import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "agentcage"

_BELOW_CAGE = {
    "proxy",
    "dns",
    "audit",
    "metrics",
    "policy",
    "config",
    "errors",
    "atomicfile",
    "sdnotify",
    "heap",
    "quick_exit",
    "held_reload",
    "lean_package",
    "child_check",
    "checked_ahead",
}
# What both sidecars may use besides their own package.
_SIDECAR_SHARED = {"audit", "metrics", "policy", "config", "errors", "atomicfile"}
_SIDECAR_SHARED |= {"sdnotify", "heap", "quick_exit", "held_reload", "lean_package"}  # stdlib only
_SIDECAR_SHARED |= {"child_check", "checked_ahead"}  # a config checked in a child, or ahead
ALLOWED = {
    "config": {"config", "errors"},
    # The audit line and its writer: shared by proxy and DNS, needing nothing of theirs.
    "audit": {"audit", "errors"},
    # Serving metrics to the host, and bounded label sets: for proxy and DNS alike.
    "metrics": {"metrics", "errors", "lean_package"},
    "policy": {"policy", "config", "errors"},
    "proxy": {"proxy", *_SIDECAR_SHARED},
    "dns": {"dns", *_SIDECAR_SHARED},
    "cage": {"cage", *_BELOW_CAGE},
    # Reading a checkout's pins and asking registries and indexes: beside cage, for cli.
    "deps": {"deps", "errors"},
    "cli": {"cli", "cage", "deps", "", *_BELOW_CAGE},
}
# The engine must stay pure: no proxy library, no network, no processes.
IMPURE = {"mitmproxy", "socket", "subprocess", "asyncio", "http", "urllib.request", "ssl"}


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module `path` imports, relative imports resolved to absolute names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = absolute(path, node.level, node.module)
            found.append((node.lineno, base))
            if not node.module:  # `from . import x`: each x may be a module
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def absolute(path: Path, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    package = ["agentcage", *path.relative_to(SRC).parent.parts]
    anchor = package[: len(package) - (level - 1)]
    return ".".join([*anchor, *([module] if module else [])])


def test_relative_imports_are_resolved() -> None:
    sample = SRC / "policy" / "inspectors" / "domain.py"
    assert absolute(sample, 1, "entropy") == "agentcage.policy.inspectors.entropy"
    assert absolute(sample, 2, "types") == "agentcage.policy.types"
    assert absolute(sample, 3, "cage.state") == "agentcage.cage.state"
    assert absolute(sample, 2, None) == "agentcage.policy"


def modules(layer: str) -> list[Path]:
    return sorted((SRC / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_point_down(layer: str) -> None:
    bad = []
    for path in modules(layer):
        for line, name in imports(path):
            if name == "agentcage" or not name.startswith("agentcage."):
                continue
            target = name.split(".")[1]
            target = "" if target == "__version__" else target
            if target not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(SRC)}:{line} imports {name}")
    assert not bad, "upward imports:\n" + "\n".join(bad)


@pytest.mark.parametrize("layer", ["policy", "config"])
def test_pure_layers_do_no_io_imports(layer: str) -> None:
    bad = [
        f"{path.relative_to(SRC)}:{line} imports {name}"
        for path in modules(layer)
        for line, name in imports(path)
        if any(name == m or name.startswith(m + ".") for m in IMPURE)
    ]
    assert not bad, "\n".join(bad)
