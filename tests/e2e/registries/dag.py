"""The dependency graph both language registries use."""

from __future__ import annotations

import random


def dependency_dag(names: list[str], seed: int) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """Each name depends on up to three later ones; the roots are those nothing depends on,
    so installing the roots installs every name."""
    rng = random.Random(seed)
    graph: dict[str, tuple[str, ...]] = {}
    for i, name in enumerate(names):
        later = names[i + 1 :]
        graph[name] = tuple(sorted(rng.sample(later, min(len(later), rng.randint(0, 3)))))
    depended = {d for deps in graph.values() for d in deps}
    return graph, [name for name in names if name not in depended]
