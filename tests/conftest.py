"""Shared fixtures. Every test runs with a clean proxy/CA environment."""

from __future__ import annotations

import os

import pytest

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
