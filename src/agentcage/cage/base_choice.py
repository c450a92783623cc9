"""Which base the sidecar images are built on: `--base`, else the environment.

The choice is recorded with a cage, so a later `cage update` builds on the same base;
images.py turns it into an image reference and builds on it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from agentcage.errors import ConfigError

# Another registry base (a mirror, a registry of your own), pinned by digest as well.
REGISTRY_BASE_ENV = "AGENTCAGE_REGISTRY_BASE"
IMAGE_BASE_ENV = "AGENTCAGE_IMAGE_BASE"
# A pull names the digest: the tag is a label only, so a tag pointed at other content is
# never followed, and Podman refuses bytes that do not hash to the digest.
PINNED_REF = re.compile(r"^[a-z0-9][^\s@]*@sha256:[0-9a-f]{64}$")


def choose_base(kind: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """What the sidecar images are built on, as a cage records it.

    `kind` is `--base`; without it $AGENTCAGE_IMAGE_BASE, else `registry`. The answer is
    `debian`, `registry` (REGISTRY_BASE, whichever pin this version of agentcage has) or
    the image $AGENTCAGE_REGISTRY_BASE names, which must be pinned by digest.
    """
    env = os.environ if environ is None else environ
    chosen = kind or env.get(IMAGE_BASE_ENV) or "registry"
    if chosen == "debian":
        return chosen
    if chosen != "registry":
        raise ConfigError(
            f"{chosen!r}: choose registry or debian", hint=f"--base or ${IMAGE_BASE_ENV}"
        )
    override = env.get(REGISTRY_BASE_ENV, "")
    if not override:
        return chosen
    if not PINNED_REF.match(override):
        raise ConfigError(
            f"${REGISTRY_BASE_ENV}={override!r} is not pinned by digest",
            hint="name it REPOSITORY[:TAG]@sha256:<64 hex digits>; "
            "`skopeo inspect docker://REPOSITORY:TAG` shows the digest",
        )
    return override
