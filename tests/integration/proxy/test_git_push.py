"""Secrets inside a `git push`, through the real proxy, with a real `git` client.

The push is one POST to `.../git-receive-pack`: pkt-lines, then a packfile whose every
object is its own zlib stream, and whose changed files travel as deltas against objects
the server already has. The server is `git http-backend` on loopback, named github.com
for the proxy (the fake DNS answers 127.0.0.1), so only content inspection stands
between the agent's push and the repository. Each case is checked on both sides: git
failed with 403 and the server's branch did not move (or, when clean, it did).
"""

from __future__ import annotations

import os
import random
import string
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.proxy.conftest import REAL_KEY, Port, agent_client, serving, start_proxy
from tests.support.fake_dns import FakeDns
from tests.support.git_http import GIT_ENV, GitHttpServer, git
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration

_RNG = random.Random(1515)
_UPPER = string.ascii_uppercase + "234567"
_B64 = string.ascii_letters + string.digits + "+/"
AWS_ID = "AKIA" + "".join(_RNG.choice(_UPPER) for _ in range(16))
AWS_SECRET = "".join(_RNG.choice(_B64) for _ in range(40))
AWS_FILE = f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHttpServer]:
    served = GitHttpServer(tmp_path_factory.mktemp("git-server")).start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory,
    fake_dns: FakeDns,
    upstream: Upstream,
    server: GitHttpServer,
) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("git-proxy")
    ports: list[Port] = [(server.port, "http")]
    yield from serving(start_proxy(tmp, fake_dns, upstream, "rate_limit: false", more_ports=ports))


class Clone:
    """A work tree whose `origin` is a new bare repository on the server, via the proxy."""

    def __init__(self, tmp: Path, server: GitHttpServer, proxy: ProxyProcess, name: str) -> None:
        self.bare = server.bare(f"org/{name}.git")
        self.work = tmp / name
        git("init", "--quiet", str(self.work))
        self.path = f"/org/{name}.git"
        self.url = f"http://github.com:{server.port}{self.path}"
        self.proxy = proxy

    def commit(self, files: dict[str, bytes], message: str = "change") -> None:
        for name, content in files.items():
            (self.work / name).write_bytes(content)
        git("add", "-A", cwd=self.work)
        git("commit", "--quiet", "-m", message, cwd=self.work)

    def push(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-c", f"http.proxy={self.proxy.url}", "push", self.url, "main"],
            cwd=self.work,
            capture_output=True,
            text=True,
            env=_env(),
            timeout=120,
        )

    def server_head(self) -> str:
        proc = subprocess.run(
            ["git", "rev-parse", "--verify", "-q", "refs/heads/main"],
            cwd=self.bare,
            capture_output=True,
            text=True,
        )
        return proc.stdout.strip()

    def local_head(self) -> str:
        return git("rev-parse", "HEAD", cwd=self.work)


def _env() -> dict[str, str]:
    return {**GIT_ENV, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def _source(rng: random.Random, lines: int) -> bytes:
    """A large text file, so the second push sends it as a delta."""
    words = ["widget", "frame", "render", "value", "count", "index", "state", "queue"]
    return "".join(
        f"def f_{n}({rng.choice(words)}):\n    return {rng.choice(words)} + {n}\n"
        for n in range(lines)
    ).encode()


def _blocked(clone: Clone, proxy: ProxyProcess, before: str) -> dict[str, Any]:
    pushed = clone.push()
    assert pushed.returncode != 0, pushed.stderr
    assert "403" in pushed.stderr
    assert clone.server_head() == before  # nothing of it reached the repository
    return proxy.wait_for_audit(
        lambda r: r["path"] == f"{clone.path}/git-receive-pack" and r["verdict"] == "block"
    )


def test_clean_pushes_with_deltas_pass(
    tmp_path: Path, server: GitHttpServer, proxy: ProxyProcess
) -> None:
    clone = Clone(tmp_path, server, proxy, "clean")
    rng = random.Random(1)
    big = _source(rng, 4000)
    clone.commit({"app.py": big, "logo.bin": rng.randbytes(1_500_000)}, "first")
    first = clone.push()
    assert first.returncode == 0, first.stderr
    # Past git's 1 MiB http.postBuffer: a probe, then the pack chunked.
    posts = [s.body_size for s in server.served if s.path == f"{clone.path}/git-receive-pack"]
    assert 4 in posts and max(posts) > 1 << 20, posts
    clone.commit({"app.py": big.replace(b"f_1999(", b"g_1999(")}, "rename one function")
    second = clone.push()
    assert second.returncode == 0, second.stderr
    assert clone.server_head() == clone.local_head()
    # The changed file went as a delta: a few hundred bytes, not its 170 KB again.
    assert server.served[-1].path.endswith("git-receive-pack")
    assert server.served[-1].body_size < 2_000, server.served[-1]


@pytest.mark.parametrize(
    ("content", "rules"),
    [
        (f"ANTHROPIC_API_KEY={REAL_KEY}\n".encode(), "ANTHROPIC_API_KEY"),
        (AWS_FILE.encode(), "aws_"),
    ],
    ids=["known-value", "aws-key-pair"],
)
def test_a_secret_in_a_pushed_file_is_blocked(
    tmp_path: Path, server: GitHttpServer, proxy: ProxyProcess, content: bytes, rules: str
) -> None:
    name = "new-" + rules.lower().strip("_")
    clone = Clone(tmp_path, server, proxy, name)
    clone.commit({"README.md": b"# project\n"}, "first")
    assert clone.push().returncode == 0
    before = clone.server_head()
    clone.commit({"settings.env": content}, "add settings")
    line = _blocked(clone, proxy, before)
    assert any(rules in rule for rule in line["rules"]), line


def test_a_secret_added_to_a_large_file_travels_as_a_delta_and_is_blocked(
    tmp_path: Path, server: GitHttpServer, proxy: ProxyProcess
) -> None:
    clone = Clone(tmp_path, server, proxy, "delta")
    big = _source(random.Random(2), 4000)
    clone.commit({"app.py": big}, "first")
    assert clone.push().returncode == 0
    before = clone.server_head()
    changed = big.replace(b"def f_2000(", f"KEY = '{REAL_KEY}'\ndef f_2000(".encode())
    clone.commit({"app.py": changed}, "tweak")
    line = _blocked(clone, proxy, before)
    assert "injected:ANTHROPIC_API_KEY" in line["rules"], line


def test_a_secret_in_a_commit_message_is_blocked(
    tmp_path: Path, server: GitHttpServer, proxy: ProxyProcess
) -> None:
    clone = Clone(tmp_path, server, proxy, "message")
    clone.commit({"README.md": b"# project\n"}, "first")
    assert clone.push().returncode == 0
    before = clone.server_head()
    clone.commit({"README.md": b"# project\n\nmore\n"}, f"debug: {AWS_FILE}")
    line = _blocked(clone, proxy, before)
    assert any("aws_" in rule for rule in line["rules"]), line


def test_a_malformed_pack_is_refused_with_its_reason(
    server: GitHttpServer, proxy: ProxyProcess
) -> None:
    server.bare("org/broken.git")
    line = f"{'0' * 40} {'1' * 40} refs/heads/main\0report-status\n".encode()
    pack = b"PACK" + struct.pack(">II", 2, 1) + bytes([0x35]) + zlib.compress(b"hello")[:-3]
    body = b"%04x" % (len(line) + 4) + line + b"0000" + pack
    path = "/org/broken.git/git-receive-pack"
    with agent_client(proxy) as http:
        response = http.post(
            f"http://github.com:{server.port}{path}",
            content=body,
            headers={"content-type": "application/x-git-receive-pack-request"},
        )
    assert response.status_code == 403
    assert not any(s.path == path for s in server.served)
    record = proxy.wait_for_audit(lambda r: r["path"] == path and r["verdict"] == "block")
    assert record["rules"] == ["malformed-pack"]
    assert "git pack (raw) object 0" in record["reason"]
