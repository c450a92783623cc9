"""The secrets drive, read back with debugfs (no mount): modes, owner, content, no leftovers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agentcage.cage.vm.rootfs import secrets_image
from agentcage.errors import VmmError


def debugfs(image: Path, request: str) -> str:
    done = subprocess.run(
        ["debugfs", "-R", request, str(image)], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_each_secret_is_0400_owned_by_the_proxy_user(tmp_path: Path) -> None:
    image = tmp_path / "secrets.ext4"
    secrets_image({"ANTHROPIC_API_KEY": "sk-ant-real", "GH_TOKEN": "ghp_real"}, image)
    assert oct(image.stat().st_mode & 0o777) == "0o600"
    assert sorted(os.listdir(tmp_path)) == ["secrets.ext4"]  # the staging tree is gone
    assert debugfs(image, "cat /ANTHROPIC_API_KEY") == "sk-ant-real"
    stat = debugfs(image, "stat /GH_TOKEN")
    assert "Mode:  0400" in stat
    assert "User: 10000" in stat and "Group: 10000" in stat


def test_a_name_that_is_not_a_plain_file_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VmmError, match="cannot be a file name"):
        secrets_image({"../etc/passwd": "x"}, tmp_path / "secrets.ext4")
    assert os.listdir(tmp_path) == []
