"""A custom inspector raising anything, BaseException included, blocks that request only."""

from __future__ import annotations

import httpx
import pytest

from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "name", ["SystemExit", "KeyboardInterrupt", "GeneratorExit", "CancelledError", "Escaping"]
)
def test_inspector_raising_blocks_promptly_and_the_proxy_keeps_serving(
    name: str, client: httpx.Client, upstream: Upstream, proxy: ProxyProcess
) -> None:
    # The client's 10 s timeout stands for "promptly": unfixed, the request hung for
    # 20 s (or the proxy exited).
    response = client.get(f"https://github.com:{upstream.tls_port}/raise/{name}")
    assert response.status_code == 403
    assert response.headers["x-agentcage-blocked"] == "tripwire"
    assert response.json() == {
        "blocked": True,
        "reason": f"inspector-error: {name}",
        "inspector": "tripwire",
        "host": "github.com",
    }
    line = proxy.wait_for_audit(lambda r: r["path"] == f"/raise/{name}")
    assert (line["verdict"], line["inspector"]) == ("block", "tripwire")
    assert upstream.received == []
    after = client.get(f"https://github.com:{upstream.tls_port}/after-{name}")
    assert after.status_code == 200
