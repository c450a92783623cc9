"""Packages whose `__init__` loads more than a sidecar uses run it only when asked."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

# Only mitmdump's default addons need these (the onboarding app, proxy authentication).
_DEFAULT_ADDONS_ONLY = ("flask", "ldap3", "passlib", "mitmproxy.addons.onboarding")
# Only prometheus_client's HTTP servers and clients need these.
_PROMETHEUS_HTTP_ONLY = ("prometheus_client.exposition", "wsgiref", "http.server", "urllib.request")


def _run(script: str) -> Any:
    result = subprocess.run(
        [sys.executable, "-c", "import json, sys\n" + script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


def _loaded(prefixes: tuple[str, ...]) -> str:
    return f"sorted(m for m in sys.modules if m.startswith({prefixes!r}))"


def test_the_proxy_server_loads_without_mitmdumps_default_addons() -> None:
    lean, everything = _run(
        "from agentcage.lean_package import defer_init\n"
        "defer_init('mitmproxy.addons')\n"
        "import agentcage.proxy.server\n"
        f"lean = {_loaded(_DEFAULT_ADDONS_ONLY)}\n"
        "assert 'mitmproxy.addons.proxyserver' in sys.modules\n"
        "import mitmproxy.addons\n"
        "addons = mitmproxy.addons.default_addons()  # asked for: the __init__ runs now\n"
        f"print(json.dumps([lean, {_loaded(_DEFAULT_ADDONS_ONLY)}]))\n"
    )
    assert lean == []
    assert "mitmproxy.addons.onboarding" in everything
    # Without it, importing one addon runs the package's __init__ and loads them all.
    plain = _run(
        f"import agentcage.proxy.server\nprint(json.dumps({_loaded(_DEFAULT_ADDONS_ONLY)}))"
    )
    assert plain


def test_prometheus_clients_http_side_waits_for_a_name_of_the_package() -> None:
    lean, later = _run(
        "import agentcage.metrics.exposition, agentcage.metrics.sidecar_registry\n"
        "import agentcage.proxy.proxy_metrics, agentcage.dns.dns_metrics\n"
        f"lean = {_loaded(_PROMETHEUS_HTTP_ONLY)}\n"
        "from prometheus_client import generate_latest, CollectorRegistry\n"
        "import prometheus_client.registry\n"
        "assert CollectorRegistry is prometheus_client.registry.CollectorRegistry\n"
        "assert generate_latest(CollectorRegistry()) == b''\n"
        f"print(json.dumps([lean, {_loaded(_PROMETHEUS_HTTP_ONLY)}]))\n"
    )
    assert lean == []
    assert "prometheus_client.exposition" in later


def test_it_changes_nothing_once_the_package_is_loaded() -> None:
    import mitmproxy.addons

    from agentcage.lean_package import defer_init

    defer_init("mitmproxy.addons")
    assert sys.modules["mitmproxy.addons"] is mitmproxy.addons
    assert callable(mitmproxy.addons.default_addons)
