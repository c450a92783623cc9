"""Prometheus metrics of the proxy and the DNS sidecar, served to the host only.

`exposition.py` serves a registry on a loopback port or a unix socket (never on a
network the agent can reach); `labels.py` keeps label sets bounded. Each process
defines its own metrics (`proxy/proxy_metrics.py`, `dns/dns_metrics.py`).
"""
