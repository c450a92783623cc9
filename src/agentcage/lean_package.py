"""A package whose `__init__` runs only when a name of its own is asked for.

Some packages import far more in their `__init__` than a sidecar uses: mitmproxy's
`addons` imports all of mitmdump's default addons (the onboarding web app with Flask,
proxy authentication, playback...), prometheus_client imports its HTTP servers and
clients (`http.server`, `wsgiref`, `urllib.request`) beside the metric types. A
sidecar holds every module it imported for its whole life, in every cage.

`defer_init(name)` registers the package without running its `__init__`: its
submodules import alone (`import prometheus_client.metrics`). The first time anything
asks the package itself for a name it lacks (`from prometheus_client import Counter`,
`mitmproxy.addons.default_addons`), the `__init__` runs, once, and the name is there
as before: code that imports the package the usual way still works, and only then
pays for it. A sidecar imports the submodules it uses by their own names.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any


def defer_init(name: str) -> None:
    """Register package `name` with its `__init__` deferred; a no-op once it is loaded."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ImportError(f"{name} is not a package", name=name)
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def complete(attribute: str) -> Any:
        # `from . import values` in a submodule asks the package for `values` first.
        if importlib.util.find_spec(f"{name}.{attribute}") is not None:
            return importlib.import_module(f"{name}.{attribute}")
        del package.__getattr__  # runs once, then as usual
        loader.exec_module(package)
        return getattr(package, attribute)

    package.__getattr__ = complete  # type: ignore[method-assign]
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, package)
