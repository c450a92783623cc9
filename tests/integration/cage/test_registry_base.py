"""The registry base, pulled for real: a local `docker-registry` on loopback, the host's Podman.

`ImageBuilder.base` pulls a base pinned by digest (issue 12, finding 9). The tag in the
reference is a label only: a tag pushed over with other content is not followed, an image
tagged locally with other content does not count, and a registry that serves other bytes
for the digest is refused. Podman here uses an image store of its own (tmp, vfs).
"""

from __future__ import annotations

import pytest

from agentcage.cage.images import ImageBuilder
from agentcage.cage.podman import SubprocessRunner
from agentcage.errors import PodmanError
from tests.support.dns_sidecar import free_port
from tests.support.registry import LocalRegistry, PodmanEnv

pytestmark = pytest.mark.integration

TAG = "agentcage-test/base:bookworm"


def _builder(podman: PodmanEnv, lines: list[str]) -> ImageBuilder:
    return ImageBuilder(SubprocessRunner(env=podman.env), progress=lines.append)


def test_a_base_pinned_by_digest_is_pulled_with_progress(
    registry: LocalRegistry, podman: PodmanEnv
) -> None:
    target = f"{registry.address}/{TAG}"
    pinned = f"{target}@{podman.push('localhost/t:a', target)}"
    lines: list[str] = []
    assert _builder(podman, lines).base(pinned) == pinned
    assert podman.image_id(pinned) == podman.image_id("localhost/t:a")
    assert lines[0] == f"  pulling {pinned}"
    assert any(line.startswith("    Copying blob") for line in lines)
    assert any("Writing manifest" in line for line in lines)
    lines.clear()
    _builder(podman, lines).base(pinned)  # present now: no second pull
    assert lines == []


def test_a_tag_pushed_over_is_not_followed(registry: LocalRegistry, podman: PodmanEnv) -> None:
    target = f"{registry.address}/{TAG}"
    pinned = f"{target}@{podman.push('localhost/t:a', target)}"
    a = podman.image_id("localhost/t:a")
    moved = podman.push("localhost/t:b", target)  # same tag, other content
    assert f"{target}@{moved}" != pinned
    b = podman.image_id("localhost/t:b")
    podman.remove(["localhost/t:a"])
    podman.run("podman", "tag", "localhost/t:b", target)  # and tampered locally as well
    _builder(podman, []).base(pinned)
    assert podman.image_id(pinned) == a
    assert podman.image_id(target) == b  # the tampered tag is still there, unused


def test_other_bytes_for_the_digest_are_refused(registry: LocalRegistry, podman: PodmanEnv) -> None:
    target = f"{registry.address}/{TAG}"
    pinned_digest = podman.push("localhost/t:a", target)
    other = podman.push("localhost/t:b", target)
    # The registry now answers the pinned digest with the other image's manifest.
    registry.manifest_blob(pinned_digest).write_bytes(registry.manifest_blob(other).read_bytes())
    podman.remove(["localhost/t:a", "localhost/t:b"])
    pinned = f"{target}@{pinned_digest}"
    with pytest.raises(PodmanError) as raised:
        _builder(podman, []).base(pinned)
    assert raised.value.message.startswith(f"pulling {pinned} failed: Error: ")
    assert "does not match" in raised.value.message
    assert raised.value.hint and "`--base debian`" in raised.value.hint
    exists = podman.run("podman", "image", "exists", pinned, check=False)
    assert exists.returncode == 1


def test_an_unreachable_registry_says_what_failed(podman: PodmanEnv) -> None:
    nobody = f"127.0.0.1:{free_port()}/{TAG}@sha256:" + "0" * 64
    with pytest.raises(PodmanError) as raised:
        _builder(podman, []).base(nobody)
    assert raised.value.message.startswith(f"pulling {nobody} failed: Error: ")
    assert "connection refused" in raised.value.message
    assert raised.value.hint and "`--base debian`" in raised.value.hint
