"""The sidecar's private directory of rendered dnsmasq files, and `dnsmasq --test`."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentcage.atomicfile import write_atomic
from agentcage.dns.render import Rendered
from agentcage.errors import DnsError

MAIN_FILE = "dnsmasq.conf"
SERVERS_FILE = "servers.conf"
# dnsmasq runs as this account when the sidecar is root.
DEFAULT_USER = "nobody"


@dataclass(frozen=True, slots=True)
class RunAs:
    """The account dnsmasq is started as when the sidecar runs as root.

    Started as it, not told to switch to it (`user=`): dnsmasq never holds root, and the
    parent-death signal the sidecar sets survives (the kernel clears it when a process
    changes its credentials, so a dnsmasq that dropped root itself outlived a killed
    sidecar).
    """

    user: str
    group: str

    def popen_account(self) -> dict[str, Any]:
        """`subprocess.Popen`'s account arguments; no supplementary groups kept."""
        return {"user": self.user, "group": self.group, "extra_groups": []}


def dnsmasq_binary() -> str:
    found = shutil.which("dnsmasq") or next(
        (p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise DnsError(
            "dnsmasq is not installed",
            hint="install it: apt-get install dnsmasq-base (Debian/Ubuntu) or dnf install dnsmasq",
        )
    return found


def run_as_for_root(user: str = DEFAULT_USER) -> RunAs | None:
    """The account dnsmasq should drop to, or None when we are not root (it cannot)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError as exc:
        raise DnsError(
            f"user {user!r} does not exist; dnsmasq must not keep running as root",
            hint=f"create it (useradd --system {user}) or run the sidecar as a non-root user",
        ) from exc
    return RunAs(entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name)


class RuntimeDir:
    """A private temporary directory holding the two files dnsmasq reads.

    Mode 0700; when dnsmasq drops to another user, that user owns the directory and
    files, because it re-reads the servers file on SIGHUP after dropping root.
    """

    def __init__(self, run_as: RunAs | None, parent: Path | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="agentcage-dns-", dir=parent))
        self._owner: tuple[int, int] | None = None
        if run_as is not None:
            self._owner = (pwd.getpwnam(run_as.user).pw_uid, grp.getgrnam(run_as.group).gr_gid)
            os.chown(self.path, *self._owner)

    @property
    def main(self) -> Path:
        return self.path / MAIN_FILE

    @property
    def servers(self) -> Path:
        return self.path / SERVERS_FILE

    def write(self, rendered: Rendered) -> None:
        self.write_servers(rendered.servers)
        self._write(self.main, rendered.main)

    def write_servers(self, text: str) -> None:
        self._write(self.servers, text)

    def _write(self, target: Path, text: str) -> None:
        # Write-then-rename: dnsmasq never reads a half-written file.
        write_atomic(target, text, 0o600, owner=self._owner)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def check(rendered: Rendered, binary: str | None = None) -> None:
    """Run `dnsmasq --test` on both files joined (it does not parse a servers-file)."""
    lines = [ln for ln in rendered.main.splitlines() if not ln.startswith("servers-file=")]
    combined = "\n".join([*lines, *rendered.servers.splitlines()]) + "\n"
    with tempfile.TemporaryDirectory(prefix="agentcage-dns-test-") as tmp:
        path = Path(tmp) / MAIN_FILE
        path.write_text(combined)
        result = subprocess.run(
            [binary or dnsmasq_binary(), "--test", f"--conf-file={path}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        where = re.search(r"at line (\d+) of ", output)
        if where is not None and 0 < int(where.group(1)) <= len(combined.splitlines()):
            output += f": {combined.splitlines()[int(where.group(1)) - 1]!r}"
        raise DnsError(
            f"dnsmasq rejected the rendered config: {output}",
            hint="this is a bug in agentcage's DNS rendering; please report it with the config",
        )
