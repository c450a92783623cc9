"""Prometheus metrics of the proxy and the DNS sidecar, served to the host only.

`exposition.py` serves a registry on a loopback port or a unix socket (never on a
network the agent can reach); `labels.py` keeps label sets bounded; `recent.py` keeps
the last hour's decisions by verdict. Each process defines its own metrics
(`proxy/proxy_metrics.py`, `dns/dns_metrics.py`); `metric_names.py` names those `cage status`
reads, and `scrape.py` reads them from a cage's sockets (`unix_path.py` reaches a
socket path longer than the kernel takes).
"""
