"""Reading a sidecar's metrics from its unix socket: what `cage status` shows.

An HTTP GET over AF_UNIX with the standard library, and prometheus_client's parser:
the exposition is read by the same library that wrote it.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from agentcage.errors import AgentcageError
from agentcage.metrics.unix_http import UnixHTTPConnection

Key = tuple[str, tuple[tuple[str, str], ...]]
MAX_BYTES = 4 * 1024 * 1024  # a sidecar's exposition is a few KiB; bounded labels keep it so


class MetricsUnreachable(AgentcageError):
    """No metrics at that socket (sidecar stopped, socket stale, or not permitted)."""


@dataclass(frozen=True)
class Samples:
    """Every sample of one scrape, by name and labels."""

    values: dict[Key, float]

    def total(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, have), v in self.values.items() if n == name and wanted <= set(have))

    def label_values(self, name: str, label: str) -> list[str]:
        return sorted(
            {dict(have)[label] for (n, have) in self.values if n == name and label in dict(have)}
        )


def scrape_unix(path: Path, timeout: float = 3.0) -> Samples:
    """GET /metrics from the socket at `path`; `MetricsUnreachable` says why not."""
    connection = UnixHTTPConnection(path, timeout)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        body = response.read(MAX_BYTES + 1)
        status = response.status
    except FileNotFoundError as exc:
        raise MetricsUnreachable(f"no metrics socket at {path}") from exc
    except ConnectionRefusedError as exc:
        raise MetricsUnreachable(f"nothing serves {path} (a stale socket)") from exc
    except PermissionError as exc:
        raise MetricsUnreachable(f"{path}: permission denied") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise MetricsUnreachable(f"{path}: {exc}") from exc
    finally:
        connection.close()
    if status != 200 or len(body) > MAX_BYTES:
        raise MetricsUnreachable(f"{path}: HTTP {status}, {len(body)} bytes")
    try:
        families = list(text_string_to_metric_families(body.decode("utf-8")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MetricsUnreachable(f"{path}: not a Prometheus exposition ({exc})") from exc
    return Samples(
        {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in families
            for sample in family.samples
        }
    )
