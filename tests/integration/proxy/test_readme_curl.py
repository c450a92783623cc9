"""The README's proxy quickstart, run with the system's curl through the real proxy.

curl takes its CA bundle from --cacert, else CURL_CA_BUNDLE, else SSL_CERT_FILE. Many
machines (this one too) export CURL_CA_BUNDLE for the system bundle, so a quickstart that
only exported SSL_CERT_FILE failed there with curl's error 60. The lines are taken from
README.md as written; only the upstream's loopback port is added.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.proxy.conftest import REAL_KEY
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration
README = Path(__file__).resolve().parents[3] / "README.md"
# What such a machine exports; the README's commands must work with it set.
SYSTEM_BUNDLE = {"CURL_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt"}


def _quickstart_curls() -> list[list[str]]:
    """The curl command lines of the README block that runs `agentcage proxy run`."""
    blocks = README.read_text().split("```sh\n")[1:]
    block = next(b.split("```", 1)[0] for b in blocks if "agentcage proxy run" in b)
    return [
        shlex.split(line, comments=True) for line in block.splitlines() if line.startswith("curl ")
    ]


def _curl(
    argv: list[str], proxy: ProxyProcess, upstream: Upstream, **env: str
) -> subprocess.CompletedProcess[str]:
    curl = shutil.which("curl")
    assert curl, "curl missing (Debian: apt install curl)"
    words = [str(proxy.ca_cert) if w == "$CA" else w for w in argv[1:]]
    words = [w.replace(".com/", f".com:{upstream.tls_port}/") for w in words]
    return subprocess.run(
        [curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", *words],
        env={"PATH": "/usr/bin:/bin", "HTTPS_PROXY": proxy.url, **SYSTEM_BUNDLE, **env},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_the_readme_quickstart_curls_work_where_curl_ca_bundle_is_set(
    proxy: ProxyProcess, upstream: Upstream
) -> None:
    allowed, blocked = _quickstart_curls()
    assert "--cacert" in allowed and "--cacert" in blocked
    upstream.clear()
    result = _curl(allowed, proxy, upstream)
    assert (result.returncode, result.stdout) == (0, "200"), result.stderr
    assert upstream.received[-1].header("x-api-key") == REAL_KEY  # injected
    result = _curl(blocked, proxy, upstream)
    assert (result.returncode, result.stdout) == (0, "403"), result.stderr


def test_ssl_cert_file_alone_loses_to_curl_ca_bundle(
    proxy: ProxyProcess, upstream: Upstream
) -> None:
    allowed = [w for w in _quickstart_curls()[0] if w not in ("--cacert", "$CA")]
    result = _curl(allowed, proxy, upstream, SSL_CERT_FILE=str(proxy.ca_cert))
    assert result.returncode == 60, result.stderr  # "SSL certificate problem"
