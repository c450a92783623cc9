"""Ways a cage runs with less protection than the defaults give, said plainly.

`cage status` prints each one; none of them stops a cage, all of them are choices (or
limits of the host) an operator should know they made.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from agentcage.cage.host_fixes import isolation_note
from agentcage.cage.podman import PodmanHost
from agentcage.cage.vm.vm_container import ROOTLESS_NOTE
from agentcage.cage.vm.vm_plan import PLAN_FILE, load_plan
from agentcage.config.schema import CageConfig


def weakened(host: PodmanHost, config: CageConfig, state_dir: Path | None = None) -> list[str]:
    return [*_host(host), *_policy(config), *_microvm(host, state_dir)]


def _microvm(host: PodmanHost, state_dir: Path | None) -> list[str]:
    """A Firecracker cage's VM container holds CAP_NET_ADMIN for its guest's TAP; a
    rootless one's runs as the user."""
    if state_dir is None or not (state_dir / "vm" / PLAN_FILE).is_file():
        return []
    found = [ROOTLESS_NOTE] if host.rootless else []
    if load_plan(state_dir / "vm").monitor == "firecracker":
        found.append(
            "the microVM's container holds CAP_NET_ADMIN and /dev/net/tun (Firecracker "
            "attaches the guest only to a TAP, which it makes and NATs in its own network "
            "namespace); Firecracker itself runs with no capabilities"
        )
    return found


def _host(host: PodmanHost) -> list[str]:
    found = []
    if host.host_container is not None:
        found.append(isolation_note(host.host_container.name))
    elif host.prefix and not host.remote:  # a remote host's own systemd is no weakening
        found.append(
            f"cages run through `{shlex.join(host.prefix)}` (AGENTCAGE_SYSTEMD_EXEC), not this "
            "machine's systemd: if that container is privileged, as a host container is, an "
            "escape from the agent lands in it"
        )
    if not host.cgroups:
        found.append(
            "no memory, CPU or pids limits: rootless Podman on cgroup v1 cannot enforce them"
        )
    return found


def _policy(config: CageConfig) -> list[str]:
    found = []
    if config.domains.learning:
        found.append(
            "LEARN MODE: the domain list is not enforced; the agent can reach any public "
            "host (audited as would-block). `agentcage domain suggest` then "
            "`enforcement: enforce`"
        )
    if config.domains.mode == "blocklist":
        found.append("domains are a blocklist: every host not listed is reachable")
    if config.network.allow_cidrs:
        ranges = ", ".join(str(cidr) for cidr in config.network.allow_cidrs)
        found.append(
            f"the proxy may connect to special-purpose ranges {ranges} (network.allow_cidrs)"
        )
    if not config.secrets.enabled:
        found.append("the secret scanner is off (secrets.enabled: false)")
    off = [
        key for key in ("entropy", "content_type", "rate_limit") if getattr(config, key) is False
    ]
    if off:
        found.append(f"checks turned off: {', '.join(off)}")
    if config.max_request_body == 0:
        found.append("request bodies of any size are let through (max_request_body: 0)")
    return found
