"""The `url-data` inspector: data sent in the host name or the URL instead of a body.

Checked on every request before the name is resolved (the proxy resolves only
what the chain let through), with the shapes in `policy/data_shapes.py`: a host
name whose labels carry encoded data, chunks or random runs; more distinct
id-like labels under one registrable domain than `max_data_labels` within the
window (a tunnel sending a label at a time); a URL with more percent-encoding
layers than `max_percent_layers`; and, where `path_tokens` says so, a random
token in the URL path. IP literals are the domain inspector's business.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from agentcage.policy.data_shapes import (
    below_registrable,
    host_data_reason,
    is_data_label,
    path_token_reason,
    percent_layers,
    registrable_domain,
)
from agentcage.policy.types import Finding, Request, Verdict

if TYPE_CHECKING:
    from agentcage.config.inspection import UrlDataConfig


NAME = "url-data"
_MAX_DOMAINS = 1024  # registrable domains whose labels are remembered


class UrlDataInspector:
    name = NAME

    def __init__(
        self,
        config: UrlDataConfig,
        *,
        blocklist_mode: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.verdict = Verdict(config.action)
        self._paths = config.path_tokens == "always" or (
            config.path_tokens == "blocklist-mode" and blocklist_mode
        )
        self._clock = clock
        # registrable domain -> id-like label -> when it was last sent
        self._labels: OrderedDict[str, dict[str, float]] = OrderedDict()

    def inspect_request(self, request: Request) -> Finding | None:
        host = request.host.lower().rstrip(".")
        if not _is_ip(host):
            reason = host_data_reason(host) or self._label_budget(host)
            if reason is not None:
                return self._finding(f"{reason} ({host})", "host-data")
        layers = percent_layers(request.path, self.config.max_percent_layers + 1)
        if layers > self.config.max_percent_layers:
            return self._finding(
                f"URL to {host} is percent-encoded {layers} layers deep "
                f"(at most {self.config.max_percent_layers})",
                "percent-layers",
            )
        if self._paths:
            reason = path_token_reason(request.path)
            if reason is not None:
                return self._finding(f"{reason} to {host}", "path-token")
        return None

    def _label_budget(self, host: str) -> str | None:
        labels = [label for label in below_registrable(host) if is_data_label(label)]
        if not labels:
            return None
        domain = registrable_domain(host)
        now = self._clock()
        seen = self._labels.pop(domain, {})
        horizon = now - self.config.window_seconds
        seen = {label: when for label, when in seen.items() if when >= horizon}
        new = [label for label in labels if label not in seen]
        if new and len(seen) + len(new) > self.config.max_data_labels:
            self._labels[domain] = seen
            return (
                f"more than {self.config.max_data_labels} distinct id-like labels under "
                f"{domain} within {self.config.window_seconds:g} s"
            )
        seen.update(dict.fromkeys(labels, now))
        self._labels[domain] = seen
        while len(self._labels) > _MAX_DOMAINS:
            self._labels.popitem(last=False)
        return None

    def _finding(self, reason: str, rule: str) -> Finding:
        return Finding(NAME, self.verdict, reason, (rule,), "high")


def _is_ip(host: str) -> bool:
    return ":" in host or host.replace(".", "").isdigit()
