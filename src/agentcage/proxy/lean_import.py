"""`proxy run` loads only the mitmproxy addons it runs.

Importing any `mitmproxy.addons.X` first runs the package's `__init__`, which imports
all of mitmproxy's default addons for `mitmdump`: the onboarding web app (Flask),
proxy authentication (ldap3, passlib), playback, export and more. Our chain uses eight
of them (proxy/server.py). Registering the package without running its `__init__`
lets each addon module be imported alone: the proxy starts about a third faster and
holds ~290 fewer modules. Only `mitmproxy.addons.default_addons()` is then missing,
which nothing in `proxy run` calls.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

PACKAGE = "mitmproxy.addons"


def without_default_addons() -> None:
    """Register `mitmproxy.addons` bare; a no-op once anything imported it."""
    if PACKAGE in sys.modules:
        return
    import mitmproxy

    path = str(Path(mitmproxy.__file__).parent / "addons")
    spec = importlib.machinery.ModuleSpec(PACKAGE, None, is_package=True)
    spec.submodule_search_locations = [path]
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    mitmproxy.addons = package  # type: ignore[attr-defined]
