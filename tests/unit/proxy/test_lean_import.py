"""`proxy run` imports the mitmproxy addons it runs, not mitmdump's whole default set."""

from __future__ import annotations

import json
import subprocess
import sys

_DEFAULT_ONLY = ("flask", "ldap3", "passlib", "mitmproxy.addons.onboarding")


def _modules_after(prelude: str) -> list[str]:
    script = (
        "import json, sys\n"
        f"{prelude}\n"
        "import agentcage.proxy.server\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    return list(json.loads(result.stdout))


def test_the_proxy_server_loads_without_mitmdumps_default_addons() -> None:
    lean = _modules_after(
        "from agentcage.proxy.lean_import import without_default_addons\nwithout_default_addons()"
    )
    assert "mitmproxy.addons.proxyserver" in lean and "mitmproxy.master" in lean
    assert [m for m in lean if m.startswith(_DEFAULT_ONLY)] == []
    # Without it, importing one addon runs the package's __init__ and loads them all.
    assert [m for m in _modules_after("") if m.startswith(_DEFAULT_ONLY)]


def test_it_changes_nothing_once_the_addons_package_is_loaded() -> None:
    import mitmproxy.addons

    from agentcage.proxy.lean_import import without_default_addons

    without_default_addons()
    assert sys.modules["mitmproxy.addons"] is mitmproxy.addons
    assert callable(mitmproxy.addons.default_addons)
