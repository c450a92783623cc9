"""A hermetic fake internet for integration tests: everything runs on loopback.

- `FakeDns` (`fake_dns.py`): a UDP and TCP DNS server mapping names such as
  `api.anthropic.com` to 127.0.0.1 (pass `fake_dns.address` as a `dns_servers` entry),
  or, made with `FakeDns.answering_anything()`, answering every name: the DNS
  sidecar's upstream. Either way it records every query.
- `RunningSidecar` (`dns_sidecar.py`): runs the real `agentcage dns run` as a
  subprocess on a free port and reads its audit log.
- `Upstream` (`upstream.py`): one HTTPS (HTTP/1.1 + HTTP/2, ALPN) and one plain HTTP
  listener serving an ASGI app that records every request and WebSocket message
  it receives, with a certificate for all the fake names from a trustme CA.
- `ProxyProcess` (`proxy.py`): runs the real `agentcage proxy run` as a subprocess
  on a free port and reads its audit log.
- `plugin.py`: pytest fixtures over these (`fake_ca`, `fake_dns`, `upstream`);
  import them into a conftest with `from tests.support.plugin import *`.

Nothing here touches a real network: names resolve only through `FakeDns`, and
every server binds 127.0.0.1.
"""
