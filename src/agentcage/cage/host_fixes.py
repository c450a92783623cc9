"""What to do about each failing `host check` item, per distribution.

Each fix is a tuple of (where, what) pairs: package names and the exact commands for
Debian/Ubuntu and Fedora, or one line for all where the fix does not depend on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

Fixes = tuple[tuple[str, str], ...]

START_HOST_CONTAINER: Fixes = (("all", "agentcage host start"),)

NO_SYSTEMD: Fixes = (
    (
        "all",
        "`agentcage host start` runs cages in a privileged systemd + Podman container "
        "(weaker isolation: see docs/cages.md)",
    ),
    ("Debian/Ubuntu", "boot with systemd as init: sudo apt-get install systemd-sysv"),
    ("Fedora", "systemd is the default init; boot the machine normally"),
    ("WSL", "put `[boot]` and `systemd=true` in /etc/wsl.conf, then `wsl --shutdown`"),
)

USER_MANAGER: Fixes = (
    (
        "all",
        "sudo loginctl enable-linger $USER, then log in again (ssh or `machinectl shell`; "
        "`su` starts no user manager)",
    ),
)

INSTALL_PODMAN: Fixes = (
    ("Debian/Ubuntu", "sudo apt-get install podman"),
    ("Fedora", "sudo dnf install podman"),
)

UTIL_LINUX: Fixes = (
    ("Debian/Ubuntu", "sudo apt-get install util-linux"),
    ("Fedora", "sudo dnf install util-linux-core"),
)

REINSTALL_PODMAN: Fixes = (
    ("Debian/Ubuntu", "sudo apt-get install --reinstall podman"),
    ("Fedora", "sudo dnf reinstall podman"),
)

CGROUP_V2: Fixes = (
    (
        "Debian/Ubuntu",
        "add systemd.unified_cgroup_hierarchy=1 to GRUB_CMDLINE_LINUX in /etc/default/grub, "
        "sudo update-grub, reboot",
    ),
    ("Fedora", "sudo grubby --update-kernel=ALL --args=systemd.unified_cgroup_hierarchy=1, reboot"),
)

DELEGATE: Fixes = (
    (
        "all",
        "sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\n"
        "Delegate=cpu cpuset io memory pids\\n' | sudo tee "
        "/etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload; "
        "then log out and in",
    ),
)

KERNEL_CONTROLLERS: Fixes = (
    ("all", "boot without cgroup_disable=... so the kernel offers cpu, memory and pids"),
)

UIDMAP: Fixes = (
    ("Debian/Ubuntu", "sudo apt-get install uidmap"),
    ("Fedora", "sudo dnf install shadow-utils"),
)

NETAVARK: Fixes = (
    ("Debian/Ubuntu", "sudo apt-get install netavark aardvark-dns"),
    ("Fedora", "sudo dnf install netavark aardvark-dns"),
    (
        "all",
        'set network_backend = "netavark" under [network] in /etc/containers/containers.conf, '
        "then `podman system reset` (removes all containers and images)",
    ),
)

TUN_MISSING: Fixes = (
    ("all", "sudo modprobe tun; inside a container, start it with --device /dev/net/tun"),
)

TUN_MODE: Fixes = (("all", "sudo chmod 0666 /dev/net/tun"),)


def subids(user: str) -> Fixes:
    return (
        ("all", f"sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}"),
    )


def disk(path: str) -> Fixes:
    return (
        (
            "all",
            f"free space on the filesystem of {path}; `podman image prune` removes unused images",
        ),
    )


def share(shared: Sequence[Path], unseen: Sequence[Path]) -> Fixes:
    """Restart the host container sharing what it shares now and the unseen paths too."""
    wanted = dict.fromkeys([*shared, *(p.parent if p.is_file() else p for p in unseen)])
    options = " ".join(f"--share {p}" for p in wanted)
    return (("all", f"agentcage host stop && agentcage host start {options}"),)


def isolation_note(container: str) -> str:
    return (
        f"cages run inside the privileged host container {container}: a container escape "
        "from the agent lands in a privileged container with root's access to this machine, "
        "which is weaker isolation than a host with systemd as PID 1"
    )
