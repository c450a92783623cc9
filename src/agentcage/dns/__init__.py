"""The DNS sidecar: a front that judges every query, dnsmasq behind it on loopback.

`agentcage dns run` (`sidecar.Sidecar`) listens where the cage's resolver is. For
each query the front (`front`, `wire`) parses it, the judge (`judge`: domain list,
protected values, tunnel heuristics, budgets) decides, the audit line is written,
and only then is the query answered locally (sinkhole 198.51.100.1 / 2001:db8::1 for
A/AAAA of unlisted names, REFUSED, SERVFAIL) or sent on as a fresh question-only
query to dnsmasq (`render`, `process`), which caches and forwards upstream.

Live domain changes (API for `agentcage domain add|rm` and the cage layer):

1. Write the changed config file, the same path the sidecar was started with
   (`agentcage dns run -c FILE`); validate it first (`load_config`), because the
   sidecar stops (fail closed) if the file it re-reads is invalid.
2. Send SIGHUP to the `agentcage dns run` process; for a cage's sidecar container
   `Cages.reload` runs `podman kill --signal HUP <dns container>`.

The front applies the new list from the next query on and re-renders both dnsmasq
files. Allowlist changes touch only the servers file, applied by SIGHUP to dnsmasq
with no gap in service; changes to fixed settings (mode, blocklist entries) restart
dnsmasq while queries wait in the front's socket. Zones blocked by tunnel detection
stay blocked. `render_checked(config, listen)` renders and checks the
files without running anything (for `cage create` / `verify`).
"""

from __future__ import annotations

from pathlib import Path

from agentcage.dns.files import check
from agentcage.dns.plan import DnsView
from agentcage.dns.render import SINKHOLE_V4, SINKHOLE_V6, Listen, Rendered, render

__all__ = [
    "SINKHOLE_V4",
    "SINKHOLE_V6",
    "Listen",
    "Rendered",
    "render_checked",
]

# Where `render_checked` says the servers file lives; `dns run` uses its own temp dir.
DEFAULT_SERVERS_FILE = Path("/run/agentcage-dns/servers.conf")


def render_checked(
    config: DnsView, listen: Listen, servers_file: Path = DEFAULT_SERVERS_FILE
) -> Rendered:
    """Both dnsmasq files for `config`, accepted by the installed `dnsmasq --test`."""
    rendered = render(config, listen, servers_file)
    check(rendered)
    return rendered
