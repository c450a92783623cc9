"""Prometheus metrics of the proxy and the DNS sidecar, served to the host only.

`exposition.py` serves a registry on a loopback port or a unix socket (never on a
network the agent can reach), and `wsgi_server.py` answers its scrapes; `labels.py`
keeps label sets bounded; `recent.py` keeps the last hour's decisions by verdict. Each
process defines its own metrics (`proxy/proxy_metrics.py`, `dns/dns_metrics.py`);
`metric_names.py` names those `cage status` reads, and `scrape.py` reads them from a
cage's sockets (`unix_path.py` reaches a socket path longer than the kernel takes,
`unix_http.py` speaks HTTP through it).

prometheus_client's `__init__` imports its HTTP servers and clients with the metric
types (`http.server`, `wsgiref`, `urllib.request`: about 1.2 MiB in the DNS sidecar).
Its `__init__` is deferred (`lean_package.py`): the sidecars import the submodules they
use, and the server's part once something scrapes (`exposition.py`).
"""

from agentcage.lean_package import defer_init

defer_init("prometheus_client")
