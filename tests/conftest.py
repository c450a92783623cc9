"""Shared fixtures. Every test runs with a clean proxy/CA environment."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Hypothesis fails an example slower than 200 ms by default: a timing test in disguise,
# which a loaded 2-core CI machine trips. Speed is measured in bench/, never here.
settings.register_profile("agentcage", deadline=None)
settings.load_profile("agentcage")

_LEAKY = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's HTTPS_PROXY must never route test traffic anywhere.
    for name in _LEAKY:
        if name in os.environ:
            monkeypatch.delenv(name)
