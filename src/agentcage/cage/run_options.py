"""Option names of `agentcage proxy run` and `agentcage dns run`: the units write them
(contract.py), cli/ declares them. Standard library only: the DNS sidecar's command
imports this without the config schema (dns/plan.py)."""

from __future__ import annotations

CONFIG_OPTION = "--config"  # units spell it long: click builds a did-you-mean (difflib) for `-c`
LISTEN_OPTION = "--listen"
AUDIT_LOG_OPTION = "--audit-log"
NAME_FINGERPRINTS_OPTION = "--name-fingerprints"
CA_DIR_OPTION = "--ca-dir"
SECRETS_DIR_OPTION = "--secrets-dir"
UPSTREAM_CA_OPTION = "--upstream-ca"
BLOCKED_ZONES_OPTION = "--blocked-zones"
TRANSPARENT_OPTION = "--transparent"
DENY_FLOWS_OPTION = "--deny-flows"
STEER_OPTION = "--steer-to"
METRICS_OPTION = "--metrics"
METRICS_SOCKET_MODE_OPTION = "--metrics-socket-mode"
