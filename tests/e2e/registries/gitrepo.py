"""A bare repository for github.com, served by `git http-backend` in the fake internet.

A small project (source files, history of a few commits, one binary asset) that the
agent clones and pushes to; `http.receivepack` lets the push in without credentials.
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
from pathlib import Path

HOST = "github.com"
REPO = "acme/widgets.git"
BRANCH = "main"
ENV = {
    "GIT_AUTHOR_NAME": "agentcage e2e",
    "GIT_AUTHOR_EMAIL": "e2e@example.invalid",
    "GIT_COMMITTER_NAME": "agentcage e2e",
    "GIT_COMMITTER_EMAIL": "e2e@example.invalid",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        ["git", "-c", f"init.defaultBranch={BRANCH}", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={**ENV, "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    return proc.stdout.strip()


def write(root: Path) -> Path:
    """The bare repository under root/HOST; returns its path."""
    bare = root / HOST / REPO
    bare.parent.mkdir(parents=True, exist_ok=True)
    git("init", "--quiet", "--bare", str(bare))
    git("config", "http.receivepack", "true", cwd=bare)
    rng = random.Random(42)
    with tempfile.TemporaryDirectory(prefix="e2e-git-") as tmp:
        work = Path(tmp)
        git("init", "--quiet", str(work))
        for commit in range(5):
            for n in range(10):
                module = work / "widgets" / f"part_{n}.py"
                module.parent.mkdir(exist_ok=True)
                module.write_text(f"VERSION = {commit}\n\ndef part_{n}():\n    return {n}\n")
            (work / "README.md").write_text(f"# widgets\n\nRelease {commit}.\n")
            (work / "assets").mkdir(exist_ok=True)
            (work / "assets" / "logo.bin").write_bytes(rng.randbytes(64 * 1024))
            git("add", "-A", cwd=work)
            git("commit", "--quiet", "-m", f"release {commit}", cwd=work)
        git("push", "--quiet", str(bare), f"HEAD:{BRANCH}", cwd=work)
    return bare


def head(bare: Path, branch: str = BRANCH) -> str:
    return git("rev-parse", f"refs/heads/{branch}", cwd=bare)
