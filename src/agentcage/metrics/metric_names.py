"""Names of the metrics `cage status` reads, by sidecar role.

One home for both sides: the sidecars serve these (`proxy/proxy_metrics.py`,
`dns/dns_metrics.py`) and `cage/status_report.py` scrapes them.
"""

from __future__ import annotations

# Gauges by `verdict` (allow, flag, block): decisions of the last hour (recent.py).
LAST_HOUR = {
    "proxy": "agentcage_proxy_requests_last_hour",
    "dns": "agentcage_dns_queries_last_hour",
}
# Info metrics (served as NAME_info) whose `version` label is the policy loaded.
POLICY = {"proxy": "agentcage_proxy_policy", "dns": "agentcage_dns_policy"}
