"""`proxy run` with a CA directory it cannot write, as a Kubernetes Secret mounts it.

The Secret holds the CA and mitmproxy's DH parameters (cage/kube/material.py); the
upstream trust bundle of `--upstream-ca` then goes to a private temporary file.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from agentcage.cage import ca
from agentcage.proxy.confdir import DHPARAM, UPSTREAM_BUNDLE, dhparam_pem
from tests.integration.proxy.conftest import ports_of, write_config
from tests.support.fake_dns import FakeDns
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration


def test_serves_with_a_ca_directory_it_cannot_write(
    tmp_path: Path, fake_dns: FakeDns, upstream: Upstream
) -> None:
    ca_dir = tmp_path / "ca"
    ca_dir.mkdir()
    key_pem, cert_pem = ca.make_ca("fixed")
    (ca_dir / ca.KEY_AND_CERT).write_bytes(key_pem + cert_pem)
    (ca_dir / ca.CERT).write_bytes(cert_pem)
    (ca_dir / DHPARAM).write_bytes(dhparam_pem())
    # Root writes through file modes, so the bundle's name is taken by a directory
    # instead: writing it fails as it does on a read-only mount.
    (ca_dir / UPSTREAM_BUNDLE).mkdir()
    before = sorted(p.name for p in ca_dir.iterdir())
    config = write_config(tmp_path / "config.yaml", fake_dns, served=ports_of(upstream))
    proxy = ProxyProcess(config, tmp_path, upstream_ca=upstream.ca_pem).start()
    try:
        verify = ssl.create_default_context(cafile=str(ca_dir / ca.CERT))
        with httpx.Client(proxy=proxy.url, verify=verify, timeout=10) as client:
            response = client.get(f"https://api.anthropic.com:{upstream.tls_port}/fixed")
        assert response.status_code == 200  # the upstream's private CA is trusted
    finally:
        assert proxy.stop() == 0, proxy.stderr
    assert sorted(p.name for p in ca_dir.iterdir()) == before
