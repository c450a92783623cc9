"""The README's quickstart as commands, and a shell that runs them in a fresh checkout.

The commands are read from README.md's Quickstart section (its ```sh blocks), never
copied into a test, so a test running them breaks when the README drifts from what works.
"""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.harness import REPO

# A comment after a command: whitespace, then `# ` (no command here has one inside quotes).
_TRAILING_COMMENT = re.compile(r"\s+#\s.*$")
DISTRIBUTION_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Quickstart:
    setup: tuple[str, ...]  # bootstrap, PATH, config validate
    validated: str  # what the README shows `config validate` printing
    cage: tuple[str, ...]  # create ... destroy
    host: tuple[str, ...]  # host start ... host stop, around a `cage create`

    @classmethod
    def from_readme(cls, text: str) -> Quickstart:
        section = text.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
        blocks = re.findall(r"^```sh\n(.*?)^```$", section, flags=re.M | re.S)
        setup = blocks[0].splitlines()
        (validated,) = [line[2:] for line in setup if line.startswith("# ")]
        (cage,) = [b for b in blocks if "cage create" in b and "host start" not in b]
        (host,) = [b for b in blocks if "host start" in b]
        return cls(_commands(blocks[0]), validated, _commands(cage), _commands(host))

    def host_around_create(self) -> tuple[list[str], list[str]]:
        """The host block's lines before its `cage create`, and those after it."""
        index = next(i for i, line in enumerate(self.host) if "cage create" in line)
        return list(self.host[:index]), list(self.host[index + 1 :])


def _commands(block: str) -> tuple[str, ...]:
    lines = (_TRAILING_COMMENT.sub("", line).strip() for line in block.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def copy_checkout(target: Path) -> Path:
    """This checkout's files as a clone would have them, with uncommitted work: no .venv."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    target.mkdir(parents=True)
    archive = target.parent / "checkout.tar"
    with tarfile.open(archive, "w") as tar:
        for name in filter(None, (n.decode() for n in listed)):
            if (REPO / name).exists() or (REPO / name).is_symlink():
                tar.add(REPO / name, arcname=name, recursive=False)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="tar")
    archive.unlink()
    return target


def uv_dir(workdir: Path) -> Path:
    """A PATH entry holding only uv (the one bootstrap would find, never a shim script)."""
    directory = workdir / "uv-bin"
    directory.mkdir()
    entries = [REPO / ".venv" / "bin", *map(Path, os.environ.get("PATH", "").split(os.pathsep))]
    for entry in entries:
        candidate = (entry / "uv").resolve()
        if candidate.is_file() and candidate.read_bytes()[:2] != b"#!":
            (directory / "uv").symlink_to(candidate)
            break
    return directory


@dataclass
class Shell:
    """Runs README lines one at a time in bash, in `cwd`, after the README's own exports."""

    cwd: Path
    env: dict[str, str]
    exports: list[str] = field(default_factory=list)

    def __call__(self, line: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        script = "\n".join(["set -e", *self.exports, line])
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if line.startswith("export ") and result.returncode == 0:
            self.exports.append(line)
        return result
