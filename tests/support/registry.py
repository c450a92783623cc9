"""A real image registry on loopback (Debian's `docker-registry`), and a Podman pointed at it.

`scripts/bootstrap` installs `docker-registry` and `skopeo`. The registry listens on
127.0.0.1 only, over plain HTTP; `PodmanEnv` gives podman a registries.conf that allows
that one address, and (`own_storage`) an image store of its own, so a test neither sees
nor changes the machine's images.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.dns_sidecar import free_port


@dataclass(frozen=True)
class LocalRegistry:
    address: str  # 127.0.0.1:PORT
    root: Path  # its storage directory

    def manifest_blob(self, digest: str) -> Path:
        """Where the registry keeps the bytes it serves for `digest`."""
        algorithm, hexa = digest.split(":", 1)
        blobs = self.root / "docker" / "registry" / "v2" / "blobs"
        return blobs / algorithm / hexa[:2] / hexa / "data"


@contextmanager
def local_registry(workdir: Path) -> Iterator[LocalRegistry]:
    port = free_port()
    root = workdir / "registry-data"
    config = workdir / "registry.yml"
    config.write_text(
        json.dumps(  # YAML is a superset of JSON
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {"filesystem": {"rootdirectory": str(root)}},
                "http": {"addr": f"127.0.0.1:{port}"},
            }
        )
    )
    log = (workdir / "registry.log").open("wb")
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/v2/", proc)
        yield LocalRegistry(f"127.0.0.1:{port}", root)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_until_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"docker-registry exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise AssertionError(f"docker-registry did not answer at {url}")


@dataclass(frozen=True)
class PodmanEnv:
    """Environment variables that point podman (and skopeo) at the registry."""

    env: dict[str, str]

    @classmethod
    def make(
        cls, workdir: Path, registry: LocalRegistry, base: dict[str, str], own_storage: bool
    ) -> PodmanEnv:
        registries = workdir / "registries.conf"
        registries.write_text(f'[[registry]]\nlocation = "{registry.address}"\ninsecure = true\n')
        env = {**base, "CONTAINERS_REGISTRIES_CONF": str(registries)}
        if own_storage:
            storage = workdir / "storage.conf"
            storage.write_text(
                '[storage]\ndriver = "vfs"\n'
                f'runroot = "{workdir / "run"}"\ngraphroot = "{workdir / "graph"}"\n'
            )
            env["CONTAINERS_STORAGE_CONF"] = str(storage)
        return cls(env)

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=600)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def push(self, image: str, target: str) -> str:
        """Push `image` to `target` (REGISTRY/REPO:TAG); returns the manifest digest served."""
        self.run("podman", "push", "--quiet", "--tls-verify=false", image, target)
        return self.digest(target)

    def digest(self, target: str) -> str:
        shown = self.run("skopeo", "inspect", "--tls-verify=false", f"docker://{target}")
        return str(json.loads(shown.stdout)["Digest"])

    def image_id(self, ref: str) -> str:
        return self.run("podman", "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()

    def remove(self, refs: Sequence[str]) -> None:
        """Untag (an image with other names keeps them) or delete; best effort, one by one."""
        for ref in refs:
            self.run("podman", "rmi", "--ignore", ref, check=False)
